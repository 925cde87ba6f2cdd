//! Request heads that are not HTTP, told apart before hyper sees them.
//!
//! hyper answers a head it cannot parse with a bare `400 Bad Request` (or
//! 431) and no body, which leaves a client guessing what it got wrong. The
//! connections herald serves by hand in plain HTTP already peek at their
//! first request head, and a hand-served publisher connection reads each
//! of its heads: parsed the way hyper parses them (`httparse`, with hyper's
//! default settings), a head `httparse` refuses is answered here with a
//! problem document that says what is wrong. Whatever `httparse` accepts
//! still goes to hyper, which is the judge of everything else; its own
//! refusals are explained after the fact ([`why_refused`], used by
//! `crate::refusals`).

/// The start of the HTTP/2 connection preface, which `httparse` reads as a
/// request line of an unknown version.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Header lines `httparse` is given room for: hyper's own bound, so a head
/// with more is hyper's to refuse, never ours.
const MAX_HEADERS: usize = 100;

/// Why `bytes`, the start of a request head (whole or not), cannot be an
/// HTTP/1 request head, in words a client can act on; `None` when it may be
/// one, as far as the bytes there tell.
pub(crate) fn malformed_head(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(HTTP2_PREFACE) || HTTP2_PREFACE.starts_with(bytes) {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let error = httparse::Request::new(&mut headers).parse(bytes).err()?;
    let why = match error {
        httparse::Error::Token => {
            "the request line is not `METHOD TARGET HTTP/1.1` (a method or target \
             with a character they cannot have, or the wrong separators)"
        }
        httparse::Error::Version => "the request line does not end with HTTP/1.0 or HTTP/1.1",
        httparse::Error::HeaderName => {
            "a header line is not `Name: value` (no colon, or a name with a character \
             header names cannot have, such as a space)"
        }
        httparse::Error::HeaderValue => "a header value has a control character",
        httparse::Error::NewLine => "a line does not end with CRLF",
        // hyper's to refuse, with its own bound.
        httparse::Error::TooManyHeaders | httparse::Error::Status => return None,
    };
    Some(format!("the request head is not HTTP/1.1: {why}"))
}

/// Why hyper refused a request head with `status` (its bare 400, 414 or
/// 431), told from `head`: the bytes read since the previous answer, at
/// most `max` of them (the most hyper reads of a head). On a
/// connection that does not pipeline they are the refused head; where they
/// do not show the fault, the words say what the status means.
pub(crate) fn why_refused(status: u16, head: &[u8], max: usize) -> String {
    let end = memchr::memmem::find(head, b"\r\n\r\n").map(|at| at + 4);
    match (status, end) {
        (400, _) => malformed_head(head)
            .or_else(|| end.and_then(|end| not_for_hyper(&head[..end])))
            .unwrap_or_else(|| {
                "a request head on this connection is not HTTP/1.1: its request line, \
                 a header line or the line endings are malformed"
                    .to_owned()
            }),
        (_, Some(end)) => {
            // Header lines: the lines of the head but the request line and
            // the blank line that ends it.
            let lines = memchr::memmem::find_iter(&head[..end], b"\r\n").count() - 2;
            if lines > MAX_HEADERS {
                format!(
                    "the request head has {lines} header lines, at most {MAX_HEADERS}: \
                     send fewer headers"
                )
            } else if status == 414 {
                let line = memchr::memmem::find(head, b"\r\n").unwrap_or(end);
                format!(
                    "the request line is {line} bytes long, more than can be read: \
                     its target (the path and query string) is too long"
                )
            } else {
                format!("the request head is {end} bytes long, more than can be read")
            }
        }
        (_, None) if head.len() >= max && memchr::memmem::find(head, b"\r\n").is_none() => {
            format!(
                "the request line did not end within {max} bytes, the most a request head \
                 may have: its target (the path and query string) is too long"
            )
        }
        (_, None) if head.len() >= max => format!(
            "the request head did not end within {max} bytes, the most it may have: send \
             shorter headers (a large cookie or token is the usual cause)"
        ),
        (_, None) => format!(
            "a request head on this connection is longer than {max} bytes or has more than \
             {MAX_HEADERS} header lines"
        ),
    }
}

/// Where the bytes after the whole head at the start of `bytes` begin, if
/// that head announces no body (no `Content-Length` above 0, no
/// `Transfer-Encoding`): on a pipelining connection, the next head's start.
pub(crate) fn after_bodiless_head(bytes: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = request.parse(bytes).ok()? else {
        return None;
    };
    let announces_body = |header: &httparse::Header<'_>| {
        header.name.eq_ignore_ascii_case("transfer-encoding")
            || header.name.eq_ignore_ascii_case("content-length")
                && header.value.trim_ascii() != b"0"
    };
    let bodiless = !request.headers.iter().any(announces_body);
    (bodiless && len < bytes.len()).then_some(len)
}

