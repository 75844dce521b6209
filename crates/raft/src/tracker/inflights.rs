//! The bounded window of AppendEntries in flight to one follower.

use std::collections::VecDeque;

use crate::types::Index;

/// AppendEntries sent to a follower and not yet acknowledged, bounded by count
/// and by bytes so a slow follower cannot make the leader buffer without limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflights {
    /// `(last index of the message, bytes of its entries)`, oldest first.
    window: VecDeque<(Index, u64)>,
    bytes: u64,
    max_count: usize,
    max_bytes: u64,
}

impl Inflights {
    /// An empty window of at most `max_count` messages and `max_bytes` bytes.
    pub fn new(max_count: usize, max_bytes: u64) -> Self {
        Inflights { window: VecDeque::new(), bytes: 0, max_count, max_bytes }
    }

    /// Records a message whose last entry is `last_index`.
    pub fn add(&mut self, last_index: Index, bytes: u64) {
        debug_assert!(self.window.back().is_none_or(|&(i, _)| i < last_index), "inflights out of order");
        self.window.push_back((last_index, bytes));
        self.bytes += bytes;
    }

    /// Forgets every message whose last entry is at or below `index` (an
    /// acknowledgement covers everything before it).
    pub fn free_le(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.window.front() {
            if last > index {
                break;
            }
            self.window.pop_front();
            self.bytes -= bytes;
        }
    }

    /// Forgets the oldest message in flight (it was probably lost).
    pub fn free_first(&mut self) {
        if let Some((_, bytes)) = self.window.pop_front() {
            self.bytes -= bytes;
        }
    }

    /// Whether no more messages may be sent.
    pub fn is_full(&self) -> bool {
        self.window.len() >= self.max_count || self.bytes >= self.max_bytes
    }

    /// How many messages are in flight.
    pub fn count(&self) -> usize {
        self.window.len()
    }

    /// How many bytes are in flight.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Forgets everything (the follower is being probed again).
    pub fn reset(&mut self) {
        self.window.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_by_count_or_bytes() {
        let mut w = Inflights::new(2, 100);
        w.add(1, 10);
        assert!(!w.is_full());
        w.add(2, 10);
        assert!(w.is_full());
        w.free_le(1);
        assert!(!w.is_full());
        w.add(3, 90);
        assert!(w.is_full(), "100 bytes in flight fills the byte budget");
        w.free_le(3);
        assert_eq!((w.count(), w.bytes()), (0, 0));
    }

    #[test]
    fn stale_ack_frees_nothing() {
        let mut w = Inflights::new(10, 1000);
        w.add(5, 1);
        w.add(9, 1);
        w.free_le(4);
        assert_eq!(w.count(), 2);
        w.free_le(7);
        assert_eq!(w.count(), 1);
    }

    proptest! {
        /// Against a naive model: a plain list filtered on every ack.
        #[test]
        fn matches_naive_model(ops in prop::collection::vec((any::<bool>(), 1u64..50, 0u64..40), 1..200)) {
            let mut w = Inflights::new(16, 500);
            let mut naive: Vec<(Index, u64)> = Vec::new();
            let mut next = 1;
            for (is_add, step, bytes) in ops {
                if is_add {
                    if w.is_full() { continue; }
                    next += step;
                    w.add(next, bytes);
                    naive.push((next, bytes));
                } else {
                    let ack = next.saturating_sub(step);
                    w.free_le(ack);
                    naive.retain(|&(i, _)| i > ack);
                }
                prop_assert_eq!(w.count(), naive.len());
                prop_assert_eq!(w.bytes(), naive.iter().map(|&(_, b)| b).sum::<u64>());
                prop_assert_eq!(w.is_full(), naive.len() >= 16 || w.bytes() >= 500);
            }
        }
    }
}
