//! One module per subcommand.

pub mod bench;
pub mod config;
pub mod overrides;
pub mod publish;
pub mod serve;
pub mod subscribe;
pub mod token;
