//! The HTTP edge of herald: the Mercure routes around a [`herald_hub::Hub`].
//!
//! Map of the crate:
//! - [`Herald`]: the edge's state (hub, token verifier, settings, limits) and
//!   [`Herald::router`], the axum routes an application mounts.
//! - `subscribe` and `publish`: the two uses of the hub URL.
//! - `subscriptions`: the subscription API, when active subscriptions are on.
//! - [`auth`]: the token in the `Authorization` header or the cookie, verified into grants.
//! - [`metadata`]: protected resource metadata and `Link` header helpers.
//! - [`error`]: every refusal, as a status, a `WWW-Authenticate` challenge or a problem document.
//! - [`limits`], [`Settings`]: connection limits and the other knobs, with defaults.
//! - `stream_conn` and `publish_conn`: the hot paths, plain HTTP/1.1
//!   subscriptions and publishes of the hub URL served by hand (the same
//!   handlers, without hyper's per-connection cost); hyper and the router
//!   serve everything else, and whatever those two hand back.
//! - [`serve`]: runs a router on a listener until a shutdown future resolves
//!   (HTTP/1.1 and h2c); [`serve_tls`] does the same over TLS (ALPN `h2` and
//!   `http/1.1`) with certificates from [`tls::Tls`], reloaded from disk.
//!
//! The crates an embedding application needs beside this one are re-exported
//! ([`hub`], [`store`], [`token`]), so that depending on `herald-server`
//! alone builds a hub, a durable log and tokens of the same versions.

pub mod auth;
pub mod compat;
pub mod config;
pub mod error;
mod form;
mod headers;
pub mod limits;
mod listener;
mod malformed;
pub mod metadata;
pub mod metrics;
mod proxies;
mod publish;
mod publish_conn;
mod refusals;
mod settings;
mod stream_conn;
mod subscribe;
mod subscriptions;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use herald_hub::Hub;
use herald_token::Verifier;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

/// The hub: updates, topics, matchers, grants, the log (`herald-hub`).
pub use herald_hub as hub;
/// The durable log (`herald-store`).
pub use herald_store as store;
/// Access tokens: verification and minting (`herald-token`).
pub use herald_token as token;

pub use auth::{Authenticator, Client};
pub use compat::{Compatibility, Purpose};
pub use config::{Config, ConfigError};
pub use error::{ErrorResponse, ServerError};
pub use limits::{ConnectionCounter, ConnectionLimits};
pub use metadata::link_header;
pub use proxies::TrustedProxies;
pub use settings::Settings;
pub use tls::{Tls, TlsError};
/// The URL type of the hub's URL, as [`hub::Url`].
pub use url::Url;

/// The HTTP edge around one hub. Cheap to clone.
#[derive(Clone)]
pub struct Herald {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    auth: Authenticator,
    settings: Settings,
    connections: Arc<ConnectionCounter>,
    metadata_url: String,
    authorization_servers: Vec<String>,
    shutdown: CancellationToken,
    metrics: Arc<metrics::Metrics>,
    /// Set while `serve` accepts connections; readiness reports it.
    serving: std::sync::atomic::AtomicBool,
    /// Ids for requests that bring none, shared by the router and the
    /// hand-served publishers.
    request_ids: RequestIds,
}

impl std::fmt::Debug for Herald {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Herald")
            .field("hub", &self.inner.hub)
            .finish()
    }
}

impl Herald {
    /// The edge for `hub`, checking tokens with `verifier` (`None`: no token is
    /// trusted, so nobody can publish and only public updates are served).
    pub fn new(hub: Hub, verifier: Option<Arc<Verifier>>, settings: Settings) -> Self {
        let settings = settings.clamped();
        let auth = Authenticator::new(verifier, settings.cookie_name.clone(), hub.clone())
            .with_compatibility(settings.compatibility.clone());
        let metrics = metrics::Metrics::new(hub.clone());
        Self {
            inner: Arc::new(Inner {
                metadata_url: metadata::metadata_url(hub.url()),
                connections: ConnectionCounter::new(settings.connections),
                hub,
                auth,
                settings,
                authorization_servers: Vec::new(),
                shutdown: CancellationToken::new(),
                metrics,
                serving: std::sync::atomic::AtomicBool::new(false),
                request_ids: RequestIds::default(),
            }),
        }
    }

