//! Builds arbitrary events, encodes them, parses the stream back (cut at a
//! fuzzer-chosen point) and compares.
//!
//! Invariants: the encoder refuses exactly the ids and types with CR, LF or
//! NUL; `Event::to_bytes` and the `encode::write_*` functions write the same
//! bytes; every event comes back with its data (CR and CRLF read as LF), its
//! type (`message` when unset or empty), and the last event id in force; the
//! last retry wins.

#![no_main]

use arbitrary::Arbitrary;
use herald_sse::{Event, MessageEvent, Parser, encode};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Fields {
    id: Option<String>,
    event_type: Option<String>,
    data: String,
    retry: Option<u64>,
    comment: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    events: Vec<Fields>,
    cut: u32,
}

fn breaks_a_line(s: &str) -> bool {
    s.contains(['\r', '\n', '\0'])
}

fuzz_target!(|input: Input| {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    let mut last_event_id = String::new();
    let mut retry = None;
    for mut fields in input.events {
        let mut event = Event::new().with_data(fields.data.clone());
        if let Some(id) = fields.id.take() {
            match event.clone().with_id(id.clone()) {
                Ok(e) => {
                    event = e;
                    fields.id = Some(id);
                }
                Err(_) => assert!(breaks_a_line(&id), "id {id:?} refused"),
            }
        }
        if let Some(t) = fields.event_type.take() {
            match event.clone().with_event_type(t.clone()) {
                Ok(e) => {
                    event = e;
                    fields.event_type = Some(t);
                }
                Err(_) => assert!(breaks_a_line(&t), "type {t:?} refused"),
            }
        }
        if let Some(r) = fields.retry {
            event = event.with_retry(r);
        }
        if let Some(c) = &fields.comment {
            event = event.with_comment(c.clone());
        }
        let bytes = event.to_bytes();

        // The low-level writers, in the order `Event` uses, write the same bytes.
        let mut written = Vec::new();
        if let Some(c) = &fields.comment {
            encode::write_comment(&mut written, c);
        }
        if let Some(t) = &fields.event_type {
            encode::write_event_type(&mut written, t).expect("accepted by Event");
        }
        if let Some(r) = fields.retry {
            encode::write_retry(&mut written, r);
        }
        if let Some(id) = &fields.id {
            encode::write_id(&mut written, id).expect("accepted by Event");
        }
        encode::write_data(&mut written, &fields.data);
        encode::write_end(&mut written);
        assert_eq!(bytes.as_ref(), written.as_slice());
        stream.extend_from_slice(&bytes);

        if let Some(id) = fields.id {
            last_event_id = id;
        }
        retry = fields.retry.or(retry);
        expected.push(MessageEvent {
            event_type: fields
                .event_type
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data: fields.data.replace("\r\n", "\n").replace('\r', "\n"),
            last_event_id: last_event_id.clone(),
        });
    }

    let at = input.cut as usize % (stream.len() + 1);
    let mut parser = Parser::new();
    let mut parsed = Vec::new();
    for chunk in [&stream[..at], &stream[at..]] {
        parser.feed(chunk);
        while let Some(event) = parser.next_event().expect("an encoded stream parses") {
            parsed.push(event);
        }
    }
    assert_eq!(parsed, expected);
    assert_eq!(parser.last_event_id(), last_event_id);
    assert_eq!(parser.retry(), retry);
});
