//! Deadlines on connections that are not (yet) subscriptions, over real
//! sockets: a connection that sends nothing, a request head or a publish
//! body that stalls, and a kept-alive connection left idle are closed, on
//! the hand-served paths and on those hyper serves, so that clients cannot
//! hold the hub's file descriptors; an event stream is never bounded by
//! them; and a graceful shutdown does not wait for idle connections.

mod common;

use std::time::Duration;

use common::*;
use herald_server::Config;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BOOK: &str = "https://example.com/books/1";

/// The head and body timeouts of [`short`].
const SHORT: Duration = Duration::from_millis(300);

/// Less than [`SHORT`]: a connection closed sooner was not closed by a
/// timeout (the client's clock starts a little after the hub's).
const NOT_BEFORE: Duration = Duration::from_millis(200);

/// How long a connection the hub must close may stay open: far above
/// [`SHORT`], far below "held forever".
const CLOSED_WITHIN: Duration = Duration::from_secs(5);

/// The test configuration with short head and body timeouts.
fn short() -> Config {
    let mut config = config();
    config.limits.request_head_timeout = SHORT;
    config.limits.request_body_timeout = SHORT;
    config
}

/// The hub path, e.g. `/.well-known/mercure`.
fn hub_path(hub: &TestHub) -> String {
    url::Url::parse(&hub.url).unwrap().path().to_owned()
}

/// The metadata path: a request the router serves through hyper.
fn metadata_path(hub: &TestHub) -> String {
    url::Url::parse(&hub.metadata_url())
        .unwrap()
        .path()
        .to_owned()
}

/// Reads what the hub sends until it closes the connection: `None` if it
/// is still open after `within`.
async fn read_to_close(tcp: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Asserts that the hub closes `tcp` by itself, between [`NOT_BEFORE`]
/// after `since` and [`CLOSED_WITHIN`]; returns what it sent before.
async fn assert_closed_by_timeout(tcp: &mut TcpStream, since: Instant, what: &str) -> Vec<u8> {
    let Some(bytes) = read_to_close(tcp, CLOSED_WITHIN).await else {
        panic!("{what}: still open after {CLOSED_WITHIN:?}");
    };
    assert!(
        since.elapsed() >= NOT_BEFORE,
        "{what}: closed after {:?}, before any timeout",
        since.elapsed()
    );
    bytes
}

/// One answer's status and body (delimited by `Content-Length`), read from
/// `tcp` after `buf`'s bytes.
async fn read_answer(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, String) {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = response.parse(buf).expect("an answer head") {
            let status = response.code.expect("a status");
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .expect("a content-length");
            while buf.len() < len + length {
                fill(tcp, buf).await;
            }
            let body = String::from_utf8(buf[len..len + length].to_vec()).unwrap();
            buf.drain(..len + length);
            return (status, body);
        }
        fill(tcp, buf).await;
    }
}

async fn fill(tcp: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk))
        .await
        .expect("bytes in time")
        .expect("read");
    assert!(n > 0, "the hub closed the connection mid-answer");
    buf.extend_from_slice(&chunk[..n]);
}

/// A form publish head (with a token that may publish anywhere) announcing
/// `length` bytes of body.
fn publish_head(hub: &TestHub, length: usize) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n",
        hub_path(hub),
        hub.addr,
        hub.publisher()
    )
}

/// A whole form publish request.
fn publish_bytes(hub: &TestHub, pairs: &[(&str, &str)]) -> Vec<u8> {
    let body = form(pairs);
    let mut bytes = publish_head(hub, body.len()).into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Asserts that `bytes`, if any, are a 408 answer.
fn assert_408_or_nothing(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        bytes.is_empty() || text.starts_with("HTTP/1.1 408 "),
        "{what}: {text}"
    );
}

