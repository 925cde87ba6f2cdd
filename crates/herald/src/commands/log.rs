//! `herald log check` and `herald log reindex`: the durable log's files,
//! checked and repaired with the hub stopped.
//!
//! Records carry checksums that every read verifies; the id and topic
//! indexes do not, and a key missing from the topic index silently leaves
//! an update out of replays of its topic. `check` reads the whole store and
//! names what is damaged; `reindex` rebuilds the topic index from the
//! records, which repairs what `check` calls the topic index's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use herald_store::{
    Check, DurableLog, FORMAT_MARKER, MAX_LISTED, Problems, StoreConfig, VERSION_FILE,
};

use crate::commands::overrides::path;
use crate::commands::print_line;
use crate::error::CliError;

/// Arguments of `herald log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LogCommand {
    /// Read every update and both indexes of the durable log, and say what
    /// is damaged (exit 1 when anything is). Stop the hub first.
    ///
    /// Opens the log as `herald serve` does (applying what its journal
    /// holds after a crash), without retention.
    Check(Target),
    /// Rebuild the topic index from every update, repairing what `check`
    /// reports as the topic index's. Stop the hub first.
    Reindex(Target),
}

/// Which durable log.
#[derive(Debug, clap::Args)]
struct Target {
    /// Configuration file (TOML): its `log.dir` names the data directory.
    #[arg(long, short, env = "HERALD_CONFIG", value_parser = path("HERALD_CONFIG"))]
    config: Option<PathBuf>,
    /// Data directory of the durable log (instead of the configuration's).
    #[arg(long, env = "HERALD_DATA_DIR", value_parser = path("HERALD_DATA_DIR"))]
    data_dir: Option<PathBuf>,
}

impl Target {
    /// The data directory, refused unless it holds a durable log: opening
    /// would create one, and a check of a mistyped path must not.
    fn dir(&self) -> Result<PathBuf, CliError> {
        let dir = match (&self.data_dir, &self.config) {
            (Some(dir), _) => dir.clone(),
            (None, config) => {
                let config = match config {
                    Some(file) => herald_server::Config::from_file(file)
                        .map_err(|e| CliError::Usage(e.to_string()))?,
                    None => herald_server::Config::default(),
                };
                if config.log.kind != "durable" {
                    return Err(CliError::Usage(format!(
                        "the configuration keeps its log in memory (log.kind = {:?}): there \
                         are no files to check; give --data-dir for a durable log's directory",
                        config.log.kind
                    )));
                }
                config.log.dir
            }
        };
        let marker = dir.join(VERSION_FILE);
        if !marker.is_file() {
            return Err(CliError::Usage(format!(
                "{} holds no durable log (it has no {VERSION_FILE} file); give the data \
                 directory `herald serve` uses (--data-dir, or log.dir in --config)",
                dir.display()
            )));
        }
        // Opening converts an older format for good, which a check must not
        // do behind the operator's back.
        let format = std::fs::read(&marker)
            .map_err(|e| CliError::Runtime(format!("cannot read {}: {e}", marker.display())))?;
        let format = String::from_utf8_lossy(&format);
        if format.trim() != FORMAT_MARKER {
            return Err(CliError::Usage(format!(
                "{} names the format {:?}, not this herald's `{FORMAT_MARKER}`: `herald \
                 serve` converts an older format at its next start (docs/deployment.md) \
                 and refuses another; check the log with the herald that wrote it, or \
                 after that start",
                marker.display(),
                format.trim()
            )));
        }
        Ok(dir)
    }
}

/// Runs `herald log`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        LogCommand::Check(target) => check(&target.dir()?),
        LogCommand::Reindex(target) => reindex(&target.dir()?),
    }
}

/// Opens the log in `dir` as `herald serve` would, but for retention.
fn open(config: StoreConfig) -> Result<DurableLog, CliError> {
    DurableLog::open(config).map_err(|e| CliError::Runtime(e.to_string()))
}

fn check(dir: &Path) -> Result<(), CliError> {
    let log = open(StoreConfig::new(dir))?;
    let check = log.check().map_err(|e| CliError::Runtime(e.to_string()));
    log.close().map_err(|e| CliError::Runtime(e.to_string()))?;
    let check = check?;
    print_line(&report(dir, &check))?;
    if check.is_healthy() {
        Ok(())
    } else if check.only_topic_index() {
        Err(CliError::Runtime(format!(
            "{} has damage in its topic index only: `herald log reindex --data-dir {}` \
             rebuilds it from the updates",
            dir.display(),
            dir.display()
        )))
    } else {
        Err(CliError::Runtime(format!(
            "{} is damaged (see above): restore it from a backup if there is one; the \
             hub still serves every update that reads",
            dir.display()
        )))
    }
}

/// What `check` found, for people.
fn report(dir: &Path, check: &Check) -> String {
    let mut out = String::new();
    let _ = write!(out, "{}: {} updates", dir.display(), check.records);
    if let Some((first, last)) = check.positions {
        let _ = write!(out, " (positions {first} to {last})");
    }
    let _ = write!(
        out,
        ", the topic index through position {}",
        check.indexed_through
    );
    let kinds: [(&str, &Problems); 5] = [
        ("damaged updates", &check.damaged),
        (
            "topics missing from the topic index",
            &check.unindexed_topics,
        ),
        ("topic index keys pointing nowhere", &check.stray_topic_keys),
        ("ids missing from the id index", &check.unindexed_ids),
        ("id index entries pointing elsewhere", &check.stray_ids),
    ];
    for (what, problems) in kinds {
        let _ = write!(out, "\n{what}: {}", problems.count);
        for (position, why) in &problems.listed {
            let _ = write!(
                out,
                "\n  position {position}: {}",
                crate::commands::escape_controls(why)
            );
        }
        if problems.count > MAX_LISTED as u64 {
            let _ = write!(out, "\n  … and {} more", problems.count - MAX_LISTED as u64);
        }
    }
    let _ = write!(
        out,
        "\n{}",
        if check.is_healthy() {
            "healthy"
        } else {
            "damaged"
        }
    );
    out
}

fn reindex(dir: &Path) -> Result<(), CliError> {
    let started = Instant::now();
    let mut config = StoreConfig::new(dir);
    config.rebuild_topic_index = true;
    let log = open(config)?;
    let check = log.check().map_err(|e| CliError::Runtime(e.to_string()));
    log.close().map_err(|e| CliError::Runtime(e.to_string()))?;
    let check = check?;
    print_line(&format!(
        "{}: rebuilt the topic index of {} updates in {:.1} s; topics missing from it: {}, \
         keys pointing nowhere: {}",
        dir.display(),
        check.records,
        started.elapsed().as_secs_f64(),
        check.unindexed_topics.count,
        check.stray_topic_keys.count
    ))
}
