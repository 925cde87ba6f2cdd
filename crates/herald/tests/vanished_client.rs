//! A subscriber gone without closing its connection (a phone off the
//! network: no FIN, no RST) is noticed within `limits.write_timeout`, not
//! when the kernel gives up retransmitting, about 15 minutes later.
//!
//! The real `herald serve` runs in a network namespace of an unprivileged
//! user namespace (`unshare`, from util-linux; `ip`, from iproute2), where
//! taking the loopback interface down drops every packet between the hub
//! and its subscriber, whose process is then killed.

use std::process::Command;

/// Runs inside the namespaces: starts the hub, subscribes with curl, cuts
/// the network, kills the subscriber, and reports what the hub logged.
const SCRIPT: &str = r#"
set -u
ip link set lo up || { echo "cannot bring the loopback interface up" >&2; exit 97; }
"$HERALD" serve --listen 127.0.0.1:3999 --admin-listen 127.0.0.1:3998 \
    --hub-url http://127.0.0.1:3999/.well-known/mercure --log-kind memory \
    --config "$CONFIG" 2> "$LOG" &
for _ in $(seq 200); do
    curl -s -o /dev/null http://127.0.0.1:3998/healthz && break
    sleep 0.05
done
curl -sN 'http://127.0.0.1:3999/.well-known/mercure?match=x' > /dev/null &
subscriber=$!
for _ in $(seq 200); do
    curl -s http://127.0.0.1:3998/metrics | grep -q '^herald_subscribers 1' && break
    sleep 0.05
done
echo "subscribed: $(curl -s http://127.0.0.1:3998/metrics | grep '^herald_subscribers ')"
ip link set lo down
kill -9 "$subscriber"
sleep 6
echo "disconnected: $(grep -c 'subscriber disconnected' "$LOG")"
"#;

#[test]
fn a_subscriber_gone_without_closing_is_dropped_within_the_write_timeout() {
    for (tool, package) in [
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
        ("curl", "curl"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "this test needs `{tool}` (Debian package {package})");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        "[limits]\nwrite_timeout = \"2s\"\n[subscribers]\nheartbeat = \"1s\"\n",
    )
    .unwrap();
    let output = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
        ])
        .args(["--", "bash", "-c", SCRIPT])
        .env("HERALD", env!("CARGO_BIN_EXE_herald"))
        .env("CONFIG", &config)
        .env("LOG", dir.path().join("hub.log"))
        .env("HERALD_LOG", "info")
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains("subscribed: herald_subscribers 1"),
        "the subscriber connected:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("disconnected: 1"),
        "the hub dropped the vanished subscriber within 6 s:\n{stdout}\n{stderr}\n{}",
        std::fs::read_to_string(dir.path().join("hub.log")).unwrap_or_default()
    );
}
