//! [`WalWriter`]: the group-commit thread in front of a [`Wal`].
//!
//! Callers submit operations and get a sequence number; the thread takes
//! everything queued since its last sync, applies it in order (all appends of
//! the batch go out in one `write`), issues one `fdatasync`, and publishes the
//! highest durable sequence number with the last durable `(index, term)`.
//! Waiting for "durable ≥ my seq" is how a caller learns its operation is on
//! disk. The first error stops the thread; it is reported to every waiter and
//! every later submission.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use raft::{Entry, HardState, Index, SnapshotMeta, Term};

use crate::encoded::EncodedEntries;
use crate::error::WalError;
use crate::snapshot::{SnapshotFile, SnapshotWriter};
use crate::storage::WalStorage;
use crate::wal::{SaltHint, Wal};

/// One write operation, as the runtime's persist actions ask for them.
#[derive(Debug)]
pub enum Op {
    /// [`Wal::append`].
    Append(Vec<Entry>),
    /// [`Wal::set_hard_state`].
    HardState(HardState),
    /// [`Wal::install_snapshot`].
    InstallSnapshot(SnapshotFile),
    /// [`Wal::compact`].
    Compact(Index),
}

/// An operation as queued: an append arrives with its records encoded (on
/// the submitting thread, see [`EncodedEntries`]).
#[derive(Debug)]
enum Queued {
    Append(EncodedEntries),
    Other(Op),
}

impl Queued {
    fn new(op: Op, shared: &Shared, salt: &SaltHint) -> Self {
        match op {
            Op::Append(entries) => {
                let buf = lock(&shared.buffers).pop().unwrap_or_default();
                Queued::Append(EncodedEntries::with_buffer(entries, buf, salt.get()))
            }
            other => Queued::Other(other),
        }
    }

    fn size_bytes(&self) -> u64 {
        match self {
            Queued::Append(batch) => batch.encoded_len() as u64,
            Queued::Other(_) => 64,
        }
    }
}

/// How far durability has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Durable {
    /// Every operation with a sequence number up to this one is durable.
    pub seq: u64,
    /// The last index of the durable log.
    pub index: Index,
    /// The term of that entry.
    pub term: Term,
}

/// Limits of the writer.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Submissions block while this many operations are queued (back pressure).
    pub queue_ops_max: usize,
    /// A batch stops taking operations once their encoded records pass
    /// this many bytes (it always takes at least one).
    pub batch_bytes_max: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { queue_ops_max: 4096, batch_bytes_max: 16 << 20 }
    }
}

/// Called by the writer thread after each batch is durable.
pub type OnDurable = Box<dyn Fn(Durable) + Send>;

#[derive(Default)]
struct Queue {
    ops: VecDeque<(u64, Queued)>,
    next_seq: u64,
    closed: bool,
    /// Threads blocked on `queue_cv` (the writer waiting for work, submitters
    /// waiting for room). A notification is a syscall even with no one to
    /// wake, and a follower submits several times per `fdatasync`, so the
    /// condition variable is signalled only when this is non-zero.
    waiting: usize,
}

#[derive(Default)]
struct Progress {
    durable: Durable,
    error: Option<WalError>,
    stopped: bool,
    /// Threads blocked in [`WalWriter::wait_durable`].
    waiting: usize,
}

#[derive(Default)]
struct Shared {
    /// Encoding buffers handed back by the writer thread for reuse (at most
    /// [`SPARE_BUFFERS_MAX`]).
    buffers: Mutex<Vec<Vec<u8>>>,
    queue: Mutex<Queue>,
    /// Signalled when work arrives or room frees up.
    queue_cv: Condvar,
    progress: Mutex<Progress>,
    progress_cv: Condvar,
}

/// How many encoding buffers are kept for reuse: enough for a batch being
/// encoded while another is written.
const SPARE_BUFFERS_MAX: usize = 2;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits on `cv`, counted in `waiting` (see [`Queue::waiting`]).
fn wait_counted<'a, T>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, T>,
    waiting: impl Fn(&mut T) -> &mut usize,
) -> MutexGuard<'a, T> {
    *waiting(&mut guard) += 1;
    let mut guard = cv.wait(guard).unwrap_or_else(|p| p.into_inner());
    *waiting(&mut guard) -= 1;
    guard
}

