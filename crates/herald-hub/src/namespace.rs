//! The hub's reserved namespace: the path subtree of the hub URL.

use std::sync::Arc;

use url::Url;

/// The reserved path subtree of a hub, e.g. `/.well-known/mercure`.
#[derive(Clone)]
pub struct Namespace {
    hub_url: Url,
    path: String,
    /// Recent answers of [`Namespace::contains`]: a publish checks every
    /// topic, most publishes reuse a few topics, and the check parses a URL
    /// (about 5% of the server's CPU per publish before this cache).
    recent: Arc<quick_cache::sync::Cache<Box<str>, bool>>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("hub_url", &self.hub_url.as_str())
            .field("path", &self.path)
            .finish()
    }
}

/// How many topics [`Namespace::contains`] remembers.
const RECENT_TOPICS: usize = 4096;

impl Namespace {
    /// The namespace of the hub at `hub_url`.
    pub fn new(hub_url: Url) -> Self {
        let path = normalize_path(hub_url.path());
        let path = path.trim_end_matches('/').to_owned();
        Self {
            hub_url,
            path,
            recent: Arc::new(quick_cache::sync::Cache::new(RECENT_TOPICS)),
        }
    }

    /// The hub URL topics and patterns are resolved against.
    pub fn hub_url(&self) -> &Url {
        &self.hub_url
    }

    /// The reserved path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether `topic`, resolved against the hub URL, addresses the reserved
    /// path or anything below it, whatever its scheme or authority.
    ///
    /// The path has dot-segments removed and unreserved percent-escapes decoded
    /// first, so `/.well-known/%6Dercure/x` and `/a/../.well-known/mercure` are caught.
    pub fn contains(&self, topic: &str) -> bool {
        if let Some(contained) = self.recent.get(topic) {
            return contained;
        }
        let contained = self.resolve_contains(topic);
        self.recent.insert(topic.into(), contained);
        contained
    }

    fn resolve_contains(&self, topic: &str) -> bool {
        let Ok(resolved) = Url::options().base_url(Some(&self.hub_url)).parse(topic) else {
            return false; // cannot name a hub path
        };
        if resolved.cannot_be_a_base() {
            return false;
        }
        let path = normalize_path(resolved.path());
        path == self.path
            || (path.len() > self.path.len()
                && path.starts_with(&self.path)
                && path.as_bytes()[self.path.len()] == b'/')
    }
}

/// Decodes percent-escapes of unreserved characters, then removes dot-segments
/// (RFC 3986, sections 6.2.2.2 and 5.2.4).
fn normalize_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
                && (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            {
                decoded.push(char::from(b));
                i += 3;
                continue;
            }
        }
        // Safe to push byte-wise: we only ever skip whole ASCII escapes.
        let ch_len = utf8_len(bytes[i]);
        decoded.push_str(&path[i..i + ch_len]);
        i += ch_len;
    }
    remove_dot_segments(&decoded)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Namespace {
        Namespace::new(Url::parse("https://hub.example.com/.well-known/mercure").unwrap())
    }

    #[test]
    fn the_hub_path_and_below_are_reserved() {
        let ns = hub();
        for topic in [
            "/.well-known/mercure",
            "/.well-known/mercure/subscriptions/x",
            "https://hub.example.com/.well-known/mercure/subscriptions/exact/a/b",
            "https://other.example/.well-known/mercure",
        ] {
            assert!(ns.contains(topic), "{topic} should be reserved");
        }
    }

    #[test]
    fn escapes_and_dot_segments_do_not_bypass_the_check() {
        let ns = hub();
        for topic in [
            "/.well-known/%6Dercure/x",
            "/.well-known/%6dercure",
            "/.well-known/mercure/../mercure/subscriptions",
            "/a/b/../../.well-known/mercure/x",
            "/.well-known/./mercure",
            "/%2Ewell-known/mercure",
        ] {
            assert!(ns.contains(topic), "{topic} should be reserved");
        }
    }

    #[test]
    fn neighbours_and_relative_names_are_not_reserved() {
        let ns = hub();
        for topic in [
            "https://example.com/books/1",
            "/.well-known/mercurex",
            "/.well-known/MERCURE",
            "books",
            "urn:uuid:1234",
            "urn:x:y/../.well-known/mercure",
            "/.well-known/mercure%2Fx",
        ] {
            assert!(!ns.contains(topic), "{topic} should not be reserved");
        }
    }
}
