//! The two places a node's log can live, behind one face: the WAL (durable,
//! the default) or memory (tests and benchmarks).

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use raft::{
    Entry, EntryPayload, HardState, Index, InitialState, MemStorage, Membership, SnapshotMeta, Storage, StorageError,
    Term,
};
use wal::{Op, SnapshotFile, SnapshotWriter, WalStorage, WalWriter};

use crate::error::NodeError;

/// The read side the core sees.
#[derive(Clone, Debug)]
pub enum LogStorage {
    /// The WAL's in-memory index and segment files.
    Wal(WalStorage),
    /// A memory log.
    Memory(MemStorage),
}

impl Storage for LogStorage {
    fn initial_state(&self) -> InitialState {
        match self {
            LogStorage::Wal(s) => s.initial_state(),
            LogStorage::Memory(s) => s.initial_state(),
        }
    }
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        match self {
            LogStorage::Wal(s) => s.entries(lo, hi, max_bytes),
            LogStorage::Memory(s) => s.entries(lo, hi, max_bytes),
        }
    }
    fn term(&self, index: Index) -> Result<Term, StorageError> {
        match self {
            LogStorage::Wal(s) => s.term(index),
            LogStorage::Memory(s) => s.term(index),
        }
    }
    fn first_index(&self) -> Index {
        match self {
            LogStorage::Wal(s) => s.first_index(),
            LogStorage::Memory(s) => s.first_index(),
        }
    }
    fn last_index(&self) -> Index {
        match self {
            LogStorage::Wal(s) => s.last_index(),
            LogStorage::Memory(s) => s.last_index(),
        }
    }
    fn snapshot_meta(&self) -> SnapshotMeta {
        match self {
            LogStorage::Wal(s) => s.snapshot_meta(),
            LogStorage::Memory(s) => s.snapshot_meta(),
        }
    }
    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> (Bytes, bool) {
        match self {
            LogStorage::Wal(s) => s.snapshot_chunk(offset, max_len),
            LogStorage::Memory(s) => s.snapshot_chunk(offset, max_len),
        }
    }
}

/// The write side the core hands persists to.
pub enum Persister {
    /// The WAL's group-commit writer thread.
    Wal(Arc<WalWriter>),
    /// A memory log: everything is "durable" at once.
    Memory(MemStorage),
}

/// What happened to a write handed to the persister.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued with this sequence number; durable once the writer reports it.
    Queued(u64),
    /// Already durable (memory).
    Done,
}

/// A snapshot being written.
pub enum SnapshotSink {
    /// To a temporary file of the WAL.
    Wal(SnapshotWriter),
    /// To memory.
    Memory(SnapshotMeta, Vec<u8>),
}

/// A complete snapshot, ready to install.
pub enum SnapshotDone {
    /// A durable snapshot file.
    Wal(SnapshotFile),
    /// Bytes in memory.
    Memory(SnapshotMeta, Bytes),
}

fn storage_error(e: wal::WalError) -> NodeError {
    NodeError::Storage(e.to_string())
}

impl SnapshotSink {
    /// Appends bytes.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), NodeError> {
        match self {
            SnapshotSink::Wal(w) => w.write(chunk).map_err(storage_error),
            SnapshotSink::Memory(_, buf) => {
                buf.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// Makes the snapshot complete (and durable, for the WAL).
    pub fn finish(self) -> Result<SnapshotDone, NodeError> {
        match self {
            SnapshotSink::Wal(w) => w.finish().map(SnapshotDone::Wal).map_err(storage_error),
            SnapshotSink::Memory(meta, buf) => Ok(SnapshotDone::Memory(meta, Bytes::from(buf))),
        }
    }
}

impl io::Write for SnapshotSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        SnapshotSink::write(self, buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Persister {
    /// Hands a write over.
    pub fn submit(&self, op: Op) -> Result<Submitted, NodeError> {
        match self {
            Persister::Wal(w) => w.submit(op).map(Submitted::Queued).map_err(storage_error),
            Persister::Memory(m) => {
                match op {
                    Op::Append(entries) => m.append_owned(entries),
                    Op::HardState(hs) => m.set_hard_state(hs),
                    // Memory snapshots are installed through `install_memory_snapshot`.
                    Op::InstallSnapshot(_) | Op::Compact(_) => {}
                }
                Ok(Submitted::Done)
            }
        }
    }

    /// Records a hard state that only raised `commit`, with nothing to wait
    /// for (see [`WalWriter::submit_commit`](wal::WalWriter::submit_commit)).
    pub fn submit_commit(&self, hs: HardState) -> Result<(), NodeError> {
        match self {
            Persister::Wal(w) => w.submit_commit(hs).map_err(storage_error),
            Persister::Memory(m) => {
                m.set_hard_state(hs);
                Ok(())
            }
        }
    }

    /// Starts writing a snapshot described by `meta`.
    pub fn begin_snapshot(&self, meta: SnapshotMeta) -> Result<SnapshotSink, NodeError> {
        match self {
            Persister::Wal(w) => w.begin_snapshot(meta).map(SnapshotSink::Wal).map_err(storage_error),
            Persister::Memory(_) => Ok(SnapshotSink::Memory(meta, Vec::new())),
        }
    }

    /// Makes a complete snapshot the installed one.
    pub fn install(&self, done: SnapshotDone) -> Result<Submitted, NodeError> {
        match (self, done) {
            (Persister::Wal(_), SnapshotDone::Wal(file)) => self.submit(Op::InstallSnapshot(file)),
            (Persister::Memory(m), SnapshotDone::Memory(meta, data)) => {
                m.install_snapshot(meta, data);
                Ok(Submitted::Done)
            }
            _ => Err(NodeError::Storage("snapshot of the wrong kind for this storage".into())),
        }
    }
}

/// The first entry of a new cluster: every initial member writes the same
/// configuration at index 1, term 1, so their logs agree from the start.
pub fn bootstrap_entry(voters: impl IntoIterator<Item = u64>) -> (Entry, HardState) {
    let entry = Entry { term: 1, index: 1, payload: EntryPayload::Membership(Box::new(Membership::new(voters))) };
    (entry, HardState { term: 1, vote: 0, commit: 1 })
}

/// Reads a whole snapshot from storage, chunk by chunk, as a reader.
pub struct SnapshotReader<'a> {
    storage: &'a LogStorage,
    offset: u64,
    chunk: Bytes,
    done: bool,
}

impl<'a> SnapshotReader<'a> {
    /// A reader over `storage`'s current snapshot.
    pub fn new(storage: &'a LogStorage) -> Self {
        SnapshotReader { storage, offset: 0, chunk: Bytes::new(), done: false }
    }
}

impl io::Read for SnapshotReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const CHUNK: u64 = 1 << 20;
        if self.chunk.is_empty() && !self.done {
            let (chunk, done) = self.storage.snapshot_chunk(self.offset, CHUNK);
            if chunk.is_empty() && !done {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "snapshot ended early"));
            }
            self.offset += chunk.len() as u64;
            self.chunk = chunk;
            self.done = done;
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        bytes::Buf::advance(&mut self.chunk, n);
        Ok(n)
    }
}
