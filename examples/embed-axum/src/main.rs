//! Runs the example on 127.0.0.1:3001.
//!
//! ```sh
//! cargo run -p herald-example-embed-axum
//! curl -N 'http://127.0.0.1:3001/.well-known/mercure?match=/books/1' &
//! curl -X PUT -H 'Content-Type: application/json' -d '{"title":"Dune"}' http://127.0.0.1:3001/books/1
//! ```

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = "127.0.0.1:3001";
    let hub_url = format!("http://{address}/.well-known/mercure")
        .parse()
        .map_err(std::io::Error::other)?;
    let (router, herald) = herald_example_embed_axum::app(hub_url);
    let listener = tokio::net::TcpListener::bind(address).await?;
    eprintln!("listening on http://{address}");
    herald_server::serve(listener, &herald, router, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
