//! Opening a WAL directory: verify everything, repair only a torn tail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft::{EntryPayload, Index, Term};

use crate::error::OpenError;
use crate::fs::{FileRef, Fs};
use crate::hard_state::{HARD_STATE_FILE, HardStateFile};
use crate::index::{LogIndex, SegmentIndex};
use crate::record::{self, DecodeError, Framed, Framing, Kind, RECORD_HEADER_LEN, Record};
use crate::segment::{SEGMENT_HEADER_LEN, TMP_SUFFIX, check_header, parse_segment_name};
use crate::snapshot::{SNAPSHOT_DIR, SnapshotFile, open_snapshot, parse_snapshot_name};
use crate::wal::{Active, Wal, WalOptions};

/// Segments at least this large are read ahead on a helper thread (for
/// smaller ones a thread costs more than it saves).
const PIPELINE_SEGMENT_BYTES_MIN: u64 = 1 << 20;

/// What replaying the segments learned beyond the index itself.
#[derive(Default)]
struct Replay {
    /// The log's term at the snapshot index, if the log holds it.
    term_at_snapshot: Option<Term>,
}

pub(crate) fn open(fs: Arc<dyn Fs>, dir: &Path, opts: WalOptions) -> Result<Wal, OpenError> {
    let snap_dir = dir.join(SNAPSHOT_DIR);
    create_dirs(&*fs, dir, &snap_dir)?;
    let names = fs.list(dir).map_err(|e| OpenError::io(dir, e))?;
    let mut segments: Vec<(Index, PathBuf)> =
        names.iter().filter_map(|n| Some((parse_segment_name(n)?, dir.join(n)))).collect();
    segments.sort();
    let snapshot = load_snapshot(&*fs, &snap_dir)?;
    let hard_state = open_hard_state(&*fs, dir, segments.is_empty() && snapshot.is_none())?;
    let mut index = LogIndex::new(opts.cache_bytes_max);
    index.hard_state = hard_state.current();
    if let Some(snap) = snapshot {
        index.snapshot = snap.meta().clone();
        index.last_index = snap.meta().index;
        index.snapshot_file = Some(snap);
    }
    let segments = remove_covered(&*fs, dir, segments, index.snapshot.index)?;
    let replay = replay(&*fs, &segments, &mut index, opts.segment_bytes_max)?;
    reconcile_snapshot(&*fs, dir, &mut index, &replay)?;
    let active = index.segments.back().map(Active::of);
    Ok(Wal::from_parts(fs, dir.to_path_buf(), opts, index, active, hard_state))
}

/// Creates the directories if missing and makes their entries durable (a
/// file synced into a directory whose own entry was lost is lost with it);
/// removes leftover temporary files.
fn create_dirs(fs: &dyn Fs, dir: &Path, snap_dir: &Path) -> Result<(), OpenError> {
    fs.create_dir_all(snap_dir).map_err(|e| OpenError::io(snap_dir, e))?;
    let parent = crate::fs::parent_of(dir);
    for d in [&parent, dir] {
        fs.sync_dir(d).map_err(|e| OpenError::io(d, e))?;
    }
    for d in [dir, snap_dir] {
        remove_tmp_files(fs, d)?;
    }
    Ok(())
}

fn remove_tmp_files(fs: &dyn Fs, dir: &Path) -> Result<(), OpenError> {
    let names = fs.list(dir).map_err(|e| OpenError::io(dir, e))?;
    for name in names.iter().filter(|n| n.ends_with(TMP_SUFFIX)) {
        let path = dir.join(name);
        fs.remove(&path).map_err(|e| OpenError::io(&path, e))?;
    }
    Ok(())
}

fn open_hard_state(fs: &dyn Fs, dir: &Path, fresh: bool) -> Result<HardStateFile, OpenError> {
    let path = dir.join(HARD_STATE_FILE);
    if fs.exists(&path).map_err(|e| OpenError::io(&path, e))? {
        HardStateFile::open(fs, dir)
    } else if fresh {
        HardStateFile::create(fs, dir)
    } else {
        Err(OpenError::corrupt(path, 0, "hard-state file missing beside an existing log"))
    }
}

