//! Authorization over loopback: token presentation, the RFC 6750 challenges,
//! publish scopes, private update audiences (live and replayed), anonymous
//! subscribers, and closing connections at `exp` and the maximum lifetime.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use reqwest::StatusCode;

const BOOK: &str = "https://example.com/books/1";
const AUTHOR: &str = "https://example.com/authors/1";
const REVIEW: &str = "https://example.com/reviews/1";

fn assert_challenge(hub: &TestHub, headers: &reqwest::header::HeaderMap, error: Option<&str>) {
    let challenge = challenge(headers);
    let prefix = format!("Bearer resource_metadata=\"{}\"", hub.metadata_url());
    assert!(challenge.starts_with(&prefix), "{challenge}");
    match error {
        Some(code) => assert!(
            challenge.contains(&format!("error=\"{code}\"")),
            "{challenge} should carry error=\"{code}\""
        ),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
}

#[tokio::test]
async fn publishing_without_a_token_is_401_with_a_challenge_without_error_code() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=*").await;
    let (headers, _) = refused(
        publish_request(&hub, None, &[("topic", BOOK), ("data", "anonymous")]),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_challenge(&hub, &headers, None);
    // A token in the query component is not a token either.
    let response = send(
        client()
            .post(format!("{}?access_token={}", hub.url, hub.publisher()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("topic", BOOK), ("data", "query token")])),
    )
    .await;
    assert_ne!(response.status(), StatusCode::OK);
    publish_ok(&hub, &[("topic", BOOK), ("data", "authorized")]).await;
    assert_eq!(stream.data(1).await, ["authorized"]);
}

/// Tokens that fail validation, each with the reason in its name.
fn invalid_tokens(hub: &TestHub) -> Vec<(&'static str, String)> {
    let valid = || hub.token().publish(&["*"]).subscribe(&["*"]);
    let claims = herald_token::claims_at(&valid().request(), SystemTime::now()).expect("claims");
    let wrong_typ = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("sign")
    };
    // Signed and valid but for an `exp` no clock can reach (this used to
    // panic the request's task instead of answering).
    let endless = {
        let mut claims = claims.clone();
        claims.exp = u64::MAX;
        let header = jsonwebtoken::Header {
            typ: Some("at+jwt".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("sign")
    };
    let alg_none = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none","typ":"at+jwt"}"#),
        base64url(serde_json::to_string(&claims).expect("json").as_bytes())
    );
    vec![
        (
            "bad signature",
            valid()
                .secret("another secret that is long enough!!")
                .sign(),
        ),
        (
            "expired",
            valid()
                .issued_at(SystemTime::now() - Duration::from_secs(7200))
                .ttl(Duration::from_secs(60))
                .sign(),
        ),
        (
            "wrong audience",
            valid()
                .audience("https://other.example/.well-known/mercure")
                .sign(),
        ),
        ("wrong typ", wrong_typ),
        (
            "unknown issuer",
            valid().issuer("https://evil.example").sign(),
        ),
        ("alg none", alg_none),
        ("exp beyond the clock", endless),
    ]
}

#[tokio::test]
async fn invalid_tokens_are_401_invalid_token_on_publish() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=*").await;
    for (why, token) in invalid_tokens(&hub) {
        let response = publish(&hub, Some(&token), &[("topic", BOOK), ("data", why)]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_challenge(&hub, response.headers(), Some("invalid_token"));
    }
    publish_ok(&hub, &[("topic", BOOK), ("data", "valid")]).await;
    assert_eq!(
        stream.data(1).await,
        ["valid"],
        "no invalid token published"
    );
}

