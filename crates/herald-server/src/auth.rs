//! Finding the access token in a request and turning it into [`Grants`].

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use herald_hub::{Grants, Hub, Matcher, MatcherType, SubscribeGrant};
use herald_token::claims::{Action, MatchType, TopicMatcher};
use herald_token::{LegacyToken, OAuthError, Verifier};

use crate::compat::{Compatibility, Purpose};
use crate::error::{BearerError, ServerError};
use crate::form;
use crate::headers::{RequestHeaders, as_text};

/// Who made a request, as far as its token says.
#[derive(Debug, Clone)]
pub struct Client {
    /// What the token allows.
    pub grants: Arc<Grants>,
    /// `iss` and `sub` of the token, the key for per-subject limits.
    pub subject: Option<String>,
    /// The token's `exp`. A subscription is closed then (draft-08: no later
    /// than `exp`), and a token at or past it opens none, though the
    /// clock-skew leeway (`auth.leeway`) still lets it publish.
    pub expires_at: Option<SystemTime>,
    /// Whether the token came from the cookie (an ambient credential, so
    /// cross-site request forgery must be guarded against).
    pub via_cookie: bool,
    /// Whether the token was a pre-draft-08 one (the `mercure` claim), so
    /// answers take the older revision's shapes.
    pub legacy: bool,
    /// What in the token grants nothing and was passed over (an
    /// authorization detail of another type, an unknown action), said when
    /// the token is refused a right.
    pub ignored: Option<Arc<str>>,
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
            ignored: None,
        }
    }

    /// `detail`, a refusal of a right, with what the token held that grants
    /// nothing, if anything.
    pub(crate) fn refusal(&self, detail: String) -> String {
        match &self.ignored {
            Some(ignored) => format!("{detail}; the token holds what grants nothing: {ignored}"),
            None => detail,
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

/// How many verified access tokens [`TokenCache`] remembers.
const TOKEN_CACHE_CAPACITY: usize = 1024;

/// Access tokens already verified, keyed by their exact bytes, with what
/// they grant: a publisher sends the same token with every request, and
/// verifying it (base64, JSON, the signature, the matchers) is most of the
/// cost of a small publish.
///
/// An entry is reused only while the time claims still hold (the verifier's
/// [`Verifier::acceptance_window`]) and the verifier's keys are unchanged
/// ([`Verifier::key_generation`]); otherwise the token is verified again,
/// with the usual errors. Only successes are remembered.
///
/// Keys are hashed by their last [`HASHED_SUFFIX`] bytes only (the
/// signature's, unique to each token; equal keys are still compared whole):
/// hashing a whole token of some hundred bytes was a tenth of the cache's
/// cost per publish. Only verified tokens enter, so nobody without the
/// issuer's keys can fill a bucket.
#[derive(Default)]
struct TokenCache {
    entries: Mutex<HashMap<Box<[u8]>, CachedToken, SuffixState>>,
}

/// How many bytes at the end of a token [`TokenCache`] hashes.
const HASHED_SUFFIX: usize = 32;

/// Builds [`SuffixHasher`]s.
#[derive(Default, Clone)]
struct SuffixState(foldhash::fast::RandomState);

impl std::hash::BuildHasher for SuffixState {
    type Hasher = SuffixHasher;

    fn build_hasher(&self) -> SuffixHasher {
        SuffixHasher(self.0.build_hasher())
    }
}

/// A hasher that takes only the last [`HASHED_SUFFIX`] bytes of each slice
/// written to it (a `[u8]` key writes its length, then its bytes at once).
struct SuffixHasher(foldhash::fast::FoldHasher<'static>);

impl std::hash::Hasher for SuffixHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0
            .write(&bytes[bytes.len().saturating_sub(HASHED_SUFFIX)..]);
    }

    fn write_usize(&mut self, n: usize) {
        self.0.write_usize(n);
    }
}

struct CachedToken {
    grants: Arc<Grants>,
    ignored: Option<Arc<str>>,
    subject: Option<String>,
    window: Range<SystemTime>,
    expires_at: SystemTime,
    generation: u64,
}

impl TokenCache {
    fn get(&self, token: &[u8], now: SystemTime, generation: u64) -> Option<Client> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let cached = entries.get(token)?;
        if cached.generation != generation || !cached.window.contains(&now) {
            return None;
        }
        Some(Client {
            grants: Arc::clone(&cached.grants),
            subject: cached.subject.clone(),
            expires_at: Some(cached.expires_at),
            via_cookie: false,
            legacy: false,
            ignored: cached.ignored.clone(),
        })
    }

    fn insert(&self, token: &[u8], now: SystemTime, entry: CachedToken) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= TOKEN_CACHE_CAPACITY && !entries.contains_key(token) {
            entries.retain(|_, c| c.generation == entry.generation && c.window.end > now);
            if entries.len() >= TOKEN_CACHE_CAPACITY {
                // Still full of live tokens: drop one, whichever.
                if let Some(victim) = entries.keys().next().cloned() {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(token.into(), entry);
    }
}

/// Verifies tokens presented in the `Authorization` header or the cookie.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Option<Arc<Verifier>>,
    cookie_name: String,
    compatibility: Option<Arc<Compatibility>>,
    hub: Hub,
    cache: Arc<TokenCache>,
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
            cache: Arc::default(),
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
        self.authenticate_in(headers, query, purpose)
    }

    /// [`Authenticator::authenticate`], whatever holds the headers.
    pub(crate) fn authenticate_in(
        &self,
        headers: &impl RequestHeaders,
        query: Option<&str>,
        purpose: Purpose,
    ) -> Result<Option<Client>, ServerError> {
        if let Some(client) = self.cached_bearer(headers) {
            return usable_for(client, purpose).map(Some);
        }
        let Some((token, source)) = self.find_token(headers, query)? else {
            return Ok(None);
        };
        let via_cookie = source == Source::Cookie;
        let first = self
            .client_for(&token, via_cookie, purpose)
            .and_then(|client| usable_for(client, purpose));
        if first.is_ok() || !via_cookie {
            return first.map(Some);
        }
        // A browser sends every cookie of the name whose domain and path fit
        // the request (one left for a parent domain, say), in an order the
        // page does not choose: one that verifies counts.
        for other in self.cookie_tokens(headers).skip(1) {
            if let Ok(client) = self
                .client_for(other, true, purpose)
                .and_then(|client| usable_for(client, purpose))
            {
                return Ok(Some(client));
            }
        }
        first.map(Some)
    }

    /// The client a token names, once verified.
    fn client_for(
        &self,
        token: &str,
        via_cookie: bool,
        purpose: Purpose,
    ) -> Result<Client, ServerError> {
        if let Some(compatibility) = &self.compatibility
            && !herald_token::declares_access_token(token)
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
            let verified = legacy.verify(token).map_err(token_error)?;
            return self.legacy_client(&verified, via_cookie);
        }
        let Some(verifier) = &self.verifier else {
            return Err(invalid_token(
                "no_issuer",
                "this hub trusts no token issuer",
            ));
        };
        let now = SystemTime::now();
        let generation = verifier.key_generation();
        if let Some(client) = self.cache.get(token.as_bytes(), now, generation) {
            return Ok(Client {
                via_cookie,
                ..client
            });
        }
        let verified = verifier.verify_at(token, now).map_err(token_error)?;
        let mut grants = Grants::default();
        for detail in &verified.details {
            let mut matchers = detail
                .topics
                .iter()
                .map(|t| self.matcher(t))
                .collect::<Result<Vec<_>, _>>()?;
            matchers.shrink_to_fit();
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
        // A subscriber keeps its grants for the life of its connection, and
        // a vector grown one element at a time holds room for 4: 160 bytes
        // for one grant, 96 for one matcher.
        grants.publish.shrink_to_fit();
        grants.subscribe.shrink_to_fit();
        let subject = verified
            .subject
            .as_ref()
            .map(|sub| format!("{} {sub}", verified.issuer));
        let grants = Arc::new(grants);
        let ignored: Option<Arc<str>> =
            (!verified.ignored.is_empty()).then(|| verified.ignored.join("; ").into());
        let window = verifier.acceptance_window(&verified);
        self.cache.insert(
            token.as_bytes(),
            now,
            CachedToken {
                grants: Arc::clone(&grants),
                ignored: ignored.clone(),
                subject: subject.clone(),
                window,
                expires_at: verified.expires_at,
                generation,
            },
        );
        Ok(Client {
            grants,
            subject,
            expires_at: Some(verified.expires_at),
            via_cookie,
            legacy: false,
            ignored,
        })
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
                .map(|mut matchers| {
                    matchers.shrink_to_fit();
                    matchers
                })
        };
        let payload: Option<Arc<str>> = token.payload.as_ref().map(|p| p.to_string().into());
        let mut grants = Grants {
            publish: selectors("mercure.publish", &token.publish)?,
            subscribe: Vec::new(),
            payload: payload.clone(),
        };
        if !token.subscribe.is_empty() {
            grants.subscribe = vec![SubscribeGrant {
                topics: selectors("mercure.subscribe", &token.subscribe)?,
                payload,
            }];
        }
        Ok(Client {
            grants: Arc::new(grants),
            subject: token.subject.as_ref().map(|sub| format!("mercure {sub}")),
            expires_at: token.expires_at,
            via_cookie,
            legacy: true,
            ignored: None,
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

    /// The client of a bearer token in the `Authorization` header that was
    /// verified already, found by the token's bytes before any other work on
    /// them: a publisher sends the same token with every request. A token is
    /// cached only once it passed every check [`Authenticator::find_token`]
    /// and the verifier make, so a hit answers as they would.
    fn cached_bearer(&self, headers: &impl RequestHeaders) -> Option<Client> {
        let verifier = self.verifier.as_ref()?;
        let mut values = headers.all(&header::AUTHORIZATION);
        let value = values.next()?;
        if values.next().is_some() {
            return None; // refused by find_token
        }
        let token = &value[bearer_token(value).ok()?];
        self.cache
            .get(token, SystemTime::now(), verifier.key_generation())
    }

    /// Every non-empty value of the token cookies, the draft-08 name's first
    /// (in compatibility mode, then the legacy name's), in request order.
    fn cookie_tokens<'a, 'h: 'a>(
        &'a self,
        headers: &'h impl RequestHeaders,
    ) -> impl Iterator<Item = &'h str> + 'a {
        let legacy = self
            .compatibility
            .as_deref()
            .map(Compatibility::cookie_name);
        std::iter::once(self.cookie_name.as_str())
            .chain(legacy)
            .flat_map(move |name| cookie_values(headers, name))
    }

    /// The token and where it was found.
    fn find_token<'r>(
        &self,
        headers: &'r impl RequestHeaders,
        query: Option<&str>,
    ) -> Result<Option<(std::borrow::Cow<'r, str>, Source)>, ServerError> {
        let mut values = headers.all(&header::AUTHORIZATION);
        if let Some(value) = values.next() {
            // Which of several would count depends on their order, which
            // proxies may change: none does.
            if values.next().is_some() {
                return Err(invalid_request(
                    "malformed_header",
                    "the request carries several Authorization headers; send one",
                ));
            }
            // Another scheme (a browser's `Basic` credentials for a site
            // behind HTTP authentication, which it sends with every request
            // there) carries no bearer token: as RFC 6750 has it, the
            // request is taken as one without a token, so the cookie counts.
            if is_bearer(value) {
                let value = as_text(value).ok_or_else(|| {
                    invalid_request("malformed_header", "the Authorization header is not ASCII")
                })?;
                let token = bearer_token(value.as_bytes())
                    .map_err(|reason| invalid_request("malformed_header", reason))?;
                // ASCII (checked above), so any byte offset is a char boundary.
                return Ok(Some((value[token].into(), Source::Header)));
            }
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
                // Only the older revision's tokens: draft-08 forbids passing
                // access tokens in URLs, where logs and histories keep them.
                if herald_token::declares_access_token(&token) {
                    return Err(invalid_request(
                        "token_in_query",
                        "an access token (`typ: at+jwt`) is not accepted in the `authorization` query parameter, which only pre-draft-08 tokens may use; send it in the Authorization header or the cookie",
                    ));
                }
                return Ok(Some((token.into(), Source::Query)));
            }
        }
        Ok(self
            .cookie_tokens(headers)
            .next()
            .map(|token| (token.into(), Source::Cookie)))
    }
}

