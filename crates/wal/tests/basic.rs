//! Round trips through the real file system.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use raft::{HardState, Storage, StorageError};
use wal::{Op, Wal, WalOptions, WalWriter, WriterOptions};

#[test]
fn appends_survive_reopen_and_are_read_back_from_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let entries: Vec<_> =
        (1..=200).map(|i| if i % 50 == 0 { member(i, i / 10 + 1) } else { cmd(i, i / 10 + 1) }).collect();
    {
        let mut wal = Wal::open(tmp.path(), small_segments()).unwrap();
        for chunk in entries.chunks(9) {
            wal.append(chunk).unwrap();
            wal.sync().unwrap();
        }
        wal.set_hard_state(HardState { term: 21, vote: 3, commit: 150 }).unwrap();
        wal.sync().unwrap();
        let s = wal.storage();
        assert_eq!(s.entries(1, 201, u64::MAX).unwrap(), entries);
    }
    let wal = Wal::open(tmp.path(), small_segments()).unwrap();
    let s = wal.storage();
    assert!(std::fs::read_dir(tmp.path()).unwrap().count() > 10, "small segments rotate");
    assert_eq!((s.first_index(), s.last_index()), (1, 200));
    assert_eq!(s.entries(1, 201, u64::MAX).unwrap(), entries);
    assert_eq!(s.entries(5, 9, 0).unwrap().len(), 1);
    assert_eq!(s.term(200), Ok(21));
    assert_eq!(s.term(201), Err(StorageError::Unavailable));
    let init = s.initial_state();
    assert_eq!(init.hard_state, HardState { term: 21, vote: 3, commit: 150 });
    assert_eq!(init.log_memberships.iter().map(|m| m.0).collect::<Vec<_>>(), vec![50, 100, 150, 200]);
}

