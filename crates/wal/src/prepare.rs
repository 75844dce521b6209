//! Preparing the next segment ahead of need (preallocation), on a helper
//! thread, so that a rotation costs the writer only the new segment's
//! header, a rename and two syncs — not zero-filling a whole segment.
//!
//! A segment that compaction removed is the best preparation: it is already
//! allocated and written, and salted records need nothing cleared, so it is
//! kept for reuse (up to [`WalOptions::recycle_segments`] of them) and taken
//! before anything is zero-filled. At most one zero-filling is in flight; it
//! starts when the WAL opens and after a rotation, unless a recycled file
//! is waiting.
//!
//! [`WalOptions::recycle_segments`]: crate::WalOptions::recycle_segments

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::error::WalError;
use crate::fs::Fs;
use crate::index::SegmentIndex;
use crate::segment::{PREPARED_NAME, PathError, Prepared, prepare_segment, recycle_segment, recycled_name};

/// How a [`crate::Wal`] prepares its next segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Preallocation {
    /// Zero-filled to the segment size on a helper thread, ahead of need
    /// (the default): appends overwrite allocated blocks, so `fdatasync`
    /// has no size or allocation to write, and rotation does not wait for
    /// the zero-filling unless the segment filled faster than it ran.
    #[default]
    Background,
    /// Zero-filled to the segment size on the writer's thread, when the
    /// segment is needed: deterministic, for simulation tests that count
    /// and crash at every file operation.
    Inline,
    /// Not preallocated: a new segment holds only its header and grows with
    /// every write (the format still reads the same), and removed segments
    /// are deleted, not recycled.
    Off,
}

type Job = JoinHandle<Result<Prepared, PathError>>;

/// Owns the preparation of the next segment.
#[derive(Debug)]
pub(crate) struct Preparer {
    mode: Preallocation,
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    zero_bytes: u64,
    /// The background preparation in flight, if any.
    job: Option<Job>,
    /// A finished preparation waited for by [`Preparer::settle`].
    ready: Option<Result<Prepared, PathError>>,
    /// Segments removed from the log, kept for reuse, oldest first.
    recycled: Vec<Prepared>,
    /// Segments kept since open (numbering their temporary names).
    recycled_count: u64,
    /// Set when the WAL closes: a background zero-filling stops early.
    cancel: Arc<AtomicBool>,
}

impl Preparer {
    /// A preparer of segments of `zero_bytes`; in background mode it starts
    /// preparing the first one now.
    pub fn new(mode: Preallocation, fs: Arc<dyn Fs>, dir: &Path, zero_bytes: u64) -> Self {
        let mut p = Preparer {
            mode,
            fs,
            dir: dir.to_path_buf(),
            zero_bytes,
            job: None,
            ready: None,
            recycled: Vec::new(),
            recycled_count: 0,
            cancel: Arc::default(),
        };
        p.start();
        p
    }

    /// Starts a background preparation unless one is in flight, one is
    /// ready, or a recycled file is waiting. If the thread cannot be
    /// spawned the next [`Preparer::take`] prepares inline. Call it only
    /// once the file [`Preparer::take`] returned has been renamed away from
    /// its temporary name ([`PREPARED_NAME`] is the new one's).
    pub fn start(&mut self) {
        let idle = self.job.is_none() && self.ready.is_none() && self.recycled.is_empty();
        if self.mode != Preallocation::Background || !idle {
            return;
        }
        let (fs, dir, bytes, cancel) = (self.fs.clone(), self.dir.clone(), self.zero_bytes, self.cancel.clone());
        let spawned = std::thread::Builder::new()
            .name("wal-prepare".into())
            .spawn(move || prepare_segment(&*fs, &dir, bytes, &cancel));
        self.job = spawned.ok();
    }

    /// Keeps the segment `seg`, just removed from the log, for reuse —
    /// renamed away from its segment name — if it is salted, preallocation
    /// is on and fewer than `max` are kept. Returns whether it was kept
    /// (else the caller deletes it).
    pub fn recycle(&mut self, seg: &SegmentIndex, max: usize) -> Result<bool, WalError> {
        let Some(salt) = seg.framing.salt() else {
            return Ok(false);
        };
        if self.mode == Preallocation::Off || self.recycled.len() >= max {
            return Ok(false);
        }
        self.recycled_count += 1;
        let to = self.dir.join(recycled_name(self.recycled_count));
        let kept = recycle_segment(&*self.fs, seg.file.clone(), &seg.path, salt, to)
            .map_err(|(p, e)| WalError::io("recycle segment", p, e))?;
        self.recycled.push(kept);
        Ok(true)
    }

    /// The file for a new segment: a recycled one if any is kept, else the
    /// zero-filled one (waiting for the background job, or preparing it
    /// now).
    pub fn take(&mut self) -> Result<Prepared, WalError> {
        if !self.recycled.is_empty() {
            return Ok(self.recycled.remove(0));
        }
        let zero_bytes = if self.mode == Preallocation::Off { 0 } else { self.zero_bytes };
        let prepared = match (self.ready.take(), self.job.take()) {
            (Some(ready), _) => ready,
            (None, Some(job)) => join(job, &self.dir),
            (None, None) => prepare_segment(&*self.fs, &self.dir, zero_bytes, &self.cancel),
        };
        prepared.map_err(|(p, e)| WalError::io("prepare segment", p, e))
    }
}

impl Preparer {
    /// Waits until a background preparation in flight has finished (its
    /// result is kept for the next [`Preparer::take`]).
    pub fn settle(&mut self) {
        if let Some(job) = self.job.take() {
            self.ready = Some(join(job, &self.dir));
        }
    }
}

fn join(job: Job, dir: &Path) -> Result<Prepared, PathError> {
    job.join().unwrap_or_else(|_| Err((dir.join(PREPARED_NAME), std::io::Error::other("preparing thread panicked"))))
}

impl Drop for Preparer {
    /// Stops a preparation in flight and waits for it, so no thread of a
    /// closed WAL still writes into its directory (what it left is a
    /// `*.tmp` file, removed at the next open) and closing does not wait
    /// for a whole segment to be zero-filled.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(job) = self.job.take() {
            let _ = job.join();
        }
    }
}
