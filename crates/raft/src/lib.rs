//! Raft core (work in progress).
mod action;
mod config;
mod message;
mod storage;
mod types;

pub use action::Action;
pub use config::{Config, ConfigError};
pub use message::*;
pub use storage::{InitialState, MemStorage, MemStorageCore, Storage, StorageError};
pub use types::*;