    /// The hub behind this edge: publish to it from application code.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    pub(crate) fn connections(&self) -> &Arc<ConnectionCounter> {
        &self.inner.connections
    }

    pub(crate) fn authorization_servers(&self) -> &[String] {
        &self.inner.authorization_servers
    }

    /// The edge's metrics.
    pub fn metrics(&self) -> &Arc<metrics::Metrics> {
        &self.inner.metrics
    }

    /// Whether the process can still work: its log has not stopped for good
    /// (a restart would bring it back). The error says why.
    pub fn alive(&self) -> Result<(), String> {
        self.hub().check_alive().map_err(|e| e.to_string())
    }

    /// Whether the hub is ready for traffic: serving, and its log writable.
    /// The error says what is not ready.
    pub async fn ready(&self) -> Result<(), String> {
        if !self
            .inner
            .serving
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err("the hub is not serving (starting or shutting down)".into());
        }
        self.hub().check_ready().await.map_err(|e| e.to_string())
    }

    /// The admin routes, for a separate listener: `/metrics` (Prometheus),
    /// `/healthz` (the process can work: 503 once its log has stopped for
    /// good, so that a supervisor restarts it) and `/readyz` (ready for
    /// traffic).
    pub fn admin_router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics_endpoint))
            .route("/healthz", get(alive_endpoint))
            .route("/readyz", get(ready_endpoint))
            .fallback(admin_not_found_endpoint)
            .with_state(self.clone())
    }

    /// Cancelled to end every open subscription (graceful shutdown).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The hub's routes: the hub URL's path (subscribe with `GET`/`QUERY`,
    /// publish with `POST`), the protected resource metadata and, when active
    /// subscriptions are on, the subscription API. Mount them
    /// in an application's own router with `merge`; every other path is
    /// left to the application (a bare 404 unless it sets a fallback).
    ///
    /// An application with state of its own merges them after its
    /// `with_state` (the routes carry theirs): `Router::new().route(…)
    /// .with_state(app_state).merge(herald.router())`. Do not route the hub
    /// URL's path in the application too: a method both serve would go to
    /// one of them.
    ///
    /// # Panics
    ///
    /// When a segment of the hub URL's path starts with `:` or `*`, which
    /// axum refuses in a route ([`routable_hub_path`] says so beforehand; the
    /// configuration file refuses such a `hub_url`).
    pub fn router(&self) -> Router {
        self.routes(Router::new())
    }

    /// [`Herald::router`] for a server that serves nothing else, as
    /// `herald serve` does: every other path is answered 404 with problem
    /// details naming the hub URL's path, where a bare 404 would leave a
    /// client (or a browser, which shows its own error page for an empty
    /// one) guessing.
    ///
    /// # Panics
    ///
    /// As [`Herald::router`]; and merged into a router that has a fallback
    /// of its own, as axum panics when two routers with fallbacks merge (an
    /// application with its own fallback merges [`Herald::router`]).
    pub fn standalone_router(&self) -> Router {
        self.routes(Router::new().fallback(not_found_endpoint))
    }

    /// The hub's routes added to `router`, with their state and layers.
    fn routes(&self, router: Router<Herald>) -> Router {
        let hub_path = self.hub().url().path().to_owned();
        let mut router = router.route(&hub_path, any(hub_endpoint)).route(
            &metadata::metadata_path(self.hub().url()),
            get(metadata_endpoint),
        );
        if let Some(presence) = self.hub().presence() {
            let collection = presence.collection_path().to_owned();
            router = router
                .route(&collection, any(subscriptions_endpoint))
                .route(&format!("{collection}/"), any(subscriptions_endpoint))
                .route(
                    &format!("{collection}/{{*rest}}"),
                    any(subscriptions_endpoint),
                );
        }
        let router = router.with_state(self.clone());
        let router = match self.cors() {
            Some(cors) => router.layer(cors),
            None => router,
        };
        // Outermost: every request gets an id (kept if the client sent one),
        // echoed in the response and carried by every log line of the request.
        let request_id = HeaderName::from_static("x-request-id");
        router.layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(
                    request_id.clone(),
                    self.inner.request_ids.clone(),
                ))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(())
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
    }

    fn cors(&self) -> Option<CorsLayer> {
        // The configuration file refuses these; settings built in code
        // are not checked, and tower-http panics on `*` with credentials.
        let origins: Vec<HeaderValue> = self
            .settings()
            .cors_origins
            .iter()
            .filter_map(|origin| match HeaderValue::from_str(origin) {
                Ok(value) if origin != "*" => Some(value),
                _ => {
                    tracing::error!(
                        origin = %origin.escape_debug(),
                        "ignoring a CORS origin that is `*` or not a valid header value: \
                         credentialed requests need each origin named"
                    );
                    None
                }
            })
            .collect();
        if origins.is_empty() {
            return None;
        }
        let query = Method::from_bytes(b"QUERY").unwrap_or(Method::GET);
        let mut exposed = vec![
            HeaderName::from_static("mercure-last-event-id"),
            header::LINK,
            header::ETAG,
            header::WWW_AUTHENTICATE,
        ];
        if self.settings().compatibility.is_some() {
            exposed.push(HeaderName::from_static("last-event-id"));
        }
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_credentials(true)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS, query])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::CACHE_CONTROL,
                    header::IF_NONE_MATCH,
                    HeaderName::from_static("last-event-id"),
                ])
                .expose_headers(exposed),
        )
    }

    /// Closes the hub's log once serving has ended, off the runtime's
    /// threads ([`Hub::close_log`](herald_hub::Hub::close_log) blocks): what
    /// was acknowledged is then durable and checkpointed, and the next start
    /// is quick. The error says what could not be made durable.
    pub async fn close_log(&self) -> Result<(), herald_hub::HubError> {
        let hub = self.hub().clone();
        tokio::task::spawn_blocking(move || hub.close_log())
            .await
            .unwrap_or_else(|join| {
                Err(herald_hub::HubError::Log(format!(
                    "closing the log did not finish: {join}"
                )))
            })
    }

    /// The answer the hub itself gives for `error`: its status (a
    /// [`HubError`](herald_hub::HubError) from [`Hub::publish`](herald_hub::Hub::publish)
    /// maps to 400, 413, 503 with `Retry-After`, 507…), problem details and
    /// headers, logged and counted as the hub's own refusals are. For an
    /// application's handler that publishes in code and answers as the hub
    /// would.
    pub fn error_response(&self, error: impl Into<ServerError>) -> Response {
        self.error(error.into())
    }

    fn error(&self, error: ServerError) -> Response {
        tracing::info!(%error, "request refused");
        match &error {
            ServerError::Bearer { reason, .. } => self.metrics().auth_failed(reason),
            ServerError::TooManyConnections { limit, .. } => {
                self.metrics().connection_refused(limit);
            }
            _ => {}
        }
        ErrorResponse {
            error,
            resource_metadata: self.inner.metadata_url.clone(),
        }
        .into_response()
    }
}

