//! The durable log's promises, through the `Log` trait and a hub on top.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use herald_hub::{Entry, Grants, Hub, Log, MatcherType, ReadLimit, Resume, Update};
use herald_store::{Durability, DurableLog, Retention, StoreConfig, StoreError};

const TOPIC: &str = "https://example.com/books/1";

fn hub_on(log: Arc<DurableLog>) -> Hub {
    hub_builder(log).build()
}

fn hub_builder(log: Arc<DurableLog>) -> herald_hub::HubBuilder {
    Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .log(log)
}

fn entry(id: &str, at: SystemTime) -> Entry {
    Entry::encode(Update::new(TOPIC, format!("data of {id}")), id.into(), at).unwrap()
}

async fn ids_after(log: &DurableLog, after: u64) -> Vec<String> {
    log.read(after, u64::MAX, ReadLimit::entries(usize::MAX))
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
    assert_eq!(
        log.read(1, 3, ReadLimit::entries(10)).await.unwrap().len(),
        2,
        "(after, up_to]"
    );
}

/// A read stops at the entry that reaches its byte bound, in the store, in
/// what was just committed and across both: a replay holds one read per
/// subscriber, so large updates come a few at a time.
#[tokio::test]
async fn a_disk_short_of_the_reserve_refuses_appends_until_it_has_room_in_both_durabilities() {
    for durability in [
        Durability::Strict,
        Durability::Relaxed {
            flush_interval: Duration::from_millis(100),
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let free = Arc::new(std::sync::atomic::AtomicU64::new(1 << 30));
        let mut config = StoreConfig::new(dir.path());
        config.durability = durability;
        config.min_free_space = 64 << 20;
        config.free_space = Arc::new({
            let free = Arc::clone(&free);
            move |_| Ok(free.load(std::sync::atomic::Ordering::Relaxed))
        });
        let log = DurableLog::open(config).unwrap();
        log.append(entry("a", SystemTime::now())).await.unwrap();
        free.store(10 << 20, std::sync::atomic::Ordering::Relaxed);
        // The reading of the free space is at most 100 ms old.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let refused = log.append(entry("b", SystemTime::now())).await.unwrap_err();
        let herald_hub::HubError::InsufficientStorage(reason) = &refused else {
            panic!("{durability:?}: expected InsufficientStorage, got {refused:?}");
        };
        assert!(
            reason.contains("has 10.0 MiB (10485760 bytes) free, less than the 64.0 MiB"),
            "{reason}"
        );
        let not_ready = log.check_ready().await.unwrap_err();
        assert!(
            not_ready.to_string().contains("min_free_space"),
            "{not_ready}"
        );
        assert_eq!(log.check_alive(), Ok(()), "short of space is not dead");
        free.store(65 << 20, std::sync::atomic::Ordering::Relaxed);
        let taken = log.append(entry("c", SystemTime::now())).await.unwrap();
        assert_eq!(taken.position(), 2, "the refused append took no position");
        assert_eq!(log.check_ready().await, Ok(()));
        assert_eq!(ids_after(&log, 0).await, ["a", "c"]);
    }
}

#[tokio::test]
async fn reads_are_bounded_in_bytes_as_well_as_entries() {
    let dir = tempfile::tempdir().unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    let large = |n: usize| {
        Entry::encode(
            Update::new(TOPIC, "x".repeat(10_000)),
            format!("large{n}"),
            SystemTime::now(),
        )
        .unwrap()
    };
    for n in 0..6 {
        log.append(large(n)).await.unwrap();
    }
    let frame = log.read(0, 1, ReadLimit::entries(1)).await.unwrap()[0]
        .frame()
        .len();
    let bounded = ReadLimit {
        entries: 100,
        bytes: 2 * frame + 1,
    };
    let ids = |entries: Vec<Arc<Entry>>| -> Vec<String> {
        entries.iter().map(|e| e.id().to_owned()).collect()
    };
    // Just committed: from memory.
    let read = log.read(0, u64::MAX, bounded).await.unwrap();
    assert_eq!(ids(read), ["large0", "large1", "large2"]);
    eventually("applied to the store", async || {
        log.shape().unwrap().entries == 6
    })
    .await;
    for n in 6..8 {
        log.append(large(n)).await.unwrap();
    }
    // From the store, then across the store and memory (positions start at 1).
    let read = log.read(3, u64::MAX, bounded).await.unwrap();
    assert_eq!(ids(read), ["large3", "large4", "large5"]);
    let read = log.read(4, u64::MAX, bounded).await.unwrap();
    assert_eq!(ids(read), ["large4", "large5", "large6"]);
    // Never fewer than one entry, however small the bound.
    let tiny = ReadLimit {
        entries: 100,
        bytes: 1,
    };
    assert_eq!(ids(log.read(0, u64::MAX, tiny).await.unwrap()), ["large0"]);
    assert_eq!(ids(log.read(7, u64::MAX, tiny).await.unwrap()), ["large7"]);
}

/// Entries committed in the last few milliseconds are read from memory until
/// they are applied to the store: reads, lookups and limits see one log.
#[tokio::test]
async fn reads_span_applied_entries_and_those_just_committed() {
    let dir = tempfile::tempdir().unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    for id in ["a", "b", "dup", "c"] {
        log.append(entry(id, SystemTime::now())).await.unwrap();
    }
    eventually("applied to the store", async || {
        log.shape().unwrap().entries == 4
    })
    .await;
    for id in ["d", "dup", "e"] {
        log.append(entry(id, SystemTime::now())).await.unwrap();
    }
    assert_eq!(
        ids_after(&log, 0).await,
        ["a", "b", "dup", "c", "d", "dup", "e"]
    );
    assert_eq!(ids_after(&log, 3).await, ["c", "d", "dup", "e"]);
    assert_eq!(ids_after(&log, 5).await, ["dup", "e"]);
    let limited: Vec<_> = log
        .read(2, 7, ReadLimit::entries(3))
        .await
        .unwrap()
        .iter()
        .map(|e| e.id().to_owned())
        .collect();
    assert_eq!(limited, ["dup", "c", "d"], "a limit across both");
    assert_eq!(log.find("dup").await.unwrap(), Some(3), "the earliest use");
    assert_eq!(log.find("e").await.unwrap(), Some(7));
    assert_eq!(log.id_before(5).await.unwrap().as_deref(), Some("c"));
    assert_eq!(log.id_before(6).await.unwrap().as_deref(), Some("d"));
    assert_eq!(log.id_before(1).await.unwrap(), None);
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
        log.close().expect("the log closes cleanly");
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
async fn a_subscriber_resuming_right_after_a_restart_replays_what_it_missed() {
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
        log.close().expect("the log closes cleanly");
    }
    // Nothing is published after the restart before the subscriber resumes.
    let hub = hub_on(Arc::new(
        DurableLog::open(StoreConfig::new(dir.path())).unwrap(),
    ));
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

/// Starts `count` tasks, each publishing `each` updates to [`TOPIC`] one
/// after the other, with ids `p<task>-<k>`.
fn spawn_publishers(hub: &Hub, count: usize, each: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|p| {
            let hub = hub.clone();
            tokio::spawn(async move {
                for k in 0..each {
                    hub.publish(Update::new(TOPIC, "x").with_id(format!("p{p}-{k}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect()
}

async fn next_entry(s: &mut herald_hub::Subscription) -> Arc<Entry> {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("an entry within 10 s")
        .unwrap()
        .expect("subscription still open")
}

/// Positions `(after, through]` as a subscription resuming after `cursor` yields them.
async fn resume_and_collect(hub: &Hub, cursor: &str, through: u64) -> (u64, Vec<u64>) {
    let matcher = hub.matcher("match", MatcherType::Exact, TOPIC).unwrap();
    let mut s = hub
        .subscribe(vec![matcher], Grants::none(), Resume::After(cursor.into()))
        .await
        .unwrap();
    assert_eq!(s.resumed_after(), Some(cursor));
    let mut positions = Vec::new();
    loop {
        let position = next_entry(&mut s).await.position();
        positions.push(position);
        if position >= through {
            return (positions[0] - 1, positions);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_resuming_during_concurrent_publishes_see_each_entry_once_in_order() {
    for round in 0..5 {
        resume_during_concurrent_publishes(round, Durability::Strict).await;
    }
}

/// With relaxed durability publishers commit on their own tasks while the
/// committer is free, and through its inbox while it flushes (every
/// millisecond here) or applies: both kinds of commit interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_subscribers_resuming_during_concurrent_publishes_see_each_entry_once_in_order() {
    let relaxed = Durability::Relaxed {
        flush_interval: Duration::from_millis(1),
    };
    // More rounds than strict's: a misordered dispatch needs the two kinds
    // of commit to meet, which a round does not always bring about.
    for round in 0..20 {
        resume_during_concurrent_publishes(round, relaxed).await;
    }
}

/// A live subscriber sees every relaxed commit once and in log order, while
/// publishers commit on their own tasks and through the committer's inbox
/// (its flush, every millisecond here, sends them there) at once: a batch
/// the committer queues after an inline commit must not be dispatched
/// before it (a subscriber's group drops an entry that comes after a later
/// one, so a misordered dispatch is a lost update).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn relaxed_inline_and_committed_batches_are_dispatched_in_log_order() {
    const PUBLISHERS: usize = 16;
    const EACH: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.durability = Durability::Relaxed {
        flush_interval: Duration::from_millis(1),
    };
    let log = Arc::new(DurableLog::open(config).unwrap());
    // Room for every entry: a subscriber left behind by the publishers on a
    // loaded machine is not evicted as too slow.
    let hub = hub_builder(Arc::clone(&log))
        .queue_capacity(PUBLISHERS * EACH)
        .build();
    let matcher = hub.matcher("match", MatcherType::Exact, TOPIC).unwrap();
    let mut s = hub
        .subscribe(vec![matcher], Grants::none(), Resume::Live)
        .await
        .unwrap();
    let publishers = spawn_publishers(&hub, PUBLISHERS, EACH);
    let total = (PUBLISHERS * EACH) as u64;
    let mut positions = Vec::new();
    while positions.last() != Some(&total) {
        let position = next_entry(&mut s).await.position();
        assert!(
            positions.last().is_none_or(|last| position == last + 1),
            "position {position} after {:?}: no gap, no duplicate, in order",
            positions.last()
        );
        positions.push(position);
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    assert_eq!(positions.len() as u64, total);
    log.close().expect("the log closes cleanly");
}

async fn resume_during_concurrent_publishes(round: usize, durability: Durability) {
    const PUBLISHERS: usize = 4;
    const EACH: usize = 60;
    const HISTORY: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.durability = durability;
    let log = Arc::new(DurableLog::open(config).unwrap());
    let hub = hub_on(Arc::clone(&log));
    for i in 0..HISTORY {
        hub.publish(Update::new(TOPIC, "x").with_id(format!("h{i}")))
            .await
            .unwrap();
    }
    let total = HISTORY + (PUBLISHERS * EACH) as u64;
    let publishers = spawn_publishers(&hub, PUBLISHERS, EACH);
    // Resume from the history, and from ids committed while the others are
    // still publishing: replay `(cursor, P]` then live, with commits and
    // dispatches going on at every step.
    let mut subscribers = Vec::new();
    for j in 0..4u64 {
        let hub = hub.clone();
        subscribers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(j * 5)).await;
            let cursor = format!("h{}", j * 5);
            (j * 5 + 1, resume_and_collect(&hub, &cursor, total).await)
        }));
    }
    for (p, k) in [(0, 5), (1, 20), (2, 40), (3, 55)] {
        let hub = hub.clone();
        let log = Arc::clone(&log);
        subscribers.push(tokio::spawn(async move {
            let cursor = format!("p{p}-{k}");
            let mut at = None;
            while at.is_none() {
                at = log.find(&cursor).await.unwrap();
                tokio::task::yield_now().await;
            }
            (at.unwrap(), resume_and_collect(&hub, &cursor, total).await)
        }));
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    for subscriber in subscribers {
        let (cursor_at, (after, positions)) = subscriber.await.unwrap();
        assert_eq!(
            after, cursor_at,
            "round {round}: the first entry follows the cursor"
        );
        assert_eq!(
            positions,
            (cursor_at + 1..=total).collect::<Vec<_>>(),
            "round {round}: no gap, no duplicate, in order"
        );
    }
    log.close().expect("the log closes cleanly");
}

/// Polls `future` to completion on this thread, outside any async runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn dispatch_goes_on_without_a_runtime_and_after_the_one_that_started_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(DurableLog::open(StoreConfig::new(dir.path())).unwrap());
    let hub = hub_on(Arc::clone(&log));
    let publish = |id: &str| hub.publish(Update::new(TOPIC, "x").with_id(id));
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let mut s = first.block_on(async {
        let matcher = hub.matcher("match", MatcherType::Exact, TOPIC).unwrap();
        let s = hub
            .subscribe(vec![matcher], Grants::none(), Resume::Live)
            .await
            .unwrap();
        // Starts the dispatcher task on this runtime.
        publish("one").await.unwrap();
        s
    });
    drop(first);
    // No runtime: the committer dispatches.
    block_on(publish("two")).unwrap();
    // A current-thread runtime gets no task: the committer dispatches.
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current.block_on(publish("three")).unwrap();
    let second = runtime();
    second.block_on(async {
        // A new task on this runtime.
        publish("four").await.unwrap();
        publish("five").await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(next_entry(&mut s).await.id().to_owned());
        }
        assert_eq!(ids, ["one", "two", "three", "four", "five"]);
    });
    // From outside any runtime while the task runs on `second`.
    block_on(publish("six")).unwrap();
    second.block_on(async { assert_eq!(next_entry(&mut s).await.id(), "six") });
    drop(current);
    log.close().expect("the log closes cleanly");
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
    retention_by_count(Durability::Strict).await;
}

/// Relaxed commits made by publishers reach redb, and retention, too.
#[tokio::test]
async fn relaxed_retention_by_count_keeps_the_newest() {
    retention_by_count(Durability::Relaxed {
        flush_interval: Duration::from_millis(100),
    })
    .await;
}

async fn retention_by_count(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.durability = durability;
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
async fn a_reused_id_resolves_to_its_earliest_retained_use_after_the_first_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_entries: Some(3),
        ..Retention::default()
    };
    let log = DurableLog::open(config).unwrap();
    for id in ["dup", "a", "dup", "b", "c"] {
        log.append(entry(id, SystemTime::now())).await.unwrap();
    }
    eventually("count retention", async || {
        ids_after(&log, 0).await == ["dup", "b", "c"]
    })
    .await;
    assert_eq!(
        log.find("dup").await.unwrap(),
        Some(3),
        "the retained use, not none"
    );
    assert_eq!(log.find("a").await.unwrap(), None);
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
    // The shape counts applied entries only, so it is read together with
    // what a reader sees: equal counts mean nothing is left to apply.
    eventually("size retention", async || {
        let kept = ids_after(&log, 0).await;
        let shape = log.shape().unwrap();
        shape.bytes <= 1000 && shape.entries == kept.len() as u64
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
async fn retention_by_size_keeps_the_newest_update_whatever_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_bytes: Some(100),
        ..Retention::default()
    };
    let log = DurableLog::open(config).unwrap();
    let large = |id: &str| {
        Entry::encode(
            Update::new(TOPIC, "x".repeat(5000)),
            id.into(),
            SystemTime::now(),
        )
        .unwrap()
    };
    log.append(large("first")).await.unwrap();
    log.append(large("second")).await.unwrap();
    eventually("size retention", async || {
        ids_after(&log, 0).await == ["second"] && log.shape().unwrap().entries == 1
    })
    .await;
    // Retention runs again with nothing new: the newest stays.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(ids_after(&log, 0).await, ["second"]);
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
    // Waiting on the shape alone races: it counts applied entries, and e5
    // may still be committed but unapplied while e3 and e4 are applied.
    eventually("retention", async || {
        ids_after(&log, 0).await == ["e4", "e5"]
    })
    .await;
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

/// In the child process: runs `appends` on a multi-threaded runtime, then
/// aborts while what it returns (the log) is still alive; a drop would
/// close the log cleanly.
fn append_then_abort<T>(appends: impl std::future::Future<Output = T>) -> ! {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _alive = runtime.block_on(appends);
    std::process::abort();
}

/// Runs `test` again in a child process with `var` naming a fresh data
/// directory, which the child fills and then aborts in; returns the directory.
fn abort_in_child(test: &str, var: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env(var, dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to abort");
    dir
}

/// Set for the child process of the abort test: the data directory it
/// appends to before it aborts.
const ABORT_IN: &str = "HERALD_STORE_TEST_ABORT_IN";
/// How many entries the child appends before it aborts.
const BEFORE_ABORT: u64 = 300;

#[test]
fn strictly_acknowledged_entries_survive_a_power_loss_and_positions_continue() {
    if let Some(dir) = std::env::var_os(ABORT_IN) {
        // The child: acknowledged appends, then death without a close. Part of
        // them concurrently, so batches of several entries are journaled too.
        append_then_abort(async {
            let log = Arc::new(DurableLog::open(StoreConfig::new(&dir)).unwrap());
            // redb as it was made durable at open: what a power loss brings
            // back when its later, unsynced, pages never reached the disk.
            let dir = std::path::Path::new(&dir);
            std::fs::copy(dir.join("log.redb"), dir.join("log.redb.at-open")).unwrap();
            for n in 1..=BEFORE_ABORT / 2 {
                log.append(entry(&format!("e{n}"), SystemTime::now()))
                    .await
                    .unwrap();
            }
            let mut tasks = Vec::new();
            for n in BEFORE_ABORT / 2 + 1..=BEFORE_ABORT {
                let log = Arc::clone(&log);
                tasks.push(tokio::spawn(async move {
                    log.append(entry(&format!("e{n}"), SystemTime::now()))
                        .await
                        .unwrap()
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            log
        });
    }
    let dir = abort_in_child(
        "strictly_acknowledged_entries_survive_a_power_loss_and_positions_continue",
        ABORT_IN,
    );
    // The power loss: redb's writes since open are gone, the synced journal
    // is not.
    std::fs::rename(
        dir.path().join("log.redb.at-open"),
        dir.path().join("log.redb"),
    )
    .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        let ids = ids_after(&log, 0).await;
        assert_eq!(
            ids.len() as u64,
            BEFORE_ABORT,
            "every acknowledged entry is back"
        );
        assert_eq!(log.stats().entries, BEFORE_ABORT);
        assert_eq!(log.find("e1").await.unwrap(), Some(1));
        let last = log.append(entry("after", SystemTime::now())).await.unwrap();
        assert_eq!(last.position(), BEFORE_ABORT + 1, "positions continue");
        log.close().expect("the log closes cleanly");
    });
    // Applied once: a clean restart finds the same entries, not twice.
    runtime.block_on(async {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        assert_eq!(log.stats().entries, BEFORE_ABORT + 1);
        assert_eq!(ids_after(&log, BEFORE_ABORT).await, ["after"]);
    });
}

/// Set for the child process of the damaged-journal test.
const DAMAGE_ABORT_IN: &str = "HERALD_STORE_TEST_DAMAGE_ABORT_IN";

/// A copy of the data directory `from`, to damage.
fn copy_dir(from: &std::path::Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(from).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), to.path().join(file.file_name())).unwrap();
    }
    to
}

#[test]
fn a_crashed_store_whose_journal_is_damaged_or_gone_is_refused_not_opened_without_it() {
    if let Some(dir) = std::env::var_os(DAMAGE_ABORT_IN) {
        append_then_abort(async {
            let log = DurableLog::open(StoreConfig::new(&dir)).unwrap();
            for n in 1..=BEFORE_ABORT {
                log.append(entry(&format!("e{n}"), SystemTime::now()))
                    .await
                    .unwrap();
            }
            log
        });
    }
    let crashed = abort_in_child(
        "a_crashed_store_whose_journal_is_damaged_or_gone_is_refused_not_opened_without_it",
        DAMAGE_ABORT_IN,
    );
    let journal = |dir: &tempfile::TempDir| dir.path().join("log.journal");

    // One byte of an early, synced record: every later acknowledged entry
    // would be dropped with it.
    let flipped = copy_dir(crashed.path());
    let mut bytes = std::fs::read(journal(&flipped)).unwrap();
    bytes[200] ^= 0xff;
    std::fs::write(journal(&flipped), &bytes).unwrap();
    let error = open_error(flipped.path());
    assert!(error.contains("log.journal is damaged"), "{error}");
    assert!(
        error.contains("the acknowledged updates between them would be lost"),
        "{error}"
    );

    let gone = copy_dir(crashed.path());
    std::fs::remove_file(journal(&gone)).unwrap();
    let error = open_error(gone.path());
    assert!(
        error.contains("log.journal is damaged: it is missing after an unclean shutdown"),
        "{error}"
    );

    let cut = copy_dir(crashed.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(journal(&cut))
        .unwrap()
        .set_len(10)
        .unwrap();
    let error = open_error(cut.path());
    assert!(
        error.contains("it is 10 bytes after an unclean shutdown"),
        "{error}"
    );

    // Emptied: the journal is grown before an epoch is committed, so an
    // empty one was not merely never written.
    let emptied = copy_dir(crashed.path());
    std::fs::write(journal(&emptied), b"").unwrap();
    let error = open_error(emptied.path());
    assert!(
        error.contains("log.journal is damaged: it is empty after an unclean shutdown"),
        "{error}"
    );

    // Not a file at all: said as such, not as a journal cut short.
    let replaced = copy_dir(crashed.path());
    std::fs::remove_file(journal(&replaced)).unwrap();
    std::fs::create_dir(journal(&replaced)).unwrap();
    let error = open_error(replaced.path());
    assert!(
        error.contains("log.journal") && error.contains("is not a file"),
        "{error}"
    );

    // Untouched, every acknowledged entry comes back.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = DurableLog::open(StoreConfig::new(crashed.path())).unwrap();
        assert_eq!(log.stats().entries, BEFORE_ABORT);
    });
}

/// Set for the child process of the refused-start test.
const REFUSED_ABORT_IN: &str = "HERALD_STORE_TEST_REFUSED_ABORT_IN";
/// How many entries that child appends before it aborts.
const BEFORE_REFUSED: u64 = 20;

/// Opens the store in `dir` twice, each expected to be refused; returns the
/// first refusal, once the second is seen to be the same.
fn refused_twice(dir: &std::path::Path, what: &str) -> String {
    let first = open_error(dir);
    let second = open_error(dir);
    assert_eq!(
        second, first,
        "{what}: the next start is refused the same way"
    );
    first
}

#[test]
fn a_start_refused_for_a_lost_journal_is_refused_again_until_the_journal_is_back() {
    if let Some(dir) = std::env::var_os(REFUSED_ABORT_IN) {
        append_then_abort(async {
            let log = DurableLog::open(StoreConfig::new(&dir)).unwrap();
            for n in 1..=BEFORE_REFUSED {
                log.append(entry(&format!("e{n}"), SystemTime::now()))
                    .await
                    .unwrap();
            }
            log
        });
    }
    let crashed = abort_in_child(
        "a_start_refused_for_a_lost_journal_is_refused_again_until_the_journal_is_back",
        REFUSED_ABORT_IN,
    );
    let journal = crashed.path().join("log.journal");
    let kept = std::fs::read(&journal).unwrap();

    // A refused start repairs log.redb and closes it cleanly: that must not
    // pass for a clean shutdown at the next start, which would open the log
    // without the acknowledged updates.
    std::fs::remove_file(&journal).unwrap();
    let error = refused_twice(crashed.path(), "removed");
    assert!(
        error.contains("log.journal is damaged: it is missing after an unclean shutdown"),
        "{error}"
    );
    assert!(
        std::fs::symlink_metadata(&journal).is_err(),
        "no journal was created in its place"
    );

    std::fs::write(&journal, b"").unwrap();
    let error = refused_twice(crashed.path(), "emptied");
    assert!(
        error.contains("log.journal is damaged: it is empty after an unclean shutdown"),
        "{error}"
    );
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0, "nor grown");
    std::fs::remove_file(&journal).unwrap();

    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("log.journal");
    std::os::unix::fs::symlink(&target, &journal).unwrap();
    let error = refused_twice(crashed.path(), "linked to nothing");
    assert!(
        error.contains(
            "log.journal is damaged: it is a symbolic link to nothing after an unclean shutdown"
        ),
        "{error}"
    );
    assert!(!target.exists(), "nothing was written through the link");
    std::fs::remove_file(&journal).unwrap();

    // Put back, every acknowledged update is there, once.
    std::fs::write(&journal, &kept).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let expected: Vec<String> = (1..=BEFORE_REFUSED).map(|n| format!("e{n}")).collect();
    runtime.block_on(async {
        let log = DurableLog::open(StoreConfig::new(crashed.path())).unwrap();
        assert_eq!(ids_after(&log, 0).await, expected);
        log.close().expect("the log closes cleanly");
    });
    // Closed cleanly, the store holds them all: the journal is no longer
    // needed, and its loss is no damage.
    std::fs::remove_file(&journal).unwrap();
    runtime.block_on(async {
        let log = DurableLog::open(StoreConfig::new(crashed.path())).unwrap();
        assert_eq!(ids_after(&log, 0).await, expected);
        let next = log.append(entry("after", SystemTime::now())).await.unwrap();
        assert_eq!(next.position(), BEFORE_REFUSED + 1, "positions continue");
    });
}

#[tokio::test]
async fn an_id_index_pointing_at_another_record_is_reported_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        for id in ["a", "b", "c"] {
            log.append(entry(id, SystemTime::now())).await.unwrap();
        }
        log.close().expect("the log closes cleanly");
    }
    // Damage the index as a flipped byte would: `c` now points at `a`'s record.
    {
        let ids: redb::MultimapTableDefinition<'_, &str, u64> =
            redb::MultimapTableDefinition::new("ids");
        let db = redb::Database::open(dir.path().join("log.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_multimap_table(ids).unwrap();
            table.remove_all("c").unwrap();
            table.insert("c", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(log.find("b").await.unwrap(), Some(2));
    let error = log.find("c").await.unwrap_err().to_string();
    assert!(
        error.contains("log.redb is damaged: the id index gives position 1 for the id `c`, but the record there has the id `a`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_file_gone_or_emptied_beside_its_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        log.append(entry("a", SystemTime::now())).await.unwrap();
        log.close().expect("the log closes cleanly");
    }
    let store = dir.path().join("log.redb");
    let kept = std::fs::read(&store).unwrap();
    std::fs::write(&store, b"").unwrap();
    let error = open_error(dir.path());
    assert!(
        error.contains("log.redb is damaged: it is empty"),
        "{error}"
    );
    std::fs::remove_file(&store).unwrap();
    let error = open_error(dir.path());
    assert!(
        error.contains("log.redb is damaged: it is missing"),
        "{error}"
    );
    // Nothing was written in its place: put back, it opens with its entry.
    std::fs::write(&store, kept).unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(log.stats().entries, 1);
}

/// Set for the child process of the relaxed abort test: the data directory
/// it appends to before it aborts.
const RELAXED_ABORT_IN: &str = "HERALD_STORE_TEST_RELAXED_ABORT_IN";

/// Relaxed durability promises that a crash of the process loses nothing
/// acknowledged: the journal's writes are in the kernel before the answer,
/// even while the entries wait in memory to be applied to redb.
#[test]
fn relaxed_acknowledged_entries_survive_a_crash_of_the_process() {
    let relaxed = |dir: &std::path::Path| {
        let mut config = StoreConfig::new(dir);
        // Never synced while the child lives.
        config.durability = Durability::Relaxed {
            flush_interval: Duration::from_secs(3600),
        };
        config
    };
    if let Some(dir) = std::env::var_os(RELAXED_ABORT_IN) {
        append_then_abort(async {
            let log = Arc::new(DurableLog::open(relaxed(std::path::Path::new(&dir))).unwrap());
            let mut tasks = Vec::new();
            for n in 1..=BEFORE_ABORT {
                let log = Arc::clone(&log);
                tasks.push(tokio::spawn(async move {
                    log.append(entry(&format!("e{n}"), SystemTime::now()))
                        .await
                        .unwrap()
                }));
                if n % 4 == 0 {
                    for task in tasks.drain(..) {
                        task.await.unwrap();
                    }
                }
            }
            for task in tasks {
                task.await.unwrap();
            }
            log
        });
    }
    let dir = abort_in_child(
        "relaxed_acknowledged_entries_survive_a_crash_of_the_process",
        RELAXED_ABORT_IN,
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = DurableLog::open(relaxed(dir.path())).unwrap();
        let positions: Vec<u64> = log
            .read(0, u64::MAX, ReadLimit::entries(usize::MAX))
            .await
            .unwrap()
            .iter()
            .map(|e| e.position())
            .collect();
        assert_eq!(
            positions,
            (1..=BEFORE_ABORT).collect::<Vec<_>>(),
            "every acknowledged entry is back, once, in order"
        );
        let mut ids = ids_after(&log, 0).await;
        ids.sort_by_key(|id| id[1..].parse::<u64>().unwrap());
        let expected: Vec<String> = (1..=BEFORE_ABORT).map(|n| format!("e{n}")).collect();
        assert_eq!(ids, expected, "each appended entry, none lost");
        let last = log.append(entry("after", SystemTime::now())).await.unwrap();
        assert_eq!(last.position(), BEFORE_ABORT + 1, "positions continue");
        log.close().expect("the log closes cleanly");
    });
}

#[tokio::test]
async fn a_closed_log_refuses_appends_and_keeps_what_it_acknowledged() {
    let relaxed = Durability::Relaxed {
        flush_interval: Duration::from_secs(3600),
    };
    for durability in [Durability::Strict, relaxed] {
        let dir = tempfile::tempdir().unwrap();
        let config = |durability| {
            let mut config = StoreConfig::new(dir.path());
            config.durability = durability;
            config
        };
        let log = DurableLog::open(config(durability)).unwrap();
        log.append(entry("kept", SystemTime::now())).await.unwrap();
        log.close().expect("the log closes cleanly");
        let refused = log
            .append(entry("late", SystemTime::now()))
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("the log is closed"),
            "{durability:?}: {refused}"
        );
        drop(log);
        let log = DurableLog::open(config(durability)).unwrap();
        assert_eq!(ids_after(&log, 0).await, ["kept"], "{durability:?}");
    }
}

#[tokio::test]
async fn a_store_of_the_format_before_the_journal_opens_and_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        log.append(entry("old", SystemTime::now())).await.unwrap();
        log.close().expect("the log closes cleanly");
    }
    // What a build before the journal left: its marker, no journal.
    std::fs::write(dir.path().join("VERSION"), "herald-log 1\n").unwrap();
    std::fs::remove_file(dir.path().join(herald_store::JOURNAL_FILE)).unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(ids_after(&log, 0).await, ["old"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("VERSION")).unwrap(),
        format!("{}\n", herald_store::FORMAT_MARKER)
    );
}

#[tokio::test]
async fn a_store_of_the_format_before_barriers_opens_and_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        log.append(entry("old", SystemTime::now())).await.unwrap();
        log.close().expect("the log closes cleanly");
    }
    std::fs::write(dir.path().join("VERSION"), "herald-log 2\n").unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(ids_after(&log, 0).await, ["old"]);
    assert_eq!(herald_store::FORMAT_MARKER, "herald-log 4");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("VERSION")).unwrap(),
        "herald-log 4\n"
    );
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
    let error = DurableLog::open(StoreConfig::new(dir.path())).unwrap_err();
    assert!(
        matches!(&error, StoreError::Damaged { path, .. } if path.ends_with("log.redb")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_store_already_open_is_in_use_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let first = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    first
        .append(entry("kept", SystemTime::now()))
        .await
        .unwrap();
    let error = DurableLog::open(StoreConfig::new(dir.path())).unwrap_err();
    assert!(
        matches!(&error, StoreError::Locked { path, .. } if path.ends_with("log.redb")),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("is in use") && !message.contains("damaged"),
        "{message}"
    );
    // Nothing was touched: the first log goes on, and its update is kept.
    first.close().expect("the log closes cleanly");
    drop(first);
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(ids_after(&log, 0).await, ["kept"]);
}

/// A data directory that is a symbolic link loop, or a link to nothing,
/// is named as such, not as a file that exists.
#[tokio::test]
async fn a_data_directory_behind_a_broken_symbolic_link_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let looped = dir.path().join("loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let error = open_error(&looped);
    assert!(error.contains("symbolic links"), "{error}");
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let error = open_error(&dangling);
    assert!(error.contains("is a symbolic link to nothing"), "{error}");
}

#[tokio::test]
async fn a_data_directory_that_is_a_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"not a directory").unwrap();
    let error = DurableLog::open(StoreConfig::new(&file)).unwrap_err();
    assert!(
        matches!(&error, StoreError::Io { path, .. } if *path == file),
        "{error:?}"
    );
    assert!(error.to_string().contains("is not a directory"), "{error}");
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
async fn a_store_holding_a_log_without_its_marker_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    log.append(entry("a", SystemTime::now())).await.unwrap();
    log.close().unwrap();
    drop(log);
    std::fs::remove_file(dir.path().join("VERSION")).unwrap();
    let error = open_error(dir.path());
    assert!(
        error.contains("version marker is missing") && error.contains("holds a log"),
        "{error}"
    );
}

