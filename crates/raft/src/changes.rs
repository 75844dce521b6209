//! Membership changes by joint consensus (§6, thesis §4.3), offered as single
//! steps: each voter change enters a joint configuration, and the leader
//! leaves it on its own once the joint entry commits.

use crate::error::ProposeError;
use crate::raft::{Raft, Role};
use crate::storage::Storage;
use crate::types::{EntryPayload, Index, Membership, NO_NODE, NodeId};

/// One membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChange {
    /// Make `id` a voter. A node that is not yet a member joins as a learner
    /// first and the leader promotes it once it has caught up with the commit
    /// index, so a new, empty node never stalls commits (thesis §4.2.1). If
    /// leadership changes before that, it stays a learner: propose `AddVoter`
    /// again to promote it.
    AddVoter(NodeId),
    /// Remove the voter `id` (a removed leader steps down once it commits).
    RemoveVoter(NodeId),
    /// Add `id` as a learner: it receives the log but neither votes nor counts.
    AddLearner(NodeId),
    /// Make the learner `id` a voter.
    PromoteLearner(NodeId),
    /// Remove the learner `id`.
    RemoveLearner(NodeId),
}

impl<S: Storage> Raft<S> {
    /// Proposes a membership change. Only one may be in flight: until the
    /// previous one (and the joint configuration it entered) has committed, a
    /// second is refused with [`ProposeError::ChangeInProgress`].
    pub fn propose_conf_change(&mut self, change: ConfChange) -> Result<Index, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader(self.leader_hint()));
        }
        let current = self.membership.current();
        if current.is_joint() || self.membership.has_uncommitted_change(self.log.committed()) {
            return Err(ProposeError::ChangeInProgress);
        }
        let change = match change {
            ConfChange::AddVoter(id) if !current.contains(id) => {
                self.catching_up.insert(id);
                ConfChange::AddLearner(id)
            }
            other => other,
        };
        let next = changed(current, change)?;
        self.propose_entry(EntryPayload::Membership(Box::new(next)))
    }

    /// Promotes a learner that joined through `AddVoter` once it holds
    /// everything committed, if no other change is in flight.
    pub(crate) fn maybe_promote_caught_up(&mut self) {
        if self.role != Role::Leader || self.catching_up.is_empty() {
            return;
        }
        let committed = self.log.committed();
        let current = self.membership.current();
        if current.is_joint() || self.membership.has_uncommitted_change(committed) {
            return;
        }
        let caught_up =
            self.catching_up.iter().copied().find(|id| {
                current.is_learner(*id) && self.progress.get(id).is_some_and(|p| p.match_index >= committed)
            });
        let Some(id) = caught_up else { return };
        let Ok(next) = changed(current, ConfChange::PromoteLearner(id)) else { return };
        if self.propose_entry(EntryPayload::Membership(Box::new(next))).is_ok() {
            tracing::info!(id = self.id, learner = id, "learner caught up: promoting to voter");
            self.catching_up.remove(&id);
        }
    }

    /// Called whenever the commit index advances: a committed joint
    /// configuration is left automatically, and a leader that is no longer a
    /// voter steps down once its removal is committed (thesis §4.2.2).
    pub(crate) fn on_commit_advanced(&mut self) {
        if self.role != Role::Leader || self.membership.current_index() > self.log.committed() {
            return;
        }
        let current = self.membership.current().clone();
        if current.is_joint() {
            let leave =
                Membership { voters: current.voters, voters_outgoing: Default::default(), learners: current.learners };
            tracing::info!(id = self.id, "joint configuration committed: leaving it");
            // Not through `propose_entry`: this must happen even during a transfer.
            let index = self.log.last_index() + 1;
            let entry =
                crate::types::Entry { term: self.term, index, payload: EntryPayload::Membership(Box::new(leave)) };
            self.append_and_persist(vec![entry]);
            self.broadcast_pending = true;
        } else if !current.is_voter(self.id) {
            tracing::info!(id = self.id, "removed from the configuration: stepping down");
            self.become_follower(self.term, NO_NODE);
        } else {
            self.maybe_promote_caught_up();
        }
    }
}

/// The configuration after `change`, entering a joint configuration whenever
/// the set of voters changes.
fn changed(current: &Membership, change: ConfChange) -> Result<Membership, ProposeError> {
    let mut next = current.clone();
    match change {
        ConfChange::AddVoter(id) | ConfChange::PromoteLearner(id) => {
            if current.voters.contains(&id) {
                return Err(ProposeError::InvalidChange("already a voter"));
            }
            if matches!(change, ConfChange::PromoteLearner(_)) && !current.is_learner(id) {
                return Err(ProposeError::InvalidChange("not a learner"));
            }
            next.learners.remove(&id);
            next.voters.insert(id);
        }
        ConfChange::RemoveVoter(id) => {
            if !current.voters.contains(&id) {
                return Err(ProposeError::InvalidChange("not a voter"));
            }
            if current.voters.len() == 1 {
                return Err(ProposeError::InvalidChange("cannot remove the last voter"));
            }
            next.voters.remove(&id);
        }
        ConfChange::AddLearner(id) => {
            if current.contains(id) {
                return Err(ProposeError::InvalidChange("already a member"));
            }
            next.learners.insert(id);
            return Ok(next);
        }
        ConfChange::RemoveLearner(id) => {
            if !current.is_learner(id) {
                return Err(ProposeError::InvalidChange("not a learner"));
            }
            next.learners.remove(&id);
            return Ok(next);
        }
    }
    next.voters_outgoing = current.voters.clone();
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voter_changes_go_through_a_joint_configuration() {
        let m = Membership::new([1, 2, 3]);
        let next = changed(&m, ConfChange::AddVoter(4)).unwrap_or_default();
        assert_eq!(next.voters_outgoing, m.voters);
        assert!(next.voters.contains(&4));
        let learner = changed(&m, ConfChange::AddLearner(4)).unwrap_or_default();
        assert!(!learner.is_joint(), "learners do not vote: no joint step needed");
        assert_eq!(changed(&m, ConfChange::RemoveVoter(9)), Err(ProposeError::InvalidChange("not a voter")));
        assert_eq!(
            changed(&Membership::new([1]), ConfChange::RemoveVoter(1)),
            Err(ProposeError::InvalidChange("cannot remove the last voter"))
        );
    }
}
