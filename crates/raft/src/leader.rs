//! A leader: replicates its log (§5.3), commits (§5.4.2), keeps its authority
//! (heartbeats, check-quorum), confirms reads and hands over leadership.

use crate::Action;
use crate::message::{AppendEntries, AppendEntriesResponse, ConflictHint, Heartbeat, Message, MessageBody};
use crate::quorum::VoteResult;
use crate::raft::Raft;
use crate::storage::{Storage, StorageError};
use crate::tracker::ProgressState;
use crate::types::{Index, NO_NODE, NodeId};

/// Entries wait to be coalesced only while they fit in this fraction of
/// `max_message_bytes` (see [`Config::coalesce_inflight_messages`](crate::Config)).
const COALESCE_MESSAGE_FRACTION: u64 = 8;

impl<S: Storage> Raft<S> {
    pub(crate) fn tick_leader(&mut self) {
        if self.now >= self.last_heartbeat + self.config.heartbeat_interval_ticks {
            self.last_heartbeat = self.now;
            // Under lease reads every heartbeat is a round, renewing the lease.
            let renewal = self.reads.start_round(self.now, self.config.lease_read);
            self.broadcast_heartbeat(renewal.unwrap_or(self.reads.round()));
        }
        let timeout = self.config.election_timeout_min_ticks;
        if self.now >= self.last_quorum_check + timeout {
            self.last_quorum_check = self.now;
            if self.config.check_quorum && !self.quorum_recently_active() {
                // Thesis §6.2: a leader that cannot reach a quorum for an
                // election timeout steps down, so clients can find a real one.
                tracing::info!(id = self.id, term = self.term, "check-quorum failed");
                return self.become_follower(self.term, NO_NODE);
            }
        }
        if let Some((to, started)) = self.transfer
            && self.now >= started + timeout
        {
            tracing::info!(id = self.id, to, "leadership transfer timed out");
            self.transfer = None;
        }
    }

    /// Whether a quorum answered since the last check; resets the marks.
    fn quorum_recently_active(&mut self) -> bool {
        let me = self.id;
        let active =
            self.quorum.vote_result(|id| Some(id == me || self.progress.get(&id).is_some_and(|p| p.recent_active)));
        for (&id, pr) in self.progress.iter_mut() {
            if !pr.recent_active && pr.state == ProgressState::Replicate {
                // Silent for an election timeout: what we streamed was probably
                // lost. Probe again rather than wait on a window that never drains.
                pr.become_probe();
            }
            pr.recent_active = id == me;
        }
        active == VoteResult::Won
    }

    pub(crate) fn step_leader(&mut self, m: Message) {
        if let Some(pr) = self.progress.get_mut(&m.from) {
            pr.recent_active = true;
        }
        match m.body {
            MessageBody::AppendEntriesResponse(r) => self.handle_append_response(m.from, r),
            MessageBody::HeartbeatResponse(r) => self.handle_heartbeat_response(m.from, r.read_round),
            MessageBody::InstallSnapshotResponse(r) => self.handle_snapshot_response(m.from, r),
            // Another leader in our term cannot exist (Election Safety); vote
            // answers come too late to matter.
            _ => {}
        }
    }

