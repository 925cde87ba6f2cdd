//! Durable log benchmarks, each against the memory log in the same run.
//!
//! ```sh
//! cargo bench -p herald-server --bench log -- [publish] [replay] [open]
//! ```
//!
//! No scenario named: all three. Each prints a markdown table.
//!
//! - `publish`: a real in-process server on 127.0.0.1:0 per log kind (the
//!   durable one with strict durability, in a temp dir), publishers POSTing
//!   form-encoded updates over loopback HTTP with a pooled client, 1, 8 and
//!   64 at a time; publishes/s, latency, and the durable log's commits.
//! - `replay`: a store of 1,000,000 events (built once, cached), one
//!   subscriber over loopback TCP with `Last-Event-ID: earliest`, counting
//!   frame ends on the socket; also the log read alone.
//! - `open`: the time `DurableLog::open` takes on a store of 10,000,000
//!   events (built once, cached), and the data directory's size.
//!
//! Knobs (environment): `HERALD_BENCH_SECONDS` (publish: measured seconds per
//! configuration, default 5), `HERALD_BENCH_REPLAY_EVENTS` (default
//! 1,000,000), `HERALD_BENCH_OPEN_EVENTS` (default 10,000,000),
//! `HERALD_BENCH_DIR` (where built stores are cached, default
//! `$TMPDIR/herald-log-bench`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::{StreamExt, TryStreamExt};
use herald_hub::{Entry, Log, MemoryLog, ReadLimit, Update};
use herald_server::config::IssuerConfig;
use herald_server::{Config, Herald};
use herald_store::{Durability, DurableLog, FORMAT_MARKER, StoreConfig};
use herald_token::{Action, AuthorizationDetail, MintRequest, SigningKey, TopicMatcher, mint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ISSUER: &str = "herald-bench";
const SECRET: &str = "a bench secret of at least thirty-two bytes";
const REPETITIONS: usize = 3;
const OPENS: usize = 5;
/// The argument that makes this program the child of the unclean-open measure.
const CRASH_CHILD: &str = "__crash-child";
/// About 100 bytes of update data, URL-safe so the form body needs no escaping.
const DATA: &str = "bench-update-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789-abcdefghij";

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(CRASH_CHILD) {
        crash_child(&args.next().expect("a data dir"));
    }
    let scenarios: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| scenarios.is_empty() || scenarios.iter().any(|s| s == name);
    for name in &scenarios {
        if !["publish", "replay", "open"].contains(&name.as_str()) {
            eprintln!("unknown scenario `{name}` (use publish, replay or open)");
            std::process::exit(2);
        }
    }
    // reqwest is built without a default TLS provider (only plain HTTP is used here).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    print_machine();
    if wants("publish") {
        runtime.block_on(publish());
    }
    if wants("replay") {
        runtime.block_on(replay());
    }
    if wants("open") {
        runtime.block_on(open());
    }
    println!("load average at the end: {}", load_average());
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("HERALD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("herald-log-bench"))
}

fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "machine: {cpus} cpus, {model}; load average at the start: {}\n",
        load_average()
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// ---------------------------------------------------------------------------
// A server in this process

/// A running server on 127.0.0.1:0.
struct Server {
    address: SocketAddr,
    hub_url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves a hub on `log`, trusting HS256 tokens from [`ISSUER`].
    async fn start(log: Arc<dyn Log>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let mut config = Config {
            listen: address,
            // As `herald serve`: the figures are the hub's.
            hand_served: true,
            ..Config::default()
        };
        config.auth.algorithms = vec!["HS256".into()];
        config.auth.issuers = vec![IssuerConfig {
            id: ISSUER.into(),
            hs256_secrets: vec![SECRET.into()],
            ..IssuerConfig::default()
        }];
        let (herald, _verifier): (Herald, _) = config
            .build_with_log(log)
            .expect("the configuration builds");
        let router = herald.router();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            herald_server::serve(listener, &herald, router, async {
                let _ = stopped.await;
            })
            .await
        });
        Server {
            address,
            hub_url: config.hub_url().to_string(),
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }

    fn publisher_token(&self) -> String {
        let request = MintRequest::new(ISSUER, self.hub_url.clone()).with_detail(
            AuthorizationDetail::new(vec![Action::Publish], vec![TopicMatcher::exact("*")]),
        );
        mint(
            &request,
            &SigningKey::hs256(SECRET.as_bytes()).expect("key"),
        )
        .expect("a token")
    }
}

