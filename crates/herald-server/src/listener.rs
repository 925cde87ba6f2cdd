//! The accept loop shared by plain and TLS serving.
//!
//! One loop for both so that every connection gets the same treatment:
//! `TCP_NODELAY` (events are small writes that must leave at once), the peer
//! address for per-address limits, HTTP/1.1 and HTTP/2 (ALPN over TLS, prior
//! knowledge in clear), a write-stall timeout, deadlines for request heads
//! and bodies, and a bounded graceful shutdown.
//!
//! The deadlines are what keeps clients from holding the hub's sockets
//! (and so its file descriptors) without asking anything of it: a request
//! head must be whole within `request_head_timeout` of the accept and, on a
//! kept-alive connection, of the previous answer's end (so an idle
//! connection is closed after that long), and a request body must make
//! progress every `request_body_timeout`. None of them bounds an answer: an
//! event stream lasts as long as its subscription.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Version, header};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::publish_conn::{self, Ended, Rewound};
use crate::refusals::{ExplainedRefusals, HeadRules};
use crate::stream_conn::{self, Route};
use crate::tls::Tls;
use crate::{Herald, RequestIds};

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is set) until
/// `shutdown` resolves; then stops accepting, ends every subscription of
/// `herald` with its reconnect hint, and waits for connections at most
/// `shutdown_timeout`.
pub(crate) async fn run(
    listener: TcpListener,
    herald: &Herald,
    router: Router,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Its subscriptions would end as they open, every connection with them.
    if herald.shutdown_token().is_cancelled() {
        return Err(std::io::Error::other(
            "this Herald was shut down, and a Herald serves once: build another to serve again",
        ));
    }
    let acceptor = tls
        .as_ref()
        .map(|tls| TlsAcceptor::from(tls.server_config()));
    let _watch = tls.map(|tls| AbortOnDrop(tokio::spawn(tls.watch())));
    let write_timeout = herald.settings().write_timeout;
    let head_timeout = herald.settings().request_head_timeout;
    let publishers = herald.settings().hand_served_publish;
    let streams = herald.settings().hand_served_streams;
    let graceful = GracefulShutdown::new();
    herald.inner.serving.store(true, Ordering::Release);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
        };
        let accepted = Instant::now();
        let head_deadline = accepted + head_timeout;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        // A client gone without a FIN or RST (a phone off the network)
        // leaves the keep-alives unacknowledged in the kernel's buffer, where
        // every write still "makes progress": without this the kernel would
        // retransmit for about 15 minutes before the hub saw the connection
        // fail, holding its socket and its connection-limit slot.
        if let Err(error) = socket2::SockRef::from(&tcp).set_tcp_user_timeout(Some(write_timeout)) {
            tracing::debug!(%peer, %error, "cannot set TCP_USER_TIMEOUT");
        }
        let router = router.clone();
        // Held from the start of a TLS handshake, so shutdown waits for it too.
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        let herald = herald.clone();
        // A task is as big as its largest state, and every hand-served
        // subscriber's task lives as long as its stream: only the
        // subscription's own state is inline, the rest is boxed.
        tokio::spawn(async move {
            let (io, since) = match acceptor {
                None => {
                    let hub_path = herald.hub().url().path();
                    let shutdown = herald.shutdown_token();
                    let route = stream_conn::route(
                        &tcp,
                        hub_path,
                        peer,
                        publishers,
                        streams,
                        head_deadline,
                        shutdown,
                    );
                    // Boxed: with its deadline and shutdown waits it is the
                    // task's largest state, which a stream keeps for life.
                    match Box::pin(route).await {
                        Route::Close => {
                            drop(watcher);
                            return;
                        }
                        Route::Subscription(request, head) => {
                            // Shutdown waits for this connection while `watcher` lives.
                            // Boxed, as every phase before the stream is.
                            let consume = stream_conn::consume_head(tcp, head);
                            if let Some(wire) = Box::pin(consume).await {
                                let open = stream_conn::open(wire, router, request, write_timeout);
                                if let Some(opened) = Box::pin(open).await {
                                    stream_conn::stream(opened, write_timeout).await;
                                }
                            }
                            drop(watcher);
                            return;
                        }
                        Route::Publisher => {
                            let serve = publish_conn::serve(
                                tcp,
                                &herald,
                                hub_path,
                                head_deadline,
                                Vec::new(),
                            );
                            match Box::pin(serve).await {
                                Ended::Closed => {
                                    drop(watcher);
                                    return;
                                }
                                // Its head is already read: its clock restarts.
                                Ended::Hyper(rewound) => (rewound, None),
                            }
                        }
                        Route::Hyper => (Rewound::untouched(tcp), Some(accepted)),
                        Route::Malformed(why) => {
                            let mut tcp = tcp;
                            // Boxed: inline, its timers would weigh on every
                            // subscriber's task, which lives as long as its stream.
                            let refuse = publish_conn::refuse_malformed(
                                &mut tcp,
                                &herald,
                                &why,
                                write_timeout,
                            );
                            Box::pin(refuse).await;
                            drop(watcher);
                            return;
                        }
                    }
                }
                Some(acceptor) => {
                    let connection = Connection {
                        router,
                        peer,
                        since: None,
                    };
                    Box::pin(serve_tls(tcp, acceptor, connection, &herald, watcher)).await;
                    return;
                }
            };
            let connection = Connection {
                router,
                peer,
                since,
            };
            Box::pin(serve_hyper(io, connection, &herald, watcher)).await;
        });
    }
    drop(listener);
    // Not ready from the first moment of a shutdown, so balancers stop sending.
    herald.inner.serving.store(false, Ordering::Release);
    herald.shutdown_token().cancel();
    let bound = herald.settings().shutdown_timeout;
    if tokio::time::timeout(bound, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?bound,
            "connections still open at the end of the shutdown timeout; closing them"
        );
    }
    Ok(())
}

