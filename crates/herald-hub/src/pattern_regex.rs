//! The regular expressions of URL patterns: ASCII, and bounded in size.
//!
//! A URL pattern's groups (`:id(\d+)`) are regular expressions that a
//! subscriber writes, and the cost of compiling one grows with its compiled
//! size. With Unicode classes, `\w{1,200}` is 200 copies of the whole
//! Unicode word class: about 60 ms of CPU and megabytes per URL part, which
//! let one anonymous request with many such groups occupy the hub.
//!
//! The URLs a pattern is matched against are ASCII (percent-encoded paths,
//! queries and fragments, punycode hosts), so the expressions are compiled
//! over bytes with Unicode off: `\w`, `\d` and `\s` are the ASCII classes
//! (as in JavaScript, whose `RegExp` the URL Pattern standard uses), `.` and
//! `[^/]` match one byte, and `\w{1,200}` compiles in a fraction of a
//! millisecond. Unicode classes (`\p{L}`) are refused, since no ASCII text
//! needs them. A size limit bounds what is left (`\d{1,100000}`).
//!
//! The memory a pattern's expressions take together is counted too, and
//! bounded ([`PATTERN_LIMIT`]): a URL pattern has up to eight parts, each
//! compiled on its own, and several groups near the size limit in one part
//! made a single pattern over a megabyte, a hundred of them in one
//! anonymous subscription over a hundred. [`Pattern`](crate::matcher::Pattern)
//! keeps the count, for a subscription's own budget.
//!
//! A compiled expression takes about 7 KiB beyond what the regex crate
//! reports as its own ([`REGEX_OVERHEAD`]), and a URL pattern compiles eight
//! (one per part), most of them the same from one pattern to the next (the
//! `https` of the scheme, the host, the `*` of the parts left out). Every
//! expression is compiled once per source and shared while any pattern uses
//! it: a hundred patterns that differ in their path alone take about 2.5 MiB
//! instead of 8.5. The bytes of the expressions alive are counted for the
//! whole process ([`live_bytes`]), so that a hub can bound them.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use regex_automata::meta;
use regex_automata::util::syntax;
use urlpattern::RegexSyntax;

use crate::interner::Interner;

/// The largest compiled program of one regular expression of a URL pattern.
/// Ordinary groups (`\d+`, `[a-z0-9-]+`, `\w{1,200}`, `[^/]{1,255}`) take a
/// few KiB.
pub(crate) const SIZE_LIMIT: usize = 256 * 1024;

/// The most memory the compiled expressions of one URL pattern may take
/// together, [`REGEX_OVERHEAD`] included: 512 KiB of the regex crate's own
/// count, and the overhead of the eight parts. A pattern of ordinary groups
/// takes about 10 KiB per part.
pub(crate) const PATTERN_LIMIT: usize = 512 * 1024 + 8 * REGEX_OVERHEAD;

/// What a compiled expression takes beyond [`meta::Regex::memory_usage`]
/// (its engines' structures and its cache pool), measured: 8.7 KiB of
/// resident memory for `^(.*)$`, of which 2 KiB reported; 18 for a path with
/// one group, of which 11.
pub(crate) const REGEX_OVERHEAD: usize = 7 * 1024;

/// Every live compiled expression, by source.
static SHARED: LazyLock<Interner<SharedRegex>> = LazyLock::new(Interner::default);

/// The bytes of the live expressions of [`SHARED`].
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The bytes the compiled expressions of URL patterns take in this process,
/// counted once each however many patterns share them.
pub(crate) fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// A compiled expression, shared by every pattern part with its source.
#[derive(Debug)]
struct SharedRegex {
    regex: meta::Regex,
    /// Its [`meta::Regex::memory_usage`] and [`REGEX_OVERHEAD`].
    bytes: usize,
}

