//! The load generator's publishers: each one publishes its streams' events in
//! turn, one request at a time (so the order of a stream is the order the hub
//! acknowledged), over its own kept-alive HTTP/1.1 connection (or HTTP/2
//! connection, one stream per publish, through the `h2` crate).
//!
//! Requests are written by hand from a template made once per stream, and
//! answers read with [`Answer`]: the load generator shares the machine with
//! the hub, and through a general HTTP client it spent about as much CPU per
//! publish as the hubs it measured (its one core at 97% while herald, nchan,
//! the axum hub and the floor each used 68–94% of theirs), so the publish
//! rate measured the generator. `docs/benchmarks.md` has the before and after.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior};
use url::Url;
use url::form_urlencoded::byte_serialize;

use super::dial::{Dialer, Protocol, Stream};
use super::http2;
use super::stats::{histogram, micros};
use super::subscriber::{request_head, unix_nanos};
use super::tally::Published;
use super::wire::{Answer, Answered, Mark, payload};

/// How events are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PublishFormat {
    /// A Mercure publish: `POST <hub>` with the form fields `topic` and `data`.
    Mercure,
    /// The event data alone as the body of `POST <hub>?<match-param>=<topic>`
    /// (`text/plain`), as an nchan publisher location takes it; any 2xx
    /// answer is an acknowledgement.
    Raw,
}

/// Where publishers send events, and how.
#[derive(Debug)]
pub struct Sink {
    /// Opens connections to the hub (resolved once).
    pub dialer: Dialer,
    /// The `Host` header.
    pub host: String,
    /// The hub URL.
    pub hub: Url,
    /// How events are published.
    pub format: PublishFormat,
    /// The query parameter naming the topic of a raw publish.
    pub param: String,
    /// Sent as `Authorization: Bearer`, if any.
    pub token: Option<String>,
    /// The longest one publish (connecting included) may take.
    pub timeout: Duration,
}

/// The parts of a publish on one topic that do not change.
#[derive(Debug, Clone)]
pub struct Template {
    /// The request up to the value of its `Content-Length`.
    head: Vec<u8>,
    /// The start of the body, before the data.
    body: Vec<u8>,
    /// Over HTTP/2: the request's URI and headers, or why they could not be
    /// made (from the hub URL and the token).
    http2: Option<Result<(http::Uri, http::HeaderMap), String>>,
}

impl Sink {
    /// The template of a publish on `topic`.
    pub fn template(&self, topic: &str) -> Template {
        let (url, content_type, body) = match self.format {
            PublishFormat::Mercure => {
                let body = format!(
                    "topic={}&data=",
                    byte_serialize(topic.as_bytes()).collect::<String>()
                );
                (self.hub.clone(), "application/x-www-form-urlencoded", body)
            }
            PublishFormat::Raw => (
                raw_url(&self.hub, &self.param, topic),
                "text/plain",
                String::new(),
            ),
        };
        let mut head = request_head(
            "POST",
            &url,
            &self.host,
            &format!("User-Agent: herald-bench (publisher)\r\nContent-Type: {content_type}\r\n"),
            self.token.as_deref(),
        );
        head.push_str("Content-Length: ");
        let http2 = (self.dialer.protocol() == Protocol::Http2).then(|| {
            let fields = [
                (http::header::CONTENT_TYPE, content_type),
                (http::header::USER_AGENT, "herald-bench (publisher)"),
            ];
            http2::request_parts(&url, &fields, self.token.as_deref())
        });
        Template {
            head: head.into_bytes(),
            body: body.into_bytes(),
            http2,
        }
    }
}

/// One publisher's connection to the hub, opened on its first publish and
/// after any failure.
#[derive(Debug)]
pub struct Connection {
    sink: Arc<Sink>,
    stream: Option<Stream>,
    /// The HTTP/2 connection, when the run speaks HTTP/2.
    sender: Option<SendRequest<Bytes>>,
    /// The request being sent, then the answer being read.
    buf: Vec<u8>,
    /// The body being built.
    body: Vec<u8>,
    /// What the hub said when it last refused a publish (`": …"`), else empty.
    refusal: String,
}

