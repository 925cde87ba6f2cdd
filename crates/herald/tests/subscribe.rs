//! `herald subscribe` against a hand-written server: what it prints, what it
//! sends, when it reconnects and how it exits.

mod support;

use std::time::{Duration, Instant};

use support::{Server, run, spawn};

/// An event stream that ends, then a 204 for the reconnection: herald exits 0
/// and everything it printed can be compared at once. `retry: 0` keeps the
/// reconnection immediate.
async fn serve_then_stop(server: &Server, stream: &[u8]) -> Option<String> {
    let mut conn = server.accept().await;
    conn.open_stream().await;
    conn.write(b"retry: 0\n\n").await;
    conn.write(stream).await;
    conn.close().await;
    let next = server.accept().await;
    let last_event_id = next.request.header("last-event-id").map(str::to_owned);
    next.respond("204 No Content", "text/plain", "").await;
    last_event_id
}

#[tokio::test]
async fn a_stream_dripped_byte_by_byte_prints_every_event_exactly() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", "--format", "json", &url]);
    let mut conn = server.accept().await;
    conn.open_stream().await;
    conn.drip(
        b"\xEF\xBB\xBFretry: 0\r\n: a comment\r\nevent: greeting\r\nid: 1\r\ndata: h\xC3\xA9llo\r\ndata: second line\r\n\r\n\
          data: no id of its own\r\rid: 2\ndata:x\n\n",
    )
    .await;
    conn.close().await;
    let next = server.accept().await;
    assert_eq!(next.request.header("last-event-id"), Some("2"));
    next.respond("204 No Content", "text/plain", "").await;

    let output = herald.finish().await;
    assert_eq!(
        output.stderr,
        format!(
            "herald: {url}: the server ended the stream; reconnecting\n\
             herald: {url}: the server answered 204 No Content, which asks not to reconnect; \
             stopping\n"
        )
    );
    assert_eq!(output.code(), Some(0));
    assert_eq!(
        output.stdout,
        "{\"type\":\"greeting\",\"data\":\"héllo\\nsecond line\",\"id\":\"1\"}\n\
         {\"type\":\"message\",\"data\":\"no id of its own\",\"id\":\"1\"}\n\
         {\"type\":\"message\",\"data\":\"x\",\"id\":\"2\"}\n"
    );
}

#[tokio::test]
async fn a_connection_closed_mid_event_drops_it_and_resumes_from_the_last_complete_id() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", "--format", "raw", &url]);
    let resumed_from = serve_then_stop(
        &server,
        b"id: 1\ndata: one\n\nid: 2\ndata: two\n\nid: 3\ndata: half of thr",
    )
    .await;
    assert_eq!(resumed_from.as_deref(), Some("2"));
    let output = herald.finish().await;
    assert_eq!(
        (output.code(), output.stdout.as_str()),
        (Some(0), "one\ntwo\n")
    );
}

#[tokio::test]
async fn a_connection_broken_mid_event_reconnects_and_prints_only_complete_events() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", "--format", "raw", &url]);
    let mut conn = server.accept().await;
    conn.open_chunked_stream().await;
    conn.chunk(b"retry: 0\nid: 7\ndata: seven\n\n").await;
    conn.chunk(b"id: 8\ndata: eig").await;
    // No terminating chunk: the body is cut short, a network error.
    conn.close().await;
    let mut next = server.accept().await;
    assert_eq!(next.request.header("last-event-id"), Some("7"));
    next.open_stream().await;
    next.write(b"id: 8\ndata: eight\n\n").await;
    next.close().await;
    server
        .accept()
        .await
        .respond("204 No Content", "text/plain", "")
        .await;

    let output = herald.finish().await;
    assert_eq!(
        (output.code(), output.stdout.as_str()),
        (Some(0), "seven\neight\n")
    );
    let warnings: Vec<_> = output.stderr.lines().collect();
    assert_eq!(warnings.len(), 3, "{:?}", output.stderr);
    assert!(
        warnings[0].starts_with("herald: connection lost")
            && warnings[0].ends_with("; reconnecting"),
        "{:?}",
        warnings[0]
    );
    assert_eq!(
        warnings[1..],
        [
            format!("herald: {url}: the server ended the stream; reconnecting"),
            format!(
                "herald: {url}: the server answered 204 No Content, which asks not to \
                 reconnect; stopping"
            )
        ]
    );
}

