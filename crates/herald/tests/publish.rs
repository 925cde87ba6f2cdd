//! `herald publish` against a hand-written hub: the request it sends, what it
//! prints and how it exits.

mod support;

use std::process::Stdio;

use support::{Server, WAIT, run, spawn, spawn_with_stdin};

#[tokio::test]
async fn posts_every_field_as_a_form_and_prints_the_id() {
    let server = Server::start().await;
    let hub = server.url("/.well-known/mercure");
    let herald = spawn(&[
        "publish",
        "--hub",
        &hub,
        "--topic",
        "https://example.com/books/1",
        "--topic",
        "https://example.com/books/{id}",
        "--data",
        "{\"title\": \"Dune & co\"}",
        "--id",
        "urn:uuid:1",
        "--type",
        "updated",
        "--retry",
        "2500",
        "--private",
        "--token",
        "jwt.abc",
    ]);
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
        "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&topic=https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D\
         &data=%7B%22title%22%3A+%22Dune+%26+co%22%7D&id=urn%3Auuid%3A1&type=updated&retry=2500&private=on"
    );
    conn.respond("200 OK", "text/plain", "urn:uuid:1").await;
    let output = herald.finish().await;
    assert_eq!(
        (
            output.code(),
            output.stdout.as_str(),
            output.stderr.as_str()
        ),
        (Some(0), "urn:uuid:1\n", "")
    );
}

#[tokio::test]
async fn reads_the_data_from_stdin_when_no_data_flag_is_given() {
    let server = Server::start().await;
    let hub = server.url("/hub");
    let mut herald = spawn_with_stdin(&["publish", "--hub", &hub, "--topic", "t"], Stdio::piped());
    herald.send_stdin(b"line 1\nline 2\n").await;
    let conn = server.accept().await;
    assert_eq!(conn.request.header("authorization"), None);
    assert_eq!(
        String::from_utf8_lossy(&conn.request.body),
        "topic=t&data=line+1%0Aline+2%0A"
    );
    conn.respond("200 OK", "text/plain", "id-from-hub\n").await;
    let output = herald.finish().await;
    assert_eq!(
        (output.code(), output.stdout.as_str()),
        (Some(0), "id-from-hub\n")
    );
}

#[tokio::test]
async fn reads_the_data_from_a_file() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("publish-data.json");
    std::fs::write(&path, "[1, 2]").expect("write the data file");
    let server = Server::start().await;
    let hub = server.url("/hub");
    let herald = spawn(&[
        "publish",
        "--hub",
        &hub,
        "--topic",
        "t",
        "--data-file",
        path.to_str().expect("UTF-8 path"),
    ]);
    let conn = server.accept().await;
    assert_eq!(
        String::from_utf8_lossy(&conn.request.body),
        "topic=t&data=%5B1%2C+2%5D"
    );
    conn.respond("200 OK", "text/plain", "id-2").await;
    assert_eq!(herald.finish().await.stdout, "id-2\n");
}

#[tokio::test]
async fn a_problem_answer_exits_1_with_the_problem_text() {
    let server = Server::start().await;
    let hub = server.url("/hub");
    let herald = spawn(&["publish", "--hub", &hub, "--topic", "t", "--data", "x"]);
    server
        .accept()
        .await
        .respond(
            "401 Unauthorized",
            "application/problem+json",
            r#"{"type":"about:blank","title":"Unauthorized","detail":"a publish token is required","status":401}"#,
        )
        .await;
    let output = herald.finish().await;
    assert_eq!(output.code(), Some(1));
    assert_eq!(output.stdout, "");
    assert_eq!(
        output.stderr,
        "herald: the hub answered 401 Unauthorized: Unauthorized: a publish token is required\n"
    );
}

#[tokio::test]
async fn a_plain_rejection_exits_1_with_the_body() {
    let server = Server::start().await;
    let hub = server.url("/hub");
    let herald = spawn(&["publish", "--hub", &hub, "--topic", "t", "--data", "x"]);
    server
        .accept()
        .await
        .respond("400 Bad Request", "text/plain", "invalid retry\n")
        .await;
    let output = herald.finish().await;
    assert_eq!(
        (output.code(), output.stderr.as_str()),
        (
            Some(1),
            "herald: the hub answered 400 Bad Request: invalid retry\n"
        )
    );
}

#[tokio::test]
async fn an_unreachable_hub_exits_1_with_one_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hub = format!("http://{}/hub", listener.local_addr().expect("addr"));
    drop(listener);
    let output = run(&["publish", "--hub", &hub, "--topic", "t", "--data", "x"]).await;
    assert_eq!(output.code(), Some(1));
    let prefix = format!("herald: cannot reach the hub at {hub}: ");
    assert!(output.stderr.starts_with(&prefix), "{:?}", output.stderr);
    assert_eq!(output.stderr.lines().count(), 1, "{:?}", output.stderr);
}

#[tokio::test]
async fn an_id_that_cannot_be_written_is_an_error_naming_it_not_a_panic() {
    let server = Server::start().await;
    let hub = server.url("/hub");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["publish", "--hub", &hub, "--topic", "t", "--data", "x"])
        .env_remove("HERALD_TOKEN")
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald");
    server
        .accept()
        .await
        .respond("200 OK", "text/plain", "urn:uuid:9")
        .await;
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("herald did not exit in time")
        .expect("wait for herald");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("herald: published as urn:uuid:9, but cannot write the id to stdout: "),
        "{stderr:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr:?}");
}

