//! The floor: the least work a server can do to fan SSE out, for
//! `scripts/compare`. One thread, one `mio` (epoll) loop, no auth, no log,
//! no history. A `GET` with `topic=`/`match=` query parameters gets a fixed
//! response head (no chunking: the body runs until the connection closes)
//! and joins those topics. A `POST` form `topic` + `data` is formatted once
//! into `data: …\n\n`, appended to the pending bytes of every subscriber of
//! the topic, and answered `200` (keep-alive) at once. Subscribers with
//! pending bytes are written in FIFO slices of 256 sockets per loop turn,
//! each socket everything it has in one write, and new requests are read
//! between slices: frames published while a socket waits for its turn (or
//! for the kernel to take more) are coalesced into its next write.
//!
//! Usage: `floor [ADDR]` (default `127.0.0.1:8082`).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
/// Subscriber sockets written per loop turn before looking for new requests
/// again: publishes are acknowledged between slices, and a socket still
/// waiting for its turn gathers every frame published meanwhile into its
/// one write.
const WRITES_PER_TURN: usize = 256;
/// A subscriber with this much unwritten is too slow and is dropped.
const MAX_PENDING: usize = 4 << 20;
/// The longest request head (and body) accepted.
const MAX_REQUEST: usize = 1 << 20;
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

struct Conn {
    stream: TcpStream,
    /// Bytes of a request not handled yet (empty for idle subscribers).
    input: Vec<u8>,
    /// Bytes to write.
    output: Vec<u8>,
    /// The topics it subscribed to (subscribers only).
    topics: Vec<String>,
    writable_registered: bool,
    /// Whether it is in `Server::dirty`.
    queued: bool,
    /// Set once the connection is to be closed.
    dead: bool,
}

