//! The load generator's subscribers: plain tokio tasks over raw TCP (or TLS)
//! streams speaking just enough HTTP/1.1 (one GET, one response head), each reading
//! as much as the socket has into its one [`BodyBuffer`] and looking only at
//! frame ends and the bench payload's fields. Over HTTP/2 the `h2` crate
//! frames the stream, and its DATA frames go through the same buffer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use url::Url;

use super::dial::{DialError, Dialer, Protocol, Stream};
use super::http2::{self, BodyReader};
use super::publish::Issued;
use super::stats::{Batch, Shards, micros};
use super::tally::{Outcome, Published, Tally};
use super::wire::{BodyBuffer, WireError, parse_mark};

/// Where subscribers connect and what they ask for.
#[derive(Debug, Clone)]
pub struct Target {
    /// Opens connections to the hub (resolved once).
    pub dialer: Dialer,
    /// The `Host` header.
    pub host: String,
    /// The hub URL, whose path and query every subscription starts from.
    pub hub: Url,
    /// The query parameter naming a topic (`match` for herald, `topic` for older hubs).
    pub match_param: String,
    /// Subscriber tokens: subscriber `n` presents the `n`-th, wrapping
    /// around (none: anonymous subscribers).
    pub tokens: Arc<[String]>,
}

impl Target {
    /// The token subscriber `index` presents, if any.
    pub fn token(&self, index: usize) -> Option<&str> {
        (!self.tokens.is_empty()).then(|| self.tokens[index % self.tokens.len()].as_str())
    }

    /// The request of subscriber `index` to `topic`, in the run's protocol.
    pub fn request(&self, index: usize, topic: &str) -> Result<Request, OpenError> {
        let mut url = self.hub.clone();
        url.query_pairs_mut().append_pair(&self.match_param, topic);
        let agent = format!("herald-bench (subscriber {index})");
        if self.dialer.protocol() == Protocol::Http2 {
            let fields = [
                (http::header::ACCEPT, "text/event-stream"),
                (http::header::CACHE_CONTROL, "no-cache"),
                (http::header::USER_AGENT, agent.as_str()),
            ];
            let (uri, headers) = http2::request_parts(&url, &fields, self.token(index))
                .map_err(OpenError::Request)?;
            return Ok(Request::Http2 { uri, headers });
        }
        let mut request = request_head(
            "GET",
            &url,
            &self.host,
            &format!(
                "Accept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: {agent}\r\n"
            ),
            self.token(index),
        );
        request.push_str("\r\n");
        Ok(Request::Http1(request.into_bytes()))
    }
}

/// A subscription request, ready to send.
#[derive(Debug)]
pub enum Request {
    /// The whole HTTP/1.1 request, as written on the socket.
    Http1(Vec<u8>),
    /// An HTTP/2 `GET`: its URI and headers.
    Http2 {
        /// The absolute URI (`:scheme`, `:authority` and `:path`).
        uri: http::Uri,
        /// Its headers.
        headers: http::HeaderMap,
    },
}

/// An open subscription's body, read as bytes.
#[derive(Debug)]
pub enum Body {
    /// The socket, after the response head.
    Http1(Stream),
    /// The HTTP/2 stream's DATA frames.
    Http2(BodyReader),
}

impl Body {
    /// Reads what has arrived into `buf` (cancel-safe); `Ok(0)` at its end.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Body::Http1(stream) => stream.read(buf).await,
            Body::Http2(reader) => reader.read(buf).await,
        }
    }

    /// What its end means, in words.
    fn ended(&self) -> &'static str {
        match self {
            Body::Http1(_) => "the hub closed the connection",
            Body::Http2(_) => "the hub ended the stream",
        }
    }
}

/// The head of a request for `url`, without its blank line: the request
/// line, `Host`, the `headers` lines (each ending in CRLF), and
/// `Authorization: Bearer` when there is a `token`.
pub fn request_head(
    method: &str,
    url: &Url,
    host: &str,
    headers: &str,
    token: Option<&str>,
) -> String {
    let mut target = url.path().to_owned();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n{headers}");
    if let Some(token) = token {
        head.push_str("Authorization: Bearer ");
        head.push_str(token);
        head.push_str("\r\n");
    }
    head
}

