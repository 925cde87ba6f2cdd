//! Topic matchers: `exact`, `urlpattern`, the `*` wildcard, and the topic
//! selectors of the Mercure revisions before draft 08.
//!
//! URL patterns and selectors are compiled once per distinct source
//! ([`Matchers`] interns them) with the `regex` crate, whose matching time is
//! linear. Whether a topic matches one is remembered in one bounded cache
//! shared by all of them, so a hot topic costs a hash lookup, not a URL parse
//! and a regex run.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Equivalent;
use url::Url;
use urlpattern::{UrlPattern, UrlPatternInit, UrlPatternMatchInput, UrlPatternOptions};

use crate::interner::Interner;
use crate::pattern_regex::{self, PatternRegex};

use crate::text::check_characters;
use crate::{HubError, UriTemplate};

/// The matcher types this hub supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatcherType {
    /// Byte-for-byte comparison (the default).
    Exact,
    /// A URL Pattern, evaluated against the topic resolved on the hub URL.
    UrlPattern,
    /// A topic selector of the Mercure revisions before draft 08: `*`, the
    /// topic itself, or a URI Template the topic matches. Not a draft-08
    /// matcher type, so absent from [`MatcherType::ALL`], and neither
    /// [`MatcherType::from_name`] nor [`MatcherType::from_param`] selects it.
    Selector,
}

impl MatcherType {
    /// Every supported type, as advertised in the protected resource metadata.
    pub const ALL: [MatcherType; 2] = [MatcherType::Exact, MatcherType::UrlPattern];

    /// The canonical name (`exact`, `urlpattern`; `topic`, the parameter
    /// that carries selectors, for [`MatcherType::Selector`]).
    pub fn name(self) -> &'static str {
        match self {
            MatcherType::Exact => "exact",
            MatcherType::UrlPattern => "urlpattern",
            MatcherType::Selector => "topic",
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
    /// A legacy topic selector, shared by every matcher with the same source.
    Selector(Arc<Selector>),
}

impl Matcher {
    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Matcher::Wildcard => true,
            Matcher::Exact(exact) => **exact == *topic,
            Matcher::UrlPattern(pattern) => pattern.matches(topic),
            Matcher::Selector(selector) => selector.matches(topic),
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
            Matcher::Selector(_) => MatcherType::Selector,
        }
    }

    /// The bytes of compiled regular expressions it holds: a URL pattern's
    /// (at most 568 KiB; about 10 KiB per part for ordinary groups), none for
    /// the others. Shared by every matcher with the same source, but counted
    /// whole by each, so that a budget over a subscription's matchers does
    /// not depend on what other subscriptions hold.
    pub fn compiled_bytes(&self) -> usize {
        match self {
            Matcher::UrlPattern(pattern) => pattern.memory,
            Matcher::Wildcard | Matcher::Exact(_) | Matcher::Selector(_) => 0,
        }
    }

    /// The matcher as written.
    pub fn source(&self) -> &str {
        match self {
            Matcher::Wildcard => "*",
            Matcher::Exact(exact) => exact,
            Matcher::UrlPattern(pattern) => &pattern.source,
            Matcher::Selector(selector) => &selector.source,
        }
    }
}

/// A compiled URL pattern.
pub struct Pattern {
    source: Box<str>,
    compiled: UrlPattern<PatternRegex>,
    /// The bytes its compiled expressions take.
    memory: usize,
    /// The literal start of every path it matches, through its last `/`.
    path_prefix: Option<Box<str>>,
    memo: Memo,
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
        self.memo.remember(topic, |base| {
            Url::options()
                .base_url(Some(base))
                .parse(topic)
                .ok()
                .and_then(|url| self.compiled.test(UrlPatternMatchInput::Url(url)).ok())
                .unwrap_or(false)
        })
    }
}

