//! The durable log: one redb file, its journal, one committer thread, group
//! commit.
//!
//! Publishers hand entries to the committer and wait. The committer takes
//! everything queued, appends it to the journal and syncs that (see
//! [`crate::journal`]), adds it to the unapplied tail, then hands the batch to
//! the dispatcher, which dispatches it in position order and answers the
//! publishers: a `200` means the update is on disk, and subscribers only ever
//! see committed entries. redb is made durable at checkpoints (when the
//! journal has grown, and at close); opening the log applies what the journal
//! holds past redb's last checkpoint.
//!
//! The tail is applied to redb in one non-durable transaction every few
//! milliseconds ([`APPLY_DELAY`]), not at every commit: a transaction costs
//! about as much for one entry as for a hundred, and at every commit it cost a
//! durable publish as much CPU as the whole rest of its path. Readers take the
//! tail before they read redb, so an entry is always in one or the other: the
//! committer removes entries from the tail only once their transaction is
//! committed. Reads that start within the tail (a subscriber catching up on
//! what was just published) never touch redb.
//!
//! Replays of exact topics read the topic index (`topics`, (topic,
//! position) keys) instead of every entry. The committer writes it behind
//! the applies, for thousands of entries at once and in key order
//! ([`INDEX_LAG`]): written with every apply, the keys of a hundred topics
//! rewrote a page per update. A read by topic scans what the index does not
//! cover yet, then the tail.
//!
//! The dispatcher is a task on the multi-threaded tokio runtime the log is
//! used from (started by the first append made on one), not the committer
//! thread. Woken from outside the runtime, every subscriber task went through
//! the runtime's global queue, and the publisher after all of them: its answer
//! waited until the whole fan-out was written, so a publisher sending one
//! update at a time got one commit, and every subscriber one socket write, per
//! update. Dispatched from a worker, the publisher answered runs next, and
//! while a commit is pending the task keeps to its worker's own queue instead
//! of waiting for a wake from the committer behind the previous fan-out (see
//! `DispatchTask::run`): the next update is committed and dispatched while the
//! subscribers are still writing the previous one, and they write both at once.
//!
//! Batches reach the task in commit order and it dispatches one batch at a
//! time, so dispatch order is log order. Without such a runtime (or once the
//! task is gone with its runtime) the committer dispatches itself; a lock held
//! around the dispatch of every batch, whoever does it, keeps the order across
//! the switch.
//!
//! With relaxed durability a commit is one `pwrite`, and the thread's wake-ups
//! cost more than it: a publisher that finds the committer idle commits on
//! its own task and dispatches there (see `DurableLog::append_inline`), and
//! only appends made while the committer applies, flushes or checkpoints go
//! through its inbox. The committer's state sits behind one lock, which the
//! thread takes for each step and never while it waits.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use herald_hub::{
    Dispatch, Entry, EntryFilter, FilteredRead, HubError, Log, LogStats, Position, ReadLimit,
    filter_keeps,
};
use parking_lot::Mutex;
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    TableDefinition,
};
use tokio::sync::{Notify, oneshot};

use crate::StoreError;
use crate::inbox::{Inbox, Wait};
use crate::journal::{self, JOURNAL_FILE, Journal};
use crate::readers::{ReadTurns, ReaderPool, Turn, default_replay_readers};
use reads::Found;
use topic_index::{INDEX_LAG, TOPICS_INDEXED, TopicHasher, build_topic_index, index_topics};

mod check;
mod reads;
mod topic_index;
use crate::record;
use crate::retention::{Retention, Shape};
use crate::space::{DEFAULT_MIN_FREE_SPACE, FreeSpace, Reserve, available};
pub use check::{Check, MAX_LISTED, Problems};

const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("entries");
/// id → every retained position carrying it, in order: a reused id resolves
/// to its earliest retained use, also once older uses are discarded.
const IDS: MultimapTableDefinition<'_, &str, u64> = MultimapTableDefinition::new("ids");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// (topic hash, position) of every retained entry, for each of its topics:
/// a replay for exact topics reads the positions it wants from here instead
/// of scanning every entry (see `DurableLog::read_stored_topics`). Hashed
/// (see [`TopicHasher`]) so that keys are 16 bytes, whatever the topic: the
/// topics themselves took 150 bytes per key, half the size of the store.
const TOPICS: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("topics");

/// The marker naming the on-disk format, checked at every start.
pub const FORMAT_MARKER: &str = "herald-log 4";
/// The format before the topic index: taken as it is, its index built from
/// its records at the first start, and only then its marker rewritten.
const FORMAT_WITHOUT_TOPIC_INDEX: &str = "herald-log 3";
/// The format before the journal's barriers: its records are read as records
/// without one, so a directory in it is taken as it is, and its marker rewritten.
const FORMAT_WITHOUT_BARRIERS: &str = "herald-log 2";
/// The format before the journal: a directory in it is read as one whose
/// journal is empty, and its marker rewritten.
const FORMAT_WITHOUT_JOURNAL: &str = "herald-log 1";
/// The version marker's file name in the data directory.
pub const VERSION_FILE: &str = "VERSION";
/// The store's file name in the data directory.
pub const STORE_FILE: &str = "log.redb";
/// Where a `log.redb` left unreadable by a first start that never finished
/// is set aside (`.1`, `.2`, … after the first).
pub const INCOMPLETE_STORE_FILE: &str = "log.redb.incomplete";
/// The largest `log.redb` taken for one a first start left unfinished: a
/// new store is some tens of KiB (73,728 bytes as redb 4 creates it).
const MAX_INCOMPLETE_STORE: u64 = 1 << 20;

/// How durable an acknowledged update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every batch is fsynced before publishers get their answer: nothing
    /// acknowledged is lost on a crash or power loss.
    Strict,
    /// Batches are fsynced every `flush_interval`: a crash loses at most the
    /// updates acknowledged during the last interval.
    Relaxed {
        /// The longest acknowledged updates stay in memory only.
        flush_interval: Duration,
    },
}

/// Where and how the durable log keeps its data.
#[derive(Clone)]
pub struct StoreConfig {
    /// The data directory (created if missing).
    pub dir: PathBuf,
    /// How durable an acknowledged update is.
    pub durability: Durability,
    /// Which old entries are discarded.
    pub retention: Retention,
    /// The most entries committed together.
    pub max_batch: usize,
    /// The bytes of `log.redb` pages kept in memory for reads and writes
    /// (redb's cache; [`DEFAULT_CACHE_SIZE`]). The store's resident memory
    /// grows to about this much once that much history has been read.
    pub cache_size: usize,
    /// The bytes kept free on the disk holding `dir` ([`DEFAULT_MIN_FREE_SPACE`]):
    /// with less, appends are refused with [`HubError::InsufficientStorage`],
    /// and taken again as soon as there is more. The reserve is for the
    /// store's own writes, which must not meet a full disk (see the `space`
    /// module). 0 turns the check off.
    pub min_free_space: u64,
    /// How the free space is read ([`available`]; replaceable in tests).
    pub free_space: FreeSpace,
    /// The time source for age-based retention (replaceable in tests).
    pub clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    /// The most replay reads of `log.redb` that run at once, each a batch
    /// of up to 512 entries ([`default_replay_readers`]: half the cores, at
    /// least one; 0 counts as 1). The others wait their turn, first come,
    /// first served, so replays of long histories cannot take every core
    /// from publishing and live delivery. Reads of the recent entries still
    /// in memory never wait.
    pub max_replay_readers: usize,
    /// Whether [`DurableLog::open`] rebuilds the topic index from every
    /// record, as `herald log reindex` does to repair one that
    /// [`DurableLog::check`] found damaged (off: it only adds what it lacks).
    pub rebuild_topic_index: bool,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .field("retention", &self.retention)
            .field("max_batch", &self.max_batch)
            .field("cache_size", &self.cache_size)
            .field("min_free_space", &self.min_free_space)
            .field("max_replay_readers", &self.max_replay_readers)
            .field("rebuild_topic_index", &self.rebuild_topic_index)
            .finish()
    }
}

impl StoreConfig {
    /// Strict durability, no retention limit, in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            durability: Durability::Strict,
            retention: Retention::default(),
            max_batch: 1024,
            cache_size: DEFAULT_CACHE_SIZE,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
            free_space: Arc::new(available),
            clock: Arc::new(SystemTime::now),
            max_replay_readers: default_replay_readers(),
            rebuild_topic_index: false,
        }
    }
}

/// The default of [`StoreConfig::cache_size`]: 64 MiB. redb's own default,
/// 1 GiB, made a hub that had replayed or written a gigabyte of history hold
/// a gigabyte for good, which a container sized for the hub's subscribers
/// does not expect; replays of recent history come from the journal's tail
/// or the operating system's page cache anyway.
pub const DEFAULT_CACHE_SIZE: usize = 64 << 20;

/// The journal's length that triggers a checkpoint: it bounds both the
/// journal's file and what redb holds only in non-durable transactions.
const CHECKPOINT_BYTES: u64 = 16 << 20;

/// The longest a committed entry waits in the tail before it is applied to
/// redb (see the module documentation).
const APPLY_DELAY: Duration = Duration::from_millis(5);
/// The most entries, and record bytes, the tail holds before it is applied
/// sooner: it bounds the memory the tail takes and the work of one apply.
const APPLY_ENTRIES: usize = 1024;
const APPLY_BYTES: u64 = 4 << 20;

