//! [`EventSource`]: the reconnecting stream, and the connection loop behind it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use herald_sse::{MessageEvent, Parser};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use url::Url;

use crate::{Backoff, Error, EventSourceBuilder};

/// The name of the request header carrying the last event ID.
pub(crate) const LAST_EVENT_ID: &str = "last-event-id";

/// What an [`EventSource`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A connection was established (a 200 `text/event-stream` answer); sent on
    /// every reconnection. The headers carry, for instance, a Mercure hub's
    /// `Mercure-Last-Event-ID`.
    Open {
        /// The status of the answer.
        status: StatusCode,
        /// The headers of the answer.
        headers: HeaderMap,
    },
    /// A dispatched event.
    Event(MessageEvent),
}

/// A reconnecting event stream, behaving like a browser's `EventSource`.
///
/// Poll it as a [`Stream`] of `Result<Item, Error>`. Each connection sends
/// `Accept: text/event-stream`, `Cache-Control: no-cache`, the builder's
/// headers and body, and `Last-Event-ID` when a last event ID is known. A
/// connection that ends, cleanly ([`Error::Ended`]) or not, is followed by a
/// reconnection after the [`Backoff`] delay; an incomplete final event is
/// dropped. Errors after which the source reconnects are yielded too (see
/// [`Error::is_fatal`]), as a browser fires `error` before each
/// reconnection; after a fatal one the stream ends.
/// Dropping the stream closes the connection.
pub struct EventSource {
    inner: BoxStream<'static, Result<Item, Error>>,
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSource").finish_non_exhaustive()
    }
}

impl EventSource {
    /// Starts configuring an event source for `url`.
    pub fn builder(url: Url) -> EventSourceBuilder {
        EventSourceBuilder::new(url)
    }

