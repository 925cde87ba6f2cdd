//! A full disk: the real `herald serve`, on its default durable log, in a
//! small tmpfs that another file fills.
//!
//! With the free-space reserve (`log.min_free_space`), a disk short of it
//! refuses publishes with 507 and readiness says why, and freeing space
//! brings publishing back with no restart. Without it, publishes are refused
//! with the operating system's reason, readiness says why, liveness fails
//! once the store needs reopening, a SIGTERM then exits with a failure that
//! names what could not be done. Either way, once the space is back every
//! acknowledged update is there, in order.
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
const FILL_SCRIPT: &str = r#"
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

/// What both scripts start with: the tmpfs, and how to start the hub on it
/// with the configuration file `$CONFIG`.
const PREAMBLE: &str = r#"
set -u
mount -t tmpfs -o size=8m tmpfs "$MNT" || { echo "cannot mount a tmpfs on $MNT" >&2; exit 97; }
start() {
    exec "$HERALD" serve --dev --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
        --hub-url "$HUB_URL" --data-dir "$MNT/data" --config "$CONFIG"
}
"#;

/// Starts the hub, then, on a line on stdin each: leaves only 1 MiB of the
/// disk free, frees it again, and stops the hub with SIGTERM, reporting its
/// exit status and starting it again over the same directory.
const SHORT_SCRIPT: &str = r#"
start &
pid=$!
read -r fill
avail=$(df -B1 --output=avail "$MNT" | tail -n 1)
head -c $((avail - 1048576)) /dev/zero > "$MNT/filler"
echo "disk short"
read -r free
rm "$MNT/filler"
echo "space back"
read -r stop
kill -TERM "$pid"
wait "$pid"
echo "exit $?"
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

/// The script running in its namespaces, its stdin, its stdout's lines and
/// what it writes to stderr once it ends.
struct Script {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    _mnt: tempfile::TempDir,
    _config: tempfile::NamedTempFile,
}

impl Script {
    /// Runs `PREAMBLE` then `script`, the hub configured by `config` (TOML).
    fn start(script: &str, config: &str) -> Script {
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
        let mut config_file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut config_file, config.as_bytes()).unwrap();
        let mut child = Command::new("unshare")
            .args(NAMESPACES)
            .args(["--", "sh", "-c", &format!("{PREAMBLE}{script}")])
            .env("MNT", mnt.path())
            .env("CONFIG", config_file.path())
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
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Script {
            child,
            stdin,
            lines,
            stderr,
            _mnt: mnt,
            _config: config_file,
        }
    }

    /// Writes a line to the script's stdin.
    async fn say(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("the script reads stdin");
    }

    /// Ends the script and returns what it wrote to stderr.
    async fn end(mut self) -> String {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        self.stderr.await.unwrap()
    }
}

/// A publisher with a publish token, to the hub at `address`.
fn publisher(address: &str) -> Publisher {
    Publisher::new(
        format!("http://{address}/.well-known/mercure")
            .parse()
            .unwrap(),
    )
    .with_token(token(Action::Publish))
    .with_timeout(Duration::from_secs(10))
}

/// Reads the next start's address and asserts that it replays every
/// acknowledged update, in order.
async fn kept_after_restart(lines: &mut Lines<BufReader<ChildStdout>>, acknowledged: &[usize]) {
    let address = address_of(&line_after(lines, "herald listening on ").await);
    let received = history(&address, acknowledged.len()).await;
    assert_eq!(
        received, acknowledged,
        "every acknowledged update, in order"
    );
}

