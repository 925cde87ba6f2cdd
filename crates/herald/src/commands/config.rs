//! `herald config check`: validates a configuration and prints it, each value
//! with its source.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use crate::commands::overrides::{Overrides, Source, leaf_keys};
use crate::error::CliError;

/// Arguments of `herald config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Validate a configuration and print the effective values with their sources.
    Check {
        /// The file to check (else `--config` / `HERALD_CONFIG`, else defaults only).
        file: Option<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
    },
}

/// Runs `herald config`.
pub fn run(args: Args) -> Result<(), CliError> {
    let ConfigCommand::Check { file, overrides } = args.command;
    // The argument names the file to check; with `--config` too, which one
    // was meant is a guess (`HERALD_CONFIG` from the environment gives way).
    if let (Some(file), Some(flag)) = (&file, &overrides.config) {
        let from_env = std::env::var_os("HERALD_CONFIG").is_some_and(|env| *flag == env);
        if !from_env && file != flag {
            return Err(CliError::Usage(format!(
                "two configuration files: {} and --config {}; check one at a time",
                file.display(),
                flag.display()
            )));
        }
    }
    let loaded = overrides.load(file.as_deref())?;
    loaded
        .config
        .validate()
        .map_err(|e| CliError::Usage(loaded.explain(&e)))?;
    let value = toml::Value::try_from(&loaded.config)
        .map_err(|e| CliError::Runtime(format!("cannot print the configuration: {e}")))?;
    let mut out =
        String::from("# herald configuration: valid. Effective values, each with its source.\n");
    if loaded.config.hub_url.is_none() {
        let _ = writeln!(
            out,
            "hub_url = \"{}\"  # default (from listen)",
            loaded.config.hub_url()
        );
    }
    // Keys that have no value print nothing in TOML: say they are unset,
    // and what that turns off.
    let config = &loaded.config;
    for (unset, key, meaning) in [
        (
            config.admin.listen.is_none(),
            "admin.listen",
            "the admin listener is off",
        ),
        (
            config.tls.cert_file.is_none(),
            "tls.cert_file",
            "TLS is off",
        ),
        (config.tls.key_file.is_none(), "tls.key_file", "TLS is off"),
    ] {
        if unset {
            let _ = writeln!(out, "# {key}: unset, {meaning}");
        }
    }
    for warning in loaded.warnings() {
        let _ = writeln!(out, "# warning: {warning}");
        let _ = writeln!(std::io::stderr(), "herald: warning: {warning}");
    }
    for key in leaf_keys(&value) {
        let Some(leaf) = lookup(&value, &key) else {
            continue;
        };
        let source = loaded
            .sources
            .iter()
            .find(|(k, _)| *k == &key || key.starts_with(&format!("{k}.")))
            .map_or(Source::Default, |(_, s)| s.clone());
        let _ = writeln!(out, "{key} = {}  # {source}", redact(&key, leaf));
    }
    // A reader that stopped early (`| head`) is not an error; any other
    // failure to write is.
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Runtime(format!(
            "cannot print the configuration: {e}"
        ))),
        _ => Ok(()),
    }
}

fn lookup<'v>(value: &'v toml::Value, key: &str) -> Option<&'v toml::Value> {
    key.split('.').try_fold(value, |v, part| v.get(part))
}

/// Secrets are never printed: HS256 secrets, and a JWK Set URL's
/// credentials and query (which may carry an API key).
fn redact(key: &str, value: &toml::Value) -> String {
    let mut value = value.clone();
    match (key, &mut value) {
        ("auth.issuers", toml::Value::Array(issuers)) => {
            for issuer in issuers {
                if let Some(secrets) = issuer.get_mut("hs256_secrets") {
                    redact_secrets(secrets);
                }
                if let Some(toml::Value::String(url)) = issuer.get_mut("jwks_url") {
                    *url = herald_token::jwks::redacted(url);
                }
            }
        }
        (
            "compatibility.publisher_hs256_secrets" | "compatibility.subscriber_hs256_secrets",
            secrets,
        ) => redact_secrets(secrets),
        _ => {}
    }
    value.to_string()
}

fn redact_secrets(secrets: &mut toml::Value) {
    if let toml::Value::Array(list) = secrets {
        for secret in list.iter_mut() {
            *secret = toml::Value::String("<redacted>".into());
        }
    }
}