/// Request ids: a random 64-bit prefix drawn once per router and a counter,
/// each as 16 hex digits, joined by a dash (`3f09c1d2a4b6e8f0-000000000000002a`).
/// Unique within a process and, by the prefix, across processes, at the cost
/// of an increment rather than a UUID formatted per request.
#[derive(Clone)]
struct RequestIds(Arc<(u64, std::sync::atomic::AtomicU64)>);

impl Default for RequestIds {
    fn default() -> Self {
        let prefix = uuid::Uuid::new_v4().as_u64_pair().0;
        Self(Arc::new((prefix, std::sync::atomic::AtomicU64::new(0))))
    }
}

impl RequestIds {
    /// The next id.
    fn next(&self) -> [u8; 33] {
        let (prefix, counter) = &*self.0;
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut id = [b'-'; 33];
        for (i, shift) in (0..16).rev().enumerate() {
            id[i] = HEX[(prefix >> (shift * 4)) as usize & 0xf];
            id[17 + i] = HEX[(n >> (shift * 4)) as usize & 0xf];
        }
        id
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_bytes(&self.next())
            .ok()
            .map(RequestId::new)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The span of one request: its id, method and path. Never the query (it
/// may name private topics), headers (tokens, cookies) or the body.
fn request_span(request: &http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        id,
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// The most a subscription's body (a `QUERY`'s form of matchers) may hold:
/// room for the hundred matchers of the default `limits.max_matchers` at
/// about 2 KiB each as the form writes them.
pub const MAX_SUBSCRIPTION_BODY: usize = 256 * 1024;

/// Who a subscription comes from, known before its body is waited for: on a
/// hub without anonymous subscribers, a client without a token is refused
/// without its body being read, as it would be after it.
fn subscriber_before_body(
    herald: &Herald,
    headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Result<auth::Client, ServerError> {
    match herald
        .auth()
        .authenticate(headers, query, compat::Purpose::Subscribe)?
    {
        Some(client) => Ok(client),
        None if herald.settings().anonymous_subscribers => Ok(auth::Client::anonymous()),
        None => Err(auth::missing_token(headers, query, subscribe::TOKEN_NEEDED)),
    }
}

/// The `Content-Length` a request declared, if one valid one.
fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(axum::http::header::CONTENT_LENGTH).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()?.trim().parse().ok()
}

/// Why a request's `Transfer-Encoding` cannot be served: hyper decodes a
/// final `chunked` and passes any coding before it (`gzip, chunked`) as it
/// is, which would publish a still-encoded body as the update.
fn transfer_coding_refusal(headers: &axum::http::HeaderMap) -> Option<Response> {
    let mut chunked = 0;
    for value in headers.get_all(axum::http::header::TRANSFER_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if coding.eq_ignore_ascii_case("chunked") {
                chunked += 1;
            } else {
                let coding: String = coding
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(64)
                    .collect();
                return Some(crate::error::problem(
                    axum::http::StatusCode::NOT_IMPLEMENTED,
                    &format!(
                        "the transfer coding `{coding}` is not supported: send the body \
                         as it is, or chunked"
                    ),
                ));
            }
        }
    }
    (chunked > 1).then(|| {
        crate::error::problem(
            axum::http::StatusCode::BAD_REQUEST,
            "the body is chunked more than once; RFC 9112 allows it once",
        )
    })
}

/// Why an HTTP/1.1 request's `Host` cannot be taken: RFC 9112 §3.2 asks a
/// 400 for a request without one, with several, or with an invalid one
/// (HTTP/1.0 may omit it; HTTP/2 names the authority in its own field).
fn host_refusal(version: axum::http::Version, headers: &axum::http::HeaderMap) -> Option<Response> {
    if version != axum::http::Version::HTTP_11 {
        return None;
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let detail = match (hosts.next(), hosts.next()) {
        (Some(host), None) if crate::headers::is_valid_host(host.as_bytes()) => return None,
        (Some(_), None) => "the Host header is not a host name or address with an optional port",
        (None, _) => "an HTTP/1.1 request must carry a Host header",
        (Some(_), Some(_)) => "more than one Host header: send exactly one",
    };
    Some(crate::error::problem(
        axum::http::StatusCode::BAD_REQUEST,
        detail,
    ))
}

/// Whether axum can route the hub URL's path (and the paths built from it):
/// a segment that starts with `:` or `*` is refused there (it looks like
/// the capture syntax of axum before 0.8); percent-encoded, `%3A` or `%2A`,
/// it is served. The error names the segment.
pub fn routable_hub_path(url: &url::Url) -> Result<(), String> {
    match url
        .path()
        .split('/')
        .find(|segment| segment.starts_with([':', '*']))
    {
        Some(segment) => Err(format!(
            "its path segment `{segment}` starts with `{}`, which herald's router cannot \
             serve; percent-encode it (`%3A` for `:`, `%2A` for `*`)",
            &segment[..1]
        )),
        None => Ok(()),
    }
}

/// Says once that subscriptions come without the peer's address (served by
/// `axum::serve` without `into_make_service_with_connect_info`): the limits
/// per address cannot apply, and nothing else would tell.
fn warn_once_without_peer_address() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "a subscription came without the client's address, so the limits per address \
             do not apply: serve with herald_server::serve, or give axum::serve \
             router.into_make_service_with_connect_info::<SocketAddr>()"
        );
    }
}

/// The methods the hub's endpoint serves, for `Allow`.
const HUB_METHODS: &str = "GET, HEAD, QUERY, POST, OPTIONS";

async fn hub_endpoint(State(herald): State<Herald>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(refusal) = host_refusal(parts.version, &parts.headers)
        .or_else(|| transfer_coding_refusal(&parts.headers))
    {
        return refusal;
    }
    let is_subscribe = parts.method == Method::GET
        || parts.method == Method::HEAD
        || parts.method.as_str() == "QUERY";
    // Without CORS (whose layer answers preflights), OPTIONS is still a
    // method the hub serves: it answers with what the endpoint allows.
    if parts.method == Method::OPTIONS {
        return (
            axum::http::StatusCode::NO_CONTENT,
            [(header::ALLOW, HUB_METHODS)],
        )
            .into_response();
    }
    if !is_subscribe && parts.method != Method::POST {
        return herald.error(ServerError::MethodNotAllowed {
            method: parts.method.to_string(),
            allow: HUB_METHODS,
        });
    }
    // As on the hand-served path: a body is waited for only from a client
    // whose token lets it publish.
    if !is_subscribe
        && let Err(error) = publish::publisher(&herald, &parts.headers, parts.uri.query())
    {
        return herald.error(error);
    }
    // A subscription's body holds matchers, at most a few hundred KiB of
    // them, and anyone may send one: it is not given a publish's room.
    let limit = if is_subscribe {
        herald.settings().max_body_bytes.min(MAX_SUBSCRIPTION_BODY)
    } else {
        herald.settings().max_body_bytes
    };
    let subscriber = if is_subscribe {
        match subscriber_before_body(&herald, &parts.headers, parts.uri.query()) {
            Ok(client) => Some(client),
            Err(error) => return herald.error(error),
        }
    } else {
        None
    };
    let read = axum::body::to_bytes(body, limit);
    // A subscription's body (a `QUERY`'s matchers) may come from anyone, and
    // is small: it must be whole within the body timeout, not merely keep
    // arriving, or a byte at a time would hold the connection for hours.
    let read = if is_subscribe {
        let timeout = herald.settings().request_body_timeout;
        match tokio::time::timeout(timeout, read).await {
            Ok(read) => read,
            Err(_) => {
                return crate::error::problem(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    &format!("the request body did not arrive within {timeout:?}"),
                );
            }
        }
    } else {
        read.await
    };
    let body: Bytes = match read {
        Ok(bytes) => match declared_length(&parts.headers) {
            // An HTTP/2 client that resets its stream with NO_ERROR or
            // CANCEL mid-body ends the body as cleanly as END_STREAM does
            // (hyper reads both so); the length it declared tells them apart.
            Some(declared) if (bytes.len() as u64) < declared => {
                return herald.error(ServerError::BadRequest(format!(
                    "the request body ended after {} of the {declared} bytes its \
                     Content-Length declared; nothing was published",
                    bytes.len()
                )));
            }
            _ => bytes,
        },
        Err(error) if is_length_limit(&error) => {
            return herald.error(ServerError::BodyTooLarge(limit));
        }
        // A body that stalled (its 408 replaces this answer) or broke off.
        Err(error) => {
            // The innermost cause says what happened (the connection
            // closed, a chunk size that is not hexadecimal…).
            let mut cause: &(dyn std::error::Error + 'static) = &error;
            let mut said = error.to_string();
            while let Some(source) = cause.source() {
                let text = source.to_string();
                if !said.contains(&text) {
                    said = format!("{said}: {text}");
                }
                cause = source;
            }
            return herald.error(ServerError::BadRequest(format!(
                "the request body could not be read: {said}"
            )));
        }
    };
    let result = if let Some(client) = subscriber {
        // Only subscriptions are counted per client address.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| {
                herald
                    .settings()
                    .trusted_proxies
                    .client(addr.ip(), &parts.headers)
            });
        if peer.is_none() {
            warn_once_without_peer_address();
        }
        let wire = parts
            .extensions
            .get::<stream_conn::DirectWire>()
            .map(|w| Arc::clone(&w.0));
        subscribe::subscribe(
            &herald,
            &parts.method,
            &parts.headers,
            parts.uri.query(),
            body,
            subscribe::Caller { peer, wire, client },
        )
        .await
    } else {
        publish_request(&herald, &parts.headers, parts.uri.query(), &body)
            .await
            .map(|entry| published(entry.id().to_owned()))
    };
    result.unwrap_or_else(|error| herald.error(error))
}

