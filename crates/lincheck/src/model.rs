//! The sequential specification of one key: what each operation does to the
//! key's value and which results it may return.

use super::history::{Op, ShowValue};

/// The value of one key; `None` when the key does not exist.
pub type Value = Option<String>;

/// What applying an operation to a value gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The result is possible and the value does not change.
    Same,
    /// The result is possible and the value becomes this.
    New(Value),
    /// The client's result cannot come from this value.
    Invalid,
}

/// Applies `op` to `value`. When `known` is false (the outcome is unknown)
/// the result in `op` is not checked: the operation's effect is whatever the
/// sequential specification says.
pub fn step(value: &Value, op: &Op, known: bool) -> Step {
    match op {
        Op::Get { result, .. } => check(!known || result == value, Step::Same),
        Op::Put { value: new, .. } => Step::New(Some(new.clone())),
        Op::Append { value: suffix, .. } => {
            let mut new = value.clone().unwrap_or_default();
            new.push_str(suffix);
            Step::New(Some(new))
        }
        Op::Incr { by, result, .. } => match incr(value, *by) {
            Some(new) => check(!known || new == *result, Step::New(Some(new.to_string()))),
            // Redis answers an error and changes nothing; a client that
            // learned an integer result cannot have been answered here.
            None => check(!known, Step::Same),
        },
        Op::Cas { expected, new, result, .. } => {
            let swaps = expected == value;
            let after = if swaps { Step::New(Some(new.clone())) } else { Step::Same };
            check(!known || swaps == *result, after)
        }
        Op::Delete { result, .. } => {
            let existed = value.is_some();
            let after = if existed { Step::New(None) } else { Step::Same };
            check(!known || existed == *result, after)
        }
    }
}

/// Why `op` (completed) cannot be applied to `value`, for explanations; `None`
/// when it can.
pub fn why_invalid(value: &Value, op: &Op) -> Option<String> {
    if step(value, op, true) != Step::Invalid {
        return None;
    }
    let current = ShowValue(value);
    Some(match op {
        Op::Get { result, .. } => format!("it read {} but the value was {current}", ShowValue(result)),
        Op::Put { .. } | Op::Append { .. } => "a write cannot fail".to_owned(),
        Op::Incr { by, result, .. } => match incr(value, *by) {
            Some(new) => format!("it returned {result} but incrementing {current} by {by} gives {new}"),
            None => format!("it returned {result} but {current} cannot be incremented by {by}"),
        },
        Op::Cas { result, .. } => {
            format!(
                "it returned {result} but the value was {current}, so the swap would {}",
                if *result { "fail" } else { "succeed" }
            )
        }
        Op::Delete { result, .. } => {
            format!("it returned {result} but the key {}", if value.is_some() { "existed" } else { "did not exist" })
        }
    })
}

fn check(ok: bool, step: Step) -> Step {
    if ok { step } else { Step::Invalid }
}

/// Redis INCRBY: an absent key counts as 0; anything but a decimal `i64`,
/// or an overflow, is an error (`None`).
fn incr(value: &Value, by: i64) -> Option<i64> {
    let current = match value {
        None => 0,
        Some(v) => v.parse::<i64>().ok()?,
    };
    current.checked_add(by)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Some(v.to_owned())
    }

    #[test]
    fn get_checks_the_value_unless_unknown() {
        let op = Op::Get { key: "k".into(), result: s("1") };
        assert_eq!(step(&s("1"), &op, true), Step::Same);
        assert_eq!(step(&None, &op, true), Step::Invalid);
        assert_eq!(step(&None, &op, false), Step::Same);
    }

    #[test]
    fn append_to_absent_starts_empty() {
        let op = Op::Append { key: "k".into(), value: "ab".into() };
        assert_eq!(step(&None, &op, true), Step::New(s("ab")));
        assert_eq!(step(&s("x"), &op, true), Step::New(s("xab")));
    }

    #[test]
    fn incr_counts_absent_as_zero_and_fails_on_garbage() {
        let op = Op::Incr { key: "k".into(), by: 2, result: 2 };
        assert_eq!(step(&None, &op, true), Step::New(s("2")));
        assert_eq!(step(&s("1"), &op, true), Step::Invalid);
        assert_eq!(step(&s("x"), &op, true), Step::Invalid);
        // An unknown-outcome INCR on a non-integer is Redis's error: no effect.
        assert_eq!(step(&s("x"), &op, false), Step::Same);
        let overflow = Op::Incr { key: "k".into(), by: 1, result: 0 };
        assert_eq!(step(&s(&i64::MAX.to_string()), &overflow, false), Step::Same);
    }

    #[test]
    fn cas_and_delete_results_must_match_the_value() {
        let cas = Op::Cas { key: "k".into(), expected: None, new: "a".into(), result: true };
        assert_eq!(step(&None, &cas, true), Step::New(s("a")));
        assert_eq!(step(&s("a"), &cas, true), Step::Invalid);
        assert_eq!(step(&s("a"), &cas, false), Step::Same);
        let del = Op::Delete { key: "k".into(), result: false };
        assert_eq!(step(&None, &del, true), Step::Same);
        assert_eq!(step(&s("a"), &del, true), Step::Invalid);
        assert_eq!(step(&s("a"), &del, false), Step::New(None));
        assert!(why_invalid(&s("a"), &del).is_some());
        assert!(why_invalid(&None, &del).is_none());
    }
}
