//! Shared helpers for the loopback integration tests: a hub served on
//! 127.0.0.1:0, token minting, form encoding, and an event stream reader.

#![allow(dead_code, unused_macros)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use herald_server::config::IssuerConfig;
use herald_server::{Config, Herald, Tls, serve, serve_tls};
use herald_sse::{MessageEvent, Parser};
use herald_token::claims::{Action, AuthorizationDetail, TopicMatcher};
use herald_token::{MintRequest, SigningKey, mint_at};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The issuer the test hubs trust.
pub const ISSUER: &str = "https://issuer.test";
/// Its HS256 secret.
pub const SECRET: &str = "an HS256 secret of at least thirty-two bytes";
/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// The default cookie name.
pub const COOKIE: &str = "__Secure-mercure_access_token";

/// A configuration listening on 127.0.0.1:0, on the memory log, trusting [`ISSUER`].
pub fn config() -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    config.log.kind = "memory".into();
    // As `herald serve` does.
    config.hand_served = true;
    config.auth.issuers = vec![IssuerConfig {
        id: ISSUER.into(),
        hs256_secrets: vec![SECRET.into()],
        ..IssuerConfig::default()
    }];
    config
}

/// A hub served over loopback; dropping it shuts the server down.
pub struct TestHub {
    /// The listening address.
    pub addr: SocketAddr,
    /// The hub URL (`http://127.0.0.1:PORT/.well-known/mercure`).
    pub url: String,
    /// The edge, for inspecting the hub's state.
    pub herald: Herald,
    /// For a hub served over TLS ([`start_tls`]): its self-signed
    /// certificate, for `localhost`, and a client trusting it.
    pub tls: Option<(rustls::pki_types::CertificateDer<'static>, reqwest::Client)>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a hub with the default test configuration.
pub async fn start_default() -> TestHub {
    start(config()).await
}

/// Starts a hub with `config` on a fresh loopback port.
pub async fn start(config: Config) -> TestHub {
    start_joinable(config).await.0
}

/// Starts a hub like [`start`], with the task that serves it: it ends when
/// `serve` returns, after the hub is dropped and the graceful shutdown is over.
pub async fn start_joinable(config: Config) -> (TestHub, tokio::task::JoinHandle<()>) {
    start_serving(config, false).await
}

/// Starts a hub like [`start`], over TLS with a self-signed certificate for
/// `localhost` (its hub URL `https://localhost:PORT/.well-known/mercure`).
pub async fn start_tls(config: Config) -> TestHub {
    start_serving(config, true).await.0
}

async fn start_serving(mut config: Config, tls: bool) -> (TestHub, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(config.listen).await.expect("bind");
    config.listen = listener.local_addr().expect("local address");
    let tls = tls.then(|| {
        config.hub_url = Some(
            format!(
                "https://localhost:{}/.well-known/mercure",
                config.listen.port()
            )
            .parse()
            .unwrap(),
        );
        self_signed_localhost()
    });
    let (herald, _verifier) = config.build().expect("the test configuration builds");
    let router = herald.router();
    let (tx, rx) = oneshot::channel::<()>();
    let served = herald.clone();
    let served_tls = tls.as_ref().map(|(_, tls)| tls.clone());
    let served = tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        match served_tls {
            Some(tls) => serve_tls(listener, &served, router, tls, stop).await,
            None => serve(listener, &served, router, stop).await,
        }
        .expect("the server runs");
    });
    let tls = tls.map(|(cert, _)| {
        let client = provided(reqwest::Client::builder())
            .connect_timeout(WAIT)
            .pool_max_idle_per_host(0)
            .tls_certs_only([reqwest::Certificate::from_der(&cert).expect("a certificate")])
            .resolve("localhost", config.listen)
            .build()
            .expect("client");
        (cert, client)
    });
    let hub = TestHub {
        addr: config.listen,
        url: herald.hub().url().to_string(),
        herald,
        tls,
        shutdown: Some(tx),
    };
    (hub, served)
}

/// A hub with `config`, over TLS when `tls` says so.
pub async fn start_either(tls: bool, config: Config) -> TestHub {
    if tls {
        start_tls(config).await
    } else {
        start(config).await
    }
}

/// Runs each of these tests, async functions taking whether the hub is
/// served over TLS, twice: in clear text (`clear_text::…`) and over TLS
/// (`over_tls::…`), on a runtime of `$flavor` (`current_thread` or
/// `multi_thread`).
macro_rules! in_clear_text_and_over_tls {
    ($flavor:literal: $($name:ident),* $(,)?) => {
        mod clear_text {
            $(
                #[tokio::test(flavor = $flavor)]
                async fn $name() {
                    super::$name(false).await;
                }
            )*
        }
        mod over_tls {
            $(
                #[tokio::test(flavor = $flavor)]
                async fn $name() {
                    super::$name(true).await;
                }
            )*
        }
    };
}

