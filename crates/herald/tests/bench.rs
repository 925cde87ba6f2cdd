//! `herald bench` checked against a scripted hub (a raw TCP server that plays
//! a Mercure hub and deliberately drops, duplicates, reorders or delays given
//! events for given subscribers), and once end to end against the real
//! `herald serve`.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::mpsc;

/// A listener on a free loopback port, and the hub URL of `scheme` on it.
async fn listening(scheme: &str) -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub = format!(
        "{scheme}://{}/.well-known/mercure",
        listener.local_addr().unwrap()
    );
    (listener, hub)
}

/// How long one bench run may take in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// What the scripted hub does to one subscriber's copy of one event.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Never sends it.
    Drop,
    /// Sends it twice.
    Duplicate,
    /// Holds it back and sends it right after the next event.
    Swap,
    /// Waits this long before sending it (and so everything after it).
    Delay(Duration),
    /// Sends, before it, an event with this sequence, which no publisher sent.
    Inject(u64),
    /// With [`EVERY`] for the sequence: ends this subscriber's lines in CRLF.
    Crlf,
    /// With [`PUBLISHER`] for the subscriber: delivers the event, then
    /// answers the publish 500.
    Fail,
}

/// (subscriber index, sequence) → what to do instead of a plain send.
type Script = HashMap<(usize, u64), Act>;

/// The sequence of a script entry that concerns every event.
const EVERY: u64 = u64::MAX;
/// The subscriber index of a script entry that concerns the publish answer.
const PUBLISHER: usize = usize::MAX;

enum Out {
    Frame(Vec<u8>),
    Sleep(Duration),
}

/// How the scripted hub answers a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answers {
    /// `Content-Length`, the connection kept alive.
    Length,
    /// `Transfer-Encoding: chunked`, the id split over two chunks.
    Chunked,
    /// `Connection: close`, then the connection is closed.
    Close,
}

#[derive(Default)]
struct Hub {
    subscribers: Mutex<Vec<(usize, mpsc::UnboundedSender<Out>)>>,
    /// Frames held back by [`Act::Swap`], per subscriber.
    held: Mutex<HashMap<usize, Vec<u8>>>,
    /// Connections that carried publishes, and the publishes.
    publishing: Mutex<(usize, usize)>,
    /// Each subscriber's index and the bearer token it presented.
    tokens: Mutex<Vec<(usize, Option<String>)>>,
}

/// Starts a scripted hub on 127.0.0.1:0; returns its hub URL.
async fn scripted_hub(script: Script, chunked: bool) -> String {
    scripted_hub_answering(script, chunked, Answers::Length)
        .await
        .0
}

/// [`scripted_hub`], answering publishes as `answers` says; also returns
/// the hub, to count its connections.
async fn scripted_hub_answering(
    script: Script,
    chunked: bool,
    answers: Answers,
) -> (String, Arc<Hub>) {
    scripted_hub_at("127.0.0.1:0", script, chunked, answers).await
}

/// [`scripted_hub_answering`], listening on `addr`.
async fn scripted_hub_at(
    addr: &str,
    script: Script,
    chunked: bool,
    answers: Answers,
) -> (String, Arc<Hub>) {
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr} (is it configured here?): {e}"));
    let url = format!(
        "http://{}/.well-known/mercure",
        listener.local_addr().unwrap()
    );
    let hub = Arc::new(Hub::default());
    let script = Arc::new(script);
    let accepting = hub.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (hub, script) = (accepting.clone(), script.clone());
            tokio::spawn(connection(stream, hub, script, chunked, answers));
        }
    });
    (url, hub)
}

/// Reads one request (head and Content-Length body); `None` at end of stream.
async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<String>, Vec<u8>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).await.ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.ok()?;
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let length = headers
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((request_line, headers, body))
}

async fn connection(
    stream: TcpStream,
    hub: Arc<Hub>,
    script: Arc<Script>,
    chunked: bool,
    answers: Answers,
) {
    let mut reader = BufReader::new(stream);
    let mut first = true;
    while let Some((request_line, headers, body)) = read_request(&mut reader).await {
        if request_line.starts_with("GET ") {
            let index: usize = headers
                .iter()
                .find_map(|h| h.strip_prefix("User-Agent: herald-bench (subscriber "))
                .and_then(|rest| rest.strip_suffix(')'))
                .expect("the bench names its subscribers")
                .parse()
                .unwrap();
            let token = headers
                .iter()
                .find_map(|h| h.strip_prefix("Authorization: Bearer "))
                .map(str::to_owned);
            hub.tokens.lock().unwrap().push((index, token));
            let (sender, receiver) = mpsc::unbounded_channel();
            hub.subscribers.lock().unwrap().push((index, sender));
            follow(reader.into_inner(), receiver, chunked).await;
            return;
        }
        // A publish: decode the form (or, for `--publish-format raw`, take
        // the body as the data, the topic being in the query), fan the event
        // out as scripted, answer 200.
        {
            let mut publishing = hub.publishing.lock().unwrap();
            publishing.0 += usize::from(first);
            publishing.1 += 1;
            first = false;
        }
        let raw = headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: text/plain"));
        let data = if raw {
            assert!(
                request_line.starts_with("POST /.well-known/mercure?topic=https%3A%2F%2F"),
                "a raw publish names its topic in the query: {request_line}"
            );
            String::from_utf8(body).unwrap()
        } else {
            let mut form: HashMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            form.remove("data").expect("a data field")
        };
        let data = &data;
        let seq: u64 = data
            .strip_prefix("seq=")
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        let lf = format!("id: urn:seq:{seq}\ndata: {data}\n\n").into_bytes();
        let crlf = format!("id: urn:seq:{seq}\r\ndata: {data}\r\n\r\n").into_bytes();
        for (index, sender) in hub.subscribers.lock().unwrap().iter() {
            let held = hub.held.lock().unwrap().remove(index);
            let frame = match script.get(&(*index, EVERY)) {
                Some(Act::Crlf) => &crlf,
                _ => &lf,
            };
            match script.get(&(*index, seq)) {
                None => {
                    let _ = sender.send(Out::Frame(frame.clone()));
                }
                Some(Act::Drop) => {}
                Some(Act::Duplicate) => {
                    let _ = sender.send(Out::Frame(frame.clone()));
                    let _ = sender.send(Out::Frame(frame.clone()));
                }
                Some(Act::Swap) => {
                    hub.held.lock().unwrap().insert(*index, frame.clone());
                }
                Some(Act::Delay(pause)) => {
                    let _ = sender.send(Out::Sleep(*pause));
                    let _ = sender.send(Out::Frame(frame.clone()));
                }
                Some(Act::Inject(bogus)) => {
                    let sent = data.split(" t=").nth(1).unwrap();
                    let fake = format!("id: x\ndata: seq={bogus} t={sent}\n\n");
                    let _ = sender.send(Out::Frame(fake.into_bytes()));
                    let _ = sender.send(Out::Frame(frame.clone()));
                }
                Some(Act::Crlf | Act::Fail) => unreachable!("not an act on one event"),
            }
            if let Some(held) = held {
                let _ = sender.send(Out::Frame(held));
            }
        }
        let id = format!("urn:seq:{seq}");
        let answer = match answers {
            _ if matches!(script.get(&(PUBLISHER, seq)), Some(Act::Fail)) => {
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops".to_owned()
            }
            Answers::Length => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{id}",
                id.len()
            ),
            Answers::Chunked => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                &id[..4],
                id.len() - 4,
                &id[4..]
            ),
            Answers::Close => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{id}",
                id.len()
            ),
        };
        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() || answers == Answers::Close
        {
            return;
        }
    }
}

