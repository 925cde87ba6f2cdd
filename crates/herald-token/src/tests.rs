//! Verification rules, one test (at least) per rule and per rejection.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use crate::*;

const HUB: &str = "https://hub.example.com/.well-known/mercure";
const ISS: &str = "https://example.com";
pub(crate) const NOW: u64 = 1_767_225_300;
pub(crate) const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-hs256";

pub(crate) const RSA_PRIVATE: &str = include_str!("../tests/keys/rsa-private.pem");
pub(crate) const RSA_PUBLIC: &str = include_str!("../tests/keys/rsa-public.pem");
pub(crate) const RSA2_PRIVATE: &str = include_str!("../tests/keys/rsa2-private.pem");
pub(crate) const EC_PRIVATE: &str = include_str!("../tests/keys/ec-private.pem");
pub(crate) const EC_PUBLIC: &str = include_str!("../tests/keys/ec-public.pem");
pub(crate) const ED_PRIVATE: &str = include_str!("../tests/keys/ed-private.pem");
pub(crate) const ED_PUBLIC: &str = include_str!("../tests/keys/ed-public.pem");

pub(crate) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

pub(crate) fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A token with exactly this header and these claims, signed by jsonwebtoken with `key`.
pub(crate) fn raw_token(
    header: &Value,
    claims: &Value,
    key: &EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

fn hs_token(header: &Value, claims: &Value) -> String {
    raw_token(
        header,
        claims,
        &EncodingKey::from_secret(SECRET),
        jsonwebtoken::Algorithm::HS256,
    )
}

fn hs_header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt"})
}

fn subscribe_detail(topic: &str) -> Value {
    json!({"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": topic}]})
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "aud": HUB,
        "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        "client_id": ISS,
        "iat": NOW - 10,
        "exp": NOW + 300,
        "jti": "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
        "authorization_details": [subscribe_detail("https://example.com/books/1")]
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn all_algs() -> [Algorithm; 4] {
    Algorithm::ALL
}

fn hs_verifier() -> Verifier {
    Verifier::builder(HUB, all_algs())
        .issuer(Issuer::new(ISS).with_key(VerifyingKey::hs256(SECRET).unwrap()))
        .build()
        .unwrap()
}

fn pem_verifier(public_pem: &str) -> Verifier {
    Verifier::builder(HUB, all_algs())
        .issuer(
            Issuer::new(ISS).with_key(VerifyingKey::from_pem(public_pem.as_bytes(), None).unwrap()),
        )
        .build()
        .unwrap()
}

fn no_urlpattern() -> impl FnMut(&str, &str) -> bool {
    |_: &str, _: &str| false
}

// ----- Happy paths -----

#[test]
fn minted_tokens_verify_with_every_algorithm() {
    let cases = [
        (SigningKey::hs256(SECRET).unwrap(), hs_verifier()),
        (
            SigningKey::from_pem(EC_PRIVATE.as_bytes(), None).unwrap(),
            pem_verifier(EC_PUBLIC),
        ),
        (
            SigningKey::from_pem(ED_PRIVATE.as_bytes(), None).unwrap(),
            pem_verifier(ED_PUBLIC),
        ),
        (
            SigningKey::from_pem(RSA_PRIVATE.as_bytes(), None).unwrap(),
            pem_verifier(RSA_PUBLIC),
        ),
    ];
    for (key, verifier) in cases {
        let request = MintRequest::new(ISS, HUB)
            .with_subject("alice")
            .with_ttl(Duration::from_secs(600))
            .with_detail(AuthorizationDetail::new(
                vec![Action::Publish],
                vec![TopicMatcher::exact("https://a/1")],
            ))
            .with_detail(AuthorizationDetail::new(
                vec![Action::Subscribe, Action::Publish],
                vec![TopicMatcher::urlpattern("https://a/:id")],
            ));
        let token = mint_at(&request, &key, now()).unwrap();
        let verified = verifier.verify_at(&token, now()).unwrap();
        assert_eq!(verified.algorithm, key.algorithm());
        assert_eq!(verified.issuer, ISS);
        assert_eq!(verified.subject.as_deref(), Some("alice"));
        assert_eq!(verified.client_id.as_deref(), Some(ISS));
        assert!(
            verified
                .token_id
                .as_deref()
                .unwrap()
                .starts_with("urn:uuid:")
        );
        assert_eq!(verified.audience, vec![HUB.to_owned()]);
        assert_eq!(verified.expires_at, now() + Duration::from_secs(600));
        assert_eq!(verified.issued_at, Some(now()));
        assert_eq!(
            verified.publish,
            vec![
                TopicMatcher::exact("https://a/1"),
                TopicMatcher::urlpattern("https://a/:id")
            ]
        );
        assert_eq!(
            verified.subscribe,
            vec![TopicMatcher::urlpattern("https://a/:id")]
        );
    }
}

