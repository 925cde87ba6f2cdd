//! Topic matchers: `exact`, `urlpattern` and the `*` wildcard.
//!
//! URL patterns are compiled once per distinct pattern ([`Matchers`] interns
//! them) with the `regex` crate, whose matching time is linear. Whether a topic
//! matches a pattern is remembered in one bounded cache shared by all patterns,
//! so a hot topic costs a hash lookup, not a URL parse and a regex run.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use quick_cache::Equivalent;
use url::Url;
use urlpattern::{UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

use crate::HubError;
use crate::text::check_characters;

/// The matcher types this hub supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatcherType {
    /// Byte-for-byte comparison (the default).
    Exact,
    /// A URL Pattern, evaluated against the topic resolved on the hub URL.
    UrlPattern,
}

impl MatcherType {
    /// Every supported type, as advertised in the protected resource metadata.
    pub const ALL: [MatcherType; 2] = [MatcherType::Exact, MatcherType::UrlPattern];

    /// The canonical name (`exact`, `urlpattern`).
    pub fn name(self) -> &'static str {
        match self {
            MatcherType::Exact => "exact",
            MatcherType::UrlPattern => "urlpattern",
        }
    }

    /// The type with this canonical (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "exact" => Some(MatcherType::Exact),
            "urlpattern" => Some(MatcherType::UrlPattern),
            _ => None,
        }
    }

    /// The type selected by a subscription parameter name, or `None` for a
    /// name outside the reserved `match` namespace.
    ///
    /// Returns an error for a name inside the namespace (ASCII case-insensitive
    /// prefix `match`) that selects no supported type.
    pub fn from_param(param: &str) -> Result<Option<Self>, HubError> {
        let in_namespace = param
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("match"));
        if !in_namespace {
            return Ok(None);
        }
        match param {
            "match" | "match_exact" => Ok(Some(MatcherType::Exact)),
            "match_urlpattern" => Ok(Some(MatcherType::UrlPattern)),
            _ => Err(HubError::UnknownMatcherType(param.to_owned())),
        }
    }
}

/// A compiled topic matcher.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// `*`: every topic.
    Wildcard,
    /// One topic, compared byte for byte.
    Exact(Arc<str>),
    /// A compiled URL pattern, shared by every matcher with the same source.
    UrlPattern(Arc<Pattern>),
}

impl Matcher {
    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Matcher::Wildcard => true,
            Matcher::Exact(exact) => **exact == *topic,
            Matcher::UrlPattern(pattern) => pattern.matches(topic),
        }
    }

    /// Whether any of `topics` matches.
    pub fn matches_any<S: AsRef<str>>(&self, topics: &[S]) -> bool {
        topics.iter().any(|t| self.matches(t.as_ref()))
    }

    /// The matcher type (`*` reports the type it was written with as exact).
    pub fn matcher_type(&self) -> MatcherType {
        match self {
            Matcher::Wildcard | Matcher::Exact(_) => MatcherType::Exact,
            Matcher::UrlPattern(_) => MatcherType::UrlPattern,
        }
    }

    /// The matcher as written.
    pub fn source(&self) -> &str {
        match self {
            Matcher::Wildcard => "*",
            Matcher::Exact(exact) => exact,
            Matcher::UrlPattern(pattern) => &pattern.source,
        }
    }
}

/// A compiled URL pattern.
pub struct Pattern {
    id: u64,
    source: Box<str>,
    compiled: UrlPattern,
    owner: Arc<Shared>,
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern")
            .field("source", &self.source)
            .finish()
    }
}

impl Pattern {
    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `topic`, resolved against the hub URL, matches. A topic that is
    /// not a URL reference matches no pattern.
    pub fn matches(&self, topic: &str) -> bool {
        let key = CacheKeyRef(self.id, topic);
        if let Some(hit) = self.owner.cache.get(&key) {
            return hit;
        }
        let matched = Url::options()
            .base_url(Some(&self.owner.base))
            .parse(topic)
            .ok()
            .and_then(|url| self.compiled.test(UrlPatternMatchInput::Url(url)).ok())
            .unwrap_or(false);
        self.owner.cache.insert((self.id, topic.into()), matched);
        matched
    }
}