/// Every update of `TOPIC` from the earliest on, read from the hub at
/// `address` until `count` have come, as the numbers their data hold.
async fn history(address: &str, count: usize) -> Vec<usize> {
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
        while received.len() < count {
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
            "{} of {count} acknowledged updates came back within 20 s",
            received.len()
        )
    });
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reserve_a_full_disk_refuses_publishes_fails_the_exit_status_and_loses_nothing_acknowledged()
 {
    let mut script = Script::start(FILL_SCRIPT, "[log]\nmin_free_space = 0\n");
    let lines = &mut script.lines;
    let address = address_of(&line_after(lines, "herald listening on ").await);
    let admin = address_of(&line_after(lines, "herald admin listening on ").await);
    line_after(lines, "disk full").await;

    // Publish until the disk refuses; 4 KiB a time, so the journal's room
    // ahead (1 MiB at most) runs out within a few hundred updates.
    let publisher = publisher(&address);
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

    script.say("stop").await;
    let lines = &mut script.lines;
    let status = line_after(lines, "exit ").await;
    assert_ne!(status, "0", "a shutdown that could not checkpoint exits 0");

    // The space is back: the next start applies the journal.
    kept_after_restart(lines, &acknowledged).await;

    let stderr = script.end().await;
    assert!(
        stderr.contains("herald: at shutdown, the update log failed")
            && stderr.contains("No space left on device"),
        "the exit names what failed and why:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_short_of_the_reserve_refuses_publishes_with_507_until_space_is_freed() {
    // 2 MiB kept free on an 8 MiB disk, of which the filler leaves 1 MiB.
    let mut script = Script::start(SHORT_SCRIPT, "[log]\nmin_free_space = 2097152\n");
    let lines = &mut script.lines;
    let address = address_of(&line_after(lines, "herald listening on ").await);
    let admin = address_of(&line_after(lines, "herald admin listening on ").await);
    let publisher = publisher(&address);
    let mut acknowledged = Vec::new();
    for n in 0..20 {
        publisher
            .publish(&Update::new(TOPIC, format!("{n:0>1024}")))
            .await
            .expect("a disk with room takes updates");
        acknowledged.push(n);
    }

    script.say("fill").await;
    line_after(&mut script.lines, "disk short").await;
    // The free space is read at most 100 ms apart: a publish or two may
    // still go through, no more.
    let refusal = loop {
        let n = acknowledged.len();
        assert!(
            n < 40,
            "20 publishes after the disk was short were acknowledged"
        );
        match publisher
            .publish(&Update::new(TOPIC, format!("{n:0>1024}")))
            .await
        {
            Ok(_) => acknowledged.push(n),
            Err(error) => break error,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    match &refusal {
        PublishError::Rejected { status, .. } => assert_eq!(status.as_u16(), 507, "{refusal}"),
        other => panic!("expected a 507 refusal, got: {other}"),
    }
    let publish_url = format!("http://{address}/.well-known/mercure");
    let refused = reqwest::Client::new()
        .post(&publish_url)
        .bearer_auth(token(Action::Publish))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=https%3A%2F%2Fexample.com%2Fcounter&data=refused")
        .send()
        .await
        .expect("the hub answers");
    assert_eq!(refused.status(), 507);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("10"),
        "a 507 says when to try again"
    );
    let detail = refused.text().await.unwrap();
    assert!(
        detail.contains("/data has ")
            && detail.contains(" free, less than the 2.0 MiB (2097152 bytes)")
            && detail.contains("min_free_space"),
        "the refusal names the disk, what is free and the reserve: {detail}"
    );

    let ready = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.unwrap();
    assert!(
        body.contains("min_free_space"),
        "readiness says why: {body}"
    );
    let alive = reqwest::get(format!("http://{admin}/healthz"))
        .await
        .unwrap();
    assert_eq!(
        alive.status(),
        200,
        "a short disk needs space, not a restart"
    );

    script.say("free").await;
    line_after(&mut script.lines, "space back").await;
    for _ in 0..5 {
        let n = acknowledged.len();
        publisher
            .publish(&Update::new(TOPIC, format!("{n:0>1024}")))
            .await
            .expect("publishing resumes once the space is back, with no restart");
        acknowledged.push(n);
    }
    let ready = reqwest::get(format!("http://{admin}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "ready again");

    script.say("stop").await;
    let status = line_after(&mut script.lines, "exit ").await;
    assert_eq!(status, "0", "the log stopped cleanly");
    kept_after_restart(&mut script.lines, &acknowledged).await;
    let stderr = script.end().await;
    assert!(
        !stderr.contains("No space left on device"),
        "the store never met the full disk:\n{stderr}"
    );
}