#[test]
fn minted_header_is_an_access_token_header() {
    let key = SigningKey::from_pem(ED_PRIVATE.as_bytes(), None)
        .unwrap()
        .with_kid("k1");
    let token = mint_at(&MintRequest::new(ISS, HUB), &key, now()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("k1"));
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        assert!(claims.get(claim).is_some(), "RFC 9068 requires {claim}");
    }
}

#[test]
fn the_spec_example_token_verifies() {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    let claims = json!({
        "iss": "https://example.com",
        "aud": "https://hub.example.com/.well-known/mercure",
        "sub": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
        "client_id": "https://example.com",
        "iat": 1767225300,
        "exp": 1767225600,
        "jti": "urn:uuid:e70ff8d7-59d5-4a92-b0b7-505e8f6d09fa",
        "authorization_details": [{
            "type": "https://mercure.rocks/authorization-detail",
            "actions": ["subscribe"],
            "topics": [{"match": "https://example.com/books/:id", "match_type": "urlpattern"}]
        }]
    });
    let token = raw_token(
        &json!({"alg": "ES256", "typ": "at+jwt"}),
        &claims,
        &key,
        jsonwebtoken::Algorithm::ES256,
    );
    let verified = pem_verifier(EC_PUBLIC).verify_at(&token, now()).unwrap();
    assert_eq!(
        verified.subscribe,
        vec![TopicMatcher::urlpattern("https://example.com/books/:id")]
    );
    assert!(verified.publish.is_empty());
}

// ----- typ -----

#[test]
fn typ_must_be_at_jwt() {
    for typ in [
        "at+jwt",
        "application/at+jwt",
        "AT+JWT",
        "Application/At+Jwt",
    ] {
        let token = hs_token(&json!({"alg": "HS256", "typ": typ}), &claims());
        assert!(
            hs_verifier().verify_at(&token, now()).is_ok(),
            "typ {typ} is an access token"
        );
    }
    for typ in [
        json!("JWT"),
        json!("application/jwt"),
        json!("at+jwt; v=1"),
        json!("x/at+jwt"),
        json!(1),
    ] {
        let token = hs_token(&json!({"alg": "HS256", "typ": typ}), &claims());
        let err = hs_verifier().verify_at(&token, now()).unwrap_err();
        assert!(
            matches!(err, Error::WrongType { typ: Some(_) }),
            "typ {typ}: {err:?}"
        );
    }
    let token = hs_token(&json!({"alg": "HS256"}), &claims());
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::WrongType { typ: None })
    ));
}

// ----- alg -----

#[test]
fn alg_none_is_never_accepted() {
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "at+jwt"})),
            b64(&claims())
        );
        let err = hs_verifier().verify_at(&token, now()).unwrap_err();
        assert!(matches!(err, Error::AlgorithmNone), "{alg}: {err:?}");
        assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));
    }
}

#[test]
fn algorithms_outside_the_allowlist_are_rejected() {
    let verifier = Verifier::builder(HUB, [Algorithm::ES256])
        .issuer(
            Issuer::new(ISS).with_key(VerifyingKey::from_pem(EC_PUBLIC.as_bytes(), None).unwrap()),
        )
        .build()
        .unwrap();
    let token = hs_token(&hs_header(), &claims());
    assert!(
        matches!(verifier.verify_at(&token, now()), Err(Error::DisallowedAlgorithm { alg }) if alg == "HS256")
    );
    // HS512 is a real JOSE algorithm, but not one herald accepts at all.
    let token = raw_token(
        &json!({"alg": "HS512", "typ": "at+jwt"}),
        &claims(),
        &EncodingKey::from_secret(SECRET),
        jsonwebtoken::Algorithm::HS512,
    );
    assert!(
        matches!(hs_verifier().verify_at(&token, now()), Err(Error::DisallowedAlgorithm { alg }) if alg == "HS512")
    );
    let token = hs_token(&json!({"alg": 256, "typ": "at+jwt"}), &claims());
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn alg_confusion_hmac_signed_with_the_rsa_public_key_fails() {
    let forged = raw_token(
        &hs_header(),
        &claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    );
    // The issuer only has an RSA key: there is no HS256 key to try.
    let err = pem_verifier(RSA_PUBLIC)
        .verify_at(&forged, now())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownKey {
                alg: Algorithm::HS256,
                ..
            }
        ),
        "{err:?}"
    );
    // Even beside a genuine HS256 secret, the RSA key is never used as an HMAC secret.
    let verifier = Verifier::builder(HUB, all_algs())
        .issuer(
            Issuer::new(ISS)
                .with_key(VerifyingKey::from_pem(RSA_PUBLIC.as_bytes(), None).unwrap())
                .with_key(VerifyingKey::hs256(SECRET).unwrap()),
        )
        .build()
        .unwrap();
    assert!(matches!(
        verifier.verify_at(&forged, now()),
        Err(Error::BadSignature {
            alg: Algorithm::HS256,
            ..
        })
    ));
}

