//! The registry of connected subscribers: an index from topics and patterns
//! to groups of subscribers with the same matchers (see `group.rs`), sharded
//! so that connects, disconnects and dispatch do not all contend for one lock.
//!
//! Each shard remembers the last position it dispatched. A subscriber joins a
//! shard under that shard's lock and learns that position `P`: its group will
//! queue exactly the entries after `P` for it, so replaying `(cursor, P]` from
//! the log before reading the group's queue is gap-free and duplicate-free.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Waker;

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::group::{Group, GroupKey, MatcherKey, Wire};
use crate::log::Dispatch;
use crate::matcher::PathIndex;
use crate::{Entry, Grants, Matcher, Position};

/// Counters kept by the registry.
#[derive(Debug, Default)]
pub struct RegistryStats {
    /// Subscribers connected now.
    pub connected: AtomicUsize,
    /// Subscribers disconnected because their queue was full.
    pub slow_disconnects: AtomicU64,
    /// Publishes whose answer waited for the fan-out (a publish pace is set
    /// and a busy group had taken its share of the pass).
    pub paced_publishes: AtomicU64,
    /// Entries queued for subscribers: one per subscriber of a matching
    /// subscription (a private entry counts for each, whether or not its
    /// grants let it read the entry).
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

/// The default bound on the bytes of the entries a subscriber may fall
/// behind (see [`Registry::with_bounds`]): 256 MiB: a subscriber catching up on history
/// while large updates keep coming needs room for what arrives meanwhile.
pub const DEFAULT_QUEUE_BYTES: u64 = 256 << 20;

/// All subscribers of one hub process.
pub struct Registry {
    shards: Box<[Mutex<Shard>]>,
    next_id: AtomicU64,
    queue_capacity: usize,
    queue_bytes: u64,
    stats: RegistryStats,
    /// The position of the last entry dispatched to every shard.
    last_dispatched: AtomicU64,
    /// Wakers collected during a dispatch, woken once every lock is released
    /// (kept to reuse its allocation).
    wake: Mutex<Vec<Waker>>,
    /// The runtime subscribers registered from, where writer tasks run even
    /// when a log dispatches from a thread of its own.
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Entries a busy group takes per pass of its writer (0: no pace).
    publish_pace: usize,
    /// Paced publishes: the position of the entry, a group it went to and
    /// the writes that group's writer is to reach before the answer.
    /// Only entries that must wait are here, and only for a moment.
    pacing: Mutex<Vec<(Position, Arc<Group>, u64)>>,
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
    /// Groups by key, but for those whose key is one exact topic: those are
    /// found in `exact` (a topic per user makes most groups such, and an
    /// entry here would cost each its key twice more).
    groups: HashMap<GroupKey, Arc<Group>>,
    /// Most topics have one group: it is kept inline.
    exact: HashMap<Arc<str>, SmallVec<[Arc<Group>; 1]>, foldhash::fast::RandomState>,
    /// Groups whose matchers are tried against every update (URL patterns,
    /// templates), by compiled matcher (keyed by its address).
    patterns: HashMap<usize, (Matcher, Vec<Arc<Group>>)>,
    /// The keys of `patterns` by the literal start of the paths they match.
    by_path: PathIndex,
    wildcard: Vec<Arc<Group>>,
    scratch: Vec<Arc<Group>>,
    scratch_addresses: Vec<usize>,
}

/// Up to this many patterns in a shard, an update is tried against each
/// (cheaper than resolving its topics); beyond, against those [`PathIndex`]
/// finds.
const SCAN_ALL_PATTERNS: usize = 32;

/// State shared between a subscriber's registry entry and its connection.
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

    pub(crate) fn mark_slow(&self) {
        self.slow.store(true, Ordering::Release);
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
    group: Arc<Group>,
    /// Its key among the group's members.
    member: usize,
    grants: Arc<Grants>,
    /// Live entries at or before this position are not for this subscriber
    /// (see `Subscription`); entries written directly skip them too.
    skip_through: Position,
    state: Arc<SubscriberState>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
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
        std::future::poll_fn(|cx| {
            loop {
                match self.group.poll_next(self.member, self.skip_through, cx) {
                    std::task::Poll::Ready(Some(entry)) if !self.may_read(&entry) => continue,
                    other => return other,
                }
            }
        })
        .await
    }

    /// The next live entry if one is already queued; never waits.
    pub fn try_recv(&mut self) -> Option<Arc<Entry>> {
        loop {
            let entry = self.group.try_next(self.member)?;
            if self.may_read(&entry) {
                return Some(entry);
            }
        }
    }