/// The literal start of the paths a pathname pattern string matches, through
/// its last `/`: `/users/42/` of `/users/42/*`. Only plain characters count,
/// which a URL's path holds as they are written (no escape, no
/// percent-encoding, no dot segment, which parsing would change), so that a
/// path matching the pattern starts with it; `None` when there is no `/`.
fn literal_path_prefix(pathname: &str) -> Option<&str> {
    if !pathname.starts_with('/') {
        return None;
    }
    let bytes = pathname.as_bytes();
    let plain = bytes
        .iter()
        .enumerate()
        .take_while(|&(i, &b)| {
            b.is_ascii_alphanumeric() || b"-_~/".contains(&b) || (b == b'.' && bytes[i - 1] != b'/')
        })
        .count();
    let end = pathname[..plain].rfind('/')?;
    Some(&pathname[..=end])
}

/// The URL patterns of a set, by the literal start of the paths they match
/// ([`literal_path_prefix`]), so that an update is tried against those whose
/// start its topics' paths have, not against every pattern held: with a
/// pattern per user, each update meets a handful instead of thousands.
/// Selectors, and patterns without such a start, are tried against every
/// update. Members are identified by an address, as the registry keys them.
#[derive(Default)]
pub(crate) struct PathIndex {
    by_prefix: HashMap<Box<str>, Vec<usize>>,
    unindexed: Vec<usize>,
    /// The hub URL topics are resolved against, from the first pattern.
    base: Option<Arc<Shared>>,
}

impl PathIndex {
    /// Adds `matcher` (a URL pattern or a selector) under `address`.
    pub(crate) fn insert(&mut self, address: usize, matcher: &Matcher) {
        match Self::prefix(matcher) {
            Some(prefix) => self
                .by_prefix
                .entry(prefix.into())
                .or_default()
                .push(address),
            None => self.unindexed.push(address),
        }
        if let Matcher::UrlPattern(pattern) = matcher {
            self.base
                .get_or_insert_with(|| Arc::clone(&pattern.memo.owner));
        }
    }

    /// Removes what [`PathIndex::insert`] added for `matcher` at `address`.
    pub(crate) fn remove(&mut self, address: usize, matcher: &Matcher) {
        match Self::prefix(matcher) {
            Some(prefix) => {
                if let Some(addresses) = self.by_prefix.get_mut(prefix) {
                    addresses.retain(|&a| a != address);
                    if addresses.is_empty() {
                        self.by_prefix.remove(prefix);
                    }
                }
            }
            None => self.unindexed.retain(|&a| a != address),
        }
    }

    /// The addresses of the members that may match one of `topics`, each
    /// once, in `out`; the others match none of them.
    pub(crate) fn candidates<S: AsRef<str>>(&self, topics: &[S], out: &mut Vec<usize>) {
        out.extend_from_slice(&self.unindexed);
        if let Some(shared) = &self.base {
            for topic in topics {
                // Resolved as `Pattern::matches` resolves it; a topic that is
                // not a URL reference matches no pattern.
                let Ok(url) = Url::options()
                    .base_url(Some(&shared.base))
                    .parse(topic.as_ref())
                else {
                    continue;
                };
                let path = url.path();
                for (end, _) in path.match_indices('/') {
                    if let Some(addresses) = self.by_prefix.get(&path[..=end]) {
                        out.extend_from_slice(addresses);
                    }
                }
            }
        }
        if topics.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }

    fn prefix(matcher: &Matcher) -> Option<&str> {
        match matcher {
            Matcher::UrlPattern(pattern) => pattern.path_prefix.as_deref(),
            _ => None,
        }
    }
}

/// A topic selector (Mercure before draft 08), compiled.
///
/// Legacy subscriptions and tokens write plain topics and URI Templates in
/// the same field, so a selector that is not a valid template is no error:
/// it is compared as a string only.
pub struct Selector {
    source: Arc<str>,
    /// `None` when the source is not a valid URI Template.
    template: Option<UriTemplate>,
    memo: Memo,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector")
            .field("source", &self.source)
            .field("template", &self.template.is_some())
            .finish()
    }
}

impl Selector {
    /// The selector as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The selector as a URI Template, or `None` if it is not a valid one.
    pub fn template(&self) -> Option<&UriTemplate> {
        self.template.as_ref()
    }

