//! Token verification: the [`Verifier`], its configuration, and the [`VerifiedToken`] it yields.
//!
//! [`Verifier::verify_at`] is the pure core: it takes the verification time as an argument and
//! touches nothing but the keys it holds. JWK Sets are fetched elsewhere
//! ([`Verifier::refresh_jwks`], [`Verifier::spawn_jwks_refresh`]) and only swapped in.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::claims::{Action, AuthorizationDetail, MERCURE_DETAIL_TYPE, TopicMatcher, json_kind};
use crate::jws::{
    Jws, candidate_keys, check_validity, numeric_date, optional_string, unix_seconds,
};
use crate::{Algorithm, Error, VerifyingKey};

/// Implementation-defined limits on a token, all checked before any authorization detail is
/// acted upon. Exceeding one makes the token invalid (`invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length of the compact token, in bytes. Default 16 KiB.
    pub max_token_bytes: usize,
    /// Maximum number of Mercure authorization details. Default 64.
    pub max_details: usize,
    /// Maximum number of entries in one detail's `topics` (and, for a
    /// [`LegacyVerifier`](crate::LegacyVerifier), in `mercure.publish` and in
    /// `mercure.subscribe`). Default 256.
    pub max_topics_per_detail: usize,
    /// Maximum length of one `match` value (and, for a
    /// [`LegacyVerifier`](crate::LegacyVerifier), of one topic selector), in bytes. Default 2048.
    pub max_match_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: 16 * 1024,
            max_details: 64,
            max_topics_per_detail: 256,
            max_match_bytes: 2048,
        }
    }
}

/// The default clock-skew leeway applied to `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// The default interval between two fetches of an issuer's JWK Set.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);

/// A trusted issuer and the keys bound to it.
#[derive(Debug, Clone)]
pub struct Issuer {
    id: String,
    keys: Vec<VerifyingKey>,
    jwks_url: Option<String>,
}

impl Issuer {
    /// An issuer whose `iss` is exactly `id`, with no keys yet.
    pub fn new(id: impl Into<String>) -> Issuer {
        Issuer {
            id: id.into(),
            keys: Vec::new(),
            jwks_url: None,
        }
    }

    /// Trusts `key` for this issuer.
    pub fn with_key(mut self, key: VerifyingKey) -> Issuer {
        self.keys.push(key);
        self
    }

    /// Trusts the keys of the JWK Set at `url` for this issuer, fetched by
    /// [`Verifier::refresh_jwks`] and refreshed by [`Verifier::spawn_jwks_refresh`].
    pub fn with_jwks_url(mut self, url: impl Into<String>) -> Issuer {
        self.jwks_url = Some(url.into());
        self
    }

    /// The issuer identifier.
    pub fn id(&self) -> &str {
        &self.id
    }
}

type MatcherCheck = Arc<dyn Fn(&TopicMatcher) -> Result<(), String> + Send + Sync>;

