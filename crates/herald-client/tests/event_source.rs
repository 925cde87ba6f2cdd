//! The event source against a hand-written server: what it sends, what it yields,
//! when it reconnects and when it stops.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use herald_client::{Backoff, Error, EventSource, Item, MessageEvent, Method, StatusCode, Url};
use support::{Server, WAIT};

/// A fast policy so that reconnection tests do not wait seconds.
fn fast() -> Backoff {
    Backoff::new(Duration::from_millis(20), Duration::from_millis(200))
}

async fn next(source: &mut EventSource) -> Result<Item, Error> {
    tokio::time::timeout(WAIT, source.next())
        .await
        .expect("no item within the timeout")
        .expect("the stream ended")
}

async fn next_event(source: &mut EventSource) -> MessageEvent {
    match next(source).await {
        Ok(Item::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn assert_ended(source: &mut EventSource) {
    let end = tokio::time::timeout(WAIT, source.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "expected the end of the stream, got {end:?}"
    );
}

fn url(server: &Server) -> Url {
    Url::parse(&server.url("/events?topic=a")).expect("test URL")
}

fn message(data: &str, id: &str) -> MessageEvent {
    MessageEvent {
        event_type: "message".into(),
        data: data.into(),
        last_event_id: id.into(),
    }
}

#[tokio::test]
async fn sends_the_eventsource_headers_and_yields_open_with_the_response_headers() {
    let server = Server::start().await;
    let mut source = EventSource::builder(url(&server))
        .header("Authorization", "Bearer abc")
        .header("X-Twice", "1")
        .header("X-Twice", "2")
        .last_event_id("resume-here")
        .build()
        .expect("valid configuration");
    let open = tokio::spawn(async move {
        let item = next(&mut source).await;
        (item, source)
    });
    let mut conn = server.accept().await;
    assert_eq!(conn.request.method, "GET");
    assert_eq!(conn.request.target, "/events?topic=a");
    assert_eq!(conn.request.header("accept"), Some("text/event-stream"));
    assert_eq!(conn.request.header("cache-control"), Some("no-cache"));
    assert_eq!(conn.request.header("last-event-id"), Some("resume-here"));
    assert_eq!(conn.request.header("authorization"), Some("Bearer abc"));
    assert_eq!(conn.request.header_values("x-twice"), ["1", "2"]);

    conn.open_stream_with("Mercure-Last-Event-ID: urn:uuid:7\r\n")
        .await;
    let (item, mut source) = open.await.expect("task");
    match item {
        Ok(Item::Open { status, headers }) => {
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers["mercure-last-event-id"], "urn:uuid:7");
        }
        other => panic!("expected Open, got {other:?}"),
    }
    conn.write(b"data: carried\n\nid: 8\ndata: new\n\n").await;
    assert_eq!(
        next_event(&mut source).await,
        message("carried", "resume-here")
    );
    assert_eq!(next_event(&mut source).await, message("new", "8"));
}

#[tokio::test]
async fn reconnects_after_the_stream_ends_with_the_last_complete_id_and_the_same_request() {
    let server = Server::start().await;
    let mut source = EventSource::builder(url(&server))
        .method(Method::from_bytes(b"QUERY").expect("a method name"))
        .body("application/x-www-form-urlencoded", "match=a")
        .backoff(fast())
        .build()
        .expect("valid configuration");
    let reader = tokio::spawn(async move {
        let mut items = Vec::new();
        for _ in 0..6 {
            items.push(next(&mut source).await);
        }
        items
    });

    let mut first = server.accept().await;
    assert_eq!(first.request.method, "QUERY");
    assert_eq!(first.request.body, b"match=a");
    assert_eq!(first.request.header("last-event-id"), None);
    first.open_stream().await;
    first
        .write(b"id: 1\ndata: one\n\nid: 2\ndata: unfinished")
        .await;
    first.close().await;

    let mut second = server.accept().await;
    assert_eq!(second.request.method, "QUERY");
    assert_eq!(second.request.body, b"match=a");
    assert_eq!(
        second.request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(second.request.header("last-event-id"), Some("1"));
    second.open_stream().await;
    second
        .write(b"data: no id of its own\n\n:comment\nid: 3\ndata: three\n\n")
        .await;

    let items = tokio::time::timeout(WAIT, reader)
        .await
        .expect("items")
        .expect("task");
    // As a browser fires `error` when the server ends the stream, before
    // reconnecting: one `Ended`, between the two connections.
    let ended = items
        .iter()
        .position(|item| matches!(item, Err(Error::Ended)))
        .expect("the end of the first stream is reported");
    assert!(matches!(items[ended + 1], Ok(Item::Open { .. })));
    assert!(!Error::Ended.is_fatal());
    let events: Vec<_> = items
        .into_iter()
        .filter_map(|item| match item {
            Ok(Item::Event(event)) => Some(event),
            Ok(Item::Open { .. }) | Err(Error::Ended) => None,
            Err(error) => panic!("unexpected error {error:?}"),
        })
        .collect();
    assert_eq!(
        events,
        [
            message("one", "1"),
            message("no id of its own", "1"),
            message("three", "3")
        ]
    );
}

#[tokio::test]
async fn an_oversized_event_ends_the_source_rather_than_fetching_it_again() {
    let server = Server::start().await;
    let mut source = EventSource::builder(url(&server))
        .header("Last-Event-ID", "from-the-builder")
        .max_event_size(16)
        .backoff(fast())
        .build()
        .expect("valid configuration");
    let reader = tokio::spawn(async move {
        let mut items = Vec::new();
        for _ in 0..3 {
            items.push(next(&mut source).await);
        }
        assert_ended(&mut source).await;
        items
    });
    let mut first = server.accept().await;
    assert_eq!(
        first.request.header("last-event-id"),
        Some("from-the-builder")
    );
    first.open_stream().await;
    first
        .write(b"id: a\ndata: ok\n\ndata: 0123456789abcdefghij\n\n")
        .await;

    let items = tokio::time::timeout(WAIT, reader)
        .await
        .expect("items")
        .expect("task");
    assert!(matches!(items[0], Ok(Item::Open { .. })), "{:?}", items[0]);
    assert_eq!(
        items[1].as_ref().ok(),
        Some(&Item::Event(message("ok", "a")))
    );
    match &items[2] {
        Err(error @ Error::Parse(herald_sse::Error::EventTooLarge { limit: 16 })) => {
            assert!(error.is_fatal());
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    // A resuming server would send the same event again: no reconnection.
    assert!(
        server
            .accept_within(Duration::from_millis(300))
            .await
            .is_none(),
        "reconnected"
    );
}

/// Starts a source, answers its first request with `response`, returns the first item.
async fn first_item_for(status: &str, content_type: &str) -> (Result<Item, Error>, EventSource) {
    first_item_for_answer(status, content_type, "").await
}

/// [`first_item_for`] with a body.
async fn first_item_for_answer(
    status: &str,
    content_type: &str,
    body: &str,
) -> (Result<Item, Error>, EventSource) {
    let server = Server::start().await;
    let mut source = EventSource::builder(url(&server))
        .backoff(fast())
        .build()
        .expect("valid configuration");
    let reader = tokio::spawn(async move {
        let item = next(&mut source).await;
        (item, source)
    });
    server
        .accept()
        .await
        .respond(status, content_type, body)
        .await;
    let result = reader.await.expect("task");
    // A fatal answer must not be retried.
    assert!(
        server
            .accept_within(Duration::from_millis(300))
            .await
            .is_none(),
        "reconnected"
    );
    result
}

#[tokio::test]
async fn no_content_stops_for_good() {
    let (item, mut source) = first_item_for("204 No Content", "text/event-stream").await;
    let error = item.expect_err("204 is an error");
    assert!(matches!(error, Error::NoContent), "{error:?}");
    assert!(error.is_fatal());
    assert_ended(&mut source).await;
}

#[tokio::test]
async fn a_non_2xx_status_stops_for_good() {
    let (item, mut source) = first_item_for("503 Service Unavailable", "text/event-stream").await;
    match item {
        Err(Error::Status { status, .. }) => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE),
        other => panic!("expected a status error, got {other:?}"),
    }
    assert_ended(&mut source).await;
}

#[tokio::test]
async fn a_2xx_status_other_than_200_stops_for_good_as_in_a_browser() {
    for status in [
        "201 Created",
        "205 Reset Content",
        "206 Partial Content",
        "299 Whatever",
    ] {
        let (item, mut source) =
            first_item_for_answer(status, "text/event-stream", "data: x\n\n").await;
        match item {
            Err(error @ Error::Status { .. }) => {
                assert!(error.is_fatal());
                let text = error.to_string();
                assert!(
                    text.starts_with(&format!("the server answered {}", &status[..3])),
                    "{text}"
                );
                assert!(
                    text.ends_with(": its body is an event stream, which only a 200 OK opens"),
                    "{text}"
                );
            }
            other => panic!("{status}: expected a status error, got {other:?}"),
        }
        assert_ended(&mut source).await;
    }
}

#[tokio::test]
async fn a_refusal_carries_the_servers_explanation() {
    let (item, _source) = first_item_for_answer(
        "400 Bad Request",
        "application/problem+json",
        r#"{"title":"Invalid token","detail":"the header is not base64url","status":400}"#,
    )
    .await;
    match item {
        Err(Error::Status {
            status, problem, ..
        }) => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(problem, "Invalid token: the header is not base64url");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_last_event_id_header_is_not_sent_once_the_stream_resets_the_id() {
    let server = Server::start().await;
    let mut source = EventSource::builder(url(&server))
        .header("Last-Event-ID", "5")
        .backoff(fast())
        .build()
        .expect("valid configuration");
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(next(&mut source).await);
        }
        seen
    });
    let mut first = server.accept().await;
    assert_eq!(first.request.header_values("last-event-id"), ["5"]);
    first.open_stream().await;
    first
        .write(b"retry: 0\nid: 7\ndata: a\n\nid\ndata: b\n\n")
        .await;
    first.close().await;
    let mut second = server.accept().await;
    assert_eq!(
        second.request.header_values("last-event-id"),
        Vec::<&str>::new()
    );
    second.open_stream().await;
    let seen = reader.await.expect("task");
    assert_eq!(seen[1].as_ref().ok(), Some(&Item::Event(message("a", "7"))));
    assert_eq!(seen[2].as_ref().ok(), Some(&Item::Event(message("b", ""))));
    assert!(matches!(seen[3], Err(Error::Ended)), "{:?}", seen[3]);
    assert!(matches!(seen[4], Ok(Item::Open { .. })), "{:?}", seen[4]);
}

#[tokio::test]
async fn another_content_type_stops_for_good() {
    let (item, mut source) = first_item_for("200 OK", "text/html; charset=utf-8").await;
    match item {
        Err(error @ Error::ContentType { .. }) => assert_eq!(
            error.to_string(),
            "the server answered with content type text/html; charset=utf-8, not text/event-stream"
        ),
        other => panic!("expected a content type error, got {other:?}"),
    }
    assert_ended(&mut source).await;
}

#[tokio::test]
async fn the_content_type_is_the_last_valid_one_of_every_value_as_in_fetch() {
    let server = Server::start().await;
    let mut source = EventSource::builder(url(&server))
        .backoff(fast())
        .build()
        .expect("valid configuration");
    let reader = tokio::spawn(async move {
        let open = next(&mut source).await;
        (open, next_event(&mut source).await)
    });
    let mut conn = server.accept().await;
    // Two headers, the second listing two values: a browser opens this stream.
    conn.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Type: nonsense, text/event-stream\r\nConnection: close\r\n\r\ndata: x\n\n",
    )
    .await;
    let (open, event) = reader.await.expect("task");
    assert!(matches!(open, Ok(Item::Open { .. })), "{open:?}");
    assert_eq!(event, message("x", ""));

    // The other way round, the last valid value is HTML: refused, every value named.
    let (item, _) = first_item_for("200 OK", "text/event-stream, text/html").await;
    match item {
        Err(error @ Error::ContentType { .. }) => assert_eq!(
            error.to_string(),
            "the server answered with content type text/event-stream, text/html, not text/event-stream"
        ),
        other => panic!("expected a content type error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    drop(listener);
    let url = Url::parse(&format!("http://{address}/")).expect("url");
    let mut source = EventSource::builder(url)
        .backoff(fast())
        .build()
        .expect("valid");
    for _ in 0..3 {
        let error = next(&mut source).await.expect_err("nothing listens");
        assert!(matches!(error, Error::Connect(_)), "{error:?}");
        assert!(!error.is_fatal());
    }
}

/// A self-signed certificate for `localhost` (not a CA, valid until 2126)
/// and its key, made with `openssl req -x509 -newkey ec`; no client trusts it.
const SELF_SIGNED_CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIBkjCCATigAwIBAgIUVDmi4Y0TYPGN0M7TlxCcW0lIdkEwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNjE1MjIzMFoYDzIxMjYxMTEy
MTUyMjMwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARlR6ouDHtUsBZODJT/qLtHfdCV8uULjwfK9NX5Bd/rfkTFWRA9BFsx
v5Kk35m0n1kG4WAdgKymgH55ege7iwCNo2YwZDAdBgNVHQ4EFgQUS9wvc+fzJS6T
mMTcHuW4mKYIkYQwHwYDVR0jBBgwFoAUS9wvc+fzJS6TmMTcHuW4mKYIkYQwFAYD
VR0RBA0wC4IJbG9jYWxob3N0MAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0EAwIDSAAw
RQIgR5m0J+eyhWjFPUVFC7C61pwM8M7boxUKtD/GooupuFYCIQCkRInqsqL3Oyr4
H4sMLlV9yiMnvKE7dhtOTZTiJkbblw==
-----END CERTIFICATE-----
";
const SELF_SIGNED_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZWqKn3ADnWBfGHUb
4gwnknKV+A0AqsJXE8b/Zve1a8uhRANCAARlR6ouDHtUsBZODJT/qLtHfdCV8uUL
jwfK9NX5Bd/rfkTFWRA9BFsxv5Kk35m0n1kG4WAdgKymgH55ege7iwCN
-----END PRIVATE KEY-----
";

/// Serves TLS with the self-signed certificate on 127.0.0.1, on a thread of
/// its own, handshaking with every connection until the client gives up.
fn self_signed_tls_server() -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert = CertificateDer::from_pem_slice(SELF_SIGNED_CERT.as_bytes()).expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(SELF_SIGNED_KEY.as_bytes()).expect("key");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    let config = std::sync::Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            let _ = tcp.set_read_timeout(Some(WAIT));
            let Ok(mut tls) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            // Ends when the client refuses the certificate and hangs up.
            while tls.is_handshaking() && tls.complete_io(&mut tcp).is_ok() {}
        }
    });
    address
}

