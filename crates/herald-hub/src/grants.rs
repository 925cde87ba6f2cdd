//! What an access token allows: the authorization decisions of the protocol.

use std::sync::Arc;

use crate::Matcher;

/// One `subscribe` grant: its topic matchers and the payload attached to it.
#[derive(Debug, Clone)]
pub struct SubscribeGrant {
    /// The topics this grant covers.
    pub topics: Vec<Matcher>,
    /// The `payload` JSON object of the authorization detail, serialized.
    pub payload: Option<Arc<str>>,
}

/// The publish and subscribe rights of one client, in token order.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Matchers of every detail with the `publish` action.
    pub publish: Vec<Matcher>,
    /// Every detail with the `subscribe` action, in token order.
    pub subscribe: Vec<SubscribeGrant>,
    /// A payload attached to every subscription that no `subscribe` grant
    /// gives one: the pre-draft-08 `mercure.payload`, which was per token.
    pub payload: Option<Arc<str>>,
}

impl Grants {
    /// No rights at all: an anonymous client.
    pub fn none() -> Arc<Grants> {
        Arc::new(Grants::default())
    }

    /// Whether an update on `topics` may be published: every topic, canonical
    /// and alternate alike, must be covered by a `publish` grant.
    pub fn can_publish<S: AsRef<str>>(&self, topics: &[S]) -> bool {
        !topics.is_empty()
            && topics
                .iter()
                .all(|t| self.publish.iter().any(|m| m.matches(t.as_ref())))
    }

    /// Whether a private update on `topics` may be read: a `subscribe` grant
    /// must cover at least one of them.
    pub fn can_read<S: AsRef<str>>(&self, topics: &[S]) -> bool {
        self.subscribe
            .iter()
            .any(|g| g.topics.iter().any(|m| m.matches_any(topics)))
    }

    /// The payload of the first `subscribe` grant that matches the
    /// subscription's own matcher string, treated as a topic; else the
    /// token-wide payload.
    pub fn payload_for(&self, subscription_matcher: &str) -> Option<&Arc<str>> {
        self.subscribe
            .iter()
            .find(|g| g.topics.iter().any(|m| m.matches(subscription_matcher)))
            .and_then(|g| g.payload.as_ref())
            .or(self.payload.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;
    use crate::{MatcherLimits, MatcherType, Matchers};

    fn m(t: MatcherType, v: &str) -> Matcher {
        Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits::default(),
        )
        .parse("match", t, v)
        .unwrap()
    }

    #[test]
    fn publishing_needs_every_topic() {
        let grants = Grants {
            publish: vec![m(MatcherType::Exact, "a")],
            subscribe: vec![],
            payload: None,
        };
        assert!(grants.can_publish(&["a"]));
        assert!(!grants.can_publish(&["a", "b"]));
        assert!(!grants.can_publish::<&str>(&[]));
    }

    #[test]
    fn reading_needs_any_topic() {
        let grants = Grants {
            publish: vec![],
            subscribe: vec![SubscribeGrant {
                topics: vec![m(MatcherType::UrlPattern, "https://example.com/users/42/*")],
                payload: None,
            }],
            payload: None,
        };
        assert!(grants.can_read(&[
            "https://example.com/books/1",
            "https://example.com/users/42/books/1"
        ]));
        assert!(!grants.can_read(&["https://example.com/books/1"]));
        assert!(!Grants::none().can_read(&["https://example.com/books/1"]));
    }

    #[test]
    fn payload_of_the_first_matching_subscribe_grant() {
        let grant = |t, v, p: &str| SubscribeGrant {
            topics: vec![m(t, v)],
            payload: Some(p.into()),
        };
        let grants = Grants {
            publish: vec![],
            subscribe: vec![
                grant(MatcherType::Exact, "https://example.com/foo", "1"),
                grant(MatcherType::UrlPattern, "https://example.com/bar/:id", "2"),
                grant(MatcherType::Exact, "*", "3"),
            ],
            payload: None,
        };
        assert_eq!(
            grants.payload_for("https://example.com/foo").map(|p| &**p),
            Some("1")
        );
        assert_eq!(
            grants
                .payload_for("https://example.com/bar/:id")
                .map(|p| &**p),
            Some("2"),
            "the subscription's own pattern string is matched as if it were a topic"
        );
        assert_eq!(
            grants
                .payload_for("https://example.com/other")
                .map(|p| &**p),
            Some("3")
        );
    }
}