/// Asserts that `bytes`, if any, are a problem document saying the request
/// head came too late.
fn assert_head_was_late(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        bytes.is_empty()
            || text.contains("application/problem+json")
                && text.contains("the request head did not arrive within"),
        "{what}: {text}"
    );
}

/// Asserts that `stream` gets `data` next: an update published after one
/// that must not have been.
async fn assert_next_is(stream: &mut EventStream, data: &str) {
    assert_eq!(stream.data(1).await, [data]);
}

/// An HTTP/2 (h2c, prior knowledge) client connection; the task resolves
/// when the hub closes the connection.
async fn h2c(
    hub: &TestHub,
) -> (
    hyper::client::conn::http2::SendRequest<axum::body::Body>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(hub.addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("an h2c handshake");
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, task)
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed() {
    let hub = start(short()).await;
    let mut connections = Vec::new();
    for _ in 0..20 {
        connections.push(TcpStream::connect(hub.addr).await.unwrap());
    }
    let since = Instant::now();
    for tcp in &mut connections {
        let bytes = assert_closed_by_timeout(tcp, since, "a silent connection").await;
        assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
    }
    // The hub still serves.
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    publish_ok(&hub, &[("topic", BOOK), ("data", "served")]).await;
    assert_next_is(&mut stream, "served").await;
}

#[tokio::test]
async fn an_h2c_connection_that_opens_no_stream_is_closed() {
    let hub = start(short()).await;
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let since = Instant::now();
    // The preface and an empty SETTINGS frame, then nothing.
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    assert_closed_by_timeout(&mut tcp, since, "an h2c connection without a stream").await;
    // Only part of the preface: hyper has not even picked a protocol.
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let since = Instant::now();
    tcp.write_all(b"PRI * HTTP/2").await.unwrap();
    assert_closed_by_timeout(&mut tcp, since, "a partial h2c preface").await;
}

#[tokio::test]
async fn partial_request_heads_are_closed_on_the_subscribe_and_publish_paths() {
    let hub = start(short()).await;
    let path = hub_path(&hub);
    // Each is answered 408: by the hand-served publish path, or, where
    // hyper reads the head, in its place (it closes without a word).
    for (what, head, answered) in [
        (
            "a partial subscription head",
            format!("GET {path}?match={} HTTP/1.1\r\nHost: x\r\n", enc(BOOK)),
            true,
        ),
        (
            "a partial publish head",
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n"),
            true,
        ),
        ("a partial request line", format!("GET {path}"), true),
    ] {
        let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
        let since = Instant::now();
        tcp.write_all(head.as_bytes()).await.unwrap();
        let bytes = assert_closed_by_timeout(&mut tcp, since, what).await;
        assert_408_or_nothing(&bytes, what);
        assert_eq!(!bytes.is_empty(), answered, "{what}");
        assert_head_was_late(&bytes, what);
    }
}

#[tokio::test]
async fn heads_trickled_a_byte_at_a_time_are_closed() {
    let hub = start(short()).await;
    let path = hub_path(&hub);
    let padding = "a".repeat(400);
    let subscription = format!("GET {path}?match={} HTTP/1.1\r\n", enc(BOOK));
    let publish = format!("POST {path} HTTP/1.1\r\n");
    let rest = format!("X-Pad: {padding}\r\nContent-Length: 0\r\n\r\n");
    // The first line in one segment decides the path: a subscription head
    // goes to hyper, a publish head is served by hand; a head trickled from
    // its first byte goes to hyper. Each is answered 408.
    for (what, first, rest, answered) in [
        (
            "a trickled subscription head",
            subscription,
            rest.clone(),
            true,
        ),
        (
            "a trickled publish head",
            publish.clone(),
            rest.clone(),
            true,
        ),
        (
            "a head trickled from its first byte",
            String::new(),
            publish + &rest,
            true,
        ),
    ] {
        let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
        let since = Instant::now();
        tcp.write_all(first.as_bytes()).await.unwrap();
        let (mut read, mut write) = tcp.into_split();
        // Each byte is progress, but the whole head is late.
        let trickle = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            for byte in rest.into_bytes() {
                if write.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let mut bytes = Vec::new();
        let closed = tokio::time::timeout(CLOSED_WITHIN, read.read_to_end(&mut bytes)).await;
        trickle.abort();
        assert!(closed.is_ok(), "{what}: still open after {CLOSED_WITHIN:?}");
        assert!(since.elapsed() >= NOT_BEFORE, "{what}: closed too soon");
        assert_408_or_nothing(&bytes, what);
        assert_eq!(!bytes.is_empty(), answered, "{what}");
        assert_head_was_late(&bytes, what);
    }
}

#[tokio::test]
async fn a_stalled_publish_body_is_answered_408_closed_and_not_published() {
    let hub = start(short()).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let body = form(&[("topic", BOOK), ("data", "stalled")]);
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    // 100,000 bytes announced, a few sent.
    let mut bytes = publish_head(&hub, 100_000).into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    tcp.write_all(&bytes).await.unwrap();
    let since = Instant::now();
    assert_408_and_nothing_published(&hub, &mut tcp, since, &mut stream, "a stalled body").await;
}

#[tokio::test]
async fn a_stalled_chunked_publish_body_served_by_hyper_is_answered_408_and_closed() {
    let hub = start(short()).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    // A chunked body is not served by hand: hyper reads it.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        hub_path(&hub),
        hub.addr,
        hub.publisher()
    );
    let chunk = form(&[("topic", BOOK), ("data", "stalled")]);
    tcp.write_all(head.as_bytes()).await.unwrap();
    // A few chunks in good time, then none: the clock runs from the last.
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(SHORT / 3).await;
        }
        tcp.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
    }
    let since = Instant::now();
    let what = "a stalled chunked body";
    assert_408_and_nothing_published(&hub, &mut tcp, since, &mut stream, what).await;
}

