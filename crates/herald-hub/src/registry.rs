//! The registry of connected subscribers: an index from topics and patterns
//! to subscribers, sharded so that connects, disconnects and dispatch do not
//! all contend for one lock.
//!
//! Each shard remembers the last position it dispatched. A subscriber joins a
//! shard under that shard's lock and learns that position `P`: its queue will
//! receive exactly the entries after `P`, so replaying `(cursor, P]` from the
//! log before draining the queue is gap-free and duplicate-free.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::queue::{self, SendError};
use parking_lot::Mutex;

use crate::log::Dispatch;
use crate::{Entry, Grants, Matcher, Position};

/// Counters kept by the registry.
#[derive(Debug, Default)]
pub struct RegistryStats {
    /// Subscribers connected now.
    pub connected: AtomicUsize,
    /// Subscribers disconnected because their queue was full.
    pub slow_disconnects: AtomicU64,
    /// Entries handed to subscriber queues.
    pub delivered: AtomicU64,
    /// Entries replayed from the log to resuming subscribers.
    pub replayed: AtomicU64,
    /// Active subscriptions (one per matcher of a connection) with an exact topic.
    pub exact_subscriptions: AtomicUsize,
    /// Active subscriptions with a URL pattern.
    pub urlpattern_subscriptions: AtomicUsize,
    /// Active subscriptions with a legacy topic selector other than `*`.
    pub selector_subscriptions: AtomicUsize,
    /// Active subscriptions with the `*` wildcard.
    pub wildcard_subscriptions: AtomicUsize,
}

