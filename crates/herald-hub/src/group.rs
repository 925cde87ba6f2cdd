//! Subscribers listening with the same matchers form a group, and a group
//! holds one queue of entries that all its members read: dispatch does one
//! push per group instead of one per subscriber.
//!
//! Why: profiling a fan-out to 10,000 subscribers (docs/benchmarks.md) put a
//! quarter of the hub's CPU in dispatch itself, almost all of it cache misses
//! on per-subscriber queues, locks and wakers touched for every entry. A
//! group's queue is one lock and one ring touched once per entry; members
//! waiting for an entry are woken, busy ones find it when they next read.
//!
//! Each entry in the ring counts the members still to read it and leaves the
//! ring once every member has, so an idle group holds nothing. A member that
//! lets `capacity` entries, or `max_bytes` of their frames, pile up is too
//! slow: it is evicted at once (the registry drops it and fires its hook),
//! keeps what was already on its way, and reads the end after that. The
//! byte bound is what holds with large updates: 1,024 of 2 MiB are 2 GiB.
//!
//! Private entries are queued for every member; each member skips those its
//! grants do not allow as it reads (see `Registration`), and is moved past
//! them rather than evicted when the ring is full.
//!
//! A member whose connection is a [`Wire`] is written to directly once it
//! has caught up: instead of waking 10,000 tasks for an entry, a writer task
//! per group walks its direct members in slices, writing each one everything
//! it has pending in one write, as the benchmark's epoll floor does. A member
//! goes back to being served by its own task when its socket is full (the
//! wire keeps the rest and the task flushes it), and comes back when it has
//! caught up again. Direct writes happen under the group lock, and a member
//! is direct only while its task holds nothing it has not written, so the
//! order of a member's entries is the order they were queued.
//!
//! With a publish pace (40 by default), a group whose writer is busy takes
//! that many entries per pass over its direct members, spread over the pass:
//! each further entry's publish is answered once the writer has written its
//! share of members since the last one. Without it a publisher can queue
//! entries faster than passes go, every member's next write grows, and each
//! entry waits longer for its pass (docs/benchmarks.md, change 15); with it
//! that wait is the publisher's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use slab::Slab;

use crate::registry::SubscriberState;
use crate::{Entry, Grants, Matcher, Position};

/// How many direct members a writer serves before it yields: publishes and
/// other connections get the thread between slices.
const SLICE: usize = 64;

/// How many direct members a writer serves at least before it gives way to
/// work woken from outside the runtime (see [`Group::write_slice`]).
const SLICE_MIN: usize = 4;

/// Up to this many direct members are written by the dispatch itself: a
/// task to write one or two sockets costs more than the writes.
const INLINE: usize = 4;

/// A subscriber's connection, written to directly by the hub.
///
/// Implemented by the HTTP edge for connections whose response it writes
/// itself; calls come from the hub's writer tasks under a group lock, so
/// they must never wait.
pub trait Wire: Send + Sync {
    /// Writes `entries`' frames, in order and as one piece, without waiting;
    /// what the socket does not take now is kept, to be written before
    /// anything else. Returns `false` when the wire did not take them: it is
    /// closed or failed, or still holds bytes from an earlier write. The hub
    /// then stops writing to it directly and wakes the subscriber's task,
    /// which reads those entries itself.
    fn write_entries(&self, entries: &[Arc<Entry>]) -> bool;

    /// Whether the wire is open and holds no bytes still to write.
    fn is_clear(&self) -> bool;
}

/// What identifies a group: its matchers, each as the registry indexes it,
/// sorted and without duplicates.
pub(crate) type GroupKey = Box<[MatcherKey]>;

/// One matcher as a group key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MatcherKey {
    /// `*`.
    Wildcard,
    /// One topic.
    Exact(Arc<str>),
    /// A compiled pattern or selector, by address: compiled matchers are
    /// shared by source, and the group keeps its own alive.
    Scan(usize),
}

/// Subscribers with the same matchers, and the entries they have yet to read.
pub(crate) struct Group {
    matchers: Arc<[Matcher]>,
    key: GroupKey,
    capacity: usize,
    /// The most bytes of frames the ring holds (the newest entry always fits).
    max_bytes: u64,
    /// Entries taken per pass of a busy writer (0: no pace).
    pace: usize,
    state: Mutex<GroupState>,
}

