//! Raft's safety properties (Figure 3), checked after every simulated step.
//!
//! The checker keeps a *shadow* of each node's log as a list of
//! `(term, prefix hash)`, where the prefix hash covers every entry up to that
//! index. Log Matching then costs O(1) per pair of nodes in the common case: find
//! the highest index where the two logs have the same term and compare the
//! prefix hashes there. The committed prefix of the cluster is kept the same
//! way, so Leader Completeness and "committed entries never change" are
//! comparisons too.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use raft::{Entry, EntryPayload, Index, NodeId, Term};

/// One index of a shadow log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShadowEntry {
    /// The entry's term.
    pub term: Term,
    /// Hash of every entry from 1 up to and including this one.
    pub prefix: u64,
}

/// A log as the checker sees it: index `i` at position `i` (position 0 is the
/// empty prefix).
pub type ShadowLog = Vec<ShadowEntry>;

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

fn entry_hash(prev: u64, e: &Entry) -> u64 {
    let mut h = DefaultHasher::new();
    prev.hash(&mut h);
    e.term.hash(&mut h);
    match &e.payload {
        EntryPayload::Noop => 0u8.hash(&mut h),
        EntryPayload::Command(data) => {
            1u8.hash(&mut h);
            data.hash(&mut h);
        }
        EntryPayload::Membership(m) => {
            2u8.hash(&mut h);
            m.voters.hash(&mut h);
            m.voters_outgoing.hash(&mut h);
            m.learners.hash(&mut h);
        }
    }
    h.finish()
}

/// An empty shadow log.
pub fn empty_shadow() -> ShadowLog {
    vec![ShadowEntry { term: 0, prefix: 0 }]
}

/// Appends `entries` to `log`, cutting whatever was at or after the first.
pub fn shadow_append(log: &mut ShadowLog, entries: &[Entry]) {
    let Some(first) = entries.first() else { return };
    assert!(first.index as usize <= log.len(), "shadow log hole at {}", first.index);
    log.truncate(first.index as usize);
    for e in entries {
        let prev = log[log.len() - 1].prefix;
        log.push(ShadowEntry { term: e.term, prefix: entry_hash(prev, e) });
    }
}

/// The cluster-wide safety checker.
#[derive(Clone, Debug, Default)]
pub struct Invariants {
    /// Every leader ever seen, by term (Election Safety).
    leaders: BTreeMap<Term, NodeId>,
    /// The longest committed prefix any node has reported.
    committed: ShadowLog,
    /// For each index of `committed`: the term of the node that first
    /// reported it committed. The entry was committed in that term or an
    /// earlier one (a node learns of commits from leaders of its term or
    /// older), so it bounds the term it was committed in from above.
    commit_terms: Vec<Term>,
    /// The last term each node was seen leading (to spot new leaderships).
    led_term: BTreeMap<NodeId, Term>,
    /// The commit index each node last reported, in this incarnation.
    commit_seen: BTreeMap<NodeId, Index>,
}

/// What one node looks like to the checker after a step.
pub struct NodeView<'a> {
    /// The node.
    pub id: NodeId,
    /// Its term.
    pub term: Term,
    /// Whether it is leader.
    pub is_leader: bool,
    /// Its commit index.
    pub commit: Index,
    /// How far its state machine has applied.
    pub applied: Index,
    /// Its log.
    pub log: &'a ShadowLog,
}

impl Invariants {
    /// A checker for a new cluster.
    pub fn new() -> Self {
        Invariants { committed: empty_shadow(), commit_terms: vec![0], ..Default::default() }
    }

    /// The committed prefix: what a snapshot at `index` stands for.
    pub fn committed_prefix(&self, index: Index) -> Option<ShadowLog> {
        self.committed.get(..=index as usize).map(|s| s.to_vec())
    }

    /// Length of the committed prefix seen so far.
    pub fn committed_len(&self) -> Index {
        (self.committed.len() - 1) as Index
    }

