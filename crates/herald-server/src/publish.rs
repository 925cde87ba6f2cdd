//! The publication endpoint: `POST` on the hub URL, form-encoded or JSON.

use std::sync::Arc;

use axum::http::header;
use herald_hub::{Entry, Update, parse_retry};

use crate::compat::Purpose;
use crate::error::{BearerError, ServerError};
use crate::headers::RequestHeaders;
use crate::subscribe::is_form;
use crate::{Herald, form};

/// Publishes the update a request carries; its entry in the log.
pub(crate) async fn publish(
    herald: &Herald,
    headers: &impl RequestHeaders,
    query: Option<&str>,
    body: &[u8],
) -> Result<Arc<Entry>, ServerError> {
    // Who is asking comes first: a client without a valid token learns
    // nothing about its body, whatever is wrong with it.
    let client = publisher(herald, headers, query)?;
    // A compressed body read as if it were not would publish garbage, or
    // echo binary in an error. Every header line and every listed coding
    // counts: `identity` then `gzip` is still gzip.
    for value in headers.all(&header::CONTENT_ENCODING) {
        let codings = String::from_utf8_lossy(value);
        if codings
            .split(',')
            .any(|coding| !coding.trim().eq_ignore_ascii_case("identity"))
        {
            return Err(ServerError::UnsupportedMediaType(format!(
                "publish bodies are not decoded: send the body without Content-Encoding, not `{}`",
                codings.escape_debug()
            )));
        }
    }
    let content_type = media_type(headers, body)?;
    let update = if is_form(content_type) {
        from_form(body, herald.settings().compatibility.is_some())?
    } else if is_json(content_type) {
        from_json(body)?
    } else {
        return Err(ServerError::UnsupportedMediaType(format!(
            "publish with application/x-www-form-urlencoded or application/json, not `{content_type}`"
        )));
    };
    if client.via_cookie {
        check_same_origin(herald, headers)?;
    }
    // Topic rules apply whatever the publish rights (400 before 403); a
    // token with none was refused before the body.
    update.validate(herald.hub().namespace(), herald.hub().update_limits())?;
    if !client.grants.can_publish(&update.topics) {
        let denied = update
            .topics
            .iter()
            .find(|t| !client.grants.can_publish(std::slice::from_ref(t)))
            .cloned()
            .unwrap_or_default();
        return Err(ServerError::Bearer {
            error: BearerError::InsufficientScope,
            reason: "insufficient_scope",
            detail: client.refusal(format!(
                "the token does not grant `publish` on the topic `{denied}`"
            )),
        });
    }
    let entry = herald.hub().publish(update).await?;
    // Counted once accepted, as the metric says: a refused request says
    // nothing about clients that still need the older protocol.
    if client.legacy {
        herald.metrics().legacy_request("token");
    }
    Ok(entry)
}

/// The publisher a request's token names, or why there is none (no valid
/// token, or one with no `publish` right). Checked before a body still on
/// its way is read, so that such a client cannot hold a connection by
/// trickling one.
pub(crate) fn publisher(
    herald: &Herald,
    headers: &impl RequestHeaders,
    query: Option<&str>,
) -> Result<crate::auth::Client, ServerError> {
    let client = herald
        .auth()
        .authenticate_in(headers, query, Purpose::Publish)?
        .ok_or_else(|| {
            crate::auth::missing_token(headers, query, "publishing requires an access token")
        })?;
    // A token that may publish nothing is refused before its body too: a
    // subscriber's token must not hold a connection by trickling one.
    if client.grants.publish.is_empty() {
        return Err(ServerError::Bearer {
            error: BearerError::InsufficientScope,
            reason: "insufficient_scope",
            detail: client.refusal("the token grants no `publish` right".into()),
        });
    }
    Ok(client)
}

