//! Publication over loopback: the response, topics, generated ids, every
//! validation rule, the size limits, and the accepted body formats.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;

const BOOK: &str = "https://example.com/books/1";

#[tokio::test]
async fn a_form_post_answers_200_with_the_id_as_utf8_text() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let response = publish(
        &hub,
        Some(&hub.publisher()),
        &[
            ("topic", BOOK),
            ("data", "{\"title\":\"Dune\"}"),
            ("id", "urn:example:dune-1"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(text(response).await, "urn:example:dune-1");
    let event = stream.event().await;
    assert_eq!(event.data, "{\"title\":\"Dune\"}");
    assert_eq!(event.last_event_id, "urn:example:dune-1");
    assert_eq!(event.event_type, "message");
}

#[tokio::test]
async fn sse_fields_type_retry_and_multiline_data_reach_the_subscriber() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    publish_ok(
        &hub,
        &[
            ("topic", BOOK),
            ("data", "line 1\nline 2\r\nline 3"),
            ("type", "book-updated"),
            ("retry", "1500"),
        ],
    )
    .await;
    let event = stream.event().await;
    assert_eq!(event.event_type, "book-updated");
    assert_eq!(event.data, "line 1\nline 2\nline 3");
    let blocks = event_blocks(&stream.raw);
    assert_eq!(blocks.len(), 1);
    assert!(
        blocks[0].contains("retry: 1500") || blocks[0].contains("retry:1500"),
        "{}",
        blocks[0]
    );
}

#[tokio::test]
async fn alternate_topics_reach_their_subscribers() {
    let hub = start_default().await;
    let alternate = "urn:example:book:1";
    let mut canonical = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let mut by_alternate = subscribe(&hub, &format!("match={}", enc(alternate))).await;
    let mut unrelated = subscribe(&hub, "match=urn%3Aexample%3Aunrelated").await;
    let id = publish_ok(
        &hub,
        &[("topic", BOOK), ("topic", alternate), ("data", "both")],
    )
    .await;
    assert_eq!(canonical.ids(1).await, [id.as_str()]);
    assert_eq!(by_alternate.ids(1).await, [id.as_str()]);
    unrelated.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_generated_id_is_a_sequence_fragment_by_default() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=x").await;
    let first = publish_ok(&hub, &[("topic", "x")]).await;
    let second = publish_ok(&hub, &[("topic", "x")]).await;
    let number = |id: &str| -> u64 {
        id.strip_prefix('#')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a sequence id: {id}"))
    };
    assert_eq!(number(&second), number(&first) + 1, "{first} then {second}");
    assert_eq!(stream.ids(2).await, [first.as_str(), second.as_str()]);
}

#[tokio::test]
async fn a_generated_id_is_a_urn_uuid_when_configured() {
    let mut config = config();
    config.log.ids = "uuid-v7".into();
    let hub = start(config).await;
    let mut stream = subscribe(&hub, "match=x").await;
    let first = publish_ok(&hub, &[("topic", "x")]).await;
    let second = publish_ok(&hub, &[("topic", "x")]).await;
    for id in [&first, &second] {
        let uuid = id
            .strip_prefix("urn:uuid:")
            .unwrap_or_else(|| panic!("{id}"));
        assert_eq!(uuid.len(), 36, "{id}");
        assert!(
            uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
            "{id}"
        );
    }
    assert_ne!(first, second);
    assert_eq!(stream.ids(2).await, [first, second]);
}

async fn assert_publish_refused(hub: &TestHub, pairs: &[(&str, &str)], status: StatusCode) {
    let response = publish(hub, Some(&hub.publisher()), pairs).await;
    let actual = response.status();
    let body = text(response).await;
    assert_eq!(actual, status, "{pairs:?}: {body}");
}

#[tokio::test]
async fn every_publication_rule_is_a_400() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=*").await;
    let host = hub.addr.to_string();
    let absolute = format!("http://{host}/.well-known/mercure/subscriptions/x");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("topic", "a\u{1}b")],
        vec![("topic", "a\nb")],
        vec![("topic", "a\u{7f}")],
        vec![("topic", "a\u{200B}b")],
        vec![("topic", BOOK), ("topic", "b\u{85}")],
        vec![("topic", "*")],
        vec![("topic", BOOK), ("topic", "*")],
        vec![("topic", "/.well-known/mercure")],
        vec![("topic", "/.well-known/mercure/subscriptions/x")],
        vec![("topic", "/.well-known/%6Dercure/x")],
        vec![("topic", "/.well-known/mercure/../mercure/x")],
        vec![("topic", absolute.as_str())],
        vec![("topic", BOOK), ("topic", "/.well-known/mercure/x")],
        vec![("topic", BOOK), ("id", "#1")],
        vec![("topic", BOOK), ("id", "earliest")],
        vec![("topic", BOOK), ("id", "a\u{1}b")],
        vec![("topic", BOOK), ("id", "a\u{9f}")],
        vec![("topic", BOOK), ("id", "a\u{FEFF}")],
        vec![("topic", BOOK), ("type", "mercure")],
        vec![("topic", BOOK), ("type", "a\rb")],
        vec![("topic", BOOK), ("retry", "-1")],
        vec![("topic", BOOK), ("retry", "1.5")],
        vec![("topic", BOOK), ("retry", "1e3")],
        vec![("data", "no topic")],
        vec![],
    ];
    for pairs in &cases {
        assert_publish_refused(&hub, pairs, StatusCode::BAD_REQUEST).await;
    }
    // Invalid UTF-8 in the body.
    let response = send(
        client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("topic=%FF"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // None of them was dispatched; close neighbours are fine.
    let ok: Vec<Vec<(&str, &str)>> = vec![
        vec![("topic", "/.well-known/mercurex"), ("data", "ok 1")],
        vec![
            ("topic", "https://example.com/.well-known/mercure-ish"),
            ("data", "ok 2"),
        ],
        vec![("topic", BOOK), ("id", "a#1"), ("data", "ok 3")],
        vec![("topic", BOOK), ("id", "earliest-ish"), ("data", "ok 4")],
        vec![
            ("topic", BOOK),
            ("type", "mercure2"),
            ("retry", "0"),
            ("data", "ok 5"),
        ],
    ];
    for pairs in &ok {
        publish_ok(&hub, pairs).await;
    }
    assert_eq!(
        stream.data(5).await,
        ["ok 1", "ok 2", "ok 3", "ok 4", "ok 5"]
    );
}

#[tokio::test]
async fn a_single_valued_field_given_twice_is_a_400_naming_it_and_publishes_nothing() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=*").await;
    for (field, first, second) in [
        ("data", "d1", "d2"),
        ("id", "i1", "i2"),
        ("type", "t1", "t2"),
        ("retry", "5", "6"),
    ] {
        let response = publish(
            &hub,
            Some(&hub.publisher()),
            &[("topic", BOOK), (field, first), (field, second)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{field}");
        let body = text(response).await;
        assert!(
            body.contains(&format!("the `{field}` field is given more than once")),
            "{body}"
        );
    }
    // Topics repeat (alternates), and so may `private`: one update each.
    publish_ok(
        &hub,
        &[
            ("topic", BOOK),
            ("topic", "https://example.com/alternate"),
            ("data", "once"),
        ],
    )
    .await;
    assert_eq!(stream.data(1).await, ["once"]);
}

#[tokio::test]
async fn a_body_larger_than_the_limit_is_a_413() {
    let mut config = config();
    config.limits.max_body_bytes = 1024;
    let hub = start(config).await;
    let fits = "x".repeat(900);
    publish_ok(&hub, &[("topic", BOOK), ("data", &fits)]).await;
    let too_big = "x".repeat(2000);
    assert_publish_refused(
        &hub,
        &[("topic", BOOK), ("data", &too_big)],
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    // The same over h2c, where hyper reads the body, not herald itself.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let request = h2c
        .post(&hub.url)
        .bearer_auth(hub.publisher())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("topic", BOOK), ("data", &too_big)]));
    let (_, problem) = refused(request, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(problem.contains("1024"), "{problem}");
}

#[tokio::test]
async fn too_many_topics_are_a_413() {
    let mut config = config();
    config.limits.max_topics = 3;
    let hub = start(config).await;
    publish_ok(&hub, &[("topic", "a"), ("topic", "b"), ("topic", "c")]).await;
    assert_publish_refused(
        &hub,
        &[
            ("topic", "a"),
            ("topic", "b"),
            ("topic", "c"),
            ("topic", "d"),
        ],
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

#[tokio::test]
async fn a_field_longer_than_the_limit_is_a_413() {
    let mut config = config();
    config.limits.max_field_length = 64;
    let hub = start(config).await;
    let fits = "t".repeat(64);
    let long = "t".repeat(65);
    publish_ok(&hub, &[("topic", &fits), ("id", &fits), ("type", &fits)]).await;
    for pairs in [
        vec![("topic", long.as_str())],
        vec![("topic", "a"), ("topic", long.as_str())],
        vec![("topic", "a"), ("id", long.as_str())],
        vec![("topic", "a"), ("type", long.as_str())],
    ] {
        assert_publish_refused(&hub, &pairs, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    publish_ok(
        &hub,
        &[
            ("topic", BOOK),
            ("future_extension", "1"),
            ("data", "kept"),
            ("match", "not a publish field"),
        ],
    )
    .await;
    assert_eq!(stream.data(1).await, ["kept"]);
}

#[tokio::test]
async fn a_json_body_is_accepted_with_the_same_fields() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, "match=urn%3Aalt").await;
    let body = serde_json::json!({
        "topic": [BOOK, "urn:alt"],
        "data": "from json",
        "id": "json-1",
        "type": "jsonish",
        "retry": 10,
        "unknown": {"ignored": true},
    });
    let response = send(
        client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "json-1");
    let event = stream.event().await;
    assert_eq!(
        (
            event.data.as_str(),
            event.last_event_id.as_str(),
            event.event_type.as_str()
        ),
        ("from json", "json-1", "jsonish")
    );

    // The same rules apply.
    for bad in [
        serde_json::json!({"topic": "*"}),
        serde_json::json!({"topic": BOOK, "type": "mercure"}),
        serde_json::json!({"topic": BOOK, "id": "#x"}),
        serde_json::json!({"topic": BOOK, "retry": "soon"}),
        serde_json::json!({"data": "no topic"}),
    ] {
        let response = send(
            client()
                .post(&hub.url)
                .bearer_auth(hub.publisher())
                .header("content-type", "application/json")
                .body(bad.to_string()),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn a_malformed_json_update_is_refused_naming_the_member() {
    let hub = start_default().await;
    for (body, detail) in [
        ("[]", "the JSON update is invalid: it must be an object"),
        (
            r#"{"topic": 7}"#,
            "`topic` must be a string or an array of strings, not a number",
        ),
        (
            r#"{"topic": ["a", 7]}"#,
            "`topic` must hold strings only, not a number",
        ),
        (
            r#"{"topic": "a", "data": {"x": 1}}"#,
            "`data` must be a string, not an object",
        ),
        (
            r#"{"topic": "a", "id": 1}"#,
            "`id` must be a string, not a number",
        ),
        (
            r#"{"topic": "a", "type": true}"#,
            "`type` must be a string, not a boolean",
        ),
        (
            r#"{"topic": "a", "retry": -5}"#,
            "`retry` must be a non-negative integer of milliseconds, not -5",
        ),
        (
            r#"{"topic": "a", "retry": [1]}"#,
            "`retry` must be a non-negative integer of milliseconds, not an array",
        ),
        (
            r#"{"topic": "a", "private": "on"}"#,
            "`private` must be true or false, not a string",
        ),
        (
            r#"{"topic": "a""#,
            "the JSON update is invalid: EOF while parsing an object",
        ),
        (
            r#"{"topic": "a", "private": true, "private": false}"#,
            "`private` is given more than once",
        ),
        ("\"a\"", "the JSON update is invalid: it must be an object"),
        ("null", "the JSON update is invalid: it must be an object"),
    ] {
        let (_, problem) = refused(
            client()
                .post(&hub.url)
                .bearer_auth(hub.publisher())
                .header("content-type", "application/json")
                .body(body),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(problem.contains(detail), "{body}: {problem}");
    }
}

#[tokio::test]
async fn an_empty_type_or_retry_is_none() {
    let hub = start_default().await;
    let response = send(get(&hub, &format!("match={}", enc(BOOK)))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    publish_ok(
        &hub,
        &[
            ("topic", BOOK),
            ("type", ""),
            ("retry", ""),
            ("data", "form"),
        ],
    )
    .await;
    let response = send(
        client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"topic": BOOK, "type": "", "retry": "", "data": "json"})
                    .to_string(),
            ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("data: json\n\n") {
            let chunk = futures_util::StreamExt::next(&mut body)
                .await
                .expect("the stream goes on")
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("both updates within 10 s");
    assert!(
        !text.contains("event:") && !text.contains("retry:"),
        "no empty `event:` or `retry:` line: {text:?}"
    );
}

#[tokio::test]
async fn an_empty_id_is_no_id_the_hub_generates_one() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let form_id = publish_ok(&hub, &[("topic", BOOK), ("id", ""), ("data", "form")]).await;
    let response = send(
        client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header("content-type", "application/json")
            .body(serde_json::json!({"topic": BOOK, "id": "", "data": "json"}).to_string()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let json_id = text(response).await;
    for (id, data) in [(&form_id, "form"), (&json_id, "json")] {
        assert!(id.starts_with('#'), "a generated id: {id:?}");
        let event = stream.event().await;
        assert_eq!(
            (event.last_event_id.as_str(), event.data.as_str()),
            (id.as_str(), data)
        );
    }
}

#[tokio::test]
async fn a_retry_beyond_what_the_hub_holds_is_a_413_saying_so() {
    let hub = start_default().await;
    assert_publish_refused(
        &hub,
        &[("topic", BOOK), ("retry", "18446744073709551616")],
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let (_, problem) = refused(
        client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("topic", BOOK), ("retry", "99999999999999999999")])),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(
        problem.contains("the largest this hub accepts is 18446744073709551615 ms"),
        "{problem}"
    );
}

#[tokio::test]
async fn other_content_types_are_a_415() {
    let hub = start_default().await;
    for content_type in [
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request = client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .body(form(&[("topic", BOOK)]));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        refused(request, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    // Parameters and case do not matter for the accepted types.
    let response = send(
        client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header(
                "content-type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            )
            .body(form(&[("topic", BOOK)])),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_in_another_charset_than_utf8_is_a_415_and_publishes_nothing() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    for content_type in [
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
        "application/x-www-form-urlencoded; charset=\"windows-1252\"",
    ] {
        let request = client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header("content-type", content_type)
            .body(form(&[("topic", BOOK), ("data", "caf\u{e9}")]));
        let (_, problem) = refused(request, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        let charset = content_type.rsplit('=').next().unwrap().trim_matches('"');
        assert!(
            problem.contains("read as UTF-8") && problem.contains(charset),
            "{problem}"
        );
    }
    // ASCII reads the same in any of them: Apache HttpClient labels its
    // forms ISO-8859-1 by default.
    let request = client()
        .post(&hub.url)
        .bearer_auth(hub.publisher())
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
        )
        .body(form(&[("topic", BOOK), ("data", "ascii")]));
    assert_eq!(send(request).await.status(), StatusCode::OK);
    for charset in ["utf-8", "UTF8", "\"utf-8\"", "us-ascii"] {
        let request = client()
            .post(&hub.url)
            .bearer_auth(hub.publisher())
            .header(
                "content-type",
                format!("application/x-www-form-urlencoded; charset={charset}"),
            )
            .body(form(&[("topic", BOOK), ("data", charset)]));
        assert_eq!(send(request).await.status(), StatusCode::OK, "{charset}");
    }
    assert_eq!(
        stream.data(5).await,
        ["ascii", "utf-8", "UTF8", "\"utf-8\"", "us-ascii"]
    );
}

/// Sends `request` on a connection of its own and reads the answer to its end.
async fn raw_exchange(hub: &TestHub, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("the hub closes the connection after its answer")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that sends its whole body before reading (as most do) gets the
/// answer to a body refused unread (over the limit, or without a token), not
/// a connection reset: the hub reads and drops that body before closing.
#[tokio::test]
async fn a_body_refused_unread_but_sent_whole_still_gets_its_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut small = config();
    small.limits.max_body_bytes = 1024;
    let data = "a".repeat(1536 << 10);
    let body = form(&[("topic", BOOK), ("data", &data)]);
    // Over the limit; then within it, but without a token.
    for (config, with_token, expected) in [
        (small, true, "HTTP/1.1 413"),
        (config(), false, "HTTP/1.1 401"),
    ] {
        let hub = start(config).await;
        let authorization = if with_token {
            format!("Authorization: Bearer {}\r\n", hub.publisher())
        } else {
            String::new()
        };
        let request = format!(
            "POST /.well-known/mercure HTTP/1.1\r\nHost: {}\r\n{authorization}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            hub.addr,
            body.len()
        );
        let mut tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
        tcp.write_all(request.as_bytes())
            .await
            .expect("the hub takes the whole body it refused");
        let mut answer = Vec::new();
        tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
            .await
            .expect("the hub closes after its answer")
            .expect("no reset");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(expected), "{answer}");
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request with no `Host`, or several, is a 400,
/// whether it publishes or subscribes; HTTP/1.0 may omit it.
#[tokio::test]
async fn an_http11_request_without_exactly_one_valid_host_is_a_400() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let path = "/.well-known/mercure";
    let body = form(&[("topic", BOOK), ("data", "hostless")]);
    let token = hub.publisher();
    for (hosts, expected) in [
        ("", "must carry a Host header"),
        ("Host: a\r\nHost: b\r\n", "more than one Host header"),
        ("Host: a b/c@?\r\n", "the Host header is not a host name"),
        (
            "Host: user@example.com\r\n",
            "the Host header is not a host name",
        ),
    ] {
        let publish = format!(
            "POST {path} HTTP/1.1\r\n{hosts}Authorization: Bearer {token}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let subscription =
            format!("GET {path}?match=x HTTP/1.1\r\n{hosts}Connection: close\r\n\r\n");
        for request in [publish, subscription] {
            let answer = raw_exchange(&hub, &request).await;
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
            assert!(answer.contains(expected), "{answer}");
        }
    }
    let old = format!(
        "POST {path} HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{}",
        form(&[("topic", BOOK), ("data", "http/1.0")]).len(),
        form(&[("topic", BOOK), ("data", "http/1.0")])
    );
    let answer = raw_exchange(&hub, &old).await;
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert_eq!(stream.data(1).await, ["http/1.0"], "only the HTTP/1.0 one");
}

#[tokio::test]
async fn two_content_types_are_a_400_and_publish_nothing() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    let request = publish_request(
        &hub,
        Some(&hub.publisher()),
        &[("topic", BOOK), ("data", "two")],
    )
    .header("content-type", "application/json");
    let (_, problem) = refused(request, StatusCode::BAD_REQUEST).await;
    assert!(problem.contains("more than one Content-Type"), "{problem}");
    publish_ok(&hub, &[("topic", BOOK), ("data", "one")]).await;
    assert_eq!(stream.data(1).await, ["one"], "only the second publish");
}

#[tokio::test]
async fn an_encoded_body_is_a_415_and_publishes_nothing() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &format!("match={}", enc(BOOK))).await;
    for encoding in ["gzip", "br", "deflate, gzip"] {
        let request = publish_request(
            &hub,
            Some(&hub.publisher()),
            &[("topic", BOOK), ("data", encoding)],
        )
        .header("content-encoding", encoding);
        let (_, problem) = refused(request, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        assert!(
            problem.contains("without Content-Encoding") && problem.contains(encoding),
            "{problem}"
        );
    }
    // A second header line, or a second coding, counts as much as the first.
    for (first, second) in [
        ("identity", "gzip"),
        ("identity", "br"),
        ("identity, gzip", ""),
    ] {
        let mut request = publish_request(
            &hub,
            Some(&hub.publisher()),
            &[("topic", BOOK), ("data", "two")],
        )
        .header("content-encoding", first);
        if !second.is_empty() {
            request = request.header("content-encoding", second);
        }
        refused(request, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    let identity = publish_request(
        &hub,
        Some(&hub.publisher()),
        &[("topic", BOOK), ("data", "identity")],
    )
    .header("content-encoding", "identity");
    assert_eq!(send(identity).await.status(), StatusCode::OK);
    assert_eq!(stream.data(1).await, ["identity"], "only the plain one");
}

#[tokio::test]
async fn the_private_field_marks_an_update_private_whatever_its_value() {
    let hub = start_default().await;
    let mut anonymous = subscribe(&hub, "match=x").await;
    for value in ["on", "", "false", "0"] {
        publish_ok(
            &hub,
            &[("topic", "x"), ("private", value), ("data", "secret")],
        )
        .await;
    }
    publish_ok(&hub, &[("topic", "x"), ("data", "public")]).await;
    assert_eq!(anonymous.data(1).await, ["public"]);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_client_s_own_is_kept() {
    let hub = start_default().await;
    let token = hub.publisher();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = send(publish_request(&hub, Some(&token), &[("topic", BOOK)])).await;
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let (prefix, counter) = id.split_once('-').expect("prefix-counter");
        assert_eq!((prefix.len(), counter.len()), (16, 16), "{id}");
        assert!(
            id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()),
            "{id}"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "each request has its own id");
    let response = send(
        publish_request(&hub, Some(&token), &[("topic", BOOK)])
            .header("x-request-id", "from-the-client"),
    )
    .await;
    assert_eq!(response.headers()["x-request-id"], "from-the-client");
}

#[tokio::test]
async fn an_h2c_publish_reset_mid_body_is_not_published() {
    let hub = start_default().await;
    let topic = "https://example.com/reset";
    let mut stream = subscribe(&hub, &format!("match={}", enc(topic))).await;
    let tcp = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.expect("an h2c handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    // Cut anywhere in its data, the half body is still a publish to `topic`.
    let body = format!("topic={}&data={}", enc(topic), "x".repeat(200));
    let request = http::Request::post(hub.url.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Bearer {}", hub.publisher()))
        .header("content-length", body.len().to_string())
        .body(())
        .unwrap();
    let (_response, mut send) = client.send_request(request, false).unwrap();
    // Half the body, then a reset without an error: the stream ends, but
    // not with END_STREAM, so the body is not whole.
    send.send_data(body.as_bytes()[..body.len() / 2].to_vec().into(), false)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    send.send_reset(h2::Reason::NO_ERROR);
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_ok(&hub, &[("topic", topic), ("data", "after")]).await;
    assert_eq!(
        stream.data(1).await,
        ["after"],
        "the half body was not published"
    );
}
