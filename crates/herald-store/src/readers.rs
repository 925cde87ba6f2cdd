//! The turns replays take at reading the store.
//!
//! A replay that reads from before the in-memory tail scans `log.redb` one
//! batch at a time, and a subscriber whose matchers select few updates
//! scans all of the history to find them: about 2 s of CPU per request on
//! a log of 1.8 GB, asked for by anyone who may subscribe. Unbounded, a few
//! dozen such requests take every core from the committer and from live
//! delivery. So at most `max_replay_readers` batch reads run at once,
//! and the others wait in the order they asked: a long scan and a short
//! resume take turns batch by batch, so the short one waits for a few
//! batches, not for the long one to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default of [`StoreConfig::max_replay_readers`](crate::StoreConfig):
/// half the cores, at least one, so replays never take more than half of
/// the machine from publishing and live delivery.
pub fn default_replay_readers() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

/// A first-come, first-served limit on concurrent batch reads of the store.
#[derive(Debug)]
pub(crate) struct ReadTurns {
    semaphore: Arc<Semaphore>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    waiting: AtomicU64,
    reading: AtomicU64,
}

/// A read's turn: the read may run while this is held.
#[derive(Debug)]
pub(crate) struct Turn {
    _permit: OwnedSemaphorePermit,
    counts: Arc<Counts>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.counts.reading.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a waiting read until it gets its turn or gives up.
struct Waiting<'a>(&'a Counts);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ReadTurns {
    /// At most `capacity` reads at once (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(capacity.max(1))),
            counts: Arc::default(),
        }
    }

    /// Waits for a turn, after every read that asked before.
    pub(crate) async fn take(&self) -> Turn {
        self.counts.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(&self.counts);
        let permit = Arc::clone(&self.semaphore)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        drop(waiting);
        self.counts.reading.fetch_add(1, Ordering::Relaxed);
        Turn {
            _permit: permit,
            counts: Arc::clone(&self.counts),
        }
    }

    /// Reads waiting for a turn now.
    pub(crate) fn waiting(&self) -> u64 {
        self.counts.waiting.load(Ordering::Relaxed)
    }

    /// Reads running now.
    pub(crate) fn reading(&self) -> u64 {
        self.counts.reading.load(Ordering::Relaxed)
    }
}

/// How much lower than the rest of the process replay reads are scheduled:
/// added to the nice value the reader threads start with (at most 19; the
/// kernel's weight for nice 10 is about a tenth of nice 0's). On Linux the
/// priority calls with no pid act on the calling thread.
pub(crate) const READER_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// The threads replay reads run on, one per turn, at nice [`READER_NICE`]:
/// when the cores are saturated the kernel gives the runtime's and the
/// committer's threads (publishing, live delivery) most of them, and the
/// reads what is left. On tokio's blocking threads, shared with every other
/// blocking task of the process, the one read took half of a busy core;
/// and a thread's nice value cannot be lowered again without privileges,
/// so the reads have threads of their own.
#[derive(Debug)]
pub(crate) struct ReaderPool {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl ReaderPool {
    /// Starts `threads` reader threads (at least one). They end once the
    /// pool is dropped and their current job is done.
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(parking_lot::Mutex::new(queue));
        for _ in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name("herald-log-read".into())
                .spawn(move || {
                    let lowered = rustix::process::getpriority_process(None).and_then(|nice| {
                        let lower = (nice + READER_NICE).min(19);
                        rustix::process::setpriority_process(None, lower)
                    });
                    if let Err(error) = lowered {
                        tracing::debug!(%error, "cannot lower the replay reader's priority");
                    }
                    loop {
                        let job = queue.lock().recv();
                        let Ok(job) = job else { break };
                        // A job that panics drops its reply: its caller is
                        // told, and the thread goes on.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `work` on a reader thread; `None` when the pool has stopped or
    /// the work panicked.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs.send(job).ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn reads_past_the_capacity_wait_and_are_counted() {
        let turns = ReadTurns::new(2);
        let Poll::Ready(first) = poll(pin!(turns.take())) else {
            panic!("the first read waited");
        };
        let Poll::Ready(second) = poll(pin!(turns.take())) else {
            panic!("the second read waited");
        };
        let mut third = pin!(turns.take());
        assert!(poll(third.as_mut()).is_pending(), "a third read ran");
        assert_eq!((turns.reading(), turns.waiting()), (2, 1));
        drop(first);
        let Poll::Ready(third) = poll(third.as_mut()) else {
            panic!("the third read still waits once a turn ended");
        };
        assert_eq!((turns.reading(), turns.waiting()), (2, 0));
        drop((second, third));
        assert_eq!((turns.reading(), turns.waiting()), (0, 0));
    }

    #[test]
    fn turns_go_in_the_order_they_were_asked_for() {
        let turns = ReadTurns::new(1);
        let Poll::Ready(held) = poll(pin!(turns.take())) else {
            panic!("the first read waited");
        };
        let mut early = pin!(turns.take());
        let mut late = pin!(turns.take());
        assert!(poll(early.as_mut()).is_pending());
        assert!(poll(late.as_mut()).is_pending());
        drop(held);
        assert!(poll(late.as_mut()).is_pending(), "a later read went first");
        let Poll::Ready(early) = poll(early.as_mut()) else {
            panic!("the earliest waiting read did not get the turn");
        };
        drop(early);
        assert!(poll(late.as_mut()).is_ready());
    }

    #[test]
    fn a_read_that_gives_up_waiting_is_no_longer_counted() {
        let turns = ReadTurns::new(1);
        let Poll::Ready(_held) = poll(pin!(turns.take())) else {
            panic!("the first read waited");
        };
        {
            let mut gave_up = pin!(turns.take());
            assert!(poll(gave_up.as_mut()).is_pending());
            assert_eq!(turns.waiting(), 1);
        }
        assert_eq!(turns.waiting(), 0);
    }

    #[tokio::test]
    async fn reads_run_on_threads_of_their_own_at_a_lower_priority() {
        let pool = ReaderPool::start(2).unwrap();
        let (name, nice) = pool
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                (name, rustix::process::getpriority_process(None).unwrap())
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("herald-log-read"));
        let ours = rustix::process::getpriority_process(None).unwrap();
        assert_eq!(nice, (ours + READER_NICE).min(19));
        assert_eq!(pool.run(|| -> u8 { panic!("a damaged page") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7), "a panic stopped the pool");
    }

    #[test]
    fn a_capacity_of_zero_still_lets_one_read_run() {
        let turns = ReadTurns::new(0);
        let Poll::Ready(_held) = poll(pin!(turns.take())) else {
            panic!("no read could run");
        };
        assert!(poll(pin!(turns.take())).is_pending(), "two reads ran");
        assert!(default_replay_readers() >= 1);
    }
}
