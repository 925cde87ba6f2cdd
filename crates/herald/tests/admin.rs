//! The admin listener of the real `herald serve`: it answers its routes, and
//! a client that sends no whole request head within
//! `limits.request_head_timeout` is closed, as on the hub's own listener, so
//! that silent connections cannot pile up on the process's descriptors.

mod hub_process;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes; returns how long that took.
async fn closed_after(mut tcp: TcpStream) -> Duration {
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the admin listener closes the connection within 10 s");
    started.elapsed()
}

#[tokio::test]
async fn silent_partial_and_idle_admin_connections_are_closed_at_the_head_timeout() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("herald.toml");
    std::fs::write(&config, "[limits]\nrequest_head_timeout = \"1s\"\n").unwrap();
    let (_hub, _address, admin) = hub_process::start_with_admin_and(
        &data.path().join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.text().await.unwrap().contains("herald_"),
        "the metrics are served"
    );

    let silent = TcpStream::connect(&admin).await.unwrap();
    let mut partial = TcpStream::connect(&admin).await.unwrap();
    partial
        .write_all(b"GET /metrics HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(&admin).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (silent, partial, idle) = tokio::join!(
        closed_after(silent),
        closed_after(partial),
        closed_after(idle)
    );
    for (what, lived) in [("silent", silent), ("partial", partial), ("idle", idle)] {
        assert!(
            lived < Duration::from_secs(4),
            "a {what} admin connection lived {lived:?}"
        );
    }
}
