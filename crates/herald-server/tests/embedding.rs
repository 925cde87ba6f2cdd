//! herald inside an application's own axum router: the application's layers
//! see every request to the hub's routes unless it opts out, and settings
//! made in code that the configuration file would refuse do not take the
//! server down.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_hub::Hub;
use herald_server::{Herald, Settings, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The application's own guard: every request needs its API key.
async fn require_api_key(request: Request, next: Next) -> Response {
    if request.headers().contains_key("x-api-key") {
        next.run(request).await
    } else {
        (StatusCode::IM_A_TEAPOT, "no API key").into_response()
    }
}

/// Serves `herald`'s routes inside `wrap(router)` on a free port; returns
/// the hub URL, what stops the server, and the edge (to publish from code).
async fn start(
    settings: Settings,
    wrap: impl FnOnce(Router) -> Router,
) -> (String, oneshot::Sender<()>, Herald) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_url = format!(
        "http://{}/.well-known/mercure",
        listener.local_addr().unwrap()
    );
    let herald = Herald::new(
        Hub::builder(hub_url.parse().unwrap()).build(),
        None,
        settings,
    );
    let router = wrap(herald.router());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = herald.clone();
    tokio::spawn(async move {
        serve(listener, &serving, router, async {
            let _ = stopped.await;
        })
        .await
    });
    (hub_url, stop, herald)
}

