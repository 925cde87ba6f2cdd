//! The admin listener: every metric moves when its event happens, and the
//! health endpoints tell the truth.

mod common;

use std::time::Duration;

use common::*;
use herald_hub::{Grants, MatcherType, Resume, Update};
use herald_server::Herald;
use reqwest::StatusCode;
use tokio::net::TcpListener;

const TOPIC: &str = "https://example.com/books/1";

/// Serves the admin routes of `herald` on a fresh loopback port.
async fn admin(herald: &Herald) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let routes = herald.admin_router();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    format!("http://{address}")
}

async fn scrape(admin: &str) -> String {
    let response = client()
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The value of the sample named `name` (with its labels, if any, as written).
fn value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (sample, value) = l.rsplit_once(' ')?;
            (sample == name).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no sample `{name}` in:\n{metrics}"))
}

async fn eventually(what: &str, admin: &str, check: impl Fn(&str) -> bool) {
    for _ in 0..100 {
        if check(&scrape(admin).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not seen within 5 s:\n{}", scrape(admin).await);
}

#[tokio::test]
async fn subscriber_and_subscription_gauges_follow_connections() {
    let hub = start_default().await;
    let admin = admin(&hub.herald).await;
    let before = scrape(&admin).await;
    assert_eq!(value(&before, "herald_subscribers"), 0.0);
    let stream = open(get(
        &hub,
        "match=urn%3Aa&match=*&match_urlpattern=https://example.com/:x",
    ))
    .await;
    let during = scrape(&admin).await;
    assert_eq!(value(&during, "herald_subscribers"), 1.0);
    for kind in ["exact", "wildcard", "urlpattern"] {
        assert_eq!(
            value(
                &during,
                &format!("herald_subscriptions{{matcher_type=\"{kind}\"}}")
            ),
            1.0,
            "{kind}"
        );
    }
    // The pattern's compiled expressions, given back when it is dropped.
    assert!(
        value(&during, "herald_url_pattern_bytes") > 20_000.0,
        "{during}"
    );
    drop(stream);
    eventually("the subscriber leaves", &admin, |m| {
        value(m, "herald_subscribers") == 0.0
    })
    .await;
    eventually("the pattern is dropped", &admin, |m| {
        value(m, "herald_url_pattern_bytes") == 0.0
    })
    .await;
}

#[tokio::test]
async fn publishing_moves_the_publish_dispatch_write_and_log_metrics() {
    let hub = start_default().await;
    let admin = admin(&hub.herald).await;
    let mut stream = open(get(&hub, &format!("match={TOPIC}"))).await;
    let before = scrape(&admin).await;
    publish_ok(&hub, &[("topic", TOPIC), ("data", "hello")]).await;
    assert_eq!(stream.data(1).await, ["hello"]);
    let after = scrape(&admin).await;
    for name in [
        "herald_updates_published_total",
        "herald_publish_seconds_count",
        "herald_updates_dispatched_total",
        "herald_publish_to_write_seconds_count",
        "herald_log_entries",
    ] {
        assert_eq!(value(&after, name) - value(&before, name), 1.0, "{name}");
    }
    assert!(
        value(&after, "herald_bytes_written_total") > value(&before, "herald_bytes_written_total")
    );
    assert!(value(&after, "herald_log_bytes") > value(&before, "herald_log_bytes"));
}

#[tokio::test]
async fn the_opening_comment_and_keep_alives_count_as_bytes_written() {
    use futures_util::StreamExt;
    let mut config = config();
    config.subscribers.anonymous = true;
    config.subscribers.heartbeat = Duration::from_millis(50);
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    let response = send(get(&hub, &format!("match={TOPIC}"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Only comments come on this stream: the opening one, then keep-alives.
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    while received.len() < 3 * 3 {
        let chunk = tokio::time::timeout(WAIT, body.next())
            .await
            .expect("comments keep coming")
            .expect("the stream stays open")
            .unwrap();
        received.extend_from_slice(&chunk);
    }
    assert!(received.chunks(3).all(|c| c == b":\n\n"), "{received:?}");
    let written = value(&scrape(&admin).await, "herald_bytes_written_total");
    assert!(
        written >= received.len() as f64,
        "{written} < {}",
        received.len()
    );
}

#[tokio::test]
async fn replays_and_retention_are_counted() {
    let mut config = config();
    config.log.max_entries = 2;
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    for id in ["a", "b", "c"] {
        publish_ok(&hub, &[("topic", TOPIC), ("id", id)]).await;
    }
    let metrics = scrape(&admin).await;
    assert_eq!(value(&metrics, "herald_log_discarded_total"), 1.0);
    assert_eq!(value(&metrics, "herald_log_entries"), 2.0);
    let mut stream = open(get(&hub, &format!("match={TOPIC}")).header("last-event-id", "b")).await;
    assert_eq!(stream.ids(1).await, ["c"]);
    let metrics = scrape(&admin).await;
    assert_eq!(value(&metrics, "herald_replayed_events_total"), 1.0);
    // A replay's age is not a delivery latency.
    assert_eq!(
        value(&metrics, "herald_publish_to_write_seconds_count"),
        0.0
    );
}

#[tokio::test]
async fn the_memory_log_forgets_updates_older_than_max_age() {
    let mut config = config();
    config.log.max_age = Duration::from_secs(1);
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "stale")]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    publish_ok(&hub, &[("topic", TOPIC), ("id", "fresh")]).await;
    // Resuming from the discarded update replays what is still kept, and
    // says so, as with the durable log.
    let mut stream =
        open(get(&hub, &format!("match={TOPIC}")).header("last-event-id", "stale")).await;
    assert_eq!(
        stream.header("mercure-last-event-id").as_deref(),
        Some("earliest")
    );
    assert_eq!(stream.ids(1).await, ["fresh"]);
    let metrics = scrape(&admin).await;
    assert_eq!(value(&metrics, "herald_log_discarded_total"), 1.0);
    assert_eq!(value(&metrics, "herald_log_entries"), 1.0);
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let mut config = config();
    config.limits.max_connections = 1;
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    let _first = open(get(&hub, "match=*")).await;
    let refused = send(get(&hub, "match=*")).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let expired = hub
        .token()
        .publish(&["*"])
        .ttl(Duration::from_secs(1))
        .issued_at(std::time::SystemTime::now() - Duration::from_secs(3600))
        .sign();
    let response = publish(&hub, Some(&expired), &[("topic", TOPIC)]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = publish(&hub, None, &[("topic", TOPIC)]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let metrics = scrape(&admin).await;
    assert_eq!(
        value(
            &metrics,
            "herald_connections_refused_total{reason=\"total\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&metrics, "herald_auth_failures_total{reason=\"expired\"}"),
        1.0
    );
    assert_eq!(
        value(&metrics, "herald_auth_failures_total{reason=\"missing\"}"),
        1.0
    );
}

#[tokio::test]
async fn slow_subscriber_disconnects_are_counted() {
    let mut config = config();
    config.subscribers.queue_capacity = 2;
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    let matcher = hub
        .herald
        .hub()
        .matcher("match", MatcherType::Exact, TOPIC)
        .unwrap();
    // A subscriber that never reads its queue.
    let _stalled = hub
        .herald
        .hub()
        .subscribe(vec![matcher], Grants::none(), Resume::Live)
        .await
        .unwrap();
    for i in 0..5 {
        hub.herald
            .hub()
            .publish(Update::new(TOPIC, format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        value(
            &scrape(&admin).await,
            "herald_slow_subscriber_disconnects_total"
        ),
        1.0
    );
}

#[tokio::test]
async fn healthz_is_always_ok_and_readyz_follows_serving() {
    let hub = start_default().await;
    let admin = admin(&hub.herald).await;
    let health = client()
        .get(format!("{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = client()
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let herald = hub.herald.clone();
    drop(hub); // shuts the server down
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = client()
            .get(format!("{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if status != StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready once shutting down"
    );
    drop(herald);
}

#[tokio::test]
async fn readyz_fails_when_the_data_directory_is_not_writable() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("log");
    let mut config = config();
    config.log.kind = "durable".into();
    config.log.dir = dir.clone();
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    let ready = client()
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "{}",
        ready.text().await.unwrap()
    );
    // The directory disappears (an unmounted volume, an operator's mistake).
    std::fs::remove_dir_all(&dir).unwrap();
    let ready = client()
        .get(format!("{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = ready.text().await.unwrap();
    assert!(
        body.contains("not writable") && body.contains(dir.to_str().unwrap()),
        "{body}"
    );
}

#[tokio::test]
async fn per_address_and_per_subject_refusals_are_counted_by_their_reason() {
    let mut by_address = config();
    by_address.limits.max_connections_per_address = 1;
    let hub = start(by_address).await;
    let url = admin(&hub.herald).await;
    let _first = open(get(&hub, "match=*")).await;
    assert_eq!(
        send(get(&hub, "match=*")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let metrics = scrape(&url).await;
    assert_eq!(
        value(
            &metrics,
            "herald_connections_refused_total{reason=\"address\"}"
        ),
        1.0
    );

    let mut by_subject = config();
    by_subject.limits.max_connections_per_subject = 1;
    let hub = start(by_subject).await;
    let url = admin(&hub.herald).await;
    let token = hub.token().subscribe(&["*"]).subject("alice").sign();
    let _first = open(get(&hub, "match=*").bearer_auth(&token)).await;
    let refused = send(get(&hub, "match=*").bearer_auth(&token)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let metrics = scrape(&url).await;
    assert_eq!(
        value(
            &metrics,
            "herald_connections_refused_total{reason=\"subject\"}"
        ),
        1.0
    );

    let mut by_patterns = config();
    by_patterns.limits.max_pattern_memory_per_address = 1;
    let hub = start(by_patterns).await;
    let url = admin(&hub.herald).await;
    let pattern = get(
        &hub,
        "match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid",
    );
    assert_eq!(send(pattern).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let metrics = scrape(&url).await;
    assert_eq!(
        value(
            &metrics,
            "herald_connections_refused_total{reason=\"address_patterns\"}"
        ),
        1.0
    );
}

/// Opens 300 subscriptions to `TOPIC` (enough that each group's writer
/// takes more than one slice), publishes 20 updates at once (so that they
/// find the writers busy with the ones before), and returns the updates'
/// data with what each subscriber received.
async fn concurrent_burst(hub: &TestHub) -> (Vec<String>, Vec<Vec<String>>) {
    let query = format!("match={}", enc(TOPIC));
    let mut streams = Vec::new();
    for _ in 0..300 {
        streams.push(subscribe(hub, &query).await);
    }
    let data: Vec<String> = (0..20).map(|i| format!("update {i}")).collect();
    futures_util::future::join_all(
        data.iter()
            .map(|d| async move { publish_ok(hub, &[("topic", TOPIC), ("data", d)]).await }),
    )
    .await;
    let mut received = Vec::new();
    for stream in &mut streams {
        received.push(stream.data(data.len()).await);
    }
    (data, received)
}

#[tokio::test]
async fn paced_publishes_are_counted_and_every_subscriber_gets_every_update_in_one_order() {
    let mut config = config();
    config.subscribers.publish_pace = 1;
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    let (data, received) = concurrent_burst(&hub).await;
    let paced = value(&scrape(&admin).await, "herald_paced_publishes_total");
    assert!(paced >= 1.0, "no publish was paced");
    let mut sorted = received[0].clone();
    sorted.sort_by_key(|d| d[7..].parse::<u32>().unwrap());
    assert_eq!(sorted, data, "every update, once");
    assert!(
        received.iter().all(|r| *r == received[0]),
        "every subscriber in the log's order"
    );
}

#[tokio::test]
async fn without_a_publish_pace_no_publish_is_paced() {
    let mut config = config();
    config.subscribers.publish_pace = 0;
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    let (data, received) = concurrent_burst(&hub).await;
    assert!(received.iter().all(|r| r.len() == data.len()));
    assert_eq!(
        value(&scrape(&admin).await, "herald_paced_publishes_total"),
        0.0
    );
}

/// Replays that scan a long stored history take turns at the store: with
/// `log.max_replay_readers = 1` the gauges show one read running and the
/// others waiting, never two running, and a replay waiting its turn still
/// gets every update, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_of_stored_history_take_turns_and_the_gauges_show_it() {
    use futures_util::{StreamExt, TryStreamExt};
    const STORED: usize = 20_000;
    let data = tempfile::tempdir().unwrap();
    let mut config = config();
    config.log.kind = "durable".into();
    config.log.dir = data.path().join("log");
    config.log.durability = "relaxed".into();
    config.log.max_replay_readers = 1;
    let hub = start(config).await;
    let admin = admin(&hub.herald).await;
    let idle = scrape(&admin).await;
    assert_eq!(value(&idle, "herald_log_reads_running"), 0.0);
    assert_eq!(value(&idle, "herald_log_reads_waiting"), 0.0);
    let mut stored: Vec<_> = futures_util::stream::iter(0..STORED)
        .map(|i| hub.herald.hub().publish(Update::new(TOPIC, i.to_string())))
        .buffered(512)
        .try_collect()
        .await
        .unwrap();
    // Concurrent publishes take their places in the order they commit.
    stored.sort_by_key(|entry| entry.position());
    // Subscribers whose URL pattern matches no topic scan the whole
    // history, 512 updates per read, to find none (exact topics would be
    // read from the topic index instead).
    let nothing = format!("match_urlpattern={}", enc("https://nothing.example/*"));
    let _scans = futures_util::future::join_all(
        (0..32).map(|_| open(get(&hub, &nothing).header("last-event-id", "earliest"))),
    )
    .await;
    let mut waiting_seen = false;
    for _ in 0..400 {
        let metrics = scrape(&admin).await;
        let running = value(&metrics, "herald_log_reads_running");
        assert!(running <= 1.0, "{running} reads ran at once:\n{metrics}");
        if value(&metrics, "herald_log_reads_waiting") >= 1.0 && running == 1.0 {
            waiting_seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        waiting_seen,
        "no replay read was ever seen waiting its turn"
    );
    let mut full =
        open(get(&hub, &format!("match={TOPIC}")).header("last-event-id", "earliest")).await;
    let replayed = full.ids(STORED).await;
    let first_wrong = stored
        .iter()
        .zip(&replayed)
        .position(|(entry, id)| entry.id() != id);
    assert_eq!(first_wrong, None, "the replay is not the log, in order");
    eventually("every replay read ended", &admin, |metrics| {
        value(metrics, "herald_log_reads_running") == 0.0
            && value(metrics, "herald_log_reads_waiting") == 0.0
    })
    .await;
}
