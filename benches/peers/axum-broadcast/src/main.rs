//! An idiomatic axum Mercure-ish hub, as a user would write it in an
//! afternoon: one `tokio::sync::broadcast` channel per topic in a `DashMap`,
//! `GET /.well-known/mercure?topic=…` (or `match=…`) streams
//! `axum::response::sse` events, `POST` form `topic` + `data` publishes.
//! No auth, no history. A peer for `scripts/compare`, not part of herald.
//!
//! Usage: `axum-broadcast [ADDR]` (default `127.0.0.1:8081`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use dashmap::DashMap;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast;

/// Messages a topic's channel holds for a slow receiver before it lags.
const CAPACITY: usize = 1024;

#[derive(Clone, Default)]
struct Hub {
    topics: Arc<DashMap<String, broadcast::Sender<Arc<str>>>>,
    ids: Arc<AtomicU64>,
}

impl Hub {
    fn sender(&self, topic: &str) -> broadcast::Sender<Arc<str>> {
        if let Some(sender) = self.topics.get(topic) {
            return sender.clone();
        }
        self.topics
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone()
    }
}

async fn subscribe(
    State(hub): State<Hub>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, StatusCode> {
    let query = query.unwrap_or_default();
    let receivers: Vec<_> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "topic" || k == "match")
        .map(|(_, topic)| hub.sender(&topic).subscribe())
        .collect();
    if receivers.is_empty() {
        return Err(StatusCode::BAD_REQUEST);
    }
    let streams = receivers.into_iter().map(|rx| {
        stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(data) => return Some((Ok(Event::default().data(&*data)), rx)),
                    // A slow subscriber skips what it missed.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    });
    Ok(Sse::new(stream::select_all(streams)).keep_alive(KeepAlive::default()))
}

async fn publish(State(hub): State<Hub>, body: Bytes) -> Result<String, StatusCode> {
    let mut topics = Vec::new();
    let mut data = String::new();
    for (key, value) in form_urlencoded::parse(&body) {
        match &*key {
            "topic" => topics.push(value.into_owned()),
            "data" => data = value.into_owned(),
            _ => {}
        }
    }
    if topics.is_empty() {
        return Err(StatusCode::BAD_REQUEST);
    }
    let data: Arc<str> = data.into();
    for topic in &topics {
        if let Some(sender) = hub.topics.get(topic) {
            // No receivers is not an error: nobody is listening.
            let _ = sender.send(data.clone());
        }
    }
    let id = hub.ids.fetch_add(1, Ordering::Relaxed);
    Ok(format!("urn:uuid:{id}"))
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into());
    let app = Router::new()
        .route("/.well-known/mercure", get(subscribe).post(publish))
        .with_state(Hub::default());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    eprintln!("axum-broadcast listening on http://{addr}/.well-known/mercure");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}
