//! Active subscriptions over loopback: subscription events (connect,
//! disconnect, token expiry, slow consumer), payloads, topic encoding, the
//! subscription API and its authorization, the reconciliation guarantee, and
//! the feature turned off.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use herald_hub::{
    Dispatch, Entry, HubError, Log, LogStats, MemoryLog, Position, ReadLimit, Update,
};
use herald_server::config::IssuerConfig;
use herald_server::{Config, Herald};
use herald_sse::{MessageEvent, Parser};
use herald_token::claims::{Action, AuthorizationDetail, TopicMatcher};
use herald_token::{MintRequest, SigningKey, mint};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

const SECRET: &str = "0123456789abcdef0123456789abcdef-presence";
const ISSUER: &str = "presence-test";
const WAIT: Duration = Duration::from_secs(10);
const PREFIX: &str = "/.well-known/mercure/subscriptions";
/// A relative URL pattern selecting every subscription event.
const ALL_EVENTS: &str = "/.well-known/mercure/subscriptions/*";

struct TestHub {
    herald: Herald,
    addr: SocketAddr,
    hub_url: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(enabled: bool, tweak: impl FnOnce(&mut Config)) -> TestHub {
    start_with_log(enabled, tweak, None).await
}

/// [`start`], with this log instead of the configured one.
async fn start_with_log(
    enabled: bool,
    tweak: impl FnOnce(&mut Config),
    log: Option<Arc<dyn Log>>,
) -> TestHub {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config {
        listen: addr,
        ..Config::default()
    };
    config.log.kind = "memory".into();
    config.hand_served = true;
    config.subscriptions.enabled = enabled;
    config.subscribers.anonymous = true;
    config.auth.issuers.push(IssuerConfig {
        id: ISSUER.into(),
        hs256_secrets: vec![SECRET.into()],
        ..IssuerConfig::default()
    });
    tweak(&mut config);
    let (herald, _verifier) = match log {
        Some(log) => config.build_with_log(log).unwrap(),
        None => config.build().unwrap(),
    };
    let router = herald.router();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = herald.clone();
    tokio::spawn(async move {
        herald_server::serve(listener, &serving, router, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    TestHub {
        hub_url: herald.hub().url().to_string(),
        herald,
        addr,
        http: reqwest::Client::new(),
        stop: Some(stop),
    }
}

impl TestHub {
    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    fn token(&self, details: Vec<AuthorizationDetail>, ttl: Duration) -> String {
        let mut request = MintRequest::new(ISSUER, self.hub_url.clone()).with_ttl(ttl);
        for detail in details {
            request = request.with_detail(detail);
        }
        mint(&request, &SigningKey::hs256(SECRET.as_bytes()).unwrap()).unwrap()
    }

    /// A token that may read everything, subscription events included.
    fn reader(&self) -> String {
        self.token(vec![subscribe(vec![TopicMatcher::exact("*")])], hour())
    }

    /// Opens a subscription; events arrive on the returned stream.
    async fn subscribe(&self, params: &[(&str, &str)], token: Option<&str>) -> Sse {
        let query = serde_urlencoded::to_string(params).unwrap();
        let mut request = self.http.get(format!("{}?{query}", self.hub_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "subscribing with {params:?}");
        let (sender, events) = mpsc::unbounded_channel();
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut parser = Parser::new();
            let mut opened_tx = Some(opened_tx);
            while let Some(Ok(chunk)) = body.next().await {
                if let Some(tx) = opened_tx.take() {
                    let _ = tx.send(());
                }
                parser.feed(&chunk);
                while let Ok(Some(event)) = parser.next_event() {
                    if sender.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        tokio::time::timeout(WAIT, opened)
            .await
            .expect("the stream opens")
            .unwrap();
        Sse { events, task }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn get_json(&self, path: &str, token: &str) -> (Value, String) {
        let response = self.get(path, Some(token)).await;
        assert_eq!(response.status(), 200, "GET {path}");
        let cursor = last_event_id(&response);
        (response.json().await.unwrap(), cursor)
    }

    /// The (subscription id → document) map the API reports now, following pages.
    async fn snapshot(&self, token: &str) -> (BTreeMap<String, Value>, String) {
        let (mut doc, cursor) = self.get_json(PREFIX, token).await;
        let mut all = BTreeMap::new();
        loop {
            for s in doc["subscriptions"].as_array().unwrap() {
                all.insert(s["id"].as_str().unwrap().to_owned(), s.clone());
            }
            let Some(next) = doc["next"].as_str() else {
                break;
            };
            doc = self.get_json(next, token).await.0;
        }
        (all, cursor)
    }
}

/// `Response::json` without reqwest's `json` feature.
trait JsonBody {
    async fn json(self) -> Result<Value, serde_json::Error>;
}

impl JsonBody for reqwest::Response {
    async fn json(self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.bytes().await.expect("a body"))
    }
}

fn hour() -> Duration {
    Duration::from_secs(3600)
}

fn subscribe(topics: Vec<TopicMatcher>) -> AuthorizationDetail {
    AuthorizationDetail::new(vec![Action::Subscribe], topics)
}

fn last_event_id(response: &reqwest::Response) -> String {
    let link = response
        .headers()
        .get("link")
        .expect("a Link header")
        .to_str()
        .unwrap();
    let start = link.find("last-event-id=\"").expect("a last-event-id") + 15;
    link[start..start + link[start..].find('"').unwrap()].to_owned()
}

struct Sse {
    events: mpsc::UnboundedReceiver<MessageEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sse {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sse {
    async fn next(&mut self) -> MessageEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event within the timeout")
            .expect("the stream is open")
    }

    /// The next subscription event whose `match` is `matcher`, as JSON.
    async fn next_about(&mut self, matcher: &str) -> Value {
        loop {
            let event = self.next().await;
            assert_eq!(event.event_type, "mercure", "{event:?}");
            let doc: Value = serde_json::from_str(&event.data).unwrap();
            if doc["match"] == matcher {
                return doc;
            }
        }
    }

    /// Nothing arrives within `within`.
    async fn assert_quiet(&mut self, within: Duration) {
        if let Ok(Some(event)) = tokio::time::timeout(within, self.events.recv()).await {
            panic!("unexpected event {event:?}");
        }
    }
}

#[tokio::test]
async fn connect_and_disconnect_publish_active_then_inactive_events() {
    let hub = start(true, |_| {}).await;
    let reader = hub.reader();
    let mut watcher = hub
        .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&reader))
        .await;

    let subscriber = hub
        .subscribe(
            &[
                ("match", "https://example.com/a"),
                ("match_urlpattern", "https://example.com/b/:id"),
            ],
            None,
        )
        .await;
    let a = watcher.next_about("https://example.com/a").await;
    let b = watcher.next_about("https://example.com/b/:id").await;
    let id = a["subscriber"].as_str().unwrap().to_owned();
    assert!(id.starts_with("urn:uuid:"), "{id}");
    assert_eq!(b["subscriber"], id, "one identifier per connection");
    let expected_a = format!(
        "{PREFIX}/exact/https%3A%2F%2Fexample.com%2Fa/{}",
        id.replace(':', "%3A")
    );
    assert_eq!(
        a,
        json!({"id": expected_a, "type": "subscription", "match_type": "exact",
               "match": "https://example.com/a", "subscriber": id, "active": true})
    );
    assert_eq!(b["match_type"], "urlpattern");
    assert_eq!(b["active"], true);

    // Another connection gets another identifier.
    let other = hub
        .subscribe(&[("match", "https://example.com/a")], None)
        .await;
    let c = watcher.next_about("https://example.com/a").await;
    assert_ne!(c["subscriber"], id);

    drop(subscriber);
    let mut ended = vec![
        watcher.next_about("https://example.com/a").await,
        watcher.next_about("https://example.com/b/:id").await,
    ];
    for doc in &mut ended {
        assert_eq!(doc["active"], false);
        assert_eq!(doc["subscriber"], id);
    }
    assert_eq!(ended[0]["id"], expected_a);
    drop(other);
    let d = watcher.next_about("https://example.com/a").await;
    assert_eq!(
        (d["active"].clone(), d["subscriber"].clone()),
        (json!(false), c["subscriber"].clone())
    );
}

#[tokio::test]
async fn a_subscription_with_an_empty_matcher_has_a_url_that_answers() {
    let hub = start(true, |_| {}).await;
    let reader = hub.reader();
    let mut watcher = hub
        .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&reader))
        .await;
    let _subscriber = hub.subscribe(&[("match", "")], None).await;
    let event = watcher.next_about("").await;
    let id = event["id"].as_str().expect("an id").to_owned();
    assert!(id.starts_with(&format!("{PREFIX}/exact//")), "{id}");
    let (doc, _) = hub.get_json(&id, &reader).await;
    assert_eq!(
        (doc["match"].clone(), doc["active"].clone()),
        (json!(""), json!(true))
    );
    let (doc, _) = hub.get_json(&format!("{PREFIX}/exact/"), &reader).await;
    assert_eq!(
        doc["subscriptions"].as_array().map(Vec::len),
        Some(1),
        "{doc}"
    );
}

#[tokio::test]
async fn a_dot_segment_matcher_is_refused_only_where_it_would_name_a_subscription() {
    let hub = start(true, |_| {}).await;
    for (param, value) in [("match", "."), ("match", ".."), ("match_urlpattern", "..")] {
        let query = serde_urlencoded::to_string([(param, value)]).unwrap();
        let response = hub
            .http
            .get(format!("{}?{query}", hub.hub_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{param}={value}");
        let detail = response.text().await.unwrap();
        assert!(
            detail.contains(&format!("`{param}` value `{value}`"))
                && detail.contains("dot segment"),
            "{detail}"
        );
    }
    // `...` is no dot segment, and subscribes.
    let _fine = hub.subscribe(&[("match", "...")], None).await;

    let off = start(false, |_| {}).await;
    let _dots = off
        .subscribe(&[("match", ".."), ("match", ".")], None)
        .await;
}

#[tokio::test]
async fn event_ids_follow_the_hubs_id_scheme() {
    for (scheme, looks_right) in [
        (
            "sequence",
            (|id: &str| id.starts_with('#')) as fn(&str) -> bool,
        ),
        ("uuid-v4", |id: &str| {
            id.len() == 45 && id.starts_with("urn:uuid:") && &id[23..24] == "4"
        }),
    ] {
        let hub = start(true, |config| config.log.ids = scheme.into()).await;
        let reader = hub.reader();
        let mut watcher = hub
            .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&reader))
            .await;
        let subscriber = hub.subscribe(&[("match", "urn:a")], None).await;
        drop(subscriber);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let event = watcher.next().await;
            let doc: Value = serde_json::from_str(&event.data).unwrap();
            if doc["match"] == "urn:a" {
                seen.push(doc["active"].clone());
                let id = event.last_event_id;
                assert!(looks_right(&id), "{scheme}: {id}");
            }
        }
        assert_eq!(seen, [json!(true), json!(false)]);
    }
}

#[tokio::test]
async fn events_are_private_and_typed_mercure() {
    let hub = start(true, |_| {}).await;
    // An anonymous subscriber cannot read subscription events, even with `*`.
    let mut anonymous = hub.subscribe(&[("match", "*")], None).await;
    // A token for other topics cannot either.
    let narrow = hub.token(
        vec![subscribe(vec![TopicMatcher::exact(
            "https://example.com/x",
        )])],
        hour(),
    );
    let mut unauthorized = hub.subscribe(&[("match", "*")], Some(&narrow)).await;
    let mut reader = hub.subscribe(&[("match", "*")], Some(&hub.reader())).await;
    let _s = hub
        .subscribe(&[("match", "https://example.com/q")], None)
        .await;
    let doc = reader.next_about("https://example.com/q").await;
    assert_eq!(doc["active"], true);
    hub.herald
        .hub()
        .publish(Update::new("https://example.com/marker", "m"))
        .await
        .unwrap();
    for sse in [&mut anonymous, &mut unauthorized] {
        let first = sse.next().await;
        assert_eq!(first.data, "m", "only the public marker arrives: {first:?}");
    }
}

#[tokio::test]
async fn token_expiry_ends_the_subscription() {
    // Closed at the token's `exp`.
    let hub = start(true, |c| c.auth.leeway = Duration::from_secs(1)).await;
    let mut watcher = hub
        .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&hub.reader()))
        .await;
    let short = hub.token(
        vec![subscribe(vec![TopicMatcher::exact("*")])],
        Duration::from_secs(2),
    );
    let _expiring = hub
        .subscribe(&[("match", "https://example.com/expiring")], Some(&short))
        .await;
    let started = watcher.next_about("https://example.com/expiring").await;
    assert_eq!(started["active"], true);
    let ended = watcher.next_about("https://example.com/expiring").await;
    assert_eq!(ended["active"], false);
    assert_eq!(ended["subscriber"], started["subscriber"]);
}

#[tokio::test]
async fn a_slow_subscriber_dropped_by_the_hub_ends_its_subscriptions() {
    let hub = start(true, |c| c.subscribers.queue_capacity = 4).await;
    let mut watcher = hub
        .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&hub.reader()))
        .await;
    // A raw connection that never reads its response.
    let mut stuck = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    stuck
        .write_all(b"GET /.well-known/mercure?match=https%3A%2F%2Fexample.com%2Fflood HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = watcher.next_about("https://example.com/flood").await;
    assert_eq!(started["active"], true);
    let data = "x".repeat(256 * 1024);
    let flooding = {
        let hub = hub.herald.hub().clone();
        tokio::spawn(async move {
            for _ in 0..400 {
                if hub.stats().slow_disconnects.load(Ordering::Relaxed) > 0 {
                    break;
                }
                hub.publish(Update::new("https://example.com/flood", data.clone()))
                    .await
                    .unwrap();
            }
        })
    };
    let ended = watcher.next_about("https://example.com/flood").await;
    assert_eq!(ended["active"], false);
    assert_eq!(ended["subscriber"], started["subscriber"]);
    flooding.await.unwrap();
    assert!(
        hub.herald
            .hub()
            .stats()
            .slow_disconnects
            .load(Ordering::Relaxed)
            > 0
    );
    drop(stuck);
}

