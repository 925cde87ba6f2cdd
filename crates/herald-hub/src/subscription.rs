//! A subscriber's view of the hub: replay from the log, then live updates.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::group::Wire;
use crate::log::{EntryFilter, FilteredRead, Log, ReadLimit};
use crate::matcher::Matcher;
use crate::presence::Membership;
use crate::registry::Registration;
use crate::{Entry, HubError, Position};

/// How much a replay reads from the log at a time: many entries when they
/// are small, few when they are large, since every replaying subscriber
/// holds its batch (a subscriber that resumes from far back and never reads
/// would otherwise pin 512 updates of up to 2 MiB each).
const REPLAY_BATCH: ReadLimit = ReadLimit {
    entries: 512,
    bytes: 1 << 20,
};

/// Where a subscriber asked to resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Live updates only.
    Live,
    /// Live updates only, with the cursor they start after (the id of the
    /// newest update, or `earliest`) reported by
    /// [`Subscription::resumed_after`]: what a request with an empty
    /// `Last-Event-ID` asks for.
    Now,
    /// Everything the hub still has (`earliest`).
    Earliest,
    /// Everything after the update with this id.
    After(String),
}

impl Resume {
    /// Reads a `Last-Event-ID` value: `earliest` is the reserved keyword,
    /// and an empty value asks for no history, only the cursor.
    pub fn from_last_event_id(value: Option<&str>) -> Self {
        match value {
            None => Resume::Live,
            Some("") => Resume::Now,
            Some("earliest") => Resume::Earliest,
            Some(id) => Resume::After(id.to_owned()),
        }
    }
}

/// A live subscription: yields replayed entries, then live ones, in log order.
///
/// Dropping it unregisters the subscriber.
pub struct Subscription {
    /// Also holds the matchers (its group's) and the grants: one copy of
    /// each per subscriber.
    registration: Registration,
    log: Arc<dyn Log>,
    /// Set while it replays history; boxed, since every subscriber holds
    /// the field for as long as it is connected, and most never replay.
    replay: Option<Box<Replay>>,
    buffered: VecDeque<Arc<Entry>>,
    /// Live entries at or before this position were already replayed or are
    /// older than the resume point.
    skip_through: Position,
    resumed_after: Option<String>,
    /// This connection's entries in the index of active subscriptions.
    membership: Option<Arc<Membership>>,
}

/// A replay of the log's history still under way.
struct Replay {
    /// Entries in `(after, up_to]` are still to be read.
    after: Position,
    up_to: Position,
    /// The topics of its matchers when every one is an exact topic: its
    /// replay then reads only the entries with them, where the log keeps
    /// an index by topic, instead of every entry after its point.
    exact_topics: Option<Arc<[Arc<str>]>>,
    /// What the replay keeps, for the log to decide in its reads (the
    /// durable log does before decoding an entry whole, within the read's
    /// turn).
    filter: EntryFilter,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("registration", &self.registration)
            .field("replay", &self.replay.as_ref().map(|r| (r.after, r.up_to)))
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(membership) = &self.membership {
            membership.end();
        }
    }
}

impl Subscription {
    pub(crate) async fn start(
        registration: Registration,
        log: Arc<dyn Log>,
        resume: Resume,
    ) -> Result<Subscription, HubError> {
        let mut registration = registration;
        let joined_at = registration.position();
        let (after, resumed_after) = match &resume {
            Resume::Live => (joined_at, None),
            Resume::Now => {
                let newest = log.id_before(joined_at + 1).await?;
                (joined_at, Some(newest.unwrap_or_else(|| "earliest".into())))
            }
            Resume::Earliest => (0, Some("earliest".to_owned())),
            Resume::After(id) => match log.find(id).await? {
                Some(position) => (position, Some(id.clone())),
                // Unknown or discarded: send everything retained and say so.
                None => (0, Some("earliest".to_owned())),
            },
        };
        registration.skip_through(after.max(joined_at));
        let replay = (after < joined_at).then(|| {
            Box::new(Replay {
                after,
                up_to: joined_at,
                exact_topics: exact_topics(registration.matchers()),
                filter: registration.filter(),
            })
        });
        Ok(Subscription {
            registration,
            log,
            replay,
            buffered: VecDeque::new(),
            skip_through: after.max(joined_at),
            resumed_after,
            membership: None,
        })
    }

    /// Whether `entry`, one this subscription yielded, came from the log's
    /// history (a replay) rather than live.
    pub fn is_replayed(&self, entry: &Entry) -> bool {
        entry.position() <= self.skip_through
    }