/// The longest the first append of a commit waits for the others (see
/// `Committer::gathering`).
const MAX_GATHER: Duration = Duration::from_millis(1);

/// Committed entries not yet applied to redb, in position order (contiguous
/// positions ending at the head).
type Tail = Arc<Mutex<VecDeque<Arc<Entry>>>>;

/// The entries of `tail` at positions in `after + 1..=up_to`.
fn tail_range(tail: &VecDeque<Arc<Entry>>, after: Position, up_to: Position) -> Vec<Arc<Entry>> {
    let Some(first) = tail.front().map(|e| e.position()) else {
        return Vec::new();
    };
    let skip = usize::try_from((after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
    tail.iter()
        .skip(skip)
        .take_while(|e| e.position() <= up_to)
        .cloned()
        .collect()
}

/// Retention work done per pass, so discarding never pauses commits for long.
const RETENTION_CHUNK: usize = 1000;
/// How often retention runs while the log is idle.
const RETENTION_TICK: Duration = Duration::from_millis(500);

type Reply = oneshot::Sender<Result<Arc<Entry>, HubError>>;

/// A committed batch in position order, each entry with its publisher's reply.
type Committed = Vec<(Arc<Entry>, Reply)>;

/// Dispatches committed batches and answers their publishers (see the module
/// documentation).
struct Dispatcher {
    target: OnceLock<Arc<dyn Dispatch>>,
    /// Held around the dispatch of every batch, by whoever dispatches it: the
    /// runtime task, the task's drain when it is dropped, or the committer.
    order: Mutex<()>,
    queue: Mutex<Queue>,
    /// Appends handed to the committer and not yet committed (or failed).
    pending: AtomicUsize,
    /// Wakes the task: notified by the committer after each batch, and by
    /// every append (from the publisher's task, on a worker).
    wake: Notify,
}

struct Queue {
    /// Committed batches the task has not taken yet, oldest first.
    batches: VecDeque<Committed>,
    task: Task,
}

/// The dispatcher's runtime task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// None yet, or the last one is gone: the committer dispatches, and the
    /// next append made on a runtime starts a task.
    Idle,
    /// Running: the committer queues batches for it.
    Running,
    /// The log is closed: the task ends once the queue is empty.
    Closed,
}

/// What [`Dispatcher::dispatch_next`] did.
enum Next {
    Dispatched,
    Empty,
    Closed,
}

impl Dispatcher {
    fn new() -> Self {
        Self {
            target: OnceLock::new(),
            order: Mutex::new(()),
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                task: Task::Idle,
            }),
            pending: AtomicUsize::new(0),
            wake: Notify::new(),
        }
    }

    /// Starts the task on the current runtime if none runs and this is a
    /// multi-threaded one: a current-thread runtime runs its tasks only while
    /// its owner drives it, and the committer must never wait on that.
    fn start(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        {
            let mut queue = self.queue.lock();
            if queue.task != Task::Idle {
                return;
            }
            queue.task = Task::Running;
        }
        // Spawned with the queue unlocked: a runtime that is shutting down
        // drops the task at once, and its drop takes the lock.
        runtime.spawn(
            DispatchTask {
                dispatcher: Arc::clone(self),
                runtime: runtime.clone(),
            }
            .run(),
        );
    }

    /// Called by the committer with each committed batch, in commit order.
    fn hand_over(&self, batch: Committed) {
        {
            let mut queue = self.queue.lock();
            if queue.task == Task::Running {
                queue.batches.push_back(batch);
                drop(queue);
                self.wake.notify_one();
                return;
            }
        }
        // No task: once one was dropped, it dispatched what it had under
        // `order`, so this batch still comes after.
        let _order = self.order.lock();
        self.dispatch(batch);
    }

    /// Dispatches the oldest queued batch, if any.
    fn dispatch_next(&self) -> Next {
        let _order = self.order.lock();
        let mut queue = self.queue.lock();
        match queue.batches.pop_front() {
            Some(batch) => {
                drop(queue);
                self.dispatch(batch);
                Next::Dispatched
            }
            None if queue.task == Task::Closed => Next::Closed,
            None => Next::Empty,
        }
    }

    /// Takes every queued batch, oldest first, for a caller holding `order`
    /// to dispatch before anything committed later.
    fn take_queued(&self) -> VecDeque<Committed> {
        let mut queue = self.queue.lock();
        if queue.batches.is_empty() {
            // Usually so: the queue keeps its room for the committer.
            return VecDeque::new();
        }
        std::mem::take(&mut queue.batches)
    }

    /// Dispatches `batch` in order and answers each publisher once its entry
    /// is queued for every subscriber. The caller holds `order`.
    fn dispatch(&self, batch: Committed) {
        let target = self.target.get();
        for (entry, reply) in batch {
            if let Some(target) = target {
                target.dispatch(&entry);
            }
            let _ = reply.send(Ok(entry));
        }
    }

    /// Ends the task once it has dispatched what is queued.
    fn close(&self) {
        self.queue.lock().task = Task::Closed;
        self.wake.notify_one();
    }
}

/// The dispatcher's task on the runtime. Dropped with its runtime, it
/// dispatches what is still queued and leaves the dispatching to the
/// committer (or a task started on another runtime).
struct DispatchTask {
    dispatcher: Arc<Dispatcher>,
    runtime: tokio::runtime::Handle,
}

impl DispatchTask {
    async fn run(self) {
        let dispatcher = &self.dispatcher;
        loop {
            match dispatcher.dispatch_next() {
                Next::Dispatched => {
                    tokio::task::coop::consume_budget().await;
                    continue;
                }
                Next::Closed => return,
                Next::Empty => {}
            }
            // The committer's wake goes through the runtime's global queue,
            // behind every task already waiting there: after a large fan-out,
            // behind the subscribers of the previous update, so the publisher
            // would be answered only once they all ran. While a commit is
            // pending and that queue is not empty, stay on this worker's own
            // queue instead, and look again after its next round of I/O; an
            // append (made on a worker) wakes this task to start doing so.
            if dispatcher.pending.load(Ordering::Acquire) > 0
                && self.runtime.metrics().global_queue_depth() > 0
            {
                tokio::task::yield_now().await;
                continue;
            }
            dispatcher.wake.notified().await;
        }
    }
}

impl Drop for DispatchTask {
    fn drop(&mut self) {
        let _order = self.dispatcher.order.lock();
        let batches = {
            let mut queue = self.dispatcher.queue.lock();
            if queue.task == Task::Running {
                queue.task = Task::Idle;
            }
            std::mem::take(&mut queue.batches)
        };
        for batch in batches {
            self.dispatcher.dispatch(batch);
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    entries: AtomicU64,
    bytes: AtomicU64,
    discarded: AtomicU64,
}

impl Counters {
    /// Publishes what redb holds (`state`) plus what the tail adds.
    fn publish(&self, state: &State, unapplied: usize, unapplied_bytes: u64) {
        self.entries
            .store(state.count + unapplied as u64, Ordering::Relaxed);
        self.bytes
            .store(state.bytes + unapplied_bytes, Ordering::Relaxed);
    }
}

/// The durable [`Log`].
///
/// Opening and closing do blocking file I/O (an open after a crash repairs
/// the store, about 0.6 s per million records): from async code, call them
/// inside `tokio::task::spawn_blocking`. Dropping the last handle closes the
/// log too, waiting for its writer thread on the dropping thread; close it
/// explicitly ([`Hub::close_log`](herald_hub::Hub::close_log)) to choose
/// where that wait happens and to see its error.
pub struct DurableLog {
    dir: PathBuf,
    /// Entries, bytes and discards, published by the committer.
    counters: Arc<Counters>,
    commits: Arc<AtomicU64>,
    /// The newest committed position, published by the committer.
    head: Arc<AtomicU64>,
    db: Arc<Database>,
    tail: Tail,
    path: PathBuf,
    dispatcher: Arc<Dispatcher>,
    inbox: Arc<Inbox<(Entry, Reply)>>,
    /// The committer's state, shared with its thread: with relaxed
    /// durability publishers commit through it themselves (see
    /// [`DurableLog::append_inline`]).
    core: Arc<Mutex<Committer>>,
    /// Whether appends are committed by their publisher's task when the
    /// committer is free (relaxed durability).
    inline: bool,
    thread: Mutex<Option<JoinHandle<Result<(), String>>>>,
    /// Turns at reading `log.redb` for replays.
    turns: ReadTurns,
    /// The threads replay reads run on, one per turn.
    readers: ReaderPool,
    /// The topic index's hash.
    hasher: TopicHasher,
}

impl std::fmt::Debug for DurableLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableLog")
            .field("path", &self.path)
            .finish()
    }
}

