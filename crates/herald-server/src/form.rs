//! `application/x-www-form-urlencoded` parsing that refuses invalid UTF-8.
//!
//! The usual parsers replace invalid UTF-8 with U+FFFD; the protocol requires
//! such requests to be rejected instead, so this one reports them.

use std::borrow::Cow;

/// Parses `input` into name/value pairs, in order. `+` is a space; a name
/// without `=` has an empty value; empty sequences between `&` are skipped.
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    pairs(input)
        .map(|pair| pair.map(|(name, value)| (name.into_owned(), value)))
        .collect()
}

/// The pairs of `input`, as [`parse`] reads them, one at a time; names are
/// borrowed from `input` when they hold nothing to decode (the usual case:
/// `topic`, `data`), which spares an allocation per name on every publish.
pub fn pairs(input: &[u8]) -> impl Iterator<Item = Result<(Cow<'_, str>, String), String>> {
    input
        .split(|b| *b == b'&')
        .filter(|sequence| !sequence.is_empty())
        .map(|sequence| {
            let (name, value) = match memchr::memchr(b'=', sequence) {
                Some(i) => (&sequence[..i], &sequence[i + 1..]),
                None => (sequence, &b""[..]),
            };
            let invalid_name = || {
                format!(
                    "a parameter name is not valid UTF-8 once percent-decoded: `{}`",
                    String::from_utf8_lossy(name)
                )
            };
            let name = if memchr::memchr2(b'+', b'%', name).is_none() {
                Cow::Borrowed(std::str::from_utf8(name).map_err(|_| invalid_name())?)
            } else {
                Cow::Owned(decode(name).map_err(|()| invalid_name())?)
            };
            let value = decode(value).map_err(|()| {
                format!("the value of `{name}` is not valid UTF-8 once percent-decoded")
            })?;
            Ok((name, value))
        })
}

/// Decodes `+` and percent escapes in one pass, copying the runs between
/// them whole: topics are URLs, so nearly every publish has escapes to decode.
/// A `%` not followed by two hex digits is kept as it is, as `URLSearchParams`
/// does.
fn decode(raw: &[u8]) -> Result<String, ()> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = memchr::memchr2(b'+', b'%', rest) {
        out.extend_from_slice(&rest[..at]);
        let escaped = match rest[at] {
            b'+' => None,
            _ => hex(rest.get(at + 1)).zip(hex(rest.get(at + 2))),
        };
        match (rest[at], escaped) {
            (b'+', _) => {
                out.push(b' ');
                rest = &rest[at + 1..];
            }
            (_, Some((high, low))) => {
                out.push(high << 4 | low);
                rest = &rest[at + 3..];
            }
            _ => {
                out.push(b'%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).map_err(|_| ())
}

fn hex(digit: Option<&u8>) -> Option<u8> {
    char::from(*digit?).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_urlsearchparams() {
        assert_eq!(
            parse(b"match=https%3A%2F%2Fex.com%2Fa+b&match&x=%26%3D&&y=1=2").unwrap(),
            vec![
                ("match".into(), "https://ex.com/a b".into()),
                ("match".into(), String::new()),
                ("x".into(), "&=".into()),
                ("y".into(), "1=2".into()),
            ]
        );
    }

    proptest::proptest! {
        /// Where the input decodes to valid UTF-8, the pairs are the WHATWG
        /// parser's (`url`'s); where it does not, that parser had to put in
        /// U+FFFD, and this one refuses.
        #[test]
        fn agrees_with_the_whatwg_parser(input in "([a=&+%2Fe9cC]|%[0-9a-fA-F]{2}|\u{e9})*") {
            let whatwg: Vec<(String, String)> = url::form_urlencoded::parse(input.as_bytes())
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            match parse(input.as_bytes()) {
                Ok(pairs) => proptest::prop_assert_eq!(pairs, whatwg),
                Err(_) => {
                    let replaced = whatwg
                        .iter()
                        .any(|(n, v)| n.contains(char::REPLACEMENT_CHARACTER) || v.contains(char::REPLACEMENT_CHARACTER));
                    proptest::prop_assert!(replaced);
                }
            }
        }
    }

    #[test]
    fn malformed_escapes_are_kept_as_written() {
        assert_eq!(
            parse(b"a=%zz%4&b=%41%2b+%&c=%e2%82%AC%").unwrap(),
            vec![
                ("a".into(), "%zz%4".into()),
                ("b".into(), "A+ %".into()),
                ("c".into(), "\u{20ac}%".into()),
            ]
        );
    }

    #[test]
    fn raw_invalid_utf8_is_an_error_too() {
        assert!(parse(b"topic=\xff").is_err());
        assert!(parse(b"\xc3=1").is_err());
        assert_eq!(
            parse("topic=\u{e9}t\u{e9}".as_bytes()).unwrap(),
            vec![("topic".into(), "\u{e9}t\u{e9}".into())]
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_field() {
        let error = parse(b"topic=%FF").unwrap_err();
        assert!(error.contains("`topic`"), "{error}");
    }
}