/// A connection hyper is to serve, and how.
struct Connection {
    router: Router,
    peer: SocketAddr,
    /// When the clock of its first request head started (its accept, or
    /// the end of its TLS handshake); `None`: when hyper starts.
    since: Option<Instant>,
}

/// Serves `io` with hyper until the connection ends, stays idle too long,
/// or `herald` shuts down. Shutdown waits for the connection while
/// `watcher` lives.
async fn serve_hyper<I>(
    io: I,
    connection: Connection,
    herald: &crate::Herald,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Connection {
        router,
        peer,
        since,
    } = connection;
    let settings = herald.settings();
    // A connection whose writes make no progress for `write_timeout` (a
    // subscriber that stopped reading) is closed, freeing its socket and
    // its connection-limit slot; it resumes from the log when it returns.
    let mut guarded = TimeoutStream::new(io);
    guarded.set_write_timeout(Some(settings.write_timeout));
    let guarded = Box::pin(guarded);
    let head_timeout = settings.request_head_timeout;
    let activity = Arc::new(watch::Sender::new(Activity {
        open: 0,
        idle_since: since.unwrap_or_else(Instant::now),
    }));
    let service = Service {
        router,
        peer,
        body_timeout: settings.request_body_timeout,
        activity: Arc::clone(&activity),
    };
    let shutdown = herald.shutdown_token();
    let rules = HeadRules {
        max: MAX_HEAD_BYTES,
        timeout: head_timeout,
        ids: herald.inner.request_ids.clone(),
        shutdown: Some(shutdown.clone()),
    };
    // Every phase's future is boxed: this function's own state lives as
    // long as the connection, and inline it would be as large as all of
    // them together (21 KiB before; docs/benchmarks.md, change 32).
    let connection = Box::pin(serve_connection(guarded, service, rules));
    let result = drive(connection, &activity, head_timeout, shutdown).await;
    if let Err(error) = result {
        if timed_out(&*error) {
            herald.metrics().write_timed_out();
            tracing::info!(
                %peer,
                "connection closed: a write made no progress for limits.write_timeout (the client stopped reading or vanished)"
            );
        } else {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
    drop(watcher);
}

/// Serves a TLS connection: its handshake, then its streams by hand
/// ([`stream_conn`]) or its publishes ([`publish_conn`]) as in clear text,
/// and anything else with hyper. Shutdown waits for the connection while
/// `watcher` lives.
async fn serve_tls(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    connection: Connection,
    herald: &crate::Herald,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let peer = connection.peer;
    let handshake = Box::pin(tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        acceptor.accept(tcp),
    ));
    let handshake = tokio::select! {
        // Nothing to finish yet: a shutdown does not wait for it.
        () = herald.shutdown_token().cancelled() => return,
        handshake = handshake => handshake,
    };
    let stream = match handshake {
        Ok(Ok(mut stream)) => {
            stream.get_mut().1.set_buffer_limit(Some(TLS_SEND_BUFFER));
            stream
        }
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    // The handshake has its own bound: the head's clock starts now.
    let since = Instant::now();
    match Box::pin(first_head_over_tls(stream, herald, peer)).await {
        FirstHead::Done => {}
        FirstHead::Subscription(request, stream) => {
            let (tcp, tls) = stream.into_inner();
            let write_timeout = herald.settings().write_timeout;
            let wire = stream_conn::ChunkedWire::tls(tcp, tls);
            let open = stream_conn::open(wire, connection.router, request, write_timeout);
            if let Some(opened) = Box::pin(open).await {
                stream_conn::stream(opened, write_timeout).await;
            }
        }
        FirstHead::Hyper(stream, published) => {
            // The head hyper gets follows the last answer: its clock restarts.
            let since = if published { Instant::now() } else { since };
            let connection = Connection {
                since: Some(since),
                ..connection
            };
            Box::pin(serve_hyper(stream, connection, herald, watcher)).await;
            return;
        }
    }
    drop(watcher);
}

/// What the first bytes of a TLS connection call for.
enum FirstHead {
    /// Hyper serves the connection: the stream, with the bytes read to be
    /// read again, and whether publishes were served by hand first.
    Hyper(Rewound<TlsStream<TcpStream>>, bool),
    /// A subscription to serve by hand, whose head was read whole and
    /// nothing after it.
    Subscription(Box<Request<Body>>, TlsStream<TcpStream>),
    /// Nothing more: the connection was refused, silent past the head
    /// timeout, or closed, or the hub is shutting down.
    Done,
}

/// Reads the first bytes of an HTTP/1 connection over TLS and answers a
/// head that is not HTTP with a problem document, as the clear-text
/// listener does before hyper sees a head (`crate::malformed`). A
/// connection that opens with a publish is served by hand as in clear text
/// ([`publish_conn::serve`], when the settings allow it) until a request
/// that is not a plain publish; one that opens with a subscription is to
/// be served by hand (when the settings allow it) if its head came alone.
/// HTTP/2 (negotiated by ALPN) is left to hyper.
async fn first_head_over_tls(
    mut stream: TlsStream<TcpStream>,
    herald: &crate::Herald,
    peer: SocketAddr,
) -> FirstHead {
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        return FirstHead::Hyper(Rewound::untouched(stream), false);
    }
    let settings = herald.settings();
    let deadline = Instant::now() + settings.request_head_timeout;
    // One TLS record at most: what the client sent first, as a peek is.
    let mut first = vec![0u8; 16 * 1024];
    let read = tokio::select! {
        () = herald.shutdown_token().cancelled() => return FirstHead::Done,
        read = tokio::time::timeout(
            settings.request_head_timeout,
            tokio::io::AsyncReadExt::read(&mut stream, &mut first),
        ) => read,
    };
    let Ok(Ok(n @ 1..)) = read else {
        tracing::debug!(%peer, "no request head over TLS");
        return FirstHead::Done;
    };
    first.truncate(n);
    let hub_path = herald.hub().url().path();
    if settings.hand_served_publish && publish_conn::is_publish(&first, hub_path) {
        // Boxed: only publishers' connections carry its state.
        let serve = publish_conn::serve(stream, herald, hub_path, deadline, first);
        return match Box::pin(serve).await {
            Ended::Closed => FirstHead::Done,
            Ended::Hyper(rewound) => FirstHead::Hyper(rewound, true),
        };
    }
    if let Some(why) = crate::malformed::malformed_head(&first) {
        publish_conn::refuse_malformed(&mut stream, herald, &why, settings.write_timeout).await;
        return FirstHead::Done;
    }
    if settings.hand_served_streams
        && let Some((request, len)) = stream_conn::parse_head(&first, hub_path, peer)
        && len == first.len()
        && nothing_more_read(&mut stream)
    {
        return FirstHead::Subscription(Box::new(request), stream);
    }
    FirstHead::Hyper(Rewound::new(stream, first), false)
}

/// Whether rustls holds no bytes of the client's beyond those read: a
/// stream served by hand never reads again.
fn nothing_more_read(stream: &mut TlsStream<TcpStream>) -> bool {
    stream
        .get_mut()
        .1
        .process_new_packets()
        .is_ok_and(|state| state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed())
}

/// Whether `error` comes from a write that made no progress for the write
/// timeout (`TimeoutStream`'s, or the kernel's `TCP_USER_TIMEOUT`).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Runs `connection` to its end. It is closed gracefully (an answer in
/// progress is finished) at shutdown, and when no request has been open on
/// it for `idle`: on HTTP/1.1 hyper's header read timeout closes it at about
/// the same time, but this also covers HTTP/2, which has no such timeout,
/// and the first bytes, read before hyper knows which version it serves.
///
/// The connection comes boxed: an async function keeps its arguments apart
/// from its locals, so one pinned here would be held twice.
async fn drive<C>(
    mut connection: Pin<Box<C>>,
    activity: &watch::Sender<Activity>,
    idle: Duration,
    shutdown: &CancellationToken,
) -> Result<(), C::Error>
where
    C: GracefulConnection,
{
    let timed_out = tokio::select! {
        result = connection.as_mut() => return result,
        () = shutdown.cancelled() => false,
        () = idle_for(activity.subscribe(), idle) => true,
    };
    connection.as_mut().graceful_shutdown();
    if !timed_out {
        // The graceful shutdown's own timeout bounds this.
        return connection.await;
    }
    // HTTP/2 waits for the client to acknowledge its GOAWAY, and streams it
    // opened meanwhile are still served: a client that goes silent instead
    // is dropped once idle that long again.
    activity.send_modify(|a| a.idle_since = Instant::now());
    tokio::select! {
        result = connection => result,
        () = idle_for(activity.subscribe(), idle) => Ok(()),
    }
}

/// Resolves once `activity` has shown no open request for `idle`.
async fn idle_for(mut activity: watch::Receiver<Activity>, idle: Duration) {
    loop {
        let state = *activity.borrow_and_update();
        let changed = if state.open == 0 {
            tokio::select! {
                () = tokio::time::sleep_until(state.idle_since + idle) => return,
                changed = activity.changed() => changed,
            }
        } else {
            activity.changed().await
        };
        if changed.is_err() {
            // No more requests can open: the connection's own end ends this.
            return std::future::pending().await;
        }
    }
}

/// The requests open on a connection served by hyper.
#[derive(Debug, Clone, Copy)]
struct Activity {
    /// Requests whose answer has not ended.
    open: usize,
    /// When the last one ended (or the connection's head clock started).
    idle_since: Instant,
}

/// A request open on a connection, from its head to its answer's end.
struct Open(Arc<watch::Sender<Activity>>);

impl Open {
    /// Counts a request open on `activity`'s connection.
    fn new(activity: Arc<watch::Sender<Activity>>) -> Self {
        activity.send_modify(|a| a.open += 1);
        Self(activity)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.send_modify(|a| {
            a.open -= 1;
            if a.open == 0 {
                a.idle_since = Instant::now();
            }
        });
    }
}

/// The router as hyper calls it for one connection: with the peer's
/// address, request bodies that time out when stalled, and each request
/// counted open until its answer's body ends.
#[derive(Clone)]
struct Service {
    router: Router,
    peer: SocketAddr,
    body_timeout: Duration,
    activity: Arc<watch::Sender<Activity>>,
}

impl tower::Service<Request<Incoming>> for Service {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let open = Open::new(Arc::clone(&self.activity));
        let stalled = Arc::new(AtomicBool::new(false));
        let version = request.version();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = TimedBody {
            body,
            timeout: self.body_timeout,
            stall: None,
            stalled: Arc::clone(&stalled),
        };
        let request = Request::from_parts(parts, Body::new(body));
        let router = self.router.clone();
        let timeout = self.body_timeout;
        Box::pin(async move {
            let Ok(response) = router.oneshot(request).await;
            // The handler saw the body fail, whatever it answered.
            let response = if stalled.load(Ordering::Relaxed) {
                tracing::info!(?timeout, "request body stalled");
                body_timed_out(version, timeout)
            } else {
                response
            };
            Ok(response.map(|body| Body::new(Tracked { body, _open: open })))
        })
    }
}

