//! `herald serve` as a real process: the development mode's banner and
//! tokens, and configuration errors.

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use herald_sse::Parser;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(20);

fn herald() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        // The durable default would write ./herald-data; these tests are about the CLI.
        .env("HERALD_LOG_KIND", "memory")
        .env_remove("HERALD_CONFIG")
        .env_remove("HERALD_LISTEN")
        .env_remove("HERALD_HUB_URL")
        .env_remove("HERALD_CORS_ORIGINS")
        .env_remove("HERALD_DEV_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(WAIT)
        .build()
        .expect("client")
}

/// The first line of `child`'s standard error that contains `needle`,
/// written as it starts.
async fn stderr_line(child: &mut Child, needle: &str) -> String {
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("stderr is text") {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("herald's stderr ended without a line containing {needle:?}");
    })
    .await
    .expect("the line comes at start")
}

struct Banner {
    hub_url: String,
    publisher: String,
    subscriber: String,
}

/// Reads stdout until the development banner has printed the hub URL and both tokens.
async fn read_banner(child: &mut Child) -> Banner {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut hub_url, mut publisher, mut subscriber) = (None, None, None);
    let read = async {
        while let Some(line) = lines.next_line().await.expect("stdout is text") {
            if let Some(rest) = line.split("(hub URL ").nth(1) {
                hub_url = Some(rest.trim_end_matches(')').to_owned());
            } else if let Some(token) = line.trim().strip_prefix("publisher token:") {
                publisher = Some(token.trim().to_owned());
            } else if let Some(token) = line.trim().strip_prefix("subscriber token:") {
                subscriber = Some(token.trim().to_owned());
            }
            if hub_url.is_some() && publisher.is_some() && subscriber.is_some() {
                return;
            }
        }
        panic!("stdout ended before the banner was complete");
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the banner is printed in time");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Banner {
        hub_url: hub_url.expect("hub URL"),
        publisher: publisher.expect("publisher token"),
        subscriber: subscriber.expect("subscriber token"),
    }
}

/// A hub whose stdout is closed before it prints anything (a reader that
/// went away, `| head -1` once it has its line) must go on serving: every
/// banner line meets a closed pipe.
#[tokio::test]
async fn serve_goes_on_serving_with_its_stdout_closed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut child = herald()
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .expect("herald starts");
    drop(child.stdout.take());
    let hub_url =
        format!("http://127.0.0.1:{port}/.well-known/mercure?match=https://example.com/t");
    let client = client();
    let response = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(response) = client.get(&hub_url).send().await {
                return response;
            }
            assert!(
                child.try_wait().expect("status").is_none(),
                "herald exited with its stdout closed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hub answers in time");
    assert_eq!(response.status(), 200);
    assert!(
        child.try_wait().expect("status").is_none(),
        "herald exited with its stdout closed"
    );
    child.kill().await.expect("kill");
}

#[tokio::test]
async fn serve_dev_prints_a_hub_url_and_tokens_that_work() {
    let mut child = herald()
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .spawn()
        .expect("herald starts");
    let banner = read_banner(&mut child).await;
    assert!(
        banner.hub_url.starts_with("http://127.0.0.1:"),
        "{}",
        banner.hub_url
    );
    assert!(
        !banner.hub_url.starts_with("http://127.0.0.1:0/"),
        "{}",
        banner.hub_url
    );
    assert!(
        banner.hub_url.ends_with("/.well-known/mercure"),
        "{}",
        banner.hub_url
    );

    let client = client();
    let send = |request: reqwest::RequestBuilder| async move {
        tokio::time::timeout(WAIT, request.send())
            .await
            .expect("a response in time")
            .expect("a response")
    };
    let response = send(
        client
            .get(format!("{}?match=*", banner.hub_url))
            .bearer_auth(&banner.subscriber),
    )
    .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let mut body = response.bytes_stream();

    let publish = |token: &str, data: &str| {
        client
            .post(&banner.hub_url)
            .bearer_auth(token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&private=on&data={data}"
            ))
    };
    // The subscriber token cannot publish; the publisher token can.
    let refused = send(publish(&banner.subscriber, "nope")).await;
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
    let accepted = send(publish(&banner.publisher, "dune")).await;
    assert_eq!(accepted.status(), reqwest::StatusCode::OK);
    let id = accepted.text().await.expect("the id");
    assert!(
        id.strip_prefix('#')
            .is_some_and(|n| n.parse::<u64>().is_ok()),
        "a sequence id: {id}"
    );

    // The subscriber token reads the private update.
    let mut parser = Parser::new();
    let event = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(event) = parser.next_event().expect("a valid stream") {
                return event;
            }
            let chunk = body
                .next()
                .await
                .expect("the stream stays open")
                .expect("a chunk");
            parser.feed(&chunk);
        }
    })
    .await
    .expect("the update arrives in time");
    assert_eq!(event.data, "dune");
    assert_eq!(event.last_event_id, id);

    child.start_kill().expect("stop herald");
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
}

