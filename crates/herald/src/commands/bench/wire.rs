//! The bytes the load generator reads, without I/O: the HTTP/1.1 response
//! head, a minimal de-chunker for `Transfer-Encoding: chunked`, the frame
//! scanner that finds `\n\n` frame ends (`\r\n\r\n` on a stream whose
//! first line ends in CRLF), the bench payload
//! (`seq=<n> t=<unix nanos> s=<stream> <padding>`) that carries what the
//! accounting needs, and where a publish's answer ends ([`Answer`]).
//!
//! Everything here works on one buffer per connection ([`BodyBuffer`]): raw
//! bytes are read into its tail, de-chunked in place towards its head, and
//! complete frames are handed out as slices of it. Nothing is parsed beyond
//! the frame ends and the `seq=`/`t=`/`s=` fields.

use std::sync::LazyLock;

use memchr::memmem::Finder;

/// Where a frame ends: the blank line of an SSE event.
static FRAME_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
/// Where a frame ends on a stream whose lines end in CRLF, as SSE allows.
static CRLF_FRAME_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\r\n\r\n"));
/// Where a bench payload starts inside a frame.
static SEQ: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"seq="));
/// The end of a response head.
static HEAD_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\r\n\r\n"));

/// Why a response or a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The status line or a header is not HTTP/1.x.
    #[error("malformed response head: {0}")]
    Head(String),
    /// A chunk size line is not hexadecimal, or a chunk is not followed by CRLF.
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
    /// A frame (or a head) grew beyond the buffer's limit without ending.
    #[error("no frame end within {0} bytes")]
    TooLong(usize),
}

/// The parts of a response head the bench needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Whether the body is chunked.
    pub chunked: bool,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The `Content-Length`, if any.
    pub content_length: Option<u64>,
    /// Whether the hub closes the connection after this response
    /// (`Connection: close`, or HTTP/1.0 without `Connection: keep-alive`).
    pub close: bool,
    /// The head's length in bytes, blank line included.
    pub len: usize,
}

/// Parses a response head at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, WireError> {
    let Some(end) = HEAD_END.find(buf) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| WireError::Head("the head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(WireError::Head(format!("status line '{status_line}'")));
    }
    let status = parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| WireError::Head(format!("status line '{status_line}'")))?;
    let mut chunked = false;
    let mut content_type = None;
    let mut content_length = None;
    let mut connection = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| WireError::Head(format!("header line '{line}'")))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| WireError::Head(format!("header line '{line}'")))?,
            );
        } else if name.eq_ignore_ascii_case("connection") {
            connection = Some(value.to_ascii_lowercase());
        }
    }
    let close = match connection.as_deref() {
        Some(value) if value.contains("close") => true,
        Some(value) if value.contains("keep-alive") => false,
        _ => version == "HTTP/1.0",
    };
    Ok(Some(Head {
        status,
        chunked,
        content_type,
        content_length,
        close,
        len: end + 4,
    }))
}

/// Where the answer to a request ends, read from bytes as they arrive: the
/// publishers' side of a kept-alive HTTP/1.1 connection.
#[derive(Debug, Default)]
pub struct Answer {
    head: Option<Head>,
    /// For a chunked body: the de-chunker and its raw and output positions.
    chunks: Option<(Dechunker, usize, usize)>,
}

/// A whole answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The status code.
    pub status: u16,
    /// Whether the connection can carry the next request.
    pub reusable: bool,
}