/// Writes a subscriber's stream: chunked with every frame split over two
/// chunks, or close-delimited.
async fn follow(mut stream: TcpStream, mut frames: mpsc::UnboundedReceiver<Out>, chunked: bool) {
    let head: &[u8] = if chunked {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    };
    if stream.write_all(head).await.is_err() {
        return;
    }
    while let Some(out) = frames.recv().await {
        let frame = match out {
            Out::Sleep(pause) => {
                tokio::time::sleep(pause).await;
                continue;
            }
            Out::Frame(frame) => frame,
        };
        let bytes = if chunked {
            let (a, b) = frame.split_at(frame.len() / 2 + 1);
            let mut out = Vec::new();
            for part in [a, b] {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out
        } else {
            frame
        };
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// `herald bench fanout --json` against `hub`, with `subscribers` and
/// `events`, and `more` flags.
async fn fanout(hub: &str, subscribers: u32, events: u32, more: &[&str]) -> Run {
    let (subscribers, events) = (subscribers.to_string(), events.to_string());
    let mut args = vec![
        "fanout",
        "--hub",
        hub,
        "--subscribers",
        &subscribers,
        "--events",
        &events,
        "--json",
    ];
    args.extend_from_slice(more);
    bench(&args).await
}

/// The report of a successful `herald bench storm --json` against `hub`
/// with these `--connects`, `--concurrency`, `--steady`, `--events` and
/// `--rate`.
async fn storm(hub: &str, counts: [u32; 5]) -> Value {
    let counts = counts.map(|n| n.to_string());
    let mut args = vec!["storm", "--hub", hub, "--json"];
    for (flag, value) in [
        "--connects",
        "--concurrency",
        "--steady",
        "--events",
        "--rate",
    ]
    .into_iter()
    .zip(&counts)
    {
        args.extend([flag, value.as_str()]);
    }
    let run = bench(&args).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    json(&run)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn bench(args: &[&str]) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("bench")
        .args(args)
        .env_remove("HERALD_PUBLISHER_TOKEN")
        .env_remove("HERALD_SUBSCRIBER_TOKEN")
        // Which authorities an https hub is checked against is the test's to say.
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald bench");
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("herald bench did not finish in time")
        .expect("herald bench ran");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON document ({error}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    })
}

/// Runs `herald bench` with `args`, measuring the server process `pid`,
/// and returns its JSON report; the run must succeed.
async fn measured_report(args: &[&str], pid: &str) -> Value {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--server-pid", pid, "--json"])
        .collect();
    let run = bench(&args).await;
    assert_eq!(
        run.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    json(&run)
}

/// (subscriber, kind, seq, count) of every listed violation, sorted.
fn violations(report: &Value) -> Vec<(u64, String, u64, u64)> {
    let mut list: Vec<_> = report["violations"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["subscriber"].as_u64().unwrap(),
                v["kind"].as_str().unwrap().to_owned(),
                v["seq"].as_u64().unwrap(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    list.sort();
    list
}

#[tokio::test]
async fn scripted_losses_duplicates_and_reorders_are_reported_exactly() {
    let script = Script::from([
        ((1, 5), Act::Drop),
        ((2, 7), Act::Duplicate),
        ((3, 10), Act::Swap),
        ((4, 19), Act::Drop),
        ((4, 12), Act::Drop),
        ((4, 13), Act::Drop),
    ]);
    let hub = scripted_hub(script, true).await;
    let run = fanout(&hub, 5, 20, &["--drain-timeout", "1s"]).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("delivery violations"), "{}", run.stderr);
    let report = json(&run);
    assert_eq!(report["ok"], false);
    assert_eq!(
        violations(&report),
        vec![
            (1, "lost".into(), 5, 1),
            (2, "duplicated".into(), 7, 1),
            (3, "reordered".into(), 10, 1),
            (4, "lost".into(), 12, 2),
            (4, "lost".into(), 19, 1),
        ]
    );
    let counts = &report["violations"]["counts"];
    assert_eq!(
        (
            &counts["lost"],
            &counts["duplicated"],
            &counts["reordered"],
            &counts["unexpected"]
        ),
        (
            &Value::from(4),
            &Value::from(1),
            &Value::from(1),
            &Value::from(0)
        )
    );
    assert_eq!(report["violations"]["subscribers"], 4);
    assert_eq!(report["delivery"]["expected"], 100);
    assert_eq!(report["delivery"]["delivered"], 96);
    assert_eq!(report["publish"]["acknowledged"], 20);
    assert_eq!(report["subscribers"]["connected"], 5);
}

#[tokio::test]
async fn a_delayed_event_shows_in_the_latency_and_is_not_a_violation() {
    let delay = Duration::from_millis(400);
    let script = Script::from([((0, 10), Act::Delay(delay))]);
    let hub = scripted_hub(script, false).await;
    let run = fanout(&hub, 8, 40, &["--rate", "100"]).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(report["ok"], true);
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["delivery"]["delivered"], 320);
    let latency = &report["delivery"]["latency"];
    let max = latency["max_ms"].as_f64().unwrap();
    let p50 = latency["p50_ms"].as_f64().unwrap();
    assert_eq!(latency["count"], 320);
    // The one delayed event waited the whole delay (histogram precision aside).
    assert!((399.0..1400.0).contains(&max), "max {max} ms");
    // Seven subscribers of eight were never delayed.
    assert!(p50 < 100.0, "p50 {p50} ms");
    assert!(report["publish"]["request_latency"]["count"] == 40);
    // The scripted hub writes each event on its own, 10 ms apart (but for
    // the delayed subscriber's, which come together after the delay): the
    // generator reads nearly every event alone, and never part of one.
    let reads = report["delivery"]["reads"].as_u64().unwrap();
    assert!((250..=320).contains(&reads), "{reads} reads");
    let per_read = report["delivery"]["per_read"].as_f64().unwrap();
    assert!((per_read - 320.0 / reads as f64).abs() < 1e-9, "{per_read}");
}

#[tokio::test]
async fn a_clean_run_prints_a_table_and_exits_zero() {
    let hub = scripted_hub(Script::new(), true).await;
    let run = bench(&[
        "fanout",
        "--hub",
        &hub,
        "--subscribers",
        "20",
        "--events",
        "30",
        "--size",
        "256",
    ])
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    for expected in [
        "herald bench fanout: 20 subscribers × 30 events of 256 bytes, as fast as possible",
        "tool CPU / wall",
        "20 of 20 connected, 0 failed, 0 dropped",
        "600 of 600 expected",
        " per read",
        "none (0 lost, 0 duplicated, 0 reordered, 0 unexpected)",
        "result: ok",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} in:\n{}",
            run.stdout
        );
    }
}

#[tokio::test]
async fn raw_publishes_send_the_data_as_the_body_and_the_topic_in_the_query() {
    let hub = scripted_hub(Script::new(), false).await;
    let run = bench(&[
        "fanout",
        "--hub",
        &hub,
        "--match-param",
        "topic",
        "--publish-format",
        "raw",
        "--subscribers",
        "5",
        "--events",
        "20",
        "--json",
    ])
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(report["ok"], true);
    assert_eq!(report["delivery"]["delivered"], 100);
}

#[tokio::test]
async fn publishers_keep_their_connection_alive_and_read_every_kind_of_answer() {
    for answers in [Answers::Length, Answers::Chunked, Answers::Close] {
        let (url, hub) = scripted_hub_answering(Script::new(), true, answers).await;
        let run = bench(&[
            "throughput",
            "--hub",
            &url,
            "--publishers",
            "3",
            // One topic: the scripted hub sends every event to every
            // subscriber.
            "--topics",
            "1",
            "--events",
            "40",
            "--json",
        ])
        .await;
        assert_eq!(run.code, Some(0), "{answers:?}: stderr: {}", run.stderr);
        let report = json(&run);
        assert_eq!(report["ok"], true, "{answers:?}");
        assert_eq!(report["publish"]["acknowledged"], 120, "{answers:?}");
        assert_eq!(report["delivery"]["delivered"], 120, "{answers:?}");
        let (connections, publishes) = *hub.publishing.lock().unwrap();
        assert_eq!(publishes, 120, "{answers:?}");
        let expected = if answers == Answers::Close { 120 } else { 3 };
        assert_eq!(
            connections, expected,
            "{answers:?}: connections that carried publishes"
        );
    }
}

#[tokio::test]
async fn subscribers_present_the_tokens_of_the_file_in_turn() {
    let (hub, state) = scripted_hub_answering(Script::new(), false, Answers::Length).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "t0\n\n  t1\nt2\n").unwrap();
    let run = bench(&[
        "fanout",
        "--hub",
        &hub,
        "--subscribers",
        "5",
        "--events",
        "3",
        "--subscriber-tokens",
        file.to_str().unwrap(),
        "--json",
    ])
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(json(&run)["delivery"]["delivered"], 15);
    let mut tokens = state.tokens.lock().unwrap().clone();
    tokens.sort();
    let tokens: Vec<_> = tokens.into_iter().map(|(_, t)| t.unwrap()).collect();
    assert_eq!(tokens, ["t0", "t1", "t2", "t0", "t1"]);
}