#[tokio::test]
async fn no_content_on_the_first_request_exits_0_saying_why_it_stopped() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url]);
    server
        .accept()
        .await
        .respond("204 No Content", "text/plain", "")
        .await;
    let output = herald.finish().await;
    assert_eq!(
        (
            output.code(),
            output.stdout.as_str(),
            output.stderr.as_str()
        ),
        (
            Some(0),
            "",
            format!(
                "herald: {url}: the server answered 204 No Content, which asks not to \
                 reconnect; stopping\n"
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn a_server_error_exits_1_naming_the_status_and_what_the_server_said() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url]);
    server
        .accept()
        .await
        .respond("500 Internal Server Error", "text/plain", "boom")
        .await;
    let output = herald.finish().await;
    assert_eq!(output.code(), Some(1));
    assert_eq!(output.stdout, "");
    assert_eq!(
        output.stderr,
        format!("herald: {url}: the server answered 500 Internal Server Error: boom\n")
    );
    assert!(
        server
            .accept_within(Duration::from_millis(200))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn another_content_type_exits_1_naming_it() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url]);
    server
        .accept()
        .await
        .respond("200 OK", "text/html", "<p>hi</p>")
        .await;
    let output = herald.finish().await;
    assert_eq!(output.code(), Some(1));
    assert_eq!(output.stdout, "");
    assert_eq!(
        output.stderr,
        format!(
            "herald: {url}: the server answered with content type text/html, not text/event-stream\n"
        )
    );
}

#[tokio::test]
async fn the_retry_field_sets_the_reconnection_delay() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url]);

    let mut first = server.accept().await;
    first.open_stream().await;
    first.write(b"retry: 300\n\n").await;
    first.close().await;
    let closed = Instant::now();
    let mut second = server.accept().await;
    let waited = closed.elapsed();
    // 300 ms plus at most 20% jitter; the default would be 3 s.
    assert!(
        waited >= Duration::from_millis(250),
        "reconnected after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(2000),
        "reconnected after {waited:?}"
    );

    second.open_stream().await;
    second.write(b"retry: 5000\n\n").await;
    second.close().await;
    let early = server.accept_within(Duration::from_secs(1)).await;
    assert!(
        early.is_none(),
        "reconnected within 1 s despite retry: 5000"
    );
    herald.kill().await;
}

#[tokio::test]
async fn sends_the_last_event_id_custom_headers_and_token_on_the_first_request() {
    let server = Server::start().await;
    let url = server.url("/events?x=1");
    let herald = spawn(&[
        "subscribe",
        &url,
        "--last-event-id",
        "urn:uuid:41",
        "--header",
        "X-Tenant: acme corp",
        "-H",
        "X-Trace:abc",
        "--token",
        "jwt.value",
    ]);
    let conn = server.accept().await;
    let request = &conn.request;
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, "/events?x=1");
    assert_eq!(request.header("last-event-id"), Some("urn:uuid:41"));
    assert_eq!(request.header("x-tenant"), Some("acme corp"));
    assert_eq!(request.header("x-trace"), Some("abc"));
    assert_eq!(request.header("authorization"), Some("Bearer jwt.value"));
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("cache-control"), Some("no-cache"));
    conn.respond("204 No Content", "text/plain", "").await;
    assert_eq!(herald.finish().await.code(), Some(0));
}

