//! A publisher's connection, byte by byte: kept alive across publishes,
//! pipelined, sent in pieces, closed on request, refused without losing the
//! connection, and handed to the router for anything but a plain publish.
//! HTTP/1.1 publishes are served by hand (`publish_conn`), in clear text and
//! over TLS, so these tests speak raw HTTP over a socket (or a TLS stream)
//! to see exactly what a client sees; most run both ways.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOOK: &str = "https://example.com/books/1";

/// One answer as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A raw connection to the hub, over TLS when the hub is served over TLS
/// (HTTP/1.1 by ALPN, as a client that does not speak HTTP/2 gets).
struct Connection {
    io: Box<dyn Io>,
    read: Vec<u8>,
}

impl Connection {
    async fn open(hub: &TestHub) -> Self {
        Self {
            io: raw_connection(hub, None).await,
            read: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write");
        self.io.flush().await.expect("flush");
    }

    /// Publishes `pairs` with a token that may publish anywhere, with
    /// `extra` header lines, and reads the answer.
    async fn publish(&mut self, hub: &TestHub, pairs: &[(&str, &str)], extra: &str) -> Answer {
        self.send(&publish_bytes(hub, Some(&hub.publisher()), pairs, extra))
            .await;
        self.answer().await
    }

    /// Reads one answer (its body delimited by `Content-Length`).
    async fn answer(&mut self) -> Answer {
        tokio::time::timeout(WAIT, self.read_answer())
            .await
            .expect("an answer in time")
    }

    async fn read_answer(&mut self) -> Answer {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) =
                response.parse(&self.read).expect("a valid answer head")
            {
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let status = response.code.expect("a status");
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map(|(_, v)| v.parse().expect("a numeric length"))
                    .expect("a content-length");
                while self.read.len() < len + length {
                    self.fill().await;
                }
                let body = String::from_utf8(self.read[len..len + length].to_vec()).unwrap();
                self.read.drain(..len + length);
                return Answer {
                    status,
                    headers,
                    body,
                };
            }
            self.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.io.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the hub closed the connection mid-answer");
        self.read.extend_from_slice(&chunk[..n]);
    }

