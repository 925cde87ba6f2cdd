//! Feeds arbitrary `match_urlpattern` values, which anonymous subscribers
//! choose, to the hub's matcher compiler, then matches a topic with what
//! compiled.
//!
//! Invariants: no panic (the URL Pattern crate and herald's regex dialect
//! both see the value); a refused value is an `InvalidMatcher`,
//! `ForbiddenCharacter` or `LimitExceeded` error naming the parameter; a compiled pattern matches or
//! not without panicking, whatever the topic.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use herald_hub::{Hub, HubError, MatcherType};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    pattern: &'a str,
    topic: &'a str,
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(|| {
        Hub::builder("https://hub.example/.well-known/mercure".parse().unwrap()).build()
    })
}

fuzz_target!(|input: Input<'_>| {
    match hub().matcher("match_urlpattern", MatcherType::UrlPattern, input.pattern) {
        Ok(matcher) => {
            let _ = matcher.matches(input.topic);
        }
        Err(
            HubError::InvalidMatcher { param, .. } | HubError::ForbiddenCharacter { field: param, .. },
        ) => assert_eq!(param, "match_urlpattern"),
        Err(HubError::LimitExceeded(_)) => {}
        Err(other) => panic!("unexpected error for {:?}: {other}", input.pattern),
    }
});
