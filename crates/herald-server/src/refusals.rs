//! hyper's own refusals of a request head, written as problem documents.
//!
//! hyper answers a head it cannot read with a bare status and no body: 400
//! when it is not HTTP, 431 when it does not fit the read buffer or has
//! more header lines than hyper makes room for, 414 for a target too long.
//! [`crate::malformed`] catches the first head of a connection before
//! hyper sees it, but a later head on a kept-alive connection, and a head
//! too large to peek at, reach hyper. [`ExplainedRefusals`] stands between
//! hyper and the connection: it keeps the start of what was read since
//! hyper last wrote a response head (on a connection that does not
//! pipeline, the next request's head), and when hyper writes one of its
//! bare refusals, it writes in its place a problem document saying what is
//! wrong (`crate::malformed::why_refused`). hyper also closes a connection
//! whose head did not arrive whole within its header read timeout without
//! a word; dropped with such a head begun, the wrapper answers it `408`, as
//! the connections herald serves by hand do.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use crate::RequestIds;
use crate::publish_conn::{RequestId, end_head};

/// The heads of hyper's refusals, up to their `Date`: a refusal has no
/// body and closes the connection, where every answer of herald's own to
/// these statuses carries a problem document.
const REFUSALS: [(&[u8], StatusCode); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n",
        StatusCode::BAD_REQUEST,
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    ),
    (
        b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n",
        StatusCode::URI_TOO_LONG,
    ),
];

/// What [`ExplainedRefusals`] knows of a connection's request heads.
#[derive(Clone)]
pub(crate) struct HeadRules {
    /// The most a head may have (hyper's read buffer).
    pub(crate) max: usize,
    /// How long a head may take to arrive (hyper's header read timeout).
    pub(crate) timeout: Duration,
    /// Where the documents' request ids are drawn from.
    pub(crate) ids: RequestIds,
    /// Cancelled when the hub shuts down: a head cut short by a shutdown
    /// was not late.
    pub(crate) shutdown: Option<CancellationToken>,
}

/// A connection served by hyper, whose bare refusals of request heads are
/// written as problem documents.
pub(crate) struct ExplainedRefusals<S: AsyncWrite + Unpin> {
    io: S,
    /// The start of what was read since the last response head: the next
    /// request's head, once it is whole or too long.
    head: Vec<u8>,
    /// Whether `head` still grows: not once it holds a head's end or
    /// `rules.max` bytes (all hyper reads of a head), nor on HTTP/2, nor
    /// once the connection's last answer is written.
    reading_head: bool,
    /// A problem document being written in place of a refusal.
    replacing: Option<Box<Replacement>>,
    rules: HeadRules,
}

/// A problem document, written in place of `stands_for` bytes of hyper's.
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl<S: AsyncWrite + Unpin> ExplainedRefusals<S> {
    /// `io`, whose request heads follow `rules`.
    pub(crate) fn new(io: S, rules: HeadRules) -> Self {
        Self {
            io,
            head: Vec::new(),
            reading_head: true,
            replacing: None,
            rules,
        }
    }

    /// Takes note of `written`, the start of what hyper writes: a response
    /// head starts a new request's, and a refusal is replaced.
    fn on_write(&mut self, written: &[u8]) {
        // An interim answer (`100 Continue`) is followed by the request's
        // body, not by a new head: nothing starts.
        if !written.starts_with(b"HTTP/1.") || written.get(9) == Some(&b'1') {
            return;
        }
        let refusal = REFUSALS
            .iter()
            .find(|(start, _)| written.starts_with(start))
            .and_then(|&(_, status)| {
                memchr::memmem::find(written, b"\r\n\r\n").map(|end| (status, end + 4))
            });
        match refusal {
            Some((status, stands_for)) => {
                let why =
                    crate::malformed::why_refused(status.as_u16(), &self.head, self.rules.max);
                tracing::debug!(reason = why, %status, "request head refused");
                self.replacing = Some(Box::new(Replacement {
                    bytes: self.document(status, &why),
                    written: 0,
                    stands_for,
                }));
                // The connection's last answer: nothing is read after it.
                self.head = Vec::new();
                self.reading_head = false;
            }
            None => {
                // A client that pipelines sent the next head with this
                // one: its start is what the next refusal is about.
                let next = crate::malformed::after_bodiless_head(&self.head)
                    .map(|at| self.head[at..].to_vec())
                    .unwrap_or_default();
                self.reading_head = memchr::memmem::find(&next, b"\r\n\r\n").is_none();
                // Freed otherwise: a subscriber's connection lives as long
                // as its stream, which the head kept would weigh on.
                self.head = next;
            }
        }
    }

    /// The answer `status` with a problem document saying `why`, closing
    /// the connection as hyper's refusal does.
    fn document(&self, status: StatusCode, why: &str) -> Vec<u8> {
        let body = crate::error::problem_json(status, why);
        let mut response = http::Response::new(());
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let (parts, ()) = response.into_parts();
        let mut out = Vec::with_capacity(256 + body.len());
        crate::stream_conn::status_and_headers(&mut out, &parts);
        end_head(
            &mut out,
            &RequestId::Drawn(self.rules.ids.next()),
            body.len(),
            true,
        );
        out.extend_from_slice(body.as_bytes());
        out
    }
}

