//! The durable log's reads of `log.redb`: a range of entries, every one
//! or those a filter keeps (decided on each record's topics and flags
//! before it is decoded whole), and the entries of exact topics through
//! the topic index; each in its turn (`crate::readers`), then the tail's
//! entries past what redb holds.

use super::*;

impl DurableLog {
    /// The part of [`Log::read`] and [`Log::read_matching`] that reads
    /// `log.redb`, in its `turn`: the entries `wanted` keeps (every one
    /// without it), decoded whole only once kept. With `wanted`, a read
    /// looks at [`MAX_EXAMINED`] records at most, so that a turn stays
    /// short however few of them it keeps.
    pub(super) fn read_stored(
        &self,
        after: Position,
        up_to: Position,
        limit: ReadLimit,
        wanted: Option<EntryFilter>,
        turn: Turn,
    ) -> BoxFuture<'_, Result<FilteredRead, HubError>> {
        let tail = Arc::clone(&self.tail);
        self.replay_reading(move |db, path| {
            // Held until the read ends, even if its replay went away.
            let _turn = turn;
            // The tail before redb (see the module documentation).
            let recent = tail_range(&tail.lock(), after, up_to);
            let txn = db.begin_read().map_err(|e| failure(path, &e))?;
            let entries = txn.open_table(ENTRIES).map_err(|e| failure(path, &e))?;
            // The store holds every position from its first to its last,
            // as its counters say in the same snapshot: a scan that skips
            // one, or stops short, met a damaged page, which would otherwise
            // replay part of the history as if it were all of it.
            let held = held_positions(&txn).map_err(|e| failure(path, &e))?;
            let (first, last) = held.unwrap_or((1, 0));
            let mut expected = (after + 1).max(first);
            let missing = |from: Position, to: Position| {
                HubError::Log(format!(
                    "{}: is damaged: positions {from} to {to} are missing from it, which \
                     holds positions {} to {}",
                    path.display(),
                    first,
                    last
                ))
            };
            let mut found = Found::new(limit);
            let mut examined = 0;
            for item in entries
                .range(after + 1..=up_to)
                .map_err(|e| failure(path, &e))?
            {
                let (key, value) = item.map_err(|e| failure(path, &e))?;
                let position = key.value();
                if position != expected {
                    return Err(missing(expected, position.saturating_sub(1).max(expected)));
                }
                if let Some(wanted) = &wanted {
                    if examined == MAX_EXAMINED {
                        return Ok(found.through(position - 1));
                    }
                    examined += 1;
                    if !keeps(wanted, value.value()) {
                        expected += 1;
                        continue;
                    }
                }
                if found.is_full() {
                    return Ok(found.stopped());
                }
                expected += 1;
                let entry = record::decode(position, value.value()).map_err(|reason| {
                    HubError::Log(format!(
                        "{}: the record at position {position} is damaged: {reason}",
                        path.display()
                    ))
                })?;
                found.push(entry);
            }
            let end = up_to.min(last);
            if held.is_some() && expected <= end {
                return Err(missing(expected, end));
            }
            // What redb held is read through `expected - 1`; the rest is in
            // the tail.
            let looked = (expected - 1).max(after);
            Ok(found.add_tail(
                recent.into_iter().filter(|e| e.position() > looked),
                |entry| wanted.as_ref().is_none_or(|w| filter_keeps(w, entry)),
                up_to,
            ))
        })
    }
}

/// Whether `wanted` keeps the entry stored as `record`, read from its
/// topics and flags alone; a record too damaged for them is kept, for the
/// decoding to say what is wrong with it.
fn keeps(wanted: &EntryFilter, record: &[u8]) -> bool {
    match (record::topics(record), record::is_private(record)) {
        (Some(topics), Some(private)) => wanted(&topics, private),
        _ => true,
    }
}

/// The most records a filtered read looks at (see `DurableLog::read_stored`).
const MAX_EXAMINED: usize = 4096;

