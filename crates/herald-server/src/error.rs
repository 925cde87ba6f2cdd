//! Errors of the HTTP edge and how each becomes a response.
//!
//! Token failures carry the RFC 6750 `WWW-Authenticate: Bearer` challenge the
//! Mercure spec prescribes; every other failure is an RFC 9457 problem
//! document naming what is wrong.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_hub::{ErrorKind, HubError};

/// The RFC 6750 error codes the hub uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No token was presented for an operation that needs one (no error code).
    Missing,
    /// The token failed validation.
    InvalidToken,
    /// The token does not allow the operation.
    InsufficientScope,
    /// The token or its presentation is malformed.
    InvalidRequest,
}

impl BearerError {
    fn status(self) -> StatusCode {
        match self {
            BearerError::Missing | BearerError::InvalidToken => StatusCode::UNAUTHORIZED,
            BearerError::InsufficientScope => StatusCode::FORBIDDEN,
            BearerError::InvalidRequest => StatusCode::BAD_REQUEST,
        }
    }

    fn code(self) -> Option<&'static str> {
        match self {
            BearerError::Missing => None,
            BearerError::InvalidToken => Some("invalid_token"),
            BearerError::InsufficientScope => Some("insufficient_scope"),
            BearerError::InvalidRequest => Some("invalid_request"),
        }
    }
}

/// Everything the edge can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The hub refused the update or subscription.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Authentication or authorization failed.
    #[error("{detail}")]
    Bearer {
        /// Which RFC 6750 error.
        error: BearerError,
        /// A short stable label for metrics (never a token or claim value).
        reason: &'static str,
        /// What exactly was wrong (logged and sent as `error_description`).
        detail: String,
    },
    /// The request is malformed independently of the token.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than the configured limit.
    #[error("the request body is larger than the {0}-byte limit")]
    BodyTooLarge(usize),
    /// The body's media type is not one the endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The method is not served on this path.
    #[error("the {method} method is not allowed here")]
    MethodNotAllowed {
        /// The method of the request.
        method: String,
        /// The methods the path serves, for the `Allow` header.
        allow: &'static str,
    },
    /// The request is refused for a reason other than its token (403).
    #[error("{0}")]
    Forbidden(String),
    /// A connection limit was reached.
    #[error("{detail}")]
    TooManyConnections {
        /// Which limit: `total`, `address`, `subject` or `address_patterns`.
        limit: &'static str,
        /// What was refused.
        detail: String,
    },
    /// The resource does not exist; the detail says what was looked for.
    #[error("{0}")]
    NotFound(String),
    /// The hub cannot serve the request now (it is shutting down) (503).
    #[error("{0}")]
    Unavailable(String),
}

/// Error responses need the URL of the protected resource metadata for the
/// `resource_metadata` challenge parameter.
#[derive(Debug)]
pub struct ErrorResponse {
    /// The error.
    pub error: ServerError,
    /// The absolute URL of the protected resource metadata document.
    pub resource_metadata: String,
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let detail = self.error.to_string();
        match self.error {
            ServerError::Bearer { error, .. } => {
                let mut challenge =
                    format!("Bearer resource_metadata=\"{}\"", self.resource_metadata);
                if let Some(code) = error.code() {
                    challenge.push_str(&format!(", error=\"{code}\""));
                    // error_description must be quoted-string safe: drop quotes and backslashes.
                    let description: String = detail
                        .chars()
                        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
                        .collect();
                    challenge.push_str(&format!(", error_description=\"{description}\""));
                }
                let mut response = problem(error.status(), &detail);
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            ServerError::Hub(ref hub) => {
                let status = match hub.kind() {
                    ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
                    ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorKind::Internal => StatusCode::SERVICE_UNAVAILABLE,
                    ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
                    ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
                };
                let mut response = problem(status, &detail);
                if hub.kind() == ErrorKind::Overloaded {
                    // The backlog drains by itself within seconds (tens of
                    // thousands of events a second): a short, fixed wait.
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
                }
                if status == StatusCode::INSUFFICIENT_STORAGE {
                    // Space comes back when an operator frees it, not by
                    // itself: a publisher that honours this retries calmly.
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
                }
                response
            }
            ServerError::BadRequest(_) => problem(StatusCode::BAD_REQUEST, &detail),
            ServerError::BodyTooLarge(_) => problem(StatusCode::PAYLOAD_TOO_LARGE, &detail),
            ServerError::UnsupportedMediaType(_) => {
                problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, &detail)
            }
            ServerError::MethodNotAllowed { allow, .. } => {
                let mut response = problem(StatusCode::METHOD_NOT_ALLOWED, &detail);
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                response
            }
            ServerError::Forbidden(_) => problem(StatusCode::FORBIDDEN, &detail),
            ServerError::TooManyConnections { .. } => {
                let mut response = problem(StatusCode::TOO_MANY_REQUESTS, &detail);
                // Slots free up as other subscribers leave: a few seconds is
                // a fair wait for a client that honours it.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            ServerError::NotFound(_) => problem(StatusCode::NOT_FOUND, &detail),
            ServerError::Unavailable(_) => problem(StatusCode::SERVICE_UNAVAILABLE, &detail),
        }
    }
}

/// An RFC 9457 problem document.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        problem_json(status, detail),
    )
        .into_response()
}

/// The body of [`problem`]'s document, for answers written without a
/// `Response` (see `crate::refusals`).
pub(crate) fn problem_json(status: StatusCode, detail: &str) -> String {
    serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    })
    .to_string()
}
