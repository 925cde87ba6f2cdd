//! The hot path of an HTTP/1.1 subscriber, in clear text or over TLS: its
//! connection served by hand instead of by hyper.
//!
//! Measurement showed why (docs/benchmarks.md): an idle subscriber held by
//! hyper costs about 25 KiB of RSS, most of it hyper's per-connection read and
//! write buffers, kept for the whole life of a stream that never reads again
//! and writes small frames. Here the request head is peeked from the socket,
//! the request goes through the same axum router as every other request (so
//! authorization, CORS, limits, request ids and logs are the same), and only
//! the response is written by hand: the head once, then each coalesced batch
//! of frames as one chunk, straight from the frames' own buffers.
//!
//! The socket is shared with the hub as a [`Wire`]: once the stream has
//! caught up, the hub's writer tasks write its entries straight to it
//! ([`ChunkedWire`]), and this task only flushes what a full socket left
//! over, sends keep-alives and ends the stream.
//!
//! Over TLS the same holds once the handshake is done and the head read
//! (`listener`): the connection's rustls state moves into the wire, which
//! encrypts each write itself, so TLS streams are paced and coalesced as
//! plain ones are and do not keep hyper's buffers (docs/benchmarks.md,
//! change 36).
//!
//! A connection that opens with a publish of the hub URL goes to
//! `publish_conn`. Anything else, or anything unusual (HTTP/1.0, a body,
//! `Upgrade`, a head that did not arrive in one segment, a header `http`
//! refuses), is left untouched on the socket for hyper, which serves it as
//! before. A connection that sends nothing within the request head timeout,
//! or until a shutdown, is closed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use futures_util::StreamExt;
use herald_hub::{Entry, Wire};
use http::{HeaderName, HeaderValue, Method, Request, Version, header};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// Most bytes peeked for a request head. A subscription head is a request
/// line with its matchers, a token and a few headers.
const MAX_HEAD: usize = 8 * 1024;

/// Most headers in a request head handled here.
const MAX_HEADERS: usize = 64;

/// What to do with a new plain-HTTP connection.
pub(crate) enum Route {
    /// A subscription: served here, with a buffer as long as its head.
    Subscription(Box<Request<Body>>, Vec<u8>),
    /// A publisher: served by `publish_conn`.
    Publisher,
    /// Anything else: give the untouched socket to hyper.
    Hyper,
    /// Not HTTP: to be answered with this reason, then closed.
    Malformed(String),
    /// Nothing arrived by the head's deadline, or the hub is shutting down:
    /// close the connection, so that silent clients cannot hold sockets.
    Close,
}

/// Peeks at the first request of `tcp` and decides who serves it (publishers
/// are served by hand only when `publishers`, subscriptions only when
/// `streams`). Nothing is consumed from the
/// socket; a subscription comes with a buffer as long as its head, to
/// consume it with. A connection that sends nothing by `deadline` (its
/// request head's), or before `shutdown`, is to be closed.
pub(crate) async fn route(
    tcp: &TcpStream,
    hub_path: &str,
    peer: SocketAddr,
    publishers: bool,
    streams: bool,
    deadline: Instant,
    shutdown: &CancellationToken,
) -> Route {
    let mut buf = Vec::new();
    let peeked = tokio::select! {
        biased;
        () = shutdown.cancelled() => return Route::Close,
        peeked = tokio::time::timeout_at(deadline, peek(tcp, &mut buf)) => peeked,
    };
    let Ok(Ok(n)) = peeked else {
        // Nothing in time, or a broken socket.
        return Route::Close;
    };
    if publishers && crate::publish_conn::is_publish(&buf[..n], hub_path) {
        return Route::Publisher;
    }
    if let Some(why) = crate::malformed::malformed_head(&buf[..n]) {
        return Route::Malformed(why);
    }
    if !streams {
        return Route::Hyper;
    }
    match parse_head(&buf[..n], hub_path, peer) {
        Some((request, len)) => {
            buf.truncate(len);
            Route::Subscription(Box::new(request), buf)
        }
        None => Route::Hyper,
    }
}

