//! Pre-draft-08 ("legacy") Mercure tokens: the [`LegacyVerifier`], the [`LegacyToken`] it
//! yields, and [`mint_legacy`].
//!
//! Before draft 08, a hub accepted any JWS signed with its publisher key (to publish) or its
//! subscriber key (to subscribe): no `typ`, `iss` or `aud` requirement, and `exp` optional.
//! Authorization lives in the `mercure` claim, or, when `mercure` is absent, in the
//! namespaced claim `https://mercure.rocks/`:
//!
//! ```json
//! { "mercure": { "publish": ["*"],
//!                "subscribe": ["https://example.com/users/42", "https://example.com/books/{id}"],
//!                "payload": {"user": 42} } }
//! ```
//!
//! `publish` and `subscribe` are arrays of topic selectors (`*`, a plain string or a URI
//! template), returned as they are: matching them is the hub's business. A missing list
//! grants nothing.
//!
//! The hub builds one verifier per role: one with its publisher keys, one with its
//! subscriber keys.
//!
//! ```
//! use herald_token::{Algorithm, LegacyMintRequest, LegacyVerifier, SigningKey, VerifyingKey,
//!     mint_legacy};
//!
//! let secret = b"a shared secret of at least 32 bytes!";
//! let request = LegacyMintRequest::new().with_subscribe("https://example.com/books/{id}");
//! let token = mint_legacy(&request, &SigningKey::hs256(secret)?)?;
//!
//! let subscribers = LegacyVerifier::builder([Algorithm::HS256])
//!     .key(VerifyingKey::hs256(secret)?)
//!     .build()?;
//! let verified = subscribers.verify(&token)?;
//! assert_eq!(verified.subscribe, ["https://example.com/books/{id}"]);
//! assert!(verified.publish.is_empty());
//! assert_eq!(verified.expires_at, None);
//! # Ok::<(), herald_token::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Header;
use serde_json::{Map, Value};

use crate::claims::json_kind;
use crate::jws::{Jws, candidate_keys, check_validity, optional_string, unix_seconds};
use crate::{Algorithm, DEFAULT_LEEWAY, Error, Limits, SigningKey, VerifyingKey};

/// The claim that carries a legacy token's authorization.
pub const LEGACY_CLAIM: &str = "mercure";

/// The namespaced claim read instead of [`LEGACY_CLAIM`] when that one is absent.
pub const LEGACY_NAMESPACED_CLAIM: &str = "https://mercure.rocks/";

/// Configures a [`LegacyVerifier`]; created by [`LegacyVerifier::builder`].
#[derive(Debug)]
pub struct LegacyVerifierBuilder {
    algorithms: Vec<Algorithm>,
    keys: Vec<VerifyingKey>,
    leeway: Duration,
    limits: Limits,
}

impl LegacyVerifierBuilder {
    /// Trusts `key`: a token whose `alg` is the key's algorithm may be signed with it.
    pub fn key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Trusts every key of `keys` (see [`LegacyVerifierBuilder::key`]).
    pub fn keys(mut self, keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        self.keys.extend(keys);
        self
    }

    /// The clock-skew leeway for `exp` and `nbf` (default [`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The limits on tokens (default [`Limits::default`]): `max_token_bytes` bounds the token,
    /// `max_topics_per_detail` the number of selectors in `publish` and in `subscribe`,
    /// `max_match_bytes` the length of one selector.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Checks the configuration (a non-empty allowlist, at least one key, every key's
    /// algorithm on the allowlist) and builds the verifier.
    pub fn build(self) -> Result<LegacyVerifier, Error> {
        if self.algorithms.is_empty() {
            return Err(Error::Config(
                "the algorithm allowlist must not be empty".into(),
            ));
        }
        if self.keys.is_empty() {
            return Err(Error::Config(
                "a legacy verifier needs at least one key".into(),
            ));
        }
        if let Some(key) = self
            .keys
            .iter()
            .find(|key| !self.algorithms.contains(&key.alg))
        {
            return Err(Error::Config(format!(
                "a legacy key is {} but {} is not on the algorithm allowlist",
                key.alg, key.alg
            )));
        }
        Ok(LegacyVerifier {
            inner: Arc::new(LegacyInner {
                algorithms: self.algorithms,
                keys: self.keys,
                leeway: self.leeway,
                limits: self.limits,
            }),
        })
    }
}

struct LegacyInner {
    algorithms: Vec<Algorithm>,
    keys: Vec<VerifyingKey>,
    leeway: Duration,
    limits: Limits,
}

/// Verifies pre-draft-08 Mercure tokens against a fixed set of keys. Cheap to clone (shared
/// state).
#[derive(Clone)]
pub struct LegacyVerifier {
    inner: Arc<LegacyInner>,
}