#[test]
fn a_key_only_verifies_its_own_algorithm() {
    // An EdDSA token against an issuer with only an ES256 key.
    let key = SigningKey::from_pem(ED_PRIVATE.as_bytes(), None).unwrap();
    let token = mint_at(&MintRequest::new(ISS, HUB), &key, now()).unwrap();
    assert!(matches!(
        pem_verifier(EC_PUBLIC).verify_at(&token, now()),
        Err(Error::UnknownKey {
            alg: Algorithm::EdDSA,
            ..
        })
    ));
}

// ----- keys: header-supplied material, kid, issuer binding -----

#[test]
fn header_supplied_keys_are_never_used() {
    let attacker =
        SigningKey::from_pem(generate_ed25519().unwrap().private_pem.as_bytes(), None).unwrap();
    let attacker_jwk = serde_json::to_value(attacker.public_jwk().unwrap()).unwrap();
    let header = json!({
        "alg": "EdDSA", "typ": "at+jwt",
        "jwk": attacker_jwk,
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIB"]
    });
    let attacker_der =
        EncodingKey::from_ed_pem(generate_ed25519().unwrap().private_pem.as_bytes()).unwrap();
    let forged = raw_token(
        &header,
        &claims(),
        &attacker_der,
        jsonwebtoken::Algorithm::EdDSA,
    );
    let verifier = pem_verifier(ED_PUBLIC);
    assert!(matches!(
        verifier.verify_at(&forged, now()),
        Err(Error::BadSignature { .. })
    ));
    // The same headers on a token signed by the trusted key change nothing: they are ignored.
    let genuine = raw_token(
        &header,
        &claims(),
        &EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::EdDSA,
    );
    assert!(verifier.verify_at(&genuine, now()).is_ok());
}

#[test]
fn kid_chooses_among_trusted_keys() {
    let a = SigningKey::from_pem(EC_PRIVATE.as_bytes(), None)
        .unwrap()
        .with_kid("a");
    let b_pem = generate_ec_pem();
    let b = SigningKey::from_pem(b_pem.as_bytes(), None)
        .unwrap()
        .with_kid("b");
    let verifier = Verifier::builder(HUB, all_algs())
        .issuer(
            Issuer::new(ISS)
                .with_key(a.verifying_key().unwrap())
                .with_key(b.verifying_key().unwrap()),
        )
        .build()
        .unwrap();
    let request = MintRequest::new(ISS, HUB);
    let by_b = mint_at(&request, &b, now()).unwrap();
    assert_eq!(
        verifier.verify_at(&by_b, now()).unwrap().key_id.as_deref(),
        Some("b")
    );
    // Without a kid every key of the issuer bound to the alg is tried.
    let b_anonymous = SigningKey::from_pem(b_pem.as_bytes(), None).unwrap();
    assert!(
        verifier
            .verify_at(&mint_at(&request, &b_anonymous, now()).unwrap(), now())
            .is_ok()
    );
    // A kid naming no trusted key.
    let c = b_anonymous.clone().with_kid("c");
    let err = verifier
        .verify_at(&mint_at(&request, &c, now()).unwrap(), now())
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownKey { kid: Some(kid), .. } if kid == "c"),
        "{err:?}"
    );
    assert!(err.to_string().contains("with kid \"c\""));
    // A kid naming key a, signed by key b.
    let lying = b_anonymous.with_kid("a");
    assert!(matches!(
        verifier.verify_at(&mint_at(&request, &lying, now()).unwrap(), now()),
        Err(Error::BadSignature { .. })
    ));
}

