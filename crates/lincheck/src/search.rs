//! The search for a linearization of one key's operations: Wing & Gong's
//! algorithm with Lowe's just-in-time linearization and memoization of
//! (linearized set, value), as in Porcupine's `checker.go`.
//!
//! Calls and returns are entries of one list sorted by time. Walking it from
//! the head, a call entry is an operation that may be linearized now: if the
//! model accepts its result and the pair (linearized set, value) is new, the
//! operation is *lifted* out of the list (call and return) and the walk
//! restarts at the head. Reaching a return entry means that operation had to
//! be linearized already and was not: undo the last choice (*unlift*, dancing
//! links) and try the next call after it. The search succeeds when every
//! completed operation is linearized: the unknown-outcome ones left can go
//! last, where they change nothing anyone saw.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::time::Instant;

use super::history::Operation;
use super::model::{self, Step, Value};

/// Why a search gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// The time budget ran out.
    Time,
    /// The step budget ran out.
    Steps,
}

/// Counts search steps against the budget; shared by all keys of a check.
#[derive(Debug)]
pub(crate) struct Meter {
    deadline: Option<Instant>,
    max_steps: u64,
    /// Steps taken so far.
    pub(crate) steps: u64,
    /// Memo entries stored so far.
    pub(crate) memo_entries: u64,
}

/// How many steps go by between two looks at the clock.
const CLOCK_CHECK_STEPS: u64 = 1024;

impl Meter {
    pub(crate) fn new(deadline: Option<Instant>, max_steps: Option<u64>) -> Self {
        Meter { deadline, max_steps: max_steps.unwrap_or(u64::MAX), steps: 0, memo_entries: 0 }
    }

    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn tick(&mut self) -> Result<(), Exhausted> {
        if self.steps >= self.max_steps {
            return Err(Exhausted::Steps);
        }
        self.steps += 1;
        if self.steps.is_multiple_of(CLOCK_CHECK_STEPS) && self.out_of_time() {
            return Err(Exhausted::Time);
        }
        Ok(())
    }

    pub(crate) fn check_clock(&self) -> Result<(), Exhausted> {
        if self.out_of_time() { Err(Exhausted::Time) } else { Ok(()) }
    }
}

/// What the search found for one key.
#[derive(Debug)]
pub(crate) enum Found {
    /// Every completed operation was linearized (the unknown-outcome ones
    /// left can go last).
    Linearizable,
    /// No linearization exists; the longest linearizable prefix found, as
    /// indexes into the key's operations, in linearization order.
    Stuck(Vec<usize>),
}

/// Searches for a linearization of `ops` (all on one key, sorted by invoke
/// time so that the memo's bitsets start with long runs of ones).
pub(crate) fn search(ops: &[&Operation], meter: &mut Meter) -> Result<Found, Exhausted> {
    let mut list = List::new(ops);
    let slots = Slots::new(ops);
    let mut values = Interner::default();
    let mut memo = Memo::default();
    let mut known = BitSet::new(slots.known_count);
    let mut unknown = BitSet::new(slots.unknown_count);
    let mut known_left = slots.known_count;
    let mut set_hash = 0u64;
    let zobrist: Vec<u64> = (0..ops.len() as u64).map(splitmix64).collect();
    let mut stack: Vec<Frame> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut value = values.intern(None);
    let mut entry = list.first();
    // Unknown-outcome operations can all go last, where they change nothing
    // anyone saw.
    while known_left > 0 {
        meter.tick()?;
        let e = list.entries[entry];
        if e.call {
            let op = ops[e.op];
            let slot = slots.of[e.op];
            let next = match model::step(values.get(value), &op.op, slot.known) {
                Step::Invalid => None,
                // Any linearization through it is also one without it (and
                // it placed last), so it is never worth trying here.
                Step::Same if !slot.known => None,
                Step::Same => Some(value),
                Step::New(v) => Some(values.intern(v)),
            };
            if let Some(next) = next {
                let set = if slot.known { &mut known } else { &mut unknown };
                set.insert(slot.index);
                let hash = set_hash ^ zobrist[e.op];
                if memo.insert(hash, &known, &unknown, next) {
                    meter.memo_entries += 1;
                    stack.push(Frame { call: entry, value_before: value });
                    set_hash = hash;
                    known_left -= usize::from(slot.known);
                    value = next;
                    list.lift(entry);
                    entry = list.first();
                    continue;
                }
                let set = if slot.known { &mut known } else { &mut unknown };
                set.remove(slot.index);
            }
            entry = e.next;
        } else {
            // This operation's return: it had to be linearized by now.
            if stack.len() > longest.len() {
                longest = stack.iter().map(|f| list.entries[f.call].op).collect();
            }
            let Some(frame) = stack.pop() else {
                return Ok(Found::Stuck(longest));
            };
            let op = list.entries[frame.call].op;
            set_hash ^= zobrist[op];
            let slot = slots.of[op];
            if slot.known {
                known.remove(slot.index);
                known_left += 1;
            } else {
                unknown.remove(slot.index);
            }
            value = frame.value_before;
            list.unlift(frame.call);
            entry = list.entries[frame.call].next;
        }
    }
    Ok(Found::Linearizable)
}