#[tokio::test]
async fn a_bad_token_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n  \n").unwrap();
    let spaced = dir.path().join("spaced");
    std::fs::write(&spaced, "t0\nBearer t1\n").unwrap();
    for (file, reason) in [
        (&missing, "cannot read it"),
        (&empty, "it holds no token"),
        (&spaced, "line 2 holds more than one word"),
    ] {
        let file = file.to_str().unwrap();
        let run = bench(&[
            "fanout",
            "--hub",
            "http://127.0.0.1:9/.well-known/mercure",
            "--subscriber-tokens",
            file,
        ])
        .await;
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("invalid --subscriber-tokens '{file}': {reason}")),
            "{}",
            run.stderr
        );
    }
    let run = bench(&[
        "fanout",
        "--hub",
        "http://127.0.0.1:9/.well-known/mercure",
        "--subscriber-token",
        "t",
        "--subscriber-tokens",
        empty.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, Some(2), "both flags at once: {}", run.stderr);
}

#[tokio::test]
async fn events_of_other_topics_are_unexpected() {
    // The scripted hub ignores topics: every subscriber gets every stream.
    let hub = scripted_hub(Script::new(), true).await;
    let run = bench(&[
        "throughput",
        "--hub",
        &hub,
        "--publishers",
        "2",
        "--topics",
        "2",
        "--events",
        "5",
        "--json",
    ])
    .await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = json(&run);
    let counts = &report["violations"]["counts"];
    assert_eq!(counts["unexpected"], 10);
    assert_eq!(counts["lost"], 0);
    assert_eq!(counts["reordered"], 0);
    assert_eq!(report["delivery"]["expected"], 10);
    assert_eq!(report["delivery"]["delivered"], 10);
    assert_eq!(report["publish"]["acknowledged"], 10);
}