struct GroupState {
    /// Entries some member has yet to read, oldest first.
    ring: VecDeque<Queued>,
    /// The number of `ring[0]`: every entry the group receives is numbered.
    start: u64,
    /// The bytes of the frames in `ring`.
    bytes: u64,
    /// The position of the last entry queued: an entry matched by several
    /// of the group's matchers is queued once.
    last_position: Position,
    members: Slab<Member>,
    /// Members not evicted.
    live: usize,
    /// Keys of members waiting for an entry, each with its waker set.
    waiting: Vec<usize>,
    /// Keys of members written to directly.
    direct: Vec<usize>,
    /// A writer task is scheduled or running.
    writing: bool,
    /// An entry was queued since the writer's pass began: it passes again.
    queued_since_pass: bool,
    /// Where the writer's pass is in `direct`.
    pass_at: usize,
    /// Members the writer has written to (or found with nothing pending).
    writes: u64,
    /// The value of `writes` the last paced entry's publish waits for.
    paced_until: u64,
    /// Publishers waiting for `writes` to reach their mark.
    pacers: Vec<Waker>,
}

struct Queued {
    entry: Arc<Entry>,
    /// Live members yet to read it.
    unread: u32,
}

struct Member {
    /// The number of the next entry this member reads.
    cursor: u64,
    waker: Option<Waker>,
    /// Its key is in `waiting`.
    waiting: bool,
    /// Set once evicted for being too slow: the entries that were on their
    /// way to it, which it still reads before the end.
    evicted: Option<Box<Backlog>>,
    state: Arc<SubscriberState>,
    /// Its connection, if the hub may write to it directly.
    wire: Option<Arc<dyn Wire>>,
    /// Its key is in `direct`: the writer, not its task, sends its entries.
    is_direct: bool,
    /// Its entries at or before this position are not sent (its task
    /// replayed them from the log, or they precede its resume point).
    skip_through: Position,
    grants: Arc<Grants>,
}

/// An evicted member's entries still to read (boxed in `Member`: a pointer
/// per member, not a queue).
struct Backlog(VecDeque<Arc<Entry>>);

/// What [`Group::push`] did.
pub(crate) struct Pushed {
    /// Live members the entry was queued for.
    pub(crate) queued: u64,
    /// Members evicted because it did not fit their backlog.
    pub(crate) evicted: Vec<Arc<SubscriberState>>,
    /// A writer task must be started for the group's direct members.
    pub(crate) start_writer: bool,
    /// The entry's publish is to be answered once the writer has reached
    /// this count of writes (see [`Group::poll_paced`]).
    pub(crate) pace_until: Option<u64>,
}