/// A byte stream to the hub: TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw connection to `hub`, over TLS when the hub is served over TLS
/// (HTTP/1.1 by ALPN, as a client that does not speak HTTP/2 gets), with a
/// socket receive buffer of `receive_buffer` bytes when set.
pub async fn raw_connection(hub: &TestHub, receive_buffer: Option<u32>) -> Box<dyn Io> {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    }
    let tcp = tokio::time::timeout(WAIT, socket.connect(hub.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    if hub.tls.is_none() {
        return Box::new(tcp);
    }
    Box::new(tls_handshake(hub, tcp).await)
}

/// A TLS client connection to `hub` (served over TLS) on `tcp`, trusting
/// its certificate, HTTP/1.1 by ALPN.
pub async fn tls_handshake(
    hub: &TestHub,
    tcp: tokio::net::TcpStream,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let (cert, _) = hub.tls.as_ref().expect("a hub served over TLS");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp);
    tokio::time::timeout(WAIT, tls)
        .await
        .expect("a handshake in time")
        .expect("the handshake succeeds")
}

/// A self-signed certificate for `localhost`, and TLS serving it.
fn self_signed_localhost() -> (rustls::pki_types::CertificateDer<'static>, Arc<Tls>) {
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("parameters")
        .self_signed(&key)
        .expect("a certificate");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    // Read once, here: the files may go with the directory.
    let tls = Tls::load(&cert_file, &key_file).expect("TLS loads");
    (cert.der().clone(), Arc::new(tls))
}

impl TestHub {
    /// The HTTP client for this hub: one trusting its certificate when it
    /// is served over TLS, else the thread's [`client`].
    pub fn http(&self) -> reqwest::Client {
        match &self.tls {
            Some((_, client)) => client.clone(),
            None => client(),
        }
    }

    /// A token builder for this hub (audience = hub URL, issuer = [`ISSUER`]).
    pub fn token(&self) -> Mint {
        Mint {
            request: MintRequest::new(ISSUER, self.url.clone()),
            publish: Vec::new(),
            subscribe: Vec::new(),
            payload: None,
            secret: SECRET.into(),
            issued_at: SystemTime::now(),
        }
    }

    /// A token allowing publication on every topic.
    pub fn publisher(&self) -> String {
        self.token().publish(&["*"]).sign()
    }

    /// The hub URL with `query` appended.
    pub fn url_with(&self, query: &str) -> String {
        if query.is_empty() {
            self.url.clone()
        } else {
            format!("{}?{query}", self.url)
        }
    }

    /// The protected resource metadata URL.
    pub fn metadata_url(&self) -> String {
        format!(
            "http://{}/.well-known/oauth-protected-resource/.well-known/mercure",
            self.addr
        )
    }
}

/// What to put in a test token.
pub struct Mint {
    /// The underlying request (issuer, audience, subject, ttl).
    pub request: MintRequest,
    publish: Vec<TopicMatcher>,
    subscribe: Vec<TopicMatcher>,
    payload: Option<serde_json::Value>,
    secret: String,
    issued_at: SystemTime,
}

impl Mint {
    /// Grants `publish` on these exact topics (`*` for all).
    pub fn publish(mut self, topics: &[&str]) -> Self {
        self.publish
            .extend(topics.iter().map(|t| TopicMatcher::exact(*t)));
        self
    }

    /// Grants `publish` on a URL pattern.
    pub fn publish_urlpattern(mut self, pattern: &str) -> Self {
        self.publish.push(TopicMatcher::urlpattern(pattern));
        self
    }

    /// Grants `subscribe` on these exact topics (`*` for all).
    pub fn subscribe(mut self, topics: &[&str]) -> Self {
        self.subscribe
            .extend(topics.iter().map(|t| TopicMatcher::exact(*t)));
        self
    }

    /// Grants `subscribe` on a URL pattern.
    pub fn subscribe_urlpattern(mut self, pattern: &str) -> Self {
        self.subscribe.push(TopicMatcher::urlpattern(pattern));
        self
    }