#[test]
fn conflict_repair_truncates_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(tmp.path(), small_segments()).unwrap();
    wal.append(&(1..=100).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    wal.append(&[cmd(40, 2), member(41, 2)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(tmp.path(), small_segments()).unwrap();
    let s = wal.storage();
    assert_eq!(s.last_index(), 41);
    assert_eq!(s.entries(38, 42, u64::MAX).unwrap(), vec![cmd(38, 1), cmd(39, 1), cmd(40, 2), member(41, 2)]);
    assert_eq!(s.initial_state().log_memberships.len(), 1);
}

#[test]
fn snapshot_keeps_matching_suffix_and_drops_mismatching_log() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(tmp.path(), small_segments()).unwrap();
    wal.append(&(1..=60).map(|i| cmd(i, 1 + i / 30)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    let snap = snapshot(&wal, 45, 2, b"state at 45");
    wal.install_snapshot(snap).unwrap();
    let s = wal.storage();
    assert_eq!((s.first_index(), s.last_index()), (46, 60));
    assert_eq!(s.entries(45, 50, u64::MAX), Err(StorageError::Compacted));
    assert_eq!(s.snapshot_chunk(6, 100), (bytes::Bytes::from_static(b"at 45"), true));
    drop(wal);
    let mut wal = Wal::open(tmp.path(), small_segments()).unwrap();
    let s = wal.storage();
    assert_eq!((s.first_index(), s.last_index(), s.term(45)), (46, 60, Ok(2)));
    assert_eq!(s.entries(46, 61, u64::MAX).unwrap(), (46..=60).map(|i| cmd(i, 1 + i / 30)).collect::<Vec<_>>());
    let snap = snapshot(&wal, 80, 5, b"from the leader");
    wal.install_snapshot(snap).unwrap();
    wal.append(&[cmd(81, 5)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(tmp.path(), small_segments()).unwrap();
    let s = wal.storage();
    assert_eq!((s.first_index(), s.last_index(), s.term(80)), (81, 81, Ok(5)));
    assert_eq!(s.snapshot_chunk(0, 4), (bytes::Bytes::from_static(b"from"), false));
    assert_eq!(std::fs::read_dir(tmp.path().join("snap")).unwrap().count(), 1);
}

#[test]
fn writer_thread_group_commits_and_reports_durability() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    let mut last = 0;
    for i in 1..=500 {
        last = writer.submit(Op::Append(vec![cmd(i, 3)])).unwrap();
    }
    writer.submit(Op::HardState(HardState { term: 3, vote: 0, commit: 400 })).unwrap();
    let d = writer.wait_durable(last).unwrap();
    assert!(d.seq >= last && d.index >= 500);
    let end = writer.shutdown().unwrap();
    assert_eq!((end.seq, end.index, end.term), (501, 500, 3));
    let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.storage().hard_state().commit, 400);
    assert_eq!(wal.storage().last_index(), 500);
}

#[test]
fn readers_see_a_consistent_log_while_the_writer_truncates_and_compacts() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let wal = Wal::open(tmp.path(), small_segments()).unwrap();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    let storage = writer.storage();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let (first, last) = (storage.first_index(), storage.last_index());
                // Racing a compaction or truncation may refuse; it must never panic
                // or return entries out of sequence.
                if let Ok(entries) = storage.entries(first, last + 1, u64::MAX) {
                    assert!(entries.windows(2).all(|w| w[1].index == w[0].index + 1));
                }
            }
        });
        let mut term = 1;
        for round in 0..40u64 {
            let base = storage.last_index().max(writer.durable().unwrap().index);
            let start = if round % 3 == 2 { base.saturating_sub(4).max(storage.first_index()) } else { base + 1 };
            term += u64::from(round % 3 == 2);
            let seq = writer.submit(Op::Append((start..start + 10).map(|i| cmd(i, term)).collect())).unwrap();
            writer.wait_durable(seq).unwrap();
            if round % 10 == 9 {
                let last = storage.last_index();
                let mut w =
                    writer.begin_snapshot(raft::SnapshotMeta { index: last - 3, term, ..Default::default() }).unwrap();
                w.write(b"state").unwrap();
                writer.submit(Op::InstallSnapshot(w.finish().unwrap())).unwrap();
                let seq = writer.submit(Op::Compact(last - 3)).unwrap();
                writer.wait_durable(seq).unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let end = writer.shutdown().unwrap();
    let wal = Wal::open(tmp.path(), small_segments()).unwrap();
    assert_eq!(wal.storage().last_index(), end.index);
    assert_eq!(wal.storage().snapshot_chunk(0, 100).0, bytes::Bytes::from_static(b"state"));
}

#[test]
fn bootstrap_membership_is_a_snapshot_at_index_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    let meta = raft::SnapshotMeta { index: 0, term: 0, membership: raft::Membership::new([1, 2, 3]) };
    let w = wal.begin_snapshot(meta.clone()).unwrap();
    assert_eq!(w.written(), 0);
    wal.install_snapshot(w.finish().unwrap()).unwrap();
    wal.append(&[cmd(1, 1)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    let init = wal.storage().initial_state();
    assert_eq!(init.snapshot, meta);
    assert_eq!(wal.storage().entries(1, 2, u64::MAX), Ok(vec![cmd(1, 1)]));
}

#[test]
fn large_segments_recover_with_read_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 1 << 20, cache_bytes_max: 1 << 20, ..WalOptions::default() };
    let big = |i: u64| raft::Entry {
        index: i,
        term: 1,
        payload: raft::EntryPayload::Command(bytes::Bytes::from(vec![i as u8; 4000])),
    };
    let mut wal = Wal::open(tmp.path(), opts.clone()).unwrap();
    wal.append(&(1..=1000).map(big).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let segments = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log"))
        .count();
    assert!(segments >= 3, "{segments}");
    let wal = Wal::open(tmp.path(), opts).unwrap();
    assert_eq!(wal.storage().entries(1, 1001, u64::MAX).unwrap(), (1..=1000).map(big).collect::<Vec<_>>());
}

#[test]
fn installing_a_snapshot_keeps_a_newer_one_finished_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(tmp.path(), small_segments()).unwrap();
    wal.append(&(1..=100).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    let older = snapshot(&wal, 50, 1, b"at 50");
    let newer = snapshot(&wal, 80, 1, b"at 80");
    let newer_path = newer.path().to_path_buf();
    wal.install_snapshot(older).unwrap();
    assert!(newer_path.exists(), "a newer finished snapshot must survive an older install");
    wal.install_snapshot(newer).unwrap();
    assert_eq!(std::fs::read_dir(tmp.path().join("snap")).unwrap().count(), 1);
    drop(wal);
    let wal = Wal::open(tmp.path(), small_segments()).unwrap();
    assert_eq!(wal.storage().snapshot_meta().index, 80);
    assert_eq!(wal.storage().entries(81, 101, u64::MAX).unwrap().len(), 20);
}

#[test]
fn recent_entries_are_read_from_memory_older_ones_from_the_segments() {
    use wal::fs::Fs;
    let fs = wal::sim::SimFs::new();
    let entry_bytes = cmd(1, 1).size_bytes() as usize;
    let opts = WalOptions { segment_bytes_max: 1 << 20, cache_bytes_max: 10 * entry_bytes, ..WalOptions::default() };
    let mut wal = open_sim(&fs, opts).unwrap();
    wal.append(&(1..=100).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    // Wipe every record on disk: only reads served from memory still work.
    let seg = dir().join(fs.list(dir()).unwrap().into_iter().find(|n| n.ends_with(".log")).unwrap());
    let len = fs.read_file(&seg).unwrap().len();
    fs.write_file(&seg, vec![0; len]).unwrap();
    let s = wal.storage();
    let recent = s.entries(95, 101, u64::MAX).unwrap();
    assert_eq!(recent, (95..=100).map(|i| cmd(i, 1)).collect::<Vec<_>>());
    let old = std::panic::catch_unwind(|| s.entries(50, 52, u64::MAX));
    assert!(old.is_err(), "an entry outside the cache is read from the (wiped) segment");
}

#[test]
fn segments_wholly_below_the_snapshot_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(tmp.path(), small_segments()).unwrap();
    wal.append(&(1..=100).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    let firsts = |p: &std::path::Path| {
        let mut v: Vec<u64> = std::fs::read_dir(p)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".log")?.parse().ok())
            .collect();
        v.sort();
        v
    };
    let before = firsts(tmp.path());
    assert!(before.len() > 5 && before[0] == 1, "{before:?}");
    let snap = snapshot(&wal, 60, 1, b"state at 60");
    wal.install_snapshot(snap).unwrap();
    // Exactly the segments whose entries are all below 60 are gone; the one
    // holding entry 60 stays (recovery reads the snapshot's term from it).
    let holding = *before.iter().filter(|f| **f <= 60).max().unwrap();
    let expected: Vec<u64> = before.iter().copied().filter(|f| *f >= holding).collect();
    assert_eq!(firsts(tmp.path()), expected);
    drop(wal);
    let wal = Wal::open(tmp.path(), small_segments()).unwrap();
    assert_eq!(firsts(tmp.path()), expected);
    assert_eq!((wal.storage().first_index(), wal.storage().last_index()), (61, 100));
}

