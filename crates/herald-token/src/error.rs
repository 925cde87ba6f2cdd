//! The one error type of the crate, and its mapping to the spec's error responses.

use crate::Algorithm;

/// Everything that can go wrong while loading keys, minting, or verifying a token.
///
/// Token rejections (everything [`Error::oauth_error`] maps to `Some`) say exactly why the
/// token was refused. Those messages are meant for logs: a hub answers every rejected token
/// with the same `invalid_token` challenge so that it does not disclose why validation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- The token is not a JWS in compact serialization -----
    /// The token is not a JWS compact serialization: not three base64url segments, or a
    /// header or payload that is not a JSON object.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The token is longer than the configured limit.
    #[error("the token is {len} bytes long, more than the limit of {limit}")]
    TokenTooLong {
        /// The token's length in bytes.
        len: usize,
        /// The configured limit.
        limit: usize,
    },

    // ----- Header -----
    /// The header says `alg: none`: unsigned tokens are never accepted.
    #[error("unsigned tokens (alg \"none\") are never accepted")]
    AlgorithmNone,
    /// The header's `alg` is not on the verifier's allowlist.
    #[error("algorithm {alg:?} is not on the allowlist")]
    DisallowedAlgorithm {
        /// The `alg` the token announced.
        alg: String,
    },
    /// The header's `typ` is missing or is not `at+jwt` / `application/at+jwt`.
    #[error("token type {}: expected \"at+jwt\" or \"application/at+jwt\"", typ.as_deref().map_or_else(|| "missing".to_owned(), |t| format!("{t:?}")))]
    WrongType {
        /// The `typ` the token carried, if any.
        typ: Option<String>,
    },
    /// The header lists critical extensions (`crit`), none of which this verifier understands.
    #[error("the token requires header extensions this hub does not understand: {0:?}")]
    UnsupportedCritical(Vec<String>),

    // ----- Issuer and key selection -----
    /// The `iss` claim names no issuer the verifier trusts.
    #[error("issuer {issuer:?} is not trusted")]
    UnknownIssuer {
        /// The token's `iss`.
        issuer: String,
    },
    /// The issuer is trusted, but none of its keys fits the token's `alg` and `kid`.
    #[error("issuer {issuer:?} has no trusted {alg} key{}", kid.as_deref().map_or_else(String::new, |k| format!(" with kid {k:?}")))]
    UnknownKey {
        /// The token's `iss`.
        issuer: String,
        /// The token's `alg`.
        alg: Algorithm,
        /// The token's `kid`, if any.
        kid: Option<String>,
    },
    /// No trusted key of the issuer verifies the signature.
    #[error("the signature does not verify with any trusted {alg} key of issuer {issuer:?}")]
    BadSignature {
        /// The token's `iss`.
        issuer: String,
        /// The token's `alg`.
        alg: Algorithm,
    },

    // ----- Claims -----
    /// A claim the hub requires is absent.
    #[error("the {0:?} claim is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an impossible value.
    #[error("the {claim:?} claim is invalid: {reason}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The token expired (`exp`, leeway included, is at or before now).
    #[error("the token expired at {exp} (now is {now}, leeway {leeway}s)")]
    Expired {
        /// The `exp` claim, in seconds since the Unix epoch.
        exp: u64,
        /// The verification time, in seconds since the Unix epoch.
        now: u64,
        /// The leeway in seconds.
        leeway: u64,
    },
    /// The token is not valid yet (`nbf`, minus the leeway, is after now).
    #[error("the token is not valid before {nbf} (now is {now}, leeway {leeway}s)")]
    NotYetValid {
        /// The `nbf` claim, in seconds since the Unix epoch.
        nbf: u64,
        /// The verification time, in seconds since the Unix epoch.
        now: u64,
        /// The leeway in seconds.
        leeway: u64,
    },
    /// The token claims to be issued in the future (`iat`, minus the leeway, is after now).
    #[error(
        "the token claims to be issued at {iat}, in the future (now is {now}, leeway {leeway}s)"
    )]
    IssuedInFuture {
        /// The `iat` claim, in seconds since the Unix epoch.
        iat: u64,
        /// The verification time, in seconds since the Unix epoch.
        now: u64,
        /// The leeway in seconds.
        leeway: u64,
    },
    /// The `aud` claim does not contain the hub's resource identifier.
    #[error(
        "the audience {audience:?} does not contain this hub's resource identifier {expected:?}"
    )]
    WrongAudience {
        /// The token's audience values.
        audience: Vec<String>,
        /// The hub's resource identifier.
        expected: String,
    },
    /// `authorization_details` is present but is not a JSON array.
    #[error("the \"authorization_details\" claim is not an array")]
    AuthorizationDetailsNotArray,
    /// A Mercure authorization detail fails to parse or validate. The whole token is invalid:
    /// the spec forbids acting on the remaining entries.
    #[error("authorization_details[{index}].{field}: {reason}")]
    InvalidAuthorizationDetail {
        /// The position of the faulty entry in `authorization_details`.
        index: usize,
        /// The faulty field, as a path inside the entry (`actions[1]`, `topics[0].match_type`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token exceeds one of the verifier's [`Limits`](crate::Limits) on authorization
    /// details (count, topics per detail, matcher length).
    #[error("{what}: {actual} exceeds the limit of {limit}")]
    LimitExceeded {
        /// Which limit, with the position of the faulty entry.
        what: String,
        /// The value found in the token.
        actual: usize,
        /// The configured limit.
        limit: usize,
    },

    // ----- Legacy (pre-draft-08) tokens, see `LegacyVerifier` -----
    /// No key of the [`LegacyVerifier`](crate::LegacyVerifier) is bound to the token's `alg`
    /// (with the token's `kid`, when both name one).
    #[error("no trusted {alg} key{}", kid.as_deref().map_or_else(String::new, |k| format!(" with kid {k:?}")))]
    LegacyUnknownKey {
        /// The token's `alg`.
        alg: Algorithm,
        /// The token's `kid`, if any.
        kid: Option<String>,
    },
    /// No key of the [`LegacyVerifier`](crate::LegacyVerifier) verifies the signature.
    #[error("the signature does not verify with any trusted {alg} key")]
    LegacyBadSignature {
        /// The token's `alg`.
        alg: Algorithm,
    },
    /// The `mercure` claim (or its namespaced fallback `https://mercure.rocks/`) has the
    /// wrong shape: not an object, or a `publish` / `subscribe` that is not an array of
    /// strings. The message reads like `mercure.subscribe[2] is not a string (found a number)`.
    #[error("{path} {problem}")]
    InvalidMercureClaim {
        /// The faulty value, as a path from the claim (`mercure`, `mercure.publish`,
        /// `mercure.subscribe[2]`).
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The `mercure` claim exceeds one of the verifier's [`Limits`](crate::Limits) (selectors
    /// per list, selector length).
    #[error("{what}: {actual} exceeds the limit of {limit}")]
    MercureLimitExceeded {
        /// Which limit, with the position of the faulty value.
        what: String,
        /// The value found in the token.
        actual: usize,
        /// The configured limit.
        limit: usize,
    },

    // ----- Keys, configuration, minting, key sets (not token rejections) -----
    /// A key could not be loaded (bad PEM, wrong key kind, unsupported curve, weak secret).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A PEM file holds several keys (or blocks) where one key is expected: which one was
    /// meant would be a guess.
    #[error("invalid key: the PEM holds {found} where one key is expected; put one key per file")]
    SeveralKeys {
        /// What it holds: `2 keys`, or the blocks' labels when they are not all keys
        /// (`2 PEM blocks (CERTIFICATE, PRIVATE KEY)`).
        found: String,
    },
    /// The verifier configuration is inconsistent.
    #[error("invalid verifier configuration: {0}")]
    Config(String),
    /// A [`MintRequest`](crate::MintRequest) or
    /// [`LegacyMintRequest`](crate::LegacyMintRequest) cannot make a valid token (empty issuer, no
    /// audience, zero lifetime, ...).
    #[error("cannot mint the token: {0}")]
    Mint(String),
    /// Signing a token failed.
    #[error("cannot sign the token: {0}")]
    Signing(String),
    /// Fetching or parsing an issuer's JWK Set failed.
    #[error("cannot load the JWK Set of issuer {issuer:?} from {url}: {reason}")]
    Jwks {
        /// The issuer whose key set failed.
        issuer: String,
        /// The JWK Set URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// How a hub answers a rejected token, following the spec's "Error Responses".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    /// The access token itself is malformed (not a JWS in compact serialization):
    /// 400 with `WWW-Authenticate: Bearer error="invalid_request"`.
    InvalidRequest,
    /// The token was presented but fails validation:
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    InvalidToken,
}

impl OAuthError {
    /// The HTTP status code of the response.
    pub fn status(self) -> u16 {
        match self {
            OAuthError::InvalidRequest => 400,
            OAuthError::InvalidToken => 401,
        }
    }

    /// The RFC 6750 `error` code carried by the `WWW-Authenticate: Bearer` challenge.
    pub fn code(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidToken => "invalid_token",
        }
    }
}

impl Error {
    /// A short, stable label for the reason, for metrics and logs (never the
    /// token or a claim value).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::TokenTooLong { .. } => "too_long",
            Error::AlgorithmNone => "alg_none",
            Error::DisallowedAlgorithm { .. } => "disallowed_algorithm",
            Error::WrongType { .. } => "wrong_type",
            Error::UnsupportedCritical(_) => "unsupported_critical",
            Error::UnknownIssuer { .. } => "unknown_issuer",
            Error::UnknownKey { .. } | Error::LegacyUnknownKey { .. } => "unknown_key",
            Error::BadSignature { .. } | Error::LegacyBadSignature { .. } => "bad_signature",
            Error::MissingClaim(_) | Error::InvalidClaim { .. } => "invalid_claims",
            Error::Expired { .. } => "expired",
            Error::NotYetValid { .. } | Error::IssuedInFuture { .. } => "not_yet_valid",
            Error::WrongAudience { .. } => "wrong_audience",
            Error::AuthorizationDetailsNotArray
            | Error::InvalidAuthorizationDetail { .. }
            | Error::LimitExceeded { .. } => "invalid_authorization_details",
            Error::InvalidMercureClaim { .. } | Error::MercureLimitExceeded { .. } => {
                "invalid_mercure_claim"
            }
            Error::InvalidKey(_)
            | Error::SeveralKeys { .. }
            | Error::Config(_)
            | Error::Mint(_)
            | Error::Signing(_)
            | Error::Jwks { .. } => "hub_error",
        }
    }

    /// The spec's error response for this rejection, or `None` when the error is not about a
    /// presented token (key loading, configuration, minting, JWK Set fetching), which a hub
    /// treats as its own failure.
    ///
    /// A token that is not a JWS compact serialization at all is a malformed request element
    /// (`invalid_request`, 400); every other rejection, including faulty authorization
    /// details and exceeded limits, is `invalid_token` (401).
    pub fn oauth_error(&self) -> Option<OAuthError> {
        match self {
            Error::Malformed(_) | Error::TokenTooLong { .. } => Some(OAuthError::InvalidRequest),
            Error::AlgorithmNone
            | Error::DisallowedAlgorithm { .. }
            | Error::WrongType { .. }
            | Error::UnsupportedCritical(_)
            | Error::UnknownIssuer { .. }
            | Error::UnknownKey { .. }
            | Error::BadSignature { .. }
            | Error::MissingClaim(_)
            | Error::InvalidClaim { .. }
            | Error::Expired { .. }
            | Error::NotYetValid { .. }
            | Error::IssuedInFuture { .. }
            | Error::WrongAudience { .. }
            | Error::AuthorizationDetailsNotArray
            | Error::InvalidAuthorizationDetail { .. }
            | Error::LimitExceeded { .. }
            | Error::LegacyUnknownKey { .. }
            | Error::LegacyBadSignature { .. }
            | Error::InvalidMercureClaim { .. }
            | Error::MercureLimitExceeded { .. } => Some(OAuthError::InvalidToken),
            Error::InvalidKey(_)
            | Error::SeveralKeys { .. }
            | Error::Config(_)
            | Error::Mint(_)
            | Error::Signing(_)
            | Error::Jwks { .. } => None,
        }
    }
}