    /// Sets the position through which live entries are not for this subscriber.
    pub(crate) fn skip_through(&mut self, position: Position) {
        self.skip_through = position;
    }

    /// Lets the hub write this subscriber's live entries to `wire` directly
    /// whenever it has caught up, instead of waking its task for each.
    pub fn attach_wire(&self, wire: Arc<dyn Wire>) {
        self.group.attach_wire(self.member, wire);
    }

    /// The subscriber's matchers: its group's, which select the same topics
    /// (a group is keyed by what its matchers select).
    pub(crate) fn matchers(&self) -> &[Matcher] {
        self.group.matchers()
    }

    /// What [`Registration::matchers`] and [`Registration::may_read`]
    /// decide, for a log's filtered read (a replay).
    pub(crate) fn filter(&self) -> crate::EntryFilter {
        let group = Arc::clone(&self.group);
        let grants = Arc::clone(&self.grants);
        Arc::new(move |topics: &[&str], private: bool| {
            group.matchers().iter().any(|m| m.matches_any(topics))
                && (!private || grants.can_read(topics))
        })
    }

    /// Whether the grants allow `entry`: the group queues private entries
    /// for every member, and each member skips those it may not read.
    pub(crate) fn may_read(&self, entry: &Entry) -> bool {
        crate::group::readable(entry, &self.grants)
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
        self.registry.remove(self.id, &self.group, self.member);
    }
}

impl Registry {
    /// A registry with `shards` shards, where a subscriber may fall at most
    /// `queue_capacity` entries behind.
    pub fn new(shards: usize, queue_capacity: usize) -> Arc<Self> {
        Self::with_publish_pace(shards, queue_capacity, 0)
    }

    /// The same, with publishes paced to the fan-out: while a group's
    /// writer is busy, it takes `publish_pace` entries per pass over its
    /// subscribers (0: no pace; see [`Registry::paced`]).
    pub fn with_publish_pace(
        shards: usize,
        queue_capacity: usize,
        publish_pace: usize,
    ) -> Arc<Self> {
        Self::with_bounds(shards, queue_capacity, DEFAULT_QUEUE_BYTES, publish_pace)
    }