/// Whether an `Authorization` header value uses the Bearer scheme (in any
/// case), with or without a token after it.
fn is_bearer(value: &[u8]) -> bool {
    let scheme = value.split(|&b| b == b' ').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case(b"bearer")
}

/// The 401 for a request that needs a token and presented none: `detail`
/// says what needed it, and, when the request carries an `access_token` in
/// its query or an `Authorization` header of another scheme, that the hub
/// reads neither.
pub(crate) fn missing_token(
    headers: &impl RequestHeaders,
    query: Option<&str>,
    detail: &str,
) -> ServerError {
    // Reached only when no token was taken from the URL: one that is there
    // is refused (draft-08), or belongs to a protocol this hub does not speak.
    let in_url = query.and_then(|q| {
        q.split('&').find_map(|pair| match pair.split('=').next() {
            Some("access_token") => Some("`access_token`"),
            Some("authorization") => Some(
                "`authorization`, the pre-draft-08 protocol's parameter, which this hub \
                 accepts only with `[compatibility]` on",
            ),
            _ => None,
        })
    });
    let detail = match in_url {
        Some(parameter) => format!(
            "{detail}; one in the URL ({parameter}) is not accepted: use the Authorization \
             header or the cookie"
        ),
        None => detail.to_owned(),
    };
    const SEND: &str = "send `Authorization: Bearer <token>`, or the token's cookie";
    let other_scheme = headers
        .all(&header::AUTHORIZATION)
        .next()
        .filter(|value| !is_bearer(value))
        .map(|value| {
            let scheme = value
                .split(|&b| b == b' ' || b == b'\t')
                .next()
                .unwrap_or_default();
            // The scheme is echoed only when it looks like one: a value
            // without a scheme may be a secret, and the answer is logged.
            let is_scheme = scheme.len() < value.len()
                && scheme.len() <= 20
                && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if scheme.eq_ignore_ascii_case(b"bearer") {
                format!("the Authorization header's `Bearer` must be followed by one space, then the token ({SEND})")
            } else if is_scheme {
                format!(
                    "the Authorization header's `{}` scheme is not one this hub reads ({SEND})",
                    String::from_utf8_lossy(scheme)
                )
            } else {
                format!("the Authorization header does not start with a scheme this hub reads ({SEND})")
            }
        });
    let detail = match other_scheme {
        Some(why) => format!("{detail}; {why}"),
        None => detail,
    };
    ServerError::Bearer {
        error: BearerError::Missing,
        reason: "missing",
        detail,
    }
}