impl RegistryStats {
    fn count_subscriptions(&self, matchers: &[Matcher], added: bool) {
        for matcher in matchers {
            let counter = match matcher {
                Matcher::Wildcard => &self.wildcard_subscriptions,
                Matcher::Exact(_) => &self.exact_subscriptions,
                Matcher::UrlPattern(_) => &self.urlpattern_subscriptions,
                Matcher::Selector(_) => &self.selector_subscriptions,
            };
            if added {
                counter.fetch_add(1, Ordering::Relaxed);
            } else {
                counter.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// All subscribers of one hub process.
pub struct Registry {
    shards: Box<[Mutex<Shard>]>,
    next_id: AtomicU64,
    queue_capacity: usize,
    stats: RegistryStats,
    /// The position of the last entry dispatched to every shard.
    last_dispatched: AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("shards", &self.shards.len())
            .field("connected", &self.stats.connected)
            .finish()
    }
}

#[derive(Default)]
struct Shard {
    dispatched: Position,
    subscribers: HashMap<u64, Slot>,
    exact: HashMap<Arc<str>, Vec<u64>>,
    /// Subscriptions tried against every update (URL patterns, templates),
    /// grouped by compiled matcher (keyed by its address).
    patterns: HashMap<usize, (Matcher, Vec<u64>)>,
    wildcard: Vec<u64>,
    scratch: Vec<u64>,
}

struct Slot {
    sender: queue::Sender,
    grants: Arc<Grants>,
    matchers: Arc<[Matcher]>,
    last_position: Position,
    state: Arc<SubscriberState>,
}

/// State shared between a subscriber's registry slot and its connection.
#[derive(Default)]
pub struct SubscriberState {
    slow: AtomicBool,
    /// Run once when the registry drops the subscriber for being too slow,
    /// after the shard lock is released (ends its active subscriptions).
    on_slow: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for SubscriberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberState")
            .field("slow", &self.slow)
            .finish()
    }
}

impl SubscriberState {
    /// Whether the registry dropped this subscriber for not keeping up.
    pub fn was_too_slow(&self) -> bool {
        self.slow.load(Ordering::Acquire)
    }

    /// Sets what to run when the registry drops this subscriber for being too
    /// slow. Runs it at once if that already happened.
    pub(crate) fn on_slow(&self, hook: Box<dyn Fn() + Send + Sync>) {
        if self.on_slow.set(hook).is_ok() && self.was_too_slow() {
            self.fire();
        }
    }

    fn fire(&self) {
        if let Some(hook) = self.on_slow.get() {
            hook();
        }
    }
}

/// A subscriber's place in the registry; dropping it unregisters.
pub struct Registration {
    id: u64,
    position: Position,
    receiver: queue::Receiver,
    state: Arc<SubscriberState>,
    registry: Arc<Registry>,
}

impl Registration {
    /// The hub-assigned subscriber number, unique in this process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The last position dispatched before this subscriber joined.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The next live entry; `None` once the registry dropped the subscriber.
    pub async fn recv(&mut self) -> Option<Arc<Entry>> {
        self.receiver.recv().await
    }

    /// The next live entry if one is already queued; never waits.
    pub fn try_recv(&mut self) -> Option<Arc<Entry>> {
        self.receiver.try_recv()
    }

    /// Whether the registry dropped this subscriber for being too slow.
    pub fn was_too_slow(&self) -> bool {
        self.state.was_too_slow()
    }

    /// Counts entries replayed to this subscriber from the log.
    pub(crate) fn count_replayed(&self, entries: usize) {
        self.registry
            .stats
            .replayed
            .fetch_add(entries as u64, Ordering::Relaxed);
    }

    /// The state shared with the registry.
    pub(crate) fn state(&self) -> &Arc<SubscriberState> {
        &self.state
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

impl Registry {
    /// A registry with `shards` shards and per-subscriber queues of `queue_capacity`.
    pub fn new(shards: usize, queue_capacity: usize) -> Arc<Self> {
        let shards = (0..shards.max(1))
            .map(|_| Mutex::new(Shard::default()))
            .collect();
        Arc::new(Self {
            shards,
            next_id: AtomicU64::new(1),
            queue_capacity: queue_capacity.max(1),
            stats: RegistryStats::default(),
            last_dispatched: AtomicU64::new(0),
        })
    }

    /// Starts dispatch after `position`, the head of the log the registry is
    /// attached to: subscribers joining now replay up to there.
    pub fn start_after(&self, position: Position) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            shard.dispatched = shard.dispatched.max(position);
        }
        self.last_dispatched.fetch_max(position, Ordering::AcqRel);
    }

    /// The registry's counters.
    pub fn stats(&self) -> &RegistryStats {
        &self.stats
    }

    /// The position of the last entry dispatched to every subscriber (0: none yet).
    pub fn last_dispatched(&self) -> Position {
        self.last_dispatched.load(Ordering::Acquire)
    }

    /// Adds a subscriber listening with `matchers`, reading private updates as `grants` allow.
    pub fn register(self: &Arc<Self>, matchers: Vec<Matcher>, grants: Arc<Grants>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = queue::channel(self.queue_capacity);
        let state = Arc::new(SubscriberState::default());
        let matchers: Arc<[Matcher]> = matchers.into();
        self.stats.count_subscriptions(&matchers, true);
        let position = {
            let mut shard = self.shard(id).lock();
            for matcher in matchers.iter() {
                match Index::of(matcher) {
                    Index::Wildcard => shard.wildcard.push(id),
                    Index::Exact(topic) => {
                        shard.exact.entry(Arc::clone(topic)).or_default().push(id);
                    }
                    Index::Scan(key) => {
                        shard
                            .patterns
                            .entry(key)
                            .or_insert_with(|| (matcher.clone(), Vec::new()))
                            .1
                            .push(id);
                    }
                }
            }
            let position = shard.dispatched;
            shard.subscribers.insert(
                id,
                Slot {
                    sender,
                    grants,
                    matchers,
                    last_position: position,
                    state: Arc::clone(&state),
                },
            );
            position
        };
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        Registration {
            id,
            position,
            receiver,
            state,
            registry: Arc::clone(self),
        }
    }

    fn shard(&self, id: u64) -> &Mutex<Shard> {
        let index = usize::try_from(id).unwrap_or(0) % self.shards.len();
        &self.shards[index]
    }

    fn remove(&self, id: u64) {
        if let Some(matchers) = self.shard(id).lock().remove(id) {
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
            self.stats.count_subscriptions(&matchers, false);
        }
    }
}

/// Where a shard indexes a matcher.
enum Index<'a> {
    Wildcard,
    /// Matches this one topic only: found by a hash lookup.
    Exact(&'a Arc<str>),
    /// Tried against every update; keyed by the address of the compiled
    /// matcher, which the shard keeps alive while it is indexed.
    Scan(usize),
}

impl<'a> Index<'a> {
    fn of(matcher: &'a Matcher) -> Self {
        match matcher {
            Matcher::Wildcard => Index::Wildcard,
            Matcher::Exact(topic) => Index::Exact(topic),
            Matcher::UrlPattern(pattern) => Index::Scan(Arc::as_ptr(pattern) as usize),
            // Most legacy selectors are plain topics.
            Matcher::Selector(selector) => match selector.literal() {
                Some(topic) => Index::Exact(topic),
                None => Index::Scan(Arc::as_ptr(selector) as usize),
            },
        }
    }
}

impl Shard {
    /// Removes a subscriber; returns its matchers if it was present.
    fn remove(&mut self, id: u64) -> Option<Arc<[Matcher]>> {
        let slot = self.subscribers.remove(&id)?;
        let forget = |ids: &mut Vec<u64>| {
            if let Some(i) = ids.iter().position(|x| *x == id) {
                ids.swap_remove(i);
            }
        };
        for matcher in slot.matchers.iter() {
            match Index::of(matcher) {
                Index::Wildcard => forget(&mut self.wildcard),
                Index::Exact(topic) => {
                    if let Some(ids) = self.exact.get_mut(&**topic) {
                        forget(ids);
                        if ids.is_empty() {
                            self.exact.remove(&**topic);
                        }
                    }
                }
                Index::Scan(key) => {
                    if let Some((_, ids)) = self.patterns.get_mut(&key) {
                        forget(ids);
                        if ids.is_empty() {
                            self.patterns.remove(&key);
                        }
                    }
                }
            }
        }
        Some(slot.matchers)
    }

    /// Queues `entry` for every matching, authorized subscriber; returns how
    /// many received it, how many were dropped for being too slow, and how
    /// many were removed in all.
    fn dispatch(
        &mut self,
        entry: &Arc<Entry>,
        slow_states: &mut Vec<Arc<SubscriberState>>,
    ) -> (u64, u64, Vec<Arc<[Matcher]>>) {
        self.dispatched = entry.position();
        let mut candidates = std::mem::take(&mut self.scratch);
        candidates.clear();
        for topic in entry.topics() {
            if let Some(ids) = self.exact.get(&**topic) {
                candidates.extend_from_slice(ids);
            }
        }
        candidates.extend_from_slice(&self.wildcard);
        for (matcher, ids) in self.patterns.values() {
            if matcher.matches_any(entry.topics()) {
                candidates.extend_from_slice(ids);
            }
        }
        let (mut delivered, mut slow) = (0, 0);
        // A private update's audience depends only on (grants, topics): one
        // decision per distinct grants object, not per subscriber.
        let mut last_decision: Option<(*const Grants, bool)> = None;
        for &id in &candidates {
            let Some(slot) = self.subscribers.get_mut(&id) else {
                continue;
            };
            if slot.last_position >= entry.position() {
                continue; // already queued through another of its matchers
            }
            slot.last_position = entry.position();
            if entry.is_private() {
                let key = Arc::as_ptr(&slot.grants);
                let allowed = match last_decision {
                    Some((k, allowed)) if k == key => allowed,
                    _ => {
                        let allowed = slot.grants.can_read(entry.topics());
                        last_decision = Some((key, allowed));
                        allowed
                    }
                };
                if !allowed {
                    continue;
                }
            }
            match slot.sender.try_send(Arc::clone(entry)) {
                Ok(()) => delivered += 1,
                Err(SendError::Full) => {
                    slot.state.slow.store(true, Ordering::Release);
                    if slot.state.on_slow.get().is_some() {
                        slow_states.push(Arc::clone(&slot.state));
                    }
                    slow += 1;
                    self.scratch.push(id);
                }
                Err(SendError::Closed) => self.scratch.push(id),
            }
        }
        // `scratch` now lists subscribers to drop; `candidates` is reused next time.
        let dropped = std::mem::replace(&mut self.scratch, candidates);
        let removed = dropped
            .into_iter()
            .filter_map(|id| self.remove(id))
            .collect();
        (delivered, slow, removed)
    }
}

impl Dispatch for Registry {
    fn dispatch(&self, entry: &Arc<Entry>) {
        let (mut delivered, mut slow) = (0, 0);
        let mut slow_states = Vec::new();
        for shard in self.shards.iter() {
            let (d, s, removed) = shard.lock().dispatch(entry, &mut slow_states);
            delivered += d;
            slow += s;
            for matchers in removed {
                self.stats.connected.fetch_sub(1, Ordering::Relaxed);
                self.stats.count_subscriptions(&matchers, false);
            }
        }
        self.last_dispatched
            .store(entry.position(), Ordering::Release);
        // Outside every shard lock.
        for state in slow_states {
            state.fire();
        }
        self.stats.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.stats
            .slow_disconnects
            .fetch_add(slow, Ordering::Relaxed);
    }
}
