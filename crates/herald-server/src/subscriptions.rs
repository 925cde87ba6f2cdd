//! The subscription API: `GET {hub path}/subscriptions[/{match_type}/{match}[/{subscriber}]]`.
//!
//! Every answer carries the reconciliation cursor in the `rel="mercure"` Link
//! header. The cursor is read *before* the index is read, so replaying the log
//! after it and applying the subscription events on top of the answer misses
//! nothing (see `herald_hub::Presence`).
//!
//! Collections are sorted by subscription `id` and cut into pages of at most
//! `Settings::subscriptions_page_size` subscriptions; a cut page has a `next`
//! member, the URL of the following page (`?after={last id}`). See `docs/presence.md`.
//!
//! In compatibility mode the pre-draft-08 paths (`…/subscriptions/{topic}` and
//! `…/{topic}/{subscriber}`) are served too, and a request that uses one of
//! them or presents a legacy token gets that revision's JSON-LD documents
//! (with `@context` and `lastEventID`), as `application/ld+json`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_hub::{ActiveSubscription, MatcherType, Presence, encode_variable};
use percent_encoding::percent_decode_str;

use crate::compat::Purpose;
use crate::error::{BearerError, ServerError};
use crate::{Herald, form};

/// What the request path names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    All,
    Matcher(MatcherType, String),
    One(MatcherType, String, String),
}

pub(crate) async fn endpoint(
    herald: &Herald,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
) -> Result<Response, ServerError> {
    let Some(presence) = herald.hub().presence() else {
        return Err(ServerError::NotFound(
            "this hub does not serve the subscription API".into(),
        ));
    };
    if method != Method::GET && method != Method::HEAD {
        return Err(ServerError::MethodNotAllowed {
            method: method.to_string(),
            allow: "GET, HEAD",
        });
    }
    let compatibility = herald.settings().compatibility.is_some();
    let target = parse_path(presence, path, compatibility)?;
    let topic = match &target {
        Target::All => presence.collection_path().to_owned(),
        Target::Matcher(t, m) => presence.matcher_topic(*t, m),
        Target::One(t, m, s) => presence.subscription_topic(*t, m, s),
    };
    let Some(client) = herald
        .auth()
        .authenticate(headers, query, Purpose::Subscribe)?
    else {
        return Err(crate::auth::missing_token(
            headers,
            query,
            "the subscription API requires an access token",
        ));
    };
    if !client.grants.can_read(&[topic.as_str()]) {
        return Err(ServerError::Bearer {
            error: BearerError::InsufficientScope,
            reason: "insufficient_scope",
            detail: client.refusal(format!(
                "the token grants no `subscribe` action on `{topic}`"
            )),
        });
    }
    let after = match query {
        Some(q) => form::parse(q.as_bytes())
            .map_err(ServerError::BadRequest)?
            .into_iter()
            .find(|(name, _)| name == "after")
            .map(|(_, value)| value),
        None => None,
    };

    let legacy = client.legacy || target.is_legacy();

    // The cursor first, then the snapshot.
    let cursor = herald.hub().last_event_id().await?;
    let page_size = herald.settings().subscriptions_page_size;
    let shape = if legacy {
        Shape::Legacy { cursor: &cursor }
    } else {
        Shape::Draft08
    };
    let body = match target {
        Target::One(t, m, s) => {
            let Some(found) = presence.get(t, &m, &s) else {
                // Even a 404 carries the cursor, as every endpoint of the API
                // must: from it, a client follows the subscription's events.
                let mut response = herald.error(ServerError::NotFound(format!(
                    "no active subscription is at {topic}"
                )));
                if let Some(link) = cursor_link(herald, &cursor) {
                    response.headers_mut().insert(header::LINK, link);
                }
                return Ok(response);
            };
            let mut out = String::with_capacity(256);
            match shape {
                Shape::Draft08 => found.write_document(&mut out, true),
                Shape::Legacy { cursor } => {
                    found.write_legacy_document(&mut out, true, true);
                    out.pop();
                    out.push_str(&format!(",\"lastEventID\":{}}}", json(cursor)));
                }
            }
            out
        }
        Target::All => collection(&topic, presence.all(), after.as_deref(), page_size, shape),
        Target::Matcher(t, m) => collection(
            &topic,
            presence.of_matcher(t, &m),
            after.as_deref(),
            page_size,
            shape,
        ),
    };
    let content_type = if legacy {
        "application/ld+json"
    } else {
        "application/json"
    };
    Ok(respond(herald, headers, &cursor, body, content_type))
}

impl Target {
    /// Whether the path is one only the pre-draft-08 revision has.
    fn is_legacy(&self) -> bool {
        matches!(
            self,
            Target::Matcher(MatcherType::Selector, _) | Target::One(MatcherType::Selector, _, _)
        )
    }
}