#[tokio::test]
async fn hub_mode_builds_the_mercure_query_like_urlsearchparams() {
    let server = Server::start().await;
    let hub = server.url("/.well-known/mercure");
    let herald = spawn(&[
        "subscribe",
        "--hub",
        &hub,
        "--match",
        "https://example.com/books/1",
        "--match",
        "a b~*",
        "--match-urlpattern",
        "https://example.com/books/:id",
        "--token",
        "t0k",
    ]);
    let conn = server.accept().await;
    assert_eq!(
        conn.request.target,
        "/.well-known/mercure?match=https%3A%2F%2Fexample.com%2Fbooks%2F1&match=a+b%7E*\
         &match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid"
    );
    assert_eq!(conn.request.header("authorization"), Some("Bearer t0k"));
    conn.respond("204 No Content", "text/plain", "").await;
    assert_eq!(herald.finish().await.code(), Some(0));
}

#[tokio::test]
async fn matchers_with_a_positional_url_are_refused_not_ignored() {
    for flag in ["--match", "--match-urlpattern"] {
        let output = run(&["subscribe", "http://127.0.0.1:9/events", flag, "x"]).await;
        assert_eq!(output.code(), Some(2), "{}", output.stderr);
        assert!(
            output.stderr.contains(flag) && output.stderr.contains("cannot be used with"),
            "{}",
            output.stderr
        );
        assert_eq!(output.stdout, "");
    }
}

/// Serves TLS on 127.0.0.1 with a self-signed certificate for `localhost`
/// (a CA's when `ca`), on a thread of its own; counts the connections.
fn self_signed_tls_server(
    ca: bool,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).expect("certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key.into())
        .expect("server config");
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(mut tcp) = tcp else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(mut tls) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            // Ends when the client refuses the certificate and hangs up.
            while tls.is_handshaking() && tls.complete_io(&mut tcp).is_ok() {}
        }
    });
    (address, connections)
}

#[tokio::test]
async fn an_untrusted_certificate_exits_1_naming_it_instead_of_reconnecting() {
    // A self-signed leaf (UnknownIssuer) and a self-signed CA (CaUsedAsEndEntity).
    for ca in [false, true] {
        let (address, connections) = self_signed_tls_server(ca);
        let url = format!("https://localhost:{}/events", address.port());
        let started = Instant::now();
        // `finish` fails the test unless herald exits within the testkit's WAIT.
        let output = spawn(&["subscribe", &url]).finish().await;
        assert_eq!(output.code(), Some(1), "{}", output.stderr);
        let prefix = format!(
            "herald: {url}: the server's TLS certificate is not trusted: invalid peer certificate: "
        );
        assert!(output.stderr.starts_with(&prefix), "{:?}", output.stderr);
        assert_eq!(output.stderr.lines().count(), 1, "{:?}", output.stderr);
        assert!(
            !output.stderr.contains("reconnecting"),
            "{:?}",
            output.stderr
        );
        assert_eq!(output.stdout, "");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn json_lines_are_exact_and_flushed_one_by_one() {
    let server = Server::start().await;
    let url = server.url("/events");
    let mut herald = spawn(&["subscribe", &url, "--format", "json"]);
    let mut conn = server.accept().await;
    conn.open_stream().await;
    conn.write(b"event: update\nid: 1\ndata: {\"a\": \"b\\\\c\"}\n\n")
        .await;
    assert_eq!(
        herald.line().await,
        r#"{"type":"update","data":"{\"a\": \"b\\\\c\"}","id":"1"}"#
    );
    conn.write(b"data: tab\tand\ndata: \x01\n\n").await;
    assert_eq!(
        herald.line().await,
        r#"{"type":"message","data":"tab\tand\n\u0001","id":"1"}"#
    );
    conn.write(b"id\ndata: empty id\n\n").await;
    assert_eq!(
        herald.line().await,
        r#"{"type":"message","data":"empty id","id":""}"#
    );
    herald.kill().await;
}

#[tokio::test]
async fn pretty_and_raw_formats() {
    let stream: &[u8] = b"event: note\nid: 9\ndata: a\ndata: b\n\nid\ndata: c\n\n";
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url]);
    serve_then_stop(&server, stream).await;
    let output = herald.finish().await;
    assert_eq!(output.stdout, "[note] id=9\na\nb\n\n[message]\nc\n\n");

    let herald = spawn(&["subscribe", &url, "--format", "raw"]);
    serve_then_stop(&server, stream).await;
    assert_eq!(herald.finish().await.stdout, "a\nb\nc\n");
}