/// The marker is written once the store is whole: a first start stopped
/// before that (killed by a supervisor, say) held nothing, and the next
/// start finishes it instead of refusing the directory for good.
#[tokio::test]
async fn a_first_start_cut_short_is_finished_by_the_next() {
    let marker = |dir: &tempfile::TempDir| std::fs::read_to_string(dir.path().join("VERSION"));
    // Stopped after creating the store, before the marker.
    let created = tempfile::tempdir().unwrap();
    drop(DurableLog::open(StoreConfig::new(created.path())).unwrap());
    std::fs::remove_file(created.path().join("VERSION")).unwrap();
    let log = DurableLog::open(StoreConfig::new(created.path())).unwrap();
    log.append(entry("a", SystemTime::now())).await.unwrap();
    assert_eq!(ids_after(&log, 0).await, ["a"]);
    assert_eq!(marker(&created).unwrap().trim(), "herald-log 4");

    // Stopped while redb was writing its new file, and with the marker
    // torn by an older herald, which wrote it first.
    for version in [None, Some("")] {
        let torn = tempfile::tempdir().unwrap();
        std::fs::write(torn.path().join("log.redb"), vec![0u8; 73_728]).unwrap();
        if let Some(version) = version {
            std::fs::write(torn.path().join("VERSION"), version).unwrap();
        }
        let log = DurableLog::open(StoreConfig::new(torn.path())).unwrap();
        log.append(entry("b", SystemTime::now())).await.unwrap();
        assert_eq!(ids_after(&log, 0).await, ["b"]);
        assert_eq!(marker(&torn).unwrap().trim(), "herald-log 4");
        // Set aside, never deleted.
        assert_eq!(
            std::fs::read(torn.path().join("log.redb.incomplete"))
                .unwrap()
                .len(),
            73_728
        );
    }

    // Set aside twice: the first one is kept too.
    let twice = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        std::fs::write(twice.path().join("log.redb"), vec![0u8; 73_728]).unwrap();
        drop(DurableLog::open(StoreConfig::new(twice.path())).unwrap());
        std::fs::remove_file(twice.path().join("VERSION")).unwrap();
        std::fs::remove_file(twice.path().join("log.journal")).unwrap();
    }
    for aside in ["log.redb.incomplete", "log.redb.incomplete.1"] {
        assert!(twice.path().join(aside).exists(), "{aside}");
    }

    // Larger than a new store: a damaged log, refused rather than set aside.
    let larger = tempfile::tempdir().unwrap();
    std::fs::write(larger.path().join("log.redb"), vec![0u8; 2 << 20]).unwrap();
    let error = open_error(larger.path());
    assert!(error.contains("log.redb is damaged"), "{error}");
    assert!(!larger.path().join("log.redb.incomplete").exists());
}

