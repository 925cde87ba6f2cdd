//! `herald token`: runs the real binary and verifies what it prints with herald-token's Verifier
//! (and, for `--legacy`, its LegacyVerifier).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use herald_token::{
    Algorithm, Issuer, LegacyVerifier, MatchType, TopicMatcher, Verifier, VerifyingKey,
    generate_ed25519,
};

const HUB: &str = "https://hub.example.com/.well-known/mercure";
const ISS: &str = "https://example.com";
const SECRET: &str = "a development secret of at least 32 bytes";

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("token")
        .args(args)
        .output()
        .expect("the herald binary runs")
}

fn key_file(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "herald-token",
        "tests",
        "keys",
        name,
    ]
    .iter()
    .collect();
    path.to_str().unwrap().to_owned()
}

fn read_key(name: &str) -> Vec<u8> {
    std::fs::read(key_file(name)).unwrap()
}

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("herald-token-test-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The token printed by a successful run.
fn token_of(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "herald token failed: {stderr}");
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(
        stdout.ends_with('\n') && stdout.lines().count() == 1,
        "one line: {stdout:?}"
    );
    stdout.trim_end().to_owned()
}

fn verifier(key: VerifyingKey) -> Verifier {
    Verifier::builder(HUB, Algorithm::ALL)
        .issuer(Issuer::new(ISS).with_key(key))
        .build()
        .unwrap()
}

/// Asserts a failed run with `code` and a one-line message containing `needle`.
fn assert_fails(output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on failure");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line message: {stderr}"
    );
    assert!(stderr.starts_with("herald: "), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
}

#[test]
fn hs256_token_with_urlpattern_matchers() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--publish",
        "https://example.com/books/:id",
        "*",
        "--subscribe",
        "https://example.com/users/42/*",
        "--urlpattern",
        "--ttl",
        "10m",
        "--hs256-secret",
        SECRET,
    ]);
    let token = token_of(&output);
    let verified = verifier(VerifyingKey::hs256(SECRET.as_bytes()).unwrap())
        .verify(&token)
        .unwrap();
    assert_eq!(verified.algorithm, Algorithm::HS256);
    assert_eq!(
        verified.publish,
        vec![
            TopicMatcher::urlpattern("https://example.com/books/:id"),
            TopicMatcher::exact("*")
        ]
    );
    assert_eq!(
        verified.subscribe,
        vec![TopicMatcher::urlpattern("https://example.com/users/42/*")]
    );
    let left = verified.expires_in(std::time::SystemTime::now());
    assert!(
        left > Duration::from_secs(590) && left <= Duration::from_secs(600),
        "{left:?}"
    );
    assert!(verified.subject.unwrap().starts_with("urn:uuid:"));
    assert_eq!(verified.client_id.as_deref(), Some(ISS));
    assert!(verified.token_id.unwrap().starts_with("urn:uuid:"));
}

/// A URL pattern no hub can compile is refused at once, naming the flag,
/// instead of minting a token every hub refuses.
#[test]
fn an_invalid_urlpattern_is_a_usage_error_naming_the_flag() {
    for flag in ["--publish", "--subscribe"] {
        let output = herald(&[
            "--issuer",
            ISS,
            "--audience",
            HUB,
            flag,
            "https://example.com/books/:id(",
            "--urlpattern",
            "--hs256-secret",
            SECRET,
        ]);
        assert_fails(
            &output,
            2,
            &format!("`{flag}` value `https://example.com/books/:id(`"),
        );
    }
}