/// A cookie is sent by the browser whatever page makes the request, so a
/// publish authenticated by cookie must come from the hub's own origin or an
/// allowed one (`Origin`, else `Referer`); without either it is refused.
fn check_same_origin(herald: &Herald, headers: &impl RequestHeaders) -> Result<(), ServerError> {
    let origin = headers
        .text(&header::ORIGIN)
        .map(str::to_owned)
        .or_else(|| {
            let referer = headers.text(&header::REFERER)?;
            Some(
                url::Url::parse(referer)
                    .ok()?
                    .origin()
                    .ascii_serialization(),
            )
        });
    let Some(origin) = origin else {
        return Err(ServerError::Forbidden(
            "a publish authenticated by cookie must carry an Origin or Referer header".into(),
        ));
    };
    let own = herald.hub().url().origin().ascii_serialization();
    if origin == own
        || herald
            .settings()
            .cors_origins
            .iter()
            .any(|o| o.trim_end_matches('/') == origin)
    {
        return Ok(());
    }
    Err(ServerError::Forbidden(format!(
        "a publish authenticated by cookie from the origin `{origin}` is refused: it is neither the hub's origin nor an allowed CORS origin"
    )))
}

/// The request's one `Content-Type` (empty without one). Both bodies are
/// read as UTF-8: a charset other than UTF-8 is refused when the body
/// holds what that charset would read otherwise (a byte or a `%`-escape
/// beyond ASCII, or a zero byte, which UTF-16 and UTF-32 put in ASCII
/// text). An ASCII body reads the same in any of them: Apache HttpClient,
/// for one, labels its forms ISO-8859-1 by default.
fn media_type<'h>(headers: &'h impl RequestHeaders, body: &[u8]) -> Result<&'h str, ServerError> {
    let mut values = headers.all(&header::CONTENT_TYPE);
    let first = values.next();
    if values.next().is_some() {
        // Which one the client meant is anyone's guess (RFC 9110 §5.3).
        return Err(ServerError::BadRequest(
            "more than one Content-Type header: send exactly one".into(),
        ));
    }
    let content_type = first.and_then(crate::headers::as_text).unwrap_or("");
    for parameter in content_type.split(';').skip(1) {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        let charset = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset")
            && !["utf-8", "utf8", "us-ascii"]
                .iter()
                .any(|utf8| charset.eq_ignore_ascii_case(utf8))
            && !is_plain_ascii(body)
        {
            return Err(ServerError::UnsupportedMediaType(format!(
                "publish bodies are read as UTF-8, not as the charset `{}`: encode the body in UTF-8 and send charset=utf-8 or none",
                charset.escape_debug()
            )));
        }
    }
    Ok(content_type)
}