    pub(crate) fn start(
        client: reqwest::Client,
        request: RequestTemplate,
        last_event_id: String,
        backoff: Backoff,
        max_event_size: usize,
    ) -> Self {
        let driver = Driver {
            client,
            request,
            backoff,
            max_event_size,
            last_event_id,
            retry: None,
            failures: 0,
            wait_before_connecting: false,
            connection: None,
            done: false,
        };
        let inner = futures_util::stream::unfold(driver, |mut driver| async move {
            let item = driver.next_item().await?;
            Some((item, driver))
        });
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for EventSource {
    type Item = Result<Item, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The parts of the request that every connection repeats.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    pub(crate) url: Url,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
}

/// One open connection: the response body and the parser reading it.
struct Connection {
    response: reqwest::Response,
    parser: Parser,
}

/// The state carried from one item to the next.
struct Driver {
    client: reqwest::Client,
    request: RequestTemplate,
    backoff: Backoff,
    max_event_size: usize,
    /// The event source's last event ID, sent as `Last-Event-ID`.
    last_event_id: String,
    /// The server's latest valid `retry`, kept across connections.
    retry: Option<Duration>,
    /// Consecutive connection attempts that failed since the last open.
    failures: u32,
    wait_before_connecting: bool,
    connection: Option<Connection>,
    done: bool,
}

impl Driver {
    async fn next_item(&mut self) -> Option<Result<Item, Error>> {
        loop {
            if self.done {
                return None;
            }
            let Some(connection) = &mut self.connection else {
                return Some(self.connect().await);
            };
            let parsed = connection.parser.next_event();
            if let Some(millis) = connection.parser.retry() {
                self.retry = Some(Duration::from_millis(millis));
            }
            match parsed {
                Ok(Some(event)) => return Some(Ok(Item::Event(event))),
                Ok(None) => {}
                Err(error) => {
                    self.close_connection();
                    self.done = true;
                    return Some(Err(Error::Parse(error)));
                }
            }
            match connection.response.chunk().await {
                Ok(Some(chunk)) => connection.parser.feed(&chunk),
                Ok(None) => {
                    self.close_connection();
                    return Some(Err(Error::Ended));
                }
                Err(error) => {
                    self.close_connection();
                    return Some(Err(Error::Disconnected(error)));
                }
            }
        }
    }

    /// Drops the connection (and any unfinished event), keeping the last event ID.
    fn close_connection(&mut self) {
        if let Some(mut connection) = self.connection.take() {
            connection.parser.finish();
            self.last_event_id = connection.parser.last_event_id().to_owned();
        }
        self.wait_before_connecting = true;
    }

    /// Waits as the backoff says, then makes one connection attempt.
    async fn connect(&mut self) -> Result<Item, Error> {
        if self.wait_before_connecting {
            let wait = self.backoff.random_wait(self.retry, self.failures);
            tracing::debug!(
                ?wait,
                failures = self.failures,
                "waiting before reconnecting"
            );
            tokio::time::sleep(wait).await;
        }
        self.wait_before_connecting = true;
        match self.open().await {
            Ok(item) => {
                self.failures = 0;
                Ok(item)
            }
            Err(error) => {
                if error.is_fatal() {
                    self.done = true;
                } else {
                    self.failures = self.failures.saturating_add(1);
                }
                Err(error)
            }
        }
    }

    async fn open(&mut self) -> Result<Item, Error> {
        let request = &self.request;
        let mut headers = request.headers.clone();
        if !self.last_event_id.is_empty() {
            // Replaces a `Last-Event-ID` given to the builder: the stream's is newer.
            match HeaderValue::from_bytes(self.last_event_id.as_bytes()) {
                Ok(value) => {
                    headers.insert(LAST_EVENT_ID, value);
                }
                // A browser sends it (only NUL, CR and LF are barred there);
                // the HTTP stack here refuses every control character but tab.
                Err(_) => tracing::warn!(
                    "the last event ID {:?} holds a control character, which cannot be sent \
                     in the Last-Event-ID header; reconnecting without it",
                    self.last_event_id
                ),
            }
        }
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone())
            .headers(headers);
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.map_err(|error| {
            if error.is_builder() {
                Error::Request(error)
            } else if is_certificate_error(&error) {
                Error::Certificate(error)
            } else {
                Error::Connect(error)
            }
        })?;
        if let Err(error) = check_response(&response) {
            return Err(match error {
                Error::Status {
                    status, headers, ..
                } => {
                    // Events are no explanation of a refusal: say why they are refused.
                    let problem = if is_event_stream(&headers) {
                        "its body is an event stream, which only a 200 OK opens".to_owned()
                    } else {
                        crate::rejection::describe_answer(response).await
                    };
                    Error::Status {
                        status,
                        headers,
                        problem,
                    }
                }
                other => other,
            });
        }
        let item = Item::Open {
            status: response.status(),
            headers: response.headers().clone(),
        };
        let parser = Parser::with_max_event_size(self.max_event_size)
            .with_last_event_id(self.last_event_id.clone());
        self.connection = Some(Connection { response, parser });
        Ok(item)
    }
}

/// Fails the connection as a browser does: any status but 200 (204 meaning
/// "stop"), then any content type but `text/event-stream` (parameters such as
/// `charset` allowed). The problem text of a refused status is read afterwards.
fn check_response(response: &reqwest::Response) -> Result<(), Error> {
    let status = response.status();
    if status == StatusCode::NO_CONTENT {
        return Err(Error::NoContent);
    }
    if status != StatusCode::OK {
        return Err(Error::Status {
            status,
            headers: Box::new(response.headers().clone()),
            problem: String::new(),
        });
    }
    if is_event_stream(response.headers()) {
        return Ok(());
    }
    let values = content_types(response.headers());
    Err(Error::ContentType {
        content_type: (!values.is_empty()).then(|| values.join(", ")),
    })
}

/// Whether the `Content-Type` of `headers` is `text/event-stream`, as a
/// browser reads it (see [`mime_essence`]).
fn is_event_stream(headers: &http::HeaderMap) -> bool {
    mime_essence(&content_types(headers)).as_deref() == Some(herald_sse::CONTENT_TYPE)
}

/// Every `Content-Type` value, decoded byte for character as Fetch does.
fn content_types(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(CONTENT_TYPE)
        .iter()
        .map(|value| {
            value
                .as_bytes()
                .iter()
                .map(|&byte| char::from(byte))
                .collect()
        })
        .collect()
}

/// Whether the TLS handshake failed because the server's certificate was
/// refused (rustls' `InvalidCertificate`, whatever its reason), somewhere in
/// the error's chain of causes.
///
/// The rustls error reaches us wrapped in `io::Error`s (two, through
/// hyper-util and tokio-rustls), whose `source()` skips the error they wrap
/// (it returns that error's own source): an `io::Error` is followed into the
/// error it wraps instead.
fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(rustls::Error::InvalidCertificate(_)) = error.downcast_ref() {
            return true;
        }
        cause = match error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(wrapped) => Some(wrapped),
            None => error.source(),
        };
    }
    false
}

