//! Feeds arbitrary bytes to the parser, whole and cut at fuzzer-chosen points.
//!
//! Invariants: no panic; both feedings give the same events, the same final
//! error (only ever `EventTooLarge` with the configured limit), the same last
//! event id and retry; with a limit, no event is larger than it allows and the
//! memory held while parsing stays bounded by the limit and the chunk size,
//! not by the length of the stream.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::Arbitrary;
use herald_sse::{Error, MessageEvent, Parser};
use libfuzzer_sys::fuzz_target;

/// Counts the bytes alive on the heap, and the peak since the last reset.
struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        new
    }
}

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// The parser's maximum event size; the default when absent.
    limit: Option<u16>,
    /// Where to cut the stream into chunks (taken modulo its length).
    cuts: Vec<u16>,
    stream: &'a [u8],
}

/// Everything a caller can observe of one parse.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<MessageEvent>,
    error: Option<Error>,
    last_event_id: String,
    retry: Option<u64>,
}

fn parser(limit: Option<u16>) -> Parser {
    match limit {
        Some(limit) => Parser::with_max_event_size(usize::from(limit)),
        None => Parser::new(),
    }
}

/// Feeds the chunks one after another, draining every event after each feed,
/// and hands each event to `on_event`. Stops at the first error.
fn run(
    limit: Option<u16>,
    chunks: &[&[u8]],
    mut on_event: impl FnMut(MessageEvent),
) -> (Option<Error>, String, Option<u64>) {
    let mut p = parser(limit);
    let mut error = None;
    'feed: for chunk in chunks {
        p.feed(chunk);
        loop {
            match p.next_event() {
                Ok(Some(event)) => on_event(event),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    p.finish();
    (error, p.last_event_id().to_owned(), p.retry())
}

fn outcome(limit: Option<u16>, chunks: &[&[u8]]) -> Outcome {
    let mut events = Vec::new();
    let (error, last_event_id, retry) = run(limit, chunks, |e| events.push(e));
    Outcome {
        events,
        error,
        last_event_id,
        retry,
    }
}

fn chunks<'a>(stream: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (stream.len() + 1))
        .collect();
    at.sort_unstable();
    let mut chunks = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for end in at {
        chunks.push(&stream[start..end]); // repeated cuts feed empty chunks
        start = end;
    }
    chunks.push(&stream[start..]);
    chunks
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        limit,
        cuts,
        stream,
    } = input;
    let chunked = chunks(stream, &cuts);
    let whole = outcome(limit, &[stream]);
    let cut = outcome(limit, &chunked);
    assert_eq!(whole, cut, "fed whole and in {} chunks", chunked.len());

    if let Some(error) = &whole.error {
        let expected = Error::EventTooLarge {
            limit: limit.map_or(herald_sse::DEFAULT_MAX_EVENT_SIZE, usize::from),
        };
        assert_eq!(error, &expected);
    }
    for event in &whole.events {
        assert!(!event.event_type.is_empty(), "the type defaults to message");
    }

    let Some(limit) = limit.map(usize::from) else {
        return;
    };
    drop((whole, cut));
    // Memory: a line or the data of an event longer than the limit is an
    // error, so what the parser holds is a few times the limit plus a chunk.
    // Events are dropped as they come, as a streaming caller would.
    let largest_chunk = chunked.iter().map(|c| c.len()).max().unwrap_or(0);
    let bound = 64 * (limit + largest_chunk) + 4096;
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    run(Some(limit as u16), &chunked, |event| {
        // A value is checked against the limit after U+FFFD replacement,
        // which can make it up to three times longer than its bytes.
        assert!(event.data.len() < limit.max(1));
        assert!(event.event_type.len() <= 3 * limit.max(7));
        assert!(event.last_event_id.len() <= 3 * limit);
    });
    let held = PEAK.load(Ordering::Relaxed) - base;
    assert!(
        held <= bound,
        "{held} bytes held parsing {} bytes with a {limit}-byte limit and chunks up to {largest_chunk}",
        stream.len()
    );
});
