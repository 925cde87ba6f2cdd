//! `herald config check`: validation with precise errors, and the effective
//! configuration printed with the source of each value.

use std::process::Command;

use herald_server::Config;

fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.args(["config", "check"]).args(args);
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
    let output = command.output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{stdout}"))
}

#[test]
fn a_good_file_prints_every_value_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:4000\"\n[subscribers]\nheartbeat = \"5s\"\n\n[[auth.issuers]]\nid = \"https://app.example\"\nhs256_secrets = [\"a-secret-of-at-least-thirty-two-bytes!!\"]\n\
         [[auth.issuers]]\nid = \"idp\"\njwks_url = \"https://user:pass-secret@idp.example/jwks?api_key=key-secret\"\n\
         [compatibility]\nenabled = true\npublisher_hs256_secrets = [\"legacy-secret-of-at-least-thirty-two-bytes\"]\n\
         subscriber_hs256_secrets = [\"legacy-secret-of-at-least-thirty-two-bytes\"]\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, stdout, stderr) = check(
        &[path, "--log-kind", "memory"],
        &[("HERALD_DATA_DIR", "/var/lib/herald")],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        line(&stdout, "listen"),
        format!("listen = \"127.0.0.1:4000\"  # file {path}")
    );
    assert_eq!(
        line(&stdout, "subscribers.heartbeat"),
        format!("subscribers.heartbeat = \"5s\"  # file {path}")
    );
    assert_eq!(
        line(&stdout, "limits.max_topics"),
        "limits.max_topics = 64  # default"
    );
    assert_eq!(
        line(&stdout, "log.dir"),
        "log.dir = \"/var/lib/herald\"  # env HERALD_DATA_DIR"
    );
    assert_eq!(
        line(&stdout, "log.kind"),
        "log.kind = \"memory\"  # flag --log-kind"
    );
    for secret in ["secret-of", "pass-secret", "key-secret"] {
        assert!(
            !stdout.contains(secret),
            "secrets are never printed:\n{stdout}"
        );
    }
    assert!(line(&stdout, "auth.issuers").contains("<redacted>"));
    assert!(line(&stdout, "auth.issuers").contains("https://redacted@idp.example/jwks?redacted"));
    assert!(line(&stdout, "compatibility.publisher_hs256_secrets").contains("<redacted>"));
    // Keys without a value are named too, with what leaving them unset means.
    for unset in [
        "# admin.listen: unset, the admin listener is off",
        "# tls.cert_file: unset, TLS is off",
        "# tls.key_file: unset, TLS is off",
    ] {
        assert!(stdout.lines().any(|l| l == unset), "{unset}:\n{stdout}");
    }
    std::fs::write(&file, "[admin]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
    let (code, stdout, stderr) = check(&[path], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        line(&stdout, "admin.listen"),
        format!("admin.listen = \"127.0.0.1:9464\"  # file {path}")
    );
    assert!(!stdout.contains("# admin.listen: unset"), "{stdout}");
}

