//! `herald log check`: reads a whole store and says what in it is damaged.
//!
//! Records carry a checksum and every read verifies it, but the two indexes
//! do not: a key missing from the topic index silently leaves its update
//! out of replays of that topic, and a key pointing elsewhere is only found
//! when a read comes upon it. An operator who suspects the disk (after a
//! crash, a full disk, a restored backup) needs the answer before
//! subscribers do; `herald log reindex` ([`StoreConfig::rebuild_topic_index`])
//! repairs the topic index from the records.

use super::*;

/// How many problems of each kind a [`Check`] lists (it counts them all).
pub const MAX_LISTED: usize = 20;

/// What [`DurableLog::check`] found in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// Records in the store (`log.redb`; the journal's were applied at open).
    pub records: u64,
    /// The oldest and newest positions held, if any.
    pub positions: Option<(Position, Position)>,
    /// The newest position the topic index covers: later records are read
    /// by scanning, not through the index.
    pub indexed_through: Position,
    /// Records that do not decode (a checksum that does not match, a
    /// truncated record): their positions and why.
    pub damaged: Problems,
    /// Topics of records the topic index has no key for: replays of those
    /// topics skip those records.
    pub unindexed_topics: Problems,
    /// Topic index keys that point to no record of a topic with their hash.
    pub stray_topic_keys: Problems,
    /// Records whose id the id index does not give their position for:
    /// a subscriber resuming from that id is not found.
    pub unindexed_ids: Problems,
    /// Id index entries that point to no record with their id.
    pub stray_ids: Problems,
}

impl Check {
    /// Whether nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        [
            &self.damaged,
            &self.unindexed_topics,
            &self.stray_topic_keys,
            &self.unindexed_ids,
            &self.stray_ids,
        ]
        .iter()
        .all(|problems| problems.count == 0)
    }

    /// Whether what is wrong is the topic index's alone, which
    /// `herald log reindex` rebuilds from the records.
    pub fn only_topic_index(&self) -> bool {
        !self.is_healthy()
            && self.damaged.count == 0
            && self.unindexed_ids.count == 0
            && self.stray_ids.count == 0
    }
}

/// Problems of one kind: how many, and the first [`MAX_LISTED`], each as a
/// position and what is wrong there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// How many were found.
    pub count: u64,
    /// The first ones, in the order they were found.
    pub listed: Vec<(Position, String)>,
}

impl Problems {
    fn push(&mut self, position: Position, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push((position, what()));
        }
    }
}

impl DurableLog {
    /// Reads every record and both indexes of the store, as one snapshot,
    /// and says what is damaged. Blocking, and as long as a read of the
    /// whole store: for `herald log check`, with the hub stopped.
    pub fn check(&self) -> Result<Check, StoreError> {
        let error = |e: &dyn std::fmt::Display| StoreError::Database {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let txn = self.db.begin_read().map_err(|e| error(&e))?;
        let entries = txn.open_table(ENTRIES).map_err(|e| error(&e))?;
        let ids = txn.open_multimap_table(IDS).map_err(|e| error(&e))?;
        let topics = txn.open_table(TOPICS).map_err(|e| error(&e))?;
        let meta = txn.open_table(META).map_err(|e| error(&e))?;
        let indexed_through = meta
            .get(TOPICS_INDEXED)
            .map_err(|e| error(&e))?
            .map_or(0, |v| v.value());
        let mut check = Check {
            indexed_through,
            ..Check::default()
        };
        // The topic keys the records call for, to compare with the index's.
        let mut expected: Vec<(u64, Position)> = Vec::new();
        // In order: the table is read in order of position.
        let mut damaged: Vec<Position> = Vec::new();
        for item in entries.iter().map_err(|e| error(&e))? {
            let (key, value) = item.map_err(|e| error(&e))?;
            let (position, stored) = (key.value(), value.value());
            check.records += 1;
            check.positions = Some(match check.positions {
                None => (position, position),
                Some((first, _)) => (first, position),
            });
            let entry = match record::decode(position, stored) {
                Ok(entry) => entry,
                Err(reason) => {
                    check.damaged.push(position, || reason);
                    damaged.push(position);
                    continue;
                }
            };
            let id_indexed = ids
                .get(entry.id())
                .map_err(|e| error(&e))?
                .any(|p| p.is_ok_and(|p| p.value() == position));
            if !id_indexed {
                check.unindexed_ids.push(position, || {
                    format!("the id `{}` is not indexed", entry.id())
                });
            }
            if position <= indexed_through {
                expected.extend(
                    entry
                        .topics()
                        .iter()
                        .map(|t| (self.hasher.hash(t), position)),
                );
            }
        }
        expected.sort_unstable();
        expected.dedup();
        let mut expected = expected.into_iter().peekable();
        let mut missing = Vec::new();
        for item in topics.iter().map_err(|e| error(&e))? {
            let (key, _) = item.map_err(|e| error(&e))?;
            let found = key.value();
            while expected
                .next_if(|&wanted| wanted < found)
                .map(|wanted| missing.push(wanted))
                .is_some()
            {}
            // A damaged record's topics cannot be read: its keys are
            // neither right nor wrong.
            if expected.next_if_eq(&found).is_none() && damaged.binary_search(&found.1).is_err() {
                check.stray_topic_keys.push(found.1, || {
                    format!(
                        "a topic index key ({:016x}) matches no topic of a record here",
                        found.0
                    )
                });
            }
        }
        missing.extend(expected);
        missing.sort_unstable_by_key(|&(_, position)| position);
        for (hash, position) in missing {
            check.unindexed_topics.push(position, || {
                let topic = entries
                    .get(position)
                    .ok()
                    .flatten()
                    .and_then(|r| {
                        record::topics(r.value()).map(|ts| {
                            ts.into_iter()
                                .find(|t| self.hasher.hash(t) == hash)
                                .map(str::to_owned)
                        })
                    })
                    .flatten()
                    .unwrap_or_default();
                format!("the topic `{topic}` is not in the topic index")
            });
        }
        for item in ids.iter().map_err(|e| error(&e))? {
            let (id, positions) = item.map_err(|e| error(&e))?;
            for position in positions {
                let position = position.map_err(|e| error(&e))?.value();
                let record = entries.get(position).map_err(|e| error(&e))?;
                let found = record.as_ref().and_then(|r| record::id(r.value()));
                if found.as_deref() != Some(id.value()) {
                    check.stray_ids.push(position, || {
                        format!(
                            "the id index gives this position for `{}`, but the record here {}",
                            id.value(),
                            match found {
                                Some(other) => format!("has the id `{other}`"),
                                None => "is missing or unreadable".to_owned(),
                            }
                        )
                    });
                }
            }
        }
        Ok(check)
    }
}
