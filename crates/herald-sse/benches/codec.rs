//! Codec benchmarks: herald's parser side by side with `eventsource-stream`
//! on the same input and the same chunking, and herald's encoder.
//!
//! Run with `cargo bench -p herald-sse --bench codec`; the method and the
//! latest figures are in `docs/benchmarks.md`.

use std::convert::Infallible;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use eventsource_stream::Eventsource;
use futures_util::Stream;
use herald_sse::{Event, Parser, encode};

/// The size of the generated stream.
const STREAM_SIZE: usize = 1024 * 1024;
/// The chunk size of the chunked variants, a typical socket read.
const CHUNK: usize = 16 * 1024;

/// One generated event, kept as its fields so the encoder benches can write
/// it again both through [`Event`] and through the `encode::write_*` functions.
struct Spec {
    id: Option<String>,
    event_type: Option<&'static str>,
    data: String,
}

impl Spec {
    fn event(&self) -> Event {
        let mut event = Event::new().with_data(self.data.clone());
        if let Some(id) = &self.id {
            event = event.with_id(id.clone()).expect("generated ids are valid");
        }
        if let Some(t) = self.event_type {
            event = event.with_event_type(t).expect("generated types are valid");
        }
        event
    }
}

/// A small deterministic generator (xorshift64*), so that every run and every
/// machine benches the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "order",
    "shipped",
    "payment",
    "pending",
    "user",
    "updated",
    "price",
    "stock",
    "café",
    "warehouse",
    "delivered",
    "cart",
    "refund",
    "coupon",
    "status",
    "ok",
];
const TYPES: &[&str] = &["update", "create", "delete", "ping"];

/// Events of about 100 encoded bytes: every third has an `id:`, every fourth an
/// `event:`, and about one in eight has two lines of data. The data is JSON-ish
/// text, with the odd non-ASCII character.
fn generate() -> (Vec<Spec>, Vec<u8>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut specs = Vec::new();
    let mut stream = BytesMut::with_capacity(STREAM_SIZE + 256);
    let mut seq = 0u64;
    while stream.len() < STREAM_SIZE {
        seq += 1;
        let mut data = format!(
            r#"{{"seq":{seq},"topic":"/orders/{}","user":"u{}","msg":""#,
            rng.below(10_000),
            rng.below(1000)
        );
        for i in 0..2 + rng.below(4) {
            if i > 0 {
                data.push(' ');
            }
            data.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        data.push_str("\"}");
        if rng.below(8) == 0 {
            data.push_str(&format!("\n{{\"more\":{}}}", rng.below(1_000_000)));
        }
        let spec = Spec {
            id: seq.is_multiple_of(3).then(|| format!("evt-{seq}")),
            event_type: seq
                .is_multiple_of(4)
                .then(|| TYPES[rng.below(TYPES.len() as u64) as usize]),
            data,
        };
        spec.event().encode_into(&mut stream);
        specs.push(spec);
    }
    (specs, stream.to_vec())
}

/// (event type, data, last event id) of an event, as both parsers report it.
type Seen = (String, String, String);

fn herald_parse(chunks: &[&[u8]], mut on_event: impl FnMut(herald_sse::MessageEvent)) {
    let mut parser = Parser::new();
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(event) = parser.next_event().expect("valid stream") {
            on_event(event);
        }
    }
}

/// Drives `eventsource-stream` with the least executor there is: the byte
/// stream is always ready, so polling with a no-op waker never sees `Pending`.
fn eventsource_parse(chunks: &[&[u8]], mut on_event: impl FnMut(eventsource_stream::Event)) {
    let bytes = futures_util::stream::iter(chunks.iter().map(|c| Ok::<_, Infallible>(*c)));
    let mut events = pin!(bytes.eventsource());
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match events.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(event)) => on_event(event.expect("valid stream")),
            Poll::Ready(None) => break,
            Poll::Pending => unreachable!("an iterator stream is always ready"),
        }
    }
}

