//! Where the hub's configuration comes from: defaults, a TOML file,
//! `HERALD_*` environment variables and flags, each overriding the last.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use herald_server::{Config, ConfigError};
use url::Url;

use crate::error::CliError;

/// The configuration flags shared by `serve` and `config check`.
#[derive(Debug, Clone, clap::Args)]
pub struct Overrides {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, short, env = "HERALD_CONFIG", value_parser = path("HERALD_CONFIG"))]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HERALD_LISTEN", value_parser = address("HERALD_LISTEN"))]
    pub listen: Option<SocketAddr>,
    /// Public URL of the hub, also its token audience.
    #[arg(long, env = "HERALD_HUB_URL", value_parser = url("HERALD_HUB_URL"))]
    pub hub_url: Option<Url>,
    /// An origin allowed to make credentialed cross-origin requests (repeatable).
    #[arg(
        long = "cors-origin",
        env = "HERALD_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Data directory of the durable log.
    #[arg(long, env = "HERALD_DATA_DIR", value_parser = path("HERALD_DATA_DIR"))]
    pub data_dir: Option<PathBuf>,
    /// Where updates are kept: `durable` (on disk) or `memory`.
    #[arg(long, env = "HERALD_LOG_KIND")]
    pub log_kind: Option<String>,
    /// Address of the admin listener (metrics, health); off when unset.
    #[arg(long, env = "HERALD_ADMIN_LISTEN", value_parser = address("HERALD_ADMIN_LISTEN"))]
    pub admin_listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM, leaf first); with --tls-key, serves HTTPS.
    #[arg(long, env = "HERALD_TLS_CERT", value_parser = path("HERALD_TLS_CERT"))]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the TLS certificate (PEM).
    #[arg(long, env = "HERALD_TLS_KEY", value_parser = path("HERALD_TLS_KEY"))]
    pub tls_key: Option<PathBuf>,
}

/// The value parsers of the flags that an environment variable can set:
/// clap names only the flag in its errors, which confuses whoever set the
/// variable (an empty `HERALD_DATA_DIR=` from a compose file, say).
pub(crate) fn path(env: &'static str) -> impl Fn(&str) -> Result<PathBuf, String> + Clone {
    move |text| {
        if text.is_empty() {
            Err(format!(
                "it is empty (from the flag, or {env} in the environment)"
            ))
        } else {
            Ok(PathBuf::from(text))
        }
    }
}

/// See [`path`].
fn address(env: &'static str) -> impl Fn(&str) -> Result<SocketAddr, String> + Clone {
    move |text| {
        text.parse().map_err(|_| {
            format!(
                "expected an address such as 127.0.0.1:3000 or [::1]:3000 (from the flag, or \
                 {env} in the environment)"
            )
        })
    }
}

/// See [`path`].
fn url(env: &'static str) -> impl Fn(&str) -> Result<Url, String> + Clone {
    move |text| {
        Url::parse(text).map_err(|e| format!("{e} (from the flag, or {env} in the environment)"))
    }
}

/// Where one configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag --{name}"),
        }
    }
}

/// The effective configuration and the source of every value that is not a default.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration to run with.
    pub config: Config,
    /// Dotted key → where its value came from (absent: the default).
    pub sources: BTreeMap<String, Source>,
}

impl Loaded {
    /// The keys set (not left to their defaults) that do nothing with the
    /// rest of this configuration, each with why and where it was set: a
    /// setting that silently does nothing is worse than one refused.
    pub fn ineffective(&self) -> Vec<String> {
        let config = &self.config;
        let memory = config.log.kind == "memory";
        let strict = config.log.durability == "strict";
        let mut found = Vec::new();
        for (key, why) in [
            ("log.dir", memory.then_some("log.kind is memory")),
            ("log.durability", memory.then_some("log.kind is memory")),
            ("log.cache_size", memory.then_some("log.kind is memory")),
            ("log.min_free_space", memory.then_some("log.kind is memory")),
            (
                "log.max_replay_readers",
                memory.then_some("log.kind is memory"),
            ),
            (
                "log.flush_interval",
                if memory {
                    Some("log.kind is memory")
                } else {
                    strict.then_some(
                        "log.durability is strict: every update is synced before its answer",
                    )
                },
            ),
            (
                "tls.reload_interval",
                config.tls.cert_file.is_none().then_some("TLS is off"),
            ),
            (
                "subscriptions.page_size",
                (!config.subscriptions.enabled).then_some("subscriptions.enabled is false"),
            ),
            (
                "subscriptions.max_pending_events",
                (!config.subscriptions.enabled).then_some("subscriptions.enabled is false"),
            ),
            (
                "subscriptions.max_pending_bytes",
                (!config.subscriptions.enabled).then_some("subscriptions.enabled is false"),
            ),
        ] {
            if let (Some(why), Some(source)) = (why, self.sources.get(key)) {
                found.push(format!("{key} has no effect: {why} (set by {source})"));
            }
        }
        found
    }