impl Group {
    /// An empty group for `matchers`, known by `key`, holding at most
    /// `capacity` entries (and `max_bytes` of their frames) a member has not
    /// read, and taking `pace` entries per pass while its writer is busy (0:
    /// as many as come).
    pub(crate) fn new(
        matchers: Arc<[Matcher]>,
        key: GroupKey,
        capacity: usize,
        max_bytes: u64,
        pace: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            matchers,
            key,
            capacity: capacity.max(1),
            max_bytes,
            pace,
            state: Mutex::new(GroupState {
                ring: VecDeque::new(),
                start: 0,
                bytes: 0,
                last_position: 0,
                // Room for one: with a topic per user most groups never
                // hold more, and a slab grown by one insert holds four
                // members (320 bytes) for the rest of the group's life.
                members: Slab::with_capacity(1),
                live: 0,
                waiting: Vec::new(),
                direct: Vec::new(),
                writing: false,
                queued_since_pass: false,
                pass_at: 0,
                writes: 0,
                paced_until: 0,
                pacers: Vec::new(),
            }),
        })
    }

    /// The group's matchers.
    pub(crate) fn matchers(&self) -> &Arc<[Matcher]> {
        &self.matchers
    }

    /// The group's key.
    pub(crate) fn key(&self) -> &GroupKey {
        &self.key
    }

    /// Adds a member that reads the entries pushed from now on; returns its key.
    pub(crate) fn join(&self, state: Arc<SubscriberState>, grants: Arc<Grants>) -> usize {
        let mut g = self.state.lock();
        let cursor = g.start + g.ring.len() as u64;
        g.live += 1;
        g.members.insert(Member {
            cursor,
            waker: None,
            waiting: false,
            evicted: None,
            state,
            wire: None,
            is_direct: false,
            skip_through: 0,
            grants,
        })
    }

    /// Lets the hub write member `key`'s entries to `wire` directly whenever
    /// it has caught up.
    pub(crate) fn attach_wire(&self, key: usize, wire: Arc<dyn Wire>) {
        if let Some(member) = self.state.lock().members.get_mut(key) {
            member.wire = Some(wire);
        }
    }

    /// Removes member `key`; returns whether it was live (not evicted) and
    /// whether the group is now empty.
    pub(crate) fn leave(&self, key: usize) -> (bool, bool) {
        let mut g = self.state.lock();
        let Some(member) = g.members.try_remove(key) else {
            return (false, g.members.is_empty());
        };
        if member.waiting {
            unlist(&mut g.waiting, key);
        }
        if member.is_direct {
            g.undirect(key);
        }
        let live = member.evicted.is_none();
        if live {
            g.live -= 1;
            g.forget_reads_from(member.cursor);
        }
        (live, g.members.is_empty())
    }

    /// Queues `entry` for every member, unless it was already queued; wakes
    /// the members waiting (their wakers are added to `wake`).
    pub(crate) fn push(&self, entry: &Arc<Entry>, wake: &mut Vec<Waker>) -> Pushed {
        let mut pushed = Pushed {
            queued: 0,
            evicted: Vec::new(),
            start_writer: false,
            pace_until: None,
        };
        let mut g = self.state.lock();
        // Equal when several of the group's matchers select the entry. An
        // earlier position would be a log dispatching out of order, which
        // this guard would turn into a silent loss: loud in tests.
        debug_assert!(
            g.last_position <= entry.position(),
            "entry {} dispatched after entry {}",
            entry.position(),
            g.last_position
        );
        if g.last_position >= entry.position() {
            return pushed;
        }
        g.last_position = entry.position();
        if g.live == 0 {
            return pushed;
        }
        let size = entry.frame().len() as u64;
        while !g.ring.is_empty()
            && (g.ring.len() >= self.capacity || g.bytes + size > self.max_bytes)
        {
            let held = g.ring.len();
            g.evict_laggards(&mut pushed.evicted, wake);
            if g.ring.len() == held {
                break;
            }
        }
        if g.live == 0 {
            return pushed;
        }
        let unread = u32::try_from(g.live).unwrap_or(u32::MAX);
        g.bytes += size;
        g.ring.push_back(Queued {
            entry: Arc::clone(entry),
            unread,
        });
        pushed.queued = g.live as u64;
        if !g.direct.is_empty() {
            g.queued_since_pass = true;
            if g.writing && self.pace > 0 {
                // One entry per `spacing` members written: `pace` per pass.
                let spacing = (g.direct.len() / self.pace).max(1) as u64;
                let until = (g.paced_until + spacing).max(g.writes);
                g.paced_until = until;
                if until > g.writes {
                    pushed.pace_until = Some(until);
                }
            }
            if !g.writing {
                g.writing = true;
                // A small group is written now; it needs a writer task only
                // if its wires stopped taking entries meanwhile.
                pushed.start_writer = g.direct.len() > INLINE || g.write_slice(wake, &|| false);
            }
        }
        let GroupState {
            members, waiting, ..
        } = &mut *g;
        for key in waiting.drain(..) {
            if let Some(member) = members.get_mut(key) {
                member.waiting = false;
                if let Some(waker) = member.waker.take() {
                    wake.push(waker);
                }
            }
        }
        pushed
    }

    /// The next entry for member `key` if one is queued; never waits.
    pub(crate) fn try_next(&self, key: usize) -> Option<Arc<Entry>> {
        self.state.lock().take(key)
    }

    /// The next entry for member `key`, or `None` once it is evicted and
    /// has read what was on its way. With nothing queued, a member with a
    /// clear wire becomes direct: the writer sends it what comes next,
    /// except entries at or before `skip_through`.
    pub(crate) fn poll_next(
        &self,
        key: usize,
        skip_through: Position,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Arc<Entry>>> {
        let mut g = self.state.lock();
        if let Some(entry) = g.take(key) {
            return Poll::Ready(Some(entry));
        }
        let Some(member) = g.members.get_mut(key) else {
            return Poll::Ready(None);
        };
        if member.evicted.is_some() {
            return Poll::Ready(None);
        }
        match &mut member.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => member.waker = Some(cx.waker().clone()),
        }
        if member.is_direct {
            return Poll::Pending;
        }
        if member.wire.as_ref().is_some_and(|wire| wire.is_clear()) {
            member.is_direct = true;
            member.skip_through = skip_through;
            if member.waiting {
                member.waiting = false;
                unlist(&mut g.waiting, key);
            }
            g.direct.push(key);
        } else if !member.waiting {
            member.waiting = true;
            g.waiting.push(key);
        }
        Poll::Pending
    }

    /// Writes the next slice of direct members everything they have pending;
    /// returns whether the writer has more to do. Members whose wire refused
    /// go back to their tasks, whose wakers are added to `wake`.
    ///
    /// `give_way` is asked between members, once `SLICE_MIN` are served:
    /// when it says yes the slice ends early. A slice of 64 writes takes
    /// about a millisecond on a loaded core, and a task woken from another
    /// thread (a durable log's dispatcher, after a commit) would otherwise
    /// wait that long before the runtime looks at it, with a publisher's
    /// answer behind it.
    pub(crate) fn write_slice(&self, wake: &mut Vec<Waker>, give_way: &dyn Fn() -> bool) -> bool {
        self.state.lock().write_slice(wake, give_way)
    }

    /// Ready once the writer has made `until` writes, or has stopped (its
    /// pass is over: there is nothing left to pace against).
    pub(crate) fn poll_paced(&self, until: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.state.lock();
        if !g.writing || g.writes >= until {
            return Poll::Ready(());
        }
        g.pacers.push(cx.waker().clone());
        Poll::Pending
    }
}

