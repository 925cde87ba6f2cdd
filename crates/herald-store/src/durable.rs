//! The durable log: one redb file, one committer thread, group commit.
//!
//! Publishers hand entries to the committer and wait. The committer takes
//! everything queued, writes it in one transaction, makes it durable, then
//! dispatches the batch in position order and answers the publishers: a `200`
//! means the update is on disk, and subscribers only ever see committed entries.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use herald_hub::{Dispatch, Entry, HubError, Log, Position};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::record;
use crate::retention::{Retention, Shape};

const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("entries");
const IDS: TableDefinition<'_, &str, u64> = TableDefinition::new("ids");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// The marker naming the on-disk format, checked at every start.
pub const FORMAT_MARKER: &str = "herald-log 1";
/// The version marker's file name in the data directory.
pub const VERSION_FILE: &str = "VERSION";
/// The store's file name in the data directory.
pub const STORE_FILE: &str = "log.redb";

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
    /// The time source for age-based retention (replaceable in tests).
    pub clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .field("retention", &self.retention)
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
            clock: Arc::new(SystemTime::now),
        }
    }
}

/// Retention work done per pass, so discarding never pauses commits for long.
const RETENTION_CHUNK: usize = 1000;
/// How often retention runs while the log is idle.
const RETENTION_TICK: Duration = Duration::from_millis(500);

type Reply = oneshot::Sender<Result<Arc<Entry>, HubError>>;

/// The durable [`Log`].
pub struct DurableLog {
    commits: Arc<AtomicU64>,
    last_position: Arc<AtomicU64>,
    db: Arc<Database>,
    path: PathBuf,
    target: Arc<OnceLock<Arc<dyn Dispatch>>>,
    sender: Mutex<Option<mpsc::Sender<(Entry, Reply)>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for DurableLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableLog")
            .field("path", &self.path)
            .finish()
    }
}

impl DurableLog {
    /// Opens (or creates) the log in `config.dir`.
    ///
    /// Refuses, naming the file and the problem, a directory of another format
    /// version or a damaged store.
    pub fn open(config: StoreConfig) -> Result<DurableLog, StoreError> {
        let dir = &config.dir;
        let io = |path: &Path, e: std::io::Error| StoreError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join(STORE_FILE);
        check_version(dir, &path)?;
        let db_error = |e: &dyn std::fmt::Display| StoreError::Database {
            path: path.clone(),
            reason: e.to_string(),
        };
        let repair_path = path.clone();
        let db = Database::builder()
            .set_repair_callback(move |session| {
                tracing::warn!(
                    file = %repair_path.display(),
                    progress = session.progress(),
                    "repairing the store after an unclean shutdown"
                );
            })
            .create(&path)
            .map_err(|e| StoreError::Damaged {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let state = initialize(&db).map_err(|e| db_error(&e))?;
        check_tail(&db, &path, state.last_position)?;
        tracing::info!(
            file = %path.display(),
            entries = state.count,
            bytes = state.bytes,
            last_position = state.last_position,
            "opened the durable log"
        );
        let db = Arc::new(db);
        let target: Arc<OnceLock<Arc<dyn Dispatch>>> = Arc::new(OnceLock::new());
        let (sender, receiver) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let last_position = Arc::new(AtomicU64::new(state.last_position));
        let committer = Committer {
            commits: Arc::clone(&commits),
            last_position: Arc::clone(&last_position),
            db: Arc::clone(&db),
            path: path.clone(),
            target: Arc::clone(&target),
            config: config.clone(),
            state,
            unflushed_since: None,
        };
        let handle = std::thread::Builder::new()
            .name("herald-log-commit".into())
            .spawn(move || committer.run(&receiver))
            .map_err(|e| io(dir, e))?;
        Ok(DurableLog {
            commits,
            last_position,
            db,
            path,
            target,
            sender: Mutex::new(Some(sender)),
            committer: Mutex::new(Some(handle)),
        })
    }

    /// Stops accepting appends, commits what is queued, flushes, and waits.
    pub fn close(&self) {
        drop(self.sender.lock().take());
        if let Some(handle) = self.committer.lock().take() {
            let _ = handle.join();
        }
    }

    /// How many append transactions were committed since the log was opened;
    /// concurrent appends share one.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Entries retained and their bytes, as the store counts them.
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

    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database, &Path) -> Result<T, HubError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, HubError>> {
        let db = Arc::clone(&self.db);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&db, &path))
                .await
                .map_err(|e| HubError::Log(format!("the log reader stopped: {e}")))?
        })
    }
}

