//! `DurableLog::check` on stores damaged by hand, the way a bad disk or a
//! bad restore would: it finds each kind of damage, names where it is, and
//! a rebuild of the topic index (`StoreConfig::rebuild_topic_index`)
//! repairs what is the topic index's.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use herald_hub::{Entry, Log, ReadLimit, Update};
use herald_store::{DurableLog, STORE_FILE, StoreConfig};
use redb::{Database, MultimapTableDefinition, ReadableTable, TableDefinition};

const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("entries");
const IDS: MultimapTableDefinition<'_, &str, u64> = MultimapTableDefinition::new("ids");
const TOPICS: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("topics");

/// A closed store of 30 updates, each on `urn:all` and on `urn:n<i>`.
async fn store(dir: &Path) {
    let log = DurableLog::open(StoreConfig::new(dir)).unwrap();
    for i in 1..=30 {
        let update = Update::new("urn:all", format!("data {i}")).with_topic(format!("urn:n{i}"));
        let entry = Entry::encode(update, format!("id-{i}"), SystemTime::now()).unwrap();
        log.append(entry).await.unwrap();
    }
    log.close().unwrap();
}

/// Changes `log.redb` in `dir` by hand, the log closed.
fn damage(dir: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::open(dir.join(STORE_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

/// The positions a replay of `topic` from the start gives.
async fn replayed(log: &DurableLog, topic: &str) -> Vec<u64> {
    let read = log
        .read_topics(
            0,
            u64::MAX,
            Arc::from([Arc::from(topic)]),
            ReadLimit::entries(100),
        )
        .expect("the durable log reads by topic")
        .await
        .unwrap();
    read.entries.iter().map(|e| e.position()).collect()
}

#[tokio::test]
async fn a_whole_store_checks_healthy() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path()).await;
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    let check = log.check().unwrap();
    assert!(check.is_healthy(), "{check:?}");
    assert_eq!(check.records, 30);
    assert_eq!(check.positions, Some((1, 30)));
    assert_eq!(check.indexed_through, 30);
}

#[tokio::test]
async fn a_missing_topic_key_is_found_and_a_rebuild_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path()).await;
    // The key of `urn:n7`, the only one with position 7 but `urn:all`'s.
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(replayed(&log, "urn:n7").await, [7]);
    log.close().unwrap();
    drop(log);
    damage(dir.path(), |txn| {
        let mut topics = txn.open_table(TOPICS).unwrap();
        let keys: Vec<(u64, u64)> = topics
            .iter()
            .unwrap()
            .map(|item| item.unwrap().0.value())
            .filter(|&(_, position)| position == 7)
            .collect();
        assert_eq!(keys.len(), 2);
        // Whichever it is, one topic of position 7 loses its key.
        topics.remove(keys[0]).unwrap();
    });
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    let check = log.check().unwrap();
    assert!(!check.is_healthy());
    assert!(check.only_topic_index(), "{check:?}");
    assert_eq!(check.unindexed_topics.count, 1);
    let (position, what) = &check.unindexed_topics.listed[0];
    assert_eq!(*position, 7);
    assert!(
        what == "the topic `urn:n7` is not in the topic index"
            || what == "the topic `urn:all` is not in the topic index",
        "{what}"
    );
    log.close().unwrap();
    drop(log);

    let mut config = StoreConfig::new(dir.path());
    config.rebuild_topic_index = true;
    let log = DurableLog::open(config).unwrap();
    let check = log.check().unwrap();
    assert!(check.is_healthy(), "{check:?}");
    assert_eq!(replayed(&log, "urn:n7").await, [7]);
    assert_eq!(
        replayed(&log, "urn:all").await,
        (1..=30).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn damaged_records_and_stray_index_entries_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path()).await;
    damage(dir.path(), |txn| {
        let mut entries = txn.open_table(ENTRIES).unwrap();
        let mut record = entries.get(12).unwrap().unwrap().value().to_vec();
        let last = record.len() - 1;
        record[last] ^= 0xff;
        entries.insert(12, record.as_slice()).unwrap();
        let mut ids = txn.open_multimap_table(IDS).unwrap();
        ids.remove("id-20", 20).unwrap();
        ids.insert("ghost", 5).unwrap();
        let mut topics = txn.open_table(TOPICS).unwrap();
        topics.insert((0x1234, 9), ()).unwrap();
    });
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    let check = log.check().unwrap();
    assert!(!check.is_healthy() && !check.only_topic_index());
    assert_eq!(check.records, 30);
    assert_eq!(check.damaged.count, 1, "{check:?}");
    assert_eq!(check.damaged.listed[0].0, 12);
    assert!(
        check.damaged.listed[0].1.contains("checksum"),
        "{:?}",
        check.damaged.listed[0]
    );
    assert_eq!(check.unindexed_ids.count, 1, "{check:?}");
    assert_eq!(
        check.unindexed_ids.listed[0],
        (20, "the id `id-20` is not indexed".to_owned())
    );
    assert_eq!(check.stray_ids.count, 1, "{check:?}");
    assert_eq!(
        check.stray_ids.listed[0],
        (
            5,
            "the id index gives this position for `ghost`, but the record here has the id `id-5`"
                .to_owned()
        )
    );
    assert_eq!(check.stray_topic_keys.count, 1, "{check:?}");
    assert_eq!(check.stray_topic_keys.listed[0].0, 9);
    // The damaged record's own keys are neither missing nor stray: its
    // topics cannot be read.
    assert_eq!(check.unindexed_topics.count, 0, "{check:?}");
}
