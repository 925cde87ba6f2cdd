//! `log.ids`: the ids `herald serve` makes for updates published without
//! one, seen by a publisher and by subscribers resuming with them, across a
//! restart on the durable log.

mod hub_process;

use std::time::Duration;

use futures_util::StreamExt;
use herald_client::{EventSource, Item, Publisher, Update};
use herald_token::claims::Action;
use hub_process::{TOPIC, start_with, token};

async fn publish(address: &str, data: &str) -> String {
    let hub = format!("http://{address}/.well-known/mercure")
        .parse()
        .unwrap();
    Publisher::new(hub)
        .with_token(token(Action::Publish))
        .publish(&Update::new(TOPIC, data))
        .await
        .expect("the publish is acknowledged")
}

/// The data of the next `count` events of a subscription at `query`, with a
/// `Last-Event-ID` header when `header` is given.
async fn replay(address: &str, query: &str, header: Option<&str>, count: usize) -> Vec<String> {
    let url = format!("http://{address}/.well-known/mercure?match={TOPIC}{query}")
        .parse()
        .unwrap();
    let mut builder = EventSource::builder(url).header(
        "Authorization",
        format!("Bearer {}", token(Action::Subscribe)),
    );
    if let Some(id) = header {
        builder = builder.last_event_id(id);
    }
    let mut events = builder.build().unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while got.len() < count {
            match events.next().await.expect("the stream goes on") {
                Ok(Item::Event(event)) => got.push(event.data),
                Ok(_) => {}
                Err(e) => panic!("subscription failed: {e}"),
            }
        }
    })
    .await
    .expect("the replayed events arrive within 10 s");
    got
}

fn sequence_number(id: &str) -> u64 {
    id.strip_prefix('#')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{id}` is not a sequence id"))
}

#[tokio::test]
async fn sequence_ids_keep_increasing_across_a_restart_and_resume_subscribers() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("herald.toml");
    std::fs::write(&config, "[log]\nids = \"sequence\"\n").unwrap();
    let config = config.to_str().unwrap().to_owned();

    let (mut hub, address) = start_with(data.path(), &["--config", &config]).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(publish(&address, &n.to_string()).await);
    }
    let numbers: Vec<u64> = ids.iter().map(|id| sequence_number(id)).collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "one more per update: {ids:?}"
    );
    hub.start_kill().unwrap();
    hub.wait().await.unwrap();

    let (_hub, address) = start_with(data.path(), &["--config", &config]).await;
    let after_restart = publish(&address, "3").await;
    assert!(
        sequence_number(&after_restart) > numbers[2],
        "{after_restart} comes after {ids:?}"
    );
    // A subscriber holding an id from before the restart resumes after it,
    // by the header a browser sends and by the query parameter, where the
    // `#` is written %23.
    assert_eq!(
        replay(&address, "", Some(&ids[0]), 3).await,
        ["1", "2", "3"]
    );
    let query = format!("&last_event_id=%23{}", numbers[1]);
    assert_eq!(replay(&address, &query, None, 2).await, ["2", "3"]);
}

#[tokio::test]
async fn uuid_v4_ids_are_random_urns() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("herald.toml");
    std::fs::write(&config, "[log]\nids = \"uuid-v4\"\n").unwrap();
    let (_hub, address) = start_with(data.path(), &["--config", config.to_str().unwrap()]).await;
    for n in 0..3 {
        let id = publish(&address, &n.to_string()).await;
        let uuid = id
            .strip_prefix("urn:uuid:")
            .unwrap_or_else(|| panic!("`{id}` is not a urn:uuid"));
        // The version digit of a UUID: `xxxxxxxx-xxxx-4xxx-…`.
        assert_eq!(uuid.as_bytes()[14], b'4', "{id} is a version 4 UUID");
    }
}