/// Which revision's documents an answer uses.
#[derive(Debug, Clone, Copy)]
enum Shape<'c> {
    Draft08,
    /// JSON-LD with `@context`, and the reconciliation cursor as `lastEventID`.
    Legacy {
        cursor: &'c str,
    },
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Parses the path below the hub path: not found for anything that names no
/// resource, a bad request for a segment that is not well encoded. With `legacy`, the pre-draft-08 `{topic}[/{subscriber}]` forms
/// are recognized too; a first segment naming a draft-08 matcher type wins.
fn parse_path(presence: &Presence, path: &str, legacy: bool) -> Result<Target, ServerError> {
    let nothing = || ServerError::NotFound(format!("nothing is at {path}"));
    let rest = path
        .strip_prefix(presence.collection_path())
        .ok_or_else(nothing)?;
    if rest.is_empty() {
        return Ok(Target::All);
    }
    let rest = rest.strip_prefix('/').ok_or_else(nothing)?;
    let segments: Vec<&str> = rest.split('/').collect();
    // Every variable was percent-encoded once as UTF-8, so a segment that
    // is not such an encoding names no subscription: say why.
    for segment in &segments {
        decode_segment(segment)?;
    }
    target(&segments, legacy).ok_or_else(|| ServerError::NotFound(unknown_path(&segments, legacy)))
}

/// Why well-encoded `segments` (at least one) name no resource of the API.
fn unknown_path(segments: &[&str], legacy: bool) -> String {
    let first = decode_segment(segments[0]).unwrap_or_default();
    let is_type = MatcherType::from_name(&first).is_some();
    let why = if segments.len() > 3 {
        "the path has more than three segments after the collection".to_owned()
    } else if !is_type && (!legacy || segments.len() == 3) {
        format!("`{first}` is not a matcher type (exact or urlpattern)")
    } else if is_type && segments.len() == 1 {
        format!("the matcher type `{first}` is not followed by a matcher")
    } else {
        "a segment of the path is empty".to_owned()
    };
    let shapes = if legacy {
        "…/subscriptions[/{match_type}/{match}[/{subscriber}]], or the older \
         …/subscriptions/{topic}[/{subscriber}]"
    } else {
        "…/subscriptions[/{match_type}/{match}[/{subscriber}]]"
    };
    format!("{why}; the subscription API's paths are {shapes}")
}

/// What the (well-encoded) segments after the collection path name, if anything.
fn target(segments: &[&str], legacy: bool) -> Option<Target> {
    let decode_any = |s: &str| decode_segment(s).ok();
    let decode = |s: &str| -> Option<String> { decode_any(s).filter(|d| !d.is_empty()) };
    // A matcher may be empty (`match=` is a matcher with an empty value), so
    // its segment may be too: `…/subscriptions/exact//{subscriber}`.
    match segments {
        [topic] if legacy => Some(Target::Matcher(MatcherType::Selector, decode(topic)?)),
        [first, second] => match MatcherType::from_name(&decode(first)?) {
            Some(match_type) => Some(Target::Matcher(match_type, decode_any(second)?)),
            None if legacy => Some(Target::One(
                MatcherType::Selector,
                decode(first)?,
                decode(second)?,
            )),
            None => None,
        },
        [match_type, matcher, subscriber] => Some(Target::One(
            MatcherType::from_name(&decode(match_type)?)?,
            decode_any(matcher)?,
            decode(subscriber)?,
        )),
        _ => None,
    }
}

/// One path segment, percent-decoded; an error naming it when a `%` is not
/// followed by two hex digits or the bytes are not UTF-8.
fn decode_segment(segment: &str) -> Result<String, ServerError> {
    let bytes = segment.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    let decoded = (!malformed)
        .then(|| percent_decode_str(segment).decode_utf8().ok())
        .flatten();
    decoded.map(|d| d.into_owned()).ok_or_else(|| {
        ServerError::BadRequest(format!(
            "the path segment `{segment}` is not a percent-encoded UTF-8 value"
        ))
    })
}

/// A collection document: the page of `subscriptions` after `after`, sorted by id.
fn collection(
    topic: &str,
    mut subscriptions: Vec<Arc<ActiveSubscription>>,
    after: Option<&str>,
    page_size: usize,
    shape: Shape<'_>,
) -> String {
    if let Some(after) = after {
        subscriptions.retain(|s| &*s.topic > after);
    }
    if let Shape::Draft08 = shape {
        // A `topic=` subscription has no draft-08 matcher type (a URI template
        // is neither `exact` nor `urlpattern`) and its id is not a draft-08
        // subscription topic, so no valid draft-08 document describes it: the
        // older shape lists both kinds.
        subscriptions.retain(|s| s.match_type != MatcherType::Selector);
    }
    let page_size = page_size.max(1);
    let truncated = subscriptions.len() > page_size;
    if truncated {
        subscriptions.select_nth_unstable_by(page_size - 1, |a, b| a.topic.cmp(&b.topic));
        subscriptions.truncate(page_size);
    }
    subscriptions.sort_unstable_by(|a, b| a.topic.cmp(&b.topic));
    let id = match after {
        Some(after) => format!("{topic}?after={}", encode_variable(after)),
        None => topic.to_owned(),
    };
    let mut out = String::with_capacity(64 + subscriptions.len() * 256);
    match shape {
        Shape::Draft08 => out.push_str(&format!(
            "{{\"id\":{},\"type\":\"subscriptions\",\"subscriptions\":[",
            json(&id)
        )),
        Shape::Legacy { cursor } => out.push_str(&format!(
            "{{\"@context\":\"https://mercure.rocks/\",\"id\":{},\"type\":\"Subscriptions\",\"lastEventID\":{},\"subscriptions\":[",
            json(&id),
            json(cursor)
        )),
    }
    for (i, subscription) in subscriptions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match shape {
            Shape::Draft08 => subscription.write_document(&mut out, true),
            Shape::Legacy { .. } => subscription.write_legacy_document(&mut out, true, false),
        }
    }
    out.push(']');
    if truncated && let Some(last) = subscriptions.last() {
        let next = format!("{topic}?after={}", encode_variable(&last.topic));
        out.push_str(&format!(",\"next\":{}", json(&next)));
    }
    out.push('}');
    out
}