#[test]
fn exact_matchers_by_default_and_named_subject() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        "https://other-hub",
        "--audience",
        HUB,
        "--subject",
        "alice",
        "--client-id",
        "https://app.example.com",
        "--subscribe",
        "https://example.com/books/1",
        "https://example.com/books/7",
        "--hs256-secret",
        SECRET,
    ]);
    let verified = verifier(VerifyingKey::hs256(SECRET.as_bytes()).unwrap())
        .verify(&token_of(&output))
        .unwrap();
    assert!(
        verified
            .subscribe
            .iter()
            .all(|m| m.match_type == MatchType::Exact)
    );
    assert_eq!(verified.subscribe.len(), 2);
    assert!(verified.publish.is_empty());
    assert_eq!(verified.subject.as_deref(), Some("alice"));
    assert_eq!(
        verified.client_id.as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        verified.audience,
        vec!["https://other-hub".to_owned(), HUB.to_owned()]
    );
    let left = verified.expires_in(std::time::SystemTime::now());
    assert!(
        left > Duration::from_secs(3590) && left <= Duration::from_secs(3600),
        "default ttl is 1h: {left:?}"
    );
}

#[test]
fn es256_key_file_with_inferred_algorithm_and_kid() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--publish",
        "*",
        "--key",
        &key_file("ec-private.pem"),
        "--kid",
        "2026-01",
    ]);
    let public = VerifyingKey::from_pem(&read_key("ec-public.pem"), None)
        .unwrap()
        .with_kid("2026-01");
    let verified = verifier(public).verify(&token_of(&output)).unwrap();
    assert_eq!(verified.algorithm, Algorithm::ES256);
    assert_eq!(verified.key_id.as_deref(), Some("2026-01"));
}

#[test]
fn sec1_ec_key_file() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--publish",
        "*",
        "--key",
        &key_file("ec-sec1-private.pem"),
    ]);
    let public = VerifyingKey::from_pem(&read_key("ec-public.pem"), None).unwrap();
    assert_eq!(
        verifier(public)
            .verify(&token_of(&output))
            .unwrap()
            .algorithm,
        Algorithm::ES256
    );
}

#[test]
fn eddsa_key_generated_at_run_time() {
    let pair = generate_ed25519().unwrap();
    let dir = TempDir::new("eddsa");
    let key = dir.file("ed.pem", pair.private_pem.as_bytes());
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--subscribe",
        "*",
        "--key",
        &key,
        "--alg",
        "EdDSA",
    ]);
    let public = VerifyingKey::from_pem(pair.public_pem.as_bytes(), None).unwrap();
    let verified = verifier(public).verify(&token_of(&output)).unwrap();
    assert_eq!(verified.algorithm, Algorithm::EdDSA);
    assert_eq!(verified.subscribe, vec![TopicMatcher::exact("*")]);
}

#[test]
fn rs256_key_file_with_explicit_algorithm() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--publish",
        "https://example.com/a",
        "--key",
        &key_file("rsa-private.pem"),
        "--alg",
        "RS256",
        "--ttl",
        "90s",
    ]);
    let public = VerifyingKey::from_pem(&read_key("rsa-public.pem"), None).unwrap();
    let verified = verifier(public).verify(&token_of(&output)).unwrap();
    assert_eq!(verified.algorithm, Algorithm::RS256);
    assert!(verified.expires_in(std::time::SystemTime::now()) <= Duration::from_secs(90));
    // The other RSA key does not verify it.
    let other = VerifyingKey::from_pem(&read_key("rsa2-public.pem"), None).unwrap();
    assert!(verifier(other).verify(&token_of(&output)).is_err());
}

#[test]
fn a_missing_key_option_is_a_usage_error() {
    let output = herald(&["--issuer", ISS, "--audience", HUB, "--publish", "*"]);
    assert_fails(
        &output,
        2,
        "no signing key: pass --hs256-secret SECRET or --key PEM_FILE",
    );
}

#[test]
fn two_key_options_are_a_usage_error() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--hs256-secret",
        SECRET,
        "--key",
        &key_file("ec-private.pem"),
    ]);
    assert_fails(&output, 2, "exclusive");
}

