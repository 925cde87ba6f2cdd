//! One test per rule of the WHATWG "event stream interpretation".
//!
//! Every input is parsed twice: fed whole, and fed one byte at a time, and both
//! must give the same events, so each rule is also checked across chunk edges.

use herald_sse::{Error, MessageEvent, Parser};

/// (event type, data, last event id) of every dispatched event.
type Seen = Vec<(String, String, String)>;

fn collect(parser: &mut Parser, out: &mut Seen) {
    while let Some(MessageEvent {
        event_type,
        data,
        last_event_id,
    }) = parser.next_event().expect("valid stream")
    {
        out.push((event_type, data, last_event_id));
    }
}

fn parse(input: &[u8]) -> Seen {
    let mut whole = Vec::new();
    let mut parser = Parser::new();
    parser.feed(input);
    collect(&mut parser, &mut whole);
    parser.finish();

    let mut dripped = Vec::new();
    let mut parser = Parser::new();
    for byte in input {
        parser.feed(std::slice::from_ref(byte));
        collect(&mut parser, &mut dripped);
    }
    parser.finish();
    assert_eq!(whole, dripped, "fed whole and byte by byte must agree");
    whole
}

fn ev(event_type: &str, data: &str, id: &str) -> (String, String, String) {
    (event_type.into(), data.into(), id.into())
}

#[test]
fn invalid_utf8_is_replaced_with_u_fffd() {
    assert_eq!(
        parse(b"data: a\xFFb\xE2\x82\n\n"),
        vec![ev("message", "a\u{FFFD}b\u{FFFD}", "")]
    );
}

#[test]
fn multibyte_utf8_split_across_chunks_is_decoded() {
    let mut parser = Parser::new();
    parser.feed(b"data: caf\xC3");
    assert_eq!(parser.next_event().unwrap(), None);
    parser.feed(b"\xA9\n\n");
    assert_eq!(parser.next_event().unwrap().unwrap().data, "café");
}

#[test]
fn one_leading_bom_is_stripped() {
    assert_eq!(
        parse(b"\xEF\xBB\xBFdata: x\n\n"),
        vec![ev("message", "x", "")]
    );
}

#[test]
fn only_one_bom_is_stripped() {
    // The second BOM is part of the field name, so the line is an unknown field.
    assert_eq!(
        parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n"),
        vec![ev("message", "y", "")]
    );
}