#[tokio::test]
async fn the_payload_comes_from_the_first_subscribe_grant_matching_the_matcher() {
    let hub = start(true, |_| {}).await;
    let token = hub.token(
        vec![
            subscribe(vec![TopicMatcher::exact("https://example.com/foo")])
                .with_payload(json!({"custom1": 1})),
            subscribe(vec![TopicMatcher::urlpattern(
                "https://example.com/bar/:id",
            )])
            .with_payload(json!({"custom2": 2})),
            // Never used: the first grant already matches `https://example.com/foo`.
            subscribe(vec![TopicMatcher::exact("https://example.com/foo")])
                .with_payload(json!({"masked": true})),
            subscribe(vec![TopicMatcher::exact("*")]).with_payload(json!({"custom3": 3})),
        ],
        hour(),
    );
    let _s = hub
        .subscribe(
            &[
                ("match", "https://example.com/foo"),
                // The pattern grant covers this exact matcher taken as a topic.
                ("match", "https://example.com/bar/1"),
                // The same pattern string, as a pattern subscription.
                ("match_urlpattern", "https://example.com/bar/:id"),
                ("match", "https://example.com/other"),
            ],
            Some(&token),
        )
        .await;
    let no_payload = hub.token(
        vec![subscribe(vec![TopicMatcher::exact(
            "https://example.com/plain",
        )])],
        hour(),
    );
    let _p = hub
        .subscribe(&[("match", "https://example.com/plain")], Some(&no_payload))
        .await;
    let (all, _) = hub.snapshot(&hub.reader()).await;
    let payload = |matcher: &str| {
        all.values()
            .find(|s| s["match"] == matcher)
            .unwrap_or_else(|| panic!("{matcher} listed"))
            .get("payload")
            .cloned()
    };
    assert_eq!(
        payload("https://example.com/foo"),
        Some(json!({"custom1": 1}))
    );
    assert_eq!(
        payload("https://example.com/bar/1"),
        Some(json!({"custom2": 2}))
    );
    assert_eq!(
        payload("https://example.com/bar/:id"),
        Some(json!({"custom2": 2}))
    );
    assert_eq!(
        payload("https://example.com/other"),
        Some(json!({"custom3": 3}))
    );
    assert_eq!(payload("https://example.com/plain"), None);
}

