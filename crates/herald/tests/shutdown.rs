//! A graceful shutdown under load: SIGTERM ends every stream with a `retry:`
//! hint, in-flight publishes finish, the process exits cleanly and quickly, and
//! subscribers resume on the next hub without losing an acknowledged update.

mod hub_process;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use herald_client::{Publisher, Update};
use herald_sse::Parser;
use herald_token::claims::Action;
use hub_process::{TOPIC, start, token};

const SUBSCRIBERS: usize = 3;

/// What one subscriber saw of one hub: the data of every event, its last
/// event id, and the reconnection time the stream left it with.
struct Seen {
    data: Vec<u64>,
    last_id: Option<String>,
    retry: Option<u64>,
}

/// Reads from `address` (resuming after `last_id`) until the stream ends, or
/// until `until` is received.
async fn read(address: &str, last_id: Option<String>, until: Option<u64>) -> Seen {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut request = reqwest::Client::new()
        .get(format!(
            "http://{address}/.well-known/mercure?match={TOPIC}"
        ))
        .bearer_auth(token(Action::Subscribe));
    if let Some(id) = &last_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("the hub answers");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut parser = Parser::new();
    let mut seen = Seen {
        data: Vec::new(),
        last_id,
        retry: None,
    };
    while let Some(Ok(chunk)) = body.next().await {
        parser.feed(&chunk);
        while let Some(event) = parser.next_event().expect("a well-formed stream") {
            seen.data.push(event.data.parse().expect("numeric data"));
            seen.last_id = Some(event.last_event_id);
        }
        if until.is_some_and(|n| seen.data.last() == Some(&n)) {
            break;
        }
    }
    seen.retry = parser.retry();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_and_sends_subscribers_back_spread_out() {
    let data = tempfile::tempdir().unwrap();
    let (mut hub, address) = start(data.path()).await;

    let mut readers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let address = address.clone();
        readers.push(tokio::spawn(async move {
            read(&address, Some("earliest".into()), None).await
        }));
    }
    let publisher = {
        let hub_url = format!("http://{address}/.well-known/mercure")
            .parse()
            .unwrap();
        tokio::spawn(async move {
            let publisher = Publisher::new(hub_url).with_token(token(Action::Publish));
            let mut acknowledged = Vec::new();
            for n in 0u64.. {
                match publisher.publish(&Update::new(TOPIC, n.to_string())).await {
                    Ok(_) => acknowledged.push(n),
                    Err(_) => break, // the hub stopped accepting
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = hub.id().expect("the hub runs");
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), hub.wait())
        .await
        .expect("the hub exits within its shutdown timeout")
        .unwrap();
    assert!(exit.success(), "a graceful shutdown exits 0, got {exit}");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");

    let acknowledged = publisher.await.unwrap();
    assert!(
        !acknowledged.is_empty(),
        "updates were acknowledged before the shutdown"
    );
    let mut seen = Vec::new();
    for reader in readers {
        seen.push(
            tokio::time::timeout(Duration::from_secs(10), reader)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let hints: Vec<u64> = seen
        .iter()
        .map(|s| s.retry.expect("a retry hint before the close"))
        .collect();
    assert!(hints.iter().all(|h| (500..=5000).contains(h)), "{hints:?}");

    // The next hub, on the same data: every subscriber resumes and gets the rest.
    let (_next, address) = start(data.path()).await;
    let last = *acknowledged.last().unwrap();
    for before in seen {
        let rest = if before.data.last().is_some_and(|n| *n >= last) {
            Vec::new() // it had everything before the shutdown
        } else {
            tokio::time::timeout(
                Duration::from_secs(10),
                read(&address, before.last_id.clone(), Some(last)),
            )
            .await
            .expect("the subscriber catches up within 10 s")
            .data
        };
        let all: Vec<u64> = before.data.into_iter().chain(rest).collect();
        assert!(
            all.windows(2).all(|w| w[0] < w[1]),
            "in order, no duplicate: {all:?}"
        );
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|n| all.binary_search(n).is_err())
            .collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    }
}

/// With presence on, every subscription the shutdown ends has its inactive
/// event in the log, so a client following the events from before the
/// shutdown does not keep them as active after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_logs_the_end_of_every_subscription_it_ends() {
    const CONNECTIONS: usize = 40;
    const MATCHERS: [&str; 2] = [TOPIC, "https://example.com/other"];
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("herald.toml");
    std::fs::write(&config, "[subscriptions]\nenabled = true\n").unwrap();
    let config = config.to_str().unwrap();
    let store = data.path().join("store");
    let (mut hub, address) = hub_process::start_with(&store, &["--config", config]).await;
    let hub_url = format!("http://{address}/.well-known/mercure");

    let cursor = Publisher::new(hub_url.parse().unwrap())
        .with_token(token(Action::Publish))
        .publish(&Update::new(TOPIC, "before"))
        .await
        .expect("the hub acknowledges");
    let client = reqwest::Client::new();
    let mut open = Vec::new();
    for _ in 0..CONNECTIONS {
        let query: Vec<_> = MATCHERS.iter().map(|m| format!("match={m}")).collect();
        let response = client
            .get(format!("{hub_url}?{}", query.join("&")))
            .bearer_auth(token(Action::Subscribe))
            .send()
            .await
            .expect("the hub answers");
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    // A subscription that ends before its start is logged logs neither
    // (docs/presence.md): let every start reach the log first.
    let counted = |m: &str| MATCHERS.contains(&m);
    let expected = CONNECTIONS * MATCHERS.len();
    assert_eq!(
        subscription_events(&address, &cursor, counted, (expected, 0)).await,
        (expected, 0),
        "every subscription's start, before the shutdown"
    );

    signal(&hub, "TERM");
    exits_cleanly(&mut hub).await;
    drop(open);

    let (_next, address) = hub_process::start_with(&store, &["--config", config]).await;
    assert_eq!(
        subscription_events(&address, &cursor, counted, (expected, expected)).await,
        (expected, expected),
        "every subscription's start and end, after the cursor"
    );
}

/// How many `active: true` and `active: false` subscription events of the
/// matchers `counted` picks the hub at `address` replays after `cursor`,
/// reading until there are `wanted` (starts, ends) or for 10 s.
async fn subscription_events(
    address: &str,
    cursor: &str,
    counted: impl Fn(&str) -> bool,
    wanted: (usize, usize),
) -> (usize, usize) {
    let response = reqwest::Client::new()
        .get(format!(
            "http://{address}/.well-known/mercure?match_urlpattern=/.well-known/mercure/subscriptions/*"
        ))
        .bearer_auth(token(Action::Subscribe))
        .header("last-event-id", cursor)
        .send()
        .await
        .expect("the hub answers");
    assert_eq!(response.status(), 200);
    let (mut started, mut ended) = (0, 0);
    let mut body = response.bytes_stream();
    let mut parser = Parser::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            parser.feed(&chunk);
            while let Some(event) = parser.next_event().expect("a well-formed stream") {
                let document: serde_json::Value =
                    serde_json::from_str(&event.data).expect("a JSON subscription event");
                // The reader's own subscription, on the next hub, among others.
                if !document["match"].as_str().is_some_and(&counted) {
                    continue;
                }
                match document["active"].as_bool() {
                    Some(true) => started += 1,
                    Some(false) => ended += 1,
                    None => panic!("no `active` in {}", event.data),
                }
            }
            if started >= wanted.0 && ended >= wanted.1 {
                break;
            }
        }
    })
    .await;
    (started, ended)
}

/// Waits (15 s at most) for the hub to exit, and checks it exited 0.
async fn exits_cleanly(hub: &mut tokio::process::Child) {
    let exit = tokio::time::timeout(Duration::from_secs(15), hub.wait())
        .await
        .expect("the hub exits within its shutdown timeout")
        .unwrap();
    assert!(exit.success(), "a graceful shutdown exits 0, got {exit}");
}

fn signal(hub: &tokio::process::Child, name: &str) {
    let pid = hub.id().expect("the hub runs").to_string();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name}");
}