impl Answer {
    /// The answer's head as a header map, for describing a refusal: its
    /// `Content-Type`, the one header that says how to read the body.
    pub fn headers(&self) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = self
            .head
            .as_ref()
            .and_then(|head| head.content_type.as_deref())
            .and_then(|value| http::HeaderValue::from_str(value).ok())
        {
            headers.insert(http::header::CONTENT_TYPE, value);
        }
        headers
    }

    /// The body of the answer read into `buf` (decoded, when chunked): empty
    /// before a whole head.
    pub fn body<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        let Some(head) = &self.head else {
            return &[];
        };
        let body = buf.get(head.len..).unwrap_or_default();
        let end = match (&self.chunks, head.content_length) {
            (Some((_, _, out)), _) => *out,
            (None, Some(length)) => usize::try_from(length).unwrap_or(usize::MAX),
            (None, None) => body.len(),
        };
        &body[..end.min(body.len())]
    }

    /// Looks at everything read so far (`buf`, which a chunked body is
    /// decoded in place in), `eof` once the hub closed: `Ok(None)` while the
    /// answer is incomplete.
    pub fn read(&mut self, buf: &mut [u8], eof: bool) -> Result<Option<Answered>, WireError> {
        if self.head.is_none() {
            self.head = parse_head(buf)?;
        }
        let Some(head) = &self.head else {
            return if eof {
                Err(WireError::Head("the hub closed before a whole head".into()))
            } else {
                Ok(None)
            };
        };
        let answered = |reusable: bool| {
            Ok(Some(Answered {
                status: head.status,
                reusable: reusable && !head.close,
            }))
        };
        let body = &buf[head.len..];
        if matches!(head.status, 100..=199 | 204 | 304) {
            return answered(body.is_empty());
        }
        if head.chunked {
            let (dechunker, raw, out) = self.chunks.get_or_insert((Dechunker::default(), 0, 0));
            let body = &mut buf[head.len..];
            dechunker.decode(body, raw, body.len(), out)?;
            if dechunker.is_done() {
                return answered(true);
            }
        } else if let Some(length) = head.content_length {
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if body.len() >= length {
                // Bytes past the answer were never asked for.
                return answered(body.len() == length);
            }
        } else if eof {
            // Delimited by the end of the connection.
            return answered(false);
        }
        if eof {
            return Err(WireError::Head(
                "the hub closed before the end of its answer".into(),
            ));
        }
        Ok(None)
    }
}

/// Where the de-chunker is inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hexadecimal size; `ext` once a `;` extension started.
    Size { value: u64, digits: u8, ext: bool },
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data: expecting CR LF (`lf` once CR was seen).
    DataEnd { lf: bool },
    /// After the last (zero) chunk: skipping trailer lines; `blank` while the
    /// current line is still empty.
    Trailer { blank: bool },
    /// The body ended.
    Done,
}

/// A minimal `Transfer-Encoding: chunked` decoder that moves data bytes
/// towards the front of the same buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dechunker {
    state: Chunk,
}

impl Default for Dechunker {
    fn default() -> Self {
        Self {
            state: Chunk::Size {
                value: 0,
                digits: 0,
                ext: false,
            },
        }
    }
}

impl Dechunker {
    /// Whether the last chunk was read.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decodes the raw bytes `buf[*raw..raw_end]`, appending the body bytes at
    /// `buf[*out..]` (`*out <= *raw` always holds, so the copy moves bytes
    /// leftwards inside the one buffer). Consumes every raw byte.
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        raw: &mut usize,
        raw_end: usize,
        out: &mut usize,
    ) -> Result<(), WireError> {
        while *raw < raw_end {
            match &mut self.state {
                Chunk::Data(left) => {
                    let take = (*left).min((raw_end - *raw) as u64) as usize;
                    buf.copy_within(*raw..*raw + take, *out);
                    *raw += take;
                    *out += take;
                    *left -= take as u64;
                    if *left == 0 {
                        self.state = Chunk::DataEnd { lf: false };
                    }
                    continue;
                }
                Chunk::Done => {
                    // Bytes after the end of the body: ignore them.
                    *raw = raw_end;
                    continue;
                }
                _ => {}
            }
            let byte = buf[*raw];
            *raw += 1;
            self.state = match self.state {
                Chunk::Size { value, digits, ext } => match byte {
                    b'\n' if digits == 0 => return Err(WireError::Chunked("an empty chunk size")),
                    b'\n' if value == 0 => Chunk::Trailer { blank: true },
                    b'\n' => Chunk::Data(value),
                    b'\r' => Chunk::Size { value, digits, ext },
                    _ if ext => Chunk::Size { value, digits, ext },
                    b';' | b' ' | b'\t' => Chunk::Size {
                        value,
                        digits,
                        ext: true,
                    },
                    _ => {
                        let digit = (byte as char)
                            .to_digit(16)
                            .ok_or(WireError::Chunked("a chunk size is not hexadecimal"))?;
                        if digits >= 15 {
                            return Err(WireError::Chunked("a chunk size is too large"));
                        }
                        Chunk::Size {
                            value: value * 16 + u64::from(digit),
                            digits: digits + 1,
                            ext,
                        }
                    }
                },
                Chunk::DataEnd { lf: _ } => match byte {
                    b'\r' => Chunk::DataEnd { lf: true },
                    b'\n' => Chunk::Size {
                        value: 0,
                        digits: 0,
                        ext: false,
                    },
                    _ => return Err(WireError::Chunked("a chunk is longer than its size")),
                },
                Chunk::Trailer { blank } => match byte {
                    b'\n' if blank => Chunk::Done,
                    b'\n' => Chunk::Trailer { blank: true },
                    b'\r' => Chunk::Trailer { blank },
                    _ => Chunk::Trailer { blank: false },
                },
                Chunk::Data(_) | Chunk::Done => unreachable!("handled above"),
            };
        }
        Ok(())
    }
}