    /// The value for the `Mercure-Last-Event-ID` response header, when the
    /// subscriber asked to resume: the id it resumes after, or `earliest`
    /// (for [`Resume::Now`], the newest update's id).
    pub fn resumed_after(&self) -> Option<&str> {
        self.resumed_after.as_deref()
    }

    /// Lets the hub write this subscription's live entries to `wire`
    /// directly once it has caught up, instead of waking the task that
    /// reads it for each; the task still reads what comes while it has not.
    pub fn attach_wire(&self, wire: Arc<dyn Wire>) {
        self.registration.attach_wire(wire);
    }

    pub(crate) fn set_membership(&mut self, membership: Arc<Membership>) {
        self.membership = Some(membership);
    }

    /// The subscriber identifier of subscription events (`urn:uuid:…`), when
    /// the hub tracks active subscriptions.
    pub fn subscriber(&self) -> Option<&str> {
        self.membership.as_deref().map(Membership::subscriber)
    }

    /// The hub-assigned subscriber number.
    pub fn subscriber_id(&self) -> u64 {
        self.registration.id()
    }

    /// Whether the hub dropped this subscriber for being too slow.
    pub fn was_too_slow(&self) -> bool {
        self.registration.was_too_slow()
    }

    /// Whether this subscriber receives `entry`: a matcher selects one of its
    /// topics, and a private entry needs a `subscribe` grant on one of them.
    pub fn wants(&self, entry: &Entry) -> bool {
        let topics = entry.topics();
        self.registration
            .matchers()
            .iter()
            .any(|m| m.matches_any(topics))
            && self.registration.may_read(entry)
    }

    /// The next entry if it is ready without waiting: a replayed entry already
    /// read from the log, or a live entry already queued. Never reads the log;
    /// `None` does not mean the end (call [`Subscription::next`] for that).
    ///
    /// A connection writer drains these after [`Subscription::next`] to send
    /// a backlog in one write instead of one write per entry.
    pub fn next_ready(&mut self) -> Option<Arc<Entry>> {
        if let Some(entry) = self.buffered.pop_front() {
            return Some(entry);
        }
        if self.replay.is_some() {
            return None;
        }
        while let Some(entry) = self.registration.try_recv() {
            if entry.position() > self.skip_through {
                return Some(entry);
            }
        }
        None
    }

    /// The next entry, or `Ok(None)` when the hub ended the subscription.
    ///
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Option<Arc<Entry>>, HubError> {
        loop {
            if let Some(entry) = self.buffered.pop_front() {
                return Ok(Some(entry));
            }
            let Some(replay) = &self.replay else {
                break;
            };
            // Boxed: this future is held by every idle subscriber's stream,
            // and a read's state would weigh on all of them.
            let read = Box::pin(read_batch(&self.log, replay)).await?;
            let up_to = replay.up_to;
            match &mut self.replay {
                Some(replay) if read.through < up_to => replay.after = read.through,
                _ => self.replay = None,
            }
            self.buffered = read.entries.into_iter().filter(|e| self.wants(e)).collect();
            self.registration.count_replayed(self.buffered.len());
        }
        loop {
            let Some(entry) = self.registration.recv().await else {
                return Ok(None);
            };
            if entry.position() > self.skip_through {
                return Ok(Some(entry));
            }
        }
    }
}

/// The next batch of `replay` from `log`: by topic where the log keeps an
/// index and the matchers are all exact, else matched inside the read.
async fn read_batch(log: &Arc<dyn Log>, replay: &Replay) -> Result<FilteredRead, HubError> {
    let (after, up_to) = (replay.after, replay.up_to);
    let indexed = replay
        .exact_topics
        .as_ref()
        .and_then(|topics| log.read_topics(after, up_to, Arc::clone(topics), REPLAY_BATCH));
    match indexed {
        Some(read) => read.await,
        None => {
            log.read_matching(after, up_to, Arc::clone(&replay.filter), REPLAY_BATCH)
                .await
        }
    }
}

/// The topics of `matchers` when every one is an exact topic (no `*`, URL
/// pattern or selector), each once.
fn exact_topics(matchers: &[Matcher]) -> Option<Arc<[Arc<str>]>> {
    let mut topics: Vec<Arc<str>> = Vec::with_capacity(matchers.len());
    for matcher in matchers {
        let Matcher::Exact(topic) = matcher else {
            return None;
        };
        if !topics.contains(topic) {
            topics.push(Arc::clone(topic));
        }
    }
    (!topics.is_empty()).then(|| topics.into())
}
