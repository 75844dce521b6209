//! One follower's replication progress, as the leader sees it.

use super::Inflights;
use crate::types::Index;

/// How the leader is currently replicating to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Searching for the point where the logs match: one AppendEntries at a
    /// time, backing off on each rejection (§5.3).
    Probe,
    /// The logs match: stream entries optimistically, up to the inflight window.
    Replicate,
    /// The entries the follower needs are compacted: a snapshot at this index
    /// is being sent.
    Snapshot {
        /// The snapshot's index.
        index: Index,
    },
}

/// What the leader knows of one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to be replicated on the follower (Figure 2).
    pub match_index: Index,
    /// The next index to send (Figure 2).
    pub next_index: Index,
    /// The replication mode.
    pub state: ProgressState,
    /// In `Probe`: a probe is out and unanswered, so send no other.
    pub probe_sent: bool,
    /// AppendEntries in flight, in `Replicate`.
    pub inflights: Inflights,
    /// Whether the follower answered anything since the last quorum check.
    pub recent_active: bool,
    /// The latest ReadIndex round the follower acknowledged.
    pub read_round_acked: u64,
    /// In `Snapshot`: the offset the follower expects next (a lost chunk is
    /// resent from here, not from the start).
    pub snapshot_offset: u64,
    /// In `Snapshot`: no chunk was acknowledged since the last heartbeat
    /// answer. A second heartbeat answer in that state means the chunk in
    /// flight was lost, and only then is it resent.
    pub snapshot_idle: bool,
}

impl Progress {
    /// A follower the leader knows nothing about yet: probe from `next_index`.
    pub fn new(next_index: Index, inflights: Inflights) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights,
            recent_active: false,
            read_round_acked: 0,
            snapshot_offset: 0,
            snapshot_idle: false,
        }
    }

    /// Whether the leader must hold further AppendEntries to this follower.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// Switches to probing from just after what is known to match.
    pub fn become_probe(&mut self) {
        if let ProgressState::Snapshot { index } = self.state {
            self.next_index = (self.match_index + 1).max(index + 1);
        } else {
            self.next_index = self.match_index + 1;
        }
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflights.reset();
    }

    /// Switches to streaming from just after what is known to match.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflights.reset();
    }

    /// Switches to sending a snapshot at `index`.
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot { index };
        self.snapshot_offset = 0;
        self.snapshot_idle = false;
        self.probe_sent = false;
        self.inflights.reset();
    }

    /// Records that the follower holds everything up to `index`. Returns whether
    /// that was news (a stale or duplicate acknowledgement is not).
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        updated
    }

    /// In `Snapshot`: the follower expects the chunk at `next_offset`. Returns
    /// whether that chunk should be sent now: when the transfer moved forward,
    /// or when the follower lost it and must start over at 0. Any other answer
    /// (a duplicate, or one overtaken by later ones) is about a chunk that is
    /// already on its way, and sending it again would start a second stream.
    pub fn maybe_snapshot_progress(&mut self, next_offset: u64) -> bool {
        let restart = next_offset == 0 && self.snapshot_offset != 0;
        if next_offset <= self.snapshot_offset && !restart {
            return false;
        }
        self.snapshot_offset = next_offset;
        self.snapshot_idle = false;
        true
    }

    /// In `Snapshot`: a heartbeat answer arrived. Returns whether the chunk
    /// in flight should be resent, because nothing was acknowledged for a
    /// whole heartbeat interval (the resend then gets an interval of its own).
    pub fn snapshot_stalled(&mut self) -> bool {
        let stalled = self.snapshot_idle;
        self.snapshot_idle = !stalled;
        stalled
    }

    /// Records that an AppendEntries with entries up to `last_index` was sent.
    pub fn on_sent(&mut self, last_index: Index, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if last_index >= self.next_index {
                    self.next_index = last_index + 1;
                    self.inflights.add(last_index, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// Handles a rejection of the AppendEntries whose `prev_log_index` was
    /// `rejected`, with `hint_next` the leader's best guess of where the logs
    /// may match from. Returns false if the rejection is stale (answers a
    /// message that was superseded), in which case nothing changes.
    pub fn maybe_decrease_to(&mut self, rejected: Index, hint_next: Index) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.match_index {
                return false;
            }
            self.become_probe();
            self.next_index = hint_next.clamp(self.match_index + 1, rejected.max(self.match_index + 1));
            return true;
        }
        if self.next_index == 0 || self.next_index - 1 != rejected {
            return false;
        }
        self.next_index = hint_next.clamp(self.match_index + 1, rejected.max(self.match_index + 1));
        self.probe_sent = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress() -> Progress {
        Progress::new(11, Inflights::new(2, 1 << 20))
    }

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut p = progress();
        assert!(!p.is_paused());
        p.on_sent(10, 0);
        assert!(p.is_paused());
        assert!(p.maybe_update(10));
        assert!(!p.is_paused());
    }

    #[test]
    fn replicate_is_bounded_by_inflights() {
        let mut p = progress();
        p.maybe_update(10);
        p.become_replicate();
        p.on_sent(12, 10);
        p.on_sent(14, 10);
        assert_eq!(p.next_index, 15);
        assert!(p.is_paused(), "two messages fill a window of two");
        p.maybe_update(12);
        p.inflights.free_le(12);
        assert!(!p.is_paused());
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = progress();
        p.maybe_update(5);
        p.become_replicate();
        assert!(!p.maybe_decrease_to(4, 1), "rejecting below match is stale");
        assert!(p.maybe_decrease_to(8, 7));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!(p.next_index, 7);
        assert!(!p.maybe_decrease_to(9, 2), "probe answered for another prev index");
    }

    #[test]
    fn snapshot_chunks_move_forward_or_restart_only() {
        let mut p = progress();
        p.become_snapshot(20);
        assert!(!p.maybe_snapshot_progress(0), "chunk 0 is already out");
        assert!(p.maybe_snapshot_progress(100));
        assert!(!p.maybe_snapshot_progress(100), "a duplicate answer");
        assert!(p.maybe_snapshot_progress(200));
        assert!(!p.maybe_snapshot_progress(100), "an answer overtaken by a later one");
        assert!(p.maybe_snapshot_progress(0), "the follower lost the transfer: start over");
        assert_eq!(p.snapshot_offset, 0);
        assert!(!p.snapshot_stalled(), "the first heartbeat answer only marks the interval");
        assert!(p.snapshot_stalled(), "no progress for an interval: resend");
        assert!(!p.snapshot_stalled(), "the resend gets an interval of its own");
        assert!(p.snapshot_stalled());
        assert!(p.maybe_snapshot_progress(100));
        assert!(!p.snapshot_stalled(), "progress restarts the interval");
    }

    #[test]
    fn decrease_never_goes_below_match() {
        let mut p = progress();
        p.maybe_update(5);
        p.next_index = 9;
        assert!(p.maybe_decrease_to(8, 1));
        assert_eq!(p.next_index, 6);
    }
}
