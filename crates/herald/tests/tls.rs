//! `--tls-cert`/`--tls-key` (and `HERALD_TLS_*`): checked by `config check`,
//! and a certificate `herald serve` cannot use is a usage error naming the file.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

fn herald(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.args(args);
    for key in [
        "HERALD_CONFIG",
        "HERALD_LISTEN",
        "HERALD_HUB_URL",
        "HERALD_CORS_ORIGINS",
        "HERALD_DATA_DIR",
        "HERALD_LOG_KIND",
        "HERALD_TLS_CERT",
        "HERALD_TLS_KEY",
    ] {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs to the end (at most 20 s): exit code, stdout, stderr.
async fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(20), herald(args, env).output())
        .await
        .expect("herald exits within 20 s")
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn leaf() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn serve_with_a_garbage_certificate_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "garbage").unwrap();
    let (_, key_pem) = leaf();
    std::fs::write(&key, key_pem).unwrap();
    let cert = cert.to_str().unwrap();
    let key = key.to_str().unwrap();

    let (code, _, stderr) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-kind",
            "memory",
            "--tls-cert",
            cert,
        ],
        &[("HERALD_TLS_KEY", key)],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(cert), "{stderr}");
    assert!(stderr.contains("no certificate found"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Only one of the two files: the missing key is named.
    let (code, _, stderr) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-kind",
            "memory",
            "--tls-cert",
            cert,
        ],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("tls.key_file"), "{stderr}");
}

#[tokio::test]
async fn config_check_shows_the_tls_files_with_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let (cert_pem, key_pem) = leaf();
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let cert = cert.to_str().unwrap();
    let key = key.to_str().unwrap();

    let (code, stdout, stderr) = run(
        &[
            "config",
            "check",
            "--log-kind",
            "memory",
            "--tls-cert",
            cert,
        ],
        &[("HERALD_TLS_KEY", key)],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("tls.cert_file = \"{cert}\"  # flag --tls-cert")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("tls.key_file = \"{key}\"  # env HERALD_TLS_KEY")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tls.reload_interval = \"10s\"  # default"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hub_url = \"https://127.0.0.1:3000/.well-known/mercure\""),
        "{stdout}"
    );

    // The key of another certificate is refused, naming the key file.
    let (_, other_key) = leaf();
    std::fs::write(dir.path().join("other.pem"), other_key).unwrap();
    let other = dir.path().join("other.pem");
    let other = other.to_str().unwrap();
    let (code, _, stderr) = check_tls(cert, other).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(other), "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
}

/// `config check` of these TLS files: exit code, stdout, stderr.
async fn check_tls(cert: &str, key: &str) -> (i32, String, String) {
    let args = [
        "config",
        "check",
        "--log-kind",
        "memory",
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    run(&args, &[]).await
}

/// Files that are not what they should be are said in words, naming the
/// file: a certificate cut short (the parser's own message lists the bytes
/// of the missing marker), an encrypted key.
#[tokio::test]
async fn a_truncated_certificate_or_an_encrypted_key_is_said_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = leaf();
    let cut = dir.path().join("cut.pem");
    std::fs::write(&cut, &cert_pem[..cert_pem.len() / 2]).unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, key_pem).unwrap();
    let (cut, key) = (cut.to_str().unwrap(), key.to_str().unwrap());
    let (code, _, stderr) = check_tls(cut, key).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(cut), "{stderr}");
    assert!(
        stderr.contains(
            "missing the end marker of \"CERTIFICATE\" (\"-----END CERTIFICATE-----\"): \
             is the file truncated?"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("[67, 69"), "{stderr}");

    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, cert_pem).unwrap();
    let encrypted = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../herald-token/tests/keys/ec-encrypted-private.pem"
    );
    let (code, _, stderr) = check_tls(cert.to_str().unwrap(), encrypted).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(encrypted), "{stderr}");
    assert!(
        stderr.contains("the private key is encrypted, which is not supported"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`openssl pkey -in key.pem -out plain.pem`"),
        "{stderr}"
    );
}
