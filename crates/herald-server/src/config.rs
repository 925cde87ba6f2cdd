//! The configuration file (TOML) and how it becomes a running hub.
//!
//! Unknown keys and bad values are errors naming the file, line and key.
//! Every key is documented in `docs/configuration.md`; a test keeps the two in step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use herald_hub::{Hub, IdScheme, MatcherLimits, UpdateLimits};
use herald_store::{Durability, DurableLog, Retention, StoreConfig};
use herald_token::keys::Algorithm;
use herald_token::{Issuer, LegacyVerifier, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::tls::{Tls, TlsError};
use crate::{Compatibility, ConnectionLimits, Herald, Settings};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The file is not valid TOML for herald (with line and key).
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the line and the key.
        reason: String,
    },
    /// The durable log cannot be opened (the message names the file and the
    /// problem; the variant says whether it is in use, damaged or unreadable).
    #[error("cannot open the update log: {0}")]
    Store(#[from] herald_store::StoreError),
    /// The TLS certificate or key cannot be used (the message names the file).
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A value is well-formed but unusable.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The public URL of the hub; also its resource identifier (`aud`).
    /// Default: `http://{listen}/.well-known/mercure` (`https` with TLS).
    pub hub_url: Option<Url>,
    /// Longest a graceful shutdown (SIGTERM, SIGINT) waits for open
    /// connections before exiting; the log is flushed either way.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Subscriber behaviour.
    pub subscribers: SubscribersConfig,
    /// Request and connection limits.
    pub limits: LimitsConfig,
    /// Cross-origin requests.
    pub cors: CorsConfig,
    /// Access tokens.
    pub auth: AuthConfig,
    /// The update log.
    pub log: LogConfig,
    /// TLS (off unless a certificate is configured).
    pub tls: TlsConfig,
    /// The admin listener: metrics and health.
    pub admin: AdminConfig,
    /// Active subscriptions: subscription events and the subscription API.
    pub subscriptions: SubscriptionsConfig,
    /// `[compatibility]`: the pre-draft-08 protocol next to draft-08.
    pub compatibility: CompatibilityConfig,
    /// Whether [`serve`](crate::serve) and [`serve_tls`](crate::serve_tls)
    /// answer HTTP/1.1 publishes and streams themselves
    /// ([`Settings::hand_served_publish`], [`Settings::hand_served_streams`]),
    /// past the layers of the router they are given. Not a key of the file: `herald serve`, whose router is the
    /// hub's alone, turns it on; off by default, for an application that
    /// wraps the hub's routes in layers of its own.
    #[serde(skip)]
    pub hand_served: bool,
}

/// `[compatibility]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CompatibilityConfig {
    /// Whether the pre-draft-08 protocol is served too.
    pub enabled: bool,
    /// HS256 secrets legacy publisher tokens may be signed with.
    pub publisher_hs256_secrets: Vec<String>,
    /// PEM public keys (RS256, ES256, EdDSA) for legacy publisher tokens.
    pub publisher_public_key_files: Vec<PathBuf>,
    /// HS256 secrets legacy subscriber tokens may be signed with.
    pub subscriber_hs256_secrets: Vec<String>,
    /// PEM public keys (RS256, ES256, EdDSA) for legacy subscriber tokens.
    pub subscriber_public_key_files: Vec<PathBuf>,
    /// The cookie older browsers present the token in.
    pub cookie_name: String,
}

impl Default for CompatibilityConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            publisher_hs256_secrets: Vec::new(),
            publisher_public_key_files: Vec::new(),
            subscriber_hs256_secrets: Vec::new(),
            subscriber_public_key_files: Vec::new(),
            cookie_name: crate::compat::LEGACY_COOKIE_NAME.to_owned(),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener (`/metrics`, `/healthz`, `/readyz`); off when unset.
    pub listen: Option<SocketAddr>,
}

/// `[subscriptions]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// Publish subscription events and serve the subscription API.
    pub enabled: bool,
    /// Most subscriptions in one page of a collection.
    pub page_size: usize,
    /// Most subscription events waiting to be appended to the log; a
    /// subscriber whose events would go past it is refused with 503.
    pub max_pending_events: usize,
    /// Most bytes of subscription events waiting to be appended (a pending
    /// event weighs about its matcher, topic and payload); past it a
    /// subscriber is refused with 503 as past `max_pending_events`.
    pub max_pending_bytes: u64,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            page_size: Settings::default().subscriptions_page_size,
            max_pending_events: herald_hub::DEFAULT_MAX_PENDING_EVENTS,
            max_pending_bytes: herald_hub::DEFAULT_MAX_PENDING_BYTES,
        }
    }
}

/// `[subscribers]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SubscribersConfig {
    /// Accept subscribers without a token (public updates only).
    pub anonymous: bool,
    /// Idle time before a keep-alive comment.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Longest a connection stays open; `0s` for no limit besides the token's `exp`.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
    /// Updates that may wait for one subscriber before it is disconnected as too slow.
    pub queue_capacity: usize,
    /// Bytes of updates that may wait for one subscriber before it is
    /// disconnected as too slow (the newest update always fits).
    pub queue_bytes: u64,
    /// Updates a group of subscribers takes per pass of the hub over it
    /// while the hub is still writing it earlier ones; further publishes
    /// are answered as the hub makes room. 0: no pace.
    pub publish_pace: usize,
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body in bytes (413).
    pub max_body_bytes: usize,
    /// Most topics in one update (413).
    pub max_topics: usize,
    /// Longest topic, id or type in bytes (413).
    pub max_field_length: usize,
    /// Most topic matchers in one subscription (400).
    pub max_matchers: usize,
    /// Longest matcher in bytes (400).
    pub max_matcher_length: usize,
    /// Bytes the compiled expressions of URL patterns may take in the
    /// process before a pattern not compiled yet is refused (503).
    pub max_pattern_memory: usize,
    /// Bytes of compiled URL patterns the subscriptions from one client
    /// address may hold together, each subscription counted whole (429).
    pub max_pattern_memory_per_address: usize,
    /// Subscriber connections in total (429).
    pub max_connections: usize,
    /// Subscriber connections per client address (429).
    pub max_connections_per_address: usize,
    /// Subscriber connections per token subject (429).
    pub max_connections_per_subject: usize,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For`
    /// names the client for `max_connections_per_address`.
    pub trusted_proxies: Vec<String>,
    /// A connection whose writes make no progress this long is closed.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Longest a connection may take to send a whole request head, from
    /// its accept or, kept alive, from its previous answer's end: also the
    /// idle bound of a kept-alive connection.
    #[serde(with = "humantime_serde")]
    pub request_head_timeout: Duration,
    /// A request body that makes no progress this long ends the request (408).
    #[serde(with = "humantime_serde")]
    pub request_body_timeout: Duration,
}

/// `[cors]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to make credentialed requests, e.g. `https://app.example.com`.
    pub origins: Vec<String>,
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The cookie the token may be presented in.
    pub cookie_name: String,
    /// Accepted signature algorithms.
    pub algorithms: Vec<String>,
    /// Clock leeway for `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// How often JWK Sets are fetched again.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// Trusted token issuers.
    pub issuers: Vec<IssuerConfig>,
}