    /// A node restarted: its commit index may legitimately start lower.
    pub fn on_restart(&mut self, id: NodeId) {
        self.commit_seen.remove(&id);
        self.led_term.remove(&id);
    }

    /// Checks one node after it took a step, against everyone else's log.
    pub fn check(&mut self, node: &NodeView<'_>, others: &[(NodeId, &ShadowLog)]) -> Result<(), Violation> {
        self.check_election_safety(node)?;
        for (other, log) in others {
            check_log_matching(node.id, node.log, *other, log)?;
        }
        self.check_commit(node)?;
        self.check_leader_completeness(node)?;
        if node.applied > node.commit {
            return Err(Violation(format!(
                "node {} applied {} past its commit {}",
                node.id, node.applied, node.commit
            )));
        }
        Ok(())
    }

    /// Election Safety: at most one leader per term.
    fn check_election_safety(&mut self, node: &NodeView<'_>) -> Result<(), Violation> {
        if !node.is_leader {
            return Ok(());
        }
        let leader = *self.leaders.entry(node.term).or_insert(node.id);
        if leader != node.id {
            return Err(Violation(format!("two leaders in term {}: {} and {}", node.term, leader, node.id)));
        }
        Ok(())
    }

    /// Commit never goes back, and what is committed never changes.
    fn check_commit(&mut self, node: &NodeView<'_>) -> Result<(), Violation> {
        let seen = self.commit_seen.entry(node.id).or_insert(0);
        if node.commit < *seen {
            return Err(Violation(format!("node {} commit went back from {} to {}", node.id, seen, node.commit)));
        }
        *seen = node.commit;
        let c = node.commit as usize;
        let Some(mine) = node.log.get(c) else {
            return Err(Violation(format!("node {} commit {} beyond its log of {}", node.id, c, node.log.len() - 1)));
        };
        let known = self.committed.len() - 1;
        let overlap = c.min(known);
        if node.log[overlap] != self.committed[overlap] {
            return Err(Violation(format!(
                "node {} committed a different entry at {overlap} (State Machine Safety)",
                node.id
            )));
        }
        if c > known {
            self.committed.extend_from_slice(&node.log[known + 1..=c]);
            self.commit_terms.resize(c + 1, node.term);
        }
        debug_assert_eq!(self.committed[c], *mine);
        Ok(())
    }

    /// Leader Completeness (§5.4.3): a leader of term `T` holds every entry
    /// committed in a term before `T`. Entries committed in `T` or later need
    /// not be there: a candidate that was paused (or whose votes were slow)
    /// may win an old term after newer terms committed more.
    fn check_leader_completeness(&mut self, node: &NodeView<'_>) -> Result<(), Violation> {
        if !node.is_leader || self.led_term.get(&node.id) == Some(&node.term) {
            return Ok(());
        }
        self.led_term.insert(node.id, node.term);
        // Committing an index commits every index before it, so everything up
        // to the last index known committed before `T` was committed before `T`.
        let c = self.commit_terms.iter().rposition(|&t| t < node.term).unwrap_or(0);
        if node.log.get(c) != Some(&self.committed[c]) {
            return Err(Violation(format!(
                "leader {} of term {} lacks committed entry {c} (Leader Completeness)",
                node.id, node.term
            )));
        }
        Ok(())
    }
}