impl<S: AsyncWrite + Unpin> ExplainedRefusals<S> {
    /// Writes what is left of the replacement under way, if any.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(replacement) = &mut self.replacing else {
            return Poll::Ready(Ok(()));
        };
        while replacement.written < replacement.bytes.len() {
            let rest = &replacement.bytes[replacement.written..];
            match ready!(Pin::new(&mut self.io).poll_write(cx, rest))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => replacement.written += n,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes the replacement under way, if any: ready with the count of
    /// hyper's bytes it stands for once it is written, which is hyper's
    /// write done.
    fn poll_replaced(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        ready!(self.poll_replacement(cx))?;
        Poll::Ready(Ok(self.replacing.take().map(|r| r.stands_for)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ExplainedRefusals<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if this.reading_head {
            let read = &buf.filled()[before..];
            if this.head.is_empty() && read.starts_with(b"PRI * HTTP/2.0") {
                // HTTP/2: hyper's refusals are stream resets there.
                this.reading_head = false;
                return Poll::Ready(Ok(()));
            }
            let room = this.rules.max - this.head.len();
            // From 3 bytes back: a head's end may straddle two reads.
            let from = this.head.len().saturating_sub(3);
            this.head.extend_from_slice(&read[..read.len().min(room)]);
            if this.head.len() == this.rules.max
                || memchr::memmem::find(&this.head[from..], b"\r\n\r\n").is_some()
            {
                this.reading_head = false;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ExplainedRefusals<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            this.on_write(buf);
        }
        if let Some(stands_for) = ready!(this.poll_replaced(cx))? {
            return Poll::Ready(Ok(stands_for));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|buf| !buf.is_empty());
        if let (None, Some(first)) = (&this.replacing, first) {
            this.on_write(first);
        }
        if let Some(stands_for) = ready!(this.poll_replaced(cx))? {
            return Poll::Ready(Ok(stands_for));
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<S: AsyncWrite + Unpin> Drop for ExplainedRefusals<S> {
    /// Answers a head begun and never finished `408`: hyper drops the
    /// connection without a word when its header read timeout passes (or
    /// the client stops sending). Best effort: what the socket does not
    /// take at once is not waited for.
    fn drop(&mut self) {
        let shut_down = self
            .rules
            .shutdown
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled);
        if !self.reading_head || self.head.is_empty() || self.replacing.is_some() || shut_down {
            return;
        }
        let why = format!(
            "the request head did not arrive within {:?}",
            self.rules.timeout
        );
        tracing::debug!(reason = why, "request head cut short");
        let document = self.document(StatusCode::REQUEST_TIMEOUT, &why);
        let mut cx = Context::from_waker(Waker::noop());
        let mut io = Pin::new(&mut self.io);
        if let Poll::Ready(Ok(n)) = io.as_mut().poll_write(&mut cx, &document)
            && n == document.len()
        {
            let _ = io.as_mut().poll_flush(&mut cx);
            let _ = io.poll_shutdown(&mut cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn rules() -> HeadRules {
        HeadRules {
            max: 64,
            timeout: Duration::from_secs(10),
            ids: RequestIds::default(),
            shutdown: None,
        }
    }

    const REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\
        content-length: 0\r\ndate: Mon, 07 Dec 2026 14:22:38 GMT\r\n\r\n";

    /// Writes `written` through the wrapper after it read `read`, with room
    /// for a few bytes at a time in the pipe: what the peer gets.
    async fn through(read: &[u8], written: &[u8]) -> String {
        let (near, mut far) = tokio::io::duplex(16);
        let mut wrapped = ExplainedRefusals::new(near, rules());
        let sent = read.to_vec();
        let feed = tokio::spawn(async move {
            far.write_all(&sent).await.unwrap();
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut head = vec![0; read.len()];
        wrapped.read_exact(&mut head).await.unwrap();
        wrapped.write_all(written).await.unwrap();
        wrapped.shutdown().await.unwrap();
        drop(wrapped);
        String::from_utf8(feed.await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_refusal_is_replaced_whole_through_short_writes() {
        let got = through(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", REFUSAL).await;
        let (head, body) = got.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
        assert!(
            head.contains("content-type: application/problem+json"),
            "{got}"
        );
        assert!(head.contains("connection: close"), "{got}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{got}"
        );
        assert!(body.contains("a header line is not `Name: value`"), "{got}");
    }

    #[tokio::test]
    async fn answers_of_herald_s_own_pass_untouched() {
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n\
            content-length: 2\r\n\r\n{}";
        let got = through(b"GET / HTTP/1.1\r\n\r\n", own).await;
        assert_eq!(got.as_bytes(), own);
    }

    /// The client's side sends `sent`, read through the wrapper, which then
    /// writes `answer`: both sides, for what follows.
    async fn exchange(
        sent: &[u8],
        answer: &[u8],
    ) -> (
        ExplainedRefusals<tokio::io::DuplexStream>,
        tokio::io::DuplexStream,
    ) {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut wrapped = ExplainedRefusals::new(near, rules());
        far.write_all(sent).await.unwrap();
        let mut read = vec![0; sent.len()];
        wrapped.read_exact(&mut read).await.unwrap();
        wrapped.write_all(answer).await.unwrap();
        (wrapped, far)
    }

    /// Has the wrapper write hyper's refusal, and asserts that the client's
    /// side gets a document saying `words` in its place.
    async fn refused_saying(
        mut wrapped: ExplainedRefusals<tokio::io::DuplexStream>,
        mut far: tokio::io::DuplexStream,
        words: &str,
    ) {
        wrapped.write_all(REFUSAL).await.unwrap();
        drop(wrapped);
        let mut got = String::new();
        far.read_to_string(&mut got).await.unwrap();
        assert!(got.contains(words), "{got}");
    }

    #[tokio::test]
    async fn a_body_sent_after_100_continue_is_not_kept_as_a_head() {
        let head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
        let (mut wrapped, mut far) = exchange(head, b"HTTP/1.1 100 Continue\r\n\r\n").await;
        far.write_all(b"body bytes").await.unwrap();
        let mut body = [0; 10];
        wrapped.read_exact(&mut body).await.unwrap();
        assert_eq!(wrapped.head, head, "the head read stays the one kept");
    }

    #[tokio::test]
    async fn a_pipelined_head_read_with_the_one_before_is_explained() {
        let sent = b"GET / HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n";
        let (wrapped, far) = exchange(sent, b"HTTP/1.1 204 No Content\r\n\r\n").await;
        refused_saying(wrapped, far, "the request line is not `METHOD TARGET").await;
    }

    #[tokio::test]
    async fn the_head_read_after_an_answer_is_the_one_explained() {
        let (mut wrapped, mut far) = exchange(
            b"GET / HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        )
        .await;
        far.write_all(b"GARBAGE\r\n\r\n").await.unwrap();
        let mut second = [0; 11];
        wrapped.read_exact(&mut second).await.unwrap();
        refused_saying(wrapped, far, "the request line is not `METHOD TARGET").await;
    }
}
