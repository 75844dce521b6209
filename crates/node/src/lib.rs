//! The raftkv runtime (docs to come).
#![forbid(unsafe_code)]

mod applier;
mod backend;
pub mod codec;
mod config;
mod core;
mod error;
mod node;
mod state_machine;
mod transport;

pub use config::{NetworkConfig, NodeConfig, StorageConfig};
pub use core::NodeStatus;
pub use error::{NodeError, StartError};
pub use node::Node;
pub use state_machine::StateMachine;
pub use transport::ChannelNetwork;