/// The connection is answered 408 and closed by the body timeout, and the
/// stalled update was not published: the next one is the first `stream` sees.
async fn assert_408_and_nothing_published(
    hub: &TestHub,
    tcp: &mut TcpStream,
    since: Instant,
    stream: &mut EventStream,
    what: &str,
) {
    let answer = assert_closed_by_timeout(tcp, since, what).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{what}: {answer}");
    assert!(answer.contains("connection: close"), "{what}: {answer}");
    publish_ok(hub, &[("topic", BOOK), ("data", "after")]).await;
    assert_next_is(stream, "after").await;
}

#[tokio::test]
async fn an_idle_kept_alive_publisher_connection_is_closed() {
    let hub = start(short()).await;
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let mut buf = Vec::new();
    // Kept alive while requests come in time.
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(SHORT / 3).await;
        }
        tcp.write_all(&publish_bytes(&hub, &[("topic", BOOK)]))
            .await
            .unwrap();
        assert_eq!(read_answer(&mut tcp, &mut buf).await.0, 200);
    }
    let since = Instant::now();
    let bytes = assert_closed_by_timeout(&mut tcp, since, "an idle publisher").await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
}

#[tokio::test]
async fn an_idle_kept_alive_connection_served_by_hyper_is_closed() {
    let hub = start(short()).await;
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let mut buf = Vec::new();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        metadata_path(&hub),
        hub.addr
    );
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(SHORT / 3).await;
        }
        tcp.write_all(request.as_bytes()).await.unwrap();
        assert_eq!(read_answer(&mut tcp, &mut buf).await.0, 200);
    }
    let since = Instant::now();
    let bytes = assert_closed_by_timeout(&mut tcp, since, "an idle hyper connection").await;
    assert!(bytes.is_empty(), "{}", String::from_utf8_lossy(&bytes));
}

