//! The journal: where a strict commit becomes durable.
//!
//! A durable redb transaction costs about a dozen scattered page writes and an
//! fsync (385 µs measured per commit on the comparison machine, where a bare
//! 4 KiB `fdatasync` takes 150 µs). The journal makes the same batch durable
//! with one sequential write and one `fdatasync` (about 95 µs there): its
//! blocks are written once with zeros and then overwritten, so a sync flushes
//! data only, never the file's size. redb gets the batch in a non-durable
//! transaction and is made durable only at a checkpoint, after which the
//! journal is written again from its start.
//!
//! A record is `length u32 | crc32 u32 | epoch u64 | position u64 | stored
//! entry`, little-endian, the checksum over everything after it. The epoch is
//! the store's: a checkpoint raises it in the same durable transaction that
//! makes redb hold everything journaled so far, so the records of earlier
//! epochs, still in the file, end a recovery scan without the file ever being
//! cleared.
//!
//! The length's top bit marks a *barrier*: the first record of a write made
//! after a sync, so every record of its epoch before it was durable when it
//! was written. A recovery scan that stops at a record that is not whole
//! tells a crash from damage by it: a write torn by a crash can only be the
//! last one, which no later barrier follows, while a whole barrier after the
//! stop means durable (acknowledged) records were damaged, and the store is
//! refused rather than opened without them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use herald_hub::Position;

/// The journal's file name in the data directory.
pub const JOURNAL_FILE: &str = "log.journal";

const HEADER: usize = 24;
/// The length field's top bit: this record is a barrier (see the module doc).
const BARRIER: u32 = 1 << 31;
/// The file grows by this much at a time, written with zeros and synced once.
pub(crate) const GROW: u64 = 1 << 20;

/// An open journal, written by the committer only.
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    epoch: u64,
    /// Where the next write goes: the bytes before it are this epoch's.
    offset: u64,
    /// The file's length: every byte up to it has been written and synced.
    allocated: u64,
    /// Records pushed and not yet written.
    pending: Vec<u8>,
    /// Every record written in this epoch is durable: the next write's first
    /// record is a barrier.
    synced: bool,
}

/// A record found by [`recover_from`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub position: Position,
    pub stored: Vec<u8>,
}

/// What a recovery scan ([`recover_from`]) found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The records past the store's last position, in order.
    pub records: Vec<Recovered>,
    /// Where the scan stopped, when it left bytes of its epoch behind.
    pub torn: Option<Torn>,
}