/// Log Matching: if two logs have an entry with the same index and term, they
/// are identical up to it. Terms never decrease along a log, so checking the
/// highest such index covers all lower ones.
pub fn check_log_matching(a: NodeId, la: &ShadowLog, b: NodeId, lb: &ShadowLog) -> Result<(), Violation> {
    let mut i = la.len().min(lb.len()) - 1;
    while i > 0 && la[i].term != lb[i].term {
        i -= 1;
    }
    if la[i].prefix != lb[i].prefix {
        return Err(Violation(format!(
            "logs of {a} and {b} agree on the term at {i} but differ before (Log Matching)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn cmd(index: Index, term: Term, v: &str) -> Entry {
        Entry { index, term, payload: EntryPayload::Command(Bytes::from(v.to_string())) }
    }

    fn log(entries: &[Entry]) -> ShadowLog {
        let mut l = empty_shadow();
        shadow_append(&mut l, entries);
        l
    }

    #[test]
    fn log_matching_catches_divergent_prefix() {
        let a = log(&[cmd(1, 1, "x"), cmd(2, 2, "y")]);
        let b = log(&[cmd(1, 1, "z"), cmd(2, 2, "y")]);
        assert!(check_log_matching(1, &a, 2, &b).is_err());
        let c = log(&[cmd(1, 1, "x"), cmd(2, 3, "q")]);
        assert!(check_log_matching(1, &a, 3, &c).is_ok(), "diverging after a common prefix is fine");
    }

    fn view(id: NodeId, term: Term, is_leader: bool, commit: Index, log: &ShadowLog) -> NodeView<'_> {
        NodeView { id, term, is_leader, commit, applied: commit, log }
    }

    #[test]
    fn catches_two_leaders_in_a_term() {
        let mut inv = Invariants::new();
        let l = empty_shadow();
        assert!(inv.check(&view(1, 1, true, 0, &l), &[]).is_ok());
        assert!(inv.check(&view(2, 1, true, 0, &l), &[]).is_err());
    }

    #[test]
    fn catches_changed_committed_entry_and_commit_going_back() {
        let mut inv = Invariants::new();
        let a = log(&[cmd(1, 1, "x")]);
        let b = log(&[cmd(1, 1, "y")]);
        assert!(inv.check(&view(1, 1, false, 1, &a), &[]).is_ok());
        assert!(inv.check(&view(2, 1, false, 1, &b), &[]).is_err());
        assert!(inv.check(&view(1, 1, false, 0, &a), &[]).is_err(), "commit went back");
    }

    #[test]
    fn catches_applied_past_commit() {
        let mut inv = Invariants::new();
        let a = log(&[cmd(1, 1, "x"), cmd(2, 1, "y")]);
        let mut v = view(1, 1, false, 1, &a);
        assert!(inv.check(&v, &[]).is_ok());
        v.applied = 2;
        assert!(inv.check(&v, &[]).is_err(), "applied 2 with commit 1");
    }

    #[test]
    fn catches_leader_missing_committed_entry() {
        let mut inv = Invariants::new();
        let a = log(&[cmd(1, 1, "x"), cmd(2, 1, "y")]);
        assert!(inv.check(&view(1, 1, false, 2, &a), &[]).is_ok());
        let short = log(&[cmd(1, 1, "x")]);
        assert!(inv.check(&view(2, 2, true, 1, &short), &[]).is_err());
    }

    #[test]
    fn a_late_leader_of_an_old_term_need_not_hold_newer_commits() {
        let mut inv = Invariants::new();
        let a = log(&[cmd(1, 1, "x"), cmd(2, 3, "y")]);
        // Entry 1 committed in term 1, entry 2 in term 3.
        assert!(inv.check(&view(1, 1, false, 1, &a), &[]).is_ok());
        assert!(inv.check(&view(1, 3, false, 2, &a), &[]).is_ok());
        let short = log(&[cmd(1, 1, "x")]);
        // A candidate of term 2, paused, wins term 2 after term 3 committed entry 2.
        assert!(inv.check(&view(2, 2, true, 1, &short), &[]).is_ok());
        // A leader of term 4 must hold entry 2.
        assert!(inv.check(&view(3, 4, true, 1, &short), &[]).is_err());
        // But a leader of term 2 must hold entry 1, committed in term 1.
        let mut inv = Invariants::new();
        assert!(inv.check(&view(1, 1, false, 1, &a), &[]).is_ok());
        let empty = empty_shadow();
        assert!(inv.check(&view(2, 2, true, 0, &empty), &[]).is_err());
    }
}
