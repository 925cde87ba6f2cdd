//! The bounded queue of subscription events between the connections that
//! start and end subscriptions and the task that appends the events to the log.
//!
//! Connections can start and end subscriptions faster than the log takes
//! their events (a client churning connections of many matchers), so an
//! unbounded queue grew without limit. Two things bound it:
//!
//! - coalescing: a subscription that ends while its `active` event is still
//!   queued, untaken by the appender and unseen by the subscription API, had a
//!   life nobody could observe; both its events are dropped;
//! - admission: a connection whose `active` events would take the number of
//!   pending events past the capacity, or their bytes past the byte bound,
//!   is refused ([`Full`]), before it is accepted. An `active: false` event
//!   is never refused: it is owed to whoever saw the `active` one.
//!
//! The byte bound is what holds with long matchers: a pending event keeps
//! its subscription's document fields, a few hundred bytes with short
//! matchers but several KB with matchers of thousands of characters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::presence::ActiveSubscription;

/// The default most pending subscription events: with an append rate of tens
/// of thousands a second, a backlog of a few seconds at most.
pub const DEFAULT_MAX_PENDING_EVENTS: usize = 65_536;

/// The default most bytes of pending subscription events (64 MiB): above
/// the default event bound's with short matchers (about 300 bytes each),
/// the bound that holds with long ones.
pub const DEFAULT_MAX_PENDING_BYTES: u64 = 64 << 20;

/// Tombstones (coalesced `active` events still in the queue) are swept out
/// once there are at least this many and they are half the queue: the
/// appender skips them anyway, but while it waits on a slow append they would
/// otherwise pile up.
const SWEEP_AT: usize = 1024;

/// The `active` event is queued, untaken and unobserved: the subscription's
/// end may still cancel it.
const PENDING: u8 = 0;
/// The `active` event was taken by the appender or the subscription was shown
/// by the API: its end must be published.
const SETTLED: u8 = 1;
/// The subscription ended while [`PENDING`]: neither event is published.
const COALESCED: u8 = 2;

/// One subscription as the index and the queue hold it.
#[derive(Debug)]
pub(crate) struct Record {
    /// What the API shows and the events describe.
    pub(crate) subscription: Arc<ActiveSubscription>,
    stage: AtomicU8,
    /// The bytes one queued event of it counts for.
    weight: u64,
}

impl Record {
    /// The bytes one pending event of this subscription counts for.
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    pub(crate) fn new(subscription: ActiveSubscription) -> Arc<Self> {
        // Its strings and the structures around them, counted as if its own
        // (the matcher and payload may be shared: an overestimate).
        let weight = (subscription.topic.len()
            + subscription.matcher.len()
            + subscription.subscriber.len()
            + subscription.payload.as_deref().map_or(0, str::len)
            + std::mem::size_of::<ActiveSubscription>()
            + std::mem::size_of::<Self>()
            + 64) as u64;
        Arc::new(Self {
            subscription: Arc::new(subscription),
            stage: AtomicU8::new(PENDING),
            weight,
        })
    }

    /// The subscription as shown to a client of the API: from now on its
    /// end is published even if its start is not appended yet, since the
    /// client reconciles the API's answer with the events after its cursor.
    pub(crate) fn observe(&self) -> Arc<ActiveSubscription> {
        let _ = self
            .stage
            .compare_exchange(PENDING, SETTLED, Ordering::AcqRel, Ordering::Acquire);
        Arc::clone(&self.subscription)
    }
}

/// A queued subscription event: the subscription and whether it is active.
pub(crate) type Event = (Arc<Record>, bool);

/// A connection's `active` events did not fit in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the hub is behind on publishing subscription events ({pending} pending, at most {capacity}; \
     {bytes} bytes of them, at most {max_bytes}); try again shortly"
)]
pub struct Full {
    /// Events pending when the connection was refused.
    pub pending: u64,
    /// The capacity of the queue.
    pub capacity: usize,
    /// Bytes of the events pending when the connection was refused.
    pub bytes: u64,
    /// The most bytes of pending events.
    pub max_bytes: u64,
}

