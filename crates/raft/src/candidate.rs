//! A (pre-)candidate: counts votes (§5.2) and yields to a leader of its term.

use crate::message::{Message, MessageBody};
use crate::quorum::VoteResult;
use crate::raft::{Raft, Role};
use crate::storage::Storage;

impl<S: Storage> Raft<S> {
    pub(crate) fn step_candidate(&mut self, m: Message) {
        match m.body {
            // §5.2: "If the AppendEntries RPC is from a leader whose term is at
            // least as large as the candidate's current term, then the candidate
            // recognizes the leader as legitimate and returns to follower state."
            MessageBody::AppendEntries(_) | MessageBody::Heartbeat(_) | MessageBody::InstallSnapshot(_) => {
                self.become_follower(m.term, m.from);
                self.step_follower(m);
            }
            MessageBody::RequestVoteResponse(r) => {
                let expected_pre_vote = self.role == Role::PreCandidate;
                if r.pre_vote != expected_pre_vote {
                    return;
                }
                self.votes.insert(m.from, r.granted);
                match self.tally() {
                    VoteResult::Won => self.on_election_won(),
                    // Lost: wait as a follower for the next timeout (§5.2 split votes).
                    VoteResult::Lost => {
                        tracing::info!(id = self.id, term = self.term, pre_vote = r.pre_vote, "election lost");
                        self.become_follower(self.term, crate::types::NO_NODE);
                    }
                    VoteResult::Pending => {}
                }
            }
            _ => {}
        }
    }
}
