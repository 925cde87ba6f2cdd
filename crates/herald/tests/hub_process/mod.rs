//! Runs the real `herald serve` as a child process over a data directory,
//! with a fixed development secret so that tokens survive restarts.

#![allow(dead_code)] // each test binary uses part of it

use std::process::Stdio;
use std::time::Duration;

use herald_token::claims::{Action, AuthorizationDetail, TopicMatcher};
use herald_token::{MintRequest, SigningKey, mint};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const HUB_URL: &str = "http://herald.test/.well-known/mercure";
pub const SECRET: &str = "crash-test-secret-of-at-least-32-bytes!!";
pub const TOPIC: &str = "https://example.com/counter";

pub fn token(action: Action) -> String {
    let request = MintRequest::new("herald-dev", HUB_URL)
        .with_ttl(Duration::from_secs(3600))
        .with_detail(AuthorizationDetail::new(
            vec![action],
            vec![TopicMatcher::exact("*")],
        ));
    mint(&request, &SigningKey::hs256(SECRET.as_bytes()).unwrap()).unwrap()
}

/// Starts the hub on a free port over `data_dir`; returns it and its address.
pub async fn start(data_dir: &std::path::Path) -> (Child, String) {
    start_with(data_dir, &[]).await
}

/// Like [`start`], with more `herald serve` arguments.
pub async fn start_with(data_dir: &std::path::Path, more: &[&str]) -> (Child, String) {
    let (child, address, _) = start_reading(data_dir, more, None).await;
    (child, address)
}

/// Like [`start`], with the admin listener on a free port; returns the hub,
/// its address and the admin listener's.
pub async fn start_with_admin(data_dir: &std::path::Path) -> (Child, String, String) {
    let (child, address, admin) = start_reading(
        data_dir,
        &["--admin-listen", "127.0.0.1:0"],
        Some("herald admin listening on "),
    )
    .await;
    (child, address, admin.expect("the admin line"))
}

/// Like [`start_with_admin`], with more `herald serve` arguments.
pub async fn start_with_admin_and(
    data_dir: &std::path::Path,
    more: &[&str],
) -> (Child, String, String) {
    let mut args = vec!["--admin-listen", "127.0.0.1:0"];
    args.extend_from_slice(more);
    let (child, address, admin) =
        start_reading(data_dir, &args, Some("herald admin listening on ")).await;
    (child, address, admin.expect("the admin line"))
}

/// Starts the hub and reads its banner until the listening line and, when
/// `also` is given, the line starting with it (whose first word is returned).
async fn start_reading(
    data_dir: &std::path::Path,
    more: &[&str],
    also: Option<&str>,
) -> (Child, String, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--hub-url",
            HUB_URL,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(more)
        .env("HERALD_DEV_SECRET", SECRET)
        .env("HERALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the herald binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first_word = |rest: &str| rest.split_whitespace().next().unwrap().to_owned();
    let (address, other) = tokio::time::timeout(Duration::from_secs(20), async {
        let (mut address, mut other) = (None, None);
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("herald listening on ") {
                address = Some(first_word(rest));
            }
            if let Some(rest) = also.and_then(|prefix| line.strip_prefix(prefix)) {
                other = Some(first_word(rest));
            }
            if let Some(address) = &address
                && (also.is_none() || other.is_some())
            {
                return (address.clone(), other);
            }
        }
        panic!("herald exited before listening");
    })
    .await
    .expect("herald listens within 20 s");
    // Keep draining stdout so the hub never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address, other)
}