/// redb commits an epoch before the journal holds any record of it: a
/// journal of a later epoch than the store's means the store went back in
/// time (an older copy restored, a repair to an older commit), and its
/// acknowledged records must not be taken for stale ones.
#[tokio::test]
async fn a_store_older_than_its_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    log.append(entry("a", SystemTime::now())).await.unwrap();
    log.close().unwrap();
    drop(log);
    let older = std::fs::read(dir.path().join("log.redb")).unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    log.append(entry("b", SystemTime::now())).await.unwrap();
    log.close().unwrap();
    drop(log);
    std::fs::write(dir.path().join("log.redb"), older).unwrap();
    let error = open_error(dir.path());
    assert!(
        error.contains("log.redb is damaged") && error.contains("later epoch"),
        "{error}"
    );
}

/// A damaged page can make a scan skip records or stop short without an
/// error of redb's: the store's counters say which positions it holds, and
/// a replay that misses one says so instead of passing part of the history
/// off as all of it.
#[tokio::test]
async fn a_replay_missing_positions_the_store_holds_is_an_error() {
    const ENTRIES: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("entries");
    let dir = tempfile::tempdir().unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    for n in 1..=10 {
        log.append(entry(&format!("e{n}"), SystemTime::now()))
            .await
            .unwrap();
    }
    log.close().unwrap();
    drop(log);
    let remove = |positions: &[u64]| {
        let db = redb::Database::open(dir.path().join("log.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut entries = txn.open_table(ENTRIES).unwrap();
            for position in positions {
                entries.remove(position).unwrap();
            }
        }
        txn.commit().unwrap();
    };
    let read_from = async |after: u64| {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        let read = log
            .read(after, 10, ReadLimit::entries(usize::MAX))
            .await
            .map(|entries| entries.len());
        log.close().unwrap();
        read
    };
    assert_eq!(read_from(0).await.unwrap(), 10);
    remove(&[5]);
    let error = read_from(0).await.unwrap_err().to_string();
    assert!(
        error.contains("positions 5 to 5 are missing") && error.contains("log.redb"),
        "{error}"
    );
    // Past the gap, the rest reads as before.
    assert_eq!(read_from(5).await.unwrap(), 5);
    remove(&[8, 9]);
    let error = read_from(7).await.unwrap_err().to_string();
    assert!(error.contains("positions 8 to 9 are missing"), "{error}");
}

#[test]
fn errors_are_typed() {
    let error = StoreError::Damaged {
        path: "x/log.redb".into(),
        reason: "bad".into(),
    };
    assert_eq!(error.to_string(), "x/log.redb is damaged: bad");
}

/// The topics each of the entries `topic_read_fixture` appends has.
fn fixture_topics(i: usize) -> Vec<String> {
    let mut topics = vec![format!("urn:{}", ["a", "b", "c"][i % 3])];
    if i.is_multiple_of(7) {
        topics.push("urn:d".into());
    }
    topics
}

/// Appends `n` entries with `fixture_topics`, concurrently (as publishers
/// do), so that the store holds most and the tail the newest.
async fn topic_read_fixture(log: &DurableLog, n: usize) {
    use futures_util::StreamExt;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let topics = fixture_topics(i);
            let mut update = Update::new(topics[0].clone(), format!("{i}"));
            for topic in &topics[1..] {
                update = update.with_topic(topic.clone());
            }
            if i % 5 == 0 {
                update = update.private();
            }
            let entry = Entry::encode(update, format!("id-{i}"), SystemTime::now()).unwrap();
            log.append(entry)
        })
        .buffered(64)
        .for_each(|appended| {
            appended.unwrap();
            std::future::ready(())
        })
        .await;
}

