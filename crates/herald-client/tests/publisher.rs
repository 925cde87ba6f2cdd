//! The publisher against a hand-written hub.

mod support;

use herald_client::{PublishError, Publisher, StatusCode, Update, Url};
use support::{Server, WAIT};

fn publisher(server: &Server) -> Publisher {
    Publisher::new(Url::parse(&server.url("/.well-known/mercure")).expect("url"))
        .with_token("jwt.abc")
}

#[tokio::test]
async fn posts_the_update_as_a_form_and_returns_the_id() {
    let server = Server::start().await;
    let publisher = publisher(&server);
    let update = Update::new("https://example.com/a", "hello world")
        .with_topic("https://example.com/b")
        .with_id("id-1")
        .private();
    let publish = tokio::spawn(async move { publisher.publish(&update).await });
    let conn = server.accept().await;
    assert_eq!(conn.request.method, "POST");
    assert_eq!(conn.request.target, "/.well-known/mercure");
    assert_eq!(conn.request.header("authorization"), Some("Bearer jwt.abc"));
    assert_eq!(
        conn.request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        String::from_utf8_lossy(&conn.request.body),
        "topic=https%3A%2F%2Fexample.com%2Fa&topic=https%3A%2F%2Fexample.com%2Fb\
         &data=hello+world&id=id-1&private=on"
    );
    conn.respond("200 OK", "text/plain", "urn:uuid:42\n").await;
    let id = tokio::time::timeout(WAIT, publish)
        .await
        .expect("answer")
        .expect("task");
    assert_eq!(id.expect("published"), "urn:uuid:42");
}