impl DurableLog {
    /// Opens (or creates) the log in `config.dir`. Blocking: see the type's
    /// documentation.
    ///
    /// Refuses, naming the file and the problem, a directory of another format
    /// version or a damaged store.
    pub fn open(config: StoreConfig) -> Result<DurableLog, StoreError> {
        let dir = &config.dir;
        let io = |path: &Path, e: std::io::Error| StoreError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        match fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => {
                return Err(StoreError::Io {
                    path: dir.clone(),
                    reason: "is not a directory (the data directory holds the log's files)".into(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symbolic link is not a directory to create.
                if fs::symlink_metadata(dir).is_ok() {
                    return Err(StoreError::Io {
                        path: dir.clone(),
                        reason: "is a symbolic link to nothing".into(),
                    });
                }
                fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            // A symbolic link loop, a permission: said as it is.
            Err(e) => return Err(io(dir, e)),
        }
        let path = dir.join(STORE_FILE);
        let journal_path = dir.join(JOURNAL_FILE);
        // The marker is written last, once the store is whole: without it,
        // the directory never served a log, and what a first start cut
        // short (by a crash, a kill) is not taken for damage for ever.
        let marker = check_version(dir)?;
        let first_start = marker == Marker::Missing;
        if first_start && path.exists() && journal::first_epoch(&journal_path).is_some() {
            return Err(missing_marker(dir, &path));
        }
        check_files_present(!first_start, &path, &journal_path)?;
        let db_error = |e: &dyn std::fmt::Display| StoreError::Database {
            path: path.clone(),
            reason: e.to_string(),
        };
        let repaired = Arc::new(AtomicBool::new(false));
        let open_db = || {
            let repaired = Arc::clone(&repaired);
            let repair_path = path.clone();
            guard_panics(&path, || {
                Database::builder()
                    .set_cache_size(config.cache_size)
                    .set_repair_callback(move |session| {
                        repaired.store(true, Ordering::Relaxed);
                        tracing::warn!(
                            file = %repair_path.display(),
                            progress = session.progress(),
                            "repairing the store after an unclean shutdown"
                        );
                    })
                    .create(&path)
                    .map_err(|e| open_error(&path, e))
            })
        };
        let db = match open_db() {
            Ok(db) => db,
            // Created by a first start that stopped before it held anything
            // (its journal holds no record, and it is no larger than a new
            // store): set aside under a name of its own, never deleted. A
            // larger one without its marker may be a damaged log, and is
            // refused as one.
            Err(StoreError::Damaged { reason, .. })
                if first_start
                    && fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_INCOMPLETE_STORE) =>
            {
                let aside = (0..)
                    .map(|n| match n {
                        0 => dir.join(INCOMPLETE_STORE_FILE),
                        n => dir.join(format!("{INCOMPLETE_STORE_FILE}.{n}")),
                    })
                    .find(|candidate| fs::symlink_metadata(candidate).is_err())
                    .expect("a free name");
                fs::rename(&path, &aside).map_err(|e| io(&path, e))?;
                repaired.store(false, Ordering::Relaxed);
                tracing::warn!(
                    file = %path.display(),
                    moved_to = %aside.display(),
                    %reason,
                    "a first start stopped while creating the store, before it held any update: \
                     set it aside, creating a new one"
                );
                open_db()?
            }
            Err(error) => return Err(error),
        };
        let Recorded {
            mut state,
            epoch,
            grown,
            unclosed,
            hasher,
        } = guard_panics(&path, || {
            initialize(&db, repaired.load(Ordering::Relaxed)).map_err(|e| db_error(&e))
        })?;
        if first_start && (state.last_position > 0 || state.count > 0) {
            return Err(missing_marker(dir, &path));
        }
        let damaged_journal = |reason: String| StoreError::Damaged {
            path: journal_path.clone(),
            reason,
        };
        // Not redb's repair alone: redb clears its own mark of an unclean
        // shutdown once it has repaired the file, and writes it clear at
        // every close, a start refused here included, so the next start
        // would take the journal's loss for a clean shutdown's.
        if unclosed && epoch.is_some() {
            check_journal_after_crash(&journal_path, grown)?;
        }
        let epoch = match epoch {
            Some(epoch) => epoch,
            None => {
                // A store without a journal epoch is new (or from before the
                // journal): a journal that holds records was written beside
                // another log.redb, which this one replaced or lost.
                if let Some(found) = journal::first_epoch(&journal_path) {
                    return Err(StoreError::Damaged {
                        path: path.clone(),
                        reason: format!(
                            "it holds no log, but {} holds records of epoch {found}: \
                             log.redb was replaced, emptied or repaired to nothing",
                            journal_path.display()
                        ),
                    });
                }
                0
            }
        };
        // Every epoch's records start at the journal's start, and redb
        // commits an epoch durably before any record of it is written: a
        // later epoch there means redb lost commits (damaged and repaired to
        // an older state, or replaced by an older copy), and the journal's
        // records of it, acknowledged, would be ignored as stale.
        if let Some(found) = journal::first_epoch(&journal_path)
            && found > epoch
        {
            return Err(StoreError::Damaged {
                path: path.clone(),
                reason: format!(
                    "it records journal epoch {epoch}, but {} holds records of the later \
                     epoch {found}: log.redb lost commits (damaged and repaired to an older \
                     state, or replaced by an older copy), and the acknowledged updates in \
                     the journal would be lost",
                    journal_path.display()
                ),
            });
        }
        let journal_bytes = journal::read(&journal_path).map_err(|e| io(&journal_path, e))?;
        let journal::Scan {
            records: replayed,
            torn,
        } = journal::recover_from(&journal_bytes, epoch, state.last_position)
            .map_err(damaged_journal)?;
        if let Some(torn) = torn {
            // Allowed (see `journal::recover_from`), but not silently: damage
            // to the last write looks the same, and the operator may want the
            // file before it is written over.
            tracing::warn!(
                file = %journal_path.display(),
                offset = torn.offset,
                end = torn.end,
                last_position = torn.last_position,
                last_id = torn.last_id.as_deref().unwrap_or("unknown"),
                discarded_bytes = torn.nonzero,
                "the journal's scan stopped before the end of its last write: the bytes after \
                 the last whole record were discarded as a write torn by the crash, never \
                 acknowledged"
            );
        }
        let mut records = Vec::with_capacity(replayed.len());
        for found in &replayed {
            let entry = record::decode(found.position, &found.stored).map_err(|reason| {
                damaged_journal(format!(
                    "the record at position {}: {reason}",
                    found.position
                ))
            })?;
            records.push((entry, found));
        }
        // The epoch is raised even when nothing was replayed: this epoch's
        // records may end in a torn one, which the next records must not
        // seem to continue.
        let epoch = epoch + 1;
        // Grown (zeros, synced) before the epoch is committed, so that an
        // empty journal beside a committed epoch can only have been cut.
        let mut journal = Journal::open(&journal_path, epoch).map_err(|e| io(&journal_path, e))?;
        journal.grow_ahead().map_err(|e| io(&journal_path, e))?;
        guard_panics(&path, || {
            replay(&db, &mut state, epoch, &records, Closing::No).map_err(|e| db_error(&e))
        })?;
        if !replayed.is_empty() {
            tracing::warn!(
                file = %journal_path.display(),
                entries = replayed.len(),
                "applied the journal after an unclean shutdown"
            );
        }
        guard_panics(&path, || check_tail(&db, &path, state.last_position))?;
        let anew = marker == Marker::WithoutTopicIndex || config.rebuild_topic_index;
        if anew {
            tracing::info!(
                file = %path.display(),
                entries = state.count,
                "{}",
                if config.rebuild_topic_index {
                    "rebuilding the topic index from every record"
                } else {
                    "building the topic index of a store from an earlier herald"
                }
            );
        }
        let indexed = if anew {
            0
        } else {
            read_meta(&db, TOPICS_INDEXED).map_err(|e| db_error(&e))?
        };
        let unreadable = guard_panics(&path, || {
            build_topic_index(&db, hasher, indexed, anew).map_err(|e| db_error(&e))
        })?;
        if let Some(position) = unreadable.first() {
            tracing::warn!(
                file = %path.display(),
                count = unreadable.len(),
                first_position = position,
                "records whose topics cannot be read are left out of the topic index: \
                 replays for exact topics skip them, other replays report them"
            );
        }
        if marker != Marker::Current {
            write_marker(dir, FORMAT_MARKER)?;
        }
        tracing::info!(
            file = %path.display(),
            entries = state.count,
            bytes = state.bytes,
            last_position = state.last_position,
            "opened the durable log"
        );
        let db = Arc::new(db);
        let dispatcher = Arc::new(Dispatcher::new());
        let inbox = Arc::new(Inbox::new());
        let commits = Arc::new(AtomicU64::new(0));
        let head = Arc::new(AtomicU64::new(state.last_position));
        let counters = Arc::new(Counters::default());
        counters.publish(&state, 0, 0);
        let tail = Tail::default();
        let committer = Committer {
            counters: Arc::clone(&counters),
            commits: Arc::clone(&commits),
            head: Arc::clone(&head),
            db: Arc::clone(&db),
            tail: Arc::clone(&tail),
            unapplied: Vec::new(),
            unapplied_bytes: 0,
            unapplied_since: None,
            path: path.clone(),
            config: config.clone(),
            state,
            journal,
            rejournal: false,
            unflushed_since: None,
            last_batch: 1,
            indexed_through: state.last_position,
            hasher,
            last_write: Duration::ZERO,
            accepting: true,
            failure: None,
            poisoned: false,
            reserve: Reserve::new(
                dir.clone(),
                config.min_free_space,
                Arc::clone(&config.free_space),
            ),
        };
        let core = Arc::new(Mutex::new(committer));
        let readers = ReaderPool::start(config.max_replay_readers).map_err(|e| io(dir, e))?;
        let handle = std::thread::Builder::new()
            .name("herald-log-commit".into())
            .spawn({
                let inbox = Arc::clone(&inbox);
                let core = Arc::clone(&core);
                let dispatcher = Arc::clone(&dispatcher);
                move || run(&core, &inbox, &dispatcher)
            })
            .map_err(|e| io(dir, e))?;
        Ok(DurableLog {
            dir: dir.clone(),
            counters,
            commits,
            head,
            db,
            tail,
            path,
            dispatcher,
            inbox,
            core,
            inline: config.durability != Durability::Strict,
            thread: Mutex::new(Some(handle)),
            turns: ReadTurns::new(config.max_replay_readers),
            readers,
            hasher,
        })
    }

    /// Stops accepting appends, commits what is queued, flushes, checkpoints,
    /// and waits. The dispatcher task ends once it has dispatched the last
    /// batches. The error says why the committer stopped early, or what the
    /// last flush or checkpoint could not do; the journal then keeps what was
    /// acknowledged, for the next open. A second call does nothing.
    pub fn close(&self) -> Result<(), StoreError> {
        self.core.lock().accepting = false;
        self.inbox.close();
        let outcome = match self.thread.lock().take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(reason))) => Err(reason),
            Some(Err(panic)) => Err(format!(
                "the committer failed: {}",
                panic_message(panic.as_ref())
            )),
        };
        self.dispatcher.close();
        outcome.map_err(|reason| {
            tracing::error!(
                %reason,
                "the log did not close cleanly; the journal keeps what it acknowledged for the next start"
            );
            StoreError::Unclean {
                path: self.path.clone(),
                reason,
            }
        })
    }

    /// Whether the committer thread is still running.
    fn committer_running(&self) -> bool {
        self.thread
            .lock()
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
    }

    /// How many append transactions were committed since the log was opened;
    /// concurrent appends share one.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Entries retained and their bytes, as the store counts them: what was
    /// committed in the last few milliseconds counts once it is applied.
    pub fn shape(&self) -> Result<Shape, StoreError> {
        let state = read_state(&self.db).map_err(|e| StoreError::Database {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Shape {
            entries: state.count,
            bytes: state.bytes,
        })
    }

    /// With relaxed durability, commits `entry` on the caller's thread when
    /// the committer is not busy, dispatches it and answers `reply`; gives
    /// the append back otherwise (strict durability, or the committer
    /// applying, flushing or checkpointing), for the committer's inbox.
    ///
    /// A relaxed commit is one `pwrite` into the page cache: handed to the
    /// committer thread, its two wake-ups and the dispatcher's cost a publish
    /// more than the write itself, on a server with one core twice the CPU of
    /// the memory log's. The order lock is held from the position's
    /// assignment through the dispatch, as the memory log's sequencer is;
    /// the committer is only tried, never waited for, so a worker never
    /// blocks on an apply or a sync, and the committer, which takes the
    /// order lock while holding its state, cannot deadlock with it.
    fn append_inline(&self, entry: Entry, reply: Reply) -> Result<(), (Entry, Reply)> {
        if !self.inline {
            return Err((entry, reply));
        }
        let order = self.dispatcher.order.lock();
        let Some(mut core) = self.core.try_lock() else {
            return Err((entry, reply));
        };
        if !core.accepting {
            let _ = reply.send(Err(closed_error(core.failure.as_deref())));
            return Ok(());
        }
        let quiet = core.unapplied_since.is_none() || core.unflushed_since.is_none();
        let committed = core.commit(&mut vec![(entry, reply)]);
        let poke = quiet || core.needs_apply() || core.needs_checkpoint();
        // What the committer committed before this entry is queued, and goes
        // first. It is taken before `core` is released: once it is, the
        // committer can commit and queue a later batch, which must wait for
        // this entry (`order`, held until it is dispatched, sees to that).
        let earlier = self.dispatcher.take_queued();
        drop(core);
        for batch in earlier {
            self.dispatcher.dispatch(batch);
        }
        if let Some(committed) = committed {
            self.dispatcher.dispatch(committed);
        }
        drop(order);
        if poke {
            // The committer's wait was set before this commit: it may now
            // have a tail to apply, or a journal to flush, sooner.
            self.inbox.poke();
        }
        Ok(())
    }

    /// A filtered read of `(after, up_to]`: nothing for an empty range or
    /// limit, from the tail alone (what `keeps` keeps) when the tail holds
    /// the range, and otherwise `stored`, in its turn.
    fn filtered_read<'a>(
        &'a self,
        after: Position,
        up_to: Position,
        limit: ReadLimit,
        keeps: impl Fn(&Entry) -> bool,
        stored: impl FnOnce(&'a Self, Turn) -> BoxFuture<'a, Result<FilteredRead, HubError>> + Send + 'a,
    ) -> BoxFuture<'a, Result<FilteredRead, HubError>> {
        if after >= up_to || limit.entries == 0 {
            let nothing = FilteredRead {
                entries: Vec::new(),
                through: up_to,
            };
            return Box::pin(std::future::ready(Ok(nothing)));
        }
        {
            let tail = self.tail.lock();
            if tail.front().is_some_and(|e| e.position() <= after + 1) {
                let found =
                    Found::new(limit).add_tail(tail_range(&tail, after, up_to), keeps, up_to);
                return Box::pin(std::future::ready(Ok(found)));
            }
        }
        Box::pin(async move {
            let turn = self.turns.take().await;
            stored(self, turn).await
        })
    }

    /// Runs `work` on `log.redb` on a blocking thread: short lookups.
    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database, &Path) -> Result<T, HubError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, HubError>> {
        let work = self.guarded(work);
        Box::pin(async move {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| HubError::Log(format!("the log reader stopped: {e}")))?
        })
    }

    /// Runs `work` on `log.redb` on a replay reader thread (see
    /// [`ReaderPool`]): replay reads, which may be long.
    fn replay_reading<'a, T: Send + 'static>(
        &'a self,
        work: impl FnOnce(&Database, &Path) -> Result<T, HubError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, HubError>> {
        let work = self.guarded(work);
        Box::pin(async move {
            self.readers
                .run(work)
                .await
                .ok_or_else(|| HubError::Log("the log reader stopped".into()))?
        })
    }

    /// `work` on this log's database, with redb's panics on damaged pages
    /// turned into an error naming the file.
    fn guarded<T, W>(
        &self,
        work: W,
    ) -> impl FnOnce() -> Result<T, HubError> + Send + 'static + use<T, W>
    where
        W: FnOnce(&Database, &Path) -> Result<T, HubError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let path = self.path.clone();
        move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&db, &path)))
                .unwrap_or_else(|panic| {
                    Err(HubError::Log(format!(
                        "{} is damaged: reading it failed: {}",
                        path.display(),
                        panic_message(panic.as_ref())
                    )))
                })
        }
    }
}

