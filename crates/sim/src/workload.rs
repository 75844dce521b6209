//! The operations KV clients issue, on a small key set, and how each maps to
//! a `kv` command and to a [`lincheck`] operation.
//!
//! Two kinds of keys keep every operation's result checkable: string keys
//! (`s0`, `s1`, ...) get GET, SET, APPEND, a compare-and-set and DEL; counter
//! keys (`n0`, ...) get GET, INCRBY and DEL, so INCRBY never meets a value
//! that is not an integer. Values name their writer (`client:seq`), so a read
//! of a value never written, or of a lost write, shows.
//!
//! The compare-and-set is `SET key value NX`: set if absent, which `kv` has
//! (it has no compare-to-value command). Together with DEL it is the
//! acquire/release of a lock, and lincheck checks it as `cas` with
//! `expected: null`: `OK` means it swapped, a nil reply that the key existed.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::Rng;

use kv::{Command, RequestBody, Response};
use lincheck::Op;

use crate::kv_client::{body, get_result, parse, unexpected};

/// One operation of the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// `GET key`, through ReadIndex.
    Get(String),
    /// `SET key value`.
    Set(String, String),
    /// `APPEND key value`.
    Append(String, String),
    /// `INCRBY key by`.
    Incr(String, i64),
    /// `SET key value NX`: compare-and-set against "absent".
    SetIfAbsent(String, String),
    /// `DEL key`.
    Del(String),
}

impl KvOp {
    /// Whether it is served by ReadIndex rather than the log.
    pub fn is_read(&self) -> bool {
        matches!(self, KvOp::Get(_))
    }

    /// The `kv` command.
    pub fn command(&self) -> Command {
        match self {
            KvOp::Get(k) => parse(&["GET", k]),
            KvOp::Set(k, v) => parse(&["SET", k, v]),
            KvOp::Append(k, v) => parse(&["APPEND", k, v]),
            KvOp::Incr(k, by) => parse(&["INCRBY", k, &by.to_string()]),
            KvOp::SetIfAbsent(k, v) => parse(&["SET", k, v, "NX"]),
            KvOp::Del(k) => parse(&["DEL", k]),
        }
    }

    /// The body of its log entry.
    pub fn body(&self) -> RequestBody {
        body(self.command())
    }

    /// The history operation for the reply `response`, or why no correct
    /// store gives that reply.
    pub fn completed(&self, response: &Response) -> Result<Op, String> {
        let op = match (self, response) {
            (KvOp::Get(k), r) => get_result(k, r),
            (KvOp::Set(k, v), Response::Simple(s)) if s == "OK" => Some(Op::Put { key: k.clone(), value: v.clone() }),
            (KvOp::Append(k, v), Response::Integer(_)) => Some(Op::Append { key: k.clone(), value: v.clone() }),
            (KvOp::Incr(k, by), Response::Integer(n)) => Some(Op::Incr { key: k.clone(), by: *by, result: *n }),
            (KvOp::SetIfAbsent(k, v), Response::Simple(s)) if s == "OK" => {
                Some(Op::Cas { key: k.clone(), expected: None, new: v.clone(), result: true })
            }
            (KvOp::SetIfAbsent(k, v), Response::Bulk(None)) => {
                Some(Op::Cas { key: k.clone(), expected: None, new: v.clone(), result: false })
            }
            (KvOp::Del(k), Response::Integer(n @ (0 | 1))) => Some(Op::Delete { key: k.clone(), result: *n == 1 }),
            _ => None,
        };
        op.ok_or_else(|| unexpected(self, response))
    }

    /// The history operation when the outcome is unknown (results ignored).
    pub fn unknown(&self) -> Op {
        match self {
            KvOp::Get(k) => Op::Get { key: k.clone(), result: None },
            KvOp::Set(k, v) => Op::Put { key: k.clone(), value: v.clone() },
            KvOp::Append(k, v) => Op::Append { key: k.clone(), value: v.clone() },
            KvOp::Incr(k, by) => Op::Incr { key: k.clone(), by: *by, result: 0 },
            KvOp::SetIfAbsent(k, v) => Op::Cas { key: k.clone(), expected: None, new: v.clone(), result: false },
            KvOp::Del(k) => Op::Delete { key: k.clone(), result: false },
        }
    }
}