    /// Whether the hub closes the connection (reads nothing more) in time.
    async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(WAIT, self.io.read(&mut chunk)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

in_clear_text_and_over_tls!("current_thread":
    pipelined_publishes_on_one_connection_are_answered_in_order,
    a_head_and_body_sent_in_pieces_are_waited_for,
    a_body_cut_short_by_the_client_s_half_close_is_answered_400_and_not_published,
    a_refusal_keeps_the_connection_open_for_the_next_publish,
    other_requests_on_a_publisher_connection_are_served_by_the_router,
    connection_close_is_answered_then_the_connection_closes,
    the_clients_request_id_is_kept,
    shutdown_closes_an_idle_publisher_connection,
    a_token_already_verified_is_read_as_the_slow_path_reads_it,
    a_head_that_is_not_http_is_answered_with_what_is_wrong,
    a_body_over_the_limit_is_refused_with_413_unread,
);

/// A form publish request with `token`, and extra header lines.
fn publish_bytes(
    hub: &TestHub,
    token: Option<&str>,
    pairs: &[(&str, &str)],
    extra: &str,
) -> Vec<u8> {
    let body = form(pairs);
    let path = url::Url::parse(&hub.url).unwrap().path().to_owned();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        hub.addr,
        body.len()
    )
    .into_bytes()
}

async fn pipelined_publishes_on_one_connection_are_answered_in_order(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let token = hub.publisher();
    let mut connection = Connection::open(&hub).await;
    let mut two = publish_bytes(
        &hub,
        Some(&token),
        &[("topic", BOOK), ("data", "1"), ("id", "one")],
        "",
    );
    two.extend(publish_bytes(
        &hub,
        Some(&token),
        &[("topic", BOOK), ("data", "2"), ("id", "two")],
        "",
    ));
    connection.send(&two).await;
    connection
        .send(&publish_bytes(
            &hub,
            Some(&token),
            &[("topic", BOOK), ("data", "3")],
            "",
        ))
        .await;
    let answers = [
        connection.answer().await,
        connection.answer().await,
        connection.answer().await,
    ];
    assert_eq!(answers.each_ref().map(|a| a.status), [200; 3]);
    assert_eq!(answers[0].body, "one");
    assert_eq!(answers[1].body, "two");
    assert!(answers[2].body.starts_with('#'), "{}", answers[2].body);
    for answer in &answers {
        assert_eq!(
            answer.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(answer.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(answer.header("connection"), None);
    }
    let ids: Vec<&str> = answers
        .iter()
        .map(|a| a.header("x-request-id").unwrap())
        .collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    assert_eq!(stream.data(3).await, ["1", "2", "3"]);
}

async fn a_head_and_body_sent_in_pieces_are_waited_for(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let bytes = publish_bytes(
        &hub,
        Some(&hub.publisher()),
        &[("topic", BOOK), ("data", "pieces")],
        "",
    );
    let mut connection = Connection::open(&hub).await;
    for piece in bytes.chunks(7) {
        connection.send(piece).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answer = connection.answer().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stream.data(1).await, ["pieces"]);
}

async fn a_body_cut_short_by_the_client_s_half_close_is_answered_400_and_not_published(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let bytes = publish_bytes(
        &hub,
        Some(&hub.publisher()),
        &[("topic", BOOK), ("data", "cut short")],
        "",
    );
    let mut connection = Connection::open(&hub).await;
    // All but the last 5 bytes of the body, then the client's end of sending.
    connection.send(&bytes[..bytes.len() - 5]).await;
    connection.io.shutdown().await.expect("half-close");
    let answer = connection.answer().await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let sent = form(&[("topic", BOOK), ("data", "cut short")]).len();
    assert!(
        answer.body.contains(&format!(
            "the request body ended after {} of the {sent} bytes its Content-Length declared",
            sent - 5
        )),
        "{answer:?}"
    );
    assert!(connection.closed().await);
    publish_ok(&hub, &[("topic", BOOK), ("data", "whole")]).await;
    assert_eq!(
        stream.data(1).await,
        ["whole"],
        "the cut one was not published"
    );
}

async fn a_refusal_keeps_the_connection_open_for_the_next_publish(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut connection = Connection::open(&hub).await;
    connection
        .send(&publish_bytes(
            &hub,
            None,
            &[("topic", BOOK), ("data", "x")],
            "",
        ))
        .await;
    let refused = connection.answer().await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer resource_metadata=")),
        "{refused:?}"
    );
    let problem: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(problem["status"], 401);
    assert!(refused.header("x-request-id").is_some());

    let answer = connection
        .publish(&hub, &[("topic", BOOK), ("id", "after")], "")
        .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "after"));

    let invalid = connection.publish(&hub, &[("data", "no topic")], "").await;
    assert_eq!(invalid.status, 400, "{invalid:?}");
    assert!(invalid.body.contains("topic"), "{}", invalid.body);
}

