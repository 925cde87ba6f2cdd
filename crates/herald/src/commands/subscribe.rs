//! `herald subscribe` (to be written).

use crate::error::CliError;

/// Arguments of `herald subscribe`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `herald subscribe`.
pub async fn run(_args: Args) -> Result<(), CliError> {
    Err(CliError::Runtime("not implemented yet".into()))
}