/// Batches encoded ahead (`append_encoded`) write the same files, byte
/// for byte, as plain appends, at every batch size from 1 to 8 — so over
/// the small segments some batch starts a segment, some crosses into the
/// mid-batch allowance, and some was encoded with the salt of the segment
/// before.
#[test]
fn pre_encoded_appends_write_the_same_bytes_as_plain_ones() {
    for size in 1..=8 {
        pre_encoded_batches_of(size);
    }
}

fn pre_encoded_batches_of(size: usize) {
    use wal::fs::Fs;
    let entries: Vec<_> = (1..=60).map(|i| if i % 9 == 0 { member(i, 2) } else { cmd(i, 2) }).collect();
    let conflict = [cmd(30, 3), cmd(31, 3)];
    let plain = wal::sim::SimFs::new();
    let mut wal = open_sim(&plain, small_segments()).unwrap();
    for chunk in entries.chunks(size).chain([&conflict[..]]) {
        wal.append(chunk).unwrap();
        wal.sync().unwrap();
    }
    let encoded = wal::sim::SimFs::new();
    let mut wal = open_sim(&encoded, small_segments()).unwrap();
    // Each batch is encoded before the previous one is written, as the
    // writer thread's submitters do: a rotation in between leaves it with
    // the salt of the segment before.
    let mut chunks = entries.chunks(size).chain([&conflict[..]]);
    let mut next = chunks.next().map(|c| wal.encode(c.to_vec()));
    while let Some(batch) = next.take() {
        let ahead = chunks.next().map(|c| wal.encode(c.to_vec()));
        wal.append_encoded(batch).unwrap();
        wal.sync().unwrap();
        next = ahead;
    }
    let files = plain.list(dir()).unwrap();
    assert!(files.len() > 3, "batches of {size}");
    assert_eq!(files, encoded.list(dir()).unwrap(), "batches of {size}");
    for name in files {
        let path = dir().join(name);
        let (want, got) = (plain.read_file(&path).unwrap(), encoded.read_file(&path).unwrap());
        assert_eq!(want, got, "batches of {size}: {}", path.display());
    }
    // Read back through the index (mostly from disk: the cache is small).
    let mut expected = entries[..29].to_vec();
    expected.extend(conflict.clone());
    assert_eq!(wal.storage().entries(1, 32, u64::MAX).unwrap(), expected, "batches of {size}");
}

