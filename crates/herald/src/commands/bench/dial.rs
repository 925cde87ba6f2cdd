//! How the load generator reaches the hub: plain TCP for an `http` hub, TLS
//! over it for an `https` one. The connection then speaks the run's one
//! [`Protocol`]: HTTP/1.1, which subscribers and publishers read and write
//! by hand exactly as on a bare socket, or HTTP/2 (ALPN `h2` over TLS,
//! prior knowledge over plain TCP), spoken through the `h2` crate.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The HTTP version every connection of a run speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// HTTP/1.1: one request at a time per connection.
    #[default]
    Http1,
    /// HTTP/2, one connection per subscriber and per publisher, as a browser
    /// tab and a server-side publisher each hold their own.
    Http2,
}

impl Protocol {
    /// The ALPN identifier offered over TLS.
    fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::Http1 => b"http/1.1",
            Protocol::Http2 => b"h2",
        }
    }
}

/// Opens connections to one hub address, with TLS when the hub is `https`.
#[derive(Clone)]
pub struct Dialer {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    protocol: Protocol,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("addr", &self.addr)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The TCP connection failed.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The TLS handshake failed (an untrusted certificate, a hub that does
    /// not speak TLS on that port, …).
    #[error("tls: {}", tls_reason(.0))]
    Tls(io::Error),
    /// The TLS handshake chose another protocol than HTTP/2 (a hub that does
    /// not serve HTTP/2 over TLS and ignores ALPN).
    #[error("tls: the hub did not agree to HTTP/2 (it chose {0} by ALPN)")]
    NotHttp2(String),
    /// The hub refused the handshake because it serves none of the protocols
    /// offered by ALPN.
    #[error("tls: {}", refused_words(*.0))]
    Refused(Protocol),
}

/// Why a hub refuses `protocol` by ALPN, and what to do.
fn refused_words(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Http1 => {
            "the hub refused HTTP/1.1 (ALPN 'http/1.1'): it serves only other protocols \
             over TLS (HTTP/2: run with --http2)"
        }
        Protocol::Http2 => {
            "the hub refused HTTP/2 (ALPN 'h2'): it does not serve HTTP/2 over TLS \
             (run without --http2 for HTTP/1.1)"
        }
    }
}

impl DialError {
    /// A short label for grouping errors in reports: the kind of a TCP
    /// error, the whole reason of a TLS one (there are few, and the reason is
    /// what tells them apart).
    pub fn label(&self) -> String {
        match self {
            DialError::Connect(error) => format!("connect: {}", error.kind()),
            DialError::Tls(_) | DialError::NotHttp2(_) | DialError::Refused(_) => self.to_string(),
        }
    }
}

/// rustls' own error inside a TLS failure, when it is one (tokio-rustls wraps
/// it in an `io::Error`).
fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A TLS failure in words: rustls' own error when it is one (tokio-rustls
/// wraps it in an `io::Error`), with what to do when the certificate is
/// refused for a reason its holder can mend.
fn tls_reason(error: &io::Error) -> String {
    let Some(rustls_error) = rustls_error(error) else {
        return error.to_string();
    };
    let rustls::Error::InvalidCertificate(refused) = rustls_error else {
        return rustls_error.to_string();
    };
    let why = match refused {
        rustls::CertificateError::UnknownIssuer => {
            "it is not issued by an authority the bench trusts (give the authority's \
             certificate, or a self-signed certificate itself, with --ca-cert)"
                .to_owned()
        }
        // With a trusted authority of the issuer's name but another key (or
        // another kind of key) the signature cannot verify.
        rustls::CertificateError::BadSignature
        | rustls::CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | rustls::CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "its signature does not verify with the key of the trusted authority it names \
             as its issuer (a trusted certificate of that name with another key; give the \
             hub's own certificate, or its issuer's, with --ca-cert)"
                .to_owned()
        }
        rustls::CertificateError::Other(other)
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            "it is an authority's certificate (basic constraints CA:TRUE), which TLS \
             does not accept as a server's: give the hub a leaf certificate (with openssl, \
             `-addext basicConstraints=critical,CA:FALSE`)"
                .to_owned()
        }
        other => other.to_string(),
    };
    format!("the hub's certificate is not trusted: {why}")
}

impl Dialer {
    /// Plain TCP to `addr`, speaking `protocol` (HTTP/2 with prior knowledge).
    pub fn plain(addr: SocketAddr, protocol: Protocol) -> Self {
        Self {
            addr,
            tls: None,
            protocol,
        }
    }

    /// TLS to `addr`, checking the hub's certificate for `name` with `config`
    /// (from [`client_config`], which offers `protocol` by ALPN).
    pub fn tls(
        addr: SocketAddr,
        name: ServerName<'static>,
        config: Arc<ClientConfig>,
        protocol: Protocol,
    ) -> Self {
        Self {
            addr,
            tls: Some((TlsConnector::from(config), name)),
            protocol,
        }
    }

    /// Whether its connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The HTTP version its connections speak.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// A connection to the hub, its handshake done when it is TLS.
    pub async fn connect(&self) -> Result<Stream, DialError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(DialError::Connect)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|error| {
                        let refused = rustls_error(&error).is_some_and(|e| {
                            *e == rustls::Error::AlertReceived(
                                rustls::AlertDescription::NoApplicationProtocol,
                            )
                        });
                        if refused {
                            DialError::Refused(self.protocol)
                        } else {
                            DialError::Tls(error)
                        }
                    })?;
                // A server that knows none of the offered protocols may go
                // on without ALPN: HTTP/2 must have been chosen by name.
                let chosen = tls.get_ref().1.alpn_protocol();
                if self.protocol == Protocol::Http2 && chosen != Some(b"h2") {
                    let chosen = chosen.map_or_else(
                        || "none".to_owned(),
                        |p| format!("'{}'", String::from_utf8_lossy(p)),
                    );
                    return Err(DialError::NotHttp2(chosen));
                }
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }
}

/// The TLS configuration of an `https` hub's connections: the system's trusted
/// authorities (`SSL_CERT_FILE` and `SSL_CERT_DIR` override where they are
/// read from), and besides them the certificates of `ca_cert` (PEM) when
/// given; ALPN offers `protocol` alone.
pub fn client_config(ca_cert: Option<&Path>, protocol: Protocol) -> Result<ClientConfig, String> {
    let extra = match ca_cert {
        Some(path) => herald_server::tls::load_certificates(path).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot configure TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![protocol.alpn().to_vec()];
    Ok(config)
}

/// One connection to the hub, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: its buffers would make every plain stream as large).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
