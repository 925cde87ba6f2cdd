//! The stored form of an entry: a versioned, length-prefixed binary record.
//!
//! Decoding checks every length and every string, so a damaged record is
//! reported with what is wrong instead of being served or causing a panic.
//! Version 2 ends with a CRC-32 of everything before it, so that damage that
//! still decodes (a flipped byte in a topic or the frame) is found too;
//! version 1 records, written before it, are still read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use herald_hub::{Entry, EntryParts, Position};

/// The record format this build writes; it reads this one and the one before.
pub const RECORD_VERSION: u8 = 2;
/// The format before the checksum.
const RECORD_VERSION_WITHOUT_CHECKSUM: u8 = 1;

const PRIVATE: u8 = 1;
const HAS_TYPE: u8 = 2;

/// Encodes an entry's stored fields (its position is the key, not part of the record).
pub fn encode(entry: &Entry) -> Vec<u8> {
    let frame = entry.frame();
    let mut out = Vec::with_capacity(frame.len() + entry.id().len() + 64);
    out.push(RECORD_VERSION);
    let micros = entry
        .published_at()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    out.extend_from_slice(&micros.to_le_bytes());
    let mut flags = 0;
    if entry.is_private() {
        flags |= PRIVATE;
    }
    if entry.event_type().is_some() {
        flags |= HAS_TYPE;
    }
    out.push(flags);
    put_bytes(&mut out, entry.id().as_bytes());
    if let Some(event_type) = entry.event_type() {
        put_bytes(&mut out, event_type.as_bytes());
    }
    put_u32(&mut out, entry.topics().len());
    for topic in entry.topics() {
        put_bytes(&mut out, topic.as_bytes());
    }
    put_bytes(&mut out, frame);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a record stored at `position`; the error says what is damaged.
pub fn decode(position: Position, record: &[u8]) -> Result<Entry, String> {
    let fields = match record.first() {
        Some(&RECORD_VERSION) => {
            let Some(split) = record.len().checked_sub(4).filter(|&at| at > 0) else {
                return Err(format!("truncated record: {} bytes", record.len()));
            };
            let (fields, crc) = record.split_at(split);
            let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
            if crc32fast::hash(fields) != crc {
                return Err("its checksum does not match: the record is damaged".into());
            }
            fields
        }
        Some(&RECORD_VERSION_WITHOUT_CHECKSUM) => record,
        Some(version) => return Err(format!("unknown record format version {version}")),
        None => return Err("truncated format version: needs 1 bytes, 0 left".into()),
    };
    let mut reader = Reader { rest: &fields[1..] };
    let micros = u64::from_le_bytes(reader.array("timestamp")?);
    let flags = reader.u8("flags")?;
    if flags & !(PRIVATE | HAS_TYPE) != 0 {
        return Err(format!("unknown flags {flags:#04x}"));
    }
    let id = reader.string("id")?;
    let event_type = if flags & HAS_TYPE != 0 {
        Some(reader.string("event type")?)
    } else {
        None
    };
    let count = reader.u32("topic count")?;
    let mut topics = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        topics.push(reader.string("topic")?);
    }
    let frame = reader.bytes("frame")?.to_vec();
    if !reader.rest.is_empty() {
        return Err(format!("{} unexpected trailing bytes", reader.rest.len()));
    }
    Ok(Entry::from_parts(EntryParts {
        position,
        id,
        topics: topics.into_boxed_slice(),
        private: flags & PRIVATE != 0,
        event_type,
        published_at: UNIX_EPOCH + Duration::from_micros(micros),
        frame: Bytes::from(frame),
    }))
}

/// Reads only the publication time, for age-based retention.
pub fn published_at(record: &[u8]) -> Option<SystemTime> {
    let bytes: [u8; 8] = record.get(1..9)?.try_into().ok()?;
    Some(UNIX_EPOCH + Duration::from_micros(u64::from_le_bytes(bytes)))
}

/// Reads only the id, to clean the id index when a record is discarded.
pub fn id(record: &[u8]) -> Option<String> {
    let mut reader = Reader {
        rest: record.get(10..)?,
    };
    reader.string("id").ok().map(String::from)
}

