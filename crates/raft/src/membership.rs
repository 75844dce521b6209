//! Which configuration is in effect, and which ones a truncation would revert to.
//!
//! A configuration takes effect as soon as its entry is in the log (thesis
//! §4.1), so the node keeps every configuration entry that is not yet known to
//! be superseded by a committed one: if the log is cut, the latest surviving one
//! is in effect again.

use crate::types::{Entry, EntryPayload, Index, Membership};

/// The configurations in the log, oldest first. Never empty: the first is the
/// one of the snapshot (or the bootstrap configuration at index 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipLog {
    history: Vec<(Index, Membership)>,
}

impl MembershipLog {
    /// The configuration of a snapshot at `index`, followed by those in the log after it.
    pub fn new(snapshot_index: Index, snapshot: Membership, in_log: Vec<(Index, Membership)>) -> Self {
        let mut history = vec![(snapshot_index, snapshot)];
        history.extend(in_log.into_iter().filter(|(i, _)| *i > snapshot_index));
        MembershipLog { history }
    }

    /// The configuration in effect.
    pub fn current(&self) -> &Membership {
        &self.latest().1
    }

    /// The index of the entry that holds the configuration in effect.
    pub fn current_index(&self) -> Index {
        self.latest().0
    }

    fn latest(&self) -> &(Index, Membership) {
        // Invariant: never empty (constructed with one, and `on_append` and
        // `on_snapshot` never remove the first).
        &self.history[self.history.len() - 1]
    }

    /// Entries were appended from `entries[0].index` on, replacing whatever was
    /// there: forget configurations that were cut, adopt the new ones. Returns
    /// whether the configuration in effect changed.
    pub fn on_append(&mut self, entries: &[Entry]) -> bool {
        let Some(first) = entries.first() else { return false };
        let before = self.current_index();
        let keep = self.history.iter().skip(1).take_while(|(i, _)| *i < first.index).count() + 1;
        self.history.truncate(keep);
        for entry in entries {
            if let EntryPayload::Membership(m) = &entry.payload {
                self.history.push((entry.index, Membership::clone(m)));
            }
        }
        self.current_index() != before
    }

    /// A snapshot at `index` with configuration `membership` replaced the log up
    /// to `index`; configurations after it survive if the log suffix did.
    pub fn on_snapshot(&mut self, index: Index, membership: Membership, kept_suffix: bool) {
        let mut history = vec![(index, membership)];
        if kept_suffix {
            history.extend(self.history.iter().filter(|(i, _)| *i > index).cloned());
        }
        self.history = history;
    }

    /// The configuration in effect at `index` (the latest entry at or before it).
    pub fn at(&self, index: Index) -> &Membership {
        let found = self.history.iter().rev().find(|(i, _)| *i <= index);
        &found.unwrap_or(&self.history[0]).1
    }

    /// The log up to `index` was compacted into a snapshot: configurations
    /// before the one in effect at `index` can no longer be reverted to.
    pub fn on_compact(&mut self, index: Index) {
        let in_effect = self.history.iter().rposition(|(i, _)| *i <= index).unwrap_or(0);
        self.history.drain(..in_effect);
    }

    /// Whether a configuration entry after `committed` is in the log: a change
    /// that is not yet committed (only one may be in flight).
    pub fn has_uncommitted_change(&self, committed: Index) -> bool {
        self.current_index() > committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(index: Index, voters: &[u64]) -> Entry {
        Entry { index, term: 1, payload: EntryPayload::Membership(Box::new(Membership::new(voters.iter().copied()))) }
    }

    #[test]
    fn truncation_reverts_to_the_previous_configuration() {
        let mut m = MembershipLog::new(0, Membership::new([1, 2, 3]), vec![]);
        assert!(m.on_append(&[conf(5, &[1, 2, 3, 4])]));
        assert_eq!(m.current().voters.len(), 4);
        let noop = Entry { index: 5, term: 2, payload: EntryPayload::Noop };
        assert!(m.on_append(&[noop]), "entry 5 was cut: back to three voters");
        assert_eq!(m.current(), &Membership::new([1, 2, 3]));
        assert_eq!(m.current_index(), 0);
    }

    #[test]
    fn snapshot_replaces_history() {
        let mut m = MembershipLog::new(0, Membership::new([1]), vec![(3, Membership::new([1, 2]))]);
        m.on_snapshot(4, Membership::new([1, 2]), true);
        assert_eq!(m.current_index(), 4);
        assert!(!m.has_uncommitted_change(4));
    }
}
