//! The Raft consensus algorithm as a deterministic state machine with no IO.
//!
//! This crate is the heart of raftkv: leader election with randomized
//! timeouts, pre-vote and check-quorum; log replication with the consistency
//! check, fast backtracking, pipelining within bounded inflight windows and
//! batching (small batches wait for an answer once a few messages are in
//! flight, [`Config::coalesce_inflight_messages`]); the commit rule of
//! §5.4.2 with a no-op at the start of every term; ReadIndex reads, and
//! lease reads as an option ([`Config::lease_read`]); leadership transfer;
//! chunked, resumable snapshots; and joint-consensus membership changes
//! with learners. Names and rules follow the Raft paper (Ongaro &
//! Ousterhout) and Ongaro's thesis; comments cite their sections
//! (`§5.4.2`, "thesis §10.2.1").
//!
//! It has no threads, no clock, no disk and no sockets: the same inputs give
//! the same outputs, bit for bit, which is what lets `sim` run whole clusters
//! under faults from one seed. It is written by hand because it *is* the
//! product; a generic state-machine or actor framework would hide exactly the
//! rules the tests must see.
//!
//! # The driver contract
//!
//! A driver (the `node` runtime, the simulator, or your own) owns a [`Raft`]
//! and its [`Storage`], and loops:
//!
//! 1. Feed inputs: [`Raft::tick`] every tick (the defaults assume 10 ms),
//!    [`Raft::step`] for each message from a peer, [`Raft::propose`],
//!    [`Raft::read_index`], [`Raft::propose_conf_change`],
//!    [`Raft::transfer_leader`].
//! 2. Call [`Raft::take_actions`] and carry the [`Action`]s out **in order**:
//!    * `Persist*` actions go to disk in list order.
//!    * [`Action::Send`] with `after_persist: true` leaves only after every
//!      persist action handed out before it (in this list or an earlier one)
//!      is durable (a vote, or an
//!      acknowledgement of entries, must never precede the write it reports).
//!      With `after_persist: false` (the leader's replication traffic once its
//!      term is durable, and heartbeat answers) it may leave at once: the
//!      leader writes its log in parallel with sending it (thesis §10.2.1).
//!    * [`Action::Apply`] entries are committed and durable here: apply them
//!      in order.
//!    * [`Action::ReadReady`]: serve the read once the state machine has
//!      applied its index.
//! 3. Report completed IO: [`Raft::on_persisted`] once entries are durable,
//!    [`Raft::on_snapshot_installed`] after an [`Action::InstallSnapshot`].
//!
//! **Storage is read-only to the core.** The core reads the durable log
//! through the [`Storage`] trait but never writes it: every write leaves as an
//! action, and until the driver reports it durable the entries live in the
//! core's own unstable tail. (etcd's users trip on this asymmetry: the driver,
//! not the core, appends to storage, *before* calling `on_persisted`.)
//!
//! ```
//! use bytes::Bytes;
//! use raft::{Action, Config, MemStorage, Membership, Raft, Role};
//!
//! // A one-node cluster: it elects itself once its election timer runs out.
//! let disk = MemStorage::new_with_membership(Membership::new([1]));
//! let mut node = Raft::new(Config::new(1), disk.clone()).expect("valid config");
//!
//! let mut applied = Vec::new();
//! let mut proposed = false;
//! for _ in 0..100 {
//!     node.tick();
//!     if node.role() == Role::Leader && !proposed {
//!         node.propose(Bytes::from("x = 1")).expect("the leader accepts proposals");
//!         proposed = true;
//!     }
//!     for action in node.take_actions() {
//!         match action {
//!             Action::PersistHardState(hs) => disk.set_hard_state(hs),
//!             Action::PersistEntries(entries) => {
//!                 disk.append(&entries); // durable now: tell the core
//!                 if let Some(last) = entries.last() {
//!                     node.on_persisted(last.index, last.term);
//!                 }
//!             }
//!             Action::Send { .. } => unreachable!("no peers"),
//!             Action::Apply(entries) => applied.extend(entries),
//!             _ => {}
//!         }
//!     }
//! }
//! // The leader's no-op (§8), then our command.
//! assert_eq!(applied.len(), 2);
//! ```
//!
//! # Snapshots
//!
//! The application decides when to snapshot: it asks [`Raft::snapshot_meta_at`]
//! for the metadata of its state at an applied index, stores the snapshot with
//! it, and calls [`Raft::on_snapshot_taken`]; the core answers with
//! [`Action::CompactLog`].
//!
//! ```
//! # use bytes::Bytes;
//! # use raft::{Action, Config, MemStorage, Membership, Raft, Role};
//! # let disk = MemStorage::new_with_membership(Membership::new([1]));
//! # let mut node = Raft::new(Config::new(1), disk.clone()).expect("valid config");
//! # while node.role() != Role::Leader { node.tick(); }
//! # node.propose(Bytes::from("x = 1")).expect("leader");
//! # for _ in 0..2 {
//! #     for action in node.take_actions() {
//! #         if let Action::PersistEntries(e) = action {
//! #             disk.append(&e);
//! #             let last = e.last().expect("entries");
//! #             node.on_persisted(last.index, last.term);
//! #         }
//! #     }
//! # }
//! // The state machine has applied index 2 (the no-op and "x = 1"); its
//! // state there is our snapshot.
//! let meta = node.snapshot_meta_at(2).expect("index 2 is applied");
//! disk.install_snapshot(meta.clone(), Bytes::from("x=1")); // durable first...
//! node.on_snapshot_taken(&meta); // ...then the log before it may go
//! assert!(node.take_actions().contains(&Action::CompactLog(2)));
//! ```
//!
//! A leader that must send compacted entries streams
//! the snapshot from [`Storage::snapshot_chunk`] in chunks of
//! [`Config::snapshot_chunk_bytes`] (default 1 MiB), one chunk at a time and
//! one transfer per follower; a lost chunk is resent from the offset the
//! follower acknowledged (once a heartbeat interval passes without progress),
//! not from the start. The follower hands each chunk to its driver
//! ([`Action::PersistSnapshotChunk`]) and, when complete, asks for it to be
//! installed ([`Action::InstallSnapshot`]); a transfer is never continued with
//! another leader's chunks, and a snapshot no newer than the follower's commit
//! index is ignored. Reads of compacted entries answer
//! [`StorageError::Compacted`].
//!
//! # Membership
//!
//! [`Raft::propose_conf_change`] takes one step ([`ConfChange`]): adding or
//! removing a voter enters a joint configuration (§6), which the leader leaves
//! by itself once the joint entry commits. A configuration takes effect when it
//! is appended, not when committed, and a truncated one is reverted. Only one
//! change may be in flight. [`ConfChange::AddVoter`] of a node that is not
//! yet a member adds it as a learner and promotes it once it has caught up,
//! so an empty node never stalls commits.
//!
//! ```
//! # use raft::{ConfChange, Config, MemStorage, Membership, ProposeError, Raft, Role};
//! # let disk = MemStorage::new_with_membership(Membership::new([1]));
//! # let mut node = Raft::new(Config::new(1), disk).expect("valid config");
//! # while node.role() != Role::Leader { node.tick(); }
//! // On the leader: node 2 joins (first as a learner).
//! node.propose_conf_change(ConfChange::AddVoter(2)).expect("leader accepts");
//! assert!(node.membership().is_learner(2), "in effect as soon as it is in the log");
//! // Until that change commits, another is refused.
//! assert_eq!(node.propose_conf_change(ConfChange::AddLearner(3)), Err(ProposeError::ChangeInProgress));
//! ```
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
#[cfg(feature = "planted-bugs")]
pub use config::PlantedBugs;
pub use config::{Config, ConfigError, LEASE_CLOCK_DRIFT_PERCENT};
pub use error::{LeaderHint, ProposeError, ReadError, StepError, TransferError};
pub use log::RaftLog;
pub use message::*;
pub use raft::{Raft, Role, Status};
pub use snapshot::SnapshotError;
pub use storage::{InitialState, MemStorage, MemStorageCore, Storage, StorageError};
pub use types::*;
