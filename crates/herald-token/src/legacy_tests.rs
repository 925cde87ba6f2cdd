//! Legacy (pre-draft-08) verification rules, one test (at least) per rule and per rejection.

use std::time::Duration;

use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use crate::tests::{
    EC_PRIVATE, NOW, RSA_PRIVATE, RSA_PUBLIC, RSA2_PRIVATE, SECRET, b64, now, raw_token,
};
use crate::*;

const RSA2_PUBLIC: &str = include_str!("../tests/keys/rsa2-public.pem");

fn hs_token(header: &Value, claims: &Value) -> String {
    raw_token(
        header,
        claims,
        &EncodingKey::from_secret(SECRET),
        jsonwebtoken::Algorithm::HS256,
    )
}

fn rs_token(header: &Value, claims: &Value, private_pem: &str) -> String {
    raw_token(
        header,
        claims,
        &EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::RS256,
    )
}

fn hs_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT"})
}

fn claims() -> Value {
    json!({
        "mercure": {
            "publish": ["*"],
            "subscribe": ["https://example.com/users/42", "https://example.com/books/{id}"],
            "payload": {"user": 42}
        },
        "exp": NOW + 300
    })
}

fn hs_verifier() -> LegacyVerifier {
    LegacyVerifier::builder(Algorithm::ALL)
        .key(VerifyingKey::hs256(SECRET).unwrap())
        .build()
        .unwrap()
}

fn rs_verifier() -> LegacyVerifier {
    LegacyVerifier::builder(Algorithm::ALL)
        .key(VerifyingKey::from_pem(RSA_PUBLIC.as_bytes(), None).unwrap())
        .build()
        .unwrap()
}

/// Verifies an HS256 token with exactly these claims (header `{"alg": "HS256", "typ": "JWT"}`).
fn verify_claims(claims: &Value) -> Result<LegacyToken, Error> {
    hs_verifier().verify_at(&hs_token(&hs_header(), claims), now())
}

// ----- Happy paths -----

#[test]
fn minted_hs256_and_rs256_tokens_verify() {
    let cases = [
        (SigningKey::hs256(SECRET).unwrap(), hs_verifier()),
        (
            SigningKey::from_pem(RSA_PRIVATE.as_bytes(), None)
                .unwrap()
                .with_kid("rsa-1"),
            rs_verifier(),
        ),
    ];
    for (key, verifier) in cases {
        let request = LegacyMintRequest::new()
            .with_publish("https://example.com/books/{id}")
            .with_subscribe("https://example.com/users/42")
            .with_subscribe("*")
            .with_payload(json!({"user": 42, "groups": ["a", "b"]}))
            .with_subject("alice")
            .with_ttl(Duration::from_secs(600));
        let token = mint_legacy_at(&request, &key, now()).unwrap();
        let verified = verifier.verify_at(&token, now()).unwrap();
        assert_eq!(
            verified,
            LegacyToken {
                publish: vec!["https://example.com/books/{id}".into()],
                subscribe: vec!["https://example.com/users/42".into(), "*".into()],
                payload: Some(json!({"user": 42, "groups": ["a", "b"]})),
                subject: Some("alice".into()),
                expires_at: Some(now() + Duration::from_secs(600)),
                algorithm: key.algorithm(),
                key_id: key.kid().map(str::to_owned),
            }
        );
        assert_eq!(
            verified.expires_in(now() + Duration::from_secs(100)),
            Some(Duration::from_secs(500))
        );
        assert_eq!(
            verified.expires_in(now() + Duration::from_secs(900)),
            Some(Duration::ZERO)
        );
    }
}

#[test]
fn minted_legacy_tokens_are_plain_jwts() {
    let key = SigningKey::hs256(SECRET).unwrap();
    let token = mint_legacy_at(&LegacyMintRequest::new().with_publish("*"), &key, now()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.kid, None);
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    assert_eq!(
        claims,
        json!({"mercure": {"publish": ["*"], "subscribe": []}})
    );
    let err = mint_legacy_at(
        &LegacyMintRequest::new().with_ttl(Duration::ZERO),
        &key,
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Mint(_)), "{err:?}");
}

