//! The outputs of the core: what the driver must do, in order.

use bytes::Bytes;

use crate::message::{Message, SnapshotMeta};
use crate::types::{Entry, HardState, Index};

/// One thing the driver must carry out. [`Raft::take_actions`](crate::Raft::take_actions)
/// returns them in the order they must be honoured:
///
/// * `Persist*` actions are written in list order (a group commit may batch them).
/// * A [`Action::Send`] with `after_persist: true` may leave only once every
///   `Persist*` action handed out before it — earlier in this list or in an
///   earlier call — is durable (an answer to a duplicate message can vouch for
///   a write handed out in a previous batch). One with
///   `after_persist: false` may leave at once: these are the leader's own
///   replication messages, which thesis §10.2.1 lets go out while the leader
///   writes the same entries to its own disk (once its term is durable), and
///   heartbeat answers, which vouch for nothing on disk.
/// * [`Action::Apply`] entries are committed and already durable here: apply
///   them in order, whenever convenient.
/// * [`Action::ReadReady`] may be served once the state machine has applied
///   `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make this the durable hard state. Term and vote must be durable before
    /// any later `after_persist` message leaves; `commit` may be written lazily
    /// (the core never needs it for safety, caps it at the durable log, and
    /// clamps what it reads back at restart).
    PersistHardState(HardState),
    /// Append these entries to the durable log, first removing every entry at or
    /// after `entries[0].index` (a conflicting suffix). Report completion with
    /// [`Raft::on_persisted`](crate::Raft::on_persisted).
    PersistEntries(Vec<Entry>),
    /// Store one chunk of a snapshot being received from the leader, at `offset`
    /// of the snapshot described by `meta`. Chunks arrive in order from offset 0;
    /// a chunk at offset 0 starts a new transfer and discards any partial one.
    PersistSnapshotChunk {
        /// The snapshot being received.
        meta: SnapshotMeta,
        /// Where `data` starts.
        offset: u64,
        /// The chunk.
        data: Bytes,
    },
    /// The received snapshot is complete: make it the durable snapshot (dropping
    /// the log it covers, keeping the suffix after it if the log holds
    /// `meta.index` with `meta.term`), restore the state machine from it, then
    /// call [`Raft::on_snapshot_installed`](crate::Raft::on_snapshot_installed).
    InstallSnapshot(SnapshotMeta),
    /// The log up to and including this index is covered by the snapshot the
    /// application reported and may be dropped from storage.
    CompactLog(Index),
    /// Send a message to a peer.
    Send {
        /// The message.
        message: Message,
        /// Whether the message must wait for the preceding persists.
        after_persist: bool,
    },
    /// Apply these committed entries to the state machine, in order.
    Apply(Vec<Entry>),
    /// A linearizable read registered with `ctx` may be served once the state
    /// machine has applied `index` (thesis §6.4).
    ReadReady {
        /// The caller's read id.
        ctx: u64,
        /// The read index.
        index: Index,
    },
    /// A read registered with `ctx` cannot be served by this node any more
    /// (it lost leadership): retry it elsewhere.
    ReadFailed {
        /// The caller's read id.
        ctx: u64,
    },
}