/// A relaxed log in `dir` with 10,000 entries of `topic_read_fixture`:
/// more than the committer leaves out of the topic index (8,192), so that
/// reads go through the index, the stored entries past it, and the tail.
async fn ten_thousand_entries(dir: &std::path::Path) -> DurableLog {
    let mut config = StoreConfig::new(dir);
    config.durability = Durability::Relaxed {
        flush_interval: Duration::from_millis(50),
    };
    let log = DurableLog::open(config).unwrap();
    topic_read_fixture(&log, 10_000).await;
    log
}

/// The ids of the entries after `after` with one of `topics`, read with
/// `read_topics` in batches of `limit`, checking that each batch makes
/// progress and ends where the next starts.
async fn ids_by_topic(
    log: &DurableLog,
    after: u64,
    topics: &[&str],
    limit: ReadLimit,
) -> Vec<String> {
    let topics: Arc<[Arc<str>]> = topics.iter().map(|t| Arc::from(*t)).collect();
    let head = log.head();
    let mut ids = Vec::new();
    let mut after = after;
    while after < head {
        let read = log
            .read_topics(after, head, Arc::clone(&topics), limit)
            .expect("the durable log reads by topic")
            .await
            .unwrap();
        assert!(read.through > after, "no progress after {after}");
        assert!(read.through <= head);
        assert!(read.entries.len() <= limit.entries);
        for entry in &read.entries {
            assert!(entry.position() > after && entry.position() <= read.through);
        }
        ids.extend(read.entries.iter().map(|e| e.id().to_owned()));
        after = read.through;
    }
    ids
}

