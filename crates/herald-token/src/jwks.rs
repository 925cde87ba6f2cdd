//! JWK Sets (RFC 7517): parsing, fetching, and the background refresh of a [`Verifier`]'s
//! issuer key sets.
//!
//! Keys only ever come from the URLs configured for an issuer; a token's `jku`, `x5u`, `jwk`
//! or `x5c` header is never followed.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use serde_json::Value;

use crate::verify::Verifier;
use crate::{Error, VerifyingKey};

/// The largest JWK Set body accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Parses a JWK Set document into verifying keys.
///
/// Keys that cannot be used to verify signatures (`"use": "enc"`, symmetric keys, unsupported
/// key types or curves, malformed members) are skipped, as RFC 7517 section 5 asks; a document
/// that is not a JSON object with a `keys` array, or that holds no usable key, is an error.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<VerifyingKey>, String> {
    let document: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err("not a JWK Set: no \"keys\" array".into());
    };
    let mut keys = Vec::new();
    let mut first_skip = None;
    for (index, entry) in entries.iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(entry.clone()) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::debug!(index, error = %e, "skipping an unparseable JWK");
                first_skip.get_or_insert_with(|| format!("key {index}: {e}"));
                continue;
            }
        };
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            first_skip.get_or_insert_with(|| format!("key {index}: not a signature key"));
            continue;
        }
        match VerifyingKey::from_jwk(&jwk) {
            Ok(key) => keys.push(key),
            Err(e) => {
                tracing::debug!(index, error = %e, "skipping an unusable JWK");
                first_skip.get_or_insert_with(|| format!("key {index}: {e}"));
            }
        }
    }
    // A set that verifies nothing would lock every user of the issuer out:
    // it is taken as a failed fetch, and the keys before it stay.
    if keys.is_empty() {
        return Err(match first_skip {
            None => "the set holds no key".into(),
            Some(reason) => format!(
                "none of its {} keys can verify a signature ({reason})",
                entries.len()
            ),
        });
    }
    Ok(keys)
}

/// Handle of the background task started by [`Verifier::spawn_jwks_refresh`]; dropping it
/// stops the task.
#[derive(Debug)]
pub struct JwksRefresh {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksRefresh {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Verifier {
    /// Fetches every configured JWK Set now and swaps the new keys in.
    ///
    /// The sets are fetched at once, and each is swapped in as it arrives:
    /// an issuer whose endpoint hangs until the timeout holds back no other
    /// issuer's keys. A set that fails to load keeps its previous keys; the
    /// first failure is returned after every set has been tried.
    pub async fn refresh_jwks(&self) -> Result<(), Error> {
        let fetches = self.inner.issuers.iter().filter_map(|(issuer, state)| {
            let source = state.jwks.as_ref()?;
            Some(async move {
                match self.fetch(&source.url).await {
                    Ok(keys) => {
                        tracing::debug!(issuer, url = %redacted(&source.url), keys = keys.len(), "JWK Set loaded");
                        *source.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                        self.inner
                            .key_generation
                            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                        Ok(())
                    }
                    Err(reason) => {
                        tracing::warn!(issuer, url = %redacted(&source.url), %reason, "cannot load JWK Set; keeping the previous keys");
                        Err(Error::Jwks {
                            issuer: issuer.clone(),
                            url: redacted(&source.url),
                            reason,
                        })
                    }
                }
            })
        });
        futures_util::future::join_all(fetches)
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// Starts a task (on the current tokio runtime) that fetches every JWK Set immediately and
    /// then at the configured interval; after a failure it retries sooner (at most every 10 s).
    pub fn spawn_jwks_refresh(&self) -> JwksRefresh {
        let verifier = self.clone();
        let interval = self.inner.jwks_refresh;
        let task = tokio::spawn(async move {
            loop {
                let wait = match verifier.refresh_jwks().await {
                    Ok(()) => interval,
                    Err(_) => interval.min(Duration::from_secs(10)),
                };
                tokio::time::sleep(wait).await;
            }
        });
        JwksRefresh { task }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<VerifyingKey>, String> {
        let client = match self.inner.http.get() {
            Some(client) => client.clone(),
            None => {
                // reqwest is built without a TLS provider of its own: use rustls' ring unless
                // the process already installed one.
                let _ = rustls::crypto::ring::default_provider().install_default();
                // Redirects are not followed: the configured URL is the one trusted.
                let client = reqwest::Client::builder()
                    .timeout(self.inner.jwks_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
                self.inner.http.get_or_init(|| client).clone()
            }
        };
        let mut response = client.get(url).send().await.map_err(|e| {
            if e.is_timeout() {
                format!("no answer within {:?}", self.inner.jwks_timeout)
            } else if e.is_connect() {
                format!("cannot connect: {}", root_cause(&e))
            } else {
                // Connected, but no HTTP answer came back (closed, not HTTP).
                format!("no valid HTTP answer: {}", root_cause(&e))
            }
        })?;
        if !response.status().is_success() {
            return Err(format!("HTTP status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            if e.is_timeout() {
                format!(
                    "the body did not arrive within {:?}",
                    self.inner.jwks_timeout
                )
            } else {
                format!("reading the body failed: {}", root_cause(&e))
            }
        })? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the JWK Set is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_jwks(&body)
    }
}

/// The innermost cause of an error, which names what actually went wrong
/// (`Connection refused`, `invalid HTTP version parsed`) where the outer
/// ones say only that a request failed.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string().replace('\n', " ")
}

/// A JWK Set URL as logs and errors show it: credentials and the query (which
/// may carry an API key) are left out.
pub fn redacted(url: &str) -> String {
    let Ok(mut shown) = reqwest::Url::parse(url) else {
        return "<not a URL>".to_owned();
    };
    if shown.password().is_some() || !shown.username().is_empty() {
        let _ = shown.set_username("redacted");
        let _ = shown.set_password(None);
    }
    if shown.query().is_some() {
        shown.set_query(Some("redacted"));
    }
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod redaction_tests {
    use super::redacted;

    #[test]
    fn credentials_and_query_are_left_out() {
        let shown = redacted("https://user:s3cr3t@idp.example/jwks?api_key=K&x=1");
        assert_eq!(shown, "https://redacted@idp.example/jwks?redacted");
        assert_eq!(
            redacted("https://idp.example/jwks"),
            "https://idp.example/jwks"
        );
        assert_eq!(redacted("not a url"), "<not a URL>");
    }
}
