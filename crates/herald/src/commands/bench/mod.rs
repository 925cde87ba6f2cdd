//! `herald bench`: a load generator and checker for any Mercure hub.
//!
//! Map: [`dial`] opens the connections (TCP, or TLS for an https hub);
//! [`http2`] speaks HTTP/2 on them when the run does;
//! [`wire`] reads responses without I/O (head, de-chunker, frame ends,
//! the payload's `seq=`/`t=`/`s=` fields); [`tally`] is the per-subscriber
//! loss/duplicate/reorder accounting; [`stats`] the histograms and `/proc`
//! readings; [`subscriber`] the raw-TCP subscriber task; [`publish`] the
//! publisher task; [`run`] the steps scenarios are made of (connect, publish,
//! drain); [`report`] the table and the JSON document. The scenarios
//! themselves (`fanout`, `throughput`, `idle`, `storm`) are at the bottom of
//! this file.

pub mod dial;
pub mod http2;
pub mod publish;
pub mod report;
pub mod run;
pub mod stats;
pub mod subscriber;
pub mod tally;
pub mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use indicatif::{ProgressBar, ProgressDrawTarget};
use rustls::pki_types::ServerName;
use serde_json::json;
use tokio::time::Instant;

use self::dial::{DialError, Dialer, Protocol};
use self::publish::{Job, Limit, PublishFormat, Sink};
use self::report::{Idle, Report, Server, Storm};
use self::run::{Clock, Ctx, Live};
use self::stats::{Summary, cpu_time, histogram, micros, rss_kib};
use self::subscriber::Target;
use crate::commands::subscribe::parse_url;
use crate::error::CliError;

/// Arguments of `herald bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// N subscribers on one topic receive M events from one publisher.
    Fanout(FanoutArgs),
    /// K publishers over T topics, one subscriber (or more) per topic.
    Throughput(ThroughputArgs),
    /// Memory per idle subscriber, read from the server's VmRSS.
    Idle(IdleArgs),
    /// Connect/disconnect churn, while a few steady subscribers measure delivery.
    Storm(StormArgs),
}

/// Flags every scenario takes.
#[derive(Debug, clap::Args)]
struct Common {
    /// The hub URL, http or https (subscribers and publishers speak
    /// HTTP/1.1 either way, over TLS for https, unless --http2).
    #[arg(long, value_name = "URL")]
    hub: String,
    /// Speak HTTP/2 instead of HTTP/1.1: negotiated by ALPN with an https
    /// hub, with prior knowledge (h2c) with an http one. Each subscriber and
    /// each publisher holds a connection of its own.
    #[arg(long)]
    http2: bool,
    /// PEM certificates of authorities to trust besides the system's, for
    /// an https hub whose certificate is self-signed or from a private
    /// authority (`SSL_CERT_FILE` replaces the system's instead).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// A JWT with publish rights.
    #[arg(
        long,
        value_name = "JWT",
        env = "HERALD_PUBLISHER_TOKEN",
        hide_env_values = true
    )]
    publisher_token: Option<String>,
    /// A JWT with subscribe rights (subscribers are anonymous without one).
    #[arg(
        long,
        value_name = "JWT",
        env = "HERALD_SUBSCRIBER_TOKEN",
        hide_env_values = true
    )]
    subscriber_token: Option<String>,
    /// A file of JWTs with subscribe rights, one per line (blank lines are
    /// skipped): subscriber n presents the n-th, wrapping around, as the
    /// users of a deployment each present their own.
    #[arg(long, value_name = "FILE", conflicts_with = "subscriber_token")]
    subscriber_tokens: Option<PathBuf>,
    /// Print one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// The hub's process id, to report its CPU time and memory (VmRSS) from /proc.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// The subscription query parameter naming a topic: `match` (herald,
    /// current drafts) or `topic` (older hubs).
    #[arg(long, value_name = "NAME", default_value = "match")]
    match_param: String,
    /// How to publish: `mercure` (form `topic` + `data`) or `raw` (the data
    /// as the body of `POST <hub>?<match-param>=<topic>`, for nchan).
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "mercure")]
    publish_format: PublishFormat,
    /// Topics are `<PREFIX>/<run id>/<n>`.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "https://herald.bench/topics"
    )]
    topic_prefix: String,
    /// Connection attempts in flight at once while subscribers connect.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = count())]
    connect_concurrency: usize,
    /// Longest wait for a connection's response head (and for a publish).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    timeout: Duration,
    /// Longest wait, after the last publish, for outstanding deliveries.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    drain_timeout: Duration,
}