/// Counters of the queue, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Events queued or being appended now.
    pub pending: u64,
    /// Bytes of the pending events.
    pub pending_bytes: u64,
    /// Subscriptions whose start and end were both dropped, since start.
    pub coalesced: u64,
    /// Connections refused because the queue was full, since start.
    pub refused: u64,
}

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    /// Coalesced `active` events still in `events`.
    tombstones: usize,
    /// The weights of the pending events: in `events` but tombstones, or
    /// taken and not yet finished.
    bytes: u64,
    /// Events ever admitted; with `done`, what a shutdown waits on.
    queued: u64,
    /// Events appended, given up on, or coalesced away.
    done: u64,
    closed: bool,
}

impl State {
    fn pending(&self) -> u64 {
        self.queued - self.done
    }
}

/// The queue, shared by the presence index and the appending task.
pub(crate) struct EventQueue {
    state: Mutex<State>,
    capacity: usize,
    max_bytes: u64,
    /// Wakes `wait_appended` when `done` moves.
    advanced: Condvar,
    /// Wakes the appender when an event is queued or the queue closes.
    ready: Notify,
    coalesced: AtomicU64,
    refused: AtomicU64,
}

impl EventQueue {
    /// A queue holding at most `capacity` pending events (at least 1) and
    /// `max_bytes` of them.
    pub(crate) fn new(capacity: usize, max_bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            capacity: capacity.max(1),
            max_bytes,
            advanced: Condvar::new(),
            ready: Notify::new(),
            coalesced: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// Whether `count` more events would fit now (a hint: [`Self::admit`]
    /// decides, knowing their bytes).
    pub(crate) fn has_room(&self, count: usize) -> Result<(), Full> {
        let state = self.state.lock();
        self.fits(&state, count, 0).inspect_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
        })
    }

    fn fits(&self, state: &State, count: usize, bytes: u64) -> Result<(), Full> {
        let pending = state.pending();
        // An idle queue takes any connection, so a capacity below the
        // matcher limit never locks everyone out.
        if pending == 0
            || (pending.saturating_add(count as u64) <= self.capacity as u64
                && state.bytes.saturating_add(bytes) <= self.max_bytes)
        {
            return Ok(());
        }
        Err(Full {
            pending,
            capacity: self.capacity,
            bytes: state.bytes,
            max_bytes: self.max_bytes,
        })
    }

    /// Queues the `active` events of one connection, all or none.
    pub(crate) fn admit(&self, records: &[Arc<Record>]) -> Result<(), Full> {
        let mut state = self.state.lock();
        let bytes = records.iter().map(|r| r.weight).sum();
        if let Err(full) = self.fits(&state, records.len(), bytes) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(full);
        }
        state
            .events
            .extend(records.iter().map(|r| (Arc::clone(r), true)));
        state.queued += records.len() as u64;
        state.bytes += bytes;
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Ends subscriptions that left the index: drops both events of those
    /// whose `active` event is still pending, queues `active: false` for the
    /// others, whatever the capacity.
    pub(crate) fn end(&self, records: Vec<Arc<Record>>) {
        if records.is_empty() {
            return;
        }
        let mut state = self.state.lock();
        let mut coalesced = 0;
        for record in records {
            // Under the queue lock: the appender's take sees either the
            // tombstone counted or the stage still pending.
            let cancelled = record
                .stage
                .compare_exchange(PENDING, COALESCED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if cancelled {
                coalesced += 1;
                // Its queued `active` event is a tombstone now.
                state.bytes -= record.weight;
            } else {
                state.bytes += record.weight;
                state.events.push_back((record, false));
                state.queued += 1;
            }
        }
        if coalesced > 0 {
            state.tombstones += coalesced;
            // The cancelled `active` event counts as done: a shutdown waits
            // for nothing that will never be appended.
            state.done += coalesced as u64;
            self.coalesced
                .fetch_add(coalesced as u64, Ordering::Relaxed);
            if state.tombstones >= SWEEP_AT && state.tombstones * 2 >= state.events.len() {
                state.events.retain(|(r, active)| {
                    !(*active && r.stage.load(Ordering::Acquire) == COALESCED)
                });
                state.tombstones = 0;
            }
            self.advanced.notify_all();
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Up to `max` events to append, oldest first, waiting for one; `None`
    /// once the queue is closed and empty. Never two events of one
    /// subscription: its end waits for the next batch, so it is appended
    /// after its start.
    pub(crate) async fn take(&self, max: usize) -> Option<Vec<Event>> {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock();
                let batch = take_batch(&mut state, max);
                if !batch.is_empty() {
                    return Some(batch);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// The appender is done with `count` taken events of `bytes` (appended
    /// or given up on).
    pub(crate) fn finished(&self, count: usize, bytes: u64) {
        let mut state = self.state.lock();
        state.done += count as u64;
        state.bytes -= bytes;
        drop(state);
        self.advanced.notify_all();
    }

    /// No event will be queued any more: the appender ends once it has
    /// taken what is left.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
    }

    /// Blocks until every event queued so far is done with, or `timeout`
    /// has passed; whether they all were.
    pub(crate) fn wait_appended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        let target = state.queued;
        while state.done < target {
            if self.advanced.wait_until(&mut state, deadline).timed_out() {
                return state.done >= target;
            }
        }
        true
    }

    /// The queue's counters.
    pub(crate) fn stats(&self) -> EventStats {
        let state = self.state.lock();
        EventStats {
            pending: state.pending(),
            pending_bytes: state.bytes,
            coalesced: self.coalesced.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

fn take_batch(state: &mut State, max: usize) -> Vec<Event> {
    let mut batch: Vec<Event> = Vec::new();
    while batch.len() < max {
        let Some((record, active)) = state.events.front() else {
            break;
        };
        if batch.iter().any(|(r, _)| Arc::ptr_eq(r, record)) {
            // Its start is in this batch (the API saw it while pending).
            break;
        }
        let (record, active) = (Arc::clone(record), *active);
        state.events.pop_front();
        if active {
            let stage = record.stage.compare_exchange(
                PENDING,
                SETTLED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if stage == Err(COALESCED) {
                state.tombstones -= 1;
                continue;
            }
        }
        batch.push((record, active));
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatcherType;

    fn record(n: usize) -> Arc<Record> {
        Record::new(ActiveSubscription {
            topic: format!("/s/{n}").into(),
            match_type: MatcherType::Exact,
            matcher: format!("m{n}").into(),
            subscriber: "urn:x".into(),
            payload: None,
        })
    }

    fn records(n: usize) -> Vec<Arc<Record>> {
        (0..n).map(record).collect()
    }

    fn weight(events: &[Event]) -> u64 {
        events.iter().map(|(r, _)| r.weight).sum()
    }

    /// Runs `future` to completion; a test that would wait forever fails.
    fn now<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), future).await })
            .expect("no wait")
    }

    #[test]
    fn a_subscription_ended_before_its_start_was_taken_publishes_nothing() {
        let queue = EventQueue::new(100, u64::MAX);
        let ended = records(3);
        queue.admit(&ended).unwrap();
        queue.end(ended);
        assert_eq!(
            queue.stats(),
            EventStats {
                pending: 0,
                pending_bytes: 0,
                coalesced: 3,
                refused: 0
            }
        );
        queue.close();
        assert!(now(queue.take(64)).is_none(), "nothing left to append");
        assert!(queue.wait_appended(Duration::ZERO), "nothing to wait for");
    }

    #[test]
    fn a_subscription_whose_start_was_taken_publishes_its_end() {
        let queue = EventQueue::new(100, u64::MAX);
        let both = records(2);
        queue.admit(&both).unwrap();
        let batch = now(queue.take(64)).unwrap();
        assert_eq!(batch.len(), 2);
        queue.end(both);
        // The start is being appended and the end is queued: nothing coalesced.
        assert_eq!(queue.stats().pending, 4);
        assert!(!queue.wait_appended(Duration::from_millis(10)));
        queue.finished(batch.len(), weight(&batch));
        let ends = now(queue.take(64)).unwrap();
        assert!(ends.iter().all(|(_, active)| !active));
        queue.finished(ends.len(), weight(&ends));
        assert!(queue.wait_appended(Duration::ZERO));
        assert_eq!(queue.stats().coalesced, 0);
    }

    #[test]
    fn a_subscription_the_api_showed_publishes_both_events_in_order() {
        let queue = EventQueue::new(100, u64::MAX);
        let shown = records(1);
        queue.admit(&shown).unwrap();
        let _ = shown[0].observe();
        queue.end(shown);
        // Start and end are both queued; one batch never holds both.
        let first = now(queue.take(64)).unwrap();
        assert_eq!(first.len(), 1);
        assert!(first[0].1, "the start first");
        queue.finished(1, weight(&first));
        let second = now(queue.take(64)).unwrap();
        assert!(!second[0].1, "then the end");
    }

    #[test]
    fn a_full_queue_refuses_starts_but_never_ends() {
        let queue = EventQueue::new(10, u64::MAX);
        let first = records(8);
        queue.admit(&first).unwrap();
        let full = queue.admit(&records(3)).unwrap_err();
        assert_eq!((full.pending, full.capacity), (8, 10));
        assert_eq!(full.bytes, 8 * first[0].weight);
        assert!(queue.has_room(3).is_err());
        assert!(queue.has_room(2).is_ok());
        // Taken by the appender: their ends are owed, past the capacity too.
        let taken = now(queue.take(64)).unwrap();
        queue.end(first);
        assert_eq!(queue.stats().pending, 16);
        assert_eq!(queue.stats().refused, 2);
        // Once the appender catches up there is room again.
        queue.finished(taken.len(), weight(&taken));
        let ends = now(queue.take(64)).unwrap();
        queue.finished(ends.len(), weight(&ends));
        queue.admit(&records(10)).unwrap();
    }

    /// A record whose matcher is `len` bytes long, as a subscriber's can be.
    fn long_record(len: usize) -> Arc<Record> {
        let matcher = "m".repeat(len);
        Record::new(ActiveSubscription {
            topic: format!("/s/{matcher}").into(),
            match_type: MatcherType::Exact,
            matcher: matcher.into(),
            subscriber: "urn:x".into(),
            payload: None,
        })
    }

    #[test]
    fn long_matchers_are_refused_by_the_byte_bound_though_few() {
        let queue = EventQueue::new(1000, 10_000);
        let first = vec![long_record(2000), long_record(2000)];
        queue.admit(&first).unwrap();
        let bytes = queue.stats().pending_bytes;
        assert!(bytes > 8000, "two 2,000-byte matchers weigh {bytes} bytes");
        let full = queue.admit(&[long_record(2000)]).unwrap_err();
        assert_eq!(
            (full.pending, full.bytes, full.max_bytes),
            (2, bytes, 10_000)
        );
        assert!(
            full.to_string()
                .contains(&format!("{bytes} bytes of them, at most 10000")),
            "{full}"
        );
        // A short one still fits; a connection ending frees its bytes.
        queue.admit(&records(1)).unwrap();
        queue.end(first);
        assert_eq!(queue.stats().pending_bytes, record(0).weight);
        queue.admit(&[long_record(2000)]).unwrap();
        // Taken by the appender, events count until it is done with them.
        let batch = now(queue.take(64)).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(queue.stats().pending_bytes, weight(&batch));
        queue.finished(batch.len(), weight(&batch));
        assert_eq!(queue.stats().pending_bytes, 0);
    }

    #[test]
    fn an_idle_queue_admits_a_connection_larger_than_its_capacity() {
        let queue = EventQueue::new(2, u64::MAX);
        queue.admit(&records(5)).unwrap();
        assert!(queue.admit(&records(1)).is_err());
    }

    #[test]
    fn churn_the_appender_never_reaches_leaves_the_queue_empty() {
        let queue = EventQueue::new(1000, u64::MAX);
        // Far more than the capacity, none of it ever appended.
        for _ in 0..1000 {
            let connection = records(100);
            queue.admit(&connection).unwrap();
            queue.end(connection);
        }
        let stats = queue.stats();
        assert_eq!(
            (stats.pending, stats.pending_bytes, stats.refused),
            (0, 0, 0)
        );
        let state = queue.state.lock();
        assert!(
            state.events.len() < 2 * SWEEP_AT,
            "{} tombstones kept",
            state.events.len()
        );
    }

    #[test]
    fn tombstones_are_skipped_and_survivors_keep_their_order() {
        let queue = EventQueue::new(100, u64::MAX);
        let all = records(5);
        queue.admit(&all).unwrap();
        queue.end(vec![Arc::clone(&all[1]), Arc::clone(&all[3])]);
        let batch = now(queue.take(64)).unwrap();
        let names: Vec<_> = batch
            .iter()
            .map(|(r, _)| r.subscription.matcher.to_string())
            .collect();
        assert_eq!(names, ["m0", "m2", "m4"]);
    }
}