impl Drop for DurableLog {
    fn drop(&mut self) {
        // Logged by `close`: a drop has no one to tell.
        let _ = self.close();
    }
}

impl Log for DurableLog {
    fn attach(&self, target: Arc<dyn Dispatch>) {
        let _ = self.dispatcher.target.set(target);
    }

    fn close(&self) -> Result<(), HubError> {
        DurableLog::close(self).map_err(|e| HubError::Log(e.to_string()))
    }

    /// Alive while the committer runs: once it has stopped (a store that
    /// refuses writes until reopened, a failed apply), only a restart,
    /// whose open applies the journal, brings the log back.
    fn check_alive(&self) -> Result<(), HubError> {
        if self.committer_running() {
            return Ok(());
        }
        let reason = self
            .core
            .try_lock()
            .and_then(|core| core.failure.clone())
            .unwrap_or_else(|| "it was closed".into());
        Err(HubError::Log(format!(
            "the log's committer has stopped: {reason}"
        )))
    }

    fn head(&self) -> Position {
        self.head.load(Ordering::Acquire)
    }

    fn stats(&self) -> LogStats {
        LogStats {
            entries: self.counters.entries.load(Ordering::Relaxed),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            discarded: self.counters.discarded.load(Ordering::Relaxed),
            reads_running: self.turns.reading(),
            reads_waiting: self.turns.waiting(),
        }
    }

