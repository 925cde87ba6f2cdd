//! Per-subscriber delivery accounting, without I/O: every event a subscriber
//! receives is checked against the sequence it expects on the event's stream,
//! so that at the end each lost, duplicated, reordered or unexpected event is
//! known by subscriber, stream and sequence number.
//!
//! A receipt with the expected sequence advances the stream. One past it opens
//! a gap (the skipped sequences are *missing*); a missing sequence arriving
//! later is *reordered* (and no longer missing); any other earlier sequence is
//! a *duplicate*. What is still missing at the end, plus whatever the publisher
//! sent after the last receipt, is *lost*, except the sequences whose publish
//! failed: the hub may or may not have taken those, so neither answer is wrong.

use std::collections::BTreeMap;

/// The kinds of delivery violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Published (and acknowledged) but never received.
    Lost,
    /// Received more than once.
    Duplicated,
    /// Received after a later event of the same stream.
    Reordered,
    /// An event this subscriber should never have received: of a stream it
    /// did not subscribe to, or with a sequence never published.
    Unexpected,
}

impl Kind {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lost => "lost",
            Kind::Duplicated => "duplicated",
            Kind::Reordered => "reordered",
            Kind::Unexpected => "unexpected",
        }
    }
}

/// One violation: `count` consecutive sequences from `seq` on `stream`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The subscriber's index.
    pub subscriber: usize,
    /// What went wrong.
    pub kind: Kind,
    /// The stream (one publisher on one topic).
    pub stream: u32,
    /// The first sequence number concerned.
    pub seq: u64,
    /// How many consecutive sequence numbers (more than 1 only for lost ranges).
    pub count: u64,
}

/// Counts of violations, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Events never received.
    pub lost: u64,
    /// Events received more than once (each extra copy counts).
    pub duplicated: u64,
    /// Events received after a later one.
    pub reordered: u64,
    /// Events of streams not subscribed to, or never published.
    pub unexpected: u64,
}

impl Counts {
    /// All violations together.
    pub fn total(&self) -> u64 {
        self.lost + self.duplicated + self.reordered + self.unexpected
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.unexpected += other.unexpected;
    }
}

/// What the publishers did on one stream, for the final check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Sequences `0..next` were sent.
    pub next: u64,
    /// The sequences whose publish failed (sorted): the hub may or may not have them.
    pub uncertain: Vec<u64>,
}

/// One stream as one subscriber saw it.
#[derive(Debug, Clone, Default)]
struct StreamState {
    /// The next sequence expected.
    next: u64,
    /// Gaps not filled yet: start → end (exclusive).
    missing: BTreeMap<u64, u64>,
}

/// How one receipt was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The first receipt of this event, in order (possibly after a gap).
    First,
    /// The first receipt of this event, but after a later one.
    Reordered,
    /// Received before.
    Duplicate,
    /// Not a stream of this subscriber, or a sequence never published.
    Unexpected,
}

/// The most violations kept in detail per subscriber (all are counted).
const MAX_DETAILS: usize = 8;

/// One subscriber's accounting.
#[derive(Debug, Clone)]
pub struct Tally {
    subscriber: usize,
    /// The streams this subscriber expects, by stream index, in order: only
    /// those, since with a topic per subscriber a run has as many streams
    /// as subscribers.
    streams: Vec<(u32, StreamState)>,
    /// Events received for the first time (in order or reordered).
    pub first: u64,
    counts: Counts,
    details: Vec<Violation>,
}

impl Tally {
    /// A tally for `subscriber`, which expects the streams where `expects` is true.
    pub fn new(subscriber: usize, expects: impl IntoIterator<Item = bool>) -> Self {
        Self {
            subscriber,
            streams: (0..)
                .zip(expects)
                .filter(|&(_, expected)| expected)
                .map(|(stream, _)| (stream, StreamState::default()))
                .collect(),
            first: 0,
            counts: Counts::default(),
            details: Vec::new(),
        }
    }

    fn note(&mut self, kind: Kind, stream: u32, seq: u64, count: u64) {
        if self.details.len() < MAX_DETAILS {
            self.details.push(Violation {
                subscriber: self.subscriber,
                kind,
                stream,
                seq,
                count,
            });
        }
    }