#[derive(Debug, clap::Args)]
struct FanoutArgs {
    #[command(flatten)]
    common: Common,
    /// Subscribers on the topic.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = count())]
    subscribers: usize,
    /// Events to publish.
    #[arg(long, value_name = "M", default_value_t = 200, value_parser = events())]
    events: u64,
    /// Bytes of data per event (at least the payload's own fields).
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = size())]
    size: usize,
    /// Events per second (as fast as possible when omitted).
    #[arg(long, value_name = "PER_SECOND", value_parser = rate)]
    rate: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct ThroughputArgs {
    #[command(flatten)]
    common: Common,
    /// Publishers (each publishes its topics in turn, one request at a time).
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = count())]
    publishers: usize,
    /// Topics.
    #[arg(long, value_name = "T", default_value_t = 4, value_parser = count())]
    topics: usize,
    /// Subscribers per topic.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = count())]
    subscribers_per_topic: usize,
    /// How long to publish (default 10s unless --events is given).
    #[arg(long, value_name = "DURATION", value_parser = duration, conflicts_with = "events")]
    duration: Option<Duration>,
    /// Events per publisher, instead of a duration.
    #[arg(long, value_name = "N", value_parser = events())]
    events: Option<u64>,
    /// Bytes of data per event.
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = size())]
    size: usize,
    /// Events per second, all publishers together (as fast as possible when omitted).
    #[arg(long, value_name = "PER_SECOND", value_parser = rate)]
    rate: Option<f64>,
}

#[derive(Debug, clap::Args)]
struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Idle subscribers to connect.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = count())]
    subscribers: usize,
    /// How long to wait after connecting before reading the server's memory.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    settle: Duration,
    /// Events published afterwards to each topic, to check every subscriber
    /// is still live.
    #[arg(long, value_name = "M", default_value_t = 1, value_parser = events())]
    events: u64,
    /// Topics the subscribers spread over, subscriber n on topic n mod T
    /// (as many as subscribers: each on a topic of its own, as with a
    /// topic per user).
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = count())]
    topics: usize,
}

#[derive(Debug, clap::Args)]
struct StormArgs {
    #[command(flatten)]
    common: Common,
    /// Connections to open and close: at least this many, and more until
    /// the steady subscribers' events are all published, so that every
    /// delivery is measured under churn.
    #[arg(long, value_name = "N", default_value_t = 5000, value_parser = events())]
    connects: u64,
    /// Connections in flight at once.
    #[arg(long, value_name = "C", default_value_t = 50, value_parser = count())]
    concurrency: usize,
    /// Steady subscribers measuring delivery during the storm (0 for none).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = count())]
    steady: usize,
    /// Events published to the steady subscribers during the storm.
    #[arg(long, value_name = "M", default_value_t = 200, value_parser = events())]
    events: u64,
    /// Events per second to the steady subscribers.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 100.0, value_parser = rate)]
    rate: f64,
    /// Bytes of data per event.
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = size())]
    size: usize,
}

/// The most subscribers, publishers, topics or connections in flight a flag
/// may ask for: far above what a machine's open-file limit allows, far below
/// the counts whose products (sockets needed, deliveries expected) overflow.
const MAX_COUNT: u64 = 1_000_000;

/// The most events (or storm connections) a flag may ask for: years of
/// publishing at any rate a hub sustains, and times [`MAX_COUNT`]
/// subscribers still a count of deliveries that fits in a `u64`.
const MAX_EVENTS: u64 = 1_000_000_000;

/// The largest event data a flag may ask for (2 MiB): half the most a
/// subscriber's buffer grows to for one frame, leaving room for the frame's
/// field names, id and chunk sizes; a larger event could never be received.
const MAX_SIZE: u64 = (subscriber::MAX_BUFFER / 2) as u64;