#[tokio::test]
async fn a_storm_counts_its_connects_while_steady_subscribers_receive() {
    let hub = scripted_hub(Script::new(), false).await;
    let report = storm(&hub, [200, 10, 3, 20, 200]).await;
    let connects = report["storm"]["connects"].as_u64().unwrap();
    assert!(connects >= 200, "{connects}");
    assert_eq!(report["storm"]["succeeded"], connects);
    assert_eq!(report["storm"]["latency"]["count"], connects);
    assert_eq!(report["delivery"]["delivered"], 60);
    assert_eq!(report["violations"]["total"], 0);
}

/// The churn goes on as long as the steady subscribers' events are
/// published, not only for `--connects`: every delivery is measured under it.
#[tokio::test]
async fn a_storm_churns_until_the_steady_events_are_all_published() {
    let hub = scripted_hub(Script::new(), false).await;
    let report = storm(&hub, [10, 2, 2, 20, 20]).await;
    let connects = report["storm"]["connects"].as_u64().unwrap();
    // A second of publishing: a loopback connect takes about a millisecond.
    assert!(connects > 10, "{connects}");
    assert_eq!(report["storm"]["succeeded"], connects);
    assert_eq!(report["delivery"]["delivered"], 40);
}

/// A hub may end its lines with CRLF (the SSE format allows it).
#[tokio::test]
async fn a_stream_whose_lines_end_in_crlf_is_read_whole() {
    let script = Script::from([((0, EVERY), Act::Crlf), ((2, EVERY), Act::Crlf)]);
    let hub = scripted_hub(script, true).await;
    let run = fanout(&hub, 3, 10, &[]).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(report["delivery"]["delivered"], 30);
    assert_eq!(report["violations"]["total"], 0);
}

/// An event no publisher sent is unexpected; the events that were sent,
/// in order, are neither lost nor reordered because of it.
#[tokio::test]
async fn an_event_never_published_is_unexpected_and_spoils_nothing_else() {
    let script = Script::from([((0, 1), Act::Inject(1000))]);
    let hub = scripted_hub(script, true).await;
    let run = fanout(&hub, 3, 10, &["--drain-timeout", "2s"]).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(violations(&report), vec![(0, "unexpected".into(), 1000, 1)]);
    assert_eq!(report["delivery"]["delivered"], 30);
}

/// A subscriber far behind is waited for even when the events whose
/// publish failed, delivered anyway, bring the count of all deliveries
/// past what was expected before it caught up.
#[tokio::test]
async fn a_late_subscriber_is_waited_for_when_failed_publishes_were_delivered() {
    let script = Script::from([
        ((PUBLISHER, 0), Act::Fail),
        ((PUBLISHER, 1), Act::Fail),
        ((PUBLISHER, 2), Act::Fail),
        ((4, 0), Act::Delay(Duration::from_millis(500))),
    ]);
    let hub = scripted_hub(script, false).await;
    let run = fanout(&hub, 5, 10, &["--drain-timeout", "5s"]).await;
    // Failed publishes fail the run, and are all it reports.
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(report["publish"]["errors"], 3);
    assert_eq!(report["violations"]["total"], 0, "{}", run.stdout);
    assert_eq!(report["delivery"]["expected"], 35);
    assert_eq!(report["delivery"]["delivered"], 50);
}

/// A hub that accepts connections but never answers: with no subscriber
/// connected there is nothing to publish for, and nothing is published.
#[tokio::test]
async fn with_no_subscriber_connected_nothing_is_published() {
    let (listener, hub) = listening("http").await;
    let held = Arc::new(Mutex::new(Vec::new()));
    let holding = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            holding.lock().unwrap().push(stream);
        }
    });
    let run = fanout(&hub, 2, 5, &["--timeout", "1s"]).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(report["subscribers"]["failed"], 2);
    assert!(report["publish"].is_null(), "{}", run.stdout);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("no subscriber connected")),
        "{}",
        run.stdout
    );
    // Two subscribers held, and no publisher connection.
    assert_eq!(held.lock().unwrap().len(), 2);
}

/// An IPv6 literal in the hub URL is an address, not a name to look up.
#[tokio::test]
async fn a_hub_on_an_ipv6_literal_is_reached() {
    let (hub, _) = scripted_hub_at("[::1]:0", Script::new(), true, Answers::Length).await;
    assert!(hub.starts_with("http://[::1]:"), "{hub}");
    let run = fanout(&hub, 2, 3, &[]).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(json(&run)["delivery"]["delivered"], 6);
}