impl fmt::Debug for LegacyVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyVerifier")
            .field("algorithms", &self.inner.algorithms)
            .field("keys", &self.inner.keys)
            .field("leeway", &self.inner.leeway)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// A legacy token that passed every check, reduced to what a hub needs to authorize requests.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyToken {
    /// `mercure.publish`: the topic selectors the token may publish to, in token order
    /// (empty when absent).
    pub publish: Vec<String>,
    /// `mercure.subscribe`: the topic selectors the token may receive private updates for, in
    /// token order (empty when absent).
    pub subscribe: Vec<String>,
    /// `mercure.payload`, as it is (`Some(Value::Null)` for an explicit `null`), or `None`
    /// when absent.
    pub payload: Option<Value>,
    /// `sub`, if present.
    pub subject: Option<String>,
    /// `exp`, if present: a subscription must be closed no later than this instant.
    pub expires_at: Option<SystemTime>,
    /// The algorithm that signed the token.
    pub algorithm: Algorithm,
    /// The header's `kid`, if any.
    pub key_id: Option<String>,
}

impl LegacyToken {
    /// How long until the token expires, from `now` (zero once expired), or `None` if it
    /// never expires.
    pub fn expires_in(&self, now: SystemTime) -> Option<Duration> {
        self.expires_at
            .map(|exp| exp.duration_since(now).unwrap_or(Duration::ZERO))
    }
}

impl LegacyVerifier {
    /// The clock-skew leeway applied to `exp` and `nbf`: a token is accepted
    /// until its `exp` plus this.
    pub fn leeway(&self) -> Duration {
        self.inner.leeway
    }

    /// Starts configuring a verifier accepting only the algorithms of `algorithms`.
    pub fn builder(algorithms: impl IntoIterator<Item = Algorithm>) -> LegacyVerifierBuilder {
        let mut allow: Vec<Algorithm> = Vec::new();
        for alg in algorithms {
            if !allow.contains(&alg) {
                allow.push(alg);
            }
        }
        LegacyVerifierBuilder {
            algorithms: allow,
            keys: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            limits: Limits::default(),
        }
    }

    /// Verifies `token` at the current time. See [`LegacyVerifier::verify_at`].
    pub fn verify(&self, token: &str) -> Result<LegacyToken, Error> {
        self.verify_at(token, SystemTime::now())
    }

    /// Verifies `token` as if the time were `now`.
    ///
    /// In order: size; JWS compact syntax; `alg` (never `none`, on the allowlist); no `crit`;
    /// the signature, with only the configured keys bound to `alg` (and matching `kid` when
    /// both the token and the key name one; header key material such as `jwk`, `jku`, `x5u`,
    /// `x5c` is never used); `exp` and `nbf` when present; the type of `sub`; then the
    /// `mercure` claim (or [`LEGACY_NAMESPACED_CLAIM`] when `mercure` is absent), strictly,
    /// within the [`Limits`]. `typ`, `iss`, `aud` and `iat` are not looked at.
    pub fn verify_at(&self, token: &str, now: SystemTime) -> Result<LegacyToken, Error> {
        let inner = &*self.inner;
        let jws = Jws::decode(token, inner.limits.max_token_bytes)?;
        let alg = jws.algorithm(&inner.algorithms)?;
        jws.reject_critical()?;
        let kid = jws.key_id()?;

        let candidates = candidate_keys(&inner.keys, alg, kid.as_deref());
        if candidates.is_empty() {
            return Err(Error::LegacyUnknownKey { alg, kid });
        }
        if !jws.verifies_with(alg, &candidates) {
            return Err(Error::LegacyBadSignature { alg });
        }

        let payload = &jws.payload;
        let exp = check_validity(payload, unix_seconds(now), inner.leeway.as_secs(), false)?;
        let subject = optional_string(payload, "sub")?;
        let grants = self.mercure_claim(payload)?;

        Ok(LegacyToken {
            publish: grants.publish,
            subscribe: grants.subscribe,
            payload: grants.payload,
            subject,
            expires_at: exp.map(|exp| UNIX_EPOCH + Duration::from_secs(exp)),
            algorithm: alg,
            key_id: kid,
        })
    }

    fn mercure_claim(&self, payload: &Map<String, Value>) -> Result<Grants, Error> {
        // `null` is absent, as the reference hub decodes it: serializers
        // that write every field (PHP's `json_encode`) send it for nothing.
        let present = |key: &str| payload.get(key).filter(|v| !v.is_null());
        let (name, claim) = match (present(LEGACY_CLAIM), present(LEGACY_NAMESPACED_CLAIM)) {
            (Some(claim), _) => (LEGACY_CLAIM, claim),
            (None, Some(claim)) => (LEGACY_NAMESPACED_CLAIM, claim),
            (None, None) => return Ok(Grants::default()),
        };
        let Value::Object(claim) = claim else {
            return Err(Error::InvalidMercureClaim {
                path: name.to_owned(),
                problem: format!("is not an object (found {})", json_kind(claim)),
            });
        };
        Ok(Grants {
            publish: self.selectors(name, claim, "publish")?,
            subscribe: self.selectors(name, claim, "subscribe")?,
            payload: claim.get("payload").cloned(),
        })
    }