    /// Ready when the committer is running and a file can be created, synced
    /// and removed in the data directory.
    fn check_ready(&self) -> BoxFuture<'_, Result<(), HubError>> {
        let running = self.committer_running();
        let dir = self.dir.clone();
        let core = Arc::clone(&self.core);
        Box::pin(async move {
            if !running {
                return Err(HubError::Log("the log's committer has stopped".into()));
            }
            tokio::task::spawn_blocking(move || {
                // Taken off the runtime: the committer holds it through a sync.
                let mut core = core.lock();
                if let Some(failure) = core.failure.clone() {
                    return Err(HubError::Log(format!(
                        "the log cannot take updates: {failure}"
                    )));
                }
                core.reserve.check().map_err(|reason| {
                    HubError::Log(format!("the log cannot take updates: {reason}"))
                })?;
                drop(core);
                let probe = dir.join(".ready-probe");
                let result = fs::File::create(&probe)
                    .and_then(|file| file.sync_all())
                    .and_then(|()| fs::remove_file(&probe));
                result.map_err(|e| {
                    HubError::Log(format!(
                        "the data directory {} is not writable: {e}",
                        dir.display()
                    ))
                })
            })
            .await
            .map_err(|e| HubError::Log(format!("the readiness probe failed: {e}")))?
        })
    }

    fn append(&self, entry: Entry) -> BoxFuture<'_, Result<Arc<Entry>, HubError>> {
        let (reply, answer) = oneshot::channel();
        let (entry, reply) = match self.append_inline(entry, reply) {
            Ok(()) => {
                return Box::pin(async move {
                    answer
                        .await
                        .map_err(|_| HubError::Log("the log stopped before committing".into()))?
                });
            }
            Err(append) => append,
        };
        self.dispatcher.start();
        self.dispatcher.pending.fetch_add(1, Ordering::AcqRel);
        let sent = self.inbox.send((entry, reply)).is_ok();
        if sent {
            self.dispatcher.wake.notify_one();
        } else {
            self.dispatcher.pending.fetch_sub(1, Ordering::AcqRel);
        }
        let refused = (!sent).then(|| {
            let core = self.core.try_lock();
            closed_error(core.as_ref().and_then(|core| core.failure.as_deref()))
        });
        Box::pin(async move {
            if let Some(refused) = refused {
                return Err(refused);
            }
            answer
                .await
                .map_err(|_| HubError::Log("the log stopped before committing".into()))?
        })
    }

    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<Position>, HubError>> {
        let id = id.to_owned();
        let tail = Arc::clone(&self.tail);
        self.blocking(move |db, path| {
            // The tail before redb (see the module documentation); redb's
            // uses are the earlier ones.
            let in_tail = tail
                .lock()
                .iter()
                .find(|e| e.id() == id)
                .map(|e| e.position());
            let txn = db.begin_read().map_err(|e| failure(path, &e))?;
            let ids = txn
                .open_multimap_table(IDS)
                .map_err(|e| failure(path, &e))?;
            let mut positions = ids.get(id.as_str()).map_err(|e| failure(path, &e))?;
            let Some(first) = positions.next() else {
                return Ok(in_tail);
            };
            let position = first.map_err(|e| failure(path, &e))?.value();
            // The index is not checksummed as records are: a damaged one
            // would resume a subscriber at the wrong place, silently.
            let entries = txn.open_table(ENTRIES).map_err(|e| failure(path, &e))?;
            let record = entries.get(position).map_err(|e| failure(path, &e))?;
            let found = record.as_ref().and_then(|r| record::id(r.value()));
            if found.as_deref() != Some(id.as_str()) {
                return Err(HubError::Log(format!(
                    "{} is damaged: the id index gives position {position} for the id `{id}`, \
                     but the record there {}",
                    path.display(),
                    match found {
                        Some(other) => format!("has the id `{other}`"),
                        None => "is missing or unreadable".to_owned(),
                    }
                )));
            }
            Ok(Some(position))
        })
    }

    fn read(
        &self,
        after: Position,
        up_to: Position,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<Vec<Arc<Entry>>, HubError>> {
        if after >= up_to || limit.entries == 0 {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        {
            let tail = self.tail.lock();
            if tail.front().is_some_and(|e| e.position() <= after + 1) {
                let found = limit.take(tail_range(&tail, after, up_to));
                return Box::pin(std::future::ready(Ok(found)));
            }
        }
        Box::pin(async move {
            let turn = self.turns.take().await;
            let read = self.read_stored(after, up_to, limit, None, turn).await?;
            Ok(read.entries)
        })
    }

    fn read_matching(
        &self,
        after: Position,
        up_to: Position,
        wanted: EntryFilter,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<FilteredRead, HubError>> {
        let keeps = Arc::clone(&wanted);
        self.filtered_read(
            after,
            up_to,
            limit,
            move |entry| filter_keeps(&keeps, entry),
            move |log, turn| log.read_stored(after, up_to, limit, Some(wanted), turn),
        )
    }

    fn read_topics(
        &self,
        after: Position,
        up_to: Position,
        topics: Arc<[Arc<str>]>,
        limit: ReadLimit,
    ) -> Option<BoxFuture<'_, Result<FilteredRead, HubError>>> {
        let wanted = Arc::clone(&topics);
        Some(self.filtered_read(
            after,
            up_to,
            limit,
            move |entry| herald_hub::has_any(entry, &wanted),
            move |log, turn| log.read_stored_topics(after, up_to, topics, limit, turn),
        ))
    }

    fn id_before(&self, position: Position) -> BoxFuture<'_, Result<Option<String>, HubError>> {
        let Some(before) = position.checked_sub(1) else {
            return Box::pin(std::future::ready(Ok(None)));
        };
        let in_tail = tail_range(&self.tail.lock(), before.saturating_sub(1), before)
            .first()
            .filter(|e| e.position() == before)
            .map(|e| e.id().to_owned());
        if in_tail.is_some() {
            return Box::pin(std::future::ready(Ok(in_tail)));
        }
        self.blocking(move |db, path| {
            let txn = db.begin_read().map_err(|e| failure(path, &e))?;
            let entries = txn.open_table(ENTRIES).map_err(|e| failure(path, &e))?;
            let found = entries.get(before).map_err(|e| failure(path, &e))?;
            Ok(found.and_then(|v| record::id(v.value())))
        })
    }
}

fn failure(path: &Path, error: &dyn std::fmt::Display) -> HubError {
    HubError::Log(format!("{}: {error}", path.display()))
}

/// The counters kept in the `meta` table.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    last_position: Position,
    count: u64,
    bytes: u64,
}

/// What the data directory's version marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// This herald's format.
    Current,
    /// A format without the topic index (an older one still was rewritten
    /// as this one): the index is to be built, then the marker rewritten.
    WithoutTopicIndex,
    /// None, or an empty one (older heralds wrote it first, and a crash
    /// could tear it): no start ever finished opening this directory.
    Missing,
}