async fn other_requests_on_a_publisher_connection_are_served_by_the_router(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let token = hub.publisher();
    let path = url::Url::parse(&hub.url).unwrap().path().to_owned();
    let metadata = url::Url::parse(&hub.metadata_url())
        .unwrap()
        .path()
        .to_owned();
    let mut connection = Connection::open(&hub).await;
    // A publish and, in the same write, a request for the metadata document.
    let mut bytes = publish_bytes(
        &hub,
        Some(&token),
        &[("topic", BOOK), ("data", "plain")],
        "",
    );
    bytes.extend(format!("GET {metadata} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes());
    connection.send(&bytes).await;
    assert_eq!(connection.answer().await.status, 200);
    let document = connection.answer().await;
    assert_eq!(document.status, 200, "{document:?}");
    let document: serde_json::Value = serde_json::from_str(&document.body).unwrap();
    assert_eq!(document["resource"], hub.url.as_str());
    // The connection is the router's now: a chunked publish is served too.
    let body = form(&[("topic", BOOK), ("data", "chunked")]);
    connection
        .send(
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(connection.answer().await.status, 200);
    assert_eq!(stream.data(2).await, ["plain", "chunked"]);
}

#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_501_and_nothing_is_published() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let token = hub.publisher();
    let path = url::Url::parse(&hub.url).unwrap().path().to_owned();
    let chunked = |codings: &str, data: &str| {
        let body = form(&[("topic", BOOK), ("data", data)]);
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: {codings}\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    let mut connection = Connection::open(&hub).await;
    connection
        .send(chunked("gzip, chunked", "gzipped").as_bytes())
        .await;
    let answer = connection.answer().await;
    assert_eq!(answer.status, 501, "{answer:?}");
    assert!(
        answer
            .body
            .contains("the transfer coding `gzip` is not supported"),
        "{answer:?}"
    );
    let mut connection = Connection::open(&hub).await;
    connection
        .send(chunked("chunked, chunked", "twice").as_bytes())
        .await;
    let answer = connection.answer().await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("chunked more than once"), "{answer:?}");
    let mut connection = Connection::open(&hub).await;
    connection.send(chunked("Chunked", "once").as_bytes()).await;
    assert_eq!(connection.answer().await.status, 200);
    assert_eq!(stream.data(1).await, ["once"]);
}

#[tokio::test]
async fn with_cors_on_a_browser_publish_gets_cors_headers_and_backends_stay_hand_served() {
    const APP: &str = "https://app.example";
    let mut config = config();
    config.cors.origins = vec![APP.into()];
    config.limits.request_head_timeout = Duration::from_millis(300);
    let hub = start(config).await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let mut connection = Connection::open(&hub).await;
    let answer = connection
        .publish(
            &hub,
            &[("topic", BOOK), ("data", "browser")],
            &format!("Origin: {APP}\r\n"),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("access-control-allow-origin"), Some(APP));
    // A backend's publish (no Origin) is served by hand: a request head
    // that stalls after it is answered 408, which hyper would not send.
    let mut connection = Connection::open(&hub).await;
    let answer = connection
        .publish(&hub, &[("topic", BOOK), ("data", "backend")], "")
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let path = url::Url::parse(&hub.url).unwrap().path().to_owned();
    connection
        .send(format!("POST {path} HTTP/1.1\r\nHost: x\r\n").as_bytes())
        .await;
    assert_eq!(connection.answer().await.status, 408);
    assert_eq!(stream.data(2).await, ["browser", "backend"]);
}

async fn connection_close_is_answered_then_the_connection_closes(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut connection = Connection::open(&hub).await;
    let answer = connection
        .publish(&hub, &[("topic", BOOK)], "Connection: close\r\n")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(connection.closed().await);
}

async fn a_body_over_the_limit_is_refused_with_413_unread(tls: bool) {
    let mut config = config();
    config.limits.max_body_bytes = 64;
    let hub = start_either(tls, config).await;
    let mut connection = Connection::open(&hub).await;
    let data = "x".repeat(100);
    let answer = connection
        .publish(&hub, &[("topic", BOOK), ("data", &data)], "")
        .await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    assert!(answer.body.contains("64"), "{}", answer.body);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(connection.closed().await);
}

async fn the_clients_request_id_is_kept(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut connection = Connection::open(&hub).await;
    let answer = connection
        .publish(&hub, &[("topic", BOOK)], "X-Request-Id: trace-42\r\n")
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id"), Some("trace-42"));
}

async fn shutdown_closes_an_idle_publisher_connection(tls: bool) {
    let hub = start_either(tls, config()).await;
    let mut connection = Connection::open(&hub).await;
    let answer = connection.publish(&hub, &[("topic", BOOK)], "").await;
    assert_eq!(answer.status, 200);
    drop(hub);
    assert!(connection.closed().await);
}

async fn a_token_already_verified_is_read_as_the_slow_path_reads_it(tls: bool) {
    let hub = start_either(tls, config()).await;
    let token = hub.publisher();
    let mut connection = Connection::open(&hub).await;
    let with_header = |header: &str, id: &str| {
        let body = form(&[("topic", BOOK), ("id", id)]);
        let path = url::Url::parse(&hub.url).unwrap().path().to_owned();
        [
            format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\n{header}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                hub.addr,
                body.len()
            )
            .into_bytes(),
            body.into_bytes(),
        ]
        .concat()
    };
    // The first publish verifies the token and caches it; the others find
    // it by its bytes, however the header spells the scheme and spaces.
    for (n, header) in [
        format!("Authorization: Bearer {token}"),
        format!("Authorization: Bearer {token}"),
        format!("authorization: bearer   {token}  "),
        format!("AUTHORIZATION: BEARER {token}"),
    ]
    .iter()
    .enumerate()
    {
        connection
            .send(&with_header(header, &format!("n{n}")))
            .await;
        let answer = connection.answer().await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, &*format!("n{n}")),
            "{header}"
        );
    }
    // What the cache does not hold is still checked, with the usual errors.
    for (header, status, words) in [
        (
            format!("Authorization: Basic {token}"),
            401,
            "`Basic` scheme is not one this hub reads",
        ),
        (
            format!("Authorization: Bearer {token}x"),
            401,
            "invalid_token",
        ),
        (
            format!("Authorization: Bearer {token}\u{e9}"),
            400,
            "not ASCII",
        ),
        ("Authorization: Bearer ".to_owned(), 400, "no token"),
    ] {
        connection.send(&with_header(&header, "refused")).await;
        let answer = connection.answer().await;
        assert_eq!(answer.status, status, "{header}: {answer:?}");
        assert!(
            answer.body.contains(words)
                || answer
                    .header("www-authenticate")
                    .is_some_and(|h| h.contains(words)),
            "{header}: {answer:?}"
        );
    }
}

