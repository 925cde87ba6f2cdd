//! TLS: certificates from PEM files, reloaded without a restart.
//!
//! [`Tls::load`] reads a certificate chain and its private key. The server
//! configuration it builds offers ALPN `h2` and `http/1.1` and takes its
//! certificate from a [`CertResolver`], whose current certificate
//! [`Tls::reload`] swaps when the files change: new connections get the new
//! certificate, open ones keep the one they were established with.
//! [`Tls::watch`] checks the files every reload interval; a bad new file is
//! logged, naming it, and the old certificate stays.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate or key cannot be used. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The file was read but holds no usable certificate chain or key.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS library refused the configuration.
    #[error("cannot configure TLS: {0}")]
    Config(String),
}

/// The ALPN protocols offered, most preferred first.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Answers every handshake with the current certificate; [`CertResolver::set`]
/// replaces it for the handshakes that follow.
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// A resolver serving `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: RwLock::new(key),
        }
    }

    /// The certificate new connections get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().clone()
    }

    /// Serves `key` from the next handshake on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write() = key;
    }
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The contents of the two files, as last read.
#[derive(PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
}

/// A TLS server configuration whose certificate follows two PEM files.
pub struct Tls {
    cert_file: PathBuf,
    key_file: PathBuf,
    reload_interval: Option<Duration>,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    config: Arc<ServerConfig>,
    /// The contents last tried, good or bad, so an unchanged file is neither
    /// parsed nor reported again.
    last: Mutex<Contents>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("reload_interval", &self.reload_interval)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain (PEM, leaf first) and the private key
    /// (PEM: PKCS#8, PKCS#1 or SEC1) and builds the server configuration.
    /// The files are not watched until [`Tls::watch`] runs.
    pub fn load(
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let cert_file = cert_file.into();
        let key_file = key_file.into();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = read(&cert_file, &key_file)?;
        let key = certified_key(&contents, &cert_file, &key_file, &provider)?;
        let resolver = Arc::new(CertResolver::new(Arc::new(key)));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            cert_file,
            key_file,
            reload_interval: None,
            provider,
            resolver,
            config: Arc::new(config),
            last: Mutex::new(contents),
        })
    }

    /// Checks the files every `interval` while [`Tls::watch`] runs
    /// (`Duration::ZERO`: never).
    #[must_use]
    pub fn with_reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval = (!interval.is_zero()).then_some(interval);
        self
    }

    /// How often the files are checked, if they are.
    pub fn reload_interval(&self) -> Option<Duration> {
        self.reload_interval
    }

    /// The certificate chain file.
    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// The private key file.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The rustls server configuration (ALPN `h2`, `http/1.1`).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The certificate new connections get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.resolver.current()
    }

    /// Reads the files again. `Ok(true)`: they changed and new connections
    /// get the new certificate. `Ok(false)`: unchanged since the last try
    /// (even if that try failed). `Err`: unreadable or invalid; the current
    /// certificate stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let contents = read(&self.cert_file, &self.key_file)?;
        let mut last = self.last.lock();
        if *last == contents {
            return Ok(false);
        }
        let parsed = certified_key(&contents, &self.cert_file, &self.key_file, &self.provider);
        *last = contents;
        drop(last);
        self.resolver.set(Arc::new(parsed?));
        Ok(true)
    }

    /// Reloads the files every reload interval, forever (returns at once
    /// when there is no interval). Failures are logged once each, naming
    /// the file; the current certificate is kept until a good pair appears.
    pub async fn watch(self: Arc<Self>) {
        let Some(interval) = self.reload_interval else {
            return;
        };
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut last_error: Option<TlsError> = None;
        loop {
            ticker.tick().await;
            let this = self.clone();
            let result = tokio::task::spawn_blocking(move || this.reload())
                .await
                .unwrap_or_else(|e| Err(TlsError::Config(format!("the reload task failed: {e}"))));
            match result {
                Ok(true) => {
                    last_error = None;
                    tracing::info!(
                        cert_file = %self.cert_file.display(),
                        "TLS certificate reloaded; new connections use it"
                    );
                }
                Ok(false) => {}
                Err(error) => {
                    if last_error.as_ref() != Some(&error) {
                        tracing::error!(
                            %error,
                            "cannot reload the TLS certificate; keeping the current one"
                        );
                    }
                    last_error = Some(error);
                }
            }
        }
    }
}

fn read(cert_file: &Path, key_file: &Path) -> Result<Contents, TlsError> {
    Ok(Contents {
        cert: read_file(cert_file)?,
        key: read_file(key_file)?,
    })
}

/// The bytes of `path`, or the error naming it.
fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Reads PEM certificates from `path` (a chain, leaf first, or a set of
/// authorities to trust): every block must be a valid X.509 certificate, and
/// there must be one at least.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates(&read_file(path)?, path)
}

/// The certificates of the PEM text `pem`, read from `path`.
fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let invalid = |reason: String| TlsError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate chain: {}", pem_error(&e))))?;
    if chain.is_empty() {
        return Err(invalid(
            "no certificate found (expected PEM `-----BEGIN CERTIFICATE-----` blocks, leaf first)"
                .into(),
        ));
    }
    for (index, cert) in chain.iter().enumerate() {
        ParsedCertificate::try_from(cert).map_err(|e| {
            let which = if index == 0 {
                "the first (leaf) certificate".to_owned()
            } else {
                format!("certificate {} of the chain", index + 1)
            };
            invalid(format!("{which} is not a valid X.509 certificate: {e}"))
        })?;
    }
    Ok(chain)
}

/// A PEM parsing error in words: the parser's own messages print the lines at fault
/// as lists of byte values.
fn pem_error(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::MissingSectionEnd { end_marker } => format!(
            "missing the end marker of {:?} (\"-----END {0}-----\"): is the file truncated?",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { line } => format!(
            "malformed PEM header line {:?}",
            String::from_utf8_lossy(line)
        ),
        other => other.to_string(),
    }
}

/// Whether a key file holds an encrypted key: rustls skips an encrypted PKCS#8 block as no
/// key at all, and calls a PKCS#1 or SEC1 block that OpenSSL encrypted bad base64.
fn is_encrypted(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

fn certified_key(
    contents: &Contents,
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let invalid = |path: &Path, reason: String| TlsError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let chain = certificates(&contents.cert, cert_file)?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|e| {
        let reason = match e {
            _ if is_encrypted(&contents.key) => {
                "the private key is encrypted, which is not supported: decrypt it with \
                 `openssl pkey -in key.pem -out plain.pem` (it asks for the passphrase) and \
                 use plain.pem"
                    .to_owned()
            }
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key found (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)".to_owned()
            }
            other => format!("not a PEM private key: {}", pem_error(&other)),
        };
        invalid(key_file, reason)
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(key_file, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(e) => Err(invalid(
            key_file,
            format!(
                "the private key does not match the certificate in {}: {e}",
                cert_file.display()
            ),
        )),
    }
}
