//! The ordered log of updates, and its in-memory implementation.
//!
//! A hub is an ordered log plus local dispatch: an append makes an entry
//! durable (as durable as the implementation promises), then hands it to the
//! [`Dispatch`] target in log order. Replay reads the log by position. A
//! clustered hub is another [`Log`] implementation; nothing else changes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};

use crate::{Entry, HubError, Position};

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

    /// The position of the newest committed entry (0 when nothing was ever
    /// appended). The hub starts dispatch there, so a subscriber that joins
    /// before the first append of this process (e.g. after a restart of a
    /// durable log) still replays what the log holds.
    fn last_position(&self) -> Position;

    /// Appends an entry. Resolves once it is committed and dispatched, with the
    /// entry at its position.
    fn append(&self, entry: Entry) -> BoxFuture<'_, Result<Arc<Entry>, HubError>>;

    /// The position of the earliest retained entry with this id.
    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<Position>, HubError>>;

    /// Up to `limit` retained entries with positions in `(after, up_to]`, in order.
    fn read(
        &self,
        after: Position,
        up_to: Position,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Entry>>, HubError>>;

    /// The entry just before `position` that is still retained, if any: the
    /// cursor a subscriber resumed after (`Mercure-Last-Event-ID`).
    fn id_before(&self, position: Position) -> BoxFuture<'_, Result<Option<String>, HubError>>;
}

/// A bounded in-memory log: the newest `capacity` entries are kept.
pub struct MemoryLog {
    capacity: usize,
    target: OnceLock<Arc<dyn Dispatch>>,
    /// Held from position assignment through dispatch, so dispatch order is log order.
    sequencer: Mutex<Position>,
    store: RwLock<Store>,
}

#[derive(Default)]
struct Store {
    entries: VecDeque<Arc<Entry>>,
    /// Position of `entries[0]`.
    first: Position,
    /// id → earliest retained position with that id.
    ids: HashMap<Box<str>, Position>,
}

impl MemoryLog {
    /// A log keeping the newest `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            target: OnceLock::new(),
            sequencer: Mutex::new(0),
            store: RwLock::new(Store {
                first: 1,
                ..Store::default()
            }),
        }
    }

    fn append_now(&self, entry: Entry) -> Arc<Entry> {
        let mut last = self.sequencer.lock();
        *last += 1;
        let entry = Arc::new(entry.at_position(*last));
        {
            let mut store = self.store.write();
            if store.entries.len() == self.capacity {
                if let Some(old) = store.entries.pop_front()
                    && store.ids.get(old.id()) == Some(&old.position())
                {
                    store.ids.remove(old.id());
                }
                store.first += 1;
            }
            store
                .ids
                .entry(entry.id().into())
                .or_insert(entry.position());
            store.entries.push_back(Arc::clone(&entry));
        }
        if let Some(target) = self.target.get() {
            target.dispatch(&entry);
        }
        entry
    }
}

impl Log for MemoryLog {
    fn attach(&self, target: Arc<dyn Dispatch>) {
        let _ = self.target.set(target);
    }

    fn last_position(&self) -> Position {
        *self.sequencer.lock()
    }

    fn append(&self, entry: Entry) -> BoxFuture<'_, Result<Arc<Entry>, HubError>> {
        let entry = self.append_now(entry);
        Box::pin(async move { Ok(entry) })
    }

    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<Position>, HubError>> {
        let found = self.store.read().ids.get(id).copied();
        Box::pin(async move { Ok(found) })
    }

    fn read(
        &self,
        after: Position,
        up_to: Position,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Entry>>, HubError>> {
        let store = self.store.read();
        let start = after.saturating_add(1).max(store.first);
        let entries = if start > up_to {
            Vec::new()
        } else {
            let skip = usize::try_from(start - store.first).unwrap_or(usize::MAX);
            let take = usize::try_from(up_to - start + 1)
                .unwrap_or(usize::MAX)
                .min(limit);
            store
                .entries
                .iter()
                .skip(skip)
                .take(take)
                .cloned()
                .collect()
        };
        drop(store);
        Box::pin(async move { Ok(entries) })
    }

    fn id_before(&self, position: Position) -> BoxFuture<'_, Result<Option<String>, HubError>> {
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