impl Queue {
    fn wait<'a>(cv: &Condvar, q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        wait_counted(cv, q, |q| &mut q.waiting)
    }

    /// Wakes whoever waits on `cv`; called with the queue locked.
    fn notify(&self, cv: &Condvar) {
        if self.waiting > 0 {
            cv.notify_all();
        }
    }
}

/// The handle on the group-commit thread. Dropping it drains the queue and
/// joins the thread.
pub struct WalWriter {
    shared: Arc<Shared>,
    storage: WalStorage,
    snapshot_dir: std::path::PathBuf,
    fs: Arc<dyn crate::fs::Fs>,
    opts: WriterOptions,
    /// The salt of the segment being written, to encode appends with.
    salt: SaltHint,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalWriter").field("opts", &self.opts).finish_non_exhaustive()
    }
}

impl WalWriter {
    /// Moves `wal` onto a new writer thread. `on_durable`, if given, is called
    /// on that thread after every durable batch (to wake an async runtime).
    pub fn start(wal: Wal, opts: WriterOptions, on_durable: Option<OnDurable>) -> std::io::Result<WalWriter> {
        let shared = Arc::new(Shared::default());
        let (index, term) = wal.last();
        lock(&shared.progress).durable = Durable { seq: 0, index, term };
        let storage = wal.storage();
        let salt = wal.salt_hint();
        let (snapshot_dir, fs) = (wal.snapshot_dir(), wal.fs.clone());
        let s = shared.clone();
        let batch_bytes_max = opts.batch_bytes_max;
        let thread = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || run(wal, &s, batch_bytes_max, on_durable))?;
        Ok(WalWriter { shared, storage, snapshot_dir, fs, opts, salt, thread: Some(thread) })
    }

    /// Queues `op`; returns its sequence number. Blocks while the queue is full.
    ///
    /// The records of an [`Op::Append`] are encoded here, on the caller's
    /// thread, before the queue is locked: the writer thread only copies
    /// them, so encoding the next batch overlaps the previous `fdatasync`.
    pub fn submit(&self, op: Op) -> Result<u64, WalError> {
        self.enqueue(Queued::new(op, &self.shared, &self.salt), true)
    }

    /// Queues a hard state that only raises `commit`, without waking the
    /// writer: it goes with the next batch, whose sync writes it lazily
    /// anyway ([`Wal::sync_batch`]). Waking the writer for it alone cost two
    /// thread wakeups per commit (the writer's, then the caller's for a
    /// batch that wrote nothing); nothing should wait for its sequence
    /// number, which is why none is returned. A commit index not yet written
    /// when the process stops is re-learned from the leader, as Raft allows
    /// (§5.3: commit is volatile state); a clean shutdown writes it.
    pub fn submit_commit(&self, hs: HardState) -> Result<(), WalError> {
        self.enqueue(Queued::Other(Op::HardState(hs)), false).map(|_| ())
    }

    fn enqueue(&self, op: Queued, wake: bool) -> Result<u64, WalError> {
        let mut q = lock(&self.shared.queue);
        while q.ops.len() >= self.opts.queue_ops_max && !q.closed {
            q = Queue::wait(&self.shared.queue_cv, q);
        }
        if q.closed {
            drop(q);
            return Err(self.error());
        }
        q.next_seq += 1;
        let seq = q.next_seq;
        q.ops.push_back((seq, op));
        if wake {
            q.notify(&self.shared.queue_cv);
        }
        Ok(seq)
    }

    /// Blocks until operation `seq` is durable; returns the progress then.
    pub fn wait_durable(&self, seq: u64) -> Result<Durable, WalError> {
        let mut p = lock(&self.shared.progress);
        loop {
            if p.durable.seq >= seq {
                return Ok(p.durable);
            }
            if let Some(e) = &p.error {
                return Err(e.clone());
            }
            if p.stopped {
                return Err(WalError::Stopped);
            }
            p = wait_counted(&self.shared.progress_cv, p, |p| &mut p.waiting);
        }
    }

    /// The progress so far, or the fatal error that stopped the writer.
    pub fn durable(&self) -> Result<Durable, WalError> {
        let p = lock(&self.shared.progress);
        p.error.clone().map_or(Ok(p.durable), Err)
    }

    fn error(&self) -> WalError {
        lock(&self.shared.progress).error.clone().unwrap_or(WalError::Stopped)
    }

    /// A read handle implementing [`raft::Storage`].
    pub fn storage(&self) -> WalStorage {
        self.storage.clone()
    }

    /// Starts writing a snapshot (on the caller's thread); submit the finished
    /// file as [`Op::InstallSnapshot`].
    pub fn begin_snapshot(&self, meta: SnapshotMeta) -> Result<SnapshotWriter, WalError> {
        SnapshotWriter::create(self.fs.clone(), &self.snapshot_dir, meta)
    }

    /// Makes everything queued durable, stops the thread and reports the
    /// final progress (or the error that stopped it).
    pub fn shutdown(mut self) -> Result<Durable, WalError> {
        self.close_and_join();
        self.durable()
    }

    fn close_and_join(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queue_cv.notify_all();
        if let Some(t) = self.thread.take() {
            // A panic on the writer thread already marked progress stopped.
            let _ = t.join();
        }
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        self.close_and_join();
    }
}

