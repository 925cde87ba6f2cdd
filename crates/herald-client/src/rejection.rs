//! What a server said when it refused a request, made fit for one line of a
//! terminal: shared by the event source and the publisher.

use std::time::Duration;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};

/// The most bytes of a refusal's body that are read; the rest is not waited for.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// How long the body of a refusal may take to arrive before the headers alone
/// describe it (a server may hold an error answer open; a browser would not
/// wait for it at all).
const BODY_WAIT: Duration = Duration::from_secs(1);

/// The largest text kept from a refusal, in characters.
const MAX_CHARS: usize = 1000;

/// Reads at most `limit` bytes of an answer's body; whether it held more is the flag.
pub(crate) async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Describes a refusal from its headers and (the start of) its body, waiting
/// a bounded time for the body.
pub(crate) async fn describe_answer(mut response: reqwest::Response) -> String {
    let body = tokio::time::timeout(BODY_WAIT, read_bounded(&mut response, MAX_BODY)).await;
    let body = match body {
        Ok(Ok((body, _))) => body,
        _ => Vec::new(),
    };
    describe(response.headers(), &body)
}

/// The refusal's own words, best first: an RFC 9457 problem document's
/// `title: detail`, else the text of the body, else the RFC 6750 challenge's
/// `error_description` (or `error`). A redirect names its target. Empty when
/// the server said nothing.
pub fn describe(headers: &HeaderMap, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let is_problem = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/problem+json")
        });
    let said = is_problem
        .then(|| problem_text(&text))
        .flatten()
        .unwrap_or_else(|| one_line(&text));
    let said = if said.is_empty() {
        challenge_text(headers).unwrap_or_default()
    } else {
        said
    };
    match headers.get(LOCATION) {
        Some(location) => {
            let location = one_line(&String::from_utf8_lossy(location.as_bytes()));
            if said.is_empty() {
                format!("redirected to {location}")
            } else {
                format!("redirected to {location}: {said}")
            }
        }
        None => said,
    }
}

/// The fields of an RFC 9457 problem document that describe it to a person.
#[derive(serde::Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
}

/// `title: detail` (or whichever exists) from a problem document.
fn problem_text(body: &str) -> Option<String> {
    let problem: Problem = serde_json::from_str(body).ok()?;
    let text = match (problem.title, problem.detail) {
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(text), None) | (None, Some(text)) => text,
        (None, None) => return None,
    };
    Some(one_line(&text))
}

/// The `error_description` (else the `error`) of a `WWW-Authenticate: Bearer`
/// challenge, which is where a token's refusal is explained when the body is empty.
fn challenge_text(headers: &HeaderMap) -> Option<String> {
    let challenge = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let description = auth_param(challenge, "error_description");
    let text = description.or_else(|| auth_param(challenge, "error"))?;
    Some(one_line(&text))
}

/// The value of one `name=value` or `name="quoted value"` parameter of a challenge.
fn auth_param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + name.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let Some(value) = after.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let Some(quoted) = value.strip_prefix('"') else {
            let end = value.find([',', ' ']).unwrap_or(value.len());
            return Some(value[..end].to_owned());
        };
        let mut out = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        return Some(out);
    }
    None
}

/// The text with its whitespace folded into single spaces, its other control
/// characters escaped (a server's text must not drive the terminal), trimmed
/// and bounded.
pub(crate) fn one_line(text: &str) -> String {
    let mut folded = String::new();
    for word in text.split_whitespace() {
        if !folded.is_empty() {
            folded.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                folded.extend(c.escape_default());
            } else {
                folded.push(c);
            }
        }
    }
    match folded.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &folded[..cut]),
        None => folded,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http::header::{CONTENT_TYPE, HeaderValue, LOCATION, WWW_AUTHENTICATE};

    use super::{describe, one_line, problem_text};

    #[test]
    fn a_problem_document_is_described_by_its_title_and_detail() {
        let both = r#"{"type":"about:blank","title":"Invalid topic","detail":"topic is empty","status":400}"#;
        assert_eq!(
            problem_text(both).as_deref(),
            Some("Invalid topic: topic is empty")
        );
        assert_eq!(
            problem_text(r#"{"title":"Forbidden"}"#).as_deref(),
            Some("Forbidden")
        );
        assert_eq!(problem_text(r#"{"detail":"no"}"#).as_deref(), Some("no"));
        assert_eq!(problem_text(r#"{"status":400}"#), None);
        assert_eq!(problem_text("not json"), None);
    }

    #[test]
    fn texts_are_folded_onto_one_bounded_line() {
        assert_eq!(one_line("  bad\r\n  request\n"), "bad request");
        let long = "é".repeat(5000);
        let folded = one_line(&long);
        assert_eq!(folded.chars().count(), super::MAX_CHARS + 1);
        assert!(folded.ends_with('…'));
    }

    #[test]
    fn control_characters_are_escaped_not_printed() {
        assert_eq!(
            one_line("\u{1b}[31mRED\u{1b}[0m"),
            "\\u{1b}[31mRED\\u{1b}[0m"
        );
        assert_eq!(one_line("a\u{7}b"), "a\\u{7}b");
    }

    fn headers(pairs: &[(http::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn an_empty_refusal_is_explained_by_its_bearer_challenge() {
        let challenge = r#"Bearer realm="mercure", error="invalid_token", error_description="The token has \"expired\"""#;
        let map = headers(&[(WWW_AUTHENTICATE, challenge)]);
        assert_eq!(describe(&map, b""), r#"The token has "expired""#);
        let map = headers(&[(WWW_AUTHENTICATE, "Bearer error=invalid_token")]);
        assert_eq!(describe(&map, b""), "invalid_token");
        let map = headers(&[(WWW_AUTHENTICATE, r#"Bearer realm="x""#)]);
        assert_eq!(describe(&map, b""), "");
    }

    #[test]
    fn a_problem_body_is_preferred_to_the_challenge() {
        let map = headers(&[
            (CONTENT_TYPE, "application/problem+json"),
            (WWW_AUTHENTICATE, r#"Bearer error_description="short""#),
        ]);
        let body = br#"{"title":"Unauthorized","detail":"malformed token"}"#;
        assert_eq!(describe(&map, body), "Unauthorized: malformed token");
    }

    #[test]
    fn a_redirect_names_its_target() {
        let map = headers(&[(LOCATION, "/login")]);
        assert_eq!(describe(&map, b""), "redirected to /login");
        assert_eq!(describe(&map, b"Found"), "redirected to /login: Found");
    }
}