    /// Whether `topic` matches: the selector is `*`, or is `topic` itself
    /// (so a template matches itself), or is a URI Template that `topic`
    /// matches.
    pub fn matches(&self, topic: &str) -> bool {
        if &*self.source == "*" || *self.source == *topic {
            return true;
        }
        match &self.template {
            Some(template) if self.literal().is_none() => {
                self.memo.remember(topic, |_| template.is_match(topic))
            }
            _ => false,
        }
    }

    /// The only topic this selector matches, if it matches one only: it is
    /// not `*`, and not a template with an expression to match against. The
    /// registry indexes such selectors like exact topics.
    pub(crate) fn literal(&self) -> Option<&Arc<str>> {
        let plain = self.template.as_ref().is_none_or(UriTemplate::is_plain);
        (plain && &*self.source != "*").then_some(&self.source)
    }
}

/// A compiled matcher's entry in the shared `(id, topic) → matched` cache.
struct Memo {
    id: u64,
    owner: Arc<Shared>,
}

impl Memo {
    fn new(owner: &Arc<Shared>) -> Self {
        Self {
            id: owner.next_id.fetch_add(1, Ordering::Relaxed),
            owner: Arc::clone(owner),
        }
    }

    /// The cached result for `topic`, or `compute(hub URL)`, then cached.
    fn remember(&self, topic: &str, compute: impl FnOnce(&Url) -> bool) -> bool {
        let key = CacheKeyRef(self.id, topic);
        if let Some(hit) = self.owner.cache.get(&key) {
            return hit;
        }
        let matched = compute(&self.owner.base);
        self.owner.cache.insert((self.id, topic.into()), matched);
        matched
    }
}

/// Limits applied when parsing matchers.
#[derive(Debug, Clone, Copy)]
pub struct MatcherLimits {
    /// Longest accepted matcher value, in bytes.
    pub max_length: usize,
    /// The most bytes the compiled expressions of URL patterns may take in
    /// the process ([`Matchers::pattern_bytes`]) before a pattern that is not
    /// compiled yet is refused ([`HubError::Overloaded`]); patterns already
    /// held stay usable by every subscription.
    pub max_pattern_memory: usize,
}

/// The default of [`MatcherLimits::max_pattern_memory`]: about ten thousand
/// patterns that differ in their path, a few thousand that differ in every
/// part.
pub const DEFAULT_MAX_PATTERN_MEMORY: usize = 256 << 20;

impl Default for MatcherLimits {
    fn default() -> Self {
        Self {
            max_length: 2048,
            max_pattern_memory: DEFAULT_MAX_PATTERN_MEMORY,
        }
    }
}

/// The most bytes of compiled URL patterns ([`Matcher::compiled_bytes`]) one
/// subscription may hold: a hundred ordinary patterns count about 9.3 MiB
/// (about 2 MiB in fact, where they differ in their path alone and share
/// the rest), and one pattern at most 568 KiB.
/// It bounds what one request can make the hub hold, which without it
/// reached over a hundred megabytes; [`MatcherLimits::max_pattern_memory`]
/// bounds what all of them hold together.
pub const MAX_SUBSCRIPTION_PATTERN_BYTES: usize = 10 << 20;

/// Parses and interns matchers for one hub URL.
#[derive(Clone)]
pub struct Matchers {
    shared: Arc<Shared>,
}

