//! A majority of one set of voters.

use std::collections::BTreeSet;

use super::VoteResult;
use crate::types::{Index, NodeId};

/// The voters of a simple configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MajorityQuorum {
    voters: BTreeSet<NodeId>,
}

impl MajorityQuorum {
    /// A quorum over `voters`.
    pub fn new(voters: BTreeSet<NodeId>) -> Self {
        MajorityQuorum { voters }
    }

    /// The voters.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// The highest index that a majority has acknowledged, given each voter's
    /// acknowledged index. An empty configuration places no constraint
    /// (`Index::MAX`), so that a joint quorum with an empty half reduces to the
    /// other half.
    pub fn committed_index(&self, acked: impl Fn(NodeId) -> Index) -> Index {
        if self.voters.is_empty() {
            return Index::MAX;
        }
        let mut indexes: Vec<Index> = self.voters.iter().map(|&id| acked(id)).collect();
        indexes.sort_unstable_by(|a, b| b.cmp(a));
        // With n voters, the (n/2)-th largest value (0-based) is held by at
        // least n/2 + 1 of them: a majority.
        indexes[self.voters.len() / 2]
    }

    /// Whether the votes so far (`Some(granted)`, or `None` if not yet
    /// answered) win, lose, or are still open. An empty configuration wins.
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0, 0);
        for &id in &self.voters {
            match vote(id) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let majority = self.voters.len() / 2 + 1;
        if granted >= majority {
            VoteResult::Won
        } else if granted + missing >= majority {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn quorum(ids: &[NodeId]) -> MajorityQuorum {
        MajorityQuorum::new(ids.iter().copied().collect())
    }

    #[test]
    fn committed_index_is_the_majority_median() {
        let q = quorum(&[1, 2, 3]);
        let acked = BTreeMap::from([(1, 5), (2, 3), (3, 9)]);
        assert_eq!(q.committed_index(|id| acked[&id]), 5);
        let q4 = quorum(&[1, 2, 3, 4]);
        let acked4 = BTreeMap::from([(1, 5), (2, 3), (3, 9), (4, 4)]);
        // Three of four must hold it: 4 is held by 1, 3, 4.
        assert_eq!(q4.committed_index(|id| acked4[&id]), 4);
        assert_eq!(quorum(&[]).committed_index(|_| 0), Index::MAX);
    }

    #[test]
    fn vote_result_waits_wins_and_loses() {
        let q = quorum(&[1, 2, 3]);
        let votes = |v: &'static [(NodeId, bool)]| move |id: NodeId| v.iter().find(|(i, _)| *i == id).map(|(_, g)| *g);
        assert_eq!(q.vote_result(votes(&[(1, true)])), VoteResult::Pending);
        assert_eq!(q.vote_result(votes(&[(1, true), (2, true)])), VoteResult::Won);
        assert_eq!(q.vote_result(votes(&[(1, true), (2, false)])), VoteResult::Pending);
        assert_eq!(q.vote_result(votes(&[(1, false), (2, false)])), VoteResult::Lost);
        assert_eq!(quorum(&[]).vote_result(|_| None), VoteResult::Won);
    }

    /// The naive reference: the largest index `i` such that more than half of
    /// the voters acknowledged at least `i`.
    fn naive_committed(acked: &[Index]) -> Index {
        let candidates = acked.iter().copied().chain([0]);
        candidates.filter(|&i| acked.iter().filter(|&&a| a >= i).count() * 2 > acked.len()).max().unwrap_or(0)
    }

    /// The naive reference: won if more than half granted, lost if even all the
    /// missing answers could not make it, else pending.
    fn naive_vote(votes: &[Option<bool>]) -> VoteResult {
        let n = votes.len();
        let granted = votes.iter().filter(|v| **v == Some(true)).count();
        let possible = votes.iter().filter(|v| **v != Some(false)).count();
        if granted * 2 > n {
            VoteResult::Won
        } else if possible * 2 > n {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }

    proptest! {
        #[test]
        fn committed_index_matches_naive(acked in prop::collection::vec(0u64..20, 1..9)) {
            let q = MajorityQuorum::new((1..=acked.len() as NodeId).collect());
            let got = q.committed_index(|id| acked[(id - 1) as usize]);
            prop_assert_eq!(got, naive_committed(&acked));
        }

        #[test]
        fn vote_result_matches_naive(votes in prop::collection::vec(prop::option::of(any::<bool>()), 1..9)) {
            let q = MajorityQuorum::new((1..=votes.len() as NodeId).collect());
            let got = q.vote_result(|id| votes[(id - 1) as usize]);
            prop_assert_eq!(got, naive_vote(&votes));
        }
    }
}
