//! raftkv: a strongly consistent, Redis-compatible key-value server on Raft.
//!
//! `raftkv server` runs one node; `raftkv cluster up` a local cluster. Any
//! Redis client talks to it: writes go through the Raft log (answered once
//! applied), reads are linearizable (ReadIndex) unless the connection said
//! `READONLY`. A follower answers a key command with `-MOVED <slot> <leader>`
//! (so `redis-cli -c` follows it), `-CLUSTERDOWN no leader` when it knows
//! none, and `-TIMEOUT` when the outcome of a write is unknown.
#![forbid(unsafe_code)]

mod admin;
pub mod bench;
pub mod config;
mod connection;
pub mod machine;
pub mod resp;
pub mod server;
pub mod slot;

pub use config::ServerConfig;
pub use server::Server;
