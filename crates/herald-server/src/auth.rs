//! Finding the access token in a request and turning it into [`Grants`].

use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{HeaderMap, header};
use herald_hub::{Grants, Hub, Matcher, MatcherType, SubscribeGrant};
use herald_token::claims::{Action, MatchType, TopicMatcher};
use herald_token::{OAuthError, Verifier};

use crate::error::{BearerError, ServerError};

/// Who made a request, as far as its token says.
#[derive(Debug, Clone)]
pub struct Client {
    /// What the token allows.
    pub grants: Arc<Grants>,
    /// `iss` and `sub` of the token, the key for per-subject limits.
    pub subject: Option<String>,
    /// When the token expires.
    pub expires_at: Option<SystemTime>,
    /// Whether the token came from the cookie (an ambient credential, so
    /// cross-site request forgery must be guarded against).
    pub via_cookie: bool,
}

impl Client {
    /// A client that presented no token.
    pub fn anonymous() -> Self {
        Self {
            grants: Grants::none(),
            subject: None,
            expires_at: None,
            via_cookie: false,
        }
    }
}

/// Verifies tokens presented in the `Authorization` header or the cookie.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Option<Arc<Verifier>>,
    cookie_name: String,
    hub: Hub,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("verifier", &self.verifier.is_some())
            .field("cookie_name", &self.cookie_name)
            .finish()
    }
}

impl Authenticator {
    /// Tokens are checked by `verifier`; without one, every presented token is refused.
    pub fn new(verifier: Option<Arc<Verifier>>, cookie_name: String, hub: Hub) -> Self {
        Self {
            verifier,
            cookie_name,
            hub,
        }
    }

    /// The cookie name the token may be presented in.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The client behind the request, `None` when it presented no token.
    ///
    /// The `Authorization` header wins; the cookie is used only without it.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Client>, ServerError> {
        let Some((token, via_cookie)) = self.find_token(headers)? else {
            return Ok(None);
        };
        let Some(verifier) = &self.verifier else {
            return Err(invalid_token(
                "no_issuer",
                "this hub trusts no token issuer",
            ));
        };
        let verified = verifier.verify(token).map_err(|e| match e.oauth_error() {
            Some(OAuthError::InvalidRequest) => ServerError::Bearer {
                error: BearerError::InvalidRequest,
                reason: e.reason(),
                detail: e.to_string(),
            },
            _ => ServerError::Bearer {
                error: BearerError::InvalidToken,
                reason: e.reason(),
                detail: e.to_string(),
            },
        })?;
        let mut grants = Grants::default();
        for detail in &verified.details {
            let matchers = detail
                .topics
                .iter()
                .map(|t| self.matcher(t))
                .collect::<Result<Vec<_>, _>>()?;
            if detail.actions.contains(&Action::Publish) {
                grants.publish.extend(matchers.iter().cloned());
            }
            if detail.actions.contains(&Action::Subscribe) {
                grants.subscribe.push(SubscribeGrant {
                    topics: matchers,
                    payload: detail.payload.as_ref().map(|p| p.to_string().into()),
                });
            }
        }
        let subject = verified
            .subject
            .as_ref()
            .map(|sub| format!("{} {sub}", verified.issuer));
        Ok(Some(Client {
            grants: Arc::new(grants),
            subject,
            expires_at: Some(verified.expires_at),
            via_cookie,
        }))
    }

    fn matcher(&self, topic: &TopicMatcher) -> Result<Matcher, ServerError> {
        let matcher_type = match topic.match_type {
            MatchType::Exact => MatcherType::Exact,
            MatchType::UrlPattern => MatcherType::UrlPattern,
        };
        self.hub
            .matcher("authorization_details", matcher_type, &topic.pattern)
            .map_err(|e| {
                invalid_token(
                    "invalid_authorization_details",
                    &format!("a topic matcher of the token is invalid: {e}"),
                )
            })
    }

    /// The token and whether it came from the cookie.
    fn find_token<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> Result<Option<(&'h str, bool)>, ServerError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.to_str().map_err(|_| {
                invalid_request("malformed_header", "the Authorization header is not ASCII")
            })?;
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(invalid_request(
                    "malformed_header",
                    "the Authorization header must use the Bearer scheme",
                ));
            }
            let token = token.trim();
            if token.is_empty() {
                return Err(invalid_request(
                    "malformed_header",
                    "the Authorization header carries no token",
                ));
            }
            return Ok(Some((token, false)));
        }
        for value in headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for pair in value.split(';') {
                if let Some((name, token)) = pair.trim().split_once('=')
                    && name == self.cookie_name
                    && !token.is_empty()
                {
                    return Ok(Some((token.trim_matches('"'), true)));
                }
            }
        }
        Ok(None)
    }
}

fn invalid_token(reason: &'static str, detail: &str) -> ServerError {
    ServerError::Bearer {
        error: BearerError::InvalidToken,
        reason,
        detail: detail.to_owned(),
    }
}

fn invalid_request(reason: &'static str, detail: &str) -> ServerError {
    ServerError::Bearer {
        error: BearerError::InvalidRequest,
        reason,
        detail: detail.to_owned(),
    }
}