    /// Judges one receipt of `seq` on `stream`.
    pub fn record(&mut self, stream: u32, seq: u64) -> Outcome {
        let found = self.streams.binary_search_by_key(&stream, |&(s, _)| s);
        let Ok(index) = found else {
            self.counts.unexpected += 1;
            self.note(Kind::Unexpected, stream, seq, 1);
            return Outcome::Unexpected;
        };
        let state = &mut self.streams[index].1;
        if seq >= state.next {
            if seq > state.next {
                state.missing.insert(state.next, seq);
            }
            state.next = seq + 1;
            self.first += 1;
            return Outcome::First;
        }
        // Earlier than expected: a gap being filled, or a duplicate.
        let gap = state
            .missing
            .range(..=seq)
            .next_back()
            .map(|(&start, &end)| (start, end))
            .filter(|&(_, end)| seq < end);
        match gap {
            Some((start, end)) => {
                state.missing.remove(&start);
                if start < seq {
                    state.missing.insert(start, seq);
                }
                if seq + 1 < end {
                    state.missing.insert(seq + 1, end);
                }
                self.first += 1;
                self.counts.reordered += 1;
                self.note(Kind::Reordered, stream, seq, 1);
                Outcome::Reordered
            }
            None => {
                self.counts.duplicated += 1;
                self.note(Kind::Duplicated, stream, seq, 1);
                Outcome::Duplicate
            }
        }
    }

    /// Counts a receipt of `seq` on `stream` that no publisher sent (yet):
    /// a hub inventing or corrupting events. It leaves the stream's
    /// expectations alone, so the events that were published are still
    /// judged as they come.
    pub fn unpublished(&mut self, stream: u32, seq: u64) -> Outcome {
        self.counts.unexpected += 1;
        self.note(Kind::Unexpected, stream, seq, 1);
        Outcome::Unexpected
    }

    /// Whether every event of `published` this subscriber must get has
    /// arrived (those whose publish failed may be missing).
    pub fn is_complete(&self, published: &[Published]) -> bool {
        self.owed(published).next().is_none()
    }

    /// Closes the tally against what was published (indexed by stream):
    /// returns the violation counts and the detailed violations.
    pub fn finish(mut self, published: &[Published]) -> (Counts, Vec<Violation>) {
        let lost: Vec<(u32, u64, u64)> = self.owed(published).collect();
        for (stream, start, end) in lost {
            self.counts.lost += end - start;
            self.note(Kind::Lost, stream, start, end - start);
        }
        (self.counts, self.details)
    }

    /// The ranges `(stream, start, end)` of what `published` owes this
    /// subscriber and it has not received: the gaps still open and what was
    /// sent after its last receipt, less the sequences whose publish failed.
    fn owed<'a>(
        &'a self,
        published: &'a [Published],
    ) -> impl Iterator<Item = (u32, u64, u64)> + 'a {
        self.streams.iter().flat_map(move |(stream, state)| {
            let sent = published.get(*stream as usize);
            let tail = sent
                .filter(|sent| state.next < sent.next)
                .map(|sent| (state.next, sent.next));
            let ranges = sent.map(|_| state.missing.iter().map(|(&s, &e)| (s, e)));
            ranges
                .into_iter()
                .flatten()
                .chain(tail)
                .flat_map(move |(start, end)| {
                    let uncertain = sent.map_or(&[][..], |sent| &sent.uncertain[..]);
                    without(start, end, uncertain).map(move |(s, e)| (*stream, s, e))
                })
        })
    }
}