#[tokio::test]
async fn reserved_characters_are_percent_encoded_exactly_once() {
    let hub = start(true, |_| {}).await;
    let reader = hub.reader();
    let mut watcher = hub
        .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&reader))
        .await;
    let matcher = "https://example.com/a b/c?q=1&r=%2F#frag é";
    let _s = hub.subscribe(&[("match", matcher)], None).await;
    let doc = watcher.next_about(matcher).await;
    let subscriber = doc["subscriber"].as_str().unwrap();
    let encoded = "https%3A%2F%2Fexample.com%2Fa%20b%2Fc%3Fq%3D1%26r%3D%252F%23frag%20%C3%A9";
    let topic = format!(
        "{PREFIX}/exact/{encoded}/{}",
        subscriber.replace(':', "%3A")
    );
    assert_eq!(doc["id"], topic);
    assert_eq!(
        doc["match"], matcher,
        "the document carries the raw matcher"
    );

    // The same URL serves the subscription; the per-matcher collection lists it.
    let (one, _) = hub.get_json(&topic, &reader).await;
    assert_eq!(one, doc);
    let (collection, _) = hub
        .get_json(&format!("{PREFIX}/exact/{encoded}"), &reader)
        .await;
    assert_eq!(collection["subscriptions"], json!([doc]));
    assert_eq!(collection["id"], format!("{PREFIX}/exact/{encoded}"));
    // Lower-case escapes name the same resource.
    let lower = topic.replace("%C3%A9", "%c3%a9");
    assert_eq!(hub.get(&lower, Some(&reader)).await.status(), 200);
}

