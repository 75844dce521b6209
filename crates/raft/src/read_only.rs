//! ReadIndex bookkeeping (thesis §6.4): reads wait for the leader to confirm,
//! with one heartbeat round shared by every read registered before it, that
//! no other leader has taken over.

use std::collections::VecDeque;

use crate::types::Index;

/// A read waiting for leadership confirmation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRead {
    ctx: u64,
    index: Index,
    /// The heartbeat round that, once acknowledged by a quorum, confirms it.
    round: u64,
}

/// The leader's queue of ReadIndex requests.
#[derive(Clone, Debug, Default)]
pub struct ReadOnly {
    /// The latest round sent to followers.
    round: u64,
    /// Whether a new round must be sent (reads are waiting for one).
    round_wanted: bool,
    /// Reads waiting for the leader to commit an entry of its term (until then
    /// its commit index may be stale, §6.4 step 1).
    awaiting_term_commit: Vec<u64>,
    /// Reads waiting for a round to be acknowledged, oldest first.
    pending: VecDeque<PendingRead>,
}

impl ReadOnly {
    /// The latest round sent to followers.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Queues a read that must wait until the leader commits in its term.
    pub fn await_term_commit(&mut self, ctx: u64) {
        self.awaiting_term_commit.push(ctx);
    }

    /// Registers a read of `index`, confirmed by the next round.
    pub fn register(&mut self, ctx: u64, index: Index) {
        self.pending.push_back(PendingRead { ctx, index, round: self.round + 1 });
        self.round_wanted = true;
    }

    /// The leader has committed in its term: the waiting reads read `commit`.
    pub fn on_term_commit(&mut self, commit: Index) {
        for ctx in std::mem::take(&mut self.awaiting_term_commit) {
            self.register(ctx, commit);
        }
    }

    /// Starts a new round if reads wait for one, returning its number.
    pub fn start_round(&mut self) -> Option<u64> {
        if !std::mem::take(&mut self.round_wanted) {
            return None;
        }
        self.round += 1;
        Some(self.round)
    }

    /// A quorum has acknowledged rounds up to `confirmed`: returns the reads it
    /// releases, as `(ctx, index)`, in order.
    pub fn confirm(&mut self, confirmed: u64) -> Vec<(u64, Index)> {
        let mut ready = Vec::new();
        while let Some(read) = self.pending.front() {
            if read.round > confirmed {
                break;
            }
            ready.push((read.ctx, read.index));
            self.pending.pop_front();
        }
        ready
    }

    /// Leadership is lost: returns every waiting read's ctx and forgets them.
    pub fn abort_all(&mut self) -> Vec<u64> {
        let mut failed = std::mem::take(&mut self.awaiting_term_commit);
        failed.extend(self.pending.drain(..).map(|r| r.ctx));
        self.round_wanted = false;
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_share_one_round() {
        let mut r = ReadOnly::default();
        r.register(1, 10);
        r.register(2, 11);
        assert_eq!(r.start_round(), Some(1));
        assert_eq!(r.start_round(), None, "no new reads, no new round");
        r.register(3, 12);
        assert_eq!(r.confirm(1), vec![(1, 10), (2, 11)]);
        assert_eq!(r.start_round(), Some(2));
        assert!(r.confirm(1).is_empty(), "read 3 needs round 2");
        assert_eq!(r.confirm(2), vec![(3, 12)]);
    }

    #[test]
    fn term_commit_releases_waiting_reads_into_a_round() {
        let mut r = ReadOnly::default();
        r.await_term_commit(7);
        assert_eq!(r.start_round(), None);
        r.on_term_commit(5);
        assert_eq!(r.start_round(), Some(1));
        assert_eq!(r.confirm(1), vec![(7, 5)]);
    }

    #[test]
    fn abort_fails_everything() {
        let mut r = ReadOnly::default();
        r.await_term_commit(1);
        r.register(2, 3);
        assert_eq!(r.abort_all(), vec![1, 2]);
        assert!(r.confirm(u64::MAX).is_empty());
    }
}