/// Limits applied when parsing matchers.
#[derive(Debug, Clone, Copy)]
pub struct MatcherLimits {
    /// Longest accepted matcher value, in bytes.
    pub max_length: usize,
}

impl Default for MatcherLimits {
    fn default() -> Self {
        Self { max_length: 2048 }
    }
}

/// Parses and interns matchers for one hub URL.
#[derive(Clone)]
pub struct Matchers {
    shared: Arc<Shared>,
}

struct Shared {
    base: Url,
    limits: MatcherLimits,
    next_id: AtomicU64,
    interned: Mutex<HashMap<Box<str>, Weak<Pattern>>>,
    cache: quick_cache::sync::Cache<(u64, Box<str>), bool>,
}

impl std::fmt::Debug for Matchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matchers")
            .field("base", &self.shared.base.as_str())
            .finish()
    }
}

/// How many (pattern, topic) results the shared cache keeps.
const MATCH_CACHE_CAPACITY: usize = 64 * 1024;

impl Matchers {
    /// Matchers resolving relative patterns and topics against `hub_url`.
    pub fn new(hub_url: Url, limits: MatcherLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                base: hub_url,
                limits,
                next_id: AtomicU64::new(1),
                interned: Mutex::new(HashMap::new()),
                cache: quick_cache::sync::Cache::new(MATCH_CACHE_CAPACITY),
            }),
        }
    }

    /// Parses a matcher value given in `param` (used in error messages).
    pub fn parse(
        &self,
        param: &str,
        matcher_type: MatcherType,
        value: &str,
    ) -> Result<Matcher, HubError> {
        check_characters(param, value)?;
        if value.len() > self.shared.limits.max_length {
            return Err(HubError::LimitExceeded(format!(
                "`{param}` is {} bytes long; the limit is {} bytes",
                value.len(),
                self.shared.limits.max_length
            )));
        }
        if value == "*" {
            return Ok(Matcher::Wildcard);
        }
        match matcher_type {
            MatcherType::Exact => Ok(Matcher::Exact(value.into())),
            MatcherType::UrlPattern => self.pattern(param, value).map(Matcher::UrlPattern),
        }
    }

    fn pattern(&self, param: &str, value: &str) -> Result<Arc<Pattern>, HubError> {
        let mut interned = self.shared.interned.lock();
        if let Some(existing) = interned.get(value).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let invalid = |reason: String| HubError::InvalidMatcher {
            param: param.to_owned(),
            value: value.to_owned(),
            matcher_type: "urlpattern",
            reason,
        };
        let init = UrlPatternInit::parse_constructor_string::<regex::Regex>(
            value,
            Some(self.shared.base.clone()),
        )
        .map_err(|e| invalid(e.to_string()))?;
        let options = UrlPatternOptions {
            ignore_case: false,
            ..Default::default()
        };
        let compiled = UrlPattern::parse(init, options).map_err(|e| invalid(e.to_string()))?;
        let pattern = Arc::new(Pattern {
            id: self.shared.next_id.fetch_add(1, Ordering::Relaxed),
            source: value.into(),
            compiled,
            owner: Arc::clone(&self.shared),
        });
        if interned.len() > 1024 {
            interned.retain(|_, weak| weak.strong_count() > 0);
        }
        interned.insert(value.into(), Arc::downgrade(&pattern));
        Ok(pattern)
    }

    /// The hub URL relative patterns and topics are resolved against.
    pub fn base(&self) -> &Url {
        &self.shared.base
    }
}

/// Looks up `(pattern id, topic)` without allocating the key.
struct CacheKeyRef<'a>(u64, &'a str);

