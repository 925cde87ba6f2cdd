//! The default HTTP client and URL checks shared by the event source and the publisher.

use std::time::Duration;

use url::Url;

/// How long a TCP (and TLS) connection may take to establish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client using rustls with the ring provider (installed once per process).
pub(crate) fn default_client() -> Result<reqwest::Client, reqwest::Error> {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

/// The URL's scheme if it is not one an HTTP client can follow.
pub(crate) fn unsupported_scheme(url: &Url) -> Option<String> {
    match url.scheme() {
        "http" | "https" => None,
        other => Some(other.to_owned()),
    }
}
