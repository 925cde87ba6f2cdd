//! `herald token` (to be written).

use crate::error::CliError;

/// Arguments of `herald token`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `herald token`.
pub fn run(_args: Args) -> Result<(), CliError> {
    Err(CliError::Runtime("not implemented yet".into()))
}
