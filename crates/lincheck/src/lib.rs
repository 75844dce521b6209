//! A linearizability checker for histories of key-value operations.
//!
//! It is its own crate so that every place that records histories can use it:
//! the simulator (`sim`), the real-process chaos tests and the `raftkv
//! check-history` command, without one depending on the other. It is written
//! here rather than taken from crates.io because the checker is part of what
//! the project promises (it is how we show the store is linearizable), and no
//! maintained Rust crate checks Redis-style KV histories with unknown
//! outcomes; the design follows Porcupine (Go) closely.
//!
//! A history is what clients saw: for each operation, when it was invoked,
//! when (and whether) it completed, and its result. It is *linearizable*
//! when every operation can be given a single point in time between its
//! invoke and its completion such that, taken in the order of those points,
//! the operations and their results are a valid run of a sequential
//! key-value store (Herlihy & Wing, 1990).
//!
//! # Semantics
//!
//! - Operations are closed intervals `[invoke, complete]`: `a` is before `b`
//!   in real time only when `a.complete < b.invoke`. Operations sharing an
//!   endpoint are concurrent.
//! - An operation whose client never learned the outcome (`complete` is
//!   `None`) may have taken effect at any point after its invoke, or never: it
//!   is treated as completing at +infinity, and its result is ignored.
//!   (Placing it after everything else is the same as it never happening.)
//!   Reads with an unknown outcome constrain nothing and are dropped.
//! - Each operation touches one key, and each key starts absent. The
//!   sequential specification per operation is in [`Op`].
//! - Clients are labels for explanations; one client's operations need not
//!   be sequential (a client that timed out may carry on as a new process).
//!
//! # Algorithm
//!
//! Linearizability is *local* (P-compositional): a history is linearizable
//! iff the sub-history of every key is. So [`check`] splits the history by key
//! and checks each key on its own, in key order. Per key, it runs Wing &
//! Gong's search with Lowe's just-in-time linearization and memoization of
//! (set of linearized operations, value), as Porcupine does
//! (anishathalye/porcupine, `checker.go`): the search only tries operations
//! that real time allows next, and never explores the same (set, value) pair
//! twice. Sets are bitsets hashed incrementally (Zobrist), stored without
//! their leading all-ones words, so a mostly sequential history costs little
//! memory per step.
//!
//! Operations with unknown outcome are what makes checking hard: each stays
//! a candidate from its invoke to the end, so proving a violation may have
//! to try every subset of the pending ones. The search never tries one that
//! would leave the value unchanged (any linearization through it is one
//! without it), and keeps them out of the compact form of the set. A few
//! dozen pending on one key can still put a violation out of reach of any
//! budget (the answer is then [`Verdict::Unknown`]), so workloads should keep
//! them rare per key.
//!
//! On histories with bounded concurrency the search is close to linear; in
//! the worst case (many concurrent or unknown-outcome writes on one key) it
//! is exponential, which is what the [`Budget`] is for.
//!
//! The answer is deterministic for a given history and step budget; a time
//! budget can only turn an answer into [`Verdict::Unknown`].
//!
//! # JSON lines
//!
//! [`read_history`] and [`write_history`] use one JSON object per line (blank
//! lines are skipped). The `n`-th operation in the file has [`OpId`] `n - 1`.
//!
//! | field      | type            | meaning                                            |
//! |------------|-----------------|----------------------------------------------------|
//! | `client`   | integer ≥ 0     | client id                                          |
//! | `invoke`   | integer ≥ 0     | invoke time (any unit, only order matters)         |
//! | `complete` | integer or null | completion time; `null` or absent: outcome unknown |
//! | `op`       | string          | `get`, `put`, `append`, `incr`, `cas`, `delete`    |
//! | `key`      | string          | the key                                            |
//! | `value`    | string          | `put` and `append`: the value written              |
//! | `by`       | integer         | `incr`: the increment                              |
//! | `expected` | string or null  | `cas`: the value required (`null`: absent)         |
//! | `new`      | string          | `cas`: the value set                               |
//! | `result`   | see below       | what the client was told                           |
//!
//! `result` is: for `get` the value read, a string or `null` for an absent
//! key; for `incr` the new value (integer); for `cas` whether it swapped and
//! for `delete` whether the key existed (booleans); for `put` and `append`
//! absent (or `null`). It is required when `complete` is set and optional
//! (ignored) when it is not. Fields an operation does not use are errors, as
//! are unknown fields. Values are strings: a recorder of binary values should
//! encode them (hex, base64) consistently.
//!
//! ```text
//! {"client":1,"invoke":0,"complete":10,"op":"put","key":"x","value":"1"}
//! {"client":2,"invoke":5,"complete":null,"op":"append","key":"x","value":"2"}
//! {"client":3,"invoke":12,"complete":20,"op":"get","key":"x","result":"12"}
//! {"client":1,"invoke":14,"complete":18,"op":"cas","key":"y","expected":null,"new":"a","result":true}
//! {"client":1,"invoke":21,"complete":25,"op":"incr","key":"n","by":5,"result":5}
//! {"client":3,"invoke":22,"complete":30,"op":"delete","key":"y","result":true}
//! ```
//!
//! The `check_history` binary checks such a file:
//! `cargo run -p sim --release --bin check_history -- FILE [--timeout-ms N] [--max-steps N]`.
//!
//! # Example
//!
//! ```
//! use lincheck::{check, Budget, History, Op, Operation, Verdict};
//!
//! let put = |v: &str| Op::Put { key: "x".into(), value: v.into() };
//! let get = |v: &str| Op::Get { key: "x".into(), result: Some(v.into()) };
//! // A stale read: "2" was written (and acknowledged) before the read began.
//! let history = History::from_ops([
//!     Operation::completed(1, 0, 10, put("1")),
//!     Operation::completed(1, 20, 30, put("2")),
//!     Operation::completed(2, 40, 50, get("1")),
//! ])
//! .map_err(|(id, e)| format!("op {id}: {e}"))?;
//! match check(&history, &Budget::unlimited()) {
//!     Verdict::NotLinearizable { key, explanation } => {
//!         assert_eq!(key, "x");
//!         assert_eq!(explanation.stuck[0].id, 2);
//!         println!("{explanation}");
//!     }
//!     other => panic!("expected a violation, got {other:?}"),
//! }
//! # Ok::<(), String>(())
//! ```