#[tokio::test]
async fn a_hub_that_never_answers_is_not_reported_unreachable() {
    let server = Server::start().await;
    let hub = server.url("/hub");
    let herald = spawn(&[
        "publish",
        "--hub",
        &hub,
        "--topic",
        "t",
        "--data",
        "x",
        "--timeout",
        "300ms",
    ]);
    let conn = server.accept().await;
    let output = herald.finish().await;
    drop(conn);
    assert_eq!(output.code(), Some(1));
    let prefix =
        format!("herald: {hub}: the hub did not answer (the update may have been published): ");
    assert!(output.stderr.starts_with(&prefix), "{:?}", output.stderr);
}

/// Runs `herald publish` against a server that answers 200 with
/// `content_type` and `body`; returns its exit code, stdout and stderr, and
/// the hub URL it was given.
async fn publish_answered(
    content_type: &str,
    body: &str,
) -> ((Option<i32>, String, String), String) {
    let server = Server::start().await;
    let hub = server.url("/hub");
    let herald = spawn(&["publish", "--hub", &hub, "--topic", "t", "--data", "x"]);
    server
        .accept()
        .await
        .respond("200 OK", content_type, body)
        .await;
    let output = herald.finish().await;
    ((output.code(), output.stdout, output.stderr), hub)
}

#[tokio::test]
async fn control_characters_in_the_id_are_printed_escaped() {
    let (output, _) = publish_answered(
        "application/octet-stream",
        "urn:\u{1b}[2J\u{1b}]0;owned\u{7}\nsecond line\r\n",
    )
    .await;
    assert_eq!(
        output,
        (
            Some(0),
            "urn:\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\nsecond line\n".to_owned(),
            String::new()
        )
    );
}

#[tokio::test]
async fn a_web_page_answered_with_200_is_not_taken_for_an_id() {
    let (output, hub) = publish_answered(
        "Text/HTML; charset=utf-8",
        "<html><body>Sign in\u{1b}[31m</body></html>",
    )
    .await;
    assert_eq!(
        output,
        (
            Some(1),
            String::new(),
            format!(
                "herald: the server at {hub} answered 200 with text/html, not a Mercure hub's event id\n"
            )
        )
    );
}

#[tokio::test]
async fn a_json_document_answered_with_200_is_not_taken_for_an_id() {
    let (output, hub) = publish_answered("application/json", "{\"status\":\"queued\"}").await;
    assert_eq!(
        output,
        (
            Some(1),
            String::new(),
            format!(
                "herald: the server at {hub} answered 200 with application/json, not a Mercure hub's event id\n"
            )
        )
    );
}

#[tokio::test]
async fn bad_flag_values_are_usage_errors() {
    let output = run(&[
        "publish",
        "--hub",
        "http://127.0.0.1:9/",
        "--topic",
        "t",
        "--data",
        "x",
        "--retry",
        "soon",
    ])
    .await;
    assert_eq!(
        (output.code(), output.stderr.as_str()),
        (
            Some(2),
            "herald: invalid --retry 'soon': expected a number of milliseconds\n"
        )
    );
    let output = run(&[
        "publish",
        "--hub",
        "hub.example",
        "--topic",
        "t",
        "--data",
        "x",
    ])
    .await;
    assert_eq!(
        (output.code(), output.stderr.as_str()),
        (
            Some(2),
            "herald: invalid --hub 'hub.example': relative URL without a base\n"
        )
    );
    let output = run(&[
        "publish",
        "--hub",
        "http://user:secret@127.0.0.1:9/",
        "--topic",
        "t",
        "--data",
        "x",
        "--token",
        "t",
    ])
    .await;
    assert_eq!(
        (output.code(), output.stderr.as_str()),
        (
            Some(2),
            "herald: --token (or HERALD_TOKEN) and the --hub URL's user:password@ would both \
             send an Authorization header: give one\n"
        )
    );
    // No --topic: clap's usage error.
    let output = run(&["publish", "--hub", "http://127.0.0.1:9/", "--data", "x"]).await;
    assert_eq!(output.code(), Some(2));
    assert_eq!(output.stdout, "");
    for (timeout, why) in [
        ("0s", "it must be longer than 0s"),
        ("soon", "expected a duration"),
    ] {
        let output = run(&[
            "publish",
            "--hub",
            "http://127.0.0.1:9/",
            "--topic",
            "t",
            "--data",
            "x",
            "--timeout",
            timeout,
        ])
        .await;
        assert_eq!(output.code(), Some(2), "{timeout}");
        assert!(output.stderr.contains("--timeout"), "{:?}", output.stderr);
        assert!(output.stderr.contains(why), "{:?}", output.stderr);
    }
}

#[tokio::test]
async fn a_timeout_while_connecting_is_said_as_not_reaching_the_hub() {
    // A listener that takes no connection: once its one-place queue is
    // full, the kernel drops the next SYN and `connect` hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(tcp)) = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            tokio::net::TcpStream::connect(address),
        )
        .await
        {
            fillers.push(tcp);
        }
    }
    let hub = format!("http://{address}/.well-known/mercure");
    let output = run(&[
        "publish",
        "--hub",
        &hub,
        "--topic",
        "t",
        "--data",
        "x",
        "--timeout",
        "2s",
    ])
    .await;
    assert_eq!(output.code(), Some(1), "{}", output.stderr);
    assert!(
        output
            .stderr
            .starts_with(&format!("herald: cannot reach the hub at {hub}: ")),
        "{}",
        output.stderr
    );
    assert!(
        !output.stderr.contains("may have been published"),
        "{}",
        output.stderr
    );
    drop(listener);
}