/// The highest rate a flag may ask for, in events per second: the interval
/// between two events (a microsecond or more) must not round to zero.
const MAX_RATE: f64 = 1_000_000.0;

/// The lowest rate a flag may ask for: an event every 1,000 seconds, so that
/// the interval, split among [`MAX_COUNT`] publishers, is still a duration.
const MIN_RATE: f64 = 0.001;

/// The longest duration a flag may ask for (a week): far beyond any run, far
/// below the instants the clock cannot reach.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Parses a count of subscribers, publishers, topics or connections in
/// flight (zero is refused by each scenario, naming what it needs).
fn count() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(0..=MAX_COUNT)
}

/// Parses a count of events or connections to make.
fn events() -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::new().range(0..=MAX_EVENTS)
}

/// Parses a size of event data, in bytes.
fn size() -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(0..=MAX_SIZE)
}

/// Parses a rate in events per second, from [`MIN_RATE`] to [`MAX_RATE`].
fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (MIN_RATE..=MAX_RATE).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "expected a number of events per second from {MIN_RATE} to {MAX_RATE}"
        )),
    }
}

/// Parses a duration such as `10s` or `2m`, at most [`MAX_DURATION`].
fn duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e} (expected a duration such as 10s or 2m)"))?;
    if duration > MAX_DURATION {
        return Err(format!(
            "expected at most {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(duration)
}

/// Sockets beyond the subscribers: publishers' pool, the runtime, stdio.
const FILE_HEADROOM: u64 = 128;

/// Runs `herald bench`.
pub async fn run(args: Args) -> Result<(), CliError> {
    let (common, sockets) = match &args.scenario {
        // In u64: the flags' bounds keep these sums and products far from overflow.
        Scenario::Fanout(a) => (&a.common, a.subscribers as u64),
        Scenario::Throughput(a) => (
            &a.common,
            a.topics as u64 * a.subscribers_per_topic as u64 + a.publishers as u64,
        ),
        Scenario::Idle(a) => (&a.common, a.subscribers as u64),
        Scenario::Storm(a) => (&a.common, a.steady as u64 + a.concurrency as u64),
    };
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    if sockets + FILE_HEADROOM > limit {
        return Err(CliError::Usage(format!(
            "this run needs about {} open files but the limit is {limit}; raise it (ulimit -n) or use fewer connections",
            sockets + FILE_HEADROOM
        )));
    }
    let ctx = context(common).await?;
    let json = common.json;
    let server_pid = common.server_pid;
    let topic_base = format!(
        "{}/{}",
        common.topic_prefix.trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    );
    let server_before = ServerReading::take(server_pid);
    if let Some(pid) = server_pid
        && server_before.is_none()
    {
        // Found out before the run, not after minutes of it.
        return Err(CliError::Runtime(format!(
            "cannot read /proc/{pid}: is --server-pid a running process on this machine?"
        )));
    }
    let scenario = async {
        match args.scenario {
            Scenario::Fanout(a) => fanout(&ctx, a, &topic_base).await,
            Scenario::Throughput(a) => throughput(&ctx, a, &topic_base).await,
            Scenario::Idle(a) => idle(&ctx, a, &topic_base, server_before.as_ref()).await,
            Scenario::Storm(a) => storm(&ctx, a, &topic_base).await,
        }
    };
    // Said, rather than the process vanishing mid-bar: a run cut short has
    // no figures worth printing (deliveries still on their way would read
    // as lost).
    let (mut report, title) = tokio::select! {
        done = scenario => done?,
        _ = tokio::signal::ctrl_c() => {
            ctx.progress.finish_and_clear();
            return Err(CliError::Interrupted(
                "interrupted (Ctrl-C) before the end of the run: nothing is reported".into(),
            ));
        }
    };
    ctx.progress.finish_and_clear();
    if let (Some(pid), Some(before)) = (server_pid, &server_before) {
        let after = ServerReading::take(Some(pid));
        let server = report.server.get_or_insert_with(|| Server {
            pid,
            ..Server::default()
        });
        server.rss_kib_before = server.rss_kib_before.or(before.rss_kib);
        if server.rss_kib_after.is_none() {
            server.rss_kib_after = after.as_ref().and_then(|a| a.rss_kib);
        }
        let wall_s = after
            .as_ref()
            .map(|a| a.at.saturating_duration_since(before.at).as_secs_f64());
        server.cpu_s = match (before.cpu, after.and_then(|a| a.cpu)) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before).as_secs_f64()),
            _ => None,
        };
        server.cpu_percent = match (server.cpu_s, wall_s) {
            (Some(cpu), Some(wall)) if wall > 0.0 => Some(100.0 * cpu / wall),
            _ => None,
        };
    } else if let Some(pid) = server_pid {
        report.problems.push(format!(
            "cannot read /proc/{pid}: is --server-pid a running process on this machine?"
        ));
    }
    report.hub = ctx.target.hub.to_string();
    report.cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    report.ok = report.problems.is_empty();
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::Runtime(format!("cannot encode the report: {e}")))?;
        crate::commands::print_line(&text)?;
    } else {
        let table = report.table(&title);
        crate::commands::print_line(table.strip_suffix('\n').unwrap_or(&table))?;
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::Runtime(format!(
            "the run failed: {}",
            report.problems.join("; ")
        )))
    }
}

