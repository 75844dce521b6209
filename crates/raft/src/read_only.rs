//! ReadIndex bookkeeping (thesis §6.4): reads wait for the leader to confirm,
//! with one heartbeat round shared by every read registered before it, that
//! no other leader has taken over. One round is in flight at a time: reads
//! that arrive meanwhile wait for the next one, so under load a round costs
//! the followers one message each for many reads, not one per read (etcd's
//! read loop does the same). A lost round is re-sent by the next periodic
//! heartbeat, which carries the latest round.
//!
//! With lease reads (thesis §6.4.1) the leader also keeps a lease: a round
//! started at tick `t` and acknowledged by a quorum proves that no other
//! leader can be elected before `t + lease` ticks, because every server of
//! that quorum heard from this leader after `t` and ignores vote requests for
//! a minimum election timeout after hearing from it (§4.2.3). Within the lease
//! a read needs no round at all. Every periodic heartbeat starts a round, so
//! the lease is renewed while the leader is healthy.

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
    /// The tick at which the latest round started, if it can grant a lease.
    round_started_at: Option<u64>,
    /// Lease reads are served before this tick (0: no lease).
    lease_until: u64,
    /// No lease for the rest of the term: the leader asked another server to
    /// campaign at once (TimeoutNow), and its voters do not wait out the lease.
    lease_revoked: bool,
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

    /// Starts a new round at tick `now` if the previous round is confirmed and
    /// reads wait for one (or `renew_lease`), returning its number.
    pub fn start_round(&mut self, now: u64, renew_lease: bool) -> Option<u64> {
        let wanted = self.round_wanted || (renew_lease && !self.lease_revoked);
        if !wanted || self.confirmed < self.round {
            return None;
        }
        self.round_wanted = false;
        self.round += 1;
        self.round_started_at = Some(now);
        Some(self.round)
    }

    /// A quorum has acknowledged rounds up to `confirmed`: returns the reads it
    /// releases, as `(ctx, index)`, in order. If that confirms the latest
    /// round, the lease runs until `lease_ticks` after the round started.
    pub fn confirm(&mut self, confirmed: u64, lease_ticks: u64) -> Vec<(u64, Index)> {
        self.confirmed = self.confirmed.max(confirmed.min(self.round));
        if let Some(started) = self.round_started_at
            && self.confirmed == self.round
            && !self.lease_revoked
        {
            self.lease_until = self.lease_until.max(started + lease_ticks);
        }
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

    /// The tick the lease ends at (0: none).
    pub fn lease_until(&self) -> u64 {
        self.lease_until
    }

    /// Whether a lease read at tick `now` is safe.
    pub fn in_lease(&self, now: u64) -> bool {
        now < self.lease_until
    }

    /// Ends the lease; rounds confirmed from now on grant a new one. For a
    /// changed configuration, whose quorums the lease was not granted by.
    pub fn expire_lease(&mut self) {
        self.lease_until = 0;
        // A round in flight was started under the old configuration.
        self.round_started_at = None;
    }

    /// Ends the lease for the rest of the term (see `lease_revoked`).
    pub fn revoke_lease(&mut self) {
        self.expire_lease();
        self.lease_revoked = true;
    }

    /// Leadership is lost: returns every waiting read's ctx and forgets them.
    pub fn abort_all(&mut self) -> Vec<u64> {
        let mut failed = std::mem::take(&mut self.awaiting_term_commit);
        failed.extend(self.pending.drain(..).map(|r| r.ctx));
        self.round_wanted = false;
        self.lease_until = 0;
        self.lease_revoked = false;
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
        assert_eq!(r.start_round(0, false), Some(1));
        r.register(2, 11);
        assert_eq!(r.start_round(0, false), None, "round 1 is not confirmed yet");
        r.register(3, 11);
        assert_eq!(r.confirm(1, 0), vec![(1, 10)], "reads after round 1 started wait for round 2");
        assert_eq!(r.start_round(0, false), Some(2), "both waiting reads share the next round");
        assert_eq!(r.confirm(2, 0), vec![(2, 11), (3, 11)]);
        assert_eq!(r.start_round(0, false), None);
    }

    #[test]
    fn reads_share_one_round() {
        let mut r = ReadOnly::default();
        r.register(1, 10);
        r.register(2, 11);
        assert_eq!(r.start_round(0, false), Some(1));
        assert_eq!(r.start_round(0, false), None, "no new reads, no new round");
        r.register(3, 12);
        assert_eq!(r.confirm(1, 0), vec![(1, 10), (2, 11)]);
        assert_eq!(r.start_round(0, false), Some(2));
        assert!(r.confirm(1, 0).is_empty(), "read 3 needs round 2");
        assert_eq!(r.confirm(2, 0), vec![(3, 12)]);
    }

    #[test]
    fn term_commit_releases_waiting_reads_into_a_round() {
        let mut r = ReadOnly::default();
        r.await_term_commit(7);
        assert_eq!(r.start_round(0, false), None);
        r.on_term_commit(5);
        assert_eq!(r.start_round(0, false), Some(1));
        assert_eq!(r.confirm(1, 0), vec![(7, 5)]);
    }

    #[test]
    fn a_confirmed_round_grants_a_lease_from_its_start() {
        let mut r = ReadOnly::default();
        assert!(!r.in_lease(0));
        assert_eq!(r.start_round(10, false), None, "no reads, no renewal: no round");
        assert_eq!(r.start_round(10, true), Some(1));
        assert!(r.confirm(0, 16).is_empty());
        assert!(!r.in_lease(11), "not before a quorum acknowledged");
        r.confirm(1, 16);
        assert!(r.in_lease(25) && !r.in_lease(26), "16 ticks from the round's start, not from the ack");
        assert_eq!(r.start_round(15, true), Some(2));
        r.confirm(2, 16);
        assert!(r.in_lease(30) && !r.in_lease(31), "renewed");
    }

    #[test]
    fn an_expired_lease_is_granted_again_only_by_a_later_round() {
        let mut r = ReadOnly::default();
        r.start_round(10, true);
        r.expire_lease();
        r.confirm(1, 16);
        assert!(!r.in_lease(10), "round 1 started under the old configuration");
        r.start_round(12, true);
        r.confirm(2, 16);
        assert!(r.in_lease(27));
    }

    #[test]
    fn a_revoked_lease_stays_revoked_for_the_term() {
        let mut r = ReadOnly::default();
        r.start_round(0, true);
        r.confirm(1, 16);
        r.revoke_lease();
        assert!(!r.in_lease(1));
        assert_eq!(r.start_round(5, true), None, "no renewal rounds without reads");
        r.register(1, 3);
        assert_eq!(r.start_round(5, true), Some(2), "reads still get rounds");
        assert_eq!(r.confirm(2, 16), vec![(1, 3)]);
        assert!(!r.in_lease(6));
        r.abort_all();
        r.start_round(7, true);
        r.confirm(3, 16);
        assert!(r.in_lease(8), "a new term has its own lease");
    }

    #[test]
    fn abort_fails_everything() {
        let mut r = ReadOnly::default();
        r.await_term_commit(1);
        r.register(2, 3);
        assert_eq!(r.abort_all(), vec![1, 2]);
        assert!(r.confirm(u64::MAX, 0).is_empty());
    }
}
