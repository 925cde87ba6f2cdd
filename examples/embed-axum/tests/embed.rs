//! The embedding story, end to end over loopback: an application handler
//! publishes, a subscriber of the mounted hub route receives.

use std::time::Duration;

use futures_util::StreamExt;
use herald_sse::Parser;

#[tokio::test]
async fn an_application_handler_publishes_to_subscribers_of_the_mounted_hub() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let hub_url = format!("http://{address}/.well-known/mercure")
        .parse()
        .unwrap();
    let (router, herald) = herald_example_embed_axum::app(hub_url);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let herald = herald.clone();
        async move {
            herald_server::serve(listener, &herald, router, async {
                let _ = stopped.await;
            })
            .await
        }
    });

    let client = reqwest::Client::new();
    let response = client
        .get(format!(
            "http://{address}/.well-known/mercure?match=/books/1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();

    let put = client
        .put(format!("http://{address}/books/1"))
        .header("content-type", "application/json")
        .body(r#"{"title":"Dune"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let link = put.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!(
            "<http://{address}/.well-known/mercure>; rel=\"mercure\"; last-event-id=\"#"
        )),
        "{link}"
    );

    let mut parser = Parser::new();
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(event) = parser.next_event().unwrap() {
                return event;
            }
            parser.feed(&body.next().await.expect("stream open").unwrap());
        }
    })
    .await
    .expect("the update within 5 s");
    assert_eq!(event.data, r#"{"title":"Dune"}"#);
    assert!(
        link.contains(&event.last_event_id),
        "the Link header names the event id"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
