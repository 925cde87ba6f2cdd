//! A subscriber that does not read: it is disconnected, while publishers and
//! other subscribers carry on unaffected. Its stream is served by hand in
//! clear text and over TLS (HTTP/1.1), and every test runs both ways.

#[macro_use]
mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use herald_sse::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const UPDATES: usize = 256;
const DATA_BYTES: usize = 64 * 1024;

/// Opens a raw HTTP/1.1 subscription with a tiny receive buffer and reads
/// just its response head.
async fn raw_subscription(hub: &TestHub, query: &str) -> (Box<dyn Io>, Vec<u8>) {
    let mut stream = raw_connection(hub, Some(4096)).await;
    let request = format!(
        "GET /.well-known/mercure?{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        hub.addr
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("a response head in time")
            .expect("read");
        assert!(n > 0, "closed before the response head");
        received.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&received).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let split = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (stream, received.split_off(split))
}

/// Decodes a complete chunked body.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
        raw = &raw[line_end + 2..];
        if size == 0 {
            return (body, true);
        }
        if raw.len() < size + 2 {
            return (body, false);
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

in_clear_text_and_over_tls!("multi_thread":
    a_subscriber_that_does_not_read_is_disconnected_without_slowing_anyone,
    a_subscriber_whose_writes_stall_is_closed_and_frees_its_slot,
    a_write_timeout_is_counted_in_the_metrics,
    a_subscriber_whose_socket_fills_then_drains_gets_every_update_once_in_order,
);

async fn a_subscriber_that_does_not_read_is_disconnected_without_slowing_anyone(tls: bool) {
    let mut config = config();
    config.subscribers.queue_capacity = 32;
    config.subscribers.heartbeat = Duration::from_secs(60);
    let hub = start_either(tls, config).await;

    let (mut stalled, mut stalled_bytes) = raw_subscription(&hub, "match=big").await;

    // A healthy subscriber reads everything, concurrently.
    let mut healthy = subscribe(&hub, "match=big").await;
    let reader = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(UPDATES);
        while ids.len() < UPDATES {
            match healthy.next_within(WAIT).await {
                Next::Event(event) => {
                    assert_eq!(event.data.len(), DATA_BYTES);
                    ids.push(event.last_event_id);
                }
                other => panic!(
                    "the healthy subscriber got {other:?} after {} events",
                    ids.len()
                ),
            }
        }
        ids
    });

    let data = "x".repeat(DATA_BYTES);
    let token = hub.publisher();
    let mut slowest = Duration::ZERO;
    let mut published = Vec::with_capacity(UPDATES);
    for i in 0..UPDATES {
        let id = format!("u{i:03}");
        let started = Instant::now();
        let response = publish(
            &hub,
            Some(&token),
            &[("topic", "big"), ("id", &id), ("data", &data)],
        )
        .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        slowest = slowest.max(started.elapsed());
        published.push(id);
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a publish took {slowest:?}"
    );

    let ids = tokio::time::timeout(WAIT * 3, reader)
        .await
        .expect("the healthy subscriber keeps up")
        .expect("the healthy subscriber's task");
    assert_eq!(ids, published);
    assert!(
        hub.herald
            .hub()
            .stats()
            .slow_disconnects
            .load(Ordering::Relaxed)
            >= 1,
        "the stalled subscriber was not dropped"
    );
    // Now the stalled subscriber reads: it gets what was already on its way,
    // in order and without gaps, then the end of the stream.
    let deadline = Instant::now() + WAIT * 3;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout_at(deadline, stalled.read(&mut buf))
            .await
            .expect("the stalled subscriber's stream ends in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        stalled_bytes.extend_from_slice(&buf[..n]);
    }
    let (body, complete) = dechunk(&stalled_bytes);
    assert!(complete, "the stream was cut without its last chunk");
    let mut parser = Parser::new();
    parser.feed(&body);
    let mut received = Vec::new();
    while let Some(event) = parser.next_event().expect("a valid stream") {
        received.push(event.last_event_id);
    }
    assert!(
        received.len() < UPDATES,
        "the stalled subscriber received all {} updates",
        received.len()
    );
    assert_eq!(received, published[..received.len()]);
}

/// Publishes, on `big`, enough data to fill every buffer between the hub
/// and a subscriber that stopped reading.
async fn publish_enough_to_fill_the_buffers(hub: &TestHub) {
    let data = "x".repeat(DATA_BYTES);
    let token = hub.publisher();
    for i in 0..UPDATES {
        let id = format!("u{i:03}");
        let response = publish(
            hub,
            Some(&token),
            &[("topic", "big"), ("id", &id), ("data", &data)],
        )
        .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
    }
}