impl Connection {
    /// A connection to `sink`'s hub, not yet open.
    pub fn new(sink: Arc<Sink>) -> Self {
        Self {
            sink,
            stream: None,
            sender: None,
            buf: Vec::with_capacity(1024),
            body: Vec::with_capacity(256),
            refusal: String::new(),
        }
    }

    /// Publishes `data` as `template` says; any 2xx answer is an
    /// acknowledgement, anything else an error of one line of text.
    pub async fn publish(&mut self, template: &Template, data: &str) -> Result<(), String> {
        self.body.clear();
        self.body.extend_from_slice(&template.body);
        match self.sink.format {
            PublishFormat::Mercure => self
                .body
                .extend(byte_serialize(data.as_bytes()).flat_map(str::bytes)),
            PublishFormat::Raw => self.body.extend_from_slice(data.as_bytes()),
        }
        let outcome = match &template.http2 {
            Some(parts) => {
                let parts = parts
                    .as_ref()
                    .map_err(|e| format!("cannot make the request: {e}"))?;
                tokio::time::timeout(self.sink.timeout, self.exchange_http2(parts)).await
            }
            None => {
                self.buf.clear();
                self.buf.extend_from_slice(&template.head);
                let _ = write!(self.buf, "{}\r\n\r\n", self.body.len());
                self.buf.extend_from_slice(&self.body);
                tokio::time::timeout(self.sink.timeout, self.exchange()).await
            }
        };
        let outcome = outcome.unwrap_or_else(|_| Err("timeout".into()));
        match outcome {
            Ok(answered) => {
                if !answered.reusable {
                    self.stream = None;
                    self.sender = None;
                }
                if (200..300).contains(&answered.status) {
                    Ok(())
                } else {
                    Err(format!("status {}{}", answered.status, self.refusal))
                }
            }
            Err(error) => {
                self.stream = None;
                self.sender = None;
                Err(error)
            }
        }
    }

    /// Sends the body in `body` as one HTTP/2 request with `parts` and reads
    /// the answer (its words only when it is a refusal).
    async fn exchange_http2(
        &mut self,
        (uri, headers): &(http::Uri, http::HeaderMap),
    ) -> Result<Answered, String> {
        let words = |error: h2::Error| format!("HTTP/2: {error}");
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => {
                let stream = self.sink.dialer.connect().await.map_err(|e| e.label())?;
                http2::handshake(stream).await.map_err(words)?
            }
        };
        let mut sender = sender.ready().await.map_err(words)?;
        let mut request = http::Request::post(uri.clone())
            .body(())
            .map_err(|e| format!("cannot make the request: {e}"))?;
        *request.headers_mut() = headers.clone();
        request
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, self.body.len().into());
        let (response, mut send) = sender.send_request(request, false).map_err(words)?;
        self.sender = Some(sender);
        send.send_data(Bytes::copy_from_slice(&self.body), true)
            .map_err(words)?;
        let response = response.await.map_err(words)?;
        let status = response.status().as_u16();
        let (parts, mut body) = response.into_parts();
        self.buf.clear();
        while let Some(data) = body.data().await {
            let data = data.map_err(words)?;
            let _ = body.flow_control().release_capacity(data.len());
            if self.buf.len() + data.len() > MAX_ANSWER {
                return Err(format!("an answer longer than {MAX_ANSWER} bytes"));
            }
            self.buf.extend_from_slice(&data);
        }
        self.refusal.clear();
        if !(200..300).contains(&status) {
            let said = herald_client::describe_refusal(&parts.headers, &self.buf);
            if !said.is_empty() {
                self.refusal = format!(": {said}");
            }
        }
        Ok(Answered {
            status,
            reusable: true,
        })
    }

    /// Sends the request in `buf` and reads the answer into it.
    async fn exchange(&mut self) -> Result<Answered, String> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = self.sink.dialer.connect().await.map_err(|e| e.label())?;
                self.stream.insert(stream)
            }
        };
        stream
            .write_all(&self.buf)
            .await
            .map_err(|e| format!("i/o: {}", e.kind()))?;
        // TLS holds what it was given until flushed.
        stream
            .flush()
            .await
            .map_err(|e| format!("i/o: {}", e.kind()))?;
        self.buf.clear();
        let mut answer = Answer::default();
        loop {
            if self.buf.len() == self.buf.capacity() {
                if self.buf.len() >= MAX_ANSWER {
                    return Err(format!("an answer longer than {MAX_ANSWER} bytes"));
                }
                self.buf.reserve(self.buf.len());
            }
            let n = stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| format!("i/o: {}", e.kind()))?;
            match answer
                .read(&mut self.buf, n == 0)
                .map_err(|e| e.to_string())?
            {
                Some(answered) => {
                    // Only a refusal's words are kept: the hot path reads none.
                    self.refusal.clear();
                    if !(200..300).contains(&answered.status) {
                        let said = herald_client::describe_refusal(
                            &answer.headers(),
                            answer.body(&self.buf),
                        );
                        if !said.is_empty() {
                            self.refusal = format!(": {said}");
                        }
                    }
                    return Ok(answered);
                }
                None if n == 0 => return Err("the hub closed the connection".into()),
                None => {}
            }
        }
    }
}