/// Opens the newest snapshot and removes older ones (left by a crash between
/// installing a snapshot and cleaning up).
fn load_snapshot(fs: &dyn Fs, dir: &Path) -> Result<Option<SnapshotFile>, OpenError> {
    let names = fs.list(dir).map_err(|e| OpenError::io(dir, e))?;
    let mut snaps: Vec<((Index, Term), PathBuf)> =
        names.iter().filter_map(|n| Some((parse_snapshot_name(n)?, dir.join(n)))).collect();
    snaps.sort();
    let Some(((index, term), path)) = snaps.pop() else {
        return Ok(None);
    };
    let snap = open_snapshot(fs, &path)?;
    if (snap.meta().index, snap.meta().term) != (index, term) {
        return Err(OpenError::corrupt(&path, 0, "snapshot metadata does not match the file name"));
    }
    for (_, old) in &snaps {
        fs.remove(old).map_err(|e| OpenError::io(old, e))?;
    }
    Ok(Some(snap))
}

/// Removes the segments before the last one starting at or below the
/// snapshot index: they hold only entries the snapshot covers (left by a
/// crash during compaction, in any subset).
fn remove_covered(
    fs: &dyn Fs,
    dir: &Path,
    segments: Vec<(Index, PathBuf)>,
    snapshot: Index,
) -> Result<Vec<(Index, PathBuf)>, OpenError> {
    let covered = segments.iter().filter(|(first, _)| *first <= snapshot).count().saturating_sub(1);
    for (_, path) in &segments[..covered] {
        fs.remove(path).map_err(|e| OpenError::io(path, e))?;
    }
    if covered > 0 {
        fs.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
    }
    Ok(segments.into_iter().skip(covered).collect())
}

fn replay(
    fs: &dyn Fs,
    segments: &[(Index, PathBuf)],
    index: &mut LogIndex,
    segment_bytes_max: u64,
) -> Result<Replay, OpenError> {
    let reads = segments.iter().map(|(_, path)| read_segment(fs, path));
    if segments.len() < 2 || segment_bytes_max < PIPELINE_SEGMENT_BYTES_MIN {
        return replay_from(segments, reads, index);
    }
    // A helper thread reads the next segment while this one verifies the
    // current: recovery costs about one read of the log, not read + verify.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            for read in reads {
                if tx.send(read).is_err() {
                    break;
                }
            }
        });
        replay_from(segments, rx.into_iter(), index)
    })
}

fn replay_from(
    segments: &[(Index, PathBuf)],
    reads: impl Iterator<Item = Result<(FileRef, Vec<u8>), OpenError>>,
    index: &mut LogIndex,
) -> Result<Replay, OpenError> {
    let mut out = Replay::default();
    let mut expected = None;
    for (i, ((first, path), read)) in segments.iter().zip(reads).enumerate() {
        check_continues(path, *first, expected, index.snapshot.index)?;
        let (file, buf) = read?;
        let last = i + 1 == segments.len();
        expected = Some(replay_segment(path, file, &buf, *first, last, index, &mut out)?);
    }
    Ok(out)
}

/// A segment must start where the previous one ended; the first one at or
/// before the entry after the snapshot.
fn check_continues(path: &Path, first: Index, expected: Option<Index>, snapshot: Index) -> Result<(), OpenError> {
    match expected {
        None if first > snapshot + 1 => {
            let what = format!("log starts at {first} but the snapshot ends at {snapshot}");
            Err(OpenError::corrupt(path, 0, what))
        }
        Some(next) if first != next => {
            let what = format!("missing segment: expected the log to continue at index {next}");
            Err(OpenError::corrupt(path, 0, what))
        }
        _ => Ok(()),
    }
}

fn read_segment(fs: &dyn Fs, path: &Path) -> Result<(FileRef, Vec<u8>), OpenError> {
    let io = |e| OpenError::io(path, e);
    let file = fs.open(path).map_err(io)?;
    let mut buf = vec![0; file.len().map_err(io)? as usize];
    file.read_exact_at(&mut buf, 0).map_err(io)?;
    Ok((file, buf))
}

/// Verifies and indexes one segment; returns the index after its last entry.
fn replay_segment(
    path: &Path,
    file: FileRef,
    buf: &[u8],
    first: Index,
    last_segment: bool,
    index: &mut LogIndex,
    out: &mut Replay,
) -> Result<Index, OpenError> {
    let framing = check_header(buf, first).map_err(|what| OpenError::corrupt(path, 0, what))?;
    let end = SEGMENT_HEADER_LEN as u64;
    let seg = SegmentIndex { first, path: path.to_path_buf(), file, offsets: Vec::new(), end, framing };
    index.segments.push_back(seg);
    let scanned = scan_records(buf, framing, first, index, out);
    let (next, damage) = scanned.map_err(|(at, w)| OpenError::corrupt(path, at, w))?;
    let Some(d) = damage else {
        return Ok(next);
    };
    match first_record_from(buf, framing, d.found as usize) {
        None if last_segment => {
            cut_torn_tail(path, index, d.end, &d.what)?;
            Ok(next)
        }
        None => Err(OpenError::corrupt(path, d.found, d.what)),
        Some(at) => {
            let what = format!("{}, followed by a valid record at offset {at}: corruption, not a torn write", d.what);
            Err(OpenError::corrupt(path, d.found, what))
        }
    }
}