async fn a_subscriber_whose_writes_stall_is_closed_and_frees_its_slot(tls: bool) {
    let mut config = config();
    config.subscribers.queue_capacity = 8;
    config.subscribers.heartbeat = Duration::from_secs(60);
    config.limits.write_timeout = Duration::from_millis(500);
    config.limits.max_connections = 1;
    let hub = start_either(tls, config).await;
    let (_stalled, _) = raw_subscription(&hub, "match=big").await;
    let refused = send(get(&hub, "match=other")).await;
    assert_eq!(
        refused.status(),
        reqwest::StatusCode::TOO_MANY_REQUESTS,
        "the only slot is taken"
    );
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"5"[..]),
        "a refusal for a full hub says when to come back"
    );

    publish_enough_to_fill_the_buffers(&hub).await;

    // The stalled connection is closed once its writes make no progress for
    // 500 ms, which frees the slot for someone else.
    wait_for_a_free_slot(
        &hub,
        "match=other",
        "the stalled connection still holds its slot",
    )
    .await;
}

/// A subscriber closed by the write timeout, with room left in its queue,
/// is counted as such, apart from those whose queue filled.
async fn a_write_timeout_is_counted_in_the_metrics(tls: bool) {
    let mut config = config();
    config.subscribers.queue_capacity = 4 * UPDATES;
    config.subscribers.heartbeat = Duration::from_secs(60);
    config.limits.write_timeout = Duration::from_millis(500);
    let hub = start_either(tls, config).await;
    let (_stalled, _) = raw_subscription(&hub, "match=big").await;
    publish_enough_to_fill_the_buffers(&hub).await;
    let counted = |name: &str| {
        let metrics = hub.herald.metrics().render();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let deadline = Instant::now() + WAIT;
    while counted("herald_write_timeouts_total") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the stalled connection was not closed by the write timeout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted("herald_write_timeouts_total"), 1.0);
    assert_eq!(counted("herald_slow_subscriber_disconnects_total"), 0.0);
}

/// A subscriber that stops reading long enough for its socket to fill, then
/// reads again: the hub's direct writes to it stop, its own task flushes
/// what the socket did not take and catches up from the queue, and it still
/// gets every update exactly once, in order.
async fn a_subscriber_whose_socket_fills_then_drains_gets_every_update_once_in_order(tls: bool) {
    // More than the hub's socket send buffer can grow to (4 MiB by default).
    const PAUSED_UPDATES: usize = 1200;
    let mut config = config();
    config.subscribers.queue_capacity = PAUSED_UPDATES * 2;
    config.subscribers.heartbeat = Duration::from_secs(60);
    let hub = start_either(tls, config).await;
    let (mut paused, mut bytes) = raw_subscription(&hub, "match=paused").await;
    // Once the first comment arrived the stream is open and registered.
    let mut buf = vec![0u8; 64 * 1024];
    while dechunk(&bytes).0.is_empty() {
        let n = tokio::time::timeout(WAIT, paused.read(&mut buf))
            .await
            .expect("the first comment in time")
            .expect("read");
        assert!(n > 0);
        bytes.extend_from_slice(&buf[..n]);
    }

    let data = "y".repeat(8 * 1024);
    let token = hub.publisher();
    let mut published = Vec::with_capacity(PAUSED_UPDATES);
    for i in 0..PAUSED_UPDATES {
        let id = format!("p{i:04}");
        let response = publish(
            &hub,
            Some(&token),
            &[("topic", "paused"), ("id", &id), ("data", &data)],
        )
        .await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        published.push(id);
    }

    // Events end with a blank line; the opening comment is one more.
    let mut ends = bytes.windows(2).filter(|w| w == b"\n\n").count();
    // Well before the 60 s heartbeat, which would wake a stalled stream.
    let deadline = Instant::now() + WAIT * 2;
    while ends <= PAUSED_UPDATES {
        let n = tokio::time::timeout_at(deadline, paused.read(&mut buf))
            .await
            .expect("every update in time")
            .expect("read");
        assert!(n > 0, "the stream closed early");
        let from = bytes.len().saturating_sub(1);
        bytes.extend_from_slice(&buf[..n]);
        ends += bytes[from..].windows(2).filter(|w| w == b"\n\n").count();
    }
    let (body, _) = dechunk(&bytes);
    let mut parser = Parser::new();
    parser.feed(&body);
    let mut received = Vec::new();
    while let Some(event) = parser.next_event().expect("a valid stream") {
        assert_eq!(event.data.len(), data.len());
        received.push(event.last_event_id);
    }
    assert_eq!(received, published);
    assert_eq!(
        hub.herald
            .hub()
            .stats()
            .slow_disconnects
            .load(Ordering::Relaxed),
        0
    );
}