/// The hub's CPU time and memory at one moment.
struct ServerReading {
    cpu: Option<Duration>,
    rss_kib: Option<u64>,
    at: std::time::Instant,
}

impl ServerReading {
    fn take(pid: Option<u32>) -> Option<Self> {
        let pid = pid?.to_string();
        let reading = Self {
            cpu: cpu_time(&pid),
            rss_kib: rss_kib(&pid),
            at: std::time::Instant::now(),
        };
        (reading.cpu.is_some() || reading.rss_kib.is_some()).then_some(reading)
    }
}

async fn context(common: &Common) -> Result<Ctx, CliError> {
    let hub = parse_url(&common.hub, "--hub")?;
    if common.ca_cert.is_some() && hub.scheme() != "https" {
        return Err(CliError::Usage(format!(
            "--ca-cert is for an https hub, and --hub '{hub}' is not one"
        )));
    }
    if common.match_param.is_empty() {
        return Err(CliError::Usage("--match-param cannot be empty".into()));
    }
    // Zero would fail every connection and publish at once, or count
    // every event still on its way as lost.
    for (flag, value) in [
        ("--timeout", common.timeout),
        ("--drain-timeout", common.drain_timeout),
    ] {
        if value.is_zero() {
            return Err(CliError::Usage(format!("{flag} must be longer than 0")));
        }
    }
    if common.connect_concurrency == 0 {
        return Err(CliError::Usage(
            "--connect-concurrency must be at least 1".into(),
        ));
    }
    let host = hub.host_str().unwrap_or_default().to_owned();
    let port = hub.port_or_known_default().unwrap_or(80);
    let addr = match hub.host() {
        // Looked up as written, `[::1]` is a name no resolver knows.
        Some(url::Host::Ipv6(ip)) => std::net::SocketAddr::from((ip, port)),
        _ => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| CliError::Runtime(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| CliError::Runtime(format!("cannot resolve {host}: no address")))?,
    };
    let protocol = if common.http2 {
        Protocol::Http2
    } else {
        Protocol::Http1
    };
    let dialer = if hub.scheme() == "https" {
        tls_dialer(
            &hub,
            addr,
            common.ca_cert.as_deref(),
            common.timeout,
            protocol,
        )
        .await?
    } else {
        Dialer::plain(addr, protocol)
    };
    let host_header = match hub.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let publisher = Sink {
        dialer: dialer.clone(),
        host: host_header.clone(),
        hub: hub.clone(),
        format: common.publish_format,
        param: common.match_param.clone(),
        token: common.publisher_token.clone(),
        timeout: common.timeout,
    };
    // Drawn only when stderr is a terminal, a few times a second (cheap).
    let progress = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    Ok(Ctx {
        target: Arc::new(Target {
            dialer,
            host: host_header,
            hub,
            match_param: common.match_param.clone(),
            tokens: subscriber_tokens(common)?,
        }),
        publisher: Arc::new(publisher),
        timeout: common.timeout,
        drain_timeout: common.drain_timeout,
        connect_concurrency: common.connect_concurrency,
        server_pid: common.server_pid,
        progress,
    })
}

