//! The free-space reserve: updates are refused while the disk holding the
//! log has less than a reserve free, and taken again as soon as it has more.
//!
//! The reserve is left for the store's own writes: applying committed
//! entries to `log.redb`, checkpoints and the journal's growth. redb, once
//! one of its writes meets a full disk, refuses every write until the file
//! is opened again, which only a restart does; refusing publishes before the
//! disk is full keeps that from happening in the common case (a disk that
//! fills slowly, from the log or from something else), so that freeing
//! space is enough to bring publishing back.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads the bytes available to this process on the file system holding a
/// path (replaceable in tests).
pub type FreeSpace = Arc<dyn Fn(&Path) -> io::Result<u64> + Send + Sync>;

/// The default of [`crate::StoreConfig::min_free_space`]: 64 MiB, room for
/// several applies of the largest tail (4 MiB of records, with redb's
/// copy-on-write pages) and a checkpoint.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 64 << 20;

/// How stale a reading may be while the disk had room.
const STALE_AFTER: Duration = Duration::from_millis(100);

/// What the operating system says is available to this process on the file
/// system holding `path` (`statvfs`: blocks available to unprivileged users).
pub fn available(path: &Path) -> io::Result<u64> {
    let stats = rustix::fs::statvfs(path)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// Decides whether the log takes more bytes, from readings of the free space
/// taken often enough that the reserve cannot be used up between two.
pub(crate) struct Reserve {
    dir: PathBuf,
    /// The bytes kept free; 0 turns the check off.
    min_free: u64,
    free_space: FreeSpace,
    /// When the last reading was taken and what it said.
    read_at: Option<Instant>,
    free: u64,
    /// Bytes admitted since that reading.
    admitted: u64,
}

impl Reserve {
    /// A reserve of `min_free` bytes on the file system holding `dir`.
    pub(crate) fn new(dir: PathBuf, min_free: u64, free_space: FreeSpace) -> Self {
        Self {
            dir,
            min_free,
            free_space,
            read_at: None,
            free: 0,
            admitted: 0,
        }
    }

    /// Whether `bytes` more may be written, or why not. A reading is taken
    /// when the last one is older than [`STALE_AFTER`], when what was
    /// admitted since could have used up a quarter of the reserve, and
    /// whenever the disk was short: space freed is noticed at once.
    pub(crate) fn admit(&mut self, bytes: u64) -> Result<(), String> {
        if self.min_free == 0 {
            return Ok(());
        }
        let stale = self.read_at.is_none_or(|at| at.elapsed() >= STALE_AFTER)
            || self.free < self.min_free
            || self.admitted.saturating_add(bytes) >= self.min_free / 4;
        if stale {
            self.read()?;
        }
        self.admitted = self.admitted.saturating_add(bytes);
        Ok(())
    }

    /// Takes a fresh reading and says whether the disk is short.
    pub(crate) fn check(&mut self) -> Result<(), String> {
        if self.min_free == 0 {
            return Ok(());
        }
        self.read()
    }

    fn read(&mut self) -> Result<(), String> {
        match (self.free_space)(&self.dir) {
            Ok(free) => {
                self.free = free;
                self.read_at = Some(Instant::now());
                self.admitted = 0;
            }
            Err(error) => {
                // Not a reason to refuse: the write itself reports a disk
                // that cannot take it. Read again next time.
                tracing::warn!(dir = %self.dir.display(), %error, "cannot read the free disk space");
                self.read_at = None;
                self.free = u64::MAX;
                return Ok(());
            }
        }
        if self.free < self.min_free {
            return Err(format!(
                "the disk holding {} has {} free, less than the {} the log keeps free for its \
                 own writes (log.min_free_space); updates are taken again once there is more",
                self.dir.display(),
                size(self.free),
                size(self.min_free)
            ));
        }
        Ok(())
    }
}

/// A byte count for people: `1.5 MiB`, `512 KiB`, `300 bytes`.
fn size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            // Precision is beside the point for a message: f64 is enough.
            #[allow(clippy::cast_precision_loss)]
            let value = bytes as f64 / scale as f64;
            return format!("{value:.1} {unit} ({bytes} bytes)");
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    fn reserve(min_free: u64, free: &Arc<AtomicU64>, reads: &Arc<AtomicUsize>) -> Reserve {
        let free = Arc::clone(free);
        let reads = Arc::clone(reads);
        Reserve::new(
            PathBuf::from("/data"),
            min_free,
            Arc::new(move |_| {
                reads.fetch_add(1, Ordering::Relaxed);
                Ok(free.load(Ordering::Relaxed))
            }),
        )
    }

    #[test]
    fn a_disk_short_of_the_reserve_refuses_and_one_with_room_again_admits_at_once() {
        let free = Arc::new(AtomicU64::new(100 << 20));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut reserve = reserve(64 << 20, &free, &reads);
        assert_eq!(reserve.admit(300), Ok(()));
        free.store(3 << 19, Ordering::Relaxed);
        // Within the reading's life, and far from a quarter of the reserve:
        // no new reading, so the next refusal waits for the next one.
        assert_eq!(reserve.admit(300), Ok(()));
        assert_eq!(reads.load(Ordering::Relaxed), 1);
        let refusal = reserve.check().unwrap_err();
        assert_eq!(
            refusal,
            "the disk holding /data has 1.5 MiB (1572864 bytes) free, less than the 64.0 MiB \
             (67108864 bytes) the log keeps free for its own writes (log.min_free_space); updates \
             are taken again once there is more"
        );
        assert!(reserve.admit(300).is_err(), "still short");
        free.store(65 << 20, Ordering::Relaxed);
        assert_eq!(reserve.admit(300), Ok(()), "space back, noticed at once");
    }

    #[test]
    fn large_writes_read_again_before_a_quarter_of_the_reserve_is_used() {
        let free = Arc::new(AtomicU64::new(80 << 20));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut reserve = reserve(64 << 20, &free, &reads);
        assert_eq!(reserve.admit(1 << 20), Ok(()));
        free.store(10 << 20, Ordering::Relaxed);
        assert!(
            reserve.admit(15 << 20).is_err(),
            "16 MiB admitted since the reading: read again"
        );
        assert_eq!(reads.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_reserve_of_zero_never_reads() {
        let free = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut reserve = reserve(0, &free, &reads);
        assert_eq!(reserve.admit(1 << 30), Ok(()));
        assert_eq!(reserve.check(), Ok(()));
        assert_eq!(reads.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_unreadable_free_space_admits() {
        let mut reserve = Reserve::new(
            PathBuf::from("/data"),
            64 << 20,
            Arc::new(|_| Err(io::Error::other("no statvfs here"))),
        );
        assert_eq!(reserve.admit(300), Ok(()));
    }

    #[test]
    fn the_real_reading_names_a_plausible_amount() {
        let dir = tempfile::tempdir().unwrap();
        let free = available(dir.path()).unwrap();
        assert!(free > 0, "a writable temporary directory has some room");
        let error = available(&dir.path().join("missing")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