/// A fresh P-256 key as PKCS#8 PEM.
fn generate_ec_pem() -> String {
    use p256::pkcs8::EncodePrivateKey as _;
    let mut bytes = [0u8; 32];
    loop {
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
            return key
                .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                .unwrap()
                .to_string();
        }
    }
}

#[test]
fn tokens_are_verified_only_with_their_issuers_keys() {
    let other = "https://other.example";
    let verifier = Verifier::builder(HUB, all_algs())
        .issuer(
            Issuer::new(ISS).with_key(VerifyingKey::from_pem(ED_PUBLIC.as_bytes(), None).unwrap()),
        )
        .issuer(
            Issuer::new(other)
                .with_key(VerifyingKey::from_pem(EC_PUBLIC.as_bytes(), None).unwrap()),
        )
        .build()
        .unwrap();
    let ed = SigningKey::from_pem(ED_PRIVATE.as_bytes(), None).unwrap();
    let ec = SigningKey::from_pem(EC_PRIVATE.as_bytes(), None).unwrap();
    assert!(
        verifier
            .verify_at(
                &mint_at(&MintRequest::new(ISS, HUB), &ed, now()).unwrap(),
                now()
            )
            .is_ok()
    );
    assert!(
        verifier
            .verify_at(
                &mint_at(&MintRequest::new(other, HUB), &ec, now()).unwrap(),
                now()
            )
            .is_ok()
    );
    // Signed by the other issuer's key, claiming to be ISS.
    let err = verifier
        .verify_at(
            &mint_at(&MintRequest::new(ISS, HUB), &ec, now()).unwrap(),
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnknownKey { .. }), "{err:?}");
}

#[test]
fn iss_must_name_a_trusted_issuer() {
    let token = hs_token(
        &hs_header(),
        &with(claims(), "iss", json!("https://example.com/")),
    );
    assert!(
        matches!(hs_verifier().verify_at(&token, now()), Err(Error::UnknownIssuer { issuer }) if issuer == "https://example.com/")
    );
    let token = hs_token(&hs_header(), &without(claims(), "iss"));
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::MissingClaim("iss"))
    ));
    let token = hs_token(
        &hs_header(),
        &with(claims(), "iss", json!(["https://example.com"])),
    );
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::InvalidClaim { claim: "iss", .. })
    ));
}