/// Bytes after the last good record that are not a clean end of log.
#[derive(Debug)]
struct Damage {
    /// Where the good records end: a torn tail is cut here.
    end: u64,
    /// The first bad byte: where a refusal points, and where the search for
    /// a valid record after the damage starts.
    found: u64,
    what: String,
}

/// Indexes the records of a segment's bytes until the end of the log in it
/// (the end of the file, or a header that is not of this segment: zeros,
/// or in a salted segment another salt) or the first damage. Returns the
/// next index and the damage, if any; fails on a record that checks but
/// cannot be indexed.
fn scan_records(
    buf: &[u8],
    framing: Framing,
    first: Index,
    index: &mut LogIndex,
    out: &mut Replay,
) -> Result<(Index, Option<Damage>), (u64, String)> {
    let mut at = SEGMENT_HEADER_LEN;
    let mut next = first;
    while at < buf.len() {
        if is_end_of_log(&buf[at..], framing) {
            return Ok((next, check_tail(buf, framing, at)));
        }
        let f = match record::frame_with(&buf[at..], framing) {
            Ok(f) => f,
            Err(e) if may_be_torn(e) => {
                return Ok((next, Some(Damage { end: at as u64, found: at as u64, what: e.to_string() })));
            }
            Err(e) => return Err((at as u64, e.to_string())),
        };
        let term = entry_of(f, next).map_err(|what| (at as u64, what))?;
        if next == index.snapshot.index {
            out.term_at_snapshot = Some(term);
        }
        index_record(index, f, next, term, at as u32).map_err(|w| (at as u64, w))?;
        at += f.len;
        next += 1;
    }
    Ok((next, None))
}

/// Whether the records end here. Plain: the record header is all zeros (or
/// the zero bytes left are too few for one), the end of the log in a
/// zero-filled segment; no record has `len` 0, so a real record never
/// starts like this. Salted: the header does not hold the segment's salt
/// (zeros of preallocation, a record of an earlier use of the file, or
/// too few bytes left for a header).
fn is_end_of_log(rest: &[u8], framing: Framing) -> bool {
    match framing {
        Framing::Plain => rest.iter().take(RECORD_HEADER_LEN).all(|b| *b == 0),
        Framing::Salted(_) => !framing.salt_matches(rest),
    }
}

/// What follows the end of the log at `end` must not be a record of this
/// segment. Plain: everything after it must be zero (the rest of the
/// preallocation). Salted: anything may follow (zeros or an earlier use's
/// records) except a valid record of this salt. Anything else is damage —
/// a torn write, or corruption if a valid record follows (see
/// [`replay_segment`]).
fn check_tail(buf: &[u8], framing: Framing, end: usize) -> Option<Damage> {
    let (found, what) = match framing {
        Framing::Plain => {
            let found = end + buf[end..].iter().position(|b| *b != 0)?;
            (found, format!("non-zero bytes after the end of the log (a zero record header at offset {end})"))
        }
        Framing::Salted(_) => {
            let found = first_record_from(buf, framing, end)?;
            (found, format!("a record of this segment after the end of its log (at offset {end})"))
        }
    };
    Some(Damage { end: end as u64, found: found as u64, what })
}

/// Whether a record that fails to frame may be a torn write: cut short,
/// zeroed or half-written bytes fail on their length or checksum. A record
/// whose checksum holds was written whole, so anything else wrong with it
/// (an unknown kind, a wrong index: a gap) is never a torn write.
fn may_be_torn(e: DecodeError) -> bool {
    matches!(e, DecodeError::Incomplete | DecodeError::BadLength(_) | DecodeError::BadChecksum)
}

