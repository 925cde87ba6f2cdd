//! [`Publisher`]: posts [`Update`]s to a Mercure hub's publish endpoint.

use std::time::Duration;

use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::sync::OnceCell;
use url::Url;

use crate::{PublishError, Update, http_client};

/// How long a publish may take by default, from connecting to the last byte of the answer.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest problem text kept from a rejection, in characters.
const MAX_PROBLEM_CHARS: usize = 1000;

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

    /// Uses this HTTP client instead of a new one.
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = OnceCell::new_with(Some(client));
        self
    }

    /// Publishes `update` and returns the id the hub assigned (the body of its
    /// 200 answer, without a trailing line break).
    pub async fn publish(&self, update: &Update) -> Result<String, PublishError> {
        if update.topics.is_empty() {
            return Err(PublishError::NoTopic);
        }
        if let Some(scheme) = http_client::unsupported_scheme(&self.hub) {
            return Err(PublishError::UnsupportedScheme(scheme));
        }
        let client = self
            .client
            .get_or_try_init(|| async { http_client::default_client() })
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
        let response = request.send().await.map_err(PublishError::Request)?;
        let status = response.status();
        let is_problem = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                let essence = value.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/problem+json")
            });
        let body = response.text().await.map_err(PublishError::Request)?;
        if status != StatusCode::OK {
            let problem = if is_problem {
                problem_text(&body).unwrap_or_else(|| one_line(&body))
            } else {
                one_line(&body)
            };
            return Err(PublishError::Rejected { status, problem });
        }
        Ok(body.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// The fields of an RFC 9457 problem document that describe it to a person.
#[derive(serde::Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
}

/// `title: detail` (or whichever exists) from a problem document.
fn problem_text(body: &str) -> Option<String> {
    let problem: Problem = serde_json::from_str(body).ok()?;
    let text = match (problem.title, problem.detail) {
        (Some(title), Some(detail)) => format!("{title}: {detail}"),
        (Some(text), None) | (None, Some(text)) => text,
        (None, None) => return None,
    };
    Some(one_line(&text))
}

/// The text with its line breaks folded into spaces, trimmed and bounded.
fn one_line(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(MAX_PROBLEM_CHARS) {
        Some((cut, _)) => format!("{}…", &folded[..cut]),
        None => folded,
    }
}

#[cfg(test)]
mod tests {
    use super::{one_line, problem_text};

    #[test]
    fn a_problem_document_is_described_by_its_title_and_detail() {
        let both = r#"{"type":"about:blank","title":"Invalid topic","detail":"topic is empty","status":400}"#;
        assert_eq!(
            problem_text(both).as_deref(),
            Some("Invalid topic: topic is empty")
        );
        assert_eq!(
            problem_text(r#"{"title":"Forbidden"}"#).as_deref(),
            Some("Forbidden")
        );
        assert_eq!(problem_text(r#"{"detail":"no"}"#).as_deref(), Some("no"));
        assert_eq!(problem_text(r#"{"status":400}"#), None);
        assert_eq!(problem_text("not json"), None);
    }

    #[test]
    fn problem_texts_are_folded_onto_one_bounded_line() {
        assert_eq!(one_line("  bad\r\n  request\n"), "bad request");
        let long = "é".repeat(5000);
        let folded = one_line(&long);
        assert_eq!(folded.chars().count(), super::MAX_PROBLEM_CHARS + 1);
        assert!(folded.ends_with('…'));
    }
}