/// The longest answer to a publish the bench reads.
const MAX_ANSWER: usize = 1 << 20;

/// `hub` with `param=topic` added to its query.
pub fn raw_url(hub: &Url, param: &str, topic: &str) -> Url {
    let mut url = hub.clone();
    url.query_pairs_mut().append_pair(param, topic);
    url
}

/// When publishers stop.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this many events per publisher.
    Events(u64),
    /// After this long.
    Duration(Duration),
}

/// One publisher's job.
#[derive(Debug, Clone)]
pub struct Job {
    /// The streams it publishes, in turn, with the topic of each.
    pub streams: Vec<(u32, String)>,
    /// The data size of each event.
    pub size: usize,
    /// Events per second for this publisher, or as fast as possible.
    pub rate: Option<f64>,
    /// When to stop.
    pub limit: Limit,
}

/// What one publisher did.
#[derive(Debug)]
pub struct Done {
    /// Per stream it published: what was sent.
    pub streams: Vec<(u32, Published)>,
    /// Acknowledged publishes.
    pub acknowledged: u64,
    /// Failed publishes.
    pub errors: u64,
    /// The first failure, as text.
    pub first_error: Option<String>,
    /// Request latency of acknowledged publishes, µs.
    pub latency: Histogram<u64>,
}

/// Consecutive failures after which a publisher gives up (the hub is gone).
const MAX_CONSECUTIVE_ERRORS: u64 = 20;

/// What the publishers tell the rest of the run while they publish.
#[derive(Debug)]
pub struct Issued {
    /// Publishes attempted, for the progress bar.
    pub sent: AtomicU64,
    /// Per stream, the sequences handed to a publish so far: a receipt of
    /// one at or above it was never published (stored before the request
    /// goes out, so a hub's delivery always comes after it).
    pub next: Vec<AtomicU64>,
}

impl Issued {
    /// Nothing issued yet on any of `streams` streams.
    pub fn new(streams: usize) -> Self {
        Self {
            sent: AtomicU64::new(0),
            next: (0..streams).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether `seq` on `stream` was handed to a publish.
    pub fn was_issued(&self, stream: u32, seq: u64) -> bool {
        self.next
            .get(stream as usize)
            .is_some_and(|next| seq < next.load(Ordering::Acquire))
    }
}

/// Runs every job to its end on the current runtime, and returns what each
/// publisher did, in the order of `jobs` (an error for one that panicked).
pub async fn run_here(
    sink: Arc<Sink>,
    jobs: Vec<Job>,
    issued: Arc<Issued>,
) -> Vec<Result<Done, String>> {
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|job| tokio::spawn(run(sink.clone(), job, issued.clone())))
        .collect();
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        outcomes.push(
            handle
                .await
                .map_err(|_| "a publisher task panicked".to_owned()),
        );
    }
    outcomes
}

