//! A committed update: what the log stores and subscribers receive.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use herald_sse::encode;

use crate::{HubError, Update};

/// A position in the log: entries are numbered 1, 2, 3…; 0 is "before the first".
pub type Position = u64;

/// An update as stored and dispatched: its routing facts and its SSE frame,
/// encoded once and shared by every subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    position: Position,
    id: Box<str>,
    topics: Box<[Box<str>]>,
    private: bool,
    event_type: Option<Box<str>>,
    published_at: SystemTime,
    frame: Bytes,
}

impl Entry {
    /// Encodes a validated update with its final id; the position is set by the log.
    pub fn encode(update: Update, id: String, published_at: SystemTime) -> Result<Entry, HubError> {
        let mut frame = BytesMut::with_capacity(update.data.len() + id.len() + 64);
        if let Some(event_type) = &update.event_type {
            encode::write_event_type(&mut frame, event_type)
                .map_err(|e| HubError::LimitExceeded(e.to_string()))?;
        }
        if let Some(retry) = update.retry {
            encode::write_retry(&mut frame, retry);
        }
        encode::write_id(&mut frame, &id).map_err(|e| HubError::InvalidId {
            id: id.clone(),
            reason: if matches!(e, herald_sse::Error::InvalidId(_)) {
                "it cannot be written to an event stream"
            } else {
                "invalid"
            },
        })?;
        encode::write_data(&mut frame, &update.data);
        encode::write_end(&mut frame);
        Ok(Entry {
            position: 0,
            id: id.into(),
            topics: update
                .topics
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            private: update.private,
            event_type: update.event_type.map(String::into_boxed_str),
            published_at,
            frame: frame.freeze(),
        })
    }

    /// Rebuilds an entry from stored parts (for durable logs).
    pub fn from_parts(parts: EntryParts) -> Entry {
        Entry {
            position: parts.position,
            id: parts.id,
            topics: parts.topics,
            private: parts.private,
            event_type: parts.event_type,
            published_at: parts.published_at,
            frame: parts.frame,
        }
    }

    /// Sets the position; called by the log when it appends the entry.
    pub fn at_position(mut self, position: Position) -> Entry {
        self.position = position;
        self
    }

    /// The log position.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The canonical topic then the alternates.
    pub fn topics(&self) -> &[Box<str>] {
        &self.topics
    }

    /// Whether the update is private.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The SSE event type, if any.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// When the hub accepted the update.
    pub fn published_at(&self) -> SystemTime {
        self.published_at
    }

    /// The encoded SSE frame, ending with its blank line.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }
}

/// The stored fields of an [`Entry`], for logs that persist entries.
#[derive(Debug, Clone)]
pub struct EntryParts {
    /// The log position.
    pub position: Position,
    /// The event id.
    pub id: Box<str>,
    /// The topics.
    pub topics: Box<[Box<str>]>,
    /// Whether the update is private.
    pub private: bool,
    /// The SSE event type.
    pub event_type: Option<Box<str>>,
    /// When it was published.
    pub published_at: SystemTime,
    /// The encoded SSE frame.
    pub frame: Bytes,
}