#[tokio::test]
async fn bad_command_lines_exit_2() {
    let run = bench(&["idle", "--hub", "http://127.0.0.1:9/"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--server-pid"), "{}", run.stderr);
    let run = bench(&["fanout", "--hub", "ws://127.0.0.1:9/"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("not http or https"), "{}", run.stderr);
    let run = bench(&["fanout", "--hub", "http://127.0.0.1:9/", "--rate", "0"]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
}

/// Every numeric flag is bounded: an out-of-range value is clap's usage
/// error naming the flag, not a panic (a capacity overflow allocating
/// u64::MAX subscribers or bytes) or a run that can never end.
#[tokio::test]
async fn out_of_range_numbers_exit_2_naming_the_flag() {
    let max = "18446744073709551615";
    let cases: [(&str, &str, &str); 22] = [
        ("fanout", "--subscribers", max),
        ("fanout", "--subscribers", "1000001"),
        ("fanout", "--events", max),
        ("fanout", "--size", max),
        ("fanout", "--size", "2097153"),
        ("fanout", "--rate", "1e-300"),
        ("fanout", "--rate", "inf"),
        ("fanout", "--connect-concurrency", max),
        ("fanout", "--timeout", "600000000years"),
        ("fanout", "--drain-timeout", "8days"),
        ("throughput", "--publishers", max),
        ("throughput", "--topics", max),
        ("throughput", "--subscribers-per-topic", max),
        ("throughput", "--events", max),
        ("throughput", "--duration", "600000000years"),
        ("idle", "--subscribers", max),
        ("idle", "--topics", max),
        ("idle", "--settle", "600000000years"),
        ("storm", "--connects", max),
        ("storm", "--concurrency", max),
        ("storm", "--steady", max),
        ("storm", "--events", max),
    ];
    for (scenario, flag, value) in cases {
        let flag_value = format!("{flag}={value}");
        let args = [scenario, "--hub", "http://127.0.0.1:9/", &flag_value];
        let run = bench(&args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("invalid value '{value}' for '{flag} ")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    }
}

/// A run that would deliver nothing is refused before it starts: it would
/// report "ok" having measured nothing.
#[tokio::test]
async fn a_run_that_would_measure_nothing_exits_2_naming_the_flag() {
    let hub = "http://127.0.0.1:9/.well-known/mercure";
    let pid = std::process::id().to_string();
    let cases: [(&[&str], &str); 13] = [
        (&["fanout", "--subscribers", "0"], "--subscribers"),
        (&["fanout", "--events", "0"], "--events"),
        (&["fanout", "--timeout", "0s"], "--timeout"),
        (&["fanout", "--drain-timeout", "0s"], "--drain-timeout"),
        (
            &["fanout", "--connect-concurrency", "0"],
            "--connect-concurrency",
        ),
        (&["idle", "--events", "0", "--server-pid", &pid], "--events"),
        (&["storm", "--events", "0"], "--events"),
        (&["storm", "--steady", "0", "--connects", "0"], "--connects"),
        (&["throughput", "--events", "0"], "--events"),
        (&["throughput", "--duration", "0s"], "--duration"),
        (
            &["idle", "--subscribers", "0", "--server-pid", &pid],
            "--subscribers",
        ),
        (&["storm", "--connects", "0"], "--connects"),
        (&["storm", "--concurrency", "0"], "--concurrency"),
    ];
    for (args, flag) in cases {
        let mut command = args.to_vec();
        command.extend(["--hub", hub]);
        let run = bench(&command).await;
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(flag) && run.stderr.contains("must be"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn an_unreachable_hub_fails_the_run() {
    // Nothing listens on a port the OS just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = format!("http://127.0.0.1:{port}/.well-known/mercure");
    let run = fanout(&hub, 3, 2, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report = json(&run);
    assert_eq!(report["subscribers"]["failed"], 3);
    assert_eq!(report["ok"], false);
    // No sample is no figure, not 0 ms.
    let connect = &report["subscribers"]["connect_latency"];
    assert_eq!(connect["count"], 0);
    assert!(connect["p99_ms"].is_null(), "{connect}");
}

/// A `herald serve --dev` with the memory log on a free port: the process,
/// its pid, the hub URL and the publisher and subscriber tokens it printed.
async fn dev_hub() -> (tokio::process::Child, String, String, String, String) {
    dev_hub_with(&[]).await
}

/// [`dev_hub`] with `more` flags for `herald serve`.
async fn dev_hub_with(more: &[&str]) -> (tokio::process::Child, String, String, String, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "serve",
            "--dev",
            "--log-kind",
            "memory",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(more)
        .env("HERALD_LOG", "warn")
        .env_remove("HERALD_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald serve");
    let pid = server.id().unwrap().to_string();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let (mut hub, mut publisher, mut subscriber) = (None, None, None);
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split_once("(hub URL ").map(|(_, r)| r) {
                hub = Some(rest.trim_end_matches(')').to_owned());
            } else if let Some(token) = line.trim().strip_prefix("publisher token:") {
                publisher = Some(token.trim().to_owned());
            } else if let Some(token) = line.trim().strip_prefix("subscriber token:") {
                subscriber = Some(token.trim().to_owned());
                break;
            }
        }
    })
    .await
    .expect("herald serve printed its banner");
    // Keep reading: the rest of the banner must not meet a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (
        server,
        pid,
        hub.unwrap(),
        publisher.unwrap(),
        subscriber.unwrap(),
    )
}

/// Runs `herald bench fanout --json` against a hub (anonymous subscribers
/// when `subscriber` is `None`), expects a clean exit and returns its report.
async fn fanout_report(
    hub: &str,
    publisher: &str,
    subscriber: Option<&str>,
    subscribers: usize,
    events: usize,
    pid: &str,
) -> Value {
    let (subscribers, events) = (subscribers.to_string(), events.to_string());
    let mut args = vec!["fanout", "--hub", hub, "--publisher-token", publisher];
    if let Some(subscriber) = subscriber {
        args.extend(["--subscriber-token", subscriber]);
    }
    args.extend(["--subscribers", &subscribers, "--events", &events]);
    measured_report(&args, pid).await
}

/// The real hub, in memory, with development tokens: a small fan-out must
/// come back with every event, in order, exactly once.
#[tokio::test]
async fn a_fanout_against_herald_serve_has_no_violation() {
    let (mut server, pid, hub, publisher, subscriber) = dev_hub().await;
    let report = fanout_report(&hub, &publisher, Some(&subscriber), 50, 100, &pid).await;
    assert_eq!(report["ok"], true);
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["subscribers"]["connected"], 50);
    assert_eq!(report["delivery"]["expected"], 5000);
    assert_eq!(report["delivery"]["delivered"], 5000);
    assert!(report["server"]["rss_kib_after"].as_u64().unwrap() > 0);
    assert!(report["phases"].as_array().unwrap().len() == 2);
    server.kill().await.unwrap();
}

/// Beyond 1,000 subscribers the publishers run on a thread of their own:
/// the run still accounts for every event, and says how it published.
#[tokio::test]
async fn a_fanout_beyond_a_thousand_subscribers_publishes_apart_and_loses_nothing() {
    let (mut server, pid, hub, publisher, _) = dev_hub().await;
    // Anonymous subscribers: --dev allows 1,000 connections per token subject.
    let report = fanout_report(&hub, &publisher, None, 1001, 20, &pid).await;
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["subscribers"]["connected"], 1001);
    assert_eq!(report["publish"]["apart"], true);
    assert_eq!(report["publish"]["acknowledged"], 20);
    assert_eq!(report["delivery"]["delivered"], 20_020);
    server.kill().await.unwrap();
}

/// Up to 1,000 subscribers the publishers share the subscribers' runtime.
#[tokio::test]
async fn a_small_fanout_publishes_on_the_subscribers_runtime() {
    let (mut server, pid, hub, publisher, _) = dev_hub().await;
    let report = fanout_report(&hub, &publisher, None, 1000, 5, &pid).await;
    assert_eq!(report["publish"]["apart"], false);
    assert_eq!(report["delivery"]["delivered"], 5_000);
    server.kill().await.unwrap();
}

/// `idle --topics`: subscribers spread over topics, each checked afterwards
/// on its own topic, and the tool measures the hub's memory per subscriber.
#[tokio::test]
async fn idle_subscribers_spread_over_topics_each_get_their_topic_only() {
    let (mut server, pid, hub, publisher, subscriber) = dev_hub().await;
    let report = measured_report(
        &[
            "idle",
            "--hub",
            &hub,
            "--publisher-token",
            &publisher,
            "--subscriber-token",
            &subscriber,
            "--subscribers",
            "12",
            "--topics",
            "4",
            "--events",
            "2",
            "--settle",
            "100ms",
        ],
        &pid,
    )
    .await;
    assert_eq!(report["parameters"]["topics"], 4);
    assert_eq!(
        report["publish"]["acknowledged"], 8,
        "2 events on each topic"
    );
    assert_eq!(
        report["delivery"]["expected"], 24,
        "each subscriber gets its topic's 2"
    );
    assert_eq!(report["delivery"]["delivered"], 24);
    assert_eq!(report["violations"]["total"], 0);
    assert!(report["idle"]["server_kib_per_subscriber"].is_number());
    let run = bench(&["idle", "--hub", &hub, "--topics", "0", "--server-pid", &pid]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--topics must be at least 1"),
        "{}",
        run.stderr
    );
    server.kill().await.unwrap();
}

/// The server's CPU is also given as a share of the run's wall time, so a
/// reader sees whether the server's core was saturated: a process that
/// spins the whole run reads far above one that sleeps through it.
#[tokio::test]
async fn the_server_cpu_share_tells_a_busy_server_from_an_idle_one() {
    let hub = scripted_hub(Script::new(), true).await;
    let share = |pid: u32| {
        let hub = hub.clone();
        async move {
            let args = [
                "fanout",
                "--hub",
                &hub,
                "--subscribers",
                "10",
                "--events",
                "20",
                "--rate",
                "40",
            ];
            let report = measured_report(&args, &pid.to_string()).await;
            report["server"]["cpu_percent"].as_f64().unwrap()
        }
    };
    let mut spinner = tokio::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut sleeper = tokio::process::Command::new("sleep")
        .arg("60")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let busy = share(spinner.id().unwrap()).await;
    let idle = share(sleeper.id().unwrap()).await;
    spinner.kill().await.unwrap();
    sleeper.kill().await.unwrap();
    // Half a second at 40 events/s: the spinner holds a core for all of it
    // (less when the tests share the machine), the sleeper for none of it.
    assert!(busy > 25.0, "a spinning server used {busy:.0}% of the run");
    assert!(idle < 5.0, "a sleeping server used {idle:.0}% of the run");
}

/// Ctrl-C ends a run at once, saying that nothing is reported (events still
/// on their way would read as lost), with the shell's status for SIGINT.
#[tokio::test]
async fn ctrl_c_ends_the_run_saying_nothing_is_reported() {
    let hub = scripted_hub(Script::new(), false).await;
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["bench", "fanout", "--hub", &hub, "--subscribers", "2"])
        .args(["--events", "100", "--rate", "10", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald bench");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().expect("the run goes on").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("herald bench ends on Ctrl-C")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");
    assert!(output.stdout.is_empty());
}

/// A self-signed leaf certificate for `localhost` and 127.0.0.1, written
/// with its key into `dir`: the certificate's path and the key's.
fn self_signed(dir: &std::path::Path) -> (String, String) {
    self_signed_as(dir, rcgen::IsCa::NoCa)
}

/// [`self_signed`], an authority's certificate when `ca` says so.
fn self_signed_as(dir: &std::path::Path, ca: rcgen::IsCa) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.is_ca = ca;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (
        cert_file.to_str().unwrap().to_owned(),
        key_file.to_str().unwrap().to_owned(),
    )
}

/// An https hub: subscribers and the publisher speak HTTP/1.1 over TLS,
/// trusting the hub's self-signed certificate given with `--ca-cert`, and
/// every event arrives once and in order.
#[tokio::test]
async fn a_fanout_over_tls_trusting_the_given_authority_has_no_violation() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let (mut server, pid, hub, publisher, subscriber) =
        dev_hub_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    assert!(hub.starts_with("https://127.0.0.1:"), "{hub}");
    let over_tls = |scenario: &'static str, counts: [&'static str; 4]| {
        let mut args = vec![
            scenario,
            "--hub",
            &hub,
            "--ca-cert",
            &cert,
            "--publisher-token",
            &publisher,
            "--subscriber-token",
            &subscriber,
        ];
        args.extend(counts);
        args
    };
    let report = measured_report(
        &over_tls("fanout", ["--subscribers", "20", "--events", "50"]),
        &pid,
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["hub"], hub.as_str());
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["subscribers"]["connected"], 20);
    assert_eq!(report["delivery"]["delivered"], 1000);
    // Publishing over TLS too, several publishers on their own connections
    // (four topics, one subscriber each).
    let mut args = over_tls("throughput", ["--publishers", "2", "--topics", "4"]);
    args.extend(["--events", "25"]);
    let report = measured_report(&args, &pid).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["delivery"]["delivered"], 50);
    // HTTP/2 over TLS, which the bench asks for by ALPN and refuses to go
    // without: a run that succeeds spoke it.
    let mut args = over_tls("fanout", ["--subscribers", "20", "--events", "50"]);
    args.push("--http2");
    let report = measured_report(&args, &pid).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["delivery"]["delivered"], 1000);
    server.kill().await.unwrap();
}