fn check_version(dir: &Path) -> Result<Marker, StoreError> {
    let marker = dir.join(VERSION_FILE);
    match fs::read(&marker) {
        Ok(bytes) => {
            let Ok(text) = std::str::from_utf8(&bytes) else {
                return Err(StoreError::Incompatible {
                    path: marker,
                    reason: format!(
                        "it holds {} bytes that are not text, where a format such as \
                         `{FORMAT_MARKER}` belongs",
                        bytes.len()
                    ),
                });
            };
            match text.trim() {
                FORMAT_MARKER => Ok(Marker::Current),
                FORMAT_WITHOUT_TOPIC_INDEX => Ok(Marker::WithoutTopicIndex),
                // Rewritten at once, so that a build of the format without
                // the journal cannot take the directory and ignore its
                // journal, even if this start stops before its index is built.
                FORMAT_WITHOUT_JOURNAL | FORMAT_WITHOUT_BARRIERS => {
                    write_marker(dir, FORMAT_WITHOUT_TOPIC_INDEX)?;
                    Ok(Marker::WithoutTopicIndex)
                }
                "" => Ok(Marker::Missing),
                other => Err(StoreError::Incompatible {
                    path: marker,
                    reason: format!(
                        "the data directory is in format `{}`, this herald reads `{FORMAT_MARKER}`",
                        other.escape_debug()
                    ),
                }),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Marker::Missing),
        Err(e) => Err(StoreError::Io {
            path: marker,
            reason: e.to_string(),
        }),
    }
}

/// Writes the format marker `format` whole or not at all (a new file
/// renamed over the old), and makes the rename durable.
fn write_marker(dir: &Path, format: &str) -> Result<(), StoreError> {
    let marker = dir.join(VERSION_FILE);
    let staged = dir.join(format!("{VERSION_FILE}.new"));
    let write = || -> std::io::Result<()> {
        let file = fs::File::create(&staged)?;
        std::io::Write::write_all(&mut &file, format!("{format}\n").as_bytes())?;
        file.sync_all()?;
        fs::rename(&staged, &marker)?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| StoreError::Io {
        path: marker,
        reason: e.to_string(),
    })
}

/// The refusal of a store that holds a log without a marker beside it.
fn missing_marker(dir: &Path, store: &Path) -> StoreError {
    StoreError::Incompatible {
        path: dir.join(VERSION_FILE),
        reason: format!(
            "the version marker is missing beside {}, which holds a log; refusing to guess \
             the format",
            store.display()
        ),
    }
}

/// Refuses a data directory that held a log (its `VERSION` was there before
/// this start) whose `log.redb` is gone or empty while its journal is not:
/// redb would start a new, empty store in its place, and positions would be
/// reused.
fn check_files_present(initialized: bool, store: &Path, journal: &Path) -> Result<(), StoreError> {
    let size = |path: &Path| fs::metadata(path).map(|m| m.len()).ok();
    let journal_written = size(journal).is_some_and(|len| len > 0);
    if !initialized || !journal_written {
        return Ok(());
    }
    let problem = match size(store) {
        None if fs::symlink_metadata(store).is_ok() => {
            "it is a symbolic link to nothing (or a loop of them)"
        }
        None => "it is missing",
        Some(0) => "it is empty",
        Some(_) => return Ok(()),
    };
    Err(StoreError::Damaged {
        path: store.to_owned(),
        reason: format!(
            "{problem}, but {} and the version marker show this directory held a log; \
             refusing to start a new one in its place",
            journal.display()
        ),
    })
}

/// After an unclean shutdown of a store opened before (it has a journal
/// epoch, and its journal was created right after that was committed), the
/// journal holds what redb may not: refuses to start without it, or with one
/// cut shorter than the step it always grows by, or empty once the store
/// records that its journal is grown before an epoch is committed (`grown`;
/// before that, an empty journal was one never written).
fn check_journal_after_crash(journal: &Path, grown: bool) -> Result<(), StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        path: journal.to_owned(),
        reason,
    };
    match fs::metadata(journal) {
        Ok(meta) if !meta.is_file() => Err(StoreError::Io {
            path: journal.to_owned(),
            reason: "is not a file".into(),
        }),
        Ok(meta) if meta.len() == 0 && grown => Err(damaged(
            "it is empty after an unclean shutdown, though it was grown before the store's \
             journal epoch was committed: it was emptied, and the updates acknowledged since \
             the last checkpoint would be lost"
                .into(),
        )),
        Ok(meta) if meta.len() == 0 || meta.len() >= journal::GROW => Ok(()),
        Ok(meta) => Err(damaged(format!(
            "it is {} bytes after an unclean shutdown, shorter than the {} bytes it grows by: \
             it was cut, and the updates acknowledged since the last checkpoint would be lost",
            meta.len(),
            journal::GROW
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = if fs::symlink_metadata(journal).is_ok() {
                "a symbolic link to nothing"
            } else {
                "missing"
            };
            Err(damaged(format!(
                "it is {what} after an unclean shutdown: the updates acknowledged since the \
                 last checkpoint would be lost"
            )))
        }
        Err(e) => Err(StoreError::Io {
            path: journal.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Runs `work` on the database, turning a panic of redb's (on a damaged
/// file) into an error naming the file.
fn guard_panics<T>(
    path: &Path,
    work: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(StoreError::Damaged {
            path: path.to_owned(),
            reason: format!(
                "the database failed on it: {}",
                panic_message(panic.as_ref())
            ),
        })
    })
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

/// A failure to open redb: the operating system's errors (a read-only file
/// system, a permission) are not damage, and must not be called so.
fn open_error(path: &Path, error: redb::DatabaseError) -> StoreError {
    let path = path.to_owned();
    match error {
        // Not damage: telling an operator so could cost them good data.
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
            path,
            reason: "another process (or another log in this one) has it open; stop it, \
                     or give this one another data directory"
                .into(),
        },
        redb::DatabaseError::UpgradeRequired(version) => StoreError::Incompatible {
            path,
            reason: format!("written in redb file format {version}, which this herald cannot read"),
        },
        // redb reports a file that is not a redb database ("magic number
        // mismatch") as invalid data.
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::Damaged {
                path,
                reason: io.to_string(),
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => StoreError::Io {
            path,
            reason: io.to_string(),
        },
        other => StoreError::Damaged {
            path,
            reason: other.to_string(),
        },
    }
}

/// The `meta` key of the journal epoch redb holds everything before.
const EPOCH: &str = "journal_epoch";
/// The `meta` key set (to 1) with the epoch once the journal was grown
/// before it was committed: from then on an empty journal is a cut one.
const JOURNAL_GROWN: &str = "journal_grown";
/// The `meta` key that is 1 from the transaction a start ends with (or the
/// first start after redb repaired the file, refused or not) until the
/// checkpoint of a clean close sets it to 0: while it is 1, the journal may
/// hold acknowledged updates redb does not, and must be there. redb's own
/// mark of an unclean shutdown cannot say so: redb clears it as soon as it
/// has repaired the file, and at every close, a start refused for a missing
/// journal included.
const UNCLOSED: &str = "unclosed";

/// Whether a checkpoint is the one a clean close ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Yes,
    No,
}

/// What the store records about itself at open (see [`initialize`]).
struct Recorded {
    state: State,
    /// The journal epoch, none in a new store.
    epoch: Option<u64>,
    /// [`JOURNAL_GROWN`] is set.
    grown: bool,
    /// The store was not closed cleanly since a start last opened it
    /// ([`UNCLOSED`]).
    unclosed: bool,
    /// The topic index's hash.
    hasher: TopicHasher,
}

/// Creates the tables if needed and reads what the store records. A store
/// redb had to `repair` is marked [`UNCLOSED`] in the same transaction, so
/// that the unclean shutdown is known to every later start until one
/// succeeds, however many are refused first (a store last written by a
/// herald without the mark has only redb's, which this start consumes).
fn initialize(db: &Database, repaired: bool) -> Result<Recorded, redb::Error> {
    let txn = db.begin_write()?;
    let hasher;
    {
        txn.open_table(ENTRIES)?;
        txn.open_multimap_table(IDS)?;
        txn.open_table(TOPICS)?;
        let mut meta = txn.open_table(META)?;
        hasher = TopicHasher::of(&mut meta)?;
        if repaired {
            meta.insert(UNCLOSED, 1)?;
        }
    }
    txn.commit()?;
    let read = db.begin_read()?;
    let meta = read.open_table(META)?;
    Ok(Recorded {
        state: read_state(db)?,
        epoch: meta.get(EPOCH)?.map(|v| v.value()),
        grown: meta.get(JOURNAL_GROWN)?.is_some(),
        unclosed: meta.get(UNCLOSED)?.is_some_and(|v| v.value() != 0),
        hasher,
    })
}

/// Applies the journal's records past the store, and starts `epoch`, in one
/// durable transaction: at open, and (with no records) at every checkpoint.
/// Records the store as [`UNCLOSED`] but at a close's checkpoint: once that
/// commits, redb holds every acknowledged update and no record of its epoch
/// can be written any more.
fn replay(
    db: &Database,
    state: &mut State,
    epoch: u64,
    records: &[(Entry, &journal::Recovered)],
    closing: Closing,
) -> Result<(), redb::Error> {
    let mut next = *state;
    let mut txn = db.begin_write()?;
    txn.set_durability(redb::Durability::Immediate)?;
    {
        let mut tables = Tables::open(&txn)?;
        for (entry, found) in records {
            tables.insert(&mut next, found.position, entry, &found.stored)?;
        }
        let mut meta = txn.open_table(META)?;
        write_state(&mut meta, &next)?;
        meta.insert(EPOCH, epoch)?;
        // Every caller has grown the journal: `open` before its first
        // replay, and a checkpoint comes after writes.
        meta.insert(JOURNAL_GROWN, 1)?;
        meta.insert(UNCLOSED, u64::from(closing == Closing::No))?;
    }
    txn.commit()?;
    *state = next;
    Ok(())
}

/// The tables an entry is written to, open in one write transaction (the
/// topic index is written later, many entries at a time: see
/// [`index_topics`]).
struct Tables<'t> {
    entries: redb::Table<'t, u64, &'static [u8]>,
    ids: redb::MultimapTable<'t, &'static str, u64>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, redb::Error> {
        Ok(Self {
            entries: txn.open_table(ENTRIES)?,
            ids: txn.open_multimap_table(IDS)?,
        })
    }

    /// Stores `entry`'s record (`stored`) at `position`, indexes it by id,
    /// and counts it in `state`.
    fn insert(
        &mut self,
        state: &mut State,
        position: Position,
        entry: &Entry,
        stored: &[u8],
    ) -> Result<(), redb::Error> {
        self.entries.insert(position, stored)?;
        self.ids.insert(entry.id(), position)?;
        state.last_position = position;
        state.count += 1;
        state.bytes += stored.len() as u64;
        Ok(())
    }
}

/// The first and last positions the store holds in `txn`'s snapshot, by
/// its counters (none when it holds none).
fn held_positions(
    txn: &redb::ReadTransaction,
) -> Result<Option<(Position, Position)>, redb::Error> {
    let meta = txn.open_table(META)?;
    let get = |key: &str| -> Result<u64, redb::Error> {
        Ok(meta.get(key)?.map(|v| v.value()).unwrap_or(0))
    };
    let (last, count) = (get("last_position")?, get("count")?);
    Ok((count > 0).then(|| ((last + 1).saturating_sub(count), last)))
}

/// One counter of `meta` (0 when absent).
fn read_meta(db: &Database, key: &str) -> Result<u64, redb::Error> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    Ok(meta.get(key)?.map(|v| v.value()).unwrap_or(0))
}

fn read_state(db: &Database) -> Result<State, redb::Error> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let get = |key: &str| -> Result<u64, redb::Error> {
        Ok(meta.get(key)?.map(|v| v.value()).unwrap_or(0))
    };
    Ok(State {
        last_position: get("last_position")?,
        count: get("count")?,
        bytes: get("bytes")?,
    })
}

/// The newest record must decode and agree with the counters; otherwise the
/// store is not what this herald wrote, and serving it would be wrong.
fn check_tail(db: &Database, path: &Path, last_position: Position) -> Result<(), StoreError> {
    let damaged = |reason: String| StoreError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let txn = db.begin_read().map_err(|e| damaged(e.to_string()))?;
    let entries = txn
        .open_table(ENTRIES)
        .map_err(|e| damaged(e.to_string()))?;
    let last = entries.last().map_err(|e| damaged(e.to_string()))?;
    if let Some((key, value)) = last {
        let position = key.value();
        if position > last_position {
            return Err(damaged(format!(
                "the newest record is at position {position} but the counters end at {last_position}"
            )));
        }
        record::decode(position, value.value())
            .map_err(|reason| damaged(format!("the record at position {position}: {reason}")))?;
    }
    Ok(())
}

