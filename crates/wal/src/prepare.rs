//! Preparing the next segment ahead of need (preallocation), on a helper
//! thread, so that a rotation costs the writer only the new segment's
//! header, a rename and two syncs — not zero-filling a whole segment.
//!
//! At most one preparation is in flight; it starts when the WAL opens and
//! again right after each rotation took the prepared file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::WalError;
use crate::fs::{FileRef, Fs};
use crate::segment::{PREPARED_NAME, PathError, prepare_segment};

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
    /// every write (the format still reads the same).
    Off,
}

type Job = JoinHandle<Result<FileRef, PathError>>;

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
    ready: Option<Result<FileRef, PathError>>,
}

impl Preparer {
    /// A preparer of segments of `zero_bytes`; in background mode it starts
    /// preparing the first one now.
    pub fn new(mode: Preallocation, fs: Arc<dyn Fs>, dir: &Path, zero_bytes: u64) -> Self {
        let mut p = Preparer { mode, fs, dir: dir.to_path_buf(), zero_bytes, job: None, ready: None };
        p.start();
        p
    }

    /// Starts a background preparation unless one is in flight. If the
    /// thread cannot be spawned the next [`Preparer::take`] prepares inline.
    /// Call it only once the file [`Preparer::take`] returned has been
    /// renamed away from [`PREPARED_NAME`], which the new one takes.
    pub fn start(&mut self) {
        if self.mode != Preallocation::Background || self.job.is_some() || self.ready.is_some() {
            return;
        }
        let (fs, dir, bytes) = (self.fs.clone(), self.dir.clone(), self.zero_bytes);
        let spawned =
            std::thread::Builder::new().name("wal-prepare".into()).spawn(move || prepare_segment(&*fs, &dir, bytes));
        self.job = spawned.ok();
    }

    /// The prepared file for a new segment (waiting for the background job,
    /// or preparing it now), under [`PREPARED_NAME`].
    pub fn take(&mut self) -> Result<FileRef, WalError> {
        let zero_bytes = if self.mode == Preallocation::Off { 0 } else { self.zero_bytes };
        let prepared = match (self.ready.take(), self.job.take()) {
            (Some(ready), _) => ready,
            (None, Some(job)) => join(job, &self.dir),
            (None, None) => prepare_segment(&*self.fs, &self.dir, zero_bytes),
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

fn join(job: Job, dir: &Path) -> Result<FileRef, PathError> {
    job.join().unwrap_or_else(|_| Err((dir.join(PREPARED_NAME), std::io::Error::other("preparing thread panicked"))))
}

impl Drop for Preparer {
    /// Waits for a preparation in flight, so no thread of a closed WAL
    /// still writes into its directory (what it left is a `*.tmp` file,
    /// removed at the next open).
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            let _ = job.join();
        }
    }
}
