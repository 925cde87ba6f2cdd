//! Active subscriptions ("presence"): the index of who is subscribed to what,
//! and the subscription events the hub publishes when that changes.
//!
//! Every matcher of a connection is one subscription, named by the topic
//! `{hub path}/subscriptions/{match_type}/{match}/{subscriber}` where each
//! variable is percent-encoded once (RFC 6570 simple expansion) and the
//! subscriber is a random `urn:uuid:` generated per connection.
//! A subscription made with a pre-draft-08 `topic=` selector keeps that
//! revision's shapes instead: the topic `{hub path}/subscriptions/{topic}/{subscriber}`,
//! a JSON-LD document, and no `event: mercure` field, so the older clients
//! that follow these events keep working.
//!
//! Ordering, which the subscription API relies on:
//! - a subscription enters the index, *then* its `active` event is queued;
//! - it leaves the index, *then* its inactive event is queued;
//! - the API reads the log's last id, *then* takes its snapshot of the index.
//!
//! So every change the snapshot does not show has its event after that id, and
//! a client that replays from it and applies the events in log order converges
//! on the true set. Events are appended by one background task, off the
//! dispatch path and outside every registry lock; within a batch, two events
//! of the same subscription are never appended concurrently, so `active`
//! always precedes its inactive event in the log.
//!
//! The queue between the two is bounded (see [`crate::presence_queue`]): a
//! subscription that ends before its `active` event was taken, and that the
//! API never showed, publishes neither event; a connection whose events would
//! overflow the queue is refused.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::ids::IdGenerator;
use crate::log::Log;
use crate::presence_queue::{EventQueue, EventStats, Full, Record};
use crate::{Entry, Grants, HubError, Matcher, MatcherType, Update};

/// Characters RFC 6570 simple expansion leaves alone: the unreserved set.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `value` once, as a whole (a `%` in it becomes `%25`).
pub fn encode_variable(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// How many queued events the publishing task appends at once; it yields to
/// the runtime between batches so that a storm of connections does not hold a
/// worker thread for long stretches.
const BATCH: usize = 64;

/// One active subscription: one matcher of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSubscription {
    /// The topic (and `id`) of this subscription, relative to the hub's origin.
    pub topic: Box<str>,
    /// The matcher type as the subscriber wrote it.
    pub match_type: MatcherType,
    /// The matcher as the subscriber wrote it.
    pub matcher: Arc<str>,
    /// The hub-generated subscriber identifier, shared by the connection's subscriptions.
    pub subscriber: Arc<str>,
    /// The `payload` of the first `subscribe` grant matching the matcher, as JSON.
    pub payload: Option<Arc<str>>,
}

impl ActiveSubscription {
    /// The subscription document, with `active` as given: draft-08's, or the
    /// older JSON-LD one for a `topic=` selector.
    pub fn document(&self, active: bool) -> String {
        let mut out = String::with_capacity(self.topic.len() * 2 + 128);
        self.write_document(&mut out, active);
        out
    }

    /// Appends the subscription document to `out` (see [`Self::document`]).
    pub fn write_document(&self, out: &mut String, active: bool) {
        if self.match_type == MatcherType::Selector {
            return self.write_legacy_document(out, active, true);
        }
        let _ = write!(
            out,
            "{{\"id\":{},\"type\":\"subscription\",\"match_type\":\"{}\",\"match\":{},\"subscriber\":{},\"active\":{}",
            json(&self.topic),
            self.match_type.name(),
            json(&self.matcher),
            json(&self.subscriber),
            active
        );
        self.write_payload_and_close(out);
    }

    /// Appends the pre-draft-08 JSON-LD document (`type: Subscription`, the
    /// matcher as `topic`) to `out`, with the `@context` member when the
    /// document is not nested in one that has it.
    pub fn write_legacy_document(&self, out: &mut String, active: bool, with_context: bool) {
        if with_context {
            out.push_str("{\"@context\":\"https://mercure.rocks/\",");
        } else {
            out.push('{');
        }
        let _ = write!(
            out,
            "\"id\":{},\"type\":\"Subscription\",\"topic\":{},\"subscriber\":{},\"active\":{}",
            json(&self.topic),
            json(&self.matcher),
            json(&self.subscriber),
            active
        );
        self.write_payload_and_close(out);
    }

