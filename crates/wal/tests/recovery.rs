//! Explicit damage cases: what recovery repairs and what it refuses.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;
use raft::{HardState, Storage};
use wal::fs::Fs;
use wal::record::entry_len;
use wal::segment::SEGMENT_HEADER_LEN;
use wal::sim::SimFs;
use wal::{Op, OpenError, WalError, WalWriter, WriterOptions};

/// A disk holding entries 1..=n (term 1) in small segments, all synced.
fn disk_with(n: u64) -> SimFs {
    let fs = SimFs::new();
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    wal.append(&(1..=n).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    fs
}

fn segments(fs: &SimFs) -> Vec<PathBuf> {
    let mut names: Vec<_> = fs.list(dir()).unwrap().into_iter().filter(|n| n.ends_with(".log")).collect();
    names.sort();
    names.into_iter().map(|n| dir().join(n)).collect()
}

/// The byte offset of entry `index`'s record in a segment starting at `first`.
fn offset_of(first: u64, index: u64) -> u64 {
    SEGMENT_HEADER_LEN as u64 + (first..index).map(|i| entry_len(&cmd(i, 1)) as u64).sum::<u64>()
}

/// How the records of the segment at `path` are framed (its salt).
fn framing_of(fs: &SimFs, path: &std::path::Path) -> wal::record::Framing {
    wal::segment::check_header(&fs.read_file(path).unwrap(), first_of(path)).unwrap()
}

/// The salt of the segment at `path`.
fn salt_of(fs: &SimFs, path: &std::path::Path) -> u32 {
    let framing = framing_of(fs, path);
    framing.salt().unwrap_or_else(|| panic!("{} is {framing:?}", path.display()))
}

fn corrupt_at(err: OpenError) -> (PathBuf, u64, String) {
    match err {
        OpenError::Corrupt { path, offset, what } => (path, offset, what),
        other => panic!("expected corruption, got {other}"),
    }
}

/// The first index of the segment at `path`.
fn first_of(path: &std::path::Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Tears the last record (entry 30) of `disk_with(30)`'s last segment: its
/// last 5 bytes never reached the disk, so they are the preallocation's
/// zeros. Returns the segment and where the torn record starts.
fn tear_entry_30(fs: &SimFs) -> (PathBuf, u64) {
    let last = segments(fs).pop().unwrap();
    let mut data = fs.read_file(&last).unwrap();
    let end = offset_of(first_of(&last), 31) as usize;
    data[end - 5..end].fill(0);
    fs.write_file(&last, data).unwrap();
    (last.clone(), offset_of(first_of(&last), 30))
}

#[test]
fn torn_tail_is_cut() {
    let fs = disk_with(30);
    let (last, at) = tear_entry_30(&fs);
    let wal = open_sim(&fs, small_segments()).unwrap();
    assert_eq!(wal.storage().last_index(), 29);
    assert_eq!(fs.read_file(&last).unwrap().len() as u64, at, "the partial record is cut off the file");
    assert_eq!(wal.storage().entries(1, 30, u64::MAX).unwrap(), (1..30).map(|i| cmd(i, 1)).collect::<Vec<_>>());
}

#[test]
fn cutting_a_torn_tail_is_logged_with_file_and_offset() {
    let fs = disk_with(30);
    let (last, at) = tear_entry_30(&fs);
    let logs = capture_logs(|| open_sim(&fs, small_segments()).map(|_| ()).unwrap());
    assert!(logs.contains("WARN") && logs.contains("cutting torn write"), "{logs}");
    assert!(logs.contains(&last.display().to_string()) && logs.contains(&format!("offset={at}")), "{logs}");
    // A clean log opens without a warning.
    let logs = capture_logs(|| open_sim(&disk_with(30), small_segments()).map(|_| ()).unwrap());
    assert!(!logs.contains("WARN"), "{logs}");
}

/// Runs `f` with a `tracing` subscriber that records what is logged.
fn capture_logs(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let out = sink.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || sink.clone()).with_ansi(false).without_time().finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn a_gap_at_the_very_end_is_refused_not_cut() {
    // A record whose checksum holds was written whole: if its index does not
    // follow, entries are missing, which no torn write explains.
    let fs = disk_with(30);
    let last = segments(&fs).pop().unwrap();
    let at = offset_of(first_of(&last), 31);
    let mut rec = Vec::new();
    wal::record::encode_entry(&cmd(32, 1), salt_of(&fs, &last), &mut rec);
    put_at(&fs, &last, at, &rec);
    let (path, offset, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!((path, offset), (last, at));
    assert!(what.contains("32") && what.contains("gap"), "{what}");
}

#[test]
fn a_whole_record_of_another_kind_at_the_end_is_refused() {
    let fs = disk_with(30);
    let last = segments(&fs).pop().unwrap();
    let at = offset_of(first_of(&last), 31);
    let hs = wal::record::Record::HardState { seq: 9, hard_state: HardState { term: 1, vote: 1, commit: 1 } };
    let mut rec = Vec::new();
    wal::record::encode_with(&hs, framing_of(&fs, &last), &mut rec);
    put_at(&fs, &last, at, &rec);
    let (path, offset, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!((path, offset), (last, at));
    assert!(what.contains("HardState"), "{what}");
}

/// Overwrites `bytes` at `at` in `path` (extending it if needed).
fn put_at(fs: &SimFs, path: &std::path::Path, at: u64, bytes: &[u8]) {
    let mut data = fs.read_file(path).unwrap();
    let at = at as usize;
    if data.len() < at + bytes.len() {
        data.resize(at + bytes.len(), 0);
    }
    data[at..at + bytes.len()].copy_from_slice(bytes);
    fs.write_file(path, data).unwrap();
}

#[test]
fn zero_tail_is_the_end_of_the_log() {
    // Zeros after the last record (a preallocated tail, here made longer)
    // end the log: nothing is cut, and appends go into them.
    let fs = disk_with(30);
    let last = segments(&fs).pop().unwrap();
    let mut data = fs.read_file(&last).unwrap();
    data.extend_from_slice(&[0; 300]);
    let len = data.len();
    fs.write_file(&last, data).unwrap();
    let logs = capture_logs(|| open_sim(&fs, small_segments()).map(|_| ()).unwrap());
    assert!(!logs.contains("WARN"), "{logs}");
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    assert_eq!(wal.storage().last_index(), 30);
    assert_eq!(fs.read_file(&last).unwrap().len(), len, "a zero tail is not cut");
    wal.append(&[cmd(31, 1)]).unwrap();
    wal.sync().unwrap();
    assert_eq!(open_sim(&fs, small_segments()).unwrap().storage().last_index(), 31);
}

#[test]
fn flipped_bit_in_an_earlier_segment_is_refused_with_file_and_offset() {
    let fs = disk_with(30);
    let first = segments(&fs).remove(0);
    let mut data = fs.read_file(&first).unwrap();
    let at = offset_of(1, 3);
    data[at as usize + 12] ^= 0x10;
    fs.write_file(&first, data).unwrap();
    let (path, offset, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!((path, offset), (first, at));
    assert!(what.contains("checksum"), "{what}");
}

#[test]
fn flipped_bit_mid_last_segment_is_refused_not_cut() {
    let fs = disk_with(30);
    let last = segments(&fs).pop().unwrap();
    let seg_first: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let mut data = fs.read_file(&last).unwrap();
    let at = offset_of(seg_first, seg_first);
    data[at as usize + 20] ^= 1;
    fs.write_file(&last, data).unwrap();
    let (path, offset, _) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!((path, offset), (last, at));
}

#[test]
fn truncated_segment_header_is_refused() {
    // A header is synced before its segment's name exists, so even in the
    // last segment a short header is damage, not a torn write.
    for pick in [1, usize::MAX] {
        let fs = disk_with(30);
        let segs = segments(&fs);
        let seg = segs[pick.min(segs.len() - 1)].clone();
        fs.write_file(&seg, fs.read_file(&seg).unwrap()[..10].to_vec()).unwrap();
        let (path, offset, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
        assert_eq!((path, offset), (seg, 0));
        assert!(what.contains("header"), "{what}");
    }
}

#[test]
fn missing_segment_is_refused() {
    let fs = disk_with(30);
    let segs = segments(&fs);
    assert!(segs.len() >= 3);
    fs.remove(&segs[1]).unwrap();
    let (path, offset, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!((path, offset), (segs[2].clone(), 0));
    assert!(what.contains("missing segment"), "{what}");
}

#[test]
fn corrupt_snapshot_is_refused() {
    let fs = disk_with(30);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    let snap = snapshot(&wal, 20, 1, b"some state machine bytes");
    let path = snap.path().to_path_buf();
    wal.install_snapshot(snap).unwrap();
    drop(wal);
    let mut data = fs.read_file(&path).unwrap();
    let n = data.len();
    data[n - 20] ^= 4;
    fs.write_file(&path, data).unwrap();
    let (got, _, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!(got, path);
    assert!(what.contains("checksum"), "{what}");
}

#[test]
fn failed_fsync_is_fatal_and_sticky() {
    let fs = disk_with(5);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    fs.fail_sync_at(1);
    wal.append(&[cmd(6, 1)]).unwrap();
    let err = wal.sync().unwrap_err();
    assert!(matches!(&err, WalError::Io { op: "fdatasync", .. }), "{err}");
    assert!(wal.append(&[cmd(7, 1)]).is_err());
    assert!(wal.sync().is_err(), "never retried: a second sync would wrongly succeed");
    assert_eq!(wal.storage().last_index(), 5, "the failed entry is not shown as durable");
}

#[test]
fn failed_write_is_fatal_and_sticky() {
    let fs = disk_with(5);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    fs.fail_write_at(1);
    wal.append(&[cmd(6, 1)]).unwrap();
    let err = wal.sync().unwrap_err();
    assert!(matches!(&err, WalError::Io { op: "write", .. }), "{err}");
    assert!(wal.sync().is_err() && wal.set_hard_state(HardState::default()).is_err(), "sticky");
    assert_eq!(wal.storage().last_index(), 5);
}

#[test]
fn failed_directory_fsync_while_creating_a_segment_is_fatal() {
    let fs = disk_with(5);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    // Enough entries to need a new segment: sealing the old one (a file
    // sync), preparing the new one (its zeros' sync), its header (a file
    // sync), then the directory sync.
    fs.fail_sync_at(4);
    let err = wal.append(&(6..=40).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap_err();
    assert!(matches!(&err, WalError::Io { op: "create segment", .. }), "{err}");
    assert!(wal.append(&[cmd(41, 1)]).is_err() && wal.sync().is_err(), "sticky");
}

#[test]
fn failed_fsync_stops_the_writer_thread() {
    let fs = disk_with(5);
    let wal = open_sim(&fs, sim_options()).unwrap();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    fs.fail_sync_at(1);
    let seq = writer.submit(Op::Append(vec![cmd(6, 1)])).unwrap();
    assert!(matches!(writer.wait_durable(seq), Err(WalError::Io { .. })));
    // The writer has stopped: a later submission fails instead of queueing.
    let later = writer.submit(Op::Append(vec![cmd(7, 1)]));
    assert!(matches!(later, Err(WalError::Io { .. })), "{later:?}");
    assert!(writer.shutdown().is_err());
}

#[test]
fn hard_state_is_old_or_new_after_a_crash_anywhere() {
    let old = HardState { term: 4, vote: 2, commit: 3 };
    let new = HardState { term: 5, vote: 3, commit: 4 };
    for crash_at in 1..=2 {
        for torn_seed in 0..64 {
            let fs = disk_with(5);
            let mut wal = open_sim(&fs, small_segments()).unwrap();
            wal.set_hard_state(old).unwrap();
            wal.sync().unwrap();
            wal.set_hard_state(new).unwrap();
            fs.crash_at(fs.ops() + crash_at);
            fs.set_torn_seed(torn_seed);
            let synced = wal.sync().is_ok();
            let image = fs.crash_image();
            let got = open_sim(&image, small_segments()).unwrap().storage().hard_state();
            assert!(got == old || got == new, "crash {crash_at} seed {torn_seed}: {got:?}");
            assert!(!synced);
        }
    }
}

#[test]
fn commit_only_hard_state_rides_along_without_its_own_fsync() {
    let fs = disk_with(5);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    wal.set_hard_state(HardState { term: 1, vote: 1, commit: 2 }).unwrap();
    wal.sync().unwrap();
    let before = fs.ops();
    wal.set_hard_state(HardState { term: 1, vote: 1, commit: 5 }).unwrap();
    wal.append(&[cmd(6, 1)]).unwrap();
    wal.sync().unwrap();
    assert_eq!(fs.ops() - before, 2, "one write and one fdatasync for the whole batch");
    assert_eq!(wal.storage().hard_state().commit, 2, "commit-only change still pending");
    let image = fs.crash_image();
    assert_eq!(open_sim(&image, small_segments()).unwrap().storage().hard_state().commit, 2);
    wal.sync().unwrap();
    assert_eq!(wal.storage().hard_state().commit, 5, "a sync without records writes it");
    // A vote change is never deferred.
    wal.set_hard_state(HardState { term: 2, vote: 3, commit: 5 }).unwrap();
    wal.append(&[cmd(7, 2)]).unwrap();
    wal.sync().unwrap();
    let image = fs.crash_image();
    let hs = open_sim(&image, small_segments()).unwrap().storage().hard_state();
    assert_eq!(hs, HardState { term: 2, vote: 3, commit: 5 });
}

#[test]
fn a_read_that_finds_damage_stops_the_process_naming_file_and_offset() {
    let fs = disk_with(30);
    let wal = open_sim(&fs, small_segments()).unwrap();
    let first = segments(&fs).remove(0);
    let mut data = fs.read_file(&first).unwrap();
    let at = offset_of(1, 2);
    data[at as usize + 20] ^= 1;
    fs.write_file(&first, data).unwrap();
    let storage = wal.storage();
    let panic = std::panic::catch_unwind(|| storage.entries(1, 4, u64::MAX)).unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains(&first.display().to_string()) && msg.contains(&format!("offset {at}")), "{msg}");
}

#[test]
fn a_hole_is_refused_and_stops_the_wal() {
    let fs = disk_with(5);
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    assert!(matches!(wal.append(&[cmd(7, 1)]), Err(WalError::Hole { last: 5, got: 7 })));
    assert!(wal.append(&[cmd(6, 1)]).is_err(), "sticky");
    assert_eq!(open_sim(&fs.crash_image(), small_segments()).unwrap().storage().last_index(), 5);
}

#[test]
fn a_hard_state_file_of_another_format_is_refused_not_misread() {
    // The file is versioned by its record kind: whole, checksummed records
    // of another kind in both slots are not taken for a hard state.
    let fs = disk_with(5);
    let path = dir().join(wal::HARD_STATE_FILE);
    let mut data = vec![0; 2 * wal::HARD_STATE_SLOT_LEN as usize];
    for slot in 0..2 {
        let mut rec = Vec::new();
        let meta = raft::SnapshotMeta { index: 7, term: 7, membership: raft::Membership::new([1]) };
        wal::record::encode(&wal::record::Record::SnapshotMeta(meta), &mut rec);
        let at = slot * wal::HARD_STATE_SLOT_LEN as usize;
        data[at..at + rec.len()].copy_from_slice(&rec);
    }
    fs.write_file(&path, data).unwrap();
    let (got, offset, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!((got, offset), (path, 0));
    assert!(what.contains("hard-state"), "{what}");
}

// Preallocated segments (format version 2): the zero tail, garbage in it,
// truncation inside it, the file being prepared.

/// Options with segments big enough that the last one keeps a zero tail.
fn roomy() -> wal::WalOptions {
    wal::WalOptions { segment_bytes_max: 4096, ..small_segments() }
}

/// A disk holding entries 1..=n (term 1) in one roomy segment, synced.
fn roomy_disk_with(n: u64) -> (SimFs, PathBuf) {
    let fs = SimFs::new();
    let mut wal = open_sim(&fs, roomy()).unwrap();
    wal.append(&(1..=n).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap();
    wal.sync().unwrap();
    let seg = segments(&fs).pop().unwrap();
    (fs, seg)
}

#[test]
fn a_new_segment_is_zero_filled_to_the_segment_size() {
    let (fs, seg) = roomy_disk_with(10);
    let data = fs.read_file(&seg).unwrap();
    assert_eq!(data.len(), 4096);
    let end = offset_of(1, 11) as usize;
    assert!(data[end..].iter().all(|b| *b == 0), "the tail after the last record is zeros");
    let wal = open_sim(&fs, roomy()).unwrap();
    assert_eq!(wal.storage().last_index(), 10);
}

#[test]
fn bytes_after_the_end_that_are_no_record_of_this_segment_are_ignored() {
    // What follows the records of a salted segment may be anything but a
    // record of its salt: zeros, an earlier use's records, or the start of
    // a torn write that did not reach the salt. Nothing is cut; the next
    // append overwrites it.
    let (fs, seg) = roomy_disk_with(10);
    let end = offset_of(1, 11);
    put_at(&fs, &seg, end, &[0xde, 0xad, 0xbe, 0xef, 1, 2]);
    put_at(&fs, &seg, end + 700, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let mut wal = open_sim(&fs, roomy()).unwrap();
    assert_eq!(wal.storage().last_index(), 10);
    assert_eq!(fs.read_file(&seg).unwrap().len(), 4096, "nothing was cut");
    wal.append(&[cmd(11, 1)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open_sim(&fs, roomy()).unwrap().storage().entries(1, 12, u64::MAX).unwrap().len(), 11);
}

#[test]
fn a_record_of_this_segment_after_the_end_of_an_earlier_segment_is_refused() {
    // One entry per sync: each segment closes before its preallocation is
    // full. A valid record of the first segment's salt behind its end is
    // no torn write (an earlier segment was sealed by a sync before the
    // next began) and no earlier use's record (another salt): corruption.
    let fs = SimFs::new();
    let mut wal = open_sim(&fs, small_segments()).unwrap();
    for i in 1..=30 {
        wal.append(&[cmd(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let first = segments(&fs).remove(0);
    let data = fs.read_file(&first).unwrap();
    let end = data.iter().rposition(|b| *b != 0).unwrap() + 1;
    let record = &data[offset_of(1, 1) as usize..offset_of(1, 2) as usize];
    let stray_at = (data.len() - record.len()) as u64;
    assert!(stray_at as usize > end, "the first segment has room behind its end");
    put_at(&fs, &first, stray_at, record);
    let (path, offset, what) = corrupt_at(open_sim(&fs, small_segments()).unwrap_err());
    assert_eq!((path, offset), (first, stray_at));
    assert!(what.contains("after the end of its log"), "{what}");
}

#[test]
fn a_valid_record_after_a_zero_gap_is_refused_with_file_and_offset() {
    // Zeros where records 5 and 6 were, then valid records: no torn write
    // leaves that (it leaves a prefix of itself), so it is corruption —
    // cutting at the gap would drop entries that were synced.
    let (fs, seg) = roomy_disk_with(10);
    let (gap, after) = (offset_of(1, 5), offset_of(1, 7));
    put_at(&fs, &seg, gap, &vec![0; (after - gap) as usize]);
    let (path, offset, what) = corrupt_at(open_sim(&fs, roomy()).unwrap_err());
    assert_eq!((path, offset), (seg.clone(), after));
    assert!(what.contains(&format!("end of its log (at offset {gap})")) && what.contains("valid record"), "{what}");
    assert_eq!(fs.read_file(&seg).unwrap().len(), 4096, "nothing was cut");
}

#[test]
fn truncating_inside_a_preallocated_segment_does_not_resurrect_entries() {
    // Conflict repair from 4 with shorter records: the old records 4..=10
    // lay further on; the cut must leave none of them to be read back.
    let (fs, seg) = roomy_disk_with(10);
    let mut wal = open_sim(&fs, roomy()).unwrap();
    let short = |i: u64| raft::Entry { index: i, term: 2, payload: raft::EntryPayload::Noop };
    wal.append(&[short(4), short(5)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let mut expected: Vec<_> = (1..=3).map(|i| cmd(i, 1)).collect();
    expected.extend([short(4), short(5)]);
    let wal = open_sim(&fs, roomy()).unwrap();
    assert_eq!(wal.storage().last_index(), 5);
    assert_eq!(wal.storage().entries(1, 6, u64::MAX).unwrap(), expected);
    let end = offset_of(1, 4) + 2 * entry_len(&short(4)) as u64;
    let data = fs.read_file(&seg).unwrap();
    assert!(data[end as usize..].iter().all(|b| *b == 0), "no old record bytes after the new end");
}

#[test]
fn truncation_inside_a_preallocated_segment_is_crash_safe() {
    // Crash at every file operation of a conflict repair and its sync:
    // the log is the old one or the new one, never old records after new.
    let short = |i: u64| raft::Entry { index: i, term: 2, payload: raft::EntryPayload::Noop };
    let old: Vec<_> = (1..=10).map(|i| cmd(i, 1)).collect();
    let mut new: Vec<_> = (1..=3).map(|i| cmd(i, 1)).collect();
    new.extend([short(4), short(5)]);
    let (fs, _) = roomy_disk_with(10);
    let before = fs.ops();
    let mut wal = open_sim(&fs, roomy()).unwrap();
    wal.append(&[short(4), short(5)]).unwrap();
    wal.sync().unwrap();
    let total = fs.ops() - before;
    drop(wal);
    for k in 1..=total {
        let (fs, _) = roomy_disk_with(10);
        fs.crash_at(fs.ops() + k);
        if let Ok(mut wal) = open_sim(&fs, roomy()) {
            let _ = wal.append(&[short(4), short(5)]).and_then(|()| wal.sync());
        }
        assert!(fs.has_crashed(), "crash point {k} reached");
        let image = fs.crash_image();
        let wal = open_sim(&image, roomy()).unwrap_or_else(|e| panic!("crash at {k}: {e}"));
        let got = wal.storage().entries(1, wal.storage().last_index() + 1, u64::MAX).unwrap();
        assert!(old.starts_with(&got) || new.starts_with(&got), "crash at {k}: {got:?}");
        assert!(got.len() >= 3, "crash at {k}: synced entries 1..=3 lost");
    }
}

#[test]
fn a_stray_prepared_segment_is_removed_on_open() {
    let (fs, _) = roomy_disk_with(3);
    let stray = dir().join(wal::segment::PREPARED_NAME);
    fs.create(&stray).unwrap().write_all_at(&[0; 100], 0).unwrap();
    fs.sync_dir(dir()).unwrap();
    let wal = open_sim(&fs, roomy()).unwrap();
    assert!(!fs.exists(&stray).unwrap(), "the leftover file being prepared is removed");
    assert_eq!(wal.storage().last_index(), 3);
}

#[test]
fn a_crash_while_preparing_the_next_segment_loses_nothing() {
    // Crash at every file operation of a rotation (preparing the file,
    // its header, rename, directory sync) and of the batch that needs it.
    let (fs, _) = roomy_disk_with(20);
    let more: Vec<_> = (21..=200).map(|i| cmd(i, 1)).collect();
    let before = fs.ops();
    let mut wal = open_sim(&fs, roomy()).unwrap();
    wal.append(&more).unwrap();
    wal.sync().unwrap();
    let total = fs.ops() - before;
    assert!(segments(&fs).len() >= 2, "the batch needed a new segment");
    drop(wal);
    for k in 1..=total {
        let (fs, _) = roomy_disk_with(20);
        fs.crash_at(fs.ops() + k);
        if let Ok(mut wal) = open_sim(&fs, roomy()) {
            let _ = wal.append(&more).and_then(|()| wal.sync());
        }
        let image = fs.crash_image();
        let mut wal = open_sim(&image, roomy()).unwrap_or_else(|e| panic!("crash at {k}: {e}"));
        let last = wal.storage().last_index();
        assert!((20..=200).contains(&last), "crash at {k}: last {last}");
        let got = wal.storage().entries(1, last + 1, u64::MAX).unwrap();
        assert_eq!(got, (1..=last).map(|i| cmd(i, 1)).collect::<Vec<_>>(), "crash at {k}");
        let names = image.list(dir()).unwrap();
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "crash at {k}: {names:?}");
        // And the log goes on from there, across a rotation.
        wal.append(&(last + 1..=last + 40).map(|i| cmd(i, 1)).collect::<Vec<_>>()).unwrap();
        wal.sync().unwrap();
        drop(wal);
        assert_eq!(open_sim(&image, roomy()).unwrap().storage().last_index(), last + 40, "crash at {k}");
    }
}

#[test]
fn background_preparation_on_the_simulated_disk() {
    // The default mode: the next segment is prepared on a helper thread.
    let fs = SimFs::new();
    let opts = wal::WalOptions { preallocation: wal::Preallocation::Background, ..roomy() };
    let mut wal = open_sim(&fs, opts.clone()).unwrap();
    for i in 1..=200 {
        wal.append(&[cmd(i, 1)]).unwrap();
        wal.sync().unwrap();
    }
    let segs = segments(&fs);
    assert!(segs.len() >= 3, "{segs:?}");
    assert!(segs.iter().all(|s| fs.read_file(s).unwrap().len() >= 4096), "every segment preallocated");
    drop(wal);
    let wal = open_sim(&fs, opts).unwrap();
    assert_eq!(wal.storage().entries(1, 201, u64::MAX).unwrap(), (1..=200).map(|i| cmd(i, 1)).collect::<Vec<_>>());
}