/// A publish of the hub URL, however it arrived (through the router or on a
/// hand-served connection): the update's entry, counted in the metrics.
async fn publish_request(
    herald: &Herald,
    headers: &impl headers::RequestHeaders,
    query: Option<&str>,
    body: &[u8],
) -> Result<Arc<herald_hub::Entry>, ServerError> {
    let started = std::time::Instant::now();
    let entry = publish::publish(herald, headers, query, body).await?;
    herald.metrics().published(started.elapsed().as_secs_f64());
    Ok(entry)
}

/// The media type of a publish's answer, the update's id.
const PUBLISHED_TYPE: &str = "text/plain; charset=utf-8";

/// The answer to a publish: the update's id.
fn published(id: String) -> Response {
    ([(header::CONTENT_TYPE, PUBLISHED_TYPE)], id).into_response()
}

async fn metrics_endpoint(State(herald): State<Herald>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        herald.metrics().render(),
    )
        .into_response()
}

/// Whether reading a body failed because it was longer than allowed, not
/// because it stalled or broke off.
fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

async fn alive_endpoint(State(herald): State<Herald>) -> Response {
    match herald.alive() {
        Ok(()) => "ok\n".into_response(),
        Err(reason) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not alive: {reason}\n"),
        )
            .into_response(),
    }
}