    /// The same, where a subscriber may also fall at most `queue_bytes` of
    /// entries' frames behind: with large updates, the entry bound alone
    /// lets one slow subscriber hold gigabytes.
    pub fn with_bounds(
        shards: usize,
        queue_capacity: usize,
        queue_bytes: u64,
        publish_pace: usize,
    ) -> Arc<Self> {
        let shards = (0..shards.max(1))
            .map(|_| Mutex::new(Shard::default()))
            .collect();
        Arc::new(Self {
            shards,
            next_id: AtomicU64::new(1),
            queue_capacity: queue_capacity.max(1),
            queue_bytes,
            stats: RegistryStats::default(),
            last_dispatched: AtomicU64::new(0),
            wake: Mutex::new(Vec::new()),
            runtime: OnceLock::new(),
            publish_pace,
            pacing: Mutex::new(Vec::new()),
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

    /// Resolves once the publish of the entry at `position` may be answered:
    /// at once without a publish pace, else once the writer of every group
    /// that had to pace it has written that group's share of subscribers
    /// since the entry before (or has finished its pass).
    pub async fn paced(&self, position: Position) {
        if self.publish_pace == 0 {
            return;
        }
        let groups: Vec<(Arc<Group>, u64)> = {
            let mut pacing = self.pacing.lock();
            if pacing.is_empty() {
                return;
            }
            let mut mine = Vec::new();
            pacing.retain(|(at, group, until)| {
                if *at == position {
                    mine.push((Arc::clone(group), *until));
                }
                *at != position
            });
            mine
        };
        if !groups.is_empty() {
            self.stats.paced_publishes.fetch_add(1, Ordering::Relaxed);
        }
        for (group, until) in groups {
            std::future::poll_fn(|cx| group.poll_paced(until, cx)).await;
        }
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
        if self.runtime.get().is_none()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let _ = self.runtime.set(runtime);
        }
        let state = Arc::new(SubscriberState::default());
        let key = group_key(&matchers);
        self.stats.count_subscriptions(&matchers, true);
        let (group, member, position) = {
            let mut shard = self.shard(id).lock();
            let group = match shard.group(&key) {
                Some(group) => group,
                None => shard.add_group(Group::new(
                    matchers.into(),
                    key,
                    self.queue_capacity,
                    self.queue_bytes,
                    self.publish_pace,
                )),
            };
            let member = group.join(Arc::clone(&state), Arc::clone(&grants));
            (group, member, shard.dispatched)
        };
        self.stats.connected.fetch_add(1, Ordering::Relaxed);
        Registration {
            id,
            position,
            group,
            member,
            grants,
            skip_through: position,
            state,
            registry: Arc::clone(self),
        }
    }

    fn shard(&self, id: u64) -> &Mutex<Shard> {
        let index = usize::try_from(id).unwrap_or(0) % self.shards.len();
        &self.shards[index]
    }

    fn remove(&self, id: u64, group: &Arc<Group>, member: usize) {
        let live = {
            let mut shard = self.shard(id).lock();
            let (live, empty) = group.leave(member);
            if empty {
                shard.remove_group(group);
            }
            live
        };
        // An evicted subscriber was counted out when it was evicted.
        if live {
            self.stats.connected.fetch_sub(1, Ordering::Relaxed);
            self.stats.count_subscriptions(group.matchers(), false);
        }
    }
}

/// How many positions back a paced publish's marks are kept for it.
const PACING_KEPT: Position = 1024;

/// Starts the task that writes `group`'s direct members their entries, on
/// the current runtime or else the one subscribers registered from (a log
/// dispatching from a thread of its own). Without either, the writing is
/// done here and now.
fn start_writer(group: Arc<Group>, registered_on: Option<&tokio::runtime::Handle>) {
    let runtime = tokio::runtime::Handle::try_current()
        .ok()
        .or_else(|| registered_on.cloned());
    match runtime {
        Some(runtime) => {
            let metrics = runtime.metrics();
            drop(runtime.spawn(async move {
                // Tasks woken from other threads wait in the runtime's
                // global queue until this one yields: let them run.
                let give_way = || metrics.global_queue_depth() > 0;
                while write_slice(&group, &give_way) {
                    tokio::task::yield_now().await;
                }
            }));
        }
        None => while write_slice(&group, &|| false) {},
    }
}

/// Writes one slice of `group`'s direct members; whether there is more.
fn write_slice(group: &Group, give_way: &dyn Fn() -> bool) -> bool {
    let mut wake = Vec::new();
    let more = group.write_slice(&mut wake, give_way);
    for waker in wake {
        waker.wake();
    }
    more
}

/// The key of the group for `matchers`.
fn group_key(matchers: &[Matcher]) -> GroupKey {
    let mut key: Vec<MatcherKey> = matchers
        .iter()
        .map(|matcher| match Index::of(matcher) {
            Index::Wildcard => MatcherKey::Wildcard,
            Index::Exact(topic) => MatcherKey::Exact(Arc::clone(topic)),
            Index::Scan(address) => MatcherKey::Scan(address),
        })
        .collect();
    key.sort_unstable();
    key.dedup();
    key.into_boxed_slice()
}

/// Where a shard indexes a matcher.
enum Index<'a> {
    Wildcard,
    /// Matches this one topic only: found by a hash lookup.
    Exact(&'a Arc<str>),
    /// Tried against every update; keyed by the address of the compiled
    /// matcher, which the group keeps alive while it is indexed.
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

/// The topic of a key that is one exact topic.
fn single_exact(key: &GroupKey) -> Option<&Arc<str>> {
    match &**key {
        [MatcherKey::Exact(topic)] => Some(topic),
        _ => None,
    }
}

impl Shard {
    /// The group with `key`, if there is one.
    fn group(&self, key: &GroupKey) -> Option<Arc<Group>> {
        match single_exact(key) {
            Some(topic) => self
                .exact
                .get(&**topic)?
                .iter()
                .find(|group| group.key() == key)
                .cloned(),
            None => self.groups.get(key).cloned(),
        }
    }

    /// Indexes a new group under each of its matchers.
    fn add_group(&mut self, group: Arc<Group>) -> Arc<Group> {
        for matcher in group.matchers().iter() {
            match Index::of(matcher) {
                Index::Wildcard => self.wildcard.push(Arc::clone(&group)),
                Index::Exact(topic) => self
                    .exact
                    .entry(Arc::clone(topic))
                    .or_default()
                    .push(Arc::clone(&group)),
                Index::Scan(address) => self
                    .patterns
                    .entry(address)
                    .or_insert_with(|| {
                        self.by_path.insert(address, matcher);
                        (matcher.clone(), Vec::new())
                    })
                    .1
                    .push(Arc::clone(&group)),
            }
        }
        if single_exact(group.key()).is_none() {
            self.groups.insert(group.key().clone(), Arc::clone(&group));
        }
        group
    }

    /// Unindexes a group that has no member left.
    fn remove_group(&mut self, group: &Arc<Group>) {
        if !self
            .group(group.key())
            .is_some_and(|g| Arc::ptr_eq(&g, group))
        {
            return;
        }
        self.groups.remove(group.key());
        let other = |g: &Arc<Group>| !Arc::ptr_eq(g, group);
        for matcher in group.matchers().iter() {
            match Index::of(matcher) {
                Index::Wildcard => self.wildcard.retain(other),
                Index::Exact(topic) => {
                    if let Some(groups) = self.exact.get_mut(&**topic) {
                        groups.retain(|g| other(g));
                        if groups.is_empty() {
                            self.exact.remove(&**topic);
                        }
                    }
                }
                Index::Scan(address) => {
                    if let Some((_, groups)) = self.patterns.get_mut(&address) {
                        groups.retain(other);
                        if groups.is_empty() {
                            self.patterns.remove(&address);
                            self.by_path.remove(address, matcher);
                        }
                    }
                }
            }
        }
    }

    /// Queues `entry` in every matching group; returns how many subscribers
    /// it was queued for. Wakers to wake and evicted subscribers are added
    /// to `wake` and `evicted`.
    fn dispatch(
        &mut self,
        entry: &Arc<Entry>,
        wake: &mut Vec<Waker>,
        evicted: &mut Vec<Arc<SubscriberState>>,
        writers: &mut Vec<Arc<Group>>,
        counts: &RegistryStats,
        paced: &mut Vec<(Arc<Group>, u64)>,
    ) -> u64 {
        self.dispatched = entry.position();
        let mut candidates = std::mem::take(&mut self.scratch);
        for topic in entry.topics() {
            if let Some(groups) = self.exact.get(&**topic) {
                candidates.extend(groups.iter().cloned());
            }
        }
        candidates.extend(self.wildcard.iter().cloned());
        if self.patterns.len() <= SCAN_ALL_PATTERNS {
            for (matcher, groups) in self.patterns.values() {
                if matcher.matches_any(entry.topics()) {
                    candidates.extend(groups.iter().cloned());
                }
            }
        } else {
            let mut addresses = std::mem::take(&mut self.scratch_addresses);
            self.by_path.candidates(entry.topics(), &mut addresses);
            for address in addresses.drain(..) {
                if let Some((matcher, groups)) = self.patterns.get(&address)
                    && matcher.matches_any(entry.topics())
                {
                    candidates.extend(groups.iter().cloned());
                }
            }
            self.scratch_addresses = addresses;
        }
        let mut queued = 0;
        for group in candidates.drain(..) {
            let pushed = group.push(entry, wake);
            queued += pushed.queued;
            for _ in &pushed.evicted {
                counts.connected.fetch_sub(1, Ordering::Relaxed);
                counts.count_subscriptions(group.matchers(), false);
            }
            evicted.extend(pushed.evicted);
            if let Some(until) = pushed.pace_until {
                paced.push((Arc::clone(&group), until));
            }
            if pushed.start_writer {
                writers.push(group);
            }
        }
        self.scratch = candidates;
        queued
    }
}

impl Dispatch for Registry {
    fn dispatch(&self, entry: &Arc<Entry>) {
        let mut wake = std::mem::take(&mut *self.wake.lock());
        let mut evicted = Vec::new();
        let mut writers = Vec::new();
        let mut queued = 0;
        let mut paced = Vec::new();
        for shard in self.shards.iter() {
            queued += shard.lock().dispatch(
                entry,
                &mut wake,
                &mut evicted,
                &mut writers,
                &self.stats,
                &mut paced,
            );
        }
        if !paced.is_empty() {
            let position = entry.position();
            let mut pacing = self.pacing.lock();
            // A publish given up before it was answered leaves its marks
            // behind: they go once they are this far back.
            pacing.retain(|(at, _, _)| at.saturating_add(PACING_KEPT) > position);
            pacing.extend(
                paced
                    .into_iter()
                    .map(|(group, until)| (position, group, until)),
            );
        }
        self.last_dispatched
            .store(entry.position(), Ordering::Release);
        // Outside every lock.
        for waker in wake.drain(..) {
            waker.wake();
        }
        *self.wake.lock() = wake;
        for group in writers {
            start_writer(group, self.runtime.get());
        }
        for state in &evicted {
            state.fire();
        }
        self.stats.delivered.fetch_add(queued, Ordering::Relaxed);
        self.stats
            .slow_disconnects
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
    }
}
