//! Test support: a hand-written HTTP/1.1 server on 127.0.0.1:0 (so tests control
//! every byte and every pause) and the real `herald` binary as a child process.

#![allow(dead_code)]

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdout, Command};

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
pub struct Server {
    listener: TcpListener,
}

/// One accepted connection with its request already read.
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
        self.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        )
        .await;
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

/// What a finished `herald` printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A running `herald`; killed when dropped.
pub struct Herald {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

/// Starts the real binary with `args`, stdin closed and no token in the environment.
pub fn spawn(args: &[&str]) -> Herald {
    spawn_with_stdin(args, Stdio::null())
}

pub fn spawn_with_stdin(args: &[&str], stdin: Stdio) -> Herald {
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("HERALD_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start herald");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    Herald { child, stdout }
}

/// Runs `herald` to completion (bounded by [`WAIT`]).
pub async fn run(args: &[&str]) -> Output {
    spawn(args).finish().await
}

impl Herald {
    /// The next line of stdout, without its line break; fails after [`WAIT`].
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, self.stdout.read_line(&mut line))
            .await
            .expect("no output line within the timeout")
            .expect("read stdout");
        assert!(n > 0, "stdout closed");
        assert!(line.ends_with('\n'), "partial line {line:?}");
        line.pop();
        line
    }

    /// Writes `bytes` to stdin and closes it.
    pub async fn send_stdin(&mut self, bytes: &[u8]) {
        let mut stdin = self.child.stdin.take().expect("piped stdin");
        stdin.write_all(bytes).await.expect("write stdin");
        drop(stdin);
    }

    /// Waits for the exit (bounded by [`WAIT`]) and returns what remained on stdout and stderr.
    pub async fn finish(mut self) -> Output {
        let mut stderr_pipe = self.child.stderr.take().expect("piped stderr");
        let wait = async {
            let mut stdout = String::new();
            let mut stderr = String::new();
            let (out, err) = tokio::join!(
                self.stdout.read_to_string(&mut stdout),
                stderr_pipe.read_to_string(&mut stderr)
            );
            out.expect("read stdout");
            err.expect("read stderr");
            let status = self.child.wait().await.expect("wait for herald");
            Output {
                status,
                stdout,
                stderr,
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("herald did not exit in time")
    }

    /// Kills the process and waits for it.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill herald");
    }
}
