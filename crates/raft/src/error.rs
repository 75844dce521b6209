//! Errors of the core's inputs, one enum per operation.

use thiserror::Error;

use crate::types::{NO_NODE, NodeId};

/// The leader this node believes in, if any: where a refused client should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderHint(pub Option<NodeId>);

impl LeaderHint {
    pub(crate) fn from_id(id: NodeId) -> Self {
        LeaderHint((id != NO_NODE).then_some(id))
    }
}

impl std::fmt::Display for LeaderHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => write!(f, "leader is {id}"),
            None => write!(f, "no leader known"),
        }
    }
}

/// Why a proposal was refused. Nothing was appended in any case.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader accepts proposals.
    #[error("not the leader ({0})")]
    NotLeader(LeaderHint),
    /// A leadership transfer is under way (thesis §3.10: the leader stops
    /// accepting client requests while it hands over).
    #[error("leadership transfer in progress")]
    TransferInProgress,
    /// A membership change is already in flight (issue a second one after it commits).
    #[error("a membership change is already in progress")]
    ChangeInProgress,
    /// The change would make no sense (see the message).
    #[error("invalid membership change: {0}")]
    InvalidChange(&'static str),
}

/// Why a ReadIndex request was refused.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum ReadError {
    /// Only the leader serves ReadIndex.
    #[error("not the leader ({0})")]
    NotLeader(LeaderHint),
}

/// Why a leadership transfer was refused.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum TransferError {
    /// Only the leader can hand over leadership.
    #[error("not the leader ({0})")]
    NotLeader(LeaderHint),
    /// The target is not a voter of the current configuration.
    #[error("node {0} is not a voter")]
    UnknownTarget(NodeId),
}

/// Why a message was not accepted.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum StepError {
    /// The message is addressed to another node.
    #[error("message for node {to} delivered to node {me}")]
    WrongRecipient {
        /// The addressee.
        to: NodeId,
        /// This node.
        me: NodeId,
    },
    /// The message claims to come from node 0 or from this node itself.
    #[error("message from invalid sender {0}")]
    InvalidSender(NodeId),
}