#[tokio::test]
async fn an_event_past_max_event_size_exits_1_instead_of_fetching_it_again() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&[
        "subscribe",
        "--format",
        "raw",
        "--max-event-size",
        "16",
        &url,
    ]);
    let mut conn = server.accept().await;
    conn.open_stream().await;
    conn.write(b"id: 1\ndata: small\n\nid: 2\ndata: far too large\n\n")
        .await;
    let output = herald.finish().await;
    assert_eq!(
        (
            output.code(),
            output.stdout.as_str(),
            output.stderr.as_str()
        ),
        (
            Some(1),
            "small\n",
            format!(
                "herald: {url}: an event (or line) is larger than 16 bytes; raise \
                 --max-event-size to accept it\n"
            )
            .as_str()
        )
    );
    // Not asked again: a hub resuming after id 1 would send the same event.
    assert!(
        server
            .accept_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_named_as_such_not_as_a_failed_connection() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url]);
    let mut conn = server.accept().await;
    conn.write(b"hello there\r\n\r\n").await;
    conn.close().await;
    // The retry is answered 204, so that herald stops.
    server
        .accept()
        .await
        .respond("204 No Content", "text/plain", "")
        .await;
    let output = herald.finish().await;
    let first = output.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("herald: {url}: no valid HTTP answer: "))
            && first.ends_with("; reconnecting"),
        "{:?}",
        output.stderr
    );
}

#[tokio::test]
async fn a_bad_url_is_a_usage_error() {
    let output = run(&["subscribe", "not a url"]).await;
    assert_eq!(output.code(), Some(2));
    assert_eq!(
        output.stderr,
        "herald: invalid URL 'not a url': relative URL without a base\n"
    );
    let output = run(&["subscribe", "ftp://example.com/"]).await;
    assert_eq!(output.code(), Some(2));
    assert_eq!(
        output.stderr,
        "herald: invalid URL 'ftp://example.com/': the scheme is ftp, not http or https\n"
    );
}

