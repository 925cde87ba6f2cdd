use bytes::{Bytes, BytesMut};

use crate::Error;
use crate::encode;
use crate::error::forbidden_char;

/// An event to write to a stream: every field is optional.
///
/// The id and event type are checked when set, so an `Event` always encodes
/// into a well-formed frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    id: Option<String>,
    event_type: Option<String>,
    data: Option<String>,
    retry: Option<u64>,
    comment: Option<String>,
}

impl Event {
    /// An empty event; it encodes to a lone blank line until fields are set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the data. A parser receives it unchanged, except that CR and CRLF
    /// line breaks come back as LF (the format has no way to keep them).
    pub fn with_data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the id; refused if it contains CR, LF or NUL.
    pub fn with_id(mut self, id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        if let Some(c) = forbidden_char(&id) {
            return Err(Error::InvalidId(c));
        }
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the event type; refused if it contains CR, LF or NUL.
    pub fn with_event_type(mut self, event_type: impl Into<String>) -> Result<Self, Error> {
        let event_type = event_type.into();
        if let Some(c) = forbidden_char(&event_type) {
            return Err(Error::InvalidEventType(c));
        }
        self.event_type = Some(event_type);
        Ok(self)
    }

    /// Sets the reconnection time, in milliseconds, that the client should use.
    pub fn with_retry(mut self, millis: u64) -> Self {
        self.retry = Some(millis);
        self
    }

    /// Sets a comment, written before the fields; parsers ignore it.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// The id, if set.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event type, if set.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The data, if set.
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The reconnection time in milliseconds, if set.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The comment, if set.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Appends the encoded event, ending with its blank line, to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) {
        if let Some(comment) = &self.comment {
            encode::write_comment(out, comment);
        }
        // The setters already refused ids and types that cannot be written.
        if let Some(event_type) = &self.event_type {
            let _ = encode::write_event_type(out, event_type);
        }
        if let Some(retry) = self.retry {
            encode::write_retry(out, retry);
        }
        if let Some(id) = &self.id {
            let _ = encode::write_id(out, id);
        }
        if let Some(data) = &self.data {
            encode::write_data(out, data);
        }
        encode::write_end(out);
    }

    /// The encoded event as shareable bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out);
        out.freeze()
    }

    fn encoded_len_hint(&self) -> usize {
        let len = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + 8);
        len(&self.id) + len(&self.event_type) + len(&self.data) + len(&self.comment) + 32
    }
}
