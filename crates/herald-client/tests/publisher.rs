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