/// SIGHUP (a closing terminal, or a tool meaning "reload") leaves the hub
/// serving; SIGQUIT drains like SIGTERM instead of ending the process at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_is_survived_and_sigquit_drains_gracefully() {
    let data = tempfile::tempdir().unwrap();
    let (mut hub, address) = start(data.path()).await;
    let reader = {
        let address = address.clone();
        tokio::spawn(async move { read(&address, Some("earliest".into()), None).await })
    };
    let publisher = Publisher::new(
        format!("http://{address}/.well-known/mercure")
            .parse()
            .unwrap(),
    )
    .with_token(token(Action::Publish));

    signal(&hub, "HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    publisher
        .publish(&Update::new(TOPIC, "1"))
        .await
        .expect("the hub still serves after SIGHUP");

    signal(&hub, "QUIT");
    exits_cleanly(&mut hub).await;
    let seen = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.data, [1]);
    assert!(seen.retry.is_some(), "the stream ended with a retry hint");
}

/// A publish of a `length`-byte body whose head and `start` are sent, the
/// rest still to come: a connection a shutdown must wait for.
async fn publish_begun(address: &str, length: usize, start: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut publish = tokio::net::TcpStream::connect(address).await.unwrap();
    publish
        .write_all(
            format!(
                "POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n{start}",
                token(Action::Publish),
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    publish
}

/// `/readyz` answers 503 for as long as a shutdown drains (here, a publish
/// whose body is still arriving), instead of the admin listener vanishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_a_shutdown_drains() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let (mut hub, address, admin) = hub_process::start_with_admin(data.path()).await;
    let readyz = || async {
        reqwest::Client::new()
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .expect("the admin listener answers")
            .status()
    };
    assert_eq!(readyz().await, 200);

    let body = format!("topic={TOPIC}&data=drained");
    let (start, rest) = body.split_at(10);
    let mut publish = publish_begun(&address, body.len(), start).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    signal(&hub, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        readyz().await,
        503,
        "not ready from the start of a shutdown"
    );

    publish.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    publish.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight publish completes: {answer}"
    );
    exits_cleanly(&mut hub).await;
}

