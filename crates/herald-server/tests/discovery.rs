//! Discovery over loopback: the OAuth 2.0 protected resource metadata of the hub.

mod common;

use common::*;
use reqwest::StatusCode;

async fn metadata(hub: &TestHub) -> serde_json::Value {
    let response = send(client().get(hub.metadata_url())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    serde_json::from_str(&text(response).await).expect("a JSON document")
}

#[tokio::test]
async fn protected_resource_metadata_describes_the_hub() {
    let hub = start_default().await;
    let doc = metadata(&hub).await;
    assert_eq!(doc["resource"], serde_json::json!(hub.url));
    assert_eq!(
        doc["authorization_details_types_supported"],
        serde_json::json!(["https://mercure.rocks/authorization-detail"])
    );
    let methods = doc["bearer_methods_supported"]
        .as_array()
        .expect("bearer_methods_supported is an array");
    assert!(methods.contains(&serde_json::json!("header")), "{doc}");
    assert!(!methods.contains(&serde_json::json!("query")), "{doc}");
    assert_eq!(doc["mercure_cookie"], serde_json::json!(COOKIE));
    // The challenge of a refused request points at this document.
    let (headers, _) = refused(
        publish_request(&hub, None, &[("topic", "x")]),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        challenge(&headers).contains(&format!("resource_metadata=\"{}\"", hub.metadata_url())),
        "{}",
        challenge(&headers)
    );
}

#[tokio::test]
async fn protected_resource_metadata_follows_the_configuration() {
    let mut config = config();
    config.auth.cookie_name = "hub_token".into();
    let hub = start(config).await;
    let doc = metadata(&hub).await;
    assert_eq!(doc["mercure_cookie"], serde_json::json!("hub_token"));
    // The configured cookie carries the token; the default one no longer does.
    let token = hub.publisher();
    let response = send(
        publish_request(&hub, None, &[("topic", "x")])
            .header("cookie", format!("hub_token={token}"))
            .header("origin", format!("http://{}", hub.addr)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(
        publish_request(&hub, None, &[("topic", "x")])
            .header("cookie", format!("{COOKIE}={token}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn other_paths_are_not_found() {
    let hub = start_default().await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/other",
        "/.well-known/mercure/extra",
    ] {
        let response = send(client().get(format!("http://{}{path}", hub.addr))).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