#[tokio::test]
async fn the_api_endpoints_and_their_headers() {
    let hub = start(true, |c| c.subscriptions.page_size = 2).await;
    let reader = hub.reader();
    let mut watcher = hub
        .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&reader))
        .await;
    let mut open = Vec::new();
    for i in 0..4 {
        open.push(
            hub.subscribe(&[("match", "https://example.com/room")], None)
                .await,
        );
        let _ = i;
    }
    for _ in 0..4 {
        watcher.next_about("https://example.com/room").await;
    }

    // The collection: 5 subscriptions (the watcher's own included), pages of 2.
    let response = hub.get(PREFIX, Some(&reader)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "private, must-revalidate");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let link = headers["link"].to_str().unwrap();
    assert!(
        link.starts_with(&format!(
            "<{}>; rel=\"mercure\"; last-event-id=\"",
            hub.hub_url
        )),
        "{link}"
    );
    assert!(
        link.ends_with("\"; type=\"mercure\"; content-type=\"application/json\""),
        "{link}"
    );
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["id"], PREFIX);
    assert_eq!(page["type"], "subscriptions");
    assert_eq!(page["subscriptions"].as_array().unwrap().len(), 2);
    assert!(
        page["next"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{PREFIX}?after="))
    );
    let (all, _) = hub.snapshot(&reader).await;
    assert_eq!(all.len(), 5);

    // Not modified while nothing changes; modified once something does.
    let again = hub
        .http
        .get(hub.url(PREFIX))
        .bearer_auth(&reader)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.headers().contains_key("link"));
    open.pop();
    watcher.next_about("https://example.com/room").await;
    let changed = hub
        .http
        .get(hub.url(PREFIX))
        .bearer_auth(&reader)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);

    // The per-matcher collection and a single subscription.
    let room = format!("{PREFIX}/exact/https%3A%2F%2Fexample.com%2Froom");
    let (by_matcher, _) = hub.get_json(&room, &reader).await;
    assert_eq!(by_matcher["id"], room);
    assert_eq!(by_matcher["subscriptions"].as_array().unwrap().len(), 2);
    let first = by_matcher["subscriptions"][0].clone();
    let (single, _) = hub.get_json(first["id"].as_str().unwrap(), &reader).await;
    assert_eq!(single, first);

    // 404, saying why: unknown subscriber, unknown matcher type, malformed paths.
    for (path, why) in [
        (
            format!("{room}/urn%3Auuid%3A00000000-0000-4000-8000-000000000000"),
            "no active subscription is at",
        ),
        (
            format!("{PREFIX}/regex/x"),
            "`regex` is not a matcher type (exact or urlpattern)",
        ),
        (
            format!("{PREFIX}/exact"),
            "the matcher type `exact` is not followed by a matcher",
        ),
        (
            format!("{room}/a/b"),
            "the path has more than three segments",
        ),
    ] {
        let response = hub.get(&path, Some(&reader)).await;
        assert_eq!(response.status(), 404, "{path}");
        let link = response.headers().get("link").cloned();
        let body = response.text().await.unwrap();
        assert!(body.contains(why), "{path}: {body}");
        // The cursor comes with a missing subscription too, as with every answer.
        if why.starts_with("no active subscription") {
            let link = link.expect("a Link header");
            assert!(
                link.to_str()
                    .unwrap()
                    .contains("rel=\"mercure\"; last-event-id=\""),
                "{link:?}"
            );
        }
    }
    // An ended subscription is gone.
    assert_eq!(
        hub.get(&format!("{room}/x"), Some(&reader)).await.status(),
        404
    );
    // The trailing-slash collection is a resource of the API too: a problem document.
    let response = hub.get(&format!("{PREFIX}/"), Some(&reader)).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // 400, naming the segment: a `%` without two hex digits, or not UTF-8.
    for segment in ["%ZZ", "abc%", "%C3%28"] {
        let response = hub
            .get(&format!("{PREFIX}/exact/{segment}"), Some(&reader))
            .await;
        assert_eq!(response.status(), 400, "{segment}");
        let detail = response.text().await.unwrap();
        assert!(detail.contains(segment), "{detail}");
    }
    // The API serves GET and HEAD only, and says so.
    for path in [PREFIX.to_owned(), room.clone()] {
        let response = hub
            .http
            .post(hub.url(&path))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
}