/// Connections to an https hub at `addr`. One is opened at once: a
/// certificate the bench does not trust, or a handshake not done within
/// `timeout`, fails the run here, in one line saying so, rather than as
/// thousands of failed subscribers. A hub that cannot be reached is left to
/// the run, which reports it as for http.
async fn tls_dialer(
    hub: &url::Url,
    addr: std::net::SocketAddr,
    ca_cert: Option<&Path>,
    timeout: Duration,
    protocol: Protocol,
) -> Result<Dialer, CliError> {
    let config = dial::client_config(ca_cert, protocol).map_err(|e| match ca_cert {
        Some(_) => CliError::Usage(format!("invalid --ca-cert: {e}")),
        None => CliError::Runtime(e),
    })?;
    let name = match hub.host() {
        Some(url::Host::Ipv4(ip)) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
        Some(url::Host::Ipv6(ip)) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
        Some(url::Host::Domain(name)) => ServerName::try_from(name.to_owned())
            .map_err(|e| CliError::Usage(format!("invalid --hub '{hub}': {e}")))?,
        None => return Err(CliError::Usage(format!("invalid --hub '{hub}': no host"))),
    };
    let dialer = Dialer::tls(addr, name, Arc::new(config), protocol);
    match tokio::time::timeout(timeout, dialer.connect()).await {
        Err(_) => Err(CliError::Runtime(format!(
            "cannot open a TLS connection to {hub}: no TLS handshake within {} (--timeout)",
            humantime::format_duration(timeout)
        ))),
        Ok(Ok(_) | Err(DialError::Connect(_))) => Ok(dialer),
        Ok(Err(error)) => Err(CliError::Runtime(format!(
            "cannot open a TLS connection to {hub}: {error}"
        ))),
    }
}

/// The tokens subscribers present: `--subscriber-tokens`' lines, or
/// `--subscriber-token`, or none.
fn subscriber_tokens(common: &Common) -> Result<Arc<[String]>, CliError> {
    match (&common.subscriber_tokens, &common.subscriber_token) {
        (Some(path), _) => read_tokens(path),
        (None, Some(token)) => Ok(Arc::from([token.clone()])),
        (None, None) => Ok(Arc::from([])),
    }
}

