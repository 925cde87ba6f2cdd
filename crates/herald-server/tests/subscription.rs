//! Subscription over loopback: matchers, the `QUERY` method, the reserved
//! `match` namespace, value rules and limits, keep-alives, CORS and
//! connection limits.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};

const BOOK: &str = "https://example.com/books/1";
const OTHER: &str = "https://example.com/authors/1";

async fn publish_marker(hub: &TestHub, topic: &str, data: &str) {
    publish_ok(hub, &[("topic", topic), ("data", data)]).await;
}

#[tokio::test]
async fn match_selects_an_exact_topic_only() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    publish_marker(&hub, &format!("{BOOK}/"), "near miss").await;
    publish_marker(&hub, OTHER, "other").await;
    publish_marker(&hub, BOOK, "hit").await;
    assert_eq!(stream.data(1).await, ["hit"]);
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn match_exact_is_the_explicit_spelling_of_match() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match_exact={}", enc(BOOK))).await;
    publish_marker(&hub, OTHER, "other").await;
    publish_marker(&hub, BOOK, "hit").await;
    assert_eq!(stream.data(1).await, ["hit"]);
}

#[tokio::test]
async fn match_urlpattern_selects_topics_matching_the_pattern() {
    let hub = start_default().await;
    let pattern = "https://example.com/books/:id";
    let mut stream = subscribe(&hub, &format!("match_urlpattern={}", enc(pattern))).await;
    publish_marker(&hub, "https://example.com/books/1/reviews", "too deep").await;
    publish_marker(&hub, OTHER, "other").await;
    publish_marker(&hub, "https://example.com/books/2", "two").await;
    publish_marker(&hub, "https://example.com/books/3", "three").await;
    assert_eq!(stream.data(2).await, ["two", "three"]);
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn several_matchers_per_connection_receive_each_update_once() {
    let hub = start_default().await;
    let query = format!(
        "match={}&match_urlpattern={}&match={}",
        enc(BOOK),
        enc("https://example.com/books/:id"),
        enc(OTHER)
    );
    let mut stream = subscribe(&hub, &query).await;
    publish_marker(&hub, BOOK, "book (both matchers)").await;
    publish_marker(&hub, "https://example.com/books/2", "pattern").await;
    publish_marker(&hub, "https://example.com/unrelated", "none").await;
    publish_marker(&hub, OTHER, "author").await;
    assert_eq!(
        stream.data(3).await,
        ["book (both matchers)", "pattern", "author"]
    );
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_wildcard_matcher_receives_every_topic() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=*").await;
    publish_marker(&hub, BOOK, "a").await;
    publish_marker(&hub, "urn:example:anything", "b").await;
    publish_marker(&hub, "relative/topic", "c").await;
    assert_eq!(stream.data(3).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn query_method_reads_matchers_from_the_body_alone() {
    let hub = start_default().await;
    let mut stream = open(query_method(&hub, "", &form(&[("match", BOOK)]))).await;
    publish_marker(&hub, OTHER, "other").await;
    publish_marker(&hub, BOOK, "hit").await;
    assert_eq!(stream.data(1).await, ["hit"]);
}

#[tokio::test]
async fn query_method_merges_the_query_component_and_the_body() {
    let hub = start_default().await;
    let mut stream = open(query_method(
        &hub,
        &format!("match={}", enc(BOOK)),
        &form(&[("match", OTHER)]),
    ))
    .await;
    publish_marker(&hub, BOOK, "from the query").await;
    publish_marker(&hub, "https://example.com/neither", "neither").await;
    publish_marker(&hub, OTHER, "from the body").await;
    assert_eq!(stream.data(2).await, ["from the query", "from the body"]);
}

#[tokio::test]
async fn query_method_last_event_id_in_the_query_wins_over_the_body() {
    let hub = start_default().await;
    for id in ["one", "two", "three"] {
        publish_ok(&hub, &[("topic", BOOK), ("id", id)]).await;
    }
    let mut stream = open(query_method(
        &hub,
        "last_event_id=two",
        &form(&[("match", BOOK), ("last_event_id", "one")]),
    ))
    .await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("two")
    );
    assert_eq!(stream.ids(1).await, ["three"]);

    // Only in the body: used.
    let mut stream = open(query_method(
        &hub,
        "",
        &form(&[("match", BOOK), ("last_event_id", "one")]),
    ))
    .await;
    assert_eq!(stream.ids(2).await, ["two", "three"]);
}

#[tokio::test]
async fn query_method_last_event_id_header_beats_query_and_body() {
    let hub = start_default().await;
    for id in ["one", "two", "three"] {
        publish_ok(&hub, &[("topic", BOOK), ("id", id)]).await;
    }
    let request = query_method(
        &hub,
        "last_event_id=one",
        &form(&[("match", BOOK), ("last_event_id", "one")]),
    )
    .header("last-event-id", "two");
    let mut stream = open(request).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("two")
    );
    assert_eq!(stream.ids(1).await, ["three"]);
}

#[tokio::test]
async fn a_last_event_id_given_twice_in_one_place_is_a_400() {
    let hub = start_default().await;
    let url = hub.url_with(&format!(
        "match={}&last_event_id=x&last_event_id=y",
        enc(BOOK)
    ));
    let (_, body) = refused(client().get(url), StatusCode::BAD_REQUEST).await;
    assert!(
        body.contains("the `last_event_id` parameter is given more than once"),
        "{body}"
    );
    let (_, body) = refused(
        query_method(
            &hub,
            "",
            &form(&[
                ("match", BOOK),
                ("last_event_id", "x"),
                ("last_event_id", "y"),
            ]),
        ),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("given more than once"), "{body}");
    let (_, body) = refused(
        client()
            .get(hub.url_with(&format!("match={}", enc(BOOK))))
            .header("last-event-id", "x")
            .header("last-event-id", "y"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("several Last-Event-ID headers"), "{body}");
}

#[tokio::test]
async fn query_method_body_has_room_for_matchers_only() {
    let hub = start_default().await;
    // Over 256 KiB: refused, though a publish body may be 2 MiB.
    let padding = "a".repeat(300 * 1024);
    let (_, body) = refused(
        query_method(&hub, "", &form(&[("match", BOOK), ("padding", &padding)])),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(body.contains("262144-byte limit"), "{body}");
    let padding = "a".repeat(200 * 1024);
    let mut stream = open(query_method(
        &hub,
        "",
        &form(&[("match", BOOK), ("padding", &padding)]),
    ))
    .await;
    publish_marker(&hub, BOOK, "hit").await;
    assert_eq!(stream.data(1).await, ["hit"]);
}

#[tokio::test]
async fn without_anonymous_subscribers_a_query_body_is_not_waited_for_without_a_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = config();
    config.subscribers.anonymous = false;
    let hub = start(config).await;
    let mut socket = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    socket
        .write_all(
            b"QUERY /.well-known/mercure HTTP/1.1\r\nHost: x\r\n\
              content-type: application/x-www-form-urlencoded\r\ncontent-length: 100000\r\n\r\nmatch=",
        )
        .await
        .unwrap();
    // Answered at once, not after the body timeout.
    let mut answer = vec![0; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut answer))
        .await
        .expect("answered before the body arrived")
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..read]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
}