/// A request head that is not HTTP, first on a connection or after a
/// publish, is answered 400 with a problem document that says what is
/// wrong with it (hyper's own answer has no body), and the connection is
/// closed: nothing after it can be read as a request.
async fn a_head_that_is_not_http_is_answered_with_what_is_wrong(tls: bool) {
    let hub = start_either(tls, config()).await;
    let path = "/.well-known/mercure";
    for (head, expected) in [
        (
            format!("GET {path}?match=x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"),
            "a header line is not `Name: value`",
        ),
        (
            "NOT AN HTTP REQUEST\r\n\r\n".to_owned(),
            "the request line does not end with HTTP/1.0 or HTTP/1.1",
        ),
        (
            "GARBAGE\r\n\r\n".to_owned(),
            "the request line is not `METHOD TARGET HTTP/1.1`",
        ),
        (
            format!("POST {path} HTTP/1.1\r\nHost: a\r\nX-Trace: a\u{1}b\r\n\r\n"),
            "a header value has a control character",
        ),
    ] {
        let mut connection = Connection::open(&hub).await;
        connection.send(head.as_bytes()).await;
        let refused = connection.answer().await;
        assert_eq!(refused.status, 400, "{head:?}: {refused:?}");
        assert_eq!(
            refused.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(refused.header("connection"), Some("close"));
        let problem: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(expected), "{head:?}: {detail}");
    }

    let mut connection = Connection::open(&hub).await;
    let answer = connection
        .publish(&hub, &[("topic", BOOK), ("id", "first")], "")
        .await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "first"));
    connection
        .send(format!("POST {path} HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n").as_bytes())
        .await;
    let refused = connection.answer().await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body.contains("a header line is not `Name: value`"),
        "{}",
        refused.body
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, connection.io.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "the connection stays open: {closed:?}"
    );
}
