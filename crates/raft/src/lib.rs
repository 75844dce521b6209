//! Raft core (docs to come).
#![forbid(unsafe_code)]

mod action;
mod candidate;
mod changes;
mod config;
mod election;
mod error;
mod follower;
mod leader;
mod log;
mod membership;
mod message;
pub mod quorum;
mod raft;
mod read_only;
mod snapshot;
mod storage;
pub mod tracker;
mod types;

pub use action::Action;
pub use changes::ConfChange;
pub use config::{Config, ConfigError};
pub use error::{LeaderHint, ProposeError, ReadError, StepError, TransferError};
pub use log::RaftLog;
pub use message::*;
pub use raft::{Raft, Role, Status};
pub use snapshot::SnapshotError;
pub use storage::{InitialState, MemStorage, MemStorageCore, Storage, StorageError};
pub use types::*;
