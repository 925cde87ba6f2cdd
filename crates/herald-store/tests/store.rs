//! The durable log's promises, through the `Log` trait and a hub on top.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use herald_hub::{Entry, Grants, Hub, Log, MatcherType, Resume, Update};
use herald_store::{DurableLog, Retention, StoreConfig, StoreError};

const TOPIC: &str = "https://example.com/books/1";

fn hub_on(log: Arc<DurableLog>) -> Hub {
    Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .log(log)
    .build()
}

fn entry(id: &str, at: SystemTime) -> Entry {
    Entry::encode(Update::new(TOPIC, format!("data of {id}")), id.into(), at).unwrap()
}

async fn ids_after(log: &DurableLog, after: u64) -> Vec<String> {
    log.read(after, u64::MAX, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id().to_owned())
        .collect()
}

#[tokio::test]
async fn appended_entries_read_back_in_order_with_an_id_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    for id in ["a", "b", "dup", "c", "dup"] {
        log.append(entry(id, SystemTime::now())).await.unwrap();
    }
    assert_eq!(ids_after(&log, 0).await, ["a", "b", "dup", "c", "dup"]);
    assert_eq!(log.find("b").await.unwrap(), Some(2));
    assert_eq!(
        log.find("dup").await.unwrap(),
        Some(3),
        "a reused id resolves to its earliest use"
    );
    assert_eq!(log.find("nope").await.unwrap(), None);
    assert_eq!(log.id_before(3).await.unwrap().as_deref(), Some("b"));
    assert_eq!(log.read(1, 3, 10).await.unwrap().len(), 2, "(after, up_to]");
}

#[tokio::test]
async fn ids_and_order_continue_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Arc::new(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
        let hub = hub_on(Arc::clone(&log));
        hub.publish(Update::new(TOPIC, "1").with_id("one"))
            .await
            .unwrap();
        hub.publish(Update::new(TOPIC, "2").with_id("two"))
            .await
            .unwrap();
        drop(hub);
        log.close();
    }
    let log = Arc::new(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
    let hub = hub_on(Arc::clone(&log));
    let third = hub
        .publish(Update::new(TOPIC, "3").with_id("three"))
        .await
        .unwrap();
    assert_eq!(third.position(), 3, "positions continue");
    let matcher = hub.matcher("match", MatcherType::Exact, TOPIC).unwrap();
    let mut s = hub
        .subscribe(vec![matcher], Grants::none(), Resume::After("one".into()))
        .await
        .unwrap();
    for expected in ["two", "three"] {
        let e = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.id(), expected);
    }
}

#[tokio::test]
async fn a_subscriber_replays_after_a_restart_before_any_new_publish() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Arc::new(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
        let hub = hub_on(Arc::clone(&log));
        for id in ["one", "two", "three"] {
            hub.publish(Update::new(TOPIC, id).with_id(id))
                .await
                .unwrap();
        }
        drop(hub);
        log.close();
    }
    let log = Arc::new(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
    assert_eq!(log.last_position(), 3);
    let hub = hub_on(Arc::clone(&log));
    for (resume, expected) in [
        (Resume::Earliest, &["one", "two", "three"][..]),
        (Resume::After("one".into()), &["two", "three"][..]),
    ] {
        let matcher = hub.matcher("match", MatcherType::Exact, TOPIC).unwrap();
        let mut s = hub
            .subscribe(vec![matcher], Grants::none(), resume.clone())
            .await
            .unwrap();
        for id in expected {
            let e = tokio::time::timeout(Duration::from_secs(5), s.next())
                .await
                .unwrap_or_else(|_| panic!("{resume:?}: {id} was not replayed"))
                .unwrap()
                .unwrap();
            assert_eq!(e.id(), *id);
        }
    }
    // And the next publish still arrives live, once.
    let matcher = hub.matcher("match", MatcherType::Exact, TOPIC).unwrap();
    let mut s = hub
        .subscribe(vec![matcher], Grants::none(), Resume::After("three".into()))
        .await
        .unwrap();
    hub.publish(Update::new(TOPIC, "4").with_id("four"))
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((e.id(), e.position()), ("four", 4));
}

#[tokio::test]
async fn concurrent_appends_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            log.append(entry(&format!("e{i}"), SystemTime::now()))
                .await
                .unwrap()
        }));
    }
    let mut positions: Vec<u64> = Vec::new();
    for task in tasks {
        positions.push(task.await.unwrap().position());
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=64).collect::<Vec<_>>());
    assert!(
        log.commits() < 64,
        "64 concurrent appends took {} commits",
        log.commits()
    );
}

fn clock(
    start: SystemTime,
) -> (
    Arc<Mutex<SystemTime>>,
    Arc<dyn Fn() -> SystemTime + Send + Sync>,
) {
    let now = Arc::new(Mutex::new(start));
    let read = Arc::clone(&now);
    (now, Arc::new(move || *read.lock().unwrap()))
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 5 s");
}