#[test]
fn the_spec_example_claims_verify() {
    let verified = verify_claims(&claims()).unwrap();
    assert_eq!(verified.publish, ["*"]);
    assert_eq!(
        verified.subscribe,
        [
            "https://example.com/users/42",
            "https://example.com/books/{id}"
        ]
    );
    assert_eq!(verified.payload, Some(json!({"user": 42})));
    assert_eq!(verified.subject, None);
    assert_eq!(verified.algorithm, Algorithm::HS256);
}

#[test]
fn any_typ_or_none_is_accepted() {
    for header in [
        json!({"alg": "HS256"}),
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"alg": "HS256", "typ": "at+jwt"}),
        json!({"alg": "HS256", "typ": "application/at+jwt"}),
    ] {
        let token = hs_token(&header, &claims());
        assert!(
            hs_verifier().verify_at(&token, now()).is_ok(),
            "header {header}"
        );
    }
}

#[test]
fn iss_aud_and_iat_are_not_looked_at() {
    let claims = json!({
        "iss": 42, "aud": ["https://elsewhere"], "iat": NOW + 3600,
        "mercure": {"subscribe": ["*"]}
    });
    assert_eq!(verify_claims(&claims).unwrap().subscribe, ["*"]);
}

#[test]
fn no_mercure_claim_grants_nothing() {
    let verified = verify_claims(&json!({"sub": "bob"})).unwrap();
    assert!(verified.publish.is_empty() && verified.subscribe.is_empty());
    assert_eq!(verified.payload, None);
    assert_eq!(verified.subject.as_deref(), Some("bob"));
    let verified = verify_claims(&json!({"mercure": {}})).unwrap();
    assert!(verified.publish.is_empty() && verified.subscribe.is_empty());
}

#[test]
fn the_payload_is_preserved_as_it_is() {
    for payload in [
        json!({"user": {"id": 42, "roles": ["admin"]}, "ip": "192.0.2.1"}),
        json!([1, "two", 3.5]),
        json!("a string"),
        json!(null),
    ] {
        let claims = json!({"mercure": {"subscribe": ["*"], "payload": payload}});
        assert_eq!(verify_claims(&claims).unwrap().payload, Some(payload));
    }
}

// ----- alg, crit, keys -----

#[test]
fn alg_none_is_never_accepted() {
    for alg in ["none", "None", "NONE"] {
        let token = format!("{}.{}.", b64(&json!({"alg": alg})), b64(&claims()));
        let err = hs_verifier().verify_at(&token, now()).unwrap_err();
        assert!(matches!(err, Error::AlgorithmNone), "{alg}: {err:?}");
        assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));
    }
}

#[test]
fn algorithms_outside_the_allowlist_are_rejected() {
    let verifier = LegacyVerifier::builder([Algorithm::HS256])
        .key(VerifyingKey::hs256(SECRET).unwrap())
        .build()
        .unwrap();
    let token = rs_token(&json!({"alg": "RS256"}), &claims(), RSA_PRIVATE);
    let err = verifier.verify_at(&token, now()).unwrap_err();
    assert!(
        matches!(&err, Error::DisallowedAlgorithm { alg } if alg == "RS256"),
        "{err:?}"
    );
    let token = raw_token(
        &json!({"alg": "HS512"}),
        &claims(),
        &EncodingKey::from_secret(SECRET),
        jsonwebtoken::Algorithm::HS512,
    );
    assert!(matches!(
        verifier.verify_at(&token, now()),
        Err(Error::DisallowedAlgorithm { alg }) if alg == "HS512"
    ));
}

#[test]
fn crit_headers_are_rejected() {
    let token = hs_token(
        &json!({"alg": "HS256", "crit": ["exp"], "exp": 1}),
        &claims(),
    );
    assert!(matches!(
        hs_verifier().verify_at(&token, now()),
        Err(Error::UnsupportedCritical(names)) if names == ["exp"]
    ));
}

