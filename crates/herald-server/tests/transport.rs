//! The transports on a real socket (127.0.0.1:0): HTTP/1.1 and h2c on one
//! clear-text port; HTTPS with ALPN `h2` and `http/1.1`; certificate rotation
//! from disk without a restart; bad certificate files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use herald_hub::{Hub, Update};
use herald_server::{ConnectionLimits, Herald, Settings, Tls, TlsError, serve, serve_tls};
use http::Version;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for anything before failing.
const WAIT: Duration = Duration::from_secs(10);
const TOPIC: &str = "https://example.com/books/1";

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A test certificate authority issuing `localhost` leaves.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

/// One leaf certificate and its key, as PEM, and the DER the server presents.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "herald test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, name: &str, serial: u64) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(serial.into());
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn reqwest_certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_der(&self.der).unwrap()
    }
}

/// The certificate and key files in a temporary directory.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn new(leaf: &Leaf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Self {
            cert: dir.path().join("fullchain.pem"),
            key: dir.path().join("privkey.pem"),
            _dir: dir,
        };
        files.install(leaf);
        files
    }

    /// Replaces both files atomically, like a renewal client does.
    fn install(&self, leaf: &Leaf) {
        replace(&self.key, leaf.key_pem.as_bytes());
        replace(&self.cert, leaf.cert_pem.as_bytes());
    }
}

fn replace(path: &Path, contents: &[u8]) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// A hub served on 127.0.0.1:0 until [`Server::stop`].
struct Server {
    addr: SocketAddr,
    herald: Herald,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(tls: Option<Arc<Tls>>, settings: Settings) -> Self {
        Self::start_wrapped(tls, settings, |router| router).await
    }

    /// Serves the hub's routes inside `wrap(router)`, as an application
    /// embedding the hub does.
    async fn start_wrapped(
        tls: Option<Arc<Tls>>,
        settings: Settings,
        wrap: impl FnOnce(axum::Router) -> axum::Router + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://localhost:{}/.well-known/mercure", addr.port());
        let herald = Herald::new(Hub::builder(url.parse().unwrap()).build(), None, settings);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let served = herald.clone();
        let task = tokio::spawn(async move {
            let router = wrap(served.router());
            match tls {
                Some(tls) => serve_tls(listener, &served, router, tls, shutdown).await,
                None => serve(listener, &served, router, shutdown).await,
            }
        });
        Self {
            addr,
            herald,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, scheme: &str) -> String {
        format!(
            "{scheme}://localhost:{}/.well-known/mercure?match={TOPIC}",
            self.addr.port()
        )
    }

    async fn publish(&self, data: &str) {
        self.herald
            .hub()
            .publish(Update::new(TOPIC, data))
            .await
            .unwrap();
    }

    /// Shuts down and waits (bounded) for the server to return.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the server stops within the timeout")
            .unwrap()
            .unwrap();
    }
}

fn tls_client(ca: &Ca, addr: SocketAddr) -> reqwest::ClientBuilder {
    install_provider();
    reqwest::Client::builder()
        .tls_certs_only([ca.reqwest_certificate()])
        .resolve("localhost", addr)
        .timeout(WAIT * 3)
}

/// An open event stream and the text read from it so far.
struct Stream {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    text: String,
}

impl Stream {
    async fn open(client: &reqwest::Client, url: &str, version: Version) -> Self {
        let response = tokio::time::timeout(WAIT, client.get(url).send())
            .await
            .expect("response headers within the timeout")
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), version);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an event stream"
        );
        Self {
            body: response.bytes_stream().boxed(),
            text: String::new(),
        }
    }

    /// Reads until the text contains `needle`; fails after [`WAIT`].
    async fn expect(&mut self, needle: &str) {
        let found = tokio::time::timeout(WAIT, async {
            while !self.text.contains(needle) {
                match self.body.next().await {
                    Some(chunk) => self
                        .text
                        .push_str(&String::from_utf8_lossy(&chunk.unwrap())),
                    None => return false,
                }
            }
            true
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "`{needle}` not received; got {:?}",
            self.text
        );
    }

    /// Reads to the end of the stream; fails after [`WAIT`]. Returns
    /// whether it ended whole (not cut by an error).
    async fn expect_end(&mut self) -> bool {
        tokio::time::timeout(WAIT, async {
            while let Some(chunk) = self.body.next().await {
                match chunk {
                    Ok(chunk) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                    Err(_) => return false,
                }
            }
            true
        })
        .await
        .expect("the stream ends within the timeout")
    }
}