fn http1() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .http1_only()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_applications_layer_guards_plain_http1_publishes_by_default() {
    let (hub_url, _stop, _) = start(Settings::default(), |router| {
        router.layer(axum::middleware::from_fn(require_api_key))
    })
    .await;
    let publish = || {
        http1()
            .post(&hub_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("topic=https%3A%2F%2Fexample.com%2Fa&data=x")
    };
    let refused = publish().send().await.unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::IM_A_TEAPOT,
        "the application's layer answered the publish"
    );
    // With the key the layer lets it through to the hub, which has no token
    // verifier and so refuses every publisher.
    let passed = publish().header("x-api-key", "k").send().await.unwrap();
    assert_eq!(passed.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn turned_on_hand_served_publishes_skip_the_applications_layers() {
    let settings = Settings {
        hand_served_publish: true,
        ..Settings::default()
    };
    let (hub_url, _stop, _) = start(settings, |router| {
        router.layer(axum::middleware::from_fn(require_api_key))
    })
    .await;
    let answer = http1()
        .post(&hub_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=https%3A%2F%2Fexample.com%2Fa&data=x")
        .send()
        .await
        .unwrap();
    // What the opt-in is documented to do: the hub answers, not the layer.
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wildcard_cors_origin_set_in_code_is_ignored_not_a_panic() {
    let settings = Settings {
        cors_origins: vec![
            "*".into(),
            "bad\norigin".into(),
            "https://app.example".into(),
        ],
        ..Settings::default()
    };
    let (hub_url, _stop, _) = start(settings, |router| router).await;
    let preflight = |origin: &'static str| {
        http1()
            .request(reqwest::Method::OPTIONS, &hub_url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://app.example")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "no wildcard: {:?}",
        other.headers()
    );
}

#[tokio::test]
async fn durations_set_in_code_beyond_any_clock_are_clamped_not_a_panic() {
    let settings = Settings {
        heartbeat: Duration::MAX,
        max_connection_lifetime: Some(Duration::MAX),
        request_head_timeout: Duration::MAX,
        request_body_timeout: Duration::MAX,
        write_timeout: Duration::MAX,
        shutdown_timeout: Duration::MAX,
        ..Settings::default()
    };
    let (hub_url, _stop, _) = start(settings, |router| router).await;
    let client = http1();
    for _ in 0..2 {
        // The accept loop, the head deadline and the stream's timers all
        // survive: two subscriptions in a row are served.
        let stream = client
            .get(format!("{hub_url}?match=https://example.com/t"))
            .send()
            .await
            .expect("the hub answers");
        assert_eq!(stream.status(), StatusCode::OK);
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
    }
}

#[tokio::test]
async fn a_zero_heartbeat_set_in_code_is_raised_to_a_second_not_a_flood() {
    let settings = Settings {
        heartbeat: Duration::ZERO,
        ..Settings::default()
    };
    let (hub_url, _stop, _) = start(settings, |router| router).await;
    let mut stream = http1()
        .get(format!("{hub_url}?match=https://example.com/t"))
        .send()
        .await
        .expect("the hub answers");
    assert_eq!(stream.status(), StatusCode::OK);
    // Over 1.5 s: the opening comment and a heartbeat or two, not a flood.
    let mut received = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, stream.chunk()).await {
        received += chunk.len();
    }
    assert!(received < 64, "{received} bytes of heartbeats in 1.5 s");
}

/// The body of every answer, upper-cased: a layer of the kind that
/// compresses or meters a response body.
async fn shout(response: Response) -> Response {
    use futures_util::StreamExt;
    let (parts, body) = response.into_parts();
    let loud = body
        .into_data_stream()
        .map(|chunk| chunk.map(|bytes| bytes::Bytes::from(bytes.to_ascii_uppercase())));
    Response::from_parts(parts, axum::body::Body::from_stream(loud))
}

/// Subscribes over HTTP/1.1 through a body layer, publishes from code and
/// returns what reached the subscriber up to the event's blank line.
async fn live_event_through_a_body_layer(settings: Settings) -> String {
    use futures_util::StreamExt;
    let settings = Settings {
        anonymous_subscribers: true,
        ..settings
    };
    let (hub_url, _stop, herald) = start(settings, |router| {
        router.layer(axum::middleware::map_response(shout))
    })
    .await;
    let response = http1()
        .get(format!("{hub_url}?match=urn%3Aa"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    // The opening comment first: the subscription is in place.
    seen.push_str(&String::from_utf8_lossy(
        &body.next().await.unwrap().unwrap(),
    ));
    herald
        .hub()
        .publish(herald_hub::Update::new("urn:a", "live"))
        .await
        .unwrap();
    while !seen.to_ascii_lowercase().contains("live\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("the event in time")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn live_events_go_through_the_applications_body_layers_by_default() {
    let seen = live_event_through_a_body_layer(Settings::default()).await;
    assert!(seen.contains("DATA: LIVE\n\n"), "{seen:?}");
    // Opted in, as `herald serve` is: live events are written past the
    // router's body layers (the head still goes through them).
    let seen = live_event_through_a_body_layer(Settings {
        hand_served_streams: true,
        ..Settings::default()
    })
    .await;
    assert!(seen.contains("data: live\n\n"), "{seen:?}");
}

#[test]
fn a_configuration_built_in_code_serves_nothing_by_hand_unless_asked() {
    let mut config = herald_server::Config::default();
    config.log.kind = "memory".into();
    let (herald, _) = config.build().unwrap();
    let settings = herald.settings();
    assert!(!settings.hand_served_publish && !settings.hand_served_streams);
    config.hand_served = true;
    let (herald, _) = config.build().unwrap();
    let settings = herald.settings();
    assert!(settings.hand_served_publish && settings.hand_served_streams);
}

#[tokio::test]
async fn a_herald_served_and_shut_down_refuses_to_serve_again_at_once() {
    let herald = Herald::new(
        Hub::builder("http://127.0.0.1:9/.well-known/mercure".parse().unwrap()).build(),
        None,
        Settings::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, &herald, herald.router(), async {})
        .await
        .expect("the first serve ends cleanly");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = tokio::time::timeout(
        Duration::from_secs(5),
        serve(listener, &herald, herald.router(), std::future::pending()),
    )
    .await
    .expect("refused at once, not served");
    let error = again.expect_err("a Herald serves once");
    assert!(
        error.to_string().contains("a Herald serves once"),
        "{error}"
    );
    herald.close_log().await.expect("the log closes");
}

#[test]
fn hub_paths_axum_cannot_route_are_named_before_the_router_panics() {
    for (url, segment) in [
        ("http://h/:hub", "`:hub` starts with `:`"),
        ("http://h/hubs/*", "`*` starts with `*`"),
    ] {
        let error = herald_server::routable_hub_path(&url.parse().unwrap()).unwrap_err();
        assert!(error.contains(segment), "{url}: {error}");
    }
    for url in [
        "http://h/.well-known/mercure",
        "http://h/%3Ahub",
        "http://h/a:b",
    ] {
        herald_server::routable_hub_path(&url.parse().unwrap()).unwrap();
    }
}

#[tokio::test]
async fn a_publish_refused_in_code_is_answered_as_the_hub_answers_it() {
    let herald = Herald::new(
        Hub::builder("http://127.0.0.1:9/.well-known/mercure".parse().unwrap()).build(),
        None,
        Settings::default(),
    );
    let refused = herald
        .hub()
        .publish(herald_hub::Update::new("a\u{1}b", "data"))
        .await
        .expect_err("a control character in a topic");
    let response = herald.error_response(refused);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}