#[test]
fn a_bad_ttl_is_a_usage_error() {
    for ttl in ["forever", "10", "0s", "-1h"] {
        // `--ttl=VALUE` so that clap takes "-1h" as a value, not as a flag.
        let ttl = format!("--ttl={ttl}");
        let output = herald(&[
            "--issuer",
            ISS,
            "--audience",
            HUB,
            &ttl,
            "--hs256-secret",
            SECRET,
        ]);
        assert_fails(&output, 2, "invalid --ttl");
    }
}

#[test]
fn a_ttl_past_the_largest_date_a_hub_accepts_is_a_usage_error() {
    // An `exp` just past 10^15, one far past it, and one beyond any u64 of seconds.
    for ttl in ["31709792years", "600000000years", "18446744073709551615s"] {
        for legacy in [false, true] {
            let ttl = format!("--ttl={ttl}");
            let mut args = vec![&ttl[..], "--hs256-secret", SECRET];
            if legacy {
                args.push("--legacy");
            } else {
                args.extend(["--issuer", ISS, "--audience", HUB]);
            }
            let output = herald(&args);
            assert_fails(&output, 2, "invalid --ttl");
            assert_fails(&output, 2, "which hubs refuse");
        }
    }
    // 30 million years still fits.
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--ttl=30000000years",
        "--hs256-secret",
        SECRET,
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn an_unreadable_key_file_is_a_runtime_error() {
    let dir = TempDir::new("missing");
    let missing = dir.0.join("nope.pem");
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--key",
        missing.to_str().unwrap(),
    ]);
    assert_fails(&output, 1, "cannot read the key file");
}

#[test]
fn a_bad_key_file_is_a_usage_error() {
    let dir = TempDir::new("bad");
    let garbage = dir.file("garbage.pem", b"this is not a key\n");
    assert_fails(
        &herald(&["--issuer", ISS, "--audience", HUB, "--key", &garbage]),
        2,
        "invalid key file",
    );
    let truncated = dir.file(
        "truncated.pem",
        b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    );
    assert_fails(
        &herald(&["--issuer", ISS, "--audience", HUB, "--key", &truncated]),
        2,
        "invalid key file",
    );
    let public = key_file("ec-public.pem");
    assert_fails(
        &herald(&["--issuer", ISS, "--audience", HUB, "--key", &public]),
        2,
        "a private key is needed",
    );
    let p384 = key_file("ec384-private.pem");
    assert_fails(
        &herald(&["--issuer", ISS, "--audience", HUB, "--key", &p384]),
        2,
        "P-256",
    );
}

/// A key file is used whole or not at all: with two keys, which one signs
/// would be a guess.
#[test]
fn a_key_file_with_two_private_keys_is_a_usage_error() {
    let dir = TempDir::new("two-keys");
    let both = [read_key("ed-private.pem"), read_key("ec-private.pem")].concat();
    let both = dir.file("both.pem", &both);
    assert_fails(
        &herald(&["--issuer", ISS, "--audience", HUB, "--key", &both]),
        2,
        &format!("invalid key file {both}: it holds 2 keys; --key needs one"),
    );
}

#[test]
fn a_key_on_another_curve_than_p256_is_a_usage_error_naming_the_curve() {
    for file in ["k1-private.pem", "k1-sec1-nopub-private.pem"] {
        let k1 = key_file(file);
        assert_fails(
            &herald(&["--issuer", ISS, "--audience", HUB, "--key", &k1]),
            2,
            &format!(
                "invalid key file {k1}: invalid key: the key is on the curve secp256k1; \
                 only P-256 elliptic-curve keys are supported (ES256)"
            ),
        );
    }
}

#[test]
fn an_encrypted_key_file_is_a_usage_error_saying_how_to_decrypt_it() {
    let encrypted = key_file("ec-encrypted-private.pem");
    assert_fails(
        &herald(&["--issuer", ISS, "--audience", HUB, "--key", &encrypted]),
        2,
        "encrypted keys are not supported: decrypt it with \
         `openssl pkcs8 -in key.pem -out plain.pem` (it asks for the passphrase)",
    );
    let legacy = key_file("ec-sec1-encrypted-private.pem");
    assert_fails(
        &herald(&["--issuer", ISS, "--audience", HUB, "--key", &legacy]),
        2,
        "`openssl pkey -in key.pem -out plain.pem`",
    );
}

