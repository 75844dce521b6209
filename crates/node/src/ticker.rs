//! The core's clock: ticks counted from the monotonic clock, not from timer
//! wake-ups.
//!
//! A timer that fires late (a busy runtime, a paused process) would leave the
//! core's count of ticks behind real time, and a leader whose lease (thesis
//! §6.4.1) is counted in lagging ticks would hold it past the voters'
//! promise. So the count is derived from the time elapsed since start: after
//! any delay the core first catches up on every tick it missed. The count
//! never runs ahead of real time either (tick `n` is due `n` tick lengths
//! after start), which the voters' side of the lease needs.
//!
//! [`Instant`] is `CLOCK_MONOTONIC` on Linux, which stops while the machine
//! is suspended: lease reads assume servers are not suspended (ReadIndex, the
//! default, assumes nothing about clocks).

use std::time::{Duration, Instant};

/// Ticks of a fixed length since a starting instant.
#[derive(Debug)]
pub(crate) struct Ticker {
    start: Instant,
    tick: Duration,
    /// Ticks handed to the core so far.
    done: u64,
}

impl Ticker {
    /// A ticker whose tick 1 is due one `tick` after now.
    pub(crate) fn new(tick: Duration) -> Self {
        Ticker { start: Instant::now(), tick: tick.max(Duration::from_micros(1)), done: 0 }
    }

    /// Counts the ticks due by `now` that were not handed out yet.
    pub(crate) fn take_due(&mut self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let due = u64::try_from(elapsed / self.tick.as_nanos()).unwrap_or(u64::MAX);
        let new = due.saturating_sub(self.done);
        self.done = self.done.max(due);
        new
    }

    /// Ticks handed out so far.
    pub(crate) fn done(&self) -> u64 {
        self.done
    }

    /// When the next tick is due.
    pub(crate) fn next_deadline(&self) -> Instant {
        self.due_at(self.done + 1)
    }

    /// When tick `n` is due. Past 2^64 ns (584 years) or what an `Instant`
    /// can hold it answers the start, never a later time: a lease that seems
    /// over is safe.
    pub(crate) fn due_at(&self, n: u64) -> Instant {
        let Ok(nanos) = u64::try_from(self.tick.as_nanos().saturating_mul(u128::from(n))) else { return self.start };
        self.start.checked_add(Duration::from_nanos(nanos)).unwrap_or(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_clock_not_the_wake_ups() {
        let mut t = Ticker::new(Duration::from_millis(10));
        let start = t.start;
        assert_eq!(t.take_due(start + Duration::from_millis(9)), 0, "tick 1 is due after one tick length");
        assert_eq!(t.take_due(start + Duration::from_millis(10)), 1);
        assert_eq!(t.next_deadline(), start + Duration::from_millis(20));
        // A wake-up 95 ms late catches up on every tick missed, and no more.
        assert_eq!(t.take_due(start + Duration::from_millis(105)), 9);
        assert_eq!(t.done(), 10);
        assert_eq!(t.take_due(start + Duration::from_millis(105)), 0);
        assert_eq!(t.next_deadline(), start + Duration::from_millis(110));
        // Tick counts beyond u32 (497 days of 10 ms ticks) are still exact.
        assert_eq!(t.due_at(1 << 33), start + Duration::from_millis(10 << 33));
        assert_eq!(t.due_at(u64::MAX), start, "past what an Instant holds: the start");
    }
}