    fn write_payload_and_close(&self, out: &mut String) {
        if let Some(payload) = &self.payload {
            out.push_str(",\"payload\":");
            out.push_str(payload);
        }
        out.push('}');
    }
}

/// `s` as a JSON string.
fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

type Key = (MatcherType, Arc<str>);

#[derive(Default)]
struct Shard {
    /// (match type, match) → subscriber → subscription.
    by_matcher: HashMap<Key, HashMap<Arc<str>, Arc<Record>>>,
}

/// The index of active subscriptions and the queue of subscription events.
pub struct Presence {
    prefix: String,
    /// Sharded by subscriber, so connects and disconnects spread over the locks.
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Also counts what the publishing task is done with: a shutdown waits
    /// for every queued event before it closes the log, or the inactive
    /// events of the connections it just ended would find the log closed.
    events: Arc<EventQueue>,
    log: Arc<dyn Log>,
    /// The hub's: events get ids of the scheme its updates get.
    ids: Arc<IdGenerator>,
    started: OnceLock<()>,
}

impl Drop for Presence {
    fn drop(&mut self) {
        // Nothing can queue any more: the publishing task ends once the
        // queue is empty.
        self.events.close();
    }
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Presence {
    pub(crate) fn new(
        namespace_path: &str,
        shards: usize,
        log: Arc<dyn Log>,
        ids: Arc<IdGenerator>,
        max_pending_events: usize,
        max_pending_bytes: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            prefix: format!("{namespace_path}/subscriptions"),
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            events: EventQueue::new(max_pending_events, max_pending_bytes),
            log,
            ids,
            started: OnceLock::new(),
        })
    }

    /// The subscription event queue's counters: pending events, coalesced
    /// subscriptions, refused connections.
    pub fn event_stats(&self) -> EventStats {
        self.events.stats()
    }

    /// Whether a connection of `matchers` subscriptions could be admitted
    /// now; checked before any work is done for it (see [`Self::join`]).
    pub(crate) fn check_room(&self, matchers: usize) -> Result<(), HubError> {
        self.events.has_room(matchers).map_err(overloaded)
    }

    /// The path of the subscription collection, e.g. `/.well-known/mercure/subscriptions`.
    pub fn collection_path(&self) -> &str {
        &self.prefix
    }

    /// The topic of the subscriptions of one matcher (the per-matcher
    /// collection); without the type segment for a pre-draft-08 selector.
    pub fn matcher_topic(&self, match_type: MatcherType, matcher: &str) -> String {
        if match_type == MatcherType::Selector {
            return format!("{}/{}", self.prefix, encode_variable(matcher));
        }
        format!(
            "{}/{}/{}",
            self.prefix,
            match_type.name(),
            encode_variable(matcher)
        )
    }

    /// The topic of one subscription.
    pub fn subscription_topic(
        &self,
        match_type: MatcherType,
        matcher: &str,
        subscriber: &str,
    ) -> String {
        format!(
            "{}/{}",
            self.matcher_topic(match_type, matcher),
            encode_variable(subscriber)
        )
    }

    fn shard(&self, subscriber: &str) -> &Mutex<Shard> {
        let index = usize::try_from(self.hasher.hash_one(subscriber)).unwrap_or(0);
        &self.shards[index % self.shards.len()]
    }

    /// Starts the publishing task on the current runtime, once.
    fn start(&self) {
        self.started.get_or_init(|| {
            tokio::spawn(publish_events(
                Arc::clone(&self.events),
                Arc::clone(&self.log),
                Arc::clone(&self.ids),
            ));
        });
    }

    /// Adds the subscriptions of one connection to the index and queues their
    /// `active` events. Identical (type, matcher) pairs are one subscription.
    ///
    /// Refused ([`HubError::Overloaded`]) when the events would take the
    /// queue past its capacity: the connection must not be accepted then,
    /// since its subscriptions could not be announced.
    pub(crate) fn join(
        self: &Arc<Self>,
        matchers: &[(MatcherType, Matcher)],
        grants: &Grants,
    ) -> Result<Arc<Membership>, HubError> {
        self.start();
        let subscriber: Arc<str> = format!("urn:uuid:{}", uuid::Uuid::new_v4()).into();
        let mut seen = HashSet::new();
        let mut records = Vec::with_capacity(matchers.len());
        for (match_type, matcher) in matchers {
            let source = matcher.source();
            if !seen.insert((*match_type, source)) {
                continue;
            }
            records.push(Record::new(ActiveSubscription {
                topic: self
                    .subscription_topic(*match_type, source, &subscriber)
                    .into(),
                match_type: *match_type,
                matcher: source.into(),
                subscriber: Arc::clone(&subscriber),
                payload: grants.payload_for(source).cloned(),
            }));
        }
        {
            let mut shard = self.shard(&subscriber).lock();
            for record in &records {
                let s = &record.subscription;
                shard
                    .by_matcher
                    .entry((s.match_type, Arc::clone(&s.matcher)))
                    .or_default()
                    .insert(Arc::clone(&subscriber), Arc::clone(record));
            }
            // In the index first, then the event (see the module
            // documentation), under the lock: whoever takes a subscription
            // out of the index, `leave` or `end_all`, then queues its end
            // after its start.
            if let Err(full) = self.events.admit(&records) {
                // Still under the lock: nobody saw them in the index.
                remove(&mut shard, &subscriber, &records);
                return Err(overloaded(full));
            }
        }
        Ok(Arc::new(Membership {
            presence: Arc::clone(self),
            subscriber,
            records: Mutex::new(Some(records)),
        }))
    }

    /// Every active subscription, in no particular order.
    ///
    /// What it returns counts as seen by a client: each one's end is
    /// published even if its start is still queued for the log (pending
    /// subscription events are bounded by [`crate::DEFAULT_MAX_PENDING_EVENTS`]
    /// by default). [`Self::of_matcher`] and [`Self::get`] too.
    pub fn all(&self) -> Vec<Arc<ActiveSubscription>> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            for subscribers in shard.by_matcher.values() {
                out.extend(subscribers.values().map(|r| r.observe()));
            }
        }
        out
    }

    /// The active subscriptions of one matcher, in no particular order.
    pub fn of_matcher(
        &self,
        match_type: MatcherType,
        matcher: &str,
    ) -> Vec<Arc<ActiveSubscription>> {
        let key: Key = (match_type, matcher.into());
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            if let Some(subscribers) = shard.lock().by_matcher.get(&key) {
                out.extend(subscribers.values().map(|r| r.observe()));
            }
        }
        out
    }

    /// One active subscription.
    pub fn get(
        &self,
        match_type: MatcherType,
        matcher: &str,
        subscriber: &str,
    ) -> Option<Arc<ActiveSubscription>> {
        let key: Key = (match_type, matcher.into());
        self.shard(subscriber)
            .lock()
            .by_matcher
            .get(&key)
            .and_then(|s| s.get(subscriber))
            .map(|r| r.observe())
    }

    /// How many subscriptions are active.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .by_matcher
                    .values()
                    .map(HashMap::len)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Whether no subscription is active.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn leave(&self, subscriber: &Arc<str>, records: Vec<Arc<Record>>) {
        // Only what was still in the index ends here: `end_all` may have
        // ended it already.
        let left = remove(&mut self.shard(subscriber).lock(), subscriber, &records);
        // Out of the index first, then the event.
        self.events.end(left);
    }

    /// Ends every subscription still in the index, queueing its inactive
    /// event, as the hub closes: a connection still open then (a stalled
    /// HTTP/2 stream the shutdown could not end in time) would otherwise
    /// leave its subscriptions active forever for a client following the
    /// events. A connection that ends later queues nothing more.
    pub(crate) fn end_all(&self) {
        for shard in &self.shards {
            let ended: Vec<Arc<Record>> = {
                let mut shard = shard.lock();
                shard
                    .by_matcher
                    .drain()
                    .flat_map(|(_, subscribers)| subscribers.into_values())
                    .collect()
            };
            self.events.end(ended);
        }
    }

    /// Blocks (off the runtime) until every event queued so far has been
    /// appended to the log or given up on, or `timeout` has passed; whether
    /// they all were. Coalesced events count as done: they never will be.
    pub fn wait_appended(&self, timeout: Duration) -> bool {
        self.events.wait_appended(timeout)
    }
}

