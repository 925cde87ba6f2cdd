//! The accept loop shared by plain and TLS serving.
//!
//! One loop for both so that every connection gets the same treatment:
//! `TCP_NODELAY` (events are small writes that must leave at once), the peer
//! address for per-address limits, HTTP/1.1 and HTTP/2 (ALPN over TLS, prior
//! knowledge in clear), a write-stall timeout, and a bounded graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::Herald;
use crate::publish_conn::{self, Ended, Rewound};
use crate::stream_conn::{self, Route};
use crate::tls::Tls;

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
    let acceptor = tls
        .as_ref()
        .map(|tls| TlsAcceptor::from(tls.server_config()));
    let _watch = tls.map(|tls| AbortOnDrop(tokio::spawn(tls.watch())));
    let write_timeout = herald.settings().write_timeout;
    // CORS answers are the router's layer's to make.
    let publishers =
        herald.settings().hand_served_publish && herald.settings().cors_origins.is_empty();
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
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
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
            let io = match acceptor {
                None => {
                    let hub_path = herald.hub().url().path();
                    match stream_conn::route(&tcp, hub_path, peer, publishers).await {
                        Route::Subscription(request, head) => {
                            // Shutdown waits for this connection while `watcher` lives.
                            let open = stream_conn::open(tcp, router, request, head, write_timeout);
                            if let Some(opened) = Box::pin(open).await {
                                stream_conn::stream(opened, write_timeout).await;
                            }
                            drop(watcher);
                            return;
                        }
                        Route::Publisher => {
                            match Box::pin(publish_conn::serve(tcp, &herald, hub_path)).await {
                                Ended::Closed => {
                                    drop(watcher);
                                    return;
                                }
                                Ended::Hyper(rewound) => rewound,
                            }
                        }
                        Route::Hyper => Rewound::untouched(tcp),
                    }
                }
                Some(_) => Rewound::untouched(tcp),
            };
            Box::pin(serve_hyper(
                io,
                acceptor,
                router,
                watcher,
                peer,
                write_timeout,
            ))
            .await;
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

/// Serves `io` with hyper (over TLS when `acceptor` is set) until the
/// connection ends or `watcher`'s shutdown closes it.
async fn serve_hyper(
    io: Rewound,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    watcher: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
    write_timeout: Duration,
) {
    // A connection whose writes make no progress for `write_timeout` (a
    // subscriber that stopped reading) is closed, freeing its socket and
    // its connection-limit slot; it resumes from the log when it returns.
    let mut guarded = TimeoutStream::new(io);
    guarded.set_write_timeout(Some(write_timeout));
    let guarded = Box::pin(guarded);
    let service = router.map_request(move |mut request: http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let Some(acceptor) = acceptor else {
        let connection = serve_connection(guarded, service);
        if let Err(error) = watcher.watch(connection).await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
        return;
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(guarded)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let connection = serve_connection(stream, service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

fn serve_connection<S, M>(
    io: S,
    service: M,
) -> impl hyper_util::server::graceful::GracefulConnection<
    Error = Box<dyn std::error::Error + Send + Sync>,
> + Send
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    M: tower::Service<
            http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    M::Future: Send + 'static,
{
    Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
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
