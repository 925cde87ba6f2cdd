//! `herald subscribe`: follows an SSE URL like a browser's EventSource and
//! prints each event. As a browser's, it retries network errors from the
//! first connection on (the hub may not be up yet), saying so on stderr, and
//! stops at a refusal: a status other than 200, another content type, or a
//! TLS certificate that fails verification (which no retry can fix).

use std::io::{self, Write};

use futures_util::StreamExt;
use herald_client::{Error, EventSource, Item, MessageEvent};
use url::Url;

use crate::commands::{escape_controls, escape_controls_but_tabs};
use crate::error::CliError;

/// Arguments of `herald subscribe`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["url", "hub"])))]
pub struct Args {
    /// The event-stream URL to follow (or use --hub).
    url: Option<String>,
    /// A Mercure hub URL; the subscription URL adds --match and --match-urlpattern
    /// as query parameters.
    #[arg(long, value_name = "URL")]
    hub: Option<String>,
    /// With --hub: a topic to receive, matched exactly (Mercure `match`); repeatable.
    // `conflicts_with` as well as `requires`: clap does not report a required
    // argument missing when one it conflicts with is present, and `hub`
    // conflicts with `url` (their `source` group), so `requires` alone let
    // `herald subscribe URL --match T` through and the matcher was ignored.
    #[arg(
        long = "match",
        value_name = "TOPIC",
        requires = "hub",
        conflicts_with = "url"
    )]
    matches: Vec<String>,
    /// With --hub: a URL pattern of topics to receive (Mercure `match_urlpattern`); repeatable.
    #[arg(
        long = "match-urlpattern",
        value_name = "PATTERN",
        requires = "hub",
        conflicts_with = "url"
    )]
    match_urlpatterns: Vec<String>,
    /// A JWT sent as `Authorization: Bearer <JWT>`.
    #[arg(long, value_name = "JWT", env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A request header, `Name: value`; repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Resume after this event id (sent as `Last-Event-ID` on the first request).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// How to print events: pretty, json (one object per line) or raw (data only).
    #[arg(long, value_name = "FORMAT", default_value = "pretty")]
    format: String,
    /// The largest event data (or line) accepted, in bytes; a larger one stops
    /// herald, since a hub resuming from the last event ID would send it again.
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = herald_sse::DEFAULT_MAX_EVENT_SIZE as u64,
        value_parser = clap::value_parser!(u64).range(1..=MAX_EVENT_SIZE)
    )]
    max_event_size: u64,
}

/// The largest `--max-event-size`: 4 GiB, far past any event worth holding in memory.
const MAX_EVENT_SIZE: u64 = 1 << 32;

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `[type] id=ID`, then the data, then a blank line.
    Pretty,
    /// `{"type":…,"data":…,"id":…}` on one line.
    Json,
    /// The data alone, then a line break.
    Raw,
}

impl std::str::FromStr for Format {
    type Err = CliError;

    fn from_str(value: &str) -> Result<Self, CliError> {
        match value {
            "pretty" => Ok(Format::Pretty),
            "json" => Ok(Format::Json),
            "raw" => Ok(Format::Raw),
            other => Err(CliError::Usage(format!(
                "invalid --format '{other}': expected pretty, json or raw"
            ))),
        }
    }
}

/// The JSON line of `--format json`; the field order is the output's.
#[derive(serde::Serialize)]
struct JsonEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    data: &'a str,
    id: &'a str,
}

/// Runs `herald subscribe`.
pub async fn run(args: Args) -> Result<(), CliError> {
    let format: Format = args.format.parse()?;
    let url = subscription_url(&args)?;
    let max_event_size = usize::try_from(args.max_event_size).unwrap_or(usize::MAX);
    let mut builder = EventSource::builder(url.clone()).max_event_size(max_event_size);
    // An empty token (`HERALD_TOKEN=` in the environment) is none.
    let token = args.token.as_deref().filter(|t| !t.trim().is_empty());
    refuse_two_sources_of_one_header(&args, &url, token.is_some())?;
    if let Some(token) = token {
        if http::HeaderValue::from_str(token).is_err() {
            return Err(CliError::Usage(
                "invalid --token (or HERALD_TOKEN): it holds a character a header cannot carry"
                    .into(),
            ));
        }
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        builder = builder.header(name, value);
    }
    if let Some(id) = &args.last_event_id {
        if http::HeaderValue::from_str(id).is_err() {
            return Err(CliError::Usage(format!(
                "invalid --last-event-id {:?}: it holds a control character, which cannot be \
                 sent in the Last-Event-ID header",
                id
            )));
        }
        builder = builder.last_event_id(id);
    }
    let mut source = builder.build().map_err(|error| match error {
        Error::Client(_) => CliError::Runtime(describe(&error)),
        _ => CliError::Usage(describe(&error)),
    })?;

    while let Some(item) = source.next().await {
        match item {
            Ok(Item::Open { .. }) => {}
            Ok(Item::Event(event)) => match print_event(format, &event) {
                Ok(()) => {}
                // The reader went away (`herald subscribe … | head`): done.
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(error) => {
                    return Err(CliError::Runtime(format!(
                        "cannot write to stdout: {error}"
                    )));
                }
            },
            // The server asked us to stop: not a failure, but said, as a
            // mistyped URL answered 204 would otherwise look like a quiet stream.
            Err(Error::NoContent) => {
                let _ = writeln!(
                    io::stderr(),
                    "herald: {url}: the server answered 204 No Content, which asks not to \
                     reconnect; stopping"
                );
                return Ok(());
            }
            Err(error) if error.is_fatal() => {
                return Err(CliError::Runtime(describe_for(&url, &error)));
            }
            Err(error) => {
                // Said if it can be: a closed stderr does not stop following.
                let _ = writeln!(
                    io::stderr(),
                    "herald: {}; reconnecting",
                    describe_for(&url, &error)
                );
            }
        }
    }
    Ok(())
}