/// What a scan of every entry finds for `topics`: what the index must find.
async fn ids_by_scan(log: &DurableLog, after: u64, topics: &[&str]) -> Vec<String> {
    log.read(after, u64::MAX, ReadLimit::entries(usize::MAX))
        .await
        .unwrap()
        .iter()
        .filter(|e| e.topics().iter().any(|t| topics.contains(&&**t)))
        .map(|e| e.id().to_owned())
        .collect()
}

/// A replay for exact topics reads only their entries, from the store and
/// from the tail alike, in batches bounded in entries and bytes, finding
/// what a scan of every entry finds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_by_topic_find_what_a_scan_finds_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = ten_thousand_entries(dir.path()).await;
    for topics in [
        &["urn:a"][..],
        &["urn:b", "urn:d"],
        &["urn:d"],
        &["urn:none"],
    ] {
        for after in [0, 1234, 9000, 9999] {
            let expected = ids_by_scan(&log, after, topics).await;
            for limit in [
                ReadLimit::entries(1),
                ReadLimit::entries(100),
                ReadLimit::entries(512),
                ReadLimit {
                    entries: 512,
                    bytes: 300,
                },
            ] {
                // One entry at a time only near the end: it is slow.
                if limit.entries == 1 && after < 9000 {
                    continue;
                }
                assert_eq!(
                    ids_by_topic(&log, after, topics, limit).await,
                    expected,
                    "{topics:?} after {after} in batches of {limit:?}"
                );
            }
        }
    }
    // And once the store holds them all, after a restart.
    log.close().unwrap();
    drop(log);
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    let expected = ids_by_scan(&log, 0, &["urn:c"]).await;
    assert_eq!(expected.len(), 3333);
    assert_eq!(
        ids_by_topic(&log, 0, &["urn:c"], ReadLimit::entries(512)).await,
        expected
    );
}

