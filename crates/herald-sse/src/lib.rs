//! The `text/event-stream` codec, with no I/O and no async.
//!
//! Map of the crate:
//! - [`encode`]: writes events to bytes. Data is split into one `data:` line per line,
//!   ids and event types that would break the stream are refused.
//! - [`Event`]: an owned event to encode (id, event type, data, retry, comment).
//! - [`Parser`]: an incremental decoder implementing the WHATWG HTML "event stream
//!   interpretation", fed with arbitrary chunks and yielding [`MessageEvent`]s.
//! - [`Error`]: everything that can go wrong in either direction.
//!
//! ```
//! use herald_sse::{Event, Parser};
//!
//! let frame = Event::new().with_data("hello\nworld").with_id("42")?.to_bytes();
//! let mut parser = Parser::new();
//! parser.feed(&frame);
//! let event = parser.next_event()?.expect("one whole event was fed");
//! assert_eq!(event.data, "hello\nworld");
//! assert_eq!(event.last_event_id, "42");
//! # Ok::<(), herald_sse::Error>(())
//! ```

pub mod encode;
mod error;
mod event;
mod parser;

pub use error::Error;
pub use event::Event;
pub use parser::{DEFAULT_MAX_EVENT_SIZE, MessageEvent, Parser};

/// The media type of an event stream.
pub const CONTENT_TYPE: &str = "text/event-stream";
