//! HTTP/2 for the load generator, through the `h2` crate: a connection's
//! handshake, and a stream's body read into the bytes a subscriber scans, as
//! its HTTP/1.1 subscribers read a socket.

use std::io;

use bytes::Bytes;
use h2::RecvStream;
use h2::client::SendRequest;

use super::dial::Stream;

/// The URI and headers of an HTTP/2 request to `url`: `fields` with a value,
/// and `Authorization: Bearer <token>` when there is a `token`; or why they
/// cannot be made.
pub fn request_parts(
    url: &url::Url,
    fields: &[(http::HeaderName, &str)],
    token: Option<&str>,
) -> Result<(http::Uri, http::HeaderMap), String> {
    let uri = http::Uri::try_from(url.as_str()).map_err(|e| format!("the URL '{url}': {e}"))?;
    let bearer = token.map(|token| format!("Bearer {token}"));
    let authorization = bearer
        .as_deref()
        .map(|bearer| (http::header::AUTHORIZATION, bearer));
    let mut headers = http::HeaderMap::new();
    for (name, value) in fields.iter().cloned().chain(authorization) {
        let value =
            http::HeaderValue::try_from(value).map_err(|_| format!("an invalid {name} header"))?;
        headers.insert(name, value);
    }
    Ok((uri, headers))
}

/// A stream's receive window, and the connection's: what Chromium grants
/// (6 MiB and 15 MiB), so that flow control holds a busy subscriber back no
/// more than it would a browser's `EventSource`.
const STREAM_WINDOW: u32 = 6 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 15 * 1024 * 1024;

/// Speaks HTTP/2 over `stream`: sends the preface and settings and leaves the
/// connection to a task of its own, which ends once every handle on it is
/// dropped. A hub that does not speak HTTP/2 shows in the first request's
/// answer, not here. (Driving the connection from the subscriber's own task
/// instead, one task woken per read rather than two, saved about 8% of the
/// generator's CPU in a burst and cost as much more while connecting: not
/// worth its code.)
pub async fn handshake(stream: Stream) -> Result<SendRequest<Bytes>, h2::Error> {
    let (sender, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .enable_push(false)
        .handshake(stream)
        .await?;
    tokio::spawn(async move {
        // Its error is the requests' too: they report it.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One HTTP/2 response body, read as a byte stream.
#[derive(Debug)]
pub struct BodyReader {
    body: RecvStream,
    /// Bytes of the last DATA frame that did not fit the caller's buffer.
    pending: Bytes,
    /// Keeps the connection's request side open for as long as the body is
    /// read (the connection task ends when every handle is gone).
    _sender: SendRequest<Bytes>,
}

impl BodyReader {
    /// Reads `body`, keeping `sender`'s connection open meanwhile.
    pub fn new(body: RecvStream, sender: SendRequest<Bytes>) -> Self {
        Self {
            body,
            pending: Bytes::new(),
            _sender: sender,
        }
    }

    /// Copies the next bytes of the body into `buf`, as a socket read does:
    /// `Ok(0)` once the hub has ended the stream. Cancel-safe: bytes are taken
    /// from the stream only in the poll that copies them.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An empty DATA frame is not the end: only the stream's end is.
        while self.pending.is_empty() {
            match self.body.data().await {
                None => return Ok(0),
                Some(Err(error)) => return Err(io_error(error)),
                Some(Ok(data)) => {
                    // The window is given back at once: what is read here
                    // is as good as consumed.
                    let _ = self.body.flow_control().release_capacity(data.len());
                    self.pending = data;
                }
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// An `h2` error as an I/O error, keeping its words (a reset stream's reason,
/// a protocol error's).
fn io_error(error: h2::Error) -> io::Error {
    if error.is_io() {
        return error
            .into_io()
            .unwrap_or_else(|| io::Error::other("HTTP/2 i/o error"));
    }
    io::Error::other(format!("HTTP/2: {error}"))
}