/// The buffer a subscriber starts with (busy ones grow it to
/// [`BodyBuffer::BUSY`]), and the most a long frame may grow it to.
const BUFFER: usize = 4 * 1024;
/// The most a subscriber's buffer grows to for one long frame: a larger
/// frame fails the subscription.
pub const MAX_BUFFER: usize = 4 * 1024 * 1024;

/// Why a subscription could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The connection (or its TLS handshake) failed.
    #[error("{0}")]
    Dial(#[from] DialError),
    /// Writing the request or reading the head failed.
    #[error("i/o: {0}")]
    Io(std::io::Error),
    /// The hub answered something else than 200.
    #[error("status {0}")]
    Status(u16),
    /// The hub answered 200 with another content type.
    #[error("content type {0}")]
    ContentType(String),
    /// The hub closed before a whole head.
    #[error("closed before the response head")]
    Closed,
    /// No head within the timeout.
    #[error("timeout")]
    Timeout,
    /// The head is not HTTP/1.x.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// HTTP/2 failed: the hub reset the stream, or went away.
    #[error("HTTP/2: {0}")]
    Http2(h2::Error),
    /// A plain-HTTP hub answered the HTTP/2 preface with something else
    /// than HTTP/2 (most likely an HTTP/1.1 error).
    #[error(
        "HTTP/2: the hub did not answer in HTTP/2 ({0}): over http, --http2 needs a hub \
         that speaks HTTP/2 with prior knowledge (h2c) on that port"
    )]
    NotHttp2(h2::Error),
    /// The request could not be made (from the hub URL and a token).
    #[error("cannot make the request: {0}")]
    Request(String),
}

impl OpenError {
    /// A short label for grouping errors in reports (`status 429`, `connect: refused`).
    pub fn label(&self) -> String {
        match self {
            OpenError::Dial(error) => error.label(),
            OpenError::Io(error) => format!("i/o: {}", error.kind()),
            OpenError::ContentType(_) => "content type".into(),
            OpenError::Wire(_) => "malformed response".into(),
            OpenError::NotHttp2(_) => "HTTP/2: not spoken by the hub".into(),
            OpenError::Http2(error) => match error.reason() {
                Some(reason) => format!("HTTP/2: {reason:?}"),
                None => "HTTP/2".into(),
            },
            other => other.to_string(),
        }
    }
}

/// Connects, sends `request` and reads the response head (all within
/// `timeout`): the body to read, and the buffer holding what of it came
/// with the head.
pub async fn open(
    dialer: &Dialer,
    request: &Request,
    timeout: Duration,
) -> Result<(Body, BodyBuffer), OpenError> {
    let opened = match request {
        Request::Http1(request) => tokio::time::timeout(timeout, open_http1(dialer, request)).await,
        Request::Http2 { uri, headers } => {
            tokio::time::timeout(timeout, open_http2(dialer, uri, headers)).await
        }
    };
    opened.unwrap_or(Err(OpenError::Timeout))
}