#[test]
fn a_wrong_key_is_refused() {
    let other_secret = raw_token(
        &hs_header(),
        &claims(),
        &EncodingKey::from_secret(b"another secret, also 32 bytes long!!"),
        jsonwebtoken::Algorithm::HS256,
    );
    let err = hs_verifier().verify_at(&other_secret, now()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LegacyBadSignature {
                alg: Algorithm::HS256
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reason(), "bad_signature");
    assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));

    let other_rsa = rs_token(&json!({"alg": "RS256"}), &claims(), RSA2_PRIVATE);
    assert!(matches!(
        rs_verifier().verify_at(&other_rsa, now()),
        Err(Error::LegacyBadSignature {
            alg: Algorithm::RS256
        })
    ));
    // Both keys configured: either verifies.
    let both = LegacyVerifier::builder([Algorithm::RS256])
        .keys([
            VerifyingKey::from_pem(RSA_PUBLIC.as_bytes(), None).unwrap(),
            VerifyingKey::from_pem(RSA2_PUBLIC.as_bytes(), None).unwrap(),
        ])
        .build()
        .unwrap();
    assert!(both.verify_at(&other_rsa, now()).is_ok());

    // An allowed algorithm with no key bound to it.
    let es = raw_token(
        &json!({"alg": "ES256", "kid": "k"}),
        &claims(),
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        jsonwebtoken::Algorithm::ES256,
    );
    let err = hs_verifier().verify_at(&es, now()).unwrap_err();
    assert!(
        matches!(&err, Error::LegacyUnknownKey { alg: Algorithm::ES256, kid: Some(k) } if k == "k"),
        "{err:?}"
    );
    assert_eq!(err.reason(), "unknown_key");
}

#[test]
fn alg_confusion_hmac_signed_with_the_rsa_public_key_fails() {
    let forged = raw_token(
        &hs_header(),
        &claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    );
    assert!(matches!(
        rs_verifier().verify_at(&forged, now()),
        Err(Error::LegacyUnknownKey {
            alg: Algorithm::HS256,
            ..
        })
    ));
}

#[test]
fn header_supplied_keys_are_never_used() {
    let attacker = SigningKey::from_pem(RSA2_PRIVATE.as_bytes(), None).unwrap();
    let attacker_jwk = serde_json::to_value(attacker.public_jwk().unwrap()).unwrap();
    let header = json!({
        "alg": "RS256",
        "jwk": attacker_jwk,
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
    });
    let forged = rs_token(&header, &claims(), RSA2_PRIVATE);
    assert!(matches!(
        rs_verifier().verify_at(&forged, now()),
        Err(Error::LegacyBadSignature { .. })
    ));
}

#[test]
fn kid_narrows_the_keys_when_both_name_one() {
    let verifier = LegacyVerifier::builder([Algorithm::RS256])
        .key(
            VerifyingKey::from_pem(RSA_PUBLIC.as_bytes(), None)
                .unwrap()
                .with_kid("one"),
        )
        .build()
        .unwrap();
    let token = rs_token(
        &json!({"alg": "RS256", "kid": "one"}),
        &claims(),
        RSA_PRIVATE,
    );
    assert_eq!(
        verifier.verify_at(&token, now()).unwrap().key_id.as_deref(),
        Some("one")
    );
    let token = rs_token(&json!({"alg": "RS256"}), &claims(), RSA_PRIVATE);
    assert!(verifier.verify_at(&token, now()).is_ok());
    let token = rs_token(
        &json!({"alg": "RS256", "kid": "two"}),
        &claims(),
        RSA_PRIVATE,
    );
    assert!(matches!(
        verifier.verify_at(&token, now()),
        Err(Error::LegacyUnknownKey { .. })
    ));
}

// ----- time -----