/// One connection's buffer: raw bytes are read into its tail, body bytes sit
/// at its head, and complete frames are taken from the body.
///
/// Layout: `[start..body)` is body not yet taken as frames, `[raw..end)` raw
/// bytes not yet de-chunked (empty when the body is not chunked), with
/// `start <= body <= raw <= end`.
#[derive(Debug)]
pub struct BodyBuffer {
    buf: Vec<u8>,
    start: usize,
    body: usize,
    raw: usize,
    end: usize,
    chunked: Option<Dechunker>,
    max: usize,
    /// The last read filled all the spare room: a busy connection, worth a
    /// larger buffer (up to [`BodyBuffer::BUSY`]) so each read takes more.
    busy: bool,
    /// The size of the spare room last handed out.
    offered: usize,
    /// Reads that brought bytes.
    reads: u64,
    /// Whether the stream's lines end in CRLF, once its first line is seen:
    /// a hub ends every line alike, so one look per connection is enough.
    crlf: Option<bool>,
}

impl BodyBuffer {
    /// A buffer of `capacity` bytes that may grow up to `max` for a long frame.
    pub fn new(capacity: usize, max: usize) -> Self {
        Self {
            buf: vec![0; capacity],
            start: 0,
            body: 0,
            raw: 0,
            end: 0,
            chunked: None,
            max: max.max(capacity),
            busy: false,
            offered: 0,
            reads: 0,
            crlf: None,
        }
    }

    /// How many reads brought bytes into this buffer.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// How far a busy connection's buffer grows on its own.
    pub const BUSY: usize = 64 * 1024;

    /// The free tail to read raw bytes into; makes room first (compacting,
    /// then growing up to the limit).
    pub fn spare(&mut self) -> Result<&mut [u8], WireError> {
        const MIN_READ: usize = 1024;
        if self.busy && self.buf.len() < Self::BUSY.min(self.max) {
            self.busy = false;
            self.compact();
            let grown = (self.buf.len() * 2).min(Self::BUSY.min(self.max));
            self.buf.resize(grown, 0);
        }
        if self.buf.len() - self.end < MIN_READ {
            self.compact();
            if self.buf.len() - self.end < MIN_READ {
                if self.buf.len() >= self.max {
                    return Err(WireError::TooLong(self.max));
                }
                let grown = (self.buf.len() * 2).min(self.max);
                self.buf.resize(grown, 0);
            }
        }
        self.offered = self.buf.len() - self.end;
        Ok(&mut self.buf[self.end..])
    }

