//! The quorum of a joint configuration: a majority of both halves.

use super::{MajorityQuorum, VoteResult};
use crate::types::{Index, Membership, NodeId};

/// The voters of a possibly joint configuration (thesis §4.3: "agreement for
/// elections and entry commitment requires separate majorities from both the
/// old and new configurations").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JointQuorum {
    incoming: MajorityQuorum,
    outgoing: MajorityQuorum,
}

impl JointQuorum {
    /// The quorum of a membership; learners do not count.
    pub fn new(membership: &Membership) -> Self {
        JointQuorum {
            incoming: MajorityQuorum::new(membership.voters.clone()),
            outgoing: MajorityQuorum::new(membership.voters_outgoing.clone()),
        }
    }

    /// The highest index acknowledged by a quorum of both halves.
    pub fn committed_index(&self, acked: impl Fn(NodeId) -> Index) -> Index {
        let incoming = self.incoming.committed_index(&acked);
        let outgoing = self.outgoing.committed_index(&acked);
        incoming.min(outgoing)
    }

    /// Won only if both halves are won; lost if either is lost.
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        match (self.incoming.vote_result(&vote), self.outgoing.vote_result(&vote)) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    /// Whether `id` votes in either half.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.incoming.voters().contains(&id) || self.outgoing.voters().contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn joint(incoming: &[NodeId], outgoing: &[NodeId]) -> JointQuorum {
        JointQuorum::new(&Membership {
            voters: incoming.iter().copied().collect(),
            voters_outgoing: outgoing.iter().copied().collect(),
            learners: BTreeSet::new(),
        })
    }

    #[test]
    fn joint_commit_needs_both_majorities() {
        // Old {1,2,3}, new {3,4,5}: 1, 2 and 3 acked 10, 4 and 5 only 2.
        let q = joint(&[3, 4, 5], &[1, 2, 3]);
        let acked = |id: NodeId| if id <= 3 { 10 } else { 2 };
        assert_eq!(q.committed_index(acked), 2);
        assert_eq!(joint(&[1, 2, 3], &[]).committed_index(acked), 10);
    }

    #[test]
    fn joint_vote_lost_if_either_half_lost() {
        let q = joint(&[3, 4, 5], &[1, 2, 3]);
        let granted_by_old_only = |id: NodeId| Some(id <= 2);
        assert_eq!(q.vote_result(granted_by_old_only), VoteResult::Lost);
        let everyone = |_| Some(true);
        assert_eq!(q.vote_result(everyone), VoteResult::Won);
        let only_3_and_4 = |id: NodeId| if id == 3 || id == 4 { Some(true) } else { None };
        assert_eq!(q.vote_result(only_3_and_4), VoteResult::Pending);
    }

    /// Naive reference: the largest index that more than half of each
    /// non-empty half has acknowledged.
    fn naive_joint_committed(inc: &BTreeSet<NodeId>, out: &BTreeSet<NodeId>, acked: &[Index]) -> Index {
        let majority_has = |set: &BTreeSet<NodeId>, i: Index| {
            set.is_empty() || set.iter().filter(|&&id| acked[id as usize] >= i).count() * 2 > set.len()
        };
        let max = acked.iter().copied().max().unwrap_or(0);
        (0..=max).rev().find(|&i| majority_has(inc, i) && majority_has(out, i)).unwrap_or(0)
    }

    /// Naive reference: a half decides by counting heads (an empty half has
    /// won); the joint vote is won when both halves are, lost when either is.
    fn naive_joint_vote(inc: &BTreeSet<NodeId>, out: &BTreeSet<NodeId>, votes: &[Option<bool>]) -> VoteResult {
        let half = |set: &BTreeSet<NodeId>| {
            let yes = set.iter().filter(|&&id| votes[id as usize] == Some(true)).count();
            let no = set.iter().filter(|&&id| votes[id as usize] == Some(false)).count();
            if set.is_empty() || yes * 2 > set.len() {
                VoteResult::Won
            } else if no * 2 >= set.len() {
                VoteResult::Lost
            } else {
                VoteResult::Pending
            }
        };
        match (half(inc), half(out)) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }

    proptest! {
        #[test]
        fn joint_vote_matches_naive(
            votes in prop::collection::vec(prop::option::of(any::<bool>()), 7),
            inc_mask in 1u8..128,
            out_mask in 0u8..128,
            learner_mask in 0u8..128,
        ) {
            let set = |mask: u8| (0..7).filter(|b| mask & (1 << b) != 0).map(|b| b as NodeId).collect::<BTreeSet<_>>();
            let (inc, out) = (set(inc_mask), set(out_mask));
            // Learners are whoever is in neither half: their votes must not count.
            let learners: BTreeSet<NodeId> = set(learner_mask).difference(&inc).filter(|id| !out.contains(id)).copied().collect();
            let q = JointQuorum::new(&Membership { voters: inc.clone(), voters_outgoing: out.clone(), learners });
            let got = q.vote_result(|id| votes[id as usize]);
            prop_assert_eq!(got, naive_joint_vote(&inc, &out, &votes));
        }

        #[test]
        fn joint_committed_matches_naive(
            acked in prop::collection::vec(0u64..12, 7),
            inc_mask in 1u8..128,
            out_mask in 0u8..128,
        ) {
            let set = |mask: u8| (0..7).filter(|b| mask & (1 << b) != 0).map(|b| b as NodeId).collect::<BTreeSet<_>>();
            let (inc, out) = (set(inc_mask), set(out_mask));
            let q = JointQuorum::new(&Membership { voters: inc.clone(), voters_outgoing: out.clone(), learners: BTreeSet::new() });
            let got = q.committed_index(|id| acked[id as usize]);
            prop_assert_eq!(got, naive_joint_committed(&inc, &out, &acked));
        }
    }
}