#[test]
fn tampered_tokens_fail_the_signature_check() {
    let token = hs_token(&hs_header(), &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let widened = with(
        claims(),
        "authorization_details",
        json!([subscribe_detail("*")]),
    );
    let tampered = format!("{}.{}.{}", parts[0], b64(&widened), parts[2]);
    assert!(matches!(
        hs_verifier().verify_at(&tampered, now()),
        Err(Error::BadSignature { .. })
    ));
    let other_secret = raw_token(
        &hs_header(),
        &claims(),
        &EncodingKey::from_secret(b"another secret that is long enough!!"),
        jsonwebtoken::Algorithm::HS256,
    );
    assert!(matches!(
        hs_verifier().verify_at(&other_secret, now()),
        Err(Error::BadSignature { .. })
    ));
    let rsa2 = SigningKey::from_pem(RSA2_PRIVATE.as_bytes(), None).unwrap();
    let token = mint_at(&MintRequest::new(ISS, HUB), &rsa2, now()).unwrap();
    assert!(matches!(
        pem_verifier(RSA_PUBLIC).verify_at(&token, now()),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn crit_headers_are_rejected() {
    let token = hs_token(
        &json!({"alg": "HS256", "typ": "at+jwt", "crit": ["exp"], "exp": 1}),
        &claims(),
    );
    assert!(
        matches!(hs_verifier().verify_at(&token, now()), Err(Error::UnsupportedCritical(names)) if names == ["exp"])
    );
}

// ----- time -----

#[test]
fn exp_is_required_and_enforced() {
    let verifier = hs_verifier(); // leeway 5 s
    let token = hs_token(&hs_header(), &without(claims(), "exp"));
    assert!(matches!(
        verifier.verify_at(&token, now()),
        Err(Error::MissingClaim("exp"))
    ));
    let token = hs_token(&hs_header(), &with(claims(), "exp", json!(NOW - 10)));
    let err = verifier.verify_at(&token, now()).unwrap_err();
    assert!(
        matches!(err, Error::Expired { exp, now: n, leeway: 5 } if exp == NOW - 10 && n == NOW),
        "{err:?}"
    );
    // Within the leeway.
    let token = hs_token(&hs_header(), &with(claims(), "exp", json!(NOW - 3)));
    assert!(verifier.verify_at(&token, now()).is_ok());
    // The same token, checked later, is expired.
    assert!(matches!(
        verifier.verify_at(&token, now() + Duration::from_secs(2)),
        Err(Error::Expired { .. })
    ));
    let token = hs_token(&hs_header(), &with(claims(), "exp", json!("tomorrow")));
    assert!(matches!(
        verifier.verify_at(&token, now()),
        Err(Error::InvalidClaim { claim: "exp", .. })
    ));
    let token = hs_token(&hs_header(), &with(claims(), "exp", json!(-1)));
    assert!(matches!(
        verifier.verify_at(&token, now()),
        Err(Error::InvalidClaim { claim: "exp", .. })
    ));
    // Too far to add to the clock: refused, where the addition used to panic.
    for claim in ["exp", "nbf", "iat"] {
        for value in [json!(u64::MAX), json!(1u64 << 63), json!(1e300)] {
            let token = hs_token(&hs_header(), &with(claims(), claim, value.clone()));
            let err = verifier.verify_at(&token, now()).unwrap_err();
            assert!(
                matches!(err, Error::InvalidClaim { claim: c, .. } if c == claim),
                "{claim} = {value}: {err:?}"
            );
        }
    }
    let token = hs_token(
        &hs_header(),
        &with(claims(), "exp", json!(999_999_999_999_999u64)),
    );
    assert!(verifier.verify_at(&token, now()).is_ok());
}

#[test]
fn exp_without_leeway_is_exclusive() {
    let verifier = Verifier::builder(HUB, [Algorithm::HS256])
        .issuer(Issuer::new(ISS).with_key(VerifyingKey::hs256(SECRET).unwrap()))
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let token = hs_token(&hs_header(), &with(claims(), "exp", json!(NOW)));
    assert!(matches!(
        verifier.verify_at(&token, now()),
        Err(Error::Expired { .. })
    ));
    assert!(
        verifier
            .verify_at(&token, now() - Duration::from_secs(1))
            .is_ok()
    );
    let fractional = hs_token(
        &hs_header(),
        &with(claims(), "exp", json!(NOW as f64 + 1.5)),
    );
    assert!(verifier.verify_at(&fractional, now()).is_ok());
}

#[test]
fn nbf_is_enforced_when_present() {
    let token = hs_token(&hs_header(), &with(claims(), "nbf", json!(NOW + 60)));
    let err = hs_verifier().verify_at(&token, now()).unwrap_err();
    assert!(
        matches!(err, Error::NotYetValid { nbf, .. } if nbf == NOW + 60),
        "{err:?}"
    );
    assert!(
        hs_verifier()
            .verify_at(&token, now() + Duration::from_secs(60))
            .is_ok()
    );
    let token = hs_token(&hs_header(), &with(claims(), "nbf", json!(NOW + 3)));
    assert!(
        hs_verifier().verify_at(&token, now()).is_ok(),
        "within the leeway"
    );
    let token = hs_token(&hs_header(), &with(claims(), "nbf", json!(null)));
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::InvalidClaim { claim: "nbf", .. })
    ));
}

#[test]
fn iat_in_the_future_is_rejected() {
    let token = hs_token(&hs_header(), &with(claims(), "iat", json!(NOW + 120)));
    assert!(
        matches!(hs_verifier().verify_at(&token, now()), Err(Error::IssuedInFuture { iat, .. }) if iat == NOW + 120)
    );
    let token = hs_token(&hs_header(), &with(claims(), "iat", json!(NOW + 4)));
    assert!(
        hs_verifier().verify_at(&token, now()).is_ok(),
        "within the leeway"
    );
}

#[test]
fn the_acceptance_window_is_exactly_where_verify_at_succeeds() {
    let verifier = hs_verifier();
    let cases = [
        claims(),
        with(claims(), "nbf", json!(NOW + 60)),
        with(claims(), "nbf", json!(NOW - 100)),
        with(claims(), "iat", json!(NOW + 30)),
        without(without(claims(), "iat"), "nbf"),
        with(claims(), "nbf", json!(2)),
    ];
    for claims in cases {
        let token = hs_token(&hs_header(), &claims);
        let nbf = claims["nbf"].as_u64().unwrap_or(0);
        let iat = claims["iat"].as_u64().unwrap_or(0);
        let valid_at = UNIX_EPOCH + Duration::from_secs(nbf.max(iat).max(NOW - 10) + 5);
        let verified = verifier.verify_at(&token, valid_at).unwrap();
        let window = verifier.acceptance_window(&verified);
        let second = Duration::from_secs(1);
        let before = window.start.checked_sub(second);
        for (at, ok) in [
            (Some(window.start), true),
            (Some(window.end - second), true),
            (Some(window.end - Duration::from_millis(1)), true),
            (Some(window.end), false),
            (before.filter(|_| window.start > UNIX_EPOCH), false),
        ] {
            let Some(at) = at else { continue };
            assert_eq!(
                verifier.verify_at(&token, at).is_ok(),
                ok,
                "{claims} at {at:?}, window {window:?}"
            );
            assert_eq!(window.contains(&at), ok);
        }
    }
}

#[test]
fn the_key_generation_starts_at_zero() {
    assert_eq!(hs_verifier().key_generation(), 0);
}

// ----- aud -----

#[test]
fn aud_must_contain_the_resource_identifier() {
    let ok = [json!(HUB), json!(["https://other", HUB])];
    for aud in ok {
        let token = hs_token(&hs_header(), &with(claims(), "aud", aud.clone()));
        assert!(hs_verifier().verify_at(&token, now()).is_ok(), "aud {aud}");
    }
    for aud in [
        json!("https://hub.example.com/.well-known/mercure/"),
        json!(["https://other"]),
        json!([]),
    ] {
        let token = hs_token(&hs_header(), &with(claims(), "aud", aud.clone()));
        assert!(
            matches!(
                hs_verifier().verify_at(&token, now()),
                Err(Error::WrongAudience { .. })
            ),
            "aud {aud}"
        );
    }
    let token = hs_token(&hs_header(), &without(claims(), "aud"));
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::MissingClaim("aud"))
    ));
    for aud in [json!([HUB, 3]), json!(7)] {
        let token = hs_token(&hs_header(), &with(claims(), "aud", aud));
        assert!(matches!(
            hs_verifier().verify_at(&token, now()),
            Err(Error::InvalidClaim { claim: "aud", .. })
        ));
    }
}