fn entry(i: u64) -> Entry {
    Entry::encode(
        Update::new(format!("https://example.com/books/{}", i % 1000), DATA),
        format!("urn:herald-bench:{i:012}"),
        SystemTime::now(),
    )
    .expect("a valid update")
}

// ---------------------------------------------------------------------------
// Statistics

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)))
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn thousands(n: f64) -> String {
    let n = n.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// publish

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    Durable,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Durable => "durable (strict)",
        }
    }
}

struct PublishRun {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// Durable only: commits during the measured window.
    commits: Option<u64>,
    published: u64,
}

async fn publish() {
    let seconds = env_number("HERALD_BENCH_SECONDS", 5);
    let measured = Duration::from_secs(seconds);
    let warm_up = Duration::from_millis(500);
    println!(
        "## publish: {REPETITIONS} repetitions alternating memory/durable, {seconds} s measured (after {} ms warm-up) per configuration\n",
        warm_up.as_millis()
    );
    let concurrencies = [1usize, 8, 64];
    let mut results: Vec<Vec<(Kind, PublishRun)>> =
        concurrencies.iter().map(|_| Vec::new()).collect();
    for repetition in 0..REPETITIONS {
        for (index, &publishers) in concurrencies.iter().enumerate() {
            // Alternate which kind goes first, so neither always runs on a warmer machine.
            let order = if repetition % 2 == 0 {
                [Kind::Memory, Kind::Durable]
            } else {
                [Kind::Durable, Kind::Memory]
            };
            for kind in order {
                let run = publish_run(kind, publishers, warm_up, measured).await;
                eprintln!(
                    "publish rep {} c={publishers} {}: {:.0}/s p50 {} ms p99 {} ms commits {:?}",
                    repetition + 1,
                    kind.name(),
                    run.per_second,
                    ms(run.p50),
                    ms(run.p99),
                    run.commits
                );
                results[index].push((kind, run));
            }
        }
    }
    let mut table = String::from(
        "| publishers | log | publishes/s median (min–max) | p50 ms | p99 ms | commits | updates/commit |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (index, &publishers) in concurrencies.iter().enumerate() {
        let mut medians = [0.0; 2];
        for (slot, kind) in [Kind::Memory, Kind::Durable].into_iter().enumerate() {
            let runs: Vec<&PublishRun> = results[index]
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| r)
                .collect();
            let mut rates: Vec<f64> = runs.iter().map(|r| r.per_second).collect();
            let (lo, hi) = min_max(&rates);
            let rate = median(&mut rates);
            medians[slot] = rate;
            let mut p50: Vec<f64> = runs.iter().map(|r| r.p50.as_secs_f64()).collect();
            let mut p99: Vec<f64> = runs.iter().map(|r| r.p99.as_secs_f64()).collect();
            let (commits, per_commit) = if kind == Kind::Durable {
                let mut commits: Vec<f64> =
                    runs.iter().map(|r| r.commits.unwrap_or(0) as f64).collect();
                let mut per: Vec<f64> = runs
                    .iter()
                    .map(|r| r.published as f64 / r.commits.unwrap_or(0).max(1) as f64)
                    .collect();
                (
                    thousands(median(&mut commits)),
                    format!("{:.1}", median(&mut per)),
                )
            } else {
                ("–".into(), "–".into())
            };
            let _ = writeln!(
                table,
                "| {publishers} | {} | {} ({}–{}) | {:.2} | {:.2} | {commits} | {per_commit} |",
                kind.name(),
                thousands(rate),
                thousands(lo),
                thousands(hi),
                median(&mut p50) * 1e3,
                median(&mut p99) * 1e3,
            );
        }
        let _ = writeln!(
            table,
            "| {publishers} | **durable ÷ memory** | **{:.2}×** | | | | |",
            medians[1] / medians[0]
        );
    }
    println!("{table}");
    println!(
        "(p50/p99: medians over the repetitions of each run's percentile; commits: medians of the durable log's commits during the measured window; updates/commit: publishes in the window ÷ commits)\n"
    );
}

