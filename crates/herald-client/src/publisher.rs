//! [`Publisher`]: posts [`Update`]s to a Mercure hub's publish endpoint.

use std::time::Duration;

use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::sync::OnceCell;
use url::Url;

use crate::{PublishError, Update, http_client, rejection};

/// How long a publish may take by default, from connecting to the last byte of the answer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest answer taken for an event id; a longer one is not an id
/// (a page from a proxy in front of the hub, say).
const MAX_ID_BYTES: usize = 8 * 1024;

/// Publishes updates to one hub, as `POST` form requests with a bearer token.
///
/// ```no_run
/// use herald_client::{Publisher, Update};
///
/// # async fn demo() -> Result<(), herald_client::PublishError> {
/// let hub = url::Url::parse("https://hub.example.com/.well-known/mercure").expect("a valid URL");
/// let publisher = Publisher::new(hub).with_token("eyJhbGciOi...");
/// let id = publisher.publish(&Update::new("https://example.com/books/1", "{}")).await?;
/// println!("published as {id}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Publisher {
    hub: Url,
    token: Option<String>,
    timeout: Duration,
    client: OnceCell<reqwest::Client>,
}

impl Publisher {
    /// A publisher for the hub at `hub` (the publish endpoint, usually
    /// `…/.well-known/mercure`), without a token.
    pub fn new(hub: Url) -> Self {
        Self {
            hub,
            token: None,
            timeout: DEFAULT_TIMEOUT,
            client: OnceCell::new(),
        }
    }

    /// Sends `Authorization: Bearer <jwt>` with every publish.
    pub fn with_token(mut self, jwt: impl Into<String>) -> Self {
        self.token = Some(jwt.into());
        self
    }

    /// Bounds each publish, from connecting to reading the answer (default 30 seconds).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses this HTTP client instead of a new one. Set its redirect policy to
    /// follow only 307 and 308 (as the publisher's own client does): after a
    /// 301, 302 or 303 a client repeats the request as a `GET` without the
    /// update, and takes the page it lands on for the hub's answer.
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = OnceCell::new_with(Some(client));
        self
    }

    /// Publishes `update` and returns the id the hub assigned (the body of its
    /// 200 answer, without a trailing line break, as sent: it may hold control
    /// characters, to escape before printing). A 200 answer that is a web page
    /// or a JSON document (`text/html`, `application/json`, …) is
    /// [`PublishError::NotAHub`]: a hub answers with the id as plain text.
    pub async fn publish(&self, update: &Update) -> Result<String, PublishError> {
        if update.topics.is_empty() {
            return Err(PublishError::NoTopic);
        }
        if let Some(scheme) = http_client::unsupported_scheme(&self.hub) {
            return Err(PublishError::UnsupportedScheme(scheme));
        }
        let client = self
            .client
            .get_or_try_init(|| async { http_client::publisher_client(self.timeout) })
            .await
            .map_err(PublishError::Client)?;
        let mut request = client
            .post(self.hub.clone())
            .timeout(self.timeout)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(crate::update::to_form(update));
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| PublishError::InvalidToken)?;
            request = request.header(AUTHORIZATION, value);
        }
        let mut response = request.send().await.map_err(|error| {
            if error.is_connect() || error.is_builder() {
                PublishError::Request(error)
            } else {
                PublishError::NoAnswer(error)
            }
        })?;
        let status = response.status();
        if status != StatusCode::OK {
            // A 307 or 308 to another origin is followed without the token
            // (reqwest, as browsers, keeps credentials to their origin): a
            // 401 there is that, not a missing `with_token`.
            let redirected =
                (response.url().origin() != self.hub.origin()).then(|| response.url().clone());
            let mut problem = rejection::describe_answer(response).await;
            if let Some(url) = redirected.filter(|_| status == StatusCode::UNAUTHORIZED) {
                let note = format!(
                    "after a redirect to {url}, another origin, to which the token is not sent"
                );
                problem = if problem.is_empty() {
                    note
                } else {
                    format!("{problem} ({note})")
                };
            }
            return Err(PublishError::Rejected { status, problem });
        }
        if let Some(content_type) = page_content_type(response.headers()) {
            return Err(PublishError::NotAHub { content_type });
        }
        let (body, too_long) = rejection::read_bounded(&mut response, MAX_ID_BYTES)
            .await
            .map_err(|source| PublishError::CutShort { status, source })?;
        let id = String::from_utf8_lossy(&body);
        let id = id.trim_end_matches(['\r', '\n']);
        if too_long {
            return Err(PublishError::NotAnId(format!(
                "its answer is longer than {MAX_ID_BYTES} bytes"
            )));
        }
        if id.is_empty() {
            return Err(PublishError::NotAnId("its answer is empty".to_owned()));
        }
        Ok(id.to_owned())
    }
}

/// The media type of an answer that is a web page or a JSON document
/// (`text/html`, `application/xhtml+xml`, `application/json` or a `+json`
/// type, whatever its case and parameters), lowercased; `None` for any other
/// answer. A hub answers its id as `text/plain`, but some send no or another
/// text type, so only what no hub sends (a login page, an API gateway's JSON)
/// is taken for "not a hub".
fn page_content_type(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let page = matches!(
        essence.as_str(),
        "text/html" | "application/xhtml+xml" | "application/json"
    ) || essence.ends_with("+json");
    page.then_some(essence)
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use http::header::{CONTENT_TYPE, HeaderValue};

    use super::page_content_type;

    #[test]
    fn pages_and_json_documents_are_not_ids() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            page_content_type(&headers)
        };
        assert_eq!(with("text/html"), Some("text/html".to_owned()));
        assert_eq!(
            with("Text/HTML; charset=utf-8"),
            Some("text/html".to_owned())
        );
        assert_eq!(
            with("application/JSON; charset=utf-8"),
            Some("application/json".to_owned())
        );
        assert_eq!(
            with("application/vnd.api+json"),
            Some("application/vnd.api+json".to_owned())
        );
        assert_eq!(
            with("application/xhtml+xml"),
            Some("application/xhtml+xml".to_owned())
        );
        assert_eq!(with("text/plain; charset=utf-8"), None);
        assert_eq!(with("application/octet-stream"), None);
        assert_eq!(page_content_type(&HeaderMap::new()), None);
    }
}
