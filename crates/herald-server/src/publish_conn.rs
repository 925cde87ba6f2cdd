//! The hot path of an HTTP/1.1 publisher, in clear text or over TLS: its
//! connection served by hand instead of by hyper, axum and the tower layers.
//!
//! Measurement showed why (docs/benchmarks.md, change 10): with the load
//! generator out of the way, a publish cost herald more CPU than nginx+nchan,
//! and about half of herald's own instructions per publish were the generic
//! HTTP stack (a `Request` and a `Response` with their header maps, the
//! service layers, the body collection), not the publish. Here each request
//! head is parsed with `httparse`, the update is published by the function
//! the router's endpoint calls (same checks, metrics and error documents,
//! through [`Herald::error`]), under the same request span and with the same
//! request id (kept from the client or drawn from the router's generator);
//! only the framing is done here.
//!
//! The first request that is not a plain publish (another method or path, a
//! chunked body, `Expect`, `Upgrade`, an `Origin`, HTTP/1.0, a head longer than
//! [`MAX_HEAD`], anything `http` refuses) is handed to hyper with the rest
//! of the connection, bytes already read included ([`Rewound`]), so it is
//! served exactly as before; a head `httparse` refuses is not HTTP, and is
//! answered here with what is wrong with it (`crate::malformed`).
//!
//! Every wait for the client has a deadline (the settings' request head and
//! body timeouts) and a shutdown closes the connection until a request head
//! has arrived, so that a client cannot hold the socket without publishing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::Response;
use http::{HeaderName, HeaderValue, StatusCode, header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFuture;
use tracing::Instrument;

use crate::error::{ServerError, problem};
use crate::headers::{RequestHeaders, Span, Spans};
use crate::{Herald, PUBLISHED_TYPE, publish_request};

/// Longest request head served here; longer ones (big cookies) go to hyper.
const MAX_HEAD: usize = 16 * 1024;

/// Most headers in a request head served here.
const MAX_HEADERS: usize = 64;

/// Bytes asked of the socket per read.
const READ_SIZE: usize = 8 * 1024;

/// The largest read buffer kept between requests (a big body grows it).
const MAX_KEPT_BUFFER: usize = 64 * 1024;

/// A connection whose publishes are served by hand: TCP, or TLS over it.
pub(crate) trait PublisherIo: AsyncRead + AsyncWrite + Unpin + Send {
    /// Writes all of `bytes`, failing if the connection takes nothing for `timeout`.
    fn write_all_within(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// Ends the sending side once what was written is sent (after a TLS
    /// `close_notify`), giving up after `timeout`.
    fn end_writes(&mut self, timeout: Duration) -> impl Future<Output = ()> + Send;
}

impl PublisherIo for TcpStream {
    async fn write_all_within(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        write_all(self, bytes, timeout).await
    }

    async fn end_writes(&mut self, _timeout: Duration) {
        let _ = socket2::SockRef::from(&*self).shutdown(std::net::Shutdown::Write);
    }
}

impl<S> PublisherIo for tokio_rustls::server::TlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn write_all_within(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        // rustls keeps what it was given until flushed. An answer is small:
        // the whole of it within the timeout is the same bound.
        tokio::time::timeout(timeout, async {
            self.write_all(bytes).await?;
            self.flush().await
        })
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    }

    async fn end_writes(&mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.shutdown()).await;
    }
}

/// How a hand-served publisher connection ended.
pub(crate) enum Ended<C = TcpStream> {
    /// Closed: by the client, after `Connection: close`, on an error or at shutdown.
    Closed,
    /// A request that is not a plain publish: hyper serves the rest.
    Hyper(Rewound<C>),
}

/// Whether a connection that starts with `bytes` starts with a publish of
/// `hub_path`: its request line opens with `POST <hub_path>` and a space or
/// a query. The rest is checked request by request.
pub(crate) fn is_publish(bytes: &[u8], hub_path: &str) -> bool {
    bytes
        .strip_prefix(b"POST ")
        .and_then(|rest| rest.strip_prefix(hub_path.as_bytes()))
        .is_some_and(|rest| matches!(rest.first(), Some(b' ' | b'?')))
}

