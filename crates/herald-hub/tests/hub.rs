//! The hub's guarantees, exercised through its library API.

use std::sync::Arc;
use std::time::Duration;

use herald_hub::{Grants, Hub, MatcherType, Resume, SubscribeGrant, Subscription, Update};

const TOPIC: &str = "https://example.com/books/1";

fn hub() -> Hub {
    Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .build()
}

async fn subscribe(hub: &Hub, topic: &str, grants: Arc<Grants>, resume: Resume) -> Subscription {
    let matcher = hub.matcher("match", MatcherType::Exact, topic).unwrap();
    hub.subscribe(vec![matcher], grants, resume).await.unwrap()
}

async fn next_id(s: &mut Subscription) -> String {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an entry within 5 s")
        .unwrap()
        .expect("subscription still open")
        .id()
        .to_owned()
}

fn reader_of(hub: &Hub, topic: &str) -> Arc<Grants> {
    Arc::new(Grants {
        publish: vec![],
        subscribe: vec![SubscribeGrant {
            topics: vec![hub.matcher("match", MatcherType::Exact, topic).unwrap()],
            payload: None,
        }],
        payload: None,
    })
}

#[tokio::test]
async fn a_live_subscriber_receives_matching_updates_only() {
    let hub = hub();
    let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::Live).await;
    hub.publish(Update::new("https://example.com/other", "x").with_id("a"))
        .await
        .unwrap();
    hub.publish(Update::new(TOPIC, "y").with_id("b"))
        .await
        .unwrap();
    assert_eq!(next_id(&mut s).await, "b");
}

#[tokio::test]
async fn the_frame_is_encoded_once_with_the_generated_id() {
    let hub = hub();
    let entry = hub
        .publish(
            Update::new(TOPIC, "line 1\nline 2")
                .with_event_type("book")
                .with_retry(10),
        )
        .await
        .unwrap();
    assert!(
        entry.id()[1..].parse::<u64>().is_ok() && entry.id().starts_with('#'),
        "a sequence id: {}",
        entry.id()
    );
    let frame = std::str::from_utf8(entry.frame()).unwrap();
    assert_eq!(
        frame,
        format!(
            "event: book\nretry: 10\nid: {}\ndata: line 1\ndata: line 2\n\n",
            entry.id()
        )
    );
}

#[tokio::test]
async fn private_updates_reach_only_granted_subscribers_live_and_replayed() {
    let hub = hub();
    let mut anonymous = subscribe(&hub, TOPIC, Grants::none(), Resume::Live).await;
    let mut reader = subscribe(&hub, TOPIC, reader_of(&hub, TOPIC), Resume::Live).await;
    let mut other_reader = subscribe(
        &hub,
        TOPIC,
        reader_of(&hub, "https://example.com/x"),
        Resume::Live,
    )
    .await;
    hub.publish(Update::new(TOPIC, "secret").with_id("p1").private())
        .await
        .unwrap();
    hub.publish(Update::new(TOPIC, "public").with_id("p2"))
        .await
        .unwrap();
    assert_eq!(next_id(&mut reader).await, "p1");
    assert_eq!(next_id(&mut anonymous).await, "p2", "p1 was skipped");
    assert_eq!(next_id(&mut other_reader).await, "p2", "p1 was skipped");

    let mut replayed = subscribe(&hub, TOPIC, Grants::none(), Resume::Earliest).await;
    assert_eq!(
        next_id(&mut replayed).await,
        "p2",
        "replay re-checks authorization"
    );
    let mut replayed = subscribe(&hub, TOPIC, reader_of(&hub, TOPIC), Resume::Earliest).await;
    assert_eq!(next_id(&mut replayed).await, "p1");
}

#[tokio::test]
async fn a_private_update_is_readable_through_an_alternate_topic_grant() {
    let hub = hub();
    let mine = "https://example.com/users/42/books/1";
    let mut s = subscribe(&hub, TOPIC, reader_of(&hub, mine), Resume::Live).await;
    hub.publish(
        Update::new(TOPIC, "x")
            .with_topic(mine)
            .with_id("alt")
            .private(),
    )
    .await
    .unwrap();
    assert_eq!(next_id(&mut s).await, "alt");
}

#[tokio::test]
async fn resuming_replays_everything_after_the_id_then_goes_live() {
    let hub = hub();
    for i in 1..=5 {
        hub.publish(Update::new(TOPIC, "x").with_id(format!("e{i}")))
            .await
            .unwrap();
    }
    let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("e2".into())).await;
    assert_eq!(s.resumed_after(), Some("e2"));
    hub.publish(Update::new(TOPIC, "x").with_id("e6"))
        .await
        .unwrap();
    for expected in ["e3", "e4", "e5", "e6"] {
        assert_eq!(next_id(&mut s).await, expected);
    }
}

