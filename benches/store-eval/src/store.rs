//! The two candidate engines behind one small interface, shaped like herald's `Log`:
//! append a batch (records + id index, one atomic commit), find an id, read after a
//! position, last position, delete from the front (retention), reclaim space.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;

use crate::workload::{decode, Decoded, Record};

/// How many times redb's repair callback ran (reset by the crash scenario before a reopen).
pub static REDB_REPAIRS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Cache given to each engine (redb page cache, fjall block cache).
pub const CACHE_BYTES: usize = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Redb,
    /// redb with `set_quick_repair(true)` on every commit (fast recovery, slower commits).
    RedbQuickRepair,
    Fjall,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Redb => "redb",
            Engine::RedbQuickRepair => "redb-qr",
            Engine::Fjall => "fjall",
        }
    }

    pub fn parse(s: &str) -> Result<Engine> {
        Ok(match s {
            "redb" => Engine::Redb,
            "redb-qr" => Engine::RedbQuickRepair,
            "fjall" => Engine::Fjall,
            _ => anyhow::bail!("unknown engine {s:?} (redb, redb-qr, fjall)"),
        })
    }

    /// Opens (or creates) a store in `dir`.
    pub fn open(self, dir: &Path) -> Result<Box<dyn Store>> {
        std::fs::create_dir_all(dir)?;
        Ok(match self {
            Engine::Redb => Box::new(redb_store::RedbStore::open(dir, false)?),
            Engine::RedbQuickRepair => Box::new(redb_store::RedbStore::open(dir, true)?),
            Engine::Fjall => Box::new(fjall_store::FjallStore::open(dir)?),
        })
    }
}

pub trait Store: Send + Sync {
    /// Writes records and their id index entries (insert-if-absent) in one atomic commit;
    /// `durable` = fsync before returning.
    fn append(&self, batch: &[Record], durable: bool) -> Result<()>;
    /// id -> position.
    fn find(&self, id: &str) -> Result<Option<u64>>;
    /// Up to `limit` entries with positions > `after`, in order, appended to `out`.
    fn read_after(&self, after: u64, limit: usize, out: &mut Vec<Decoded>) -> Result<()>;
    /// The last position (0 when empty): the committer's starting point after open.
    fn last_position(&self) -> Result<u64>;
    /// Retention: deletes entries with positions <= `through` and their id entries.
    /// Returns how many entries were deleted.
    fn delete_through(&mut self, through: u64) -> Result<u64>;
    /// Asks the engine to give space back after deletes (redb `compact`, fjall major compaction).
    fn reclaim(&mut self) -> Result<()>;
    /// Clean shutdown.
    fn close(self: Box<Self>) -> Result<()>;
}

mod redb_store {
    use super::*;
    use redb::{
        Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
        TableDefinition,
    };

    const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
    const IDS: TableDefinition<&str, u64> = TableDefinition::new("ids");

    pub struct RedbStore {
        db: Database,
        quick_repair: bool,
    }

    impl RedbStore {
        pub fn open(dir: &Path, quick_repair: bool) -> Result<Self> {
            let db = Database::builder()
                .set_cache_size(CACHE_BYTES)
                .set_repair_callback(|_| {
                    REDB_REPAIRS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                })
                .create(dir.join("herald.redb"))?;
            let tx = db.begin_write()?;
            tx.open_table(LOG)?;
            tx.open_table(IDS)?;
            tx.commit()?;
            Ok(Self { db, quick_repair })
        }
    }