#[test]
fn bom_later_in_the_stream_is_not_stripped() {
    assert_eq!(
        parse(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"),
        vec![ev("message", "a", "")]
    );
}

#[test]
fn lf_ends_a_line() {
    assert_eq!(parse(b"data: a\n\n"), vec![ev("message", "a", "")]);
}

#[test]
fn cr_ends_a_line() {
    assert_eq!(parse(b"data: a\r\r"), vec![ev("message", "a", "")]);
}

#[test]
fn crlf_ends_a_line() {
    assert_eq!(
        parse(b"data: a\r\ndata: b\r\n\r\n"),
        vec![ev("message", "a\nb", "")]
    );
}

#[test]
fn cr_at_chunk_end_and_lf_at_next_chunk_start_are_one_line_end() {
    let mut parser = Parser::new();
    parser.feed(b"data: a\r");
    assert_eq!(parser.next_event().unwrap(), None);
    parser.feed(b"\ndata: b\r");
    assert_eq!(parser.next_event().unwrap(), None);
    parser.feed(b"\n\r");
    let event = parser
        .next_event()
        .unwrap()
        .expect("the CR after CRLF is a blank line");
    assert_eq!(event.data, "a\nb");
}

#[test]
fn mixed_line_ends_in_one_stream() {
    assert_eq!(
        parse(b"data: a\rdata: b\ndata: c\r\n\n"),
        vec![ev("message", "a\nb\nc", "")]
    );
}

#[test]
fn exactly_one_space_after_the_colon_is_removed() {
    assert_eq!(
        parse(b"data:  two\ndata:none\ndata: one\n\n"),
        vec![ev("message", " two\nnone\none", "")]
    );
}

#[test]
fn line_without_colon_is_a_field_with_empty_value() {
    // `data` alone appends an empty line; `event` alone sets an empty type.
    assert_eq!(
        parse(b"data\ndata\n\nevent\ndata: x\n\n"),
        vec![ev("message", "\n", ""), ev("message", "x", "")]
    );
}

#[test]
fn comments_are_ignored() {
    assert_eq!(
        parse(b": hello\n:\ndata: a\n: between\n\n"),
        vec![ev("message", "a", "")]
    );
}

#[test]
fn unknown_fields_are_ignored() {
    assert_eq!(
        parse(b"foo: bar\nData: x\ndata: a\n\n"),
        vec![ev("message", "a", "")]
    );
}

#[test]
fn data_lines_are_joined_with_lf_and_final_lf_removed() {
    assert_eq!(
        parse(b"data: a\ndata: b\ndata:\n\n"),
        vec![ev("message", "a\nb\n", "")]
    );
}

#[test]
fn empty_data_buffer_dispatches_nothing() {
    assert_eq!(parse(b"event: x\n\nid: 1\n\n\n\n"), Vec::new());
}

#[test]
fn empty_data_line_dispatches_an_event_with_empty_data() {
    assert_eq!(parse(b"data:\n\n"), vec![ev("message", "", "")]);
}

#[test]
fn event_type_resets_after_each_dispatch() {
    assert_eq!(
        parse(b"event: a\ndata: 1\n\ndata: 2\n\n"),
        vec![ev("a", "1", ""), ev("message", "2", "")]
    );
}

#[test]
fn event_type_resets_even_when_nothing_is_dispatched() {
    assert_eq!(
        parse(b"event: a\n\ndata: 2\n\n"),
        vec![ev("message", "2", "")]
    );
}

#[test]
fn last_event_id_persists_across_events() {
    assert_eq!(
        parse(b"id: 7\ndata: a\n\ndata: b\n\n"),
        vec![ev("message", "a", "7"), ev("message", "b", "7")]
    );
}

#[test]
fn empty_id_resets_the_last_event_id() {
    let mut parser = Parser::new();
    parser.feed(b"id: 7\ndata: a\n\nid\ndata: b\n\n");
    assert_eq!(parser.next_event().unwrap().unwrap().last_event_id, "7");
    assert_eq!(parser.next_event().unwrap().unwrap().last_event_id, "");
    assert_eq!(parser.last_event_id(), "");
}

#[test]
fn id_containing_nul_is_ignored() {
    assert_eq!(
        parse(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"),
        vec![ev("message", "a", "1"), ev("message", "b", "1")]
    );
}

#[test]
fn id_without_data_still_sets_the_last_event_id() {
    let mut parser = Parser::new();
    parser.feed(b"id: 9\n\n");
    assert_eq!(parser.next_event().unwrap(), None);
    assert_eq!(parser.last_event_id(), "9");
}

#[test]
fn retry_accepted_only_when_all_ascii_digits() {
    for (input, expected) in [
        (&b"retry: 1500\n"[..], Some(1500)),
        (b"retry: 15x0\n", None),
        (b"retry: -1\n", None),
        (b"retry: \n", None),
        (b"retry: 1.5\n", None),
        (b"retry:  15\n", None),
    ] {
        let mut parser = Parser::new();
        parser.feed(input);
        assert_eq!(parser.next_event().unwrap(), None);
        assert_eq!(
            parser.retry(),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn retry_keeps_the_previous_value_when_invalid() {
    let mut parser = Parser::new();
    parser.feed(b"retry: 100\nretry: x\n");
    assert_eq!(parser.next_event().unwrap(), None);
    assert_eq!(parser.retry(), Some(100));
}

#[test]
fn unterminated_final_block_is_dropped_at_end_of_stream() {
    assert_eq!(
        parse(b"data: a\n\ndata: b\nid: 5\n"),
        vec![ev("message", "a", "")]
    );
    let mut parser = Parser::new();
    parser.feed(b"data: a\n\nid: 5\ndata: b\n");
    parser.next_event().unwrap();
    parser.finish();
    assert_eq!(
        parser.last_event_id(),
        "",
        "an id in a dropped block never counts"
    );
    parser.feed(b"data: c\n\n");
    assert_eq!(parser.next_event().unwrap().unwrap().data, "c");
}

#[test]
fn endless_line_is_an_error_not_unbounded_memory() {
    let mut parser = Parser::with_max_event_size(1024);
    for _ in 0..100 {
        parser.feed(&[b'x'; 100]);
        if let Err(error) = parser.next_event() {
            assert_eq!(error, Error::EventTooLarge { limit: 1024 });
            return;
        }
    }
    panic!("a 10,000-byte line passed a 1,024-byte limit");
}

#[test]
fn event_with_too_much_data_is_an_error() {
    let mut parser = Parser::with_max_event_size(1024);
    let line = format!("data: {}\n", "y".repeat(100));
    for _ in 0..20 {
        parser.feed(line.as_bytes());
    }
    assert_eq!(
        parser.next_event(),
        Err(Error::EventTooLarge { limit: 1024 })
    );
}

#[test]
fn seeded_last_event_id_carries_into_a_new_connection() {
    let mut parser = Parser::new().with_last_event_id("41");
    parser.feed(b"data: a\n\n");
    assert_eq!(parser.next_event().unwrap().unwrap().last_event_id, "41");
}
