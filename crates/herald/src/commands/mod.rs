//! One module per subcommand.

pub mod publish;
pub mod serve;
pub mod subscribe;
pub mod token;
