//! Reconciliation over loopback: event ids, `Last-Event-ID` and
//! `last_event_id`, `earliest`, duplicate ids, `Mercure-Last-Event-ID`, and
//! gap-free, duplicate-free replay while a publisher is publishing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

const TOPIC: &str = "https://example.com/books/1";

fn q() -> String {
    format!("match={}", enc(TOPIC))
}

async fn publish_ids(hub: &TestHub, ids: &[&str]) {
    for id in ids {
        publish_ok(hub, &[("topic", TOPIC), ("id", id), ("data", id)]).await;
    }
}

#[tokio::test]
async fn every_event_carries_an_id() {
    let hub = start_default().await;
    let mut stream = subscribe(&hub, &q()).await;
    publish_ok(&hub, &[("topic", TOPIC), ("data", "generated")]).await;
    publish_ok(
        &hub,
        &[("topic", TOPIC), ("id", "given"), ("data", "given")],
    )
    .await;
    publish_ok(&hub, &[("topic", TOPIC), ("type", "typed"), ("data", "")]).await;
    let events = [
        stream.event().await,
        stream.event().await,
        stream.event().await,
    ];
    assert!(events[0].last_event_id.starts_with('#'));
    assert_eq!(events[1].last_event_id, "given");
    let blocks = event_blocks(&stream.raw);
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    for block in &blocks {
        assert!(
            block.lines().any(|line| line.starts_with("id:")),
            "an event without id: {block:?}"
        );
    }
    // The third event has its own generated id, not the previous one.
    assert!(events[2].last_event_id.starts_with('#'));
    assert_ne!(events[2].last_event_id, events[0].last_event_id);
}

#[tokio::test]
async fn last_event_id_header_replays_every_later_event() {
    let hub = start_default().await;
    publish_ids(&hub, &["a", "b", "c", "d"]).await;
    publish_ok(&hub, &[("topic", "urn:other"), ("id", "x")]).await;
    let mut stream = open(get(&hub, &q()).header("last-event-id", "b")).await;
    assert_eq!(stream.header("mercure-last-event-id").as_deref(), Some("b"));
    assert_eq!(stream.ids(2).await, ["c", "d"]);
    stream.assert_quiet(Duration::from_millis(200)).await;
    // Then live updates follow.
    publish_ids(&hub, &["e"]).await;
    assert_eq!(stream.ids(1).await, ["e"]);
}

#[tokio::test]
async fn an_iri_id_sent_back_in_utf8_by_a_browser_resumes() {
    let hub = start_default().await;
    let ids = [
        "https://example.com/événements/1",
        "https://example.com/événements/2",
    ];
    publish_ids(&hub, &ids).await;
    // A browser writes the last event ID into the header as UTF-8 bytes.
    let value = reqwest::header::HeaderValue::from_bytes(ids[0].as_bytes()).expect("bytes");
    let mut stream = open(get(&hub, &q()).header("last-event-id", value)).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some(ids[0])
    );
    assert_eq!(stream.ids(1).await, [ids[1]]);
    // Bytes that are not UTF-8 are refused, naming the header.
    let bad = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").expect("bytes");
    let (_, body) = refused(
        get(&hub, &q()).header("last-event-id", bad),
        reqwest::StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        body.contains("the Last-Event-ID header is not valid UTF-8"),
        "{body}"
    );
}