/// The non-blank lines of the file at `path`, each a token.
fn read_tokens(path: &Path) -> Result<Arc<[String]>, CliError> {
    let invalid = |reason: String| {
        CliError::Usage(format!(
            "invalid --subscriber-tokens '{}': {reason}",
            path.display()
        ))
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
    let mut tokens = Vec::new();
    for (number, line) in (1..).zip(text.lines()) {
        let line = line.trim();
        if line.chars().any(char::is_whitespace) {
            return Err(invalid(format!(
                "line {number} holds more than one word; expected one token per line"
            )));
        }
        if !line.is_empty() {
            tokens.push(line.to_owned());
        }
    }
    if tokens.is_empty() {
        return Err(invalid("it holds no token".into()));
    }
    Ok(tokens.into())
}

fn rate_text(rate: Option<f64>) -> String {
    rate.map_or("as fast as possible".to_owned(), |r| format!("at {r}/s"))
}

/// `fanout`: N subscribers on one topic, M events from one publisher.
async fn fanout(ctx: &Ctx, a: FanoutArgs, base: &str) -> Result<(Report, String), CliError> {
    // A run with nothing to deliver would report "ok" having measured nothing.
    if a.subscribers == 0 || a.events == 0 {
        return Err(CliError::Usage(
            "--subscribers and --events must be at least 1".into(),
        ));
    }
    let rate = a.rate;
    let topics = vec![format!("{base}/0")];
    let mut report = Report {
        scenario: "fanout",
        parameters: BTreeMap::from([
            ("subscribers", json!(a.subscribers)),
            ("events", json!(a.events)),
            ("size", json!(a.size)),
            ("rate", json!(rate)),
        ]),
        ..Report::default()
    };
    let title = format!(
        "{} subscribers × {} events of {} bytes, {}",
        a.subscribers,
        a.events,
        a.size,
        rate_text(rate)
    );
    let (live, connect) = Live::connect(ctx, &topics, vec![0; a.subscribers], vec![0]).await;
    report.phases.push(connect);
    let job = Job {
        streams: vec![(0, topics[0].clone())],
        size: a.size,
        rate,
        limit: Limit::Events(a.events),
    };
    deliver(ctx, live, vec![job], &mut report).await;
    Ok((report, title))
}

/// The problem reported when no subscriber connected.
const NO_SUBSCRIBER: &str = "no subscriber connected, so nothing was published";

/// Publishes, drains and fills the report; returns when done.
async fn deliver(ctx: &Ctx, live: Live, jobs: Vec<Job>, report: &mut Report) {
    if live.connected() == 0 {
        report.problems.push(NO_SUBSCRIBER.to_owned());
        live.abandon(ctx).await.into_report(report);
        return;
    }
    let published = live.publish(ctx, jobs).await;
    note_server_rss(ctx, report);
    let (drained, phase) = live
        .drain(ctx, &published.published, &published.clock, "deliver")
        .await;
    report.phases.push(phase);
    add_publish(report, published.report);
    drained.into_report(report);
}

/// Reads the hub's memory while every subscriber is still connected
/// (`idle` reads it earlier, after its settle time).
fn note_server_rss(ctx: &Ctx, report: &mut Report) {
    if let Some(pid) = ctx.server_pid
        && report.server.is_none()
    {
        report.server = Some(Server {
            pid,
            rss_kib_after: rss_kib(&pid.to_string()),
            ..Server::default()
        });
    }
}

fn add_publish(report: &mut Report, publish: report::Publish) {
    if publish.errors > 0 {
        report.problems.push(format!(
            "{} publishes failed (first: {})",
            publish.errors,
            publish.first_error.as_deref().unwrap_or("?")
        ));
    }
    report.publish = Some(publish);
}

/// `throughput`: K publishers over T topics.
async fn throughput(
    ctx: &Ctx,
    a: ThroughputArgs,
    base: &str,
) -> Result<(Report, String), CliError> {
    if a.publishers == 0 || a.topics == 0 || a.subscribers_per_topic == 0 {
        return Err(CliError::Usage(
            "--publishers, --topics and --subscribers-per-topic must be at least 1".into(),
        ));
    }
    let rate = a.rate;
    if a.events == Some(0) || a.duration.is_some_and(|d| d.is_zero()) {
        return Err(CliError::Usage(
            "--events must be at least 1 and --duration longer than 0".into(),
        ));
    }
    let limit = match (a.events, a.duration) {
        (Some(events), _) => Limit::Events(events),
        (None, Some(duration)) => Limit::Duration(duration),
        (None, None) => Limit::Duration(Duration::from_secs(10)),
    };
    let topics: Vec<String> = (0..a.topics).map(|t| format!("{base}/{t}")).collect();
    // A stream is one publisher on one topic: topic t belongs to publisher
    // t % K when there are at least as many topics as publishers; otherwise
    // publisher p publishes topic p % T (several publishers per topic, each
    // its own stream).
    let streams = a.topics.max(a.publishers);
    let stream_topics: Vec<usize> = (0..streams).map(|s| s % a.topics).collect();
    let jobs: Vec<Job> = (0..a.publishers)
        .map(|p| Job {
            streams: (0..streams)
                .filter(|s| s % a.publishers == p)
                .map(|s| (s as u32, topics[stream_topics[s]].clone()))
                .collect(),
            size: a.size,
            rate: rate.map(|r| r / a.publishers as f64),
            limit,
        })
        .collect();
    let subscriber_topics: Vec<usize> = (0..a.topics)
        .flat_map(|t| std::iter::repeat_n(t, a.subscribers_per_topic))
        .collect();
    let mut report = Report {
        scenario: "throughput",
        parameters: BTreeMap::from([
            ("publishers", json!(a.publishers)),
            ("topics", json!(a.topics)),
            ("subscribers_per_topic", json!(a.subscribers_per_topic)),
            ("events", json!(a.events)),
            (
                "duration_s",
                json!(match limit {
                    Limit::Duration(d) => Some(d.as_secs_f64()),
                    Limit::Events(_) => None,
                }),
            ),
            ("size", json!(a.size)),
            ("rate", json!(rate)),
        ]),
        ..Report::default()
    };
    let title = format!(
        "{} publishers over {} topics ({} subscriber{} each), {}, events of {} bytes, {}",
        a.publishers,
        a.topics,
        a.subscribers_per_topic,
        if a.subscribers_per_topic == 1 {
            ""
        } else {
            "s"
        },
        match limit {
            Limit::Events(n) => format!("{n} events per publisher"),
            Limit::Duration(d) => format!("for {}", humantime::format_duration(d)),
        },
        a.size,
        rate_text(rate)
    );
    let (live, connect) = Live::connect(ctx, &topics, subscriber_topics, stream_topics).await;
    report.phases.push(connect);
    deliver(ctx, live, jobs, &mut report).await;
    Ok((report, title))
}

/// `idle`: memory per idle subscriber.
async fn idle(
    ctx: &Ctx,
    a: IdleArgs,
    base: &str,
    server_before: Option<&ServerReading>,
) -> Result<(Report, String), CliError> {
    let Some(pid) = a.common.server_pid else {
        return Err(CliError::Usage(
            "idle needs --server-pid (the hub's process id, to read its memory)".into(),
        ));
    };
    let Some(before) = server_before.and_then(|b| b.rss_kib) else {
        return Err(CliError::Runtime(format!(
            "cannot read VmRSS from /proc/{pid}/status: is the hub running on this machine?"
        )));
    };
    if a.topics == 0 || a.subscribers == 0 {
        return Err(CliError::Usage(
            "--subscribers and --topics must be at least 1".into(),
        ));
    }
    if a.events == 0 {
        return Err(CliError::Usage(
            "--events must be at least 1: those events show every idle subscriber is still live"
                .into(),
        ));
    }
    let tool_before = rss_kib("self");
    let topics: Vec<String> = (0..a.topics).map(|t| format!("{base}/{t}")).collect();
    let mut report = Report {
        scenario: "idle",
        parameters: BTreeMap::from([
            ("subscribers", json!(a.subscribers)),
            ("topics", json!(a.topics)),
            ("settle_s", json!(a.settle.as_secs_f64())),
            ("events", json!(a.events)),
        ]),
        ..Report::default()
    };
    let title = format!(
        "{} idle subscribers{}, memory read {} after connecting",
        a.subscribers,
        match a.topics {
            1 => String::new(),
            t => format!(" over {t} topics"),
        },
        humantime::format_duration(a.settle)
    );
    let subscriber_topics = (0..a.subscribers).map(|n| n % a.topics).collect();
    let (live, connect) =
        Live::connect(ctx, &topics, subscriber_topics, (0..a.topics).collect()).await;
    report.phases.push(connect);
    ctx.progress.set_message("settle");
    tokio::time::sleep(a.settle).await;
    let after = rss_kib(&pid.to_string());
    let tool_after = rss_kib("self");
    let connected = live.connected();
    let per = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if connected > 0 => Some((a as f64 - b as f64) / connected as f64),
        _ => None,
    };
    report.idle = Some(Idle {
        server_kib_per_subscriber: per(Some(before), after),
        tool_kib_per_subscriber: per(tool_before, tool_after),
    });
    report.server = Some(Server {
        pid,
        rss_kib_before: Some(before),
        rss_kib_after: after,
        ..Server::default()
    });
    let job = Job {
        streams: (0..a.topics)
            .map(|t| (t as u32, topics[t].clone()))
            .collect(),
        size: 64,
        rate: None,
        limit: Limit::Events(a.events.saturating_mul(a.topics as u64)),
    };
    deliver(ctx, live, vec![job], &mut report).await;
    Ok((report, title))
}