/// A TLS connection to `addr` trusting `ca` (raw rustls client, no ALPN).
async fn tls_connect(addr: SocketAddr, ca: &Ca) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(WAIT, async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await.unwrap()
    })
    .await
    .expect("handshake within the timeout")
}

/// The leaf certificate a new TLS connection is served.
async fn served_leaf(addr: SocketAddr, ca: &Ca) -> CertificateDer<'static> {
    let stream = tls_connect(addr, ca).await;
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Waits (bounded) until new connections are served `leaf`.
async fn wait_for_leaf(addr: SocketAddr, ca: &Ca, leaf: &Leaf) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while served_leaf(addr, ca).await != leaf.der {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not picked up within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn tls(files: &Files, reload: Duration) -> Arc<Tls> {
    Arc::new(
        Tls::load(&files.cert, &files.key)
            .unwrap()
            .with_reload_interval(reload),
    )
}

#[tokio::test]
async fn clear_text_serves_http1_and_h2c_prior_knowledge_on_one_port() {
    let settings = Settings {
        connections: ConnectionLimits {
            per_address: 2,
            ..ConnectionLimits::default()
        },
        ..Settings::default()
    };
    let server = Server::start(None, settings).await;
    let url = server.url("http");

    install_provider();
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("localhost", server.addr)
        .build()
        .unwrap();
    let mut over_h2c = Stream::open(&h2c, &url, Version::HTTP_2).await;
    let http1 = reqwest::Client::builder()
        .http1_only()
        .resolve("localhost", server.addr)
        .build()
        .unwrap();
    let mut over_http1 = Stream::open(&http1, &url, Version::HTTP_11).await;

    server.publish("over both").await;
    over_h2c.expect("data: over both\n\n").await;
    over_http1.expect("data: over both\n\n").await;

    // A third stream from 127.0.0.1 is over the per-address limit.
    let third = tokio::time::timeout(WAIT, h2c.get(&url).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.status(), 429, "ConnectInfo reaches the handlers");
    server.stop().await;
    over_h2c.expect_end().await;
    assert!(over_h2c.text.contains("retry:"), "{:?}", over_h2c.text);
}

#[tokio::test]
async fn a_request_head_over_64_kib_is_a_431_on_http1_and_h2c() {
    let server = Server::start(None, Settings::default()).await;
    let url = server.url("http");
    install_provider();
    for h2c in [false, true] {
        let builder = reqwest::Client::builder().resolve("localhost", server.addr);
        let client = if h2c {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        }
        .build()
        .unwrap();
        // A large cookie still fits: tokens are far smaller.
        let fits = tokio::time::timeout(
            WAIT,
            client
                .get(&url)
                .header("cookie", format!("a={}", "x".repeat(40_000)))
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(fits.status(), 200, "h2c: {h2c}");
        drop(fits);
        // Beyond the bound the head is refused, on HTTP/2 as a stream reset
        // or a 431, never held for the stream's life.
        let refused = tokio::time::timeout(
            WAIT,
            client
                .get(&url)
                .header("cookie", format!("a={}", "x".repeat(100_000)))
                .send(),
        )
        .await
        .unwrap();
        match refused {
            Ok(response) => assert_eq!(response.status(), 431, "h2c: {h2c}"),
            Err(error) => assert!(h2c, "HTTP/1.1 answers 431, not: {error}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn tls_negotiates_h2_with_alpn_and_also_serves_http1() {
    let ca = Ca::new();
    let leaf = ca.leaf("herald one", 1);
    let files = Files::new(&leaf);
    // Two subscribers per address: a third refused proves the handlers see
    // the peer address under TLS.
    let settings = Settings {
        connections: ConnectionLimits {
            per_address: 2,
            ..ConnectionLimits::default()
        },
        ..Settings::default()
    };
    let server = Server::start(Some(tls(&files, Duration::ZERO)), settings).await;
    let url = server.url("https");

    let h2 = tls_client(&ca, server.addr).build().unwrap();
    let mut over_h2 = Stream::open(&h2, &url, Version::HTTP_2).await;
    let http1 = tls_client(&ca, server.addr).http1_only().build().unwrap();
    let mut over_http1 = Stream::open(&http1, &url, Version::HTTP_11).await;

    server.publish("secret handshake").await;
    over_h2.expect(":\n").await;
    over_h2.expect("data: secret handshake\n\n").await;
    over_http1.expect("data: secret handshake\n\n").await;

    // A third stream from 127.0.0.1 is over the per-address limit.
    let third = tokio::time::timeout(WAIT, h2.get(&url).send())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(third.status(), 429, "ConnectInfo reaches the handlers");

    // A failed handshake (plain HTTP on the TLS port) does not stop the server.
    let plain = reqwest::Client::builder()
        .resolve("localhost", server.addr)
        .timeout(WAIT)
        .build()
        .unwrap();
    assert!(plain.get(server.url("http")).send().await.is_err());
    assert_eq!(served_leaf(server.addr, &ca).await, leaf.der);

    // Graceful shutdown: each stream gets its final retry hint and ends.
    server.stop().await;
    over_h2.expect_end().await;
    over_http1.expect_end().await;
    assert!(over_h2.text.contains("retry:"), "{:?}", over_h2.text);
    assert!(over_http1.text.contains("retry:"), "{:?}", over_http1.text);
}

/// Every response body upper-cased: a layer of the kind that compresses
/// or meters a response body.
async fn shout(response: axum::response::Response) -> axum::response::Response {
    let (parts, body) = response.into_parts();
    let loud = body
        .into_data_stream()
        .map(|chunk| chunk.map(|bytes| bytes::Bytes::from(bytes.to_ascii_uppercase())));
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(loud))
}

/// With streams served by hand (as `herald serve` has them), an HTTP/1.1
/// stream over TLS is written by the hub itself, past the router's body
/// layers, as in clear text; HTTP/2 streams stay hyper's, through them.
/// Both end with the reconnection hint at shutdown.
#[tokio::test]
async fn http1_streams_over_tls_are_served_by_hand() {
    let ca = Ca::new();
    let leaf = ca.leaf("herald one", 1);
    let files = Files::new(&leaf);
    let settings = Settings {
        hand_served_streams: true,
        ..Settings::default()
    };
    let server = Server::start_wrapped(Some(tls(&files, Duration::ZERO)), settings, |router| {
        router.layer(axum::middleware::map_response(shout))
    })
    .await;
    let url = server.url("https");
    let http1 = tls_client(&ca, server.addr).http1_only().build().unwrap();
    let mut by_hand = Stream::open(&http1, &url, Version::HTTP_11).await;
    let h2 = tls_client(&ca, server.addr).build().unwrap();
    let mut by_hyper = Stream::open(&h2, &url, Version::HTTP_2).await;
    by_hand.expect(":\n").await;
    by_hyper.expect(":\n").await;

    server.publish("live").await;
    by_hand.expect("data: live\n\n").await;
    by_hyper.expect("DATA: LIVE\n\n").await;
    // Many more, as fast as they come: written directly, in order.
    for i in 0..200 {
        server.publish(&format!("n{i}")).await;
    }
    by_hand.expect("data: n199\n\n").await;
    let numbers: Vec<&str> = by_hand
        .text
        .lines()
        .filter_map(|line| line.strip_prefix("data: n"))
        .collect();
    let expected: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    assert_eq!(numbers, expected);

    server.stop().await;
    assert!(
        by_hand.expect_end().await,
        "the stream ends with its last chunk"
    );
    by_hyper.expect_end().await;
    // The hint is the stream's own last frame, through the layers either way.
    assert!(by_hand.text.contains("\nRETRY: "), "{:?}", by_hand.text);
    assert!(by_hyper.text.contains("RETRY:"), "{:?}", by_hyper.text);
}

/// Over TLS as in clear text, a first request head that is not HTTP is
/// answered 400 with a problem document naming what is wrong (hyper's own
/// answer has no body), and the connection is closed; a well-formed head
/// on the next connection is served.
#[tokio::test]
async fn a_head_that_is_not_http_over_tls_is_answered_with_what_is_wrong() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = Ca::new();
    let leaf = ca.leaf("herald one", 1);
    let files = Files::new(&leaf);
    let server = Server::start(Some(tls(&files, Duration::ZERO)), Settings::default()).await;
    let exchange = |head: &'static str| {
        let ca = &ca;
        let addr = server.addr;
        async move {
            let mut stream = tls_connect(addr, ca).await;
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
            // A peer closing without close_notify is an error to rustls;
            // what was read before it still counts.
            assert!(read.is_ok(), "the connection is closed within {WAIT:?}");
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    let refused =
        exchange("GET /.well-known/mercure HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 400 "), "{refused}");
    assert!(
        refused.contains("content-type: application/problem+json"),
        "{refused}"
    );
    assert!(
        refused.contains("a header line is not `Name: value`"),
        "{refused}"
    );
    let served = exchange(
        "GET /.well-known/oauth-protected-resource/.well-known/mercure HTTP/1.1\r\n\
         Host: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(served.starts_with("HTTP/1.1 200 "), "{served}");
    server.stop().await;
}

/// One answer read off a raw HTTP/1.1 connection: its head, and its body
/// by its `content-length` (every answer here has one).
async fn read_answer<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .unwrap_or_else(|| panic!("no content-length: {head}"))
                .parse()
                .unwrap();
            if body.len() >= length {
                return (head.to_owned(), body[..length].to_owned());
            }
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer within the wait")
            .expect("the connection reads");
        assert!(n > 0, "closed before the answer was whole: {text}");
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// The heads hyper refuses itself (a malformed one after a request served
/// on the same connection, one too large, one with too many header lines)
/// are answered, in clear text and over TLS, with a problem document that
/// says what is wrong, where hyper's own answer is a bare status; the
/// connection is then closed.
#[tokio::test]
async fn heads_hyper_refuses_are_answered_with_what_is_wrong() {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    let ca = Ca::new();
    let leaf = ca.leaf("herald one", 1);
    let files = Files::new(&leaf);
    let clear = Server::start(None, Settings::default()).await;
    let over_tls = Server::start(Some(tls(&files, Duration::ZERO)), Settings::default()).await;
    let served = "GET /.well-known/oauth-protected-resource/.well-known/mercure HTTP/1.1\r\n\
                  Host: localhost\r\n\r\n";
    let many_headers = format!(
        "GET /.well-known/mercure?topic=x HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
        (0..120)
            .map(|i| format!("X-{i}: {i}\r\n"))
            .collect::<String>()
    );
    let cookie = format!(
        "GET /.well-known/mercure?topic=x HTTP/1.1\r\nHost: localhost\r\nCookie: a={}\r\n\r\n",
        "x".repeat(70_000)
    );
    let target = format!(
        "GET /.well-known/mercure?topic={} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "x".repeat(70_000)
    );
    // (what is sent after `served` was answered, or first; status; words)
    let cases = [
        (
            true,
            "GET /x HTTP/1.1\r\nHost: localhost\r\nBad Header\r\n\r\n".to_owned(),
            400,
            "a header line is not `Name: value`".to_owned(),
        ),
        (
            true,
            "POST /.well-known/mercure HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1x\r\n\r\n"
                .to_owned(),
            400,
            "the Content-Length header is not one length".to_owned(),
        ),
        (
            false,
            many_headers,
            431,
            "the request head has 121 header lines, at most 100".to_owned(),
        ),
        (
            false,
            cookie,
            431,
            "the request head did not end within 65536 bytes".to_owned(),
        ),
        (
            false,
            target,
            431,
            "the request line did not end within 65536 bytes".to_owned(),
        ),
    ];
    async fn check<S: AsyncRead + AsyncWrite + Unpin>(
        mut stream: S,
        after_served: bool,
        served: &str,
        head: &str,
        status: u16,
        words: &str,
    ) {
        if after_served {
            stream.write_all(served.as_bytes()).await.unwrap();
            let (head, _) = read_answer(&mut stream).await;
            assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        }
        stream.write_all(head.as_bytes()).await.unwrap();
        let (refused, body) = read_answer(&mut stream).await;
        assert!(
            refused.starts_with(&format!("HTTP/1.1 {status} ")),
            "{refused}\n{body}"
        );
        assert!(
            refused.contains("content-type: application/problem+json"),
            "{refused}"
        );
        assert!(refused.contains("connection: close"), "{refused}");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["status"], status, "{body}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{detail}");
        let mut rest = Vec::new();
        // Closed: a peer ending TLS without close_notify is an error to
        // rustls, and a reset (unread bytes) one to the socket; both end it.
        let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the connection stays open");
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }
    for (after_served, head, status, words) in &cases {
        let tcp = TcpStream::connect(clear.addr).await.unwrap();
        check(tcp, *after_served, served, head, *status, words).await;
        let stream = tls_connect(over_tls.addr, &ca).await;
        check(stream, *after_served, served, head, *status, words).await;
    }
    clear.stop().await;
    over_tls.stop().await;
}

/// Over TLS, where hyper reads every head, a head begun and not finished
/// within the request head timeout is answered 408 with a problem
/// document (hyper itself closes without a word); a connection that sends
/// nothing is closed without one.
#[tokio::test]
async fn a_late_head_over_tls_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = Ca::new();
    let leaf = ca.leaf("herald one", 1);
    let files = Files::new(&leaf);
    let settings = Settings {
        request_head_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let server = Server::start(Some(tls(&files, Duration::ZERO)), settings).await;
    for (sent, answered) in [
        (
            "GET /.well-known/mercure?match=x HTTP/1.1\r\nHost: localhost\r\n",
            true,
        ),
        ("", false),
    ] {
        let mut stream = tls_connect(server.addr, &ca).await;
        stream.write_all(sent.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        // A peer closing without close_notify is an error to rustls; what
        // was read before it still counts.
        let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the connection is closed within {WAIT:?}");
        let answer = String::from_utf8_lossy(&answer);
        if answered {
            assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
            assert!(
                answer.contains("content-type: application/problem+json"),
                "{answer}"
            );
            assert!(
                answer.contains("the request head did not arrive within 300ms"),
                "{answer}"
            );
        } else {
            assert_eq!(answer, "", "nothing sent, nothing answered");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_replaced_on_disk_is_served_to_new_connections() {
    let ca = Ca::new();
    let first = ca.leaf("herald first", 1);
    let second = ca.leaf("herald second", 2);
    let files = Files::new(&first);
    let server = Server::start(
        Some(tls(&files, Duration::from_millis(50))),
        Settings::default(),
    )
    .await;
    assert_eq!(served_leaf(server.addr, &ca).await, first.der);

    let client = tls_client(&ca, server.addr).build().unwrap();
    let mut stream = Stream::open(&client, &server.url("https"), Version::HTTP_2).await;
    stream.expect(":\n").await;

    files.install(&second);
    wait_for_leaf(server.addr, &ca, &second).await;

    // The stream opened under the first certificate goes on.
    server.publish("after rotation").await;
    stream.expect("data: after rotation\n\n").await;
    // And a new client gets the new certificate, over h2.
    let fresh = tls_client(&ca, server.addr).build().unwrap();
    let mut fresh_stream = Stream::open(&fresh, &server.url("https"), Version::HTTP_2).await;
    fresh_stream.expect(":\n").await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_replacement_keeps_the_current_certificate() {
    let ca = Ca::new();
    let first = ca.leaf("herald first", 1);
    let second = ca.leaf("herald second", 2);
    let files = Files::new(&first);
    let server = Server::start(
        Some(tls(&files, Duration::from_millis(50))),
        Settings::default(),
    )
    .await;

    replace(
        &files.cert,
        b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
    );
    // Several reload intervals later the first certificate is still served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served_leaf(server.addr, &ca).await, first.der);

    // A certificate with another leaf's key is refused as well.
    replace(&files.cert, second.cert_pem.as_bytes());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served_leaf(server.addr, &ca).await, first.der);

    // The matching key arrives: the pair is picked up.
    replace(&files.key, second.key_pem.as_bytes());
    wait_for_leaf(server.addr, &ca, &second).await;
    server.stop().await;
}

#[test]
fn reload_reports_a_bad_file_by_name_and_keeps_the_certificate() {
    let ca = Ca::new();
    let first = ca.leaf("herald first", 1);
    let files = Files::new(&first);
    let tls = Tls::load(&files.cert, &files.key).unwrap();
    assert!(!tls.reload().unwrap(), "unchanged files are not reloaded");

    replace(&files.cert, b"not a certificate");
    let error = tls.reload().unwrap_err();
    assert!(
        matches!(&error, TlsError::Invalid { path, .. } if *path == files.cert),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&files.cert.display().to_string()),
        "{error}"
    );
    assert_eq!(tls.current().cert[0], first.der);
    assert!(!tls.reload().unwrap(), "a bad file is reported once");

    std::fs::remove_file(&files.key).unwrap();
    let error = tls.reload().unwrap_err();
    assert!(
        matches!(&error, TlsError::Read { path, .. } if *path == files.key),
        "{error:?}"
    );
    assert_eq!(tls.current().cert[0], first.der);

    let second = ca.leaf("herald second", 2);
    files.install(&second);
    assert!(tls.reload().unwrap());
    assert_eq!(tls.current().cert[0], second.der);
}

#[test]
fn bad_files_at_start_are_errors_naming_the_file() {
    let ca = Ca::new();
    let first = ca.leaf("herald first", 1);
    let second = ca.leaf("herald second", 2);
    let files = Files::new(&first);
    let garbage = files.cert.with_file_name("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let missing = files.cert.with_file_name("missing.pem");

    let named = |result: Result<Tls, TlsError>, file: &Path| {
        let error = result.unwrap_err();
        let message = error.to_string();
        assert!(message.contains(&file.display().to_string()), "{message}");
        message
    };
    let message = named(Tls::load(&garbage, &files.key), &garbage);
    assert!(message.contains("no certificate found"), "{message}");
    let message = named(Tls::load(&files.cert, &garbage), &garbage);
    assert!(message.contains("no private key found"), "{message}");
    let message = named(Tls::load(&missing, &files.key), &missing);
    assert!(message.contains("cannot read"), "{message}");
    let other_key = files.cert.with_file_name("other-key.pem");
    std::fs::write(&other_key, &second.key_pem).unwrap();
    let message = named(Tls::load(&files.cert, &other_key), &other_key);
    assert!(message.contains("does not match"), "{message}");

    // Through the configuration, as `herald serve` and `config check` see it.
    let mut config = herald_server::Config::default();
    config.log.kind = "memory".into();
    config.tls.cert_file = Some(garbage.clone());
    config.tls.key_file = Some(files.key.clone());
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains(&garbage.display().to_string()), "{error}");
    config.tls.key_file = None;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("tls.key_file"), "{error}");
    config.tls.cert_file = Some(files.cert.clone());
    config.tls.key_file = Some(files.key.clone());
    config.validate().unwrap();
    assert_eq!(config.hub_url().scheme(), "https");
}