#[test]
fn exp_is_optional_but_enforced_when_present() {
    let no_exp = json!({"mercure": {"subscribe": ["*"]}});
    let verified = verify_claims(&no_exp).unwrap();
    assert_eq!(verified.expires_at, None);
    assert_eq!(verified.expires_in(now()), None);

    let expired = json!({"mercure": {"subscribe": ["*"]}, "exp": NOW - 10});
    let err = verify_claims(&expired).unwrap_err();
    assert!(
        matches!(err, Error::Expired { exp, leeway: 5, .. } if exp == NOW - 10),
        "{err:?}"
    );
    assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));
    // Within the leeway.
    assert!(verify_claims(&json!({"exp": NOW - 3})).is_ok());

    for exp in [
        json!("tomorrow"),
        json!(null),
        json!(-1),
        json!(u64::MAX),
        json!(1u64 << 63),
    ] {
        assert!(
            matches!(
                verify_claims(&json!({"exp": exp})),
                Err(Error::InvalidClaim { claim: "exp", .. })
            ),
            "exp {exp}"
        );
    }
}

#[test]
fn the_leeway_is_configurable() {
    let verifier = LegacyVerifier::builder([Algorithm::HS256])
        .key(VerifyingKey::hs256(SECRET).unwrap())
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let token = hs_token(&hs_header(), &json!({"exp": NOW}));
    assert!(matches!(
        verifier.verify_at(&token, now()),
        Err(Error::Expired { leeway: 0, .. })
    ));
    assert!(
        verifier
            .verify_at(&token, now() - Duration::from_secs(1))
            .is_ok()
    );
}

#[test]
fn nbf_in_the_future_is_refused() {
    let err = verify_claims(&json!({"nbf": NOW + 60})).unwrap_err();
    assert!(
        matches!(err, Error::NotYetValid { nbf, .. } if nbf == NOW + 60),
        "{err:?}"
    );
    assert!(verify_claims(&json!({"nbf": NOW + 3})).is_ok(), "leeway");
    assert!(verify_claims(&json!({"nbf": NOW - 60})).is_ok());
    assert!(matches!(
        verify_claims(&json!({"nbf": "soon"})),
        Err(Error::InvalidClaim { claim: "nbf", .. })
    ));
}

// ----- the mercure claim -----

#[test]
fn the_namespaced_claim_is_used_only_when_mercure_is_absent() {
    let namespaced = json!({"https://mercure.rocks/": {"publish": ["https://a/1"], "payload": 7}});
    let verified = verify_claims(&namespaced).unwrap();
    assert_eq!(verified.publish, ["https://a/1"]);
    assert_eq!(verified.payload, Some(json!(7)));

    let both = json!({
        "mercure": {"subscribe": ["https://b/1"]},
        "https://mercure.rocks/": {"publish": ["*"], "subscribe": ["*"]}
    });
    let verified = verify_claims(&both).unwrap();
    assert!(verified.publish.is_empty());
    assert_eq!(verified.subscribe, ["https://b/1"]);

    // A malformed namespaced claim is not looked at when `mercure` is present...
    let shadowed = json!({"mercure": {}, "https://mercure.rocks/": "junk"});
    assert!(verify_claims(&shadowed).is_ok());
    // ... and is refused, under its own name, when it is used.
    let err = verify_claims(&json!({"https://mercure.rocks/": {"publish": "*"}})).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidMercureClaim { path, .. } if path == "https://mercure.rocks/.publish"),
        "{err:?}"
    );
}

#[test]
fn null_claims_are_absent_as_the_reference_hub_reads_them() {
    // What serializers that write every field (PHP's json_encode) send.
    let token = verify_claims(&json!({"mercure": {"publish": ["*"], "subscribe": null}})).unwrap();
    assert_eq!(
        (token.publish, token.subscribe),
        (vec!["*".to_owned()], vec![])
    );
    let token = verify_claims(&json!({"mercure": {"publish": null, "subscribe": ["*"]}})).unwrap();
    assert_eq!(
        (token.publish, token.subscribe),
        (vec![], vec!["*".to_owned()])
    );
    let token = verify_claims(&json!({"mercure": null})).unwrap();
    assert!(token.publish.is_empty() && token.subscribe.is_empty());
}