/// Waits for the first bytes of `tcp` and peeks at them, in `buf`.
async fn peek(tcp: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    // Allocated once bytes are there: until then a silent connection
    // costs only its socket.
    tcp.readable().await?;
    buf.resize(MAX_HEAD, 0);
    tcp.peek(buf).await
}

/// The request if `bytes` starts with a whole HTTP/1.1 `GET` head for the
/// hub path without a body, with the head's length.
pub(crate) fn parse_head(
    bytes: &[u8],
    hub_path: &str,
    peer: SocketAddr,
) -> Option<(Request<Body>, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = parsed.parse(bytes).ok()? else {
        return None;
    };
    if parsed.method? != "GET" || parsed.version? != 1 {
        return None;
    }
    let target = parsed.path?;
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path != hub_path {
        return None;
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(target)
        .version(Version::HTTP_11);
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        if name == header::CONTENT_LENGTH && h.value != b"0"
            || name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::EXPECT
        {
            return None;
        }
        request = request.header(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    let mut request = request.body(Body::empty()).ok()?;
    request.extensions_mut().insert(ConnectInfo(peer));
    Some((request, len))
}

/// A hand-served stream's socket, as the request's extension: the
/// subscription handler attaches it to the subscription.
#[derive(Clone)]
pub(crate) struct DirectWire(pub(crate) Arc<ChunkedWire>);

thread_local! {
    /// The chunk a hub writer last assembled, reused from write to write:
    /// the members of a group written one after the other mostly have the
    /// same entries pending, so their chunk is built once.
    static LAST_CHUNK: std::cell::RefCell<Chunk> = const {
        std::cell::RefCell::new(Chunk { entries: Vec::new(), frames: 0, bytes: Vec::new() })
    };
}

/// An HTTP chunk of entries' frames, with those entries: held, so that
/// comparing addresses is comparing entries (several hubs may share a thread).
struct Chunk {
    entries: Vec<Arc<Entry>>,
    /// Bytes of frames in the chunk, without its framing.
    frames: usize,
    bytes: Vec<u8>,
}

impl Chunk {
    /// Makes this the chunk of `entries`, unless it already is.
    fn assemble(&mut self, entries: &[Arc<Entry>]) {
        if self.entries.len() == entries.len()
            && self
                .entries
                .iter()
                .zip(entries)
                .all(|(a, b)| Arc::ptr_eq(a, b))
        {
            return;
        }
        self.entries.clear();
        self.entries.extend(entries.iter().cloned());
        self.frames = entries.iter().map(|e| e.frame().len()).sum();
        self.bytes.clear();
        let mut size = [0u8; 18];
        self.bytes
            .extend_from_slice(chunk_size_line(self.frames, &mut size));
        for entry in entries {
            self.bytes.extend_from_slice(entry.frame());
        }
        self.bytes.extend_from_slice(b"\r\n");
    }
}

/// The largest write buffer kept for the next write.
const MAX_KEPT_BUFFER: usize = 256 * 1024;

/// A stream's socket, written by this connection's task and by the hub's
/// writers: every write is a whole HTTP chunk, and the bytes a full socket
/// did not take are kept and written before anything else; over TLS each
/// write is encrypted first, and rustls keeps what the socket did not take.
pub(crate) struct ChunkedWire {
    tcp: TcpStream,
    out: Mutex<Out>,
    metrics: OnceLock<Arc<Metrics>>,
    /// When a hub writer last wrote here (nanoseconds after [`epoch`]; 0:
    /// never): it postpones the stream's next keep-alive.
    last_write: AtomicU64,
}

/// The instant `ChunkedWire::last_write` counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

struct Out {
    /// Bytes accepted but not yet taken by the socket.
    pending: Pending,
    /// No direct writes any more: the stream is ending or the socket failed.
    closed: bool,
    /// The socket failed: the connection is over.
    failed: bool,
    /// It failed because writes made no progress for the write timeout
    /// (or the kernel's `TCP_USER_TIMEOUT`, set to the same).
    timed_out: bool,
}

/// What a wire keeps of the bytes its socket did not take yet.
enum Pending {
    /// In clear text: the bytes themselves.
    Plain(Vec<u8>),
    /// Over TLS: the connection's rustls state, which holds its encrypted
    /// records until they are written.
    Tls(Box<rustls::ServerConnection>),
}

impl Pending {
    /// Whether nothing waits to be written.
    fn is_empty(&self) -> bool {
        match self {
            Pending::Plain(bytes) => bytes.is_empty(),
            Pending::Tls(tls) => !tls.wants_write(),
        }
    }
}

impl ChunkedWire {
    /// The wire of a clear-text connection.
    pub(crate) fn plain(tcp: TcpStream) -> Self {
        Self::new(tcp, Pending::Plain(Vec::new()))
    }

    /// The wire of a TLS connection whose handshake is done and whose
    /// request head was read: `tls` holds nothing more the client sent.
    pub(crate) fn tls(tcp: TcpStream, mut tls: rustls::ServerConnection) -> Self {
        // The wire bounds what it keeps itself: a write is refused while
        // one is still pending, so rustls need not refuse any.
        tls.set_buffer_limit(None);
        Self::new(tcp, Pending::Tls(Box::new(tls)))
    }

    fn new(tcp: TcpStream, pending: Pending) -> Self {
        Self {
            tcp,
            out: Mutex::new(Out {
                pending,
                closed: false,
                failed: false,
                timed_out: false,
            }),
            metrics: OnceLock::new(),
            last_write: AtomicU64::new(0),
        }
    }

    /// When a hub writer last wrote entries here.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        match self.last_write.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(epoch() + Duration::from_nanos(nanos)),
        }
    }

    /// Where direct writes are counted (the hub's metrics).
    pub(crate) fn set_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Writes `parts` now, as far as the socket takes them, after anything
    /// already pending; keeps the rest. Returns whether something is left
    /// to flush.
    fn send(&self, parts: &[&[u8]]) -> bool {
        let mut out = self.out.lock();
        out.send(&self.tcp, parts);
        !out.pending.is_empty()
    }

    /// Sends `parts` and refuses direct writes from now on; over TLS the
    /// connection's closure follows them.
    fn send_last(&self, parts: &[&[u8]]) -> bool {
        let mut out = self.out.lock();
        out.closed = true;
        out.send(&self.tcp, parts);
        if let Pending::Tls(tls) = &mut out.pending {
            tls.send_close_notify();
            out.write_pending(&self.tcp);
        }
        !out.pending.is_empty()
    }

    /// Reads what the client sent on a stream it never sends on again
    /// (it closed, or broke the protocol; bytes are dropped): whether the
    /// connection is over.
    fn client_left(&self, probe: &mut [u8]) -> bool {
        let mut out = self.out.lock();
        let Pending::Tls(tls) = &mut out.pending else {
            return match self.tcp.try_read(probe) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
        };
        match tls.read_tls(&mut Socket(&self.tcp)) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
        }
        let left = match tls.process_new_packets() {
            // The alert rustls queued for it is sent below.
            Err(error) => {
                tracing::debug!(%error, "TLS stream ended by a protocol error");
                true
            }
            Ok(state) => {
                let mut unread = state.plaintext_bytes_to_read();
                while unread > 0 {
                    match std::io::Read::read(&mut tls.reader(), probe) {
                        Ok(n @ 1..) => unread = unread.saturating_sub(n),
                        _ => break,
                    }
                }
                state.peer_has_closed()
            }
        };
        // A key update to answer, or an alert.
        if tls.wants_write() {
            out.write_pending(&self.tcp);
        }
        left
    }

    /// Writes what is pending, waiting for the socket; fails if a write makes
    /// no progress for `timeout` (a subscriber that stopped reading) or the
    /// socket failed.
    async fn flush(&self, timeout: Duration) -> std::io::Result<()> {
        loop {
            {
                let mut out = self.out.lock();
                if out.failed {
                    return Err(std::io::ErrorKind::BrokenPipe.into());
                }
                out.write_pending(&self.tcp);
                if out.pending.is_empty() {
                    return Ok(());
                }
            }
            match Box::pin(tokio::time::timeout(timeout, self.tcp.writable())).await {
                Ok(ready) => ready?,
                Err(_) => {
                    let mut out = self.out.lock();
                    out.failed = true;
                    out.closed = true;
                    out.timed_out = true;
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            }
        }
    }

    /// Whether the connection failed because a write made no progress for
    /// the write timeout; counted once, as the stream ends.
    pub(crate) fn timed_out(&self) -> bool {
        self.out.lock().timed_out
    }

    /// Whether bytes wait to be flushed.
    fn is_dirty(&self) -> bool {
        let out = self.out.lock();
        !out.pending.is_empty() || out.failed
    }
}

