//! Test support shared by herald's crates: a hand-written HTTP/1.1 server on
//! 127.0.0.1:0, so that tests control every byte and every pause of what a
//! client receives. Not published; a dev-dependency only.

#![allow(missing_docs, clippy::missing_panics_doc)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// One request as the server read it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The values of one header, by lowercase name.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The only value of one header, if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.header_values(name);
        assert!(values.len() <= 1, "{name} sent {} times", values.len());
        values.first().copied()
    }
}

/// A listener on 127.0.0.1:0 that hands each connection to the test.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
}

/// One accepted connection with its request already read.
#[derive(Debug)]
pub struct Conn {
    pub request: Request,
    pub stream: TcpStream,
}

impl Server {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Self { listener }
    }

    /// A server on a given address (one a client was already told about).
    pub async fn start_on(address: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind(address)
            .await
            .unwrap_or_else(|error| panic!("bind {address}: {error}"));
        Self { listener }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.listener.local_addr().expect("local addr")
        )
    }

    /// The next connection and its request; fails the test after [`WAIT`].
    pub async fn accept(&self) -> Conn {
        tokio::time::timeout(WAIT, self.accept_now())
            .await
            .expect("no connection within the timeout")
    }

    /// The next connection, or `None` if none arrives within `within`.
    pub async fn accept_within(&self, within: Duration) -> Option<Conn> {
        tokio::time::timeout(within, self.accept_now()).await.ok()
    }

    async fn accept_now(&self) -> Conn {
        let (mut stream, _) = self.listener.accept().await.expect("accept");
        let request = read_request(&mut stream).await;
        Conn { request, stream }
    }
}

impl Conn {
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to client");
        self.stream.flush().await.expect("flush to client");
    }

    /// Writes one byte at a time, each in its own TCP segment.
    pub async fn drip(&mut self, bytes: &[u8]) {
        self.stream.set_nodelay(true).expect("nodelay");
        for byte in bytes {
            self.write(std::slice::from_ref(byte)).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Answers 200 with an event-stream head; the body ends when the connection closes.
    pub async fn open_stream(&mut self) {
        self.open_stream_with("").await;
    }

    /// Like [`Conn::open_stream`], with `extra_headers` (each ending in CRLF).
    pub async fn open_stream_with(&mut self, extra_headers: &str) {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{extra_headers}Connection: close\r\n\r\n"
        );
        self.write(head.as_bytes()).await;
    }

    /// Answers 200 with a chunked event-stream head; write chunks with [`Conn::chunk`].
    pub async fn open_chunked_stream(&mut self) {
        self.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
    }

    /// Writes one chunk of a chunked body.
    pub async fn chunk(&mut self, bytes: &[u8]) {
        let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        self.write(&framed).await;
    }

    /// Answers a complete response with a body, then closes.
    pub async fn respond(mut self, status: &str, content_type: &str, body: &str) {
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        self.write(response.as_bytes()).await;
        self.close().await;
    }

    /// Closes the connection cleanly (FIN), ending a close-delimited body.
    pub async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}

async fn read_request(stream: &mut TcpStream) -> Request {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read request");
        assert!(n > 0, "client closed before sending a whole request head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().expect("request line").split(' ');
    let method = request_line.next().expect("method").to_owned();
    let target = request_line.next().expect("target").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse::<usize>().expect("content-length"));
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "client closed before sending the whole body");
        body.extend_from_slice(&chunk[..n]);
    }
    Request {
        method,
        target,
        headers,
        body,
    }
}