/// The sub-ranges of `start..end` that avoid every sequence in `holes` (sorted).
fn without(start: u64, end: u64, holes: &[u64]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let first = holes.partition_point(|&h| h < start);
    let inside = holes[first..].iter().take_while(move |&&h| h < end);
    let mut from = start;
    let mut pieces: Vec<(u64, u64)> = Vec::new();
    for &hole in inside {
        if from < hole {
            pieces.push((from, hole));
        }
        from = hole + 1;
    }
    if from < end {
        pieces.push((from, end));
    }
    pieces.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(next: u64) -> Vec<Published> {
        vec![Published {
            next,
            uncertain: Vec::new(),
        }]
    }

    fn run(receipts: &[u64], sent: &[Published]) -> (Counts, Vec<Violation>) {
        let mut tally = Tally::new(7, [true]);
        for &seq in receipts {
            tally.record(0, seq);
        }
        tally.finish(sent)
    }

    fn violation(kind: Kind, seq: u64, count: u64) -> Violation {
        Violation {
            subscriber: 7,
            kind,
            stream: 0,
            seq,
            count,
        }
    }

    #[test]
    fn an_ordered_complete_stream_has_no_violation() {
        let (counts, details) = run(&[0, 1, 2, 3, 4], &published(5));
        assert_eq!((counts, details), (Counts::default(), vec![]));
    }

    #[test]
    fn losses_in_the_middle_and_at_the_tail_are_ranges() {
        let (counts, details) = run(&[0, 1, 4, 5, 7], &published(10));
        assert_eq!(counts.lost, 2 + 1 + 2);
        assert_eq!(
            details,
            vec![
                violation(Kind::Lost, 2, 2),
                violation(Kind::Lost, 6, 1),
                violation(Kind::Lost, 8, 2),
            ]
        );
    }

    #[test]
    fn a_late_event_is_reordered_not_lost_and_a_repeat_is_a_duplicate() {
        let (counts, details) = run(&[0, 2, 1, 3, 3, 1, 0, 6, 5, 4], &published(7));
        assert_eq!(
            counts,
            Counts {
                lost: 0,
                duplicated: 3,
                reordered: 3,
                unexpected: 0
            }
        );
        assert_eq!(
            details,
            vec![
                violation(Kind::Reordered, 1, 1),
                violation(Kind::Duplicated, 3, 1),
                violation(Kind::Duplicated, 1, 1),
                violation(Kind::Duplicated, 0, 1),
                violation(Kind::Reordered, 5, 1),
                violation(Kind::Reordered, 4, 1),
            ]
        );
    }

    #[test]
    fn a_duplicate_of_a_reordered_event_is_a_duplicate() {
        let (counts, _) = run(&[0, 3, 1, 1, 2], &published(4));
        assert_eq!(
            (counts.reordered, counts.duplicated, counts.lost),
            (2, 1, 0)
        );
    }

    #[test]
    fn uncertain_sequences_are_never_counted_lost() {
        let sent = vec![Published {
            next: 10,
            uncertain: vec![2, 3, 8, 9],
        }];
        let (counts, details) = run(&[0, 1, 5, 7], &sent);
        assert_eq!(counts.lost, 2);
        assert_eq!(
            details,
            vec![violation(Kind::Lost, 4, 1), violation(Kind::Lost, 6, 1)]
        );
        // Receiving an uncertain one is fine too.
        let (counts, _) = run(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], &sent);
        assert_eq!(counts.total(), 0);
    }

    #[test]
    fn events_of_other_streams_are_unexpected() {
        let mut tally = Tally::new(1, [false, true]);
        assert_eq!(tally.record(0, 0), Outcome::Unexpected);
        assert_eq!(tally.record(5, 0), Outcome::Unexpected);
        assert_eq!(tally.record(1, 0), Outcome::First);
        let (counts, _) = tally.finish(&[
            Published::default(),
            Published {
                next: 1,
                uncertain: vec![],
            },
        ]);
        assert_eq!(counts.unexpected, 2);
        assert_eq!(counts.total(), 2);
    }

    #[test]
    fn an_unpublished_sequence_is_unexpected_and_leaves_the_stream_alone() {
        let mut tally = Tally::new(7, [true]);
        tally.record(0, 0);
        assert_eq!(tally.unpublished(0, 1000), Outcome::Unexpected);
        for seq in 1..10 {
            assert_eq!(tally.record(0, seq), Outcome::First);
        }
        let (counts, details) = tally.finish(&published(10));
        assert_eq!(
            counts,
            Counts {
                unexpected: 1,
                ..Counts::default()
            }
        );
        assert_eq!(details, vec![violation(Kind::Unexpected, 1000, 1)]);
    }

    #[test]
    fn a_tally_is_complete_once_every_certain_event_arrived() {
        let sent = vec![Published {
            next: 5,
            uncertain: vec![1, 4],
        }];
        let mut tally = Tally::new(7, [true]);
        for seq in [0, 2] {
            tally.record(0, seq);
        }
        assert!(!tally.is_complete(&sent), "3 is still owed");
        tally.record(0, 3);
        assert!(tally.is_complete(&sent), "1 and 4 may never come");
        assert!(!tally.is_complete(&published(5)));
    }

    #[test]
    fn details_are_bounded_but_counts_are_not() {
        let receipts: Vec<u64> = (0..100).map(|i| i * 2).collect();
        let (counts, details) = run(&receipts, &published(200));
        assert_eq!(counts.lost, 100);
        assert_eq!(details.len(), MAX_DETAILS);
    }
}
