//! herald's record shape: what a durable `Log` stores per entry.
//!
//! key   = log position (u64; big-endian bytes where the engine compares bytes)
//! value = published_at, flags, topics, id and the encoded SSE frame (~200 bytes)
//! index = id (`urn:uuid:<uuidv7>`, 45 bytes) -> position, insert-if-absent

use std::time::{SystemTime, UNIX_EPOCH};

/// One entry as handed to a store: position already assigned by the committer.
#[derive(Debug, Clone)]
pub struct Record {
    pub position: u64,
    pub id: String,
    pub value: Vec<u8>,
}

/// An entry read back from a store (what `Log::read` would turn into an `Entry`).
#[derive(Debug)]
#[allow(dead_code)] // decoded to pay the real cost of a replay; not all fields are inspected
pub struct Decoded {
    pub position: u64,
    pub id: Box<str>,
    pub topics: Vec<Box<str>>,
    pub published_at_micros: u64,
    pub private: bool,
    pub frame: Vec<u8>,
}

/// A cheap deterministic mixer (splitmix64), so ids and payloads can be rebuilt from a position.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The id of the entry at `position` in a bulk-built store: a UUIDv7 whose millisecond
/// timestamp advances every 16 positions (so ids are time-ordered, like a live hub's).
pub fn id_for(position: u64) -> String {
    const BASE_MS: u64 = 1_767_225_600_000; // 2026-01-01
    let ms = BASE_MS + position / 16;
    let r = mix(position).to_le_bytes();
    let r2 = mix(position ^ 0xA5A5).to_le_bytes();
    let mut rand = [0u8; 10];
    rand[..8].copy_from_slice(&r);
    rand[8..].copy_from_slice(&r2[..2]);
    let uuid = uuid::Builder::from_unix_timestamp_millis(ms, &rand).into_uuid();
    format!("urn:uuid:{uuid}")
}

/// A fresh id, as the hub assigns one to a live publish.
pub fn new_id() -> String {
    format!("urn:uuid:{}", uuid::Uuid::now_v7())
}

/// Encodes a stored entry: [published_at u64][flags u8][ntopics u8]{[len u16][topic]}
/// [len u16][id][len u32][frame]. `seed` varies the payload.
pub fn encode_value(id: &str, seed: u64) -> Vec<u8> {
    let topic = format!("https://example.com/orders/{}", seed % 100_000);
    let frame = format!(
        "id: {id}\ndata: {{\"order\":{},\"status\":\"shipped\",\"note\":\"{:016x}\"}}\n\n",
        seed % 1_000_000,
        mix(seed)
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mut v = Vec::with_capacity(16 + topic.len() + id.len() + frame.len());
    v.extend_from_slice(&now.to_be_bytes());
    v.push(u8::from(seed % 7 == 0)); // private flag
    v.push(1);
    v.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    v.extend_from_slice(topic.as_bytes());
    v.extend_from_slice(&(id.len() as u16).to_be_bytes());
    v.extend_from_slice(id.as_bytes());
    v.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    v.extend_from_slice(frame.as_bytes());
    v
}

/// The record at `position` in a bulk-built store.
pub fn record_for(position: u64) -> Record {
    let id = id_for(position);
    let value = encode_value(&id, position);
    Record { position, id, value }
}

/// Decodes a stored value into owned parts (the allocation a real replay pays).
pub fn decode(position: u64, v: &[u8]) -> anyhow::Result<Decoded> {
    fn take<'a>(v: &mut &'a [u8], n: usize) -> anyhow::Result<&'a [u8]> {
        anyhow::ensure!(v.len() >= n, "truncated value");
        let (a, b) = v.split_at(n);
        *v = b;
        Ok(a)
    }
    fn string(v: &mut &[u8], n: usize) -> anyhow::Result<Box<str>> {
        Ok(std::str::from_utf8(take(v, n)?)?.into())
    }
    let mut v = v;
    let published_at_micros = u64::from_be_bytes(take(&mut v, 8)?.try_into()?);
    let private = take(&mut v, 1)?[0] != 0;
    let ntopics = take(&mut v, 1)?[0];
    let mut topics = Vec::with_capacity(ntopics as usize);
    for _ in 0..ntopics {
        let n = u16::from_be_bytes(take(&mut v, 2)?.try_into()?) as usize;
        topics.push(string(&mut v, n)?);
    }
    let n = u16::from_be_bytes(take(&mut v, 2)?.try_into()?) as usize;
    let id = string(&mut v, n)?;
    let n = u32::from_be_bytes(take(&mut v, 4)?.try_into()?) as usize;
    let frame = take(&mut v, n)?.to_vec();
    Ok(Decoded {
        position,
        id,
        topics,
        published_at_micros,
        private,
        frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_about_200_bytes_and_round_trips() {
        let r = record_for(123_456);
        assert_eq!(r.id.len(), 45);
        assert!((180..240).contains(&r.value.len()), "{}", r.value.len());
        let d = decode(r.position, &r.value).unwrap();
        assert_eq!(&*d.id, r.id);
        assert!(d.frame.starts_with(b"id: urn:uuid:"));
        assert_eq!(id_for(7), id_for(7));
    }
}
