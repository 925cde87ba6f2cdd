//! `herald config check`: validates a configuration and prints it, each value
//! with its source.

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
    let loaded = overrides.load(file.as_deref())?;
    loaded
        .config
        .validate()
        .map_err(|e| CliError::Usage(loaded.explain(&e)))?;
    let value = toml::Value::try_from(&loaded.config)
        .map_err(|e| CliError::Runtime(format!("cannot print the configuration: {e}")))?;
    println!("# herald configuration: valid. Effective values, each with its source.");
    if loaded.config.hub_url.is_none() {
        println!(
            "hub_url = \"{}\"  # default (from listen)",
            loaded.config.hub_url()
        );
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
        println!("{key} = {}  # {source}", redact(&key, leaf));
    }
    Ok(())
}

fn lookup<'v>(value: &'v toml::Value, key: &str) -> Option<&'v toml::Value> {
    key.split('.').try_fold(value, |v, part| v.get(part))
}

/// Secrets are never printed.
fn redact(key: &str, value: &toml::Value) -> String {
    if key == "auth.issuers"
        && let toml::Value::Array(issuers) = value
    {
        let shown: Vec<toml::Value> = issuers
            .iter()
            .map(|issuer| {
                let mut issuer = issuer.clone();
                if let Some(secrets) = issuer.get_mut("hs256_secrets")
                    && let toml::Value::Array(list) = secrets
                {
                    for secret in list.iter_mut() {
                        *secret = toml::Value::String("<redacted>".into());
                    }
                }
                issuer
            })
            .collect();
        return toml::Value::Array(shown).to_string();
    }
    value.to_string()
}