#[tokio::test]
async fn last_event_id_parameter_replays_every_later_event() {
    let hub = start_default().await;
    publish_ids(&hub, &["a", "b", "c"]).await;
    let mut stream = subscribe(&hub, &format!("{}&last_event_id=a", q())).await;
    assert_eq!(stream.header("mercure-last-event-id").as_deref(), Some("a"));
    assert_eq!(stream.ids(2).await, ["b", "c"]);
    // The header takes precedence over the parameter.
    let mut stream =
        open(get(&hub, &format!("{}&last_event_id=a", q())).header("last-event-id", "b")).await;
    assert_eq!(stream.header("mercure-last-event-id").as_deref(), Some("b"));
    assert_eq!(stream.ids(1).await, ["c"]);
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_most_recent_id_replays_nothing() {
    let hub = start_default().await;
    publish_ids(&hub, &["a", "b"]).await;
    let mut stream = open(get(&hub, &q()).header("last-event-id", "b")).await;
    assert_eq!(stream.header("mercure-last-event-id").as_deref(), Some("b"));
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn earliest_replays_the_whole_history() {
    let hub = start_default().await;
    publish_ids(&hub, &["a", "b", "c"]).await;
    let mut stream = subscribe(&hub, &format!("{}&last_event_id=earliest", q())).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    assert_eq!(stream.ids(3).await, ["a", "b", "c"]);
    let mut stream = open(get(&hub, &q()).header("last-event-id", "earliest")).await;
    assert_eq!(stream.ids(3).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_duplicate_id_resolves_to_its_earliest_occurrence() {
    let hub = start_default().await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "dup"), ("data", "first")]).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "a"), ("data", "a")]).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "dup"), ("data", "second")]).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "b"), ("data", "b")]).await;
    let mut stream = open(get(&hub, &q()).header("last-event-id", "dup")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("dup")
    );
    assert_eq!(stream.data(3).await, ["a", "second", "b"]);
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn mercure_last_event_id_is_earliest_for_an_unknown_id() {
    let hub = start_default().await;
    // Empty history.
    let stream = open(get(&hub, &q()).header("last-event-id", "nope")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    publish_ids(&hub, &["a", "b"]).await;
    let mut stream = open(get(&hub, &q()).header("last-event-id", "nope")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    // The hub sends everything it has, so no data is silently lost.
    assert_eq!(stream.ids(2).await, ["a", "b"]);
}

#[tokio::test]
async fn mercure_last_event_id_is_absent_without_a_requested_id() {
    let hub = start_default().await;
    publish_ids(&hub, &["a"]).await;
    let mut stream = subscribe(&hub, &q()).await;
    assert_eq!(stream.header("mercure-last-event-id"), None);
    stream.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_discarded_id_resumes_from_the_earliest_retained_event() {
    let mut config = config();
    config.log.max_entries = 3;
    let hub = start(config).await;
    publish_ids(&hub, &["a", "b", "c", "d", "e"]).await;
    let mut stream = open(get(&hub, &q()).header("last-event-id", "a")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    assert_eq!(stream.ids(3).await, ["c", "d", "e"]);
}

#[tokio::test]
async fn replay_and_live_have_no_gap_and_no_duplicate_under_concurrent_publishing() {
    const TOTAL: usize = 500;
    let hub = Arc::new(start_default().await);
    let id = |i: usize| format!("e{i:03}");
    let published = Arc::new(AtomicUsize::new(0));

    let publisher = tokio::spawn({
        let hub = Arc::clone(&hub);
        let published = Arc::clone(&published);
        async move {
            let token = hub.publisher();
            for i in 0..TOTAL {
                let id = id(i);
                let response = publish(
                    &hub,
                    Some(&token),
                    &[("topic", TOPIC), ("id", &id), ("data", &id)],
                )
                .await;
                assert_eq!(response.status(), reqwest::StatusCode::OK);
                published.store(i + 1, Ordering::SeqCst);
            }
        }
    });

    let wait_for = |n: usize| {
        let published = Arc::clone(&published);
        async move {
            tokio::time::timeout(WAIT * 3, async {
                while published.load(Ordering::SeqCst) < n {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .expect("the publisher makes progress");
        }
    };

    // Subscribers join at different points, each resuming from a known id,
    // while updates keep coming.
    let mut readers = Vec::new();
    let mut live = None;
    for (join_at, resume) in [(50, 10), (150, 149), (250, 0), (350, 200), (450, 449)] {
        wait_for(join_at).await;
        if join_at == 250 {
            let stream = subscribe(&hub, &q()).await;
            // Every update published after this point must reach it.
            live = Some((stream, published.load(Ordering::SeqCst)));
        }
        let stream = open(get(&hub, &q()).header("last-event-id", id(resume))).await;
        assert_eq!(stream.header("mercure-last-event-id"), Some(id(resume)));
        readers.push((resume + 1, stream));
    }
    wait_for(100).await;
    let earliest = open(get(&hub, &q()).header("last-event-id", "earliest")).await;
    readers.push((0, earliest));
    let (mut live, joined_after) = live.expect("the live subscriber joined");

    tokio::time::timeout(WAIT * 6, publisher)
        .await
        .expect("the publisher finishes")
        .expect("the publisher succeeds");

    for (first, mut stream) in readers {
        let expected: Vec<String> = (first..TOTAL).map(id).collect();
        let ids = stream.ids(expected.len()).await;
        assert_eq!(ids, expected, "resuming before {first}");
        stream.assert_quiet(Duration::from_millis(100)).await;
    }
    // The live-only subscriber got a contiguous tail ending with the last update.
    let mut tail = Vec::new();
    loop {
        match live.next_within(Duration::from_millis(300)).await {
            Next::Event(event) => tail.push(event.last_event_id),
            Next::Timeout => break,
            Next::End => panic!("the live stream ended"),
        }
    }
    let first: usize = tail
        .first()
        .map_or(TOTAL, |id| id[1..].parse().expect("a numbered id"));
    assert!(first <= joined_after, "{first} > {joined_after}");
    let expected: Vec<String> = (first..TOTAL).map(id).collect();
    assert_eq!(tail, expected);
}

#[tokio::test]
async fn a_duplicate_id_resolves_to_its_earliest_retained_occurrence() {
    let mut config = config();
    config.log.max_entries = 3;
    let hub = start(config).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "dup"), ("data", "first")]).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "a"), ("data", "a")]).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "dup"), ("data", "second")]).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "b"), ("data", "b")]).await;
    // The first `dup` is discarded; the second one is still in the history.
    let mut stream = open(get(&hub, &q()).header("last-event-id", "dup")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("dup")
    );
    assert_eq!(stream.data(1).await, ["b"]);
    stream.assert_quiet(Duration::from_millis(200)).await;
    // Once both are gone, the id is unknown.
    publish_ids(&hub, &["c", "d"]).await;
    let stream = open(get(&hub, &q()).header("last-event-id", "dup")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
}