#[tokio::test]
async fn the_api_authorizes_the_relative_url_as_a_topic() {
    let hub = start(true, |_| {}).await;
    let reader = hub.reader();
    let mut watcher = hub
        .subscribe(&[("match_urlpattern", ALL_EVENTS)], Some(&reader))
        .await;
    let _s = hub
        .subscribe(&[("match", "https://example.com/t")], None)
        .await;
    let doc = watcher.next_about("https://example.com/t").await;
    let single = doc["id"].as_str().unwrap().to_owned();
    let by_matcher = format!("{PREFIX}/exact/https%3A%2F%2Fexample.com%2Ft");

    // No token: 401 with the Bearer challenge.
    let response = hub.get(PREFIX, None).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );
    assert_eq!(hub.get(&single, None).await.status(), 401);

    // A token for application topics only: 403 everywhere.
    let app = hub.token(
        vec![subscribe(vec![TopicMatcher::exact(
            "https://example.com/t",
        )])],
        hour(),
    );
    for path in [PREFIX, &by_matcher, &single] {
        let response = hub.get(path, Some(&app)).await;
        assert_eq!(response.status(), 403, "{path}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("insufficient_scope")
        );
    }

    // An exact grant on the per-matcher collection opens that URL only.
    let exact = hub.token(
        vec![subscribe(vec![TopicMatcher::exact(&by_matcher)])],
        hour(),
    );
    assert_eq!(hub.get(&by_matcher, Some(&exact)).await.status(), 200);
    assert_eq!(
        hub.get(&format!("{by_matcher}?x=1"), Some(&exact))
            .await
            .status(),
        200
    );
    assert_eq!(hub.get(PREFIX, Some(&exact)).await.status(), 403);
    assert_eq!(hub.get(&single, Some(&exact)).await.status(), 403);

    // A relative URL pattern covering single subscriptions of exact matchers.
    let pattern = hub.token(
        vec![subscribe(vec![TopicMatcher::urlpattern(
            "/.well-known/mercure/subscriptions/exact/:match/:subscriber",
        )])],
        hour(),
    );
    assert_eq!(hub.get(&single, Some(&pattern)).await.status(), 200);
    assert_eq!(hub.get(&by_matcher, Some(&pattern)).await.status(), 403);
    // Authorized, but no such subscription: 404 (only after authorization).
    let missing = format!("{by_matcher}/urn%3Ax");
    assert_eq!(hub.get(&missing, Some(&pattern)).await.status(), 404);
    assert_eq!(hub.get(&missing, Some(&app)).await.status(), 403);
    assert_eq!(hub.get(&missing, None).await.status(), 401);
}

