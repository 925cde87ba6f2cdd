//! Compatibility mode over loopback HTTP: the pre-draft-08 protocol served
//! next to draft-08 by one hub (see `docs/compatibility.md`).

mod common;

use std::time::Duration;

use common::*;
use herald_hub::encode_variable;
use herald_token::{LegacyMintRequest, SigningKey, mint_legacy};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PUBLISHER_SECRET: &str = "the legacy publisher secret, 32 bytes or more";
const SUBSCRIBER_SECRET: &str = "the legacy subscriber secret, 32 bytes or more";

fn compat_config() -> herald_server::Config {
    let mut config = config();
    config.compatibility.enabled = true;
    config.compatibility.publisher_hs256_secrets = vec![PUBLISHER_SECRET.into()];
    config.compatibility.subscriber_hs256_secrets = vec![SUBSCRIBER_SECRET.into()];
    config
}

fn legacy(secret: &str, request: LegacyMintRequest) -> String {
    mint_legacy(&request, &SigningKey::hs256(secret.as_bytes()).unwrap()).unwrap()
}

fn legacy_publisher(topics: &[&str]) -> String {
    legacy(
        PUBLISHER_SECRET,
        LegacyMintRequest {
            publish: topics.iter().map(|t| t.to_string()).collect(),
            ..LegacyMintRequest::default()
        },
    )
}

fn legacy_subscriber(topics: &[&str]) -> String {
    legacy(
        SUBSCRIBER_SECRET,
        LegacyMintRequest {
            subscribe: topics.iter().map(|t| t.to_string()).collect(),
            ..LegacyMintRequest::default()
        },
    )
}

