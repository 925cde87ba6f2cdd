//! `application/x-www-form-urlencoded` parsing that refuses invalid UTF-8.
//!
//! The usual parsers replace invalid UTF-8 with U+FFFD; the protocol requires
//! such requests to be rejected instead, so this one reports them.

use percent_encoding::percent_decode;

/// Parses `input` into name/value pairs, in order. `+` is a space; a name
/// without `=` has an empty value; empty sequences between `&` are skipped.
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for sequence in input.split(|b| *b == b'&') {
        if sequence.is_empty() {
            continue;
        }
        let (name, value) = match sequence.iter().position(|b| *b == b'=') {
            Some(i) => (&sequence[..i], &sequence[i + 1..]),
            None => (sequence, &b""[..]),
        };
        let name = decode(name).map_err(|()| {
            format!(
                "a parameter name is not valid UTF-8 once percent-decoded: `{}`",
                String::from_utf8_lossy(name)
            )
        })?;
        let value = decode(value).map_err(|()| {
            format!("the value of `{name}` is not valid UTF-8 once percent-decoded")
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn decode(raw: &[u8]) -> Result<String, ()> {
    if !raw.iter().any(|b| matches!(b, b'+' | b'%')) {
        // Nothing to decode (the common case for names and plain values).
        return std::str::from_utf8(raw).map(str::to_owned).map_err(|_| ());
    }
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|_| ())
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