impl Hash for CacheKeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like the owned key `(u64, Box<str>)`.
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl Equivalent<(u64, Box<str>)> for CacheKeyRef<'_> {
    fn equivalent(&self, key: &(u64, Box<str>)) -> bool {
        self.0 == key.0 && self.1 == &*key.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matchers() -> Matchers {
        Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits::default(),
        )
    }

    #[test]
    fn exact_is_byte_for_byte() {
        let m = matchers()
            .parse("match", MatcherType::Exact, "https://example.com/Foo")
            .unwrap();
        assert!(m.matches("https://example.com/Foo"));
        assert!(!m.matches("https://example.com/foo"));
        assert!(!m.matches("https://EXAMPLE.com/Foo"));
        assert!(!m.matches("https://example.com/Foo/"));
    }

    #[test]
    fn exact_never_resolves_relative_values() {
        let m = matchers()
            .parse("match", MatcherType::Exact, "/books/1")
            .unwrap();
        assert!(m.matches("/books/1"));
        assert!(!m.matches("https://hub.example.com/books/1"));
    }

    #[test]
    fn wildcard_matches_everything_whatever_the_type() {
        for t in MatcherType::ALL {
            let m = matchers().parse("match", t, "*").unwrap();
            assert!(matches!(m, Matcher::Wildcard));
            assert!(m.matches("anything"));
        }
    }

    #[test]
    fn urlpattern_matches_absolute_topics() {
        let m = matchers()
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://example.com/books/:id",
            )
            .unwrap();
        assert!(m.matches("https://example.com/books/1"));
        assert!(!m.matches("https://example.com/books/1/reviews"));
        assert!(
            !m.matches("https://example.com/Books/1"),
            "paths are case-sensitive"
        );
        assert!(
            m.matches("https://EXAMPLE.com/books/2"),
            "hosts are case-insensitive"
        );
        assert!(!m.matches("not a url at all \u{1}"));
    }

    #[test]
    fn relative_patterns_and_topics_resolve_against_the_hub_url() {
        let m = matchers()
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "/.well-known/mercure/subscriptions/exact/:topic/:subscriber",
            )
            .unwrap();
        assert!(m.matches("/.well-known/mercure/subscriptions/exact/a/b"));
        assert!(m.matches("https://hub.example.com/.well-known/mercure/subscriptions/exact/a/b"));
        assert!(!m.matches("https://other.example/.well-known/mercure/subscriptions/exact/a/b"));
    }

    #[test]
    fn invalid_pattern_is_refused_with_the_parser_reason() {
        let error = matchers()
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://example.com/(unclosed",
            )
            .unwrap_err();
        assert!(matches!(error, HubError::InvalidMatcher { .. }), "{error}");
    }

    #[test]
    fn overlong_matcher_is_refused() {
        let m = Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits { max_length: 10 },
        );
        assert!(matches!(
            m.parse("match", MatcherType::Exact, "https://example.com"),
            Err(HubError::LimitExceeded(_))
        ));
    }

    #[test]
    fn identical_patterns_are_compiled_once() {
        let m = matchers();
        let a = m
            .parse("match_urlpattern", MatcherType::UrlPattern, "/x/:id")
            .unwrap();
        let b = m
            .parse("match_urlpattern", MatcherType::UrlPattern, "/x/:id")
            .unwrap();
        let (Matcher::UrlPattern(a), Matcher::UrlPattern(b)) = (a, b) else {
            panic!()
        };
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn reserved_namespace_of_parameters() {
        assert_eq!(
            MatcherType::from_param("match").unwrap(),
            Some(MatcherType::Exact)
        );
        assert_eq!(
            MatcherType::from_param("match_exact").unwrap(),
            Some(MatcherType::Exact)
        );
        assert_eq!(
            MatcherType::from_param("match_urlpattern").unwrap(),
            Some(MatcherType::UrlPattern)
        );
        assert_eq!(MatcherType::from_param("topic").unwrap(), None);
        assert_eq!(MatcherType::from_param("last_event_id").unwrap(), None);
        for bad in [
            "matches",
            "MATCH",
            "Match_exact",
            "match_URLPattern",
            "match_regex",
            "matchx",
        ] {
            assert!(
                MatcherType::from_param(bad).is_err(),
                "{bad} must be refused"
            );
        }
    }
}