/// Marks the writer stopped however the thread ends, panics included.
struct StopGuard<'a>(&'a Shared);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.progress).stopped = true;
        self.0.progress_cv.notify_all();
        let mut q = lock(&self.0.queue);
        q.closed = true;
        self.0.queue_cv.notify_all();
    }
}

fn run(mut wal: Wal, shared: &Shared, batch_bytes_max: u64, on_durable: Option<OnDurable>) {
    let _guard = StopGuard(shared);
    process(&mut wal, shared, batch_bytes_max, on_durable.as_ref());
    // A last sync without records writes a lazily held commit index.
    if lock(&shared.progress).error.is_none()
        && let Err(e) = wal.sync()
    {
        tracing::error!(error = %e, "WAL final sync failed");
        lock(&shared.progress).error = Some(e);
    }
}

fn process(wal: &mut Wal, shared: &Shared, batch_bytes_max: u64, on_durable: Option<&OnDurable>) {
    while let Some(batch) = next_batch(shared, batch_bytes_max) {
        let Some(seq) = batch.last().map(|(s, _)| *s) else {
            continue;
        };
        match apply(wal, batch, shared) {
            Ok((index, term)) => {
                let durable = Durable { seq, index, term };
                let mut progress = lock(&shared.progress);
                progress.durable = durable;
                if progress.waiting > 0 {
                    shared.progress_cv.notify_all();
                }
                drop(progress);
                if let Some(f) = on_durable {
                    f(durable);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "WAL write failed; the writer stops");
                // Close the queue and publish the error under the queue lock,
                // so no submission can slip in once the error is visible.
                let mut q = lock(&shared.queue);
                q.closed = true;
                lock(&shared.progress).error = Some(e);
                drop(q);
                return;
            }
        }
    }
}

/// Hands the buffer an append gave up back to the submitters.
fn recycle(wal: &mut Wal, shared: &Shared) {
    if let Some(buf) = wal.take_spare_buffer() {
        let mut buffers = lock(&shared.buffers);
        if buffers.len() < SPARE_BUFFERS_MAX && buf.capacity() > 0 {
            buffers.push(buf);
        }
    }
}

/// Waits for work; takes everything queued up to the byte limit. `None` once
/// closed and drained.
fn next_batch(shared: &Shared, batch_bytes_max: u64) -> Option<Vec<(u64, Queued)>> {
    let mut q = lock(&shared.queue);
    while q.ops.is_empty() {
        if q.closed {
            return None;
        }
        q = Queue::wait(&shared.queue_cv, q);
    }
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some((_, op)) = q.ops.front() {
        bytes += op.size_bytes();
        if bytes > batch_bytes_max && !batch.is_empty() {
            break;
        }
        batch.extend(q.ops.pop_front());
    }
    q.notify(&shared.queue_cv);
    Some(batch)
}

fn apply(wal: &mut Wal, batch: Vec<(u64, Queued)>, shared: &Shared) -> Result<(Index, Term), WalError> {
    for (_, op) in batch {
        match op {
            Queued::Append(batch) => {
                wal.append_encoded(batch)?;
                recycle(wal, shared);
            }
            Queued::Other(Op::Append(entries)) => wal.append(&entries)?,
            Queued::Other(Op::HardState(hs)) => wal.set_hard_state(hs)?,
            Queued::Other(Op::InstallSnapshot(snap)) => wal.install_snapshot(snap)?,
            Queued::Other(Op::Compact(index)) => wal.compact(index)?,
        }
    }
    wal.sync_batch()
}