    impl Store for RedbStore {
        fn append(&self, batch: &[Record], durable: bool) -> Result<()> {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(if durable {
                Durability::Immediate
            } else {
                Durability::None
            })?;
            tx.set_quick_repair(self.quick_repair);
            {
                let mut log = tx.open_table(LOG)?;
                let mut ids = tx.open_table(IDS)?;
                for r in batch {
                    log.insert(r.position, r.value.as_slice())?;
                    if ids.get(r.id.as_str())?.is_none() {
                        ids.insert(r.id.as_str(), r.position)?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        }

        fn find(&self, id: &str) -> Result<Option<u64>> {
            let tx = self.db.begin_read()?;
            let ids = tx.open_table(IDS)?;
            Ok(ids.get(id)?.map(|g| g.value()))
        }

        fn read_after(&self, after: u64, limit: usize, out: &mut Vec<Decoded>) -> Result<()> {
            let tx = self.db.begin_read()?;
            let log = tx.open_table(LOG)?;
            for item in log.range(after.saturating_add(1)..)?.take(limit) {
                let (k, v) = item?;
                out.push(decode(k.value(), v.value())?);
            }
            Ok(())
        }

        fn last_position(&self) -> Result<u64> {
            let tx = self.db.begin_read()?;
            let log = tx.open_table(LOG)?;
            let last = log.last()?.map_or(0, |(k, _)| k.value());
            Ok(last)
        }

        fn delete_through(&mut self, through: u64) -> Result<u64> {
            let mut deleted = 0;
            loop {
                // Bounded transactions, as a background retention task would do.
                let mut tx = self.db.begin_write()?;
                tx.set_quick_repair(self.quick_repair);
                let mut n = 0;
                {
                    let mut log = tx.open_table(LOG)?;
                    let mut ids = tx.open_table(IDS)?;
                    let doomed = log.extract_from_if(..=through, |_, _| true)?;
                    for item in doomed.take(10_000) {
                        let (k, v) = item?;
                        let d = decode(k.value(), v.value())?;
                        if ids.get(&*d.id)?.map(|g| g.value()) == Some(d.position) {
                            ids.remove(&*d.id)?;
                        }
                        n += 1;
                    }
                }
                tx.commit()?;
                deleted += n;
                if n < 10_000 {
                    break;
                }
            }
            let _ = self.db.begin_read()?.open_table(LOG)?.len()?;
            Ok(deleted)
        }

        fn reclaim(&mut self) -> Result<()> {
            while self.db.compact()? {}
            Ok(())
        }

        fn close(self: Box<Self>) -> Result<()> {
            self.db.close()?;
            Ok(())
        }
    }
}

mod fjall_store {
    use super::*;
    use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

    pub struct FjallStore {
        db: Database,
        log: Keyspace,
        ids: Keyspace,
    }

    impl FjallStore {
        pub fn open(dir: &Path) -> Result<Self> {
            let db = Database::builder(dir)
                .cache_size(CACHE_BYTES as u64)
                .open()?;
            let log = db.keyspace("log", KeyspaceCreateOptions::default)?;
            let ids = db.keyspace("ids", KeyspaceCreateOptions::default)?;
            Ok(Self { db, log, ids })
        }
    }

    impl Store for FjallStore {
        fn append(&self, batch: &[Record], durable: bool) -> Result<()> {
            let mut wb = self.db.batch().durability(durable.then_some(PersistMode::SyncAll));
            // Only the committer writes, so "absent in the store and not earlier in this
            // batch" is a correct insert-if-absent without a transaction.
            let mut seen = HashSet::with_capacity(batch.len());
            for r in batch {
                wb.insert(&self.log, r.position.to_be_bytes(), r.value.as_slice());
                if seen.insert(r.id.as_str()) && !self.ids.contains_key(&r.id)? {
                    wb.insert(&self.ids, r.id.as_str(), r.position.to_be_bytes());
                }
            }
            wb.commit()?;
            Ok(())
        }

        fn find(&self, id: &str) -> Result<Option<u64>> {
            Ok(self
                .ids
                .get(id)?
                .map(|v| u64::from_be_bytes(v.as_ref().try_into().expect("8-byte position"))))
        }

        fn read_after(&self, after: u64, limit: usize, out: &mut Vec<Decoded>) -> Result<()> {
            let from = after.saturating_add(1).to_be_bytes();
            for guard in self.log.range(from..).take(limit) {
                let (k, v) = guard.into_inner()?;
                let pos = u64::from_be_bytes(k.as_ref().try_into()?);
                out.push(decode(pos, &v)?);
            }
            Ok(())
        }

        fn last_position(&self) -> Result<u64> {
            match self.log.last_key_value() {
                None => Ok(0),
                Some(g) => Ok(u64::from_be_bytes(g.key()?.as_ref().try_into()?)),
            }
        }

        fn delete_through(&mut self, through: u64) -> Result<u64> {
            // No public range delete in fjall 3: iterate and write point tombstones.
            let mut deleted = 0;
            let mut from = 0u64; // a real retention task knows its front position
            loop {
                let mut wb = self.db.batch();
                let mut n = 0;
                for guard in self
                    .log
                    .range(from.to_be_bytes()..=through.to_be_bytes())
                    .take(10_000)
                {
                    let (k, v) = guard.into_inner()?;
                    let pos = u64::from_be_bytes(k.as_ref().try_into()?);
                    let d = decode(pos, &v)?;
                    if self.find(&d.id)? == Some(pos) {
                        wb.remove(&self.ids, d.id.as_bytes());
                    }
                    wb.remove(&self.log, k);
                    from = pos + 1;
                    n += 1;
                }
                wb.commit()?;
                deleted += n;
                if n < 10_000 {
                    break;
                }
            }
            self.db.persist(PersistMode::SyncAll)?;
            Ok(deleted)
        }

        fn reclaim(&mut self) -> Result<()> {
            for ks in [&self.log, &self.ids] {
                ks.rotate_memtable_and_wait()?;
                ks.major_compact()?; // doc(hidden) in fjall 3.1; background compaction otherwise
            }
            Ok(())
        }

        fn close(self: Box<Self>) -> Result<()> {
            self.db.persist(PersistMode::SyncAll)?;
            drop(self);
            Ok(())
        }
    }
}