/// Why hyper refuses `head`, a whole head `httparse` reads: a target that
/// is not a URI, or a body's framing it will not guess at.
fn not_for_hyper(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(head).ok()?;
    let target = request.path?;
    if let Err(error) = http::Uri::try_from(target) {
        return Some(format!(
            "the request target `{target}` is not a URI ({error})"
        ));
    }
    let mut length = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            for value in header.value.split(|&b| b == b',') {
                let value = value.trim_ascii();
                let one = (!value.is_empty() && value.iter().all(u8::is_ascii_digit))
                    .then_some(value)
                    .filter(|value| length.is_none_or(|length| length == *value));
                let Some(value) = one else {
                    return Some(
                        "the Content-Length header is not one length in decimal digits".to_owned(),
                    );
                };
                length = Some(value);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if request.version == Some(0) {
                return Some("an HTTP/1.0 request cannot have a Transfer-Encoding".to_owned());
            }
            let last = header
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default();
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Some(
                    "the Transfer-Encoding of a request must end with `chunked`".to_owned(),
                );
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_malformed_head_is_named() {
        for (head, expected) in [
            (&b"GARBAGE\r\n\r\n"[..], "the request line is not"),
            (
                b"GET / HTTP/9.9\r\n\r\n",
                "does not end with HTTP/1.0 or HTTP/1.1",
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
                "a header line is not `Name: value`",
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
                "a header value has a control character",
            ),
            (b"GET / HTTP/1.1\rX", "a line does not end with CRLF"),
        ] {
            let why = malformed_head(head)
                .unwrap_or_else(|| panic!("{} was taken for HTTP", String::from_utf8_lossy(head)));
            assert!(why.contains(expected), "{why}");
        }
    }

    #[test]
    fn well_formed_partial_and_http2_heads_are_left_to_hyper() {
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..150 {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        for head in [
            &b"GET /.well-known/mercure?match=x HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: a\r\nContent-",
            b"GET / HT",
            b"",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"PRI * HT",
            &many,
        ] {
            assert_eq!(
                malformed_head(head),
                None,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn hypers_refusals_are_told_from_the_head_read() {
        let max = 64;
        for (status, head, expected) in [
            (
                400,
                &b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"[..],
                "a header line is not `Name: value`",
            ),
            (
                400,
                b"GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n",
                "the request target `http://[::1/` is not a URI",
            ),
            (
                400,
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                "the Content-Length header is not one length",
            ),
            (
                400,
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                "must end with `chunked`",
            ),
            (
                400,
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                "an HTTP/1.0 request cannot have a Transfer-Encoding",
            ),
            // Read before the previous answer (pipelined): nothing to tell from.
            (
                400,
                b"",
                "a request head on this connection is not HTTP/1.1",
            ),
            (
                431,
                b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n",
                "the request head is 30 bytes long",
            ),
            (
                431,
                &[b"GET /".as_slice(), &[b'x'; 59]].concat(),
                "the request line did not end within 64 bytes",
            ),
            (
                431,
                &[b"GET / HTTP/1.1\r\nCookie: ".as_slice(), &[b'x'; 40]].concat(),
                "the request head did not end within 64 bytes",
            ),
            (
                414,
                b"GET /xxxxxxxx HTTP/1.1\r\n\r\n",
                "the request line is 22 bytes long",
            ),
            (
                431,
                b"",
                "longer than 64 bytes or has more than 100 header lines",
            ),
        ] {
            let why = why_refused(status, head, max);
            assert!(
                why.contains(expected),
                "{status} {}: {why}",
                String::from_utf8_lossy(head)
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let why = why_refused(431, &many, 64 << 10);
        assert!(why.contains("has 101 header lines, at most 100"), "{why}");
    }
}
