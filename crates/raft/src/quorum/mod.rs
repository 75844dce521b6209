//! Quorum math: who must agree for a vote to be won or an index committed.
//!
//! A simple configuration needs a majority of its voters; a joint one
//! (§6, thesis §4.3) needs a majority of each half. Kept apart from the rest so
//! it can be tested against a deliberately naive reference.

mod joint;
mod majority;

pub use joint::JointQuorum;
pub use majority::MajorityQuorum;

/// The outcome of counting votes so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A quorum granted.
    Won,
    /// A quorum can no longer be reached.
    Lost,
    /// Neither yet: wait for more answers.
    Pending,
}