async fn ready_endpoint(State(herald): State<Herald>) -> Response {
    match herald.ready().await {
        Ok(()) => "ready\n".into_response(),
        Err(reason) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn subscriptions_endpoint(State(herald): State<Herald>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    subscriptions::endpoint(
        &herald,
        &parts.method,
        &parts.headers,
        parts.uri.path(),
        parts.uri.query(),
    )
    .await
    .unwrap_or_else(|error| herald.error(error))
}

async fn metadata_endpoint(State(herald): State<Herald>) -> Response {
    metadata::document(&herald).await
}

async fn not_found_endpoint(State(herald): State<Herald>, uri: axum::http::Uri) -> Response {
    let served = format!(
        "this server is a Mercure hub, at {}",
        herald.hub().url().path()
    );
    nothing_at(&uri, &served)
}

async fn admin_not_found_endpoint(uri: axum::http::Uri) -> Response {
    nothing_at(
        &uri,
        "the admin listener serves /metrics, /healthz and /readyz",
    )
}

/// A 404 naming the path asked for and what the listener does serve.
fn nothing_at(uri: &axum::http::Uri, served: &str) -> Response {
    error::problem(
        axum::http::StatusCode::NOT_FOUND,
        &format!("nothing is served at {}: {served}", uri.path()),
    )
}

/// Serves `router` on `listener` (HTTP/1.1 and h2c) until `shutdown`
/// resolves, then ends every subscription of `herald` (each gets a reconnect
/// hint) and waits for connections at most `shutdown_timeout`.
///
/// With [`Settings::hand_served_publish`] on (off by default; `herald serve`
/// turns it on), plain HTTP/1.1 publishes of the hub URL without an `Origin`
/// header are answered by `herald` itself, without `router`'s layers; with
/// [`Settings::hand_served_streams`] on (likewise), the live events of
/// HTTP/1.1 subscriptions are written past `router`'s body layers, their
/// request and response head still going through it. Every other request
/// goes through `router`. A `Herald` serves once: its shutdown token stays
/// cancelled after `shutdown`, and serving it again is an error at once.
pub async fn serve(
    listener: TcpListener,
    herald: &Herald,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::run(listener, herald, router, None, shutdown).await
}

/// Serves `router` (usually [`Herald::admin_router`]) on the admin
/// listener over HTTP/1.1 until `shutdown`: a request head must be whole
/// within `head_timeout` (`limits.request_head_timeout`), which also closes
/// idle connections, and at most 64 connections are served at once.
pub async fn serve_admin(
    listener: TcpListener,
    router: Router,
    head_timeout: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    listener::run_admin(listener, router, head_timeout, shutdown).await;
}

/// Like [`serve`], over TLS: ALPN offers `h2` and `http/1.1`, and the
/// certificate is reloaded when its files change. Publishes and streams
/// over HTTP/1.1 are served by hand as in clear text when the settings
/// say so; HTTP/2 is hyper's.
pub async fn serve_tls(
    listener: TcpListener,
    herald: &Herald,
    router: Router,
    tls: Arc<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::run(listener, herald, router, Some(tls), shutdown).await
}