/// A second signal during a drain stops waiting for open connections (here
/// a publish whose body never ends): the log is closed and herald exits 1,
/// with what was acknowledged before kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_the_drain_and_keeps_what_was_acknowledged() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let (mut hub, address) = hub_process::start(data.path()).await;
    let publisher = Publisher::new(
        format!("http://{address}/.well-known/mercure")
            .parse()
            .unwrap(),
    )
    .with_token(token(Action::Publish));
    publisher
        .publish(&Update::new(TOPIC, "7"))
        .await
        .expect("published before the shutdown");
    let stalled = publish_begun(&address, 1000, "topic=").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&hub, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&hub, "TERM");
    let exit = tokio::time::timeout(Duration::from_secs(15), hub.wait())
        .await
        .expect("the hub exits")
        .unwrap();
    assert_eq!(exit.code(), Some(1), "a forced exit is not a clean one");
    drop(stalled);
    // The log was closed: the next start replays what was acknowledged.
    let (mut hub, address) = hub_process::start(data.path()).await;
    let seen = read(&address, Some("earliest".into()), Some(7)).await;
    assert_eq!(seen.data, [7]);
    signal(&hub, "TERM");
    exits_cleanly(&mut hub).await;
}

/// A stalled HTTP/2 stream outlives the shutdown's timeout (flow control
/// holds its last write); its subscriptions still end in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_subscriptions_of_streams_it_could_not_close() {
    const STREAMS: usize = 5;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("herald.toml");
    std::fs::write(
        &config,
        "shutdown_timeout = \"1s\"\n[subscriptions]\nenabled = true\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let store = data.path().join("store");
    let (mut hub, address) = hub_process::start_with(&store, &["--config", config]).await;
    let hub_url = format!("http://{address}/.well-known/mercure");
    let publisher = Publisher::new(hub_url.parse().unwrap()).with_token(token(Action::Publish));
    let cursor = publisher
        .publish(&Update::new(TOPIC, "before"))
        .await
        .expect("the hub acknowledges");

    // One h2c connection whose streams are never read: their windows fill.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .http2_initial_stream_window_size(1024)
        .http2_initial_connection_window_size(65_535)
        .build()
        .unwrap();
    let mut stalled = Vec::new();
    for _ in 0..STREAMS {
        let response = h2
            .get(format!("{hub_url}?match={TOPIC}"))
            .bearer_auth(token(Action::Subscribe))
            .send()
            .await
            .expect("the hub answers");
        assert_eq!(response.status(), 200);
        stalled.push(response);
    }
    // Every start logged first: one that ends before it is logs neither.
    assert_eq!(
        subscription_events(&address, &cursor, |m| m == TOPIC, (STREAMS, 0)).await,
        (STREAMS, 0)
    );
    for _ in 0..10 {
        publisher
            .publish(&Update::new(TOPIC, "x".repeat(20_000)))
            .await
            .expect("the hub acknowledges");
    }

    signal(&hub, "TERM");
    exits_cleanly(&mut hub).await;
    drop(stalled);

    let (_next, address) = hub_process::start_with(&store, &["--config", config]).await;
    assert_eq!(
        subscription_events(&address, &cursor, |m| m == TOPIC, (STREAMS, STREAMS)).await,
        (STREAMS, STREAMS)
    );
}