/// One `[[auth.issuers]]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer identifier (`iss`).
    pub id: String,
    /// HS256 shared secrets.
    pub hs256_secrets: Vec<String>,
    /// PEM files with public keys (EdDSA, ES256, RS256), every key of each file trusted.
    pub public_key_files: Vec<PathBuf>,
    /// A JWK Set URL, fetched at start and refreshed.
    pub jwks_url: Option<String>,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `durable` (on disk, the default) or `memory`.
    pub kind: String,
    /// The data directory of the durable log.
    pub dir: PathBuf,
    /// `strict` (fsync before every answer) or `relaxed` (fsync every `flush_interval`).
    pub durability: String,
    /// With relaxed durability, the longest an acknowledged update stays unsynced.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Entries kept: by the memory log always, by the durable log when set (0: unlimited).
    pub max_entries: u64,
    /// Discard entries older than this, from either log (`0s`: unlimited).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// Bytes of updates kept: by the memory log always (0: 256 MiB), by the
    /// durable log when set (0: unlimited).
    pub max_bytes: u64,
    /// Durable log: bytes of the store's pages kept in memory.
    pub cache_size: u64,
    /// Durable log: bytes kept free on its disk; with less, publishes are
    /// answered 507 until there is more (0: no reserve).
    pub min_free_space: u64,
    /// Durable log: the most replay reads of its store that run at once,
    /// each a batch of up to 512 updates; the others wait their turn.
    pub max_replay_readers: usize,
    /// How ids are generated for updates published without one: `sequence`
    /// (the default), `uuid-v7` or `uuid-v4`.
    pub ids: String,
}

/// `[tls]`: off unless `cert_file` and `key_file` are set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key of the leaf certificate.
    pub key_file: Option<PathBuf>,
    /// How often both files are checked for a new certificate (`0s`: never).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            reload_interval: Duration::from_secs(10),
        }
    }
}

impl TlsConfig {
    /// Whether TLS is configured (both files, or one of them: an error).
    pub fn is_enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some()
    }

    /// Loads the certificate and key: `None` when TLS is off. The error
    /// names the key or the file.
    pub fn load(&self) -> Result<Option<Tls>, ConfigError> {
        let missing = |key: &str, other: &str| ConfigError::Invalid {
            key: format!("tls.{key}"),
            reason: format!("`tls.{other}` is set, so `tls.{key}` is needed too"),
        };
        match (&self.cert_file, &self.key_file) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(missing("key_file", "cert_file")),
            (None, Some(_)) => Err(missing("cert_file", "key_file")),
            (Some(cert), Some(key)) => Ok(Some(
                Tls::load(cert, key)?.with_reload_interval(self.reload_interval),
            )),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            hub_url: None,
            shutdown_timeout: Settings::default().shutdown_timeout,
            subscribers: SubscribersConfig::default(),
            limits: LimitsConfig::default(),
            cors: CorsConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            tls: TlsConfig::default(),
            subscriptions: SubscriptionsConfig::default(),
            compatibility: CompatibilityConfig::default(),
            hand_served: false,
        }
    }
}

