//! Segment recycling: a segment removed from the log is reused, old records
//! and all, and its salt keeps them out of the log; segments of the older
//! plain format are read and never written into.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;
use raft::{Entry, Storage};
use wal::fs::Fs;
use wal::sim::SimFs;

fn names(fs: &SimFs) -> Vec<String> {
    let mut names = fs.list(dir()).unwrap();
    names.sort();
    names
}

fn segments(fs: &SimFs) -> Vec<PathBuf> {
    names(fs).into_iter().filter(|n| n.ends_with(".log")).map(|n| dir().join(n)).collect()
}

fn recycled(fs: &SimFs) -> usize {
    names(fs).iter().filter(|n| n.starts_with("recycled-")).count()
}

fn entries(wal: &wal::Wal, lo: u64) -> Vec<Entry> {
    let s = wal.storage();
    s.entries(lo, s.last_index() + 1, u64::MAX).unwrap()
}

/// Entries 1..=40, one sync each (about six 512-byte segments), then a
/// snapshot at 20: the segments below it are removed, two kept for reuse.
fn compacted_disk() -> (SimFs, wal::Wal) {
    let fs = SimFs::new();
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    for i in 1..=40 {
        wal.append(&[cmd(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    let snap = snapshot(&wal, 20, 1, b"state at 20");
    wal.install_snapshot(snap).unwrap();
    (fs, wal)
}

/// Appends one entry per sync from `from` until `rotations` new segments
/// were started; returns the file operations each rotating batch took and
/// the next index.
fn append_through_rotations(fs: &SimFs, wal: &mut wal::Wal, from: u64, rotations: usize) -> (Vec<u64>, u64) {
    let mut ops = Vec::new();
    let mut next = from;
    while ops.len() < rotations {
        let (before, segs) = (fs.ops(), segments(fs).len());
        wal.append(&[cmd(next, 1)]).unwrap();
        wal.sync().unwrap();
        next += 1;
        if segments(fs).len() > segs {
            ops.push(fs.ops() - before);
        }
    }
    (ops, next)
}

#[test]
fn removed_segments_become_new_ones_without_being_cleared() {
    let (fs, mut wal) = compacted_disk();
    assert_eq!(recycled(&fs), 2, "two removed segments kept: {:?}", names(&fs));
    let (ops, next) = append_through_rotations(&fs, &mut wal, 41, 3);
    // A recycled file costs a rotation its header write, its fdatasync, the
    // rename and the directory fsync (then the batch's write and sync); a
    // new one is created and zero-filled first (three operations more).
    assert_eq!(ops, [6, 6, 9], "recycled, recycled, then zero-filled");
    assert_eq!(recycled(&fs), 0);
    // The reused files still hold an earlier use's records behind the new
    // ones: non-zero bytes after the end, never read back.
    let reused = &segments(&fs)[segments(&fs).len() - 3];
    let data = String::from_utf8_lossy(&fs.read_file(reused).unwrap()).into_owned();
    assert!((1..=20).any(|j| data.contains(&format!("cmd-{j}-1"))), "a compacted entry's bytes remain");
    drop(wal);
    let wal = open_sim(&fs, small_segments()).unwrap();
    assert_eq!(entries(&wal, 21), (21..next).map(|i| cmd(i, 1)).collect::<Vec<_>>());
}

#[test]
fn recycling_keeps_at_most_the_configured_number_and_none_when_off() {
    for (keep, expected) in [(0, 0), (1, 1), (2, 2), (9, 3)] {
        let fs = SimFs::new();
        let opts = wal::WalOptions { recycle_segments: keep, ..small_segments() };
        let mut wal = open_sim(&fs, opts).unwrap();
        for i in 1..=40 {
            wal.append(&[cmd(i, 1)]).unwrap();
            wal.sync().unwrap();
        }
        wal.install_snapshot(snapshot(&wal, 30, 1, b"s")).unwrap();
        // Entries 1..=30 filled three whole segments and part of a fourth.
        assert_eq!(recycled(&fs), expected, "recycle_segments = {keep}: {:?}", names(&fs));
        drop(wal);
        // A reopened WAL removes what it kept (it does not know the files).
        open_sim(&fs, small_segments()).unwrap();
        assert_eq!(recycled(&fs), 0);
    }
}

#[test]
fn a_crash_anywhere_in_recycling_loses_nothing() {
    // Crash at every file operation of a compaction that recycles and of
    // the appends that reuse both files: the log is whole every time.
    let run = |wal: &mut wal::Wal| -> Result<(), wal::WalError> {
        let meta = raft::SnapshotMeta { index: 20, term: 1, membership: raft::Membership::new([1, 2, 3]) };
        let mut w = wal.begin_snapshot(meta)?;
        w.write(b"state at 20")?;
        wal.install_snapshot(w.finish()?)?;
        for i in 41..=70 {
            wal.append(&[cmd(i, 1)])?;
            wal.sync()?;
        }
        Ok(())
    };
    let build = || {
        let fs = SimFs::new();
        let mut wal = open_sim(&fs, small_segments()).unwrap();
        for i in 1..=40 {
            wal.append(&[cmd(i, 1)]).unwrap();
            wal.sync().unwrap();
        }
        (fs, wal)
    };
    let (fs, mut wal) = build();
    let before = fs.ops();
    run(&mut wal).unwrap();
    let total = fs.ops() - before;
    assert!(segments(&fs).len() >= 3 && recycled(&fs) == 0, "both recycled files were reused");
    for k in 1..=total {
        let (fs, mut wal) = build();
        fs.crash_at(fs.ops() + k);
        assert!(run(&mut wal).is_err(), "crash point {k} reached");
        let image = fs.crash_image();
        let wal = open_sim(&image, small_segments()).unwrap_or_else(|e| panic!("crash at {k}: {e}"));
        let s = wal.storage();
        let snap = s.snapshot_meta().index;
        assert!(snap == 0 || snap == 20, "crash at {k}: snapshot {snap}");
        let last = s.last_index();
        assert!(last >= 40, "crash at {k}: synced entries lost (last {last})");
        assert_eq!(entries(&wal, snap + 1), (snap + 1..=last).map(|i| cmd(i, 1)).collect::<Vec<_>>(), "crash at {k}");
        assert_eq!(recycled(&image), 0, "crash at {k}: leftovers removed");
    }
}

#[test]
fn a_torn_write_into_a_recycled_segment_is_cut_and_old_records_stay_out() {
    let (fs, mut wal) = compacted_disk();
    let (_, next) = append_through_rotations(&fs, &mut wal, 41, 1);
    // The last batch (entry next - 1, alone in a reused file) loses its
    // last 5 bytes.
    drop(wal);
    let last = segments(&fs).pop().unwrap();
    let mut data = fs.read_file(&last).unwrap();
    let end = 24 + wal::record::entry_len(&cmd(next - 1, 1));
    data[end - 5..end].fill(0);
    fs.write_file(&last, data).unwrap();
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    assert_eq!(wal.storage().last_index(), next - 2);
    assert_eq!(fs.read_file(&last).unwrap().len(), 24, "cut after the header");
    wal.append(&[cmd(next - 1, 2)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = open_sim(&fs, small_segments()).unwrap();
    let mut expected: Vec<_> = (21..next - 1).map(|i| cmd(i, 1)).collect();
    expected.push(cmd(next - 1, 2));
    assert_eq!(entries(&wal, 21), expected);
}

/// A version 2 segment (plain records, zero tail) starting at `first` and
/// holding `entries`.
fn version_2_segment(first: u64, entries: &[Entry]) -> Vec<u8> {
    let mut h = vec![0u8; 24];
    h[..6].copy_from_slice(b"RKVWAL");
    h[6] = 2;
    h[8..16].copy_from_slice(&first.to_le_bytes());
    let crc = crc32c(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    for e in entries {
        wal::record::encode(&wal::record::Record::Entry(e.clone()), &mut h);
    }
    h.resize(h.len().max(512), 0);
    h
}

/// CRC32C, bit by bit (the tests do not depend on the crc32c crate).
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// Writes a version 2 segment file, durably.
fn put_version_2_segment(fs: &SimFs, first: u64, entries: &[Entry]) -> PathBuf {
    let path = dir().join(format!("{first:020}.log"));
    let f = fs.create(&path).unwrap();
    f.write_all_at(&version_2_segment(first, entries), 0).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(dir()).unwrap();
    path
}

#[test]
fn version_2_segments_are_read_never_appended_to_and_never_recycled() {
    let fs = SimFs::new();
    drop(open_sim(&fs, small_segments()).unwrap());
    let old: Vec<_> = (1..=5).map(|i| cmd(i, 1)).collect();
    let v2 = put_version_2_segment(&fs, 1, &old);
    let before = fs.read_file(&v2).unwrap();
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    assert_eq!(entries(&wal, 1), old);
    wal.append(&[cmd(6, 1)]).unwrap();
    wal.sync().unwrap();
    assert_eq!(fs.read_file(&v2).unwrap(), before, "the old segment is left as it was");
    let new = dir().join("00000000000000000006.log");
    assert_eq!(fs.read_file(&new).unwrap()[6], 3, "appends go into a new segment of version 3");
    drop(wal);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    assert_eq!(entries(&wal, 1), (1..=6).map(|i| cmd(i, 1)).collect::<Vec<_>>());
    wal.install_snapshot(snapshot(&wal, 6, 1, b"s")).unwrap();
    assert!(!fs.exists(&v2).unwrap() && recycled(&fs) == 0, "a plain segment is deleted, not reused");
}

#[test]
fn an_empty_version_2_last_segment_is_replaced_by_the_first_new_one() {
    // An older WAL may leave its last segment empty (created, then a
    // crash): the first append starts a version 3 segment of the same
    // name, which must replace it in the index as on disk, or compaction
    // would later delete the live segment for the stale one.
    let fs = SimFs::new();
    drop(open_sim(&fs, small_segments()).unwrap());
    put_version_2_segment(&fs, 1, &(1..=5).map(|i| cmd(i, 1)).collect::<Vec<_>>());
    put_version_2_segment(&fs, 6, &[]);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    for i in 6..=12 {
        wal.append(&[cmd(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    wal.install_snapshot(snapshot(&wal, 8, 1, b"s")).unwrap();
    for i in 13..=14 {
        wal.append(&[cmd(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    let image = fs.crash_image();
    let wal = open_sim(&image, small_segments()).unwrap();
    assert_eq!(entries(&wal, 9), (9..=14).map(|i| cmd(i, 1)).collect::<Vec<_>>());
}