#[tokio::test]
async fn metadata_advertises_the_feature_and_cors_exposes_link() {
    let hub = start(true, |c| {
        c.cors.origins = vec!["https://app.example.com".into()]
    })
    .await;
    let metadata: Value = hub
        .http
        .get(hub.url("/.well-known/oauth-protected-resource/.well-known/mercure"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["mercure_subscriptions"], true);
    let response = hub
        .http
        .get(hub.url(PREFIX))
        .bearer_auth(hub.reader())
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("link"), "{exposed}");
}

/// Four tasks that subscribe and drop subscriptions in a bounded loop while
/// `churning` is set; each ends holding two subscriptions (some stay).
fn spawn_churners(
    hub: &Arc<TestHub>,
    churning: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<std::collections::VecDeque<Sse>>> {
    (0..4)
        .map(|worker| {
            let hub = Arc::clone(hub);
            let churning = Arc::clone(churning);
            tokio::spawn(async move {
                let mut held = std::collections::VecDeque::new();
                let mut i = 0u64;
                while churning.load(Ordering::Relaxed) {
                    let topic = format!("https://example.com/churn/{worker}/{}", i % 7);
                    held.push_back(hub.subscribe(&[("match", topic.as_str())], None).await);
                    if held.len() > 5 {
                        held.pop_front();
                    }
                    i += 1;
                    // Bounded churn: a few hundred connections a second per worker.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                held.truncate(2);
                held
            })
        })
        .collect()
}

/// Calls the API, then follows events from its cursor while subscribers come
/// and go, and checks that the reconstructed set equals the hub's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_then_events_from_its_cursor_miss_nothing_while_others_come_and_go() {
    // The follower must be able to keep up however loaded the machine is:
    // this test is about ordering, not about dropping slow subscribers.
    let hub = Arc::new(start(true, |config| config.subscribers.queue_capacity = 1 << 16).await);
    let reader = hub.reader();
    let churning = Arc::new(AtomicBool::new(true));
    let mut churners = spawn_churners(&hub, &churning);
    tokio::time::sleep(Duration::from_millis(200)).await;

    for _round in 0..3 {
        let (mut state, cursor) = hub.snapshot(&reader).await;
        let mut follower = hub
            .subscribe(
                &[
                    ("match_urlpattern", ALL_EVENTS),
                    ("last_event_id", cursor.as_str()),
                ],
                Some(&reader),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        churning.store(false, Ordering::Relaxed);
        let mut kept = Vec::new();
        for churner in churners.drain(..) {
            kept.push(churner.await.unwrap());
        }
        // Quiet now: apply events until the follower's view equals the hub's.
        // The hub's own view is read afresh each time: dropped connections
        // leave a few milliseconds after their handles are dropped.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (truth, _) = hub.snapshot(&reader).await;
            if state == truth {
                break;
            }
            let next =
                tokio::time::timeout(Duration::from_millis(200), follower.events.recv()).await;
            let event = match next {
                Ok(event) => event.expect("the follower's stream stays open"),
                Err(_) => {
                    if tokio::time::Instant::now() > deadline {
                        let missing: Vec<_> =
                            truth.keys().filter(|k| !state.contains_key(*k)).collect();
                        let extra: Vec<_> =
                            state.keys().filter(|k| !truth.contains_key(*k)).collect();
                        panic!(
                            "the follower never converged: missing {missing:?}, extra {extra:?}"
                        );
                    }
                    continue;
                }
            };
            let doc: Value = serde_json::from_str(&event.data).unwrap();
            let id = doc["id"].as_str().unwrap().to_owned();
            if doc["active"] == true {
                let mut doc = doc;
                doc["active"] = json!(true);
                state.insert(id, doc);
            } else {
                state.remove(&id);
            }
        }
        drop(kept);
        drop(follower);
        // Next round: churn again.
        tokio::time::sleep(Duration::from_millis(100)).await;
        churning.store(true, Ordering::Relaxed);
        churners = spawn_churners(&hub, &churning);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    churning.store(false, Ordering::Relaxed);
    for churner in churners {
        churner.await.unwrap();
    }
}

#[tokio::test]
async fn turned_off_there_are_no_endpoints_and_no_events() {
    let hub = start(false, |_| {}).await;
    let reader = hub.reader();
    for path in [
        PREFIX.to_owned(),
        format!("{PREFIX}/exact/a"),
        format!("{PREFIX}/exact/a/b"),
    ] {
        assert_eq!(hub.get(&path, Some(&reader)).await.status(), 404, "{path}");
    }
    let metadata: Value = hub
        .http
        .get(hub.url("/.well-known/oauth-protected-resource/.well-known/mercure"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata.get("mercure_subscriptions").is_none(),
        "{metadata}"
    );
    assert!(hub.herald.hub().presence().is_none());

    let mut watcher = hub.subscribe(&[("match", "*")], Some(&reader)).await;
    let s = hub
        .subscribe(&[("match", "https://example.com/a")], None)
        .await;
    drop(s);
    watcher.assert_quiet(Duration::from_millis(300)).await;
    hub.herald
        .hub()
        .publish(Update::new("https://example.com/marker", "m"))
        .await
        .unwrap();
    assert_eq!(watcher.next().await.data, "m");
}

/// A memory log whose appends wait while its gate is shut: the appender of
/// subscription events stalls, as behind a slow disk, and the queue fills.
struct GatedLog {
    inner: MemoryLog,
    open: tokio::sync::watch::Sender<bool>,
}

impl GatedLog {
    fn shut() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryLog::new(100_000),
            open: tokio::sync::watch::Sender::new(false),
        })
    }

    fn open(&self) {
        self.open.send_replace(true);
    }

    /// Appends waiting for the gate to open.
    fn waiting(&self) -> usize {
        self.open.receiver_count()
    }
}