/// Serves the publishes that arrive on `io` after the bytes of `buf` (those
/// already read from it, if any), one after the other, until the connection
/// closes or a request that is not a plain publish arrives.
///
/// The first request head must be whole by `deadline`, each next one within
/// the head timeout of the previous answer's end (which bounds an idle
/// kept-alive connection too), and a body must make progress within the
/// body timeout: otherwise the connection is closed, with a 408 when the
/// client had started a request.
pub(crate) async fn serve<C: PublisherIo>(
    mut io: C,
    herald: &Herald,
    hub_path: &str,
    deadline: Instant,
    mut buf: Vec<u8>,
) -> Ended<C> {
    let shutdown = herald.shutdown_token().clone();
    // Waited on between requests: registered with the token once per
    // connection rather than once per request (about 4% of a publish's
    // instructions when it was made anew for each read).
    let mut shutdown = std::pin::pin!(shutdown.cancelled());
    // One timer per connection, moved from deadline to deadline: moving a
    // registered timer later is an atomic update, while a timer per read
    // would be a registration with the runtime's timer wheel each time.
    let mut deadline = std::pin::pin!(tokio::time::sleep_until(deadline));
    let settings = herald.settings();
    let (head_timeout, body_timeout) =
        (settings.request_head_timeout, settings.request_body_timeout);
    let write_timeout = settings.write_timeout;
    let limit = settings.max_body_bytes;
    buf.reserve(READ_SIZE);
    let mut out = Vec::with_capacity(256);
    // Cleared and refilled by each request: allocated once.
    let mut headers = Vec::with_capacity(16);
    loop {
        let head = loop {
            match parse(&buf, hub_path, &mut headers) {
                Parsed::Publish(head) => break head,
                Parsed::Other => {
                    if let Some(why) = crate::malformed::malformed_head(&buf) {
                        refuse_malformed(&mut io, herald, &why, write_timeout).await;
                        return Ended::Closed;
                    }
                    return Ended::Hyper(Rewound::new(io, buf));
                }
                Parsed::Partial => {
                    // Until a whole head has arrived, a shutdown closes the
                    // connection, as hyper's graceful shutdown does.
                    match read_more(
                        &mut io,
                        &mut buf,
                        Some(shutdown.as_mut()),
                        deadline.as_mut(),
                    )
                    .await
                    {
                        Read::More => {}
                        Read::TimedOut if !buf.is_empty() => {
                            let id = RequestId::Drawn(herald.inner.request_ids.next());
                            time_out(
                                &mut io,
                                &mut out,
                                &id,
                                "request head",
                                head_timeout,
                                write_timeout,
                            )
                            .await;
                            return Ended::Closed;
                        }
                        Read::TimedOut | Read::Closed => return Ended::Closed,
                    }
                }
            }
        };
        let kept = Spans {
            buf: &buf,
            spans: &headers,
        }
        .all(&REQUEST_ID)
        .next()
        .and_then(|id| HeaderValue::from_bytes(id).ok());
        let id = match kept {
            Some(id) => RequestId::Kept(id),
            None => RequestId::Drawn(herald.inner.request_ids.next()),
        };
        let span = tracing::info_span!(
            "request",
            id = std::str::from_utf8(id.as_bytes()).unwrap_or("-"),
            method = "POST",
            path = hub_path,
        );
        out.clear();
        if head.body > limit {
            // The body is not read: answer and close.
            let refusal = span.in_scope(|| herald.error(ServerError::BodyTooLarge(limit)));
            write_response(&mut out, refusal, &id, true).await;
            answer_and_linger(&mut io, &out, write_timeout).await;
            return Ended::Closed;
        }
        if buf.len() < head.len + head.body {
            // A body still on its way is waited for only from a client with
            // a valid token: anyone could otherwise hold the connection (a
            // file descriptor) by sending it a byte at a time.
            let spans = Spans {
                buf: &buf,
                spans: &headers,
            };
            if let Err(error) = crate::publish::publisher(herald, &spans, head.query.as_deref()) {
                let refusal = span.in_scope(|| herald.error(error));
                write_response(&mut out, refusal, &id, true).await;
                answer_and_linger(&mut io, &out, write_timeout).await;
                return Ended::Closed;
            }
        }
        while buf.len() < head.len + head.body {
            deadline.as_mut().reset(Instant::now() + body_timeout);
            match read_more(&mut io, &mut buf, None, deadline.as_mut()).await {
                Read::More => {}
                Read::TimedOut => {
                    span.in_scope(
                        || tracing::info!(timeout = ?body_timeout, "request body stalled"),
                    );
                    time_out(
                        &mut io,
                        &mut out,
                        &id,
                        "request body",
                        body_timeout,
                        write_timeout,
                    )
                    .await;
                    return Ended::Closed;
                }
                Read::Closed => {
                    // A client that only shut its sending side still reads:
                    // it learns why nothing was published.
                    let detail = format!(
                        "the request body ended after {} of the {} bytes its Content-Length \
                         declared; nothing was published",
                        buf.len() - head.len,
                        head.body
                    );
                    span.in_scope(|| tracing::info!("{detail}"));
                    out.clear();
                    let refusal = problem(StatusCode::BAD_REQUEST, &detail);
                    write_response(&mut out, refusal, &id, true).await;
                    let _ = io.write_all_within(&out, write_timeout).await;
                    io.end_writes(write_timeout).await;
                    return Ended::Closed;
                }
            }
        }
        let body = &buf[head.len..head.len + head.body];
        let query = head.query.as_deref();
        let spans = Spans {
            buf: &buf,
            spans: &headers,
        };
        match publish_request(herald, &spans, query, body)
            .instrument(span.clone())
            .await
        {
            Ok(entry) => write_published(&mut out, entry.id(), &id, head.close),
            Err(error) => {
                let refusal = span.in_scope(|| herald.error(error));
                write_response(&mut out, refusal, &id, head.close).await;
            }
        }
        buf.drain(..head.len + head.body);
        if buf.is_empty() && buf.capacity() > MAX_KEPT_BUFFER {
            buf = Vec::with_capacity(READ_SIZE);
        }
        if io.write_all_within(&out, write_timeout).await.is_err() {
            return Ended::Closed;
        }
        if head.close {
            io.end_writes(write_timeout).await;
            return Ended::Closed;
        }
        deadline.as_mut().reset(Instant::now() + head_timeout);
    }
}

