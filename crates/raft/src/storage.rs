//! The read side of durable storage.
//!
//! The asymmetry is deliberate (and trips up etcd users): the core only ever
//! *reads* storage, through [`Storage`]. Every write — entries, hard state,
//! snapshots — leaves the core as an [`Action`](crate::Action) that the driver
//! carries out, and the driver tells the core when it is durable
//! ([`Raft::on_persisted`](crate::Raft::on_persisted)). Until then the core keeps
//! the entries in its own "unstable" tail and answers from there.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use thiserror::Error;

use crate::message::SnapshotMeta;
use crate::types::{Entry, EntryPayload, HardState, Index, Membership, Term};

/// Why a storage read could not be answered.
///
/// There is no IO variant on purpose: a storage whose disk fails must stop the
/// process (a failed read or fsync is not retried — see "fsyncgate"), so the core
/// never has to decide what to do about it.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum StorageError {
    /// The index is at or below the snapshot: the entry was compacted away.
    #[error("log entry compacted")]
    Compacted,
    /// The index is past the last entry of the log.
    #[error("log entry not available")]
    Unavailable,
}

/// What a node starts from after a (re)start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialState {
    /// The last durable hard state.
    pub hard_state: HardState,
    /// The latest durable snapshot (index 0 if none).
    pub snapshot: SnapshotMeta,
    /// Every membership entry in the log after the snapshot, in index order:
    /// the latest one is the configuration in effect, the earlier ones are what
    /// a truncation reverts to. Storage keeps this list so that a restart does
    /// not have to read the whole log.
    pub log_memberships: Vec<(Index, Membership)>,
}

/// Read-only access to the durable log and snapshot.
///
/// A new cluster is bootstrapped by giving every initial member the same
/// first configuration: either a snapshot at index 0 whose meta carries it
/// ([`MemStorage::new_with_membership`]), or the same membership entry at
/// index 1, term 1 in every member's log (what the `node` runtime writes).
///
/// Contract for implementations: the log is contiguous from `first_index()` to
/// `last_index()` with no holes; `term(first_index() - 1)` is the snapshot's
/// term; reads never fail except as [`StorageError`] says.
pub trait Storage {
    /// The state to start from.
    fn initial_state(&self) -> InitialState;
    /// Entries `[lo, hi)`, stopping early once `max_bytes` is exceeded (at least
    /// one entry is always returned when `lo < hi`).
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError>;
    /// The term of the entry at `index`; the snapshot's term at its index.
    fn term(&self, index: Index) -> Result<Term, StorageError>;
    /// The first index still in the log (snapshot index + 1).
    fn first_index(&self) -> Index;
    /// The last index in the log (the snapshot index if the log is empty).
    fn last_index(&self) -> Index;
    /// What the latest snapshot covers.
    fn snapshot_meta(&self) -> SnapshotMeta;
    /// Up to `max_len` bytes of the latest snapshot's data, from `offset`.
    /// Returns the bytes and whether they reach the end of the snapshot.
    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> (Bytes, bool);
}

/// Sums entry sizes until `max_bytes` would be passed, always keeping one.
pub(crate) fn limit_size(entries: &mut Vec<Entry>, max_bytes: u64) {
    let mut total = 0u64;
    let keep = entries
        .iter()
        .position(|e| {
            total += e.size_bytes();
            total > max_bytes
        })
        .unwrap_or(entries.len())
        .max(1);
    entries.truncate(keep);
}

/// An in-memory [`Storage`]: the durable state of the simulator and of tests.
///
/// Cheap to clone; clones share the same log (the core reads through one handle
/// while the driver writes through another).
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    inner: Arc<RwLock<MemStorageCore>>,
}

/// The state behind a [`MemStorage`] handle.
#[derive(Clone, Debug, Default)]
pub struct MemStorageCore {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    snapshot_data: Bytes,
    /// `entries[i]` has index `snapshot.index + 1 + i`.
    entries: Vec<Entry>,
}

impl MemStorage {
    /// An empty log whose initial configuration is `membership` (as if a
    /// snapshot at index 0 carried it): how a new cluster is bootstrapped.
    pub fn new_with_membership(membership: Membership) -> Self {
        let storage = MemStorage::default();
        storage.wl().snapshot.membership = membership;
        storage
    }

    /// A deep copy that shares nothing with `self` (a crash-time image).
    pub fn deep_clone(&self) -> Self {
        MemStorage { inner: Arc::new(RwLock::new(self.rl().clone())) }
    }

    fn rl(&self) -> RwLockReadGuard<'_, MemStorageCore> {
        // A poisoned lock means a writer panicked mid-update: the state is suspect.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn wl(&self) -> RwLockWriteGuard<'_, MemStorageCore> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `hs` the durable hard state.
    pub fn set_hard_state(&self, hs: HardState) {
        self.wl().hard_state = hs;
    }

    /// The durable hard state.
    pub fn hard_state(&self) -> HardState {
        self.rl().hard_state
    }

    /// Appends `entries`, first cutting off any suffix at or after
    /// `entries[0].index` (conflict repair). Entries below the snapshot are
    /// ignored.
    ///
    /// # Panics
    /// If the entries would leave a hole in the log: a driver bug.
    pub fn append(&self, entries: &[Entry]) {
        self.wl().append(entries.to_vec());
    }

