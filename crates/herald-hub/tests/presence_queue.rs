//! The bounded subscription event queue, through the hub's library API: no
//! sockets, one current-thread runtime, so the appending task runs only when
//! a test lets it (an `.await` that yields).

use std::time::Duration;

use herald_hub::{Grants, Hub, HubError, MatcherType, Resume, Subscription};

fn hub(max_pending_events: usize) -> Hub {
    Hub::builder(
        "https://hub.example.com/.well-known/mercure"
            .parse()
            .unwrap(),
    )
    .subscriptions(true)
    .max_pending_events(max_pending_events)
    .build()
}

async fn subscribe(hub: &Hub, matchers: usize) -> Result<Subscription, HubError> {
    let matchers = (0..matchers)
        .map(|n| {
            hub.matcher(
                "match",
                MatcherType::Exact,
                &format!("https://example.com/{n}"),
            )
            .unwrap()
        })
        .collect();
    hub.subscribe(matchers, Grants::none(), Resume::Live).await
}

/// Lets the appending task run until every queued event is in the log.
async fn drain(hub: &Hub) {
    let presence = hub.presence().unwrap();
    for _ in 0..1000 {
        if presence.event_stats().pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("still pending: {:?}", presence.event_stats());
}

#[tokio::test]
async fn connections_that_end_before_their_events_are_appended_leave_nothing_behind() {
    let hub = hub(1000);
    // Far more events than the queue holds, and none appended meanwhile.
    for _ in 0..200 {
        let subscription = subscribe(&hub, 100).await.expect("never refused");
        drop(subscription);
    }
    let stats = hub.presence().unwrap().event_stats();
    assert_eq!(
        (stats.pending, stats.coalesced, stats.refused),
        (0, 20_000, 0)
    );
    drain(&hub).await;
    assert_eq!(hub.log_stats().entries, 0, "no event for a life nobody saw");
    assert!(hub.presence().unwrap().wait_appended(Duration::ZERO));
}

#[tokio::test]
async fn a_subscription_the_api_listed_publishes_its_start_and_its_end() {
    let hub = hub(1000);
    let subscription = subscribe(&hub, 3).await.unwrap();
    // Listed while its start is still queued: a client reconciling from
    // this answer must see it end.
    assert_eq!(hub.presence().unwrap().all().len(), 3);
    drop(subscription);
    drain(&hub).await;
    assert_eq!(hub.log_stats().entries, 6);
    assert_eq!(hub.presence().unwrap().event_stats().coalesced, 0);
}

#[tokio::test]
async fn a_subscription_whose_start_was_appended_publishes_its_end() {
    let hub = hub(1000);
    let subscription = subscribe(&hub, 3).await.unwrap();
    drain(&hub).await;
    assert_eq!(hub.log_stats().entries, 3);
    drop(subscription);
    drain(&hub).await;
    assert_eq!(hub.log_stats().entries, 6);
}

#[tokio::test]
async fn a_full_queue_refuses_new_subscriptions_until_it_drains() {
    let hub = hub(10);
    let first = subscribe(&hub, 8).await.unwrap();
    let Err(refused) = subscribe(&hub, 3).await else {
        panic!("a subscription past the capacity is refused");
    };
    assert!(matches!(refused, HubError::Overloaded(_)), "{refused:?}");
    assert_eq!(refused.kind(), herald_hub::ErrorKind::Overloaded);
    let presence = hub.presence().unwrap();
    assert_eq!(
        presence.len(),
        8,
        "the refused connection is not in the index"
    );
    assert_eq!(
        hub.stats()
            .connected
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(presence.event_stats().refused, 1);
    drain(&hub).await;
    let second = subscribe(&hub, 3)
        .await
        .expect("room once the backlog drained");
    // `second` ends before its starts are taken: it publishes nothing.
    drop((first, second));
    drain(&hub).await;
    assert_eq!(
        hub.log_stats().entries,
        8 + 8,
        "every appended start has its end"
    );
}