impl Out {
    /// Writes `parts` (at most [`MAX_PARTS`]) if nothing is pending, keeping
    /// what the socket did not take; appends them to what is pending
    /// otherwise. Over TLS they are encrypted first.
    fn send(&mut self, tcp: &TcpStream, parts: &[&[u8]]) {
        if self.failed {
            return;
        }
        let result = match &mut self.pending {
            Pending::Plain(pending) => {
                let mut written = 0;
                let result = if pending.is_empty() {
                    write_now(tcp, parts).map(|n| written = n)
                } else {
                    Ok(())
                };
                if result.is_ok() {
                    for part in parts {
                        let taken = written.min(part.len());
                        written -= taken;
                        pending.extend_from_slice(&part[taken..]);
                    }
                }
                result
            }
            Pending::Tls(tls) => parts
                .iter()
                .try_for_each(|part| std::io::Write::write_all(&mut tls.writer(), part))
                .and_then(|()| write_tls_now(tls, tcp)),
        };
        if let Err(error) = result {
            self.failed = true;
            self.closed = true;
            self.timed_out = error.kind() == std::io::ErrorKind::TimedOut;
        }
    }

    /// Writes what is pending, as far as the socket takes it.
    fn write_pending(&mut self, tcp: &TcpStream) {
        match &mut self.pending {
            Pending::Plain(pending) => {
                let pending = std::mem::take(pending);
                self.send(tcp, &[&pending]);
            }
            Pending::Tls(_) => self.send(tcp, &[]),
        }
    }
}