#[tokio::test]
async fn retention_by_count_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_entries: Some(3),
        ..Retention::default()
    };
    let log = DurableLog::open(config).unwrap();
    for i in 1..=10 {
        log.append(entry(&format!("e{i}"), SystemTime::now()))
            .await
            .unwrap();
    }
    eventually("count retention", async || {
        ids_after(&log, 0).await == ["e8", "e9", "e10"]
    })
    .await;
    assert_eq!(
        log.find("e1").await.unwrap(),
        None,
        "discarded ids leave the index"
    );
    assert_eq!(log.shape().unwrap().entries, 3);
}

#[tokio::test]
async fn retention_by_age_follows_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (now, read) = clock(t0);
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_age: Some(Duration::from_secs(60)),
        ..Retention::default()
    };
    config.clock = read;
    let log = DurableLog::open(config).unwrap();
    log.append(entry("old", t0)).await.unwrap();
    log.append(entry("new", t0 + Duration::from_secs(30)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        ids_after(&log, 0).await,
        ["old", "new"],
        "nothing is over 60 s old yet"
    );
    *now.lock().unwrap() = t0 + Duration::from_secs(61);
    eventually("age retention", async || {
        ids_after(&log, 0).await == ["new"]
    })
    .await;
    *now.lock().unwrap() = t0 + Duration::from_secs(91);
    eventually("age retention", async || {
        ids_after(&log, 0).await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn retention_by_size_bounds_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_bytes: Some(1000),
        ..Retention::default()
    };
    let log = DurableLog::open(config).unwrap();
    for i in 0..50 {
        log.append(entry(&format!("e{i:02}"), SystemTime::now()))
            .await
            .unwrap();
    }
    eventually("size retention", async || {
        log.shape().unwrap().bytes <= 1000
    })
    .await;
    let kept = ids_after(&log, 0).await;
    assert!(!kept.is_empty() && kept.len() < 50, "{kept:?}");
    assert_eq!(
        kept.last().map(String::as_str),
        Some("e49"),
        "the newest are kept"
    );
}

#[tokio::test]
async fn resuming_from_a_discarded_id_answers_earliest() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_entries: Some(2),
        ..Retention::default()
    };
    let log = Arc::new(DurableLog::open(config).unwrap());
    let hub = hub_on(Arc::clone(&log));
    for i in 1..=5 {
        hub.publish(Update::new(TOPIC, "x").with_id(format!("e{i}")))
            .await
            .unwrap();
    }
    eventually("retention", async || log.shape().unwrap().entries == 2).await;
    let matcher = hub.matcher("match", MatcherType::Exact, TOPIC).unwrap();
    let mut s = hub
        .subscribe(vec![matcher], Grants::none(), Resume::After("e1".into()))
        .await
        .unwrap();
    assert_eq!(s.resumed_after(), Some("earliest"));
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first.id(), "e4", "everything retained is replayed");
}

#[tokio::test]
async fn positions_continue_after_retention_emptied_the_log_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (now, read) = clock(t0);
    {
        let mut config = StoreConfig::new(dir.path());
        config.retention = Retention {
            max_age: Some(Duration::from_secs(1)),
            ..Retention::default()
        };
        config.clock = read;
        let log = DurableLog::open(config).unwrap();
        log.append(entry("a", t0)).await.unwrap();
        log.append(entry("b", t0)).await.unwrap();
        *now.lock().unwrap() = t0 + Duration::from_secs(10);
        eventually("age retention", async || {
            ids_after(&log, 0).await.is_empty()
        })
        .await;
    }
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(log.append(entry("c", t0)).await.unwrap().position(), 3);
}

fn open_error(dir: &std::path::Path) -> String {
    match DurableLog::open(StoreConfig::new(dir)) {
        Ok(_) => panic!("opened a store that should be refused"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn a_garbage_store_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    drop(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
    std::fs::write(
        dir.path().join("log.redb"),
        b"this is not a database, just garbage bytes".repeat(100),
    )
    .unwrap();
    let error = open_error(dir.path());
    assert!(error.contains("log.redb"), "{error}");
}

#[tokio::test]
async fn a_truncated_store_file_is_recovered_or_refused_never_served_wrong() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        for i in 0..200 {
            log.append(entry(&format!("e{i}"), SystemTime::now()))
                .await
                .unwrap();
        }
    }
    let file = dir.path().join("log.redb");
    let len = std::fs::metadata(&file).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    match DurableLog::open(StoreConfig::new(dir.path())) {
        Err(error) => assert!(error.to_string().contains("log.redb"), "{error}"),
        Ok(log) => {
            // Whatever survived must be a prefix of what was written, intact.
            let ids = ids_after(&log, 0).await;
            let expected: Vec<String> = (0..ids.len()).map(|i| format!("e{i}")).collect();
            assert_eq!(ids, expected);
        }
    }
}

#[tokio::test]
async fn a_foreign_format_marker_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("VERSION"), "herald-log 99\n").unwrap();
    let error = open_error(dir.path());
    assert!(
        error.contains("VERSION") && error.contains("herald-log 99"),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_without_its_marker_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
    std::fs::remove_file(dir.path().join("VERSION")).unwrap();
    let error = open_error(dir.path());
    assert!(error.contains("version marker is missing"), "{error}");
}

#[test]
fn errors_are_typed() {
    let error = StoreError::Damaged {
        path: "x/log.redb".into(),
        reason: "bad".into(),
    };
    assert_eq!(error.to_string(), "x/log.redb is damaged: bad");
}
