//! Terms and elections (§5.1, §5.2, §5.4.1), with pre-vote (thesis §9.6) and
//! the leader-stickiness half of check-quorum (thesis §4.2.3).

use crate::message::{
    AppendEntriesResponse, HeartbeatResponse, Message, MessageBody, RequestVote, RequestVoteResponse,
};
use crate::quorum::VoteResult;
use crate::raft::{Raft, Role};
use crate::storage::Storage;
use crate::types::{NO_NODE, NodeId};

/// How an election starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Campaign {
    /// Ask for pre-votes first.
    PreVote,
    /// Raise the term and ask for votes.
    Election,
    /// Raise the term and ask for votes that voters grant even while they still
    /// hear from the old leader: it asked for this election.
    Transfer,
}

impl<S: Storage> Raft<S> {
    /// A follower or candidate whose election timer runs out starts an election.
    pub(crate) fn tick_election(&mut self) {
        if self.election_timer_expired() && self.is_promotable() {
            let kind = if self.config.pre_vote { Campaign::PreVote } else { Campaign::Election };
            self.campaign(kind);
        } else if self.election_timer_expired() {
            self.reset_election_timer();
        }
    }

    /// Whether this node heard from a live leader within the minimum election
    /// timeout. With check-quorum, such a node ignores vote requests (thesis
    /// §4.2.3), so a node that was cut off cannot depose a working leader.
    /// A leader under check-quorum is always in its own lease: it steps down
    /// by itself when it loses its quorum, and until then must not let a
    /// returning node (whose log may be just as long) take over.
    /// The contact is kept across term changes that bring no new leader: a
    /// higher term alone does not end the lease this server gave.
    pub(crate) fn in_leader_lease(&self) -> bool {
        if !self.config.check_quorum {
            return false;
        }
        let min = self.config.election_timeout_min_ticks;
        self.role == Role::Leader || self.leader_contact.is_some_and(|t| self.now < t + min)
    }

    /// The term rules every message passes first (§5.1: "if one server's
    /// current term is smaller than the other's, then it updates its current
    /// term"; requests with a stale term are rejected). Returns whether the
    /// message should be processed further.
    pub(crate) fn step_term(&mut self, m: &Message) -> bool {
        if m.term > self.term {
            return self.step_higher_term(m);
        }
        if m.term < self.term {
            self.reject_stale(m);
            return false;
        }
        true
    }

    fn step_higher_term(&mut self, m: &Message) -> bool {
        match &m.body {
            MessageBody::RequestVote(rv) => {
                if !rv.leadership_transfer && self.in_leader_lease() {
                    tracing::debug!(id = self.id, from = m.from, "ignoring vote request: leader is alive");
                    return false;
                }
                if !rv.pre_vote {
                    self.become_follower(m.term, NO_NODE);
                }
            }
            // A granted pre-vote carries the term we would campaign in.
            MessageBody::RequestVoteResponse(r) if r.pre_vote && r.granted => {}
            MessageBody::AppendEntries(_) | MessageBody::Heartbeat(_) | MessageBody::InstallSnapshot(_) => {
                self.become_follower(m.term, m.from);
            }
            _ => self.become_follower(m.term, NO_NODE),
        }
        true
    }

    /// Answers a request from an older term with our term, so the sender learns
    /// it is stale (Figure 2: "reply false if term < currentTerm"). Without
    /// this, a deposed leader that pre-vote keeps us from disturbing could never
    /// find out.
    fn reject_stale(&mut self, m: &Message) {
        let body = match &m.body {
            MessageBody::RequestVote(rv) => {
                MessageBody::RequestVoteResponse(RequestVoteResponse { pre_vote: rv.pre_vote, granted: false })
            }
            MessageBody::AppendEntries(ae) => MessageBody::AppendEntriesResponse(AppendEntriesResponse {
                success: false,
                index: ae.prev_log_index,
                conflict: None,
            }),
            MessageBody::Heartbeat(hb) => {
                MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: hb.read_round })
            }
            _ => return,
        };
        self.send(m.from, body);
    }

    /// RequestVote receiver (Figure 2), for votes and pre-votes alike.
    pub(crate) fn handle_request_vote(&mut self, m: &Message, rv: &RequestVote) {
        if !rv.leadership_transfer && self.in_leader_lease() {
            // The same rule as for a higher term, for a server that moved to
            // the candidate's term without hearing from a new leader.
            tracing::debug!(id = self.id, from = m.from, "ignoring vote request: leader is alive");
            return;
        }
        let up_to_date = self.log.is_up_to_date(rv.last_log_index, rv.last_log_term);
        let granted = if rv.pre_vote {
            // Would we vote in that later term? No state changes.
            m.term > self.term && up_to_date
        } else {
            // §5.2: one vote per term, first come first served.
            let free = self.vote == m.from || (self.vote == NO_NODE && self.leader_id == NO_NODE);
            #[cfg(feature = "planted-bugs")]
            let free = free || self.config.bugs.vote_twice;
            free && up_to_date
        };
        if granted && !rv.pre_vote {
            self.vote = m.from;
            self.reset_election_timer();
        }
        let term = if granted && rv.pre_vote { m.term } else { self.term };
        tracing::debug!(id = self.id, from = m.from, pre_vote = rv.pre_vote, granted, term, "vote request");
        let body = MessageBody::RequestVoteResponse(RequestVoteResponse { pre_vote: rv.pre_vote, granted });
        self.send_with_term(m.from, term, body);
    }

    /// Starts a (pre-)election: §5.2, "a follower increments its current term
    /// and transitions to candidate state. It then votes for itself and issues
    /// RequestVote RPCs in parallel to each of the other servers".
    pub(crate) fn campaign(&mut self, kind: Campaign) {
        let pre_vote = kind == Campaign::PreVote;
        if pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
        let term = if pre_vote { self.term + 1 } else { self.term };
        tracing::debug!(id = self.id, term, pre_vote, "campaign");
        self.votes.insert(self.id, true);
        if self.tally() == VoteResult::Won {
            return self.on_election_won();
        }
        let request = RequestVote {
            pre_vote,
            leadership_transfer: kind == Campaign::Transfer,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        let voters: Vec<NodeId> = self.membership.current().members().into_iter().filter(|&id| id != self.id).collect();
        for id in voters {
            if self.membership.current().is_voter(id) {
                self.send_with_term(id, term, MessageBody::RequestVote(request.clone()));
            }
        }
    }

    /// Counts the answers so far.
    pub(crate) fn tally(&self) -> VoteResult {
        self.quorum.vote_result(|id| self.votes.get(&id).copied())
    }

    /// A quorum said yes: a pre-candidate starts the real election, a candidate leads.
    pub(crate) fn on_election_won(&mut self) {
        match self.role {
            Role::PreCandidate => self.campaign(Campaign::Election),
            Role::Candidate => self.become_leader(),
            _ => {}
        }
    }
}
