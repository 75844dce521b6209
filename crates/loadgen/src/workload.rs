//! What a run asks of a system: which keys, which operations, which values.

use rand_xoshiro::rand_core::Rng;
use serde::{Deserialize, Serialize};

use crate::zipf::{DEFAULT_THETA, ZipfError, Zipfian};

/// How keys are chosen from the key space.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// YCSB's Zipfian (theta 0.99): a few hot keys take most operations.
    Zipfian,
}

/// The operations of a run: key space, distribution, value size, read share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Number of distinct keys (`key:0000000000` ..).
    pub keys: u64,
    /// How keys are drawn.
    pub distribution: Distribution,
    /// Bytes per written value.
    pub value_size: usize,
    /// Percentage of reads (GET / Range); the rest are writes (SET / Put).
    pub read_percent: u8,
}

/// Which operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Read one key (linearizable on every system that offers it).
    Get,
    /// Write one key.
    Set,
}

impl OpKind {
    /// Lower-case name, as in reports.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
        }
    }
}

/// One operation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// Read or write.
    pub kind: OpKind,
    /// Index of the key in the key space (see [`key_bytes`]).
    pub key: u64,
}

/// The key bytes of key index `key`: the same on every backend, 14 bytes.
pub fn key_bytes(key: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "key:{key:010}");
}

/// Why a workload is invalid.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkloadError {
    /// The key space is empty.
    #[error("--keys must be at least 1")]
    NoKeys,
    /// More than 100% reads.
    #[error("--read-percent must be 0..=100, got {0}")]
    ReadPercent(u8),
    /// The Zipfian setup failed.
    #[error(transparent)]
    Zipf(#[from] ZipfError),
}

/// Draws operations for one connection.
#[derive(Clone, Debug)]
pub struct OpGenerator {
    keys: u64,
    zipf: Option<Zipfian>,
    read_percent: u8,
}

impl Workload {
    /// The generator of this workload's operations (an O(keys) setup for Zipfian).
    pub fn generator(&self) -> Result<OpGenerator, WorkloadError> {
        if self.keys == 0 {
            return Err(WorkloadError::NoKeys);
        }
        if self.read_percent > 100 {
            return Err(WorkloadError::ReadPercent(self.read_percent));
        }
        let zipf = match self.distribution {
            Distribution::Uniform => None,
            Distribution::Zipfian => Some(Zipfian::new(self.keys, DEFAULT_THETA)?),
        };
        Ok(OpGenerator { keys: self.keys, zipf, read_percent: self.read_percent })
    }
}

impl OpGenerator {
    /// The next operation.
    pub fn next_op(&self, rng: &mut impl Rng) -> Op {
        let roll = rng.next_u64() % 100;
        let kind = if roll < u64::from(self.read_percent) { OpKind::Get } else { OpKind::Set };
        let key = match &self.zipf {
            // Scatter the hot ranks over the key space so hot keys are not neighbours.
            Some(z) => scatter(z.sample(rng), self.keys),
            None => rng.next_u64() % self.keys,
        };
        Op { kind, key }
    }
}

/// A fixed permutation-like spread of rank `rank` over `0..keys` (FNV-style hash).
fn scatter(rank: u64, keys: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rank.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % keys
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::SeedableRng;

    fn workload(read_percent: u8, distribution: Distribution) -> Workload {
        Workload { keys: 1000, distribution, value_size: 256, read_percent }
    }

    #[test]
    fn read_share_is_respected() {
        let g = workload(30, Distribution::Uniform).generator().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let reads = (0..100_000).filter(|_| g.next_op(&mut rng).kind == OpKind::Get).count();
        assert!((29_000..31_000).contains(&reads), "{reads} reads of 100000");
        let writes_only = workload(0, Distribution::Uniform).generator().unwrap();
        assert!((0..1000).all(|_| writes_only.next_op(&mut rng).kind == OpKind::Set));
        let reads_only = workload(100, Distribution::Zipfian).generator().unwrap();
        assert!((0..1000).all(|_| reads_only.next_op(&mut rng).kind == OpKind::Get));
    }

    #[test]
    fn zipfian_keys_are_skewed_and_in_range() {
        let g = workload(0, Distribution::Zipfian).generator().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[g.next_op(&mut rng).key as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top10: u32 = counts[..10].iter().sum();
        assert!(top10 > 30_000, "top 10 keys took {top10} of 100000");
    }

    #[test]
    fn bad_workloads_are_errors() {
        let mut w = workload(101, Distribution::Uniform);
        assert_eq!(w.generator().unwrap_err(), WorkloadError::ReadPercent(101));
        w.read_percent = 50;
        w.keys = 0;
        assert_eq!(w.generator().unwrap_err(), WorkloadError::NoKeys);
    }

    #[test]
    fn keys_have_a_fixed_width() {
        let mut out = Vec::new();
        key_bytes(42, &mut out);
        assert_eq!(out, b"key:0000000042");
        key_bytes(9_999_999_999, &mut out);
        assert_eq!(out.len(), 14);
    }
}