/// The longest a refused request's unread body is read and dropped after
/// the answer, and the most bytes of it ([`answer_and_linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 << 20;

/// Sends `answer` on a connection whose request body was refused unread,
/// then closes it: what the client still sends is read and dropped for a
/// while (a lingering close). Closed at once with bytes unread, the socket
/// would answer them with a reset, and a client still sending its body
/// (most send it whole before reading) would lose the answer, seeing only
/// the connection fail.
async fn answer_and_linger<S>(io: &mut S, answer: &[u8], write_timeout: Duration)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A small answer: a socket that takes none of it for the write timeout
    // is as good as gone. The shutdown ends the write side (after a TLS
    // close_notify, over TLS).
    let sent = tokio::time::timeout(write_timeout, async {
        io.write_all(answer).await?;
        io.shutdown().await
    })
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    // On the heap, and only here: a buffer in the connection's future
    // would weigh on every connection.
    let mut sink = vec![0u8; 16 * 1024];
    let mut dropped = 0;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while dropped < LINGER_BYTES {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    })
    .await;
}

/// Answers a request head that is not HTTP (`why`, from
/// [`crate::malformed`]) with a 400 problem document, and ends the
/// connection: nothing after such a head can be read as a request.
pub(crate) async fn refuse_malformed<S>(
    io: &mut S,
    herald: &Herald,
    why: &str,
    write_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tracing::debug!(reason = why, "malformed request head");
    let id = RequestId::Drawn(herald.inner.request_ids.next());
    let mut out = Vec::with_capacity(512);
    write_response(&mut out, problem(StatusCode::BAD_REQUEST, why), &id, true).await;
    answer_and_linger(io, &out, write_timeout).await;
}