#[test]
fn malformed_claim_shapes_are_refused_naming_the_field() {
    let cases = [
        (
            json!({"mercure": "publish everything"}),
            "mercure is not an object (found a string)",
        ),
        (
            json!({"mercure": {"publish": {"0": "*"}}}),
            "mercure.publish is not an array of topic selectors (found an object)",
        ),
        (
            json!({"mercure": {"publish": "*"}}),
            "mercure.publish is not an array of topic selectors (found a string)",
        ),
        (
            json!({"mercure": {"subscribe": ["https://a/1", "https://a/2", 3]}}),
            "mercure.subscribe[2] is not a string (found a number)",
        ),
        (
            json!({"mercure": {"publish": ["*"], "subscribe": [["nested"]]}}),
            "mercure.subscribe[0] is not a string (found an array)",
        ),
    ];
    for (claims, message) in cases {
        let err = verify_claims(&claims).unwrap_err();
        assert!(
            matches!(err, Error::InvalidMercureClaim { .. }),
            "{claims}: {err:?}"
        );
        assert_eq!(err.to_string(), message);
        assert_eq!(err.reason(), "invalid_mercure_claim");
        assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));
    }
}

#[test]
fn sub_must_be_a_string() {
    assert!(matches!(
        verify_claims(&json!({"sub": 42})),
        Err(Error::InvalidClaim { claim: "sub", .. })
    ));
}

// ----- limits and malformed tokens -----

#[test]
fn limits_are_enforced() {
    let limits = Limits {
        max_token_bytes: 1024,
        max_details: 1,
        max_topics_per_detail: 2,
        max_match_bytes: 16,
    };
    let verifier = LegacyVerifier::builder([Algorithm::HS256])
        .key(VerifyingKey::hs256(SECRET).unwrap())
        .limits(limits)
        .build()
        .unwrap();
    let verify = |claims: Value| verifier.verify_at(&hs_token(&hs_header(), &claims), now());

    assert!(verify(json!({"mercure": {"publish": ["a", "b"], "subscribe": ["c", "d"]}})).is_ok());
    let err = verify(json!({"mercure": {"subscribe": ["a", "b", "c"]}})).unwrap_err();
    assert!(
        matches!(&err, Error::MercureLimitExceeded { what, actual: 3, limit: 2 } if what == "mercure.subscribe length"),
        "{err:?}"
    );
    assert_eq!(err.reason(), "invalid_mercure_claim");
    assert_eq!(err.oauth_error(), Some(OAuthError::InvalidToken));

    let err = verify(json!({"mercure": {"publish": ["*", "https://example.com/a/long/one"]}}))
        .unwrap_err();
    assert!(
        matches!(&err, Error::MercureLimitExceeded { what, limit: 16, .. } if what == "mercure.publish[1] length in bytes"),
        "{err:?}"
    );

    let err = verify(json!({"mercure": {"payload": "x".repeat(2000)}})).unwrap_err();
    assert!(
        matches!(err, Error::TokenTooLong { limit: 1024, .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "too_long");
}

#[test]
fn malformed_tokens_are_invalid_requests() {
    let good = hs_token(&hs_header(), &claims());
    let parts: Vec<&str> = good.split('.').collect();
    for token in [
        String::new(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{good}.extra"),
        format!("{}.{}.{}", parts[0], b64(&json!("claims")), parts[2]),
        format!("{}.{}.{}*", parts[0], parts[1], parts[2]),
    ] {
        let err = hs_verifier().verify_at(&token, now()).unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{token:?}: {err:?}");
        assert_eq!(err.oauth_error(), Some(OAuthError::InvalidRequest));
    }
}

// ----- configuration -----

#[test]
fn inconsistent_configurations_are_refused() {
    let hs = || VerifyingKey::hs256(SECRET).unwrap();
    let builders = [
        LegacyVerifier::builder([]).key(hs()),
        LegacyVerifier::builder([Algorithm::HS256]),
        LegacyVerifier::builder([Algorithm::RS256]).key(hs()),
    ];
    for builder in builders {
        let err = builder.build().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert_eq!(err.oauth_error(), None);
    }
}
