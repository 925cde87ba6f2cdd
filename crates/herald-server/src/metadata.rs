//! Discovery: the OAuth 2.0 protected resource metadata (RFC 9728) and
//! helpers for publishers' `Link` headers.

use axum::Json;
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::Herald;

/// The well-known prefix of RFC 9728.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The path of the metadata document for a hub URL: the well-known prefix
/// followed by the hub's path.
pub fn metadata_path(hub_url: &Url) -> String {
    format!("{WELL_KNOWN}{}", hub_url.path().trim_end_matches('/'))
}

/// The absolute URL of the metadata document for a hub URL.
pub fn metadata_url(hub_url: &Url) -> String {
    format!(
        "{}{}",
        hub_url.origin().ascii_serialization(),
        metadata_path(hub_url)
    )
}

pub(crate) async fn document(herald: &Herald) -> Response {
    let mut doc = serde_json::json!({
        "resource": herald.hub().url().as_str(),
        "authorization_details_types_supported": ["https://mercure.rocks/authorization-detail"],
        "bearer_methods_supported": ["header"],
        "mercure_cookie": herald.auth().cookie_name(),
        "mercure_matcher_types_supported": ["exact", "urlpattern"],
    });
    if herald.hub().presence().is_some() {
        doc["mercure_subscriptions"] = serde_json::json!(true);
    }
    if !herald.authorization_servers().is_empty() {
        doc["authorization_servers"] = serde_json::json!(herald.authorization_servers());
    }
    Json(doc).into_response()
}

/// A `Link` header value advertising a hub to subscribers, for publishers'
/// responses: `<hub>; rel="mercure"` plus the optional target attributes.
///
/// ```
/// let value = herald_server::link_header(
///     "https://example.com/.well-known/mercure",
///     Some("urn:uuid:0190"),
///     Some("application/merge-patch+json"),
/// );
/// assert_eq!(
///     value,
///     r#"<https://example.com/.well-known/mercure>; rel="mercure"; last-event-id="urn:uuid:0190"; content-type="application/merge-patch+json""#
/// );
/// ```
pub fn link_header(
    hub_url: &str,
    last_event_id: Option<&str>,
    content_type: Option<&str>,
) -> String {
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let mut value = format!("<{hub_url}>; rel=\"mercure\"");
    if let Some(id) = last_event_id {
        value.push_str(&format!("; last-event-id=\"{}\"", quote(id)));
    }
    if let Some(ct) = content_type {
        value.push_str(&format!("; content-type=\"{}\"", quote(ct)));
    }
    value
}
