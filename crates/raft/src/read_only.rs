//! ReadIndex bookkeeping (thesis §6.4): reads wait for the leader to confirm,
//! with one heartbeat round shared by every read registered before it, that
//! no other leader has taken over. One round is in flight at a time: reads
//! that arrive meanwhile wait for the next one, so under load a round costs
//! the followers one message each for many reads, not one per read (etcd's
//! read loop does the same). A lost round is re-sent by the next periodic
//! heartbeat, which carries the latest round.

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
    /// The latest round a quorum has acknowledged.
    confirmed: u64,
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

    /// Starts a new round if reads wait for one and the previous round is
    /// confirmed, returning its number.
    pub fn start_round(&mut self) -> Option<u64> {
        if !self.round_wanted || self.confirmed < self.round {
            return None;
        }
        self.round_wanted = false;
        self.round += 1;
        Some(self.round)
    }

    /// A quorum has acknowledged rounds up to `confirmed`: returns the reads it
    /// releases, as `(ctx, index)`, in order.
    pub fn confirm(&mut self, confirmed: u64) -> Vec<(u64, Index)> {
        self.confirmed = self.confirmed.max(confirmed.min(self.round));
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
        // A round still in flight answers nobody now: the next term's first
        // reads start their own at once.
        self.confirmed = self.round;
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_round_is_in_flight_at_a_time() {
        let mut r = ReadOnly::default();
        r.register(1, 10);
        assert_eq!(r.start_round(), Some(1));
        r.register(2, 11);
        assert_eq!(r.start_round(), None, "round 1 is not confirmed yet");
        r.register(3, 11);
        assert_eq!(r.confirm(1), vec![(1, 10)], "reads after round 1 started wait for round 2");
        assert_eq!(r.start_round(), Some(2), "both waiting reads share the next round");
        assert_eq!(r.confirm(2), vec![(2, 11), (3, 11)]);
        assert_eq!(r.start_round(), None);
    }

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
