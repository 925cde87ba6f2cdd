/// What can go wrong while encoding or parsing an event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An event id contained CR, LF or NUL, which would end the `id:` line early
    /// (CR, LF) or make every conforming parser ignore it (NUL).
    #[error("event id contains a {0} character, which cannot be written to an event stream")]
    InvalidId(&'static str),
    /// An event type contained CR, LF or NUL, which would inject fields into the stream.
    #[error("event type contains a {0} character, which cannot be written to an event stream")]
    InvalidEventType(&'static str),
    /// A line, or the data of one event, grew past the configured maximum.
    #[error("event stream line or event is larger than the {limit}-byte limit")]
    EventTooLarge {
        /// The configured maximum, in bytes.
        limit: usize,
    },
}

/// Names the first character of `value` that cannot appear in an `id` or `event` line.
pub(crate) fn forbidden_char(value: &str) -> Option<&'static str> {
    value.bytes().find_map(|b| match b {
        b'\r' => Some("CR"),
        b'\n' => Some("LF"),
        0 => Some("NUL"),
        _ => None,
    })
}
