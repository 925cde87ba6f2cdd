//! A bookshop API that pushes live updates through a herald hub embedded in
//! the same axum application: no separate hub process, no publish token.
//!
//! - The hub is built in code ([`Hub::builder`]) and wrapped in the HTTP edge
//!   ([`Herald`]), whose routes are merged into the application's router.
//! - The application's own handler publishes with [`Hub::publish`]: it is
//!   trusted code, so no token is involved.
//! - Browsers subscribe at `/.well-known/mercure?match=/books/{id}` as usual.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::put;
use axum::{Json, Router};
use herald_hub::{Hub, Update};
use herald_server::{Herald, Settings, link_header};

/// Builds the application for a hub reachable at `hub_url`.
pub fn app(hub_url: url::Url) -> (Router, Herald) {
    let hub = Hub::builder(hub_url).build();
    // No token verifier: subscribers are anonymous and only public updates are
    // published; the application publishes directly through `Hub::publish`.
    let herald = Herald::new(hub, None, Settings::default());
    // The application's state first: the hub's routes carry their own.
    let router = Router::new()
        .route("/books/{id}", put(update_book))
        .with_state(herald.clone())
        .merge(herald.router());
    (router, herald)
}

/// `PUT /books/{id}` stores the book (elided here) and notifies subscribers.
async fn update_book(
    State(herald): State<Herald>,
    Path(id): Path<u32>,
    Json(book): Json<serde_json::Value>,
) -> impl IntoResponse {
    let hub = herald.hub();
    let update = Update::new(format!("/books/{id}"), book.to_string());
    match hub.publish(update).await {
        Ok(entry) => {
            // Tell clients where to subscribe, and from which event on.
            let link = link_header(hub.url().as_str(), Some(entry.id()), None);
            let mut response = (StatusCode::OK, Json(book)).into_response();
            if let Ok(value) = HeaderValue::from_str(&link) {
                response.headers_mut().insert(header::LINK, value);
            }
            response
        }
        // As the hub answers a refused publish: 400 for a bad topic, 507
        // when the disk is full, 503 with Retry-After when overloaded…
        Err(error) => herald.error_response(error),
    }
}