    /// What `herald serve` and `herald config check` warn about: the keys
    /// [`Loaded::ineffective`] finds, and settings that work but put the
    /// hub at risk.
    pub fn warnings(&self) -> Vec<String> {
        let mut found = self.ineffective();
        for (index, issuer) in self.config.auth.issuers.iter().enumerate() {
            let Some(url) = issuer.jwks_url.as_deref() else {
                continue;
            };
            let Ok(parsed) = url::Url::parse(url) else {
                continue; // refused by the validation
            };
            let loopback = match parsed.host() {
                Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if parsed.scheme() == "http" && !loopback {
                found.push(format!(
                    "auth.issuers[{index}].jwks_url is plain http to {}: whoever sits on the path can hand herald keys of their own and mint any token; use https",
                    parsed.host_str().unwrap_or("its host")
                ));
            }
        }
        let log = &self.config.log;
        if self.config.subscriptions.enabled
            && log.kind == "durable"
            && log.max_age.is_zero()
            && log.max_entries == 0
            && log.max_bytes == 0
        {
            found.push(
                "subscriptions.enabled with a durable log that keeps everything: every \
                 connection appends two subscription events, so the log grows with every \
                 client that connects; bound it with log.max_age, log.max_entries or \
                 log.max_bytes (docs/presence.md, \"At scale\")"
                    .into(),
            );
        }
        found
    }

    /// A configuration error, said with where the value came from: the file
    /// and its line, the environment variable or the flag.
    pub fn explain(&self, error: &ConfigError) -> String {
        let ConfigError::Invalid { key, reason } = error else {
            return error.to_string();
        };
        // `auth.issuers[1].jwks_url` was set where `auth.issuers` was.
        let source = self
            .sources
            .get(key.as_str())
            .or_else(|| self.sources.get(key.split('[').next().unwrap_or(key)));
        match source {
            Some(Source::File(path)) => {
                let line = std::fs::read_to_string(path).ok().and_then(|text| {
                    // A key missing from an array's table: its `[[…]]` header.
                    line_of(&text, key).or_else(|| {
                        let (table, _) = key.rsplit_once('.')?;
                        table.ends_with(']').then(|| line_of(&text, table))?
                    })
                });
                match line {
                    Some(line) => format!("{}: line {line}, at `{key}`: {reason}", path.display()),
                    None => format!("{}: at `{key}`: {reason}", path.display()),
                }
            }
            Some(source @ (Source::Env(_) | Source::Flag(_))) => {
                format!("{source}: `{key}`: {reason}")
            }
            _ => error.to_string(),
        }
    }
}

/// The line of a file that sets the dotted `key`, under its table header or
/// as a dotted key. (The file parsed as TOML already: this only finds it.)
fn line_of(text: &str, key: &str) -> Option<usize> {
    let mut table = String::new();
    // How many `[[name]]` headers each array of tables has had so far: the
    // N-th one's keys are `name[N-1].key`.
    let mut arrays: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let array = header.starts_with('[');
            let name = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            table = if array {
                let count = arrays.entry(name.clone()).or_default();
                *count += 1;
                format!("{name}[{}]", *count - 1)
            } else {
                name
            };
            if table == key {
                return Some(index + 1);
            }
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim().replace('"', "");
        let full = if table.is_empty() {
            name
        } else {
            format!("{table}.{name}")
        };
        if full == key {
            return Some(index + 1);
        }
    }
    None
}

impl Overrides {
    /// Reads the file (`file` wins over `--config`), then applies env and flags.
    pub fn load(&self, file: Option<&Path>) -> Result<Loaded, CliError> {
        let file = file.or(self.config.as_deref());
        let mut sources = BTreeMap::new();
        let mut config = match file {
            Some(path) => {
                let config = Config::from_file(path).map_err(|e| CliError::Usage(e.to_string()))?;
                // The file parsed, so it is TOML: note which keys it sets.
                if let Ok(value) = std::fs::read_to_string(path)
                    .map_err(|_| ())
                    .and_then(|t| t.parse::<toml::Table>().map_err(|_| ()))
                {
                    for key in leaf_keys(&toml::Value::Table(value)) {
                        sources.insert(key, Source::File(path.to_owned()));
                    }
                }
                config
            }
            None => Config::default(),
        };
        let mut set = |key: &str, env: &'static str, flag: &'static str, value: &str| {
            let from_env = std::env::var(env).is_ok_and(|v| v == value);
            sources.insert(
                key.to_owned(),
                if from_env {
                    Source::Env(env)
                } else {
                    Source::Flag(flag)
                },
            );
        };
        if let Some(listen) = self.listen {
            set("listen", "HERALD_LISTEN", "listen", &listen.to_string());
            config.listen = listen;
        }
        if let Some(url) = &self.hub_url {
            set("hub_url", "HERALD_HUB_URL", "hub-url", url.as_str());
            config.hub_url = Some(url.clone());
        }
        if !self.cors_origins.is_empty() {
            set(
                "cors.origins",
                "HERALD_CORS_ORIGINS",
                "cors-origin",
                &self.cors_origins.join(","),
            );
            config.cors.origins.clone_from(&self.cors_origins);
        }
        if let Some(dir) = &self.data_dir {
            set(
                "log.dir",
                "HERALD_DATA_DIR",
                "data-dir",
                &dir.display().to_string(),
            );
            config.log.dir.clone_from(dir);
        }
        if let Some(kind) = &self.log_kind {
            set("log.kind", "HERALD_LOG_KIND", "log-kind", kind);
            config.log.kind.clone_from(kind);
        }
        if let Some(admin) = self.admin_listen {
            set(
                "admin.listen",
                "HERALD_ADMIN_LISTEN",
                "admin-listen",
                &admin.to_string(),
            );
            config.admin.listen = Some(admin);
        }
        if let Some(cert) = &self.tls_cert {
            set(
                "tls.cert_file",
                "HERALD_TLS_CERT",
                "tls-cert",
                &cert.display().to_string(),
            );
            config.tls.cert_file = Some(cert.clone());
        }
        if let Some(key) = &self.tls_key {
            set(
                "tls.key_file",
                "HERALD_TLS_KEY",
                "tls-key",
                &key.display().to_string(),
            );
            config.tls.key_file = Some(key.clone());
        }
        Ok(Loaded { config, sources })
    }
}

/// Dotted paths of every non-table value.
pub fn leaf_keys(value: &toml::Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(String::new(), value, &mut out);
    out
}

fn collect(prefix: String, value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                collect(path, value, out);
            }
        }
        _ => out.push(prefix),
    }
}