/// Reads only whether the entry is private, for a filtered read.
pub fn is_private(record: &[u8]) -> Option<bool> {
    record.get(9).map(|flags| flags & PRIVATE != 0)
}

/// Reads only the topics, for the topic index: `None` for a record too
/// damaged to read them from (its checksum is not checked here; a read of
/// the record itself does that).
pub fn topics(record: &[u8]) -> Option<Vec<&str>> {
    let flags = *record.get(9)?;
    let mut reader = Reader {
        rest: record.get(10..)?,
    };
    reader.bytes("id").ok()?;
    if flags & HAS_TYPE != 0 {
        reader.bytes("type").ok()?;
    }
    let count = reader.u32("topic count").ok()? as usize;
    // Each topic takes at least its 4-byte length: a damaged count cannot
    // make this allocate more than the record's size.
    let mut topics = Vec::with_capacity(count.min(reader.rest.len() / 4));
    for _ in 0..count {
        let topic = reader.bytes("topic").ok()?;
        topics.push(std::str::from_utf8(topic).ok()?);
    }
    Some(topics)
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err(format!(
                "truncated {what}: needs {n} bytes, {} left",
                self.rest.len()
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let bytes = self.take(N, what)?;
        bytes.try_into().map_err(|_| format!("truncated {what}"))
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    fn string(&mut self, what: &str) -> Result<Box<str>, String> {
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map(Box::from)
            .map_err(|_| format!("the {what} is not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_hub::Update;

    fn entry() -> Entry {
        Entry::encode(
            Update::new("https://example.com/a", "x\ny")
                .with_topic("urn:b")
                .with_event_type("t")
                .private(),
            "urn:uuid:1".into(),
            UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
        )
        .unwrap()
        .at_position(7)
    }

    #[test]
    fn a_record_decodes_to_the_same_entry() {
        let original = entry();
        let record = encode(&original);
        assert_eq!(decode(7, &record).unwrap(), original);
        assert_eq!(published_at(&record), Some(original.published_at()));
        assert_eq!(id(&record).as_deref(), Some("urn:uuid:1"));
    }

    #[test]
    fn the_topics_are_read_alone() {
        let original = entry();
        let record = encode(&original);
        let expected: Vec<&str> = original.topics().iter().map(|t| &**t).collect();
        assert_eq!(topics(&record), Some(expected));
        for cut in 0..record.len() - 4 - original.frame().len() - 4 {
            assert_eq!(topics(&record[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn any_flipped_byte_is_found() {
        let record = encode(&entry());
        for at in 1..record.len() {
            let mut damaged = record.clone();
            damaged[at] ^= 0x01;
            assert!(decode(7, &damaged).is_err(), "byte {at}");
        }
    }

    #[test]
    fn a_record_of_the_version_before_the_checksum_is_read() {
        let original = entry();
        let mut record = encode(&original);
        record.truncate(record.len() - 4);
        record[0] = 1;
        assert_eq!(decode(7, &record).unwrap(), original);
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let record = encode(&entry());
        for len in 0..record.len() {
            assert!(
                decode(7, &record[..len]).is_err(),
                "truncated to {len} bytes"
            );
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_problem() {
        assert_eq!(
            decode(1, &[9, 0, 0]).unwrap_err(),
            "unknown record format version 9"
        );
        let mut record = encode(&entry());
        record.push(0);
        assert_eq!(
            decode(7, &record).unwrap_err(),
            "its checksum does not match: the record is damaged"
        );
        // Checks that a version 1 record (no checksum) still gets.
        let mut old = encode(&entry());
        old.truncate(old.len() - 4);
        old[0] = 1;
        let mut trailing = old.clone();
        trailing.push(0);
        assert_eq!(
            decode(7, &trailing).unwrap_err(),
            "1 unexpected trailing bytes"
        );
        old[14] = 0xFF; // first byte of the id
        assert_eq!(decode(7, &old).unwrap_err(), "the id is not valid UTF-8");
    }
}
