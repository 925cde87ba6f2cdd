//! One subscriber's queue of entries: a bounded single-producer,
//! single-consumer channel that costs nothing until it holds something.
//!
//! Why not `tokio::sync::mpsc`: a bounded tokio channel allocates about
//! 800 bytes per subscriber up front (its cache-padded state and a first
//! block of 32 slots), which was the largest item of an idle subscriber's
//! heap (docs/benchmarks.md). This one is a mutex around a `VecDeque` that
//! starts empty, plus a waker; the registry is its only producer and holds
//! its shard lock while sending, so the mutex is never contended for long.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

use crate::Entry;

struct Shared {
    state: Mutex<State>,
    waker: AtomicWaker,
}

struct State {
    entries: VecDeque<Arc<Entry>>,
    sender_gone: bool,
    receiver_gone: bool,
}

/// Why an entry was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The queue holds its capacity already: the subscriber is too slow.
    Full,
    /// The subscriber is gone.
    Closed,
}

/// The registry's end.
pub(crate) struct Sender {
    shared: Arc<Shared>,
    capacity: usize,
}

/// The subscriber's end.
pub(crate) struct Receiver {
    shared: Arc<Shared>,
}

/// A queue holding at most `capacity` entries.
pub(crate) fn channel(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            entries: VecDeque::new(),
            sender_gone: false,
            receiver_gone: false,
        }),
        waker: AtomicWaker::new(),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
            capacity: capacity.max(1),
        },
        Receiver { shared },
    )
}

impl Sender {
    /// Queues `entry` without waiting, and wakes the receiver.
    pub(crate) fn try_send(&self, entry: Arc<Entry>) -> Result<(), SendError> {
        {
            let mut state = self.shared.state.lock();
            if state.receiver_gone {
                return Err(SendError::Closed);
            }
            if state.entries.len() >= self.capacity {
                return Err(SendError::Full);
            }
            state.entries.push_back(entry);
        }
        self.shared.waker.wake();
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.state.lock().sender_gone = true;
        self.shared.waker.wake();
    }
}

impl Receiver {
    /// The next entry if one is queued; never waits.
    pub(crate) fn try_recv(&mut self) -> Option<Arc<Entry>> {
        let mut state = self.shared.state.lock();
        let entry = state.entries.pop_front();
        // A burst can grow the queue a lot; give the memory back once drained.
        if state.entries.is_empty() && state.entries.capacity() > 64 {
            state.entries = VecDeque::new();
        }
        entry
    }

    /// The next entry, waiting for one; `None` once the sender is gone and
    /// the queue drained.
    pub(crate) async fn recv(&mut self) -> Option<Arc<Entry>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<Entry>>> {
        if let Some(entry) = self.try_recv() {
            return Poll::Ready(Some(entry));
        }
        self.shared.waker.register(cx.waker());
        // Checked again after registering, so a send in between is not missed.
        let mut state = self.shared.state.lock();
        if let Some(entry) = state.entries.pop_front() {
            return Poll::Ready(Some(entry));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.state.lock().receiver_gone = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::Update;

    fn entry(n: u32) -> Arc<Entry> {
        let update = Update {
            topics: vec!["t".into()],
            data: n.to_string(),
            id: None,
            event_type: None,
            retry: None,
            private: false,
        };
        Arc::new(Entry::encode(update, format!("id-{n}"), SystemTime::now()).unwrap())
    }

    #[tokio::test]
    async fn entries_arrive_in_order_and_the_capacity_bounds_the_queue() {
        let (sender, mut receiver) = channel(2);
        sender.try_send(entry(1)).unwrap();
        sender.try_send(entry(2)).unwrap();
        assert_eq!(sender.try_send(entry(3)), Err(SendError::Full));
        assert_eq!(receiver.recv().await.unwrap().id(), "id-1");
        assert_eq!(receiver.try_recv().unwrap().id(), "id-2");
        assert!(receiver.try_recv().is_none());
        sender.try_send(entry(4)).unwrap();
        drop(sender);
        assert_eq!(receiver.recv().await.unwrap().id(), "id-4", "drained first");
        assert!(receiver.recv().await.is_none(), "then the end");
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_and_a_gone_one_refuses_entries() {
        let (sender, mut receiver) = channel(8);
        let waiting = tokio::spawn(async move {
            let first = receiver.recv().await.map(|e| e.id().to_owned());
            (first, receiver)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        sender.try_send(entry(7)).unwrap();
        let (first, receiver) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken in time")
            .unwrap();
        assert_eq!(first.as_deref(), Some("id-7"));
        drop(receiver);
        assert_eq!(sender.try_send(entry(8)), Err(SendError::Closed));
    }
}
