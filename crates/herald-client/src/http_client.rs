//! The default HTTP client and URL checks shared by the event source and the publisher.

use std::time::Duration;

use url::Url;

/// How long a TCP (and TLS) connection may take to establish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client using rustls with the ring provider (installed once per process).
pub(crate) fn default_client() -> Result<reqwest::Client, reqwest::Error> {
    builder().build()
}

/// The publisher's client: it follows only the redirects that repeat a `POST`
/// with its body (307 and 308). After a 301, 302 or 303 a client sends a `GET`
/// without the update, and the page it lands on (often a login form) would be
/// taken for the hub's answer: the publisher reports the redirect instead.
///
/// Its connections must be made within three quarters of `timeout` (and
/// [`CONNECT_TIMEOUT`]): a publish whose whole time runs out while
/// connecting would be reported as one the hub may have taken, which a
/// connection never made cannot be.
pub(crate) fn publisher_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let repeats_the_post = matches!(attempt.status().as_u16(), 307 | 308);
        if repeats_the_post && attempt.previous().len() < MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout * 3 / 4))
        .redirect(policy)
        .build()
}

/// The most redirects a publish follows, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

fn builder() -> reqwest::ClientBuilder {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT)
}

/// The URL's scheme if it is not one an HTTP client can follow.
pub(crate) fn unsupported_scheme(url: &Url) -> Option<String> {
    match url.scheme() {
        "http" | "https" => None,
        other => Some(other.to_owned()),
    }
}
