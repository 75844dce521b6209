//! Histories: what clients asked, when, and what they were told.

use std::fmt;

/// The position of an operation in its [`History`], from 0. Explanations name
/// operations by it (`#12`).
pub type OpId = usize;

/// Who issued an operation. Only used to make explanations readable: the
/// checker does not require one client's operations to be sequential.
pub type ClientId = u64;

/// A time in any unit the recorder likes (nanoseconds, virtual ticks, ...).
/// Only the order of times matters.
pub type Time = u64;

/// One key-value operation on one key, with the result the client was given.
///
/// When the operation's outcome is unknown ([`Operation::complete`] is
/// `None`), its result fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read the key; `result` is its value, `None` if the key was absent.
    Get {
        /// The key read.
        key: String,
        /// The value seen; `None` when the key did not exist.
        result: Option<String>,
    },
    /// Set the key to `value`.
    Put {
        /// The key written.
        key: String,
        /// The new value.
        value: String,
    },
    /// Append `value` to the key's value (an absent key counts as empty).
    Append {
        /// The key appended to.
        key: String,
        /// The suffix appended.
        value: String,
    },
    /// Add `by` to the key's value read as a decimal `i64` (absent counts as
    /// 0); `result` is the new value. As in Redis, a value that is not an
    /// integer, or an overflow, makes the command fail without effect, so a
    /// completed `Incr` can never be placed where that happens.
    Incr {
        /// The counter's key.
        key: String,
        /// The increment (may be negative).
        by: i64,
        /// The value after the increment.
        result: i64,
    },
    /// Compare-and-set: if the key's value equals `expected` (`None`: the key
    /// is absent), set it to `new`. `result` says whether it did.
    Cas {
        /// The key.
        key: String,
        /// The value required for the swap; `None` requires the key to be absent.
        expected: Option<String>,
        /// The value set when the comparison succeeds.
        new: String,
        /// Whether the swap happened.
        result: bool,
    },
    /// Delete the key; `result` says whether it existed.
    Delete {
        /// The key deleted.
        key: String,
        /// Whether the key existed.
        result: bool,
    },
}

impl Op {
    /// The one key this operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key, .. }
            | Op::Put { key, .. }
            | Op::Append { key, .. }
            | Op::Incr { key, .. }
            | Op::Cas { key, .. }
            | Op::Delete { key, .. } => key,
        }
    }

    /// Whether the operation never changes the key's value.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Op::Get { .. })
    }
}

/// One operation as a client saw it: when it asked, when (and whether) it
/// learned the outcome.
///
/// Operations are closed intervals `[invoke, complete]`: `a` precedes `b` in
/// real time only when `a.complete < b.invoke`; operations that share an
/// endpoint are concurrent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The client that issued it.
    pub client: ClientId,
    /// When the client sent it.
    pub invoke: Time,
    /// When the client learned the result; `None` when it never did (timeout,
    /// lost connection, leader lost after proposing). Such an operation may
    /// have taken effect at any time after `invoke`, or never: the checker
    /// treats it as completing at +infinity and ignores its result.
    pub complete: Option<Time>,
    /// The operation and its result.
    pub op: Op,
}

impl Operation {
    /// An operation whose client learned the result at `complete`.
    pub fn completed(client: ClientId, invoke: Time, complete: Time, op: Op) -> Self {
        Operation { client, invoke, complete: Some(complete), op }
    }

    /// An operation whose outcome the client never learned.
    pub fn unknown(client: ClientId, invoke: Time, op: Op) -> Self {
        Operation { client, invoke, complete: None, op }
    }

    /// Whether the client learned the outcome.
    pub fn is_known(&self) -> bool {
        self.complete.is_some()
    }
}

/// Why an operation cannot be part of a history.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOperation {
    /// `complete` is before `invoke`.
    #[error("completes at {complete}, before it is invoked at {invoke}")]
    CompletesBeforeInvoke {
        /// The invoke time.
        invoke: Time,
        /// The completion time.
        complete: Time,
    },
}

/// A list of operations, checked to be well formed. Operation `i` has
/// [`OpId`] `i`; the order of the list does not matter to the checker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// A history of `ops`, or the first operation that is not well formed.
    pub fn from_ops(ops: impl IntoIterator<Item = Operation>) -> Result<Self, (OpId, InvalidOperation)> {
        let mut history = History::new();
        for op in ops {
            let id = history.len();
            history.push(op).map_err(|e| (id, e))?;
        }
        Ok(history)
    }

    /// Adds an operation and returns its id.
    pub fn push(&mut self, op: Operation) -> Result<OpId, InvalidOperation> {
        validate(&op)?;
        self.ops.push(op);
        Ok(self.ops.len() - 1)
    }

    /// The operations, in id order.
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    /// The operation with id `id`, if there is one.
    pub fn get(&self, id: OpId) -> Option<&Operation> {
        self.ops.get(id)
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Replaces the operation `id` (for tests that plant anomalies), keeping
    /// the history well formed. Returns `false` when there is no such id.
    pub fn replace(&mut self, id: OpId, op: Operation) -> Result<bool, InvalidOperation> {
        if id >= self.ops.len() {
            return Ok(false);
        }
        validate(&op)?;
        self.ops[id] = op;
        Ok(true)
    }
}

fn validate(op: &Operation) -> Result<(), InvalidOperation> {
    match op.complete {
        Some(complete) if complete < op.invoke => {
            Err(InvalidOperation::CompletesBeforeInvoke { invoke: op.invoke, complete })
        }
        _ => Ok(()),
    }
}

/// Formats a value as the explanations show it: quoted, or `nil` for absent.
pub(crate) struct ShowValue<'a>(pub &'a Option<String>);

impl fmt::Display for ShowValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v:?}"),
            None => f.write_str("nil"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Get { key, result } => write!(f, "get {key:?} -> {}", ShowValue(result)),
            Op::Put { key, value } => write!(f, "put {key:?} {value:?}"),
            Op::Append { key, value } => write!(f, "append {key:?} {value:?}"),
            Op::Incr { key, by, result } => write!(f, "incr {key:?} by {by} -> {result}"),
            Op::Cas { key, expected, new, result } => {
                write!(f, "cas {key:?} {} => {new:?} -> {result}", ShowValue(expected))
            }
            Op::Delete { key, result } => write!(f, "delete {key:?} -> {result}"),
        }
    }
}

impl fmt::Display for Operation {
    /// `client 2 [10, 15] put "x" "1"`; an unknown outcome shows as
    /// `[10, ?]` and hides the (ignored) result.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.complete {
            Some(c) => write!(f, "client {} [{}, {}] {}", self.client, self.invoke, c, self.op),
            None => {
                write!(f, "client {} [{}, ?] ", self.client, self.invoke)?;
                match &self.op {
                    Op::Get { key, .. } => write!(f, "get {key:?} -> ?"),
                    Op::Put { .. } | Op::Append { .. } => write!(f, "{} (outcome unknown)", self.op),
                    Op::Incr { key, by, .. } => write!(f, "incr {key:?} by {by} -> ?"),
                    Op::Cas { key, expected, new, .. } => {
                        write!(f, "cas {key:?} {} => {new:?} -> ?", ShowValue(expected))
                    }
                    Op::Delete { key, .. } => write!(f, "delete {key:?} -> ?"),
                }
            }
        }
    }
}
