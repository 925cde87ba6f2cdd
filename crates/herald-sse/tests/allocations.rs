//! The parser allocates nothing per event beyond the event's own strings.
//!
//! A test binary of its own, because it installs a counting global allocator,
//! with a single test so that no other test allocates while it counts.

use herald_sse::{Event, Parser};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Each `MessageEvent` owns three strings: its type, its data and its last event id.
const STRINGS_PER_EVENT: usize = 3;
const EVENTS: usize = 10_000;
/// The parser's own buffers growing to their working size.
const SETUP_ALLOCATIONS: usize = 64;

fn stream() -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    for n in 0..EVENTS {
        // Every field that makes a string, multi-line data, and comments and
        // events without a type (whose type is the default `message`).
        let mut data = format!(
            r#"{{"seq":{n},"topic":"/orders/{}","msg":"order shipped"}}"#,
            n * 7
        );
        if n.is_multiple_of(5) {
            data.push_str("\nsecond line\nthird line");
        }
        let mut event = Event::new()
            .with_data(data)
            .with_id(format!("evt-{n}"))
            .unwrap();
        if n.is_multiple_of(2) {
            event = event.with_event_type("update").unwrap();
        }
        if n.is_multiple_of(10) {
            event = event.with_comment("keep-alive").with_retry(3000);
        }
        event.encode_into(&mut out);
    }
    out.to_vec()
}

fn parse(input: &[u8], chunk: usize) -> usize {
    let mut parser = Parser::new();
    let mut events = 0;
    for chunk in input.chunks(chunk) {
        parser.feed(chunk);
        while let Some(event) = parser.next_event().unwrap() {
            assert!(!event.data.is_empty() && !event.last_event_id.is_empty());
            events += 1;
        }
    }
    events
}

#[test]
fn parsing_allocates_only_the_strings_of_each_event() {
    let input = stream();
    // Socket-sized chunks, odd-sized chunks that cut lines everywhere, and the whole stream.
    for chunk in [16 * 1024, 1000, 37, input.len()] {
        let region = Region::new(GLOBAL);
        let events = parse(&input, chunk);
        let stats = region.change();
        assert_eq!(events, EVENTS);
        let allocations = stats.allocations + stats.reallocations;
        println!(
            "{chunk}-byte chunks: {} allocations, {} reallocations, {EVENTS} events",
            stats.allocations, stats.reallocations
        );
        assert!(
            allocations <= STRINGS_PER_EVENT * EVENTS + SETUP_ALLOCATIONS,
            "{chunk}-byte chunks: {} allocations and {} reallocations for {EVENTS} events",
            stats.allocations,
            stats.reallocations,
        );
    }
}