/// A certificate the bench does not trust stops the run before it starts,
/// in one line that says so and how to trust it.
#[tokio::test]
async fn an_untrusted_hub_certificate_fails_at_once_saying_how_to_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let (mut server, _, hub, _, _) = dev_hub_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let run = fanout(&hub, 5, 1, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "cannot open a TLS connection to {hub}: tls: the hub's certificate is not trusted: \
             it is not issued by an authority the bench trusts (give the authority's \
             certificate, or a self-signed certificate itself, with --ca-cert)"
        )),
        "{}",
        run.stderr
    );
    // Another certificate of the same name (rcgen's) is no more trusted.
    let other = tempfile::tempdir().unwrap();
    let (other_cert, _) = self_signed(other.path());
    let run = fanout(&hub, 5, 1, &["--ca-cert", &other_cert]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the hub's certificate is not trusted: its signature does not verify with the key \
             of the trusted authority it names as its issuer"
        ),
        "{}",
        run.stderr
    );
    server.kill().await.unwrap();
    // An authority's certificate serving as the hub's is refused even when
    // trusted, and the run says why and what to give the hub instead.
    let ca = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_as(
        ca.path(),
        rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
    );
    let (mut server, _, hub, _, _) = dev_hub_with(&["--tls-cert", &cert, "--tls-key", &key]).await;
    let run = fanout(&hub, 5, 1, &["--ca-cert", &cert]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "the hub's certificate is not trusted: it is an authority's certificate \
             (basic constraints CA:TRUE), which TLS does not accept as a server's"
        ),
        "{}",
        run.stderr
    );
    server.kill().await.unwrap();
}

