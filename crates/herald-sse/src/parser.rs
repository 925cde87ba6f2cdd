//! The WHATWG HTML "event stream interpretation", incrementally.
//!
//! Bytes arrive in arbitrary chunks ([`Parser::feed`]); whole events come out of
//! [`Parser::next_event`]. Lines are cut on CR, LF or CRLF, including a CR that
//! ends one chunk and an LF that starts the next. Only ASCII bytes delimit
//! lines and fields, so decoding UTF-8 (with U+FFFD replacement) one field
//! value at a time gives the same text as decoding the whole stream first.

use std::borrow::Cow;

use crate::Error;

/// The default largest line or event data, in bytes, that a [`Parser`] buffers.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

/// The most capacity a reused buffer keeps once it is empty: enough for the
/// usual event, small enough that an idle parser holds little memory.
const RETAINED_CAPACITY: usize = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A dispatched event, as a browser's `MessageEvent` would carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// The event type; `message` when the stream set none.
    pub event_type: String,
    /// The data lines joined with LF, without a final LF.
    pub data: String,
    /// The last event ID at the time of dispatch (it persists across events).
    pub last_event_id: String,
}

/// An incremental event stream decoder.
///
/// After [`Parser::next_event`] returns an error the stream is unusable: read
/// [`Parser::last_event_id`] and start a new parser (a new connection).
#[derive(Debug)]
pub struct Parser {
    buf: Vec<u8>,
    pos: usize,
    /// How many bytes after `pos` are known to hold no line end, so that a
    /// long line arriving in small chunks is scanned once, not once per chunk.
    scanned: usize,
    max_event_size: usize,
    bom_checked: bool,
    /// The previous line ended with a CR at the end of a chunk: an LF that
    /// starts the next chunk belongs to that line ending.
    skip_lf: bool,
    block: Block,
    /// The event source's last event ID string: set only when an event is
    /// dispatched, so an id in an unfinished block never counts.
    last_event_id: String,
    retry: Option<u64>,
}

/// The per-event buffers of the specification.
#[derive(Debug, Default)]
struct Block {
    data: String,
    event_type: String,
    last_event_id: String,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser with the [`DEFAULT_MAX_EVENT_SIZE`] limit.
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A parser that fails with [`Error::EventTooLarge`] when a line, or the
    /// data of one event, grows past `limit` bytes.
    pub fn with_max_event_size(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            max_event_size: limit,
            bom_checked: false,
            skip_lf: false,
            block: Block::default(),
            last_event_id: String::new(),
            retry: None,
        }
    }

    /// Starts from a known last event ID, as a browser's EventSource does when
    /// it reconnects: events without an `id` field carry it on.
    pub fn with_last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self.block.last_event_id = self.last_event_id.clone();
        self
    }

    /// Adds the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.pos == self.buf.len() {
            if self.buf.capacity() > RETAINED_CAPACITY.max(chunk.len()) {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.pos = 0;
        } else if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole event from what was fed, or `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<MessageEvent>, Error> {
        if !self.bom_checked && !self.strip_bom() {
            return Ok(None);
        }
        loop {
            if self.skip_lf {
                match self.buf.get(self.pos) {
                    None => return Ok(None),
                    Some(b'\n') => self.pos += 1,
                    Some(_) => {}
                }
                self.skip_lf = false;
            }
            let rest = &self.buf[self.pos..];
            let Some(found) = memchr::memchr2(b'\n', b'\r', &rest[self.scanned..]) else {
                if rest.len() > self.max_event_size {
                    return Err(self.too_large());
                }
                self.scanned = rest.len();
                return Ok(None);
            };
            let end = self.scanned + found;
            self.scanned = 0;
            if end > self.max_event_size {
                return Err(self.too_large());
            }
            let start = self.pos;
            self.skip_lf = rest[end] == b'\r';
            self.pos += end + 1;
            let line = &self.buf[start..start + end];
            match process_line(line, &mut self.block, &mut self.retry) {
                Line::Field => {
                    if self.block.data.len() > self.max_event_size {
                        return Err(self.too_large());
                    }
                }
                Line::Dispatch => {
                    if let Some(event) = self.dispatch() {
                        return Ok(Some(event));
                    }
                }
            }
        }
    }

    /// The end of the stream: an unterminated final block is dropped, as the
    /// specification requires. The last event ID and retry are kept.
    pub fn finish(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.scanned = 0;
        self.skip_lf = false;
        self.bom_checked = false;
        self.block.data.clear();
        self.block.event_type.clear();
        self.block.last_event_id = self.last_event_id.clone();
    }

    /// The last event ID of the most recently dispatched event (what a client
    /// sends as `Last-Event-ID` when it reconnects).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds set by the latest valid `retry` field.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Returns false when too few bytes have arrived to tell whether a BOM starts the stream.
    fn strip_bom(&mut self) -> bool {
        let rest = &self.buf[self.pos..];
        if rest.len() < BOM.len() && BOM.starts_with(rest) {
            return false;
        }
        if rest.starts_with(BOM) {
            self.pos += BOM.len();
        }
        self.bom_checked = true;
        true
    }

    /// Builds the event from the block. Each string of the event is allocated
    /// once, at its exact size; the block keeps its buffers for the next event.
    fn dispatch(&mut self) -> Option<MessageEvent> {
        let block = &mut self.block;
        if self.last_event_id != block.last_event_id {
            self.last_event_id.clone_from(&block.last_event_id);
        }
        if block.data.is_empty() {
            block.event_type.clear();
            return None;
        }
        // Without the LF appended after the last data line.
        let data = String::from(&block.data[..block.data.len() - 1]);
        let event_type = if block.event_type.is_empty() {
            String::from("message")
        } else {
            String::from(block.event_type.as_str())
        };
        clear_and_trim(&mut block.data);
        clear_and_trim(&mut block.event_type);
        Some(MessageEvent {
            event_type,
            data,
            last_event_id: self.last_event_id.clone(),
        })
    }

    fn too_large(&mut self) -> Error {
        self.buf.clear();
        self.pos = 0;
        self.scanned = 0;
        self.block.data = String::new();
        Error::EventTooLarge {
            limit: self.max_event_size,
        }
    }
}

enum Line {
    Field,
    Dispatch,
}

fn process_line(line: &[u8], block: &mut Block, retry: &mut Option<u64>) -> Line {
    if line.is_empty() {
        return Line::Dispatch;
    }
    let (field, value) = match memchr::memchr(b':', line) {
        Some(0) => return Line::Field, // a comment
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &b""[..]),
    };
    match field {
        b"data" => {
            block.data.push_str(&decode(value));
            block.data.push('\n');
        }
        b"event" => {
            block.event_type.clear();
            block.event_type.push_str(&decode(value));
        }
        // An id with NUL is ignored, as is a retry that is not all ASCII digits.
        b"id" if !value.contains(&0) => {
            block.last_event_id.clear();
            block.last_event_id.push_str(&decode(value));
        }
        b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
            *retry = Some(value.iter().fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            }));
        }
        _ => {} // unknown fields, and the refused values above, are ignored
    }
    Line::Field
}

/// Empties a reused buffer, and frees it if one large event made it bigger
/// than the parser should keep between events.
fn clear_and_trim(buf: &mut String) {
    if buf.capacity() > RETAINED_CAPACITY {
        *buf = String::new();
    } else {
        buf.clear();
    }
}

fn decode(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}