/// The essence (`type/subtype`, lower case) of the media type that the
/// `Content-Type` header `values` give, as Fetch's "extract a MIME type"
/// finds it, which is what a browser's `EventSource` checks: the values are
/// split at commas outside quoted strings, and the last one that parses as a
/// media type (other than `*/*`) wins. `None` when none parses.
fn mime_essence(values: &[String]) -> Option<String> {
    let combined = values.join(", ");
    split_header_values(&combined)
        .into_iter()
        .filter_map(|value| parse_essence(&value))
        .rfind(|essence| essence != "*/*")
}

/// Fetch's "split": the comma-separated values of a decoded header, commas in
/// quoted strings kept, each value trimmed of spaces and tabs.
fn split_header_values(input: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut value = String::new();
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            ',' => values.push(std::mem::take(&mut value)),
            '"' => {
                value.push(c);
                while let Some(c) = chars.next() {
                    value.push(c);
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        _ => {}
                    }
                }
            }
            _ => value.push(c),
        }
    }
    values.push(value);
    values
        .into_iter()
        .map(|value| value.trim_matches([' ', '\t']).to_owned())
        .collect()
}

/// The lower-case `type/subtype` of one media type, or `None` when it does not
/// parse (an empty or non-token type or subtype).
fn parse_essence(value: &str) -> Option<String> {
    let value = value.trim_matches([' ', '\t', '\n', '\r']);
    let (kind, rest) = value.split_once('/')?;
    let subtype = rest.split(';').next().unwrap_or_default();
    let subtype = subtype.trim_end_matches([' ', '\t', '\n', '\r']);
    let is_token = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    };
    (is_token(kind) && is_token(subtype)).then(|| format!("{kind}/{subtype}").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::{is_certificate_error, mime_essence};

    /// The essence of the media type of `Content-Type` header values.
    fn essence(values: &[&str]) -> Option<String> {
        let values: Vec<String> = values.iter().map(|&value| value.to_owned()).collect();
        mime_essence(&values)
    }

    #[test]
    fn the_media_type_is_compared_without_parameters_or_case() {
        let stream = Some("text/event-stream".to_owned());
        assert_eq!(essence(&["text/event-stream"]), stream);
        assert_eq!(essence(&["Text/Event-Stream; charset=utf-8"]), stream);
        assert_eq!(essence(&[" text/event-stream ;"]), stream);
        assert_eq!(essence(&["text/plain"]).as_deref(), Some("text/plain"));
        assert_eq!(
            essence(&["text/event-streams"]).as_deref(),
            Some("text/event-streams")
        );
        assert_eq!(essence(&[""]), None);
        assert_eq!(essence(&[]), None);
    }

    #[test]
    fn the_last_media_type_that_parses_wins_as_in_fetch() {
        let stream = Some("text/event-stream".to_owned());
        // One header with two values, two headers, and values that do not parse.
        assert_eq!(essence(&["text/html, text/event-stream"]), stream);
        assert_eq!(essence(&["text/html", "text/event-stream"]), stream);
        assert_eq!(essence(&["text/event-stream, "]), stream);
        assert_eq!(essence(&["text/event-stream, */*"]), stream);
        assert_eq!(essence(&["text/event-stream, nonsense"]), stream);
        assert_eq!(
            essence(&["text/event-stream", "text/html"]).as_deref(),
            Some("text/html")
        );
        // A comma inside a quoted parameter does not split the value.
        assert_eq!(
            essence(&["text/event-stream; note=\"a, text/html\""]),
            stream
        );
        assert_eq!(essence(&["text/ev ent-stream"]), None);
        assert_eq!(essence(&["/event-stream"]), None);
    }

    /// A cause wrapping another, as hyper's and reqwest's errors do.
    #[derive(Debug)]
    struct Wrapper(Box<dyn std::error::Error + Send + Sync>);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn a_refused_certificate_is_found_inside_an_io_error_in_the_chain() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let chain = Wrapper(Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            refused,
        )));
        assert!(is_certificate_error(&chain));
        // As reqwest reports it: an `io::Error` wrapping an `io::Error` wrapping rustls'.
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let twice = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            refused,
        ));
        assert!(is_certificate_error(&Wrapper(Box::new(twice))));

        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_certificate_error(&Wrapper(Box::new(refused))));
        // Another TLS failure (a plain-HTTP server on an https URL, say) is not a certificate's.
        let garbled = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let chain = Wrapper(Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            garbled,
        )));
        assert!(!is_certificate_error(&chain));
    }
}
