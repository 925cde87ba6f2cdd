//! `herald log check` and `herald log reindex` on the data directory of a
//! real `herald serve`: refused while the hub holds it, healthy after it
//! stopped, the topic index's damage found and repaired, and bad targets
//! refused with what to give instead.

mod hub_process;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use herald_client::{Publisher, Update};
use herald_token::claims::Action;
use hub_process::{TOPIC, start, token};
use redb::{Database, ReadableTable, TableDefinition};

const TOPICS: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("topics");

/// Runs `herald log <args>`; its exit code, stdout and stderr.
fn log(args: &[&str], dir: &Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("log")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("HERALD_CONFIG")
        .env_remove("HERALD_DATA_DIR")
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn a_served_log_checks_healthy_and_its_topic_index_is_repaired() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("data");
    let (mut hub, address) = start(&dir).await;
    let publisher = Publisher::new(
        format!("http://{address}/.well-known/mercure")
            .parse()
            .unwrap(),
    )
    .with_token(token(Action::Publish))
    .with_timeout(Duration::from_secs(5));
    for n in 0..12 {
        publisher
            .publish(&Update::new(TOPIC, n.to_string()))
            .await
            .unwrap();
    }

    // The hub holds the store: a check says so and changes nothing.
    let (code, _, stderr) = log(&["check"], &dir);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("another process"), "{stderr}");

    hub.kill().await.unwrap();
    let (code, stdout, stderr) = log(&["check"], &dir);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(": 12 updates (positions 1 to 12)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("topics missing from the topic index: 0"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("healthy"), "{stdout}");

    // Position 5 loses its topic's key, as a bad disk could have it.
    {
        let db = Database::open(dir.join("log.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut topics = txn.open_table(TOPICS).unwrap();
            let key = topics
                .iter()
                .unwrap()
                .map(|item| item.unwrap().0.value())
                .find(|&(_, position)| position == 5)
                .expect("position 5 is indexed");
            topics.remove(key).unwrap();
        }
        txn.commit().unwrap();
    }
    let (code, stdout, stderr) = log(&["check"], &dir);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("topics missing from the topic index: 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "position 5: the topic `{TOPIC}` is not in the topic index"
        )),
        "{stdout}"
    );
    assert!(stderr.contains("herald log reindex --data-dir"), "{stderr}");

    let (code, stdout, stderr) = log(&["reindex"], &dir);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("rebuilt the topic index of 12 updates"),
        "{stdout}"
    );
    let (code, stdout, stderr) = log(&["check"], &dir);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // And the hub serves the repaired store.
    let (mut hub, _) = start(&dir).await;
    hub.kill().await.unwrap();
}

#[test]
fn a_directory_without_a_log_is_refused_untouched() {
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("nothing-here");
    for command in ["check", "reindex"] {
        let (code, _, stderr) = log(&[command], &missing);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("holds no durable log"), "{stderr}");
        assert!(!missing.exists(), "{command} created {}", missing.display());
    }
}

#[test]
fn a_log_of_another_format_is_refused_unconverted() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("VERSION"), "herald-log 3\n").unwrap();
    for command in ["check", "reindex"] {
        let (code, _, stderr) = log(&[command], data.path());
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("names the format \"herald-log 3\", not this herald's `herald-log 4`"),
            "{stderr}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["VERSION"], "nothing was created or converted");
    assert_eq!(
        std::fs::read_to_string(data.path().join("VERSION")).unwrap(),
        "herald-log 3\n"
    );
}

#[test]
fn a_configuration_with_the_memory_log_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("herald.toml");
    std::fs::write(&file, "[log]\nkind = \"memory\"\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["log", "check", "--config"])
        .arg(&file)
        .env_remove("HERALD_CONFIG")
        .env_remove("HERALD_DATA_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("keeps its log in memory"), "{stderr}");
}