struct Committer {
    counters: Arc<Counters>,
    commits: Arc<AtomicU64>,
    head: Arc<AtomicU64>,
    db: Arc<Database>,
    /// Shared with readers: the entries of `unapplied`.
    tail: Tail,
    /// Committed entries with their records, not yet applied to redb.
    unapplied: Vec<(Arc<Entry>, Vec<u8>)>,
    unapplied_bytes: u64,
    /// When the oldest unapplied entry was committed.
    unapplied_since: Option<Instant>,
    path: PathBuf,
    config: StoreConfig,
    /// What redb holds: the tail comes after it.
    state: State,
    journal: Journal,
    /// A journal write failed: its records may be on disk, with positions the
    /// next batch reuses, so a checkpoint must start a new epoch first.
    rejournal: bool,
    /// When a relaxed commit was last left unflushed.
    unflushed_since: Option<Instant>,
    /// How many appends the last commit held, and how long its journal write
    /// (and sync) took: see [`Committer::gathering`].
    last_batch: usize,
    /// The newest position the topic index covers.
    indexed_through: Position,
    /// The topic index's hash.
    hasher: TopicHasher,
    last_write: Duration,
    /// Cleared when the log is closed or the committer stops: appends are
    /// refused from then on.
    accepting: bool,
    /// Why a journal write, apply, flush or checkpoint first failed since
    /// the last commit that succeeded: readiness reports it, and a close that
    /// ends with one fails.
    failure: Option<String>,
    /// redb refuses every write until it is reopened ("previous I/O
    /// error"), which only an open does: the committer stops, so that
    /// readiness and liveness say so and a restart repairs the store from
    /// the journal, rather than refusing every publish for good.
    poisoned: bool,
    /// Refuses commits while the disk is short of space, so that redb's
    /// writes do not meet a full disk and poison the store.
    reserve: Reserve,
}

/// Why an append is refused once appends are no longer taken: the failure
/// that stopped the committer, if one did, else a close.
fn closed_error(failure: Option<&str>) -> HubError {
    match failure {
        Some(reason) => HubError::Log(format!(
            "the log stopped after a failure and takes no update until the hub is restarted: \
             {reason}"
        )),
        None => HubError::Log("the log is closed".into()),
    }
}

/// The committer thread: commits what publishers queue in `inbox`, applies
/// the tail, flushes, checkpoints and discards, taking `core` for each step
/// and never while it waits, and hands committed batches to `dispatcher`.
fn run(
    core: &Mutex<Committer>,
    inbox: &Arc<Inbox<(Entry, Reply)>>,
    dispatcher: &Dispatcher,
) -> Result<(), String> {
    // However this ends, appends still queued are answered, and no more are
    // taken, here or inline.
    let _closer = inbox.closer();
    let _refusing = Refusing(core);
    let max_batch = core.lock().config.max_batch;
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        let deadline = core.lock().next_deadline();
        match inbox.wait(1, deadline) {
            Wait::Ready => {}
            Wait::TimedOut | Wait::Poked => {
                let mut core = core.lock();
                if !core.housekeep() {
                    return Err(core.stopped());
                }
                continue;
            }
            Wait::Closed => break,
        }
        let (wanted, longest) = core.lock().gathering();
        if wanted > 1 {
            inbox.wait(wanted, Instant::now() + longest);
        }
        inbox.take(&mut batch, max_batch);
        let appends = batch.len();
        let mut core = core.lock();
        if let Some(committed) = core.commit(&mut batch) {
            // Handed over before `core` is released: an inline commit,
            // which dispatches what is queued before its own, comes after.
            dispatcher.hand_over(committed);
        }
        dispatcher.pending.fetch_sub(appends, Ordering::AcqRel);
        if !core.housekeep() {
            return Err(core.stopped());
        }
    }
    let mut core = core.lock();
    // A journal write that failed earlier acknowledged nothing: what matters
    // now is whether everything acknowledged is durable and checkpointed.
    let earlier = core.failure.take();
    core.flush();
    let _ = core.checkpoint(Closing::Yes);
    match (core.failure.take(), earlier) {
        (None, _) => Ok(()),
        (Some(now), Some(earlier)) if now != earlier => {
            Err(format!("{now} (after an earlier failure: {earlier})"))
        }
        (Some(now), _) => Err(now),
    }
}

/// Refuses appends once the committer thread ends, however it ends.
struct Refusing<'a>(&'a Mutex<Committer>);

impl Drop for Refusing<'_> {
    fn drop(&mut self) {
        self.0.lock().accepting = false;
    }
}

impl Committer {
    /// When the committer must look again if nothing is queued: the next
    /// flush or apply that falls due, or the next retention pass.
    fn next_deadline(&self) -> Instant {
        let flush_wait = match (self.config.durability, self.unflushed_since) {
            (Durability::Relaxed { flush_interval }, Some(since)) => {
                flush_interval.saturating_sub(since.elapsed())
            }
            _ => RETENTION_TICK,
        };
        let apply_wait = self.unapplied_since.map_or(RETENTION_TICK, |since| {
            APPLY_DELAY.saturating_sub(since.elapsed())
        });
        Instant::now() + flush_wait.min(apply_wait)
    }

    /// Flushes, applies and checkpoints what is due, and runs retention when
    /// the tail is empty. Returns false when the log cannot go on (see
    /// [`Committer::apply`]).
    /// Keeps the first failure since the last successful commit: the later
    /// ones (redb refusing every write after an I/O error) hide its cause.
    fn note_failure(&mut self, reason: String) {
        self.failure.get_or_insert(reason);
    }

    /// Why the committer stops, for [`DurableLog::close`].
    fn stopped(&self) -> String {
        let reason = self
            .failure
            .as_deref()
            .unwrap_or("for a reason not recorded");
        if self.poisoned {
            format!(
                "the committer stopped: {reason}; {} refuses writes until it is opened again: \
                 restart herald, which applies the journal",
                self.path.display()
            )
        } else {
            format!("the committer stopped: {reason}")
        }
    }

    fn housekeep(&mut self) -> bool {
        if self.poisoned {
            return false;
        }
        self.flush_if_due();
        if !self.apply_if_due() {
            return false;
        }
        if self.needs_checkpoint() {
            // A failure is noted; the next commit tries again.
            let _ = self.checkpoint(Closing::No);
        }
        if self.unapplied.is_empty() {
            self.retain();
        }
        if let Err(error) = self.journal.grow_ahead() {
            // Not yet a failure: the next write grows the file itself, and
            // fails its publishers with the reason if it cannot.
            tracing::warn!(file = %self.journal.path().display(), %error, "cannot grow the journal ahead");
        }
        true
    }

    /// How many appends to wait for before a commit, and for how long at
    /// most: as many as the last commit held, no longer than its journal
    /// write took (and never more than [`MAX_GATHER`]). Publishers answered
    /// together send their next updates together; a commit started on the
    /// first of them would leave the others waiting for it to end, then for
    /// one more sync, and the publishers would drift apart into ever smaller
    /// commits. A lone publisher never waits: its last commit held one append.
    fn gathering(&self) -> (usize, Duration) {
        (
            self.last_batch.min(self.config.max_batch),
            self.last_write.min(MAX_GATHER),
        )
    }

    /// Whether the journal has grown enough for a checkpoint.
    fn needs_checkpoint(&self) -> bool {
        self.journal.len() >= CHECKPOINT_BYTES
    }

    /// Whether the tail is large enough to be applied before its delay.
    fn needs_apply(&self) -> bool {
        self.unapplied.len() >= APPLY_ENTRIES || self.unapplied_bytes >= APPLY_BYTES
    }

    /// The position the next committed entry takes, less one.
    fn last_position(&self) -> Position {
        self.unapplied
            .last()
            .map_or(self.state.last_position, |(entry, _)| entry.position())
    }

