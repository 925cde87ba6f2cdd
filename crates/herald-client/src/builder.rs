//! [`EventSourceBuilder`]: everything about the request, checked once in `build`.

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use url::Url;

use crate::event_source::{EventSource, LAST_EVENT_ID, RequestTemplate};
use crate::{Backoff, Error, http_client};

/// Configures an [`EventSource`]; made by [`EventSource::builder`].
#[derive(Debug, Clone)]
pub struct EventSourceBuilder {
    url: Url,
    method: Method,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
    last_event_id: String,
    backoff: Backoff,
    max_event_size: usize,
    client: Option<reqwest::Client>,
}

impl EventSourceBuilder {
    pub(crate) fn new(url: Url) -> Self {
        Self {
            url,
            method: Method::GET,
            headers: Vec::new(),
            body: None,
            last_event_id: String::new(),
            backoff: Backoff::default(),
            max_event_size: herald_sse::DEFAULT_MAX_EVENT_SIZE,
            client: None,
        }
    }

    /// Adds a request header, sent on every connection. A header named like one
    /// the event source sets itself (`Accept`, `Cache-Control`) replaces it;
    /// several headers with one name are all sent. A `Last-Event-ID` given
    /// here counts as [`last_event_id`](Self::last_event_id) (which wins when
    /// both are given): it is sent until the stream sets another, and not after
    /// the stream resets it with an empty `id`.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request method (default `GET`); Mercure also defines `QUERY`:
    /// `Method::from_bytes(b"QUERY")`.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// A request body and its content type, sent on every connection.
    pub fn body(mut self, content_type: impl Into<String>, body: impl Into<Bytes>) -> Self {
        self.body = Some((content_type.into(), body.into()));
        self
    }

    /// The last event ID to resume from: sent as `Last-Event-ID` on the first
    /// connection, and carried by events until the stream sets another.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// The reconnection policy (default: [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The largest line or event data accepted, in bytes (default
    /// [`herald_sse::DEFAULT_MAX_EVENT_SIZE`]); a larger one ends the event
    /// source with [`Error::Parse`] (a resuming server would send it again).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// Uses this HTTP client instead of a new one (to share its connection pool
    /// and settings). Do not give it an overall request timeout: it would cut
    /// every stream.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Checks the configuration and returns the event source. Nothing is sent
    /// until the stream is first polled.
    pub fn build(self) -> Result<EventSource, Error> {
        if let Some(scheme) = http_client::unsupported_scheme(&self.url) {
            return Err(Error::UnsupportedScheme(scheme));
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(herald_sse::CONTENT_TYPE));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Some((content_type, _)) = &self.body {
            headers.insert(
                CONTENT_TYPE,
                header_value(CONTENT_TYPE.as_str(), content_type)?,
            );
        }
        let mut custom = HeaderMap::new();
        for (name, value) in &self.headers {
            let parsed =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| Error::InvalidHeader {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
            custom.append(parsed, header_value(name, value)?);
        }
        let mut last_event_id = self.last_event_id;
        if let Some(value) = custom.remove(LAST_EVENT_ID)
            && last_event_id.is_empty()
        {
            last_event_id = String::from_utf8_lossy(value.as_bytes()).into_owned();
        }
        for name in custom.keys() {
            headers.remove(name);
        }
        headers.extend(custom);
        let client = match self.client {
            Some(client) => client,
            None => http_client::default_client().map_err(Error::Client)?,
        };
        Ok(EventSource::start(
            client,
            RequestTemplate {
                url: self.url,
                method: self.method,
                headers,
                body: self.body.map(|(_, body)| body),
            },
            last_event_id,
            self.backoff,
            self.max_event_size,
        ))
    }
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_bytes(value.as_bytes()).map_err(|_| Error::InvalidHeader {
        name: name.to_owned(),
        reason: "the value contains a control character".to_owned(),
    })
}
