//! Histories as JSON lines; the format is documented in the module docs of
//! [`super`].

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;

use super::history::{ClientId, History, InvalidOperation, Op, Operation, Time};

/// Why a history could not be read. Line numbers start at 1.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading failed.
    #[error("line {line}: read failed: {source}")]
    Io {
        /// The line being read.
        line: usize,
        /// The IO error.
        source: io::Error,
    },
    /// The line is not a JSON object of the expected shape.
    #[error("line {line}: {source}")]
    Json {
        /// The offending line.
        line: usize,
        /// What serde_json found wrong.
        source: serde_json::Error,
    },
    /// The line is well-formed JSON but not a valid operation.
    #[error("line {line}: {reason}")]
    Field {
        /// The offending line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The operation's times are inconsistent.
    #[error("line {line}: operation {source}")]
    Invalid {
        /// The offending line.
        line: usize,
        /// What is wrong with it.
        source: InvalidOperation,
    },
}

/// The name of an operation on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Get,
    Put,
    Append,
    Incr,
    Cas,
    Delete,
}

/// One line, as it is on the wire. Fields not used by `op` must be absent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    client: ClientId,
    invoke: Time,
    #[serde(default)]
    complete: Option<Time>,
    op: Kind,
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<i64>,
    /// `None`: absent; `Some(None)`: `null`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    expected: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new: Option<String>,
    /// `None`: absent; `Some(Json::Null)`: `null`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    result: Option<Json>,
}

/// Deserializes a field that is present (possibly `null`) as `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Reads a history, one operation per line; blank lines are skipped. The
/// `n`-th operation read gets [`OpId`](super::OpId) `n - 1`.
pub fn read_history(reader: impl BufRead) -> Result<History, HistoryError> {
    let mut history = History::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let text = line.map_err(|source| HistoryError::Io { line: line_no, source })?;
        if text.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(&text).map_err(|source| HistoryError::Json { line: line_no, source })?;
        let op = operation(record).map_err(|reason| HistoryError::Field { line: line_no, reason })?;
        history.push(op).map_err(|source| HistoryError::Invalid { line: line_no, source })?;
    }
    Ok(history)
}

/// Writes a history in the format [`read_history`] reads, one line per
/// operation in id order. Results of unknown-outcome operations are omitted.
pub fn write_history(mut writer: impl Write, history: &History) -> io::Result<()> {
    for op in history.ops() {
        serde_json::to_writer(&mut writer, &record(op))?;
        writer.write_all(b"\n")?;
    }
    writer.flush()
}

fn operation(r: Record) -> Result<Operation, String> {
    let known = r.complete.is_some();
    let mut fields = Fields { r: &r, used: Vec::new() };
    let op = match r.op {
        Kind::Get => Op::Get { key: r.key.clone(), result: fields.result(known, json_value)?.unwrap_or(None) },
        Kind::Put => Op::Put { key: r.key.clone(), value: fields.value_and_no_result()? },
        Kind::Append => Op::Append { key: r.key.clone(), value: fields.value_and_no_result()? },
        Kind::Incr => Op::Incr {
            key: r.key.clone(),
            by: fields.by()?,
            result: fields.result(known, |j| j.as_i64().ok_or("an integer"))?.unwrap_or(0),
        },
        Kind::Cas => Op::Cas {
            key: r.key.clone(),
            expected: fields.expected()?,
            new: fields.new_value()?,
            result: fields.result(known, |j| j.as_bool().ok_or("a boolean"))?.unwrap_or(false),
        },
        Kind::Delete => Op::Delete {
            key: r.key.clone(),
            result: fields.result(known, |j| j.as_bool().ok_or("a boolean"))?.unwrap_or(false),
        },
    };
    fields.no_others()?;
    Ok(Operation { client: r.client, invoke: r.invoke, complete: r.complete, op })
}

fn json_value(j: &Json) -> Result<Option<String>, &'static str> {
    match j {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.clone())),
        _ => Err("a string or null"),
    }
}

/// Takes the fields an operation uses and complains about the others.
struct Fields<'a> {
    r: &'a Record,
    used: Vec<&'static str>,
}

impl Fields<'_> {
    fn missing(&self, field: &str) -> String {
        format!("{:?} needs the field {field:?}", self.r.op)
    }

    fn value(&mut self) -> Result<String, String> {
        self.used.push("value");
        self.r.value.clone().ok_or_else(|| self.missing("value"))
    }

    /// Writes return nothing: `"result"` may be absent or `null`.
    fn value_and_no_result(&mut self) -> Result<String, String> {
        self.result(false, |j| if j.is_null() { Ok(()) } else { Err("null (or absent)") })?;
        self.value()
    }

    fn by(&mut self) -> Result<i64, String> {
        self.used.push("by");
        self.r.by.ok_or_else(|| self.missing("by"))
    }

    fn expected(&mut self) -> Result<Option<String>, String> {
        self.used.push("expected");
        self.r.expected.clone().ok_or_else(|| self.missing("expected"))
    }

    fn new_value(&mut self) -> Result<String, String> {
        self.used.push("new");
        self.r.new.clone().ok_or_else(|| self.missing("new"))
    }

    /// The result, required when the outcome is known and optional otherwise
    /// (then `None`: it is ignored anyway).
    fn result<T>(
        &mut self,
        known: bool,
        parse: impl Fn(&Json) -> Result<T, &'static str>,
    ) -> Result<Option<T>, String> {
        self.used.push("result");
        match &self.r.result {
            Some(j) => parse(j).map(Some).map_err(|want| format!("\"result\" of {:?} must be {want}", self.r.op)),
            None if known => {
                Err(format!("{} (or \"complete\": null if the outcome is unknown)", self.missing("result")))
            }
            None => Ok(None),
        }
    }

    fn no_others(&self) -> Result<(), String> {
        let r = self.r;
        let given = [
            ("value", r.value.is_some()),
            ("by", r.by.is_some()),
            ("expected", r.expected.is_some()),
            ("new", r.new.is_some()),
            ("result", r.result.is_some()),
        ];
        match given.iter().find(|(name, present)| *present && !self.used.contains(name)) {
            Some((name, _)) => Err(format!("{:?} has no field {name:?}", r.op)),
            None => Ok(()),
        }
    }
}

fn record(o: &Operation) -> Record {
    let known = o.is_known();
    let result = |j: Json| known.then_some(j);
    let mut r = Record {
        client: o.client,
        invoke: o.invoke,
        complete: o.complete,
        op: Kind::Get,
        key: o.op.key().to_owned(),
        value: None,
        by: None,
        expected: None,
        new: None,
        result: None,
    };
    match &o.op {
        Op::Get { result: v, .. } => {
            r.result = result(v.clone().map_or(Json::Null, Json::String));
        }
        Op::Put { value, .. } => {
            r.op = Kind::Put;
            r.value = Some(value.clone());
        }
        Op::Append { value, .. } => {
            r.op = Kind::Append;
            r.value = Some(value.clone());
        }
        Op::Incr { by, result: v, .. } => {
            r.op = Kind::Incr;
            r.by = Some(*by);
            r.result = result(Json::from(*v));
        }
        Op::Cas { expected, new, result: v, .. } => {
            r.op = Kind::Cas;
            r.expected = Some(expected.clone());
            r.new = Some(new.clone());
            r.result = result(Json::Bool(*v));
        }
        Op::Delete { result: v, .. } => {
            r.op = Kind::Delete;
            r.result = result(Json::Bool(*v));
        }
    }
    r
}
