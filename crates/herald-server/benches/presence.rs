//! Presence at scale: the delivery latency of ordinary updates to other
//! subscribers while 10,000 subscribers connect and disconnect (at most 2,000
//! at a time), with active subscriptions off and on, in the same run.
//!
//! ```sh
//! cargo bench -p herald-server --bench presence
//! ```
//!
//! Everything runs in this process over loopback: the hub (memory log), 20
//! listeners on a tick topic, the storm, and
//! an in-process publisher sending a tick every 5 ms with its send time in the
//! data. Latency is measured per (tick, listener) from `publish` to the
//! listener's parser. Three modes alternate to share the drift of a busy
//! machine: the feature off (5 idle watchers connected, receiving nothing),
//! on with nobody reading subscription events (the cost of the bookkeeping
//! and of the events going through the log), and on with 5 watchers
//! receiving every event (adds the cost of delivering them). `PRESENCE_BENCH_ROUNDS` (default 2) sets the pairs,
//! `PRESENCE_BENCH_SUBSCRIBERS` (default 10000) the storm size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use herald_hub::Update;
use herald_server::Config;
use herald_server::config::IssuerConfig;
use herald_sse::Parser;
use herald_token::claims::{Action, AuthorizationDetail, TopicMatcher};
use herald_token::{MintRequest, SigningKey, mint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;

const SECRET: &str = "0123456789abcdef0123456789abcdef-presence-bench";
const LISTENERS: usize = 20;
const WATCHERS: usize = 5;
const CONCURRENT: usize = 2_000;
const TICK: Duration = Duration::from_millis(5);
const HOLD: Duration = Duration::from_millis(50);

struct Outcome {
    latencies_us: Vec<u64>,
    storm: Duration,
    events_seen: u64,
    failed_connects: u64,
    slow_disconnects: u64,
}

/// What runs: the feature off, on with nobody reading subscription events,
/// or on with watchers that receive every event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    On,
    OnWatched,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::On => "on",
            Mode::OnWatched => "on + 5 watchers",
        }
    }
}