#[tokio::test]
async fn an_unknown_id_replays_all_retained_and_says_earliest() {
    let hub = Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .memory_log_capacity(3)
    .build();
    for i in 1..=5 {
        hub.publish(Update::new(TOPIC, "x").with_id(format!("e{i}")))
            .await
            .unwrap();
    }
    let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("e1".into())).await;
    assert_eq!(s.resumed_after(), Some("earliest"), "e1 was discarded");
    for expected in ["e3", "e4", "e5"] {
        assert_eq!(next_id(&mut s).await, expected);
    }
}

#[tokio::test]
async fn a_duplicate_id_resolves_to_its_earliest_use() {
    let hub = hub();
    for id in ["a", "dup", "b", "dup", "c"] {
        hub.publish(Update::new(TOPIC, "x").with_id(id))
            .await
            .unwrap();
    }
    let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("dup".into())).await;
    for expected in ["b", "dup", "c"] {
        assert_eq!(next_id(&mut s).await, expected);
    }
}

#[tokio::test]
async fn a_duplicate_id_resolves_to_its_earliest_retained_use() {
    let hub = Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .memory_log_capacity(4)
    .build();
    // The first `dup` is discarded by the last publication; the two later ones remain.
    for id in ["dup", "a", "dup", "dup", "b"] {
        hub.publish(Update::new(TOPIC, "x").with_id(id))
            .await
            .unwrap();
    }
    let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("dup".into())).await;
    assert_eq!(s.resumed_after(), Some("dup"));
    for expected in ["dup", "b"] {
        assert_eq!(next_id(&mut s).await, expected);
    }
    // Discarding the second promotes the third.
    for id in ["c", "d"] {
        hub.publish(Update::new(TOPIC, "x").with_id(id))
            .await
            .unwrap();
    }
    let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("dup".into())).await;
    for expected in ["b", "c", "d"] {
        assert_eq!(next_id(&mut s).await, expected);
    }
    // Once every `dup` is gone, the id is unknown.
    hub.publish(Update::new(TOPIC, "x").with_id("e"))
        .await
        .unwrap();
    let s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("dup".into())).await;
    assert_eq!(s.resumed_after(), Some("earliest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_live_join_without_gap_or_duplicate_while_publishing() {
    for round in 0..20 {
        let hub = hub();
        for i in 0..50 {
            hub.publish(Update::new(TOPIC, "x").with_id(format!("{i}")))
                .await
                .unwrap();
        }
        let publisher = {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 50..400 {
                    hub.publish(Update::new(TOPIC, "x").with_id(format!("{i}")))
                        .await
                        .unwrap();
                    if i % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("9".into())).await;
        let mut received = Vec::new();
        while received.len() < 390 {
            received.push(next_id(&mut s).await.parse::<u32>().unwrap());
        }
        publisher.await.unwrap();
        let expected: Vec<u32> = (10..400).collect();
        assert_eq!(received, expected, "round {round}");
    }
}

#[tokio::test]
async fn a_subscriber_that_does_not_keep_up_is_disconnected_without_delaying_others() {
    let hub = Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .queue_capacity(4)
    .build();
    let mut slow = subscribe(&hub, TOPIC, Grants::none(), Resume::Live).await;
    let mut fast = subscribe(&hub, TOPIC, Grants::none(), Resume::Live).await;
    for i in 0..10 {
        hub.publish(Update::new(TOPIC, "x").with_id(format!("{i}")))
            .await
            .unwrap();
        assert_eq!(next_id(&mut fast).await, i.to_string());
    }
    let mut got = Vec::new();
    while let Some(entry) = slow.next().await.unwrap() {
        got.push(entry.id().to_owned());
    }
    assert_eq!(
        got,
        ["0", "1", "2", "3"],
        "what was queued is delivered, then the end"
    );
    assert!(slow.was_too_slow());
    assert_eq!(
        hub.stats()
            .slow_disconnects
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        hub.stats()
            .connected
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn urlpattern_and_wildcard_subscriptions_receive_once() {
    let hub = hub();
    let matchers = vec![
        hub.matcher(
            "match_urlpattern",
            MatcherType::UrlPattern,
            "https://example.com/books/:id",
        )
        .unwrap(),
        hub.matcher("match", MatcherType::Exact, "*").unwrap(),
        hub.matcher("match", MatcherType::Exact, TOPIC).unwrap(),
    ];
    let mut s = hub
        .subscribe(matchers, Grants::none(), Resume::Live)
        .await
        .unwrap();
    hub.publish(Update::new(TOPIC, "x").with_id("1"))
        .await
        .unwrap();
    hub.publish(Update::new("urn:other", "x").with_id("2"))
        .await
        .unwrap();
    assert_eq!(next_id(&mut s).await, "1");
    assert_eq!(
        next_id(&mut s).await,
        "2",
        "1 was delivered once despite three matchers"
    );
}

#[tokio::test]
async fn many_url_pattern_subscribers_each_receive_theirs_through_the_path_index() {
    // More patterns than a shard tries one by one (one shard holds them
    // all): a pattern per user, and two with shorter literal paths.
    let hub = Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .shards(1)
    .build();
    let pattern = |hub: &Hub, p: &str| {
        hub.matcher("match_urlpattern", MatcherType::UrlPattern, p)
            .unwrap()
    };
    let mut users = Vec::new();
    for user in 0..100 {
        let matcher = pattern(&hub, &format!("https://example.com/users/{user}/*"));
        users.push(
            hub.subscribe(vec![matcher], Grants::none(), Resume::Live)
                .await
                .unwrap(),
        );
    }
    let mut everything = hub
        .subscribe(
            vec![pattern(&hub, "https://*/*")],
            Grants::none(),
            Resume::Live,
        )
        .await
        .unwrap();
    let mut any_user = hub
        .subscribe(
            vec![pattern(&hub, "https://example.com/users/:id/*")],
            Grants::none(),
            Resume::Live,
        )
        .await
        .unwrap();
    for user in [7, 42, 99] {
        hub.publish(
            Update::new(format!("https://example.com/users/{user}/notes/1"), "x")
                .with_id(format!("{user}")),
        )
        .await
        .unwrap();
    }
    hub.publish(Update::new("https://api.example.com/users/7/notes/2", "x").with_id("api"))
        .await
        .unwrap();
    hub.publish(Update::new("https://example.com/books/1", "x").with_id("book"))
        .await
        .unwrap();
    for user in [0, 7, 42, 99] {
        hub.publish(
            Update::new(format!("https://example.com/users/{user}/end"), "x")
                .with_id(format!("end{user}")),
        )
        .await
        .unwrap();
    }
    for user in [7, 42, 99] {
        assert_eq!(next_id(&mut users[user]).await, format!("{user}"));
    }
    // Nothing else reached a user's subscriber before its last update.
    for user in [0, 7, 42, 99] {
        assert_eq!(next_id(&mut users[user]).await, format!("end{user}"));
    }
    for id in [
        "7", "42", "99", "api", "book", "end0", "end7", "end42", "end99",
    ] {
        assert_eq!(next_id(&mut everything).await, id);
    }
    for id in ["7", "42", "99", "end0", "end7", "end42", "end99"] {
        assert_eq!(next_id(&mut any_user).await, id);
    }
}

#[tokio::test]
async fn selector_subscriptions_receive_once_and_are_counted() {
    let hub = hub();
    let selectors = [
        "https://example.com/books/{id}",
        TOPIC,
        "https://example.com/{!x}",
    ];
    let matchers = selectors
        .iter()
        .map(|s| hub.matcher("topic", MatcherType::Selector, s).unwrap())
        .collect();
    let mut s = hub
        .subscribe(matchers, Grants::none(), Resume::Live)
        .await
        .unwrap();
    let stats = || {
        hub.stats()
            .selector_subscriptions
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(stats(), 3);
    for (id, topic) in [
        ("1", TOPIC),
        ("2", "https://example.com/authors/1"),
        ("3", "https://example.com/books/2"),
        ("4", "https://example.com/{!x}"),
        ("5", "https://example.com/books/2/reviews"),
        ("6", "https://example.com/books/3"),
    ] {
        hub.publish(Update::new(topic, "x").with_id(id))
            .await
            .unwrap();
    }
    for expected in ["1", "3", "4", "6"] {
        assert_eq!(next_id(&mut s).await, expected);
    }
    drop(s);
    assert_eq!(stats(), 0);
}

#[tokio::test]
async fn next_ready_drains_what_is_ready_without_waiting_in_order() {
    let hub = hub();
    for id in ["a", "b", "c"] {
        hub.publish(Update::new(TOPIC, id).with_id(id))
            .await
            .unwrap();
    }
    let mut s = subscribe(&hub, TOPIC, Grants::none(), Resume::After("a".into())).await;
    assert!(s.next_ready().is_none(), "nothing is read before next()");
    assert_eq!(next_id(&mut s).await, "b");
    assert_eq!(
        s.next_ready().unwrap().id(),
        "c",
        "the rest of the replay batch"
    );
    assert!(s.next_ready().is_none());
    for id in ["d", "e"] {
        hub.publish(Update::new(TOPIC, id).with_id(id))
            .await
            .unwrap();
    }
    assert_eq!(s.next_ready().unwrap().id(), "d", "queued live entries");
    assert_eq!(s.next_ready().unwrap().id(), "e");
    assert!(s.next_ready().is_none());
    hub.publish(Update::new(TOPIC, "f").with_id("f"))
        .await
        .unwrap();
    assert_eq!(next_id(&mut s).await, "f");
}

#[tokio::test]
async fn subscribers_coming_and_going_on_exact_topics_keep_receiving_theirs() {
    let hub = hub();
    let a = "https://example.com/a";
    let b = "https://example.com/b";
    let both = || {
        vec![
            hub.matcher("match", MatcherType::Exact, a).unwrap(),
            hub.matcher("match", MatcherType::Exact, b).unwrap(),
        ]
    };
    let first_on_a = subscribe(&hub, a, Grants::none(), Resume::Live).await;
    let second_on_a = subscribe(&hub, a, Grants::none(), Resume::Live).await;
    let mut on_both = hub
        .subscribe(both(), Grants::none(), Resume::Live)
        .await
        .unwrap();
    let mut on_b = subscribe(&hub, b, Grants::none(), Resume::Live).await;
    // Every subscriber of `a` leaves, then one comes back.
    drop(first_on_a);
    drop(second_on_a);
    let mut back_on_a = subscribe(&hub, a, Grants::none(), Resume::Live).await;
    hub.publish(Update::new(a, "x").with_id("1")).await.unwrap();
    hub.publish(Update::new(b, "x").with_id("2")).await.unwrap();
    assert_eq!(next_id(&mut back_on_a).await, "1");
    assert_eq!(next_id(&mut on_both).await, "1");
    assert_eq!(next_id(&mut on_both).await, "2");
    assert_eq!(next_id(&mut on_b).await, "2");
    assert!(
        back_on_a.next_ready().is_none(),
        "b is not for a's subscriber"
    );
    assert_eq!(
        hub.stats()
            .exact_subscriptions
            .load(std::sync::atomic::Ordering::Relaxed),
        4,
        "the two that left are counted out"
    );
    // A subscriber resuming on `a` replays only `a`'s update.
    let mut resumed = subscribe(&hub, a, Grants::none(), Resume::Earliest).await;
    assert_eq!(next_id(&mut resumed).await, "1");
    hub.publish(Update::new(a, "x").with_id("3")).await.unwrap();
    assert_eq!(next_id(&mut resumed).await, "3");
}

/// The memory log bounds a read in bytes as the durable log does: the entry
/// that reaches the bound is the last, and there is always one.
#[tokio::test]
async fn memory_log_reads_are_bounded_in_bytes_as_well_as_entries() {
    use herald_hub::{Entry, Log, MemoryLog, ReadLimit};
    let log = MemoryLog::new(100);
    for n in 0..5 {
        let entry = Entry::encode(
            Update::new(TOPIC, "x".repeat(10_000)),
            format!("large{n}"),
            std::time::SystemTime::now(),
        )
        .unwrap();
        log.append(entry).await.unwrap();
    }
    let ids = |entries: Vec<Arc<Entry>>| -> Vec<String> {
        entries.iter().map(|e| e.id().to_owned()).collect()
    };
    let frame = log.read(0, 1, ReadLimit::entries(1)).await.unwrap()[0]
        .frame()
        .len();
    let bounded = ReadLimit {
        entries: 100,
        bytes: frame + 1,
    };
    assert_eq!(
        ids(log.read(1, u64::MAX, bounded).await.unwrap()),
        ["large1", "large2"]
    );
    let tiny = ReadLimit {
        entries: 100,
        bytes: 0,
    };
    assert_eq!(ids(log.read(3, u64::MAX, tiny).await.unwrap()), ["large3"]);
    assert_eq!(
        ids(log.read(0, u64::MAX, ReadLimit::entries(2)).await.unwrap()),
        ["large0", "large1"]
    );
}

/// The memory log keeps the newest entries within its byte bound, the
/// newest always, and counts what it discards.
#[tokio::test]
async fn the_memory_log_is_bounded_in_bytes() {
    use herald_hub::{Entry, Log, MemoryLog, ReadLimit};
    let encode = |n: usize, size: usize| {
        Entry::encode(
            Update::new(TOPIC, "x".repeat(size)),
            format!("e{n}"),
            std::time::SystemTime::now(),
        )
        .unwrap()
    };
    // What one such entry counts for: its frame, topic, id and bookkeeping.
    let probe = MemoryLog::new(1);
    probe.append(encode(0, 1000)).await.unwrap();
    let frame = probe.stats().bytes;
    assert!(frame > encode(0, 1000).frame().len() as u64);
    let log = MemoryLog::new(100).with_max_bytes(3 * frame);
    for n in 0..5 {
        log.append(encode(n, 1000)).await.unwrap();
    }
    let ids = |entries: Vec<Arc<Entry>>| -> Vec<String> {
        entries.iter().map(|e| e.id().to_owned()).collect()
    };
    let all = ReadLimit::entries(usize::MAX);
    assert_eq!(
        ids(log.read(0, u64::MAX, all).await.unwrap()),
        ["e2", "e3", "e4"]
    );
    let stats = log.stats();
    assert_eq!(
        (stats.entries, stats.bytes, stats.discarded),
        (3, 3 * frame, 2)
    );
    assert_eq!(
        log.find("e1").await.unwrap(),
        None,
        "a discarded id is forgotten"
    );
    // An entry larger than the whole bound is kept alone.
    log.append(encode(5, 10_000)).await.unwrap();
    assert_eq!(ids(log.read(0, u64::MAX, all).await.unwrap()), ["e5"]);
    assert_eq!(log.find("e5").await.unwrap(), Some(6));
    log.append(encode(6, 1000)).await.unwrap();
    assert_eq!(ids(log.read(0, u64::MAX, all).await.unwrap()), ["e6"]);
    assert_eq!(log.stats().discarded, 6);

    // Topics count too: 64 topics of 2,000 bytes and one byte of data.
    let topics: Vec<String> = (0..64)
        .map(|n| format!("https://example.com/{n}/{}", "t".repeat(2000)))
        .collect();
    let mut update = Update::new(topics[0].clone(), "x");
    update.topics = topics;
    let wide = Entry::encode(update, "wide".into(), std::time::SystemTime::now()).unwrap();
    let log = MemoryLog::new(100);
    log.append(wide).await.unwrap();
    assert!(log.stats().bytes > 64 * 2000, "{}", log.stats().bytes);
}

/// The memory log's reads by topic find what a read of every entry
/// filtered by topic finds, batch by batch, across evictions, repeated
/// topics, several topics at once and both bounds of a read.
#[tokio::test]
async fn memory_log_reads_by_topic_agree_with_filtered_reads() {
    use herald_hub::{Entry, FilteredRead, Log, MemoryLog, ReadLimit, has_any};
    let topic = |n: usize| format!("https://example.com/t/{n}");
    let log = MemoryLog::new(50);
    for n in 0..120usize {
        // Topic n % 7, sometimes named twice, sometimes with n % 3's too.
        let mut update = Update::new(topic(n % 7), "x".repeat(n % 5 * 100));
        if n % 4 == 0 {
            update = update.with_topic(topic(n % 7));
        }
        if n % 6 == 0 {
            update = update.with_topic(topic(n % 3));
        }
        let entry = Entry::encode(update, format!("e{n}"), std::time::SystemTime::now()).unwrap();
        log.append(entry).await.unwrap();
    }
    let limits = [
        ReadLimit::entries(usize::MAX),
        ReadLimit::entries(3),
        ReadLimit {
            entries: 100,
            bytes: 250,
        },
    ];
    let ids = |entries: &[Arc<Entry>]| -> Vec<String> {
        entries.iter().map(|e| e.id().to_owned()).collect()
    };
    for wanted in [vec![0], vec![2], vec![1, 2], vec![0, 6, 3], vec![9]] {
        let topics: Arc<[Arc<str>]> = wanted.iter().map(|&n| Arc::from(topic(n))).collect();
        let expected: Vec<Arc<Entry>> = log
            .read(0, 200, ReadLimit::entries(usize::MAX))
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| has_any(entry, &topics))
            .collect();
        for limit in limits {
            // Batch by batch, as a replay reads, from before the oldest
            // retained entry (70 were evicted) to past the newest.
            let mut found = Vec::new();
            let mut after = 10;
            loop {
                let FilteredRead { entries, through } = log
                    .read_topics(after, 200, Arc::clone(&topics), limit)
                    .expect("the memory log reads by topic")
                    .await
                    .unwrap();
                assert!(entries.len() <= limit.entries, "{limit:?}");
                found.extend(entries);
                if through >= 200 {
                    break;
                }
                assert!(through > after, "a read moves on");
                after = through;
            }
            assert_eq!(ids(&found), ids(&expected), "{wanted:?} {limit:?}");
        }
    }
}