/// A plain-HTTP port behind an https URL is a TLS failure said as one.
#[tokio::test]
async fn an_https_url_on_a_plain_port_is_said_to_fail_its_handshake() {
    let (mut server, _, hub, _, _) = dev_hub().await;
    let https = hub.replacen("http://", "https://", 1);
    let run = fanout(&https, 2, 1, &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot open a TLS connection to {https}: tls: ")),
        "{}",
        run.stderr
    );
    server.kill().await.unwrap();
}

/// A hub that accepts connections and never answers the TLS handshake
/// fails the run within `--timeout`, saying so.
#[tokio::test]
async fn an_https_hub_that_never_answers_the_handshake_fails_within_the_timeout() {
    let (listener, hub) = listening("https").await;
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let run = fanout(&hub, 2, 1, &["--timeout", "500ms"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot open a TLS connection to {hub}: no TLS handshake within 500ms (--timeout)"
        )),
        "{}",
        run.stderr
    );
    silent.abort();
}

/// `--ca-cert` that cannot be used is a usage error naming the file and
/// what is wrong with it; on an http hub it is refused as meaningless.
#[tokio::test]
async fn a_bad_ca_cert_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let garbage = garbage.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let hub = "https://127.0.0.1:1/.well-known/mercure";
    let run = fanout(hub, 1, 1, &["--ca-cert", garbage]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "invalid --ca-cert: {garbage}: no certificate found"
        )),
        "{}",
        run.stderr
    );
    let run = fanout(hub, 1, 1, &["--ca-cert", missing]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "invalid --ca-cert: cannot read {missing}: No such file"
        )),
        "{}",
        run.stderr
    );
    let run = fanout(
        "http://127.0.0.1:1/.well-known/mercure",
        1,
        1,
        &["--ca-cert", garbage],
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("--ca-cert is for an https hub"),
        "{}",
        run.stderr
    );
}