#![forbid(unsafe_code)]

mod explain;
mod history;
mod json;
mod model;
mod search;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

pub use explain::{Explanation, Placed, Stuck};
pub use history::{ClientId, History, InvalidOperation, Op, OpId, Operation, Time};
pub use json::{HistoryError, read_history, write_history};
pub use model::Value;
pub use search::Exhausted;

use search::{Found, Meter};

/// Limits on how long a check may search before answering
/// [`Verdict::Unknown`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock limit for the whole check; `None`: no limit. The clock is
    /// read every 1024 steps, so a search with a large memo may overrun it
    /// by the time one resize of the memo takes (seconds at ten million
    /// entries).
    pub time: Option<Duration>,
    /// Limit on search steps (one step tries one operation) summed over all
    /// keys; `None`: no limit. Unlike time, this keeps answers deterministic,
    /// and it bounds memory: a step stores at most one memo entry (about
    /// 120 bytes; a few million steps take a second).
    pub max_steps: Option<u64>,
}

impl Budget {
    /// No limits: the check runs until it has an answer.
    pub fn unlimited() -> Self {
        Budget::default()
    }

    /// A wall-clock limit only.
    pub fn time(limit: Duration) -> Self {
        Budget { time: Some(limit), max_steps: None }
    }

    /// A step limit only.
    pub fn steps(max_steps: u64) -> Self {
        Budget { time: None, max_steps: Some(max_steps) }
    }
}