/// Entries discarded by retention leave the topic index with them.
#[tokio::test]
async fn reads_by_topic_see_only_what_retention_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_entries: Some(500),
        ..Retention::default()
    };
    let log = DurableLog::open(config.clone()).unwrap();
    // Past what the committer leaves unindexed, so that indexed entries
    // are discarded.
    topic_read_fixture(&log, 10_000).await;
    // Retention runs after commits and on its own tick.
    for _ in 0..200 {
        if log.stats().entries == 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log.stats().entries, 500);
    let expected = ids_by_scan(&log, 0, &["urn:a", "urn:d"]).await;
    assert!(!expected.is_empty());
    assert_eq!(
        ids_by_topic(&log, 0, &["urn:a", "urn:d"], ReadLimit::entries(64)).await,
        expected
    );
    // Once all indexed: a key left by a discarded entry would be damage.
    log.close().unwrap();
    drop(log);
    let log = DurableLog::open(config).unwrap();
    assert_eq!(
        ids_by_topic(&log, 0, &["urn:a", "urn:d"], ReadLimit::entries(64)).await,
        expected
    );
}

/// Changes the topic index of the closed store in `dir` through redb
/// itself, as an older herald or damage would; `change` gets the table and
/// the store's hash of a topic.
fn change_topic_index(
    dir: &std::path::Path,
    change: impl FnOnce(&mut redb::Table<'_, (u64, u64), ()>, &dyn Fn(&str) -> u64),
) {
    use redb::ReadableTable;
    use std::hash::Hasher;
    let db = redb::Database::open(dir.join(herald_store::STORE_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        let half = |name: &str| meta.get(name).unwrap().unwrap().value();
        let key = (half("topics_key_0"), half("topics_key_1"));
        let hash = move |topic: &str| {
            let mut hasher = siphasher::sip::SipHasher13::new_with_keys(key.0, key.1);
            hasher.write(topic.as_bytes());
            hasher.finish()
        };
        drop(meta);
        let mut table = txn
            .open_table(redb::TableDefinition::<(u64, u64), ()>::new("topics"))
            .unwrap();
        change(&mut table, &hash);
    }
    txn.commit().unwrap();
}

/// A store of the format before the topic index (whose index an older
/// herald left missing or stale) has its index built at its first start,
/// then its marker rewritten.
#[tokio::test]
async fn a_store_of_the_format_before_the_topic_index_gets_one_built() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        topic_read_fixture(&log, 300).await;
        log.close().unwrap();
    }
    change_topic_index(dir.path(), |table, hash| {
        table.retain(|_, ()| false).unwrap();
        // A key an older herald's retention would have left behind.
        table.insert((hash("urn:a"), 10_000), ()).unwrap();
    });
    std::fs::write(dir.path().join("VERSION"), "herald-log 3\n").unwrap();
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("VERSION")).unwrap(),
        "herald-log 4\n"
    );
    for topics in [&["urn:a"][..], &["urn:b", "urn:d"]] {
        let expected = ids_by_scan(&log, 0, topics).await;
        assert!(!expected.is_empty());
        assert_eq!(
            ids_by_topic(&log, 0, topics, ReadLimit::entries(64)).await,
            expected
        );
    }
}

