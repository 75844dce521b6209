//! What one connection measured: a latency histogram per operation kind,
//! completions per second, errors by kind. Connections record alone and are
//! merged at the end, so recording takes no lock.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::workload::OpKind;

/// Longest latency the histograms hold exactly (longer ones are clamped).
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// Three significant digits: 0.1% resolution at every magnitude.
const SIGNIFICANT_DIGITS: u8 = 3;

/// A histogram could not be made (it cannot, with these constant bounds, but
/// the library says it might).
#[derive(Debug, thiserror::Error)]
#[error("creating a latency histogram: {0}")]
pub struct StatsError(#[from] hdrhistogram::CreationError);

/// The measurements of one or more connections.
#[derive(Clone, Debug)]
pub struct Recorder {
    empty: Histogram<u64>,
    /// Latency in microseconds, per kind of operation.
    pub latency_us: BTreeMap<OpKind, Histogram<u64>>,
    /// Operations completed (successfully) in each second of the run.
    pub per_second: Vec<u64>,
    /// Failed operations, by the first word of the error.
    pub errors: BTreeMap<String, u64>,
    /// Open loop: operations that were due before the end but never sent.
    pub behind: u64,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Result<Recorder, StatsError> {
        let empty = Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)?;
        Ok(Recorder { empty, latency_us: BTreeMap::new(), per_second: Vec::new(), errors: BTreeMap::new(), behind: 0 })
    }

    /// A successful operation of `kind` that took `latency` and completed `at` after the start.
    pub fn record(&mut self, kind: OpKind, latency: Duration, at: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_US_MAX);
        let empty = &self.empty;
        self.latency_us.entry(kind).or_insert_with(|| empty.clone()).saturating_record(us);
        let second = at.as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }

    /// A failed operation; `kind` is a short name such as `MOVED` or `io`.
    pub fn record_error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_string()).or_insert(0) += 1;
    }

    /// Successful operations recorded.
    pub fn ops(&self) -> u64 {
        self.latency_us.values().map(Histogram::len).sum()
    }

    /// Failed operations recorded.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// All latencies in one histogram.
    pub fn all(&self) -> Histogram<u64> {
        let mut all = self.empty.clone();
        for h in self.latency_us.values() {
            // Same bounds on both sides: adding cannot fail.
            let _ = all.add(h);
        }
        all
    }

    /// Adds `other`'s measurements to these.
    pub fn merge(&mut self, other: &Recorder) {
        for (kind, h) in &other.latency_us {
            let empty = &self.empty;
            let _ = self.latency_us.entry(*kind).or_insert_with(|| empty.clone()).add(h);
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            *mine += theirs;
        }
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += n;
        }
        self.behind += other.behind;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn merge_adds_everything() {
        let mut a = Recorder::new().unwrap();
        let mut b = Recorder::new().unwrap();
        a.record(OpKind::Set, Duration::from_micros(100), Duration::from_millis(500));
        b.record(OpKind::Set, Duration::from_micros(300), Duration::from_millis(1500));
        b.record(OpKind::Get, Duration::from_micros(50), Duration::from_millis(2500));
        b.record_error("MOVED");
        b.behind = 2;
        a.merge(&b);
        assert_eq!(a.ops(), 3);
        assert_eq!(a.per_second, vec![1, 1, 1]);
        assert_eq!(a.latency_us[&OpKind::Set].len(), 2);
        assert_eq!(a.latency_us[&OpKind::Set].max(), 300);
        assert_eq!(a.error_count(), 1);
        assert_eq!(a.behind, 2);
        assert_eq!(a.all().len(), 3);
    }

    #[test]
    fn latencies_are_clamped_not_lost() {
        let mut r = Recorder::new().unwrap();
        r.record(OpKind::Get, Duration::ZERO, Duration::ZERO);
        r.record(OpKind::Get, Duration::from_secs(7200), Duration::ZERO);
        assert_eq!(r.ops(), 2);
        assert_eq!(r.all().min(), 1);
    }
}
