//! Which old entries to discard: by count, by age and by total size.
//!
//! A pure decision over the log's current shape, with the time passed in, so
//! it is tested without a clock or a disk.

use std::time::{Duration, SystemTime};

/// Retention limits; `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many entries.
    pub max_entries: Option<u64>,
    /// Discard entries older than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many bytes of records.
    pub max_bytes: Option<u64>,
}

/// What the decision needs to know about the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Entries retained.
    pub entries: u64,
    /// Bytes of records retained.
    pub bytes: u64,
}

impl Retention {
    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.max_entries.is_some() || self.max_age.is_some() || self.max_bytes.is_some()
    }

    /// Whether the oldest entry, published at `oldest`, must go, given the
    /// log's shape at `now`.
    pub fn discard_oldest(&self, shape: Shape, oldest: SystemTime, now: SystemTime) -> bool {
        if shape.entries == 0 {
            return false;
        }
        let over_count = self.max_entries.is_some_and(|max| shape.entries > max);
        // The newest entry stays whatever its size, as in the memory log:
        // a bound smaller than one large update would leave nothing to
        // replay, not even what was just published.
        let over_bytes = shape.entries > 1 && self.max_bytes.is_some_and(|max| shape.bytes > max);
        let too_old = self
            .max_age
            .is_some_and(|age| now.duration_since(oldest).is_ok_and(|d| d > age));
        over_count || over_bytes || too_old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn shape(entries: u64, bytes: u64) -> Shape {
        Shape { entries, bytes }
    }

    #[test]
    fn no_limit_keeps_everything() {
        let r = Retention::default();
        assert!(!r.discard_oldest(
            shape(1_000_000, u64::MAX),
            T0,
            T0 + Duration::from_secs(1 << 30)
        ));
    }

    #[test]
    fn count_limit() {
        let r = Retention {
            max_entries: Some(3),
            ..Default::default()
        };
        assert!(!r.discard_oldest(shape(3, 0), T0, T0));
        assert!(r.discard_oldest(shape(4, 0), T0, T0));
    }

    #[test]
    fn age_limit_uses_the_given_time() {
        let r = Retention {
            max_age: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        assert!(!r.discard_oldest(shape(1, 1), T0, T0 + Duration::from_secs(60)));
        assert!(r.discard_oldest(shape(1, 1), T0, T0 + Duration::from_secs(61)));
        assert!(
            !r.discard_oldest(shape(1, 1), T0 + Duration::from_secs(5), T0),
            "clock behind"
        );
    }

    #[test]
    fn byte_limit() {
        let r = Retention {
            max_bytes: Some(1000),
            ..Default::default()
        };
        assert!(!r.discard_oldest(shape(5, 1000), T0, T0));
        assert!(r.discard_oldest(shape(5, 1001), T0, T0));
        assert!(
            !r.discard_oldest(shape(1, 5000), T0, T0),
            "the newest is kept"
        );
    }

    #[test]
    fn an_empty_log_discards_nothing() {
        let r = Retention {
            max_entries: Some(0),
            ..Default::default()
        };
        assert!(!r.discard_oldest(shape(0, 0), T0, T0));
    }
}