    /// Attaches a payload to the subscribe grant.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the lifetime.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.request.ttl = ttl;
        self
    }

    /// Sets the issue time (tokens issued long ago are expired).
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = at;
        self
    }

    /// Sets `iss`.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.request.issuer = issuer.into();
        self
    }

    /// Sets `aud`.
    pub fn audience(mut self, audience: &str) -> Self {
        self.request.audience = vec![audience.into()];
        self
    }

    /// Sets `sub`.
    pub fn subject(mut self, subject: &str) -> Self {
        self.request.subject = subject.into();
        self
    }

    /// Signs with another secret.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = secret.into();
        self
    }

    /// The request with its authorization details.
    pub fn request(&self) -> MintRequest {
        let mut request = self.request.clone();
        if !self.publish.is_empty() {
            request = request.with_detail(AuthorizationDetail::new(
                vec![Action::Publish],
                self.publish.clone(),
            ));
        }
        if !self.subscribe.is_empty() {
            let mut detail =
                AuthorizationDetail::new(vec![Action::Subscribe], self.subscribe.clone());
            if let Some(payload) = &self.payload {
                detail = detail.with_payload(payload.clone());
            }
            request = request.with_detail(detail);
        }
        request
    }

    /// The issue time.
    pub fn issued(&self) -> SystemTime {
        self.issued_at
    }

    /// Signs the token with HS256.
    pub fn sign(&self) -> String {
        let key = SigningKey::hs256(self.secret.as_bytes()).expect("HS256 key");
        mint_at(&self.request(), &key, self.issued_at).expect("mint")
    }
}

/// The HTTP client of the current thread (rustls provider installed first).
/// Building a client is slow, so each test thread keeps one; it pools no
/// connections, so nothing ties it to one test's runtime.
pub fn client() -> reqwest::Client {
    thread_local! {
        static CLIENT: reqwest::Client = provided(reqwest::Client::builder())
            .connect_timeout(WAIT)
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
    }
    CLIENT.with(Clone::clone)
}

/// `builder`, once the process's rustls provider is installed.
fn provided(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    builder
}

