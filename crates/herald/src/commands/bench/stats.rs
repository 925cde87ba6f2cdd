//! Measurements: latency histograms (`hdrhistogram`, in microseconds), the
//! CPU time of this process and the memory and CPU time of another one (the
//! server) from `/proc`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency recorded, in microseconds (one hour); longer ones are
/// recorded as this.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Histograms split into shards, so that the runtime's threads record
/// without waiting on one lock; each batch is recorded under one lock.
///
/// A thread always records into the same shard: a histogram's counts take
/// 190 KB, and a generator on one core that spread its records over every
/// shard would miss the cache on most of them.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Shards {
    /// `count` empty shards.
    pub fn new(count: usize) -> Self {
        Self {
            shards: (0..count.max(1)).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    /// Records every value of `batch` (microseconds) in this thread's shard.
    pub fn record(&self, batch: &[u64]) {
        if batch.is_empty() {
            return;
        }
        let mut shard = self.shards[thread_shard() % self.shards.len()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for &value in batch {
            shard.saturating_record(value);
        }
    }

    /// All shards merged into one histogram.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in &self.shards {
            let shard = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            all.add(&*shard).expect("histograms with the same bounds");
        }
        all
    }
}

/// Latencies gathered on the stack and recorded into [`Shards`] a few dozen
/// at a time: a buffer kept per subscriber would be one more cold cache line
/// per read among 10,000 of them.
pub struct Batch<'a> {
    shards: &'a Shards,
    values: [u64; 64],
    len: usize,
}

impl<'a> Batch<'a> {
    /// An empty batch for `shards`.
    pub fn new(shards: &'a Shards) -> Self {
        Self {
            shards,
            values: [0; 64],
            len: 0,
        }
    }

    /// Adds `value` (microseconds), recording the batch when it is full.
    pub fn push(&mut self, value: u64) {
        if self.len == self.values.len() {
            self.flush();
        }
        self.values[self.len] = value;
        self.len += 1;
    }

    /// Records what was pushed since the last flush.
    pub fn flush(&mut self) {
        self.shards.record(&self.values[..self.len]);
        self.len = 0;
    }
}

/// This thread's shard number: threads take numbers in turn as they first
/// record.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SHARD.with(|shard| *shard)
}

/// A latency distribution as reported, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// How many values were recorded.
    pub count: u64,
    /// The median.
    pub p50_ms: f64,
    /// The 90th percentile.
    pub p90_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
    /// The largest value.
    pub max_ms: f64,
    /// The mean.
    pub mean_ms: f64,
}

impl Summary {
    /// The summary of a histogram in microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }
}

impl serde::Serialize for Summary {
    /// With no samples, every figure but the count is `null`: a 0 ms that
    /// a script averaging runs would take for a measurement.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let figure = |value: f64| (self.count > 0).then_some(value);
        let mut out = serializer.serialize_struct("Summary", 6)?;
        out.serialize_field("count", &self.count)?;
        out.serialize_field("p50_ms", &figure(self.p50_ms))?;
        out.serialize_field("p90_ms", &figure(self.p90_ms))?;
        out.serialize_field("p99_ms", &figure(self.p99_ms))?;
        out.serialize_field("max_ms", &figure(self.max_ms))?;
        out.serialize_field("mean_ms", &figure(self.mean_ms))?;
        out.end()
    }
}

/// Microseconds in a duration, saturated to what a histogram takes.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(MAX_MICROS)
}

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// The user + system CPU time of process `pid` (`self` for this one), from
/// `/proc/PID/stat`; `None` where there is no such file.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_from_stat(&stat)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line.
fn cpu_from_stat(stat: &str) -> Option<Duration> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name come state (3) … so utime (14) is the 12th field here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / TICKS_PER_SECOND,
    ))
}

/// The resident set size of process `pid` in KiB, from `VmRSS` in `/proc/PID/status`.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    rss_from_status(&status)
}

fn rss_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time as a share of wall time, in percent of one core.
pub fn percent(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_from_stat(stat), Some(Duration::from_millis(3250)));
        assert!(cpu_time("self").is_some());
    }

    #[test]
    fn rss_is_read_from_vmrss() {
        let status = "Name:\therald\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(rss_from_status(status), Some(5120));
        assert!(rss_kib("self").is_some_and(|kib| kib > 0));
        assert_eq!(rss_from_status("Name:\tx\n"), None);
    }

    #[test]
    fn shards_merge_into_one_summary() {
        let shards = Shards::new(4);
        shards.record(&[1000, 2000]);
        std::thread::scope(|scope| {
            scope.spawn(|| shards.record(&[3000]));
        });
        shards.record(&[]);
        let mut batch = Batch::new(&shards);
        for value in [4000; 70] {
            batch.push(value);
        }
        batch.flush();
        let summary = Summary::of(&shards.merged());
        assert_eq!(summary.count, 73);
        assert!((summary.p50_ms - 4.0).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 4.0).abs() < 0.01, "{summary:?}");
        // 1, 2 and 3 ms from the two threads are in it too.
        assert!((summary.mean_ms - 286.0 / 73.0).abs() < 0.01, "{summary:?}");
        assert_eq!(Summary::of(&histogram()), Summary::default());
    }
}