impl Drop for SharedRegex {
    fn drop(&mut self) {
        LIVE_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

thread_local! {
    /// Why the last regular expression compiled on this thread was refused:
    /// the URL pattern crate reports only "regexp error".
    static LAST_REFUSAL: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The memory of the expressions compiled on this thread since
    /// [`measured`] started counting, whether new or shared.
    static COMPILED: Cell<usize> = const { Cell::new(0) };
}

/// Runs `compile` and returns its result with the memory the expressions it
/// compiled on this thread take; each is refused once they would take more
/// than [`PATTERN_LIMIT`] together.
pub(crate) fn measured<T>(compile: impl FnOnce() -> T) -> (T, usize) {
    COMPILED.with(|c| c.set(0));
    let result = compile();
    (result, COMPILED.with(Cell::take))
}

/// An ASCII regular expression over bytes, compiled within [`SIZE_LIMIT`].
#[derive(Debug, Clone)]
pub(crate) struct PatternRegex {
    regex: Arc<SharedRegex>,
    source: String,
}

/// The live expression compiled from `pattern`, or a new one from `build`.
fn shared(
    pattern: &str,
    build: impl FnOnce() -> Result<meta::Regex, ()>,
) -> Result<Arc<SharedRegex>, ()> {
    SHARED.get_or_build(pattern, || {
        let regex = build()?;
        let bytes = regex.memory_usage() + REGEX_OVERHEAD;
        // Given back by `Drop`, also for one built twice at once and dropped.
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
        Ok(SharedRegex { regex, bytes })
    })
}

impl urlpattern::regexp::RegExp for PatternRegex {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Self, ()> {
        let refuse = |reason: String| {
            LAST_REFUSAL.with(|last| *last.borrow_mut() = Some(reason));
        };
        let regex = shared(pattern, || {
            meta::Regex::builder()
                .syntax(syntax::Config::new().unicode(false).utf8(false))
                .configure(
                    meta::Config::new()
                        .nfa_size_limit(Some(SIZE_LIMIT))
                        .onepass_size_limit(Some(SIZE_LIMIT))
                        .dfa_size_limit(Some(SIZE_LIMIT))
                        .hybrid_cache_capacity(SIZE_LIMIT),
                )
                .build(pattern)
                .map_err(|error| {
                    let reason = if error.size_limit().is_some() {
                        format!(
                            "a part of the pattern compiles to more than {} KiB: repeat its groups less",
                            SIZE_LIMIT / 1024
                        )
                    } else {
                        let reason = reason_line(&error);
                        if reason.contains("Unicode") {
                            format!(
                                "invalid regular expression: {reason} (URLs are matched as \
                                 ASCII, percent-encoded: \\w, \\d and \\s are ASCII classes \
                                 and Unicode classes such as \\p{{L}} are not available)"
                            )
                        } else {
                            format!("invalid regular expression: {reason}")
                        }
                    };
                    refuse(reason);
                })
        })?;
        let total = COMPILED.with(Cell::get) + regex.bytes;
        if total > PATTERN_LIMIT {
            refuse(format!(
                "the pattern compiles to more than {} KiB: use fewer or shorter repeated groups",
                PATTERN_LIMIT / 1024
            ));
            return Err(());
        }
        COMPILED.with(|c| c.set(total));
        Ok(PatternRegex {
            regex,
            source: pattern.to_owned(),
        })
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let regex = &self.regex.regex;
        let mut captures = regex.create_captures();
        regex.captures(text.as_bytes(), &mut captures);
        if !captures.is_match() {
            return None;
        }
        // A group that would split a character (only possible in text that
        // is not ASCII, which URLs are not) is no match.
        (1..captures.group_len())
            .map(|group| match captures.get_group(group) {
                None => Some(None),
                Some(span) => text.get(span.start..span.end).map(Some),
            })
            .collect()
    }

    fn pattern_string(&self) -> &str {
        &self.source
    }
}

/// Why the last regular expression compiled on this thread was refused, once.
pub(crate) fn take_last_refusal() -> Option<String> {
    LAST_REFUSAL.with(|last| last.borrow_mut().take())
}

/// The regex crate's errors span several lines (the pattern, a caret, then
/// `error: <reason>`): the reason alone.
fn reason_line(error: &meta::BuildError) -> String {
    let text = match error.syntax_error() {
        Some(syntax) => syntax.to_string(),
        None => error.to_string(),
    };
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use urlpattern::regexp::RegExp;

    use super::{PatternRegex, take_last_refusal};

    #[test]
    fn ordinary_groups_compile_and_huge_ones_are_refused_with_a_reason() {
        for ok in [
            r"^(\d+)$",
            r"^([a-z0-9-]+)$",
            r"^(\w+)$",
            r"^([^/]+?)$",
            r"^(\w{1,200})$",
            r"^([^/]{1,255})$",
            r"^(\w{6})/(\w{3})$",
            r"^(?:café)$",
        ] {
            assert!(PatternRegex::parse(ok, "u", false).is_ok(), "{ok}");
        }
        assert!(PatternRegex::parse(r"^(\d{1,100000})$", "u", false).is_err());
        let reason = take_last_refusal().expect("a reason");
        assert!(
            reason.starts_with("a part of the pattern compiles to more than 256 KiB"),
            "{reason}"
        );
        assert!(PatternRegex::parse(r"^(\p{L}+)$", "u", false).is_err());
        let reason = take_last_refusal().expect("a reason");
        assert!(
            reason.starts_with(
                "invalid regular expression: Unicode not allowed here (URLs are matched as ASCII"
            ),
            "{reason}"
        );
        assert!(PatternRegex::parse(r"^([)$", "u", false).is_err());
        let reason = take_last_refusal().expect("a reason");
        assert!(
            reason.starts_with("invalid regular expression: "),
            "{reason}"
        );
        assert_eq!(take_last_refusal(), None);
    }

    #[test]
    fn classes_are_ascii_as_in_javascript() {
        let word = PatternRegex::parse(r"^(\w+)$", "u", false).unwrap();
        assert_eq!(word.matches("abc_1"), Some(vec![Some("abc_1")]));
        assert_eq!(word.matches("é"), None);
        let any = PatternRegex::parse(r"^(.+)$", "u", false).unwrap();
        assert_eq!(any.matches("a%C3%A9"), Some(vec![Some("a%C3%A9")]));
        let one = PatternRegex::parse(r"^(.)(.*)$", "u", false).unwrap();
        assert_eq!(one.matches("éa"), None, "a group may not split a character");
        let optional = PatternRegex::parse(r"^(a)?(b)$", "u", false).unwrap();
        assert_eq!(optional.matches("b"), Some(vec![None, Some("b")]));
    }
}