/// Checks that a framed record is the entry `expected`; returns its term.
fn entry_of(f: Framed<'_>, expected: Index) -> Result<Term, String> {
    if !f.is_entry() {
        return Err(format!("unexpected {:?} record in a segment", f.kind));
    }
    let (term, idx) = f.entry_id().map_err(|e| e.to_string())?;
    if idx != expected {
        return Err(format!("entry index {idx} where {expected} was expected (a gap in the log)"));
    }
    Ok(term)
}

fn index_record(index: &mut LogIndex, f: Framed<'_>, idx: Index, term: Term, at: u32) -> Result<(), String> {
    if f.kind == Kind::EntryMembership {
        match f.decode() {
            Ok(Record::Entry(e)) => {
                if let EntryPayload::Membership(m) = &e.payload {
                    index.note_membership(idx, m);
                }
            }
            other => return Err(format!("bad membership entry: {other:?}")),
        }
    }
    index.push_id(idx, term, at, f.len);
    Ok(())
}

/// Where the first valid record starts in `buf` from `from` on, if one
/// does. Damage followed by a valid record is not a torn write (a torn
/// write is the last thing in the file: every write goes after a synced
/// end, and what it leaves is a prefix of it, possibly with zeroed blocks
/// at its end) but corruption: cutting there could drop synced records.
///
/// In a salted segment only positions holding the salt are checksummed, so
/// the search costs about one pass over the bytes even through a recycled
/// file's old records.
fn first_record_from(buf: &[u8], framing: Framing, from: usize) -> Option<usize> {
    let valid = |pos: &usize| record::frame_with(&buf[*pos..], framing).is_ok();
    match framing {
        Framing::Plain => (from..buf.len()).filter(|pos| !is_end_of_log(&buf[*pos..], framing)).find(valid),
        Framing::Salted(salt) => {
            // A record starts `RECORD_HEADER_LEN` bytes before its salt.
            let after = buf.get(from + RECORD_HEADER_LEN..)?;
            occurrences(after, salt.to_le_bytes()).map(|at| from + at).find(valid)
        }
    }
}

/// Every position where `needle` occurs in `haystack`, overlapping ones
/// included (a salt such as `41 42 43 41` may start inside another match:
/// a non-overlapping search would skip the real record behind a false one).
fn occurrences(haystack: &[u8], needle: [u8; 4]) -> impl Iterator<Item = usize> + '_ {
    let finder = memchr::memmem::Finder::new(&needle).into_owned();
    let mut start = 0;
    std::iter::from_fn(move || {
        let at = start + finder.find(haystack.get(start..)?)?;
        start = at + 1;
        Some(at)
    })
}

fn cut_torn_tail(path: &Path, index: &mut LogIndex, at: u64, what: &str) -> Result<(), OpenError> {
    let Some(seg) = index.segments.back() else {
        return Ok(());
    };
    tracing::warn!(file = %path.display(), offset = at, reason = what, "cutting torn write at the end of the log");
    seg.file.set_len(at).map_err(|e| OpenError::io(path, e))?;
    seg.file.sync_data().map_err(|e| OpenError::io(path, e))?;
    Ok(())
}

/// Applies the snapshot to the replayed log as installing it would have: keep
/// the log after it if the log holds its last entry with the same term (or
/// starts right after it: written after the snapshot was installed), else
/// drop the whole log (a crash came between making the snapshot durable and
/// cleaning the log up).
fn reconcile_snapshot(fs: &dyn Fs, dir: &Path, index: &mut LogIndex, replay: &Replay) -> Result<(), OpenError> {
    let snap = index.snapshot.clone();
    if snap.index == 0 {
        return Ok(());
    }
    let starts_after = index.segments.front().is_some_and(|s| s.first == snap.index + 1);
    let keep = starts_after || replay.term_at_snapshot == Some(snap.term);
    let removal = if keep { index.drop_prefix(snap.index) } else { index.clear_log() };
    for seg in &removal.segments {
        fs.remove(&seg.path).map_err(|e| OpenError::io(&seg.path, e))?;
        fs.sync_dir(dir).map_err(|e| OpenError::io(dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_occurrences_overlap() {
        // `A B C A` twice, sharing an `A`: both are candidates.
        let hay = [9, 0x41, 0x42, 0x43, 0x41, 0x42, 0x43, 0x41, 9, 0x41, 0x42, 0x43, 0x41];
        let found: Vec<_> = occurrences(&hay, [0x41, 0x42, 0x43, 0x41]).collect();
        assert_eq!(found, [1, 4, 9]);
        assert_eq!(occurrences(&hay[..3], [0x41, 0x42, 0x43, 0x41]).count(), 0);
    }
}
