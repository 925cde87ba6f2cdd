//! An EventSource for Rust that behaves like a browser's, and a Mercure publisher.
//!
//! Map of the crate:
//! - [`EventSource`] (built with [`EventSourceBuilder`]): a [`Stream`](futures_util::Stream)
//!   of [`Item`]s that follows one event-stream URL for as long as it is polled. It
//!   reconnects after network errors and after clean ends of stream, sending
//!   `Last-Event-ID`, honouring the server's `retry` field, and stops for good
//!   when the server answers 204, any status but 200, or another content type,
//!   or when its TLS certificate fails verification.
//! - [`Backoff`]: the reconnection delay policy (capped exponential with bounded
//!   jitter), a pure function of the server's retry and the count of failed attempts.
//! - [`Publisher`] and [`Update`]: publishing to a Mercure hub's publish endpoint.
//! - [`Error`] (event source) and [`PublishError`] (publisher): what can go wrong.
//!
//! The incremental `text/event-stream` parsing is `herald-sse`'s [`Parser`](herald_sse::Parser);
//! this crate only pumps it from the network.
//!
//! TLS is rustls: building an [`EventSource`] or a [`Publisher`] installs
//! rustls' `ring` provider as the process default when none is installed
//! yet. An application that wants another provider installs it first
//! (`CryptoProvider::install_default`), and this crate then uses it.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use herald_client::{EventSource, Item};
//!
//! # async fn demo() -> Result<(), herald_client::Error> {
//! let url = url::Url::parse("https://example.com/events").expect("a valid URL");
//! let mut events = EventSource::builder(url).last_event_id("42").build()?;
//! while let Some(item) = events.next().await {
//!     match item {
//!         Ok(Item::Open { status, .. }) => println!("connected: {status}"),
//!         Ok(Item::Event(event)) => println!("{}: {}", event.event_type, event.data),
//!         Err(error) if error.is_fatal() => return Err(error),
//!         Err(error) => eprintln!("reconnecting after: {error}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod backoff;
mod builder;
mod error;
mod event_source;
mod http_client;
mod publisher;
mod rejection;
mod update;

pub use backoff::Backoff;
pub use builder::EventSourceBuilder;
pub use error::{Error, PublishError};
pub use event_source::{EventSource, Item};
pub use herald_sse::MessageEvent;
pub use http::{HeaderMap, Method, StatusCode};
pub use publisher::Publisher;
pub use rejection::describe as describe_refusal;
pub use update::Update;
pub use url::Url;
