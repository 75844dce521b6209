//! Snapshots (§7): the application compacts the log, a leader streams its
//! snapshot in chunks to followers that need compacted entries, and a follower
//! installs it once complete.

use crate::Action;
use crate::message::{InstallSnapshot, InstallSnapshotResponse, MessageBody, SnapshotMeta};
use crate::raft::Raft;
use crate::storage::Storage;
use crate::tracker::ProgressState;
use crate::types::{Index, NodeId};

use thiserror::Error;

/// Why a snapshot could not be taken at the requested index.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The state machine has not applied that far.
    #[error("index {index} is not applied yet (applied {applied})")]
    NotApplied {
        /// The requested index.
        index: Index,
        /// What has been handed out for applying.
        applied: Index,
    },
    /// A snapshot at or after that index exists already.
    #[error("index {index} is already covered by the snapshot at {snapshot}")]
    AlreadyCompacted {
        /// The requested index.
        index: Index,
        /// The current snapshot index.
        snapshot: Index,
    },
}

/// A snapshot transfer a follower is receiving.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Receiving {
    pub meta: SnapshotMeta,
    /// The term of the leader sending it.
    pub term: crate::types::Term,
    /// The offset of the next chunk expected.
    pub next_offset: u64,
    /// All chunks arrived; the driver is installing it.
    pub installing: bool,
}

impl<S: Storage> Raft<S> {
    /// The metadata a snapshot of the state machine at `index` must carry: the
    /// term of that entry and the configuration in effect there. The driver
    /// stores the snapshot with it, then calls [`Raft::on_snapshot_taken`].
    pub fn snapshot_meta_at(&self, index: Index) -> Result<SnapshotMeta, SnapshotError> {
        let applied = self.log.applied();
        if index > applied {
            return Err(SnapshotError::NotApplied { index, applied });
        }
        let snapshot = self.log.snapshot_index();
        let term = match self.log.term(index) {
            Some(term) if index > snapshot => term,
            _ => return Err(SnapshotError::AlreadyCompacted { index, snapshot }),
        };
        Ok(SnapshotMeta { index, term, membership: self.membership.at(index).clone() })
    }

    /// The driver made a snapshot covering `meta.index` durable: the log up to
    /// there may go. Emits [`Action::CompactLog`].
    pub fn on_snapshot_taken(&mut self, meta: &SnapshotMeta) {
        self.membership.on_compact(meta.index);
        self.actions.push(Action::CompactLog(meta.index));
    }

    /// The driver finished an [`Action::InstallSnapshot`]: storage holds the
    /// snapshot and the state machine was restored from it.
    pub fn on_snapshot_installed(&mut self, meta: &SnapshotMeta) {
        let kept_suffix = self.log.matches(meta.index, meta.term) && self.log.last_index() > meta.index;
        self.log.restore(meta.index, meta.term);
        self.membership.on_snapshot(meta.index, meta.membership.clone(), kept_suffix);
        self.apply_membership();
        let done = self.receiving.as_ref().is_some_and(|r| r.meta.index == meta.index);
        if done {
            self.receiving = None;
            if self.leader_id != crate::types::NO_NODE {
                let response = InstallSnapshotResponse { snapshot_index: meta.index, next_offset: 0, done: true };
                self.send(self.leader_id, MessageBody::InstallSnapshotResponse(response));
            }
        }
        tracing::info!(id = self.id, index = meta.index, term = meta.term, "snapshot installed");
    }

    /// Whether applying must wait for a snapshot being installed (entries it
    /// covers must not be applied after it).
    pub(crate) fn installing_snapshot(&self) -> bool {
        self.receiving.as_ref().is_some_and(|r| r.installing)
    }

    /// Leader: the follower needs compacted entries; start sending the snapshot.
    pub(crate) fn send_snapshot(&mut self, to: NodeId) -> bool {
        let meta = self.log.storage().snapshot_meta();
        let Some(pr) = self.progress.get_mut(&to) else { return false };
        tracing::info!(id = self.id, to, index = meta.index, "sending snapshot");
        pr.become_snapshot(meta.index);
        self.send_snapshot_chunk(to);
        false
    }

