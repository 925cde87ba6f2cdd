//! JWK Set loading and refresh against a small HTTP server on 127.0.0.1:0.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use herald_token::jwks::parse_jwks;
use herald_token::{
    Algorithm, Error, Issuer, MintRequest, SigningKey, Verifier, generate_ed25519, mint,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HUB: &str = "https://hub.example.com/.well-known/mercure";
const ISS: &str = "https://auth.example.com";

/// What the server answers: a status line and a body.
#[derive(Clone)]
struct Reply {
    status: &'static str,
    body: String,
}

struct Server {
    url: String,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<AtomicUsize>,
}

impl Server {
    async fn start(body: String) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let reply = Arc::new(Mutex::new(Reply {
            status: "200 OK",
            body,
        }));
        let requests = Arc::new(AtomicUsize::new(0));
        let (r, n) = (Arc::clone(&reply), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let reply = r.lock().unwrap().clone();
                n.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                        reply.status,
                        reply.body.len(),
                        reply.body
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Server {
            url,
            reply,
            requests,
        }
    }

    fn set(&self, status: &'static str, body: String) {
        *self.reply.lock().unwrap() = Reply { status, body };
    }
}

fn jwks_of(keys: &[&SigningKey]) -> String {
    let keys: Vec<_> = keys
        .iter()
        .map(|k| serde_json::to_value(k.public_jwk().unwrap()).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

fn ec_key(kid: &str) -> SigningKey {
    SigningKey::from_pem(include_bytes!("keys/ec-private.pem"), None)
        .unwrap()
        .with_kid(kid)
}

fn ed_key(kid: &str) -> SigningKey {
    SigningKey::from_pem(generate_ed25519().unwrap().private_pem.as_bytes(), None)
        .unwrap()
        .with_kid(kid)
}

fn token(key: &SigningKey) -> String {
    mint(&MintRequest::new(ISS, HUB), key).unwrap()
}

fn verifier(url: &str, refresh: Duration) -> Verifier {
    Verifier::builder(HUB, [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256])
        .issuer(Issuer::new(ISS).with_jwks_url(url))
        .jwks_refresh_interval(refresh)
        .build()
        .unwrap()
}

#[tokio::test]
async fn keys_come_from_the_jwks_once_loaded() {
    let k1 = ec_key("k1");
    let server = Server::start(jwks_of(&[&k1])).await;
    let verifier = verifier(&server.url, Duration::from_secs(3600));
    let t1 = token(&k1);
    assert!(
        matches!(verifier.verify(&t1), Err(Error::UnknownKey { .. })),
        "no key before the first fetch"
    );
    let generation = verifier.key_generation();
    verifier.refresh_jwks().await.unwrap();
    assert_ne!(
        verifier.key_generation(),
        generation,
        "swapping keys in changes the generation"
    );
    let verified = verifier.verify(&t1).unwrap();
    assert_eq!(verified.key_id.as_deref(), Some("k1"));
    assert_eq!(verified.algorithm, Algorithm::ES256);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn background_refresh_follows_key_rotation() {
    let k1 = ec_key("k1");
    let k2 = ed_key("k2");
    let server = Server::start(jwks_of(&[&k1])).await;
    let verifier = verifier(&server.url, Duration::from_millis(50));
    let _refresh = verifier.spawn_jwks_refresh();
    let (t1, t2) = (token(&k1), token(&k2));

    wait_until(|| verifier.verify(&t1).is_ok()).await;
    assert!(matches!(
        verifier.verify(&t2),
        Err(Error::UnknownKey { .. })
    ));

    server.set("200 OK", jwks_of(&[&k2]));
    wait_until(|| verifier.verify(&t2).is_ok()).await;
    let err = verifier.verify(&t1).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownKey {
                alg: Algorithm::ES256,
                ..
            }
        ),
        "the rotated-out key is gone: {err:?}"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_refreshing() {
    let server = Server::start(jwks_of(&[&ec_key("k1")])).await;
    let verifier = verifier(&server.url, Duration::from_millis(20));
    let refresh = verifier.spawn_jwks_refresh();
    wait_until(|| server.requests.load(Ordering::SeqCst) >= 2).await;
    drop(refresh);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after_drop = server.requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(server.requests.load(Ordering::SeqCst), after_drop);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_previous_keys() {
    let k1 = ec_key("k1");
    let server = Server::start(jwks_of(&[&k1])).await;
    let verifier = verifier(&server.url, Duration::from_secs(3600));
    verifier.refresh_jwks().await.unwrap();

    server.set("500 Internal Server Error", "oops".into());
    let err = verifier.refresh_jwks().await.unwrap_err();
    assert!(
        matches!(&err, Error::Jwks { issuer, reason, .. } if issuer == ISS && reason.contains("500")),
        "{err:?}"
    );
    assert_eq!(err.oauth_error(), None);
    assert!(verifier.verify(&token(&k1)).is_ok());

    server.set("200 OK", "<html>not a key set</html>".into());
    assert!(matches!(
        verifier.refresh_jwks().await,
        Err(Error::Jwks { .. })
    ));
    assert!(verifier.verify(&token(&k1)).is_ok());

    // A set with no key, or none usable, would lock every user out: kept
    // out like a failed fetch.
    for (body, says) in [
        (r#"{"keys": []}"#.to_owned(), "the set holds no key"),
        (
            r#"{"keys": [{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA", "kid": "k1"}]}"#
                .to_owned(),
            "none of its 1 keys can verify a signature (key 0:",
        ),
    ] {
        server.set("200 OK", body);
        let err = verifier.refresh_jwks().await.unwrap_err();
        assert!(
            matches!(&err, Error::Jwks { reason, .. } if reason.contains(says)),
            "{err:?}"
        );
        assert!(verifier.verify(&token(&k1)).is_ok());
    }
}

#[tokio::test]
async fn an_issuer_whose_jwks_url_hangs_holds_back_no_other_issuer() {
    // Three endpoints that accept and never answer, and one that does.
    let mut hung = Vec::new();
    let mut held = Vec::new();
    for _ in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        hung.push(format!(
            "http://{}/jwks.json",
            listener.local_addr().unwrap()
        ));
        held.push(tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        }));
    }
    let k1 = ec_key("k1");
    let server = Server::start(jwks_of(&[&k1])).await;
    let mut builder = Verifier::builder(HUB, [Algorithm::ES256])
        .issuer(Issuer::new(ISS).with_jwks_url(&server.url))
        .jwks_timeout(Duration::from_secs(60));
    for (n, url) in hung.iter().enumerate() {
        builder =
            builder.issuer(Issuer::new(format!("https://hung{n}.example")).with_jwks_url(url));
    }
    let verifier = builder.build().unwrap();
    let _refresh = verifier.spawn_jwks_refresh();
    // Well within the hung fetches' 60 s timeout, whatever the issuers' order.
    wait_until(|| verifier.verify(&token(&k1)).is_ok()).await;
    for task in held {
        task.abort();
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let k2 = ec_key("k2");
    let elsewhere = Server::start(jwks_of(&[&k2])).await;
    let server = Server::start(String::new()).await;
    // The status line carries the Location header (the test server writes it verbatim).
    let redirect: &'static str = format!("302 Found\r\nlocation: {}", elsewhere.url).leak();
    server.set(redirect, String::new());
    let verifier = verifier(&server.url, Duration::from_secs(3600));
    let err = verifier.refresh_jwks().await.unwrap_err();
    assert!(
        matches!(&err, Error::Jwks { reason, .. } if reason.contains("302")),
        "{err:?}"
    );
    assert_eq!(elsewhere.requests.load(Ordering::SeqCst), 0);
    assert!(verifier.verify(&token(&k2)).is_err());
}

#[tokio::test]
async fn an_unreachable_jwks_url_is_an_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let verifier = verifier(&url, Duration::from_secs(3600));
    let err = verifier.refresh_jwks().await.unwrap_err();
    assert!(
        matches!(&err, Error::Jwks { reason, .. } if reason.starts_with("cannot connect: ")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_jwks_fetch_that_fails_says_how() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that answers what is not HTTP, one that closes before
    // answering, and one that never answers.
    async fn serving(reply: Option<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0; 1024];
                let _ = socket.read(&mut request).await;
                match reply {
                    Some(bytes) => {
                        let _ = socket.write_all(bytes).await;
                    }
                    None => held.push(socket),
                }
            }
        });
        url
    }
    for (reply, says) in [
        (Some(&b"hello there\r\n\r\n"[..]), "no valid HTTP answer: "),
        (Some(&b""[..]), "no valid HTTP answer: "),
        (None, "no answer within 300ms"),
    ] {
        let url = serving(reply).await;
        let verifier = Verifier::builder(HUB, [Algorithm::ES256])
            .issuer(Issuer::new(ISS).with_jwks_url(&url))
            .jwks_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let err = verifier.refresh_jwks().await.unwrap_err();
        assert!(
            matches!(&err, Error::Jwks { reason, .. } if reason.starts_with(says)),
            "{says}: {err:?}"
        );
    }
}

#[test]
fn parse_jwks_keeps_only_signature_keys_it_supports() {
    let ec = serde_json::to_value(ec_key("sig").public_jwk().unwrap()).unwrap();
    let mut enc = ec.clone();
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc");
    let document = json!({"keys": [
        ec,
        enc,
        {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "kid": "oct"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"},
        {"kty": "unknown", "kid": "weird"},
        "not even an object"
    ]});
    let keys = parse_jwks(document.to_string().as_bytes()).unwrap();
    let kids: Vec<_> = keys.iter().map(|k| k.kid()).collect();
    assert_eq!(kids, vec![Some("sig")]);
    assert!(parse_jwks(b"[]").is_err());
    assert!(parse_jwks(b"{\"keys\": 1}").is_err());
}

#[test]
fn a_jwk_whose_alg_contradicts_its_key_type_is_skipped() {
    let mut ec = serde_json::to_value(ec_key("k").public_jwk().unwrap()).unwrap();
    ec["alg"] = json!("RS256");
    let refused = parse_jwks(json!({ "keys": [ec] }).to_string().as_bytes()).unwrap_err();
    assert!(
        refused.starts_with("none of its 1 keys can verify a signature (key 0:"),
        "{refused}"
    );
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = SystemTime::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            SystemTime::now() < deadline,
            "condition not met within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