#[test]
fn optional_claims_must_be_strings() {
    for claim in ["sub", "client_id", "jti"] {
        let token = hs_token(&hs_header(), &with(claims(), claim, json!(42)));
        let err = hs_verifier().verify_at(&token, now()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidClaim { claim: c, .. } if c == claim),
            "{claim}: {err:?}"
        );
    }
    let token = hs_token(&hs_header(), &without(claims(), "sub"));
    assert_eq!(
        hs_verifier().verify_at(&token, now()).unwrap().subject,
        None
    );
}

// ----- authorization details -----

#[test]
fn one_bad_detail_invalidates_the_whole_token() {
    let details = json!([
        subscribe_detail("https://example.com/books/1"),
        {"type": MERCURE_DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "x", "match_type": "regex"}]}
    ]);
    let token = hs_token(
        &hs_header(),
        &with(claims(), "authorization_details", details),
    );
    let err = hs_verifier().verify_at(&token, now()).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidAuthorizationDetail { index: 1, field, .. } if field == "topics[0].match_type"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "authorization_details[1].topics[0].match_type: unsupported matcher type \"regex\" (supported: \"exact\", \"urlpattern\")"
    );
    assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));
}

#[test]
fn authorization_details_must_be_an_array() {
    let token = hs_token(
        &hs_header(),
        &with(
            claims(),
            "authorization_details",
            json!({"type": MERCURE_DETAIL_TYPE}),
        ),
    );
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::AuthorizationDetailsNotArray)
    ));
}

#[test]
fn other_detail_types_are_ignored_and_unknown_actions_grant_nothing() {
    let details = json!([
        {"type": "https://example.com/payment", "instructedAmount": {"currency": "EUR"}},
        {"type": MERCURE_DETAIL_TYPE, "actions": ["archive"], "topics": [{"match": "*"}]},
        {"type": MERCURE_DETAIL_TYPE, "actions": ["publish", "archive"], "topics": [{"match": "https://a/1"}]}
    ]);
    let token = hs_token(
        &hs_header(),
        &with(claims(), "authorization_details", details),
    );
    let verified = hs_verifier().verify_at(&token, now()).unwrap();
    assert_eq!(verified.details.len(), 2, "only Mercure details are kept");
    assert_eq!(verified.publish, vec![TopicMatcher::exact("https://a/1")]);
    assert!(
        verified.subscribe.is_empty(),
        "the unknown action granted nothing"
    );
}

