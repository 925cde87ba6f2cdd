//! `herald publish` (to be written).

use crate::error::CliError;

/// Arguments of `herald publish`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `herald publish`.
pub async fn run(_args: Args) -> Result<(), CliError> {
    Err(CliError::Runtime("not implemented yet".into()))
}