impl Default for SubscribersConfig {
    fn default() -> Self {
        let settings = Settings::default();
        Self {
            anonymous: settings.anonymous_subscribers,
            heartbeat: settings.heartbeat,
            max_lifetime: settings.max_connection_lifetime.unwrap_or(Duration::ZERO),
            queue_capacity: 1024,
            queue_bytes: herald_hub::DEFAULT_QUEUE_BYTES,
            publish_pace: 40,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let settings = Settings::default();
        let update = UpdateLimits::default();
        Self {
            max_body_bytes: settings.max_body_bytes,
            max_topics: update.max_topics,
            max_field_length: update.max_field_length,
            max_matchers: settings.max_matchers,
            max_matcher_length: MatcherLimits::default().max_length,
            max_pattern_memory: MatcherLimits::default().max_pattern_memory,
            max_pattern_memory_per_address: settings.connections.pattern_bytes_per_address,
            max_connections: settings.connections.total,
            max_connections_per_address: settings.connections.per_address,
            max_connections_per_subject: settings.connections.per_subject,
            trusted_proxies: Vec::new(),
            write_timeout: settings.write_timeout,
            request_head_timeout: settings.request_head_timeout,
            request_body_timeout: settings.request_body_timeout,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            cookie_name: Settings::default().cookie_name,
            algorithms: ["EdDSA", "ES256", "RS256", "HS256"]
                .map(String::from)
                .to_vec(),
            leeway: Duration::from_secs(30),
            jwks_refresh: Duration::from_secs(300),
            issuers: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            kind: "durable".into(),
            dir: PathBuf::from("herald-data"),
            durability: "strict".into(),
            flush_interval: Duration::from_millis(100),
            max_entries: 0,
            max_age: Duration::ZERO,
            max_bytes: 0,
            cache_size: herald_store::DEFAULT_CACHE_SIZE as u64,
            min_free_space: herald_store::DEFAULT_MIN_FREE_SPACE,
            max_replay_readers: herald_store::default_replay_readers(),
            ids: "sequence".into(),
        }
    }
}

impl LogConfig {
    /// Checks the log settings without opening anything.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: format!("log.{key}"),
            reason,
        };
        if !matches!(self.kind.as_str(), "durable" | "memory") {
            return Err(invalid(
                "kind",
                format!("unknown log kind `{}` (use durable or memory)", self.kind),
            ));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(invalid(
                "dir",
                "it is empty; name the durable log's directory, such as /var/lib/herald".into(),
            ));
        }
        if !matches!(self.durability.as_str(), "strict" | "relaxed") {
            return Err(invalid(
                "durability",
                format!(
                    "unknown durability `{}` (use strict or relaxed)",
                    self.durability
                ),
            ));
        }
        self.id_scheme()?;
        Ok(())
    }

    /// The id scheme `ids` names.
    pub fn id_scheme(&self) -> Result<IdScheme, ConfigError> {
        match self.ids.as_str() {
            "uuid-v7" => Ok(IdScheme::UuidV7),
            "uuid-v4" => Ok(IdScheme::UuidV4),
            "sequence" => Ok(IdScheme::Sequence),
            other => Err(ConfigError::Invalid {
                key: "log.ids".into(),
                reason: format!("unknown id scheme `{other}` (use uuid-v7, uuid-v4 or sequence)"),
            }),
        }
    }

    /// Opens the configured log.
    pub fn open(&self) -> Result<Arc<dyn herald_hub::Log>, ConfigError> {
        self.check()?;
        match self.kind.as_str() {
            "memory" => {
                let capacity = if self.max_entries == 0 {
                    100_000
                } else {
                    self.max_entries
                };
                let max_bytes = if self.max_bytes == 0 {
                    herald_hub::DEFAULT_MEMORY_LOG_BYTES
                } else {
                    self.max_bytes
                };
                Ok(Arc::new(
                    herald_hub::MemoryLog::new(usize::try_from(capacity).unwrap_or(usize::MAX))
                        .with_max_bytes(max_bytes)
                        .with_max_age(self.max_age),
                ))
            }
            // `check` allowed only `memory` and `durable`.
            _ => {
                let durability = match self.durability.as_str() {
                    "strict" => Durability::Strict,
                    _ => Durability::Relaxed {
                        flush_interval: self.flush_interval,
                    },
                };
                let mut config = StoreConfig::new(&self.dir);
                config.durability = durability;
                config.cache_size = usize::try_from(self.cache_size).unwrap_or(usize::MAX);
                config.min_free_space = self.min_free_space;
                config.max_replay_readers = self.max_replay_readers;
                config.retention = Retention {
                    max_entries: (self.max_entries > 0).then_some(self.max_entries),
                    max_age: (!self.max_age.is_zero()).then_some(self.max_age),
                    max_bytes: (self.max_bytes > 0).then_some(self.max_bytes),
                };
                let log = DurableLog::open(config)?;
                Ok(Arc::new(log))
            }
        }
    }
}