/// Whether a member holding `grants` reads `entry`: private entries are
/// queued for every member, and those its grants hide are skipped.
pub(crate) fn readable(entry: &Entry, grants: &Grants) -> bool {
    !entry.is_private() || grants.can_read(entry.topics())
}

/// Removes `key` from a list of member keys.
fn unlist(list: &mut Vec<usize>, key: usize) {
    if let Some(at) = list.iter().position(|k| *k == key) {
        list.swap_remove(at);
    }
}

impl GroupState {
    fn write_slice(&mut self, wake: &mut Vec<Waker>, give_way: &dyn Fn() -> bool) -> bool {
        if self.pass_at == 0 {
            // A new pass sees everything queued so far.
            self.queued_since_pass = false;
        }
        let end = self.start + self.ring.len() as u64;
        // Inline for the usual few entries: a small group is written by
        // each dispatch, and a heap batch was an allocation per publish.
        let mut batch: smallvec::SmallVec<[Arc<Entry>; 8]> = smallvec::SmallVec::new();
        let mut served = 0;
        while served < SLICE && self.pass_at < self.direct.len() {
            if served >= SLICE_MIN && give_way() {
                break;
            }
            served += 1;
            self.writes += 1;
            let key = self.direct[self.pass_at];
            let member = &mut self.members[key];
            if member.cursor == end {
                self.pass_at += 1;
                continue;
            }
            let from = usize::try_from(member.cursor - self.start).unwrap_or(usize::MAX);
            batch.clear();
            for queued in self.ring.iter().skip(from) {
                let entry = &queued.entry;
                if entry.position() <= member.skip_through || !readable(entry, &member.grants) {
                    continue;
                }
                batch.push(Arc::clone(entry));
            }
            let written = batch.is_empty()
                || member
                    .wire
                    .as_ref()
                    .is_some_and(|wire| wire.write_entries(&batch));
            if written {
                let cursor = std::mem::replace(&mut member.cursor, end);
                self.pass_at += 1;
                self.forget_reads_between(cursor, end);
            } else {
                // Its socket is full or closed: its task takes over.
                member.is_direct = false;
                if let Some(waker) = member.waker.take() {
                    wake.push(waker);
                }
                self.direct.swap_remove(self.pass_at);
            }
        }
        // Paced publishers check their mark again.
        wake.append(&mut self.pacers);
        if self.pass_at < self.direct.len() {
            return true;
        }
        self.pass_at = 0;
        if std::mem::take(&mut self.queued_since_pass) && !self.direct.is_empty() {
            return true;
        }
        self.writing = false;
        false
    }

    /// Takes member `key`'s next entry.
    fn take(&mut self, key: usize) -> Option<Arc<Entry>> {
        let member = self.members.get_mut(key)?;
        if let Some(backlog) = &mut member.evicted {
            return backlog.0.pop_front();
        }
        // The writer sends a direct member's entries; its task taking one
        // too could send it out of order.
        if member.is_direct {
            return None;
        }
        let index = usize::try_from(member.cursor - self.start).ok()?;
        let queued = self.ring.get_mut(index)?;
        member.cursor += 1;
        queued.unread -= 1;
        let entry = Arc::clone(&queued.entry);
        if index == 0 {
            self.trim();
        }
        Some(entry)
    }

    /// Drops the entries every live member has read from the front.
    fn trim(&mut self) {
        while self.ring.front().is_some_and(|q| q.unread == 0) {
            if let Some(queued) = self.ring.pop_front() {
                self.bytes -= queued.entry.frame().len() as u64;
            }
            self.start += 1;
        }
        // A burst can grow the ring a lot; give the memory back once drained.
        if self.ring.is_empty() && self.ring.capacity() > 64 {
            self.ring = VecDeque::new();
        }
    }

