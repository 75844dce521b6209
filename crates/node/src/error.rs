//! What can go wrong for a caller of [`Node`](crate::Node).

use raft::NodeId;
use thiserror::Error;

/// Why a request to a node failed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum NodeError {
    /// This node is not the leader. Nothing was done.
    #[error("not the leader (leader: {leader:?}, client address: {leader_addr:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// That leader's client address, if known.
        leader_addr: Option<String>,
    },
    /// The request may or may not have taken effect: leadership was lost or
    /// the timeout passed after it was proposed. Never a definite failure.
    #[error("outcome unknown: {0}")]
    Unknown(&'static str),
    /// The request was refused for a reason that leaves nothing done.
    #[error("refused: {0}")]
    Refused(String),
    /// The node is shutting down or has stopped.
    #[error("node stopped")]
    Stopped,
    /// Storage failed: the node has stopped (a failed write or fsync is fatal).
    #[error("storage failed: {0}")]
    Storage(String),
}

/// Why a node could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The WAL could not be opened (corruption is reported with file and offset).
    #[error("cannot open the log: {0}")]
    Open(#[from] wal::OpenError),
    /// Storage failed while starting.
    #[error("storage: {0}")]
    Wal(#[from] wal::WalError),
    /// The state machine could not be restored from the snapshot.
    #[error("cannot restore the state machine: {0}")]
    Restore(std::io::Error),
    /// The peer listener could not be bound.
    #[error("cannot listen for peers: {0}")]
    Listen(std::io::Error),
}
