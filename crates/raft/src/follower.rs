//! A follower: takes entries from the leader (§5.3) and answers it.

use crate::election::Campaign;
use crate::message::{
    AppendEntries, AppendEntriesResponse, ConflictHint, Heartbeat, HeartbeatResponse, Message, MessageBody,
};
use crate::raft::Raft;
use crate::storage::Storage;

impl<S: Storage> Raft<S> {
    pub(crate) fn step_follower(&mut self, m: Message) {
        match m.body {
            MessageBody::AppendEntries(ae) => {
                self.hear_from_leader(m.from);
                self.handle_append_entries(m.from, ae);
            }
            MessageBody::Heartbeat(hb) => {
                self.hear_from_leader(m.from);
                self.handle_heartbeat(m.from, hb);
            }
            MessageBody::InstallSnapshot(snap) => {
                self.hear_from_leader(m.from);
                self.handle_install_snapshot(m.from, snap);
            }
            // Thesis §3.10: the leader asks us to start an election at once.
            MessageBody::TimeoutNow if self.is_promotable() => {
                tracing::info!(id = self.id, term = self.term, "leadership transfer: campaigning");
                self.campaign(Campaign::Transfer);
            }
            // Answers to requests sent in an earlier role.
            _ => {}
        }
    }

    /// The current leader spoke: remember it and restart the election timer.
    pub(crate) fn hear_from_leader(&mut self, leader: u64) {
        self.leader_id = leader;
        self.last_election_reset = self.now;
        self.leader_contact = Some(self.now);
    }

    /// AppendEntries receiver implementation, Figure 2 rules 2–5, answering
    /// rejections with the hints of fast backtracking (§5.3).
    pub(crate) fn handle_append_entries(&mut self, leader: u64, mut ae: AppendEntries) {
        let committed = self.log.committed();
        if ae.prev_log_index < committed {
            // Everything up to our commit index matches the leader's log
            // (Leader Completeness): skip it, and check consistency from there.
            ae.entries.retain(|e| e.index > committed);
            ae.prev_log_index = committed;
            ae.prev_log_term = self.log.term(committed).unwrap_or(0);
            if ae.entries.is_empty() {
                let ok = AppendEntriesResponse { success: true, index: committed, conflict: None };
                return self.send(leader, MessageBody::AppendEntriesResponse(ok));
            }
        }
        if !self.log.matches(ae.prev_log_index, ae.prev_log_term) {
            let conflict = Some(self.conflict_hint(ae.prev_log_index));
            let reject = AppendEntriesResponse { success: false, index: ae.prev_log_index, conflict };
            return self.send(leader, MessageBody::AppendEntriesResponse(reject));
        }
        let last_new = ae.prev_log_index + ae.entries.len() as u64;
        let new = self.log.append_from_leader(ae.entries);
        if !new.is_empty() {
            self.on_entries_appended(&new);
            self.actions.push(crate::Action::PersistEntries(new));
        }
        // Rule 5: commit up to the leader's commit, but only as far as the
        // entries this message proved to match.
        self.log.commit_to(ae.leader_commit.min(last_new));
        let ok = AppendEntriesResponse { success: true, index: last_new, conflict: None };
        self.send(leader, MessageBody::AppendEntriesResponse(ok));
    }

    /// Where the leader should look next: the first index of our term at the
    /// rejected position, or the end of our log if it is shorter.
    fn conflict_hint(&self, rejected: u64) -> ConflictHint {
        match self.log.term(rejected) {
            Some(term) => ConflictHint { term: Some(term), index: self.log.first_index_of_term_at(rejected) },
            None => ConflictHint { term: None, index: self.log.last_index() + 1 },
        }
    }

    pub(crate) fn handle_heartbeat(&mut self, leader: u64, hb: Heartbeat) {
        // The leader caps `commit` at what it knows we match.
        self.log.commit_to(hb.commit.min(self.log.last_index()));
        let response = HeartbeatResponse { read_round: hb.read_round };
        self.send(leader, MessageBody::HeartbeatResponse(response));
    }
}