#[derive(Default)]
struct Server {
    conns: Slab<Conn>,
    topics: HashMap<String, Vec<usize>>,
    /// Subscribers with frames to write, in the order they got them.
    dirty: VecDeque<usize>,
    /// Connections with a response to write at the end of this turn.
    urgent: Vec<usize>,
    next_id: u64,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Server {
    fn read(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    conn.dead = true;
                    break;
                }
                Ok(n) => {
                    if conn.topics.is_empty() {
                        conn.input.extend_from_slice(&buf[..n]);
                    }
                    if conn.input.len() > MAX_REQUEST {
                        conn.dead = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.dead = true;
                    break;
                }
            }
        }
        while self.handle_request(key) {}
    }

    /// Handles one whole request in `key`'s input; false when none is whole.
    fn handle_request(&mut self, key: usize) -> bool {
        let conn = &mut self.conns[key];
        if conn.dead || !conn.topics.is_empty() {
            return false;
        }
        let Some(end) = find(&conn.input, b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&conn.input[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let length: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let body_start = end + 4;
        if conn.input.len() < body_start + length {
            return false;
        }
        let body: Vec<u8> = conn.input[body_start..body_start + length].to_vec();
        conn.input.drain(..body_start + length);
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        match method.as_str() {
            "GET" => {
                let topics: Vec<String> = form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| k == "topic" || k == "match")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                if topics.is_empty() {
                    self.respond(
                        key,
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                    );
                    return true;
                }
                for topic in &topics {
                    self.topics.entry(topic.clone()).or_default().push(key);
                }
                let conn = &mut self.conns[key];
                conn.topics = topics;
                conn.input = Vec::new();
                self.respond(key, HEAD);
                false
            }
            "POST" => {
                let mut topics = Vec::new();
                let mut data = String::new();
                for (k, v) in form_urlencoded::parse(&body) {
                    match &*k {
                        "topic" => topics.push(v.into_owned()),
                        "data" => data = v.into_owned(),
                        _ => {}
                    }
                }
                let mut frame = Vec::with_capacity(data.len() + 16);
                for line in data.split('\n') {
                    frame.extend_from_slice(b"data: ");
                    frame.extend_from_slice(line.as_bytes());
                    frame.push(b'\n');
                }
                frame.push(b'\n');
                for topic in &topics {
                    let Some(subscribers) = self.topics.get(topic) else {
                        continue;
                    };
                    for &sub in subscribers {
                        let conn = &mut self.conns[sub];
                        if conn.dead {
                            continue;
                        }
                        if !conn.queued {
                            conn.queued = true;
                            self.dirty.push_back(sub);
                        }
                        conn.output.extend_from_slice(&frame);
                        if conn.output.len() > MAX_PENDING {
                            conn.dead = true;
                        }
                    }
                }
                self.next_id += 1;
                let id = format!("urn:uuid:{}", self.next_id);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{id}",
                    id.len()
                );
                self.respond(key, answer.as_bytes());
                true
            }
            _ => {
                self.respond(
                    key,
                    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n",
                );
                true
            }
        }
    }

    fn respond(&mut self, key: usize, bytes: &[u8]) {
        self.urgent.push(key);
        self.conns[key].output.extend_from_slice(bytes);
    }

    /// Queues `key` for a flush at the end of this turn.
    fn mark(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key)
            && !conn.queued
        {
            conn.queued = true;
            self.dirty.push_back(key);
        }
    }

    /// Writes what `key` has pending, in one write when the socket takes it.
    fn flush(&mut self, registry: &mio::Registry, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.queued = false;
        while !conn.output.is_empty() && !conn.dead {
            match conn.stream.write(&conn.output) {
                Ok(n) => {
                    conn.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => conn.dead = true,
            }
        }
        if conn.output.is_empty() {
            // Idle subscribers keep no buffer.
            if conn.output.capacity() > 4096 {
                conn.output = Vec::new();
            }
            if conn.writable_registered {
                let _ = registry.reregister(&mut conn.stream, Token(key), Interest::READABLE);
                conn.writable_registered = false;
            }
        } else if !conn.writable_registered {
            let _ = registry.reregister(
                &mut conn.stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            );
            conn.writable_registered = true;
        }
    }

    fn close_if_dead(&mut self, registry: &mio::Registry, key: usize) {
        if !self.conns.get(key).is_some_and(|c| c.dead) {
            return;
        }
        let mut conn = self.conns.remove(key);
        let _ = registry.deregister(&mut conn.stream);
        for topic in &conn.topics {
            if let Some(subs) = self.topics.get_mut(topic) {
                subs.retain(|&s| s != key);
                if subs.is_empty() {
                    self.topics.remove(topic);
                }
            }
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8082".into());
    let mut listener = TcpListener::bind(addr.parse().expect("an address"))?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("floor listening on http://{addr}/.well-known/mercure");
    let mut events = Events::with_capacity(1024);
    let mut server = Server::default();
    let mut touched = Vec::new();
    loop {
        // Frames still to write: only look for new requests, don't wait.
        let timeout = (!server.dirty.is_empty()).then_some(Duration::ZERO);
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let entry = server.conns.vacant_entry();
                            let key = entry.key();
                            poll.registry().register(
                                &mut stream,
                                Token(key),
                                Interest::READABLE,
                            )?;
                            entry.insert(Conn {
                                stream,
                                input: Vec::new(),
                                output: Vec::new(),
                                topics: Vec::new(),
                                writable_registered: false,
                                queued: false,
                                dead: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // Out of file descriptors and the like: retry later.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = event.token().0;
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                server.read(key);
            }
            if event.is_writable() {
                server.mark(key);
            }
            touched.push(key);
        }
        // Responses (publish acknowledgements, subscription heads) first.
        let urgent = std::mem::take(&mut server.urgent);
        for &key in &urgent {
            server.flush(poll.registry(), key);
        }
        // Then a slice of the subscribers with frames, each in one write of
        // everything it has pending.
        let slice: Vec<usize> = {
            let n = server.dirty.len().min(WRITES_PER_TURN);
            server.dirty.drain(..n).collect()
        };
        for &key in &slice {
            server.flush(poll.registry(), key);
        }
        for key in slice.into_iter().chain(urgent).chain(touched.drain(..)) {
            server.close_if_dead(poll.registry(), key);
        }
    }
}
