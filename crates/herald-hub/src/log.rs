//! The ordered log of updates, and its in-memory implementation.
//!
//! A hub is an ordered log plus local dispatch: an append makes an entry
//! durable (as durable as the implementation promises), then hands it to the
//! [`Dispatch`] target in log order. Replay reads the log by position. A
//! clustered hub is another [`Log`] implementation; nothing else changes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use foldhash::fast::RandomState;

use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};

use crate::{Entry, HubError, Position};

/// What a log holds, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Entries retained.
    pub entries: u64,
    /// Bytes of retained entries (encoded frames, or stored records).
    pub bytes: u64,
    /// Entries discarded by retention since the log was opened.
    pub discarded: u64,
    /// Reads of stored history running now, for a log that limits them
    /// (the durable log's replay readers); 0 for the others.
    pub reads_running: u64,
    /// Reads of stored history waiting for their turn, for a log that
    /// limits them; 0 for the others.
    pub reads_waiting: u64,
}

/// How much one [`Log::read`] returns at most: a replay holds a batch in
/// memory per subscriber, so it is bounded in bytes as well as in entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    /// Entries at most.
    pub entries: usize,
    /// Bytes of encoded frames at most, but never fewer than one entry: the
    /// entry that reaches the bound is the batch's last.
    pub bytes: usize,
}

impl ReadLimit {
    /// At most `entries` entries, whatever their size.
    pub const fn entries(entries: usize) -> Self {
        Self {
            entries,
            bytes: usize::MAX,
        }
    }

    /// The first entries of `entries` that this limit allows, in order.
    pub fn take(&self, entries: impl IntoIterator<Item = Arc<Entry>>) -> Vec<Arc<Entry>> {
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        for entry in entries {
            if taken.len() >= self.entries || (!taken.is_empty() && bytes >= self.bytes) {
                break;
            }
            bytes = bytes.saturating_add(entry.frame().len());
            taken.push(entry);
        }
        taken
    }
}

/// Decides whether a read keeps an entry, from its topics and whether it is
/// private (see [`Log::read_matching`]).
pub type EntryFilter = Arc<dyn Fn(&[&str], bool) -> bool + Send + Sync>;

/// Whether `wanted` keeps `entry`.
pub fn filter_keeps(wanted: &EntryFilter, entry: &Entry) -> bool {
    let topics: Vec<&str> = entry.topics().iter().map(|t| &**t).collect();
    wanted(&topics, entry.is_private())
}

/// What [`Log::read_topics`] or [`Log::read_matching`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilteredRead {
    /// The entries found, in order.
    pub entries: Vec<Arc<Entry>>,
    /// The position the read looked through: the next one starts after it
    /// (`up_to` once there is nothing more to look at).
    pub through: Position,
}

/// Whether `entry` has one of `topics`.
pub fn has_any(entry: &Entry, topics: &[Arc<str>]) -> bool {
    entry
        .topics()
        .iter()
        .any(|topic| topics.iter().any(|wanted| **wanted == **topic))
}

/// Receives committed entries in log order (the registry of local subscribers).
pub trait Dispatch: Send + Sync + 'static {
    /// Delivers one committed entry. Called in position order, never concurrently.
    fn dispatch(&self, entry: &Arc<Entry>);
}

