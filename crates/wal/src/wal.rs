//! [`Wal`]: the single-threaded write side. Buffers appends, writes them with
//! one `write` and one `fdatasync` per [`Wal::sync`], and keeps the shared
//! [`LogIndex`] in step.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft::{Entry, HardState, Index, SnapshotMeta, Term};

use crate::encoded::EncodedEntries;
use crate::error::{OpenError, WalError};
use crate::fs::{FileRef, Fs};
use crate::hard_state::HardStateFile;
use crate::index::{LogIndex, Removal, SegmentIndex};
use crate::prepare::{Preallocation, Preparer};
use crate::record::{self, Framing, RECORD_LEN_MAX, SALTED_HEADER_LEN};
use crate::segment::{SEGMENT_HEADER_LEN, activate_segment};
use crate::snapshot::{SNAPSHOT_DIR, SnapshotFile, SnapshotWriter, parse_snapshot_name};
use crate::storage::WalStorage;

/// Tuning of a [`Wal`].
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// A segment is closed and a new one started once the next record would
    /// take it past this size — except within a batch (records buffered
    /// since the last sync), where it may grow to 1.5 times this size before
    /// it is closed: closing it mid-batch costs an extra `fdatasync` to seal
    /// it, closing it at the start of the next batch costs none (the last
    /// sync left it complete). A larger single record gets a segment of its
    /// own. At most `u32::MAX`. Also the size a new segment is zero-filled
    /// to (see [`WalOptions::preallocation`]).
    pub segment_bytes_max: u64,
    /// How many bytes (by [`Entry::size_bytes`]) of recently appended entries
    /// are kept in memory for reads.
    pub cache_bytes_max: usize,
    /// How new segments are prepared: by default zero-filled to
    /// `segment_bytes_max` on a helper thread ahead of need.
    pub preallocation: Preallocation,
    /// How many segments removed from the log (by compaction, a snapshot
    /// or conflict repair) are kept, renamed, to become later segments
    /// instead of zero-filling new files: a recycled file is already
    /// allocated and written, so it costs a rotation nothing but its
    /// header. Their disk space is held until they are used (or the WAL
    /// reopens, which removes them). 0 deletes removed segments; so does
    /// [`Preallocation::Off`].
    pub recycle_segments: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes_max: 64 << 20,
            cache_bytes_max: 16 << 20,
            preallocation: Preallocation::Background,
            recycle_segments: 2,
        }
    }
}

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub file: FileRef,
    pub path: PathBuf,
    /// Bytes written to the file (the buffer goes after them).
    pub len: u64,
    /// How its records are framed: appends go only into a salted one (a
    /// segment of an older format is closed before the first append).
    pub framing: Framing,
}

impl Active {
    /// The active segment `seg` is, with everything durable written.
    pub fn of(seg: &SegmentIndex) -> Active {
        Active { file: seg.file.clone(), path: seg.path.clone(), len: seg.end, framing: seg.framing }
    }
}

/// The salt of the segment being appended to, published for threads that
/// encode records ahead of the write ([`crate::WalWriter::submit`]). A stale
/// value costs only salting the records again (see [`Wal::append_encoded`]).
#[derive(Clone, Debug)]
pub(crate) struct SaltHint(Arc<AtomicU32>);

impl SaltHint {
    /// The salt to encode with now.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, salt: u32) {
        self.0.store(salt, Ordering::Relaxed);
    }
}

/// The write side of the WAL of one node.
///
/// Appends and hard-state updates are buffered; [`Wal::sync`] writes them
/// and makes them durable. Truncation, snapshot installation and compaction
/// first sync what is buffered, then carry themselves out durably before
/// returning. After any error every call returns that error again: the
/// runtime must stop.
#[derive(Debug)]
pub struct Wal {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) dir: PathBuf,
    pub(crate) opts: WalOptions,
    pub(crate) index: Arc<RwLock<LogIndex>>,
    pub(crate) active: Option<Active>,
    pub(crate) hard_state: HardStateFile,
    /// Prepares the segment the next rotation starts.
    preparer: Preparer,
    /// The active segment's salt, for encoding ahead.
    salt_hint: SaltHint,
    buf: Vec<u8>,
    /// A buffer given up by [`Wal::append_encoded`], for the caller to
    /// recycle ([`Wal::take_spare_buffer`]).
    spare: Option<Vec<u8>>,
    /// Buffered entries and where their records go in the active segment.
    pending: Vec<(Entry, u32)>,
    pending_hard_state: Option<HardState>,
    /// The last entry, buffered ones included.
    last: (Index, Term),
    snapshot_index: Index,
    failed: Option<WalError>,
}

