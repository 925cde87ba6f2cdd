//! `herald publish`: publishes one update to a Mercure hub and prints its id.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use herald_client::{PublishError, Publisher, Update};

use crate::commands::subscribe::{parse_url, root_cause};
use crate::error::CliError;

/// Arguments of `herald publish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The hub's publish URL (usually ending in `/.well-known/mercure`).
    #[arg(long, value_name = "URL")]
    hub: String,
    /// A topic of the update: the first is canonical, the others alternates.
    #[arg(long = "topic", value_name = "TOPIC", required = true)]
    topics: Vec<String>,
    /// The data of the update (default: read from --data-file, else stdin).
    #[arg(long, value_name = "DATA", conflicts_with = "data_file")]
    data: Option<String>,
    /// A file holding the data of the update.
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// The event id (the hub assigns one when absent).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The SSE event type.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// The reconnection time subscribers should use, in milliseconds.
    #[arg(long, value_name = "MS")]
    retry: Option<String>,
    /// Send the update only to subscribers authorized for its topics.
    #[arg(long)]
    private: bool,
    /// A JWT with publish rights, sent as `Authorization: Bearer <JWT>`.
    #[arg(long, value_name = "JWT", env = "HERALD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How long the publish may take, from connecting to the end of the answer.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    timeout: Duration,
}

/// A humantime duration greater than zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("it must be longer than 0s".to_owned()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(format!("{error} (expected a duration such as 10s or 2m)")),
    }
}

/// Runs `herald publish`.
pub async fn run(args: Args) -> Result<(), CliError> {
    let hub = parse_url(&args.hub, "--hub")?;
    let retry = args
        .retry
        .as_deref()
        .map(|value| {
            value.parse::<u64>().map_err(|_| {
                CliError::Usage(format!(
                    "invalid --retry '{value}': expected a number of milliseconds"
                ))
            })
        })
        .transpose()?;
    let data = match (args.data, &args.data_file) {
        (Some(data), _) => data,
        (None, Some(path)) => tokio::fs::read_to_string(path).await.map_err(|error| {
            CliError::Runtime(format!("cannot read {}: {error}", path.display()))
        })?,
        (None, None) => {
            let read = tokio::task::spawn_blocking(|| {
                let mut data = String::new();
                std::io::stdin().read_to_string(&mut data).map(|_| data)
            });
            read.await
                .map_err(|error| CliError::Runtime(format!("cannot read stdin: {error}")))?
                .map_err(|error| CliError::Runtime(format!("cannot read stdin: {error}")))?
        }
    };
    let update = Update {
        topics: args.topics,
        data,
        id: args.id,
        event_type: args.event_type,
        retry,
        private: args.private,
    };
    let mut publisher = Publisher::new(hub.clone()).with_timeout(args.timeout);
    // An empty token (`HERALD_TOKEN=` in the environment) is none: the hub
    // then says a token is needed, rather than that the header is malformed.
    let token = args.token.filter(|t| !t.trim().is_empty());
    // The URL's credentials go out as an `Authorization` header too: the hub
    // would refuse a request carrying two.
    if token.is_some() && (!hub.username().is_empty() || hub.password().is_some()) {
        return Err(CliError::Usage(
            "--token (or HERALD_TOKEN) and the --hub URL's user:password@ would both send an \
             Authorization header: give one"
                .into(),
        ));
    }
    if let Some(token) = token {
        publisher = publisher.with_token(token);
    }
    let id = publisher
        .publish(&update)
        .await
        .map_err(|error| match &error {
            PublishError::Request(source) => CliError::Runtime(format!(
                "cannot reach the hub at {hub}: {}",
                root_cause(source)
            )),
            PublishError::NoAnswer(source) | PublishError::CutShort { source, .. } => {
                CliError::Runtime(format!("{hub}: {error}: {}", root_cause(source)))
            }
            PublishError::InvalidToken => CliError::Usage(format!("invalid --token: {error}")),
            PublishError::NoTopic | PublishError::UnsupportedScheme(_) => {
                CliError::Usage(error.to_string())
            }
            PublishError::NotAHub { content_type } => CliError::Runtime(format!(
                "the server at {hub} answered 200 with {content_type}, not a Mercure hub's event id"
            )),
            _ => CliError::Runtime(error.to_string()),
        })?;
    let id = crate::commands::escape_controls(&id);
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{id}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // The reader went away (`herald publish … | true`): it wanted no id.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(CliError::Runtime(format!(
            "published as {id}, but cannot write the id to stdout: {error}"
        ))),
    }
}