    /// [`MemStorage::append`] of entries the caller gives up: moved into
    /// the log, not cloned.
    pub fn append_owned(&self, entries: Vec<Entry>) {
        self.wl().append(entries);
    }

    /// Replaces the log prefix up to `meta.index` with a snapshot. The suffix
    /// after it is kept when the log holds the snapshot's last entry with the
    /// same term (§7); otherwise the whole log is discarded.
    pub fn install_snapshot(&self, meta: SnapshotMeta, data: Bytes) {
        self.wl().install_snapshot(meta, data);
    }

    /// Everything in the log, for checkers and tests.
    pub fn all_entries(&self) -> Vec<Entry> {
        self.rl().entries.clone()
    }

    /// The latest snapshot's data.
    pub fn snapshot_data(&self) -> Bytes {
        self.rl().snapshot_data.clone()
    }
}

impl MemStorageCore {
    fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    fn append(&mut self, mut entries: Vec<Entry>) {
        let Some(first) = entries.first() else { return };
        let skip = (self.snapshot.index + 1).saturating_sub(first.index) as usize;
        let Some(first) = entries.get(skip) else { return };
        assert!(
            first.index <= self.last_index() + 1,
            "append at {} would leave a hole after {}",
            first.index,
            self.last_index()
        );
        self.entries.truncate((first.index - self.snapshot.index - 1) as usize);
        entries.drain(..skip);
        // One copy of the whole run, not a push per entry.
        self.entries.append(&mut entries);
    }

    fn install_snapshot(&mut self, meta: SnapshotMeta, data: Bytes) {
        if meta.index <= self.snapshot.index {
            return;
        }
        let keep_suffix = meta.index <= self.last_index()
            && self.entries[(meta.index - self.snapshot.index - 1) as usize].term == meta.term;
        if keep_suffix {
            self.entries.drain(..(meta.index - self.snapshot.index) as usize);
        } else {
            self.entries.clear();
        }
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.snapshot = meta;
        self.snapshot_data = data;
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> InitialState {
        let core = self.rl();
        let log_memberships = core
            .entries
            .iter()
            .filter_map(|e| match &e.payload {
                EntryPayload::Membership(m) => Some((e.index, Membership::clone(m))),
                _ => None,
            })
            .collect();
        InitialState { hard_state: core.hard_state, snapshot: core.snapshot.clone(), log_memberships }
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        let core = self.rl();
        if lo <= core.snapshot.index {
            return Err(StorageError::Compacted);
        }
        if hi > core.last_index() + 1 {
            return Err(StorageError::Unavailable);
        }
        let offset = core.snapshot.index + 1;
        let mut out = core.entries[(lo - offset) as usize..(hi - offset) as usize].to_vec();
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        let core = self.rl();
        if index == core.snapshot.index {
            return Ok(core.snapshot.term);
        }
        if index < core.snapshot.index {
            return Err(StorageError::Compacted);
        }
        if index > core.last_index() {
            return Err(StorageError::Unavailable);
        }
        Ok(core.entries[(index - core.snapshot.index - 1) as usize].term)
    }

    fn first_index(&self) -> Index {
        self.rl().snapshot.index + 1
    }

    fn last_index(&self) -> Index {
        self.rl().last_index()
    }

    fn snapshot_meta(&self) -> SnapshotMeta {
        self.rl().snapshot.clone()
    }

    fn snapshot_chunk(&self, offset: u64, max_len: u64) -> (Bytes, bool) {
        let core = self.rl();
        let len = core.snapshot_data.len() as u64;
        let start = offset.min(len);
        let end = start.saturating_add(max_len).min(len);
        (core.snapshot_data.slice(start as usize..end as usize), end == len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term) -> Entry {
        Entry { index, term, payload: EntryPayload::Noop }
    }

    #[test]
    fn append_truncates_conflicting_suffix() {
        let s = MemStorage::default();
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        s.append(&[entry(2, 2)]);
        assert_eq!(s.last_index(), 2);
        assert_eq!(s.term(2), Ok(2));
        assert_eq!(s.term(3), Err(StorageError::Unavailable));
    }

    #[test]
    fn snapshot_keeps_matching_suffix_and_drops_other_logs() {
        let s = MemStorage::default();
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 2)]);
        s.install_snapshot(SnapshotMeta { index: 2, term: 1, ..Default::default() }, Bytes::new());
        assert_eq!((s.first_index(), s.last_index()), (3, 3));
        assert_eq!(s.term(1), Err(StorageError::Compacted));
        assert_eq!(s.entries(2, 3, u64::MAX), Err(StorageError::Compacted));

        let t = MemStorage::default();
        t.append(&[entry(1, 1), entry(2, 1)]);
        t.install_snapshot(SnapshotMeta { index: 2, term: 3, ..Default::default() }, Bytes::new());
        assert_eq!((t.first_index(), t.last_index()), (3, 2));
        assert_eq!(t.term(2), Ok(3));
    }

    #[test]
    fn entries_respect_max_bytes_but_return_one() {
        let s = MemStorage::default();
        s.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        assert_eq!(s.entries(1, 4, 0).map(|e| e.len()), Ok(1));
        assert_eq!(s.entries(1, 4, 48).map(|e| e.len()), Ok(2));
    }
}