    /// Commits `batch` and returns it, to be dispatched in commit order; on
    /// failure answers its publishers with the reason and returns `None`.
    fn commit(&mut self, batch: &mut Vec<(Entry, Reply)>) -> Option<Committed> {
        let appends = batch.len();
        let mut committed = Vec::with_capacity(appends);
        let mut stored = Vec::with_capacity(appends);
        let last_position = self.last_position();
        for (offset, (entry, _)) in (1..).zip(batch.iter()) {
            let entry = entry.clone().at_position(last_position + offset);
            stored.push(record::encode(&entry));
            committed.push(Arc::new(entry));
        }
        let failure = |batch: &mut Vec<(Entry, Reply)>, error: HubError| {
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(error.clone()));
            }
        };
        let bytes = stored.iter().map(|s| s.len() as u64).sum();
        if let Err(reason) = self.reserve.admit(bytes) {
            // Not a failure of the log: nothing was written, and the next
            // commit goes ahead once the disk has room.
            failure(batch, HubError::InsufficientStorage(reason));
            return None;
        }
        let began = Instant::now();
        let written = self.journal_batch(&committed, &stored);
        self.last_write = began.elapsed();
        self.last_batch = appends;
        if let Err(error) = written {
            tracing::error!(file = %self.journal.path().display(), %error, "cannot journal updates");
            let message = format!("{}: cannot write: {error}", self.journal.path().display());
            self.note_failure(message.clone());
            failure(batch, HubError::Log(message));
            return None;
        }
        self.failure = None;
        // Into the tail before the head moves: a reader up to the head finds
        // every entry in the tail or in redb.
        self.tail.lock().extend(committed.iter().cloned());
        for (entry, stored) in committed.iter().zip(stored) {
            self.unapplied_bytes += stored.len() as u64;
            self.unapplied.push((Arc::clone(entry), stored));
        }
        self.unapplied_since.get_or_insert_with(Instant::now);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.head.store(self.last_position(), Ordering::Release);
        self.counters
            .publish(&self.state, self.unapplied.len(), self.unapplied_bytes);
        if self.config.durability != Durability::Strict && self.unflushed_since.is_none() {
            self.unflushed_since = Some(Instant::now());
        }
        Some(
            committed
                .into_iter()
                .zip(batch.drain(..).map(|(_, reply)| reply))
                .collect(),
        )
    }

    /// Applies the tail if it is old or large enough, then runs retention.
    /// Returns false when the log cannot go on (see [`Committer::apply`]).
    fn apply_if_due(&mut self) -> bool {
        let due = self
            .unapplied_since
            .is_some_and(|since| since.elapsed() >= APPLY_DELAY || self.needs_apply());
        if !due {
            return true;
        }
        if self.apply().is_err() {
            return false;
        }
        self.retain();
        true
    }

    /// Applies the tail to redb in one non-durable transaction (durable in
    /// the journal; redb is made durable at checkpoints). Returns false when
    /// it could not: the entries stay in the tail, where readers still find
    /// them, the log stops taking appends, and a restart applies them from
    /// the journal.
    fn apply(&mut self) -> Result<(), String> {
        if self.unapplied.is_empty() {
            return Ok(());
        }
        let mut next = self.state;
        let mut unreadable = Vec::new();
        let mut indexed = None;
        let transaction = || -> Result<(), redb::Error> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(redb::Durability::None)?;
            {
                let mut tables = Tables::open(&txn)?;
                for (entry, stored) in &self.unapplied {
                    tables.insert(&mut next, entry.position(), entry, stored)?;
                }
                drop(tables);
                write_state(&mut txn.open_table(META)?, &next)?;
                if next.last_position - self.indexed_through >= INDEX_LAG {
                    unreadable =
                        index_topics(&txn, self.hasher, self.indexed_through, next.last_position)?;
                    indexed = Some(next.last_position);
                }
            }
            txn.commit()?;
            Ok(())
        };
        // redb panics on some damaged pages: that is a failed apply too, and
        // must not kill the committer.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(transaction))
            .unwrap_or_else(|panic| {
                Err(redb::Error::Corrupted(format!(
                    "the database failed: {}",
                    panic_message(panic.as_ref())
                )))
            });
        if let Err(error) = result {
            tracing::error!(
                file = %self.path.display(),
                %error,
                "cannot apply journaled updates; the log stops, and a restart applies them"
            );
            let reason = format!(
                "{}: cannot apply journaled updates: {error}",
                self.path.display()
            );
            self.poisoned |= matches!(error, redb::Error::PreviousIo);
            self.note_failure(reason.clone());
            return Err(reason);
        }
        self.state = next;
        if let Some(through) = indexed {
            self.indexed_through = through;
        }
        if let Some(position) = unreadable.first() {
            tracing::warn!(
                file = %self.path.display(),
                count = unreadable.len(),
                first_position = position,
                "records whose topics cannot be read are left out of the topic index"
            );
        }
        let applied = self.unapplied.len();
        self.unapplied.clear();
        self.unapplied_bytes = 0;
        self.unapplied_since = None;
        self.tail.lock().drain(..applied);
        Ok(())
    }

    /// Appends the batch's records to the journal, synced when strict.
    fn journal_batch(
        &mut self,
        committed: &[Arc<Entry>],
        stored: &[Vec<u8>],
    ) -> std::io::Result<()> {
        if self.rejournal
            && let Err(reason) = self.checkpoint(Closing::No)
        {
            return Err(std::io::Error::other(format!(
                "a checkpoint after an earlier failure did not succeed: {reason}"
            )));
        }
        let result = (|| {
            for (entry, stored) in committed.iter().zip(stored) {
                self.journal.push(entry.position(), stored)?;
            }
            self.journal.write()?;
            if self.config.durability == Durability::Strict {
                self.journal.sync()?;
            }
            Ok(())
        })();
        if result.is_err() {
            self.journal.discard();
            self.rejournal = true;
        }
        result
    }

    /// Makes redb durably hold everything journaled and starts a new journal
    /// epoch; returns whether it did. At a close (`closing`), it also records
    /// the clean shutdown.
    fn checkpoint(&mut self, closing: Closing) -> Result<(), String> {
        self.apply()?;
        let epoch = self.journal.epoch() + 1;
        // The transaction an open ends with, with nothing left to apply.
        match replay(&self.db, &mut self.state, epoch, &[], closing) {
            Ok(()) => {
                self.journal.restart(epoch);
                self.rejournal = false;
                Ok(())
            }
            Err(error) => {
                tracing::error!(file = %self.path.display(), %error, "cannot checkpoint the log");
                let reason = format!("{}: cannot checkpoint: {error}", self.path.display());
                self.poisoned |= matches!(error, redb::Error::PreviousIo);
                self.note_failure(reason.clone());
                Err(reason)
            }
        }
    }

    fn flush_if_due(&mut self) {
        if let (Durability::Relaxed { flush_interval }, Some(since)) =
            (self.config.durability, self.unflushed_since)
            && since.elapsed() >= flush_interval
        {
            self.flush();
        }
    }

    /// Makes every earlier relaxed commit durable.
    fn flush(&mut self) {
        if self.unflushed_since.take().is_none() {
            return;
        }
        if let Err(error) = self.journal.sync() {
            tracing::error!(file = %self.journal.path().display(), %error, "cannot flush the journal");
            self.note_failure(format!(
                "{}: cannot flush: {error}",
                self.journal.path().display()
            ));
        }
    }

    /// Discards at most one chunk of entries that retention no longer keeps.
    fn retain(&mut self) {
        let retention = self.config.retention;
        if !retention.is_limited() || self.state.count == 0 {
            return;
        }
        let now = (self.config.clock)();
        let before = self.state;
        let result = (|| -> Result<usize, redb::Error> {
            let mut txn = self.db.begin_write()?;
            // Losing a discard in a crash only brings back valid history.
            txn.set_durability(redb::Durability::None)?;
            let mut discarded = 0;
            {
                let mut entries = txn.open_table(ENTRIES)?;
                let mut ids = txn.open_multimap_table(IDS)?;
                let mut topics = txn.open_table(TOPICS)?;
                while discarded < RETENTION_CHUNK {
                    let Some((position, stored)) = entries
                        .first()?
                        .map(|(k, v)| (k.value(), v.value().to_vec()))
                    else {
                        break;
                    };
                    let shape = Shape {
                        entries: self.state.count,
                        bytes: self.state.bytes,
                    };
                    let published = record::published_at(&stored).unwrap_or(SystemTime::UNIX_EPOCH);
                    if !retention.discard_oldest(shape, published, now) {
                        break;
                    }
                    entries.remove(position)?;
                    if let Some(id) = record::id(&stored) {
                        ids.remove(id.as_str(), position)?;
                    }
                    for topic in record::topics(&stored).unwrap_or_default() {
                        topics.remove((self.hasher.hash(topic), position))?;
                    }
                    self.state.count -= 1;
                    self.state.bytes = self.state.bytes.saturating_sub(stored.len() as u64);
                    discarded += 1;
                }
                if discarded > 0 {
                    write_state(&mut txn.open_table(META)?, &self.state)?;
                }
            }
            if discarded > 0 {
                txn.commit()?;
            } else {
                txn.abort()?;
            }
            Ok(discarded)
        })();
        match result {
            Ok(0) => {}
            Ok(discarded) => {
                self.counters
                    .publish(&self.state, self.unapplied.len(), self.unapplied_bytes);
                self.counters
                    .discarded
                    .fetch_add(discarded as u64, Ordering::Relaxed);
                tracing::debug!(discarded, "retention discarded old entries");
            }
            Err(error) => {
                self.state = before;
                tracing::error!(file = %self.path.display(), %error, "retention failed");
            }
        }
    }
}

fn write_state(meta: &mut redb::Table<'_, &str, u64>, state: &State) -> Result<(), redb::Error> {
    meta.insert("last_position", state.last_position)?;
    meta.insert("count", state.count)?;
    meta.insert("bytes", state.bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_of_the_database_is_an_error_naming_the_file() {
        let path = Path::new("/data/log.redb");
        let error = guard_panics::<()>(path, || panic!("internal error: entered unreachable code"))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "/data/log.redb is damaged: the database failed on it: internal error: entered unreachable code"
        );
        let error = guard_panics::<()>(path, || panic!("{}", String::from("owned"))).unwrap_err();
        assert!(
            error.to_string().ends_with("failed on it: owned"),
            "{error}"
        );
        assert_eq!(guard_panics(path, || Ok(7)).unwrap(), 7);
    }

    #[test]
    fn an_operating_system_error_is_not_called_damage() {
        let path = Path::new("/data/log.redb");
        let read_only = std::io::Error::from_raw_os_error(30);
        let error = open_error(
            path,
            redb::DatabaseError::Storage(redb::StorageError::Io(read_only)),
        );
        assert!(matches!(error, StoreError::Io { .. }), "{error:?}");
        assert!(
            error.to_string().contains("Read-only file system"),
            "{error}"
        );
    }
}
