//! The durable embedded log of herald.
//!
//! Map of the crate:
//! - [`DurableLog`]: a [`herald_hub::Log`] on one redb file and its journal,
//!   with group commit, an id index for one-lookup resume, a topic index
//!   for replays of exact topics, and incremental retention.
//! - [`Check`]: what [`DurableLog::check`] found reading a whole store
//!   (`herald log check`).
//! - `inbox`: the appends handed to the committer, which it waits on.
//! - `journal`: the append-only file a strict commit is made durable in.
//! - `readers`: the turns replays take at reading the store, so that long
//!   replays cannot take every core ([`default_replay_readers`]).
//! - [`record`]: the versioned binary form of a stored entry.
//! - `space`: the free-space reserve that refuses updates before the disk
//!   is full ([`available`] reads the free space).
//! - [`Retention`]: the pure decision of what to discard, by count, age and size.
//! - [`StoreError`]: why a data directory cannot be opened or used.
//!
//! The data directory holds `VERSION` (the format marker, checked at every
//! start), `log.redb` and `log.journal`.

mod durable;
mod error;
mod inbox;
mod journal;
mod readers;
pub mod record;
mod retention;
mod space;

pub use durable::{
    Check, DEFAULT_CACHE_SIZE, Durability, DurableLog, FORMAT_MARKER, MAX_LISTED, Problems,
    STORE_FILE, StoreConfig, VERSION_FILE,
};
pub use error::StoreError;
pub use journal::JOURNAL_FILE;
pub use readers::default_replay_readers;
pub use retention::{Retention, Shape};
pub use space::{DEFAULT_MIN_FREE_SPACE, FreeSpace, available};