fn respond(
    herald: &Herald,
    headers: &HeaderMap,
    cursor: &str,
    body: String,
    content_type: &'static str,
) -> Response {
    let mut hasher = DefaultHasher::new();
    cursor.hash(&mut hasher);
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());

    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let h = response.headers_mut();
    if let Some(link) = cursor_link(herald, cursor) {
        h.insert(header::LINK, link);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, must-revalidate"),
    );
    response
}

/// The `rel="mercure"` Link header carrying the reconciliation `cursor`,
/// which every answer of the API carries.
fn cursor_link(herald: &Herald, cursor: &str) -> Option<HeaderValue> {
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let link = format!(
        "<{}>; rel=\"mercure\"; last-event-id=\"{}\"; type=\"mercure\"; content-type=\"application/json\"",
        herald.hub().url(),
        quote(cursor)
    );
    HeaderValue::from_str(&link).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence() -> Arc<Presence> {
        herald_hub::Hub::builder(
            "https://hub.example.com/.well-known/mercure"
                .parse()
                .unwrap(),
        )
        .subscriptions(true)
        .build()
        .presence()
        .unwrap()
        .clone()
    }

    #[test]
    fn paths_name_the_three_resources() {
        let p = presence();
        let base = "/.well-known/mercure/subscriptions";
        assert_eq!(parsed(&p, base, false), Some(Target::All));
        assert_eq!(
            parsed(
                &p,
                &format!("{base}/exact/https%3A%2F%2Fexample.com%2Fa%20b"),
                false
            ),
            Some(Target::Matcher(
                MatcherType::Exact,
                "https://example.com/a b".into()
            ))
        );
        assert_eq!(
            parsed(
                &p,
                &format!("{base}/urlpattern/%2Fx%2F%3Aid/urn%3Auuid%3A1"),
                false
            ),
            Some(Target::One(
                MatcherType::UrlPattern,
                "/x/:id".into(),
                "urn:uuid:1".into()
            ))
        );
        // `match=` is a matcher too: its segment is empty.
        assert_eq!(
            parsed(&p, &format!("{base}/exact//s"), false),
            Some(Target::One(MatcherType::Exact, String::new(), "s".into()))
        );
        for bad in [
            format!("{base}/"),
            format!("{base}/exact"),
            format!("{base}/regex/a"),
            format!("{base}/exact/a/"),
            format!("{base}/exact/a/b/c"),
            format!("{base}x"),
        ] {
            assert!(
                matches!(parse_path(&p, &bad, false), Err(ServerError::NotFound(_))),
                "{bad}"
            );
        }
        for malformed in ["%FF", "%C3%28", "%ZZ", "abc%", "%4"] {
            let path = format!("{base}/exact/{malformed}");
            match parse_path(&p, &path, false) {
                Err(ServerError::BadRequest(why)) => assert!(why.contains(malformed), "{why}"),
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    fn parsed(p: &Presence, path: &str, legacy: bool) -> Option<Target> {
        parse_path(p, path, legacy).ok()
    }

    #[test]
    fn compatibility_adds_the_older_topic_paths() {
        let p = presence();
        let base = "/.well-known/mercure/subscriptions";
        let selector = format!("{base}/https%3A%2F%2Fexample.com%2F%7Bid%7D");
        assert_eq!(parsed(&p, &selector, false), None);
        assert_eq!(
            parsed(&p, &selector, true),
            Some(Target::Matcher(
                MatcherType::Selector,
                "https://example.com/{id}".into()
            ))
        );
        assert_eq!(
            parsed(&p, &format!("{selector}/urn%3Auuid%3A1"), true),
            Some(Target::One(
                MatcherType::Selector,
                "https://example.com/{id}".into(),
                "urn:uuid:1".into()
            ))
        );
        assert_eq!(
            parsed(&p, &format!("{base}/exact/a"), true),
            Some(Target::Matcher(MatcherType::Exact, "a".into())),
            "a draft-08 matcher type in the first segment wins"
        );
        assert_eq!(parsed(&p, &format!("{base}/a/b/c"), true), None);
    }
}