    /// A live member leaves with its cursor at `cursor`: the entries from
    /// there on no longer wait for it.
    fn forget_reads_from(&mut self, cursor: u64) {
        let end = self.start + self.ring.len() as u64;
        self.forget_reads_between(cursor, end);
    }

    /// A live member read (or skipped) the entries numbered `from..to`.
    fn forget_reads_between(&mut self, from: u64, to: u64) {
        let skip = usize::try_from(from - self.start).unwrap_or(usize::MAX);
        let count = usize::try_from(to - from).unwrap_or(usize::MAX);
        for queued in self.ring.iter_mut().skip(skip).take(count) {
            queued.unread -= 1;
        }
        if skip == 0 {
            self.trim();
        }
    }

    /// Removes a direct member from the writer's list, keeping the pass's
    /// place (a member moved into an already-passed slot is passed again
    /// next time, which costs nothing when it has nothing pending).
    fn undirect(&mut self, key: usize) {
        if let Some(at) = self.direct.iter().position(|k| *k == key) {
            self.direct.swap_remove(at);
            if at < self.pass_at {
                self.pass_at -= 1;
                if at < self.direct.len() && self.pass_at < self.direct.len() {
                    self.direct.swap(at, self.pass_at);
                }
            }
        }
    }

    /// The ring is full: evicts the members that have not read its oldest
    /// entry (they are the furthest behind). Rare, so a scan is fine.
    ///
    /// A member is first moved past the private entries at its cursor that
    /// its grants hide from it: it would skip them as it reads, and a
    /// subscriber whose task is busy (a slow socket) is not to be dropped
    /// for updates it could never see.
    fn evict_laggards(&mut self, evicted: &mut Vec<Arc<SubscriberState>>, wake: &mut Vec<Waker>) {
        let start = self.start;
        let behind: Vec<usize> = self
            .members
            .iter()
            .filter(|(_, m)| m.evicted.is_none() && m.cursor == start)
            .map(|(key, _)| key)
            .collect();
        let mut laggards = Vec::with_capacity(behind.len());
        for key in behind {
            let grants = &self.members[key].grants;
            let hidden = self
                .ring
                .iter()
                .take_while(|q| !readable(&q.entry, grants))
                .count() as u64;
            if hidden == 0 {
                laggards.push(key);
            } else {
                self.members[key].cursor = start + hidden;
                // Trimmed below, once: `start` stays put for the others.
                for queued in self.ring.iter_mut().take(hidden as usize) {
                    queued.unread -= 1;
                }
            }
        }
        for key in laggards {
            // What it may read: the hidden entries would only be skipped.
            let grants = &self.members[key].grants;
            let backlog: VecDeque<Arc<Entry>> = self
                .ring
                .iter()
                .filter(|q| readable(&q.entry, grants))
                .map(|q| Arc::clone(&q.entry))
                .collect();
            if self.members[key].is_direct {
                self.members[key].is_direct = false;
                self.undirect(key);
            }
            let member = &mut self.members[key];
            member.evicted = Some(Box::new(Backlog(backlog)));
            member.state.mark_slow();
            evicted.push(Arc::clone(&member.state));
            if let Some(waker) = member.waker.take() {
                wake.push(waker);
            }
            let waiting = std::mem::take(&mut member.waiting);
            if waiting {
                unlist(&mut self.waiting, key);
            }
            self.live -= 1;
            for queued in self.ring.iter_mut() {
                queued.unread -= 1;
            }
        }
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::SystemTime;

    use super::*;
    use crate::{SubscribeGrant, Update};

    fn entry(position: Position, private: bool) -> Arc<Entry> {
        let update = Update {
            topics: vec!["t".into()],
            data: position.to_string(),
            id: None,
            event_type: None,
            retry: None,
            private,
        };
        Arc::new(
            Entry::encode(update, format!("id-{position}"), SystemTime::now())
                .unwrap()
                .at_position(position),
        )
    }

    fn group(capacity: usize) -> Arc<Group> {
        paced_group(capacity, 0)
    }

    fn paced_group(capacity: usize, pace: usize) -> Arc<Group> {
        Group::new(
            vec![Matcher::Exact("t".into())].into(),
            vec![MatcherKey::Exact("t".into())].into(),
            capacity,
            u64::MAX,
            pace,
        )
    }

    fn reader() -> Arc<Grants> {
        Arc::new(Grants {
            subscribe: vec![SubscribeGrant {
                topics: vec![Matcher::Wildcard],
                payload: None,
            }],
            ..Grants::default()
        })
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Records the ids written to it; refuses writes while `full`.
    #[derive(Default)]
    struct Recorder {
        written: Mutex<Vec<Vec<String>>>,
        full: AtomicBool,
    }

    impl Wire for Recorder {
        fn write_entries(&self, entries: &[Arc<Entry>]) -> bool {
            if self.full.load(Ordering::SeqCst) {
                return false;
            }
            let ids = entries.iter().map(|e| e.id().to_owned()).collect();
            self.written.lock().push(ids);
            true
        }

        fn is_clear(&self) -> bool {
            !self.full.load(Ordering::SeqCst)
        }
    }

    fn push(group: &Group, entry: &Arc<Entry>) -> Pushed {
        let mut wake = Vec::new();
        let pushed = group.push(entry, &mut wake);
        wake.into_iter().for_each(Waker::wake);
        pushed
    }

    fn ids(group: &Group, key: usize) -> Vec<String> {
        std::iter::from_fn(|| group.try_next(key))
            .map(|e| e.id().to_owned())
            .collect()
    }

    fn ring_len(group: &Group) -> usize {
        group.state.lock().ring.len()
    }

    #[test]
    fn every_member_reads_every_entry_in_order_and_read_entries_leave_the_ring() {
        let group = group(8);
        let a = group.join(Arc::default(), Grants::none());
        let b = group.join(Arc::default(), Grants::none());
        for position in 1..=3 {
            assert_eq!(push(&group, &entry(position, false)).queued, 2);
        }
        assert_eq!(
            push(&group, &entry(3, false)).queued,
            0,
            "an entry is queued once"
        );
        assert_eq!(ids(&group, a), ["id-1", "id-2", "id-3"]);
        assert_eq!(ring_len(&group), 3, "b has not read them");
        assert_eq!(ids(&group, b), ["id-1", "id-2", "id-3"]);
        assert_eq!(ring_len(&group), 0);
        // A member joining now reads only what comes next.
        push(&group, &entry(4, false));
        let c = group.join(Arc::default(), Grants::none());
        push(&group, &entry(5, false));
        assert_eq!(ids(&group, c), ["id-5"]);
        // A member leaving no longer holds entries back.
        assert_eq!(group.leave(a), (true, false));
        assert_eq!(ids(&group, b), ["id-4", "id-5"]);
        assert_eq!(ring_len(&group), 0);
    }

    /// Two members join `group`, which holds two entries; one reads every
    /// entry, the other none, and is evicted when the third comes with the
    /// two on their way to it. Returns the keys of the slow and the fast one.
    fn two_members_of_which_one_falls_two_behind(group: &Group) -> (usize, usize) {
        let slow_state = Arc::new(SubscriberState::default());
        let slow = group.join(Arc::clone(&slow_state), Grants::none());
        let fast = group.join(Arc::default(), Grants::none());
        for position in 1..=2 {
            assert!(push(group, &entry(position, false)).evicted.is_empty());
            assert_eq!(ids(group, fast).len(), 1);
        }
        let pushed = push(group, &entry(3, false));
        assert_eq!(pushed.evicted.len(), 1);
        assert_eq!(pushed.queued, 1, "only the fast member is left");
        assert!(slow_state.was_too_slow());
        assert_eq!(ids(group, fast), ["id-3"]);
        assert_eq!(ring_len(group), 0, "the evicted member holds nothing back");
        (slow, fast)
    }

    #[test]
    fn a_member_that_falls_max_bytes_behind_is_evicted_though_under_capacity() {
        let frame = entry(1, false).frame().len() as u64;
        // Room for 1,024 entries, but for the frames of two only.
        let group = Group::new(
            vec![Matcher::Exact("t".into())].into(),
            vec![MatcherKey::Exact("t".into())].into(),
            1024,
            2 * frame,
            0,
        );
        let (slow, fast) = two_members_of_which_one_falls_two_behind(&group);
        assert_eq!(group.state.lock().bytes, 0, "the bytes follow the ring");
        assert_eq!(ids(&group, slow), ["id-1", "id-2"]);
        // The fast member, alone, goes on.
        assert!(push(&group, &entry(4, false)).evicted.is_empty());
        assert_eq!(ids(&group, fast), ["id-4"]);
    }

    #[test]
    fn a_member_that_falls_capacity_behind_is_evicted_with_its_backlog() {
        let group = group(2);
        let (slow, _) = two_members_of_which_one_falls_two_behind(&group);
        // What was on its way, then the end.
        assert_eq!(ids(&group, slow), ["id-1", "id-2"]);
        let waker = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            group.poll_next(slow, 0, &mut cx),
            Poll::Ready(None)
        ));
        assert_eq!(group.leave(slow), (false, false));
    }

