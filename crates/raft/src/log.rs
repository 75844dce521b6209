//! The node's view of its log: the durable part in [`Storage`] followed by an
//! unstable tail of entries handed to the driver but not yet reported durable.

use crate::storage::{Storage, StorageError, limit_size};
use crate::types::{Entry, Index, Term};

/// The log as the algorithm sees it.
///
/// Indices: `first_index() ..= last_index()` are readable; `committed` is the
/// highest index known committed (§5.3); `applied` the highest handed out for
/// applying; `persisted` the highest index known durable *and* part of this log
/// (a truncation lowers it).
#[derive(Debug)]
pub struct RaftLog<S> {
    storage: S,
    /// Entries not yet reported durable; `unstable[i].index == unstable_offset + i`.
    unstable: Vec<Entry>,
    unstable_offset: Index,
    committed: Index,
    applied: Index,
    persisted: Index,
}

impl<S: Storage> RaftLog<S> {
    /// The log that storage holds, with everything up to `committed` known committed.
    pub fn new(storage: S, committed: Index) -> Self {
        let last = storage.last_index();
        let snapshot_index = storage.first_index() - 1;
        RaftLog {
            storage,
            unstable: Vec::new(),
            unstable_offset: last + 1,
            // Commit is persisted only up to the durable log (see Raft::hard_state),
            // but clamp anyway: never trust a commit beyond what we hold.
            committed: committed.clamp(snapshot_index, last),
            applied: snapshot_index,
            persisted: last,
        }
    }

    /// The storage the log reads from.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The first readable index (after the snapshot).
    pub fn first_index(&self) -> Index {
        self.storage.first_index()
    }

