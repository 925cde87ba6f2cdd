//! Mercure access tokens: RFC 9068 JWT access tokens carrying Mercure authorization details
//! (draft-dunglas-mercure-08, "Authorization"). No HTTP server code lives here.
//!
//! Map of the crate:
//! - [`claims`]: the claims ([`Claims`], [`Audience`]), Mercure authorization details
//!   ([`AuthorizationDetail`], [`Action`], [`TopicMatcher`], [`MatchType`]) and their strict
//!   parser.
//! - [`keys`]: the supported [`Algorithm`]s, [`SigningKey`] and [`VerifyingKey`] (each bound
//!   to exactly one algorithm), and development key generation.
//! - [`mint()`]: signs tokens from a [`MintRequest`] (an application issuing its
//!   users' tokens, development and tests).
//! - [`Verifier`]: checks a presented token against the hub's resource identifier, an
//!   algorithm allowlist and trusted issuers, and yields a [`VerifiedToken`]; its core,
//!   [`Verifier::verify_at`], takes the time as an argument.
//! - [`LegacyVerifier`]: checks a pre-draft-08 ("legacy") token, authorized by its `mercure`
//!   claim and signed with one of the hub's keys, and yields a [`LegacyToken`];
//!   [`mint_legacy`] signs one from a [`LegacyMintRequest`].
//! - [`jwks`]: issuers' JWK Sets, fetched and refreshed in the background (over
//!   rustls: the first fetch installs rustls' `ring` provider as the process
//!   default unless one is installed already).
//! - [`Error`]: every failure, with [`Error::oauth_error`] giving the spec's error response.
//!
//! ```
//! use herald_token::{Action, Algorithm, AuthorizationDetail, Issuer, MintRequest, SigningKey,
//!     TopicMatcher, Verifier, VerifyingKey, mint};
//!
//! let secret = b"a shared secret of at least 32 bytes!";
//! let hub = "https://hub.example.com/.well-known/mercure";
//! let request = MintRequest::new("https://example.com", hub).with_detail(AuthorizationDetail::new(
//!     vec![Action::Subscribe],
//!     vec![TopicMatcher::exact("https://example.com/books/1")],
//! ));
//! let token = mint(&request, &SigningKey::hs256(secret)?)?;
//!
//! let verifier = Verifier::builder(hub, [Algorithm::HS256])
//!     .issuer(Issuer::new("https://example.com").with_key(VerifyingKey::hs256(secret)?))
//!     .build()?;
//! let verified = verifier.verify(&token)?;
//! let mut no_urlpattern = |_: &str, _: &str| false;
//! assert!(verified.may_receive(["https://example.com/books/1"], &mut no_urlpattern));
//! assert!(!verified.may_publish(["https://example.com/books/1"], &mut no_urlpattern));
//! # Ok::<(), herald_token::Error>(())
//! ```

pub mod claims;
mod error;
pub mod jwks;
mod jws;
pub mod keys;
mod legacy;
mod mint;
mod verify;

pub use claims::{
    ACCESS_TOKEN_TYPE, Action, Audience, AuthorizationDetail, Claims, MERCURE_DETAIL_TYPE,
    MatchType, TopicMatcher, WILDCARD,
};
pub use error::{Error, OAuthError};
pub use jwks::JwksRefresh;
pub use keys::{
    Algorithm, DevKeyPair, SigningKey, VerifyingKey, generate_ed25519, generate_hs256_secret,
};
pub use legacy::{
    LEGACY_CLAIM, LEGACY_NAMESPACED_CLAIM, LegacyMintRequest, LegacyToken, LegacyVerifier,
    LegacyVerifierBuilder, mint_legacy, mint_legacy_at,
};
pub use mint::{MintRequest, claims_at, mint, mint_at};
pub use verify::{
    DEFAULT_JWKS_REFRESH, DEFAULT_LEEWAY, Issuer, Limits, VerifiedToken, Verifier, VerifierBuilder,
    declares_access_token,
};

#[cfg(test)]
mod legacy_tests;
#[cfg(test)]
mod tests;
