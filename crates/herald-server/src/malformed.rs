//! Request heads that are not HTTP, told apart before hyper sees them.
//!
//! hyper answers a head it cannot parse with a bare `400 Bad Request` (or
//! 431) and no body, which leaves a client guessing what it got wrong. The
//! connections herald serves by hand in plain HTTP already peek at their
//! first request head, and a hand-served publisher connection reads each
//! of its heads: parsed the way hyper parses them (`httparse`, with hyper's
//! default settings), a head `httparse` refuses is answered here with a
//! problem document that says what is wrong. Whatever `httparse` accepts
//! still goes to hyper, which is the judge of everything else.

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
}