struct Shared {
    base: Url,
    limits: MatcherLimits,
    next_id: AtomicU64,
    patterns: Interner<Pattern>,
    selectors: Interner<Selector>,
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
                patterns: Interner::default(),
                selectors: Interner::default(),
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
            MatcherType::Selector => Ok(Matcher::Selector(self.selector(value))),
        }
    }

    fn pattern(&self, param: &str, value: &str) -> Result<Arc<Pattern>, HubError> {
        self.shared
            .patterns
            .get_or_build(value, || self.compile_pattern(param, value))
    }

    /// The bytes the compiled expressions of URL patterns take in this
    /// process, each counted once however many patterns and hubs share it.
    pub fn pattern_bytes(&self) -> usize {
        pattern_regex::live_bytes()
    }

    fn compile_pattern(&self, param: &str, value: &str) -> Result<Pattern, HubError> {
        let held = pattern_regex::live_bytes();
        if held > self.shared.limits.max_pattern_memory {
            return Err(HubError::Overloaded(format!(
                "the hub holds {} MiB of compiled URL patterns, its limit: `{param}` `{value}` \
                 is not compiled until subscriptions holding others end; subscribe with exact \
                 topics, or a URL pattern already in use, or try again later",
                held >> 20
            )));
        }
        let invalid = |reason: String| HubError::InvalidMatcher {
            param: param.to_owned(),
            value: value.to_owned(),
            matcher_type: "urlpattern",
            reason,
        };
        // The URL pattern crate says only "regexp error" of a refused group.
        let reason = |error: urlpattern::Error| match error {
            urlpattern::Error::RegExp(()) => {
                pattern_regex::take_last_refusal().unwrap_or_else(|| error.to_string())
            }
            other => other.to_string(),
        };
        let (compiled, memory) = pattern_regex::measured(|| {
            let init = UrlPatternInit::parse_constructor_string::<PatternRegex>(
                value,
                Some(self.shared.base.clone()),
            )?;
            let options = UrlPatternOptions {
                ignore_case: false,
                ..Default::default()
            };
            UrlPattern::parse(init, options)
        });
        let compiled = compiled.map_err(|e| invalid(reason(e)))?;
        Ok(Pattern {
            source: value.into(),
            path_prefix: literal_path_prefix(compiled.pathname()).map(Into::into),
            compiled,
            memory,
            memo: Memo::new(&self.shared),
        })
    }

    fn selector(&self, value: &str) -> Arc<Selector> {
        let built = self.shared.selectors.get_or_build(value, || {
            let template = UriTemplate::parse(value)
                .inspect_err(|error| {
                    tracing::debug!(%error, "topic selector compared as a plain string");
                })
                .ok();
            Ok::<_, Infallible>(Selector {
                source: value.into(),
                template,
                memo: Memo::new(&self.shared),
            })
        });
        let Ok(selector) = built;
        selector
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
    fn patterns_share_the_expressions_of_their_common_parts() {
        let m = Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits::default(),
        );
        let before = m.pattern_bytes();
        let first = m
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://shared.example/a/:id",
            )
            .unwrap();
        let one = m.pattern_bytes() - before;
        // Eight parts, the four left out (`*`) sharing one expression.
        assert!(one >= 4 * pattern_regex::REGEX_OVERHEAD, "{one}");
        assert!(first.compiled_bytes() >= one, "counted whole");
        let second = m
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://shared.example/b/:id",
            )
            .unwrap();
        let two = m.pattern_bytes() - before - one;
        // Only the path is new.
        assert!(two < one / 3, "{two} of {one}");
        assert_eq!(
            second.compiled_bytes(),
            first.compiled_bytes(),
            "counted whole"
        );
        drop((first, second));
        assert_eq!(m.pattern_bytes(), before, "given back");
    }

    #[test]
    fn new_patterns_are_refused_past_the_memory_limit_and_held_ones_still_serve() {
        let m = Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits {
                max_pattern_memory: 0,
                ..MatcherLimits::default()
            },
        );
        let held = m
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://limit.example/a/:id",
            )
            .unwrap();
        let error = m
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://limit.example/b/:id",
            )
            .unwrap_err();
        assert!(matches!(error, HubError::Overloaded(_)), "{error}");
        assert_eq!(error.kind(), crate::ErrorKind::Overloaded);
        assert!(
            error.to_string().contains("https://limit.example/b/:id"),
            "{error}"
        );
        let again = m
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://limit.example/a/:id",
            )
            .unwrap();
        assert!(
            again.matches("https://limit.example/a/1") && held.matches("https://limit.example/a/2")
        );
        // Exact topics need no compiled expression.
        assert!(
            m.parse("match", MatcherType::Exact, "https://limit.example/b/1")
                .is_ok()
        );
    }

    #[test]
    fn literal_path_prefixes_stop_at_anything_parsing_could_change() {
        for (pathname, prefix) in [
            ("/users/42/*", Some("/users/42/")),
            ("/users/:id", Some("/users/")),
            ("/books/:id(\\d+)", Some("/books/")),
            ("/a/b", Some("/a/")),
            ("/v1.2/x/*", Some("/v1.2/x/")),
            ("/a/../b/*", Some("/a/")),
            ("/.well-known/mercure/*", Some("/")),
            ("/caf%C3%A9/*", Some("/")),
            ("/a\\:b/*", Some("/")),
            ("/users{/}?", Some("/")),
            ("*", None),
            ("foo:*", None),
        ] {
            assert_eq!(literal_path_prefix(pathname), prefix, "{pathname}");
        }
    }

    #[test]
    fn the_path_index_finds_every_pattern_a_topic_matches() {
        let m = Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits::default(),
        );
        let patterns = [
            "https://example.com/users/42/*",
            "https://example.com/users/:id",
            "https://example.com/users/:id/*",
            "https://example.com/users/42",
            "https://example.com/users/42/notes/:n(\\d+)",
            "https://example.com/*",
            "https://*.example.com/users/42/*",
            "http{s}?://example.com/users/42/*",
            "/users/42/*",
            "/books/:id",
            "https://example.com/a/../users/42/*",
            "https://example.com/users/4{2}?/*",
            "https://example.com/.well-known/x/*",
            "https://example.com/caf%C3%A9/*",
            "https://example.com/café/*",
            "https://example.com/users/42/*?x=1",
            "https://example.com/users/42/*#frag",
            "urn\\:x\\:*",
            "https://example.com/Users/42/*",
            "https://example.com/v1.2/*",
        ];
        let topics = [
            "https://example.com/users/42/notes/7",
            "https://example.com/users/42",
            "https://example.com/users/42/",
            "https://example.com/users/4/x",
            "https://example.com/users/",
            "https://api.example.com/users/42/x",
            "http://example.com/users/42/x",
            "/users/42/x",
            "https://hub.example.com/users/42/x",
            "https://hub.example.com/books/1",
            "https://example.com/a/../users/42/x",
            "https://example.com/users/42/x?x=1",
            "https://example.com/users/42/x#frag",
            "https://example.com/.well-known/x/y",
            "https://example.com/caf%C3%A9/1",
            "https://example.com/café/1",
            "urn:x:y",
            "https://EXAMPLE.com/Users/42/x",
            "https://example.com/v1.2/x",
            "https://example.com/users/42/x%2Fy",
            "not a url",
        ];
        let matchers: Vec<Matcher> = patterns
            .iter()
            .map(|p| {
                m.parse("match_urlpattern", MatcherType::UrlPattern, p)
                    .unwrap()
            })
            .collect();
        let mut index = PathIndex::default();
        for (address, matcher) in matchers.iter().enumerate() {
            index.insert(address, matcher);
        }
        let mut matched = 0;
        for topic in topics {
            let mut found = Vec::new();
            index.candidates(&[topic], &mut found);
            for (address, matcher) in matchers.iter().enumerate() {
                if matcher.matches(topic) {
                    matched += 1;
                    assert!(
                        found.contains(&address),
                        "{} for {topic}",
                        patterns[address]
                    );
                }
            }
        }
        assert!(matched > 20, "{matched}");
        // And not every pattern is a candidate for every topic.
        let mut found = Vec::new();
        index.candidates(&["https://example.com/books/1"], &mut found);
        assert!(found.len() < patterns.len() / 2, "{found:?}");
        // Several topics: each candidate once.
        let mut found = Vec::new();
        index.candidates(&topics, &mut found);
        let mut unique = found.clone();
        unique.dedup();
        assert_eq!(found, unique);
        for (address, matcher) in matchers.iter().enumerate() {
            index.remove(address, matcher);
        }
        let mut found = Vec::new();
        index.candidates(&topics, &mut found);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn overlong_matcher_is_refused() {
        let m = Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits {
                max_length: 10,
                ..MatcherLimits::default()
            },
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

    fn selector(m: &Matchers, value: &str) -> Matcher {
        m.parse("topic", MatcherType::Selector, value).unwrap()
    }

    #[test]
    fn selector_rules() {
        let m = matchers();
        assert!(matches!(selector(&m, "*"), Matcher::Wildcard), "rule 1");
        let template = selector(&m, "https://example.com/books/{id}");
        assert_eq!(template.matcher_type(), MatcherType::Selector);
        assert_eq!(template.source(), "https://example.com/books/{id}");
        assert!(template.matches("https://example.com/books/1"), "rule 3");
        assert!(
            template.matches("https://example.com/books/{id}"),
            "rule 2: a template matches itself"
        );
        assert!(!template.matches("https://example.com/books/1/reviews"));
        assert!(!template.matches("https://example.com/books/{other}"));
        // Not a template: compared as a string only, and no error.
        for invalid in ["https://example.com/{", "https://example.com/{!x}", "{a b}"] {
            let Matcher::Selector(s) = selector(&m, invalid) else {
                panic!()
            };
            assert!(s.template().is_none(), "{invalid}");
            assert!(s.matches(invalid));
            assert!(!s.matches("https://example.com/"));
            assert_eq!(s.literal().map(|l| &**l), Some(invalid));
        }
        let plain = selector(&m, "https://example.com/books/1");
        assert!(plain.matches("https://example.com/books/1"));
        assert!(!plain.matches("https://example.com/books/2"));
        // Relative selectors are not resolved against the hub URL.
        assert!(!selector(&m, "/books/{id}").matches("https://hub.example.com/books/1"));
    }

    #[test]
    fn selectors_are_compiled_once_and_share_the_result_cache() {
        let m = matchers();
        let (Matcher::Selector(a), Matcher::Selector(b)) = (
            selector(&m, "https://example.com/books/{id}"),
            selector(&m, "https://example.com/books/{id}"),
        ) else {
            panic!()
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert!(a.matches("https://example.com/books/7"));
        assert_eq!(
            m.shared
                .cache
                .get(&CacheKeyRef(a.memo.id, "https://example.com/books/7")),
            Some(true)
        );
        // The same source as a URL pattern is a different, separately interned matcher.
        let pattern = m
            .parse(
                "match_urlpattern",
                MatcherType::UrlPattern,
                "https://example.com/books/{id}",
            )
            .unwrap();
        assert!(matches!(pattern, Matcher::UrlPattern(_)));
        // Only while in use: a dropped selector is compiled afresh.
        let id = a.memo.id;
        drop((a, b));
        let Matcher::Selector(c) = selector(&m, "https://example.com/books/{id}") else {
            panic!()
        };
        assert_ne!(c.memo.id, id);
    }

    #[test]
    fn the_selector_type_is_not_a_draft_08_matcher_type() {
        assert!(!MatcherType::ALL.contains(&MatcherType::Selector));
        assert_eq!(MatcherType::Selector.name(), "topic");
        assert_eq!(MatcherType::from_name("topic"), None);
        assert_eq!(MatcherType::from_param("topic").unwrap(), None);
        assert!(MatcherType::from_param("match_topic").is_err());
    }

    #[test]
    fn selectors_obey_the_matcher_limits() {
        let m = Matchers::new(
            Url::parse("https://hub.example.com/.well-known/mercure").unwrap(),
            MatcherLimits {
                max_length: 10,
                ..MatcherLimits::default()
            },
        );
        assert!(matches!(
            m.parse("topic", MatcherType::Selector, "https://example.com/{id}"),
            Err(HubError::LimitExceeded(_))
        ));
        assert!(matches!(
            m.parse("topic", MatcherType::Selector, "a\u{7}b"),
            Err(HubError::ForbiddenCharacter { .. })
        ));
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
