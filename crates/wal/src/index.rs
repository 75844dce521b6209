//! The in-memory index of the durable log, shared by the writer (which
//! updates it after each sync) and the readers ([`crate::WalStorage`]).
//!
//! Per entry it keeps 4 bytes (the record's offset in its segment); terms are
//! kept as runs (one `(first index, term)` pair per change of term), and
//! membership entries in full. Recent entries (those appended since open, up
//! to a byte budget) are also kept whole, so the hot reads — replication of
//! what was just written — never touch the disk.

use std::collections::VecDeque;
use std::path::PathBuf;

use raft::{Entry, EntryPayload, HardState, Index, Membership, SnapshotMeta, Term};

use crate::fs::FileRef;
use crate::record::{self, Framing, Record};
use crate::snapshot::SnapshotFile;

/// One segment file as the index sees it.
#[derive(Clone, Debug)]
pub(crate) struct SegmentIndex {
    /// The index of the segment's first record (its name).
    pub first: Index,
    pub path: PathBuf,
    pub file: FileRef,
    /// `offsets[k]` is where the record of entry `first + k` starts.
    pub offsets: Vec<u32>,
    /// The byte after the last record.
    pub end: u64,
    /// How its records are framed (from its header).
    pub framing: Framing,
}

impl SegmentIndex {
    /// The index the next record of this segment would have.
    pub fn next_index(&self) -> Index {
        self.first + self.offsets.len() as Index
    }

    /// The index after the entries from `lo` whose records fit in `budget`
    /// bytes, at least `lo + 1`.
    fn index_within(&self, lo: Index, budget: u64) -> Index {
        let k = (lo - self.first) as usize;
        let start = u64::from(self.offsets[k]);
        let fit = self.offsets[k..].partition_point(|o| u64::from(*o) - start <= budget);
        lo + fit.max(1) as Index
    }

    /// The byte range of the records of entries `[lo, hi)`.
    fn byte_range(&self, lo: Index, hi: Index) -> (u64, u64) {
        let at = |i: Index| self.offsets.get((i - self.first) as usize).map_or(self.end, |o| u64::from(*o));
        (at(lo), at(hi))
    }
}

/// The log as durable on disk (plus the recent-entry cache).
#[derive(Debug, Default)]
pub(crate) struct LogIndex {
    pub hard_state: HardState,
    pub snapshot: SnapshotMeta,
    pub snapshot_file: Option<SnapshotFile>,
    pub segments: VecDeque<SegmentIndex>,
    pub last_index: Index,
    /// Term runs covering `(snapshot.index, last_index]`.
    terms: Vec<(Index, Term)>,
    /// Membership entries in `(snapshot.index, last_index]`.
    pub memberships: Vec<(Index, Membership)>,
    cache: VecDeque<Entry>,
    cache_bytes: usize,
    pub cache_bytes_max: usize,
}

/// What a removal left for the writer to do on disk.
#[derive(Debug, Default)]
pub(crate) struct Removal {
    /// Whole segments to delete, in the order to delete them.
    pub segments: Vec<SegmentIndex>,
    /// A segment to cut to a length.
    pub cut: Option<(SegmentIndex, u64)>,
}

impl LogIndex {
    /// An empty index caching up to `cache_bytes_max` of recent entries.
    pub fn new(cache_bytes_max: usize) -> Self {
        LogIndex { cache_bytes_max, ..Default::default() }
    }