/// A matcher the hub's parser refuses makes the hub refuse the whole token:
/// it is refused at once instead, naming the flag, the value and why.
#[test]
fn a_matcher_the_hub_would_refuse_is_a_usage_error() {
    let mint = |more: &[&str]| {
        let mut args = vec!["--issuer", ISS, "--audience", HUB, "--hs256-secret", SECRET];
        args.extend_from_slice(more);
        herald(&args)
    };
    assert_fails(
        &mint(&["--urlpattern", "--publish", "[bad("]),
        2,
        "`--publish` value `[bad(` is not a valid urlpattern matcher: tokenizer error",
    );
    assert_fails(
        &mint(&["--subscribe", "https://example.com/a\u{7}"]),
        2,
        "the control character U+0007",
    );
    let legacy = herald(&[
        "--legacy",
        "--hs256-secret",
        SECRET,
        "--publish",
        "https://example.com/\u{200B}",
    ]);
    assert_fails(&legacy, 2, "the format character U+200B");
}

/// Hubs accept an empty matcher, so it is minted; but a warning says it
/// grants nothing, as it most likely comes from an unset shell variable.
#[test]
fn an_empty_matcher_is_minted_with_a_warning() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--publish",
        "",
        "--hs256-secret",
        SECRET,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stderr,
        "herald: warning: --publish '' is an empty matcher: hubs accept it, but it matches \
         no topic (topics are never empty)\n"
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let verified = verifier(VerifyingKey::hs256(SECRET.as_bytes()).unwrap())
        .verify(token.trim_end())
        .unwrap();
    assert_eq!(verified.publish, vec![TopicMatcher::exact("")]);
}

#[test]
fn algorithm_mismatches_are_usage_errors() {
    let ec = key_file("ec-private.pem");
    assert_fails(
        &herald(&[
            "--issuer",
            ISS,
            "--audience",
            HUB,
            "--key",
            &ec,
            "--alg",
            "EdDSA",
        ]),
        2,
        "cannot be used with EdDSA",
    );
    assert_fails(
        &herald(&[
            "--issuer",
            ISS,
            "--audience",
            HUB,
            "--key",
            &ec,
            "--alg",
            "HS256",
        ]),
        2,
        "HS256 needs --hs256-secret",
    );
    assert_fails(
        &herald(&[
            "--issuer",
            ISS,
            "--audience",
            HUB,
            "--key",
            &ec,
            "--alg",
            "none",
        ]),
        2,
        "invalid --alg",
    );
    assert_fails(
        &herald(&[
            "--issuer",
            ISS,
            "--audience",
            HUB,
            "--hs256-secret",
            SECRET,
            "--alg",
            "RS256",
        ]),
        2,
        "--hs256-secret signs with HS256",
    );
}

#[test]
fn a_short_secret_is_a_usage_error() {
    assert_fails(
        &herald(&[
            "--issuer",
            ISS,
            "--audience",
            HUB,
            "--hs256-secret",
            "short",
        ]),
        2,
        "at least 32 bytes",
    );
}

#[test]
fn an_empty_issuer_is_a_usage_error() {
    assert_fails(
        &herald(&["--issuer", "", "--audience", HUB, "--hs256-secret", SECRET]),
        2,
        "issuer must not be empty",
    );
}