/// Opens an HTTP/2 stream on a connection of its own.
async fn open_http2(
    dialer: &Dialer,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Result<(Body, BodyBuffer), OpenError> {
    let stream = dialer.connect().await?;
    let sender = http2::handshake(stream).await.map_err(OpenError::Http2)?;
    let mut sender = sender.ready().await.map_err(OpenError::Http2)?;
    let mut request = http::Request::new(());
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
    let (response, _) = sender
        .send_request(request, true)
        .map_err(OpenError::Http2)?;
    let response = response.await.map_err(|error| {
        // The first frame a server sends is its settings; bytes that do not
        // even frame as HTTP/2 there are another protocol's answer.
        let garbled = !error.is_remote()
            && error.is_go_away()
            && matches!(
                error.reason(),
                Some(h2::Reason::FRAME_SIZE_ERROR | h2::Reason::PROTOCOL_ERROR)
            );
        if garbled && !dialer.is_tls() {
            OpenError::NotHttp2(error)
        } else {
            OpenError::Http2(error)
        }
    })?;
    if response.status() != http::StatusCode::OK {
        return Err(OpenError::Status(response.status().as_u16()));
    }
    if let Some(content_type) = response.headers().get(http::header::CONTENT_TYPE) {
        let content_type = String::from_utf8_lossy(content_type.as_bytes());
        if !is_event_stream(&content_type) {
            return Err(OpenError::ContentType(content_type.into_owned()));
        }
    }
    Ok((
        Body::Http2(BodyReader::new(response.into_body(), sender)),
        BodyBuffer::new(BUFFER, MAX_BUFFER),
    ))
}

/// Whether a response's `Content-Type` is an event stream's.
fn is_event_stream(content_type: &str) -> bool {
    content_type
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
}

/// Writes an HTTP/1.1 request and reads its response head.
async fn open_http1(dialer: &Dialer, request: &[u8]) -> Result<(Body, BodyBuffer), OpenError> {
    let mut stream = dialer.connect().await?;
    stream.write_all(request).await.map_err(OpenError::Io)?;
    // TLS holds what it was given until flushed.
    stream.flush().await.map_err(OpenError::Io)?;
    let mut buffer = BodyBuffer::new(BUFFER, MAX_BUFFER);
    loop {
        let spare = buffer.spare()?;
        let n = stream.read(spare).await.map_err(OpenError::Io)?;
        if n == 0 {
            return Err(OpenError::Closed);
        }
        buffer.filled(n)?;
        if let Some(head) = buffer.take_head()? {
            if head.status != 200 {
                return Err(OpenError::Status(head.status));
            }
            if let Some(content_type) = &head.content_type
                && !is_event_stream(content_type)
            {
                return Err(OpenError::ContentType(content_type.clone()));
            }
            return Ok((Body::Http1(stream), buffer));
        }
    }
}

/// What every subscriber task shares with the coordinator.
#[derive(Debug)]
pub struct Shared {
    /// Subscribers whose head arrived.
    pub connected: AtomicUsize,
    /// The same, per topic index.
    pub connected_per_topic: Vec<AtomicUsize>,
    /// Subscribers that could not open.
    pub failed: AtomicUsize,
    /// First receipts of events, all subscribers together.
    pub delivered: AtomicU64,
    /// Subscribers that connected and have since received all they are
    /// owed (once the run is draining) or lost their stream: the drain
    /// waits for every connected subscriber to be settled.
    pub settled: AtomicUsize,
    /// What the publishers have sent so far.
    pub issued: Arc<Issued>,
    /// Publish → receive latency of first receipts, µs.
    pub latency: Shards,
    /// Connect → response head latency, µs.
    pub connect_latency: Shards,
    /// Bounds how many subscribers connect at once.
    pub connecting: Semaphore,
}

impl Shared {
    /// Counters at zero for `topics` topics and `streams` streams; at most
    /// `connect_concurrency` connection attempts at once.
    pub fn new(topics: usize, streams: usize, connect_concurrency: usize) -> Self {
        Self {
            connected: AtomicUsize::new(0),
            connected_per_topic: (0..topics).map(|_| AtomicUsize::new(0)).collect(),
            failed: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            settled: AtomicUsize::new(0),
            issued: Arc::new(Issued::new(streams)),
            latency: Shards::new(16),
            connect_latency: Shards::new(16),
            connecting: Semaphore::new(connect_concurrency.max(1)),
        }
    }
}

/// How a subscriber task ended.
#[derive(Debug)]
pub struct Ended {
    /// Its accounting (`None` if it never connected).
    pub tally: Option<Tally>,
    /// Why it could not connect, or why its stream ended before the stop.
    pub error: Option<String>,
    /// Reads of its stream's body that brought bytes.
    pub reads: u64,
    /// When it last received an event for the first time.
    pub last_delivery: Option<Instant>,
}

/// Where the run is, as the subscribers see it.
#[derive(Debug, Clone, Default)]
pub enum Stage {
    /// Publishing (or not started yet).
    #[default]
    Running,
    /// Everything is published: this is what each stream got, so that a
    /// subscriber can tell when it has received all it is owed.
    Draining(Arc<[Published]>),
    /// Done: subscribers close their streams and account.
    Stopped,
}

/// Runs a subscriber to `topic` (an index into the run's topics): opens
/// `request`, then follows the stream until `stage` turns to
/// [`Stage::Stopped`], recording into `tally` and `shared`.
pub async fn run(
    topic: usize,
    target: Arc<Target>,
    request: Result<Request, OpenError>,
    mut tally: Tally,
    shared: Arc<Shared>,
    timeout: Duration,
    stage: watch::Receiver<Stage>,
) -> Ended {
    // The request is dropped once sent, in its arm.
    let opened = match request {
        Ok(request) => {
            let _permit = shared.connecting.acquire().await;
            let started = Instant::now();
            let opened = open(&target.dialer, &request, timeout).await;
            if opened.is_ok() {
                shared.connect_latency.record(&[micros(started.elapsed())]);
            }
            opened
        }
        Err(error) => Err(error),
    };
    let (mut body, mut buffer) = match opened {
        Ok(opened) => {
            shared.connected_per_topic[topic].fetch_add(1, Ordering::Relaxed);
            shared.connected.fetch_add(1, Ordering::Relaxed);
            opened
        }
        Err(error) => {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            return Ended {
                tally: None,
                error: Some(error.to_string()),
                reads: 0,
                last_delivery: None,
            };
        }
    };
    let head_reads = buffer.reads();
    // When this subscriber last received an event for the first time, on
    // the payloads' clock: the clock is read once per read, for latencies
    // and this alike, and turned into an `Instant` once, at the end.
    let mut last_delivery_nanos = None;
    let mut error = None;
    // One wait for the next stage, kept across reads: a wait made anew for
    // each read would join and leave the channel's list of 10,000 waiters
    // every time, touching other subscribers' cold memory (3% of the
    // generator's samples at 50 events/s).
    let mut next_stage = Box::pin(until(stage.clone(), |s| !matches!(s, Stage::Running)));
    let mut draining: Option<Arc<[Published]>> = None;
    let mut settled = false;
    loop {
        // Frames already buffered (e.g. read with the head) come first. In
        // a block of its own, so that the batch lives on the thread's stack,
        // not in the task across its reads.
        {
            let mut firsts = 0u64;
            let now = unix_nanos();
            let mut latencies = Batch::new(&shared.latency);
            while let Some(frame) = buffer.next_frame() {
                let Some(mark) = parse_mark(frame) else {
                    continue;
                };
                let outcome = if shared.issued.was_issued(mark.stream, mark.seq) {
                    tally.record(mark.stream, mark.seq)
                } else {
                    tally.unpublished(mark.stream, mark.seq)
                };
                match outcome {
                    Outcome::First | Outcome::Reordered => {
                        firsts += 1;
                        latencies.push(now.saturating_sub(mark.sent_at) / 1000);
                    }
                    Outcome::Duplicate | Outcome::Unexpected => {}
                }
            }
            buffer.rewind_if_empty();
            if firsts > 0 {
                shared.delivered.fetch_add(firsts, Ordering::Relaxed);
                latencies.flush();
                last_delivery_nanos = Some(now);
            }
        }
        if !settled
            && let Some(published) = &draining
            && tally.is_complete(published)
        {
            settled = true;
            shared.settled.fetch_add(1, Ordering::Relaxed);
        }
        if buffer.body_ended() {
            error = Some("the hub ended the stream".to_owned());
            break;
        }
        let spare = match buffer.spare() {
            Ok(spare) => spare,
            Err(wire) => {
                error = Some(wire.to_string());
                break;
            }
        };
        let read = tokio::select! {
            biased;
            reached = &mut next_stage => match reached {
                Stage::Draining(published) => {
                    draining = Some(published);
                    next_stage = Box::pin(until(stage.clone(), |s| matches!(s, Stage::Stopped)));
                    continue;
                }
                Stage::Running | Stage::Stopped => break,
            },
            read = body.read(spare) => read,
        };
        match read {
            Ok(0) => {
                error = Some(body.ended().to_owned());
                break;
            }
            Ok(n) => {
                if let Err(wire) = buffer.filled(n) {
                    error = Some(wire.to_string());
                    break;
                }
            }
            Err(io) => {
                error = Some(format!("read: {io}"));
                break;
            }
        }
    }
    // A subscriber whose stream ended is owed nothing more the drain could wait for.
    if !settled {
        shared.settled.fetch_add(1, Ordering::Relaxed);
    }
    let last_delivery = last_delivery_nanos.map(|at| {
        let ago = Duration::from_nanos(unix_nanos().saturating_sub(at));
        let now = Instant::now();
        now.checked_sub(ago).unwrap_or(now)
    });
    Ended {
        tally: Some(tally),
        error,
        reads: buffer.reads() - head_reads,
        last_delivery,
    }
}

/// The stage once `reached` holds for it ([`Stage::Stopped`] if the run
/// is gone).
async fn until(mut stage: watch::Receiver<Stage>, reached: fn(&Stage) -> bool) -> Stage {
    match stage.wait_for(reached).await {
        Ok(now) => now.clone(),
        Err(_) => Stage::Stopped,
    }
}

/// Now, in nanoseconds since the Unix epoch (the clock payloads carry).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target on 127.0.0.1:1 speaking `protocol` to `hub`, naming topics
    /// with `match_param`, its subscribers presenting `tokens` in turn.
    fn target(protocol: Protocol, hub: &str, match_param: &str, tokens: &[&str]) -> Target {
        Target {
            dialer: Dialer::plain("127.0.0.1:1".parse().unwrap(), protocol),
            host: "127.0.0.1:1".into(),
            hub: Url::parse(hub).unwrap(),
            match_param: match_param.into(),
            tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn subscribers_take_the_tokens_in_turn() {
        let target =
            |tokens: &[&str]| target(Protocol::Http1, "http://127.0.0.1:1/", "match", tokens);
        let three = target(&["a", "b", "c"]);
        let taken: Vec<_> = (0..5).map(|n| three.token(n).unwrap()).collect();
        assert_eq!(taken, ["a", "b", "c", "a", "b"]);
        assert_eq!(target(&[]).token(7), None);
    }

    #[test]
    fn the_request_adds_the_topic_to_the_hub_query_and_names_the_subscriber() {
        let hub = "http://127.0.0.1:1/.well-known/mercure?x=1";
        let target = target(Protocol::Http1, hub, "topic", &["jwt"]);
        let Ok(Request::Http1(request)) = target.request(3, "https://e.com/a b") else {
            panic!("an HTTP/1.1 request");
        };
        let request = String::from_utf8(request).unwrap();
        assert_eq!(
            request,
            "GET /.well-known/mercure?x=1&topic=https%3A%2F%2Fe.com%2Fa+b HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\
             Accept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: herald-bench (subscriber 3)\r\n\
             Authorization: Bearer jwt\r\n\r\n"
        );
    }

    #[test]
    fn an_http2_request_has_the_absolute_uri_and_the_same_headers() {
        let hub = "http://127.0.0.1:1/.well-known/mercure?x=1";
        let target = target(Protocol::Http2, hub, "match", &["jwt"]);
        let Ok(Request::Http2 { uri, headers }) = target.request(3, "https://e.com/a b") else {
            panic!("an HTTP/2 request");
        };
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:1/.well-known/mercure?x=1&match=https%3A%2F%2Fe.com%2Fa+b"
        );
        let header = |name: &str| headers[name].to_str().unwrap().to_owned();
        assert_eq!(header("accept"), "text/event-stream");
        assert_eq!(header("cache-control"), "no-cache");
        assert_eq!(header("user-agent"), "herald-bench (subscriber 3)");
        assert_eq!(header("authorization"), "Bearer jwt");
        assert!(
            !headers.contains_key("host"),
            "HTTP/2 names the host in :authority"
        );
    }
}