#[tokio::test]
async fn bad_flag_values_are_usage_errors() {
    let cases = [
        (
            vec!["--format", "xml"],
            "herald: invalid --format 'xml': expected pretty, json or raw\n",
        ),
        (
            vec!["--header", "no colon"],
            "herald: invalid --header 'no colon': expected 'Name: value'\n",
        ),
        (
            vec!["--header", "Bad Name: v"],
            "herald: invalid --header 'Bad Name: v': the name is not a valid HTTP header name\n",
        ),
        (
            vec!["--last-event-id", "a\u{1}b"],
            "herald: invalid --last-event-id \"a\\u{1}b\": it holds a control character, which \
             cannot be sent in the Last-Event-ID header\n",
        ),
        (
            vec!["--max-event-size", "0"],
            "error: invalid value '0' for '--max-event-size <BYTES>': 0 is not in 1..=4294967296\n\
             \nFor more information, try '--help'.\n",
        ),
        // Two arguments that would send one header twice.
        (
            vec!["--token", "t", "--header", "authorization: Bearer u"],
            "herald: --token (or HERALD_TOKEN) and --header 'Authorization: …' would both send \
             an Authorization header: give one\n",
        ),
        (
            vec!["--last-event-id", "1", "-H", "Last-Event-ID: 2"],
            "herald: --last-event-id and --header 'Last-Event-ID: …' would both send a \
             Last-Event-ID header: give one\n",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["subscribe", "http://127.0.0.1:9/"];
        args.extend(flags);
        let output = run(&args).await;
        assert_eq!((output.code(), output.stderr.as_str()), (Some(2), message));
        assert_eq!(output.stdout, "");
    }
    let output = run(&[
        "subscribe",
        "http://user:secret@127.0.0.1:9/",
        "--token",
        "t",
    ])
    .await;
    assert_eq!(
        (output.code(), output.stderr.as_str()),
        (
            Some(2),
            "herald: --token (or HERALD_TOKEN) and the URL's user:password@ would both send an \
             Authorization header: give one\n"
        )
    );
    let output = run(&["subscribe", "--hub", "http://127.0.0.1:9/"]).await;
    assert_eq!(
        (output.code(), output.stderr.as_str()),
        (
            Some(2),
            "herald: --hub needs at least one --match or --match-urlpattern\n"
        )
    );
    // Neither URL nor --hub: clap's usage error.
    assert_eq!(run(&["subscribe"]).await.code(), Some(2));
}

#[tokio::test]
async fn a_server_not_up_yet_is_retried_as_a_browser_does() {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let url = format!("http://{address}/events");
    let mut herald = spawn(&["subscribe", "--format", "raw", &url]);
    let refused = herald.err_line().await;
    let prefix = format!("herald: cannot connect to {url}: ");
    assert!(refused.starts_with(&prefix), "{refused:?}");
    assert!(refused.ends_with("; reconnecting"), "{refused:?}");
    // The server comes up: the next attempt (after the 3 s default delay) connects.
    let server = Server::start_on(address).await;
    let mut conn = server.accept().await;
    conn.open_stream().await;
    conn.write(b"data: up at last\n\n").await;
    assert_eq!(herald.line().await, "up at last");
    herald.kill().await;
}

#[tokio::test]
async fn pretty_output_shows_what_would_drive_a_terminal_escaped() {
    let stream: &[u8] = b"event: a\x1b]0;title\x07\nid: i\x1b[2J\ndata: x\x1b[31m\ty\ndata: z\n\n";
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url]);
    serve_then_stop(&server, stream).await;
    assert_eq!(
        herald.finish().await.stdout,
        "[a\\u{1b}]0;title\\u{7}] id=i\\u{1b}[2J\nx\\u{1b}[31m\ty\nz\n\n"
    );
}

#[tokio::test]
async fn an_id_that_cannot_be_sent_back_is_said_on_stderr() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", "--format", "raw", &url]);
    let resumed_with = serve_then_stop(&server, b"id: a\x01b\ndata: x\n\n").await;
    assert_eq!(resumed_with, None, "the HTTP stack cannot send it");
    let output = herald.finish().await;
    assert_eq!(output.stdout, "x\n");
    assert!(
        output
            .stderr
            .contains("the last event ID \"a\\u{1}b\" holds a control character, which cannot be sent in the Last-Event-ID header; reconnecting without it"),
        "{}",
        output.stderr
    );
}

#[tokio::test]
async fn an_empty_token_is_no_token() {
    let server = Server::start().await;
    let url = server.url("/events");
    let herald = spawn(&["subscribe", &url, "--token", ""]);
    let conn = server.accept().await;
    assert_eq!(conn.request.header("authorization"), None);
    conn.respond("204 No Content", "text/plain", "").await;
    assert_eq!(herald.finish().await.code(), Some(0));
}

#[tokio::test]
async fn a_closed_stderr_does_not_stop_following() {
    let server = Server::start().await;
    let url = server.url("/events");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["subscribe", "--format", "raw", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald");
    // Nobody reads stderr: the reconnection notice meets a closed pipe.
    drop(child.stderr.take());
    let mut conn = server.accept().await;
    conn.open_chunked_stream().await;
    conn.chunk(b"retry: 0\ndata: one\n\n").await;
    // No terminating chunk: a network error, said on stderr.
    conn.close().await;
    let mut next = server.accept().await;
    next.open_stream().await;
    next.write(b"data: still here\n\n").await;
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line),
        )
        .await
        .expect("a line within 10 s")
        .unwrap();
        lines.push(line);
    }
    assert_eq!(lines, ["one\n", "still here\n"]);
    assert_eq!(child.try_wait().unwrap(), None, "still following");
    child.kill().await.unwrap();
}
