//! [`WalStorage`]: the read side, implementing [`raft::Storage`].

use std::sync::{Arc, RwLock, RwLockReadGuard};

use bytes::Bytes;
use raft::{Entry, Index, InitialState, SnapshotMeta, Storage, StorageError, Term};

use crate::index::LogIndex;

/// A read handle on the durable log, hard state and snapshot.
///
/// Cheap to clone. It shows what the writer has made durable: entries appear
/// after the sync that made them durable (truncations and compactions
/// before they reach the disk, so a read never meets a half-removed file).
/// Recent entries come from memory, older ones from the segment files.
///
/// # Panics
/// [`raft::Storage`] reads cannot fail with an IO error, by design: a disk
/// that fails a read must stop the node, not be worked around. A read error
/// (or a record that changed on disk since it was verified) therefore panics
/// with a message naming the file and byte offset.
#[derive(Clone, Debug)]
pub struct WalStorage {
    index: Arc<RwLock<LogIndex>>,
}

impl WalStorage {
    pub(crate) fn new(index: Arc<RwLock<LogIndex>>) -> Self {
        WalStorage { index }
    }

    fn read(&self) -> RwLockReadGuard<'_, LogIndex> {
        // The writer updates the index in small steps that leave it
        // consistent, so a panic elsewhere does not make it unreadable.
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The durable hard state.
    pub fn hard_state(&self) -> raft::HardState {
        self.read().hard_state
    }

    /// The last `(index, term)` of the durable log.
    pub fn last(&self) -> (Index, Term) {
        self.read().last()
    }
}

impl Storage for WalStorage {
    fn initial_state(&self) -> InitialState {
        let idx = self.read();
        let mut hard_state = idx.hard_state;
        // Installing a snapshot commits what it covers, whether or not a hard
        // state saying so reached the disk before a crash.
        hard_state.commit = hard_state.commit.max(idx.snapshot.index);
        InitialState { hard_state, snapshot: idx.snapshot.clone(), log_memberships: idx.memberships.clone() }
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        let idx = self.read();
        if lo <= idx.snapshot.index {
            return Err(StorageError::Compacted);
        }
        if hi > idx.last_index + 1 {
            return Err(StorageError::Unavailable);
        }
        Ok(idx.entries(lo, hi, max_bytes))
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        let idx = self.read();
        if index < idx.snapshot.index {
            return Err(StorageError::Compacted);
        }
        idx.term(index).ok_or(StorageError::Unavailable)
    }

    fn first_index(&self) -> Index {
        self.read().snapshot.index + 1
    }

    fn last_index(&self) -> Index {
        self.read().last_index
    }

    fn snapshot_meta(&self) -> SnapshotMeta {
        self.read().snapshot.clone()
    }

    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> (Bytes, bool) {
        match &self.read().snapshot_file {
            Some(file) => file.read_chunk(offset, max_len),
            None => (Bytes::new(), true),
        }
    }
}