    /// Sends the chunk the follower expects next.
    pub(crate) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let Some(pr) = self.progress.get(&to) else { return };
        let ProgressState::Snapshot { index } = pr.state else { return };
        let meta = self.log.storage().snapshot_meta();
        if meta.index != index {
            // A newer snapshot replaced the one being sent: start over with it.
            return self.restart_snapshot(to);
        }
        let offset = pr.snapshot_offset;
        let (data, done) = self.log.storage().snapshot_chunk(offset, self.config.snapshot_chunk_bytes);
        let chunk = InstallSnapshot { meta, offset, data, done };
        self.send(to, MessageBody::InstallSnapshot(chunk));
    }

    fn restart_snapshot(&mut self, to: NodeId) {
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.become_probe();
        }
        self.send_append(to);
    }

    /// Leader: a follower answered a chunk.
    pub(crate) fn handle_snapshot_response(&mut self, from: NodeId, r: InstallSnapshotResponse) {
        let Some(pr) = self.progress.get_mut(&from) else { return };
        let ProgressState::Snapshot { index } = pr.state else { return };
        if r.snapshot_index != index {
            return;
        }
        if r.done {
            pr.maybe_update(index);
            pr.become_probe();
            self.maybe_commit();
            self.send_append(from);
            return;
        }
        if pr.maybe_snapshot_progress(r.next_offset) {
            self.send_snapshot_chunk(from);
        }
    }

    /// Follower: one chunk of InstallSnapshot (Figure 13), kept only if it
    /// continues the transfer; the answer tells the leader where to resume.
    pub(crate) fn handle_install_snapshot(&mut self, leader: NodeId, chunk: InstallSnapshot) {
        let index = chunk.meta.index;
        if index <= self.log.committed() {
            // Stale: we already have everything it covers.
            let response = InstallSnapshotResponse { snapshot_index: index, next_offset: 0, done: true };
            return self.send(leader, MessageBody::InstallSnapshotResponse(response));
        }
        let term = self.term;
        let receiving = self.receiving.get_or_insert_with(Receiving::default);
        if receiving.installing {
            // The driver is installing it; the answer follows when it is done.
            return;
        }
        // A transfer is one leader's (one term's) stream of one snapshot: two
        // nodes' snapshots of the same index need not be the same bytes.
        let same_transfer = receiving.meta == chunk.meta && receiving.term == term;
        if chunk.offset == 0 && !(same_transfer && receiving.next_offset > 0) {
            *receiving = Receiving { meta: chunk.meta.clone(), term, next_offset: 0, installing: false };
        }
        let same_transfer = receiving.meta == chunk.meta && receiving.term == term;
        if same_transfer && receiving.next_offset == chunk.offset {
            receiving.next_offset += chunk.data.len() as u64;
            receiving.installing = chunk.done;
            let next_offset = receiving.next_offset;
            let action =
                Action::PersistSnapshotChunk { meta: chunk.meta.clone(), offset: chunk.offset, data: chunk.data };
            self.actions.push(action);
            if chunk.done {
                self.actions.push(Action::InstallSnapshot(chunk.meta));
                // The answer goes out once the driver reports it installed.
                return;
            }
            let response = InstallSnapshotResponse { snapshot_index: index, next_offset, done: false };
            return self.send(leader, MessageBody::InstallSnapshotResponse(response));
        }
        // Out of order (a chunk was lost, or this one is a duplicate), or from
        // another transfer: say where this transfer resumes (0: from the start).
        let next_offset = if same_transfer { receiving.next_offset } else { 0 };
        let response = InstallSnapshotResponse { snapshot_index: index, next_offset, done: false };
        self.send(leader, MessageBody::InstallSnapshotResponse(response));
    }
}