#[tokio::test]
async fn topic_selectors_match_strings_templates_and_everything() {
    let hub = start(compat_config()).await;
    let mut template = subscribe(
        &hub,
        &format!("topic={}", enc("https://example.com/books/{id}")),
    )
    .await;
    let mut plain = subscribe(
        &hub,
        &format!("topic={}", enc("https://example.com/books/1")),
    )
    .await;
    let mut all = subscribe(&hub, "topic=*").await;
    let token = legacy_publisher(&["*"]);
    for (topic, data) in [
        ("https://example.com/books/1/reviews", "not a book"),
        ("https://example.com/books/2", "book 2"),
        ("https://example.com/books/1", "book 1"),
    ] {
        let response = publish(&hub, Some(&token), &[("topic", topic), ("data", data)]).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(template.data(2).await, ["book 2", "book 1"]);
    assert_eq!(plain.data(1).await, ["book 1"]);
    assert_eq!(all.data(3).await, ["not a book", "book 2", "book 1"]);
}

#[tokio::test]
async fn old_and_new_clients_share_one_hub() {
    let hub = start(compat_config()).await;
    let topic = "https://example.com/books/1";
    let mut old = subscribe(&hub, &format!("topic={}", enc(topic))).await;
    let mut new = subscribe(&hub, &format!("match={}", enc(topic))).await;
    let mut both = subscribe(
        &hub,
        &format!(
            "match_urlpattern={}&topic={}",
            enc("https://example.com/books/:id"),
            enc("https://example.com/books/{id}")
        ),
    )
    .await;
    let legacy_id = publish_ok_with(&hub, &legacy_publisher(&[topic]), topic, "from old").await;
    let modern_id = publish_ok_with(&hub, &hub.publisher(), topic, "from new").await;
    for stream in [&mut old, &mut new] {
        assert_eq!(stream.ids(2).await, [legacy_id.clone(), modern_id.clone()]);
    }
    assert_eq!(
        both.data(2).await,
        ["from old", "from new"],
        "one delivery per update, however many matchers match"
    );
}

async fn publish_ok_with(hub: &TestHub, token: &str, topic: &str, data: &str) -> String {
    let response = publish(hub, Some(token), &[("topic", topic), ("data", data)]).await;
    let status = response.status();
    let body = text(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn legacy_grants_decide_publishing_and_private_reading() {
    let hub = start(compat_config()).await;
    let book = "https://example.com/books/1";
    // The older spec's own example: a private update whose alternate topic
    // names the user, read through a `{?topic}` template grant.
    let alternate = format!("https://example.com/users/foo/?topic={}", enc(book));
    let query = format!("topic={}", enc("https://example.com/books/{id}"));
    let mut foo = subscribe_with(
        &hub,
        &query,
        &legacy_subscriber(&["https://example.com/users/foo/{?topic}"]),
    )
    .await;
    let mut bar = subscribe_with(
        &hub,
        &query,
        &legacy_subscriber(&["https://example.com/users/bar/{?topic}"]),
    )
    .await;
    let mut anonymous = subscribe(&hub, &query).await;

    let publisher = legacy_publisher(&[
        "https://example.com/books/{id}",
        "https://example.com/users/{user}/{?topic}",
    ]);
    let response = publish(
        &hub,
        Some(&publisher),
        &[
            ("topic", book),
            ("topic", &alternate),
            ("data", "private"),
            ("private", "on"),
        ],
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        text(response).await
    );
    publish_ok_with(&hub, &publisher, book, "public").await;

    assert_eq!(foo.data(2).await, ["private", "public"]);
    assert_eq!(
        bar.data(1).await,
        ["public"],
        "bar may not read foo's update"
    );
    assert_eq!(anonymous.data(1).await, ["public"]);

    // Every topic must be covered by a `publish` selector.
    let narrow = legacy_publisher(&["https://example.com/books/{id}"]);
    let (headers, _) = refused(
        publish_request(
            &hub,
            Some(&narrow),
            &[("topic", book), ("topic", "https://example.com/other")],
        ),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(challenge(&headers).contains("insufficient_scope"));
    // Only accepted requests count as ones that needed the older protocol.
    let counted = |metrics: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("herald_legacy_requests_total{reason=\"token\"} "))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    let before = counted(&hub.herald.metrics().render());
    refused(
        publish_request(
            &hub,
            Some(&narrow),
            &[("topic", "https://example.com/other")],
        ),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(counted(&hub.herald.metrics().render()), before);
    publish_ok_with(&hub, &narrow, book, "counted").await;
    assert_eq!(counted(&hub.herald.metrics().render()), before + 1.0);

    // A subscriber token cannot publish: publishing uses the publisher keys.
    let (headers, _) = refused(
        publish_request(&hub, Some(&legacy_subscriber(&["*"])), &[("topic", book)]),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(challenge(&headers).contains("invalid_token"), "{headers:?}");
}

#[tokio::test]
async fn a_target_field_is_refused_rather_than_published_to_everyone() {
    // Mercure before 0.10 restricted an update to its `target`s; ignored,
    // the field would make such an update public.
    let hub = start(compat_config()).await;
    let topic = "https://example.com/books/1";
    let mut anonymous = subscribe(&hub, &format!("topic={}", enc(topic))).await;
    let (_, body) = refused(
        publish_request(
            &hub,
            Some(&legacy_publisher(&["*"])),
            &[
                ("topic", topic),
                ("data", "for user 1"),
                ("target", "https://example.com/users/1"),
            ],
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        body.contains("`target`") && body.contains("private=on"),
        "{body}"
    );
    publish_ok_with(&hub, &legacy_publisher(&["*"]), topic, "marker").await;
    assert_eq!(anonymous.data(1).await, ["marker"]);

    // Draft-08 alone ignores unknown fields, as it requires.
    let modern = start(config()).await;
    publish_ok(&modern, &[("topic", topic), ("target", "x")]).await;
}

#[tokio::test]
async fn the_token_may_come_from_the_query_or_the_legacy_cookie() {
    let hub = start(compat_config()).await;
    let topic = "https://example.com/private";
    let query = format!("topic={}", enc(topic));
    let allowed = legacy_subscriber(&[topic]);
    let denied = legacy_subscriber(&["https://example.com/other"]);

    let mut by_query = subscribe(&hub, &format!("{query}&authorization={allowed}")).await;
    let mut by_cookie =
        open(get(&hub, &query).header("cookie", format!("mercureAuthorization={allowed}"))).await;
    // The header wins over the query, and the query over the cookie.
    let mut header_wins =
        open(get(&hub, &format!("{query}&authorization={denied}")).bearer_auth(&allowed)).await;
    let mut query_wins = open(
        get(&hub, &format!("{query}&authorization={denied}"))
            .header("cookie", format!("mercureAuthorization={allowed}")),
    )
    .await;

    let publisher = legacy_publisher(&["*"]);
    let response = publish(
        &hub,
        Some(&publisher),
        &[("topic", topic), ("data", "secret"), ("private", "on")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    publish_ok_with(&hub, &publisher, topic, "marker").await;
    assert_eq!(by_query.data(2).await, ["secret", "marker"]);
    assert_eq!(by_cookie.data(2).await, ["secret", "marker"]);
    assert_eq!(header_wins.data(2).await, ["secret", "marker"]);
    assert_eq!(query_wins.data(1).await, ["marker"]);

    // A bad token in the query is refused like one in the header.
    refused(
        get(&hub, &format!("{query}&authorization=not.a.jwt")),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // A draft-08 access token is not taken from a URL, where draft-08
    // forbids it, for subscribing or publishing.
    let access = hub.token().subscribe(&[topic]).sign();
    let (headers, body) = refused(
        get(&hub, &format!("{query}&authorization={access}")),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        challenge(&headers).contains("invalid_request"),
        "{headers:?}"
    );
    assert!(body.contains("query parameter"), "{body}");
    refused(
        client()
            .post(format!("{}?authorization={}", hub.url, hub.publisher()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("topic", topic), ("data", "from a URL")])),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn legacy_tokens_expire_and_need_a_configured_key() {
    let mut long_leeway = compat_config();
    long_leeway.auth.leeway = Duration::from_secs(30);
    let hub = start(long_leeway).await;
    let topic = "https://example.com/a";
    let short = legacy(
        SUBSCRIBER_SECRET,
        LegacyMintRequest::new()
            .with_subscribe(topic)
            .with_ttl(Duration::from_secs(2)),
    );
    let started = tokio::time::Instant::now();
    let mut stream = subscribe_with(&hub, &format!("topic={}", enc(topic)), &short).await;
    // The hub closes the stream at `exp` (whole seconds: 1 to 2 s away),
    // not `exp` plus the leeway, and the token opens no other.
    let events = stream.until_end(Duration::from_secs(10)).await;
    assert!(events.is_empty(), "{events:?}");
    let lived = started.elapsed();
    assert!(lived < Duration::from_millis(2500), "{lived:?}");
    refused(
        get(&hub, &format!("topic={}", enc(topic))).bearer_auth(&short),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let forged = legacy(
        "a secret the hub does not know, 32 bytes or more",
        LegacyMintRequest::new().with_subscribe(topic),
    );
    let (headers, _) = refused(
        get(&hub, &format!("topic={}", enc(topic))).bearer_auth(&forged),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(challenge(&headers).contains("invalid_token"));

    // Without compatibility mode the same token is refused as not an access token.
    let modern = start(config()).await;
    let (headers, _) = refused(
        publish_request(
            &modern,
            Some(&legacy_publisher(&["*"])),
            &[("topic", topic)],
        ),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(challenge(&headers).contains("at+jwt"), "{headers:?}");
    let (_, body) = refused(
        get(&modern, &format!("topic={}", enc(topic))),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("pre-draft-08"), "{body}");
}

#[tokio::test]
async fn last_event_id_parameter_and_response_header() {
    let hub = start(compat_config()).await;
    let topic = "https://example.com/log";
    let publisher = legacy_publisher(&["*"]);
    let first = publish_ok_with(&hub, &publisher, topic, "1").await;
    publish_ok_with(&hub, &publisher, topic, "2").await;
    publish_ok_with(&hub, &publisher, topic, "3").await;

    let mut resumed = subscribe(
        &hub,
        &format!("topic={}&lastEventID={}", enc(topic), enc(&first)),
    )
    .await;
    assert_eq!(
        resumed.header("last-event-id").as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        resumed.header("mercure-last-event-id").as_deref(),
        Some(first.as_str())
    );
    assert_eq!(resumed.data(2).await, ["2", "3"]);

    let mut everything =
        subscribe(&hub, &format!("topic={}&lastEventID=earliest", enc(topic))).await;
    assert_eq!(
        everything.header("last-event-id").as_deref(),
        Some("earliest")
    );
    assert_eq!(everything.data(3).await, ["1", "2", "3"]);

    // The Last-Event-ID request header wins over the parameter.
    let mut header = open(
        get(&hub, &format!("topic={}&lastEventID=earliest", enc(topic)))
            .header("last-event-id", &first),
    )
    .await;
    assert_eq!(header.data(2).await, ["2", "3"]);
}

#[tokio::test]
async fn subscription_events_and_api_in_the_older_shapes() {
    let mut config = compat_config();
    config.subscriptions.enabled = true;
    let hub = start(config).await;
    // As in the older spec's examples: one `{/var}` template grants the
    // collection, the per-topic collections and every subscription.
    let observer_token =
        legacy_subscriber(&["/.well-known/mercure/subscriptions{/topic}{/subscriber}"]);
    let mut observer = subscribe_with(
        &hub,
        &format!(
            "topic={}",
            enc("/.well-known/mercure/subscriptions/{topic}/{subscriber}")
        ),
        &observer_token,
    )
    .await;

    let selector = "https://example.com/books/{id}";
    let payload_token = legacy(
        SUBSCRIBER_SECRET,
        LegacyMintRequest::new()
            .with_subscribe("https://example.com/users/1")
            .with_payload(json!({"user": 1})),
    );
    let subscriber =
        subscribe_with(&hub, &format!("topic={}", enc(selector)), &payload_token).await;

    // The observer's own subscription comes first; then the subscriber's.
    let (event, document) = loop {
        let event = observer.event().await;
        let document: Value = serde_json::from_str(&event.data).unwrap();
        if document["topic"] == selector {
            break (event, document);
        }
    };
    assert_eq!(event.event_type, "message", "older clients use onmessage");
    let id = document["id"].as_str().unwrap().to_owned();
    assert_eq!(
        id,
        format!(
            "/.well-known/mercure/subscriptions/{}/{}",
            encode_variable(selector),
            encode_variable(document["subscriber"].as_str().unwrap())
        )
    );
    assert_eq!(document["@context"], "https://mercure.rocks/");
    assert_eq!(document["type"], "Subscription");
    assert_eq!(document["topic"], selector);
    assert_eq!(document["active"], true);
    assert_eq!(document["payload"], json!({"user": 1}));

    // The API: collection, per-topic collection and one subscription.
    let base = format!("http://{}", hub.addr);
    let get_json = |path: String| {
        let token = observer_token.clone();
        async move {
            let response = send(client().get(path).bearer_auth(token)).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-type"], "application/ld+json");
            serde_json::from_str::<Value>(&text(response).await).unwrap()
        }
    };
    let one = get_json(format!("{base}{id}")).await;
    assert_eq!(one["type"], "Subscription");
    assert_eq!(one["topic"], selector);
    assert!(one["lastEventID"].is_string());
    let per_topic = get_json(format!(
        "{base}/.well-known/mercure/subscriptions/{}",
        encode_variable(selector)
    ))
    .await;
    assert_eq!(per_topic["type"], "Subscriptions");
    assert_eq!(per_topic["@context"], "https://mercure.rocks/");
    assert_eq!(per_topic["subscriptions"][0]["id"], id.as_str());

    drop(subscriber);
    let ended = observer.event().await;
    let document: Value = serde_json::from_str(&ended.data).unwrap();
    assert_eq!(document["id"], id.as_str());
    assert_eq!(document["active"], false);
}

#[tokio::test]
async fn the_draft_08_api_lists_only_subscriptions_a_draft_08_document_describes() {
    let mut config = compat_config();
    config.subscriptions.enabled = true;
    let hub = start(config).await;
    let _older = subscribe(
        &hub,
        &format!("topic={}", enc("https://example.com/books/{id}")),
    )
    .await;
    let _newer = subscribe(
        &hub,
        &format!("match={}", enc("https://example.com/books/1")),
    )
    .await;
    let collection = format!("http://{}/.well-known/mercure/subscriptions", hub.addr);
    let list = |token: String| {
        let collection = collection.clone();
        async move {
            let response = send(client().get(collection).bearer_auth(token)).await;
            assert_eq!(response.status(), StatusCode::OK);
            serde_json::from_str::<Value>(&text(response).await).unwrap()
        }
    };

    // Asked in draft-08's shape: every entry is a valid draft-08 document,
    // so the `topic=` subscription (no draft-08 matcher type) is left out.
    let newer = list(hub.token().subscribe(&["*"]).sign()).await;
    assert_eq!(newer["type"], "subscriptions");
    let entries = newer["subscriptions"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{newer}");
    assert_eq!(entries[0]["type"], "subscription");
    assert_eq!(entries[0]["match_type"], "exact");
    assert_eq!(entries[0]["match"], "https://example.com/books/1");

    // Asked in the older shape: both, the draft-08 one with its matcher as `topic`.
    let older = list(legacy_subscriber(&["*"])).await;
    assert_eq!(older["type"], "Subscriptions");
    let mut topics: Vec<&str> = older["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["topic"].as_str().unwrap())
        .collect();
    topics.sort_unstable();
    assert_eq!(
        topics,
        [
            "https://example.com/books/1",
            "https://example.com/books/{id}"
        ]
    );
}

#[tokio::test]
async fn rs256_legacy_tokens_are_checked_with_the_configured_public_key() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../herald-token/tests/keys");
    let mut config = config();
    config.compatibility.enabled = true;
    config.compatibility.publisher_public_key_files = vec![keys.join("rsa-public.pem")];
    config.compatibility.subscriber_public_key_files = vec![keys.join("rsa-public.pem")];
    let hub = start(config).await;
    let signing =
        |file: &str| SigningKey::from_pem(&std::fs::read(keys.join(file)).unwrap(), None).unwrap();
    let topic = "https://example.com/rsa";
    let subscriber = mint_legacy(
        &LegacyMintRequest::new().with_subscribe(topic),
        &signing("rsa-private.pem"),
    )
    .unwrap();
    let publisher = mint_legacy(
        &LegacyMintRequest::new().with_publish(topic),
        &signing("rsa-private.pem"),
    )
    .unwrap();
    let mut stream = subscribe_with(&hub, &format!("topic={}", enc(topic)), &subscriber).await;
    let response = publish(
        &hub,
        Some(&publisher),
        &[
            ("topic", topic),
            ("data", "signed with RSA"),
            ("private", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(stream.data(1).await, ["signed with RSA"]);

    // Another RSA key's signature is refused.
    let other = mint_legacy(
        &LegacyMintRequest::new().with_publish(topic),
        &signing("rsa2-private.pem"),
    )
    .unwrap();
    let (headers, _) = refused(
        publish_request(&hub, Some(&other), &[("topic", topic)]),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(challenge(&headers).contains("invalid_token"));
}