#[test]
fn no_details_grant_nothing() {
    let token = hs_token(&hs_header(), &without(claims(), "authorization_details"));
    let verified = hs_verifier().verify_at(&token, now()).unwrap();
    assert!(!verified.may_publish(["https://example.com/books/1"], &mut no_urlpattern()));
    assert!(!verified.may_receive(["https://example.com/books/1"], &mut no_urlpattern()));
}

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_token_bytes: 4096,
        max_details: 2,
        max_topics_per_detail: 2,
        max_match_bytes: 16,
    };
    let verifier = Verifier::builder(HUB, [Algorithm::HS256])
        .issuer(Issuer::new(ISS).with_key(VerifyingKey::hs256(SECRET).unwrap()))
        .limits(limits)
        .build()
        .unwrap();
    let verify = |details: Value| {
        verifier.verify_at(
            &hs_token(
                &hs_header(),
                &with(claims(), "authorization_details", details),
            ),
            now(),
        )
    };

    let detail = subscribe_detail("https://a/1");
    assert!(verify(json!([detail, detail])).is_ok());
    let err = verify(json!([detail, {"type": "other"}, detail, detail])).unwrap_err();
    assert!(
        matches!(err, Error::LimitExceeded { limit: 2, .. }),
        "{err:?}"
    );

    let many_topics = json!({"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "a"}, {"match": "b"}, {"match": "c"}]});
    assert!(matches!(
        verify(json!([many_topics])),
        Err(Error::LimitExceeded {
            actual: 3,
            limit: 2,
            ..
        })
    ));

    let long = subscribe_detail("https://example.com/a/very/long/topic");
    let err = verify(json!([long])).unwrap_err();
    assert!(
        err.to_string()
            .contains("authorization_details[0].topics[0].match length"),
        "{err}"
    );
    assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));

    let huge = json!([{"type": "other", "blob": "x".repeat(5000)}]);
    assert!(matches!(
        verify(huge),
        Err(Error::TokenTooLong { limit: 4096, .. })
    ));
}