/// The answer of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's operations have a linearization.
    Linearizable,
    /// This key's operations have none (the first such key in key order).
    NotLinearizable {
        /// The key.
        key: String,
        /// Which operations cannot be placed, and why.
        explanation: Box<Explanation>,
    },
    /// The budget ran out while checking this key, and no earlier key was
    /// found not linearizable.
    Unknown {
        /// The key being checked.
        key: String,
        /// Which budget ran out.
        reason: Exhausted,
    },
}

impl Verdict {
    /// Whether the history is linearizable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

impl Verdict {
    /// The exit status of a checking command: 0 linearizable, 1 not, 2 the
    /// budget ran out.
    pub fn exit_status(&self) -> u8 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable { .. } => 1,
            Verdict::Unknown { .. } => 2,
        }
    }
}

/// One line on what a check cost.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} operations on {} keys; {} keys checked in {:.1} ms, {} search steps, {} memoized states",
            self.ops,
            self.keys,
            self.keys_checked,
            self.elapsed.as_secs_f64() * 1e3,
            self.steps,
            self.memo_entries
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => f.write_str("linearizable"),
            Verdict::NotLinearizable { explanation, .. } => write!(f, "NOT linearizable: {explanation}"),
            Verdict::Unknown { key, reason } => {
                let what = match reason {
                    Exhausted::Time => "time",
                    Exhausted::Steps => "step",
                };
                write!(f, "unknown: the {what} budget ran out while checking key {key:?}")
            }
        }
    }
}

/// What a check cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations in the history.
    pub ops: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Keys whose search finished.
    pub keys_checked: usize,
    /// Search steps taken.
    pub steps: u64,
    /// (set, value) pairs memoized.
    pub memo_entries: u64,
    /// Wall-clock time of the check.
    pub elapsed: Duration,
}

/// A verdict and what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The answer.
    pub verdict: Verdict,
    /// The cost.
    pub stats: Stats,
}

/// Checks whether `history` is linearizable within `budget`.
pub fn check(history: &History, budget: &Budget) -> Verdict {
    check_with_stats(history, budget).verdict
}

/// [`check`], also reporting what it cost.
pub fn check_with_stats(history: &History, budget: &Budget) -> Report {
    let started = Instant::now();
    let mut meter = Meter::new(budget.time.map(|t| started + t), budget.max_steps);
    let by_key = partition(history);
    let mut stats = Stats { ops: history.len(), keys: by_key.len(), ..Stats::default() };
    let mut verdict = Verdict::Linearizable;
    for (key, ops) in &by_key {
        let refs: Vec<&Operation> = ops.iter().map(|&(_, op)| op).collect();
        let found = search_key(&refs, &mut meter);
        match found {
            Ok(Found::Linearizable) => stats.keys_checked += 1,
            Ok(Found::Stuck(prefix)) => {
                stats.keys_checked += 1;
                let explanation = Box::new(Explanation::new(key, ops, &prefix));
                verdict = Verdict::NotLinearizable { key: (*key).to_owned(), explanation };
                break;
            }
            Err(reason) => {
                verdict = Verdict::Unknown { key: (*key).to_owned(), reason };
                break;
            }
        }
    }
    stats.steps = meter.steps;
    stats.memo_entries = meter.memo_entries;
    stats.elapsed = started.elapsed();
    Report { verdict, stats }
}

/// Searches one key.
fn search_key(ops: &[&Operation], meter: &mut Meter) -> Result<Found, Exhausted> {
    meter.check_clock()?;
    search::search(ops, meter)
}

/// Splits the history by key (P-compositionality), dropping reads whose
/// outcome is unknown; each key's operations sorted by invoke time, then id.
fn partition(history: &History) -> BTreeMap<&str, Vec<(OpId, &Operation)>> {
    let mut by_key: BTreeMap<&str, Vec<(OpId, &Operation)>> = BTreeMap::new();
    for (id, op) in history.ops().iter().enumerate() {
        if op.is_known() || !op.op.is_read_only() {
            by_key.entry(op.op.key()).or_default().push((id, op));
        }
    }
    for ops in by_key.values_mut() {
        ops.sort_by_key(|&(id, op)| (op.invoke, id));
    }
    by_key
}