#[tokio::test]
async fn query_method_body_must_be_a_form() {
    let hub = start_default().await;
    let request = client()
        .request(Method::from_bytes(b"QUERY").expect("method"), &hub.url)
        .header("content-type", "application/json")
        .body("match=x");
    refused(request, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let request = client()
        .request(Method::from_bytes(b"QUERY").expect("method"), &hub.url)
        .body("match=x");
    refused(request, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn query_method_body_values_follow_the_same_rules() {
    let hub = start_default().await;
    refused(query_method(&hub, "", "matches=x"), StatusCode::BAD_REQUEST).await;
    refused(
        query_method(&hub, "", "match=a%0Ab"),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn reserved_match_namespace_parameters_are_refused() {
    let hub = start_default().await;
    for param in [
        "matches",
        "MATCH",
        "Match",
        "match_regex",
        "match_URLPATTERN",
        "matchx",
    ] {
        let (_, body) = refused(
            get(&hub, &format!("match={}&{param}=x", enc(BOOK))),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(body.contains(param), "{param}: {body}");
    }
    // Names outside the namespace are ignored.
    subscribe(&hub, &format!("match={}&topic=x&mat=y&xmatch=z", enc(BOOK))).await;
}

#[tokio::test]
async fn matcher_values_must_be_valid_utf8_without_control_or_format_characters() {
    let hub = start_default().await;
    for value in [
        "%FF",         // invalid UTF-8
        "a%C3",        // truncated UTF-8
        "a%00b",       // NUL
        "a%0Ab",       // LF
        "a%7F",        // DEL
        "a%C2%85",     // C1 NEL
        "a%E2%80%8Bb", // U+200B zero width space (Cf)
        "%EF%BB%BFa",  // U+FEFF (Cf)
        "a%E2%80%AEb", // U+202E (Cf)
    ] {
        for param in ["match", "match_urlpattern"] {
            refused(
                get(&hub, &format!("{param}={value}")),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    }
    // Non-ASCII letters are fine.
    let topic = "https://example.com/livres/été";
    let mut stream = subscribe(&hub, &format!("match={}", enc(topic))).await;
    publish_marker(&hub, topic, "accents").await;
    assert_eq!(stream.data(1).await, ["accents"]);
}

#[tokio::test]
async fn an_invalid_url_pattern_is_refused() {
    let hub = start_default().await;
    for pattern in ["https://example.com/(unclosed", "https://example.com/:id(["] {
        let (_, body) = refused(
            get(&hub, &format!("match_urlpattern={}", enc(pattern))),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(body.contains("match_urlpattern"), "{body}");
    }
    // The same text is a fine exact matcher.
    subscribe(
        &hub,
        &format!("match={}", enc("https://example.com/(unclosed")),
    )
    .await;
}

#[tokio::test]
async fn url_pattern_groups_are_ascii_and_bounded_in_size() {
    let hub = start_default().await;
    let refusal = |pattern: &'static str| {
        let hub = &hub;
        async move {
            refused(
                get(hub, &format!("match_urlpattern={}", enc(pattern))),
                StatusCode::BAD_REQUEST,
            )
            .await
            .1
        }
    };
    let body = refusal(r"https://example.com/:x(\d{1,100000})").await;
    assert!(body.contains("match_urlpattern"), "{body}");
    assert!(body.contains("compiles to more than 256 KiB"), "{body}");
    let body = refusal(r"https://example.com/:x(\p{L}+)").await;
    assert!(body.contains("URLs are matched as ASCII"), "{body}");
    // What people write compiles, `\w{1,200}` included (ASCII, as in
    // JavaScript, it is small), and matches.
    for pattern in [
        r"https://example.com/:x(\w{1,200})",
        r"https://example.com/:code(\w{6})/:b(\w{3})",
        r"https://example.com/:x([^/]{1,255})",
        r"https://example.com/:x(\d{1,64})",
    ] {
        subscribe(&hub, &format!("match_urlpattern={}", enc(pattern))).await;
    }
    let mut stream = subscribe(
        &hub,
        &format!("match_urlpattern={}", enc(r"https://example.com/:x(\w+)")),
    )
    .await;
    publish_marker(&hub, "https://example.com/caf%C3%A9", "not a word").await;
    publish_marker(&hub, "https://example.com/word_1", "matched").await;
    assert_eq!(stream.event().await.data, "matched");
}

#[tokio::test]
async fn what_a_subscription_s_url_patterns_hold_is_bounded() {
    let hub = start_default().await;
    // Nine long groups in one part: over a megabyte compiled, once.
    let heavy = format!(
        "https://example.com/{}",
        (0..9)
            .map(|i| format!(r":g{i}(\w{{1,200}})"))
            .collect::<Vec<_>>()
            .join("/")
    );
    let (_, body) = refused(
        get(&hub, &format!("match_urlpattern={}", enc(&heavy))),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        body.contains("the pattern compiles to more than 568 KiB"),
        "{body}"
    );
    // Four such groups fit in a pattern, but not sixty such patterns in
    // one subscription.
    let query = (0..60)
        .map(|n| {
            let pattern = format!(
                r"https://example.com/{n}/:a(\w{{1,200}})/:b(\w{{1,200}})/:c(\w{{1,200}})/:d(\w{{1,200}})"
            );
            format!("match_urlpattern={}", enc(&pattern))
        })
        .collect::<Vec<_>>()
        .join("&");
    let (_, body) = refused(get(&hub, &query), StatusCode::BAD_REQUEST).await;
    assert!(
        body.contains("the subscription's URL patterns compile to more than 10 MiB together"),
        "{body}"
    );
    // A hundred ordinary patterns, the most matchers a subscription may
    // have, are fine.
    let query = (0..100)
        .map(|n| {
            let pattern = format!("https://example.com/books/{n}/:id");
            format!("match_urlpattern={}", enc(&pattern))
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut stream = subscribe(&hub, &query).await;
    publish_marker(&hub, "https://example.com/books/99/dune", "matched").await;
    assert_eq!(stream.event().await.data, "matched");
}

#[tokio::test]
async fn head_answers_the_head_of_a_subscription_without_subscribing() {
    let hub = start_default().await;
    let url = format!("{}?match={}", hub.url, enc("https://example.com/books/1"));
    let response = send(client().head(&url)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"text/event-stream"[..])
    );
    assert_eq!(
        response.headers().get("content-length"),
        None,
        "a GET's length is not known either"
    );
    assert_eq!(response.bytes().await.expect("body").len(), 0);
    // Checked as a GET is: no matcher is a 400.
    let response = send(client().head(&hub.url)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Other methods name HEAD among the allowed ones.
    let response = send(client().put(&hub.url)).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"GET, HEAD, QUERY, POST, OPTIONS"[..])
    );
    // OPTIONS, without CORS configured, says the same.
    let response = send(client().request(Method::OPTIONS, &hub.url)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"GET, HEAD, QUERY, POST, OPTIONS"[..])
    );
}

#[tokio::test]
async fn too_many_matchers_are_refused() {
    let mut config = config();
    config.limits.max_matchers = 3;
    let hub = start(config).await;
    let query = |n: usize| {
        (0..n)
            .map(|i| format!("match=t{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    subscribe(&hub, &query(3)).await;
    refused(get(&hub, &query(4)), StatusCode::BAD_REQUEST).await;
    // The body of a QUERY request counts too.
    refused(
        query_method(&hub, &query(2), &query(2)),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn a_too_long_matcher_is_refused() {
    let mut config = config();
    config.limits.max_matcher_length = 32;
    let hub = start(config).await;
    subscribe(&hub, &format!("match={}", "a".repeat(32))).await;
    refused(
        get(&hub, &format!("match={}", "a".repeat(33))),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        get(&hub, &format!("match_urlpattern=/{}", "a".repeat(32))),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn a_subscription_without_a_matcher_is_refused() {
    let hub = start_default().await;
    for query in ["", "topic=x", "last_event_id=earliest", "foo"] {
        refused(get(&hub, query), StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn a_keep_alive_comment_follows_the_configured_heartbeat() {
    let mut config = config();
    config.subscribers.heartbeat = Duration::from_millis(500);
    let hub = start(config).await;
    let mut stream = subscribe(&hub, "match=x").await;
    let opened = tokio::time::Instant::now();
    // A first comment opens the stream at once.
    assert!(stream.wait_for_comments(1, WAIT).await);
    // No further comment before the heartbeat...
    assert!(
        !stream
            .wait_for_comments(2, Duration::from_millis(250))
            .await,
        "a keep-alive came before the heartbeat"
    );
    // ...and one soon after it.
    assert!(stream.wait_for_comments(2, Duration::from_secs(3)).await);
    let elapsed = opened.elapsed();
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    // And again.
    assert!(stream.wait_for_comments(3, Duration::from_secs(3)).await);
    assert!(event_blocks(&stream.raw).is_empty());
}

#[tokio::test]
async fn an_update_postpones_the_keep_alive() {
    let mut config = config();
    config.subscribers.heartbeat = Duration::from_millis(600);
    let hub = start(config).await;
    let mut stream = subscribe(&hub, "match=x").await;
    assert!(stream.wait_for_comments(1, WAIT).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    publish_marker(&hub, "x", "update").await;
    assert_eq!(stream.data(1).await, ["update"]);
    // 400 ms after the update the heartbeat (600 ms) has not elapsed again.
    assert!(
        !stream
            .wait_for_comments(2, Duration::from_millis(400))
            .await,
        "the keep-alive timer was not reset by the update"
    );
    assert!(stream.wait_for_comments(2, Duration::from_secs(3)).await);
}

fn cors_config() -> herald_server::Config {
    let mut config = config();
    config.cors.origins = vec!["https://app.example.com".into()];
    config
}

#[tokio::test]
async fn cors_an_allowed_origin_is_echoed_with_credentials() {
    let hub = start(cors_config()).await;
    let stream = open(get(&hub, "match=x").header("origin", "https://app.example.com")).await;
    assert_eq!(
        stream.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        stream.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let exposed = stream
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(exposed.contains("mercure-last-event-id"), "{exposed}");
}

#[tokio::test]
async fn cors_a_preflight_request_is_answered() {
    let hub = start(cors_config()).await;
    let response = send(
        client()
            .request(Method::OPTIONS, &hub.url)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            ),
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(
        header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(header("access-control-allow-credentials"), "true");
    assert!(header("access-control-allow-methods").contains("post"));
    assert!(header("access-control-allow-headers").contains("authorization"));
    assert!(header("access-control-allow-headers").contains("last-event-id"));
}

#[tokio::test]
async fn cors_a_foreign_origin_gets_no_allow_origin_header() {
    let hub = start(cors_config()).await;
    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.com.evil.example",
    ] {
        let stream = open(get(&hub, "match=x").header("origin", origin)).await;
        assert_eq!(
            stream.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
        let response = send(
            client()
                .request(Method::OPTIONS, &hub.url)
                .header("origin", origin)
                .header("access-control-request-method", "GET"),
        )
        .await;
        let allow = response.headers().get("access-control-allow-origin");
        assert!(allow.is_none(), "{origin}: {allow:?}");
    }
    // Never a wildcard, not even without an Origin header.
    let stream = subscribe(&hub, "match=x").await;
    assert_ne!(
        stream.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
}

/// Opens subscriptions until one is refused; retries an admission for a while
/// when a freed slot must be noticed by the server first.
async fn admitted_eventually(request: impl Fn() -> reqwest::RequestBuilder) -> EventStream {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = send(request()).await;
        if response.status() == StatusCode::OK {
            return EventStream::new(response);
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn past_the_pattern_memory_limit_new_url_patterns_wait_and_held_ones_serve() {
    let mut config = config();
    config.limits.max_pattern_memory = 1;
    let hub = start(config).await;
    let held = format!("match_urlpattern={}", enc("https://example.com/books/:id"));
    let mut first = subscribe(&hub, &held).await;
    let (_, body) = refused(
        get(
            &hub,
            &format!(
                "match_urlpattern={}",
                enc("https://example.com/authors/:id")
            ),
        ),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(body.contains("compiled URL patterns, its limit"), "{body}");
    // The pattern already held, and exact topics, still serve.
    let mut second = subscribe(&hub, &held).await;
    let mut exact = subscribe(&hub, &format!("match={}", enc(OTHER))).await;
    publish_marker(&hub, BOOK, "book").await;
    publish_marker(&hub, OTHER, "other").await;
    assert_eq!(first.data(1).await, ["book"]);
    assert_eq!(second.data(1).await, ["book"]);
    assert_eq!(exact.data(1).await, ["other"]);
}

fn limits_config() -> herald_server::Config {
    let mut config = config();
    config.subscribers.heartbeat = Duration::from_millis(100);
    config
}

#[tokio::test]
async fn connection_limit_in_total_answers_429_and_a_freed_slot_admits_again() {
    let mut config = limits_config();
    config.limits.max_connections = 2;
    let hub = start(config).await;
    let first = subscribe(&hub, "match=x").await;
    let _second = subscribe(&hub, "match=y").await;
    let (_, body) = refused(get(&hub, "match=z"), StatusCode::TOO_MANY_REQUESTS).await;
    assert!(body.contains('2'), "{body}");
    // A HEAD is answered as the GET would be.
    let head = send(client().head(format!("{}?match=z", hub.url))).await;
    assert_eq!(head.status(), StatusCode::TOO_MANY_REQUESTS);
    // Publishing is not a subscriber connection.
    publish_ok(&hub, &[("topic", "x")]).await;
    drop(first);
    let mut third = admitted_eventually(|| get(&hub, "match=z")).await;
    publish_marker(&hub, "z", "admitted").await;
    assert_eq!(third.data(1).await, ["admitted"]);
}

#[tokio::test]
async fn connection_limit_per_address_answers_429_and_other_addresses_are_admitted() {
    let mut config = limits_config();
    config.limits.max_connections_per_address = 2;
    let hub = start(config).await;
    let first = subscribe(&hub, "match=x").await;
    let _second = subscribe(&hub, "match=x").await;
    refused(get(&hub, "match=x"), StatusCode::TOO_MANY_REQUESTS).await;
    // Refused before its URL patterns are compiled, or even read: one that
    // does not compile gets the 429 too, not a 400.
    refused(
        get(
            &hub,
            &format!("match_urlpattern={}", enc("https://example.com/([")),
        ),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;

    // Another loopback address has its own allowance.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let _other = open(other.get(hub.url_with("match=x"))).await;

    drop(first);
    admitted_eventually(|| get(&hub, "match=x")).await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_per_address_limit_counts_forwarded_clients() {
    let mut config = limits_config();
    config.limits.max_connections_per_address = 2;
    config.limits.trusted_proxies = vec!["127.0.0.1".into()];
    let hub = start(config).await;
    let via = |client: &str| get(&hub, "match=x").header("x-forwarded-for", client);
    // Three clients behind the proxy on 127.0.0.1: each has its allowance.
    let mut held = Vec::new();
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        held.push(open(via(client)).await);
    }
    held.push(open(via("198.51.100.1")).await);
    refused(via("198.51.100.1"), StatusCode::TOO_MANY_REQUESTS).await;
    // An entry the client wrote left of the proxy's is not believed.
    refused(
        via("203.0.113.7, 198.51.100.1"),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;

    // From an address that is no trusted proxy, the header is ignored.
    let untrusted = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let from = |client: &str| {
        untrusted
            .get(hub.url_with("match=x"))
            .header("x-forwarded-for", client)
    };
    held.push(open(from("198.51.100.4")).await);
    held.push(open(from("198.51.100.5")).await);
    refused(from("198.51.100.6"), StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn connection_limit_per_token_subject_answers_429() {
    let mut config = limits_config();
    config.limits.max_connections_per_subject = 1;
    let hub = start(config).await;
    let alice = hub.token().subject("alice").subscribe(&["x"]).sign();
    let bob = hub.token().subject("bob").subscribe(&["x"]).sign();
    let first = subscribe_with(&hub, "match=x", &alice).await;
    refused(
        get(&hub, "match=x").bearer_auth(&alice),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    // Another token with the same subject counts against the same limit.
    let alice_again = hub.token().subject("alice").subscribe(&["y"]).sign();
    refused(
        get(&hub, "match=x").bearer_auth(&alice_again),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    // Other subjects and anonymous subscribers are not affected.
    let _bob = subscribe_with(&hub, "match=x", &bob).await;
    let _anonymous = subscribe(&hub, "match=x").await;
    drop(first);
    admitted_eventually(|| get(&hub, "match=x").bearer_auth(&alice)).await;
}

#[tokio::test]
async fn url_pattern_memory_per_address_answers_429_naming_it_and_frees_with_its_subscriptions() {
    const PATTERN: &str = "https://example.com/books/:id";
    // Probe how much one such pattern compiles to, on a hub with the same base.
    let probe = start(limits_config()).await;
    let one = probe
        .herald
        .hub()
        .matcher(
            "match_urlpattern",
            herald_hub::MatcherType::UrlPattern,
            PATTERN,
        )
        .expect("a valid pattern")
        .compiled_bytes();
    assert!(one > 0, "a URL pattern compiles to something");
    drop(probe);

    // Room for one subscription's pattern, not two.
    let mut config = limits_config();
    config.limits.max_pattern_memory_per_address = one + one / 2;
    let hub = start(config).await;
    let query = format!("match_urlpattern={}", enc(PATTERN));
    let first = subscribe(&hub, &query).await;
    // Charged to each subscription that holds it, shared or not.
    let (headers, body) = refused(get(&hub, &query), StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        headers.get("retry-after").map(|v| v.to_str().unwrap()),
        Some("5")
    );
    let problem: serde_json::Value = serde_json::from_str(&body).expect("problem details");
    let detail = problem["detail"].as_str().expect("a detail");
    assert!(detail.contains("127.0.0.1"), "{detail}");
    assert!(detail.contains("compiled URL patterns"), "{detail}");
    // Exact topics hold no pattern: still admitted.
    let _exact = subscribe(&hub, "match=https%3A%2F%2Fexample.com%2Fbooks%2F1").await;

    // Another address has its own allowance.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let _other = open(other.get(hub.url_with(&query))).await;

    // The first subscription's end gives its bytes back.
    drop(first);
    let _again = admitted_eventually(|| get(&hub, &query)).await;
}