impl DurableLog {
    /// The part of [`Log::read_topics`] that reads `log.redb`, in its
    /// `turn`: up to what the topic index covers, the positions it gives,
    /// at most `limit.entries` per topic, then their records; past it, a
    /// scan of the few entries the committer has not indexed yet; then the
    /// tail's entries past what redb holds.
    pub(super) fn read_stored_topics(
        &self,
        after: Position,
        up_to: Position,
        topics: Arc<[Arc<str>]>,
        limit: ReadLimit,
        turn: Turn,
    ) -> BoxFuture<'_, Result<FilteredRead, HubError>> {
        let tail = Arc::clone(&self.tail);
        let hasher = self.hasher;
        self.replay_reading(move |db, path| {
            let _turn = turn;
            // The tail before redb, as `read_stored` takes it.
            let recent = tail_range(&tail.lock(), after, up_to);
            let txn = db.begin_read().map_err(|e| failure(path, &e))?;
            let fail = |e: &dyn std::fmt::Display| failure(path, e);
            let stored_up_to = held_positions(&txn)
                .map_err(|e| fail(&e))?
                .map_or(after, |(_, last)| last.min(up_to))
                .max(after);
            let indexed = txn
                .open_table(META)
                .map_err(|e| fail(&e))?
                .get(TOPICS_INDEXED)
                .map_err(|e| fail(&e))?
                .map_or(0, |v| v.value());
            let indexed_up_to = indexed.min(stored_up_to).max(after);
            let entries = txn.open_table(ENTRIES).map_err(|e| fail(&e))?;
            let decode = |position: Position, stored: &[u8]| {
                record::decode(position, stored).map_err(|reason| {
                    HubError::Log(format!(
                        "{}: the record at position {position} is damaged: {reason}",
                        path.display()
                    ))
                })
            };
            let mut found = Found::new(limit);

            // What the index covers. Everything up to `cut` is among the
            // positions gathered: a topic with more than a batch's worth
            // stops it at its last one taken.
            let mut cut = indexed_up_to;
            let mut positions = Vec::new();
            if indexed_up_to > after {
                let index = txn.open_table(TOPICS).map_err(|e| fail(&e))?;
                let mut hashes: Vec<u64> = topics.iter().map(|t| hasher.hash(t)).collect();
                hashes.sort_unstable();
                hashes.dedup();
                for hash in hashes {
                    let range = index
                        .range((hash, after + 1)..=(hash, indexed_up_to))
                        .map_err(|e| fail(&e))?;
                    for (taken, item) in range.enumerate() {
                        let (key, _) = item.map_err(|e| fail(&e))?;
                        let (_, position) = key.value();
                        if taken == limit.entries {
                            cut = cut.min(position - 1);
                            break;
                        }
                        positions.push(position);
                    }
                }
            }
            positions.sort_unstable();
            positions.dedup();
            positions.retain(|&position| position <= cut);
            for position in positions {
                if found.is_full() {
                    return Ok(found.stopped());
                }
                let Some(record) = entries.get(position).map_err(|e| fail(&e))? else {
                    return Err(HubError::Log(format!(
                        "{} is damaged: the topic index gives position {position} for one of \
                         the topics {}, but no record is there",
                        path.display(),
                        topics.join(", ")
                    )));
                };
                let entry = decode(position, record.value())?;
                // Another topic with the same hash, or a damaged key: the
                // index is not checksummed as records are.
                if herald_hub::has_any(&entry, &topics) {
                    found.push(entry);
                }
            }
            if cut < indexed_up_to {
                return Ok(found.through(cut));
            }

            // Applied but not indexed yet: at most about `INDEX_LAG` entries.
            if stored_up_to > indexed_up_to {
                for item in entries
                    .range(indexed_up_to + 1..=stored_up_to)
                    .map_err(|e| fail(&e))?
                {
                    let (key, value) = item.map_err(|e| fail(&e))?;
                    let position = key.value();
                    let wanted = record::topics(value.value())
                        .is_none_or(|have| have.iter().any(|t| topics.iter().any(|w| **w == **t)));
                    if !wanted {
                        continue;
                    }
                    if found.is_full() {
                        return Ok(found.stopped());
                    }
                    // Topics that cannot be read: decoding says why.
                    let entry = decode(position, value.value())?;
                    found.push(entry);
                }
            }
            if stored_up_to == up_to {
                return Ok(found.through(up_to));
            }

            // The rest is in the tail.
            Ok(found.add_tail(
                recent.into_iter().filter(|e| e.position() > stored_up_to),
                |entry| herald_hub::has_any(entry, &topics),
                up_to,
            ))
        })
    }
}

/// The entries a read by topic has found so far, within its limit.
pub(super) struct Found {
    limit: ReadLimit,
    entries: Vec<Arc<Entry>>,
    bytes: usize,
}

impl Found {
    pub(super) fn new(limit: ReadLimit) -> Self {
        Self {
            limit,
            entries: Vec::new(),
            bytes: 0,
        }
    }

    /// Whether another entry would go past the limit.
    pub(super) fn is_full(&self) -> bool {
        self.entries.len() >= self.limit.entries
            || (!self.entries.is_empty() && self.bytes >= self.limit.bytes)
    }

    pub(super) fn push(&mut self, entry: Entry) {
        self.push_shared(Arc::new(entry));
    }

    pub(super) fn push_shared(&mut self, entry: Arc<Entry>) {
        self.bytes = self.bytes.saturating_add(entry.frame().len());
        self.entries.push(entry);
    }

    /// What was found, having looked through `through`.
    pub(super) fn through(self, through: Position) -> FilteredRead {
        FilteredRead {
            entries: self.entries,
            through,
        }
    }

    /// Adds the entries of `tail` (in order, none past `up_to`) that
    /// `keeps` keeps, as many as the limit allows.
    pub(super) fn add_tail(
        mut self,
        tail: impl IntoIterator<Item = Arc<Entry>>,
        keeps: impl Fn(&Entry) -> bool,
        up_to: Position,
    ) -> FilteredRead {
        for entry in tail {
            if !keeps(&entry) {
                continue;
            }
            if self.is_full() {
                return self.stopped();
            }
            self.push_shared(entry);
        }
        self.through(up_to)
    }

    /// What was found, the limit reached: looked through the last one.
    pub(super) fn stopped(self) -> FilteredRead {
        let through = self.entries.last().map_or(0, |e| e.position());
        self.through(through)
    }
}
