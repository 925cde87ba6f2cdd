//! Updates as publishers send them, and their validation.

use crate::text::check_characters;
use crate::{HubError, Namespace};

/// An update to publish: topics (the first is canonical), data and SSE fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The canonical topic followed by alternate topics.
    pub topics: Vec<String>,
    /// The new version of the topic; delivered as one `data:` line per line.
    pub data: String,
    /// The event id; the hub generates one when absent.
    pub id: Option<String>,
    /// The SSE event type.
    pub event_type: Option<String>,
    /// The SSE reconnection time, in milliseconds.
    pub retry: Option<u64>,
    /// Whether only subscribers allowed by their token may receive it.
    pub private: bool,
}

impl Update {
    /// An update on one topic with `data`.
    pub fn new(topic: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            topics: vec![topic.into()],
            data: data.into(),
            ..Self::default()
        }
    }

    /// Adds an alternate topic.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the SSE event type.
    pub fn with_event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Sets the SSE reconnection time.
    pub fn with_retry(mut self, millis: u64) -> Self {
        self.retry = Some(millis);
        self
    }

    /// Marks the update private.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// Checks every publication rule of the protocol and the size limits.
    pub fn validate(&self, namespace: &Namespace, limits: &UpdateLimits) -> Result<(), HubError> {
        self.validate_fields(limits)?;
        for topic in &self.topics {
            if namespace.contains(topic) {
                return Err(HubError::ReservedTopic {
                    topic: topic.clone(),
                    namespace: namespace.path().to_owned(),
                });
            }
        }
        if self.event_type.as_deref() == Some("mercure") {
            return Err(HubError::ReservedType);
        }
        Ok(())
    }

    /// The rules that also bind updates the hub generates itself.
    pub(crate) fn validate_fields(&self, limits: &UpdateLimits) -> Result<(), HubError> {
        if self.topics.is_empty() {
            return Err(HubError::NoTopic);
        }
        if self.topics.len() > limits.max_topics {
            return Err(HubError::TooLarge(format!(
                "the update has {} topics; the limit is {}",
                self.topics.len(),
                limits.max_topics
            )));
        }
        for topic in &self.topics {
            if topic.is_empty() {
                return Err(HubError::EmptyTopic);
            }
            check_length("topic", topic, limits.max_field_length)?;
            check_characters("topic", topic)?;
            if topic == "*" {
                return Err(HubError::WildcardTopic);
            }
        }
        check_length("data", &self.data, limits.max_data_length)?;
        if let Some(id) = &self.id {
            check_length("id", id, limits.max_field_length)?;
            check_characters("id", id)?;
            if id.starts_with('#') {
                return Err(HubError::InvalidId {
                    id: id.clone(),
                    reason: "ids starting with `#` are reserved for ids the hub generates",
                });
            }
            if id == "earliest" {
                return Err(HubError::InvalidId {
                    id: id.clone(),
                    reason: "`earliest` is reserved to request the whole history",
                });
            }
            if id.is_empty() {
                return Err(HubError::InvalidId {
                    id: id.clone(),
                    reason: "an empty id cannot be used to resume",
                });
            }
        }
        if let Some(event_type) = &self.event_type {
            check_length("type", event_type, limits.max_field_length)?;
            check_characters("type", event_type)?;
        }
        Ok(())
    }
}

fn check_length(field: &str, value: &str, limit: usize) -> Result<(), HubError> {
    if value.len() > limit {
        return Err(HubError::TooLarge(format!(
            "`{field}` is {} bytes long; the limit is {limit} bytes",
            value.len()
        )));
    }
    Ok(())
}

/// Parses a `retry` field: ASCII digits only.
pub fn parse_retry(value: &str) -> Result<u64, HubError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HubError::InvalidRetry(value.to_owned()));
    }
    // Only digits, so the one failure left is a number beyond u64.
    value.parse().map_err(|_| {
        HubError::TooLarge(format!(
            "`retry` is {value} ms; the largest this hub accepts is {} ms",
            u64::MAX
        ))
    })
}

/// Size limits on updates; exceeding one is a 413 at the HTTP edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateLimits {
    /// Most topics (canonical and alternate) in one update.
    pub max_topics: usize,
    /// Longest topic, id or type, in bytes.
    pub max_field_length: usize,
    /// Longest data, in bytes.
    pub max_data_length: usize,
}

impl Default for UpdateLimits {
    fn default() -> Self {
        Self {
            max_topics: 64,
            max_field_length: 2048,
            max_data_length: 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;

    fn check(update: &Update) -> Result<(), HubError> {
        let ns = Namespace::new(Url::parse("https://hub.example.com/.well-known/mercure").unwrap());
        update.validate(&ns, &UpdateLimits::default())
    }

    #[test]
    fn a_plain_update_is_valid() {
        check(
            &Update::new("https://example.com/books/1", "{}")
                .with_topic("urn:x")
                .with_id("urn:uuid:1"),
        )
        .unwrap();
    }

    #[test]
    fn every_publication_rule() {
        let base = Update::new("https://example.com/a", "x");
        let cases: Vec<(Update, &str)> = vec![
            (
                Update {
                    topics: vec![],
                    ..base.clone()
                },
                "at least one",
            ),
            (base.clone().with_topic("*"), "reserved for the wildcard"),
            (base.clone().with_topic(""), "a `topic` field is empty"),
            (base.clone().with_topic("a\nb"), "U+000A"),
            (
                Update::new("/.well-known/mercure/subscriptions/x", ""),
                "reserved namespace",
            ),
            (base.clone().with_id("#1"), "`#`"),
            (base.clone().with_id("earliest"), "earliest"),
            (base.clone().with_id("a\u{200B}"), "U+200B"),
            (
                base.clone().with_event_type("mercure"),
                "reserved for events generated",
            ),
            (base.clone().with_event_type("a\rb"), "U+000D"),
        ];
        for (update, expected) in cases {
            let error = check(&update).unwrap_err().to_string();
            assert!(
                error.contains(expected),
                "{update:?}: `{error}` should mention {expected}"
            );
        }
    }

    #[test]
    fn limits_are_too_large_errors() {
        let mut many = Update::new("t0", "");
        for i in 1..=64 {
            many = many.with_topic(format!("t{i}"));
        }
        assert!(matches!(check(&many), Err(HubError::TooLarge(_))));
        let long = Update::new("x".repeat(2049), "");
        assert!(matches!(check(&long), Err(HubError::TooLarge(_))));
    }

    #[test]
    fn retry_must_be_ascii_digits() {
        assert_eq!(parse_retry("1500").unwrap(), 1500);
        for bad in ["", "-1", "1.5", " 1", "١"] {
            assert!(parse_retry(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_retry("18446744073709551615").unwrap(), u64::MAX);
        // Digits only, but beyond what the hub can hold: a limit, said as one.
        let error = parse_retry("18446744073709551616").unwrap_err();
        assert!(matches!(error, HubError::TooLarge(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "`retry` is 18446744073709551616 ms; the largest this hub accepts is 18446744073709551615 ms"
        );
    }
}