#[tokio::test]
async fn an_untrusted_certificate_stops_for_good() {
    let address = self_signed_tls_server();
    let url = Url::parse(&format!("https://localhost:{}/", address.port())).expect("url");
    let mut source = EventSource::builder(url)
        .backoff(fast())
        .build()
        .expect("valid");
    let error = next(&mut source)
        .await
        .expect_err("the certificate is refused");
    assert!(matches!(error, Error::Certificate(_)), "{error:?}");
    assert!(error.is_fatal());
    let cause = std::error::Error::source(&error).expect("a cause");
    assert!(
        format!("{cause:?}").contains("InvalidCertificate"),
        "{cause:?}"
    );
    assert_ended(&mut source).await;
}

#[test]
fn the_builder_refuses_bad_headers_and_schemes() {
    let url = Url::parse("http://127.0.0.1/").expect("url");
    let error = EventSource::builder(url.clone())
        .header("Bad Name", "v")
        .build()
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidHeader { ref name, .. } if name == "Bad Name"),
        "{error:?}"
    );
    let error = EventSource::builder(url)
        .header("X", "a\nb")
        .build()
        .unwrap_err();
    assert!(
        matches!(error, Error::InvalidHeader { ref name, .. } if name == "X"),
        "{error:?}"
    );
    let ftp = Url::parse("ftp://127.0.0.1/").expect("url");
    let error = EventSource::builder(ftp).build().unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedScheme(ref s) if s == "ftp"),
        "{error:?}"
    );
}