    fn handle_append_response(&mut self, from: NodeId, r: AppendEntriesResponse) {
        if !r.success {
            let hint_next = self.next_after_rejection(r.index, r.conflict);
            let Some(pr) = self.progress.get_mut(&from) else { return };
            if pr.maybe_decrease_to(r.index, hint_next) {
                tracing::debug!(id = self.id, from, next = pr.next_index, "append rejected, backing up");
                self.send_append(from);
            }
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else { return };
        let updated = pr.maybe_update(r.index);
        // A probe answered at the match we already knew still proves the logs agree.
        let probe_confirmed = pr.state == ProgressState::Probe && r.index == pr.match_index;
        if !updated && !probe_confirmed {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Replicate => pr.inflights.free_le(r.index),
            ProgressState::Snapshot { .. } => {}
        }
        self.maybe_commit();
        self.send_all_available(from);
        self.maybe_send_timeout_now(from);
        self.maybe_promote_caught_up();
    }

    /// The leader's side of fast backtracking: jump past the follower's whole
    /// conflicting term rather than one entry at a time.
    fn next_after_rejection(&self, rejected: Index, hint: Option<ConflictHint>) -> Index {
        let Some(hint) = hint else { return rejected };
        match hint.term {
            Some(term) => match self.log.last_index_of_term(term, rejected) {
                Some(last) => last + 1,
                None => hint.index,
            },
            None => hint.index,
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else { return };
        pr.read_round_acked = pr.read_round_acked.max(read_round);
        if let ProgressState::Snapshot { .. } = pr.state {
            // No chunk acknowledged for a heartbeat interval: the one in flight
            // was probably lost. Resend what the follower expects.
            if pr.snapshot_stalled() {
                self.send_snapshot_chunk(from);
            }
            self.confirm_reads();
            return;
        }
        if pr.match_index < last_index {
            match pr.state {
                // The probe may have been lost: heartbeats are the retry timer.
                ProgressState::Probe => pr.probe_sent = false,
                // A full window may be full of lost messages: let one more out;
                // if the follower misses entries it rejects it and we probe.
                ProgressState::Replicate if pr.inflights.is_full() => pr.inflights.free_first(),
                _ => {}
            }
        }
        let sent = self.send_append(from);
        self.send_all_available(from);
        let behind = self.progress.get(&from).is_some_and(|p| p.match_index < last_index);
        if !sent && behind {
            // Everything was sent but not all acknowledged: the tail may be
            // lost. An empty AppendEntries at `next - 1` makes the follower
            // say where it really is (its rejection sends us back to probing).
            self.send_empty_append(from);
        }
        self.confirm_reads();
    }

    fn send_empty_append(&mut self, to: NodeId) {
        let Some(pr) = self.progress.get(&to) else { return };
        if pr.state != ProgressState::Replicate || pr.inflights.is_full() {
            return;
        }
        let prev_log_index = pr.next_index - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else { return };
        let leader_commit = self.log.committed().min(pr.match_index);
        let ae = AppendEntries { prev_log_index, prev_log_term, entries: Vec::new(), leader_commit };
        self.send(to, MessageBody::AppendEntries(ae));
    }

    /// §5.3/§5.4.2: commit the highest index a quorum holds, but only by
    /// counting replicas of an entry of the current term; older entries are
    /// committed indirectly with it (Figure 8).
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let index = self.quorum.committed_index(|id| self.progress.get(&id).map_or(0, |p| p.match_index));
        let current_term = self.log.term(index) == Some(self.term);
        #[cfg(feature = "planted-bugs")]
        let current_term = current_term || self.config.bugs.commit_old_terms;
        if index <= self.log.committed() || !current_term {
            return false;
        }
        self.log.commit_to(index);
        self.reads.on_term_commit(index);
        self.confirm_reads();
        self.on_commit_advanced();
        true
    }

    /// Releases the reads a quorum's heartbeat acknowledgements confirm.
    pub(crate) fn confirm_reads(&mut self) {
        let (me, round) = (self.id, self.reads.round());
        let confirmed = self.quorum.committed_index(|id| {
            if id == me { round } else { self.progress.get(&id).map_or(0, |p| p.read_round_acked) }
        });
        let lease_ticks = if self.config.lease_read { self.config.lease_ticks() } else { 0 };
        for (ctx, index) in self.reads.confirm(confirmed, lease_ticks) {
            self.actions.push(Action::ReadReady { ctx, index });
        }
    }

    pub(crate) fn broadcast_heartbeat(&mut self, read_round: u64) {
        let peers: Vec<(NodeId, Index)> =
            self.progress.iter().filter(|(id, _)| **id != self.id).map(|(&id, p)| (id, p.match_index)).collect();
        for (id, match_index) in peers {
            let commit = self.log.committed().min(match_index);
            self.send(id, MessageBody::Heartbeat(Heartbeat { commit, read_round }));
        }
    }

    /// Sends every follower what it is missing, as far as its window allows.
    pub(crate) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().filter(|&id| id != self.id).collect();
        for id in peers {
            self.send_all_available(id);
        }
    }

    /// Fills the follower's inflight window (one message if probing).
    fn send_all_available(&mut self, to: NodeId) {
        while self.send_append(to) {}
    }

    /// Sends one AppendEntries to `to` if it is not paused. Returns whether a
    /// message went out (and more might follow).
    pub(crate) fn send_append(&mut self, to: NodeId) -> bool {
        if to == self.id {
            return false;
        }
        let Some(pr) = self.progress.get(&to) else { return false };
        if pr.is_paused() {
            return false;
        }
        let (next, state, in_flight) = (pr.next_index, pr.state, pr.inflights.count());
        let prev_log_index = next - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            return self.send_snapshot(to);
        };
        let entries = match self.log.entries(next, self.log.last_index() + 1, self.config.max_message_bytes) {
            Ok(entries) => entries,
            Err(StorageError::Compacted) => return self.send_snapshot(to),
            Err(StorageError::Unavailable) => Vec::new(),
        };
        if entries.is_empty() && state == ProgressState::Replicate {
            return false;
        }
        let last = entries.last().map_or(prev_log_index, |e| e.index);
        let bytes = entries.iter().map(|e| e.size_bytes()).sum();
        if state == ProgressState::Replicate && self.holds_to_coalesce(in_flight, last, bytes) {
            return false;
        }
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.on_sent(last, bytes);
        }
        let leader_commit = self.log.committed();
        let ae = AppendEntries { prev_log_index, prev_log_term, entries, leader_commit };
        self.send(to, MessageBody::AppendEntries(ae));
        state == ProgressState::Replicate
    }

    /// Whether a message of `bytes` of entries ending at `last` waits for an
    /// answer before it goes (see
    /// [`Config::coalesce_inflight_messages`](crate::Config)): enough
    /// messages are unanswered and it holds all that is pending, in a small
    /// message. An answer frees a slot and sends the entries together
    /// (`send_all_available`); if answers stop, the heartbeat answers'
    /// recovery applies as for a full window.
    fn holds_to_coalesce(&self, in_flight: usize, last: Index, bytes: u64) -> bool {
        let limit = self.config.coalesce_inflight_messages;
        limit > 0
            && in_flight >= limit
            && last == self.log.last_index()
            && bytes <= self.config.max_message_bytes / COALESCE_MESSAGE_FRACTION
    }

    /// Thesis §3.10: once the transfer target's log matches ours, tell it to
    /// campaign; until then keep replicating to it.
    pub(crate) fn maybe_send_timeout_now(&mut self, to: NodeId) {
        if self.transfer.map(|(t, _)| t) != Some(to) {
            return;
        }
        let caught_up = self.progress.get(&to).is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            tracing::info!(id = self.id, to, "leadership transfer: target caught up, sending TimeoutNow");
            // Its voters will not wait out our lease (thesis §6.4.1).
            self.reads.revoke_lease();
            self.send(to, MessageBody::TimeoutNow);
        } else {
            self.send_all_available(to);
        }
    }
}