    /// The term at `index`, if it is the snapshot's or in the log.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        if index < self.snapshot.index || index > self.last_index {
            return None;
        }
        let run = self.terms.partition_point(|(start, _)| *start <= index);
        self.terms.get(run.checked_sub(1)?).map(|(_, t)| *t)
    }

    /// The last `(index, term)` of the log (the snapshot's if it is empty).
    pub fn last(&self) -> (Index, Term) {
        (self.last_index, self.term(self.last_index).unwrap_or(self.snapshot.term))
    }

    /// Records that entry `index` of `term` is durable at `offset` of the
    /// last segment, `len` bytes long.
    pub fn push_id(&mut self, index: Index, term: Term, offset: u32, len: usize) {
        if let Some(seg) = self.segments.back_mut() {
            seg.offsets.push(offset);
            seg.end = u64::from(offset) + len as u64;
        }
        if index <= self.snapshot.index {
            return;
        }
        self.last_index = index;
        if self.terms.last().is_none_or(|(_, t)| *t != term) {
            self.terms.push((index, term));
        }
    }

    /// Appends a new, empty last segment. An empty one with the same first
    /// index (of an older format, never appended to, whose file the new
    /// one replaced by rename) leaves the index with its file.
    pub fn push_segment(&mut self, seg: SegmentIndex) {
        if self.segments.back().is_some_and(|s| s.first == seg.first) {
            debug_assert!(
                self.segments.back().is_some_and(|s| s.offsets.is_empty()),
                "replaced a segment with records"
            );
            self.segments.pop_back();
        }
        self.segments.push_back(seg);
    }

    /// Remembers a membership entry of the log.
    pub fn note_membership(&mut self, index: Index, membership: &Membership) {
        if index > self.snapshot.index {
            self.memberships.push((index, membership.clone()));
        }
    }

    /// Records a durable entry (see [`LogIndex::push_id`]) and caches it.
    pub fn push_entry(&mut self, entry: Entry, offset: u32, len: usize) {
        self.push_id(entry.index, entry.term, offset, len);
        if let EntryPayload::Membership(m) = &entry.payload {
            self.note_membership(entry.index, m);
        }
        if self.cache.back().is_some_and(|e| e.index + 1 != entry.index) {
            self.clear_cache();
        }
        self.cache_bytes += entry.size_bytes() as usize;
        self.cache.push_back(entry);
        while self.cache_bytes > self.cache_bytes_max {
            let Some(old) = self.cache.pop_front() else {
                break;
            };
            self.cache_bytes -= old.size_bytes() as usize;
        }
    }

    fn clear_cache(&mut self) {
        self.cache.clear();
        self.cache_bytes = 0;
    }

    /// Forgets the whole log (after a snapshot it does not match).
    pub fn clear_log(&mut self) -> Removal {
        let segments = self.segments.drain(..).rev().collect();
        self.terms.clear();
        self.memberships.clear();
        self.clear_cache();
        self.last_index = self.snapshot.index;
        Removal { segments, cut: None }
    }

    /// Forgets every entry at or after `index` (> the snapshot index).
    pub fn truncate_from(&mut self, index: Index) -> Removal {
        let mut removal = Removal::default();
        while self.segments.back().is_some_and(|s| s.first >= index) {
            removal.segments.extend(self.segments.pop_back());
        }
        if let Some(seg) = self.segments.back_mut()
            && seg.next_index() > index
        {
            let end = seg.byte_range(index, index).0;
            seg.offsets.truncate((index - seg.first) as usize);
            seg.end = end;
            removal.cut = Some((seg.clone(), end));
        }
        self.last_index = index - 1;
        self.terms.retain(|(start, _)| *start < index);
        self.memberships.retain(|(i, _)| *i < index);
        while self.cache.back().is_some_and(|e| e.index >= index) {
            let Some(e) = self.cache.pop_back() else {
                break;
            };
            self.cache_bytes -= e.size_bytes() as usize;
        }
        removal
    }

    /// Makes `snap` the snapshot, keeping the log after it if the log holds
    /// its last entry with the same term (§7), else dropping the whole log.
    /// Returns the segments no longer needed, last first.
    pub fn install(&mut self, snap: SnapshotFile) -> Removal {
        let meta = snap.meta().clone();
        let keep = self.term(meta.index) == Some(meta.term);
        let removal = if keep { self.drop_prefix(meta.index) } else { Removal::default() };
        self.snapshot = meta;
        self.snapshot_file = Some(snap);
        if keep { removal } else { self.clear_log() }
    }

    /// Drops index data for entries up to `index` (≤ snapshot index after
    /// [`LogIndex::install`]) and returns the segments wholly *below* it. The
    /// segment holding `index` itself stays: recovery reads the term of the
    /// snapshot's last entry from it to tell a log that matches the snapshot
    /// from one it must drop.
    pub fn drop_prefix(&mut self, index: Index) -> Removal {
        let mut removal = Removal::default();
        while self.segments.front().is_some_and(|s| s.next_index() <= index) {
            removal.segments.extend(self.segments.pop_front());
        }
        let cut = self.terms.partition_point(|(start, _)| *start <= index);
        if cut > 0 {
            let term = self.terms[cut - 1].1;
            self.terms.drain(..cut);
            let starts_next = self.terms.first().is_some_and(|(start, _)| *start == index + 1);
            if self.last_index > index && !starts_next {
                self.terms.insert(0, (index + 1, term));
            }
        }
        self.memberships.retain(|(i, _)| *i > index);
        while self.cache.front().is_some_and(|e| e.index <= index) {
            let Some(e) = self.cache.pop_front() else {
                break;
            };
            self.cache_bytes -= e.size_bytes() as usize;
        }
        removal
    }

    /// Entries `[lo, hi)` (all in the log), stopping once `max_bytes` is
    /// passed but returning at least one.
    pub fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut total = 0u64;
        // Takes `e` unless the byte limit is passed (the first always goes).
        let mut accept = |e: Entry, out: &mut Vec<Entry>| {
            total += e.size_bytes();
            let take = total <= max_bytes || out.is_empty();
            if take {
                out.push(e);
            }
            take
        };
        let cache_first = self.cache.front().map_or(Index::MAX, |e| e.index);
        let mut next = lo;
        while next < hi {
            if next >= cache_first {
                let k = (next - cache_first) as usize;
                for e in self.cache.range(k..).take((hi - next) as usize) {
                    if !accept(e.clone(), &mut out) {
                        break;
                    }
                }
                return out;
            }
            let budget = max_bytes.saturating_sub(out.iter().map(Entry::size_bytes).sum());
            for e in self.read_disk(next, hi.min(cache_first), budget) {
                next = e.index + 1;
                if !accept(e, &mut out) {
                    return out;
                }
            }
        }
        out
    }

    /// Reads entries from `lo` up to `hi` or the end of `lo`'s segment, and
    /// not many more record bytes than `budget` (at least one entry): a
    /// small request does not read a whole segment.
    ///
    /// # Panics
    /// On a read error or a record that no longer checks: storage IO errors
    /// are fatal by design, and reads cannot return them (see
    /// [`crate::WalStorage`]).
    fn read_disk(&self, lo: Index, hi: Index, budget: u64) -> Vec<Entry> {
        let pos = self.segments.partition_point(|s| s.first <= lo);
        let Some(seg) = pos.checked_sub(1).and_then(|p| self.segments.get(p)) else {
            panic!("fatal: no segment holds entry {lo}");
        };
        let hi = hi.min(seg.next_index()).min(seg.index_within(lo, budget));
        let (start, end) = seg.byte_range(lo, hi);
        let mut buf = vec![0; (end - start) as usize];
        if let Err(e) = seg.file.read_exact_at(&mut buf, start) {
            panic!("fatal: reading {} at offset {start}: {e}", seg.path.display());
        }
        let mut out = Vec::with_capacity((hi - lo) as usize);
        let mut at = 0;
        while at < buf.len() {
            match record::decode_with(&buf[at..], seg.framing) {
                Ok((Record::Entry(e), n)) => {
                    out.push(e);
                    at += n;
                }
                other => panic!(
                    "fatal: {} at offset {}: record changed on disk: {other:?}",
                    seg.path.display(),
                    start + at as u64
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_runs() {
        let mut idx = LogIndex::new(0);
        for (i, t) in [(1, 1), (2, 1), (3, 2), (4, 2), (5, 5)] {
            idx.push_id(i, t, 0, 0);
        }
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6].map(|i| idx.term(i)),
            [Some(0), Some(1), Some(1), Some(2), Some(2), Some(5), None]
        );
        idx.truncate_from(4);
        assert_eq!((idx.term(3), idx.term(4)), (Some(2), None));
        idx.drop_prefix(2);
        idx.snapshot.index = 2;
        idx.snapshot.term = 1;
        assert_eq!([1, 2, 3, 4].map(|i| idx.term(i)), [None, Some(1), Some(2), None]);
    }

    #[test]
    fn the_index_costs_four_bytes_per_entry_and_a_pair_per_term() {
        let mut idx = LogIndex::new(1000);
        idx.segments.push_back(SegmentIndex {
            first: 1,
            path: PathBuf::from("/x"),
            file: std::sync::Arc::new(NoFile),
            offsets: Vec::new(),
            end: 0,
            framing: Framing::Salted(1),
        });
        let n: u64 = 1_000_000;
        for i in 1..=n {
            idx.push_entry(Entry { term: 1 + i / 250_000, index: i, payload: EntryPayload::Noop }, 0, 25);
        }
        let seg = &idx.segments[0];
        assert_eq!(seg.offsets.len() as u64, n);
        assert_eq!(std::mem::size_of_val(&seg.offsets[0]), 4);
        assert_eq!(idx.terms.len(), 5, "one run per term");
        assert!(idx.memberships.is_empty());
        assert!(idx.cache_bytes <= 1000 && idx.cache.len() < 100, "the cache stays within its budget");
        assert_eq!(idx.last(), (n, 5));
    }

    #[derive(Debug)]
    struct NoFile;

    impl crate::fs::File for NoFile {
        fn read_exact_at(&self, _: &mut [u8], _: u64) -> std::io::Result<()> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        fn write_all_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        fn len(&self) -> std::io::Result<u64> {
            Ok(0)
        }
        fn set_len(&self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn sync_data(&self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