#[tokio::test]
async fn serve_with_an_unknown_configuration_key_exits_2_naming_the_line_and_key() {
    let path = std::env::temp_dir().join(format!("herald-bad-config-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\n\n[subscribers]\nheartbeet = \"1s\"\n",
    )
    .expect("write the configuration");
    let output = tokio::time::timeout(
        WAIT,
        herald().args(["serve", "--config"]).arg(&path).output(),
    )
    .await
    .expect("herald exits in time")
    .expect("herald runs");
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(stderr.contains("heartbeet"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");

    // The same file without the typo starts (and is stopped).
    let good = std::env::temp_dir().join(format!("herald-good-config-{}.toml", std::process::id()));
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:0\"\n\n[subscribers]\nheartbeat = \"1s\"\n",
    )
    .expect("write the configuration");
    let mut child = herald()
        .args(["serve", "--config"])
        .arg(&good)
        .spawn()
        .expect("herald starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a first line in time")
        .expect("stdout is text")
        .expect("a first line");
    let _ = std::fs::remove_file(&good);
    assert!(
        first.starts_with("herald listening on 127.0.0.1:"),
        "{first}"
    );
    child.start_kill().expect("stop herald");
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
}

#[tokio::test]
async fn a_short_dev_secret_is_a_usage_error_naming_the_flag() {
    let output = tokio::time::timeout(
        WAIT,
        herald()
            .args([
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--dev-secret",
                "short",
            ])
            .output(),
    )
    .await
    .expect("herald exits in time")
    .expect("herald runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--dev-secret"), "{stderr}");
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
}

#[tokio::test]
async fn a_bad_log_filter_is_said_and_the_hub_logs_at_info() {
    let mut child = herald()
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("HERALD_LOG", "herald=[")
        .spawn()
        .expect("herald starts");
    let warning = stderr_line(&mut child, "HERALD_LOG").await;
    assert!(warning.contains("is not a log filter"), "{warning}");
    assert!(warning.contains("herald=["), "{warning}");
    let _ = child.kill().await;
}

/// `herald serve --dev` on `listen` and `admin`, for a start expected to
/// fail: its output once it exits.
async fn serve_dev_on(listen: &str, admin: &str) -> std::process::Output {
    tokio::time::timeout(
        WAIT,
        herald()
            .args(["serve", "--dev", "--listen", listen])
            .args(["--admin-listen", admin])
            .output(),
    )
    .await
    .expect("herald exits in time")
    .expect("herald runs")
}

/// Both listeners are bound before the banner, which scripts take for
/// "ready": a start that fails on the admin address prints none.
#[tokio::test]
async fn a_busy_admin_address_fails_the_start_before_the_banner() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = busy.local_addr().unwrap().to_string();
    let output = serve_dev_on("127.0.0.1:0", &admin).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("for the admin routes"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// An admin address that overlaps the hub's is named as such, not as a port
/// another process holds.
#[tokio::test]
async fn an_admin_address_overlapping_the_hub_s_is_a_usage_error_saying_so() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap().to_string();
    drop(free);
    let output = serve_dev_on(&address, &address).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "configuration key `admin.listen`: {address} overlaps `listen` ({address})"
        )),
        "{stderr}"
    );
}

