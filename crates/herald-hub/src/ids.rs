//! The ids the hub generates for updates published without one.
//!
//! Draft 08 lets a hub generate either an IRI (a `urn:uuid:`) or "a relative
//! reference consisting of a fragment", convenient for a sequence. The
//! fragment is the short one: `#1764901234567890` is 17 bytes of every frame
//! where `urn:uuid:…` is 45, which a burst pays once per subscriber.
//! Publishers may not send ids starting with `#`, so a generated fragment
//! never collides with a publisher's id.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;

use crate::{HubError, Log, ReadLimit};

/// How the hub chooses ids for updates published without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdScheme {
    /// `urn:uuid:` with a time-ordered UUIDv7.
    UuidV7,
    /// `urn:uuid:` with a random UUIDv4: reveals nothing about ordering or
    /// timing, for deployments with sensitive private updates.
    UuidV4,
    /// `#` and a decimal number, one more for each update (the default):
    /// the shortest frames. Reveals ordering, timing and how many updates
    /// the hub took between two ids (private ones included).
    #[default]
    Sequence,
}

/// How many of the newest entries are read, at the first generated id, for
/// the highest sequence id a previous run generated.
const SEED_SCAN: usize = 1_000;

/// Generates ids by an [`IdScheme`].
pub(crate) struct IdGenerator {
    scheme: IdScheme,
    /// The next sequence number. Starts at the clock in microseconds, so a
    /// restarted hub with an empty log does not reissue ids that clients of
    /// its previous run still hold, and is raised past the log's newest
    /// sequence id before the first is generated (a clock set back).
    next: AtomicU64,
    seeded: OnceCell<()>,
}

impl IdGenerator {
    pub(crate) fn new(scheme: IdScheme) -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        IdGenerator {
            scheme,
            next: AtomicU64::new(micros),
            seeded: OnceCell::new(),
        }
    }

    /// A new id. With [`IdScheme::Sequence`] the first call reads the log's
    /// newest entries, so it can fail as a log read can.
    pub(crate) async fn generate(&self, log: &dyn Log) -> Result<String, HubError> {
        let uuid = match self.scheme {
            IdScheme::UuidV7 => uuid::Uuid::now_v7(),
            IdScheme::UuidV4 => uuid::Uuid::new_v4(),
            IdScheme::Sequence => {
                self.seeded.get_or_try_init(|| self.seed(log)).await?;
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                return Ok(format_sequence(n));
            }
        };
        // Written into a buffer of the exact size, not through `format!`:
        // one id per publish.
        let mut urn = [0; uuid::fmt::Urn::LENGTH];
        Ok(uuid.urn().encode_lower(&mut urn).to_owned())
    }

    async fn seed(&self, log: &dyn Log) -> Result<(), HubError> {
        let head = log.head();
        let after = head.saturating_sub(SEED_SCAN as u64);
        let newest = log.read(after, head, ReadLimit::entries(SEED_SCAN)).await?;
        if let Some(highest) = newest.iter().filter_map(|e| parse_sequence(e.id())).max() {
            self.next
                .fetch_max(highest.saturating_add(1), Ordering::Relaxed);
        }
        Ok(())
    }
}

fn format_sequence(n: u64) -> String {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    let mut id = String::with_capacity(1 + digits.len());
    id.push('#');
    id.push_str(digits);
    id
}

/// The number of an id of [`IdScheme::Sequence`], if `id` is one.
fn parse_sequence(id: &str) -> Option<u64> {
    let digits = id.strip_prefix('#')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, MemoryLog, Update};

    #[test]
    fn a_sequence_id_is_a_fragment_of_decimal_digits() {
        assert_eq!(format_sequence(1_764_901_234_567_890), "#1764901234567890");
        assert_eq!(
            parse_sequence("#1764901234567890"),
            Some(1_764_901_234_567_890)
        );
        for other in [
            "#",
            "#+1",
            "#12a",
            "1234",
            "urn:uuid:1",
            "#99999999999999999999",
        ] {
            assert_eq!(parse_sequence(other), None, "{other}");
        }
    }

    fn committed(log: &MemoryLog, id: &str) {
        let update = Update::new("https://example.com/a", "x");
        let entry = Entry::encode(update, id.to_owned(), SystemTime::now()).unwrap();
        futures_util::FutureExt::now_or_never(log.append(entry))
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn sequence_ids_increase_from_the_clock() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let log = MemoryLog::new(10);
        let ids = IdGenerator::new(IdScheme::Sequence);
        let first = parse_sequence(&ids.generate(&log).await.unwrap()).unwrap();
        let second = parse_sequence(&ids.generate(&log).await.unwrap()).unwrap();
        assert!(first >= before, "{first} < {before}");
        assert_eq!(second, first + 1);
    }

    #[tokio::test]
    async fn sequence_ids_start_past_the_newest_one_in_the_log() {
        // A previous run's ids above the clock (it was set back since):
        // the first new id is past the highest, even behind a publisher's id.
        let log = MemoryLog::new(10);
        committed(&log, "#99999999999999990");
        committed(&log, "#99999999999999999");
        committed(&log, "#5");
        committed(&log, "urn:uuid:publisher-chosen");
        let ids = IdGenerator::new(IdScheme::Sequence);
        assert_eq!(ids.generate(&log).await.unwrap(), "#100000000000000000");
        assert_eq!(ids.generate(&log).await.unwrap(), "#100000000000000001");
    }

    #[tokio::test]
    async fn uuid_schemes_make_urns_of_their_version() {
        let log = MemoryLog::new(10);
        for (scheme, version) in [(IdScheme::UuidV7, 7), (IdScheme::UuidV4, 4)] {
            let id = IdGenerator::new(scheme).generate(&log).await.unwrap();
            let uuid = uuid::Uuid::parse_str(id.strip_prefix("urn:uuid:").unwrap()).unwrap();
            assert_eq!(uuid.get_version_num(), version, "{id}");
        }
    }
}