/// The bytes a recovery scan dropped as a torn write: what the journal shows
/// was written in the scanned epoch past the last whole record of it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Torn {
    /// Where the scan stopped: the end of the last whole record.
    pub offset: u64,
    /// The end of what was dropped.
    pub end: u64,
    /// The bytes between `offset` and `end` that are not zero: how much of
    /// the dropped write reached the disk.
    pub nonzero: u64,
    /// The last whole record's position (the store's last, if there was
    /// none past it).
    pub last_position: Position,
    /// The last whole record's id, when there was one and it could be read.
    pub last_id: Option<String>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, to be written from its start
    /// in `epoch`.
    ///
    /// Never creates a file through a symbolic link to nothing: the journal
    /// was expected where it points, and a new one written there (wherever
    /// that is) would only hide that it is gone.
    pub fn open(path: &Path, epoch: u64) -> io::Result<Journal> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Exclusive creation follows no symbolic link: a dangling one
                // fails here instead of being written through.
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .map_err(|e| {
                        let dangling = e.kind() == io::ErrorKind::AlreadyExists
                            && std::fs::symlink_metadata(path)
                                .is_ok_and(|meta| meta.file_type().is_symlink());
                        if dangling {
                            io::Error::other(
                                "is a symbolic link to nothing: refusing to create a journal \
                                 through it",
                            )
                        } else {
                            e
                        }
                    })?;
                // The new file's name must survive a crash as its records will.
                if let Some(dir) = path.parent() {
                    File::open(dir)?.sync_all()?;
                }
                file
            }
            Err(e) => return Err(e),
        };
        // A partial step (a crash while growing) is not room: the next write
        // grows over it, zeros synced, so records lie in whole steps only.
        let allocated = file.metadata()?.len() / GROW * GROW;
        Ok(Journal {
            file,
            path: path.to_owned(),
            epoch,
            offset: 0,
            allocated,
            pending: Vec::new(),
            synced: true,
        })
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written in this epoch.
    pub fn len(&self) -> u64 {
        self.offset
    }

    /// The epoch records are written in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Adds the record of the entry stored as `stored` at `position` to the
    /// next [`write`](Self::write). Refuses a record longer than a length
    /// field holds.
    pub fn push(&mut self, position: Position, stored: &[u8]) -> io::Result<()> {
        let length = u32::try_from(stored.len())
            .ok()
            .filter(|length| length & BARRIER == 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("an entry of {} bytes is too long to journal", stored.len()),
                )
            })?;
        let start = self.pending.len();
        self.pending.extend_from_slice(&length.to_le_bytes());
        self.pending.extend_from_slice(&[0; 4]);
        self.pending.extend_from_slice(&self.epoch.to_le_bytes());
        self.pending.extend_from_slice(&position.to_le_bytes());
        self.pending.extend_from_slice(stored);
        let crc = crc32fast::hash(&self.pending[start + 8..]);
        self.pending[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    /// Forgets the records pushed since the last write.
    pub fn discard(&mut self) {
        self.pending.clear();
    }

    /// Writes the pushed records after this epoch's others. They are durable
    /// once [`sync`](Self::sync) returns.
    pub fn write(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let end = self.offset + self.pending.len() as u64;
        if end > self.allocated {
            self.grow(end)?;
        }
        if self.synced {
            self.pending[3] |= (BARRIER >> 24) as u8;
        }
        let result = self.file.write_all_at(&self.pending, self.offset);
        if result.is_ok() {
            self.offset = end;
        }
        // Even a failed write may have reached the file in part.
        self.synced = false;
        self.pending.clear();
        result
    }

    /// Makes every written record durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.synced = true;
        Ok(())
    }

    /// Grows the file by [`GROW`] when less than half of that is left past
    /// the last record, so that a write seldom grows it itself: a relaxed
    /// commit's write is made on a publisher's task, and a growth is a
    /// megabyte of zeros and a sync.
    pub fn grow_ahead(&mut self) -> io::Result<()> {
        if self.allocated.saturating_sub(self.offset) < GROW / 2 {
            self.grow(self.offset + GROW)?;
        }
        Ok(())
    }

    /// Starts `epoch`: the next record is written at the start of the file.
    /// Called once redb durably holds everything journaled so far and names
    /// `epoch` as the current one.
    pub fn restart(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.offset = 0;
        self.pending.clear();
        self.synced = true;
    }

    /// Extends the file past `end` with zeros, synced, so that later syncs of
    /// records written there change no metadata.
    fn grow(&mut self, end: u64) -> io::Result<()> {
        let target = end.div_ceil(GROW) * GROW;
        let zeros = vec![0; 64 * 1024];
        let mut at = self.allocated;
        while at < target {
            let n = (target - at).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.file.sync_data()?;
        self.synced = true;
        self.allocated = target;
        Ok(())
    }
}

/// [`recover_from`]'s records from the journal at `path` (none if it does
/// not exist).
#[cfg(test)]
pub(crate) fn recover(path: &Path, epoch: u64, after: Position) -> Result<Vec<Recovered>, String> {
    let bytes = read(path).map_err(|e| e.to_string())?;
    recover_from(&bytes, epoch, after).map(|scan| scan.records)
}

