//! Low-level writers for the fields of an event.
//!
//! They append to any [`BufMut`], so a hub can encode an update once, straight
//! from its own fields, into the one buffer that every subscriber shares.
//! An event is its fields followed by [`write_end`].

use bytes::BufMut;

use crate::Error;
use crate::error::forbidden_char;

/// A comment-only frame, sent to keep idle connections open through proxies.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

/// Writes an `id:` line. An id with CR, LF or NUL is refused.
pub fn write_id(out: &mut impl BufMut, id: &str) -> Result<(), Error> {
    if let Some(c) = forbidden_char(id) {
        return Err(Error::InvalidId(c));
    }
    write_field(out, b"id", id.as_bytes());
    Ok(())
}

/// Writes an `event:` line. A type with CR, LF or NUL is refused.
pub fn write_event_type(out: &mut impl BufMut, event_type: &str) -> Result<(), Error> {
    if let Some(c) = forbidden_char(event_type) {
        return Err(Error::InvalidEventType(c));
    }
    write_field(out, b"event", event_type.as_bytes());
    Ok(())
}

/// Writes a `retry:` line with the reconnection time in milliseconds.
pub fn write_retry(out: &mut impl BufMut, millis: u64) {
    let mut digits = [0u8; 20];
    let text = format_u64(millis, &mut digits);
    write_field(out, b"retry", text);
}

/// Writes one `data:` line per line of `data`, splitting on CR, LF and CRLF,
/// so that a parser joins them back into exactly `data`.
pub fn write_data(out: &mut impl BufMut, data: &str) {
    for line in Lines::new(data.as_bytes()) {
        write_field(out, b"data", line);
    }
}

/// Writes one `:` comment line per line of `text`. Parsers ignore comments.
pub fn write_comment(out: &mut impl BufMut, text: &str) {
    for line in Lines::new(text.as_bytes()) {
        out.put_u8(b':');
        out.put_slice(line);
        out.put_u8(b'\n');
    }
}

/// Ends an event: the blank line that makes a parser dispatch it.
pub fn write_end(out: &mut impl BufMut) {
    out.put_u8(b'\n');
}

fn write_field(out: &mut impl BufMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    // The space is optional, but parsers strip exactly one: a value that starts
    // with a space keeps it only if we always write the separator space.
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_u8(b'\n');
}

fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Splits on CR, LF and CRLF; always yields at least one (possibly empty) line.
struct Lines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self { rest: Some(text) }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr2(b'\r', b'\n', rest) {
            None => {
                self.rest = None;
                Some(rest)
            }
            Some(i) => {
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                self.rest = Some(&rest[i + skip..]);
                Some(&rest[..i])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn data_is_split_on_cr_lf_and_crlf() {
        let text = encoded(|o| write_data(o, "a\rb\nc\r\nd"));
        assert_eq!(text, "data: a\ndata: b\ndata: c\ndata: d\n");
    }

    #[test]
    fn empty_data_is_one_empty_data_line() {
        assert_eq!(encoded(|o| write_data(o, "")), "data: \n");
    }

    #[test]
    fn trailing_newline_in_data_becomes_an_empty_last_line() {
        assert_eq!(encoded(|o| write_data(o, "a\n")), "data: a\ndata: \n");
    }

    #[test]
    fn id_with_line_break_or_nul_is_refused() {
        let mut out = Vec::new();
        assert_eq!(write_id(&mut out, "a\nb"), Err(Error::InvalidId("LF")));
        assert_eq!(write_id(&mut out, "a\rb"), Err(Error::InvalidId("CR")));
        assert_eq!(write_id(&mut out, "a\0b"), Err(Error::InvalidId("NUL")));
        assert!(out.is_empty(), "nothing is written for a refused id");
    }

    #[test]
    fn event_type_with_line_break_or_nul_is_refused() {
        let mut out = Vec::new();
        assert_eq!(
            write_event_type(&mut out, "x\ndata: injected"),
            Err(Error::InvalidEventType("LF"))
        );
        assert_eq!(
            write_event_type(&mut out, "x\0"),
            Err(Error::InvalidEventType("NUL"))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn retry_is_written_in_decimal() {
        assert_eq!(encoded(|o| write_retry(o, 0)), "retry: 0\n");
        assert_eq!(
            encoded(|o| write_retry(o, u64::MAX)),
            format!("retry: {}\n", u64::MAX)
        );
    }

    #[test]
    fn comment_lines_are_each_prefixed() {
        assert_eq!(encoded(|o| write_comment(o, "a\nb")), ":a\n:b\n");
    }
}