/// Both parsers must see the same events in the input, or the comparison is moot.
fn check_parsers_agree(specs: &[Spec], chunks: &[&[u8]]) {
    let mut herald: Vec<Seen> = Vec::new();
    herald_parse(chunks, |e| {
        herald.push((e.event_type, e.data, e.last_event_id))
    });
    let mut peer: Vec<Seen> = Vec::new();
    eventsource_parse(chunks, |e| peer.push((e.event, e.data, e.id)));
    assert_eq!(herald.len(), specs.len(), "herald parsed every event");
    assert_eq!(herald, peer, "both parsers agree on the input");
}

fn parse(c: &mut Criterion) {
    let (specs, stream) = generate();
    let chunked: Vec<&[u8]> = stream.chunks(CHUNK).collect();
    let whole: Vec<&[u8]> = vec![&stream];
    check_parsers_agree(&specs, &chunked);
    check_parsers_agree(&specs, &whole);
    eprintln!(
        "codec input: {} bytes, {} events",
        stream.len(),
        specs.len()
    );

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    for (variant, chunks) in [("16KiB-chunks", &chunked), ("whole", &whole)] {
        group.bench_with_input(BenchmarkId::new("herald", variant), chunks, |b, chunks| {
            b.iter(|| {
                let mut n = 0usize;
                herald_parse(chunks, |e| {
                    black_box(e);
                    n += 1;
                });
                n
            });
        });
    }
    // Slower by far (it copies the rest of its buffer after every line, which
    // makes one whole 1 MiB buffer quadratic): ten samples of equal iteration
    // counts keep the run short.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    for (variant, chunks) in [("16KiB-chunks", &chunked), ("whole", &whole)] {
        group.bench_with_input(
            BenchmarkId::new("eventsource-stream", variant),
            chunks,
            |b, chunks| {
                b.iter(|| {
                    let mut n = 0usize;
                    eventsource_parse(chunks, |e| {
                        black_box(e);
                        n += 1;
                    });
                    n
                });
            },
        );
    }
    group.finish();
}

/// One event whose single data line arrives in many small chunks, as a
/// large payload does through a slow network: the parser must not rescan the
/// unfinished line after every chunk.
fn long_line(c: &mut Criterion) {
    const LINE: usize = 8 * 1024 * 1024;
    const SMALL_CHUNK: usize = 1024;
    let mut stream = b"data: ".to_vec();
    stream.resize(LINE, b'q');
    stream.extend_from_slice(b"\n\n");
    let chunks: Vec<&[u8]> = stream.chunks(SMALL_CHUNK).collect();
    let mut group = c.benchmark_group("parse-long-line");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.sample_size(10);
    group.bench_function("herald 8MiB line, 1KiB-chunks", |b| {
        b.iter(|| {
            let mut n = 0usize;
            herald_parse(&chunks, |e| {
                black_box(e);
                n += 1;
            });
            assert_eq!(n, 1, "the one event is parsed");
            n
        });
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let (specs, stream) = generate();
    let events: Vec<Event> = specs.iter().map(Spec::event).collect();

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("Event::to_bytes", |b| {
        b.iter(|| {
            let mut len = 0;
            for event in &events {
                len += black_box(event.to_bytes()).len();
            }
            len
        });
    });
    group.bench_function("Event::encode_into reused buffer", |b| {
        let mut out = BytesMut::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for event in &events {
                event.encode_into(&mut out);
            }
            black_box(&out).len()
        });
    });
    group.bench_function("encode::write_* reused buffer", |b| {
        let mut out: Vec<u8> = Vec::with_capacity(stream.len());
        b.iter(|| {
            out.clear();
            for spec in &specs {
                if let Some(t) = spec.event_type {
                    encode::write_event_type(&mut out, t).expect("valid type");
                }
                if let Some(id) = &spec.id {
                    encode::write_id(&mut out, id).expect("valid id");
                }
                encode::write_data(&mut out, &spec.data);
                encode::write_end(&mut out);
            }
            black_box(&out).len()
        });
    });
    group.finish();

    // The encoders write the same bytes as the stream the parsers read.
    let mut out = BytesMut::new();
    for event in &events {
        out.extend_from_slice(&event.to_bytes());
    }
    assert_eq!(out, stream, "to_bytes writes the benchmarked stream");
}

criterion_group!(benches, parse, long_line, encode);
criterion_main!(benches);