/// Where the token of an `Authorization` header value `Bearer <token>` lies
/// in it (the scheme in any case, spaces around the token left out), or why
/// the value is not one.
fn bearer_token(value: &[u8]) -> Result<Range<usize>, &'static str> {
    let (scheme, after) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], space + 1),
        None => (value, value.len()),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err("the Authorization header must use the Bearer scheme");
    }
    let token = value[after..].trim_ascii();
    if token.is_empty() {
        return Err("the Authorization header carries no token");
    }
    let start = value.len() - value[after..].trim_ascii_start().len();
    Ok(start..start + token.len())
}

/// Every non-empty value of the cookie `name`, in request order.
fn cookie_values<'h, 'n>(
    headers: &'h impl RequestHeaders,
    name: &'n str,
) -> impl Iterator<Item = &'h str> + 'n
where
    'h: 'n,
{
    headers
        .all(&header::COOKIE)
        .filter_map(as_text)
        .flat_map(|value| value.split(';'))
        .filter_map(move |pair| {
            let (n, token) = pair.trim().split_once('=')?;
            (n == name && !token.is_empty()).then(|| token.trim_matches('"'))
        })
}

/// A token the verifier refused: `400 invalid_request` when it is not a JWS
/// at all (as RFC 6750 says), `401 invalid_token` otherwise.
/// `client`, if its token may be used for `purpose` now. Draft-08 has the
/// hub close a subscription no later than its token's `exp`; a token inside
/// the leeway past it would open one only to have it closed at once (and
/// reopened by the client's reconnection, in a loop), so it opens none.
fn usable_for(client: Client, purpose: Purpose) -> Result<Client, ServerError> {
    let now = SystemTime::now();
    match client.expires_at {
        Some(exp) if purpose == Purpose::Subscribe && exp <= now => {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            Err(invalid_token(
                "expired",
                &format!(
                    "the token expired at {} (now is {}): a subscription closes at its token's exp, so an expired token opens none (auth.leeway lets it publish only); get a new token",
                    secs(exp),
                    secs(now)
                ),
            ))
        }
        _ => Ok(client),
    }
}

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn entry(from: u64, until: u64, generation: u64) -> CachedToken {
        CachedToken {
            grants: Grants::none(),
            ignored: None,
            subject: Some("iss sub".into()),
            window: at(from)..at(until),
            // The token's own `exp`, inside the window's leeway.
            expires_at: at(until - 10),
            generation,
        }
    }

    #[test]
    fn the_token_cache_honours_the_window_and_the_key_generation() {
        let cache = TokenCache::default();
        cache.insert(b"a.b.c", at(100), entry(90, 200, 7));
        let hit = cache.get(b"a.b.c", at(150), 7).unwrap();
        assert_eq!(hit.subject.as_deref(), Some("iss sub"));
        assert_eq!(hit.expires_at, Some(at(190)), "exp, not the window's end");
        assert!(!hit.via_cookie && !hit.legacy);
        assert!(cache.get(b"a.b.c", at(90), 7).is_some());
        assert!(cache.get(b"a.b.c", at(89), 7).is_none(), "before nbf");
        assert!(cache.get(b"a.b.c", at(200), 7).is_none(), "expired");
        assert!(cache.get(b"a.b.c", at(150), 8).is_none(), "keys changed");
        assert!(cache.get(b"a.b.d", at(150), 7).is_none(), "other bytes");
        assert!(cache.get(b"a.b.", at(150), 7).is_none(), "a prefix");
        // Only the end of a key is hashed; the whole of it still counts.
        let suffix = "s".repeat(HASHED_SUFFIX);
        cache.insert(
            format!("one.{suffix}").as_bytes(),
            at(100),
            entry(90, 200, 7),
        );
        assert!(
            cache
                .get(format!("one.{suffix}").as_bytes(), at(150), 7)
                .is_some()
        );
        assert!(
            cache
                .get(format!("two.{suffix}").as_bytes(), at(150), 7)
                .is_none(),
            "another token ending alike"
        );
    }

    #[test]
    fn the_token_cache_is_bounded_and_evicts_expired_tokens_first() {
        let cache = TokenCache::default();
        for i in 0..TOKEN_CACHE_CAPACITY {
            let until = if i == 0 { 200 } else { 1000 };
            cache.insert(format!("t{i}").as_bytes(), at(100), entry(0, until, 1));
        }
        cache.insert(b"new", at(300), entry(0, 1000, 1));
        let len = cache.entries.lock().unwrap().len();
        assert_eq!(len, TOKEN_CACHE_CAPACITY);
        assert!(
            cache.get(b"t0", at(150), 1).is_none(),
            "the expired one went"
        );
        assert!(cache.get(b"t1", at(300), 1).is_some());
        for i in 0..10 {
            cache.insert(format!("more{i}").as_bytes(), at(300), entry(0, 1000, 1));
        }
        assert_eq!(cache.entries.lock().unwrap().len(), TOKEN_CACHE_CAPACITY);
        assert!(cache.get(b"more9", at(300), 1).is_some());
    }
}
