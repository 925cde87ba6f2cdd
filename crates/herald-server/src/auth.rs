//! Finding the access token in a request and turning it into [`Grants`].

use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{HeaderMap, header};
use herald_hub::{Grants, Hub, Matcher, MatcherType, SubscribeGrant};
use herald_token::claims::{Action, MatchType, TopicMatcher};
use herald_token::{LegacyToken, OAuthError, Verifier};

use crate::compat::{Compatibility, Purpose};
use crate::error::{BearerError, ServerError};
use crate::form;

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
    /// Whether the token was a pre-draft-08 one (the `mercure` claim), so
    /// answers take the older revision's shapes.
    pub legacy: bool,
}

impl Client {
    /// A client that presented no token.
    pub fn anonymous() -> Self {
        Self {
            grants: Grants::none(),
            subject: None,
            expires_at: None,
            via_cookie: false,
            legacy: false,
        }
    }
}

/// Where a token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Header,
    Query,
    Cookie,
}

/// Verifies tokens presented in the `Authorization` header or the cookie.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Option<Arc<Verifier>>,
    cookie_name: String,
    compatibility: Option<Arc<Compatibility>>,
    hub: Hub,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("verifier", &self.verifier.is_some())
            .field("cookie_name", &self.cookie_name)
            .field("compatibility", &self.compatibility.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Tokens are checked by `verifier`; without one, every presented token is refused.
    pub fn new(verifier: Option<Arc<Verifier>>, cookie_name: String, hub: Hub) -> Self {
        Self {
            verifier,
            cookie_name,
            compatibility: None,
            hub,
        }
    }

    /// Also accepts the pre-draft-08 presentations and tokens.
    pub fn with_compatibility(mut self, compatibility: Option<Arc<Compatibility>>) -> Self {
        self.compatibility = compatibility;
        self
    }

    /// The cookie name the token may be presented in.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The client behind the request, `None` when it presented no token.
    ///
    /// The `Authorization` header wins; then, in compatibility mode, the
    /// `authorization` query parameter; then the cookie. `purpose` picks the
    /// key set a pre-draft-08 token must be signed with.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        purpose: Purpose,
    ) -> Result<Option<Client>, ServerError> {
        let Some((token, source)) = self.find_token(headers, query)? else {
            return Ok(None);
        };
        let via_cookie = source == Source::Cookie;
        if let Some(compatibility) = &self.compatibility
            && !herald_token::declares_access_token(&token)
        {
            let Some(legacy) = compatibility.verifier(purpose) else {
                let role = match purpose {
                    Purpose::Publish => "publisher",
                    Purpose::Subscribe => "subscriber",
                };
                return Err(invalid_token(
                    "no_legacy_key",
                    &format!(
                        "the token is not an access token (`typ: at+jwt`) and no legacy {role} key is configured"
                    ),
                ));
            };
            let verified = legacy.verify(&token).map_err(token_error)?;
            return self.legacy_client(&verified, via_cookie).map(Some);
        }
        let Some(verifier) = &self.verifier else {
            return Err(invalid_token(
                "no_issuer",
                "this hub trusts no token issuer",
            ));
        };
        let verified = verifier.verify(&token).map_err(token_error)?;
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
            legacy: false,
        }))
    }

    /// The grants of a `mercure` claim: its selectors, and its payload
    /// attached to every subscription as the older revision did.
    fn legacy_client(&self, token: &LegacyToken, via_cookie: bool) -> Result<Client, ServerError> {
        let selectors = |name: &str, values: &[String]| {
            values
                .iter()
                .map(|value| {
                    self.hub
                        .matcher(name, MatcherType::Selector, value)
                        .map_err(|e| {
                            invalid_token(
                                "invalid_mercure_claim",
                                &format!("a topic selector of the token is invalid: {e}"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let payload: Option<Arc<str>> = token.payload.as_ref().map(|p| p.to_string().into());
        let mut grants = Grants {
            publish: selectors("mercure.publish", &token.publish)?,
            subscribe: Vec::new(),
            payload: payload.clone(),
        };
        if !token.subscribe.is_empty() {
            grants.subscribe.push(SubscribeGrant {
                topics: selectors("mercure.subscribe", &token.subscribe)?,
                payload,
            });
        }
        Ok(Client {
            grants: Arc::new(grants),
            subject: token.subject.as_ref().map(|sub| format!("mercure {sub}")),
            expires_at: token.expires_at,
            via_cookie,
            legacy: true,
        })
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

    /// The token and where it was found.
    fn find_token<'r>(
        &self,
        headers: &'r HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<(std::borrow::Cow<'r, str>, Source)>, ServerError> {
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
            return Ok(Some((token.into(), Source::Header)));
        }
        if self.compatibility.is_some()
            && let Some(query) = query
        {
            let pairs = form::parse(query.as_bytes()).map_err(ServerError::BadRequest)?;
            if let Some((_, token)) = pairs.into_iter().find(|(name, _)| name == "authorization") {
                if token.is_empty() {
                    return Err(invalid_request(
                        "malformed_query",
                        "the `authorization` query parameter carries no token",
                    ));
                }
                return Ok(Some((token.into(), Source::Query)));
            }
        }
        let legacy_cookie = self
            .compatibility
            .as_deref()
            .map(Compatibility::cookie_name);
        for name in std::iter::once(self.cookie_name.as_str()).chain(legacy_cookie) {
            if let Some(token) = cookie(headers, name) {
                return Ok(Some((token.into(), Source::Cookie)));
            }
        }
        Ok(None)
    }
}

/// The value of the cookie `name`, if the request carries a non-empty one.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((n, token)) = pair.trim().split_once('=')
                && n == name
                && !token.is_empty()
            {
                return Some(token.trim_matches('"'));
            }
        }
    }
    None
}

/// A token the verifier refused: `400 invalid_request` when it is not a JWS
/// at all (as RFC 6750 says), `401 invalid_token` otherwise.
fn token_error(e: herald_token::Error) -> ServerError {
    match e.oauth_error() {
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