/// Percent-encodes a form component like `URLSearchParams` would (more eagerly, which is equivalent).
pub fn enc(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// `application/x-www-form-urlencoded` serialization of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends a request, failing the test if no response arrives within [`WAIT`].
pub async fn send(request: RequestBuilder) -> reqwest::Response {
    tokio::time::timeout(WAIT, request.send())
        .await
        .expect("a response in time")
        .expect("the request succeeds")
}

/// Reads a whole response body as text within [`WAIT`].
pub async fn text(response: reqwest::Response) -> String {
    tokio::time::timeout(WAIT, response.text())
        .await
        .expect("a body in time")
        .expect("a readable body")
}

/// A `POST` of `pairs` as a form, with an optional bearer token.
pub fn publish_request(
    hub: &TestHub,
    token: Option<&str>,
    pairs: &[(&str, &str)],
) -> RequestBuilder {
    let mut request = hub
        .http()
        .post(&hub.url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request
}

/// Publishes and returns the response.
pub async fn publish(
    hub: &TestHub,
    token: Option<&str>,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    send(publish_request(hub, token, pairs)).await
}

/// Publishes with a publish-everything token, asserting success; returns the id.
pub async fn publish_ok(hub: &TestHub, pairs: &[(&str, &str)]) -> String {
    let response = publish(hub, Some(&hub.publisher()), pairs).await;
    let status = response.status();
    let body = text(response).await;
    assert_eq!(status, StatusCode::OK, "publishing {pairs:?}: {body}");
    body
}

/// A `GET` subscription request with `query`.
pub fn get(hub: &TestHub, query: &str) -> RequestBuilder {
    hub.http().get(hub.url_with(query))
}

/// A `QUERY` subscription request with `query` and a form `body`.
pub fn query_method(hub: &TestHub, query: &str, body: &str) -> RequestBuilder {
    client()
        .request(
            Method::from_bytes(b"QUERY").expect("method"),
            hub.url_with(query),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
}

/// Waits until a subscription with `query` is accepted where it was
/// refused for a full hub (429): an earlier connection freed its slot.
/// Fails with `still` after [`WAIT`].
pub async fn wait_for_a_free_slot(hub: &TestHub, query: &str, still: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let response = send(get(hub, query)).await;
        if response.status() == StatusCode::OK {
            return;
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(Instant::now() < deadline, "{still}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a subscription with `query`, asserting it is accepted.
pub async fn subscribe(hub: &TestHub, query: &str) -> EventStream {
    open(get(hub, query)).await
}

/// Opens a subscription with `query` and a bearer token.
pub async fn subscribe_with(hub: &TestHub, query: &str, token: &str) -> EventStream {
    open(get(hub, query).bearer_auth(token)).await
}

/// Sends a subscription request, asserting a `200 text/event-stream` answer.
pub async fn open(request: RequestBuilder) -> EventStream {
    let response = send(request).await;
    let status = response.status();
    if status != StatusCode::OK {
        let body = text(response).await;
        panic!("subscription refused with {status}: {body}");
    }
    EventStream::new(response)
}

/// Asserts a refused request: its status, and returns the headers and body.
pub async fn refused(request: RequestBuilder, expected: StatusCode) -> (HeaderMap, String) {
    let response = send(request).await;
    let status = response.status();
    // An accepted subscription would never end: do not read its body.
    assert!(
        status == expected || status != StatusCode::OK,
        "expected {expected}, got {status}"
    );
    let headers = response.headers().clone();
    let body = text(response).await;
    assert_eq!(status, expected, "{body}");
    (headers, body)
}

/// The `WWW-Authenticate` header of a response, or an empty string.
pub fn challenge(headers: &HeaderMap) -> String {
    headers
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ASCII challenge").to_owned())
        .unwrap_or_default()
}

/// What reading an event stream yielded.
#[derive(Debug)]
pub enum Next {
    /// A whole event.
    Event(MessageEvent),
    /// Nothing within the wait.
    Timeout,
    /// The server ended the stream.
    End,
}

/// An open event stream, parsed with `herald_sse::Parser`.
pub struct EventStream {
    /// The response headers.
    pub headers: HeaderMap,
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    parser: Parser,
    /// Every byte received so far.
    pub raw: Vec<u8>,
    ended: bool,
}

impl EventStream {
    /// Wraps an accepted subscription response.
    pub fn new(response: reqwest::Response) -> Self {
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Self {
            headers,
            body: Box::pin(response.bytes_stream()),
            parser: Parser::new(),
            raw: Vec::new(),
            ended: false,
        }
    }

    /// A response header as text (UTF-8: ids may be IRIs).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| {
            std::str::from_utf8(v.as_bytes())
                .expect("UTF-8 header")
                .to_owned()
        })
    }

    /// Reads one chunk of bytes; `false` at the end or after `deadline`.
    async fn read_chunk(&mut self, deadline: Instant) -> Option<bool> {
        if self.ended {
            return Some(false);
        }
        match tokio::time::timeout_at(deadline, self.body.next()).await {
            Err(_) => None,
            Ok(Some(Ok(chunk))) => {
                self.raw.extend_from_slice(&chunk);
                self.parser.feed(&chunk);
                Some(true)
            }
            Ok(None | Some(Err(_))) => {
                self.ended = true;
                self.parser.finish();
                Some(false)
            }
        }
    }

    /// The next event, the end of the stream, or a timeout after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Next {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(event) = self.parser.next_event().expect("a valid event stream") {
                return Next::Event(event);
            }
            match self.read_chunk(deadline).await {
                None => return Next::Timeout,
                Some(false) => return Next::End,
                Some(true) => {}
            }
        }
    }

    /// The next event; fails the test on a timeout or the end of the stream.
    pub async fn event(&mut self) -> MessageEvent {
        match self.next_within(WAIT).await {
            Next::Event(event) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// The ids of the next `n` events.
    pub async fn ids(&mut self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.event().await.last_event_id);
        }
        ids
    }

    /// The data of the next `n` events.
    pub async fn data(&mut self, n: usize) -> Vec<String> {
        let mut data = Vec::with_capacity(n);
        for _ in 0..n {
            data.push(self.event().await.data);
        }
        data
    }

    /// Asserts that no event arrives for `wait` (and the stream stays open).
    pub async fn assert_quiet(&mut self, wait: Duration) {
        match self.next_within(wait).await {
            Next::Timeout => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// Reads until the end of the stream, which must come within `wait`;
    /// returns the events received on the way.
    pub async fn until_end(&mut self, wait: Duration) -> Vec<MessageEvent> {
        let deadline = Instant::now() + wait;
        let mut events = Vec::new();
        loop {
            match self
                .next_within(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Next::Event(event) => events.push(event),
                Next::End => return events,
                Next::Timeout => panic!("the stream did not end within {wait:?}"),
            }
        }
    }

    /// Reads raw bytes until `count` keep-alive comments (`:` lines) have
    /// arrived in total, within `wait`.
    pub async fn wait_for_comments(&mut self, count: usize, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if comment_count(&self.raw) >= count {
                return true;
            }
            match self.read_chunk(deadline).await {
                Some(true) => {}
                _ => return false,
            }
        }
    }
}

/// How many comment lines the raw stream holds.
pub fn comment_count(raw: &[u8]) -> usize {
    let text = String::from_utf8_lossy(raw);
    text.split('\n')
        .filter(|line| line.starts_with(':'))
        .count()
}

/// The event blocks of a raw stream (comment-only blocks excluded).
pub fn event_blocks(raw: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .split("\n\n")
        .filter(|block| !block.is_empty() && !block.lines().all(|l| l.starts_with(':')))
        .map(str::to_owned)
        .collect()
}

/// Base64url without padding, for hand-made tokens.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}
