//! The committer's inbox: the appends publishers hand over, and a wait that
//! wakes the committer only when there is something for it to do.
//!
//! A channel wakes its receiver at every send. While the committer gathers a
//! commit's appends (see `Committer::gathering` in `durable`), that was one
//! wake-up, and two switches on the server's core, per publisher, each
//! taking the core from the worker that was parsing the next publisher's
//! request. The inbox wakes the committer for the first append and for the
//! one that completes what it waits for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// A queue with one waiting consumer that wants a given number of items.
pub(crate) struct Inbox<T> {
    state: Mutex<State<T>>,
    arrived: Condvar,
}

struct State<T> {
    items: VecDeque<T>,
    /// How many queued items wake the consumer (besides the first).
    wanted: usize,
    /// Set by [`Inbox::poke`]; cleared by the wait it ends.
    poked: bool,
    closed: bool,
}

/// How [`Inbox::wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// As many items as wanted are queued, or the inbox is closed with some
    /// still queued.
    Ready,
    /// The deadline passed first; fewer items (maybe none) are queued.
    TimedOut,
    /// [`Inbox::poke`] was called: fewer items (maybe none) are queued.
    Poked,
    /// The inbox is closed and empty.
    Closed,
}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                wanted: 1,
                poked: false,
                closed: false,
            }),
            arrived: Condvar::new(),
        }
    }

    /// Queues `item`, or gives it back if the inbox is closed.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        let queued = state.items.len();
        let wake = queued == 1 || queued >= state.wanted;
        drop(state);
        if wake {
            self.arrived.notify_one();
        }
        Ok(())
    }

    /// Waits until `wanted` items are queued, the inbox is closed, or
    /// `deadline` passes.
    pub(crate) fn wait(&self, wanted: usize, deadline: Instant) -> Wait {
        let mut state = self.state.lock();
        state.wanted = wanted.max(1);
        loop {
            if state.items.len() >= state.wanted {
                return Wait::Ready;
            }
            if std::mem::take(&mut state.poked) {
                return Wait::Poked;
            }
            if state.closed {
                return if state.items.is_empty() {
                    Wait::Closed
                } else {
                    Wait::Ready
                };
            }
            if self.arrived.wait_until(&mut state, deadline).timed_out() {
                return if state.items.len() >= state.wanted {
                    Wait::Ready
                } else {
                    Wait::TimedOut
                };
            }
        }
    }

    /// Ends the consumer's wait (or its next one) early, with
    /// [`Wait::Poked`]: what it waits for has changed.
    pub(crate) fn poke(&self) {
        self.state.lock().poked = true;
        self.arrived.notify_one();
    }

    /// Moves at most `most` queued items, oldest first, to `into`.
    pub(crate) fn take(&self, into: &mut Vec<T>, most: usize) {
        let mut state = self.state.lock();
        let count = state.items.len().min(most);
        into.extend(state.items.drain(..count));
    }

    /// Refuses further sends; what is queued stays to be taken.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.arrived.notify_all();
    }

    /// Closes the inbox and drops what is queued when the returned guard is
    /// dropped, however its holder ends (a panic included): senders waiting
    /// on a queued item learn that it will never be taken.
    pub(crate) fn closer(self: &Arc<Self>) -> Closer<T> {
        Closer(Arc::clone(self))
    }
}

/// See [`Inbox::closer`].
pub(crate) struct Closer<T>(Arc<Inbox<T>>);

impl<T> Drop for Closer<T> {
    fn drop(&mut self) {
        self.0.close();
        let dropped = std::mem::take(&mut self.0.state.lock().items);
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(20)
    }

    #[test]
    fn a_wait_ends_once_as_many_as_wanted_are_queued() {
        let inbox = Arc::new(Inbox::new());
        let sender = Arc::clone(&inbox);
        let sending = std::thread::spawn(move || {
            for i in 0..3 {
                std::thread::sleep(Duration::from_millis(2));
                sender.send(i).unwrap();
            }
        });
        let far = Instant::now() + Duration::from_secs(30);
        assert_eq!(inbox.wait(3, far), Wait::Ready);
        sending.join().unwrap();
        let mut taken = Vec::new();
        inbox.take(&mut taken, 2);
        assert_eq!(taken, [0, 1], "oldest first, at most as many as asked");
        inbox.take(&mut taken, 10);
        assert_eq!(taken, [0, 1, 2]);
    }

    #[test]
    fn a_wait_times_out_with_fewer_queued() {
        let inbox = Inbox::new();
        assert_eq!(inbox.wait(1, soon()), Wait::TimedOut);
        inbox.send(7).unwrap();
        assert_eq!(inbox.wait(2, soon()), Wait::TimedOut);
        assert_eq!(inbox.wait(1, soon()), Wait::Ready);
    }

    #[test]
    fn a_poke_ends_one_wait_early() {
        let inbox = Arc::new(Inbox::<u8>::new());
        let poker = Arc::clone(&inbox);
        let poking = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            poker.poke();
        });
        let far = Instant::now() + Duration::from_secs(30);
        assert_eq!(inbox.wait(1, far), Wait::Poked);
        poking.join().unwrap();
        assert_eq!(inbox.wait(1, soon()), Wait::TimedOut, "once only");
        inbox.poke();
        inbox.send(1).unwrap();
        assert_eq!(inbox.wait(1, soon()), Wait::Ready, "items first");
    }

    #[test]
    fn a_closed_inbox_refuses_sends_and_hands_out_what_it_holds() {
        let inbox = Inbox::new();
        inbox.send(1).unwrap();
        inbox.close();
        assert_eq!(inbox.send(2), Err(2));
        assert_eq!(inbox.wait(5, soon()), Wait::Ready, "the rest is taken");
        let mut taken = Vec::new();
        inbox.take(&mut taken, 10);
        assert_eq!(taken, [1]);
        assert_eq!(inbox.wait(1, soon()), Wait::Closed);
    }

    #[test]
    fn the_closer_drops_what_is_queued_and_refuses_sends() {
        let inbox = Arc::new(Inbox::new());
        let (reply, answer) = std::sync::mpsc::channel::<()>();
        inbox.send(reply).unwrap();
        drop(inbox.closer());
        assert!(answer.recv().is_err(), "the queued item was dropped");
        let (reply, _answer) = std::sync::mpsc::channel::<()>();
        assert!(inbox.send(reply).is_err());
    }
}