#[test]
fn missing_required_flags_exit_with_2() {
    let output = herald(&["--audience", HUB, "--hs256-secret", SECRET]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--issuer"));
    let output = herald(&["--issuer", ISS, "--hs256-secret", SECRET]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--audience"));
}

// ----- --legacy -----

fn legacy_verifier(key: VerifyingKey) -> LegacyVerifier {
    LegacyVerifier::builder(Algorithm::ALL)
        .key(key)
        .build()
        .unwrap()
}

#[test]
fn legacy_hs256_token_with_payload() {
    let output = herald(&[
        "--legacy",
        "--publish",
        "*",
        "--subscribe",
        "https://example.com/users/42",
        "https://example.com/books/{id}",
        "--payload",
        r#"{"user": 42, "groups": ["admin"]}"#,
        "--subject",
        "alice",
        "--ttl",
        "10m",
        "--hs256-secret",
        SECRET,
    ]);
    let token = token_of(&output);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let verified = legacy_verifier(VerifyingKey::hs256(SECRET.as_bytes()).unwrap())
        .verify(&token)
        .unwrap();
    assert_eq!(verified.algorithm, Algorithm::HS256);
    assert_eq!(verified.publish, ["*"]);
    assert_eq!(
        verified.subscribe,
        [
            "https://example.com/users/42",
            "https://example.com/books/{id}"
        ]
    );
    assert_eq!(
        verified.payload,
        Some(serde_json::json!({"user": 42, "groups": ["admin"]}))
    );
    assert_eq!(verified.subject.as_deref(), Some("alice"));
    let left = verified
        .expires_in(std::time::SystemTime::now())
        .expect("the CLI always sets exp");
    assert!(
        left > Duration::from_secs(590) && left <= Duration::from_secs(600),
        "{left:?}"
    );
    // A legacy token is not an access token.
    assert!(
        verifier(VerifyingKey::hs256(SECRET.as_bytes()).unwrap())
            .verify(&token)
            .is_err()
    );
}

#[test]
fn legacy_rs256_token_from_a_key_file() {
    let output = herald(&[
        "--legacy",
        "--subscribe",
        "https://example.com/books/1",
        "--key",
        &key_file("rsa-private.pem"),
        "--kid",
        "rsa-1",
    ]);
    let token = token_of(&output);
    let public = VerifyingKey::from_pem(&read_key("rsa-public.pem"), None).unwrap();
    let verified = legacy_verifier(public).verify(&token).unwrap();
    assert_eq!(verified.algorithm, Algorithm::RS256);
    assert_eq!(verified.key_id.as_deref(), Some("rsa-1"));
    assert!(verified.publish.is_empty());
    assert_eq!(verified.subscribe, ["https://example.com/books/1"]);
    assert_eq!(verified.payload, None);
    assert_eq!(verified.subject, None);
    // The other RSA key does not verify it.
    let other = VerifyingKey::from_pem(&read_key("rsa2-public.pem"), None).unwrap();
    assert!(legacy_verifier(other).verify(&token).is_err());
}

#[test]
fn legacy_refuses_access_token_options() {
    for extra in [
        &["--issuer", ISS][..],
        &["--audience", HUB],
        &["--client-id", "app"],
        &["--urlpattern"],
    ] {
        let mut args = vec!["--legacy", "--hs256-secret", SECRET];
        args.extend_from_slice(extra);
        let output = herald(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(output.stdout.is_empty());
        assert!(
            stderr.contains("cannot be used with") && stderr.contains(extra[0]),
            "{extra:?}: {stderr}"
        );
    }
}

#[test]
fn payload_needs_legacy_and_valid_json() {
    let output = herald(&[
        "--issuer",
        ISS,
        "--audience",
        HUB,
        "--payload",
        "{}",
        "--hs256-secret",
        SECRET,
    ]);
    assert_fails(
        &output,
        2,
        "--payload is only for legacy tokens: add --legacy",
    );
    assert_fails(
        &herald(&[
            "--legacy",
            "--payload",
            "{user: 42}",
            "--hs256-secret",
            SECRET,
        ]),
        2,
        "invalid --payload: not JSON",
    );
}