    /// The array of topic selectors `claim.key` (empty when absent), within the limits.
    fn selectors(
        &self,
        name: &str,
        claim: &Map<String, Value>,
        key: &str,
    ) -> Result<Vec<String>, Error> {
        let limits = &self.inner.limits;
        let items = match claim.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(Error::InvalidMercureClaim {
                    path: format!("{name}.{key}"),
                    problem: format!(
                        "is not an array of topic selectors (found {})",
                        json_kind(other)
                    ),
                });
            }
        };
        if items.len() > limits.max_topics_per_detail {
            return Err(Error::MercureLimitExceeded {
                what: format!("{name}.{key} length"),
                actual: items.len(),
                limit: limits.max_topics_per_detail,
            });
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(selector) if selector.len() > limits.max_match_bytes => {
                    Err(Error::MercureLimitExceeded {
                        what: format!("{name}.{key}[{i}] length in bytes"),
                        actual: selector.len(),
                        limit: limits.max_match_bytes,
                    })
                }
                Value::String(selector) => Ok(selector.clone()),
                other => Err(Error::InvalidMercureClaim {
                    path: format!("{name}.{key}[{i}]"),
                    problem: format!("is not a string (found {})", json_kind(other)),
                }),
            })
            .collect()
    }
}

#[derive(Default)]
struct Grants {
    publish: Vec<String>,
    subscribe: Vec<String>,
    payload: Option<Value>,
}

/// What to put in a minted legacy token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyMintRequest {
    /// `mercure.publish`: topic selectors the token may publish to.
    pub publish: Vec<String>,
    /// `mercure.subscribe`: topic selectors the token may receive private updates for.
    pub subscribe: Vec<String>,
    /// `mercure.payload`, written only when `Some`.
    pub payload: Option<Value>,
    /// `sub`, written only when `Some`.
    pub subject: Option<String>,
    /// Lifetime: `exp` is the minting time plus this duration; no `exp` when `None`.
    pub ttl: Option<Duration>,
}

impl LegacyMintRequest {
    /// An empty request: no selectors, no payload, no subject, no expiry.
    pub fn new() -> LegacyMintRequest {
        LegacyMintRequest::default()
    }

    /// Adds a selector to `mercure.publish`.
    pub fn with_publish(mut self, selector: impl Into<String>) -> LegacyMintRequest {
        self.publish.push(selector.into());
        self
    }

    /// Adds a selector to `mercure.subscribe`.
    pub fn with_subscribe(mut self, selector: impl Into<String>) -> LegacyMintRequest {
        self.subscribe.push(selector.into());
        self
    }

    /// Sets `mercure.payload`.
    pub fn with_payload(mut self, payload: Value) -> LegacyMintRequest {
        self.payload = Some(payload);
        self
    }

    /// Sets the subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> LegacyMintRequest {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the lifetime.
    pub fn with_ttl(mut self, ttl: Duration) -> LegacyMintRequest {
        self.ttl = Some(ttl);
        self
    }
}

/// Mints a legacy token now. See [`mint_legacy_at`].
pub fn mint_legacy(request: &LegacyMintRequest, key: &SigningKey) -> Result<String, Error> {
    mint_legacy_at(request, key, SystemTime::now())
}

/// Mints a pre-draft-08 token at `now`: header `{"typ": "JWT", "alg": ..., "kid"?: ...}`,
/// claims `{"mercure": {"publish": [...], "subscribe": [...], "payload"?: ...}, "sub"?: ...,
/// "exp"?: ...}`. Both lists are always written, empty or not.
pub fn mint_legacy_at(
    request: &LegacyMintRequest,
    key: &SigningKey,
    now: SystemTime,
) -> Result<String, Error> {
    let invalid = |reason: &str| Error::Mint(reason.to_owned());
    let mut mercure = Map::new();
    mercure.insert("publish".into(), request.publish.clone().into());
    mercure.insert("subscribe".into(), request.subscribe.clone().into());
    if let Some(payload) = &request.payload {
        mercure.insert("payload".into(), payload.clone());
    }
    let mut claims = Map::new();
    claims.insert(LEGACY_CLAIM.into(), Value::Object(mercure));
    if let Some(subject) = &request.subject {
        claims.insert("sub".into(), subject.clone().into());
    }
    if let Some(ttl) = request.ttl {
        if ttl.is_zero() {
            return Err(invalid("the lifetime must be longer than zero"));
        }
        let exp = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| invalid("the clock is before 1970"))?
            .as_secs()
            .checked_add(ttl.as_secs().max(1))
            .ok_or_else(|| invalid("the lifetime is too long"))?;
        claims.insert("exp".into(), exp.into());
    }
    let mut header = Header::new(key.algorithm().to_jwt());
    header.typ = Some("JWT".to_owned());
    header.kid = key.kid().map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key.encoding_key())
        .map_err(|e| Error::Signing(e.to_string()))
}