/// Runs every job to its end on a thread and a runtime of their own, and
/// returns what each publisher did, in the order of `jobs` (an error for one
/// that could not run to its end).
///
/// Why apart: on the runtime of the subscribers' readers, a publisher woken
/// by the hub's answer waits behind every reader woken in the same turn,
/// 10,000 of them in a fan-out; `tcpdump` of herald's fan-out showed the hub
/// answering each publish within 1.6 ms but several gaps of 15–60 ms per run
/// between an answer and the next request, so the load generator, not the
/// hub, set the pace. The publishers' thread shares the core with the
/// readers' through the kernel's scheduler, which runs a thread that mostly
/// sleeps as soon as it wakes.
pub async fn run_apart(
    sink: Arc<Sink>,
    jobs: Vec<Job>,
    issued: Arc<Issued>,
) -> Vec<Result<Done, String>> {
    let count = jobs.len();
    let (answer, answered) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("bench-publishers".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = answer.send(Err(format!(
                        "cannot start the publishers' runtime: {error}"
                    )));
                    return;
                }
            };
            let outcomes = runtime.block_on(run_here(sink, jobs, issued));
            let _ = answer.send(Ok(outcomes));
        });
    let failed = |error: String| (0..count).map(|_| Err(error.clone())).collect();
    if let Err(error) = spawned {
        return failed(format!("cannot start the publishers' thread: {error}"));
    }
    match answered.await {
        Ok(Ok(outcomes)) => outcomes,
        Ok(Err(error)) => failed(error),
        Err(_) => failed("the publishers' thread ended without an answer".to_owned()),
    }
}

/// Runs one publisher, telling `issued` what it sends.
pub async fn run(sink: Arc<Sink>, job: Job, issued: Arc<Issued>) -> Done {
    let mut streams: Vec<(u32, Published)> = job
        .streams
        .iter()
        .map(|(stream, _)| (*stream, Published::default()))
        .collect();
    let mut done = Done {
        streams: Vec::new(),
        acknowledged: 0,
        errors: 0,
        first_error: None,
        latency: histogram(),
    };
    let templates: Vec<Template> = job
        .streams
        .iter()
        .map(|(_, topic)| sink.template(topic))
        .collect();
    let mut connection = Connection::new(sink);
    let started = Instant::now();
    let mut ticks = job.rate.filter(|r| *r > 0.0).map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        interval
    });
    let mut consecutive_errors = 0;
    let mut count: u64 = 0;
    loop {
        match job.limit {
            Limit::Events(events) if count >= events => break,
            Limit::Duration(duration) if started.elapsed() >= duration => break,
            _ => {}
        }
        if streams.is_empty() || consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            break;
        }
        if let Some(ticks) = &mut ticks {
            ticks.tick().await;
        }
        let turn = (count % streams.len() as u64) as usize;
        let (stream, state) = &mut streams[turn];
        let seq = state.next;
        state.next += 1;
        count += 1;
        if let Some(next) = issued.next.get(*stream as usize) {
            next.store(state.next, Ordering::Release);
        }
        let mark = Mark {
            seq,
            sent_at: unix_nanos(),
            stream: *stream,
        };
        let data = payload(mark, job.size);
        let request_started = Instant::now();
        let result = connection.publish(&templates[turn], &data).await;
        issued.sent.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => {
                consecutive_errors = 0;
                done.acknowledged += 1;
                done.latency
                    .saturating_record(micros(request_started.elapsed()));
            }
            Err(error) => {
                consecutive_errors += 1;
                done.errors += 1;
                state.uncertain.push(seq);
                if done.first_error.is_none() {
                    done.first_error = Some(error);
                }
            }
        }
    }
    done.streams = streams;
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_urls_carry_the_topic_in_the_query() {
        let hub = Url::parse("http://127.0.0.1:8080/.well-known/mercure").unwrap();
        assert_eq!(
            raw_url(&hub, "topic", "https://herald.bench/topics/x/0").as_str(),
            "http://127.0.0.1:8080/.well-known/mercure?topic=https%3A%2F%2Fherald.bench%2Ftopics%2Fx%2F0"
        );
        let hub = Url::parse("http://h/pub?a=1").unwrap();
        assert_eq!(raw_url(&hub, "id", "t").as_str(), "http://h/pub?a=1&id=t");
    }
}