/// `HERALD_DEV_SECRET` left in a production start's environment is said to
/// be ignored; the flag without `--dev` is a usage error.
#[tokio::test]
async fn a_dev_secret_without_dev_mode_is_ignored_from_the_environment_and_refused_as_a_flag() {
    const SECRET: &str = "a-development-secret-of-32-bytes!!";
    let mut child = herald()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HERALD_DEV_SECRET", SECRET)
        .spawn()
        .expect("herald starts");
    let warning = stderr_line(&mut child, "HERALD_DEV_SECRET").await;
    assert!(warning.contains("it is ignored"), "{warning}");
    assert!(!warning.contains(SECRET), "{warning}");
    assert_eq!(child.try_wait().unwrap(), None, "the hub goes on serving");
    let _ = child.kill().await;

    let output = herald()
        .args(["serve", "--listen", "127.0.0.1:0", "--dev-secret", SECRET])
        .output()
        .await
        .expect("herald runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--dev-secret applies only with --dev"),
        "{stderr}"
    );
}

/// A bad `HERALD_LOG_FORMAT` is named; log lines written to a file or a
/// pipe carry no terminal colour codes.
#[tokio::test]
async fn the_log_format_variable_is_named_and_piped_logs_have_no_colours() {
    let output = herald()
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("HERALD_LOG_FORMAT", "xml")
        .output()
        .await
        .expect("herald runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HERALD_LOG_FORMAT"), "{stderr}");

    let mut child = herald()
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .spawn()
        .expect("herald starts");
    let serving = stderr_line(&mut child, "serving").await;
    assert!(!serving.contains('\u{1b}'), "{serving:?}");
    assert!(serving.contains("hub_url="), "{serving}");
    let _ = child.kill().await;
}

/// A path `herald serve` does not serve, on the hub's listener and on the
/// admin listener, is answered 404 with problem details that say where the
/// hub is (or what the admin listener serves), not with an empty body
/// (which a browser replaces with its own error page).
#[tokio::test]
async fn unknown_paths_are_answered_404_with_problem_details_naming_what_is_served() {
    let mut child = herald()
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .spawn()
        .expect("herald starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut hub_url, mut admin) = (None, None);
    tokio::time::timeout(WAIT, async {
        while hub_url.is_none() || admin.is_none() {
            let line = lines
                .next_line()
                .await
                .expect("stdout is text")
                .expect("the banner names both listeners");
            if let Some(rest) = line.split("(hub URL ").nth(1) {
                hub_url = Some(rest.trim_end_matches(')').to_owned());
            } else if let Some(rest) = line.strip_prefix("herald admin listening on ") {
                admin = rest.split_whitespace().next().map(str::to_owned);
            }
        }
    })
    .await
    .expect("the banner is printed in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let hub_url = reqwest::Url::parse(&hub_url.unwrap()).expect("a hub URL");
    let admin = admin.unwrap();

    let client = client();
    let get = |url: String| {
        let client = client.clone();
        async move {
            let response = tokio::time::timeout(WAIT, client.get(&url).send())
                .await
                .expect("a response in time")
                .expect("a response");
            let status = response.status();
            let kind = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.expect("a body"))
                    .unwrap_or_else(|e| panic!("{url}: the body is not JSON: {e}"));
            (status, kind, body)
        }
    };
    let origin = hub_url.origin().ascii_serialization();
    for path in ["/", "/index.html", "/.well-known/mercure-not"] {
        let (status, kind, body) = get(format!("{origin}{path}")).await;
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{path}");
        assert_eq!(kind.as_deref(), Some("application/problem+json"), "{path}");
        assert_eq!(body["status"], 404, "{path}: {body}");
        let detail = body["detail"].as_str().expect("a detail");
        assert!(detail.contains(path), "{path}: {detail}");
        assert!(detail.contains(hub_url.path()), "{path}: {detail}");
    }
    let (status, kind, body) = get(format!("http://{admin}/metric")).await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    assert_eq!(kind.as_deref(), Some("application/problem+json"));
    let detail = body["detail"].as_str().expect("a detail");
    assert!(detail.contains("/metric:"), "{detail}");
    assert!(
        detail.contains("/metrics, /healthz and /readyz"),
        "{detail}"
    );

    // The hub's own routes are still served.
    let (status, _, body) = get(format!(
        "{origin}/.well-known/oauth-protected-resource{}",
        hub_url.path()
    ))
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    child.start_kill().expect("stop herald");
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
}
