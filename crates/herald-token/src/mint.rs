//! Minting access tokens: what an application that is its own issuer (it
//! holds the signing key the hub trusts) gives its users to subscribe or
//! publish with, and what development and tests use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Header;

use crate::claims::{ACCESS_TOKEN_TYPE, Audience, AuthorizationDetail, Claims};
use crate::{Error, SigningKey};

/// What to put in a minted token.
#[derive(Debug, Clone, PartialEq)]
pub struct MintRequest {
    /// `iss`: the issuer identifier the hub trusts the signing key under.
    pub issuer: String,
    /// `aud`: the hub resource identifier(s) (at least one).
    pub audience: Vec<String>,
    /// `sub`: the subject; RFC 9068 requires it.
    pub subject: String,
    /// `client_id`: the client the token is issued to; RFC 9068 requires it.
    pub client_id: String,
    /// Lifetime: `exp` is `iat` plus this duration.
    pub ttl: Duration,
    /// The Mercure authorization details, in order.
    pub authorization_details: Vec<AuthorizationDetail>,
}

impl MintRequest {
    /// A request for `issuer` and one `audience`, with a random `urn:uuid:` subject, the
    /// issuer as `client_id`, a one-hour lifetime, and no authorization details.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> MintRequest {
        let issuer = issuer.into();
        MintRequest {
            client_id: issuer.clone(),
            issuer,
            audience: vec![audience.into()],
            subject: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            ttl: Duration::from_secs(3600),
            authorization_details: Vec::new(),
        }
    }

    /// Adds an authorization detail.
    pub fn with_detail(mut self, detail: AuthorizationDetail) -> MintRequest {
        self.authorization_details.push(detail);
        self
    }

    /// Sets the lifetime.
    pub fn with_ttl(mut self, ttl: Duration) -> MintRequest {
        self.ttl = ttl;
        self
    }

    /// Sets the subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> MintRequest {
        self.subject = subject.into();
        self
    }
}

/// Mints a token issued now. See [`mint_at`].
pub fn mint(request: &MintRequest, key: &SigningKey) -> Result<String, Error> {
    mint_at(request, key, SystemTime::now())
}

/// Mints an RFC 9068 access token issued at `now`: header `{"typ": "at+jwt", "alg": ...,
/// "kid"?: ...}`, claims `iss`, `aud`, `sub`, `client_id`, `iat`, `exp`, `jti` (a random
/// `urn:uuid:`), and `authorization_details`.
pub fn mint_at(request: &MintRequest, key: &SigningKey, now: SystemTime) -> Result<String, Error> {
    let claims = claims_at(request, now)?;
    let mut header = Header::new(key.algorithm().to_jwt());
    header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
    header.kid = key.kid().map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key.encoding_key())
        .map_err(|e| Error::Signing(e.to_string()))
}

/// The claims [`mint_at`] signs.
pub fn claims_at(request: &MintRequest, now: SystemTime) -> Result<Claims, Error> {
    let invalid = |reason: &str| Error::Mint(reason.to_owned());
    if request.issuer.is_empty() {
        return Err(invalid("the issuer must not be empty"));
    }
    let audience = match request.audience.as_slice() {
        [] => return Err(invalid("at least one audience is needed")),
        [one] => Audience::One(one.clone()),
        many => Audience::Many(many.to_vec()),
    };
    if request.ttl.is_zero() {
        return Err(invalid("the lifetime must be longer than zero"));
    }
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| invalid("the clock is before 1970"))?
        .as_secs();
    let exp = iat
        .checked_add(request.ttl.as_secs().max(1))
        .ok_or_else(|| invalid("the lifetime is too long"))?;
    let authorization_details = request
        .authorization_details
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Mint(e.to_string()))?;
    Ok(Claims {
        iss: request.issuer.clone(),
        sub: Some(request.subject.clone()),
        aud: audience,
        exp,
        nbf: None,
        iat: Some(iat),
        jti: Some(format!("urn:uuid:{}", uuid::Uuid::new_v4())),
        client_id: Some(request.client_id.clone()),
        authorization_details,
    })
}
