//! The reconnection delay policy, as pure arithmetic.

use std::time::Duration;

/// How long an [`EventSource`](crate::EventSource) waits before it reconnects.
///
/// The policy, with `failures` the number of consecutive connection attempts
/// that failed since the last successful open (a 2xx `text/event-stream`
/// answer resets it to 0):
///
/// ```text
/// base    = the server's latest `retry` if it sent one, else `initial`
///           (raised to at least 100 ms once an attempt has failed)
/// delay   = min(base × 2^failures, max(cap, base))
/// wait    = delay + jitter,  jitter uniform in [0, delay / 5]
/// ```
///
/// So the first reconnection after a stream ends (or drops after a successful
/// open) waits the server's `retry` (plus up to 20%), each further failure
/// doubles the wait up to `max`, and the wait is never shorter than the
/// server's `retry`: the cap only bounds the growth, it never overrides what
/// the server asked for. The jitter only ever lengthens the wait, so that
/// clients dropped together by a restarting server do not all come back in
/// the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

/// The smallest base once an attempt failed, so that a server which sent
/// `retry: 0` and then went away is not hammered.
const MIN_FAILURE_BASE: Duration = Duration::from_millis(100);

/// The largest jitter, as a fraction of the delay.
const JITTER_FRACTION: f64 = 0.2;

impl Default for Backoff {
    /// 3 seconds initially (as browsers do), at most 60 seconds.
    fn default() -> Self {
        Self::new(Duration::from_secs(3), Duration::from_secs(60))
    }
}

impl Backoff {
    /// A policy starting at `initial` (used until the server sends `retry`)
    /// and growing to at most `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max }
    }

    /// The delay used until the server sends a `retry` field.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap on the exponential growth.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The delay before jitter: `min(base × 2^failures, max(cap, base))`,
    /// with `base` the server's `retry` if given, else the initial delay, and
    /// at least 100 ms when `failures` is not 0.
    pub fn delay(&self, retry: Option<Duration>, failures: u32) -> Duration {
        let mut base = retry.unwrap_or(self.initial);
        if failures > 0 {
            base = base.max(MIN_FAILURE_BASE);
        }
        let cap = self.max.max(base);
        let factor = 2u32.saturating_pow(failures.min(31));
        base.checked_mul(factor).map_or(cap, |d| d.min(cap))
    }

    /// The wait: [`Backoff::delay`] plus `unit` × 20% of it, where `unit` is a
    /// random number in `[0, 1)` (values outside are clamped).
    pub fn wait(&self, retry: Option<Duration>, failures: u32, unit: f64) -> Duration {
        let delay = self.delay(retry, failures);
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        delay + delay.mul_f64(JITTER_FRACTION * unit)
    }

    /// [`Backoff::wait`] with a random jitter.
    pub(crate) fn random_wait(&self, retry: Option<Duration>, failures: u32) -> Duration {
        self.wait(retry, failures, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_initial_delay_applies_until_the_server_sends_retry() {
        let backoff = Backoff::new(ms(1000), ms(30_000));
        assert_eq!(backoff.delay(None, 0), ms(1000));
        assert_eq!(backoff.delay(Some(ms(250)), 0), ms(250));
    }

    #[test]
    fn each_failed_attempt_doubles_the_delay_up_to_the_cap() {
        let backoff = Backoff::new(ms(1000), ms(10_000));
        let delays: Vec<_> = (0..6).map(|n| backoff.delay(None, n)).collect();
        assert_eq!(
            delays,
            [
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(10_000),
                ms(10_000)
            ]
        );
        assert_eq!(backoff.delay(Some(ms(300)), 2), ms(1200));
    }

    #[test]
    fn the_cap_never_shortens_the_servers_retry() {
        let backoff = Backoff::new(ms(1000), ms(5000));
        assert_eq!(backoff.delay(Some(ms(20_000)), 0), ms(20_000));
        assert_eq!(backoff.delay(Some(ms(20_000)), 3), ms(20_000));
    }

    #[test]
    fn huge_failure_counts_and_retries_saturate_at_the_cap() {
        let backoff = Backoff::new(ms(1000), ms(60_000));
        assert_eq!(backoff.delay(None, u32::MAX), ms(60_000));
        let huge = Duration::from_secs(u64::MAX / 2);
        assert_eq!(backoff.delay(Some(huge), 40), huge);
    }

    #[test]
    fn jitter_adds_at_most_a_fifth_and_never_subtracts() {
        let backoff = Backoff::new(ms(1000), ms(60_000));
        assert_eq!(backoff.wait(None, 1, 0.0), ms(2000));
        assert_eq!(backoff.wait(None, 1, 0.5), ms(2200));
        assert_eq!(backoff.wait(None, 1, 1.0), ms(2400));
        assert_eq!(backoff.wait(None, 1, 7.0), ms(2400));
        assert_eq!(backoff.wait(None, 1, -1.0), ms(2000));
        assert_eq!(backoff.wait(None, 1, f64::NAN), ms(2000));
        for _ in 0..100 {
            let wait = backoff.random_wait(Some(ms(300)), 0);
            assert!(wait >= ms(300) && wait <= ms(360), "{wait:?}");
        }
    }

    #[test]
    fn a_zero_retry_reconnects_at_once_but_backs_off_after_failures() {
        let backoff = Backoff::default();
        assert_eq!(backoff.wait(Some(Duration::ZERO), 0, 0.9), Duration::ZERO);
        assert_eq!(backoff.delay(Some(Duration::ZERO), 1), ms(200));
        assert_eq!(backoff.delay(Some(Duration::ZERO), 3), ms(800));
    }
}
