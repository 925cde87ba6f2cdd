//! The claims of a Mercure access token and the strict parser of Mercure authorization details.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// The `type` of a Mercure authorization detail, compared byte by byte.
pub const MERCURE_DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// The matcher value reserved as the wildcard: it matches every topic whatever the matcher type.
pub const WILDCARD: &str = "*";

/// The `typ` header of an RFC 9068 access token, as this crate writes it.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The claims of a Mercure access token, as minted by [`mint`](crate::mint).
///
/// Verification does not deserialize into this type: it reads the payload field by field so
/// that every defect has its own [`Error`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer identifier.
    pub iss: String,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The audience: the resource identifier(s) of the hub(s) the token is meant for.
    pub aud: Audience,
    /// Expiration time, seconds since the Unix epoch.
    pub exp: u64,
    /// Not-before time, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued-at time, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The token's unique identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The OAuth client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// RFC 9396 authorization details; Mercure's are [`AuthorizationDetail`]s, other types are
    /// kept as raw JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_details: Vec<Value>,
}

/// The `aud` claim: one string or an array of strings (RFC 7519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `resource` equals the audience or is a member of the array.
    pub fn contains(&self, resource: &str) -> bool {
        match self {
            Audience::One(aud) => aud == resource,
            Audience::Many(auds) => auds.iter().any(|aud| aud == resource),
        }
    }

    /// The audience values, in order.
    pub fn values(&self) -> Vec<String> {
        match self {
            Audience::One(aud) => vec![aud.clone()],
            Audience::Many(auds) => auds.clone(),
        }
    }
}

/// An action a Mercure authorization detail grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Send updates for the matching topics.
    Publish,
    /// Receive private updates for the matching topics.
    Subscribe,
}

impl Action {
    /// The action's name in `actions`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }

    /// The action named `name` (case-sensitive), or `None` for an action this crate does not
    /// recognize.
    pub fn from_name(name: &str) -> Option<Action> {
        match name {
            "publish" => Some(Action::Publish),
            "subscribe" => Some(Action::Subscribe),
            _ => None,
        }
    }
}

/// A matcher type of the spec's "Matcher Types".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchType {
    /// Byte-for-byte comparison (the default when `match_type` is absent).
    #[default]
    Exact,
    /// A URL Pattern (WHATWG URL Pattern Living Standard).
    #[serde(rename = "urlpattern")]
    UrlPattern,
}

impl MatchType {
    /// The matcher type's name, as written in `match_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::UrlPattern => "urlpattern",
        }
    }

    /// The matcher type named `name` (case-sensitive), or `None` if unsupported.
    pub fn from_name(name: &str) -> Option<MatchType> {
        match name {
            "exact" => Some(MatchType::Exact),
            "urlpattern" => Some(MatchType::UrlPattern),
            _ => None,
        }
    }
}

/// One entry of a Mercure authorization detail's `topics`: `{"match": ..., "match_type"?: ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopicMatcher {
    /// The matcher expression.
    #[serde(rename = "match")]
    pub pattern: String,
    /// The matcher type; `exact` when absent.
    #[serde(default)]
    pub match_type: MatchType,
}

impl TopicMatcher {
    /// An `exact` matcher.
    pub fn exact(pattern: impl Into<String>) -> Self {
        TopicMatcher {
            pattern: pattern.into(),
            match_type: MatchType::Exact,
        }
    }

    /// A `urlpattern` matcher.
    pub fn urlpattern(pattern: impl Into<String>) -> Self {
        TopicMatcher {
            pattern: pattern.into(),
            match_type: MatchType::UrlPattern,
        }
    }

    /// Whether this is the reserved wildcard `*` (whatever its matcher type).
    pub fn is_wildcard(&self) -> bool {
        self.pattern == WILDCARD
    }

    /// Whether the matcher matches `topic`.
    ///
    /// The wildcard matches everything and `exact` compares bytes; URL patterns are evaluated
    /// by `urlpattern(pattern, topic)`, supplied by the hub (which owns URL Pattern evaluation,
    /// its base URL and its cost limits).
    pub fn matches(&self, topic: &str, urlpattern: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        if self.is_wildcard() {
            return true;
        }
        match self.match_type {
            MatchType::Exact => self.pattern == topic,
            MatchType::UrlPattern => urlpattern(&self.pattern, topic),
        }
    }
}