/// Takes `records` of `subscriber` out of a shard; the ones that were in it.
fn remove(shard: &mut Shard, subscriber: &Arc<str>, records: &[Arc<Record>]) -> Vec<Arc<Record>> {
    let mut removed = Vec::with_capacity(records.len());
    for record in records {
        let key = (
            record.subscription.match_type,
            Arc::clone(&record.subscription.matcher),
        );
        if let Some(subscribers) = shard.by_matcher.get_mut(&key) {
            if subscribers.remove(subscriber).is_some() {
                removed.push(Arc::clone(record));
            }
            if subscribers.is_empty() {
                shard.by_matcher.remove(&key);
            }
        }
    }
    removed
}

fn overloaded(full: Full) -> HubError {
    HubError::Overloaded(full.to_string())
}

/// One connection's subscriptions in the index; they end (once) when the
/// connection ends or the registry drops it for being too slow.
pub struct Membership {
    presence: Arc<Presence>,
    subscriber: Arc<str>,
    records: Mutex<Option<Vec<Arc<Record>>>>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("subscriber", &self.subscriber)
            .finish()
    }
}

impl Membership {
    /// The hub-generated subscriber identifier.
    pub fn subscriber(&self) -> &str {
        &self.subscriber
    }

    /// Ends every subscription of the connection; later calls do nothing.
    pub fn end(&self) {
        let records = self.records.lock().take();
        if let Some(records) = records {
            self.presence.leave(&self.subscriber, records);
        }
    }
}