/// Whether `body` reads the same in every ASCII-based charset: no byte
/// beyond ASCII, no zero byte, and no `%`-escape of one beyond ASCII.
fn is_plain_ascii(body: &[u8]) -> bool {
    body.iter().all(|&b| b != 0 && b.is_ascii())
        && !body
            .windows(2)
            .any(|w| w[0] == b'%' && matches!(w[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'))
}

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads a form-encoded publication. With `compatibility`, a `target` field
/// is refused: Mercure before 0.10 restricted an update to its targets, and
/// a hub that ignored the field, as draft-08 would have it, would send the
/// update to everyone instead.
fn from_form(body: &[u8], compatibility: bool) -> Result<Update, ServerError> {
    let mut update = Update::default();
    let mut seen = [false; 4];
    for pair in form::pairs(body) {
        let (name, value) = pair.map_err(ServerError::BadRequest)?;
        // A single-valued field given twice is refused rather than read as
        // its first (or last) value: the other would be lost without a word.
        let once = |seen: &mut bool| {
            if std::mem::replace(seen, true) {
                Err(ServerError::BadRequest(format!(
                    "the `{name}` field is given more than once; send it once{}",
                    if name == "data" {
                        " (data of several lines is one field holding line breaks)"
                    } else {
                        ""
                    }
                )))
            } else {
                Ok(())
            }
        };
        match &*name {
            "topic" => update.topics.push(value),
            "data" => {
                once(&mut seen[0])?;
                update.data = value;
            }
            // An empty id is no id (the hub generates one), as form
            // serializers send every field and the reference hub reads it so.
            "id" => {
                once(&mut seen[1])?;
                update.id = Some(value).filter(|id| !id.is_empty());
            }
            // So are an empty type and an empty retry: an `event:` line
            // with nothing in it, or a refusal, for a field left blank.
            "type" => {
                once(&mut seen[2])?;
                update.event_type = Some(value).filter(|t| !t.is_empty());
            }
            "retry" => {
                once(&mut seen[3])?;
                if !value.is_empty() {
                    update.retry = Some(parse_retry(&value)?);
                }
            }
            "private" => update.private = true,
            "target" if compatibility => {
                return Err(ServerError::BadRequest(
                    "the `target` field of Mercure before 0.10 is not supported, and the update would reach every subscriber: publish it with `private=on` instead, to subscribers whose token grants its topics".into(),
                ));
            }
            _ => {} // unknown fields are ignored, as the protocol requires
        }
    }
    Ok(update)
}

/// Reads the JSON form of a publication (a herald extension): an object with
/// `topic` (a string or an array of strings) and optional `data`, `id`,
/// `type` (strings), `retry` (a non-negative integer or a string of digits)
/// and `private` (a boolean); other members are ignored, as unknown form
/// fields are. Each error names the member.
fn from_json(body: &[u8]) -> Result<Update, ServerError> {
    let invalid =
        |why: String| ServerError::BadRequest(format!("the JSON update is invalid: {why}"));
    let json: JsonObject = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    let JsonObject::Members(members) = json else {
        return Err(invalid(
            "it must be an object, such as {\"topic\": \"…\", \"data\": \"…\"}".into(),
        ));
    };
    let mut fields = serde_json::Map::new();
    for (name, value) in members {
        // A member given twice would be read one way here and another way
        // by whoever wrote it: refused, as form fields cannot be.
        if fields.insert(name.clone(), value).is_some() {
            return Err(invalid(format!("`{name}` is given more than once")));
        }
    }
    let wrong = |member: &str, expected: &str, got: &dyn std::fmt::Display| {
        invalid(format!("`{member}` must be {expected}, not {got}"))
    };
    let mut text = |name: &str| -> Result<Option<String>, ServerError> {
        match fields.remove(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(value)) => Ok(Some(value)),
            Some(other) => Err(wrong(name, "a string", &kind(&other))),
        }
    };
    let data = text("data")?;
    let id = text("id")?;
    let event_type = text("type")?;
    let topics = match fields.remove("topic") {
        Some(serde_json::Value::String(topic)) => vec![topic],
        Some(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(topic) => Ok(topic),
                other => Err(invalid(format!(
                    "`topic` must hold strings only, not {}",
                    kind(&other)
                ))),
            })
            .collect::<Result<_, _>>()?,
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(other) => {
            return Err(wrong(
                "topic",
                "a string or an array of strings",
                &kind(&other),
            ));
        }
    };
    let retry = match fields.remove("retry") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(number)) => Some(
            number
                .as_u64()
                .ok_or_else(|| wrong("retry", RETRY_EXPECTED, &number))?,
        ),
        Some(serde_json::Value::String(digits)) if digits.is_empty() => None,
        Some(serde_json::Value::String(digits)) => Some(parse_retry(&digits)?),
        Some(other) => return Err(wrong("retry", RETRY_EXPECTED, &kind(&other))),
    };
    let private = match fields.remove("private") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(private)) => private,
        Some(other) => return Err(wrong("private", "true or false", &kind(&other))),
    };
    Ok(Update {
        topics,
        data: data.unwrap_or_default(),
        id: id.filter(|id| !id.is_empty()),
        event_type: event_type.filter(|t| !t.is_empty()),
        retry,
        private,
    })
}

/// What a JSON update's `retry` must be.
const RETRY_EXPECTED: &str = "a non-negative integer of milliseconds";

/// A JSON document read as an object's members in order, duplicates kept
/// (a `serde_json::Value` keeps only the last), or anything else.
enum JsonObject {
    Members(Vec<(String, serde_json::Value)>),
    Other,
}

impl<'de> serde::Deserialize<'de> for JsonObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonObject;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonObject, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(JsonObject::Members(members))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<JsonObject, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonObject::Other)
            }

            fn visit_bool<E>(self, _: bool) -> Result<JsonObject, E> {
                Ok(JsonObject::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<JsonObject, E> {
                Ok(JsonObject::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<JsonObject, E> {
                Ok(JsonObject::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<JsonObject, E> {
                Ok(JsonObject::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<JsonObject, E> {
                Ok(JsonObject::Other)
            }
            fn visit_unit<E>(self) -> Result<JsonObject, E> {
                Ok(JsonObject::Other)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The JSON type of a value, for error messages.
fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