/// The journal's bytes, none if it does not exist. An error is the operating
/// system's (a permission, say), not damage.
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// Reads the records of `epoch` from the journal's `bytes` and returns those
/// after `after`, in order, with what the scan dropped as a torn write.
///
/// The scan ends at the first record that is not a whole record of `epoch`:
/// zeros, an earlier epoch's record, or one torn by a crash mid-write, whose
/// update was never acknowledged. If a whole barrier record of `epoch` lies
/// past that point, what ended the scan was durable and is damaged: refused,
/// naming the offset. A whole record out of sequence means the journal and
/// the store disagree, and is refused with the reason.
pub(crate) fn recover_from(bytes: &[u8], epoch: u64, after: Position) -> Result<Scan, String> {
    let mut found = Vec::new();
    let mut previous: Option<Position> = None;
    let mut last_stored: Option<&[u8]> = None;
    let mut offset = 0;
    while let Some(record) = whole_record(bytes, offset, epoch) {
        let last = previous.unwrap_or(after);
        let Some(expected) = last.checked_add(1) else {
            return Err(format!(
                "the journal holds a record after position {last}, the last there can be"
            ));
        };
        match previous {
            None if record.position > expected => {
                return Err(format!(
                    "the journal continues at position {} but the store ends at {after}: \
                     positions {expected} to {} are missing",
                    record.position,
                    record.position - 1
                ));
            }
            Some(_) if record.position != expected => {
                return Err(format!(
                    "the journal's record at position {} follows position {}",
                    record.position,
                    expected - 1
                ));
            }
            _ => {}
        }
        previous = Some(record.position);
        last_stored = Some(record.stored);
        if record.position > after {
            found.push(Recovered {
                position: record.position,
                stored: record.stored.to_vec(),
            });
        }
        offset += record.size;
    }
    // Only where the epoch's bytes are can a record of it start.
    let search_from = offset + 1 + 8;
    let later_barrier = bytes.get(search_from..).and_then(|rest| {
        memchr::memmem::find_iter(rest, &epoch.to_le_bytes())
            .map(|hit| search_from + hit - 8)
            .find_map(|at| {
                whole_record(bytes, at, epoch)
                    .filter(|r| r.barrier)
                    .map(|r| (at, r))
            })
    });
    let last = previous.unwrap_or(after);
    if let Some((at, barrier)) = later_barrier {
        return Err(format!(
            "the bytes at offset {offset} (after position {last}) are not a whole record, \
             but a record written once they were durable follows at offset {at} \
             (position {}): the acknowledged updates between them would be lost",
            barrier.position
        ));
    }
    if let Some(reason) = cut_at(bytes, offset, epoch) {
        return Err(format!(
            "{reason}: it was cut after position {last}, and the acknowledged updates \
             written past that would be lost"
        ));
    }
    let (end, nonzero) = torn_extent(bytes, offset, epoch);
    let torn = (nonzero > 0).then(|| Torn {
        offset: offset as u64,
        end: end as u64,
        nonzero: nonzero as u64,
        last_position: last,
        last_id: last_stored.and_then(crate::record::id),
    });
    Ok(Scan {
        records: found,
        torn,
    })
}

/// Where the bytes of `epoch` a scan stopping at `offset` leaves behind end,
/// and how many of the bytes from `offset` to there are not zero.
///
/// Past the epoch's last whole record lie zeros (room grown ahead) or the
/// records of earlier epochs, which the journal was written over from its
/// start: neither was dropped, and a stop there leaves nothing behind. What
/// does show a write of `epoch` that was not whole is a record header of it
/// where the scan stopped (a record begun there, damaged or cut short), or a
/// whole record of it further on (a write torn in its first pages); the
/// extent runs to the end of the last of them, each header taken at its
/// length, bounded by the file's end. A write whose every header was lost
/// leaves no trace of its epoch, and is not counted.
pub(crate) fn torn_extent(bytes: &[u8], offset: usize, epoch: u64) -> (usize, usize) {
    let begun_at = |at: usize| -> Option<usize> {
        let header = bytes.get(at..at + HEADER)?;
        let epoch_of = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let length = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) & !BARRIER;
        (epoch_of == epoch).then(|| {
            (at + HEADER)
                .saturating_add(length as usize)
                .min(bytes.len())
        })
    };
    let mut end = begun_at(offset).unwrap_or(offset);
    let search_from = offset + 1 + 8;
    if let Some(rest) = bytes.get(search_from..) {
        for hit in memchr::memmem::find_iter(rest, &epoch.to_le_bytes()) {
            let at = search_from + hit - 8;
            if let Some(record) = whole_record(bytes, at, epoch) {
                let after = at + record.size;
                end = end.max(begun_at(after).unwrap_or(after));
            }
        }
    }
    let nonzero = bytes[offset..end].iter().filter(|&&byte| byte != 0).count();
    (end, nonzero)
}