#[tokio::test]
async fn an_idle_h2c_connection_is_closed_after_its_requests() {
    let hub = start(short()).await;
    let (mut sender, closed) = h2c(&hub).await;
    let uri = format!("http://{}{}", hub.addr, metadata_path(&hub));
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(SHORT / 3).await;
        }
        let request = http::Request::get(&uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = tokio::time::timeout(WAIT, sender.send_request(request))
            .await
            .expect("an answer in time")
            .expect("an answer");
        assert_eq!(response.status(), 200);
    }
    let since = Instant::now();
    tokio::time::timeout(CLOSED_WITHIN, closed)
        .await
        .expect("the idle h2c connection is closed")
        .unwrap();
    assert!(since.elapsed() >= NOT_BEFORE, "closed too soon");
}

#[tokio::test]
async fn live_subscriptions_outlast_every_timeout() {
    let mut config = short();
    // Heartbeats stay on, often enough to see several while streams idle.
    config.subscribers.heartbeat = Duration::from_secs(1);
    let hub = start(config).await;
    let query = format!("match={}", enc(BOOK));
    // Served by hand.
    let mut plain = subscribe(&hub, &query).await;
    // Served by hyper: over h2c, with a `QUERY` body, and with a head that
    // arrives in two segments.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut over_h2c = open(h2c.get(hub.url_with(&query))).await;
    let mut with_body = open(query_method(&hub, "", &query)).await;
    let mut split = TcpStream::connect(hub.addr).await.unwrap();
    split
        .write_all(format!("GET {}?{query} HTTP/1.1\r\n", hub_path(&hub)).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    split.write_all(b"Host: x\r\n\r\n").await.unwrap();
    let opened = Instant::now();

    // Ten times every timeout, with nothing but keep-alive comments.
    let idle = SHORT * 10;
    for stream in [&mut plain, &mut over_h2c, &mut with_body] {
        assert!(stream.wait_for_comments(2, idle).await, "heartbeats");
    }
    tokio::time::sleep_until(opened + idle).await;
    publish_ok(&hub, &[("topic", BOOK), ("data", "still here")]).await;
    for stream in [&mut plain, &mut over_h2c, &mut with_body] {
        assert_eq!(stream.data(1).await, ["still here"]);
    }
    let mut raw = Vec::new();
    while !String::from_utf8_lossy(&raw).contains("data: still here") {
        fill(&mut split, &mut raw).await;
    }
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 200 OK"), "{raw}");
    assert!(raw.contains("\r\n:"), "heartbeats: {raw}");
}

#[tokio::test]
async fn a_shutdown_does_not_wait_for_idle_connections() {
    // Timeouts far longer than the test: only the shutdown closes these.
    let mut config = config();
    config.limits.request_head_timeout = Duration::from_secs(60);
    config.limits.request_body_timeout = Duration::from_secs(60);
    config.shutdown_timeout = Duration::from_secs(10);
    let (hub, served) = start_joinable(config).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;

    let silent = TcpStream::connect(hub.addr).await.unwrap();
    let mut partial = TcpStream::connect(hub.addr).await.unwrap();
    partial
        .write_all(format!("POST {} HTTP/1.1\r\nHost: x\r\n", hub_path(&hub)).as_bytes())
        .await
        .unwrap();
    let mut publisher = TcpStream::connect(hub.addr).await.unwrap();
    let mut buf = Vec::new();
    publisher
        .write_all(&publish_bytes(&hub, &[("topic", BOOK), ("data", "one")]))
        .await
        .unwrap();
    assert_eq!(read_answer(&mut publisher, &mut buf).await.0, 200);
    let mut by_hyper = TcpStream::connect(hub.addr).await.unwrap();
    by_hyper
        .write_all(format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", metadata_path(&hub)).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_answer(&mut by_hyper, &mut buf).await.0, 200);
    let (mut sender, h2c_closed) = h2c(&hub).await;
    let request = http::Request::get(format!("http://{}{}", hub.addr, metadata_path(&hub)))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
    assert_eq!(stream.data(1).await, ["one"]);

    let started = Instant::now();
    drop(hub);
    tokio::time::timeout(Duration::from_secs(3), served)
        .await
        .expect("the shutdown does not wait for idle connections")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    stream.until_end(WAIT).await;
    for (what, mut tcp) in [
        ("silent", silent),
        ("partial head", partial),
        ("publisher", publisher),
        ("hyper", by_hyper),
    ] {
        assert!(
            read_to_close(&mut tcp, WAIT).await.is_some(),
            "the {what} connection is closed"
        );
    }
    tokio::time::timeout(WAIT, h2c_closed)
        .await
        .expect("the h2c connection is closed")
        .unwrap();
}

/// A publish body still on its way is waited for only from a client whose
/// token lets it publish: without one, or with a bad one, the answer is
/// immediate and the connection closed, on the hand-served path (a
/// `Content-Length` body) and through hyper (a chunked one). Otherwise
/// anyone could hold a file descriptor by trickling a body.
#[tokio::test]
async fn a_body_on_its_way_without_a_valid_token_is_refused_at_once() {
    let hub = start(config()).await; // 10 s timeouts: an answer in time is not one
    // A valid token that may publish nothing (a subscriber's).
    let reader = format!(
        "Authorization: Bearer {}\r\n",
        hub.token().subscribe(&["*"]).sign()
    );
    for (authorization, framing) in [
        ("", "Content-Length: 100000"),
        (
            "Authorization: Bearer not-a-token\r\n",
            "Content-Length: 100000",
        ),
        (reader.as_str(), "Content-Length: 100000"),
        ("", "Transfer-Encoding: chunked"),
        (
            "Authorization: Bearer not-a-token\r\n",
            "Transfer-Encoding: chunked",
        ),
        (reader.as_str(), "Transfer-Encoding: chunked"),
    ] {
        let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\n{authorization}\
             Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\ntopic=a",
            hub_path(&hub),
            hub.addr,
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let Some(answer) = read_to_close(&mut tcp, Duration::from_secs(3)).await else {
            panic!("{authorization:?} {framing}: still waiting for the body after 3 s");
        };
        let answer = String::from_utf8_lossy(&answer);
        // 401 without a token, 400 (invalid_request) for a malformed one,
        // 403 (insufficient_scope) for one without a `publish` right.
        assert!(
            (answer.starts_with("HTTP/1.1 401 ")
                || answer.starts_with("HTTP/1.1 400 ")
                || answer.starts_with("HTTP/1.1 403 "))
                && answer.contains("www-authenticate: Bearer"),
            "{authorization:?} {framing}: {answer}"
        );
    }
}

/// A subscription's body comes from anyone (anonymous `QUERY`): it must be
/// whole within the body timeout, however steadily it trickles.
#[tokio::test]
async fn a_trickled_subscription_body_is_answered_408_within_the_body_timeout() {
    let hub = start(short()).await;
    let body = format!("match={}", enc(BOOK));
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    let head = format!(
        "QUERY {} HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        hub_path(&hub),
        hub.addr,
        body.len() + 1000,
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let since = Instant::now();
    // Read as it is written: a reset after the answer must not lose it.
    let (mut reader, mut writer) = tcp.into_split();
    let answer = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut chunk).await {
            answer.extend_from_slice(&chunk[..n]);
        }
        answer
    });
    // A byte every 50 ms: always progress, never done.
    let trickle = async {
        for byte in body.bytes().chain(std::iter::repeat(b'x')) {
            if writer.write_all(&[byte]).await.is_err() || answer.is_finished() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(CLOSED_WITHIN, trickle).await;
    assert!(
        since.elapsed() < CLOSED_WITHIN,
        "a body trickled for {CLOSED_WITHIN:?} is still being read"
    );
    let answer = tokio::time::timeout(Duration::from_secs(1), answer)
        .await
        .expect("the connection ends")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
}