/// Configures a [`Verifier`]; created by [`Verifier::builder`].
pub struct VerifierBuilder {
    resource: String,
    algorithms: Vec<Algorithm>,
    issuers: Vec<Issuer>,
    leeway: Duration,
    limits: Limits,
    jwks_refresh: Duration,
    jwks_timeout: Duration,
    matcher_check: Option<MatcherCheck>,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("resource", &self.resource)
            .field("algorithms", &self.algorithms)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Trusts an issuer. Each issuer identifier may appear once.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The clock-skew leeway for `exp`, `nbf` and `iat` (default [`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        // Beyond a century a leeway is as good as unbounded, and added to an
        // `exp` one near `Duration::MAX` would overflow the clock.
        self.leeway = leeway.min(Duration::from_secs(100 * 365 * 24 * 3600));
        self
    }

    /// The limits on tokens (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The interval between JWK Set fetches (default [`DEFAULT_JWKS_REFRESH`]).
    pub fn jwks_refresh_interval(mut self, interval: Duration) -> Self {
        self.jwks_refresh = interval;
        self
    }

    /// The timeout of one JWK Set fetch (default 10 s).
    pub fn jwks_timeout(mut self, timeout: Duration) -> Self {
        self.jwks_timeout = timeout;
        self
    }

    /// Validates every topic matcher of every Mercure authorization detail with `check`
    /// (for example, compiling URL patterns); an `Err(reason)` makes the whole token invalid.
    /// The wildcard `*` is never passed to `check`: it is valid whatever its matcher type.
    pub fn matcher_validator(
        mut self,
        check: impl Fn(&TopicMatcher) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.matcher_check = Some(Arc::new(check));
        self
    }

    /// Checks the configuration and builds the verifier. JWK Sets start empty: call
    /// [`Verifier::refresh_jwks`] or [`Verifier::spawn_jwks_refresh`].
    pub fn build(self) -> Result<Verifier, Error> {
        if self.resource.is_empty() {
            return Err(Error::Config(
                "the hub's resource identifier must not be empty".into(),
            ));
        }
        if self.algorithms.is_empty() {
            return Err(Error::Config(
                "the algorithm allowlist must not be empty".into(),
            ));
        }
        if self.issuers.is_empty() {
            return Err(Error::Config(
                "at least one trusted issuer is needed".into(),
            ));
        }
        if self.jwks_refresh.is_zero() {
            return Err(Error::Config(
                "the JWK Set refresh interval must be longer than zero".into(),
            ));
        }
        let mut issuers = HashMap::new();
        for issuer in self.issuers {
            if issuer.id.is_empty() {
                return Err(Error::Config(
                    "an issuer identifier must not be empty".into(),
                ));
            }
            if issuer.keys.is_empty() && issuer.jwks_url.is_none() {
                return Err(Error::Config(format!(
                    "issuer {:?} has no key and no JWK Set URL",
                    issuer.id
                )));
            }
            for key in &issuer.keys {
                if !self.algorithms.contains(&key.alg) {
                    return Err(Error::Config(format!(
                        "issuer {:?} has a {} key but {} is not on the algorithm allowlist",
                        issuer.id, key.alg, key.alg
                    )));
                }
            }
            let state = IssuerState {
                static_keys: issuer.keys,
                jwks: issuer.jwks_url.map(|url| JwksSource {
                    url,
                    keys: RwLock::new(Arc::new(Vec::new())),
                }),
            };
            if issuers.insert(issuer.id.clone(), state).is_some() {
                return Err(Error::Config(format!(
                    "issuer {:?} is configured twice",
                    issuer.id
                )));
            }
        }
        Ok(Verifier {
            inner: Arc::new(Inner {
                resource: self.resource,
                algorithms: self.algorithms,
                issuers,
                leeway: self.leeway,
                limits: self.limits,
                jwks_refresh: self.jwks_refresh,
                jwks_timeout: self.jwks_timeout,
                matcher_check: self.matcher_check,
                key_generation: AtomicU64::new(0),
                http: std::sync::OnceLock::new(),
            }),
        })
    }
}

pub(crate) struct JwksSource {
    pub(crate) url: String,
    pub(crate) keys: RwLock<Arc<Vec<VerifyingKey>>>,
}

pub(crate) struct IssuerState {
    static_keys: Vec<VerifyingKey>,
    pub(crate) jwks: Option<JwksSource>,
}

pub(crate) struct Inner {
    resource: String,
    algorithms: Vec<Algorithm>,
    pub(crate) issuers: HashMap<String, IssuerState>,
    leeway: Duration,
    limits: Limits,
    pub(crate) jwks_refresh: Duration,
    pub(crate) jwks_timeout: Duration,
    matcher_check: Option<MatcherCheck>,
    /// Bumped whenever a JWK Set is swapped in (see [`Verifier::key_generation`]).
    pub(crate) key_generation: AtomicU64,
    pub(crate) http: std::sync::OnceLock<reqwest::Client>,
}

/// Verifies Mercure access tokens. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Verifier {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut issuers: Vec<&String> = self.inner.issuers.keys().collect();
        issuers.sort();
        f.debug_struct("Verifier")
            .field("resource", &self.inner.resource)
            .field("algorithms", &self.inner.algorithms)
            .field("issuers", &issuers)
            .field("leeway", &self.inner.leeway)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// A token that passed every check, reduced to what a hub needs to authorize requests.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// `iss`: the trusted issuer that signed the token.
    pub issuer: String,
    /// `sub`, if present (subscription identifiers derive from it).
    pub subject: Option<String>,
    /// `client_id`, if present.
    pub client_id: Option<String>,
    /// `jti`, if present.
    pub token_id: Option<String>,
    /// The `aud` values.
    pub audience: Vec<String>,
    /// The algorithm that signed the token.
    pub algorithm: Algorithm,
    /// The header's `kid`, if any.
    pub key_id: Option<String>,
    /// `exp`: a subscription must be closed no later than this instant.
    pub expires_at: SystemTime,
    /// `iat`, if present.
    pub issued_at: Option<SystemTime>,
    /// `nbf`, if present.
    pub not_before: Option<SystemTime>,
    /// Every topic matcher of every detail granting `publish`, in token order.
    pub publish: Vec<TopicMatcher>,
    /// Every topic matcher of every detail granting `subscribe`, in token order.
    pub subscribe: Vec<TopicMatcher>,
    /// The Mercure authorization details, in token order (other types are dropped).
    pub details: Vec<AuthorizationDetail>,
    /// What in `authorization_details` grants nothing and was passed over, as
    /// the spec asks (an entry of another type, an action this hub does not
    /// know), one note each: a refusal can then say why the token that looked
    /// right grants less than its author meant.
    pub ignored: Vec<String>,
}

/// The most notes [`VerifiedToken::ignored`] keeps: a refusal names a few.
const MAX_IGNORED_NOTES: usize = 4;

/// `text` quoted, cut at 64 characters: it comes from a token and goes into
/// an answer.
fn quoted_prefix(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    if cut.len() < text.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

impl VerifiedToken {
    /// Whether the token grants `action` on `topic`. URL patterns are evaluated by
    /// `urlpattern(pattern, topic)` (see [`TopicMatcher::matches`]).
    pub fn grants(
        &self,
        action: Action,
        topic: &str,
        urlpattern: &mut dyn FnMut(&str, &str) -> bool,
    ) -> bool {
        let matchers = match action {
            Action::Publish => &self.publish,
            Action::Subscribe => &self.subscribe,
        };
        matchers.iter().any(|m| m.matches(topic, urlpattern))
    }

    /// Whether the token may publish an update with these topics: `publish` must be granted
    /// on every one of them, canonical and alternate alike (and there must be at least one).
    pub fn may_publish<'t>(
        &self,
        topics: impl IntoIterator<Item = &'t str>,
        urlpattern: &mut dyn FnMut(&str, &str) -> bool,
    ) -> bool {
        let mut any = false;
        for topic in topics {
            if !self.grants(Action::Publish, topic, urlpattern) {
                return false;
            }
            any = true;
        }
        any
    }

    /// Whether the token may receive a private update with these topics: `subscribe` must be
    /// granted on at least one of them.
    pub fn may_receive<'t>(
        &self,
        topics: impl IntoIterator<Item = &'t str>,
        urlpattern: &mut dyn FnMut(&str, &str) -> bool,
    ) -> bool {
        topics
            .into_iter()
            .any(|topic| self.grants(Action::Subscribe, topic, urlpattern))
    }

    /// The payload for a subscription whose own matcher string is `subscription_matcher`:
    /// the `payload` of the first `subscribe` detail one of whose topics matches that string
    /// taken as a topic (`None` if that detail has no payload, or if none matches).
    pub fn subscription_payload(
        &self,
        subscription_matcher: &str,
        urlpattern: &mut dyn FnMut(&str, &str) -> bool,
    ) -> Option<&Value> {
        self.details
            .iter()
            .filter(|d| d.grants(Action::Subscribe))
            .find(|d| {
                d.topics
                    .iter()
                    .any(|m| m.matches(subscription_matcher, urlpattern))
            })
            .and_then(|d| d.payload.as_ref())
    }

    /// How long until the token expires, from `now` (zero once expired).
    pub fn expires_in(&self, now: SystemTime) -> Duration {
        self.expires_at
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
    }
}

impl Verifier {
    /// Starts configuring a verifier for the hub whose resource identifier (the value expected
    /// in `aud`) is `resource`, accepting only the algorithms of `algorithms`.
    pub fn builder(
        resource: impl Into<String>,
        algorithms: impl IntoIterator<Item = Algorithm>,
    ) -> VerifierBuilder {
        let mut allow: Vec<Algorithm> = Vec::new();
        for alg in algorithms {
            if !allow.contains(&alg) {
                allow.push(alg);
            }
        }
        VerifierBuilder {
            resource: resource.into(),
            algorithms: allow,
            issuers: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            limits: Limits::default(),
            jwks_refresh: DEFAULT_JWKS_REFRESH,
            jwks_timeout: Duration::from_secs(10),
            matcher_check: None,
        }
    }

    /// The hub's resource identifier.
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// A counter that changes whenever the keys this verifier trusts may have
    /// changed (a JWK Set swapped in). A verification result remembered
    /// under one generation must not be reused under another.
    pub fn key_generation(&self) -> u64 {
        self.inner.key_generation.load(Ordering::Acquire)
    }

    /// The instants at which [`Verifier::verify_at`] accepts the time claims
    /// (`exp`, `nbf`, `iat`, with the leeway) of `token`, a result of this
    /// verifier: the other checks do not depend on the time, so with the same
    /// token bytes and the same [`Verifier::key_generation`], `verify_at(now)`
    /// succeeds exactly when `now` is in this range.
    pub fn acceptance_window(&self, token: &VerifiedToken) -> Range<SystemTime> {
        let leeway = self.inner.leeway.as_secs();
        let secs = |t: Option<SystemTime>| t.map_or(0, unix_seconds);
        let from = secs(token.not_before)
            .max(secs(token.issued_at))
            .saturating_sub(leeway);
        let until = unix_seconds(token.expires_at).saturating_add(leeway);
        UNIX_EPOCH + Duration::from_secs(from)..UNIX_EPOCH + Duration::from_secs(until)
    }

    /// Verifies `token` at the current time. See [`Verifier::verify_at`].
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, Error> {
        self.verify_at(token, SystemTime::now())
    }

    /// Verifies `token` as if the time were `now`.
    ///
    /// In order: size; JWS compact syntax; `alg` (never `none`, on the allowlist); `typ`
    /// (`at+jwt`); no `crit`; `iss` (a trusted issuer); the signature, with only that
    /// issuer's keys bound to `alg` (and matching `kid` when the token names one; header
    /// key material such as `jwk`, `jku`, `x5u`, `x5c` is never used); `exp` (required);
    /// `nbf`; `iat`; `aud` (contains the resource identifier); the types of `sub`,
    /// `client_id`, `jti`; then every Mercure authorization detail, strictly, within the
    /// [`Limits`].
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<VerifiedToken, Error> {
        let inner = &*self.inner;
        let jws = Jws::decode(token, inner.limits.max_token_bytes)?;
        let (header, payload) = (&jws.header, &jws.payload);

        // Header.
        let alg = jws.algorithm(&inner.algorithms)?;
        match header.get("typ") {
            Some(Value::String(typ)) if is_access_token_type(typ) => {}
            Some(Value::String(typ)) => {
                return Err(Error::WrongType {
                    typ: Some(typ.clone()),
                });
            }
            Some(other) => {
                return Err(Error::WrongType {
                    typ: Some(other.to_string()),
                });
            }
            None => return Err(Error::WrongType { typ: None }),
        }
        jws.reject_critical()?;
        let kid = jws.key_id()?;

        // Issuer, then the signature with that issuer's keys only.
        let issuer = match payload.get("iss") {
            Some(Value::String(iss)) => iss.clone(),
            Some(other) => {
                return Err(Error::InvalidClaim {
                    claim: "iss",
                    reason: format!("expected a string, found {}", json_kind(other)),
                });
            }
            None => return Err(Error::MissingClaim("iss")),
        };
        let Some(state) = inner.issuers.get(&issuer) else {
            return Err(Error::UnknownIssuer { issuer });
        };
        let jwks_keys = state
            .jwks
            .as_ref()
            .map(|j| Arc::clone(&j.keys.read().unwrap_or_else(|e| e.into_inner())));
        let candidates = candidate_keys(
            state
                .static_keys
                .iter()
                .chain(jwks_keys.iter().flat_map(|keys| keys.iter())),
            alg,
            kid.as_deref(),
        );
        if candidates.is_empty() {
            return Err(Error::UnknownKey { issuer, alg, kid });
        }
        if !jws.verifies_with(alg, &candidates) {
            return Err(Error::BadSignature { issuer, alg });
        }

        // Time claims.
        let now_secs = unix_seconds(now);
        let leeway = inner.leeway.as_secs();
        let exp =
            check_validity(payload, now_secs, leeway, true)?.ok_or(Error::MissingClaim("exp"))?;
        let nbf = numeric_date(payload, "nbf")?;
        let iat = numeric_date(payload, "iat")?;
        if let Some(iat) = iat
            && iat > now_secs.saturating_add(leeway)
        {
            return Err(Error::IssuedInFuture {
                iat,
                now: now_secs,
                leeway,
            });
        }

        // Audience.
        let audience = match payload.get("aud") {
            None => return Err(Error::MissingClaim("aud")),
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(Error::InvalidClaim {
                        claim: "aud",
                        reason: format!(
                            "expected an array of strings, found {} in it",
                            json_kind(other)
                        ),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(Error::InvalidClaim {
                    claim: "aud",
                    reason: format!(
                        "expected a string or an array of strings, found {}",
                        json_kind(other)
                    ),
                });
            }
        };
        if !audience.contains(&inner.resource) {
            return Err(Error::WrongAudience {
                audience,
                expected: inner.resource.clone(),
            });
        }

        let subject = optional_string(payload, "sub")?;
        let client_id = optional_string(payload, "client_id")?;
        let token_id = optional_string(payload, "jti")?;

        let (details, ignored) = self.authorization_details(payload)?;
        let mut publish = Vec::new();
        let mut subscribe = Vec::new();
        for detail in &details {
            if detail.grants(Action::Publish) {
                publish.extend(detail.topics.iter().cloned());
            }
            if detail.grants(Action::Subscribe) {
                subscribe.extend(detail.topics.iter().cloned());
            }
        }

        Ok(VerifiedToken {
            issuer,
            subject,
            client_id,
            token_id,
            audience,
            algorithm: alg,
            key_id: kid,
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
            issued_at: iat.map(|iat| UNIX_EPOCH + Duration::from_secs(iat)),
            not_before: nbf.map(|nbf| UNIX_EPOCH + Duration::from_secs(nbf)),
            publish,
            subscribe,
            details,
            ignored,
        })
    }

    fn authorization_details(
        &self,
        payload: &Map<String, Value>,
    ) -> Result<(Vec<AuthorizationDetail>, Vec<String>), Error> {
        let limits = &self.inner.limits;
        let entries = match payload.get("authorization_details") {
            None => return Ok((Vec::new(), Vec::new())),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(Error::AuthorizationDetailsNotArray),
        };
        let mut details = Vec::new();
        let mut ignored = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let Some(detail) = AuthorizationDetail::parse(index, entry)? else {
                if ignored.len() < MAX_IGNORED_NOTES {
                    let kind = entry
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    ignored.push(format!(
                        "authorization_details[{index}] is of type {}, not {MERCURE_DETAIL_TYPE:?}",
                        quoted_prefix(kind)
                    ));
                }
                continue;
            };
            let actions = entry.get("actions").and_then(Value::as_array);
            for (i, action) in actions.into_iter().flatten().enumerate() {
                if let Some(name) = action.as_str()
                    && Action::from_name(name).is_none()
                    && ignored.len() < MAX_IGNORED_NOTES
                {
                    ignored.push(format!(
                        "authorization_details[{index}].actions[{i}] is {}, not an action \
                         (publish or subscribe)",
                        quoted_prefix(name)
                    ));
                }
            }
            if details.len() == limits.max_details {
                return Err(Error::LimitExceeded {
                    what: "number of Mercure authorization details".into(),
                    actual: entries.len(),
                    limit: limits.max_details,
                });
            }
            if detail.topics.len() > limits.max_topics_per_detail {
                return Err(Error::LimitExceeded {
                    what: format!("authorization_details[{index}].topics length"),
                    actual: detail.topics.len(),
                    limit: limits.max_topics_per_detail,
                });
            }
            for (i, matcher) in detail.topics.iter().enumerate() {
                if matcher.pattern.len() > limits.max_match_bytes {
                    return Err(Error::LimitExceeded {
                        what: format!(
                            "authorization_details[{index}].topics[{i}].match length in bytes"
                        ),
                        actual: matcher.pattern.len(),
                        limit: limits.max_match_bytes,
                    });
                }
                if let Some(check) = &self.inner.matcher_check
                    && !matcher.is_wildcard()
                {
                    check(matcher).map_err(|reason| Error::InvalidAuthorizationDetail {
                        index,
                        field: format!("topics[{i}].match"),
                        reason,
                    })?;
                }
            }
            details.push(detail);
        }
        Ok((details, ignored))
    }
}

/// Whether `token`'s JOSE header declares it an access token (`typ: at+jwt`).
///
/// A hub speaking both protocol revisions uses this to route a token: one
/// that declares itself an access token is only ever verified as one, so it
/// never falls back to the older revision's weaker checks. Nothing is
/// verified here; a header that cannot be decoded declares nothing.
pub fn declares_access_token(token: &str) -> bool {
    let Some(header_b64) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        header_b64,
    ) else {
        return false;
    };
    let Ok(header) = serde_json::from_slice::<Map<String, Value>>(&bytes) else {
        return false;
    };
    matches!(header.get("typ"), Some(Value::String(typ)) if is_access_token_type(typ))
}

/// Whether `typ` is `at+jwt`, the `application/` prefix omitted, compared case-insensitively.
fn is_access_token_type(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    lower.strip_prefix("application/").unwrap_or(&lower) == "at+jwt"
}
