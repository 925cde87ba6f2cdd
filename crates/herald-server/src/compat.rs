//! Compatibility mode: the pre-draft-08 revision of Mercure, served next to
//! draft-08 by the same hub.
//!
//! Older clients (Symfony, Laravel, API Platform, Turbo Streams, many browser
//! apps) subscribe with `topic=` selectors, present JWTs carrying the bespoke
//! `mercure` claim (signed with a hub-wide publisher or subscriber key, with
//! no issuer, audience or token type), may put that token in an
//! `authorization` query parameter or a `mercureAuthorization` cookie, resume
//! with `lastEventID`, and read `Last-Event-ID` from the response. Turning
//! this on weakens token validation (see `docs/compatibility.md`), so it is
//! off unless configured.

use herald_token::LegacyVerifier;

/// Which configured key set a legacy token must be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Publishing: the publisher keys.
    Publish,
    /// Subscribing and the subscription API: the subscriber keys.
    Subscribe,
}

/// The pre-draft-08 protocol's settings: its two key sets and its cookie.
#[derive(Debug)]
pub struct Compatibility {
    publisher: Option<LegacyVerifier>,
    subscriber: Option<LegacyVerifier>,
    cookie_name: String,
}

/// The legacy cookie name most deployed clients use.
pub const LEGACY_COOKIE_NAME: &str = "mercureAuthorization";

impl Compatibility {
    /// Legacy tokens for publishing are checked by `publisher`, those for
    /// subscribing by `subscriber` (`None`: no legacy token is accepted for
    /// that purpose); browsers present them in `cookie_name`.
    pub fn new(
        publisher: Option<LegacyVerifier>,
        subscriber: Option<LegacyVerifier>,
        cookie_name: impl Into<String>,
    ) -> Self {
        Self {
            publisher,
            subscriber,
            cookie_name: cookie_name.into(),
        }
    }

    /// The legacy cookie name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The verifier for tokens presented for `purpose`, if keys are set for it.
    pub fn verifier(&self, purpose: Purpose) -> Option<&LegacyVerifier> {
        match purpose {
            Purpose::Publish => self.publisher.as_ref(),
            Purpose::Subscribe => self.subscriber.as_ref(),
        }
    }
}