/// The keys of a run and the mix of operations on them.
#[derive(Clone, Debug)]
pub struct KeySet {
    /// Number of string keys (`s0`...).
    pub strings: usize,
    /// Number of counter keys (`n0`...).
    pub counters: usize,
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet { strings: 3, counters: 2 }
    }
}

impl KeySet {
    /// A GET of a random key.
    pub fn generate_read(&self, rng: &mut Xoshiro256PlusPlus) -> KvOp {
        let k = rng.next_u64() % (self.strings + self.counters).max(1) as u64;
        match k < self.strings as u64 {
            true => KvOp::Get(format!("s{k}")),
            false => KvOp::Get(format!("n{}", k - self.strings as u64)),
        }
    }

    /// A random operation of client `client`'s `seq`-th request: 35% GET,
    /// 15% SET, 15% APPEND, 10% SET NX, 5% DEL, 20% INCRBY.
    pub fn generate(&self, rng: &mut Xoshiro256PlusPlus, client: u64, seq: u64) -> KvOp {
        let string = format!("s{}", rng.next_u64() % self.strings.max(1) as u64);
        let counter = format!("n{}", rng.next_u64() % self.counters.max(1) as u64);
        let any = if rng.next_u64() % ((self.strings + self.counters).max(1) as u64) < self.strings as u64 {
            string.clone()
        } else {
            counter.clone()
        };
        let value = format!("{client}:{seq}");
        match rng.next_u64() % 100 {
            0..35 => KvOp::Get(any),
            35..50 => KvOp::Set(string, value),
            50..65 => KvOp::Append(string, format!("{value};")),
            65..75 => KvOp::SetIfAbsent(string, value),
            75..80 => KvOp::Del(any),
            _ => KvOp::Incr(counter, 1 + (rng.next_u64() % 5) as i64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_xoshiro::rand_core::SeedableRng;

    #[test]
    fn replies_map_to_history_operations_and_bad_replies_are_errors() {
        let cas = KvOp::SetIfAbsent("s0".into(), "1:1".into());
        assert_eq!(
            cas.completed(&Response::nil()),
            Ok(Op::Cas { key: "s0".into(), expected: None, new: "1:1".into(), result: false })
        );
        assert!(cas.completed(&Response::Integer(3)).is_err());
        let incr = KvOp::Incr("n0".into(), 2);
        assert_eq!(incr.completed(&Response::Integer(7)), Ok(Op::Incr { key: "n0".into(), by: 2, result: 7 }));
        assert!(incr.completed(&Response::Error("ERR value is not an integer or out of range".into())).is_err());
        assert!(KvOp::Del("s1".into()).completed(&Response::Integer(2)).is_err());
        assert_eq!(
            KvOp::Get("s1".into()).completed(&Response::bulk("x")),
            Ok(Op::Get { key: "s1".into(), result: Some("x".into()) })
        );
    }

    #[test]
    fn the_mix_uses_every_operation_and_keeps_counters_apart() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let keys = KeySet::default();
        let ops: Vec<KvOp> = (0..1000).map(|seq| keys.generate(&mut rng, 1, seq)).collect();
        for kind in 0..6 {
            assert!(ops.iter().any(|op| std::mem::discriminant(op) == std::mem::discriminant(&sample(kind))));
        }
        for op in &ops {
            match op {
                KvOp::Incr(k, _) => assert!(k.starts_with('n')),
                KvOp::Set(k, _) | KvOp::Append(k, _) | KvOp::SetIfAbsent(k, _) => assert!(k.starts_with('s')),
                _ => {}
            }
            // Every generated command is one kv accepts.
            let _ = op.command();
        }
    }

    fn sample(kind: usize) -> KvOp {
        let k = String::new;
        [
            KvOp::Get(k()),
            KvOp::Set(k(), k()),
            KvOp::Append(k(), k()),
            KvOp::Incr(k(), 1),
            KvOp::SetIfAbsent(k(), k()),
            KvOp::Del(k()),
        ][kind]
            .clone()
    }
}
