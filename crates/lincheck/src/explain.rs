//! Why a key's history is not linearizable, in terms a person can check by
//! hand: the longest linearizable prefix the search found, and the operations
//! that could come next, each with the reason it cannot.

use std::fmt;

use super::history::{OpId, Operation, ShowValue};
use super::model::{self, Step, Value};

/// How many operations of the prefix an explanation shows.
const PREFIX_SHOWN_MAX: usize = 8;

/// An operation of the longest linearizable prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Its id in the history.
    pub id: OpId,
    /// The operation.
    pub operation: Operation,
    /// The key's value after it.
    pub value_after: Value,
}

/// An operation that could be linearized next in time but not with its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// Its id in the history.
    pub id: OpId,
    /// The operation.
    pub operation: Operation,
    /// Why it cannot be placed after the prefix.
    pub reason: String,
}

/// Why one key's operations have no linearization.
///
/// The search found no order of the key's operations that respects real time
/// and the sequential specification. Its longest attempt placed
/// [`prefix`](Self::prefix); after it, real time forces one of
/// [`stuck`](Self::stuck) to come next (they are the operations invoked
/// before [`deadline`](Self::deadline) completed), and none of them can: so
/// the history is not linearizable *given this prefix*, and the search proved
/// every other prefix fails too. The [`Display`](fmt::Display) form says all
/// this in a few lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The key.
    pub key: String,
    /// How many operations the key has (unknown-outcome reads dropped).
    pub ops_on_key: usize,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<OpId>,
    /// The last operations of the prefix (at most 8), for display.
    pub prefix_tail: Vec<Placed>,
    /// The key's value after the prefix.
    pub value: Value,
    /// The not-yet-linearized operation that completed first: it, or an
    /// operation concurrent with it, must come next.
    pub deadline: OpId,
    /// The completed operations that could come next in real time, none of
    /// which can.
    pub stuck: Vec<Stuck>,
}

impl Explanation {
    /// Builds the explanation for a key whose search got stuck. `ops` are the
    /// key's operations with their ids; `prefix` indexes into `ops`.
    pub(crate) fn new(key: &str, ops: &[(OpId, &Operation)], prefix: &[usize]) -> Self {
        let mut value: Value = None;
        let mut placed = Vec::with_capacity(prefix.len());
        let mut in_prefix = vec![false; ops.len()];
        for &i in prefix {
            let (id, op) = ops[i];
            in_prefix[i] = true;
            if let Step::New(v) = model::step(&value, &op.op, op.is_known()) {
                value = v;
            }
            placed.push(Placed { id, operation: op.clone(), value_after: value.clone() });
        }
        let rest: Vec<(OpId, &Operation)> =
            ops.iter().enumerate().filter(|&(i, _)| !in_prefix[i]).map(|(_, &o)| o).collect();
        // Unknown outcomes complete at +infinity: `None` sorts after every time.
        let by_completion = |(id, op): &(OpId, &Operation)| (op.complete.is_none(), op.complete, *id);
        let deadline_op = rest.iter().min_by_key(|o| by_completion(o)).copied();
        let (deadline, stuck) = match deadline_op {
            Some((deadline, d)) => {
                let stuck = rest
                    .iter()
                    // Unknown-outcome operations can always be placed (or
                    // left for last): they are never the obstacle.
                    .filter(|(_, op)| op.is_known() && d.complete.is_none_or(|c| op.invoke <= c))
                    .map(|&(id, op)| Stuck { id, operation: op.clone(), reason: reason(&value, op) })
                    .collect();
                (deadline, stuck)
            }
            // Cannot happen for a stuck search; say so rather than panic.
            None => (ops.first().map_or(0, |o| o.0), Vec::new()),
        };
        let skip = placed.len().saturating_sub(PREFIX_SHOWN_MAX);
        Explanation {
            key: key.to_owned(),
            ops_on_key: ops.len(),
            prefix: placed.iter().map(|p| p.id).collect(),
            prefix_tail: placed.into_iter().skip(skip).collect(),
            value,
            deadline,
            stuck,
        }
    }
}

fn reason(value: &Value, op: &Operation) -> String {
    model::why_invalid(value, &op.op).unwrap_or_else(|| {
        // The search only records a prefix none of whose successors can be
        // placed, so this is a fallback for completeness.
        "it can be placed here, but no order of the remaining operations works after it".to_owned()
    })
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?}: its {} operations have no linearization.", self.key, self.ops_on_key)?;
        if self.prefix.is_empty() {
            writeln!(f, "Not even the first operation can be placed; the key starts absent (nil).")?;
        } else {
            writeln!(f, "The longest linearizable prefix found places {} of them; it ends with:", self.prefix.len())?;
            if self.prefix.len() > self.prefix_tail.len() {
                writeln!(f, "  ... {} earlier", self.prefix.len() - self.prefix_tail.len())?;
            }
            for p in &self.prefix_tail {
                writeln!(f, "  #{} {}   => {}", p.id, p.operation, ShowValue(&p.value_after))?;
            }
            writeln!(f, "After it the value is {}.", ShowValue(&self.value))?;
        }
        write!(
            f,
            "#{} completed first among the rest, so it or an operation invoked before it completed must come next, \
             but none can:",
            self.deadline
        )?;
        for s in &self.stuck {
            write!(f, "\n  #{} {}: {}", s.id, s.operation, s.reason)?;
        }
        Ok(())
    }
}
