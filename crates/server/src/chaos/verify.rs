//! The end of a chaos run: read every key once the cluster is whole again,
//! check that every acknowledged write is there, and check the history.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use lincheck::{Op, Operation};

use super::workload::{Recorder, is_log_key};
use crate::{Client, ClientConfig};

/// Reads every key in `keys` (recording the reads in the history as client
/// 0) and returns the values read; a read that fails is an anomaly.
pub async fn final_reads(
    nodes: Vec<SocketAddr>,
    keys: &[String],
    recorder: &Recorder,
) -> BTreeMap<String, Option<String>> {
    let mut config = ClientConfig::new(nodes);
    config.deadline = Duration::from_secs(30);
    let mut values = BTreeMap::new();
    let mut client = match Client::new(config) {
        Ok(client) => client,
        Err(e) => {
            recorder.anomaly(format!("final reads: {e}"));
            return values;
        }
    };
    for key in keys {
        let invoke = recorder.now();
        match client.get(key).await {
            Ok(value) => {
                let value = value.map(|b| String::from_utf8_lossy(&b).into_owned());
                let op = Op::Get { key: key.clone(), result: value.clone() };
                recorder.record_final(Operation::completed(0, invoke, recorder.now(), op));
                values.insert(key.clone(), value);
            }
            Err(e) => recorder.anomaly(format!("final read of {key:?} failed: {e}")),
        }
    }
    values
}

/// Every acknowledged append to a log key must be in the key's final value,
/// and every counter must hold at least its acknowledged increments and at
/// most those plus the ones whose outcome is unknown. Returns the violations.
pub fn lost_writes(
    ops: &[Operation],
    acked_appends: &[(String, String)],
    finals: &BTreeMap<String, Option<String>>,
) -> Vec<String> {
    let mut lost = Vec::new();
    for (key, token) in acked_appends {
        let Some(value) = finals.get(key) else { continue };
        if !value.as_deref().unwrap_or_default().contains(token.as_str()) {
            lost.push(format!("acknowledged append {token:?} to {key:?} is missing from its final value"));
        }
    }
    let mut counters: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for op in ops {
        if let Op::Incr { key, by, .. } = &op.op {
            let (acked, unknown) = counters.entry(key).or_default();
            if op.is_known() { *acked += by } else { *unknown += by }
        }
    }
    for (key, (acked, unknown)) in counters {
        let Some(value) = finals.get(key) else { continue };
        let value: i64 = value.as_deref().unwrap_or("0").parse().unwrap_or(i64::MIN);
        if value < acked || value > acked + unknown {
            lost.push(format!(
                "counter {key:?} is {value}, outside [{acked}, {}] (acknowledged, plus unknown increments)",
                acked + unknown
            ));
        }
    }
    debug_assert!(acked_appends.iter().all(|(k, _)| is_log_key(k)));
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_acknowledged_write_is_reported() {
        let incr = |by, known: bool| {
            let op = Op::Incr { key: "c0".into(), by, result: by };
            if known { Operation::completed(1, 0, 1, op) } else { Operation::unknown(1, 0, op) }
        };
        let ops = vec![incr(2, true), incr(3, false)];
        let appends = vec![("a0.0".to_owned(), ";1.1;".to_owned()), ("a0.0".to_owned(), ";1.2;".to_owned())];
        let mut finals = BTreeMap::new();
        finals.insert("a0.0".to_owned(), Some(";1.1;;1.2;".to_owned()));
        finals.insert("c0".to_owned(), Some("5".to_owned()));
        assert!(lost_writes(&ops, &appends, &finals).is_empty());
        finals.insert("c0".to_owned(), Some("2".to_owned()));
        assert!(lost_writes(&ops, &appends, &finals).is_empty());
        finals.insert("a0.0".to_owned(), Some(";1.2;".to_owned()));
        finals.insert("c0".to_owned(), Some("1".to_owned()));
        let lost = lost_writes(&ops, &appends, &finals);
        assert_eq!(lost.len(), 2, "{lost:?}");
        finals.insert("c0".to_owned(), Some("6".to_owned()));
        assert_eq!(lost_writes(&ops, &appends, &finals).len(), 2);
    }
}