#[tokio::test]
async fn an_empty_last_event_id_asks_for_live_updates_and_the_cursor_they_start_after() {
    let hub = start_default().await;
    // The spec requires the field whenever the request has an id: with
    // nothing before, the cursor is `earliest`.
    let stream = open(get(&hub, "match=*&last_event_id=")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    drop(stream);
    publish_ok(&hub, &[("topic", TOPIC), ("id", "before")]).await;
    let mut newest = "before".to_owned();
    for (round, request) in [
        get(&hub, "match=*").header("last-event-id", ""),
        get(&hub, "match=*&last_event_id="),
        // An empty header does not hide a parameter with an id.
        get(&hub, "match=*&last_event_id=before").header("last-event-id", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let mut stream = open(request).await;
        let id = format!("after-{round}");
        if round < 2 {
            assert_eq!(
                stream.header("mercure-last-event-id").as_deref(),
                Some(newest.as_str()),
                "round {round}"
            );
            publish_ok(&hub, &[("topic", TOPIC), ("id", &id)]).await;
            assert_eq!(
                stream.ids(1).await,
                std::slice::from_ref(&id),
                "no replay of `{newest}`"
            );
        } else {
            assert_eq!(
                stream.header("mercure-last-event-id").as_deref(),
                Some("before")
            );
            assert_eq!(stream.ids(2).await, ["after-0", "after-1"]);
        }
        newest = id;
    }
}