async fn publish_run(
    kind: Kind,
    publishers: usize,
    warm_up: Duration,
    measured: Duration,
) -> PublishRun {
    let dir = tempfile::tempdir().expect("a temp dir");
    let durable = match kind {
        Kind::Memory => None,
        Kind::Durable => Some(Arc::new(
            DurableLog::open(StoreConfig::new(dir.path().join("data"))).expect("the store opens"),
        )),
    };
    let log: Arc<dyn Log> = match &durable {
        Some(durable) => Arc::clone(durable) as Arc<dyn Log>,
        None => Arc::new(MemoryLog::new(100_000)),
    };
    let server = Server::start(log).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(publishers)
        .build()
        .expect("a client");
    let url = server.hub_url.clone();
    let bearer = format!("Bearer {}", server.publisher_token());
    let began = Instant::now();
    let measure_from = began + warm_up;
    let stop_at = measure_from + measured;
    let workers: Vec<_> = (0..publishers)
        .map(|worker| {
            let client = client.clone();
            let url = url.clone();
            let bearer = bearer.clone();
            tokio::spawn(async move {
                let body =
                    format!("topic=https%3A%2F%2Fexample.com%2Fbench%2F{worker}&data={DATA}");
                let mut latencies = Vec::new();
                loop {
                    let start = Instant::now();
                    if start >= stop_at {
                        break;
                    }
                    let response = client
                        .post(&url)
                        .header("authorization", &bearer)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("the publish request");
                    let status = response.status();
                    let _ = response.bytes().await.expect("the publish answer");
                    assert_eq!(status, 200, "publish refused");
                    if start >= measure_from {
                        latencies.push(start.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let commits_before = durable.as_ref().map(|d| d.commits());
    tokio::time::sleep_until(stop_at.into()).await;
    let commits_after = durable.as_ref().map(|d| d.commits());
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("a publisher"));
    }
    latencies.sort_unstable();
    drop(client);
    server.stop().await;
    if let Some(durable) = durable {
        durable.close().expect("the log closes cleanly");
    }
    let published = latencies.len() as u64;
    PublishRun {
        per_second: published as f64 / measured.as_secs_f64(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        commits: commits_after
            .zip(commits_before)
            .map(|(after, before)| after - before),
        published,
    }
}

// ---------------------------------------------------------------------------
// Building (and caching) stores

/// A store of `events` entries in the cache directory, built once: the
/// marker file is written only after a complete fill and a clean close.
async fn cached_store(name: &str, events: u64, batch: usize) -> (PathBuf, Option<Duration>) {
    let dir = cache_dir().join(format!("{name}-{events}"));
    let marker = dir.join("FILLED");
    let expected = format!("{FORMAT_MARKER}; {events} events\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == expected) {
        eprintln!("{name}: reusing the store in {}", dir.display());
        return (dir.join("data"), None);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the cache directory");
    eprintln!(
        "{name}: building a store of {events} events in {}",
        dir.display()
    );
    let data = dir.join("data");
    let mut config = StoreConfig::new(&data);
    config.durability = Durability::Relaxed {
        flush_interval: Duration::from_secs(1),
    };
    config.max_batch = batch;
    let log = DurableLog::open(config).expect("the store opens");
    let began = Instant::now();
    fill(&log, events, batch * 2).await;
    log.close().expect("the log closes cleanly");
    let took = began.elapsed();
    std::fs::write(&marker, expected).expect("the marker");
    eprintln!(
        "{name}: built in {:.1} s ({:.0} events/s)",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    (data, Some(took))
}

/// Appends `events` entries through [`Log::append`], `in_flight` at a time.
async fn fill(log: &dyn Log, events: u64, in_flight: usize) {
    futures_util::stream::iter(0..events)
        .map(|i| log.append(entry(i + 1)))
        .buffer_unordered(in_flight)
        .try_for_each(|_| std::future::ready(Ok(())))
        .await
        .expect("appends succeed");
}

fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut apparent = 0;
    let mut allocated = 0;
    for item in std::fs::read_dir(dir).expect("the data dir").flatten() {
        if let Ok(meta) = item.metadata() {
            apparent += meta.len();
            allocated += meta.blocks() * 512;
        }
    }
    (apparent, allocated)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------
// replay

async fn replay() {
    let events = env_number("HERALD_BENCH_REPLAY_EVENTS", 1_000_000);
    println!(
        "## replay: {} events, one subscriber with `Last-Event-ID: earliest` over loopback TCP, {REPETITIONS} repetitions alternating memory/durable\n",
        thousands(events as f64)
    );
    let (data, built) = cached_store("replay", events, 1024).await;
    let (apparent, allocated) = dir_size(&data);
    match built {
        Some(took) => println!(
            "durable store: built through `Log::append` (relaxed, 2,048 appends in flight, commits of up to 1,024) in {:.1} s ({} events/s); {} MiB apparent, {} MiB allocated\n",
            took.as_secs_f64(),
            thousands(events as f64 / took.as_secs_f64()),
            mib(apparent),
            mib(allocated)
        ),
        None => println!(
            "durable store: reused from the cache; {} MiB apparent, {} MiB allocated\n",
            mib(apparent),
            mib(allocated)
        ),
    }
    let durable = Arc::new(DurableLog::open(StoreConfig::new(&data)).expect("the store opens"));
    let memory = Arc::new(MemoryLog::new(
        usize::try_from(events).unwrap_or(usize::MAX),
    ));
    let began = Instant::now();
    fill(memory.as_ref(), events, 1).await;
    eprintln!(
        "replay: memory log filled in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    let logs: [(&str, Arc<dyn Log>); 2] = [
        ("memory", Arc::clone(&memory) as Arc<dyn Log>),
        ("durable", Arc::clone(&durable) as Arc<dyn Log>),
    ];
    let mut socket: [Vec<f64>; 2] = Default::default();
    let mut bytes: [u64; 2] = [0; 2];
    let mut read_only: [Vec<f64>; 2] = Default::default();
    let servers = [
        Server::start(Arc::clone(&logs[0].1)).await,
        Server::start(Arc::clone(&logs[1].1)).await,
    ];
    for repetition in 0..REPETITIONS {
        let order = if repetition % 2 == 0 { [0, 1] } else { [1, 0] };
        for slot in order {
            let (took, received) = subscribe_all(servers[slot].address, events).await;
            let rate = events as f64 / took.as_secs_f64();
            eprintln!(
                "replay rep {} {} socket: {:.0} events/s ({:.2} s, {} bytes)",
                repetition + 1,
                logs[slot].0,
                rate,
                took.as_secs_f64(),
                received
            );
            socket[slot].push(rate);
            bytes[slot] = received;
        }
        for slot in order {
            let took = read_all(logs[slot].1.as_ref(), events).await;
            let rate = events as f64 / took.as_secs_f64();
            eprintln!(
                "replay rep {} {} Log::read: {:.0} events/s",
                repetition + 1,
                logs[slot].0,
                rate
            );
            read_only[slot].push(rate);
        }
    }
    for server in servers {
        server.stop().await;
    }
    durable.close().expect("the log closes cleanly");

    let mut table = String::from(
        "| measure | memory events/s median (min–max) | durable events/s median (min–max) | durable ÷ memory |\n| --- | ---: | ---: | ---: |\n",
    );
    for (label, values) in [
        (
            "delivered to the socket (HTTP, one subscriber)",
            &mut socket,
        ),
        (
            "`Log::read` alone (batches of 512, no HTTP)",
            &mut read_only,
        ),
    ] {
        let (mlo, mhi) = min_max(&values[0]);
        let (dlo, dhi) = min_max(&values[1]);
        let m = median(&mut values[0]);
        let d = median(&mut values[1]);
        let _ = writeln!(
            table,
            "| {label} | {} ({}–{}) | {} ({}–{}) | {:.2}× |",
            thousands(m),
            thousands(mlo),
            thousands(mhi),
            thousands(d),
            thousands(dlo),
            thousands(dhi),
            d / m
        );
    }
    println!("{table}");
    let durable_median = median(&mut socket[1]);
    println!(
        "bytes on the socket per replay: memory {}, durable {} ({:.0} bytes/event)",
        thousands(bytes[0] as f64),
        thousands(bytes[1] as f64),
        bytes[1] as f64 / events as f64
    );
    println!(
        "target: durable ≥ 500,000 events/s to the socket: {} ({} events/s)\n",
        if durable_median >= 500_000.0 {
            "met"
        } else {
            "missed"
        },
        thousands(durable_median)
    );
}

/// Subscribes from `earliest` to everything, counting frame ends (`\n\n`) on
/// the raw socket until `events` have arrived (plus the opening comment).
async fn subscribe_all(address: SocketAddr, events: u64) -> (Duration, u64) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let request = format!(
        "GET /.well-known/mercure?match=* HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\nLast-Event-ID: earliest\r\n\r\n"
    );
    let began = Instant::now();
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request");
    let finder = memchr::memmem::Finder::new(b"\n\n");
    let mut buffer = vec![0u8; 256 * 1024];
    // The stream opens with a `:` comment, one frame end more.
    let wanted = events + 1;
    let mut frames = 0u64;
    let mut received = 0u64;
    let mut last_was_newline = false;
    let deadline = began + Duration::from_secs(120);
    while frames < wanted {
        let n = tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer))
            .await
            .expect("the replay finishes within 120 s")
            .expect("read");
        assert!(n > 0, "the hub closed after {frames} frames");
        let chunk = &buffer[..n];
        if last_was_newline && chunk[0] == b'\n' {
            frames += 1;
        }
        frames += finder.find_iter(chunk).count() as u64;
        last_was_newline = chunk[n - 1] == b'\n';
        received += n as u64;
    }
    let took = began.elapsed();
    assert_eq!(frames, wanted, "more frames than events");
    (took, received)
}

/// Reads the whole log with [`Log::read`] as a replay does, without HTTP.
async fn read_all(log: &dyn Log, events: u64) -> Duration {
    let began = Instant::now();
    let mut after = 0;
    let mut seen = 0;
    loop {
        let batch = log
            .read(after, events, ReadLimit::entries(512))
            .await
            .expect("read");
        let Some(last) = batch.last() else { break };
        after = last.position();
        seen += batch.len() as u64;
    }
    assert_eq!(seen, events);
    began.elapsed()
}

// ---------------------------------------------------------------------------
// open

async fn open() {
    let events = env_number("HERALD_BENCH_OPEN_EVENTS", 10_000_000);
    println!(
        "## open: `DurableLog::open` on a store of {} events, median of {OPENS}\n",
        thousands(events as f64)
    );
    let (data, built) = cached_store("open", events, 50_000).await;
    let (apparent, allocated) = dir_size(&data);
    let mut times = Vec::new();
    let mut shape = None;
    for _ in 0..OPENS {
        let began = Instant::now();
        let log = DurableLog::open(StoreConfig::new(&data)).expect("the store opens");
        times.push(began.elapsed().as_secs_f64());
        shape = log.shape().ok();
        log.close().expect("the log closes cleanly");
    }
    let (lo, hi) = min_max(&times);
    let open_median = median(&mut times);
    let built = match built {
        Some(took) => format!(
            "built now through `Log::append` (relaxed, commits of up to 50,000) in {:.1} s ({} events/s)",
            took.as_secs_f64(),
            thousands(events as f64 / took.as_secs_f64())
        ),
        None => "reused from the cache".into(),
    };
    println!("store: {built}\n");
    println!(
        "| entries | data dir MiB (apparent / allocated) | open ms median (min–max) |\n| ---: | ---: | ---: |"
    );
    println!(
        "| {} | {} / {} | {:.1} ({:.1}–{:.1}) |\n",
        thousands(shape.map_or(0, |s| s.entries) as f64),
        mib(apparent),
        mib(allocated),
        open_median * 1e3,
        lo * 1e3,
        hi * 1e3
    );
    println!(
        "target: open < 1 s: {} ({:.1} ms)\n",
        if open_median < 1.0 { "met" } else { "missed" },
        open_median * 1e3
    );

    // Once more after an unclean shutdown: a child process opens the store,
    // commits one entry with strict durability and aborts without closing.
    let status = std::process::Command::new(std::env::current_exe().expect("this program"))
        .arg(CRASH_CHILD)
        .arg(&data)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the child runs");
    assert!(!status.success(), "the child was meant to abort");
    let began = Instant::now();
    let log = DurableLog::open(StoreConfig::new(&data)).expect("the store opens after a crash");
    let unclean = began.elapsed();
    let entries = log.shape().map_or(0, |s| s.entries);
    log.close().expect("the log closes cleanly");
    println!(
        "after an unclean shutdown (a child process aborted right after a strict commit), one open of the {} entries took {:.1} ms (redb repairs the file)\n",
        thousands(entries as f64),
        unclean.as_secs_f64() * 1e3
    );
}

/// Opens the store in `dir`, commits one entry (strict), and aborts: the
/// store is left as a crash leaves it.
fn crash_child(dir: &str) -> ! {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let log = DurableLog::open(StoreConfig::new(dir)).expect("the store opens");
    let position = runtime
        .block_on(log.append(entry(u64::MAX)))
        .expect("the append commits")
        .position();
    eprintln!("crash child: committed position {position}, aborting");
    std::process::abort();
}
