//! The raftkv runtime: a Raft node a program starts, that persists to its
//! WAL, talks to its peers over TCP and applies committed commands to the
//! program's state machine.
//!
//! ```no_run
//! # use std::{collections::BTreeMap, io};
//! # use node::{NetworkConfig, Node, NodeConfig, StateMachine, StorageConfig};
//! # #[derive(Default)] struct Counter(u64);
//! # impl StateMachine for Counter {
//! #     type Output = u64;
//! #     fn apply(&mut self, _: u64, _: &[u8]) -> u64 { self.0 += 1; self.0 }
//! #     fn snapshot(&self, out: &mut dyn io::Write) -> io::Result<()> { out.write_all(&self.0.to_le_bytes()) }
//! #     fn restore(&mut self, input: &mut dyn io::Read) -> io::Result<()> {
//! #         let mut b = [0; 8]; input.read_exact(&mut b)?; self.0 = u64::from_le_bytes(b); Ok(())
//! #     }
//! # }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let peers = BTreeMap::from([
//!     (1, "127.0.0.1:7381".parse()?),
//!     (2, "127.0.0.1:7382".parse()?),
//!     (3, "127.0.0.1:7383".parse()?),
//! ]);
//! let listen = peers[&1];
//! let config = NodeConfig::new(1, peers, StorageConfig::Wal("data/node1".into()), NetworkConfig::Tcp { listen });
//! let node = Node::start(config, Counter::default()).await?; // opens or creates the WAL
//! let out = node.propose(bytes::Bytes::from_static(b"incr")).await?; // resolves when applied here
//! let v = node.read(|c: &Counter| c.0).await?; // linearizable (ReadIndex)
//! node.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! `examples/embed.rs` is the same as a complete program.
//!
//! # How it runs
//!
//! * **The core task** (tokio) owns the [`raft::Raft`] core. It ticks on a
//!   timer, steps peer messages, takes requests — everything queued at once,
//!   so proposals that arrive together leave in one AppendEntries — and
//!   carries out the core's actions under the driver contract of the `raft`
//!   crate: persists go to the WAL's group-commit writer thread; the leader's
//!   replication messages leave at once; every other message waits until the
//!   writes before it are durable.
//! * **The applier task** (tokio) applies committed entries in order (under
//!   the write lock of the state machine), answers each proposal with its
//!   output, publishes the applied index, and takes snapshots by policy
//!   (entries or command bytes since the last one:
//!   [`NodeConfig::snapshot_entries`], [`NodeConfig::snapshot_bytes`]) or on
//!   request, writing them straight to a snapshot file (never one buffer) on
//!   the runtime's blocking pool. A long batch (a restart's replay) is
//!   applied on the blocking pool too, beside the core. It is a task, not a
//!   thread, because waking a parked thread costs tens of microseconds on a
//!   virtual machine and a commit would pay it twice (core → applier →
//!   proposer).
//! * **Reads** run on the reader's own task, under the read lock, once the
//!   published applied index reaches their read index: a read costs no trip
//!   to the applier.
//!   Under [`raft::Config::lease_read`] the core publishes the leader's lease
//!   (its end by the monotonic clock, and the index reads wait for) after
//!   every step, and a read within it does not go to the core at all.
//! * **The clock**: the core counts ticks from the time elapsed since it
//!   started, not from timer wake-ups, so after a late wake-up or a paused
//!   process it first catches up on every tick missed; a lease counted in
//!   ticks then never outlasts real time.
//! * **The transport** (see `transport.rs`): one TCP connection per peer
//!   direction, a handshake naming cluster, node and client address, frames
//!   of the versioned [`codec`], bounded coalescing writer queues, reconnect
//!   with capped backoff. [`ChannelNetwork`] replaces it in tests and
//!   benchmarks, as [`StorageConfig::Memory`] replaces the WAL.
//!
//! # Guarantees
//!
//! * A proposal's answer comes after the entry was applied here, which
//!   happens only once it is committed (a majority has it on disk) and it is
//!   on this node's disk too.
//! * [`NodeError::Unknown`] is the answer whenever the outcome cannot be
//!   known (timeout, the node stopped); a definite failure
//!   ([`NodeError::NotLeader`], [`NodeError::Refused`]) means nothing was or
//!   ever will be done.
//! * A failed write or fsync stops the node: every later request fails with
//!   [`NodeError::Storage`]; the program should exit.
#![forbid(unsafe_code)]

mod applier;
mod backend;
pub mod codec;
mod config;
mod core;
mod error;
mod lease;
mod node;
mod shared;
mod state_machine;
mod ticker;
mod transport;

pub use config::{NetworkConfig, NodeConfig, StorageConfig};
pub use core::NodeStatus;
pub use error::{NodeError, StartError};
pub use node::{Node, Proposal};
pub use state_machine::StateMachine;
pub use transport::ChannelNetwork;