impl Log for GatedLog {
    fn attach(&self, target: Arc<dyn Dispatch>) {
        self.inner.attach(target);
    }
    fn head(&self) -> Position {
        self.inner.head()
    }
    fn append(&self, entry: Entry) -> BoxFuture<'_, Result<Arc<Entry>, HubError>> {
        let mut open = self.open.subscribe();
        Box::pin(async move {
            let _ = open.wait_for(|open| *open).await;
            self.inner.append(entry).await
        })
    }
    fn find(&self, id: &str) -> BoxFuture<'_, Result<Option<Position>, HubError>> {
        self.inner.find(id)
    }
    fn read(
        &self,
        after: Position,
        up_to: Position,
        limit: ReadLimit,
    ) -> BoxFuture<'_, Result<Vec<Arc<Entry>>, HubError>> {
        self.inner.read(after, up_to, limit)
    }
    fn id_before(&self, position: Position) -> BoxFuture<'_, Result<Option<String>, HubError>> {
        self.inner.id_before(position)
    }
    fn stats(&self) -> LogStats {
        self.inner.stats()
    }
}

/// Matchers `https://example.com/{tag}/0` … `{count - 1}`, as query parameters.
fn matchers(tag: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|n| ("match".to_owned(), format!("https://example.com/{tag}/{n}")))
        .collect()
}

