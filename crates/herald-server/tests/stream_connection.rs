//! A subscriber's HTTP/1.1 connection, byte by byte, in clear text and
//! over TLS, where `herald serve` writes the stream itself: what the client
//! sends on it once the stream is open (its close, a TLS key update) is
//! read and acted on.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

in_clear_text_and_over_tls!("current_thread":
    a_client_that_closes_its_stream_frees_its_slot_at_once,
);

/// Sends a subscription to `topic` on `io` and reads until `needle` has
/// come; returns what came.
async fn subscribe_raw<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    hub: &TestHub,
    topic: &str,
) -> Vec<u8> {
    let request = format!(
        "GET /.well-known/mercure?match={topic} HTTP/1.1\r\nHost: {}\r\n\r\n",
        hub.addr
    );
    io.write_all(request.as_bytes()).await.expect("write");
    // The opening comment ends the first chunk: the stream is open.
    read_until(io, b":\n\n").await
}

/// Reads from `io` until `needle` has come; fails after [`WAIT`].
async fn read_until<S: AsyncRead + Unpin>(io: &mut S, needle: &[u8]) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !received.windows(needle.len()).any(|w| w == needle) {
        let n = tokio::time::timeout(WAIT, io.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{:?} in time", String::from_utf8_lossy(needle)))
            .expect("read");
        assert!(
            n > 0,
            "closed before {:?}: {}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    received
}

/// A client that closes its stream (a FIN, after a `close_notify` over
/// TLS) is gone for the hub at once: its connection is closed and its
/// slot taken by the next subscriber, long before a heartbeat or the
/// write timeout would have found it gone.
async fn a_client_that_closes_its_stream_frees_its_slot_at_once(tls: bool) {
    let mut config = config();
    config.limits.max_connections = 1;
    config.subscribers.heartbeat = Duration::from_secs(60);
    config.limits.write_timeout = Duration::from_secs(60);
    let hub = start_either(tls, config).await;
    let mut io = raw_connection(&hub, None).await;
    let head = subscribe_raw(&mut io, &hub, "closing").await;
    assert!(head.starts_with(b"HTTP/1.1 200 "));
    let refused = send(get(&hub, "match=next")).await;
    assert_eq!(refused.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);

    io.shutdown().await.expect("the client closes");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, io.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the hub closes its side in time");
    wait_for_a_free_slot(&hub, "match=next", "the closed stream still holds its slot").await;
}

/// A TLS 1.3 key update the client asks for mid-stream is read and
/// answered: the hub moves to new keys too, and the events that follow
/// reach the client, in order.
#[tokio::test]
async fn a_key_update_mid_stream_is_answered_and_the_stream_goes_on() {
    let hub = start_tls(config()).await;
    let tcp = tokio::net::TcpStream::connect(hub.addr)
        .await
        .expect("connect");
    let mut io = tls_handshake(&hub, tcp).await;
    assert_eq!(
        io.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    subscribe_raw(&mut io, &hub, "keys").await;
    publish_ok(&hub, &[("topic", "keys"), ("data", "before")]).await;
    read_until(&mut io, b"data: before\n\n").await;

    io.get_mut().1.refresh_traffic_keys().expect("a key update");
    io.flush().await.expect("the key update is sent");
    for i in 0..50 {
        publish_ok(&hub, &[("topic", "keys"), ("data", &format!("after {i}"))]).await;
    }
    let received = read_until(&mut io, b"data: after 49\n\n").await;
    let text = String::from_utf8_lossy(&received);
    let afters: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: after "))
        .collect();
    let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(afters, expected);
}