/// An ordered, position-indexed log of committed updates.
pub trait Log: Send + Sync + 'static {
    /// Connects the log to the target that receives every committed entry.
    /// Called once, before the first append.
    fn attach(&self, target: Arc<dyn Dispatch>);

    /// The position of the newest committed entry (0 for an empty log). A hub
    /// starts dispatching after it, so that a subscriber resuming before the
    /// first new update still replays everything committed before.
    fn head(&self) -> Position;

    /// Appends an entry. Resolves once it is committed and dispatched, with the
    /// entry at its position.
    fn append(&self, entry: Entry) -> BoxFuture<'_, Result<Arc<Entry>, HubError>>;

    /// The position of the earliest retained entry with this id.
    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<Position>, HubError>>;

    /// The retained entries with positions in `(after, up_to]`, in order, as
    /// many as `limit` allows. A log may make reads of stored history wait
    /// their turn, so that replays cannot take every core (the durable
    /// log's `max_replay_readers`); [`LogStats`] then counts them.
    fn read(
        &self,
        after: Position,
        up_to: Position,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<Vec<Arc<Entry>>, HubError>>;

    /// The retained entries with positions in `(after, up_to]` that have at
    /// least one of `topics`, in order, as many as `limit` allows, and how
    /// far the read looked: `None` when this log keeps no index by topic
    /// (then [`Log::read`] everything and filter). A replay for exact
    /// topics reads the entries it wants instead of every entry after its
    /// point.
    fn read_topics(
        &self,
        after: Position,
        up_to: Position,
        topics: Arc<[Arc<str>]>,
        limit: ReadLimit,
    ) -> Option<BoxFuture<'_, Result<FilteredRead, HubError>>> {
        let _ = (after, up_to, topics, limit);
        None
    }

    /// The retained entries with positions in `(after, up_to]` that
    /// `wanted` keeps, in order, as many as `limit` allows, and how far the
    /// read looked. A log that can decide before decoding an entry whole
    /// saves that work for the entries it drops (the durable log does, and
    /// within its reads' turns, so the matching is bounded with the read);
    /// it may look at fewer entries than the range holds, and say so in
    /// [`FilteredRead::through`]. By default, [`Log::read`] then `wanted`.
    fn read_matching(
        &self,
        after: Position,
        up_to: Position,
        wanted: EntryFilter,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<FilteredRead, HubError>> {
        Box::pin(async move {
            let batch = self.read(after, up_to, limit).await?;
            let through = batch.last().map_or(up_to, |e| e.position());
            let entries = batch
                .into_iter()
                .filter(|entry| filter_keeps(&wanted, entry))
                .collect();
            Ok(FilteredRead { entries, through })
        })
    }

    /// The entry just before `position` that is still retained, if any: the
    /// cursor a subscriber resumed after (`Mercure-Last-Event-ID`).
    fn id_before(&self, position: Position) -> BoxFuture<'_, Result<Option<String>, HubError>>;

    /// What the log holds now.
    fn stats(&self) -> LogStats;

    /// Whether the log can take appends now (its storage is present and
    /// writable); the error says what is wrong.
    fn check_ready(&self) -> BoxFuture<'_, Result<(), HubError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether the log can still work at all, or only a restart would bring
    /// it back (liveness, where [`Log::check_ready`] is readiness); the error
    /// says why.
    fn check_alive(&self) -> Result<(), HubError> {
        Ok(())
    }

    /// Stops taking appends and makes what was acknowledged durable, waiting
    /// for it; the error says what could not be made durable or tidied up
    /// (the next open then repairs what it can). Blocking: call it at
    /// shutdown, off the runtime. A second call does nothing.
    fn close(&self) -> Result<(), HubError> {
        Ok(())
    }
}

/// The default of [`MemoryLog::with_max_bytes`]: 256 MiB of entries.
pub const DEFAULT_MEMORY_LOG_BYTES: u64 = 256 << 20;

/// What an entry takes in the memory log, as its byte bound counts it: the
/// frame, and the topics and id it keeps beside it (an update of 64 topics
/// of 2,000 bytes and one byte of data would otherwise count 31 bytes and
/// take 128 KB), with a fixed share for the entry itself and its index.
fn retained_bytes(entry: &Entry) -> u64 {
    /// The entry, its `Arc`, its queue slot, its topics' boxes and its id's
    /// index entry, roughly.
    const OVERHEAD: usize = 160;
    // Each topic's box, and its position in the topic index.
    let topics: usize = entry.topics().iter().map(|topic| topic.len() + 24).sum();
    (entry.frame().len() + topics + 2 * entry.id().len() + OVERHEAD) as u64
}

/// A bounded in-memory log: the newest `capacity` entries are kept, within
/// a bound on their bytes and, if set, on their age.
pub struct MemoryLog {
    capacity: usize,
    max_bytes: u64,
    max_age: Option<Duration>,
    target: OnceLock<Arc<dyn Dispatch>>,
    /// Held from position assignment through dispatch, so dispatch order is log order.
    sequencer: Mutex<Position>,
    store: RwLock<Store>,
}