/// Why the journal's `bytes` look cut short where a scan for `epoch` ended
/// at `offset`, if they do.
///
/// Records are written only into room the journal grew to, in steps of
/// [`GROW`], filled with zeros and synced beforehand (and [`Journal::open`]
/// never counts a partial step as room). So no record written by a run can
/// reach past the last whole step of the file, nor past its end; a torn
/// write leaves its record's bytes inside the file. A record header lying
/// within one 512-byte sector is written whole or not at all, so its length
/// is the record's; a header across a sector boundary may be half old bytes,
/// and proves nothing.
fn cut_at(bytes: &[u8], offset: usize, epoch: u64) -> Option<String> {
    let len = bytes.len();
    let whole_steps = len - len % GROW as usize;
    if offset > whole_steps {
        return Some(format!(
            "its records reach offset {offset}, past the last whole {GROW}-byte step it grows \
             by ({whole_steps}) in its {len} bytes"
        ));
    }
    let header = bytes.get(offset..offset + HEADER)?;
    let epoch_of = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let length = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) & !BARRIER;
    let within_sector = offset % 512 + HEADER <= 512;
    let end = offset + HEADER + length as usize;
    (epoch_of == epoch && within_sector && end > len).then(|| {
        format!(
            "the record at offset {offset} is {} bytes long, past the file's end at {len}",
            HEADER + length as usize
        )
    })
}

/// The epoch of the record at the journal's start, if a whole one is there:
/// every epoch's writes start at the file's start, so a journal that was
/// ever written has one.
pub(crate) fn first_epoch(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let epoch = u64::from_le_bytes(bytes.get(8..16)?.try_into().expect("8 bytes"));
    whole_record(&bytes, 0, epoch).map(|_| epoch)
}

/// A whole, checksummed record of `epoch` at `at` in the journal's bytes.
struct Whole<'a> {
    position: Position,
    stored: &'a [u8],
    barrier: bool,
    /// The record's size in the file, header included.
    size: usize,
}