/// Answers a request whose `what` (head or body) did not arrive within
/// `timeout` with a 408, and ends the connection.
async fn time_out<C: PublisherIo>(
    io: &mut C,
    out: &mut Vec<u8>,
    id: &RequestId,
    what: &str,
    timeout: Duration,
    write_timeout: Duration,
) {
    let detail = format!("the {what} did not arrive within {timeout:?}");
    out.clear();
    write_response(out, problem(StatusCode::REQUEST_TIMEOUT, &detail), id, true).await;
    let _ = io.write_all_within(out, write_timeout).await;
    io.end_writes(write_timeout).await;
}

/// The request id header, kept from the client or drawn (as the router's
/// `SetRequestIdLayer` does) and echoed in the answer.
static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request's id.
pub(crate) enum RequestId {
    /// The client's.
    Kept(HeaderValue),
    /// Drawn from the router's generator.
    Drawn([u8; 33]),
}

impl RequestId {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Kept(value) => value.as_bytes(),
            Self::Drawn(id) => id,
        }
    }
}

/// What the bytes at the start of the read buffer are.
#[derive(Debug)]
enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A plain publish's whole head.
    Publish(Head),
    /// Anything else, for hyper.
    Other,
}

/// A plain publish's head (its headers are in the spans given to [`parse`]).
#[derive(Debug)]
struct Head {
    /// Bytes of the head, its blank line included.
    len: usize,
    /// Bytes of the body (`Content-Length`; none is 0).
    body: usize,
    query: Option<String>,
    /// `Connection: close`: answer, then close.
    close: bool,
}

/// Parses the request at the start of `bytes`; a publish's headers replace
/// those in `spans`, as spans of `bytes`.
fn parse(bytes: &[u8], hub_path: &str, spans: &mut Vec<Span>) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Other,
    };
    if request.method != Some("POST") || request.version != Some(1) {
        return Parsed::Other;
    }
    let Some(target) = request.path else {
        return Parsed::Other;
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    if path != hub_path {
        return Parsed::Other;
    }
    spans.clear();
    let mut body = None;
    let mut close = false;
    let mut hosts = 0;
    // httparse has checked the names (tokens) and the values (no control
    // characters but tabs), as `http` would.
    for h in request.headers.iter() {
        let name = h.name.as_bytes();
        let is = |known: &HeaderName| name.eq_ignore_ascii_case(known.as_str().as_bytes());
        // A request with an `Origin` (from a browser) gets its CORS answer
        // from the router's layer.
        if is(&header::TRANSFER_ENCODING)
            || is(&header::EXPECT)
            || is(&header::UPGRADE)
            || is(&header::ORIGIN)
        {
            return Parsed::Other;
        }
        if is(&header::CONTENT_LENGTH) {
            match content_length(h.value) {
                Some(n) if body.is_none_or(|b| b == n) => body = Some(n),
                _ => return Parsed::Other,
            }
        }
        if is(&header::HOST) {
            // The router answers an invalid `Host`, as a missing or repeated one.
            if !crate::headers::is_valid_host(h.value) {
                return Parsed::Other;
            }
            hosts += 1;
        }
        if is(&header::CONNECTION)
            && h.value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
        {
            close = true;
        }
        let Some(span) = Span::within(bytes, name, h.value) else {
            return Parsed::Other;
        };
        spans.push(span);
    }
    // The router answers a missing or repeated `Host`.
    if hosts != 1 {
        return Parsed::Other;
    }
    Parsed::Publish(Head {
        len,
        body: body.unwrap_or(0),
        query,
        close,
    })
}