#[test]
fn segments_close_at_a_batch_boundary_without_an_extra_fdatasync() {
    use wal::fs::Fs;
    let fs = wal::sim::SimFs::new();
    // Not preallocated, so a file's length is what was written to it.
    let opts = WalOptions {
        segment_bytes_max: 1000,
        cache_bytes_max: 0,
        preallocation: wal::Preallocation::Off,
        recycle_segments: 0,
    };
    let mut wal = open_sim(&fs, opts.clone()).unwrap();
    let segment_lens = || {
        let mut names: Vec<_> = fs.list(dir()).unwrap().into_iter().filter(|n| n.ends_with(".log")).collect();
        names.sort();
        names.iter().map(|n| fs.read_file(&dir().join(n)).unwrap().len()).collect::<Vec<_>>()
    };
    let big = |i: u64| raft::Entry { term: 1, index: i, payload: raft::EntryPayload::Command(vec![7; 71].into()) };
    // 100-byte records: 5 of them after the 24-byte header fill 524 bytes.
    wal.append(&(1..=5).map(big).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    // A batch that crosses the size goes on in the same segment...
    let before = fs.ops();
    wal.append(&(6..=11).map(big).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    assert_eq!(fs.ops() - before, 2, "one write and one fdatasync, no seal");
    assert_eq!(segment_lens(), vec![1124]);
    // ...and the next batch starts a new one: create, header, fdatasync,
    // rename, directory fsync; then its own write and fdatasync.
    let before = fs.ops();
    wal.append(&[big(12)]).unwrap();
    wal.sync().unwrap();
    assert_eq!(fs.ops() - before, 5 + 2);
    assert_eq!(segment_lens(), vec![1124, 124]);
    // Within a batch a segment never passes 1.5 times the size: a batch of
    // 40 records is split, the full segment sealed first.
    wal.append(&(13..=54).map(big).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    let lens = segment_lens();
    assert!(lens.iter().all(|l| *l <= 1500), "{lens:?}");
    assert_eq!(lens.iter().sum::<usize>(), 24 * lens.len() + 54 * 100);
    drop(wal);
    let wal = open_sim(&fs, opts).unwrap();
    assert_eq!(wal.storage().entries(1, 55, u64::MAX).unwrap(), (1..=54).map(big).collect::<Vec<_>>());
}

#[test]
fn closing_a_wal_does_not_wait_for_a_segment_to_be_zero_filled() {
    // Right after open the first segment (here 2 GiB, seconds of writing
    // on any disk) is being zero-filled in the background; dropping the
    // WAL stops that between two 1 MiB pieces instead of waiting for it,
    // and the next open removes the half-prepared file.
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 2 << 30, ..WalOptions::default() };
    let wal = Wal::open(dir.path(), opts).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let started = std::time::Instant::now();
    drop(wal);
    let took = started.elapsed();
    let prepared = dir.path().join(wal::segment::PREPARED_NAME);
    let left = std::fs::metadata(&prepared).map_or(0, |m| m.len());
    assert!(left < 2 << 30, "the preparation stopped early ({left} bytes written, close took {took:?})");
    let off = WalOptions { preallocation: wal::Preallocation::Off, ..WalOptions::default() };
    let mut wal = Wal::open(dir.path(), off.clone()).unwrap();
    assert!(!prepared.exists(), "the half-prepared file is removed");
    wal.append(&[cmd(1, 1)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(Wal::open(dir.path(), off).unwrap().storage().entries(1, 2, u64::MAX).unwrap(), vec![cmd(1, 1)]);
}
