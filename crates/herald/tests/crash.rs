//! Nothing acknowledged is lost: the real `herald serve`, on its default durable
//! log, is killed with SIGKILL at random moments while a publisher publishes
//! and a subscriber follows; after every restart the subscriber resumes with
//! its last event id.

mod hub_process;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use herald_client::{Backoff, EventSource, Item, Publisher, Update};
use herald_token::claims::Action;
use hub_process::{TOPIC, start, token};

const KILLS: usize = 20;

/// A small deterministic generator for kill delays (xorshift).
struct Dice(u64);

impl Dice {
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// Follows the hub at `address` from `last_id` until the connection is lost,
/// recording every event's data; returns the new last id.
async fn follow(
    address: &str,
    last_id: Option<String>,
    received: &mut Vec<u64>,
    until: Option<u64>,
) -> Option<String> {
    let url = format!("http://{address}/.well-known/mercure?match={TOPIC}")
        .parse()
        .unwrap();
    let mut builder = EventSource::builder(url)
        .header(
            "Authorization",
            format!("Bearer {}", token(Action::Subscribe)),
        )
        .backoff(Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ));
    if let Some(id) = &last_id {
        builder = builder.last_event_id(id.clone());
    }
    let mut events = builder.build().unwrap();
    let mut last_id = last_id;
    while let Some(item) = events.next().await {
        match item {
            Ok(Item::Open { .. }) => {}
            Ok(Item::Event(event)) => {
                received.push(event.data.parse().expect("numeric data"));
                last_id = Some(event.last_event_id);
                if until.is_some_and(|n| received.last() == Some(&n)) {
                    break;
                }
            }
            // The hub was killed: this connection is over; the next hub has a new port.
            Err(_) => break,
        }
    }
    last_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_update_survives_sigkill_exactly_once_in_order() {
    let data = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut dice = Dice(seed | 1);
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut received: Vec<u64> = Vec::new();
    // The first subscription asks for the whole history, so it cannot miss
    // updates published before it registered.
    let mut last_id: Option<String> = Some("earliest".into());
    let mut next = 0u64;

    for round in 0..KILLS {
        let (mut hub, address) = start(data.path()).await;
        let subscriber = {
            let address = address.clone();
            let last_id = last_id.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let id = follow(&address, last_id, &mut got, None).await;
                (id, got)
            })
        };
        let acks = Arc::new(AtomicUsize::new(0));
        let publisher = {
            let address = address.clone();
            let start_at = next;
            let acks = Arc::clone(&acks);
            tokio::spawn(async move {
                let hub = format!("http://{address}/.well-known/mercure")
                    .parse()
                    .unwrap();
                let publisher = Publisher::new(hub)
                    .with_token(token(Action::Publish))
                    .with_timeout(Duration::from_secs(5));
                let mut acked = Vec::new();
                let mut n = start_at;
                loop {
                    let outcome = publisher.publish(&Update::new(TOPIC, n.to_string())).await;
                    n += 1;
                    match outcome {
                        Ok(_) => {
                            acked.push(n - 1);
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => return (acked, n),
                    }
                }
            })
        };
        // Kill at a random moment once this round has made progress, so a
        // slow machine cannot turn the test into twenty empty rounds.
        tokio::time::timeout(Duration::from_secs(20), async {
            while acks.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("a publish is acknowledged within 20 s of the hub starting");
        tokio::time::sleep(Duration::from_millis(dice.between(0, 400))).await;
        hub.start_kill().unwrap(); // SIGKILL
        hub.wait().await.unwrap();

        let (acked, after) = tokio::time::timeout(Duration::from_secs(10), publisher)
            .await
            .expect("the publisher notices the dead hub")
            .unwrap();
        let (id, got) = tokio::time::timeout(Duration::from_secs(10), subscriber)
            .await
            .expect("the subscriber notices the dead hub")
            .unwrap();
        assert!(
            !acked.is_empty() || round > 0,
            "round {round}: nothing was acknowledged"
        );
        acknowledged.extend(acked);
        received.extend(got);
        next = after;
        if id.is_some() {
            last_id = id;
        }
    }

    // A last start: the subscriber catches up on everything it missed.
    let (_hub, address) = start(data.path()).await;
    if let Some(&last) = acknowledged.last()
        && received.last().is_none_or(|r| *r < last)
    {
        tokio::time::timeout(
            Duration::from_secs(20),
            follow(&address, last_id, &mut received, Some(last)),
        )
        .await
        .expect("the subscriber catches up within 20 s");
    }

    eprintln!(
        "{} updates acknowledged, {} received across {KILLS} SIGKILLs",
        acknowledged.len(),
        received.len()
    );
    assert!(
        acknowledged.len() > KILLS,
        "only {} updates acknowledged",
        acknowledged.len()
    );
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "received out of order or twice: {received:?}"
    );
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|n| received.binary_search(n).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never received: {missing:?}"
    );
}
