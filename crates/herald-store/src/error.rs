use std::path::PathBuf;

/// Why the durable log cannot be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory or a file in it could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
    /// The data directory was written by an incompatible version of herald.
    #[error("{path}: {reason}")]
    Incompatible {
        /// The version marker file.
        path: PathBuf,
        /// What was found and what was expected.
        reason: String,
    },
    /// The store file is in use by another open log, in this process or
    /// another: nothing is wrong with it.
    #[error("{path} is in use: {reason}")]
    Locked {
        /// The store file.
        path: PathBuf,
        /// Who may hold it, and what to do.
        reason: String,
    },
    /// The store file is damaged.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The log did not close cleanly: what was acknowledged may not all be
    /// durable or checkpointed (the journal keeps it for the next open).
    #[error("{reason}")]
    Unclean {
        /// The store file.
        path: PathBuf,
        /// What could not be done, naming the file it concerns.
        reason: String,
    },
    /// The embedded database failed.
    #[error("{path}: the database failed: {reason}")]
    Database {
        /// The store file.
        path: PathBuf,
        /// The database's error.
        reason: String,
    },
}
