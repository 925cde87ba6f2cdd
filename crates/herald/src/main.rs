//! The `herald` command line.
//!
//! Map: [`commands`] holds one module per subcommand, each with its clap
//! arguments and a `run` function; [`error`] is the one error type, which
//! decides the exit code (2 for usage errors, 1 for runtime errors).

mod commands;
mod error;

use clap::{Parser, Subcommand};
use std::io::Write as _;

use crate::error::CliError;

// glibc's allocator keeps what a burst of subscriptions freed (all of
// 184 MB, 30 s after 10,000 URL patterns were let go, against jemalloc's
// 44 MB), and jemalloc holds an idle subscriber in 17% less
// (docs/benchmarks.md, change 30). The library crates leave the choice to
// the application that embeds them.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// herald: a Server-Sent Events hub (Mercure) and its tools.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub (Mercure, draft-08).
    Serve(Box<commands::serve::Args>),
    /// Follow an SSE URL like a browser's EventSource, printing each event.
    ///
    /// Like a browser's, it reconnects after network errors (the first
    /// connection's included: the server may not be up yet), printing each on
    /// stderr, and stops for good at a status other than 200, a content type
    /// other than text/event-stream or a TLS certificate that fails
    /// verification (exit 1), or at a 204 (exit 0).
    Subscribe(commands::subscribe::Args),
    /// Publish an update to a Mercure hub and print its id.
    Publish(commands::publish::Args),
    /// Check a configuration file and print the effective configuration.
    Config(commands::config::Args),
    /// Check the durable log's files, or rebuild its topic index (hub stopped).
    Log(commands::log::Args),
    /// Mint an RFC 9068 access token for a Mercure hub (development and tests).
    Token(Box<commands::token::Args>),
    /// Measure a Mercure hub: fan-out, throughput, idle memory, connection storms.
    Bench(commands::bench::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            init_tracing(args.log_format);
            runtime().and_then(|rt| rt.block_on(commands::serve::run(*args)))
        }
        Command::Subscribe(args) => {
            // The event source's warnings (an id it cannot send back) are
            // for the person following the stream.
            init_terminal_tracing("herald_client=warn");
            runtime().and_then(|rt| rt.block_on(commands::subscribe::run(args)))
        }
        Command::Publish(args) => {
            runtime().and_then(|rt| rt.block_on(commands::publish::run(args)))
        }
        Command::Token(args) => commands::token::run(*args),
        Command::Bench(args) => runtime().and_then(|rt| rt.block_on(commands::bench::run(args))),
        Command::Config(args) => commands::config::run(args),
        Command::Log(args) => {
            // What the store does at open (a journal applied, an index
            // rebuilt) is for the operator at the terminal.
            init_terminal_tracing("herald_store=info");
            commands::log::run(args)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // A closed stderr is no reason to panic: the exit status says it.
            let _ = writeln!(std::io::stderr(), "herald: {error}");
            error.exit_code()
        }
    }
}

/// Logs what `filter` lets through to stderr, for a person at a terminal:
/// no timestamps, no module paths.
fn init_terminal_tracing(filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
}

fn init_tracing(format: commands::serve::LogFormat) {
    let (filter, refused) = match std::env::var("HERALD_LOG") {
        Ok(text) => match tracing_subscriber::EnvFilter::try_new(&text) {
            Ok(filter) => (filter, None),
            Err(error) => (
                tracing_subscriber::EnvFilter::new("info"),
                Some((text, error)),
            ),
        },
        Err(_) => (tracing_subscriber::EnvFilter::new("info"), None),
    };
    // Colours only for a person at a terminal: in a file or journald the
    // escape codes are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        commands::serve::LogFormat::Text => builder.init(),
        commands::serve::LogFormat::Json => builder.json().init(),
    }
    // Said once the subscriber is up, so it reaches the log like any warning.
    if let Some((text, error)) = refused {
        tracing::warn!(
            "HERALD_LOG={:?} is not a log filter ({error}); logging at `info`",
            text
        );
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))
}
