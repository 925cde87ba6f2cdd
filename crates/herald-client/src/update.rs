//! [`Update`]: what a publisher sends, and its form encoding.

/// An update to publish to a Mercure hub.
///
/// The first topic is the canonical one; the others are alternates. Fields
/// left as `None` are not sent, so the hub applies its defaults (it assigns
/// the id, the event type is `message`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// The topics: the canonical IRI first, then alternates.
    pub topics: Vec<String>,
    /// The content of the event (may be empty).
    pub data: String,
    /// The event id; the hub generates one when absent.
    pub id: Option<String>,
    /// The SSE event type.
    pub event_type: Option<String>,
    /// The reconnection time, in milliseconds, that subscribers should use.
    pub retry: Option<u64>,
    /// Whether only subscribers authorized for one of the topics receive it.
    pub private: bool,
}

impl Update {
    /// An update for one topic, with the given data.
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

    /// Sets the event id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the event type.
    pub fn with_event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Sets the retry, in milliseconds.
    pub fn with_retry(mut self, millis: u64) -> Self {
        self.retry = Some(millis);
        self
    }

    /// Marks the update private.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// The `application/x-www-form-urlencoded` body of the publish request:
    /// one `topic` per topic, then `data`, `id`, `type`, `retry` and `private=on`,
    /// each only when set (`data` always).
    pub fn to_form(&self) -> String {
        let retry = self.retry.map(|millis| millis.to_string());
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(self.topics.len() + 5);
        pairs.extend(self.topics.iter().map(|topic| ("topic", topic.as_str())));
        pairs.push(("data", &self.data));
        if let Some(id) = &self.id {
            pairs.push(("id", id));
        }
        if let Some(event_type) = &self.event_type {
            pairs.push(("type", event_type));
        }
        if let Some(retry) = &retry {
            pairs.push(("retry", retry));
        }
        if self.private {
            pairs.push(("private", "on"));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Update;

    #[test]
    fn the_form_repeats_topics_and_sends_only_the_fields_set() {
        let update = Update::new("https://example.com/books/1", "a b&c=d\né")
            .with_topic("/books/{id}")
            .with_id("urn:uuid:1")
            .with_event_type("created")
            .with_retry(1500)
            .private();
        assert_eq!(
            update.to_form(),
            "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&topic=%2Fbooks%2F%7Bid%7D\
             &data=a+b%26c%3Dd%0A%C3%A9&id=urn%3Auuid%3A1&type=created&retry=1500&private=on"
        );
        assert_eq!(Update::new("t", "").to_form(), "topic=t&data=");
    }
}