impl std::fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLog")
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Store {
    entries: VecDeque<Arc<Entry>>,
    /// Bytes of the retained frames.
    bytes: u64,
    /// Entries evicted since the log was created.
    discarded: u64,
    /// Position of `entries[0]`.
    first: Position,
    /// id → earliest retained position with that id. Every append inserts
    /// an id and evicts one, hence a fast hash (the keys come from authorized
    /// publishers or the hub, and the seed is random per process).
    ids: HashMap<Box<str>, Position, RandomState>,
    /// id → the later retained positions of a reused id, oldest first, so
    /// that discarding the earliest occurrence promotes the next one.
    reused: HashMap<Box<str>, VecDeque<Position>, RandomState>,
    /// topic → the retained positions of the entries with it, oldest first:
    /// a replay for exact topics reads those instead of scanning the log
    /// (3 ms per resume from `earliest` to a quiet topic among 100,000
    /// entries otherwise; docs/benchmarks.md, change 33).
    topics: HashMap<Box<str>, VecDeque<Position>, RandomState>,
}

impl MemoryLog {
    /// A log keeping the newest `capacity` entries, at most
    /// [`DEFAULT_MEMORY_LOG_BYTES`] of them.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_bytes: DEFAULT_MEMORY_LOG_BYTES,
            max_age: None,
            target: OnceLock::new(),
            sequencer: Mutex::new(0),
            store: RwLock::new(Store {
                first: 1,
                ..Store::default()
            }),
        }
    }

    /// Keeps the newest entries that add up to at most `max_bytes` (each
    /// counted with its frame, topics and id)
    /// (the newest entry is always kept, whatever its size): the entry bound
    /// alone let 100,000 updates of 2 MiB take 200 GB.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Discards the entries published more than `max_age` ago, as the
    /// durable log's retention does, newest included: an update too old to
    /// be replayed is too old whatever follows it.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age).filter(|age| !age.is_zero());
        self
    }

    /// Whether `entry` is older than `max_age` at `now`.
    fn expired(&self, entry: &Entry, now: SystemTime) -> bool {
        self.max_age.is_some_and(|max_age| {
            now.duration_since(entry.published_at())
                .is_ok_and(|age| age > max_age)
        })
    }

    /// Discards the entries that outlived `max_age`. Called before every
    /// read as well as on append, so that a quiet log replays nothing stale
    /// and `find` does not resume from a discarded update.
    fn expire(&self) {
        if self.max_age.is_none() {
            return;
        }
        let now = SystemTime::now();
        let stale = |store: &Store| store.entries.front().is_some_and(|e| self.expired(e, now));
        if !stale(&self.store.read()) {
            return;
        }
        let mut store = self.store.write();
        while stale(&store) {
            store.discard_oldest();
        }
    }

    fn append_now(&self, entry: Entry) -> Arc<Entry> {
        let mut last = self.sequencer.lock();
        *last += 1;
        let entry = Arc::new(entry.at_position(*last));
        {
            let now = SystemTime::now();
            let mut store = self.store.write();
            let size = retained_bytes(&entry);
            while store.entries.len() >= self.capacity
                || (!store.entries.is_empty() && store.bytes + size > self.max_bytes)
                || store.entries.front().is_some_and(|e| self.expired(e, now))
            {
                store.discard_oldest();
            }
            store.remember(&entry);
            store.bytes += size;
            store.entries.push_back(Arc::clone(&entry));
        }
        if let Some(target) = self.target.get() {
            target.dispatch(&entry);
        }
        entry
    }
}

impl Store {
    /// Discards the oldest entry, if any.
    fn discard_oldest(&mut self) {
        let Some(old) = self.entries.pop_front() else {
            return;
        };
        self.bytes -= retained_bytes(&old);
        self.discarded += 1;
        self.forget(&old);
        self.first += 1;
    }

    fn remember(&mut self, entry: &Entry) {
        let position = entry.position();
        for topic in entry.topics() {
            match self.topics.get_mut(&**topic) {
                // An update may name a topic twice: it is listed once.
                Some(positions) if positions.back() == Some(&position) => {}
                Some(positions) => positions.push_back(position),
                None => {
                    self.topics
                        .insert(topic.clone(), VecDeque::from([position]));
                }
            }
        }
        if self.ids.contains_key(entry.id()) {
            self.reused
                .entry(entry.id().into())
                .or_default()
                .push_back(entry.position());
        } else {
            self.ids.insert(entry.id().into(), entry.position());
        }
    }

