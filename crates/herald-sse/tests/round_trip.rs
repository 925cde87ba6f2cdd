//! Any event that the encoder accepts parses back to itself.

use herald_sse::{Event, Parser};
use proptest::prelude::*;

fn no_breaks() -> impl Strategy<Value = String> {
    "[^\r\n\0]{0,20}"
}

proptest! {
    #[test]
    fn any_event_encodes_and_parses_back_to_itself(
        id in proptest::option::of(no_breaks()),
        event_type in proptest::option::of("[^\r\n\0]{1,20}"),
        data in "(?s).{0,200}",
        retry in proptest::option::of(any::<u64>()),
        comment in proptest::option::of("(?s).{0,40}"),
        split in any::<prop::sample::Index>(),
    ) {
        let mut event = Event::new().with_data(data.clone());
        if let Some(id) = &id { event = event.with_id(id.clone()).unwrap(); }
        if let Some(t) = &event_type { event = event.with_event_type(t.clone()).unwrap(); }
        if let Some(r) = retry { event = event.with_retry(r); }
        if let Some(c) = comment { event = event.with_comment(c); }
        let bytes = event.to_bytes();

        // Any cut into two chunks gives the same result.
        let at = split.index(bytes.len() + 1);
        let mut parser = Parser::new();
        parser.feed(&bytes[..at]);
        let mut events = Vec::new();
        while let Some(e) = parser.next_event().unwrap() { events.push(e); }
        parser.feed(&bytes[at..]);
        while let Some(e) = parser.next_event().unwrap() { events.push(e); }

        prop_assert_eq!(events.len(), 1);
        let parsed = &events[0];
        prop_assert_eq!(&parsed.data, &data.replace("\r\n", "\n").replace('\r', "\n"));
        prop_assert_eq!(parsed.event_type.as_str(), event_type.as_deref().unwrap_or("message"));
        prop_assert_eq!(parsed.last_event_id.as_str(), id.as_deref().unwrap_or(""));
        prop_assert_eq!(parser.retry(), retry);
    }

    #[test]
    fn any_stream_cut_into_any_chunks_parses_as_when_fed_whole(
        lines in proptest::collection::vec(
            prop_oneof!["(data|id|event|retry)?:? ?[a-z0-9 ]{0,40}", Just(String::new())],
            0..30,
        ),
        ends in proptest::collection::vec(prop_oneof![Just("\n"), Just("\r"), Just("\r\n")], 30),
        cuts in proptest::collection::vec(1usize..9, 0..200),
    ) {
        let mut stream = String::new();
        for (line, end) in lines.iter().zip(&ends) {
            stream.push_str(line);
            stream.push_str(end);
        }
        let bytes = stream.as_bytes();
        let whole = {
            let mut parser = Parser::new();
            parser.feed(bytes);
            let mut events = Vec::new();
            while let Some(e) = parser.next_event().unwrap() { events.push(e); }
            (events, parser.last_event_id().to_owned(), parser.retry())
        };
        // Small chunks, polled after each: a line's end is found however
        // many chunks its bytes came in.
        let mut parser = Parser::new();
        let mut events = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().copied().chain(std::iter::repeat(1)) {
            if at >= bytes.len() { break; }
            let next = (at + cut).min(bytes.len());
            parser.feed(&bytes[at..next]);
            at = next;
            while let Some(e) = parser.next_event().unwrap() { events.push(e); }
        }
        prop_assert_eq!((events, parser.last_event_id().to_owned(), parser.retry()), whole);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut parser = Parser::with_max_event_size(64);
        parser.feed(&input);
        while let Ok(Some(_)) = parser.next_event() {}
        parser.finish();
    }
}