#[tokio::test]
async fn a_problem_answer_is_a_typed_error_with_its_title_and_detail() {
    let server = Server::start().await;
    let publisher = publisher(&server);
    let publish = tokio::spawn(async move { publisher.publish(&Update::new("t", "d")).await });
    server
        .accept()
        .await
        .respond(
            "403 Forbidden",
            "application/problem+json",
            r#"{"title":"Forbidden","detail":"the token cannot publish to t","status":403}"#,
        )
        .await;
    let error = tokio::time::timeout(WAIT, publish)
        .await
        .expect("answer")
        .expect("task")
        .expect_err("rejected");
    match &error {
        PublishError::Rejected { status, problem } => {
            assert_eq!(*status, StatusCode::FORBIDDEN);
            assert_eq!(problem, "Forbidden: the token cannot publish to t");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "the hub answered 403 Forbidden: Forbidden: the token cannot publish to t"
    );
}

#[tokio::test]
async fn a_plain_text_rejection_carries_the_body() {
    let server = Server::start().await;
    let publisher = publisher(&server);
    let publish = tokio::spawn(async move { publisher.publish(&Update::new("t", "d")).await });
    server
        .accept()
        .await
        .respond("400 Bad Request", "text/plain", "missing\ntopic\n")
        .await;
    let error = tokio::time::timeout(WAIT, publish)
        .await
        .expect("answer")
        .expect("task")
        .expect_err("rejected");
    assert!(
        matches!(&error, PublishError::Rejected { status, problem } if *status == StatusCode::BAD_REQUEST && problem == "missing topic"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_update_without_topic_is_refused_before_sending() {
    let publisher = Publisher::new(Url::parse("http://127.0.0.1:9/").expect("url"));
    let update = Update {
        data: "d".into(),
        ..Update::default()
    };
    assert!(matches!(
        publisher.publish(&update).await,
        Err(PublishError::NoTopic)
    ));
}

/// Publishes one update in a task and returns its result once the hand-written
/// hub has run `answer` on the connection.
async fn publish_against<F, Fut>(
    server: &Server,
    publisher: Publisher,
    answer: F,
) -> Result<String, PublishError>
where
    F: FnOnce(support::Conn) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let publish = tokio::spawn(async move { publisher.publish(&Update::new("t", "d")).await });
    answer(server.accept().await).await;
    tokio::time::timeout(WAIT, publish)
        .await
        .expect("answer")
        .expect("task")
}

#[tokio::test]
async fn a_302_is_reported_not_followed_as_a_get_without_the_update() {
    let server = Server::start().await;
    let error = publish_against(&server, publisher(&server), |mut conn| async move {
        conn.write(b"HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        conn.close().await;
    })
    .await
    .expect_err("a redirect is not a publish");
    assert!(
        matches!(&error, PublishError::Rejected { status, problem } if *status == StatusCode::FOUND && problem == "redirected to /login"),
        "{error:?}"
    );
    // Nothing else was requested: no GET of the login page.
    assert!(
        server
            .accept_within(std::time::Duration::from_millis(200))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_307_is_followed_with_the_update() {
    let server = Server::start().await;
    let publisher = publisher(&server);
    let publish = tokio::spawn(async move { publisher.publish(&Update::new("t", "d")).await });
    let mut first = server.accept().await;
    first
        .write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /moved\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
    first.close().await;
    let second = server.accept().await;
    assert_eq!(second.request.method, "POST");
    assert_eq!(second.request.target, "/moved");
    assert_eq!(
        String::from_utf8_lossy(&second.request.body),
        "topic=t&data=d"
    );
    second.respond("200 OK", "text/plain", "urn:uuid:7").await;
    let id = tokio::time::timeout(WAIT, publish)
        .await
        .expect("answer")
        .expect("task");
    assert_eq!(id.expect("published"), "urn:uuid:7");
}

#[tokio::test]
async fn a_401_after_a_redirect_to_another_origin_says_the_token_stayed_behind() {
    let server = Server::start().await;
    let elsewhere = Server::start().await;
    let publisher = publisher(&server).with_token("a.b.c");
    let publish = tokio::spawn(async move { publisher.publish(&Update::new("t", "d")).await });
    let mut first = server.accept().await;
    let location = elsewhere.url("/hub");
    first
        .write(
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    first.close().await;
    let second = elsewhere.accept().await;
    assert_eq!(second.request.header("authorization"), None);
    second
        .respond(
            "401 Unauthorized",
            "text/plain",
            "publishing requires an access token",
        )
        .await;
    let error = tokio::time::timeout(WAIT, publish)
        .await
        .expect("answer")
        .expect("task")
        .expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "the hub answered 401 Unauthorized: publishing requires an access token (after a \
             redirect to {location}, another origin, to which the token is not sent)"
        )
    );
}

#[tokio::test]
async fn an_empty_401_is_explained_by_its_bearer_challenge() {
    let server = Server::start().await;
    let error = publish_against(&server, publisher(&server), |mut conn| async move {
        conn.write(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"mercure\", error=\"invalid_token\", error_description=\"The token has expired\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        conn.close().await;
    })
    .await
    .expect_err("rejected");
    assert_eq!(
        error.to_string(),
        "the hub answered 401 Unauthorized: The token has expired"
    );
}

#[tokio::test]
async fn a_rejection_cannot_drive_the_terminal() {
    let server = Server::start().await;
    let error = publish_against(&server, publisher(&server), |conn| async move {
        conn.respond(
            "400 Bad Request",
            "text/html",
            "<h1>Bad</h1>\u{1b}[31mRED\u{1b}[0m",
        )
        .await;
    })
    .await
    .expect_err("rejected");
    let text = error.to_string();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(
        text.ends_with("<h1>Bad</h1>\\u{1b}[31mRED\\u{1b}[0m"),
        "{text:?}"
    );
}

#[tokio::test]
async fn a_request_sent_but_never_answered_may_have_been_published() {
    let server = Server::start().await;
    let publisher = publisher(&server).with_timeout(std::time::Duration::from_millis(300));
    let error = publish_against(&server, publisher, |conn| async move {
        // Read the request, then say nothing until the publisher gives up.
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        drop(conn);
    })
    .await
    .expect_err("no answer");
    assert!(matches!(error, PublishError::NoAnswer(_)), "{error:?}");
    assert!(
        error.to_string().contains("may have been published"),
        "{error}"
    );
}

#[tokio::test]
async fn a_200_cut_short_says_the_update_may_have_been_published() {
    let server = Server::start().await;
    let error = publish_against(&server, publisher(&server), |mut conn| async move {
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\nConnection: close\r\n\r\nurn:uuid:1")
            .await;
        conn.close().await;
    })
    .await
    .expect_err("cut short");
    assert!(
        matches!(&error, PublishError::CutShort { status, .. } if *status == StatusCode::OK),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the hub's answer (200 OK) was cut short (the update may have been published)"
    );
}

#[tokio::test]
async fn a_200_that_is_not_an_id_is_an_error() {
    let server = Server::start().await;
    let empty = publish_against(&server, publisher(&server), |conn| async move {
        conn.respond("200 OK", "text/plain", "").await;
    })
    .await
    .expect_err("empty");
    assert!(matches!(empty, PublishError::NotAnId(_)), "{empty:?}");
    let text = "x".repeat(20_000);
    let long = publish_against(&server, publisher(&server), |conn| async move {
        conn.respond("200 OK", "text/plain", &text).await;
    })
    .await
    .expect_err("too long");
    assert_eq!(
        long.to_string(),
        "the hub answered 200 OK, but not with an event id: its answer is longer than 8192 bytes"
    );
    // A web page, however short, is not a hub's answer (a login page, say).
    let page = publish_against(&server, publisher(&server), |conn| async move {
        conn.respond("200 OK", "text/html; charset=utf-8", "<p>Sign in</p>")
            .await;
    })
    .await
    .expect_err("a page");
    assert!(
        matches!(&page, PublishError::NotAHub { content_type } if content_type == "text/html"),
        "{page:?}"
    );
    assert_eq!(
        page.to_string(),
        "the server answered 200 with text/html, not a Mercure hub's event id"
    );
    // Nor is an API's JSON document.
    let json = publish_against(&server, publisher(&server), |conn| async move {
        conn.respond("200 OK", "application/json", "{\"ok\":true}")
            .await;
    })
    .await
    .expect_err("a JSON document");
    assert_eq!(
        json.to_string(),
        "the server answered 200 with application/json, not a Mercure hub's event id"
    );
}
