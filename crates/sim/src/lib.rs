//! Deterministic simulation of raftkv clusters (docs to come).
#![forbid(unsafe_code)]

pub mod cluster;
pub mod harness;
pub mod invariants;
pub mod network;
pub mod node;

pub use cluster::{Cluster, ClusterOptions, TICK_MS};
pub use network::NetworkConfig;
