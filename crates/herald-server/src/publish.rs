//! The publication endpoint: `POST` on the hub URL, form-encoded or JSON.

use std::sync::Arc;

use axum::http::header;
use herald_hub::{Entry, Update, parse_retry};
use serde::Deserialize;

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
    let content_type = headers.text(&header::CONTENT_TYPE).unwrap_or("");
    let update = if is_form(content_type) {
        from_form(body)?
    } else if is_json(content_type) {
        from_json(body)?
    } else {
        return Err(ServerError::UnsupportedMediaType(format!(
            "publish with application/x-www-form-urlencoded or application/json, not `{content_type}`"
        )));
    };
    let Some(client) = herald
        .auth()
        .authenticate_in(headers, query, Purpose::Publish)?
    else {
        return Err(ServerError::Bearer {
            error: BearerError::Missing,
            reason: "missing",
            detail: "publishing requires an access token".into(),
        });
    };
    if client.via_cookie {
        check_same_origin(herald, headers)?;
    }
    if client.legacy {
        herald.metrics().legacy_request("token");
    }
    // Topic rules apply whatever the token (400 before 403).
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
            detail: format!("the token does not grant `publish` on the topic `{denied}`"),
        });
    }
    Ok(herald.hub().publish(update).await?)
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

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn from_form(body: &[u8]) -> Result<Update, ServerError> {
    let mut update = Update::default();
    let mut seen = (false, false, false, false);
    for pair in form::pairs(body) {
        let (name, value) = pair.map_err(ServerError::BadRequest)?;
        // Single-valued fields: the first occurrence counts, as with most form readers.
        match &*name {
            "topic" => update.topics.push(value),
            "data" if !seen.0 => {
                seen.0 = true;
                update.data = value;
            }
            "id" if !seen.1 => {
                seen.1 = true;
                update.id = Some(value);
            }
            "type" if !seen.2 => {
                seen.2 = true;
                update.event_type = Some(value);
            }
            "retry" if !seen.3 => {
                seen.3 = true;
                update.retry = Some(parse_retry(&value)?);
            }
            "private" => update.private = true,
            _ => {} // unknown fields are ignored, as the protocol requires
        }
    }
    Ok(update)
}

/// The JSON form of a publication (a herald extension).
#[derive(Deserialize)]
struct JsonUpdate {
    topic: OneOrMany,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    retry: Option<JsonRetry>,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonRetry {
    Number(u64),
    Text(String),
}

fn from_json(body: &[u8]) -> Result<Update, ServerError> {
    let json: JsonUpdate = serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("the JSON update is invalid: {e}")))?;
    Ok(Update {
        topics: match json.topic {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(t) => t,
        },
        data: json.data.unwrap_or_default(),
        id: json.id,
        event_type: json.event_type,
        retry: match json.retry {
            None => None,
            Some(JsonRetry::Number(n)) => Some(n),
            Some(JsonRetry::Text(t)) => Some(parse_retry(&t)?),
        },
        private: json.private,
    })
}