/// A `Content-Length` value: decimal digits only.
fn content_length(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// What [`read_more`] got.
enum Read {
    /// More bytes, after those already in the buffer.
    More,
    /// The deadline passed first.
    TimedOut,
    /// The end of the connection, an error, or a shutdown.
    Closed,
}

/// Reads what the connection has after `buf`'s bytes, unless `shutdown` or
/// `deadline` resolves first.
async fn read_more<C: AsyncRead + Unpin>(
    io: &mut C,
    buf: &mut Vec<u8>,
    shutdown: Option<Pin<&mut WaitForCancellationFuture<'_>>>,
    deadline: Pin<&mut Sleep>,
) -> Read {
    buf.reserve(READ_SIZE);
    // The read is polled before the deadline: bytes already there are
    // taken without touching the timer.
    let read = match shutdown {
        Some(shutdown) => tokio::select! {
            biased;
            () = shutdown => return Read::Closed,
            read = io.read_buf(buf) => read,
            () = deadline => return Read::TimedOut,
        },
        None => tokio::select! {
            biased;
            read = io.read_buf(buf) => read,
            () = deadline => return Read::TimedOut,
        },
    };
    match read {
        Ok(n) if n > 0 => Read::More,
        _ => Read::Closed,
    }
}

/// The answer to a published update: its id.
fn write_published(out: &mut Vec<u8>, update: &str, id: &RequestId, close: bool) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: ");
    out.extend_from_slice(PUBLISHED_TYPE.as_bytes());
    end_head(out, id, update.len(), close);
    out.extend_from_slice(update.as_bytes());
}

/// A refusal, as [`Herald::error`] made it.
async fn write_response(out: &mut Vec<u8>, response: Response, id: &RequestId, close: bool) {
    let (parts, body) = response.into_parts();
    // A refusal's body is a small document already in memory.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    crate::stream_conn::status_and_headers(out, &parts);
    end_head(out, id, body.len(), close);
    out.extend_from_slice(&body);
}

/// Ends a head whose last header line lacks its CRLF: the date, the request
/// id, the length, `Connection: close` when closing, and the blank line.
pub(crate) fn end_head(out: &mut Vec<u8>, id: &RequestId, len: usize, close: bool) {
    out.extend_from_slice(b"\r\ndate: ");
    push_date(out);
    out.extend_from_slice(b"\r\nx-request-id: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
}

thread_local! {
    /// The `Date` header of the current second, formatted once per second.
    static DATE: std::cell::RefCell<(u64, String)> = const {
        std::cell::RefCell::new((0, String::new()))
    };
}

/// Appends the `Date` header's value for now.
pub(crate) fn push_date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, date)| {
        if *at != second || date.is_empty() {
            *at = second;
            *date = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(date.as_bytes());
    });
}

