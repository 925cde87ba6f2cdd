//! The errors of the event source and of the publisher.

use http::{HeaderMap, StatusCode};

/// What an [`EventSource`](crate::EventSource) can report.
///
/// [`Error::is_fatal`] tells the two kinds apart: after a fatal error the
/// stream ends (the server said stop, its certificate is refused, an event
/// is too large, or the request cannot be made); after any other error the
/// event source reconnects on its own, as a browser does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A header given to the builder is not a valid HTTP header. Fatal, from `build`.
    #[error("invalid request header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// The URL's scheme is neither `http` nor `https`. Fatal, from `build`.
    #[error("unsupported URL scheme {0:?} (expected http or https)")]
    UnsupportedScheme(String),
    /// The HTTP client could not be created (TLS setup). Fatal, from `build`.
    #[error("cannot create the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request cannot be built or sent in a way that retrying would fix. Fatal.
    #[error("invalid request")]
    Request(#[source] reqwest::Error),
    /// The connection could not be made or the request got no answer
    /// (refused, DNS failure, timeout). The event source retries.
    #[error("cannot connect")]
    Connect(#[source] reqwest::Error),
    /// The server's TLS certificate failed verification (unknown issuer,
    /// self-signed, a CA certificate used as the server's, a name that does
    /// not match, expired…). Fatal: unlike a network error, retrying cannot
    /// fix it, and a browser does not retry either. The source names the
    /// certificate problem.
    #[error("the server's TLS certificate is not trusted")]
    Certificate(#[source] reqwest::Error),
    /// The connection broke while the stream was being read. The event source retries.
    #[error("connection lost")]
    Disconnected(#[source] reqwest::Error),
    /// The server ended the stream cleanly. The event source reconnects, as a
    /// browser's does (firing its `error` event then too), after the
    /// reconnection delay.
    #[error("the server ended the stream")]
    Ended,
    /// The stream sent an event (or line) larger than the configured maximum;
    /// the connection was dropped. Fatal: a server that resumes from the
    /// `Last-Event-ID` would send the same event again, so reconnecting could
    /// only fail the same way.
    #[error("event stream refused")]
    Parse(#[source] herald_sse::Error),
    /// The server answered 204 No Content: it asks the client to stop. Fatal.
    #[error("the server answered 204 No Content (it asks the client not to reconnect)")]
    NoContent,
    /// The server answered a status other than 200 (and 204). Fatal, as in a
    /// browser, which fails the connection on any other status, 2xx included.
    #[error("the server answered {status}{}", colon_then(problem))]
    Status {
        /// The status of the answer.
        status: StatusCode,
        /// The headers of the answer (for instance a `WWW-Authenticate` challenge).
        headers: Box<HeaderMap>,
        /// What the server said: an RFC 9457 problem document's `title: detail`,
        /// else the body's text, else the `WWW-Authenticate` challenge's
        /// `error_description`; control characters escaped; possibly empty.
        problem: String,
    },
    /// The server answered with a content type other than `text/event-stream`. Fatal.
    #[error(
        "the server answered with content type {}, not text/event-stream",
        content_type.as_deref().unwrap_or("(none)")
    )]
    ContentType {
        /// The `Content-Type` of the answer, if it had one (and it was text).
        content_type: Option<String>,
    },
}

impl Error {
    /// True when the event source has stopped for good after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::Connect(_) | Error::Disconnected(_) | Error::Ended
        )
    }
}

/// What can go wrong when publishing an [`Update`](crate::Update).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The update has no topic; a hub requires at least one.
    #[error("an update needs at least one topic")]
    NoTopic,
    /// The token cannot be sent in an `Authorization` header.
    #[error("the token contains characters that cannot be sent in a header")]
    InvalidToken,
    /// The URL's scheme is neither `http` nor `https`.
    #[error("unsupported URL scheme {0:?} (expected http or https)")]
    UnsupportedScheme(String),
    /// The HTTP client could not be created (TLS setup).
    #[error("cannot create the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request was not sent: the hub could not be reached (refused, DNS
    /// failure, no connection in time). The update was not published.
    #[error("cannot reach the hub")]
    Request(#[source] reqwest::Error),
    /// The request was sent but no answer came (timeout, connection closed):
    /// the hub may have published the update, so a retry may publish it twice.
    #[error("the hub did not answer (the update may have been published)")]
    NoAnswer(#[source] reqwest::Error),
    /// The answer began but broke off before its end.
    #[error("the hub's answer ({status}) was cut short{}", if status.is_success() {
        " (the update may have been published)"
    } else {
        ""
    })]
    CutShort {
        /// The status of the answer.
        status: StatusCode,
        /// Why the answer ended.
        #[source]
        source: reqwest::Error,
    },
    /// The hub answered 200 with something that is not an event id.
    #[error("the hub answered 200 OK, but not with an event id: {0}")]
    NotAnId(String),
    /// The server answered 200 with a web page or a JSON document (`text/html`,
    /// `application/json`, …): the URL is not a hub's publish endpoint, or a
    /// proxy, API gateway or login page stands in front of it, and the update
    /// was most likely not published.
    #[error("the server answered 200 with {content_type}, not a Mercure hub's event id")]
    NotAHub {
        /// The media type of the answer, without its parameters.
        content_type: String,
    },
    /// The hub answered a status other than 200 (a redirect other than 307
    /// and 308 included: the update was not published).
    #[error("the hub answered {status}{}", colon_then(problem))]
    Rejected {
        /// The status of the answer.
        status: StatusCode,
        /// The problem as the hub described it: `title: detail` from an RFC 9457
        /// `application/problem+json` document, else the body text, else the
        /// `WWW-Authenticate` challenge's `error_description`; a redirect's
        /// target first. Control characters are escaped; possibly empty.
        problem: String,
    },
}

/// `": text"`, or nothing for an empty text.
fn colon_then(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}
