//! `WalStorage` against the reference `raft::MemStorage`: after any sequence
//! of appends, conflicting appends, snapshots and compactions — and after a
//! reopen — both answer every `Storage` question the same way.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use raft::{Index, MemStorage, SnapshotMeta, Storage, StorageError};
use wal::Wal;
use wal::sim::SimFs;

fn check_same(wal: &impl Storage, mem: &MemStorage) {
    let (first, last) = (mem.first_index(), mem.last_index());
    assert_eq!((wal.first_index(), wal.last_index()), (first, last));
    assert_eq!(wal.snapshot_meta(), mem.snapshot_meta());
    let (w, m) = (wal.initial_state(), mem.initial_state());
    assert_eq!(w.log_memberships, m.log_memberships);
    assert_eq!(w.snapshot, m.snapshot);
    for i in first.saturating_sub(2)..=last + 1 {
        assert_eq!(wal.term(i), mem.term(i), "term({i})");
    }
    assert_eq!(wal.entries(first, last + 1, u64::MAX), mem.entries(first, last + 1, u64::MAX));
    assert_eq!(wal.entries(first, last + 1, 100), mem.entries(first, last + 1, 100));
    if first > 1 {
        assert_eq!(wal.entries(first - 1, last + 1, u64::MAX), Err(StorageError::Compacted));
    }
    assert_eq!(wal.entries(first, last + 2, u64::MAX), Err(StorageError::Unavailable));
    assert_eq!(wal.snapshot_chunk(0, u64::MAX), mem.snapshot_chunk(0, u64::MAX));
}

/// Applies one step, chosen by `op`, to both stores.
fn step(wal: &mut Wal, mem: &MemStorage, term: &mut u64, (op, a, b): (u8, u64, u64)) {
    let (first, last) = (mem.first_index(), mem.last_index());
    match op % 6 {
        0..=2 => {
            let start = if op % 6 == 2 && last >= first {
                *term += 1;
                first + a % (last - first + 1)
            } else {
                last + 1
            };
            let entries: Vec<_> =
                (start..start + 1 + b % 8).map(|i| if i % 5 == 0 { member(i, *term) } else { cmd(i, *term) }).collect();
            wal.append(&entries).unwrap();
            mem.append(&entries);
        }
        3 if last >= first => {
            let i: Index = first + a % (last - first + 1);
            install(wal, mem, i, mem.term(i).unwrap(), b);
        }
        3 | 4 => {
            *term += 1;
            install(wal, mem, last + 1 + a % 3, *term, b);
        }
        _ => wal.compact(a).unwrap(),
    }
    wal.sync().unwrap();
}

fn install(wal: &mut Wal, mem: &MemStorage, index: Index, term: u64, seed: u64) {
    let data = format!("snapshot {index} {term} {seed}").repeat((seed % 5) as usize);
    let file = snapshot(wal, index, term, data.as_bytes());
    wal.install_snapshot(file).unwrap();
    let meta = SnapshotMeta { index, term, membership: raft::Membership::new([1, 2, 3]) };
    mem.install_snapshot(meta, Bytes::from(data));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn wal_storage_matches_mem_storage(ops in proptest::collection::vec((any::<u8>(), any::<u64>(), any::<u64>()), 1..60)) {
        let fs = SimFs::new();
        let mut wal = open_sim(&fs, small_segments()).unwrap();
        let mem = MemStorage::default();
        let mut term = 1;
        for op in ops {
            step(&mut wal, &mem, &mut term, op);
            check_same(&wal.storage(), &mem);
        }
        drop(wal);
        let wal = open_sim(&fs, small_segments()).unwrap();
        check_same(&wal.storage(), &mem);
    }
}