/// A socket as `std::io` sees it, for rustls: reads and writes that do
/// not wait (`WouldBlock` when they would).
struct Socket<'a>(&'a TcpStream);

impl std::io::Read for Socket<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl std::io::Write for Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `tls`'s encrypted records as far as the socket takes them
/// without waiting; rustls keeps the rest.
fn write_tls_now(tls: &mut rustls::ServerConnection, tcp: &TcpStream) -> std::io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(&mut Socket(tcp)) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The most parts [`Out::send`] writes at once: a chunk's size line, its
/// data and its end.
const MAX_PARTS: usize = 3;

/// Writes as much of `parts` as the socket takes without waiting; how much.
fn write_now(tcp: &TcpStream, parts: &[&[u8]]) -> std::io::Result<usize> {
    debug_assert!(parts.len() <= MAX_PARTS);
    let total: usize = parts.iter().take(MAX_PARTS).map(|p| p.len()).sum();
    let mut written = 0;
    while written < total {
        let mut slices = [std::io::IoSlice::new(&[]); MAX_PARTS];
        let mut count = 0;
        let mut skip = written;
        for part in parts.iter().take(MAX_PARTS) {
            let taken = skip.min(part.len());
            skip -= taken;
            if taken < part.len() {
                slices[count] = std::io::IoSlice::new(&part[taken..]);
                count += 1;
            }
        }
        let result = match &slices[..count] {
            [one] => tcp.try_write(one),
            many => tcp.try_write_vectored(many),
        };
        match result {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

impl Wire for ChunkedWire {
    fn write_entries(&self, entries: &[Arc<Entry>]) -> bool {
        let mut out = self.out.lock();
        if out.closed || !out.pending.is_empty() {
            return false;
        }
        // One contiguous chunk: the kernel copies one buffer much faster
        // than dozens of small ones.
        let bytes = LAST_CHUNK.with_borrow_mut(|chunk| {
            chunk.assemble(entries);
            out.send(&self.tcp, &[&chunk.bytes]);
            let frames = chunk.frames;
            if chunk.bytes.capacity() > MAX_KEPT_BUFFER {
                *chunk = Chunk {
                    entries: Vec::new(),
                    frames: 0,
                    bytes: Vec::new(),
                };
            }
            frames
        });
        if out.failed {
            return false;
        }
        drop(out);
        let nanos = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_write.store(nanos.max(1), Ordering::Relaxed);
        if let (Some(metrics), Some(first)) = (self.metrics.get(), entries.first()) {
            // Hub writers write live entries only.
            metrics.written(bytes, Some(first.published_at()));
        }
        true
    }

    fn is_clear(&self) -> bool {
        let out = self.out.lock();
        !out.closed && out.pending.is_empty()
    }
}

/// A subscription answered with its stream's head: what the stream needs
/// from then on.
pub(crate) struct Opened {
    wire: Arc<ChunkedWire>,
    frames: axum::body::BodyDataStream,
}

/// Reads the head of a subscription request from `tcp`, where it was only
/// peeked (it is as long as `head`), and gives the connection its wire.
pub(crate) async fn consume_head(mut tcp: TcpStream, mut head: Vec<u8>) -> Option<ChunkedWire> {
    tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut head)
        .await
        .ok()?;
    Some(ChunkedWire::plain(tcp))
}

/// Answers one subscription request on `wire`, whose head was read: sends
/// the response head of a stream and
/// returns it, or sends a refusal whole and returns `None` (as when the
/// socket fails), the connection then being over.
///
/// Apart from [`stream`], and to be boxed by the caller: a task is as big as
/// its largest state and an async function's arguments stay in its state
/// for its whole life, so the request, the router and the router's future
/// must not be part of the state a stream keeps for hours.
pub(crate) async fn open(
    wire: ChunkedWire,
    router: Router,
    request: Box<Request<Body>>,
    write_timeout: Duration,
) -> Option<Opened> {
    // Unboxed here, so the box is freed with this function's state.
    let mut request = *request;
    let wire = Arc::new(wire);
    request
        .extensions_mut()
        .insert(DirectWire(Arc::clone(&wire)));
    let Ok(response) = router.oneshot(request).await;
    let (parts, body) = response.into_parts();
    let streaming = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mut out = response_head(parts);
    if !streaming {
        // A refusal: small, sent whole, and the connection closed after it.
        let bytes = axum::body::to_bytes(body, MAX_HEAD * 4).await.ok()?;
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(bytes.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
        out.extend_from_slice(&bytes);
        if wire.send_last(&[&out]) {
            let _ = wire.flush(write_timeout).await;
        }
        return None;
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    if wire.send(&[&out]) && wire.flush(write_timeout).await.is_err() {
        return None;
    }
    Some(Opened {
        wire,
        frames: body.into_data_stream(),
    })
}

/// Writes the frames of a stream [`open`] answered, each batch as one
/// chunk, until the subscription ends or the client leaves; then closes
/// the connection.
pub(crate) async fn stream(opened: Opened, write_timeout: Duration) {
    let Opened { wire, mut frames } = opened;
    let mut probe = [0u8; 16];
    loop {
        let frame = tokio::select! {
            biased;
            // A hub writer found the socket full and left the rest here.
            () = std::future::poll_fn(|_| {
                if wire.is_dirty() {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            }) => {
                if wire.flush(write_timeout).await.is_err() {
                    return;
                }
                continue;
            }
            frame = frames.next() => frame,
            // The client never sends again while its stream is open: the
            // socket turning readable means it closed (or broke the protocol).
            readable = wire.tcp.readable() => {
                if readable.is_err() || wire.client_left(&mut probe) {
                    return;
                }
                continue;
            }
        };
        let Some(Ok(data)) = frame else { break };
        if data.is_empty() {
            continue;
        }
        let mut size = [0u8; 18];
        let dirty = wire.send(&[chunk_size_line(data.len(), &mut size), &data, b"\r\n"]);
        if dirty && wire.flush(write_timeout).await.is_err() {
            return;
        }
    }
    // The subscription leaves the hub before the last chunk, so no writer
    // sends after it.
    drop(frames);
    if wire.send_last(&[b"0\r\n\r\n"]) && wire.flush(write_timeout).await.is_err() {
        return;
    }
    let _ = socket2::SockRef::from(&wire.tcp).shutdown(std::net::Shutdown::Write);
}

/// `len` in hex followed by CRLF, the line that opens a chunk, written into
/// `buf` rather than allocated: one per write of every stream.
fn chunk_size_line(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut at = 16;
    let mut rest = len;
    loop {
        at -= 1;
        buf[at] = HEX[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    &buf[at..]
}

/// The status line and headers of `parts`, without the framing headers
/// (the caller adds its own) and without the blank line.
fn response_head(parts: http::response::Parts) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    status_and_headers(&mut out, &parts);
    out.extend_from_slice(b"\r\ndate: ");
    crate::publish_conn::push_date(&mut out);
    out.extend_from_slice(b"\r\n");
    out
}

/// The status line and header lines of `parts`, but for the framing
/// headers, each line but the last ended by CRLF.
pub(crate) fn status_and_headers(out: &mut Vec<u8>, parts: &http::response::Parts) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        parts
            .status
            .canonical_reason()
            .unwrap_or("Unknown")
            .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn chunk_size_lines_are_lowercase_hex() {
        let mut buf = [0u8; 18];
        assert_eq!(chunk_size_line(0, &mut buf), b"0\r\n");
        assert_eq!(chunk_size_line(9, &mut buf), b"9\r\n");
        assert_eq!(chunk_size_line(0x1a2b, &mut buf), b"1a2b\r\n");
        assert_eq!(
            chunk_size_line(usize::MAX, &mut buf),
            b"ffffffffffffffff\r\n"
        );
    }

    #[test]
    fn only_whole_bodiless_http11_gets_of_the_hub_path_are_taken() {
        let hub = "/.well-known/mercure";
        let ok = b"GET /.well-known/mercure?match=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\nrest";
        let (request, len) = parse_head(ok, hub, peer()).expect("taken");
        assert_eq!(len, ok.len() - 4);
        assert_eq!(request.uri().query(), Some("match=a"));
        assert_eq!(request.headers()["authorization"], "Bearer t");
        assert!(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .is_some()
        );
        for refused in [
            &b"GET /.well-known/mercure HTTP/1.1\r\nHost: x\r\n"[..],
            b"GET /.well-known/mercure HTTP/1.0\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\n\r\n",
            b"QUERY /.well-known/mercure HTTP/1.1\r\n\r\n",
            b"GET /.well-known/mercure/subscriptions HTTP/1.1\r\n\r\n",
            b"GET /other HTTP/1.1\r\n\r\n",
            b"GET /.well-known/mercure HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /.well-known/mercure HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /.well-known/mercure HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            assert!(
                parse_head(refused, hub, peer()).is_none(),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
    }
}