/// A scripted hub that speaks HTTP/2 with prior knowledge (h2c) and nothing
/// else: every subscriber gets each published event cut into DATA frames of
/// 7 bytes, and the event of sequence `twice` two times. Returns its hub URL.
async fn scripted_http2_hub(twice: u64) -> String {
    type Streams = Arc<Mutex<Vec<h2::SendStream<bytes::Bytes>>>>;
    let (listener, url) = listening("http").await;
    let streams: Streams = Arc::default();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let streams = streams.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    let streams = streams.clone();
                    tokio::spawn(async move {
                        if request.method() == http::Method::GET {
                            let head = http::Response::builder()
                                .header("content-type", "text/event-stream")
                                .body(())
                                .unwrap();
                            if let Ok(stream) = respond.send_response(head, false) {
                                streams.lock().unwrap().push(stream);
                            }
                            return;
                        }
                        let mut body = request.into_body();
                        let mut form = Vec::new();
                        while let Some(Ok(data)) = body.data().await {
                            let _ = body.flow_control().release_capacity(data.len());
                            form.extend_from_slice(&data);
                        }
                        let data = url::form_urlencoded::parse(&form)
                            .find(|(name, _)| name == "data")
                            .map(|(_, value)| value.into_owned())
                            .unwrap();
                        let seq: u64 = data
                            .strip_prefix("seq=")
                            .and_then(|rest| rest.split(' ').next())
                            .and_then(|n| n.parse().ok())
                            .unwrap();
                        let frame = format!("data: {data}\n\n");
                        let copies = if seq == twice { 2 } else { 1 };
                        for stream in streams.lock().unwrap().iter_mut() {
                            for _ in 0..copies {
                                for piece in frame.as_bytes().chunks(7) {
                                    let piece = bytes::Bytes::copy_from_slice(piece);
                                    let _ = stream.send_data(piece, false);
                                }
                            }
                        }
                        if let Ok(mut answer) =
                            respond.send_response(http::Response::new(()), false)
                        {
                            let _ =
                                answer.send_data(bytes::Bytes::from_static(b"urn:uuid:1"), true);
                        }
                    });
                }
            });
        }
    });
    url
}

/// Over HTTP/2 the subscribers read events however the hub's DATA frames
/// cut them, and account for them as over HTTP/1.1: the one duplicate is
/// reported for each subscriber, nothing else.
#[tokio::test]
async fn over_http2_events_cut_across_frames_are_read_whole_and_a_duplicate_is_reported() {
    let hub = scripted_http2_hub(4).await;
    let run = fanout(&hub, 3, 10, &["--http2", "--drain-timeout", "1s"]).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(
        violations(&report),
        vec![
            (0, "duplicated".into(), 4, 1),
            (1, "duplicated".into(), 4, 1),
            (2, "duplicated".into(), 4, 1),
        ]
    );
    assert_eq!(report["subscribers"]["connected"], 3);
    assert_eq!(report["publish"]["acknowledged"], 10);
    assert_eq!(report["delivery"]["delivered"], 30);
}

/// The real hub over HTTP/2 with prior knowledge: a fan-out and several
/// publishers over topics account for every event.
#[tokio::test]
async fn a_fanout_and_a_throughput_over_http2_against_herald_serve_have_no_violation() {
    let (mut server, pid, hub, publisher, subscriber) = dev_hub().await;
    let mut args = vec!["fanout", "--http2", "--hub", &hub];
    args.extend(["--publisher-token", &publisher]);
    args.extend(["--subscriber-token", &subscriber]);
    args.extend(["--subscribers", "40", "--events", "50"]);
    let report = measured_report(&args, &pid).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["subscribers"]["connected"], 40);
    assert_eq!(report["delivery"]["delivered"], 2000);
    let mut args = vec!["throughput", "--http2", "--hub", &hub];
    args.extend(["--publisher-token", &publisher]);
    args.extend(["--publishers", "3", "--topics", "6", "--events", "20"]);
    let report = measured_report(&args, &pid).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["violations"]["total"], 0);
    assert_eq!(report["publish"]["acknowledged"], 60);
    assert_eq!(report["delivery"]["delivered"], 60);
    server.kill().await.unwrap();
}

/// `--http2` against a plain port that answers in HTTP/1.1 says what is
/// wrong instead of a framing error alone.
#[tokio::test]
async fn http2_to_a_hub_answering_in_http1_says_it_did_not_answer_in_http2() {
    let (listener, hub) = listening("http").await;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    let run = fanout(&hub, 2, 1, &["--http2"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report = json(&run);
    assert_eq!(report["subscribers"]["failed"], 2, "{report}");
    let errors = report["subscribers"]["errors"].to_string();
    assert!(
        errors.contains(
            "HTTP/2: the hub did not answer in HTTP/2 (connection error detected: frame with \
             invalid size): over http, --http2 needs a hub that speaks HTTP/2 with prior \
             knowledge (h2c) on that port"
        ),
        "{errors}"
    );
}

/// An https hub whose TLS does not offer the protocol the run speaks fails
/// the run at once, saying so: `--http2` against a hub that refuses the
/// handshake for `h2`, and one that goes on without ALPN; HTTP/1.1 against
/// a hub that serves only `h2`.
#[tokio::test]
async fn an_https_hub_without_the_runs_protocol_fails_at_once_saying_so() {
    for (offers, http2, said) in [
        (
            vec![b"http/1.1".to_vec()],
            true,
            "tls: the hub refused HTTP/2 (ALPN 'h2'): it does not serve HTTP/2 over TLS \
             (run without --http2 for HTTP/1.1)",
        ),
        (
            vec![],
            true,
            "tls: the hub did not agree to HTTP/2 (it chose none by ALPN)",
        ),
        (
            vec![b"h2".to_vec()],
            false,
            "tls: the hub refused HTTP/1.1 (ALPN 'http/1.1'): it serves only other \
             protocols over TLS (HTTP/2: run with --http2)",
        ),
    ] {
        https_hub_offering(offers, http2, said).await;
    }
}

/// Runs the bench (with `--http2` if `http2`) against a TLS server whose
/// ALPN offers `offers`, and expects the run to fail at once with `said`.
async fn https_hub_offering(offers: Vec<Vec<u8>>, http2: bool, said: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = offers;
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hub = format!(
        "https://127.0.0.1:{}/.well-known/mercure",
        listener.local_addr().unwrap().port()
    );
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(mut tls) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            // Ends when the client hangs up on the protocol it was given.
            while tls.is_handshaking() && tls.complete_io(&mut tcp).is_ok() {}
        }
    });
    let mut flags = vec!["--ca-cert", cert.as_str()];
    if http2 {
        flags.push("--http2");
    }
    let run = fanout(&hub, 2, 1, &flags).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("cannot open a TLS connection to {hub}: {said}")),
        "{}",
        run.stderr
    );
}