/// `storm`: connect/disconnect churn, with steady subscribers measuring delivery.
async fn storm(ctx: &Ctx, a: StormArgs, base: &str) -> Result<(Report, String), CliError> {
    if a.concurrency == 0 || a.connects == 0 {
        return Err(CliError::Usage(
            "--connects and --concurrency must be at least 1".into(),
        ));
    }
    if a.steady > 0 && a.events == 0 {
        return Err(CliError::Usage(
            "--events must be at least 1 with steady subscribers (or use --steady 0)".into(),
        ));
    }
    let events = if a.steady == 0 { 0 } else { a.events };
    let rate = a.rate;
    let topics = vec![format!("{base}/0")];
    let mut report = Report {
        scenario: "storm",
        parameters: BTreeMap::from([
            ("connects", json!(a.connects)),
            ("concurrency", json!(a.concurrency)),
            ("steady", json!(a.steady)),
            ("events", json!(events)),
            ("rate", json!(rate)),
            ("size", json!(a.size)),
        ]),
        ..Report::default()
    };
    let title = if a.steady == 0 {
        format!("{} connects, {} at a time", a.connects, a.concurrency)
    } else {
        format!(
            "{} connects or more, {} at a time, while {} steady subscribers receive {} events at {}/s",
            a.connects, a.concurrency, a.steady, events, rate
        )
    };
    let (live, connect) = Live::connect(ctx, &topics, vec![0; a.steady], vec![0]).await;
    report.phases.push(connect);
    if a.steady > 0 && live.connected() == 0 {
        report.problems.push(NO_SUBSCRIBER.to_owned());
        live.abandon(ctx).await.into_report(&mut report);
        return Ok((report, title));
    }
    let job = Job {
        streams: vec![(0, topics[0].clone())],
        size: a.size,
        rate: Some(rate),
        limit: Limit::Events(events),
    };
    let churn_clock = Clock::start();
    let publishing = AtomicBool::new(true);
    let (published, storm) = tokio::join!(
        async {
            let published = live.publish(ctx, vec![job]).await;
            publishing.store(false, Ordering::Relaxed);
            published
        },
        churn(
            ctx,
            &topics[0],
            a.connects,
            a.concurrency,
            a.steady,
            &publishing
        )
    );
    report.phases.push(churn_clock.phase("storm"));
    note_server_rss(ctx, &mut report);
    // The storm phase already covers the publishing.
    let (drained, _) = live
        .drain(ctx, &published.published, &published.clock, "deliver")
        .await;
    add_publish(&mut report, published.report);
    drained.into_report(&mut report);
    if storm.succeeded == 0 && storm.connects > 0 {
        report
            .problems
            .push("no storm connection succeeded".to_owned());
    }
    report.storm = Some(storm);
    Ok((report, title))
}