/// A key of the topic index that points at a record without the topic (a
/// hash collision, or damage) is skipped; one that points at no record is
/// damage, and a read by topic says so rather than replay less.
#[tokio::test]
async fn a_topic_index_key_is_checked_against_its_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        topic_read_fixture(&log, 30).await;
        log.close().unwrap();
    }
    let expected = {
        let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
        ids_by_scan(&log, 0, &["urn:x"]).await
    };
    assert!(expected.is_empty());
    change_topic_index(dir.path(), |table, hash| {
        for position in 1..=30 {
            table.insert((hash("urn:x"), position), ()).unwrap();
        }
    });
    let log = DurableLog::open(StoreConfig::new(dir.path())).unwrap();
    assert_eq!(
        ids_by_topic(&log, 0, &["urn:x"], ReadLimit::entries(8)).await,
        expected
    );
    log.close().unwrap();
    drop(log);
    // Retention discards the oldest and their keys, but not the keys that
    // no topic of theirs explains: those now point at no record, damage.
    let mut config = StoreConfig::new(dir.path());
    config.retention = Retention {
        max_entries: Some(20),
        ..Retention::default()
    };
    {
        let log = DurableLog::open(config.clone()).unwrap();
        for _ in 0..200 {
            if log.stats().entries == 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(log.stats().entries, 20);
        log.close().unwrap();
    }
    let log = DurableLog::open(config).unwrap();
    let read = log
        .read_topics(
            0,
            log.head(),
            Arc::from([Arc::from("urn:x")]),
            ReadLimit::entries(64),
        )
        .unwrap()
        .await;
    let error = read.unwrap_err().to_string();
    assert!(
        error.contains("topic index gives position 1 for one of the topics urn:x")
            && error.contains("no record is there"),
        "{error}"
    );
}

