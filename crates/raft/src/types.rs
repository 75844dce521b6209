//! The vocabulary of the algorithm: terms, indices, log entries, hard state.

use std::collections::BTreeSet;

use bytes::Bytes;

/// A node's identity in the cluster. `0` is reserved for "nobody".
pub type NodeId = u64;
/// A Raft term (§5.1): the logical clock that orders leaders.
pub type Term = u64;
/// A position in the replicated log, starting at 1. `0` means "before the log".
pub type Index = u64;

/// The id that stands for "no node" (no vote cast, no leader known).
pub const NO_NODE: NodeId = 0;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryPayload {
    /// The empty entry a new leader appends at the start of its term so that it
    /// can commit, and so learn, everything before it (§5.4.2, §8).
    Noop,
    /// An application command, opaque to Raft.
    Command(Bytes),
    /// A new cluster configuration. It takes effect on a node as soon as it is in
    /// that node's log, committed or not (thesis §4.1). Boxed: rare, and
    /// three sets wide, it would make every entry 96 bytes instead of 56.
    Membership(Box<Membership>),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: Index,
    /// What the entry carries.
    pub payload: EntryPayload,
}

impl Entry {
    /// An approximate in-memory size, used for message size and inflight byte limits.
    pub fn size_bytes(&self) -> u64 {
        const HEADER_BYTES: u64 = 24;
        let body = match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(data) => data.len() as u64,
            EntryPayload::Membership(m) => 8 * m.node_count() as u64,
        };
        HEADER_BYTES + body
    }
}

/// The state every node must make durable before it answers a message that
/// depends on it (Figure 2, "Persistent state on all servers").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, or [`NO_NODE`].
    pub vote: NodeId,
    /// The highest index this node knows to be committed. Not required for safety
    /// (Figure 2 calls it volatile) but saves re-learning it after a restart.
    pub commit: Index,
}

/// A cluster configuration: who votes and who only listens.
///
/// A joint configuration (§6, thesis §4.3) has a non-empty `voters_outgoing`:
/// decisions then need a majority of `voters` *and* a majority of
/// `voters_outgoing`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// The voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// The voters of the configuration being left; empty unless joint.
    pub voters_outgoing: BTreeSet<NodeId>,
    /// Nodes that receive the log but neither vote nor count for commit.
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A simple (non-joint) configuration of the given voters and no learners.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership { voters: voters.into_iter().collect(), ..Default::default() }
    }

    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }

    /// Whether `id` votes in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.voters_outgoing.contains(&id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` is a member in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, voters first, each once, in id order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all: BTreeSet<NodeId> = self.voters.union(&self.voters_outgoing).copied().collect();
        all.extend(self.learners.iter().copied());
        all
    }

    /// How many distinct nodes the configuration names.
    pub fn node_count(&self) -> usize {
        self.members().len()
    }
}
