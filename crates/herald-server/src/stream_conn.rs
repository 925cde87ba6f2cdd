//! The hot path of a plain-HTTP/1.1 subscriber: its connection served by
//! hand instead of by hyper.
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
//! Anything else, or anything unusual (HTTP/1.0, a body, `Upgrade`, a head
//! that did not arrive in one segment, a header `http` refuses), is left
//! untouched on the socket for hyper, which serves it as before.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Buf;
use futures_util::StreamExt;
use http::{HeaderName, HeaderValue, Method, Request, Version, header};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower::ServiceExt;

/// Most bytes peeked for a request head. A subscription head is a request
/// line with its matchers, a token and a few headers.
const MAX_HEAD: usize = 8 * 1024;

/// Most headers in a request head handled here.
const MAX_HEADERS: usize = 64;

/// What to do with a new plain-HTTP connection.
pub(crate) enum Route {
    /// A subscription: served here, with a buffer as long as its head.
    Subscription(Box<Request<Body>>, Vec<u8>),
    /// Anything else: give the untouched socket to hyper.
    Hyper,
}

/// Peeks at the first request of `tcp` and decides who serves it. Nothing
/// is consumed from the socket; a subscription comes with a buffer as long
/// as its head, to consume it with.
pub(crate) async fn route(tcp: &TcpStream, hub_path: &str, peer: SocketAddr) -> Route {
    if tcp.readable().await.is_err() {
        return Route::Hyper;
    }
    let mut buf = vec![0u8; MAX_HEAD];
    let Ok(n) = tcp.peek(&mut buf).await else {
        return Route::Hyper;
    };
    match parse_head(&buf[..n], hub_path, peer) {
        Some((request, len)) => {
            buf.truncate(len);
            Route::Subscription(Box::new(request), buf)
        }
        None => Route::Hyper,
    }
}

/// The request if `bytes` starts with a whole HTTP/1.1 `GET` head for the
/// hub path without a body, with the head's length.
fn parse_head(bytes: &[u8], hub_path: &str, peer: SocketAddr) -> Option<(Request<Body>, usize)> {
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

/// Serves one subscription request on `tcp`, whose head (as long as `head`)
/// is still in the socket, then closes the connection.
pub(crate) async fn serve(
    mut tcp: TcpStream,
    router: Router,
    request: Request<Body>,
    mut head: Vec<u8>,
    write_timeout: Duration,
) {
    // Consume the head that was only peeked.
    if tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut head)
        .await
        .is_err()
    {
        return;
    }
    drop(head);
    // Boxed, and so freed once answered: the task of a long-lived stream is
    // as big as its largest state, and the router's future is large.
    let Ok(response) = Box::pin(router.oneshot(request)).await;
    let (parts, body) = response.into_parts();
    let streaming = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    // `parts` is consumed here: its header map must not stay in the
    // stream's state for the life of the connection.
    let mut out = response_head(parts);
    if !streaming {
        // A refusal: small, sent whole, and the connection closed after it.
        let Ok(bytes) = Box::pin(axum::body::to_bytes(body, MAX_HEAD * 4)).await else {
            return;
        };
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(bytes.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
        out.extend_from_slice(&bytes);
        let _ = write(&mut tcp, &mut out.as_slice(), write_timeout).await;
        return;
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    if write(&mut tcp, &mut out.as_slice(), write_timeout)
        .await
        .is_err()
    {
        return;
    }
    drop(out);
    let mut frames = body.into_data_stream();
    let mut probe = [0u8; 16];
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            // The client never sends again while its stream is open: the
            // socket turning readable means it closed (or broke the protocol).
            readable = tcp.readable() => {
                if readable.is_err() {
                    return;
                }
                match tcp.try_read(&mut probe) {
                    Ok(0) => return,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => return,
                }
            }
        };
        let Some(Ok(data)) = frame else { break };
        if data.is_empty() {
            continue;
        }
        let mut size = [0u8; 18];
        let mut chunk = chunk_size_line(data.len(), &mut size)
            .chain(data)
            .chain(&b"\r\n"[..]);
        if write(&mut tcp, &mut chunk, write_timeout).await.is_err() {
            return;
        }
    }
    let _ = write(&mut tcp, &mut &b"0\r\n\r\n"[..], write_timeout).await;
    let _ = tcp.shutdown().await;
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
    out.extend_from_slice(b"\r\ndate: ");
    out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Writes all of `buf`, vectored, failing if a write makes no progress for
/// `timeout` (a subscriber that stopped reading, with its window full).
async fn write(tcp: &mut TcpStream, buf: &mut impl Buf, timeout: Duration) -> std::io::Result<()> {
    use std::io::ErrorKind;
    while buf.has_remaining() {
        match try_write(tcp, buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(written) => buf.advance(written),
            // Only a full socket arms a timer: most writes need none, and a
            // timer per write is measurable work with thousands of streams.
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                match Box::pin(tokio::time::timeout(timeout, tcp.writable())).await {
                    Ok(ready) => ready?,
                    Err(_) => return Err(ErrorKind::TimedOut.into()),
                }
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// One non-blocking vectored write of `buf`'s first chunks.
fn try_write(tcp: &TcpStream, buf: &impl Buf) -> std::io::Result<usize> {
    let mut slices = [std::io::IoSlice::new(&[]); 4];
    let count = buf.chunks_vectored(&mut slices);
    tcp.try_write_vectored(&slices[..count])
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