    /// The index of the last entry (or of the snapshot, if the log is empty).
    pub fn last_index(&self) -> Index {
        match self.unstable.last() {
            Some(e) => e.index,
            None => self.storage.last_index(),
        }
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> Term {
        self.term(self.last_index()).unwrap_or(0)
    }

    /// The highest committed index.
    pub fn committed(&self) -> Index {
        self.committed
    }

    /// The highest index handed out for applying.
    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The highest index durable on this node.
    pub fn persisted(&self) -> Index {
        self.persisted
    }

    /// The snapshot's index (0 if none).
    pub fn snapshot_index(&self) -> Index {
        self.storage.first_index() - 1
    }

    /// The term of the entry at `index`, or `None` if it is compacted or beyond
    /// the end of the log. Index 0 has term 0.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index >= self.unstable_offset {
            return self.unstable.get((index - self.unstable_offset) as usize).map(|e| e.term);
        }
        if index == 0 {
            return Some(0);
        }
        self.storage.term(index).ok()
    }

    /// Whether the entry at `index` has `term` (the consistency check, §5.3).
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// Whether a log ending at (`last_term`, `last_index`) is at least as
    /// up-to-date as this one (§5.4.1): later last term wins, then longer log.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Entries `[lo, hi)` up to about `max_bytes` (at least one).
    pub fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        if lo < self.first_index() {
            return Err(StorageError::Compacted);
        }
        if hi > self.last_index() + 1 {
            return Err(StorageError::Unavailable);
        }
        let mut out = if lo < self.unstable_offset {
            self.storage.entries(lo, hi.min(self.unstable_offset), max_bytes)?
        } else {
            Vec::new()
        };
        let stored_all = out.last().is_none_or(|e| e.index + 1 == hi.min(self.unstable_offset));
        if hi > self.unstable_offset && stored_all {
            let from = lo.max(self.unstable_offset) - self.unstable_offset;
            let to = hi - self.unstable_offset;
            out.extend_from_slice(&self.unstable[from as usize..to as usize]);
        }
        limit_size(&mut out, max_bytes);
        Ok(out)
    }

    /// The last index at or before `upto` whose term is `term`, if the log has
    /// any entry of that term there (the leader's side of fast backtracking).
    pub fn last_index_of_term(&self, term: Term, upto: Index) -> Option<Index> {
        let mut index = upto.min(self.last_index());
        loop {
            let t = self.term(index)?;
            if t == term {
                return Some(index);
            }
            if t < term || index == 0 {
                return None;
            }
            index -= 1;
        }
    }

    /// The first index of the term of the entry at `index` (the follower's side
    /// of fast backtracking). Stops at the first readable index.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let Some(term) = self.term(index) else { return index };
        let floor = self.first_index().max(1);
        let mut i = index;
        while i > floor && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Appends entries created by this node's leader (no conflict possible).
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        assert!(first.index > self.committed, "append at {} would overwrite commit {}", first.index, self.committed);
        if first.index == self.unstable_offset + self.unstable.len() as Index {
            self.unstable.extend_from_slice(entries);
        } else if first.index > self.unstable_offset {
            self.unstable.truncate((first.index - self.unstable_offset) as usize);
            self.unstable.extend_from_slice(entries);
        } else {
            // The new entries replace part of the durable log: they all become unstable.
            self.unstable = entries.to_vec();
            self.unstable_offset = first.index;
        }
        self.persisted = self.persisted.min(first.index - 1);
    }

    /// The AppendEntries receiver's rules 3–4 (Figure 2): skips entries already
    /// present, truncates at the first conflicting one and appends the rest.
    /// Returns the entries actually appended (to be persisted).
    pub fn append_from_leader(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        let first_new = entries.iter().position(|e| !self.matches(e.index, e.term));
        let Some(first_new) = first_new else { return Vec::new() };
        let new = entries[first_new..].to_vec();
        self.append(&new);
        new
    }

    /// Marks everything up to `index` committed. Commit never goes back.
    pub fn commit_to(&mut self, index: Index) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(index <= self.last_index(), "commit {index} beyond last index {}", self.last_index());
        self.committed = index;
        true
    }

    /// The driver reports entries up to `(index, term)` durable. Ignored unless
    /// the entry is still in the unstable tail with that term (a later
    /// truncation may have replaced it). Returns whether anything changed.
    pub fn stable_to(&mut self, index: Index, term: Term) -> bool {
        if index < self.unstable_offset || self.term(index) != Some(term) {
            return false;
        }
        let stable = (index + 1 - self.unstable_offset) as usize;
        self.unstable.drain(..stable);
        self.unstable_offset = index + 1;
        self.persisted = index;
        true
    }

    /// The committed, durable entries not yet handed out, up to `max_bytes`,
    /// marking them handed out.
    pub fn next_to_apply(&mut self, max_bytes: u64) -> Vec<Entry> {
        let hi = self.committed.min(self.persisted);
        if hi <= self.applied {
            return Vec::new();
        }
        match self.entries(self.applied + 1, hi + 1, max_bytes) {
            Ok(entries) => {
                if let Some(last) = entries.last() {
                    self.applied = last.index;
                }
                entries
            }
            // Compacted: the application snapshotted past `applied` itself.
            Err(_) => Vec::new(),
        }
    }

    /// After a snapshot at `(index, term)` became the durable state (storage
    /// already reflects it): everything it covers is committed and applied, and
    /// the unstable tail survives only if it still continues the log.
    pub fn restore(&mut self, index: Index, term: Term) {
        if index >= self.unstable_offset {
            let covered = (index + 1 - self.unstable_offset) as usize;
            let continues = self.unstable.get(covered - 1).is_some_and(|e| e.term == term);
            if continues {
                self.unstable.drain(..covered);
            } else {
                self.unstable.clear();
            }
        } else if self.unstable_offset > self.storage.last_index() + 1 {
            // Storage dropped the entries the tail was stacked on.
            self.unstable.clear();
        }
        self.unstable_offset = match self.unstable.first() {
            Some(first) => first.index,
            None => self.storage.last_index() + 1,
        };
        self.committed = self.committed.max(index);
        self.applied = self.applied.max(index);
        self.persisted = self.persisted.max(index).min(self.unstable_offset - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use crate::types::EntryPayload;

    fn e(index: Index, term: Term) -> Entry {
        Entry { index, term, payload: EntryPayload::Noop }
    }

    fn log_with(stored: &[(Index, Term)]) -> RaftLog<MemStorage> {
        let s = MemStorage::default();
        s.append(&stored.iter().map(|&(i, t)| e(i, t)).collect::<Vec<_>>());
        RaftLog::new(s, 0)
    }

    #[test]
    fn reads_span_storage_and_unstable() {
        let mut log = log_with(&[(1, 1), (2, 1)]);
        log.append(&[e(3, 2), e(4, 2)]);
        assert_eq!(log.last_index(), 4);
        let got: Vec<Index> = log.entries(1, 5, u64::MAX).unwrap_or_default().iter().map(|e| e.index).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert_eq!(log.persisted(), 2);
    }

    #[test]
    fn conflict_truncates_and_lowers_persisted() {
        let mut log = log_with(&[(1, 1), (2, 1), (3, 1)]);
        let new = log.append_from_leader(vec![e(2, 1), e(3, 2), e(4, 2)]);
        assert_eq!(new.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.persisted(), 2);
        assert!(log.append_from_leader(vec![e(3, 2)]).is_empty(), "duplicates append nothing");
    }

    #[test]
    fn stale_persist_report_is_ignored() {
        let mut log = log_with(&[]);
        log.append(&[e(1, 1), e(2, 1)]);
        log.append_from_leader(vec![e(2, 2)]);
        assert!(!log.stable_to(2, 1), "entry 2 of term 1 was replaced");
        assert!(log.stable_to(2, 2));
        assert_eq!(log.persisted(), 2);
    }

    #[test]
    fn apply_waits_for_commit_and_durability() {
        let mut log = log_with(&[(1, 1)]);
        log.append(&[e(2, 1)]);
        log.commit_to(2);
        assert_eq!(log.next_to_apply(u64::MAX).len(), 1, "entry 2 is not durable yet");
        log.storage().append(&[e(2, 1)]);
        assert!(log.stable_to(2, 1));
        assert_eq!(log.next_to_apply(u64::MAX).len(), 1);
        assert!(log.next_to_apply(u64::MAX).is_empty());
    }

    #[test]
    fn backtracking_helpers() {
        let log = log_with(&[(1, 1), (2, 1), (3, 3), (4, 3), (5, 3), (6, 5)]);
        assert_eq!(log.first_index_of_term_at(5), 3);
        assert_eq!(log.last_index_of_term(3, 6), Some(5));
        assert_eq!(log.last_index_of_term(2, 6), None);
        assert_eq!(log.last_index_of_term(1, 6), Some(2));
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let log = log_with(&[(1, 1), (2, 2)]);
        assert!(log.is_up_to_date(1, 3));
        assert!(log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(1, 2));
        assert!(!log.is_up_to_date(9, 1));
    }
}
