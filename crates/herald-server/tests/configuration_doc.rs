//! docs/configuration.md lists exactly the keys the configuration accepts.

use std::collections::BTreeSet;

use herald_server::Config;
use herald_server::config::IssuerConfig;

const DOC: &str = include_str!("../../../docs/configuration.md");

fn keys(prefix: &str, value: &toml::Value, out: &mut BTreeSet<String>) {
    if let toml::Value::Table(table) = value {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if value.is_table() {
                keys(&path, value, out);
            } else {
                out.insert(path);
            }
        }
    }
}

fn code_keys() -> BTreeSet<String> {
    let mut config = Config {
        hub_url: Some("http://127.0.0.1:3000/.well-known/mercure".parse().unwrap()),
        ..Config::default()
    };
    config.admin.listen = Some("127.0.0.1:9464".parse().unwrap());
    config.tls.cert_file = Some("cert.pem".into());
    config.tls.key_file = Some("key.pem".into());
    let mut out = BTreeSet::new();
    keys("", &toml::Value::try_from(&config).unwrap(), &mut out);
    let issuer = IssuerConfig {
        jwks_url: Some("https://example.com/jwks.json".into()),
        ..IssuerConfig::default()
    };
    keys(
        "auth.issuers[]",
        &toml::Value::try_from(&issuer).unwrap(),
        &mut out,
    );
    out
}

fn documented_keys() -> BTreeSet<String> {
    let section = DOC
        .split("## Keys")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a `## Keys` section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_configuration_key_is_documented_and_every_documented_key_exists() {
    let code = code_keys();
    let doc = documented_keys();
    let undocumented: Vec<_> = code.difference(&doc).collect();
    let unknown: Vec<_> = doc.difference(&code).collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from docs/configuration.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "documented keys the code does not accept: {unknown:?}"
    );
}

#[test]
fn documented_defaults_match_the_code() {
    let config = Config::default();
    let limits = &config.limits;
    for (key, value) in [
        ("listen", config.listen.to_string()),
        (
            "subscribers.queue_capacity",
            config.subscribers.queue_capacity.to_string(),
        ),
        (
            "subscribers.queue_bytes",
            config.subscribers.queue_bytes.to_string(),
        ),
        ("limits.max_body_bytes", limits.max_body_bytes.to_string()),
        ("limits.max_topics", limits.max_topics.to_string()),
        (
            "limits.max_field_length",
            limits.max_field_length.to_string(),
        ),
        ("limits.max_matchers", limits.max_matchers.to_string()),
        (
            "limits.max_matcher_length",
            limits.max_matcher_length.to_string(),
        ),
        (
            "limits.max_pattern_memory",
            limits.max_pattern_memory.to_string(),
        ),
        (
            "limits.max_pattern_memory_per_address",
            limits.max_pattern_memory_per_address.to_string(),
        ),
        ("limits.max_connections", limits.max_connections.to_string()),
        (
            "limits.max_connections_per_address",
            limits.max_connections_per_address.to_string(),
        ),
        (
            "limits.max_connections_per_subject",
            limits.max_connections_per_subject.to_string(),
        ),
        ("log.kind", config.log.kind.clone()),
        ("log.max_entries", config.log.max_entries.to_string()),
        ("log.max_bytes", config.log.max_bytes.to_string()),
        ("log.cache_size", config.log.cache_size.to_string()),
        ("log.dir", config.log.dir.display().to_string()),
        ("log.durability", config.log.durability.clone()),
        ("log.ids", config.log.ids.clone()),
        ("auth.cookie_name", config.auth.cookie_name.clone()),
        (
            "subscriptions.enabled",
            config.subscriptions.enabled.to_string(),
        ),
        (
            "subscriptions.page_size",
            config.subscriptions.page_size.to_string(),
        ),
    ] {
        let row = format!("| `{key}` | `{value}` |");
        assert!(
            DOC.contains(&row),
            "docs/configuration.md should have a row starting {row}"
        );
    }
    for (key, value) in config.durations() {
        let prefix = format!("| `{key}` | `");
        let documented = DOC
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("no row for {key}"));
        assert_eq!(
            humantime::parse_duration(documented).unwrap(),
            value,
            "documented default of {key}"
        );
    }
}

#[test]
fn the_production_example_configuration_parses() {
    let text = include_str!("../../../deploy/herald.toml");
    let config = Config::from_toml(text).unwrap_or_else(|e| panic!("deploy/herald.toml: {e}"));
    assert_eq!(
        config.log.max_age,
        std::time::Duration::from_secs(7 * 24 * 3600)
    );
    assert_eq!(config.auth.issuers.len(), 1);
    // It listens behind a proxy on loopback: a per-address limit counts
    // clients only when that proxy is trusted.
    assert!(config.listen.ip().is_loopback());
    let proxies = config.trusted_proxies().unwrap();
    let proxied = http::HeaderMap::from_iter([(
        http::header::HeaderName::from_static("x-forwarded-for"),
        http::HeaderValue::from_static("198.51.100.1"),
    )]);
    assert_eq!(
        proxies.client(config.listen.ip(), &proxied),
        "198.51.100.1".parse::<std::net::IpAddr>().unwrap(),
        "deploy/herald.toml trusts its proxy"
    );
}
