//! When each operation of a connection is meant to be sent.
//!
//! Closed loop: as soon as the previous batch is answered; latency is measured
//! from the actual send. Open loop (a target rate): operation `k` of
//! connection `c` of `n` is due at `start + (k * n + c) / rate`, whatever
//! happened before, and its latency is measured from that due time. A stall
//! therefore shows in the latency of every operation that should have been
//! sent during it (no coordinated omission).

use std::time::Duration;

/// The send schedule of one connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Send when the previous batch is answered.
    Closed,
    /// A fixed interval between this connection's operations, from an offset.
    Open {
        /// Due time of operation 0 after the start.
        offset: Duration,
        /// Time between consecutive operations of this connection.
        interval: Duration,
    },
}

impl Schedule {
    /// The schedule of connection `index` of `connections` for a total rate
    /// of `rate` operations per second (`None`: closed loop).
    pub fn for_connection(rate: Option<f64>, index: usize, connections: usize) -> Schedule {
        match rate {
            Some(rate) if rate > 0.0 && connections > 0 => {
                let per_second = rate / connections as f64;
                Schedule::Open {
                    offset: Duration::from_secs_f64(index as f64 / rate),
                    interval: Duration::from_secs_f64(1.0 / per_second),
                }
            }
            _ => Schedule::Closed,
        }
    }

    /// When operation `k` is due after the start (`None` in a closed loop).
    pub fn due(&self, k: u64) -> Option<Duration> {
        match *self {
            Schedule::Closed => None,
            Schedule::Open { offset, interval } => Some(offset + interval.mul_f64(k as f64)),
        }
    }

    /// How many operations from `k` on are due by `elapsed` (at least 1, at
    /// most `max`): the batch an open-loop connection sends now.
    pub fn due_by(&self, k: u64, elapsed: Duration, max: usize) -> usize {
        let mut n = 1;
        while n < max {
            match self.due(k + n as u64) {
                Some(due) if due <= elapsed => n += 1,
                Some(_) => break,
                None => return max,
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_without_a_rate() {
        assert_eq!(Schedule::for_connection(None, 0, 4), Schedule::Closed);
        assert_eq!(Schedule::for_connection(Some(0.0), 0, 4), Schedule::Closed);
        assert_eq!(Schedule::Closed.due(5), None);
        assert_eq!(Schedule::Closed.due_by(0, Duration::ZERO, 16), 16);
    }

    #[test]
    fn connections_interleave_at_the_total_rate() {
        // 1000 ops/s over 4 connections: each every 4 ms, offset by 1 ms.
        let mut due: Vec<Duration> = (0..4)
            .flat_map(|c| {
                let s = Schedule::for_connection(Some(1000.0), c, 4);
                (0..25).map(move |k| s.due(k).unwrap_or_default())
            })
            .collect();
        due.sort();
        for (i, d) in due.iter().enumerate() {
            let want = Duration::from_millis(i as u64);
            let diff = d.abs_diff(want);
            assert!(diff < Duration::from_micros(1), "op {i} due at {d:?}, want {want:?}");
        }
    }

    #[test]
    fn due_times_do_not_depend_on_what_happened() {
        // Operation 100 is due at 100 intervals even if the connection is late:
        // a late connection's latency includes its lateness.
        let s = Schedule::for_connection(Some(100.0), 0, 1);
        assert_eq!(s.due(100), Some(Duration::from_secs(1)));
        // Behind schedule by 55 ms: the 6 due operations go out together (up to the pipeline depth).
        assert_eq!(s.due_by(0, Duration::from_millis(55), 16), 6);
        assert_eq!(s.due_by(0, Duration::from_millis(55), 4), 4);
        assert_eq!(s.due_by(0, Duration::ZERO, 16), 1);
    }
}
