//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use raft::{Entry, EntryPayload, Index, Membership, SnapshotMeta, Term};
use wal::sim::SimFs;
use wal::{Preallocation, SnapshotFile, Wal, WalOptions};

pub fn cmd(index: Index, term: Term) -> Entry {
    let data = format!("cmd-{index}-{term}").repeat((index % 7) as usize + 1);
    Entry { index, term, payload: EntryPayload::Command(Bytes::from(data)) }
}

pub fn member(index: Index, term: Term) -> Entry {
    Entry { index, term, payload: EntryPayload::Membership(Box::new(Membership::new([1, 2, index]))) }
}

/// Small, preallocated segments, prepared inline (deterministic file
/// operations, which the crash tests count).
pub fn small_segments() -> WalOptions {
    WalOptions {
        segment_bytes_max: 512,
        cache_bytes_max: 300,
        preallocation: Preallocation::Inline,
        recycle_segments: 2,
    }
}

/// The default options, but segments of 64 KiB prepared inline: for
/// simulated-disk tests that count file operations.
pub fn sim_options() -> WalOptions {
    WalOptions { segment_bytes_max: 64 << 10, preallocation: Preallocation::Inline, ..WalOptions::default() }
}

pub fn dir() -> &'static Path {
    Path::new("/wal")
}

pub fn open_sim(fs: &SimFs, opts: WalOptions) -> Result<Wal, wal::OpenError> {
    Wal::open_on(Arc::new(fs.clone()), dir(), opts)
}

pub fn snapshot(wal: &Wal, index: Index, term: Term, data: &[u8]) -> SnapshotFile {
    let meta = SnapshotMeta { index, term, membership: Membership::new([1, 2, 3]) };
    let mut w = wal.begin_snapshot(meta).unwrap();
    for chunk in data.chunks(7) {
        w.write(chunk).unwrap();
    }
    w.finish().unwrap()
}

/// A deterministic generator (SplitMix64), so tests need no RNG crate API.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
