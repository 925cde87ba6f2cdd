//! Updates are the hub's own [`herald_hub::Update`]; this module encodes one
//! as the body of a publish request.

pub use herald_hub::Update;

/// The `application/x-www-form-urlencoded` body of the publish request:
/// one `topic` per topic, then `data`, `id`, `type`, `retry` and `private=on`,
/// each only when set (`data` always).
pub fn to_form(update: &Update) -> String {
    let retry = update.retry.map(|millis| millis.to_string());
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(update.topics.len() + 5);
    pairs.extend(update.topics.iter().map(|topic| ("topic", topic.as_str())));
    pairs.push(("data", &update.data));
    if let Some(id) = &update.id {
        pairs.push(("id", id));
    }
    if let Some(event_type) = &update.event_type {
        pairs.push(("type", event_type));
    }
    if let Some(retry) = &retry {
        pairs.push(("retry", retry));
    }
    if update.private {
        pairs.push(("private", "on"));
    }
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{Update, to_form};

    #[test]
    fn the_form_repeats_topics_and_sends_only_the_fields_set() {
        let update = Update::new("https://example.com/books/1", "a b&c=d\né")
            .with_topic("/books/{id}")
            .with_id("urn:uuid:1")
            .with_event_type("created")
            .with_retry(1500)
            .private();
        assert_eq!(
            to_form(&update),
            "topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&topic=%2Fbooks%2F%7Bid%7D\
             &data=a+b%26c%3Dd%0A%C3%A9&id=urn%3Auuid%3A1&type=created&retry=1500&private=on"
        );
        assert_eq!(to_form(&Update::new("t", "")), "topic=t&data=");
    }
}