/// A choice on the search path.
#[derive(Debug)]
struct Frame {
    /// The call entry lifted.
    call: usize,
    /// The key's value before it.
    value_before: usize,
}

/// Where an operation's bit lives: completed and unknown-outcome operations
/// are numbered apart, so the completed ones, which linearize roughly in
/// invoke order, keep a compact set (see [`BitSet::compact`]) however long
/// unknown-outcome ones stay pending.
#[derive(Clone, Copy, Debug)]
struct Slot {
    known: bool,
    index: usize,
}

struct Slots {
    of: Vec<Slot>,
    known_count: usize,
    unknown_count: usize,
}

impl Slots {
    fn new(ops: &[&Operation]) -> Self {
        let (mut known_count, mut unknown_count) = (0, 0);
        let of = ops
            .iter()
            .map(|op| {
                let counter = if op.is_known() { &mut known_count } else { &mut unknown_count };
                *counter += 1;
                Slot { known: op.is_known(), index: *counter - 1 }
            })
            .collect();
        Slots { of, known_count, unknown_count }
    }
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Index of the operation in the key's list.
    op: usize,
    call: bool,
    /// The return entry of a call, the call entry of a return.
    other: usize,
    prev: usize,
    next: usize,
}

/// A doubly linked list of call and return entries in an arena; entry 0 is
/// the head sentinel.
struct List {
    entries: Vec<Entry>,
}

impl List {
    fn new(ops: &[&Operation]) -> Self {
        // Sort key: (at +infinity, time, returns after calls, op). Calls come
        // before returns at the same time: intervals are closed, so touching
        // operations are concurrent.
        let mut events: Vec<((bool, u64, bool, usize), bool)> = Vec::with_capacity(2 * ops.len());
        for (i, op) in ops.iter().enumerate() {
            events.push(((false, op.invoke, false, i), true));
            events.push(((op.complete.is_none(), op.complete.unwrap_or(0), true, i), false));
        }
        events.sort_unstable();
        let sentinel = Entry { op: NIL, call: false, other: NIL, prev: NIL, next: NIL };
        let mut entries = vec![sentinel; events.len() + 1];
        let mut call_of = vec![NIL; ops.len()];
        let mut return_of = vec![NIL; ops.len()];
        for (pos, &((.., op), call)) in events.iter().enumerate() {
            let at = pos + 1;
            entries[at] =
                Entry { op, call, other: NIL, prev: at - 1, next: if at == events.len() { NIL } else { at + 1 } };
            if call {
                call_of[op] = at;
            } else {
                return_of[op] = at;
            }
        }
        entries[HEAD].next = if events.is_empty() { NIL } else { 1 };
        for op in 0..ops.len() {
            entries[call_of[op]].other = return_of[op];
            entries[return_of[op]].other = call_of[op];
        }
        List { entries }
    }

    fn first(&self) -> usize {
        self.entries[HEAD].next
    }

    fn unlink(&mut self, at: usize) {
        let Entry { prev, next, .. } = self.entries[at];
        self.entries[prev].next = next;
        if next != NIL {
            self.entries[next].prev = prev;
        }
    }

    fn relink(&mut self, at: usize) {
        let Entry { prev, next, .. } = self.entries[at];
        self.entries[prev].next = at;
        if next != NIL {
            self.entries[next].prev = at;
        }
    }

    /// Removes a call entry and its return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.entries[call].other);
    }

    /// Undoes the last `lift`, which must have been of `call`.
    fn unlift(&mut self, call: usize) {
        self.relink(self.entries[call].other);
        self.relink(call);
    }
}