/// Every string under a key whose name holds `secret` (`under`: already
/// below one), at any depth, none empty; a value of another type as serde
/// quotes it in a type error (`` `1234567` ``), which a secret mistyped
/// without quotes would be.
fn secret_values(value: &toml::Value, under: bool) -> Vec<String> {
    match value {
        toml::Value::String(text) if under && !text.is_empty() => vec![text.clone()],
        toml::Value::Integer(_)
        | toml::Value::Float(_)
        | toml::Value::Boolean(_)
        | toml::Value::Datetime(_)
            if under =>
        {
            vec![format!("`{value}`")]
        }
        toml::Value::Array(items) => items
            .iter()
            .flat_map(|item| secret_values(item, under))
            .collect(),
        toml::Value::Table(table) => table
            .iter()
            .flat_map(|(key, item)| {
                secret_values(item, under || key.to_ascii_lowercase().contains("secret"))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The dotted key whose value starts at `at` on a `key = value` line of
/// `text` (the table headers above it give its prefix); none when `at` is
/// not in a value (an unknown key's name, say).
fn key_of_value(text: &str, at: usize) -> Option<String> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let (name, _) = text.get(start..at)?.split_once('=')?;
    let name = name.trim().trim_matches('"');
    if name.is_empty() || name.starts_with('[') || name.starts_with('#') {
        return None;
    }
    let header = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['));
    let table = header.map(|header| header.trim_matches(|c| c == '[' || c == ']').trim());
    // In an array of tables, the entry's index, as validation names it
    // (`auth.issuers[1].id`): the headers of that array above the value.
    let table = match header {
        Some(header) if header.starts_with("[[") => table.map(|table| {
            let index = text[..start]
                .lines()
                .map(str::trim)
                .filter(|line| {
                    line.strip_prefix("[[")
                        .and_then(|line| line.strip_suffix("]]"))
                        .is_some_and(|name| name.trim() == table)
                })
                .count()
                .saturating_sub(1);
            format!("{table}[{index}]")
        }),
        _ => table.map(str::to_owned),
    };
    Some(match table {
        Some(table) if !table.is_empty() => format!("{table}.{name}"),
        _ => name.to_owned(),
    })
}

impl Config {
    /// Reads a configuration file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|reason| ConfigError::Parse {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses TOML text; the error names the line and the key.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let explain = |e: toml::de::Error| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let mut message = e.message().trim().to_owned();
            // The parser's words for a number past TOML's integers name its
            // own internals (`as i128, expected any valid TOML value`).
            if let Some(number) = message
                .strip_prefix("invalid type: integer `")
                .and_then(|rest| rest.strip_suffix("` as i128, expected any valid TOML value"))
            {
                message = format!(
                    "`{number}` is past the largest integer TOML holds (9223372036854775807)"
                );
            }
            let at = e.span().and_then(|span| text.get(span)).map(str::trim);
            // A value is named by its key (`listen`, not `5`, nor a secret).
            let key = e.span().and_then(|span| key_of_value(text, span.start));
            match (line, key.as_deref().or(at)) {
                (Some(line), Some(key)) if !key.is_empty() => {
                    format!("line {line}, at `{key}`: {message}")
                }
                (Some(line), _) => format!("line {line}: {message}"),
                _ => message,
            }
        };
        // TOML integers are 64-bit signed, but serde would read 2^63 and up
        // into a `u64` field; parsing the document on its own first refuses
        // such a number, as every other TOML reader (and `config check`) would.
        let table = text.parse::<toml::Table>().map_err(explain)?;
        toml::from_str(text).map_err(|e| {
            // Errors end up in logs: a secret's value is not echoed,
            // wherever it sits (an inline table, an escape the message
            // writes otherwise; serde quotes a string as `Debug` does).
            let mut explained = explain(e);
            for secret in secret_values(&toml::Value::Table(table), false) {
                explained = explained
                    .replace(&format!("{secret:?}"), "<redacted>")
                    .replace(&secret, "<redacted>");
            }
            explained
        })
    }

    /// The proxies `limits.trusted_proxies` names.
    pub fn trusted_proxies(&self) -> Result<crate::TrustedProxies, ConfigError> {
        self.limits
            .trusted_proxies
            .iter()
            .map(|entry| crate::TrustedProxies::parse_entry(entry))
            .collect::<Result<Vec<_>, _>>()
            .map(crate::TrustedProxies::new)
            .map_err(|reason| ConfigError::Invalid {
                key: "limits.trusted_proxies".into(),
                reason,
            })
    }

    /// The hub URL: configured, or derived from the listen address (and
    /// `https` when TLS is on).
    pub fn hub_url(&self) -> Url {
        let scheme = if self.tls.is_enabled() {
            "https"
        } else {
            "http"
        };
        self.hub_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("{scheme}://{}/.well-known/mercure", self.listen)).unwrap_or_else(
                |_| Url::parse("http://127.0.0.1:3000/.well-known/mercure").expect("static URL"),
            )
        })
    }

    /// Builds the hub and its HTTP edge. JWK Sets are not fetched yet: call
    /// [`Verifier::spawn_jwks_refresh`] on the returned verifier.
    pub fn build(&self) -> Result<(Herald, Option<Arc<Verifier>>), ConfigError> {
        self.validate()?;
        self.build_with_log(self.log.open()?)
    }

    /// Builds the hub and its HTTP edge like [`Config::build`], on a log the
    /// caller opened (and may keep a handle to, e.g. to read a
    /// [`DurableLog`]'s counters); of the `[log]` table only `ids` is used.
    pub fn build_with_log(
        &self,
        log: Arc<dyn herald_hub::Log>,
    ) -> Result<(Herald, Option<Arc<Verifier>>), ConfigError> {
        let hub = Hub::builder(self.hub_url())
            .log(log)
            .id_scheme(self.log.id_scheme()?)
            .queue_capacity(self.subscribers.queue_capacity)
            .queue_bytes(self.subscribers.queue_bytes)
            .publish_pace(self.subscribers.publish_pace)
            .subscriptions(self.subscriptions.enabled)
            .max_pending_events(self.subscriptions.max_pending_events)
            .max_pending_bytes(self.subscriptions.max_pending_bytes)
            .update_limits(UpdateLimits {
                max_topics: self.limits.max_topics,
                max_field_length: self.limits.max_field_length,
                max_data_length: self.limits.max_body_bytes,
            })
            .matcher_limits(MatcherLimits {
                max_length: self.limits.max_matcher_length,
                max_pattern_memory: self.limits.max_pattern_memory,
            })
            .build();
        let verifier = self.verifier(&hub)?;
        let settings = Settings {
            cors_origins: self.cors.origins.clone(),
            cookie_name: self.auth.cookie_name.clone(),
            anonymous_subscribers: self.subscribers.anonymous,
            heartbeat: self.subscribers.heartbeat,
            max_connection_lifetime: (!self.subscribers.max_lifetime.is_zero())
                .then_some(self.subscribers.max_lifetime),
            max_body_bytes: self.limits.max_body_bytes,
            max_matchers: self.limits.max_matchers,
            connections: ConnectionLimits {
                total: self.limits.max_connections,
                per_address: self.limits.max_connections_per_address,
                per_subject: self.limits.max_connections_per_subject,
                pattern_bytes_per_address: self.limits.max_pattern_memory_per_address,
            },
            shutdown_timeout: self.shutdown_timeout,
            write_timeout: self.limits.write_timeout,
            request_head_timeout: self.limits.request_head_timeout,
            request_body_timeout: self.limits.request_body_timeout,
            subscriptions_page_size: self.subscriptions.page_size.max(1),
            compatibility: self.compatibility()?.map(Arc::new),
            hand_served_publish: self.hand_served,
            hand_served_streams: self.hand_served,
            trusted_proxies: self.trusted_proxies()?,
        };
        Ok((Herald::new(hub, verifier.clone(), settings), verifier))
    }

    /// Every duration of the configuration, with its key.
    pub fn durations(&self) -> [(&'static str, Duration); 11] {
        [
            ("shutdown_timeout", self.shutdown_timeout),
            ("subscribers.heartbeat", self.subscribers.heartbeat),
            ("subscribers.max_lifetime", self.subscribers.max_lifetime),
            ("limits.write_timeout", self.limits.write_timeout),
            (
                "limits.request_head_timeout",
                self.limits.request_head_timeout,
            ),
            (
                "limits.request_body_timeout",
                self.limits.request_body_timeout,
            ),
            ("auth.leeway", self.auth.leeway),
            ("auth.jwks_refresh", self.auth.jwks_refresh),
            ("log.flush_interval", self.log.flush_interval),
            ("log.max_age", self.log.max_age),
            ("tls.reload_interval", self.tls.reload_interval),
        ]
    }

    /// Refuses an `admin.listen` that overlaps `listen`: the same port on the
    /// same address, or on every address (`0.0.0.0`, `[::]`) and one of them,
    /// where the second bind would fail as if another process held the port.
    /// Part of [`Config::validate`]; a server that binds before validating
    /// calls it first.
    pub fn check_listeners(&self) -> Result<(), ConfigError> {
        let overlaps = |a: SocketAddr, b: SocketAddr| {
            a.port() == b.port()
                && a.port() != 0
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        };
        match self.admin.listen {
            Some(admin) if overlaps(admin, self.listen) => Err(ConfigError::Invalid {
                key: "admin.listen".into(),
                reason: format!(
                    "{admin} overlaps `listen` ({}); the admin routes need a port of their own",
                    self.listen
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Checks every value without side effects: nothing is created or
    /// opened, but key files and TLS certificates are read and parsed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.trusted_proxies()?;
        if self.subscribers.heartbeat.is_zero() {
            return Err(ConfigError::Invalid {
                key: "subscribers.heartbeat".into(),
                reason: "0s would send keep-alive comments without pause; \
                         use an idle time such as 15s"
                    .into(),
            });
        }
        for (key, duration) in self.durations() {
            if duration > crate::settings::LONGEST_DURATION {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    reason: format!(
                        "{} is longer than 100 years, the longest a duration may be",
                        humantime::format_duration(duration)
                    ),
                });
            }
        }
        for (key, value, what) in [
            (
                "subscriptions.page_size",
                self.subscriptions.page_size,
                "a page of the subscription API would hold nothing; use a size such as 1000",
            ),
            (
                "subscriptions.max_pending_events",
                self.subscriptions.max_pending_events,
                "no subscription event could wait to be appended; use a bound such as 65536",
            ),
            (
                "log.max_replay_readers",
                self.log.max_replay_readers,
                "no replay could read the durable log's history; use at least 1 \
                 (the default is half the cores)",
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    reason: format!("0: {what}"),
                });
            }
        }
        if self.subscriptions.max_pending_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "subscriptions.max_pending_bytes".into(),
                reason: "0: no subscription event could wait to be appended; \
                         use a bound such as 67108864 (64 MiB)"
                    .into(),
            });
        }
        if self.subscribers.queue_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "subscribers.queue_bytes".into(),
                reason: "0 would disconnect every subscriber at its first update; \
                         use a bound such as 268435456 (256 MiB)"
                    .into(),
            });
        }
        let limits = &self.limits;
        for (key, value, refused) in [
            (
                "limits.max_body_bytes",
                limits.max_body_bytes,
                "every publish",
            ),
            ("limits.max_topics", limits.max_topics, "every publish"),
            (
                "limits.max_field_length",
                limits.max_field_length,
                "every publish",
            ),
            (
                "limits.max_matchers",
                limits.max_matchers,
                "every subscription",
            ),
            (
                "limits.max_matcher_length",
                limits.max_matcher_length,
                "every subscription",
            ),
            (
                "limits.max_pattern_memory",
                limits.max_pattern_memory,
                "every new URL pattern",
            ),
            (
                "limits.max_pattern_memory_per_address",
                limits.max_pattern_memory_per_address,
                "every subscription with a URL pattern",
            ),
            (
                "limits.max_connections",
                limits.max_connections,
                "every subscription",
            ),
            (
                "limits.max_connections_per_address",
                limits.max_connections_per_address,
                "every subscription",
            ),
            (
                "limits.max_connections_per_subject",
                limits.max_connections_per_subject,
                "every subscription with a token",
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    reason: format!("0 would refuse {refused}; leave the key out for its default"),
                });
            }
        }
        if self.limits.write_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "limits.write_timeout".into(),
                reason: "0s would close every subscriber at its first write that waits; \
                         use a bound such as 30s"
                    .into(),
            });
        }
        for (key, timeout) in [
            (
                "limits.request_head_timeout",
                self.limits.request_head_timeout,
            ),
            (
                "limits.request_body_timeout",
                self.limits.request_body_timeout,
            ),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    reason: "0s would close every connection before its request; \
                             use a bound such as 10s"
                        .into(),
                });
            }
        }
        for origin in &self.cors.origins {
            // A pattern such as `https://*.example.com` (which the reference
            // hub takes) would parse, and never match: no browser sends it.
            if origin.contains('*') {
                return Err(ConfigError::Invalid {
                    key: "cors.origins".into(),
                    reason: format!(
                        "`{origin}` holds a `*`: origins are compared whole, with no \
                         wildcard; list each origin, such as https://app.example.com"
                    ),
                });
            }
            // Browsers send `Origin` as scheme://host[:port], and the match
            // is byte for byte: a path or a trailing slash would never match.
            let serialized = Url::parse(origin)
                .ok()
                .map(|u| u.origin().ascii_serialization());
            if serialized.as_deref() != Some(origin.as_str()) {
                let hint = match serialized.filter(|s| s != "null") {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => String::new(),
                };
                return Err(ConfigError::Invalid {
                    key: "cors.origins".into(),
                    reason: format!(
                        "`{origin}` is not an origin such as https://app.example.com \
                         (scheme, host and port only; `*` is never allowed){hint}"
                    ),
                });
            }
        }
        if let Some(url) = &self.hub_url
            && (!url.username().is_empty() || url.password().is_some())
        {
            // Not echoed: the point is that it holds a secret.
            return Err(ConfigError::Invalid {
                key: "hub_url".into(),
                reason: "it holds user information (`user:password@`), which the hub would \
                         publish in its metadata document and every token would need in its \
                         audience; give the URL clients reach the hub at, without credentials"
                    .into(),
            });
        }
        if let Some(url) = &self.hub_url
            && let Err(reason) = crate::routable_hub_path(url)
        {
            return Err(ConfigError::Invalid {
                key: "hub_url".into(),
                reason,
            });
        }
        if let Some(url) = &self.hub_url
            && (!matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some())
        {
            return Err(ConfigError::Invalid {
                key: "hub_url".into(),
                reason: format!(
                    "`{url}` is not an http(s) URL without query or fragment, \
                     such as https://example.com/.well-known/mercure"
                ),
            });
        }
        if !is_cookie_name(&self.auth.cookie_name) {
            return Err(ConfigError::Invalid {
                key: "auth.cookie_name".into(),
                reason: format!("`{}` is not a cookie name", self.auth.cookie_name),
            });
        }
        self.check_listeners()?;
        for (index, issuer) in self.auth.issuers.iter().enumerate() {
            if let Some(url) = &issuer.jwks_url {
                // The value is not echoed whole: it may hold credentials.
                let reason = match Url::parse(url) {
                    Err(error) => Some(format!("not a URL ({error})")),
                    Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
                        "`{}` is not an http(s) URL",
                        herald_token::jwks::redacted(url)
                    )),
                    Ok(_) => None,
                };
                if let Some(reason) = reason {
                    return Err(ConfigError::Invalid {
                        key: format!("auth.issuers[{index}].jwks_url"),
                        reason,
                    });
                }
            }
        }
        self.algorithms()?;
        self.log.check()?;
        self.tls.load()?;
        // A throwaway in-memory hub compiles the issuers' matchers like the real one.
        let hub = Hub::builder(self.hub_url()).build();
        self.compatibility()?;
        self.verifier(&hub).map(|_| ())
    }

    /// The algorithms of `auth.algorithms`.
    fn algorithms(&self) -> Result<Vec<Algorithm>, ConfigError> {
        if self.auth.algorithms.is_empty() {
            return Err(ConfigError::Invalid {
                key: "auth.algorithms".into(),
                reason: "no algorithm would verify no token; list at least one of \
                         EdDSA, ES256, RS256, HS256"
                    .into(),
            });
        }
        self.auth
            .algorithms
            .iter()
            .map(|name| {
                Algorithm::from_name(name).ok_or_else(|| ConfigError::Invalid {
                    key: "auth.algorithms".into(),
                    reason: format!(
                        "unsupported algorithm `{name}` (supported: EdDSA, ES256, RS256, HS256)"
                    ),
                })
            })
            .collect()
    }

    /// The pre-draft-08 protocol's key sets, when `[compatibility]` is on.
    fn compatibility(&self) -> Result<Option<Compatibility>, ConfigError> {
        let c = &self.compatibility;
        let has_keys = !(c.publisher_hs256_secrets.is_empty()
            && c.publisher_public_key_files.is_empty()
            && c.subscriber_hs256_secrets.is_empty()
            && c.subscriber_public_key_files.is_empty());
        if !c.enabled {
            if c.cookie_name != crate::compat::LEGACY_COOKIE_NAME {
                return Err(ConfigError::Invalid {
                    key: "compatibility.cookie_name".into(),
                    reason: "it is set but the pre-draft-08 protocol is off, so no cookie of \
                             that name is read; set `enabled = true` or remove the key"
                        .into(),
                });
            }
            if has_keys {
                return Err(ConfigError::Invalid {
                    key: "compatibility.enabled".into(),
                    reason: "legacy token keys are set but the pre-draft-08 protocol is off; \
                             set `enabled = true` (accepting its weaker token checks) or remove the keys"
                        .into(),
                });
            }
            return Ok(None);
        }
        if !is_cookie_name(&c.cookie_name) {
            return Err(ConfigError::Invalid {
                key: "compatibility.cookie_name".into(),
                reason: format!("`{}` is not a cookie name", c.cookie_name),
            });
        }
        let algorithms = self.algorithms()?;
        let verifier = |role: &str, secrets: &[String], files: &[PathBuf]| {
            let keys = read_keys(&format!("compatibility.{role}"), secrets, files)?;
            if keys.is_empty() {
                return Ok(None);
            }
            LegacyVerifier::builder(algorithms.iter().copied())
                .keys(keys)
                .leeway(self.auth.leeway)
                .build()
                .map(Some)
                .map_err(|e| ConfigError::Invalid {
                    key: format!("compatibility ({role} keys)"),
                    reason: e.to_string(),
                })
        };
        Ok(Some(Compatibility::new(
            verifier(
                "publisher",
                &c.publisher_hs256_secrets,
                &c.publisher_public_key_files,
            )?,
            verifier(
                "subscriber",
                &c.subscriber_hs256_secrets,
                &c.subscriber_public_key_files,
            )?,
            c.cookie_name.clone(),
        )))
    }

    fn verifier(&self, hub: &Hub) -> Result<Option<Arc<Verifier>>, ConfigError> {
        if self.auth.issuers.is_empty() {
            return Ok(None);
        }
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.to_owned(),
            reason,
        };
        let algorithms = self.algorithms()?;
        let mut builder = Verifier::builder(hub.url().as_str(), algorithms)
            .leeway(self.auth.leeway)
            .jwks_refresh_interval(self.auth.jwks_refresh);
        for (index, issuer) in self.auth.issuers.iter().enumerate() {
            let key = |field: &str| format!("auth.issuers[{index}].{field}");
            if issuer.id.is_empty() {
                return Err(invalid(
                    &key("id"),
                    "every issuer needs an `id` (its `iss` value)".into(),
                ));
            }
            let mut trusted = Issuer::new(issuer.id.clone());
            for verifying in read_keys(
                &format!("auth.issuers[{index}]"),
                &issuer.hs256_secrets,
                &issuer.public_key_files,
            )? {
                trusted = trusted.with_key(verifying);
            }
            if let Some(url) = &issuer.jwks_url {
                trusted = trusted.with_jwks_url(url.clone());
            }
            builder = builder.issuer(trusted);
        }
        let matchers_hub = hub.clone();
        builder = builder.matcher_validator(move |topic| {
            let matcher_type = match topic.match_type {
                herald_token::claims::MatchType::Exact => herald_hub::MatcherType::Exact,
                herald_token::claims::MatchType::UrlPattern => herald_hub::MatcherType::UrlPattern,
            };
            matchers_hub
                .matcher("match", matcher_type, &topic.pattern)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let verifier = builder
            .build()
            .map_err(|e| invalid("auth", e.to_string()))?;
        Ok(Some(Arc::new(verifier)))
    }
}