/// Appends queued subscription events to the log, in batches. Two events of
/// one subscription are never in flight together (see [`EventQueue::take`]),
/// so their log order is the order they were queued in.
async fn publish_events(events: Arc<EventQueue>, log: Arc<dyn Log>, ids: Arc<IdGenerator>) {
    while let Some(batch) = events.take(BATCH).await {
        let mut appends = Vec::with_capacity(batch.len());
        let mut appended_bytes = 0;
        for (record, active) in batch {
            let weight = record.weight();
            let record = &record.subscription;
            let entry = match ids.generate(&*log).await {
                Ok(id) => event_entry(record, active, id),
                Err(error) => Err(error),
            };
            match entry {
                Ok(entry) => {
                    appended_bytes += weight;
                    appends.push(log.append(entry));
                }
                Err(error) => {
                    tracing::warn!(%error, topic = %record.topic, "cannot encode a subscription event");
                    events.finished(1, weight);
                }
            }
        }
        let results = futures_util::future::join_all(appends).await;
        for result in &results {
            if let Err(error) = result {
                tracing::warn!(%error, "cannot append a subscription event");
            }
        }
        events.finished(results.len(), appended_bytes);
        tokio::task::yield_now().await;
    }
}

fn event_entry(
    record: &ActiveSubscription,
    active: bool,
    id: String,
) -> Result<Entry, crate::HubError> {
    let update = Update {
        topics: vec![record.topic.to_string()],
        data: record.document(active),
        id: None,
        // Older clients follow subscription events with `onmessage`.
        event_type: (record.match_type != MatcherType::Selector).then(|| "mercure".to_owned()),
        retry: None,
        private: true,
    };
    Entry::encode(update, id, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_encoded_exactly_once() {
        assert_eq!(
            encode_variable("https://example.com/:selector"),
            "https%3A%2F%2Fexample.com%2F%3Aselector"
        );
        assert_eq!(
            encode_variable("urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6"),
            "urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"
        );
        assert_eq!(encode_variable("a%2Fb c?d#e"), "a%252Fb%20c%3Fd%23e");
        assert_eq!(encode_variable("é~_."), "%C3%A9~_.");
    }

    #[test]
    fn the_document_has_every_field_of_the_spec() {
        let record = ActiveSubscription {
            topic: "/.well-known/mercure/subscriptions/exact/a/urn%3Ax".into(),
            match_type: MatcherType::Exact,
            matcher: "a".into(),
            subscriber: "urn:x".into(),
            payload: Some("{\"foo\":\"bar\"}".into()),
        };
        let doc: serde_json::Value = serde_json::from_str(&record.document(false)).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "id": "/.well-known/mercure/subscriptions/exact/a/urn%3Ax",
                "type": "subscription",
                "match_type": "exact",
                "match": "a",
                "subscriber": "urn:x",
                "active": false,
                "payload": {"foo": "bar"},
            })
        );
    }
}