/// Writes all of `bytes`, failing if the socket takes nothing for `timeout`.
async fn write_all(tcp: &TcpStream, mut bytes: &[u8], timeout: Duration) -> io::Result<()> {
    while !bytes.is_empty() {
        match tcp.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::timeout(timeout, tcp.writable())
                    .await
                    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connection given to hyper with the bytes already read from it, which
/// hyper reads first: a TCP stream, or a TLS one whose first head was read
/// to be checked.
pub(crate) struct Rewound<S = TcpStream> {
    io: S,
    read: Vec<u8>,
    at: usize,
}

impl<S> Rewound<S> {
    /// `io` after `read`.
    pub(crate) fn new(io: S, read: Vec<u8>) -> Self {
        Self { io, read, at: 0 }
    }

    /// `io` with nothing read from it.
    pub(crate) fn untouched(io: S) -> Self {
        Self::new(io, Vec::new())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewound<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.read.len() {
            let n = (this.read.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            if this.at == this.read.len() {
                this.read = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewound<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "/.well-known/mercure";

    #[test]
    fn connections_opening_with_a_post_of_the_hub_path_are_publishers() {
        assert!(is_publish(b"POST /.well-known/mercure HTTP/1.1\r\n", HUB));
        assert!(is_publish(b"POST /.well-known/mercure?x=1 HTTP/1.1", HUB));
        assert!(is_publish(b"POST /.well-known/mercure ", HUB));
        assert!(!is_publish(b"POST /.well-known/mercure", HUB));
        assert!(!is_publish(
            b"POST /.well-known/mercure/subscriptions ",
            HUB
        ));
        assert!(!is_publish(b"GET /.well-known/mercure HTTP/1.1", HUB));
        assert!(!is_publish(
            b"POST http://x/.well-known/mercure HTTP/1.1",
            HUB
        ));
    }

    #[test]
    fn a_plain_publish_head_is_parsed_with_its_body_length_and_headers() {
        let bytes = b"POST /.well-known/mercure?access_token=t HTTP/1.1\r\nHost: x\r\n\
            Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\
            Connection: keep-alive, Close\r\n\r\ntopic=a&data";
        let mut headers = Vec::new();
        let Parsed::Publish(head) = parse(bytes, HUB, &mut headers) else {
            panic!("not a publish")
        };
        assert_eq!(head.len, bytes.len() - 12);
        assert_eq!(head.body, 12);
        assert_eq!(head.query.as_deref(), Some("access_token=t"));
        let spans = Spans {
            buf: bytes,
            spans: &headers,
        };
        assert_eq!(
            spans.text(&header::CONTENT_TYPE),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(spans.text(&header::HOST), Some("x"));
        let empty =
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nCookie:\r\nX-Empty:  \r\n\r\n";
        let Parsed::Publish(_) = parse(empty, HUB, &mut headers) else {
            panic!("not a publish")
        };
        let spans = Spans {
            buf: empty,
            spans: &headers,
        };
        assert_eq!(spans.text(&header::COOKIE), Some(""));
        assert!(head.close);
        let Parsed::Publish(bodiless) = parse(
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\n\r\n",
            HUB,
            &mut headers,
        ) else {
            panic!("not a publish")
        };
        assert_eq!((bodiless.body, bodiless.close), (0, false));
    }

    #[test]
    fn incomplete_heads_wait_and_unusual_requests_go_to_hyper() {
        for partial in [
            &b""[..],
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\n",
            b"POST /.well-known/mer",
        ] {
            assert!(matches!(
                parse(partial, HUB, &mut Vec::new()),
                Parsed::Partial
            ));
        }
        let long = [
            &b"POST /.well-known/mercure HTTP/1.1\r\nCookie: "[..],
            &[b'a'; MAX_HEAD],
        ]
        .concat();
        for other in [
            &b"POST /.well-known/mercure HTTP/1.0\r\n\r\n"[..],
            b"GET /.well-known/mercure HTTP/1.1\r\n\r\n",
            b"POST /.well-known/mercure/x HTTP/1.1\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"POST /.well-known/mercure HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            &long,
        ] {
            assert!(
                matches!(parse(other, HUB, &mut Vec::new()), Parsed::Other),
                "{}",
                String::from_utf8_lossy(&other[..other.len().min(80)])
            );
        }
    }

    #[test]
    fn answers_carry_the_date_the_request_id_and_the_length() {
        let mut out = Vec::new();
        let id = RequestId::Kept(HeaderValue::from_static("abc"));
        write_published(&mut out, "urn:uuid:1", &id, false);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ndate: "
            )
        );
        assert!(text.ends_with("\r\nx-request-id: abc\r\ncontent-length: 10\r\n\r\nurn:uuid:1"));
        let mut out = Vec::new();
        write_published(&mut out, "u", &id, true);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("connection: close\r\n\r\nu")
        );
    }
}