fn whole_record(bytes: &[u8], at: usize, epoch: u64) -> Option<Whole<'_>> {
    let rest = bytes.get(at..)?;
    if rest.len() < HEADER {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes(rest[i..i + 4].try_into().expect("4 bytes"));
    let long = |i: usize| u64::from_le_bytes(rest[i..i + 8].try_into().expect("8 bytes"));
    if long(8) != epoch {
        return None;
    }
    let field = word(0);
    let length = (field & !BARRIER) as usize;
    if rest.len() - HEADER < length {
        return None;
    }
    let record = &rest[..HEADER + length];
    if crc32fast::hash(&record[8..]) != word(4) {
        return None;
    }
    Some(Whole {
        position: long(16),
        stored: &record[HEADER..],
        barrier: field & BARRIER != 0,
        size: HEADER + length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: u64) -> Vec<u8> {
        format!("record {n}").into_bytes()
    }

    fn positions(found: &[Recovered]) -> Vec<Position> {
        found.iter().map(|r| r.position).collect()
    }

    fn journal_with(dir: &Path, epoch: u64, range: std::ops::RangeInclusive<u64>) -> Journal {
        let mut journal = Journal::open(&dir.join(JOURNAL_FILE), epoch).unwrap();
        for n in range {
            journal.push(n, &stored(n)).unwrap();
        }
        journal.write().unwrap();
        journal.sync().unwrap();
        journal
    }

    #[test]
    fn records_of_the_epoch_after_the_store_are_recovered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        journal_with(dir.path(), 7, 11..=15);
        let found = recover(&dir.path().join(JOURNAL_FILE), 7, 12).unwrap();
        assert_eq!(positions(&found), [13, 14, 15]);
        assert_eq!(found[0].stored, stored(13));
    }

    #[test]
    fn a_missing_journal_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            recover(&dir.path().join(JOURNAL_FILE), 0, 0)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn after_a_restart_the_previous_epochs_records_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = journal_with(dir.path(), 1, 1..=50);
        journal.restart(2);
        journal.push(51, &stored(51)).unwrap();
        journal.write().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        assert_eq!(positions(&recover(&path, 2, 50).unwrap()), [51]);
        assert!(
            recover(&path, 3, 51).unwrap().is_empty(),
            "a checkpoint raised the epoch"
        );
    }

    #[test]
    fn a_torn_last_record_ends_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_with(dir.path(), 1, 1..=3);
        let path = dir.path().join(JOURNAL_FILE);
        let end = journal.len();
        // A crash mid-write: the last record's final byte never reached the disk.
        journal.file.write_all_at(&[0xff], end - 1).unwrap();
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2]);
        // Or only its first bytes did: the room it was written into keeps
        // its zeros.
        journal.file.write_all_at(&[0; 5], end - 5).unwrap();
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2]);
    }

    #[test]
    fn a_journal_cut_through_its_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = Journal::open(&path, 1).unwrap();
        // Records past the first step, the last of them across its end.
        let big = vec![7u8; 300_000];
        for position in 1..=4 {
            journal.push(position, &big).unwrap();
            journal.write().unwrap();
        }
        journal.sync().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GROW);
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2, 3, 4]);
        let bytes = std::fs::read(&path).unwrap();
        // Cut at the step: the fourth record runs past the end.
        let error = recover_from(&bytes[..GROW as usize], 1, 0).unwrap_err();
        assert!(error.contains("past the file's end"), "{error}");
        assert!(error.contains("cut after position 3"), "{error}");
        // Cut between two records, inside the second step: the records
        // reach past the last whole step.
        let third_end = 3 * (HEADER + big.len());
        let error = recover_from(&bytes[..third_end], 1, 0).unwrap_err();
        assert!(error.contains("past the last whole"), "{error}");
        // A header across a sector boundary proves nothing (it may be half
        // old bytes): only what is whole is taken, as after a torn write.
        let other = dir.path().join("other");
        let mut crossing = Journal::open(&other, 1).unwrap();
        crossing.push(1, &vec![7u8; big.len() + 10]).unwrap();
        for position in 2..=4 {
            crossing.push(position, &big).unwrap();
        }
        crossing.write().unwrap();
        let fourth = 3 * (HEADER + big.len()) + 10;
        assert!(
            fourth % 512 + HEADER > 512,
            "the fourth header crosses a sector"
        );
        let bytes = std::fs::read(&other).unwrap();
        assert_eq!(
            positions(&recover_from(&bytes[..GROW as usize], 1, 0).unwrap().records),
            [1, 2, 3]
        );
    }

    /// Flips every bit of the byte at `at`.
    fn flip(path: &Path, at: u64) {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[!byte[0]], at).unwrap();
    }

    #[test]
    fn damage_before_a_later_synced_write_is_refused_naming_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=3);
        let second_write = journal.len();
        for n in 4..=6 {
            journal.push(n, &stored(n)).unwrap();
        }
        journal.write().unwrap();
        journal.sync().unwrap();
        // A byte of record 2, inside the first (synced) write.
        let record = (HEADER + stored(1).len()) as u64;
        flip(&path, record + HEADER as u64 + 1);
        let error = recover(&path, 1, 0).unwrap_err();
        assert!(
            error.starts_with(&format!("the bytes at offset {record} (after position 1)")),
            "{error}"
        );
        assert!(
            error.contains(&format!("follows at offset {second_write} (position 4)")),
            "{error}"
        );
        // The same damage to the length field.
        flip(&path, record + HEADER as u64 + 1);
        flip(&path, record);
        assert!(recover(&path, 1, 0).is_err());
    }

    #[test]
    fn a_write_torn_anywhere_in_its_records_loses_only_that_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=2);
        for n in 3..=6 {
            journal.push(n, &stored(n)).unwrap();
        }
        journal.write().unwrap();
        // Never synced: a power loss may keep any of its pages, so record 3
        // may be lost while 4 to 6 are whole. None was acknowledged.
        let third = 2 * (HEADER + stored(1).len()) as u64;
        flip(&path, third + HEADER as u64);
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2]);
    }

    /// What a scan of `epoch` from the start of the journal at `path`, for a
    /// store ending at `after`, drops.
    fn dropped(path: &Path, epoch: u64, after: Position) -> Option<Torn> {
        recover_from(&std::fs::read(path).unwrap(), epoch, after)
            .unwrap()
            .torn
    }

    /// The bytes of the journal at `path` in `range` that are not zero.
    fn nonzero(path: &Path, range: std::ops::Range<usize>) -> usize {
        std::fs::read(path).unwrap()[range]
            .iter()
            .filter(|&&b| b != 0)
            .count()
    }

    #[test]
    fn a_scan_ending_at_zeros_or_older_records_drops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=50);
        let bytes = std::fs::read(&path).unwrap();
        let end = journal.len() as usize;
        assert_eq!(torn_extent(&bytes, end, 1), (end, 0), "zeros follow");
        assert_eq!(dropped(&path, 1, 0), None);
        // The next epoch is written over the start of the last one: its end
        // falls inside an older record, whose bytes are not this epoch's.
        journal.restart(2);
        journal
            .push(51, b"a record longer than the others")
            .unwrap();
        journal.write().unwrap();
        journal.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let end = journal.len() as usize;
        assert!(
            bytes[end..end + HEADER].iter().any(|&b| b != 0),
            "an older record follows"
        );
        assert_eq!(torn_extent(&bytes, end, 2), (end, 0));
        assert_eq!(dropped(&path, 2, 50), None);
        assert_eq!(
            dropped(&path, 3, 51),
            None,
            "a clean close's epoch, never written"
        );
    }

    #[test]
    fn a_damaged_last_record_is_dropped_and_measured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=3);
        // Strict commits: one synced write each, so the last is a barrier
        // that nothing follows.
        let start = journal.len();
        journal.push(4, &stored(4)).unwrap();
        journal.write().unwrap();
        journal.sync().unwrap();
        let end = journal.len();
        flip(&path, end - 2);
        let span = start as usize..end as usize;
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2, 3]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            torn_extent(&bytes, start as usize, 1),
            (end as usize, nonzero(&path, span.clone()))
        );
        let torn = dropped(&path, 1, 0).expect("the damaged record is reported");
        assert_eq!((torn.offset, torn.end), (start, end));
        assert_eq!(torn.nonzero, nonzero(&path, span) as u64);
        assert_eq!(torn.last_position, 3);
    }

    #[test]
    fn a_zeroed_second_half_counts_only_what_is_left_of_its_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = Journal::open(&path, 1).unwrap();
        let mut starts = Vec::new();
        for n in 1..=20 {
            starts.push(journal.len() as usize);
            journal.push(n, &stored(n)).unwrap();
            journal.write().unwrap();
            journal.sync().unwrap();
        }
        let end = journal.len() as usize;
        // From the middle of record 10, past its header, to the end.
        let cut = starts[9] + HEADER + 3;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&vec![0; end - cut], cut as u64).unwrap();
        assert_eq!(
            positions(&recover(&path, 1, 0).unwrap()),
            (1..=9).collect::<Vec<_>>()
        );
        let torn = dropped(&path, 1, 0).expect("what is left of record 10 is reported");
        assert_eq!(torn.offset, starts[9] as u64);
        assert_eq!(torn.end, starts[10] as u64, "the end its header gives");
        assert_eq!(torn.nonzero, nonzero(&path, starts[9]..cut) as u64);
        assert_eq!(torn.last_position, 9);
        // Zeroed from a record's start: nothing of it is left to report.
        file.write_all_at(&vec![0; cut - starts[9]], starts[9] as u64)
            .unwrap();
        assert_eq!(dropped(&path, 1, 0), None);
    }

    #[test]
    fn a_write_torn_in_its_first_record_is_measured_to_its_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=2);
        let start = journal.len();
        for n in 3..=6 {
            journal.push(n, &stored(n)).unwrap();
        }
        journal.write().unwrap();
        let end = journal.len();
        // The first record's epoch lost: only its later records show the write.
        flip(&path, start + 8);
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2]);
        let torn = dropped(&path, 1, 0).expect("the torn write is reported");
        assert_eq!((torn.offset, torn.end), (start, end));
        assert_eq!(
            torn.nonzero,
            nonzero(&path, start as usize..end as usize) as u64
        );
    }

    #[test]
    fn records_of_the_format_before_barriers_are_read_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=2);
        journal.push(3, &stored(3)).unwrap();
        journal.write().unwrap();
        journal.sync().unwrap();
        // Clear the barrier bits, as the older format wrote no barrier.
        let size = (HEADER + stored(1).len()) as u64;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        for at in [0, 2 * size] {
            let mut top = [0u8];
            file.read_exact_at(&mut top, at + 3).unwrap();
            assert_eq!(top[0], 0x80, "a barrier at {at}");
            file.write_all_at(&[0], at + 3).unwrap();
        }
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2, 3]);
        // Without barriers, damage ends the scan as before.
        flip(&path, size + HEADER as u64);
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1]);
    }

    #[test]
    fn a_gap_between_the_store_and_the_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        journal_with(dir.path(), 1, 10..=12);
        let error = recover(&dir.path().join(JOURNAL_FILE), 1, 5).unwrap_err();
        assert!(error.contains("positions 6 to 9 are missing"), "{error}");
    }

    #[test]
    fn records_out_of_sequence_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join(JOURNAL_FILE), 1).unwrap();
        for n in [1, 2, 4] {
            journal.push(n, &stored(n)).unwrap();
        }
        journal.write().unwrap();
        let error = recover(&dir.path().join(JOURNAL_FILE), 1, 0).unwrap_err();
        assert!(error.contains("position 4 follows position 2"), "{error}");
    }

    #[test]
    fn the_file_grows_in_synced_steps_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), GROW);
        let big = vec![7u8; GROW as usize];
        journal.push(2, &big).unwrap();
        journal.write().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GROW);
        journal.restart(2);
        journal.push(3, &stored(3)).unwrap();
        journal.write().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GROW);
        assert_eq!(positions(&recover(&path, 2, 2).unwrap()), [3]);
    }

    #[test]
    fn growing_ahead_leaves_room_for_the_next_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut journal = journal_with(dir.path(), 1, 1..=1);
        journal.grow_ahead().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            GROW,
            "half of it is still free"
        );
        let most = vec![7u8; (GROW / 2) as usize];
        journal.push(2, &most).unwrap();
        journal.write().unwrap();
        journal.grow_ahead().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GROW);
        let length = journal.len();
        journal.push(3, &stored(3)).unwrap();
        journal.write().unwrap();
        journal.sync().unwrap();
        assert!(journal.len() > length);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            2 * GROW,
            "the write fit"
        );
        assert_eq!(positions(&recover(&path, 1, 0).unwrap()), [1, 2, 3]);
    }
}
