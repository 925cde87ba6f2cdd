//! The regular expressions of URL patterns, bounded in size.
//!
//! A URL pattern's groups (`:id(\d+)`) are regular expressions that a
//! subscriber writes, and the cost of compiling one grows with its compiled
//! size: `\w{1,200}` is 200 copies of the whole Unicode word class, about
//! 60 ms of CPU (and far more inside a URL pattern's several components).
//! Compiling with a small size limit refuses such groups in about a
//! millisecond, so that one request with many of them cannot occupy the hub.

use std::cell::RefCell;

use urlpattern::RegexSyntax;

/// The largest compiled program of one regular expression of a URL pattern.
/// Ordinary groups (`\d+`, `[a-z0-9-]+`, `\w+`) take a few KiB.
pub(crate) const SIZE_LIMIT: usize = 256 * 1024;

thread_local! {
    /// Why the last regular expression compiled on this thread was refused:
    /// the URL pattern crate reports only "regexp error".
    static LAST_REFUSAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A `regex::Regex` compiled within [`SIZE_LIMIT`].
#[derive(Debug, Clone)]
pub(crate) struct PatternRegex(regex::Regex);

impl urlpattern::regexp::RegExp for PatternRegex {
    fn syntax() -> RegexSyntax {
        RegexSyntax::Rust
    }

    fn parse(pattern: &str, _flags: &str, _force_eval: bool) -> Result<Self, ()> {
        regex::RegexBuilder::new(pattern)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(SIZE_LIMIT)
            .build()
            .map(PatternRegex)
            .map_err(|error| {
                let reason = match error {
                    regex::Error::CompiledTooBig(_) => format!(
                        "a group compiles to more than {} KiB (Unicode classes such as \\w \
                         are large: repeat them less, or use an ASCII class such as [A-Za-z0-9_])",
                        SIZE_LIMIT / 1024
                    ),
                    other => format!("invalid regular expression: {}", reason_line(&other)),
                };
                LAST_REFUSAL.with(|last| *last.borrow_mut() = Some(reason));
            })
    }

    fn matches<'a>(&self, text: &'a str) -> Option<Vec<Option<&'a str>>> {
        let captures = self.0.captures(text)?;
        Some(
            captures
                .iter()
                .skip(1)
                .map(|group| group.map(|m| m.as_str()))
                .collect(),
        )
    }

    fn pattern_string(&self) -> &str {
        self.0.as_str()
    }
}

/// Why the last regular expression compiled on this thread was refused, once.
pub(crate) fn take_last_refusal() -> Option<String> {
    LAST_REFUSAL.with(|last| last.borrow_mut().take())
}

/// The regex crate's errors span several lines (the pattern, a caret, then
/// `error: <reason>`): the reason alone.
fn reason_line(error: &regex::Error) -> String {
    let text = error.to_string();
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
        for ok in [r"^(\d+)$", r"^([a-z0-9-]+)$", r"^(\w+)$", r"^([^/]+?)$"] {
            assert!(PatternRegex::parse(ok, "u", false).is_ok(), "{ok}");
        }
        assert!(PatternRegex::parse(r"^(\w{1,200})$", "u", false).is_err());
        let reason = take_last_refusal().expect("a reason");
        assert!(
            reason.starts_with("a group compiles to more than 256 KiB"),
            "{reason}"
        );
        assert!(PatternRegex::parse(r"^(\p{Nope})$", "u", false).is_err());
        let reason = take_last_refusal().expect("a reason");
        assert!(
            reason.starts_with("invalid regular expression: "),
            "{reason}"
        );
        assert_eq!(take_last_refusal(), None);
    }
}