    /// Moves the unread bytes to the front.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let body_len = self.body - self.start;
        self.buf.copy_within(self.start..self.body, 0);
        let raw_len = self.end - self.raw;
        self.buf.copy_within(self.raw..self.end, body_len);
        self.start = 0;
        self.body = body_len;
        self.raw = body_len;
        self.end = body_len + raw_len;
    }

    /// Records that `n` bytes were read into [`BodyBuffer::spare`].
    pub fn filled(&mut self, n: usize) -> Result<(), WireError> {
        self.busy = n > 0 && n >= self.offered;
        self.reads += u64::from(n > 0);
        self.end += n;
        match &mut self.chunked {
            Some(dechunker) => {
                dechunker.decode(&mut self.buf, &mut self.raw, self.end, &mut self.body)?;
                // Raw bytes are all consumed: the free space starts after the body.
                self.raw = self.body;
                self.end = self.body;
            }
            None => {
                self.body = self.end;
                self.raw = self.end;
            }
        }
        Ok(())
    }

    /// The response head, once complete; the bytes after it become the body.
    pub fn take_head(&mut self) -> Result<Option<Head>, WireError> {
        let Some(head) = parse_head(&self.buf[..self.end])? else {
            if self.end >= self.max {
                return Err(WireError::TooLong(self.max));
            }
            return Ok(None);
        };
        self.start = head.len;
        self.body = head.len;
        self.raw = head.len;
        if head.chunked {
            self.chunked = Some(Dechunker::default());
        }
        self.filled(0)?;
        Ok(Some(head))
    }

    /// Whether a chunked body has ended with its last chunk.
    pub fn body_ended(&self) -> bool {
        self.chunked.is_some_and(|d| d.is_done())
    }

    /// The next complete frame (without its blank line), if one is buffered.
    pub fn next_frame(&mut self) -> Option<&[u8]> {
        let pending = &self.buf[self.start..self.body];
        let crlf = match self.crlf {
            Some(crlf) => crlf,
            None => {
                let lf = memchr::memchr(b'\n', pending)?;
                let crlf = lf > 0 && pending[lf - 1] == b'\r';
                self.crlf = Some(crlf);
                crlf
            }
        };
        let (end, len) = if crlf {
            (&*CRLF_FRAME_END, 4)
        } else {
            (&*FRAME_END, 2)
        };
        let at = end.find(pending)?;
        let frame = self.start..self.start + at;
        self.start += at + len;
        Some(&self.buf[frame])
    }

    /// Resets the positions when nothing is pending, so reads start at the front.
    pub fn rewind_if_empty(&mut self) {
        if self.start == self.body && self.raw == self.end {
            self.start = 0;
            self.body = 0;
            self.raw = 0;
            self.end = 0;
        }
    }
}

/// What a bench payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The sequence number within its stream.
    pub seq: u64,
    /// When the publisher sent it, in nanoseconds since the Unix epoch.
    pub sent_at: u64,
    /// The stream (one publisher on one topic) it belongs to.
    pub stream: u32,
}

/// Finds the bench payload in a frame: `None` for frames without one
/// (keep-alive comments, `retry:` hints, foreign events).
pub fn parse_mark(frame: &[u8]) -> Option<Mark> {
    let at = SEQ.find(frame)? + 4;
    let (seq, rest) = digits(&frame[at..])?;
    let rest = rest.strip_prefix(b" t=")?;
    let (sent_at, rest) = digits(rest)?;
    let stream = match rest.strip_prefix(b" s=") {
        Some(rest) => u32::try_from(digits(rest)?.0).ok()?,
        None => 0,
    };
    Some(Mark {
        seq,
        sent_at,
        stream,
    })
}

/// A decimal number at the start of `bytes`, and what follows it.
fn digits(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 || len > 19 {
        return None;
    }
    let value = bytes[..len]
        .iter()
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    Some((value, &bytes[len..]))
}

