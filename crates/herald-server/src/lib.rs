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
//! - [`serve`]: runs a router on a listener until a shutdown future resolves.

pub mod auth;
pub mod config;
pub mod error;
mod form;
pub mod limits;
pub mod metadata;
mod publish;
mod settings;
mod subscribe;
mod subscriptions;

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

pub use auth::{Authenticator, Client};
pub use config::{Config, ConfigError};
pub use error::{ErrorResponse, ServerError};
pub use limits::{ConnectionCounter, ConnectionLimits};
pub use metadata::link_header;
pub use settings::Settings;

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
        let auth = Authenticator::new(verifier, settings.cookie_name.clone(), hub.clone());
        Self {
            inner: Arc::new(Inner {
                metadata_url: metadata::metadata_url(hub.url()),
                connections: ConnectionCounter::new(settings.connections),
                hub,
                auth,
                settings,
                authorization_servers: Vec::new(),
                shutdown: CancellationToken::new(),
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

    /// Cancelled to end every open subscription (graceful shutdown).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The hub's routes: the hub URL's path (subscribe with `GET`/`QUERY`,
    /// publish with `POST`), the protected resource metadata and, when active
    /// subscriptions are on, the subscription API. Mount them
    /// in an application's own router with `merge`.
    pub fn router(&self) -> Router {
        let hub_path = self.hub().url().path().to_owned();
        let mut router = Router::new().route(&hub_path, any(hub_endpoint)).route(
            &metadata::metadata_path(self.hub().url()),
            get(metadata_endpoint),
        );
        if let Some(presence) = self.hub().presence() {
            let collection = presence.collection_path().to_owned();
            router = router
                .route(&collection, any(subscriptions_endpoint))
                .route(
                    &format!("{collection}/{{*rest}}"),
                    any(subscriptions_endpoint),
                );
        }
        let router = router.with_state(self.clone());
        match self.cors() {
            Some(cors) => router.layer(cors),
            None => router,
        }
    }

    fn cors(&self) -> Option<CorsLayer> {
        let origins: Vec<HeaderValue> = self
            .settings()
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        if origins.is_empty() {
            return None;
        }
        let query = Method::from_bytes(b"QUERY").unwrap_or(Method::GET);
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
                .expose_headers([
                    HeaderName::from_static("mercure-last-event-id"),
                    header::LINK,
                    header::ETAG,
                    header::WWW_AUTHENTICATE,
                ]),
        )
    }

    fn error(&self, error: ServerError) -> Response {
        tracing::info!(%error, "request refused");
        ErrorResponse {
            error,
            resource_metadata: self.inner.metadata_url.clone(),
        }
        .into_response()
    }
}

async fn hub_endpoint(State(herald): State<Herald>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (parts, body) = request.into_parts();
    let is_subscribe = parts.method == Method::GET || parts.method.as_str() == "QUERY";
    if !is_subscribe && parts.method != Method::POST {
        return herald.error(ServerError::MethodNotAllowed(parts.method.to_string()));
    }
    let limit = herald.settings().max_body_bytes;
    let body: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return herald.error(ServerError::BodyTooLarge(limit)),
    };
    let result = if is_subscribe {
        subscribe::subscribe(
            &herald,
            &parts.method,
            &parts.headers,
            parts.uri.query(),
            body,
            peer,
        )
        .await
    } else {
        publish::publish(&herald, &parts.headers, body).await
    };
    result.unwrap_or_else(|error| herald.error(error))
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

/// Serves `router` on `listener` (HTTP/1.1 and h2c) until `shutdown` resolves,
/// then ends every subscription of `herald` and waits for connections to close.
pub async fn serve(
    listener: TcpListener,
    herald: &Herald,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = herald.shutdown_token().clone();
    let signal = async move {
        shutdown.await;
        token.cancel();
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await
}