/// A Mercure authorization detail (type [`MERCURE_DETAIL_TYPE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationDetail {
    /// Always [`MERCURE_DETAIL_TYPE`].
    #[serde(rename = "type")]
    pub detail_type: String,
    /// The recognized actions granted on `topics`. Action names this crate does not recognize
    /// are dropped while parsing: the spec says they grant nothing.
    pub actions: Vec<Action>,
    /// The topics the actions apply to.
    pub topics: Vec<TopicMatcher>,
    /// User data attached to subscriptions (meaningful with `subscribe`); a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

impl AuthorizationDetail {
    /// A Mercure authorization detail granting `actions` on `topics`, without payload.
    pub fn new(actions: Vec<Action>, topics: Vec<TopicMatcher>) -> Self {
        AuthorizationDetail {
            detail_type: MERCURE_DETAIL_TYPE.to_owned(),
            actions,
            topics,
            payload: None,
        }
    }

    /// Attaches a payload (it should be a JSON object).
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Whether the detail grants `action`.
    pub fn grants(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }

    /// Parses entry `index` of `authorization_details` strictly.
    ///
    /// Returns `Ok(None)` for an entry of another type (ignored), and an
    /// [`Error::InvalidAuthorizationDetail`] for any defect of a Mercure entry (or an entry
    /// without a string `type`, which RFC 9396 requires).
    pub fn parse(index: usize, entry: &Value) -> Result<Option<AuthorizationDetail>, Error> {
        let invalid = |field: &str, reason: &str| Error::InvalidAuthorizationDetail {
            index,
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        let Value::Object(object) = entry else {
            return Err(Error::InvalidAuthorizationDetail {
                index,
                field: "(entry)".to_owned(),
                reason: format!("expected an object, found {}", json_kind(entry)),
            });
        };
        let detail_type = match object.get("type") {
            Some(Value::String(t)) => t,
            Some(other) => {
                return Err(invalid(
                    "type",
                    &format!("expected a string, found {}", json_kind(other)),
                ));
            }
            None => return Err(invalid("type", "missing")),
        };
        if detail_type != MERCURE_DETAIL_TYPE {
            return Ok(None);
        }

        let actions = match object.get("actions") {
            Some(Value::Array(actions)) if actions.is_empty() => {
                return Err(invalid("actions", "must not be empty"));
            }
            Some(Value::Array(actions)) => actions,
            Some(other) => {
                return Err(invalid(
                    "actions",
                    &format!("expected an array, found {}", json_kind(other)),
                ));
            }
            None => return Err(invalid("actions", "missing")),
        };
        let mut recognized = Vec::new();
        for (i, action) in actions.iter().enumerate() {
            let Value::String(name) = action else {
                return Err(invalid(
                    &format!("actions[{i}]"),
                    &format!("expected a string, found {}", json_kind(action)),
                ));
            };
            if let Some(action) = Action::from_name(name)
                && !recognized.contains(&action)
            {
                recognized.push(action);
            }
        }

        let topics = match object.get("topics") {
            Some(Value::Array(topics)) if topics.is_empty() => {
                return Err(invalid("topics", "must not be empty"));
            }
            Some(Value::Array(topics)) => topics,
            Some(other) => {
                return Err(invalid(
                    "topics",
                    &format!("expected an array, found {}", json_kind(other)),
                ));
            }
            None => return Err(invalid("topics", "missing")),
        };
        let mut matchers = Vec::with_capacity(topics.len());
        for (i, topic) in topics.iter().enumerate() {
            let Value::Object(topic) = topic else {
                return Err(invalid(
                    &format!("topics[{i}]"),
                    &format!(
                        "expected a topic matcher object, found {}",
                        json_kind(topic)
                    ),
                ));
            };
            let pattern = match topic.get("match") {
                Some(Value::String(pattern)) => pattern.clone(),
                Some(other) => {
                    return Err(invalid(
                        &format!("topics[{i}].match"),
                        &format!("expected a string, found {}", json_kind(other)),
                    ));
                }
                None => return Err(invalid(&format!("topics[{i}].match"), "missing")),
            };
            let match_type = match topic.get("match_type") {
                None => MatchType::Exact,
                Some(Value::String(name)) => MatchType::from_name(name).ok_or_else(|| {
                    invalid(
                        &format!("topics[{i}].match_type"),
                        &format!("unsupported matcher type {name:?} (supported: \"exact\", \"urlpattern\")"),
                    )
                })?,
                Some(other) => {
                    return Err(invalid(
                        &format!("topics[{i}].match_type"),
                        &format!("expected a string, found {}", json_kind(other)),
                    ));
                }
            };
            matchers.push(TopicMatcher {
                pattern,
                match_type,
            });
        }

        let payload = match object.get("payload") {
            None => None,
            Some(payload @ Value::Object(_)) => Some(payload.clone()),
            Some(other) => {
                return Err(invalid(
                    "payload",
                    &format!("expected an object, found {}", json_kind(other)),
                ));
            }
        };

        Ok(Some(AuthorizationDetail {
            detail_type: detail_type.clone(),
            actions: recognized,
            topics: matchers,
            payload,
        }))
    }
}

/// The JSON kind of `value`, for error messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(result: Result<Option<AuthorizationDetail>, Error>) -> String {
        match result {
            Err(Error::InvalidAuthorizationDetail { field, .. }) => field,
            other => panic!("expected InvalidAuthorizationDetail, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_spec_example() {
        let entry = json!({
            "type": MERCURE_DETAIL_TYPE,
            "actions": ["subscribe"],
            "topics": [{"match": "https://example.com/books/:id", "match_type": "urlpattern"}],
            "payload": {"custom2": "x"}
        });
        let detail = AuthorizationDetail::parse(0, &entry).unwrap().unwrap();
        assert_eq!(detail.actions, vec![Action::Subscribe]);
        assert_eq!(
            detail.topics,
            vec![TopicMatcher::urlpattern("https://example.com/books/:id")]
        );
        assert_eq!(detail.payload, Some(json!({"custom2": "x"})));
    }

    #[test]
    fn match_type_defaults_to_exact() {
        let entry = json!({"type": MERCURE_DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "a"}]});
        let detail = AuthorizationDetail::parse(0, &entry).unwrap().unwrap();
        assert_eq!(detail.topics[0].match_type, MatchType::Exact);
    }

    #[test]
    fn other_types_are_ignored_whatever_their_shape() {
        let entry = json!({"type": "https://example.com/other", "actions": 42});
        assert!(AuthorizationDetail::parse(0, &entry).unwrap().is_none());
    }

    #[test]
    fn the_type_is_compared_byte_by_byte() {
        let entry = json!({"type": "https://mercure.rocks/authorization-detail/", "actions": 1});
        assert!(AuthorizationDetail::parse(0, &entry).unwrap().is_none());
    }

    #[test]
    fn unknown_actions_grant_nothing_but_are_accepted() {
        let entry = json!({"type": MERCURE_DETAIL_TYPE, "actions": ["delete", "publish"], "topics": [{"match": "a"}]});
        let detail = AuthorizationDetail::parse(0, &entry).unwrap().unwrap();
        assert_eq!(detail.actions, vec![Action::Publish]);
        let only_unknown = json!({"type": MERCURE_DETAIL_TYPE, "actions": ["Publish"], "topics": [{"match": "a"}]});
        let detail = AuthorizationDetail::parse(0, &only_unknown)
            .unwrap()
            .unwrap();
        assert!(detail.actions.is_empty());
    }

    #[test]
    fn each_defect_names_its_field() {
        let t = MERCURE_DETAIL_TYPE;
        let cases = [
            (json!("not an object"), "(entry)"),
            (
                json!({"actions": ["publish"], "topics": [{"match": "a"}]}),
                "type",
            ),
            (json!({"type": 1}), "type"),
            (json!({"type": t, "topics": [{"match": "a"}]}), "actions"),
            (
                json!({"type": t, "actions": [], "topics": [{"match": "a"}]}),
                "actions",
            ),
            (
                json!({"type": t, "actions": "publish", "topics": [{"match": "a"}]}),
                "actions",
            ),
            (
                json!({"type": t, "actions": ["publish", 3], "topics": [{"match": "a"}]}),
                "actions[1]",
            ),
            (json!({"type": t, "actions": ["publish"]}), "topics"),
            (
                json!({"type": t, "actions": ["publish"], "topics": []}),
                "topics",
            ),
            (
                json!({"type": t, "actions": ["publish"], "topics": "a"}),
                "topics",
            ),
            (
                json!({"type": t, "actions": ["publish"], "topics": ["a"]}),
                "topics[0]",
            ),
            (
                json!({"type": t, "actions": ["publish"], "topics": [{"match": "a"}, {}]}),
                "topics[1].match",
            ),
            (
                json!({"type": t, "actions": ["publish"], "topics": [{"match": 1}]}),
                "topics[0].match",
            ),
            (
                json!({"type": t, "actions": ["publish"], "topics": [{"match": "a", "match_type": "regex"}]}),
                "topics[0].match_type",
            ),
            (
                json!({"type": t, "actions": ["publish"], "topics": [{"match": "a", "match_type": "URLPattern"}]}),
                "topics[0].match_type",
            ),
            (
                json!({"type": t, "actions": ["publish"], "topics": [{"match": "a", "match_type": null}]}),
                "topics[0].match_type",
            ),
            (
                json!({"type": t, "actions": ["subscribe"], "topics": [{"match": "a"}], "payload": "x"}),
                "payload",
            ),
        ];
        for (entry, field) in cases {
            assert_eq!(
                field_of(AuthorizationDetail::parse(3, &entry)),
                field,
                "entry {entry}"
            );
        }
    }

    #[test]
    fn wildcard_matches_everything_whatever_the_type() {
        let mut never = |_: &str, _: &str| false;
        assert!(TopicMatcher::exact("*").matches("https://a/b", &mut never));
        assert!(TopicMatcher::urlpattern("*").matches("anything", &mut never));
    }

    #[test]
    fn exact_is_byte_for_byte_and_urlpattern_is_delegated() {
        let mut calls = Vec::new();
        let mut eval = |p: &str, t: &str| {
            calls.push((p.to_owned(), t.to_owned()));
            t.starts_with("https://example.com/books/")
        };
        assert!(TopicMatcher::exact("https://a/B").matches("https://a/B", &mut eval));
        assert!(!TopicMatcher::exact("https://a/B").matches("https://a/b", &mut eval));
        assert!(
            TopicMatcher::urlpattern("https://example.com/books/:id")
                .matches("https://example.com/books/1", &mut eval)
        );
        assert!(
            !TopicMatcher::urlpattern("https://example.com/books/:id")
                .matches("https://example.com/users/1", &mut eval)
        );
        assert_eq!(
            calls.len(),
            2,
            "exact matchers never call the URL pattern evaluator"
        );
    }

    #[test]
    fn audience_is_a_string_or_an_array() {
        let one: Audience = serde_json::from_value(json!("https://hub")).unwrap();
        assert!(one.contains("https://hub"));
        assert!(!one.contains("https://hub/"));
        let many: Audience = serde_json::from_value(json!(["x", "https://hub"])).unwrap();
        assert!(many.contains("https://hub"));
        assert!(!many.contains("y"));
    }

    #[test]
    fn details_serialize_with_the_spec_field_names() {
        let detail = AuthorizationDetail::new(
            vec![Action::Subscribe],
            vec![TopicMatcher::urlpattern("https://example.com/books/:id")],
        )
        .with_payload(json!({"k": 1}));
        assert_eq!(
            serde_json::to_value(&detail).unwrap(),
            json!({
                "type": MERCURE_DETAIL_TYPE,
                "actions": ["subscribe"],
                "topics": [{"match": "https://example.com/books/:id", "match_type": "urlpattern"}],
                "payload": {"k": 1}
            })
        );
    }
}
