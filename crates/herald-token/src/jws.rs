//! The verification steps shared by [`Verifier`](crate::Verifier) and
//! [`LegacyVerifier`](crate::LegacyVerifier): size and compact-serialization checks, header
//! checks (`alg`, `crit`, `kid`), signature verification with trusted keys only, and the
//! `exp` / `nbf` time window.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::claims::json_kind;
use crate::{Algorithm, Error, VerifyingKey};

/// A JWS in compact serialization, decoded but not yet verified.
pub(crate) struct Jws<'t> {
    /// The protected header.
    pub(crate) header: Map<String, Value>,
    /// The payload (the JWT claims).
    pub(crate) payload: Map<String, Value>,
    /// The signing input: `header.payload`, as presented.
    message: &'t [u8],
    /// The signature, base64url as presented.
    signature_b64: &'t str,
}

impl<'t> Jws<'t> {
    /// Checks the size of `token` against `max_bytes`, splits it into its three segments, and
    /// decodes the header and the payload (JSON objects) and the signature (base64url).
    pub(crate) fn decode(token: &'t str, max_bytes: usize) -> Result<Jws<'t>, Error> {
        if token.len() > max_bytes {
            return Err(Error::TokenTooLong {
                len: token.len(),
                limit: max_bytes,
            });
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Malformed(
                "a JWS in compact serialization has exactly three dot-separated parts".into(),
            ));
        };
        let header = decode_object("header", header_b64)?;
        let payload = decode_object("payload", payload_b64)?;
        URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| {
            Error::Malformed("the signature is not base64url without padding".into())
        })?;
        let message_len = header_b64.len() + 1 + payload_b64.len();
        Ok(Jws {
            header,
            payload,
            message: &token.as_bytes()[..message_len],
            signature_b64,
        })
    }

    /// The header's `alg`: never `none` (in any case), and on `allowlist`.
    pub(crate) fn algorithm(&self, allowlist: &[Algorithm]) -> Result<Algorithm, Error> {
        match self.header.get("alg") {
            Some(Value::String(alg)) if alg.eq_ignore_ascii_case("none") => {
                Err(Error::AlgorithmNone)
            }
            Some(Value::String(alg)) => match Algorithm::from_name(alg) {
                Some(a) if allowlist.contains(&a) => Ok(a),
                _ => Err(Error::DisallowedAlgorithm { alg: alg.clone() }),
            },
            Some(_) => Err(Error::Malformed(
                "the header's \"alg\" is not a string".into(),
            )),
            None => Err(Error::Malformed("the header has no \"alg\"".into())),
        }
    }

    /// Refuses any `crit` header: no extension is understood.
    pub(crate) fn reject_critical(&self) -> Result<(), Error> {
        let Some(crit) = self.header.get("crit") else {
            return Ok(());
        };
        let names = match crit {
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            other => vec![other.to_string()],
        };
        Err(Error::UnsupportedCritical(names))
    }

    /// The header's `kid`, if any (a string).
    pub(crate) fn key_id(&self) -> Result<Option<String>, Error> {
        match self.header.get("kid") {
            None => Ok(None),
            Some(Value::String(kid)) => Ok(Some(kid.clone())),
            Some(_) => Err(Error::Malformed(
                "the header's \"kid\" is not a string".into(),
            )),
        }
    }

    /// Whether one of `keys` verifies the signature with `alg`.
    ///
    /// `keys` are trusted keys the caller chose (see [`candidate_keys`]); key material in the
    /// header (`jwk`, `jku`, `x5u`, `x5c`) is never looked at.
    pub(crate) fn verifies_with(&self, alg: Algorithm, keys: &[&VerifyingKey]) -> bool {
        keys.iter().any(|key| {
            jsonwebtoken::crypto::verify(self.signature_b64, self.message, &key.key, alg.to_jwt())
                .unwrap_or(false)
        })
    }
}

/// The keys of `keys` bound to `alg` and, when both the token and the key name one, with the
/// token's `kid`.
pub(crate) fn candidate_keys<'k>(
    keys: impl IntoIterator<Item = &'k VerifyingKey>,
    alg: Algorithm,
    kid: Option<&str>,
) -> Vec<&'k VerifyingKey> {
    keys.into_iter()
        .filter(|key| key.alg == alg)
        .filter(|key| match (kid, key.kid.as_deref()) {
            (Some(wanted), Some(have)) => wanted == have,
            _ => true,
        })
        .collect()
}

/// Seconds since the Unix epoch (zero before it).
pub(crate) fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Checks `exp` (required when `exp_required`) and `nbf` at `now_secs` with `leeway` seconds
/// of clock skew; returns `exp`, if present.
pub(crate) fn check_validity(
    payload: &Map<String, Value>,
    now_secs: u64,
    leeway: u64,
    exp_required: bool,
) -> Result<Option<u64>, Error> {
    let exp = numeric_date(payload, "exp")?;
    match exp {
        None if exp_required => return Err(Error::MissingClaim("exp")),
        Some(exp) if now_secs >= exp.saturating_add(leeway) => {
            return Err(Error::Expired {
                exp,
                now: now_secs,
                leeway,
            });
        }
        _ => {}
    }
    if let Some(nbf) = numeric_date(payload, "nbf")?
        && now_secs.saturating_add(leeway) < nbf
    {
        return Err(Error::NotYetValid {
            nbf,
            now: now_secs,
            leeway,
        });
    }
    Ok(exp)
}

fn decode_object(part: &str, b64: &str) -> Result<Map<String, Value>, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| Error::Malformed(format!("the {part} is not base64url without padding")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(Error::Malformed(format!(
            "the {part} is {}, not a JSON object",
            json_kind(&other)
        ))),
        Err(e) => Err(Error::Malformed(format!("the {part} is not JSON: {e}"))),
    }
}

/// NumericDates from here on (some 31 million years away) are refused: a
/// time so far cannot be added to the clock without overflowing, and no
/// token needs one.
const MAX_NUMERIC_DATE: u64 = 1_000_000_000_000_000;

/// A NumericDate claim (RFC 7519): a non-negative JSON number of seconds,
/// fractions truncated, below [`MAX_NUMERIC_DATE`].
pub(crate) fn numeric_date(
    payload: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<u64>, Error> {
    match payload.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64().filter(|secs| *secs < MAX_NUMERIC_DATE) {
                return Ok(Some(secs));
            }
            match n.as_f64() {
                Some(f) if (0.0..MAX_NUMERIC_DATE as f64).contains(&f) => Ok(Some(f as u64)),
                _ => Err(Error::InvalidClaim {
                    claim,
                    reason: format!(
                        "{n} is not a valid NumericDate (whole seconds from 0 to 10^15)"
                    ),
                }),
            }
        }
        Some(other) => Err(Error::InvalidClaim {
            claim,
            reason: format!("expected a number, found {}", json_kind(other)),
        }),
    }
}

/// An optional claim that must be a string when present.
pub(crate) fn optional_string(
    payload: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, Error> {
    match payload.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Error::InvalidClaim {
            claim,
            reason: format!("expected a string, found {}", json_kind(other)),
        }),
    }
}