    /// Called when `old`, the oldest entry, is discarded.
    fn forget(&mut self, old: &Entry) {
        for topic in old.topics() {
            if let Some(positions) = self.topics.get_mut(&**topic) {
                if positions.front() == Some(&old.position()) {
                    positions.pop_front();
                }
                if positions.is_empty() {
                    self.topics.remove(&**topic);
                }
            }
        }
        if self.ids.get(old.id()) != Some(&old.position()) {
            return;
        }
        if self.reused.is_empty() {
            self.ids.remove(old.id());
            return;
        }
        let next = self.reused.get_mut(old.id()).and_then(VecDeque::pop_front);
        match next {
            Some(position) => {
                self.ids.insert(old.id().into(), position);
                if self.reused.get(old.id()).is_some_and(VecDeque::is_empty) {
                    self.reused.remove(old.id());
                }
            }
            None => {
                self.ids.remove(old.id());
            }
        }
    }
}

impl Log for MemoryLog {
    fn attach(&self, target: Arc<dyn Dispatch>) {
        let _ = self.target.set(target);
    }

    fn head(&self) -> Position {
        *self.sequencer.lock()
    }

    fn stats(&self) -> LogStats {
        self.expire();
        let store = self.store.read();
        LogStats {
            entries: store.entries.len() as u64,
            bytes: store.bytes,
            discarded: store.discarded,
            ..LogStats::default()
        }
    }

    fn append(&self, entry: Entry) -> BoxFuture<'_, Result<Arc<Entry>, HubError>> {
        let entry = self.append_now(entry);
        Box::pin(async move { Ok(entry) })
    }

    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<Position>, HubError>> {
        self.expire();
        let found = self.store.read().ids.get(id).copied();
        Box::pin(async move { Ok(found) })
    }

    fn read(
        &self,
        after: Position,
        up_to: Position,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<Vec<Arc<Entry>>, HubError>> {
        self.expire();
        let store = self.store.read();
        let start = after.saturating_add(1).max(store.first);
        let entries = if start > up_to {
            Vec::new()
        } else {
            let skip = usize::try_from(start - store.first).unwrap_or(usize::MAX);
            let take = usize::try_from(up_to - start + 1).unwrap_or(usize::MAX);
            limit.take(store.entries.iter().skip(skip).take(take).cloned())
        };
        drop(store);
        Box::pin(async move { Ok(entries) })
    }

    fn read_topics(
        &self,
        after: Position,
        up_to: Position,
        topics: Arc<[Arc<str>]>,
        limit: ReadLimit,
    ) -> Option<BoxFuture<'_, Result<FilteredRead, HubError>>> {
        self.expire();
        let store = self.store.read();
        let start = after.saturating_add(1).max(store.first);
        // The first `limit.entries` of the merged lists are among the first
        // `limit.entries` of each.
        let mut positions: Vec<Position> = Vec::new();
        for topic in topics.iter() {
            if let Some(list) = store.topics.get(&**topic) {
                let from = list.partition_point(|&p| p < start);
                positions.extend(
                    list.range(from..)
                        .take_while(|&&p| p <= up_to)
                        .take(limit.entries),
                );
            }
        }
        positions.sort_unstable();
        positions.dedup();
        let entries = limit.take(positions.iter().filter_map(|&p| {
            let index = usize::try_from(p - store.first).ok()?;
            store.entries.get(index).cloned()
        }));
        drop(store);
        let full =
            entries.len() == limit.entries || entries.len() < positions.len().min(limit.entries);
        let through = match entries.last() {
            Some(last) if full => last.position(),
            _ => up_to,
        };
        Some(Box::pin(
            async move { Ok(FilteredRead { entries, through }) },
        ))
    }

    fn id_before(&self, position: Position) -> BoxFuture<'_, Result<Option<String>, HubError>> {
        self.expire();
        let store = self.store.read();
        let found = position
            .checked_sub(1)
            .filter(|p| *p >= store.first)
            .and_then(|p| store.entries.get(usize::try_from(p - store.first).ok()?))
            .map(|e| e.id().to_owned());
        drop(store);
        Box::pin(async move { Ok(found) })
    }
}
