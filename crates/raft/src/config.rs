//! Tunables of the core, in ticks and bytes.

use thiserror::Error;

use crate::types::{NO_NODE, NodeId};

/// How much faster one server's clock may run than another's, in percent,
/// before lease reads become unsafe (see [`Config::lease_read`]).
pub const LEASE_CLOCK_DRIFT_PERCENT: u64 = 10;

/// How a node behaves. Times are in ticks: the driver decides how long a tick is
/// (the defaults assume 10 ms, giving the 50 ms heartbeat and 200–500 ms
/// randomized election timeout of the design).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id (never 0).
    pub id: NodeId,
    /// The election timeout is drawn uniformly from `[min, max)` ticks (§5.2).
    pub election_timeout_min_ticks: u64,
    /// See `election_timeout_min_ticks`.
    pub election_timeout_max_ticks: u64,
    /// A leader sends heartbeats this often.
    pub heartbeat_interval_ticks: u64,
    /// Ask "would you vote for me?" before raising the term (thesis §9.6), so a
    /// node that was cut off cannot disrupt a healthy cluster when it returns.
    pub pre_vote: bool,
    /// A leader that has not heard from a quorum for an election timeout steps
    /// down (thesis §6.2), and followers that hear from a leader ignore vote
    /// requests until their election timeout passes (thesis §4.2.3).
    pub check_quorum: bool,
    /// Serve reads on the leader without a heartbeat round while it holds a
    /// lease (thesis §6.4.1). Needs `check_quorum`. Safe as long as the
    /// servers' clocks advance at rates within [`LEASE_CLOCK_DRIFT_PERCENT`]
    /// of each other and ticks never run ahead of real time; ReadIndex rounds
    /// (the default) assume nothing about clocks.
    pub lease_read: bool,
    /// At most this many bytes of entries in one AppendEntries (one entry is
    /// always sent, however large).
    pub max_message_bytes: u64,
    /// At most this many AppendEntries in flight to one follower.
    pub max_inflight_messages: usize,
    /// At most this many bytes of entries in flight to one follower.
    pub max_inflight_bytes: u64,
    /// Once this many AppendEntries to a follower are unanswered, new entries
    /// that fit in an eighth of `max_message_bytes` wait for an answer and
    /// then leave together (0: never wait). Each message costs a write and a
    /// wakeup at both ends, and where answers come back within a follower's
    /// fsync this turns a stream of small messages into a few larger ones;
    /// where the network is slow, batches that large still stream up to
    /// `max_inflight_messages`.
    pub coalesce_inflight_messages: usize,
    /// At most this many bytes of committed entries in one [`Action::Apply`](crate::Action::Apply).
    pub max_apply_bytes: u64,
    /// Size of the chunks of an InstallSnapshot transfer.
    pub snapshot_chunk_bytes: u64,
    /// Seed of this node's random election timeouts.
    pub seed: u64,
    /// Deliberate bugs (test builds only).
    #[cfg(feature = "planted-bugs")]
    pub bugs: PlantedBugs,
}

/// Deliberate bugs a test can switch on, to show the checkers catch them.
#[cfg(feature = "planted-bugs")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlantedBugs {
    /// Grant a vote even if this term's vote went to another candidate.
    pub vote_twice: bool,
    /// Commit by counting replicas of entries of earlier terms (Figure 8).
    pub commit_old_terms: bool,
    /// Acknowledge appended entries before they are durable.
    pub ack_before_persist: bool,
    /// Serve reads at the leader's commit index without confirming leadership.
    pub read_without_read_index: bool,
    /// Do not append a no-op at the start of a term.
    pub skip_noop: bool,
}

impl Config {
    /// The defaults for node `id`.
    pub fn new(id: NodeId) -> Self {
        Config {
            id,
            election_timeout_min_ticks: 20,
            election_timeout_max_ticks: 50,
            heartbeat_interval_ticks: 5,
            pre_vote: true,
            check_quorum: true,
            lease_read: false,
            max_message_bytes: 1 << 20,
            max_inflight_messages: 256,
            max_inflight_bytes: 32 << 20,
            coalesce_inflight_messages: 4,
            max_apply_bytes: 64 << 20,
            snapshot_chunk_bytes: 1 << 20,
            seed: id,
            #[cfg(feature = "planted-bugs")]
            bugs: PlantedBugs::default(),
        }
    }

    /// How long a lease lasts, in ticks from the start of the heartbeat round
    /// that granted it: the minimum election timeout, less one tick for the
    /// leader's and one for the follower's tick granularity, less the clock
    /// drift allowed. Voters ignore vote requests for a minimum election
    /// timeout after hearing from the leader, so nobody else can win an
    /// election before the lease ends.
    pub fn lease_ticks(&self) -> u64 {
        let ticks = self.election_timeout_min_ticks.saturating_sub(2);
        ticks - (ticks * LEASE_CLOCK_DRIFT_PERCENT).div_ceil(100)
    }

    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == NO_NODE {
            return Err(ConfigError::ZeroId);
        }
        if self.heartbeat_interval_ticks == 0 {
            return Err(ConfigError::ZeroHeartbeat);
        }
        if self.election_timeout_min_ticks <= self.heartbeat_interval_ticks
            || self.election_timeout_max_ticks <= self.election_timeout_min_ticks
        {
            return Err(ConfigError::ElectionTimeout {
                heartbeat: self.heartbeat_interval_ticks,
                min: self.election_timeout_min_ticks,
                max: self.election_timeout_max_ticks,
            });
        }
        if self.lease_read && (!self.check_quorum || self.lease_ticks() <= self.heartbeat_interval_ticks) {
            return Err(ConfigError::Lease { lease: self.lease_ticks(), heartbeat: self.heartbeat_interval_ticks });
        }
        if self.max_inflight_messages == 0 || self.snapshot_chunk_bytes == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        Ok(())
    }
}

/// A [`Config`] that cannot work.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Node id 0 means "nobody".
    #[error("node id must not be 0")]
    ZeroId,
    /// A zero heartbeat interval.
    #[error("heartbeat interval must be at least one tick")]
    ZeroHeartbeat,
    /// Timeouts out of order.
    #[error("need heartbeat ({heartbeat}) < election timeout min ({min}) < max ({max}) ticks")]
    ElectionTimeout {
        /// Configured heartbeat interval.
        heartbeat: u64,
        /// Configured minimum election timeout.
        min: u64,
        /// Configured maximum election timeout.
        max: u64,
    },
    /// Lease reads need check-quorum, and a lease longer than a heartbeat
    /// interval so that renewals can keep it.
    #[error("lease reads need check_quorum and a lease ({lease} ticks) longer than the heartbeat ({heartbeat})")]
    Lease {
        /// The lease the timeouts give.
        lease: u64,
        /// Configured heartbeat interval.
        heartbeat: u64,
    },
    /// A limit that must be positive is zero.
    #[error("inflight and snapshot chunk limits must be positive")]
    ZeroLimit,
}
