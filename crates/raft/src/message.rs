//! The messages nodes exchange. Plain values: how they travel is the driver's
//! business (the wire codec lives in `node`, never here).

use bytes::Bytes;

use crate::types::{Entry, Index, Membership, NodeId, Term};

/// A message from one node to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term (for a granted pre-vote, the term it was granted for).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message, after Figure 2 plus pre-vote, heartbeats, TimeoutNow
/// and chunked snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageBody {
    /// RequestVote RPC (§5.2), or its pre-vote rehearsal (thesis §9.6).
    RequestVote(RequestVote),
    /// The answer to a [`MessageBody::RequestVote`].
    RequestVoteResponse(RequestVoteResponse),
    /// AppendEntries RPC (§5.3).
    AppendEntries(AppendEntries),
    /// The answer to an [`MessageBody::AppendEntries`].
    AppendEntriesResponse(AppendEntriesResponse),
    /// A leader's periodic "I am still here", which also carries its commit index
    /// and confirms leadership for ReadIndex (thesis §6.4).
    Heartbeat(Heartbeat),
    /// The answer to a [`MessageBody::Heartbeat`].
    HeartbeatResponse(HeartbeatResponse),
    /// Tells the target of a leadership transfer to start an election now
    /// (thesis §3.10).
    TimeoutNow,
    /// One chunk of InstallSnapshot RPC (§7).
    InstallSnapshot(InstallSnapshot),
    /// The answer to an [`MessageBody::InstallSnapshot`] chunk.
    InstallSnapshotResponse(InstallSnapshotResponse),
}

impl MessageBody {
    /// A short name for traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::RequestVote(rv) if rv.pre_vote => "PreVote",
            MessageBody::RequestVote(_) => "RequestVote",
            MessageBody::RequestVoteResponse(r) if r.pre_vote => "PreVoteResponse",
            MessageBody::RequestVoteResponse(_) => "RequestVoteResponse",
            MessageBody::AppendEntries(_) => "AppendEntries",
            MessageBody::AppendEntriesResponse(_) => "AppendEntriesResponse",
            MessageBody::Heartbeat(_) => "Heartbeat",
            MessageBody::HeartbeatResponse(_) => "HeartbeatResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::InstallSnapshot(_) => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse(_) => "InstallSnapshotResponse",
        }
    }

    /// Whether this message asks for an answer (as opposed to being one).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            MessageBody::RequestVote(_)
                | MessageBody::AppendEntries(_)
                | MessageBody::Heartbeat(_)
                | MessageBody::TimeoutNow
                | MessageBody::InstallSnapshot(_)
        )
    }
}

/// RequestVote arguments (Figure 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestVote {
    /// A pre-vote asks "would you vote for me?" without anyone changing term.
    pub pre_vote: bool,
    /// Set when a leader asked for this election (TimeoutNow): voters then do not
    /// hold on to the leader they still hear from.
    pub leadership_transfer: bool,
    /// Index of the candidate's last log entry (§5.4.1).
    pub last_log_index: Index,
    /// Term of the candidate's last log entry (§5.4.1).
    pub last_log_term: Term,
}

/// RequestVote results (Figure 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestVoteResponse {
    /// Whether this answers a pre-vote.
    pub pre_vote: bool,
    /// Whether the vote was granted.
    pub granted: bool,
}

/// AppendEntries arguments (Figure 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendEntries {
    /// Index of the entry immediately preceding `entries`.
    pub prev_log_index: Index,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// Entries to store, in order; empty for a probe.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub leader_commit: Index,
}

/// AppendEntries results, with the hints of fast backtracking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendEntriesResponse {
    /// Whether the follower's log matched at `prev_log_index`.
    pub success: bool,
    /// On success: the index of the last entry now known to match the leader's
    /// (prev index + entries sent). On rejection: the rejected `prev_log_index`.
    pub index: Index,
    /// On rejection: where the leader should look next (§5.3, "the follower can
    /// include the term of the conflicting entry and the first index it stores
    /// for that term").
    pub conflict: Option<ConflictHint>,
}

/// Why and where a follower's log differs from the leader's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConflictHint {
    /// The follower's term at the rejected index, or `None` if its log is shorter.
    pub term: Option<Term>,
    /// The first index the follower has of `term`, or its last index + 1 if its
    /// log is too short.
    pub index: Index,
}

/// Heartbeat arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// The leader's commit index, capped at what this follower is known to hold
    /// so that it never commits entries it has not matched.
    pub commit: Index,
    /// The leader's current ReadIndex round, echoed back in the response.
    pub read_round: u64,
}

/// Heartbeat results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// The `read_round` of the heartbeat being answered.
    pub read_round: u64,
}

/// What a snapshot covers: everything up to and including `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The last index the snapshot replaces.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The configuration in effect at `index`.
    pub membership: Membership,
}

/// One chunk of a snapshot being installed on a follower (§7, Figure 13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallSnapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// Byte offset of `data` in the snapshot.
    pub offset: u64,
    /// The chunk's bytes.
    pub data: Bytes,
    /// Whether this is the last chunk.
    pub done: bool,
}

/// The answer to one snapshot chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallSnapshotResponse {
    /// The snapshot index being transferred.
    pub snapshot_index: Index,
    /// The offset the follower expects next (the transfer resumes from here).
    pub next_offset: u64,
    /// Whether the follower has installed (or no longer needs) the snapshot.
    pub done: bool,
}