/// Opens and closes `connects` subscriptions, `concurrency` at a time, and
/// more while `publishing` holds, so that every delivery to the steady
/// subscribers is measured under churn.
async fn churn(
    ctx: &Ctx,
    topic: &str,
    connects: u64,
    concurrency: usize,
    first: usize,
    publishing: &AtomicBool,
) -> Storm {
    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let _tracker = {
        let done = done.clone();
        ctx.track("storm", connects, move || done.load(Ordering::Relaxed))
    };
    // The workers are spawned tasks: they learn that publishing ended from
    // a flag of their own, set when `publishing` turns false.
    let more = Arc::new(AtomicBool::new(true));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (issued, done, more) = (issued.clone(), done.clone(), more.clone());
            let target = ctx.target.clone();
            let timeout = ctx.timeout;
            let topic = topic.to_owned();
            tokio::spawn(async move {
                let mut latency = histogram();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                loop {
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    if n >= connects && !more.load(Ordering::Relaxed) {
                        break;
                    }
                    let attempt = Instant::now();
                    let opened = match target.request(first + n as usize, &topic) {
                        Ok(request) => subscriber::open(&target.dialer, &request, timeout).await,
                        Err(error) => Err(error),
                    };
                    match opened {
                        Ok((body, _)) => {
                            latency.saturating_record(micros(attempt.elapsed()));
                            drop(body);
                        }
                        Err(error) => *errors.entry(error.label()).or_default() += 1,
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (latency, errors)
            })
        })
        .collect();
    while publishing.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    more.store(false, Ordering::Relaxed);
    let mut latency = histogram();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for worker in workers {
        if let Ok((worker_latency, worker_errors)) = worker.await {
            let _ = latency.add(&worker_latency);
            for (kind, count) in worker_errors {
                *errors.entry(kind).or_default() += count;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let attempted = done.load(Ordering::Relaxed);
    Storm {
        connects: attempted,
        succeeded: latency.len(),
        per_second: if wall > 0.0 {
            attempted as f64 / wall
        } else {
            0.0
        },
        latency: Summary::of(&latency),
        errors,
    }
}