/// The URL to follow: the positional one, or the hub's with the Mercure query.
fn subscription_url(args: &Args) -> Result<Url, CliError> {
    let Some(hub) = &args.hub else {
        return parse_url(args.url.as_deref().unwrap_or_default(), "URL");
    };
    if args.matches.is_empty() && args.match_urlpatterns.is_empty() {
        return Err(CliError::Usage(
            "--hub needs at least one --match or --match-urlpattern".into(),
        ));
    }
    let mut url = parse_url(hub, "--hub")?;
    {
        let mut query = url.query_pairs_mut();
        for topic in &args.matches {
            query.append_pair("match", topic);
        }
        for pattern in &args.match_urlpatterns {
            query.append_pair("match_urlpattern", pattern);
        }
    }
    Ok(url)
}

/// Parses an http or https URL given as `what` on the command line.
pub(crate) fn parse_url(value: &str, what: &str) -> Result<Url, CliError> {
    let url = Url::parse(value)
        .map_err(|error| CliError::Usage(format!("invalid {what} '{value}': {error}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        scheme => Err(CliError::Usage(format!(
            "invalid {what} '{value}': the scheme is {scheme}, not http or https"
        ))),
    }
}

/// Splits and checks `Name: value`.
fn parse_header(header: &str) -> Result<(&str, &str), CliError> {
    let invalid = |why: &str| CliError::Usage(format!("invalid --header '{header}': {why}"));
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| invalid("expected 'Name: value'"))?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err(invalid("expected 'Name: value'"));
    }
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid("the name is not a valid HTTP header name"))?;
    http::HeaderValue::from_bytes(value.as_bytes())
        .map_err(|_| invalid("the value contains a control character"))?;
    Ok((name, value))
}

fn print_event(format: Format, event: &MessageEvent) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            let line = serde_json::to_string(&JsonEvent {
                event_type: &event.event_type,
                data: &event.data,
                id: &event.last_event_id,
            })
            .map_err(io::Error::other)?;
            writeln!(out, "{line}")?;
        }
        Format::Raw => writeln!(out, "{}", event.data)?,
        // For a terminal: what the server sent is shown, never obeyed.
        Format::Pretty => {
            let event_type = escape_controls(&event.event_type);
            if event.last_event_id.is_empty() {
                writeln!(out, "[{event_type}]")?;
            } else {
                let id = escape_controls(&event.last_event_id);
                writeln!(out, "[{event_type}] id={id}")?;
            }
            for line in event.data.split('\n') {
                writeln!(out, "{}", escape_controls_but_tabs(line))?;
            }
            writeln!(out)?;
        }
    }
    out.flush()
}

/// Refuses a header that two arguments would both send (the server would
/// see two, or use one of them silently): `Authorization` from --token, from
/// the URL's `user:password@` and from --header; `Last-Event-ID` from
/// --last-event-id and from --header.
fn refuse_two_sources_of_one_header(
    args: &Args,
    url: &Url,
    has_token: bool,
) -> Result<(), CliError> {
    let header_named = |name: &str| {
        args.headers.iter().any(|header| {
            header
                .split_once(':')
                .is_some_and(|(given, _)| given.trim().eq_ignore_ascii_case(name))
        })
    };
    let mut authorizations = Vec::new();
    if has_token {
        authorizations.push("--token (or HERALD_TOKEN)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        authorizations.push("the URL's user:password@");
    }
    if header_named("authorization") {
        authorizations.push("--header 'Authorization: …'");
    }
    if let [first, second, ..] = authorizations[..] {
        return Err(CliError::Usage(format!(
            "{first} and {second} would both send an Authorization header: give one"
        )));
    }
    if args.last_event_id.is_some() && header_named("last-event-id") {
        return Err(CliError::Usage(
            "--last-event-id and --header 'Last-Event-ID: …' would both send a Last-Event-ID \
             header: give one"
                .into(),
        ));
    }
    Ok(())
}

/// One line for an event-source error, with a URL where it helps.
fn describe_for(url: &Url, error: &Error) -> String {
    match error {
        Error::Connect(source) if source.is_connect() => {
            format!("cannot connect to {url}: {}", root_cause(source))
        }
        Error::Connect(source) if source.is_timeout() => {
            format!("{url}: no answer in time: {}", root_cause(source))
        }
        Error::Connect(source) if source.is_redirect() => {
            format!("{url}: {}", root_cause(source))
        }
        // Connected and sent the request, but what came back was no HTTP
        // answer (closed early, not HTTP at all).
        Error::Connect(source) => format!("{url}: no valid HTTP answer: {}", root_cause(source)),
        Error::Request(source) => match source.url().filter(|target| *target != url) {
            Some(target) => format!(
                "{url} redirected to {target}, which cannot be followed: {}",
                root_cause(source)
            ),
            None => describe(error),
        },
        Error::Parse(herald_sse::Error::EventTooLarge { limit }) => format!(
            "{url}: an event (or line) is larger than {limit} bytes; raise --max-event-size to \
             accept it"
        ),
        Error::Certificate(source) => format!("{url}: {error}: {}", root_cause(source)),
        Error::Status { .. } | Error::ContentType { .. } | Error::Ended => {
            format!("{url}: {error}")
        }
        _ => describe(error),
    }
}

/// The error, then its innermost cause if it has one: one line.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    match error.source() {
        Some(source) => format!("{error}: {}", root_cause(source)),
        None => error.to_string(),
    }
}

/// The innermost cause of an error, which names the actual problem
/// (`Connection refused`, `failed to lookup address information`).
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string().replace('\n', " ")
}