/// Whether `name` can name a cookie: an RFC 9110 token (RFC 6265 §4.1.1).
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The keys of one key set: HS256 secrets, then every key of each PEM file. Errors name
/// `{prefix}.hs256_secrets` or `{prefix}.public_key_files`.
fn read_keys(
    prefix: &str,
    secrets: &[String],
    files: &[PathBuf],
) -> Result<Vec<VerifyingKey>, ConfigError> {
    let invalid = |field: &str, reason: String| ConfigError::Invalid {
        key: format!("{prefix}{field}"),
        reason,
    };
    let separator = if prefix.ends_with(']') { "." } else { "_" };
    let mut keys = Vec::with_capacity(secrets.len() + files.len());
    for secret in secrets {
        keys.push(
            VerifyingKey::hs256(secret.as_bytes())
                .map_err(|e| invalid(&format!("{separator}hs256_secrets"), e.to_string()))?,
        );
    }
    for file in files {
        let field = format!("{separator}public_key_files");
        let pem = std::fs::read(file)
            .map_err(|e| invalid(&field, format!("cannot read {}: {e}", file.display())))?;
        // Every key of a file is trusted: one file may carry an issuer's current and
        // next keys during a rotation.
        keys.extend(
            VerifyingKey::all_from_pem(&pem, None)
                .map_err(|e| invalid(&field, format!("{}: {e}", file.display())))?,
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors_with_line_and_key() {
        let error =
            Config::from_toml("listen = \"127.0.0.1:1\"\n\n[subscribers]\nheartbeet = \"1s\"\n")
                .unwrap_err();
        assert!(error.starts_with("line 4, at `heartbeet`:"), "{error}");
        assert!(error.contains("heartbeet"), "{error}");
    }

    #[test]
    fn integers_beyond_toml_range_are_errors_with_line() {
        let error =
            Config::from_toml("[limits]\nmax_body_bytes = 9223372036854775808\n").unwrap_err();
        assert!(error.starts_with("line 2"), "{error}");
        let config = Config::from_toml("[limits]\nmax_body_bytes = 9223372036854775807\n");
        assert_eq!(config.unwrap().limits.max_body_bytes, usize::MAX >> 1);
    }

    #[test]
    fn bad_values_are_errors_with_line() {
        let error = Config::from_toml("[subscribers]\nheartbeat = \"soon\"\n").unwrap_err();
        assert!(
            error.starts_with("line 2, at `subscribers.heartbeat`: invalid value: string \"soon\""),
            "{error}"
        );
    }

    #[test]
    fn zeros_that_would_disable_a_bound_are_refused_naming_the_key() {
        for (toml, expected) in [
            (
                "[subscribers]\nheartbeat = \"0s\"\n",
                "configuration key `subscribers.heartbeat`: 0s would send",
            ),
            (
                "[limits]\nwrite_timeout = \"0s\"\n",
                "configuration key `limits.write_timeout`: 0s would",
            ),
            (
                "[subscribers]\nqueue_bytes = 0\n",
                "configuration key `subscribers.queue_bytes`: 0 would",
            ),
            (
                "[limits]\nmax_topics = 0\n",
                "configuration key `limits.max_topics`: 0 would refuse every publish",
            ),
            (
                "[limits]\nmax_connections_per_subject = 0\n",
                "configuration key `limits.max_connections_per_subject`: 0 would refuse",
            ),
        ] {
            let config = Config::from_toml(toml).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}");
        }
    }

    #[tokio::test]
    async fn the_memory_log_keeps_max_bytes_of_updates() {
        let config = Config::from_toml("[log]\nkind = \"memory\"\nmax_bytes = 5000\n").unwrap();
        let log = config.log.open().unwrap();
        for n in 0..10 {
            let update = herald_hub::Update::new("https://example.com/t", "x".repeat(1000));
            let entry =
                herald_hub::Entry::encode(update, format!("e{n}"), std::time::SystemTime::now())
                    .unwrap();
            log.append(entry).await.unwrap();
        }
        let stats = log.stats();
        assert!(
            stats.bytes <= 5000 && stats.entries >= 3 && stats.discarded > 0,
            "{stats:?}"
        );
    }

    #[test]
    fn a_bad_value_is_named_by_its_key_and_a_secret_is_never_echoed() {
        for (toml, expected) in [
            (
                "listen = 5\n",
                "line 1, at `listen`: invalid type: integer `5`",
            ),
            (
                "[limits]\nmax_topics = \"many\"\n",
                "line 2, at `limits.max_topics`: invalid type: string \"many\"",
            ),
            (
                "[[auth.issuers]]\nid = \"a\"\nhs256_secrets = \"TOPSECRET-0123456789012345678901234\"\n",
                "line 3, at `auth.issuers[0].hs256_secrets`: invalid type: string <redacted>",
            ),
            (
                "[subscribers]\nheartbeet = \"5s\"\n",
                "line 2, at `heartbeet`",
            ),
            (
                "[auth]\nissuers = [{id = \"a\", hs256_secrets = \"TOPSECRET-0123456789012345678901234\"}]\n",
                "line 2, at `auth.issuers`: invalid type: string <redacted>",
            ),
            (
                "[[auth.issuers]]\nid = \"a\"\nhs256_secrets = 'TOP\"SECRET-0123456789012345678901234'\n",
                "line 3, at `auth.issuers[0].hs256_secrets`: invalid type: string <redacted>",
            ),
            (
                "[subscribers]\nqueue_capacity = 99999999999999999999\n",
                "line 2, at `subscribers.queue_capacity`: `99999999999999999999` is past the \
                 largest integer TOML holds",
            ),
            (
                "[[auth.issuers]]\nid = \"a\"\n[[auth.issuers]]\nid = 5\n",
                "line 4, at `auth.issuers[1].id`: invalid type: integer `5`",
            ),
            // Mistyped without quotes: not echoed either.
            (
                "[[auth.issuers]]\nid = \"a\"\nhs256_secrets = [1234567]\n",
                "line 3, at `auth.issuers[0].hs256_secrets`: invalid type: integer <redacted>",
            ),
        ] {
            let error = Config::from_toml(toml).unwrap_err();
            assert!(error.starts_with(expected), "{toml}: {error}");
            assert!(!error.contains("SECRET-"), "{error}");
            assert!(!error.contains("1234567"), "{error}");
        }
    }

    #[tokio::test]
    async fn the_memory_log_discards_updates_older_than_max_age() {
        let config = Config::from_toml("[log]\nkind = \"memory\"\nmax_age = \"1h\"\n").unwrap();
        let log = config.log.open().unwrap();
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        for (id, at) in [
            ("old", two_hours_ago),
            ("new", std::time::SystemTime::now()),
        ] {
            let update = herald_hub::Update::new("https://example.com/t", "x");
            let entry = herald_hub::Entry::encode(update, id.into(), at).unwrap();
            log.append(entry).await.unwrap();
        }
        assert_eq!(log.find("old").await.unwrap(), None);
        assert!(log.find("new").await.unwrap().is_some());
        assert_eq!(log.stats().entries, 1);
    }

    #[test]
    fn values_that_could_never_work_are_refused_naming_the_key() {
        for (toml, expected) in [
            (
                "[compatibility]\ncookie_name = \"legacy\"\n",
                "configuration key `compatibility.cookie_name`: it is set but the pre-draft-08 protocol is off",
            ),
            (
                "[cors]\norigins = [\"https://app.example.com/\"]\n",
                "did you mean `https://app.example.com`?",
            ),
            (
                "[cors]\norigins = [\"https://app.example.com/x\"]\n",
                "configuration key `cors.origins`",
            ),
            ("hub_url = \"ftp://x/y\"\n", "configuration key `hub_url`"),
            (
                "hub_url = \"https://x/.well-known/mercure?a=1\"\n",
                "configuration key `hub_url`",
            ),
            (
                "[auth]\ncookie_name = \"a b;c\"\n",
                "configuration key `auth.cookie_name`: `a b;c` is not a cookie name",
            ),
            (
                "listen = \"127.0.0.1:4000\"\n[admin]\nlisten = \"127.0.0.1:4000\"\n",
                "configuration key `admin.listen`: 127.0.0.1:4000 overlaps `listen`",
            ),
            (
                "listen = \"127.0.0.1:4000\"\n[admin]\nlisten = \"0.0.0.0:4000\"\n",
                "configuration key `admin.listen`: 0.0.0.0:4000 overlaps `listen`",
            ),
            (
                "[[auth.issuers]]\nid = \"a\"\njwks_url = \"not a url\"\n",
                "configuration key `auth.issuers[0].jwks_url`",
            ),
            (
                "[[auth.issuers]]\nid = \"a\"\njwks_url = \"https://u:pw@idp/j?key=K\"\n\
                 [auth]\nalgorithms = [\"none\"]\n",
                "unsupported algorithm `none`",
            ),
            (
                "[auth]\nalgorithms = [\"HS512\"]\n",
                "unsupported algorithm `HS512`",
            ),
            ("[auth]\nalgorithms = []\n", "list at least one"),
            (
                "[subscribers]\nheartbeat = \"10000000000000000000s\"\n",
                "configuration key `subscribers.heartbeat`:",
            ),
            (
                "[auth]\nleeway = \"101years\"\n",
                "is longer than 100 years",
            ),
            (
                "hub_url = \"https://admin:s3cret@x/.well-known/mercure\"\n",
                "configuration key `hub_url`: it holds user information",
            ),
            (
                "hub_url = \"https://x/:hub\"\n",
                "configuration key `hub_url`: its path segment `:hub` starts with `:`",
            ),
            (
                "hub_url = \"https://x/hubs/*\"\n",
                "configuration key `hub_url`: its path segment `*` starts with `*`",
            ),
            (
                "[log]\ndir = \"\"\n",
                "configuration key `log.dir`: it is empty",
            ),
            (
                "[subscriptions]\npage_size = 0\n",
                "configuration key `subscriptions.page_size`: 0:",
            ),
            (
                "[subscriptions]\nmax_pending_events = 0\n",
                "configuration key `subscriptions.max_pending_events`: 0:",
            ),
            (
                "[subscriptions]\nmax_pending_bytes = 0\n",
                "configuration key `subscriptions.max_pending_bytes`: 0: no subscription event",
            ),
            (
                "[log]\nmax_replay_readers = 0\n",
                "configuration key `log.max_replay_readers`: 0: no replay could read",
            ),
        ] {
            let config = Config::from_toml(toml).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{toml}: {error}");
        }
        let fine = Config::from_toml(
            "hub_url = \"https://x/.well-known/mercure\"\n[cors]\norigins = [\"https://a.example:8443\"]\n\
             [auth]\nleeway = \"100years\"\n",
        )
        .unwrap();
        fine.validate().unwrap();
    }

    #[test]
    fn request_timeouts_of_zero_are_refused_naming_the_key() {
        for key in ["request_head_timeout", "request_body_timeout"] {
            let config = Config::from_toml(&format!("[limits]\n{key} = \"0s\"\n")).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("configuration key `limits.{key}`: 0s")),
                "{error}"
            );
        }
        let config = Config::from_toml(
            "[limits]\nrequest_head_timeout = \"2s\"\nrequest_body_timeout = \"3s\"\n",
        )
        .unwrap();
        let (herald, _) = config
            .build_with_log(Arc::new(herald_hub::MemoryLog::new(8)))
            .unwrap();
        assert_eq!(
            herald.settings().request_head_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            herald.settings().request_body_timeout,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn the_default_configuration_builds() {
        let dir = std::env::temp_dir().join(format!("herald-config-test-{}", std::process::id()));
        let mut config = Config::default();
        config.log.dir = dir.clone();
        config.build().unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(
            Config::default().hub_url().as_str(),
            "http://127.0.0.1:3000/.well-known/mercure"
        );
    }

    #[test]
    fn a_wildcard_cors_origin_is_refused() {
        let mut config = Config::default();
        config.log.kind = "memory".into();
        config.cors.origins = vec!["*".into()];
        let Err(error) = config.build() else {
            panic!("`*` accepted")
        };
        assert!(error.to_string().contains("cors.origins"), "{error}");
    }
}
