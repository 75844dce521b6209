//! Subcommands of the `raftkv` binary that live in their own files.

pub mod chaos;
pub mod check_history;