#[test]
fn the_printed_configuration_is_itself_a_valid_file_with_the_same_values() {
    let (code, stdout, stderr) = check(
        &[
            "--listen",
            "127.0.0.1:4100",
            "--cors-origin",
            "https://app.example",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let toml: String = stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{}\n", l.split("  # ").next().unwrap()))
        .collect();
    let reparsed = Config::from_toml(&toml).unwrap();
    assert_eq!(reparsed.listen.to_string(), "127.0.0.1:4100");
    assert_eq!(reparsed.cors.origins, ["https://app.example"]);
    assert_eq!(reparsed.subscribers, Config::default().subscribers);
}

#[test]
fn an_unknown_key_is_an_error_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:1\"\n\n[subscribers]\nheartbeet = \"5s\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&[file.to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "herald: {}: line 4, at `heartbeet`: unknown field `heartbeet`",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn bad_values_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("[subscribers]\nheartbeat = \"soon\"\n", "line 2"),
        (
            "[log]\nkind = \"sqlite\"\n",
            "`log.kind`: unknown log kind `sqlite`",
        ),
        (
            "[log]\ndurability = \"maybe\"\n",
            "`log.durability`: unknown durability `maybe`",
        ),
        ("[cors]\norigins = [\"*\"]\n", "`cors.origins`"),
        (
            "[cors]\norigins = [\"https://*.example.com\"]\n",
            "`https://*.example.com` holds a `*`: origins are compared whole, with no wildcard",
        ),
        (
            "[limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"localhost\"]\n",
            "line 2, at `limits.trusted_proxies`: `localhost` is neither an IP address",
        ),
        (
            "[auth]\nalgorithms = [\"none\"]\n[[auth.issuers]]\nid = \"x\"\nhs256_secrets = [\"a-secret-of-at-least-thirty-two-bytes!!\"]\n",
            "`auth.algorithms`: unsupported algorithm `none`",
        ),
        (
            "[[auth.issuers]]\nid = \"x\"\npublic_key_files = [\"/nonexistent/key.pem\"]\n",
            "auth.issuers[0].public_key_files",
        ),
        ("listen = \"not an address\"\n", "line 1"),
        // In an array of tables: the line of the key in the N-th table, or
        // of that table's header when the key is missing.
        (
            "[[auth.issuers]]\nid = \"a\"\nhs256_secrets = [\"a-secret-of-at-least-thirty-two-bytes!!\"]\n\n\
             [[auth.issuers]]\nid = \"b\"\njwks_url = \"nope\"\n",
            "line 7, at `auth.issuers[1].jwks_url`: not a URL",
        ),
        (
            "listen = \"127.0.0.1:1\"\n[[auth.issuers]]\nhs256_secrets = [\"a-secret-of-at-least-thirty-two-bytes!!\"]\n",
            "line 2, at `auth.issuers[0].id`",
        ),
    ] {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, text).unwrap();
        let (code, _, stderr) = check(&[file.to_str().unwrap()], &[]);
        assert_eq!(code, 2, "{text}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{text}: `{stderr}` should contain {expected}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn a_bad_value_names_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\n\n[log]\n# the default is strict\ndurability = \"fast\"\n",
    )
    .unwrap();
    let (code, _, stderr) = check(&[file.to_str().unwrap()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "herald: {}: line 5, at `log.durability`: unknown durability `fast` (use strict or relaxed)\n",
            file.display()
        )
    );
    // A dotted key at the top is found too.
    std::fs::write(&file, "log.ids = \"random\"\n").unwrap();
    let (_, _, stderr) = check(&[file.to_str().unwrap()], &[]);
    assert!(
        stderr.contains("c.toml: line 1, at `log.ids`: unknown id scheme `random`"),
        "{stderr}"
    );
    // From the environment: the variable, not a flag it is not.
    let (code, _, stderr) = check(&[], &[("HERALD_LOG_KIND", "disk")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("herald: env HERALD_LOG_KIND: `log.kind`: unknown log kind `disk`"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let (code, _, stderr) = check(&["/nonexistent/herald.toml"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/herald.toml"), "{stderr}");
}

#[test]
fn an_empty_or_bad_environment_variable_is_named_in_its_error() {
    for (key, needle) in [
        (
            "HERALD_DATA_DIR",
            "it is empty (from the flag, or HERALD_DATA_DIR in the environment)",
        ),
        (
            "HERALD_LISTEN",
            "expected an address such as 127.0.0.1:3000",
        ),
        (
            "HERALD_HUB_URL",
            "(from the flag, or HERALD_HUB_URL in the environment)",
        ),
        (
            "HERALD_TLS_CERT",
            "it is empty (from the flag, or HERALD_TLS_CERT in the environment)",
        ),
    ] {
        let (code, stdout, stderr) = check(&[], &[(key, "")]);
        assert_eq!(code, 2, "{key}: {stderr}");
        assert_eq!(stdout, "", "{key}");
        assert!(
            stderr.contains(needle) && stderr.contains(key),
            "{key}: {stderr}"
        );
    }
}

/// A key set where it does nothing (the durable log's keys with the memory
/// log, say) is valid but said, naming the key, why and where it was set.
#[test]
fn a_jwks_url_in_plain_http_off_loopback_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.toml");
    std::fs::write(
        &file,
        "[[auth.issuers]]\nid = \"https://idp.example\"\njwks_url = \"http://idp.example/jwks.json\"\n\n[[auth.issuers]]\nid = \"https://local.example\"\njwks_url = \"http://127.0.0.1:9999/jwks.json\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&[file.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    let expected = "auth.issuers[0].jwks_url is plain http to idp.example";
    assert!(stderr.contains(expected), "{stderr}");
    assert!(
        stdout.contains(&format!("# warning: {expected}")),
        "{stdout}"
    );
    assert!(
        !stderr.contains("auth.issuers[1]"),
        "loopback is fine: {stderr}"
    );
}

#[test]
fn keys_that_do_nothing_here_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("memory.toml");
    std::fs::write(
        &file,
        "[log]\nkind = \"memory\"\nmax_age = \"1h\"\ndurability = \"relaxed\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = check(&[file.to_str().unwrap(), "--data-dir", "/tmp/x"], &[]);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "log.dir has no effect: log.kind is memory (set by flag --data-dir)",
        "log.durability has no effect: log.kind is memory (set by file",
    ] {
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            stdout.contains(&format!("# warning: {expected}")),
            "{stdout}"
        );
    }
    // `log.max_age` applies to the memory log too.
    assert!(!stderr.contains("max_age"), "{stderr}");
}

/// Subscription events on a durable log that keeps everything: every client
/// that connects grows the log for good, which is said.
#[test]
fn subscriptions_on_an_unbounded_durable_log_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let unbounded = dir.path().join("unbounded.toml");
    std::fs::write(&unbounded, "[subscriptions]\nenabled = true\n").unwrap();
    let (code, stdout, stderr) = check(&[unbounded.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    let expected = "subscriptions.enabled with a durable log that keeps everything";
    assert!(stderr.contains(expected), "{stderr}");
    assert!(
        stdout.contains(&format!("# warning: {expected}")),
        "{stdout}"
    );
    let bounded = dir.path().join("bounded.toml");
    std::fs::write(
        &bounded,
        "[subscriptions]\nenabled = true\n[log]\nmax_age = \"7days\"\n",
    )
    .unwrap();
    let (code, _, stderr) = check(&[bounded.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(expected), "{stderr}");
}

/// The file to check given twice (argument and `--config`) is a usage
/// error; `HERALD_CONFIG` from the environment gives way to the argument.
#[test]
fn two_files_to_check_are_refused_but_the_environment_gives_way() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, "listen = \"127.0.0.1:1\"\n").unwrap();
    std::fs::write(&b, "listen = \"127.0.0.1:2\"\n").unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (code, _, stderr) = check(&[a, "--config", b], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("two configuration files"), "{stderr}");
    let (code, stdout, stderr) = check(&[a], &[("HERALD_CONFIG", b)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:1\""), "{stdout}");
}

/// An issuer's key file is read whole: every key in it is trusted (one file
/// may hold the keys of a rotation), and a block that is not a usable public
/// key fails the check, naming the file and the block, rather than leaving
/// it out.
#[test]
fn every_block_of_an_issuers_key_file_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../herald-token/tests/keys");
    let read = |file: &str| std::fs::read_to_string(keys.join(file)).unwrap();
    let check_keys = |contents: String| {
        let pem = dir.path().join("keys.pem");
        std::fs::write(&pem, contents).unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            format!(
                "[[auth.issuers]]\nid = \"x\"\npublic_key_files = [\"{}\"]\n",
                pem.display()
            ),
        )
        .unwrap();
        let (code, _, stderr) = check(&[file.to_str().unwrap(), "--log-kind", "memory"], &[]);
        (code, stderr, pem.display().to_string())
    };

    let (code, stderr, _) = check_keys(read("ed-public.pem") + &read("ec-public.pem"));
    assert_eq!(code, 0, "{stderr}");

    for (contents, expected) in [
        (
            read("k1-public.pem"),
            "the key is on the curve secp256k1; only P-256 elliptic-curve keys are supported",
        ),
        (
            read("ec-public.pem") + &read("ed-private.pem"),
            "PEM block 2 of 2 (PRIVATE KEY): a PRIVATE KEY was given where a public key is expected",
        ),
        (
            read("ec-public.pem") + &read("k1-public.pem"),
            "PEM block 2 of 2 (PUBLIC KEY): the key is on the curve secp256k1",
        ),
        (
            read("ed-public.pem") + &read("ec-public.pem")[..60],
            "the \"PUBLIC KEY\" block has no end line",
        ),
    ] {
        let (code, stderr, pem) = check_keys(contents);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("auth.issuers[0].public_key_files"),
            "{stderr}"
        );
        assert!(stderr.contains(&pem), "{stderr}");
        assert!(
            stderr.contains(expected),
            "`{stderr}` should contain {expected}"
        );
    }
}