/// The 408 that replaces the answer to a request whose body stalled; on
/// HTTP/1 the connection is closed after it, as its body's end is unknown.
fn body_timed_out(version: Version, timeout: Duration) -> Response {
    let detail = format!("the request body did not arrive within {timeout:?}");
    let mut response = crate::error::problem(StatusCode::REQUEST_TIMEOUT, &detail);
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that fails when no frame arrives for `timeout` while it
/// is read (never while nobody reads it), and says so in `stalled`.
struct TimedBody {
    body: Incoming,
    timeout: Duration,
    /// Armed when a read first waits; moved on after each frame.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            if let Some(stall) = &mut this.stall {
                stall.as_mut().reset(Instant::now() + this.timeout);
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let stall = this
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.stalled.store(true, Ordering::Relaxed);
        let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body stalled");
        Poll::Ready(Some(Err(error.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An answer's body, with the request it answers held open until it ends.
struct Tracked {
    body: Body,
    _open: Open,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves `io` with hyper: HTTP/1.1 (with upgrades) or HTTP/2, whichever the
/// client speaks, a request head having to be whole within `head_timeout`.
/// The largest request head hyper reads (431 beyond). Its read buffer grows
/// to the head and is kept for the connection's life, which for a
/// subscriber is its stream's: with hyper's default (about 400 KiB), 2,000
/// subscribers sending 300 KB cookies held 580 MB. Tokens in a cookie or a
/// header fit in far less.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// The most bytes of TLS records rustls keeps for a connection beyond what
/// the socket has taken (rustls' default is 64 KiB): what a subscriber that
/// stopped reading holds below hyper (docs/benchmarks.md, change 35).
const TLS_SEND_BUFFER: usize = 16 << 10;

/// The most bytes HTTP/2 buffers per stream beyond what the connection has
/// written. A stream takes more of its body only once its buffer drains
/// below this, so a subscriber that stops reading holds at most this much
/// of copied frames besides the hub's shared queue, where it is evicted when
/// it falls too far behind. hyper's default (about 400 KiB), with the
/// windows browsers announce, let each stalled browser hold 580 KiB; with
/// this bound and [`TLS_SEND_BUFFER`] 138 KiB (docs/benchmarks.md, change 35).
const MAX_SEND_BUFFER: usize = 64 << 10;

fn serve_connection<S>(
    io: S,
    service: Service,
    rules: HeadRules,
) -> impl GracefulConnection<Error = Box<dyn std::error::Error + Send + Sync>> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // Without a timer hyper has no header read timeout at all. It runs from
    // when hyper starts reading a head, which on a kept-alive connection is
    // the previous answer's end.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(rules.timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_send_buf_size(MAX_SEND_BUFFER);
    builder
        .serve_connection_with_upgrades(
            TokioIo::new(ExplainedRefusals::new(io, rules)),
            TowerToHyperService::new(service),
        )
        .into_owned()
}

/// Like `axum::serve`: errors about one connection are ignored; others
/// (too many open files) are logged and the loop pauses a second.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; pausing one second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The most connections the admin listener serves at once: scrapers and
/// probes make a few, and each draws on the process's descriptor budget.
pub(crate) const ADMIN_CONNECTIONS: usize = 64;

/// Serves the admin routes (metrics, health) over HTTP/1.1 until `shutdown`:
/// a request head must be whole within `head_timeout` (so a silent or idle
/// connection is closed after that long), and at most [`ADMIN_CONNECTIONS`]
/// are served at once; more wait in the kernel's accept queue.
pub(crate) async fn run_admin(
    listener: TcpListener,
    router: Router,
    head_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(ADMIN_CONNECTIONS));
    let rules = HeadRules {
        max: MAX_HEAD_BYTES,
        timeout: head_timeout,
        ids: RequestIds::default(),
        shutdown: None,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => return,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let rules = rules.clone();
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(ExplainedRefusals::new(tcp, rules)), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "admin connection ended");
            }
            drop(slot);
        });
    }
}