impl Wal {
    /// Opens (recovering) or creates the WAL in `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal, OpenError> {
        Wal::open_on(Arc::new(crate::fs::StdFs), dir.as_ref(), opts)
    }

    /// Opens (recovering) or creates the WAL in `dir` on `fs`.
    pub fn open_on(fs: Arc<dyn Fs>, dir: &Path, opts: WalOptions) -> Result<Wal, OpenError> {
        crate::recovery::open(fs, dir, opts)
    }

    pub(crate) fn from_parts(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        opts: WalOptions,
        index: LogIndex,
        active: Option<Active>,
        hard_state: HardStateFile,
    ) -> Wal {
        let last = index.last();
        let snapshot_index = index.snapshot.index;
        let zero_bytes = opts.segment_bytes_max.min(u64::from(u32::MAX));
        let preparer = Preparer::new(opts.preallocation, fs.clone(), &dir, zero_bytes);
        // With no salted segment to write yet, 0: matches none, so records
        // encoded ahead are salted again once the segment exists.
        let salt = active.as_ref().and_then(|a| a.framing.salt()).unwrap_or(0);
        Wal {
            preparer,
            salt_hint: SaltHint(Arc::new(AtomicU32::new(salt))),
            fs,
            dir,
            opts,
            index: Arc::new(RwLock::new(index)),
            active,
            hard_state,
            buf: Vec::new(),
            spare: None,
            pending: Vec::new(),
            pending_hard_state: None,
            last,
            snapshot_index,
            failed: None,
        }
    }

    /// Waits until the next segment, if it is being prepared in the
    /// background ([`Preallocation::Background`]), is ready. Never needed
    /// for correctness; a benchmark uses it to charge the preparation's
    /// disk work to the WAL rather than to whatever runs beside it.
    pub fn wait_for_preparation(&mut self) {
        self.preparer.settle();
    }

    /// Encodes the records of `entries` for [`Wal::append_encoded`], with
    /// the salt of the segment being written (on any thread).
    pub fn encode(&self, entries: Vec<Entry>) -> EncodedEntries {
        EncodedEntries::with_buffer(entries, Vec::new(), self.salt_hint.get())
    }

    pub(crate) fn salt_hint(&self) -> SaltHint {
        self.salt_hint.clone()
    }

    /// A read handle implementing [`raft::Storage`].
    pub fn storage(&self) -> WalStorage {
        WalStorage::new(self.index.clone())
    }

    /// The last `(index, term)` of the log, buffered appends included.
    pub fn last(&self) -> (Index, Term) {
        self.last
    }

    /// The directory snapshots are written to.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_DIR)
    }

    /// Starts writing the snapshot `meta`; hand the finished file to
    /// [`Wal::install_snapshot`]. May run on any thread.
    pub fn begin_snapshot(&self, meta: SnapshotMeta) -> Result<SnapshotWriter, WalError> {
        SnapshotWriter::create(self.fs.clone(), &self.snapshot_dir(), meta)
    }

    fn check(&self) -> Result<(), WalError> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    /// Remembers `err` as the reason this WAL stopped.
    fn fail<T>(&mut self, err: WalError) -> Result<T, WalError> {
        self.failed = Some(err.clone());
        Err(err)
    }

    fn guard<T>(&mut self, r: Result<T, WalError>) -> Result<T, WalError> {
        r.or_else(|e| self.fail(e))
    }

    /// Buffers `entries`, first removing any entries at or after the first
    /// one's index (conflict repair). Entries at or below the snapshot index
    /// are ignored.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        self.check()?;
        let snapshot_index = self.snapshot_index;
        for e in entries.iter().filter(|e| e.index > snapshot_index) {
            let r = self.append_one(e.clone(), None);
            self.guard(r)?;
        }
        Ok(())
    }

    /// [`Wal::append`] of entries whose records were encoded beforehand
    /// (on another thread, see [`Wal::encode`]): the records are taken as
    /// they are, byte for byte what `append` would have written, where they
    /// carry the salt of the segment they land in; where not (a rotation
    /// came between encoding and writing) they are salted again, or, off
    /// the common path (nothing buffered before them, all in one segment),
    /// encoded again.
    pub fn append_encoded(&mut self, batch: EncodedEntries) -> Result<(), WalError> {
        self.check()?;
        let (entries, bytes, salt) = batch.into_parts();
        // A batch whose first record starts a new segment starts it here,
        // as the entry-by-entry path would, so the batch can still be
        // adopted whole.
        if let Some(first) = entries.first()
            && self.buf.is_empty()
            && first.index == self.last.0 + 1
            && first.index > self.snapshot_index
        {
            let len = record::entry_len(first);
            if len - SALTED_HEADER_LEN <= RECORD_LEN_MAX as usize {
                let r = self.make_room(len);
                self.guard(r)?;
            }
        }
        let (entries, bytes) = match self.adopt(entries, bytes, salt) {
            Ok(()) => return Ok(()),
            Err(back) => back,
        };
        let mut at = 0;
        for e in entries {
            let len = record::entry_len(&e);
            let rec = bytes.get(at..at + len).map(|rec| (rec, salt));
            at += len;
            if e.index > self.snapshot_index {
                let r = self.append_one(e, rec);
                self.guard(r)?;
            }
        }
        self.spare = Some(bytes);
        Ok(())
    }

    /// The buffer the last [`Wal::append_encoded`] gave up (the batch's own,
    /// copied from, or the write buffer it replaced), to encode a later
    /// batch into.
    pub(crate) fn take_spare_buffer(&mut self) -> Option<Vec<u8>> {
        self.spare.take()
    }

    /// The common case of [`Wal::append_encoded`] without a copy: nothing
    /// buffered yet, the entries continue the log and all go in the active
    /// segment (by the rule of [`WalOptions::segment_bytes_max`]), so their
    /// encoded records become the write buffer as they are — salted again
    /// if a rotation changed the salt since they were encoded. Anything
    /// else is handed back for the entry-by-entry path.
    fn adopt(&mut self, entries: Vec<Entry>, mut bytes: Vec<u8>, salt: u32) -> Result<(), (Vec<Entry>, Vec<u8>)> {
        let (Some(a), Some(first), Some(last)) = (&self.active, entries.first(), entries.last()) else {
            return Err((entries, bytes));
        };
        let Some(active_salt) = a.framing.salt() else {
            return Err((entries, bytes));
        };
        let continues = first.index == self.last.0 + 1 && first.index > self.snapshot_index;
        let in_sequence = entries.windows(2).all(|w| w[1].index == w[0].index + 1);
        if !(self.buf.is_empty() && continues && in_sequence) {
            return Err((entries, bytes));
        }
        let lens: Vec<usize> = entries.iter().map(record::entry_len).collect();
        let whole = lens.iter().sum::<usize>() == bytes.len();
        if !whole || lens.iter().any(|l| l - SALTED_HEADER_LEN > RECORD_LEN_MAX as usize) {
            return Err((entries, bytes));
        }
        // The first record must fit as a batch's first does, the rest as
        // records in mid-batch may: where the entry-by-entry path would
        // put them.
        let max = self.opts.segment_bytes_max.min(u64::from(u32::MAX));
        let mid_batch_max = max.saturating_add(max / 2).min(u64::from(u32::MAX));
        let first_fits = a.len == SEGMENT_HEADER_LEN as u64 || a.len + lens[0] as u64 <= max;
        if !(first_fits && a.len + bytes.len() as u64 <= mid_batch_max) {
            return Err((entries, bytes));
        }
        if salt != active_salt {
            record::resalt(&mut bytes, &lens, active_salt);
        }
        let mut offset = a.len;
        self.last = (last.index, last.term);
        for (e, len) in entries.into_iter().zip(lens) {
            self.pending.push((e, offset as u32));
            offset += len as u64;
        }
        self.spare = Some(std::mem::replace(&mut self.buf, bytes));
        Ok(())
    }

    /// Buffers the record of `e`: `encoded` if given (it must be the
    /// record of `e`, with the salt given beside it) and of the active
    /// segment's salt, else encoded here.
    fn append_one(&mut self, e: Entry, encoded: Option<(&[u8], u32)>) -> Result<(), WalError> {
        if e.index <= self.last.0 {
            self.truncate_from(e.index)?;
        }
        if e.index != self.last.0 + 1 {
            return Err(WalError::Hole { last: self.last.0, got: e.index });
        }
        let len = record::entry_len(&e);
        if len - SALTED_HEADER_LEN > RECORD_LEN_MAX as usize {
            return Err(WalError::TooLarge { index: e.index, len });
        }
        let (active, salt) = self.make_room(len)?;
        let offset = (active + self.buf.len() as u64) as u32;
        match encoded {
            Some((rec, with)) if with == salt => {
                debug_assert_eq!(rec.len(), len, "an encoded record of the wrong length");
                self.buf.extend_from_slice(rec);
            }
            _ => record::encode_entry(&e, salt, &mut self.buf),
        }
        self.last = (e.index, e.term);
        self.pending.push((e, offset));
        Ok(())
    }

    /// Makes sure the active segment can take `len` more bytes, starting a
    /// new one if not. Returns the active segment's written length and
    /// salt.
    fn make_room(&mut self, len: usize) -> Result<(u64, u32), WalError> {
        if let Some(a) = &self.active
            && let Some(salt) = a.framing.salt()
            && self.fits(a.len + self.buf.len() as u64, len as u64)
        {
            return Ok((a.len, salt));
        }
        // Seal the old segment first: only the last segment may end torn.
        // With nothing buffered it is sealed already: every write to it was
        // followed by its `fdatasync`.
        if !self.buf.is_empty() {
            self.sync()?;
        }
        self.start_segment(self.last.0 + 1)
    }

    /// Makes the prepared file the active segment starting at `first`;
    /// returns its written length and salt.
    fn start_segment(&mut self, first: Index) -> Result<(u64, u32), WalError> {
        let prepared = self.preparer.take()?;
        let salt = prepared.salt;
        let (file, path) = activate_segment(&*self.fs, &self.dir, prepared, first)
            .map_err(|(p, e)| WalError::io("create segment", p, e))?;
        self.preparer.start();
        let framing = Framing::Salted(salt);
        let end = SEGMENT_HEADER_LEN as u64;
        let seg = SegmentIndex { first, path: path.clone(), file: file.clone(), offsets: Vec::new(), end, framing };
        wr(&self.index).push_segment(seg);
        self.active = Some(Active { file, path, len: end, framing });
        self.salt_hint.set(salt);
        Ok((end, salt))
    }

    /// Whether `len` more bytes go into the active segment, `used` bytes
    /// long with what is buffered (see [`WalOptions::segment_bytes_max`]).
    fn fits(&self, used: u64, len: u64) -> bool {
        let max = self.opts.segment_bytes_max.min(u64::from(u32::MAX));
        let mid_batch_max = max.saturating_add(max / 2).min(u64::from(u32::MAX));
        let mid_batch = !self.buf.is_empty();
        used == SEGMENT_HEADER_LEN as u64 || used + len <= max || (mid_batch && used + len <= mid_batch_max)
    }

    /// Buffers a new hard state, written after the log by the next sync.
    ///
    /// A change of term or vote is durable when that sync returns. A change
    /// that only raises `commit` is not forced to disk by a sync that also
    /// wrote log records: it is written with the next term or vote change or
    /// the next [`Wal::sync`] without records (the [`crate::WalWriter`] syncs
    /// with [`Wal::sync_batch`], which defers it even then, and issues one
    /// `sync` when it shuts down). After a crash the commit index may therefore be lower
    /// than the last one set — never higher than the durable log, and Raft
    /// does not need it for safety.
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<(), WalError> {
        self.check()?;
        self.pending_hard_state = Some(hs);
        Ok(())
    }

    /// Writes everything buffered with one `write` and one `fdatasync`, then
    /// the hard state if its term or vote changed (one more of each; a change
    /// of `commit` alone is written lazily, see [`Wal::set_hard_state`]).
    /// Returns the last durable `(index, term)`.
    pub fn sync(&mut self) -> Result<(Index, Term), WalError> {
        self.check()?;
        let r = self.sync_inner();
        self.guard(r)
    }

    /// [`Wal::sync`] for a batch of the group-commit writer: a hard state
    /// that only raises `commit` stays pending even when the batch has no
    /// log records. Otherwise every commit a heartbeat announces would cost
    /// each node a hard-state write and `fdatasync` of its own: one writing
    /// client made six fsyncs per write on a three-node cluster instead of
    /// three. It is written with the next term or vote change, or by the
    /// writer's last [`Wal::sync`] when it stops.
    pub fn sync_batch(&mut self) -> Result<(Index, Term), WalError> {
        self.check()?;
        let r = self.sync_deferring(true);
        self.guard(r)
    }

    fn sync_inner(&mut self) -> Result<(Index, Term), WalError> {
        self.sync_deferring(false)
    }

    /// Writes and syncs the buffered records, then the hard state (a
    /// commit-only change is deferred when records were written, or always
    /// with `always_defer_commit`), then publishes what became durable.
    fn sync_deferring(&mut self, always_defer_commit: bool) -> Result<(Index, Term), WalError> {
        let wrote_log = !self.buf.is_empty();
        if wrote_log {
            let Some(a) = &mut self.active else {
                unreachable!("buffered records without an active segment");
            };
            let io = |op| {
                let p = a.path.clone();
                move |e| WalError::io(op, p, e)
            };
            a.file.write_all_at(&self.buf, a.len).map_err(io("write"))?;
            a.len += self.buf.len() as u64;
            a.file.sync_data().map_err(io("fdatasync"))?;
            self.buf.clear();
        }
        self.write_hard_state(wrote_log || always_defer_commit)?;
        let mut index = wr(&self.index);
        for (e, offset) in self.pending.drain(..) {
            let len = record::entry_len(&e);
            index.push_entry(e, offset, len);
        }
        index.hard_state = self.hard_state.current();
        Ok(self.last)
    }

    /// Writes the pending hard state, unless it only raises `commit` and
    /// `defer_commit` says that may wait: `commit` is not needed for safety
    /// (Figure 2 calls it volatile; a restarted node relearns it), so a
    /// commit-only change waits for the next sync that writes the
    /// hard-state file anyway (a term or vote change, or a sync with no
    /// records) instead of costing every batch a second `fdatasync`.
    fn write_hard_state(&mut self, defer_commit: bool) -> Result<(), WalError> {
        let Some(hs) = self.pending_hard_state else {
            return Ok(());
        };
        let cur = self.hard_state.current();
        let commit_only = (hs.term, hs.vote) == (cur.term, cur.vote) && hs.commit >= cur.commit;
        if commit_only && defer_commit {
            return Ok(());
        }
        self.hard_state.write(hs)?;
        self.pending_hard_state = None;
        Ok(())
    }

    /// Removes every entry at or after `index`, durably.
    ///
    /// The containing segment is cut with `set_len` (then `fdatasync`), not
    /// zeroed in place: in a preallocated segment a zeroing write torn by a
    /// crash could leave zeros followed by an old, valid record, which
    /// recovery must refuse as corruption; a cut is all or nothing and
    /// leaves nothing after the new end to resurrect. It also drops the
    /// rest of that segment's zero tail, so until the next rotation appends
    /// grow the file again (conflict repair is rare, and re-zeroing would
    /// put a write of up to a segment on its path).
    fn truncate_from(&mut self, index: Index) -> Result<(), WalError> {
        self.sync_inner()?;
        let removal = wr(&self.index).truncate_from(index);
        self.carry_out(&removal, true)?;
        if let Some((seg, end)) = &removal.cut {
            let io = |op| {
                let p = seg.path.clone();
                move |e| WalError::io(op, p, e)
            };
            seg.file.set_len(*end).map_err(io("truncate"))?;
            seg.file.sync_data().map_err(io("fdatasync"))?;
        }
        self.reset_active();
        self.last = rd(&self.index).last();
        Ok(())
    }

    /// Takes the segments of `removal` out of the log: each is kept for
    /// reuse (renamed, see [`WalOptions::recycle_segments`]) or deleted.
    /// With `each_durable`, each removal is made durable before the next,
    /// so a crash leaves a contiguous log.
    fn carry_out(&mut self, removal: &Removal, each_durable: bool) -> Result<(), WalError> {
        for seg in &removal.segments {
            self.remove_segment(seg)?;
            if each_durable {
                self.sync_dir()?;
            }
        }
        if !each_durable && !removal.segments.is_empty() {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Keeps `seg` for reuse (see [`WalOptions::recycle_segments`]) or
    /// deletes it.
    fn remove_segment(&mut self, seg: &SegmentIndex) -> Result<(), WalError> {
        if self.preparer.recycle(seg, self.opts.recycle_segments)? {
            return Ok(());
        }
        self.fs.remove(&seg.path).map_err(|e| WalError::io("remove", &seg.path, e))
    }

    fn sync_dir(&self) -> Result<(), WalError> {
        self.fs.sync_dir(&self.dir).map_err(|e| WalError::io("fsync dir", &self.dir, e))
    }

    /// Points the active segment at the index's last segment, if any.
    fn reset_active(&mut self) {
        self.active = rd(&self.index).segments.back().map(Active::of);
        if let Some(salt) = self.active.as_ref().and_then(|a| a.framing.salt()) {
            self.salt_hint.set(salt);
        }
    }

    /// Makes the finished snapshot `snap` the current one: the log it covers
    /// is dropped (its suffix kept if the log holds the snapshot's last entry
    /// with the same term, §7), whole segments below it and older snapshot
    /// files are deleted. Not newer than the current snapshot: ignored
    /// (except that a snapshot at index 0, carrying the initial membership,
    /// may be installed into a WAL that has none: how a node is bootstrapped).
    pub fn install_snapshot(&mut self, snap: SnapshotFile) -> Result<(), WalError> {
        self.check()?;
        let has_snapshot = rd(&self.index).snapshot_file.is_some();
        if snap.meta().index < self.snapshot_index || (snap.meta().index == self.snapshot_index && has_snapshot) {
            return Ok(());
        }
        let r = self.install_inner(snap);
        self.guard(r)
    }

    fn install_inner(&mut self, snap: SnapshotFile) -> Result<(), WalError> {
        self.sync_inner()?;
        let index = snap.meta().index;
        let keep = rd(&self.index).term(index) == Some(snap.meta().term);
        let removal = wr(&self.index).install(snap);
        // Dropping a whole log must leave a prefix at every step (recovery
        // then sees it does not reach the snapshot); a prefix of segments
        // may go in any order.
        self.carry_out(&removal, !keep)?;
        self.remove_old_snapshots(index)?;
        self.snapshot_index = index;
        self.reset_active();
        self.last = rd(&self.index).last();
        Ok(())
    }

    /// Removes snapshot files below `index`. Newer ones stay: another thread
    /// may just have finished one that is about to be installed.
    fn remove_old_snapshots(&self, index: Index) -> Result<(), WalError> {
        let dir = self.snapshot_dir();
        let names = self.fs.list(&dir).map_err(|e| WalError::io("list", &dir, e))?;
        let old: Vec<_> = names.iter().filter(|n| parse_snapshot_name(n).is_some_and(|(i, _)| i < index)).collect();
        for name in &old {
            let path = dir.join(name);
            self.fs.remove(&path).map_err(|e| WalError::io("remove", &path, e))?;
        }
        if !old.is_empty() {
            self.fs.sync_dir(&dir).map_err(|e| WalError::io("fsync dir", &dir, e))?;
        }
        Ok(())
    }

    /// Deletes the segments holding only entries at or below
    /// `min(index, snapshot index)`.
    pub fn compact(&mut self, index: Index) -> Result<(), WalError> {
        self.check()?;
        let r = self.compact_inner(index.min(self.snapshot_index));
        self.guard(r)
    }

    fn compact_inner(&mut self, index: Index) -> Result<(), WalError> {
        self.sync_inner()?;
        let removal = wr(&self.index).drop_prefix(index);
        self.carry_out(&removal, false)?;
        self.reset_active();
        Ok(())
    }
}

fn rd(index: &RwLock<LogIndex>) -> RwLockReadGuard<'_, LogIndex> {
    // The index is updated in steps that each leave it consistent.
    index.read().unwrap_or_else(|p| p.into_inner())
}

fn wr(index: &RwLock<LogIndex>) -> RwLockWriteGuard<'_, LogIndex> {
    index.write().unwrap_or_else(|p| p.into_inner())
}
