use std::process::ExitCode;

/// Why a command failed; the variant decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line itself is wrong (a bad flag value, a bad URL): exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The command was well-formed but failed while running: exit code 1.
    #[error("{0}")]
    Runtime(String),
    /// Stopped by SIGINT (Ctrl-C) before its end: exit code 130, as a shell
    /// reports a command the signal ended.
    #[error("{0}")]
    Interrupted(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Runtime(_) => ExitCode::from(1),
            CliError::Interrupted(_) => ExitCode::from(130),
        }
    }
}
