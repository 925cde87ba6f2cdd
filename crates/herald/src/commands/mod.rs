//! One module per subcommand.

pub mod publish;
pub mod subscribe;
pub mod token;