impl Drop for DurableLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl Log for DurableLog {
    fn attach(&self, target: Arc<dyn Dispatch>) {
        let _ = self.target.set(target);
    }

    fn last_position(&self) -> Position {
        self.last_position.load(Ordering::Acquire)
    }

    fn append(&self, entry: Entry) -> BoxFuture<'_, Result<Arc<Entry>, HubError>> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .sender
            .lock()
            .as_ref()
            .map(|s| s.send((entry, reply)).is_ok())
            .unwrap_or(false);
        Box::pin(async move {
            if !sent {
                return Err(HubError::Log("the log is closed".into()));
            }
            answer
                .await
                .map_err(|_| HubError::Log("the log stopped before committing".into()))?
        })
    }

    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<Position>, HubError>> {
        let id = id.to_owned();
        self.blocking(move |db, path| {
            let txn = db.begin_read().map_err(|e| failure(path, &e))?;
            let ids = txn.open_table(IDS).map_err(|e| failure(path, &e))?;
            let found = ids.get(id.as_str()).map_err(|e| failure(path, &e))?;
            Ok(found.map(|p| p.value()))
        })
    }

    fn read(
        &self,
        after: Position,
        up_to: Position,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Arc<Entry>>, HubError>> {
        self.blocking(move |db, path| {
            if after >= up_to {
                return Ok(Vec::new());
            }
            let txn = db.begin_read().map_err(|e| failure(path, &e))?;
            let entries = txn.open_table(ENTRIES).map_err(|e| failure(path, &e))?;
            let mut out = Vec::with_capacity(limit.min(1024));
            for item in entries
                .range(after + 1..=up_to)
                .map_err(|e| failure(path, &e))?
                .take(limit)
            {
                let (key, value) = item.map_err(|e| failure(path, &e))?;
                let position = key.value();
                let entry = record::decode(position, value.value()).map_err(|reason| {
                    HubError::Log(format!(
                        "{}: the record at position {position} is damaged: {reason}",
                        path.display()
                    ))
                })?;
                out.push(Arc::new(entry));
            }
            Ok(out)
        })
    }

    fn id_before(&self, position: Position) -> BoxFuture<'_, Result<Option<String>, HubError>> {
        self.blocking(move |db, path| {
            let Some(before) = position.checked_sub(1) else {
                return Ok(None);
            };
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

fn check_version(dir: &Path, store: &Path) -> Result<(), StoreError> {
    let marker = dir.join(VERSION_FILE);
    match fs::read_to_string(&marker) {
        Ok(text) if text.trim() == FORMAT_MARKER => Ok(()),
        Ok(text) => Err(StoreError::Incompatible {
            path: marker,
            reason: format!(
                "the data directory is in format `{}`, this herald reads `{FORMAT_MARKER}`",
                text.trim()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if store.exists() {
                return Err(StoreError::Incompatible {
                    path: marker,
                    reason: format!(
                        "the version marker is missing beside {}; refusing to guess the format",
                        store.display()
                    ),
                });
            }
            let write = || -> std::io::Result<()> {
                let file = fs::File::create(&marker)?;
                std::io::Write::write_all(&mut &file, format!("{FORMAT_MARKER}\n").as_bytes())?;
                file.sync_all()?;
                fs::File::open(dir)?.sync_all()
            };
            write().map_err(|e| StoreError::Io {
                path: marker.clone(),
                reason: e.to_string(),
            })
        }
        Err(e) => Err(StoreError::Io {
            path: marker,
            reason: e.to_string(),
        }),
    }
}

fn initialize(db: &Database) -> Result<State, redb::Error> {
    let txn = db.begin_write()?;
    {
        txn.open_table(ENTRIES)?;
        txn.open_table(IDS)?;
        txn.open_table(META)?;
    }
    txn.commit()?;
    read_state(db)
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
    commits: Arc<AtomicU64>,
    last_position: Arc<AtomicU64>,
    db: Arc<Database>,
    path: PathBuf,
    target: Arc<OnceLock<Arc<dyn Dispatch>>>,
    config: StoreConfig,
    state: State,
    /// When a relaxed commit was last left unflushed.
    unflushed_since: Option<Instant>,
}

impl Committer {
    fn run(mut self, receiver: &mpsc::Receiver<(Entry, Reply)>) {
        let mut batch = Vec::with_capacity(self.config.max_batch);
        loop {
            let wait = match (self.config.durability, self.unflushed_since) {
                (Durability::Relaxed { flush_interval }, Some(since)) => {
                    flush_interval.saturating_sub(since.elapsed())
                }
                _ => RETENTION_TICK,
            };
            match receiver.recv_timeout(wait) {
                Ok(first) => batch.push(first),
                Err(RecvTimeoutError::Timeout) => {
                    self.flush_if_due();
                    self.retain();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < self.config.max_batch {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.commit(&mut batch);
            self.flush_if_due();
            self.retain();
        }
        self.flush();
    }

    fn commit(&mut self, batch: &mut Vec<(Entry, Reply)>) {
        let before = self.state;
        let strict = self.config.durability == Durability::Strict;
        let mut committed = Vec::with_capacity(batch.len());
        let result = (|| -> Result<(), redb::Error> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(if strict {
                redb::Durability::Immediate
            } else {
                redb::Durability::None
            })?;
            {
                let mut entries = txn.open_table(ENTRIES)?;
                let mut ids = txn.open_table(IDS)?;
                for (entry, _) in batch.iter() {
                    self.state.last_position += 1;
                    let entry = entry.clone().at_position(self.state.last_position);
                    let stored = record::encode(&entry);
                    entries.insert(entry.position(), stored.as_slice())?;
                    if ids.get(entry.id())?.is_none() {
                        ids.insert(entry.id(), entry.position())?;
                    }
                    self.state.count += 1;
                    self.state.bytes += stored.len() as u64;
                    committed.push(Arc::new(entry));
                }
                write_state(&mut txn.open_table(META)?, &self.state)?;
            }
            txn.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                self.last_position
                    .store(self.state.last_position, Ordering::Release);
                if !strict && self.unflushed_since.is_none() {
                    self.unflushed_since = Some(Instant::now());
                }
                let target = self.target.get();
                for ((_, reply), entry) in batch.drain(..).zip(committed) {
                    if let Some(target) = target {
                        target.dispatch(&entry);
                    }
                    let _ = reply.send(Ok(entry));
                }
            }
            Err(error) => {
                self.state = before;
                tracing::error!(file = %self.path.display(), %error, "cannot commit updates");
                let message = format!("{}: cannot commit: {error}", self.path.display());
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(HubError::Log(message.clone())));
                }
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
        let result = (|| -> Result<(), redb::Error> {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(redb::Durability::Immediate)?;
            txn.commit()?;
            Ok(())
        })();
        if let Err(error) = result {
            tracing::error!(file = %self.path.display(), %error, "cannot flush the log");
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
                let mut ids = txn.open_table(IDS)?;
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
                    if let Some(id) = record::id(&stored)
                        && ids.get(id.as_str())?.map(|p| p.value()) == Some(position)
                    {
                        ids.remove(id.as_str())?;
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
                if self.unflushed_since.is_none() {
                    self.unflushed_since = Some(Instant::now());
                }
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
