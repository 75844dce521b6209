//! raftkv: a strongly consistent, Redis-compatible key-value server on Raft.
//!
//! `raftkv server` runs one node; `raftkv cluster up` a local cluster. Any
//! Redis client talks to it: writes go through the Raft log (answered once
//! applied), reads are linearizable (ReadIndex, or the leader's lease with
//! `--lease-read`) unless the connection said `READONLY`. A follower answers a key command with `-MOVED <slot> <leader>`
//! (so `redis-cli -c` follows it), `-CLUSTERDOWN no leader` when it knows
//! none, and `-TIMEOUT` when the outcome of a write is unknown; a key
//! command refused with nothing done (leadership transfer, entry overwritten
//! by a new leader, node stopping) gets `-TRYAGAIN`.
//!
//! The client port is bound first, before the node opens its log and
//! restores its snapshot (seconds with a large data directory): meanwhile
//! `PING` and `INFO` answer (`INFO` with `loading:1` and no Raft section),
//! and every command that needs the node, reads included (even after
//! `READONLY`), gets `-CLUSTERDOWN no leader known yet: this node is
//! starting`, with nothing executed. Startup logs each stage and its
//! duration at info level: port bound, log opened, snapshot restored, node
//! started, serving, and the applier's "applied the log recovered at start".
//!
//! - [`Client`]: the async Rust client: finds the leader, follows `-MOVED`,
//!   retries with backoff within a deadline, and sends writes under a client
//!   session ([`session`], `RAFTKV.SESSION <id> <seq> <command...>`) so a
//!   retried write is applied exactly once.
//! - [`chaos`]: real `raftkv` processes under SIGKILL, SIGSTOP and (in
//!   network namespaces) partitions, with clients recording a history
//!   checked by `lincheck` (`raftkv chaos`; `raftkv check-history FILE`
//!   checks any history).
#![forbid(unsafe_code)]

mod admin;
pub mod bench;
pub mod chaos;
pub mod client;
pub mod commands;
pub mod config;
mod connection;
pub mod machine;
pub mod resp;
pub mod server;
pub mod session;
pub mod slot;

pub use client::{Client, ClientConfig, ClientError};
pub use config::ServerConfig;
pub use server::Server;