    #[test]
    fn a_member_behind_only_on_private_entries_it_cannot_see_is_not_evicted() {
        let group = group(2);
        let blind_state = Arc::new(SubscriberState::default());
        let blind = group.join(Arc::clone(&blind_state), Grants::none());
        let fast = group.join(Arc::default(), reader());
        for position in 1..=3 {
            assert!(
                push(&group, &entry(position, true)).evicted.is_empty(),
                "entry {position}"
            );
            assert_eq!(ids(&group, fast), [format!("id-{position}")]);
        }
        assert!(!blind_state.was_too_slow());
        assert_eq!(ring_len(&group), 1, "what it could not see left the ring");
        push(&group, &entry(4, false));
        // The group hands over the private entry left; the registration skips it.
        assert_eq!(ids(&group, blind), ["id-3", "id-4"]);
    }

    #[test]
    fn an_evicted_member_keeps_only_the_entries_its_grants_allow() {
        let group = group(2);
        let slow_state = Arc::new(SubscriberState::default());
        let slow = group.join(Arc::clone(&slow_state), Grants::none());
        let fast = group.join(Arc::default(), reader());
        push(&group, &entry(1, false));
        push(&group, &entry(2, true));
        assert_eq!(ids(&group, fast), ["id-1", "id-2"]);
        // Behind on an entry it may read: evicted, with that entry alone.
        assert_eq!(push(&group, &entry(3, false)).evicted.len(), 1);
        assert!(slow_state.was_too_slow());
        assert_eq!(ids(&group, slow), ["id-1"]);
        assert_eq!(ids(&group, fast), ["id-3"]);
    }