#[tokio::test]
async fn invalid_tokens_are_401_invalid_token_on_subscribe() {
    let hub = start_default().await;
    for (why, token) in invalid_tokens(&hub) {
        let (headers, _) = refused(
            get(&hub, "match=*").bearer_auth(&token),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_challenge(&hub, &headers, Some("invalid_token"));
        // Also in the cookie.
        let (headers, _) = refused(
            get(&hub, "match=*").header("cookie", format!("{COOKIE}={token}")),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_challenge(&hub, &headers, Some("invalid_token"));
        let _ = why;
    }
    // The valid token is accepted.
    subscribe_with(&hub, "match=*", &hub.token().subscribe(&["*"]).sign()).await;
}

#[tokio::test]
async fn a_token_lacking_publish_on_one_topic_is_403_insufficient_scope() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=*").await;
    let token = hub.token().publish(&[BOOK]).subscribe(&["*"]).sign();
    for topics in [vec![BOOK, AUTHOR], vec![AUTHOR, BOOK], vec![AUTHOR]] {
        let mut pairs: Vec<(&str, &str)> = topics.iter().map(|t| ("topic", *t)).collect();
        pairs.push(("data", "forbidden"));
        let response = publish(&hub, Some(&token), &pairs).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{topics:?}");
        assert_challenge(&hub, response.headers(), Some("insufficient_scope"));
    }
    // A subscribe-only grant does not allow publishing.
    let subscriber = hub.token().subscribe(&["*"]).sign();
    let response = publish(&hub, Some(&subscriber), &[("topic", BOOK)]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The allowed topic alone is fine, and is the only thing dispatched.
    let response = publish(&hub, Some(&token), &[("topic", BOOK), ("data", "allowed")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(stream.data(1).await, ["allowed"]);
}

#[tokio::test]
async fn a_malformed_token_presentation_is_400_invalid_request() {
    let hub = start_default().await;
    let token = hub.token().publish(&["*"]).subscribe(&["*"]).sign();
    let cases = [
        ("authorization", "Bearer".to_owned()),
        ("authorization", "Bearer ".to_owned()),
        ("authorization", "Bearer not-a-jws".to_owned()),
    ];
    for (name, value) in &cases {
        let response =
            send(publish_request(&hub, None, &[("topic", BOOK)]).header(*name, value)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value}");
        assert_challenge(&hub, response.headers(), Some("invalid_request"));

        let response = send(get(&hub, "match=*").header(*name, value)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value}");
        assert_challenge(&hub, response.headers(), Some("invalid_request"));
    }
    // A token in the query component of a subscription.
    let (headers, _) = refused(
        get(&hub, &format!("match=*&access_token={token}")),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_challenge(&hub, &headers, Some("invalid_request"));
    // The scheme name is case-insensitive.
    let response = send(
        publish_request(&hub, None, &[("topic", BOOK)])
            .header("authorization", format!("bEaReR {token}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_authorization_header_of_another_scheme_counts_as_no_token() {
    // A browser on a site behind HTTP Basic authentication sends its Basic
    // credentials with every request there, the EventSource's included.
    let hub = start_default().await;
    let basic = "Basic dXNlcjpwYXNz";
    // Anonymous subscribers are allowed by default: the request is one.
    let mut stream = open(get(&hub, "match=*").header("authorization", basic)).await;
    publish_ok(&hub, &[("topic", BOOK), ("data", "public")]).await;
    assert_eq!(stream.data(1).await, ["public"]);
    // The cookie counts beside it: a private update reaches its holder.
    let token = hub.token().subscribe(&[BOOK]).sign();
    let mut private = open(
        get(&hub, "match=*")
            .header("authorization", basic)
            .header("cookie", format!("{COOKIE}={token}")),
    )
    .await;
    publish_ok(
        &hub,
        &[("topic", BOOK), ("data", "secret"), ("private", "on")],
    )
    .await;
    assert_eq!(private.data(1).await, ["secret"]);
    // Where a token is needed, the 401 says why none was read, with no
    // error code (RFC 6750 section 3.1).
    let response =
        send(publish_request(&hub, None, &[("topic", BOOK)]).header("authorization", basic)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_challenge(&hub, response.headers(), None);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("publishing requires an access token; the Authorization header's `Basic` scheme is not one this hub reads"),
        "{body}"
    );
    // A token without a scheme, or after a tab, is not echoed: the answer
    // is logged, and such a value may be a secret.
    let token = hub.publisher();
    for (value, says) in [
        (token.clone(), "does not start with a scheme this hub reads"),
        (
            format!("Bearer\t{token}"),
            "`Bearer` must be followed by one space",
        ),
        (
            format!("eyJhbGciOiJIUzI1NiIsInR5cC {token}"),
            "does not start with a scheme",
        ),
    ] {
        let response =
            send(publish_request(&hub, None, &[("topic", BOOK)]).header("authorization", &value))
                .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = response.text().await.unwrap();
        assert!(body.contains(says), "{body}");
        assert!(!body.contains("eyJ"), "{body}");
    }
}

#[tokio::test]
async fn a_refusal_names_what_in_the_token_granted_nothing() {
    let hub = start_default().await;
    // A subscriber's token, plus two entries meant as publish rights that
    // grant nothing: a type with a trailing slash, and a misspelt action.
    let mut claims = serde_json::to_value(
        herald_token::claims_at(&hub.token().subscribe(&["*"]).request(), SystemTime::now())
            .expect("claims"),
    )
    .expect("json");
    claims["authorization_details"]
        .as_array_mut()
        .expect("details")
        .extend([
            serde_json::json!({
                "type": "https://mercure.rocks/authorization-detail/",
                "actions": ["publish"],
                "topics": [{"match": "*"}],
            }),
            serde_json::json!({
                "type": "https://mercure.rocks/authorization-detail",
                "actions": ["pubish"],
                "topics": [{"match": "*"}],
            }),
        ]);
    let header = jsonwebtoken::Header {
        typ: Some("at+jwt".into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign");
    // Twice: the second answer comes from the verified-token cache.
    for _ in 0..2 {
        let response = publish(&hub, Some(&token), &[("topic", BOOK), ("data", "x")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = text(response).await;
        assert!(
            body.contains(
                "the token grants no `publish` right; the token holds what grants nothing: \
                 authorization_details[1] is of type \\\"https://mercure.rocks/authorization-detail/\\\", \
                 not \\\"https://mercure.rocks/authorization-detail\\\"; \
                 authorization_details[2].actions[0] is \\\"pubish\\\", not an action (publish or subscribe)"
            ),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_publish_token_in_the_url_is_not_read_and_the_401_says_so() {
    let hub = start_default().await;
    let token = hub.token().publish(&["*"]).sign();
    // The draft-08 name, then the older protocol's, on a hub that does not speak it.
    for (parameter, said) in [
        (
            "access_token",
            "one in the URL (`access_token`) is not accepted",
        ),
        (
            "authorization",
            "one in the URL (`authorization`, the pre-draft-08 protocol's parameter",
        ),
    ] {
        let response = send(
            client()
                .post(format!("{}?{parameter}={token}", hub.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("topic={}&data=x", enc(BOOK))),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = response.text().await.unwrap();
        assert!(body.contains(said), "{body}");
    }
}

#[tokio::test]
async fn a_publish_without_a_token_is_401_whatever_its_body() {
    let hub = start_default().await;
    for (content_type, body) in [
        ("text/plain", "not a form"),
        ("application/x-www-form-urlencoded", "topic=%ZZ"),
        ("application/json", "{"),
    ] {
        let response = send(
            client()
                .post(hub.url.as_str())
                .header("content-type", content_type)
                .body(body),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{content_type}: {body}"
        );
    }
}

#[tokio::test]
async fn of_several_token_cookies_one_that_verifies_counts() {
    // A stale cookie for a parent domain and the current one: a browser
    // sends both, in an order the page does not choose.
    let hub = start_default().await;
    let token = hub.token().subscribe(&[BOOK]).sign();
    let expired = hub
        .token()
        .subscribe(&[BOOK])
        .issued_at(std::time::SystemTime::now() - Duration::from_secs(3600))
        .ttl(Duration::from_secs(60))
        .sign();
    for cookies in [
        format!("{COOKIE}=garbage; {COOKIE}={token}"),
        format!("{COOKIE}={expired}; other=1; {COOKIE}={token}"),
    ] {
        let mut stream = open(get(&hub, "match=*").header("cookie", &cookies)).await;
        publish_ok(
            &hub,
            &[("topic", BOOK), ("data", "secret"), ("private", "on")],
        )
        .await;
        assert_eq!(stream.data(1).await, ["secret"], "{cookies}");
    }
    // None verifies: the first one's error.
    let (_, body) = refused(
        get(&hub, "match=*").header("cookie", format!("{COOKIE}=garbage; {COOKIE}=also.bad")),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(!body.is_empty(), "{body}");
}

#[tokio::test]
async fn several_authorization_headers_are_400_whatever_their_order() {
    let hub = start_default().await;
    let good = hub.token().publish(&["*"]).subscribe(&["*"]).sign();
    // Warm the verified-token cache, so that a cached token cannot slip through.
    let response = send(publish_request(&hub, Some(&good), &[("topic", BOOK)])).await;
    assert_eq!(response.status(), StatusCode::OK);
    for (first, second) in [
        (good.as_str(), "Bearer x.y.z"),
        ("Bearer x.y.z", good.as_str()),
    ] {
        let first = if first.starts_with("Bearer") {
            first.to_owned()
        } else {
            format!("Bearer {first}")
        };
        let second = if second.starts_with("Bearer") {
            second.to_owned()
        } else {
            format!("Bearer {second}")
        };
        let request = publish_request(&hub, None, &[("topic", BOOK)])
            .header("authorization", &first)
            .header("authorization", &second);
        let (headers, body) = refused(request, StatusCode::BAD_REQUEST).await;
        assert_challenge(&hub, &headers, Some("invalid_request"));
        assert!(body.contains("several Authorization headers"), "{body}");
        let request = get(&hub, "match=*")
            .header("authorization", &first)
            .header("authorization", &second);
        let (headers, _) = refused(request, StatusCode::BAD_REQUEST).await;
        assert_challenge(&hub, &headers, Some("invalid_request"));
    }
}

#[tokio::test]
async fn the_authorization_header_wins_over_the_cookie() {
    let hub = start_default().await;
    let good = hub.token().publish(&["*"]).subscribe(&["*"]).sign();
    let bad = hub
        .token()
        .publish(&["*"])
        .secret("x".repeat(40).as_str())
        .sign();

    // A bad cookie and a good header: accepted.
    let response = send(
        publish_request(&hub, Some(&good), &[("topic", BOOK)])
            .header("cookie", format!("{COOKIE}={bad}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = open(
        get(&hub, "match=*")
            .bearer_auth(&good)
            .header("cookie", format!("{COOKIE}={bad}")),
    )
    .await;
    publish_ok(
        &hub,
        &[("topic", BOOK), ("private", "on"), ("data", "private")],
    )
    .await;
    assert_eq!(stream.data(1).await, ["private"]);

    // A good cookie and a bad header: refused.
    let response = send(
        publish_request(&hub, Some(&bad), &[("topic", BOOK)])
            .header("cookie", format!("{COOKIE}={good}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = send(
        get(&hub, "match=*")
            .bearer_auth(&bad)
            .header("cookie", format!("{COOKIE}={good}")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_cookie_alone_carries_the_token() {
    let hub = start_default().await;
    let token = hub.token().publish(&["*"]).subscribe(&["*"]).sign();
    let cookie = format!("theme=dark; {COOKIE}={token}; other=1");
    let mut stream = open(get(&hub, "match=*").header("cookie", &cookie)).await;
    let response = send(
        publish_request(
            &hub,
            None,
            &[("topic", BOOK), ("private", ""), ("data", "via cookie")],
        )
        .header("cookie", &cookie)
        .header("origin", hub_origin(&hub)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(stream.data(1).await, ["via cookie"]);

    // A cookie under another name is not a token.
    let (headers, _) = refused(
        publish_request(&hub, None, &[("topic", BOOK)])
            .header("cookie", format!("mercure_access_token={token}")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_challenge(&hub, &headers, None);
}

/// Publishes the private/public mix used by the audience tests; returns the
/// ids in publication order.
async fn publish_audience_mix(hub: &TestHub) -> Vec<String> {
    let mut ids = Vec::new();
    for (id, topics, private) in [
        ("p-book", vec![BOOK], true),
        ("p-author", vec![AUTHOR], true),
        ("p-author-alt-book", vec![AUTHOR, BOOK], true),
        ("p-book-alt-review", vec![BOOK, REVIEW], true),
        ("public-author", vec![AUTHOR], false),
        ("p-review", vec![REVIEW], true),
    ] {
        let mut pairs: Vec<(&str, &str)> = topics.iter().map(|t| ("topic", *t)).collect();
        pairs.push(("id", id));
        if private {
            pairs.push(("private", "on"));
        }
        ids.push(publish_ok(hub, &pairs).await);
    }
    ids
}

/// Expected audience of the mix for a `subscribe` grant on BOOK, listening to everything.
const BOOK_READER_SEES: [&str; 4] = [
    "p-book",
    "p-author-alt-book",
    "p-book-alt-review",
    "public-author",
];

#[tokio::test]
async fn private_updates_reach_only_authorized_subscribers_live() {
    let hub = start_default().await;
    let book_reader = hub.token().subscribe(&[BOOK]).sign();
    let author_reader = hub.token().subscribe(&[AUTHOR]).sign();
    let publisher_only = hub.token().publish(&["*"]).sign();
    let mut books = subscribe_with(&hub, "match=*", &book_reader).await;
    let mut authors = subscribe_with(&hub, "match=*", &author_reader).await;
    let mut anonymous = subscribe(&hub, "match=*").await;
    let mut no_grant = subscribe_with(&hub, "match=*", &publisher_only).await;
    // Routing on AUTHOR with a BOOK grant: a private AUTHOR update is
    // delivered only when BOOK is one of its topics.
    let mut routed = subscribe_with(&hub, &format!("match={}", enc(AUTHOR)), &book_reader).await;

    publish_audience_mix(&hub).await;
    publish_ok(&hub, &[("topic", "urn:end"), ("id", "end")]).await;

    let mut expected: Vec<&str> = BOOK_READER_SEES.to_vec();
    expected.push("end");
    assert_eq!(books.ids(expected.len()).await, expected);
    assert_eq!(
        authors.ids(4).await,
        ["p-author", "p-author-alt-book", "public-author", "end"]
    );
    assert_eq!(anonymous.ids(2).await, ["public-author", "end"]);
    assert_eq!(no_grant.ids(2).await, ["public-author", "end"]);
    assert_eq!(routed.ids(2).await, ["p-author-alt-book", "public-author"]);
    routed.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn private_updates_on_replay_follow_the_same_audience() {
    let hub = start_default().await;
    publish_ok(&hub, &[("topic", "urn:start"), ("id", "start")]).await;
    publish_audience_mix(&hub).await;
    publish_ok(&hub, &[("topic", "urn:end"), ("id", "end")]).await;

    let book_reader = hub.token().subscribe(&[BOOK]).sign();
    let mut expected: Vec<&str> = BOOK_READER_SEES.to_vec();
    expected.push("end");
    for resume in ["start", "earliest"] {
        let mut books = open(
            get(&hub, "match=*")
                .bearer_auth(&book_reader)
                .header("last-event-id", resume),
        )
        .await;
        let mut ids = books
            .ids(expected.len() + usize::from(resume == "earliest"))
            .await;
        if resume == "earliest" {
            assert_eq!(ids.remove(0), "start");
        }
        assert_eq!(ids, expected, "resuming from {resume}");
        books.assert_quiet(Duration::from_millis(200)).await;
    }

    // Via the query parameter, anonymously: public updates only.
    let mut anonymous = subscribe(&hub, "match=*&last_event_id=start").await;
    assert_eq!(anonymous.ids(2).await, ["public-author", "end"]);
    anonymous.assert_quiet(Duration::from_millis(200)).await;

    // An alternate-topic grant, routed on the canonical topic.
    let review_reader = hub.token().subscribe(&[REVIEW]).sign();
    let mut routed = open(
        get(&hub, &format!("match={}", enc(BOOK)))
            .bearer_auth(&review_reader)
            .header("last-event-id", "start"),
    )
    .await;
    assert_eq!(routed.ids(1).await, ["p-book-alt-review"]);
    routed.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_urlpattern_grant_authorizes_matching_topics() {
    let hub = start_default().await;
    let reader = hub
        .token()
        .subscribe_urlpattern("https://example.com/books/:id")
        .sign();
    let mut stream = subscribe_with(&hub, "match=*", &reader).await;
    let publisher = hub
        .token()
        .publish_urlpattern("https://example.com/:kind/:id")
        .sign();
    for (topic, id) in [
        ("https://example.com/books/1", "book"),
        ("https://example.com/authors/1", "author"),
        ("https://example.com/books/2", "book-2"),
    ] {
        let response = publish(
            &hub,
            Some(&publisher),
            &[("topic", topic), ("id", id), ("private", "on")],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = publish(
        &hub,
        Some(&publisher),
        &[("topic", "https://example.com/books/1/reviews")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(stream.ids(2).await, ["book", "book-2"]);
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn without_anonymous_subscribers_a_tokenless_subscription_is_401() {
    let mut config = config();
    config.subscribers.anonymous = false;
    let hub = start(config).await;
    let (headers, _) = refused(get(&hub, "match=*"), StatusCode::UNAUTHORIZED).await;
    assert_challenge(&hub, &headers, None);
    // Refused before its URL patterns are compiled: one that does not
    // compile gets the 401 too, not a 400, and a token in the URL is named.
    let pattern = format!("match_urlpattern={}", enc("https://example.com/(["));
    refused(get(&hub, &pattern), StatusCode::UNAUTHORIZED).await;
    let (_, body) = refused(
        get(&hub, &format!("{pattern}&access_token=x")),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(body.contains("`access_token`"), "{body}");
    let token = hub.token().subscribe(&["urn:nothing"]).sign();
    let mut stream = subscribe_with(&hub, "match=*", &token).await;
    publish_ok(&hub, &[("topic", BOOK), ("data", "public")]).await;
    assert_eq!(stream.data(1).await, ["public"]);
}

#[tokio::test]
async fn the_connection_closes_at_the_tokens_exp_and_an_expired_token_opens_none() {
    // Draft-08: the hub closes the connection no later than the token's
    // `exp`, whatever the clock-skew leeway. The leeway still lets the token
    // publish past `exp`, but not reopen a subscription.
    let mut config = config();
    config.auth.leeway = Duration::from_secs(30);
    let hub = start(config).await;
    let short = hub
        .token()
        .subscribe(&["*"])
        .publish(&["x"])
        .ttl(Duration::from_secs(2))
        .sign();
    let long = hub.token().subscribe(&["*"]).sign();
    let started = tokio::time::Instant::now();
    let mut expiring = subscribe_with(&hub, "match=x", &short).await;
    let mut lasting = subscribe_with(&hub, "match=x", &long).await;
    // `exp` is whole seconds: the token has between 1 and 2 s left.
    expiring.until_end(Duration::from_secs(5)).await;
    let lived = started.elapsed();
    assert!(lived < Duration::from_millis(2500), "{lived:?}");
    // Past `exp`, inside the leeway: no new subscription, saying why, and
    // the answer is the same from the verified-token cache.
    for _ in 0..2 {
        let (headers, body) = refused(
            get(&hub, "match=x").bearer_auth(&short),
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_challenge(&hub, &headers, Some("invalid_token"));
        assert!(body.contains("expired"), "{body}");
    }
    // Publishing with it still works, and the other subscriber is served.
    let response = publish(
        &hub,
        Some(&short),
        &[("topic", "x"), ("data", "still here")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(lasting.data(1).await, ["still here"]);
}

#[tokio::test]
async fn the_connection_closes_at_the_maximum_lifetime() {
    let mut config = config();
    config.subscribers.max_lifetime = Duration::from_secs(1);
    let hub = start(config).await;
    let token = hub.token().subscribe(&["*"]).sign();
    let started = tokio::time::Instant::now();
    let mut anonymous = subscribe(&hub, "match=x").await;
    let mut authorized = subscribe_with(&hub, "match=x", &token).await;
    publish_ok(&hub, &[("topic", "x"), ("data", "before")]).await;
    assert_eq!(anonymous.data(1).await, ["before"]);
    assert_eq!(authorized.data(1).await, ["before"]);
    anonymous.until_end(Duration::from_secs(5)).await;
    authorized.until_end(Duration::from_secs(5)).await;
    let lived = started.elapsed();
    assert!(
        lived >= Duration::from_millis(900) && lived < Duration::from_secs(4),
        "{lived:?}"
    );
}

fn hub_origin(hub: &TestHub) -> String {
    format!("http://{}", hub.addr)
}

#[tokio::test]
async fn a_cookie_authenticated_publish_must_come_from_an_allowed_origin() {
    let mut config = config();
    config.cors.origins = vec!["https://app.example".into()];
    let hub = start(config).await;
    let token = hub.token().publish(&["*"]).sign();
    let cookie = format!("{COOKIE}={token}");
    let attempt = |origin: Option<&str>, referer: Option<&str>| {
        let mut request = publish_request(&hub, None, &[("topic", BOOK)]).header("cookie", &cookie);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(referer) = referer {
            request = request.header("referer", referer);
        }
        send(request)
    };
    // Forged from another site, or with nothing to tell where it came from: refused.
    for (origin, referer) in [
        (Some("https://evil.example"), None),
        (None, Some("https://evil.example/page")),
        (None, None),
    ] {
        let response = attempt(origin, referer).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{origin:?} {referer:?}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("cookie"), "{body}");
    }
    // The hub's own origin and an allowed CORS origin are accepted, by Origin or Referer.
    let own = hub_origin(&hub);
    assert_eq!(attempt(Some(&own), None).await.status(), StatusCode::OK);
    assert_eq!(
        attempt(Some("https://app.example"), None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        attempt(None, Some("https://app.example/dashboard?x=1"))
            .await
            .status(),
        StatusCode::OK
    );
    // A token in the Authorization header is not ambient: no origin needed.
    let response = send(publish_request(&hub, Some(&token), &[("topic", BOOK)])).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A key file that holds an issuer's current and next keys (a rotation in
/// progress): tokens signed with either key are accepted, not only with the
/// file's first.
#[tokio::test]
async fn every_key_of_an_issuers_key_file_verifies_its_tokens() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../herald-token/tests/keys");
    let read = |file: &str| std::fs::read_to_string(keys.join(file)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.pub");
    std::fs::write(&both, read("ed-public.pem") + &read("ec-public.pem")).unwrap();
    let issuer = "https://rotating.test";
    let mut config = config();
    config
        .auth
        .issuers
        .push(herald_server::config::IssuerConfig {
            id: issuer.into(),
            public_key_files: vec![both],
            ..Default::default()
        });
    let hub = start(config).await;
    for private in ["ed-private.pem", "ec-private.pem"] {
        let key = herald_token::SigningKey::from_pem(read(private).as_bytes(), None).unwrap();
        let request = herald_token::MintRequest::new(issuer, hub.url.clone()).with_detail(
            herald_token::AuthorizationDetail::new(
                vec![herald_token::Action::Publish],
                vec![herald_token::TopicMatcher::exact(BOOK)],
            ),
        );
        let token = herald_token::mint(&request, &key).unwrap();
        let response = publish(&hub, Some(&token), &[("topic", BOOK), ("data", private)]).await;
        assert_eq!(response.status(), StatusCode::OK, "signed with {private}");
    }
}