fn main() {
    let rounds: usize = std::env::var("PRESENCE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let storm_size: usize = std::env::var("PRESENCE_BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "presence bench: {storm_size} subscribers connect and disconnect, at most {CONCURRENT} at a time; \
         {LISTENERS} listeners, {WATCHERS} event watchers, a tick every {TICK:?}"
    );
    println!(
        "| round | presence | ticks×listeners | p50 µs | p99 µs | max µs | storm s | events seen by watchers | slow disconnects |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let modes = [Mode::Off, Mode::On, Mode::OnWatched];
    let mut p99 = [Vec::new(), Vec::new(), Vec::new()];
    let mut p50 = [Vec::new(), Vec::new(), Vec::new()];
    for round in 1..=rounds {
        for (index, mode) in modes.into_iter().enumerate() {
            let outcome = runtime.block_on(run(mode, storm_size));
            let mut l = outcome.latencies_us;
            l.sort_unstable();
            let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
            let (a, b, m) = (pct(0.50), pct(0.99), *l.last().unwrap_or(&0));
            p50[index].push(a);
            p99[index].push(b);
            println!(
                "| {round} | {} | {} | {a} | {b} | {m} | {:.2} | {} | {} |",
                mode.name(),
                l.len(),
                outcome.storm.as_secs_f64(),
                outcome.events_seen,
                outcome.slow_disconnects,
            );
            if outcome.failed_connects > 0 {
                println!("  ({} storm connections failed)", outcome.failed_connects);
            }
            // Let sockets and the previous hub wind down.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let off = (median(&mut p50[0]), median(&mut p99[0]));
    for (index, mode) in modes.into_iter().enumerate().skip(1) {
        let (on50, on99) = (median(&mut p50[index]), median(&mut p99[index]));
        println!(
            "median over rounds, {} vs off: p50 {on50} vs {} µs ({:.2}×), p99 {on99} vs {} µs ({:.2}×)",
            mode.name(),
            off.0,
            on50 as f64 / off.0.max(1) as f64,
            off.1,
            on99 as f64 / off.1.max(1) as f64
        );
    }
}

async fn run(mode: Mode, storm_size: usize) -> Outcome {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = Config {
        listen: addr,
        ..Config::default()
    };
    config.log.kind = "memory".into();
    config.subscriptions.enabled = mode != Mode::Off;
    config.limits.max_connections = 18_000;
    config.auth.issuers.push(IssuerConfig {
        id: "bench".into(),
        hs256_secrets: vec![SECRET.into()],
        ..IssuerConfig::default()
    });
    let (herald, _) = config.build().expect("config");
    let router = herald.router();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = herald.clone();
    let server = tokio::spawn(async move {
        herald_server::serve(listener, &serving, router, async {
            let _ = stopped.await;
        })
        .await
    });
    let token = mint(
        &MintRequest::new("bench", herald.hub().url().as_str()).with_detail(
            AuthorizationDetail::new(vec![Action::Subscribe], vec![TopicMatcher::exact("*")]),
        ),
        &SigningKey::hs256(SECRET.as_bytes()).expect("key"),
    )
    .expect("token");

    let base = Instant::now();
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let events_seen = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..LISTENERS {
        let stream = open(addr, "match=https%3A%2F%2Fexample.com%2Fticks", None)
            .await
            .expect("listener");
        let latencies = Arc::clone(&latencies);
        readers.push(tokio::spawn(read_events(stream, move |data| {
            if let Ok(sent) = data.parse::<u64>() {
                let now = u64::try_from(base.elapsed().as_micros()).unwrap_or(u64::MAX);
                latencies.lock().push(now.saturating_sub(sent));
            }
        })));
    }
    let watchers = if mode == Mode::On { 0 } else { WATCHERS };
    for _ in 0..watchers {
        let stream = open(
            addr,
            "match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F*",
            Some(&token),
        )
        .await
        .expect("watcher");
        let seen = Arc::clone(&events_seen);
        readers.push(tokio::spawn(read_events(stream, move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        })));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The publisher: a tick every TICK until the storm ends.
    let storming = Arc::new(AtomicBool::new(true));
    let publisher = {
        let hub = herald.hub().clone();
        let storming = Arc::clone(&storming);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            while storming.load(Ordering::Relaxed) {
                interval.tick().await;
                let sent = u64::try_from(base.elapsed().as_micros()).unwrap_or(0);
                hub.publish(Update::new("https://example.com/ticks", sent.to_string()))
                    .await
                    .expect("publish");
            }
        })
    };

    // The storm.
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(CONCURRENT));
    let failed = Arc::new(AtomicU64::new(0));
    let mut storm = Vec::with_capacity(storm_size);
    for i in 0..storm_size {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("semaphore");
        let failed = Arc::clone(&failed);
        storm.push(tokio::spawn(async move {
            let query = format!("match=https%3A%2F%2Fexample.com%2Frooms%2F{}", i % 100);
            match open(addr, &query, None).await {
                Ok(stream) => {
                    tokio::time::sleep(HOLD).await;
                    drop(stream);
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        }));
    }
    for task in storm {
        let _ = task.await;
    }
    let storm_time = started.elapsed();
    // Let the last events drain through the log before stopping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    storming.store(false, Ordering::Relaxed);
    let _ = publisher.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for reader in &readers {
        reader.abort();
    }
    let slow_disconnects = herald
        .hub()
        .stats()
        .slow_disconnects
        .load(Ordering::Relaxed);
    let _ = stop.send(());
    drop(herald);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let latencies_us = std::mem::take(&mut *latencies.lock());
    Outcome {
        latencies_us,
        storm: storm_time,
        events_seen: events_seen.load(Ordering::Relaxed),
        failed_connects: failed.load(Ordering::Relaxed),
        slow_disconnects,
    }
}

/// Opens a subscription over a raw HTTP/1.1 connection and waits for the
/// first bytes of the response (the stream is open and registered).
async fn open(
    addr: std::net::SocketAddr,
    query: &str,
    token: Option<&str>,
) -> std::io::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(
            format!("GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n")
                .as_bytes(),
        )
        .await?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("timed out"))??;
        if n == 0 {
            return Err(std::io::Error::other("closed"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            if !head.starts_with(b"HTTP/1.1 200") {
                return Err(std::io::Error::other(
                    String::from_utf8_lossy(&head).into_owned(),
                ));
            }
            // Wait for the opening comment, so the subscriber is registered.
            if head.len() > end + 4 {
                let rest = head.split_off(end + 4);
                return Ok((stream, rest));
            }
        }
    }
}

/// Reads a chunked event stream and calls `on_data` with every event's data.
async fn read_events(
    (mut stream, first): (TcpStream, Vec<u8>),
    mut on_data: impl FnMut(&str) + Send,
) {
    let mut parser = Parser::new();
    let mut chunked = Dechunk::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut feed = |bytes: &[u8], parser: &mut Parser, chunked: &mut Dechunk| {
        chunked.feed(bytes, |body| parser.feed(body));
        while let Ok(Some(event)) = parser.next_event() {
            on_data(&event.data);
        }
    };
    feed(&first, &mut parser, &mut chunked);
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        feed(&buf[..n], &mut parser, &mut chunked);
    }
}

/// A minimal HTTP/1.1 chunked-body decoder.
#[derive(Default)]
struct Dechunk {
    /// Unparsed bytes of a chunk-size line.
    line: Vec<u8>,
    /// Body bytes of the current chunk still to come.
    remaining: usize,
    /// Bytes of the CRLF after a chunk still to skip.
    skip: usize,
}

impl Dechunk {
    fn feed(&mut self, mut bytes: &[u8], mut out: impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
            } else if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                out(&bytes[..n]);
                self.remaining -= n;
                bytes = &bytes[n..];
                if self.remaining == 0 {
                    self.skip = 2;
                }
            } else {
                let byte = bytes[0];
                bytes = &bytes[1..];
                if byte != b'\n' {
                    self.line.push(byte);
                    continue;
                }
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                let size = line.split(';').next().unwrap_or("").trim();
                self.remaining = usize::from_str_radix(size, 16).unwrap_or(0);
            }
        }
    }
}