#[test]
fn the_matcher_validator_can_reject_a_matcher() {
    let verifier = Verifier::builder(HUB, [Algorithm::HS256])
        .issuer(Issuer::new(ISS).with_key(VerifyingKey::hs256(SECRET).unwrap()))
        .matcher_validator(|m| {
            if m.match_type == MatchType::UrlPattern && m.pattern.contains('(') {
                Err("regular expression groups are not allowed".into())
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap();
    let details = json!([
        {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [
            {"match": "*", "match_type": "urlpattern"},
            {"match": "https://a/(.*)", "match_type": "urlpattern"}
        ]}
    ]);
    let token = hs_token(
        &hs_header(),
        &with(claims(), "authorization_details", details),
    );
    let err = verifier.verify_at(&token, now()).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidAuthorizationDetail { index: 0, field, .. } if field == "topics[1].match"),
        "{err:?}"
    );
}

// ----- malformed tokens -----

#[test]
fn malformed_tokens_are_invalid_requests() {
    let good = hs_token(&hs_header(), &claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        "".to_owned(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("not json"),
            parts[1],
            parts[2]
        ),
        format!("{}.{}.{}", parts[0], b64(&json!([1, 2])), parts[2]),
        format!("{}.{}.{}*", parts[0], parts[1], parts[2]),
    ];
    for token in cases {
        let err = hs_verifier().verify_at(&token, now()).unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{token:?}: {err:?}");
        let oauth = err.oauth_error().unwrap();
        assert_eq!((oauth.status(), oauth.code()), (400, "invalid_request"));
    }
}

#[test]
fn oauth_error_classes() {
    let expired = Error::Expired {
        exp: 1,
        now: 2,
        leeway: 0,
    };
    let class = expired.oauth_error().unwrap();
    assert_eq!((class.status(), class.code()), (401, "invalid_token"));
    assert_eq!(Error::Config("x".into()).oauth_error(), None);
    assert_eq!(Error::InvalidKey("x".into()).oauth_error(), None);
}

// ----- authorization decisions -----

#[test]
fn publish_needs_every_topic_and_receive_needs_one() {
    let details = json!([
        {"type": MERCURE_DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "https://example.com/books/1"}]},
        {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/users/42/*", "match_type": "urlpattern"}]}
    ]);
    let token = hs_token(
        &hs_header(),
        &with(claims(), "authorization_details", details),
    );
    let verified = hs_verifier().verify_at(&token, now()).unwrap();
    // A stand-in for URL Pattern evaluation: "<prefix>*" matches topics starting with prefix.
    let mut prefix = |pattern: &str, topic: &str| {
        pattern
            .strip_suffix('*')
            .is_some_and(|p| topic.starts_with(p))
    };

    assert!(verified.may_publish(["https://example.com/books/1"], &mut prefix));
    assert!(!verified.may_publish(
        ["https://example.com/books/1", "https://example.com/books/2"],
        &mut prefix
    ));
    assert!(!verified.may_publish([], &mut prefix));

    assert!(!verified.may_receive(["https://example.com/books/1"], &mut prefix));
    assert!(verified.may_receive(
        [
            "https://example.com/books/1",
            "https://example.com/users/42/books/1"
        ],
        &mut prefix
    ));
    assert!(verified.grants(
        Action::Subscribe,
        "https://example.com/users/42/x",
        &mut prefix
    ));
    assert!(!verified.grants(
        Action::Publish,
        "https://example.com/users/42/x",
        &mut prefix
    ));
}

#[test]
fn payload_of_the_first_matching_subscribe_detail() {
    // The spec's "Payloads" example.
    let details = json!([
        {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/foo"}],
         "payload": {"custom1": "data only available for this topic"}},
        {"type": MERCURE_DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}], "payload": {"never": "used"}},
        {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://example.com/bar/:id", "match_type": "urlpattern"}],
         "payload": {"custom2": "data available for matching subscriptions"}},
        {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}],
         "payload": {"custom3": "default data for all other subscriptions"}}
    ]);
    let token = hs_token(
        &hs_header(),
        &with(claims(), "authorization_details", details),
    );
    let verified = hs_verifier().verify_at(&token, now()).unwrap();
    // The urlpattern detail matches the subscription whose matcher string is that same pattern.
    let mut same_pattern = |pattern: &str, subject: &str| pattern == subject;
    let payload = |m: &str, eval: &mut dyn FnMut(&str, &str) -> bool| {
        verified.subscription_payload(m, eval).cloned()
    };
    assert_eq!(
        payload("https://example.com/foo", &mut same_pattern),
        Some(json!({"custom1": "data only available for this topic"}))
    );
    assert_eq!(
        payload("https://example.com/bar/:id", &mut same_pattern),
        Some(json!({"custom2": "data available for matching subscriptions"}))
    );
    assert_eq!(
        payload("https://example.com/other", &mut same_pattern),
        Some(json!({"custom3": "default data for all other subscriptions"}))
    );
}

#[test]
fn the_first_matching_detail_wins_even_without_payload() {
    let details = json!([
        subscribe_detail("*"),
        {"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "https://a/1"}], "payload": {"masked": true}}
    ]);
    let token = hs_token(
        &hs_header(),
        &with(claims(), "authorization_details", details),
    );
    let verified = hs_verifier().verify_at(&token, now()).unwrap();
    assert_eq!(
        verified.subscription_payload("https://a/1", &mut no_urlpattern()),
        None
    );
}

#[test]
fn expires_in_counts_down_to_exp() {
    let verified = hs_verifier()
        .verify_at(&hs_token(&hs_header(), &claims()), now())
        .unwrap();
    assert_eq!(verified.expires_in(now()), Duration::from_secs(300));
    assert_eq!(
        verified.expires_in(now() + Duration::from_secs(400)),
        Duration::ZERO
    );
}

// ----- configuration -----

#[test]
fn inconsistent_configurations_are_refused() {
    let hs = || VerifyingKey::hs256(SECRET).unwrap();
    let err = Verifier::builder(HUB, [])
        .issuer(Issuer::new(ISS).with_key(hs()))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("allowlist must not be empty"),
        "{err}"
    );
    let err = Verifier::builder(HUB, [Algorithm::ES256])
        .issuer(Issuer::new(ISS).with_key(hs()))
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("HS256 is not on the algorithm allowlist"),
        "{err}"
    );
    let err = Verifier::builder(HUB, all_algs())
        .issuer(Issuer::new(ISS).with_key(hs()))
        .issuer(Issuer::new(ISS).with_key(hs()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("configured twice"), "{err}");
    let err = Verifier::builder(HUB, all_algs())
        .issuer(Issuer::new(ISS))
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("no key and no JWK Set URL"),
        "{err}"
    );
    let err = Verifier::builder("", all_algs())
        .issuer(Issuer::new(ISS).with_key(hs()))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert!(Verifier::builder(HUB, all_algs()).build().is_err());
}
