//! The topic index: (topic hash, position) keys, written by the committer
//! behind its applies and built at open for what it lacks (see the parent
//! module's documentation and `docs/storage.md`).

use super::*;

/// Adds the entries after `after` to the topic index, in transactions of
/// [`INDEX_CHUNK`] records, the last one durable: at open, for what the
/// committer had not indexed yet, and for a store of the format before the
/// index (`anew`: the table cleared first, since an earlier herald may have
/// opened it since an upgrade stopped midway, and left keys of entries its
/// retention discarded). Returns the positions of the records whose topics
/// could not be read, left out.
pub(super) fn build_topic_index(
    db: &Database,
    hasher: TopicHasher,
    after: Position,
    anew: bool,
) -> Result<Vec<Position>, redb::Error> {
    if anew {
        let txn = db.begin_write()?;
        txn.delete_table(TOPICS)?;
        txn.open_table(TOPICS)?;
        txn.open_table(META)?.insert(TOPICS_INDEXED, 0)?;
        txn.commit()?;
    }
    let through = read_state(db)?.last_position;
    let mut unreadable = Vec::new();
    let mut after = after;
    while after < through {
        let mut txn = db.begin_write()?;
        let until = through.min(after + INDEX_CHUNK);
        unreadable.extend(index_topics(&txn, hasher, after, until)?);
        after = until;
        if after < through {
            txn.set_durability(redb::Durability::None)?;
        }
        txn.commit()?;
    }
    Ok(unreadable)
}

/// Adds the records at positions in `(after, through]` to the topic index
/// in `txn`, in key order (so that each topic's pages are visited once),
/// and records `through` as indexed. Returns the positions of the records
/// whose topics could not be read, left out.
pub(super) fn index_topics(
    txn: &redb::WriteTransaction,
    hasher: TopicHasher,
    after: Position,
    through: Position,
) -> Result<Vec<Position>, redb::Error> {
    // 16 bytes a key: 8,192 updates of 64 topics hold 8 MiB here.
    let mut keys: Vec<(u64, Position)> = Vec::new();
    let mut unreadable = Vec::new();
    {
        let entries = txn.open_table(ENTRIES)?;
        for item in entries.range(after + 1..=through)? {
            let (key, value) = item?;
            let position = key.value();
            match record::topics(value.value()) {
                Some(found) => keys.extend(found.iter().map(|t| (hasher.hash(t), position))),
                None => unreadable.push(position),
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    let mut topics = txn.open_table(TOPICS)?;
    for key in keys {
        topics.insert(key, ())?;
    }
    txn.open_table(META)?.insert(TOPICS_INDEXED, through)?;
    Ok(unreadable)
}

/// The newest position the topic index covers, in `meta`.
pub(super) const TOPICS_INDEXED: &str = "topics_indexed_through";
/// The two halves of the topic index's hash key, in `meta`.
const TOPICS_KEY: [&str; 2] = ["topics_key_0", "topics_key_1"];

/// The topic index's hash of a topic: SipHash-1-3, keyed by a random key
/// drawn when the store is created and kept in `meta`, so that nobody can
/// choose topics whose keys collide with another's. A collision only costs
/// a record read: every record the index gives is checked for the topics.
#[derive(Debug, Clone, Copy)]
pub(super) struct TopicHasher {
    key: (u64, u64),
}

impl TopicHasher {
    pub(super) fn hash(&self, topic: &str) -> u64 {
        use std::hash::Hasher;
        let mut hasher = siphasher::sip::SipHasher13::new_with_keys(self.key.0, self.key.1);
        hasher.write(topic.as_bytes());
        hasher.finish()
    }

    /// The store's, drawn and recorded in `meta` if it has none yet.
    pub(super) fn of(meta: &mut redb::Table<'_, &str, u64>) -> Result<Self, redb::Error> {
        let mut halves = [0; 2];
        for (half, name) in halves.iter_mut().zip(TOPICS_KEY) {
            let recorded = meta.get(name)?.map(|value| value.value());
            *half = match recorded {
                Some(value) => value,
                None => {
                    use std::hash::BuildHasher;
                    let drawn = std::collections::hash_map::RandomState::new().hash_one(name);
                    meta.insert(name, drawn)?;
                    drawn
                }
            };
        }
        Ok(Self {
            key: (halves[0], halves[1]),
        })
    }
}

/// Entries applied to redb but not yet in the topic index, at most: indexed
/// together, the keys of each topic go to its pages once per batch instead
/// of once per apply (every 5 ms), which cost a fifth of a relaxed publish.
/// A read by topic scans the entries past the index (see
/// `DurableLog::read_stored_topics`).
pub(super) const INDEX_LAG: Position = 8192;

/// Records per transaction while the topic index is built.
const INDEX_CHUNK: Position = 50_000;
