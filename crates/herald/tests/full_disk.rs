//! A full disk: the real `herald serve`, on its default durable log, in a
//! small tmpfs that another file fills. Publishes are refused with the
//! operating system's reason, readiness says why, liveness fails once the
//! store needs reopening, a SIGTERM then exits with a failure that names
//! what could not be done, and once the space is back every acknowledged
//! update is there, in order.
//!
//! The tmpfs is mounted in a mount namespace of an unprivileged user
//! namespace (`unshare --user --map-root-user --mount`, from util-linux), so
//! the test needs neither root nor a real small disk.

mod hub_process;

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use herald_client::{PublishError, Publisher, Update};
use herald_sse::Parser;
use herald_token::claims::Action;
use hub_process::{HUB_URL, SECRET, TOPIC, token};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

/// Runs inside the namespaces: mounts the tmpfs, starts the hub, fills the
/// disk once the log's files exist, stops the hub with SIGTERM when a line
/// comes on stdin, reports its exit status, frees the space and starts the
/// hub again over the same directory.
const SCRIPT: &str = r#"
set -u
mount -t tmpfs -o size=8m tmpfs "$MNT" || { echo "cannot mount a tmpfs on $MNT" >&2; exit 97; }
start() {
    exec "$HERALD" serve --dev --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --hub-url "$HUB_URL" --data-dir "$MNT/data"
}
start &
pid=$!
while [ ! -s "$MNT/data/log.journal" ]; do sleep 0.05; done
dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null
echo "disk full"
read -r stop
kill -TERM "$pid"
wait "$pid"
echo "exit $?"
rm "$MNT/filler"
start
"#;

/// `unshare`'s flags: a user namespace to mount in without root, and a pid
/// namespace, so that every process in it ends with the test.
const NAMESPACES: [&str; 5] = [
    "--user",
    "--map-root-user",
    "--mount",
    "--pid",
    "--kill-child",
];

/// The next stdout line with this prefix, and what follows it.
async fn line_after(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.to_owned());
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("no line starting with {prefix:?} within 30 s"));
    found.unwrap_or_else(|| panic!("the script ended before a line starting with {prefix:?}"))
}

fn address_of(rest: &str) -> String {
    rest.split_whitespace()
        .next()
        .expect("an address")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_fails_the_exit_status_and_loses_nothing_acknowledged() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let namespaces = std::process::Command::new("unshare")
        .args(NAMESPACES)
        .arg("true")
        .output();
    match namespaces {
        Ok(output) if output.status.success() => {}
        other => panic!(
            "this test needs `unshare` (Debian package util-linux) and unprivileged user \
             namespaces (sysctl kernel.unprivileged_userns_clone=1), or root: {other:?}"
        ),
    }
    let mnt = tempfile::tempdir().unwrap();
    let mut child = Command::new("unshare")
        .args(NAMESPACES)
        .args(["--", "sh", "-c", SCRIPT])
        .env("MNT", mnt.path())
        .env("HERALD", env!("CARGO_BIN_EXE_herald"))
        .env("HUB_URL", HUB_URL)
        .env("HERALD_DEV_SECRET", SECRET)
        .env("HERALD_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("unshare starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let address = address_of(&line_after(&mut lines, "herald listening on ").await);
    let admin = address_of(&line_after(&mut lines, "herald admin listening on ").await);
    line_after(&mut lines, "disk full").await;

    // Publish until the disk refuses; 4 KiB a time, so the journal's room
    // ahead (1 MiB at most) runs out within a few hundred updates.
    let publisher = Publisher::new(
        format!("http://{address}/.well-known/mercure")
            .parse()
            .unwrap(),
    )
    .with_token(token(Action::Publish))
    .with_timeout(Duration::from_secs(10));
    let mut acknowledged = Vec::new();
    let refusal = loop {
        let n = acknowledged.len();
        assert!(n < 5_000, "5,000 updates of 4 KiB fitted in an 8 MiB tmpfs");
        let data = format!("{n:0>4096}");
        match publisher.publish(&Update::new(TOPIC, data)).await {
            Ok(_) => acknowledged.push(n),
            Err(error) => break error,
        }
    };
    match &refusal {
        PublishError::Rejected { status, .. } => assert_eq!(status.as_u16(), 503, "{refusal}"),
        other => panic!("expected a 503 refusal, got: {other}"),
    }
    assert!(
        refusal.to_string().contains("No space left on device"),
        "the refusal names the reason: {refusal}"
    );
    assert!(
        !acknowledged.is_empty(),
        "nothing was published before the disk was full"
    );

    let ready = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .expect("the admin listener answers");
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.unwrap();
    assert!(
        body.contains("No space left on device"),
        "readiness says why: {body}"
    );

    // Retried, the store's own file fails too, after which it refuses every
    // write until it is opened again: the committer stops, and liveness
    // says so, for a supervisor to restart the hub.
    let mut alive = None;
    for _ in 0..20 {
        let refused = publisher.publish(&Update::new(TOPIC, "refused")).await;
        assert!(
            refused.is_err(),
            "a publish on a full disk was acknowledged"
        );
        let health = reqwest::get(format!("http://{admin}/healthz"))
            .await
            .expect("the admin listener answers");
        if health.status() == 503 {
            alive = Some(health.text().await.unwrap());
            break;
        }
    }
    let alive = alive.expect("/healthz still answers 200 after 20 refused publishes");
    assert!(
        alive.contains("committer has stopped") && alive.contains("No space left on device"),
        "liveness says why: {alive}"
    );
    // A publish says so too, not that the log is merely closed.
    let stopped = publisher
        .publish(&Update::new(TOPIC, "refused"))
        .await
        .expect_err("a publish after the committer stopped was acknowledged");
    assert!(
        stopped.to_string().contains("until the hub is restarted")
            && stopped.to_string().contains("No space left on device"),
        "the refusal says why and what to do: {stopped}"
    );

    stdin
        .write_all(b"stop\n")
        .await
        .expect("the script reads stdin");
    let status = line_after(&mut lines, "exit ").await;
    assert_ne!(status, "0", "a shutdown that could not checkpoint exits 0");

    // The space is back: the next start applies the journal.
    let address = address_of(&line_after(&mut lines, "herald listening on ").await);
    let response = reqwest::Client::new()
        .get(format!(
            "http://{address}/.well-known/mercure?match={TOPIC}"
        ))
        .bearer_auth(token(Action::Subscribe))
        .header("last-event-id", "earliest")
        .send()
        .await
        .expect("the restarted hub answers");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut parser = Parser::new();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while received.len() < acknowledged.len() {
            let chunk = body.next().await.expect("the stream goes on").unwrap();
            parser.feed(&chunk);
            while let Some(event) = parser.next_event().expect("a well-formed stream") {
                received.push(event.data.parse::<usize>().expect("numeric data"));
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} of {} acknowledged updates came back within 20 s",
            received.len(),
            acknowledged.len()
        )
    });
    assert_eq!(
        received, acknowledged,
        "every acknowledged update, in order"
    );

    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let stderr = stderr.await.unwrap();
    assert!(
        stderr.contains("herald: at shutdown, the update log failed")
            && stderr.contains("No space left on device"),
        "the exit names what failed and why:\n{stderr}"
    );
}