/// A filtered read (a replay whose matchers are not all exact topics) keeps
/// what its filter keeps, from the store and the tail, deciding on topics
/// and privacy; and looks at 4,096 stored records at most per read, so that
/// a read's turn stays short however few it keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_reads_keep_what_the_filter_keeps_a_bounded_look_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = ten_thousand_entries(dir.path()).await;
    let head = log.head();
    let all = log
        .read(0, head, ReadLimit::entries(usize::MAX))
        .await
        .unwrap();
    for (name, wanted) in [
        (
            "public urn:a",
            Arc::new(|topics: &[&str], private: bool| topics.contains(&"urn:a") && !private)
                as herald_hub::EntryFilter,
        ),
        ("private", Arc::new(|_: &[&str], private: bool| private)),
        ("nothing", Arc::new(|_: &[&str], _: bool| false)),
    ] {
        for after in [0, 9000] {
            let expected: Vec<String> = all
                .iter()
                .filter(|e| e.position() > after)
                .filter(|e| {
                    let topics: Vec<&str> = e.topics().iter().map(|t| &**t).collect();
                    wanted(&topics, e.is_private())
                })
                .map(|e| e.id().to_owned())
                .collect();
            for limit in [ReadLimit::entries(100), ReadLimit::entries(512)] {
                let mut ids = Vec::new();
                let mut at = after;
                while at < head {
                    let read = log
                        .read_matching(at, head, Arc::clone(&wanted), limit)
                        .await
                        .unwrap();
                    assert!(read.through > at, "{name}: no progress after {at}");
                    // The tail holds 1,024 entries at most: from 0, a read
                    // meets 4,096 stored records before it.
                    assert!(
                        read.through - at <= 4096 || (at > 0 && read.through == head),
                        "{name}: looked from {at} through {} in one read",
                        read.through
                    );
                    assert!(read.entries.len() <= limit.entries);
                    ids.extend(read.entries.iter().map(|e| e.id().to_owned()));
                    at = read.through;
                }
                assert_eq!(
                    ids, expected,
                    "{name} after {after} in batches of {limit:?}"
                );
            }
        }
    }
}