    #[test]
    fn a_waiting_member_is_woken_once_per_wait() {
        let group = group(8);
        let key = group.join(Arc::default(), Grants::none());
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert!(group.poll_next(key, 0, &mut cx).is_pending());
        assert!(group.poll_next(key, 0, &mut cx).is_pending());
        push(&group, &entry(1, false));
        push(&group, &entry(2, false));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(
            matches!(group.poll_next(key, 0, &mut cx), Poll::Ready(Some(e)) if e.id() == "id-1")
        );
    }

    #[test]
    fn a_caught_up_member_of_a_small_group_is_written_directly_by_the_dispatch() {
        let group = group(8);
        let wire = Arc::new(Recorder::default());
        let key = group.join(Arc::default(), Grants::none());
        group.attach_wire(key, Arc::clone(&wire) as Arc<dyn Wire>);
        let waker = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&waker);
        // Entries through position 1 are not for it (its task replayed them).
        assert!(group.poll_next(key, 1, &mut cx).is_pending());
        for (position, private) in [(1, false), (2, false), (3, true)] {
            assert!(
                !push(&group, &entry(position, private)).start_writer,
                "no task for one member"
            );
        }
        assert!(group.try_next(key).is_none(), "its task does not take them");
        assert_eq!(
            *wire.written.lock(),
            [["id-2"]],
            "nothing at or before its skip position, nothing private it may not read"
        );
        assert_eq!(ring_len(&group), 0);
    }

    #[test]
    fn a_refused_write_hands_the_member_back_to_its_task_in_order() {
        let group = group(8);
        let wire = Arc::new(Recorder::default());
        let key = group.join(Arc::default(), reader());
        group.attach_wire(key, Arc::clone(&wire) as Arc<dyn Wire>);
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert!(group.poll_next(key, 0, &mut cx).is_pending());
        push(&group, &entry(1, false));
        push(&group, &entry(2, true));
        wire.full.store(true, Ordering::SeqCst);
        assert!(!push(&group, &entry(3, false)).start_writer);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "its task is woken");
        // Its task reads what the wire refused, then is pending, not direct
        // while the wire is not clear.
        assert_eq!(ids(&group, key), ["id-3"]);
        assert!(group.poll_next(key, 0, &mut cx).is_pending());
        push(&group, &entry(4, false));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "woken as a waiting member"
        );
        assert_eq!(ids(&group, key), ["id-4"]);
        // Clear again: direct again.
        wire.full.store(false, Ordering::SeqCst);
        assert!(group.poll_next(key, 0, &mut cx).is_pending());
        push(&group, &entry(5, false));
        assert_eq!(
            *wire.written.lock(),
            [vec!["id-1"], vec!["id-2"], vec!["id-5"]]
        );
        assert_eq!(group.leave(key), (true, true));
    }

    /// Joins `count` members to `group`, each with a clear wire and waiting,
    /// so each is direct.
    fn direct_members(group: &Group, count: usize) -> Vec<Arc<Recorder>> {
        let waker = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&waker);
        (0..count)
            .map(|_| {
                let wire = Arc::new(Recorder::default());
                let key = group.join(Arc::default(), Grants::none());
                group.attach_wire(key, Arc::clone(&wire) as Arc<dyn Wire>);
                assert!(group.poll_next(key, 0, &mut cx).is_pending());
                wire
            })
            .collect()
    }

    #[test]
    fn a_pass_serves_every_direct_member_in_slices() {
        let group = group(4);
        let wires = direct_members(&group, SLICE * 2 + 3);
        assert!(push(&group, &entry(1, false)).start_writer);
        assert!(
            wires.iter().all(|w| w.written.lock().is_empty()),
            "a large group is left to its writer task"
        );
        let mut wake = Vec::new();
        let mut slices = 1;
        while group.write_slice(&mut wake, &|| false) {
            slices += 1;
            // Entries queued during a pass are sent in another pass.
            if slices == 2 {
                push(&group, &entry(2, false));
            }
        }
        assert!(slices >= 3);
        for wire in &wires {
            let written: Vec<String> = wire.written.lock().concat();
            assert_eq!(written, ["id-1", "id-2"]);
        }
        assert_eq!(ring_len(&group), 0);
    }

    #[test]
    fn a_busy_group_paces_publishes_to_its_share_of_each_pass() {
        // 4 entries per pass over 2 slices' worth of members: one entry per
        // SLICE / 2 members written.
        let group = paced_group(64, 4);
        let wires = direct_members(&group, SLICE * 2);
        let spacing = (SLICE * 2 / 4) as u64;
        let first = push(&group, &entry(1, false));
        assert!(first.start_writer);
        assert_eq!(first.pace_until, None, "an idle writer takes it at once");
        let mut wake = Vec::new();
        assert!(group.write_slice(&mut wake, &|| false), "one slice of two");
        // The writer is busy: the first entry in a while is taken at once,
        // the next ones each wait for their share of writes.
        let written = SLICE as u64;
        assert_eq!(push(&group, &entry(2, false)).pace_until, None);
        assert_eq!(
            push(&group, &entry(3, false)).pace_until,
            Some(written + spacing)
        );
        assert_eq!(
            push(&group, &entry(4, false)).pace_until,
            Some(written + 2 * spacing)
        );
        let count = Arc::new(Count::default());
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        assert!(group.poll_paced(written + spacing, &mut cx).is_pending());
        assert!(
            group
                .poll_paced(written + 2 * spacing, &mut cx)
                .is_pending()
        );
        // The pass's second slice writes SLICE members, and wakes them.
        assert!(
            group.write_slice(&mut wake, &|| false),
            "entries 2-4 pass next"
        );
        wake.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(group.poll_paced(written + spacing, &mut cx).is_ready());
        assert!(group.poll_paced(written + 2 * spacing, &mut cx).is_ready());
        assert!(group.poll_paced(u64::MAX, &mut cx).is_pending());
        while group.write_slice(&mut wake, &|| false) {}
        assert!(
            group.poll_paced(u64::MAX, &mut cx).is_ready(),
            "a writer that stopped paces no one"
        );
        for wire in &wires {
            let written: Vec<String> = wire.written.lock().concat();
            assert_eq!(written, ["id-1", "id-2", "id-3", "id-4"]);
        }
    }

    #[test]
    fn without_a_pace_no_publish_waits() {
        let group = group(64);
        let _wires = direct_members(&group, SLICE * 2);
        push(&group, &entry(1, false));
        let mut wake = Vec::new();
        assert!(group.write_slice(&mut wake, &|| false));
        for position in 2..10 {
            assert_eq!(push(&group, &entry(position, false)).pace_until, None);
        }
    }

    #[test]
    fn a_slice_gives_way_once_it_has_served_its_minimum() {
        let group = group(4);
        let wires = direct_members(&group, SLICE + SLICE_MIN + 1);
        assert!(push(&group, &entry(1, false)).start_writer);
        let served = || {
            wires
                .iter()
                .filter(|w| !w.written.lock().is_empty())
                .count()
        };
        let mut wake = Vec::new();
        assert!(group.write_slice(&mut wake, &|| true), "more to write");
        assert_eq!(served(), SLICE_MIN, "a slice asked to give way stops early");
        assert!(group.write_slice(&mut wake, &|| false));
        assert_eq!(served(), SLICE_MIN + SLICE, "otherwise a slice is whole");
        assert!(!group.write_slice(&mut wake, &|| true), "the pass is over");
        assert_eq!(served(), wires.len());
        assert!(wake.is_empty());
    }
}
