//! Deterministic simulation of raftkv clusters.
//!
//! One seed drives a whole cluster of [`raft`] cores in one thread, in virtual
//! time: a network with labrpc's fault model (6.824: drops, short delays,
//! long reordering, disconnection), a disk per node whose unsynced writes are
//! lost on a crash (except a random prefix that made it, the last possibly
//! torn), and the 6.824 tester's helpers (`check_one_leader`, `one`,
//! `n_committed`, ...) in [`harness`]. After every step the [`invariants`]
//! checker verifies Election Safety, Log Matching, Leader Completeness, State
//! Machine Safety, that commit never goes back and that nothing is applied
//! before it is committed. A failure names its seed; `RAFT_SEED=N` replays it
//! exactly, and `RAFT_SEEDS=K` runs `K` seeds per test.
//!
//! The driver in [`cluster`] carries out the core's actions exactly as the
//! contract in the `raft` crate docs says, so a bug in the contract shows up
//! here first.
//!
//! # KV chaos runs
//!
//! [`run::run`] turns the simulator on the store: every node applies its
//! committed entries to a `kv` store ([`kv_replica`]; snapshots carry the
//! store), [`kv_client`]s issue GET (through ReadIndex), SET, APPEND, INCRBY,
//! SET NX (compare-and-set against absent) and DEL on a small key set
//! ([`workload`]) under sessions, retrying with the same `(client, seq)`, and
//! the [`nemesis`] partitions (majority/minority, isolated leader, bridge,
//! one-way), clogs links, crashes and restarts, pauses, skews clocks, takes
//! snapshots, changes membership and transfers leadership. A run is a
//! safety phase under faults (invariants after every step), a liveness phase
//! on the healed cluster (every operation must complete within a bound),
//! then the [`linearizability`] check of the whole history. The `sim`
//! binary runs many seeds (`cargo run -p sim --release -- run --seeds
//! 0..2000`) or replays one with a trace (`-- run --seed N`); see
//! `docs/TESTING.md`.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod harness;
pub mod invariants;
pub mod kv_client;
pub mod kv_replica;
pub use lincheck as linearizability;
pub mod nemesis;
pub mod network;
pub mod node;
pub mod run;
pub mod workload;

pub use cluster::{Cluster, ClusterOptions, TICK_MS};
pub use network::NetworkConfig;
