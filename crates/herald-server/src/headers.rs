//! The request headers that publishing and authorization read: hyper's
//! [`HeaderMap`] on the router's paths, or the spans of a head parsed by hand
//! on the publisher's hot path (`publish_conn`), where building a header map
//! per request was a tenth of herald's instructions per publish
//! (docs/benchmarks.md, change 21).

use std::ops::Range;

use http::{HeaderMap, HeaderName};

/// Read access to a request's headers, by name.
pub(crate) trait RequestHeaders {
    /// The raw bytes of every value of `name`, in order (names are the
    /// constants of [`http::header`] and this crate).
    fn all<'h>(&'h self, name: &'static HeaderName) -> impl Iterator<Item = &'h [u8]>;

    /// The first value of `name`, if it is text (visible ASCII, spaces and
    /// tabs, as [`http::HeaderValue::to_str`] accepts).
    fn text(&self, name: &'static HeaderName) -> Option<&str> {
        self.all(name).next().and_then(as_text)
    }
}

/// `value` as text, if it is visible ASCII, spaces and tabs.
pub(crate) fn as_text(value: &[u8]) -> Option<&str> {
    // Without a short cut, so that the compiler checks many bytes at once:
    // an access token is some hundred bytes, checked on every publish.
    let outside = value.iter().fold(false, |outside, &b| {
        outside | ((b < 0x20 && b != b'\t') | (b >= 0x7f))
    });
    if !outside {
        // Checked above: ASCII only.
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// Whether a `Host` value is what RFC 9112 §3.2 allows, `uri-host [":" port]`
/// or empty (a target without authority), which a server must check: a
/// value with spaces, a path or user information is a 400.
pub(crate) fn is_valid_host(value: &[u8]) -> bool {
    if value.is_empty() {
        return true;
    }
    let Ok(authority) = http::uri::Authority::try_from(value) else {
        return false;
    };
    // The parser lets user information and a port of any characters through.
    match value.strip_prefix(authority.host().as_bytes()) {
        Some([]) => true,
        Some([b':', port @ ..]) => port.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

impl RequestHeaders for HeaderMap {
    fn all<'h>(&'h self, name: &'static HeaderName) -> impl Iterator<Item = &'h [u8]> {
        self.get_all(name).into_iter().map(|v| v.as_bytes())
    }
}

/// Where one header of a hand-parsed head lies in the read buffer.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    name: Range<usize>,
    value: Range<usize>,
}

impl Span {
    /// The span of `name` and `value`, both slices of `buf`; `None` if
    /// either is not (httparse hands out slices of what it parsed, but
    /// nothing here depends on it: such a head goes to hyper instead).
    pub(crate) fn within(buf: &[u8], name: &[u8], value: &[u8]) -> Option<Self> {
        Some(Self {
            name: range_within(buf, name)?,
            value: range_within(buf, value)?,
        })
    }
}

/// Where `part` lies in `buf`, if it lies there (an empty `part` anywhere).
fn range_within(buf: &[u8], part: &[u8]) -> Option<Range<usize>> {
    if part.is_empty() {
        return Some(0..0);
    }
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= buf.len()).then_some(start..end)
}

/// The headers of a head parsed by hand: spans into the buffer it was read into.
pub(crate) struct Spans<'b> {
    /// The buffer the head was parsed from, unchanged since.
    pub(crate) buf: &'b [u8],
    /// Its headers, in order.
    pub(crate) spans: &'b [Span],
}

impl RequestHeaders for Spans<'_> {
    fn all<'h>(&'h self, name: &'static HeaderName) -> impl Iterator<Item = &'h [u8]> {
        let name = name.as_str().as_bytes();
        self.spans
            .iter()
            .filter(move |span| self.buf[span.name.clone()].eq_ignore_ascii_case(name))
            .map(|span| &self.buf[span.value.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    #[test]
    fn spans_answer_by_name_whatever_its_case_as_a_header_map_does() {
        let buf = b"Content-Type: a\r\nCOOKIE: x=1\r\ncookie: y=2\r\nBad: caf\xc3\xa9\r\n";
        let part = |from: usize, len: usize| &buf[from..from + len];
        let spans = [
            Span::within(buf, part(0, 12), part(14, 1)).unwrap(),
            Span::within(buf, part(17, 6), part(25, 3)).unwrap(),
            Span::within(buf, part(30, 6), part(38, 3)).unwrap(),
            Span::within(buf, part(43, 3), part(48, 5)).unwrap(),
        ];
        let spans = Spans { buf, spans: &spans };
        let mut map = HeaderMap::new();
        map.append(header::CONTENT_TYPE, "a".parse().unwrap());
        map.append(header::COOKIE, "x=1".parse().unwrap());
        map.append(header::COOKIE, "y=2".parse().unwrap());
        map.append(
            HeaderName::from_static("bad"),
            http::HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        );
        static BAD: HeaderName = HeaderName::from_static("bad");
        assert_eq!(spans.text(&header::CONTENT_TYPE), Some("a"));
        assert_eq!(map.text(&header::CONTENT_TYPE), Some("a"));
        let cookies: Vec<&[u8]> = spans.all(&header::COOKIE).collect();
        assert_eq!(cookies, [&b"x=1"[..], b"y=2"]);
        assert_eq!(map.all(&header::COOKIE).collect::<Vec<_>>(), cookies);
        assert_eq!(spans.text(&BAD), None, "not ASCII: not text");
        assert_eq!(map.text(&BAD), None);
        assert_eq!(spans.all(&header::ORIGIN).count(), 0);
    }

    #[test]
    fn a_host_is_a_name_or_address_and_an_optional_port() {
        for valid in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"127.0.0.1:3000",
            b"[::1]:3000",
            b"xn--caf-dma.example",
        ] {
            assert!(super::is_valid_host(valid), "{valid:?}");
        }
        for invalid in [
            &b"a b"[..],
            b"a b/c@?",
            b"user@example.com",
            b"example.com/path",
            b"example.com?q",
            b"example.com:port",
            b"[::1",
        ] {
            assert!(!super::is_valid_host(invalid), "{invalid:?}");
        }
    }

    #[test]
    fn only_slices_of_the_buffer_make_spans() {
        let buf = b"Name: value";
        let other = b"Name: value".to_vec();
        assert!(Span::within(buf, &buf[..4], &buf[6..]).is_some());
        assert!(Span::within(buf, &buf[..4], &buf[11..]).is_some(), "empty");
        assert!(
            Span::within(buf, &buf[..4], b"").is_some(),
            "empty elsewhere"
        );
        assert!(Span::within(buf, &other[..4], &buf[6..]).is_none());
        assert!(
            Span::within(&buf[..8], &buf[..4], &buf[6..]).is_none(),
            "past the end"
        );
    }
}