/// A set of operation indexes that knows its leading all-ones words and its
/// last non-zero word, so the memo's compact form costs O(1) to find.
#[derive(Debug)]
struct BitSet {
    words: Vec<u64>,
    /// Words `..full` are all ones.
    full: usize,
    /// Words `end..` are all zero; `end >= full`.
    end: usize,
}

impl BitSet {
    fn new(n: usize) -> Self {
        BitSet { words: vec![0; n.div_ceil(64)], full: 0, end: 0 }
    }

    fn insert(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] |= 1 << (i % 64);
        while self.full < self.words.len() && self.words[self.full] == u64::MAX {
            self.full += 1;
        }
        self.end = self.end.max(w + 1).max(self.full);
    }

    fn remove(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] &= !(1 << (i % 64));
        self.full = self.full.min(w);
        while self.end > self.full && self.words[self.end - 1] == 0 {
            self.end -= 1;
        }
    }

    /// The set without its leading all-ones words and trailing zero words:
    /// (number of leading all-ones words, the rest). Unique per set, and
    /// short, because operations linearize roughly in invoke order.
    fn compact(&self) -> (usize, &[u64]) {
        (self.full, &self.words[self.full..self.end])
    }
}

/// Hashes of sets are Zobrist hashes (xor of random words), already uniform.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The memo: every (linearized set, value) reached so far. The set is kept
/// as its completed part (compact) and its unknown-outcome part.
#[derive(Default)]
struct Memo {
    seen: HashSet<Seen, BuildHasherDefault<PassThrough>>,
}

/// A (linearized set, value) pair, packed into one allocation: about 100
/// bytes per memo entry in all, which is what bounds a long search.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// Zobrist hash of the set, mixed with the value: the only thing hashed.
    hash: u64,
    value: usize,
    /// Leading all-ones words of the completed part, left out of `words`.
    full_words: usize,
    /// The rest of the completed part, then the unknown-outcome part.
    words: Box<[u64]>,
}

impl Hash for Seen {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl Memo {
    /// Records the pair; `false` if it was already there. `set_hash` is the
    /// Zobrist hash of the whole set.
    fn insert(&mut self, set_hash: u64, known: &BitSet, unknown: &BitSet, value: usize) -> bool {
        let (full_words, rest) = known.compact();
        let words = rest.iter().chain(&unknown.words).copied().collect();
        self.seen.insert(Seen { hash: set_hash ^ splitmix64(value as u64), value, full_words, words })
    }
}

/// Values of the key, numbered, so the memo stores a number per entry.
#[derive(Default)]
struct Interner {
    values: Vec<Value>,
    ids: HashMap<Value, usize, BuildHasherDefault<DefaultHasher>>,
}

impl Interner {
    fn intern(&mut self, value: Value) -> usize {
        if let Some(&id) = self.ids.get(&value) {
            return id;
        }
        let id = self.values.len();
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }

    fn get(&self, id: usize) -> &Value {
        &self.values[id]
    }
}

/// SplitMix64: deterministic, well-mixed words for Zobrist hashing.
fn splitmix64(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_is_unique() {
        let mut a = BitSet::new(200);
        let mut b = BitSet::new(200);
        for i in 0..70 {
            a.insert(i);
        }
        for i in (0..70).rev() {
            b.insert(i);
        }
        assert_eq!(a.compact(), b.compact());
        assert_eq!(a.compact().0, 1);
        a.insert(150);
        assert_ne!(a.compact(), b.compact());
        a.remove(150);
        assert_eq!(a.compact(), b.compact());
        assert_eq!(BitSet::new(0).compact(), (0, &[][..]));
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops = [
            Operation::completed(1, 0, 10, super::super::Op::Put { key: "k".into(), value: "a".into() }),
            Operation::completed(2, 5, 7, super::super::Op::Put { key: "k".into(), value: "b".into() }),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let mut list = List::new(&refs);
        let walk = |l: &List| {
            let mut v = Vec::new();
            let mut at = l.first();
            while at != NIL {
                v.push((l.entries[at].op, l.entries[at].call));
                at = l.entries[at].next;
            }
            v
        };
        let before = walk(&list);
        assert_eq!(before, vec![(0, true), (1, true), (1, false), (0, false)]);
        let second_call = list.entries[list.first()].next;
        list.lift(second_call);
        assert_eq!(walk(&list), vec![(0, true), (0, false)]);
        list.lift(list.first());
        assert_eq!(list.first(), NIL);
        list.unlift(1);
        list.unlift(second_call);
        assert_eq!(walk(&list), before);
    }
}