fn params(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Waits until the hub's subscription event counters satisfy `done`.
async fn until_events(hub: &TestHub, done: impl Fn(&herald_hub::EventStats) -> bool) {
    let presence = hub.herald.hub().presence().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = presence.event_stats();
        if done(&stats) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "stuck at {stats:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The soak audit's churn: connections of many matchers opened and closed
/// as fast as one client can, while the log takes nothing. Their events
/// coalesce away instead of queueing, so none is refused and nothing grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_short_lived_subscriptions_takes_no_room_while_the_log_stalls() {
    const CONNECTIONS: usize = 100;
    const MATCHERS: usize = 50;
    let log = GatedLog::shut();
    let hub = start_with_log(
        true,
        |config| config.subscriptions.max_pending_events = 1000,
        Some(Arc::clone(&log) as Arc<dyn Log>),
    )
    .await;
    // Its starts are taken by the appender, which then waits on the log.
    let held_params = matchers("held", 10);
    let held = hub.subscribe(&params(&held_params), None).await;
    // Taken, not only queued: else the appender's next batch could take a
    // churning connection's starts with them, and its ends would be owed.
    let deadline = tokio::time::Instant::now() + WAIT;
    while log.waiting() < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the appender never took the held connection's starts"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    until_events(&hub, |s| s.pending == 10).await;

    // 5,000 starts, five times the capacity: without coalescing the queue
    // fills after twenty connections and the rest are refused (503).
    for round in 0..CONNECTIONS {
        let churn = matchers(&format!("churn/{round}"), MATCHERS);
        drop(hub.subscribe(&params(&churn), None).await);
    }
    until_events(&hub, |s| s.coalesced == (CONNECTIONS * MATCHERS) as u64).await;
    let stats = hub.herald.hub().presence().unwrap().event_stats();
    assert_eq!((stats.pending, stats.refused), (10, 0), "{stats:?}");
    let metrics = hub.herald.metrics().render();
    assert!(
        metrics.contains("herald_subscription_events_pending 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("herald_subscription_events_coalesced_total 5000"),
        "{metrics}"
    );

    // The log catches up with only what someone may have seen: the held
    // connection's starts, then its ends.
    log.open();
    until_events(&hub, |s| s.pending == 0).await;
    assert_eq!(hub.herald.hub().log_stats().entries, 10);
    drop(held);
    until_events(&hub, |s| s.pending == 0 && s.coalesced == 5000).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while hub.herald.hub().log_stats().entries < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the held connection's ends"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Subscribes with `pairs`, expecting a refusal for the event backlog: a
/// 503 problem document with `Retry-After: 2`; returns its detail.
async fn refused_for_backlog(hub: &TestHub, pairs: &[(String, String)]) -> String {
    let query = serde_urlencoded::to_string(params(pairs)).unwrap();
    let refused = hub
        .http
        .get(format!("{}?{query}", hub.hub_url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "2");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    problem["detail"].as_str().unwrap().to_owned()
}

/// While the events already queued leave no room for a new subscriber's,
/// it is refused with a 503 that says why and when to retry, and accepted
/// again once the backlog has drained.
#[tokio::test]
async fn a_full_event_queue_refuses_subscribers_with_503_until_it_drains() {
    let log = GatedLog::shut();
    let hub = start_with_log(
        true,
        |config| config.subscriptions.max_pending_events = 20,
        Some(Arc::clone(&log) as Arc<dyn Log>),
    )
    .await;
    let first_params = matchers("first", 15);
    let first = hub.subscribe(&params(&first_params), None).await;

    let second_params = matchers("second", 10);
    let detail = refused_for_backlog(&hub, &second_params).await;
    assert!(
        detail.contains("subscription events") && detail.contains("15 pending, at most 20"),
        "{detail}"
    );
    let presence = hub.herald.hub().presence().unwrap();
    assert_eq!(
        presence.len(),
        15,
        "the refused subscriber is not in the index"
    );
    assert_eq!(presence.event_stats().refused, 1);
    assert!(
        hub.herald
            .metrics()
            .render()
            .contains("herald_subscriptions_refused_total 1")
    );

    log.open();
    until_events(&hub, |s| s.pending == 0).await;
    let second = hub.subscribe(&params(&second_params), None).await;
    assert_eq!(presence.len(), 25);
    drop((first, second));
}

/// Long matchers fill the event queue's byte bound long before its event
/// bound: a subscriber whose events would go past it is refused with a 503
/// naming the bytes, a short one still fits, and the metrics show the bytes.
#[tokio::test]
async fn long_matchers_are_refused_by_the_pending_bytes_bound() {
    let log = GatedLog::shut();
    let hub = start_with_log(
        true,
        |config| config.subscriptions.max_pending_bytes = 12_000,
        Some(Arc::clone(&log) as Arc<dyn Log>),
    )
    .await;
    let long = |tag: &str| {
        vec![(
            "match".to_owned(),
            format!("https://example.com/{tag}/{}", "x".repeat(2000)),
        )]
    };
    let first_params = [long("a"), long("b")].concat();
    let first = hub.subscribe(&params(&first_params), None).await;
    let presence = hub.herald.hub().presence().unwrap();
    let pending = presence.event_stats().pending_bytes;
    assert!(
        (8_000..12_000).contains(&pending),
        "two 2,000-byte matchers pending weigh {pending} bytes"
    );

    let detail = refused_for_backlog(&hub, &long("c")).await;
    assert!(
        detail.contains(&format!(
            "2 pending, at most 65536; {pending} bytes of them, at most 12000"
        )),
        "{detail}"
    );
    let metrics = hub.herald.metrics().render();
    assert!(
        metrics.contains(&format!(
            "herald_subscription_events_pending_bytes {pending}"
        )),
        "{metrics}"
    );

    let short_params = matchers("short", 1);
    let short = hub.subscribe(&params(&short_params), None).await;
    assert_eq!(presence.len(), 3, "the short subscriber fits");

    log.open();
    until_events(&hub, |s| s.pending == 0).await;
    assert_eq!(presence.event_stats().pending_bytes, 0);
    let third = hub.subscribe(&params(&long("c")), None).await;
    assert_eq!(presence.len(), 4);
    drop((first, short, third));
}