/// The data of a bench event: its mark, then `x` padding up to `size` bytes.
pub fn payload(mark: Mark, size: usize) -> String {
    let mut data = format!("seq={} t={} s={}", mark.seq, mark.sent_at, mark.stream);
    if data.len() + 1 < size {
        data.push(' ');
        let pad = size - data.len();
        data.extend(std::iter::repeat_n('x', pad));
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    /// Feeds `bytes` to a buffer in reads of `step` bytes; returns the frames.
    fn frames(head: &[u8], bytes: &[u8], step: usize, capacity: usize) -> Vec<Vec<u8>> {
        let mut wire = head.to_vec();
        wire.extend_from_slice(bytes);
        let mut buffer = BodyBuffer::new(capacity, 1 << 20);
        let mut frames = Vec::new();
        let mut head_seen = false;
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let spare = buffer.spare().unwrap();
            let n = step.min(spare.len()).min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            buffer.filled(n).unwrap();
            if !head_seen {
                match buffer.take_head().unwrap() {
                    Some(_) => head_seen = true,
                    None => continue,
                }
            }
            while let Some(frame) = buffer.next_frame() {
                frames.push(frame.to_vec());
            }
            buffer.rewind_if_empty();
        }
        assert!(head_seen);
        frames
    }

    const CHUNKED_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    const PLAIN_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";

    #[test]
    fn heads_are_parsed_once_complete() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        let head = parse_head(CHUNKED_HEAD).unwrap().unwrap();
        assert_eq!(
            head,
            Head {
                status: 200,
                chunked: true,
                content_type: Some("text/event-stream".into()),
                content_length: None,
                close: false,
                len: CHUNKED_HEAD.len(),
            }
        );
        let head = parse_head(b"HTTP/1.0 429 Too Many\r\n\r\nbody")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.chunked, head.len), (429, false, 25));
        assert!(head.close, "HTTP/1.0 closes unless told otherwise");
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n").is_err());
    }

    /// Feeds `bytes` to an [`Answer`] `step` bytes at a time, then the end of
    /// the connection if it is still incomplete.
    fn answer(bytes: &[u8], step: usize) -> Result<Answered, WireError> {
        let mut answer = Answer::default();
        let mut buf = Vec::new();
        for part in bytes.chunks(step) {
            buf.extend_from_slice(part);
            if let Some(done) = answer.read(&mut buf, false)? {
                return Ok(done);
            }
        }
        answer.read(&mut buf, true)?.ok_or(WireError::TooLong(0))
    }

    #[test]
    fn answers_end_where_their_length_chunks_or_connection_say() {
        let kept = Answered {
            status: 200,
            reusable: true,
        };
        let closed = Answered {
            status: 200,
            reusable: false,
        };
        let cases: [(&[u8], Result<Answered, ()>); 8] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nurn:uuid:1234", Ok(kept)),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nurn:\r\n3\r\nabc\r\n0\r\n\r\n",
                Ok(kept),
            ),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nid", Ok(closed)),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", Ok(closed)),
            (b"HTTP/1.1 204 No Content\r\n\r\n", Ok(Answered { status: 204, reusable: true })),
            (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", Ok(Answered { status: 401, reusable: true })),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ncut short", Err(())),
            (b"HTTP/1.1 200 OK\r\nContent-Len", Err(())),
        ];
        for (bytes, expected) in cases {
            for step in [1, 7, bytes.len()] {
                assert_eq!(
                    answer(bytes, step).map_err(drop),
                    expected,
                    "{} in steps of {step}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }

    #[test]
    fn an_answer_s_body_is_its_length_its_chunks_or_the_rest() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"HTTP/1.1 401 No\r\nContent-Length: 4\r\n\r\nwhy!extra", b"why!"),
            (
                b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nwhy\r\n1\r\n!\r\n0\r\n\r\n",
                b"why!",
            ),
            (b"HTTP/1.1 401 No\r\nConnection: close\r\n\r\nwhy!", b"why!"),
            (b"HTTP/1.1 401 No\r\nContent-Len", b""),
        ];
        for (bytes, body) in cases {
            let mut answer = Answer::default();
            let mut buf = bytes.to_vec();
            let _ = answer.read(&mut buf, true);
            assert_eq!(
                answer.body(&buf),
                body,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_refused_publish_is_described_in_the_hub_s_words() {
        let body = r#"{"title":"Unauthorized","detail":"publishing requires a token"}"#;
        let mut buf = format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/problem+json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        let mut answer = Answer::default();
        let answered = answer
            .read(&mut buf, false)
            .unwrap()
            .expect("a whole answer");
        assert_eq!(answered.status, 401);
        assert_eq!(
            herald_client::describe_refusal(&answer.headers(), answer.body(&buf)),
            "Unauthorized: publishing requires a token"
        );
    }

    #[test]
    fn frames_come_out_whole_whatever_the_reads_and_chunks() {
        let events: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("id: {i}\ndata: seq={i} t=5 s=0 {}", "x".repeat(i * 7)).into_bytes())
            .collect();
        let mut body = b":\n\n".to_vec();
        for event in &events {
            body.extend_from_slice(event);
            body.extend_from_slice(b"\n\n");
        }
        let mut expected = vec![b":".to_vec()];
        expected.extend(events.iter().cloned());
        // Chunks that split frames (and the blank line) anywhere.
        let parts: Vec<&[u8]> = body.chunks(13).collect();
        let chunked_body = chunked(&parts);
        for step in [1, 2, 3, 7, 64, 1000, 100_000] {
            for capacity in [1024, 4096] {
                assert_eq!(
                    frames(CHUNKED_HEAD, &chunked_body, step, capacity),
                    expected,
                    "chunked, step {step}"
                );
                assert_eq!(
                    frames(PLAIN_HEAD, &body, step, capacity),
                    expected,
                    "plain, step {step}"
                );
            }
        }
    }

    #[test]
    fn frames_of_a_stream_whose_lines_end_in_crlf_come_out_whole() {
        let events: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("id: {i}\r\ndata: seq={i} t=5 s=0").into_bytes())
            .collect();
        let mut body = b":\r\n\r\n".to_vec();
        for event in &events {
            body.extend_from_slice(event);
            body.extend_from_slice(b"\r\n\r\n");
        }
        let mut expected = vec![b":".to_vec()];
        expected.extend(events.iter().cloned());
        for step in [1, 3, 1000] {
            let got = frames(PLAIN_HEAD, &body, step, 1024);
            assert_eq!(got, expected, "step {step}");
            let marks: Vec<u64> = got[1..]
                .iter()
                .map(|f| parse_mark(f).unwrap().seq)
                .collect();
            assert_eq!(marks, [0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn the_dechunker_skips_extensions_and_trailers_and_rejects_garbage() {
        let mut raw =
            b"4;name=value\r\nabcd\r\n2\r\nef\r\n0\r\nx-trailer: 1\r\n\r\nignored".to_vec();
        let (mut at, mut out) = (0, 0);
        let mut dechunker = Dechunker::default();
        let end = raw.len();
        dechunker.decode(&mut raw, &mut at, end, &mut out).unwrap();
        assert_eq!(&raw[..out], b"abcdef");
        assert!(dechunker.is_done());

        for bad in [&b"zz\r\n"[..], b"2\r\nabc\r\n", b"\r\n"] {
            let mut raw = bad.to_vec();
            let (mut at, mut out) = (0, 0);
            let end = raw.len();
            assert!(
                Dechunker::default()
                    .decode(&mut raw, &mut at, end, &mut out)
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_frame_longer_than_the_limit_is_an_error() {
        let mut buffer = BodyBuffer::new(1024, 4096);
        let head = PLAIN_HEAD;
        buffer.spare().unwrap()[..head.len()].copy_from_slice(head);
        buffer.filled(head.len()).unwrap();
        buffer.take_head().unwrap().unwrap();
        let mut result = Ok(());
        for _ in 0..10 {
            match buffer.spare() {
                Ok(spare) => {
                    let n = spare.len().min(1000);
                    spare[..n].fill(b'x');
                    buffer.filled(n).unwrap();
                    assert!(buffer.next_frame().is_none());
                }
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        assert_eq!(result, Err(WireError::TooLong(4096)));
    }

    #[test]
    fn payloads_carry_their_mark_and_have_the_requested_size() {
        let mark = Mark {
            seq: 42,
            sent_at: 1_700_000_000_123_456_789,
            stream: 3,
        };
        let data = payload(mark, 64);
        assert_eq!(data.len(), 64);
        assert!(data.starts_with("seq=42 t=1700000000123456789 s=3 x"));
        assert_eq!(payload(mark, 0), "seq=42 t=1700000000123456789 s=3");
        let frame = format!("id: urn:uuid:1\ndata: {data}");
        assert_eq!(parse_mark(frame.as_bytes()), Some(mark));
        assert_eq!(
            parse_mark(b"data: seq=7 t=9"),
            Some(Mark {
                seq: 7,
                sent_at: 9,
                stream: 0
            })
        );
        assert_eq!(parse_mark(b":"), None);
        assert_eq!(parse_mark(b"data: seq=x t=1"), None);
        assert_eq!(parse_mark(b"data: seq=1 u=1"), None);
    }
}
