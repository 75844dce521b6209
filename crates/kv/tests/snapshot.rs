//! Snapshots, determinism and the request wire format, including property tests.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use kv::{Command, Request, RequestBody, Response, Store};
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "k0", "k1", "k2", "h0", "h1", "l0", "l1", "f0", "f1", "v", "-1", "0", "1", "2", "5", "100", "1500", "nx", "xx",
    "get", "ex", "px", "keepttl", "gt", "lt", "count", "match", "type", "*", "k*", "h?", "list", "string",
];

const NAMES: &[&str] = &[
    "get", "set", "setnx", "getset", "getdel", "del", "exists", "incr", "incrby", "decr", "decrby", "append", "strlen",
    "mget", "mset", "msetnx", "dbsize", "ttl", "pttl", "expire", "pexpire", "persist", "type", "keys", "scan", "hset",
    "hget", "hmget", "hdel", "hgetall", "hlen", "hexists", "hincrby", "lpush", "rpush", "lpop", "rpop", "lrange",
    "llen", "lindex", "flushall",
];

/// Argument lists that mostly parse: a known name and a few words.
fn arb_args() -> impl Strategy<Value = Vec<Bytes>> {
    (0..NAMES.len(), prop::collection::vec(0..WORDS.len(), 0..6)).prop_map(|(name, words)| {
        let mut args = vec![Bytes::from_static(NAMES[name].as_bytes())];
        args.extend(words.into_iter().map(|w| Bytes::from_static(WORDS[w].as_bytes())));
        args
    })
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop::collection::vec(arb_args(), 8)
        .prop_filter_map("no command parsed", |candidates| candidates.iter().find_map(|a| Command::parse(a).ok()))
}

fn arb_request() -> impl Strategy<Value = Request> {
    let body = prop_oneof![
        4 => arb_command().prop_map(RequestBody::Command),
        1 => prop::collection::vec(arb_command(), 0..4).prop_map(RequestBody::Transaction),
    ];
    // Few clients and sequences, so retries and stale requests happen.
    (0..4u64, 0..6u64, 0..3000u64, body).prop_map(|(client_id, seq, dt, body)| Request {
        client_id,
        seq,
        time_ms: T0 + dt,
        body,
    })
}

/// Requests with times that mostly move forward (and sometimes back).
fn arb_history() -> impl Strategy<Value = Vec<Request>> {
    prop::collection::vec(arb_request(), 1..80).prop_map(|mut rs| {
        let mut t = T0;
        for r in &mut rs {
            t += r.time_ms - T0;
            r.time_ms = if r.seq == 0 { t.saturating_sub(500) } else { t };
        }
        rs
    })
}

fn snapshot(store: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    store.snapshot(&mut out).unwrap();
    out
}

fn apply_all(store: &mut Store, requests: &[Request]) -> Vec<Response> {
    requests.iter().enumerate().map(|(i, r)| store.apply(i as u64 + 1, r)).collect()
}

/// Reads that together show the observable state.
fn observe(store: &Store, now: u64) -> Vec<Response> {
    let mut lines = vec!["dbsize".to_string(), "keys *".to_string(), "scan 0 count 3".to_string()];
    for k in ["k0", "k1", "k2", "h0", "h1", "l0", "l1", "v"] {
        for cmd in ["type", "pttl", "get", "hgetall", "llen"] {
            lines.push(format!("{cmd} {k}"));
        }
        lines.push(format!("lrange {k} 0 -1"));
    }
    lines.iter().map(|l| store.read(&parse(l), now)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_and_round_trips(
        name in 0..NAMES.len(),
        raw in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..8),
    ) {
        let mut args = vec![Bytes::from_static(NAMES[name].as_bytes())];
        args.extend(raw.into_iter().map(Bytes::from));
        if let Ok(c) = Command::parse(&args) {
            prop_assert_eq!(Command::parse(&c.to_args()), Ok(c));
        }
    }

    #[test]
    fn request_round_trips(request in arb_request()) {
        prop_assert_eq!(Request::decode(&request.encode()), Ok(request));
    }

    #[test]
    fn decode_of_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Request::decode(&bytes);
        let mut with_version = vec![kv::REQUEST_VERSION];
        with_version.extend_from_slice(&bytes);
        let _ = Request::decode(&with_version);
    }

    #[test]
    fn decode_of_mutated_request_never_panics(request in arb_request(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut bytes = request.encode();
        let i = at.index(bytes.len());
        bytes[i] = b;
        let _ = Request::decode(&bytes);
        bytes.truncate(i);
        prop_assert!(Request::decode(&bytes).is_err());
    }

    #[test]
    fn snapshot_restore_gives_the_same_store(history in arb_history(), more in arb_history()) {
        let mut a = Store::new();
        apply_all(&mut a, &history);
        let snap = snapshot(&a);
        let mut b = Store::new();
        b.restore(&mut snap.as_slice()).unwrap();
        prop_assert_eq!(snapshot(&b), snap);
        prop_assert_eq!(b.applied_index(), a.applied_index());
        let now = a.clock_ms();
        prop_assert_eq!(observe(&a, now), observe(&b, now));
        prop_assert_eq!(observe(&a, now + 1500), observe(&b, now + 1500));
        // Sessions came along: the same further entries get the same replies.
        let more: Vec<Request> = history.iter().rev().take(5).cloned().chain(more).collect();
        prop_assert_eq!(apply_all(&mut a, &more), apply_all(&mut b, &more));
        prop_assert_eq!(snapshot(&a), snapshot(&b));
    }

    #[test]
    fn same_entries_give_identical_snapshots(history in arb_history()) {
        let (mut a, mut b) = (Store::new(), Store::new());
        prop_assert_eq!(apply_all(&mut a, &history), apply_all(&mut b, &history));
        prop_assert_eq!(snapshot(&a), snapshot(&b));
    }

    #[test]
    fn restored_replica_converges(history in arb_history(), split in any::<prop::sample::Index>()) {
        let k = split.index(history.len() + 1);
        let mut a = Store::new();
        let replies_a = apply_all(&mut a, &history);
        let mut partial = Store::new();
        apply_all(&mut partial, &history[..k]);
        let mut b = Store::new();
        b.restore(&mut snapshot(&partial).as_slice()).unwrap();
        let replies_b: Vec<Response> =
            history[k..].iter().enumerate().map(|(i, r)| b.apply((k + i) as u64 + 1, r)).collect();
        prop_assert_eq!(&replies_a[k..], &replies_b[..]);
        prop_assert_eq!(snapshot(&a), snapshot(&b));
    }
}

fn sample_store() -> Store {
    let mut db = Db::new();
    db.cmd("mset a 1 b 2");
    db.cmd("set e v px 100000");
    db.cmd("hset h f v g w");
    db.cmd("rpush l x y z");
    db.request(5, 1, RequestBody::Command(parse("incr n")));
    db.request(6, 1, RequestBody::Transaction(vec![parse("mget a b"), parse("hgetall h")]));
    db.store
}

#[test]
fn every_corruption_is_rejected_and_leaves_the_store_unchanged() {
    let snap = snapshot(&sample_store());
    let mut target = Db::new();
    target.cmd("set keep me");
    target.request(1, 1, RequestBody::Command(parse("incr x")));
    let before = snapshot(&target.store);
    for i in 0..snap.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut bad = snap.clone();
            bad[i] ^= flip;
            assert!(target.store.restore(&mut bad.as_slice()).is_err(), "flip {flip:#x} at {i}");
        }
        assert!(target.store.restore(&mut &snap[..i]).is_err(), "truncated at {i}");
    }
    let mut longer = snap.clone();
    longer.push(0);
    assert!(target.store.restore(&mut longer.as_slice()).is_err(), "trailing byte");
    assert!(target.store.restore(&mut &b""[..]).is_err());
    assert_eq!(snapshot(&target.store), before);
    target.store.restore(&mut snap.as_slice()).unwrap();
    assert_eq!(snapshot(&target.store), snap);
}

#[test]
fn a_valid_checksum_over_invalid_records_is_still_rejected() {
    // Forge a snapshot that says one key but holds an empty list: checksum fine, content not.
    let mut forged = Vec::new();
    forged.extend_from_slice(&kv::SNAPSHOT_MAGIC);
    forged.extend_from_slice(&kv::SNAPSHOT_VERSION.to_le_bytes());
    for v in [1u64, T0, 1, 0] {
        forged.extend_from_slice(&v.to_le_bytes());
    }
    forged.push(3); // list
    forged.extend_from_slice(&1u64.to_le_bytes());
    forged.push(b'l');
    forged.extend_from_slice(&0u64.to_le_bytes()); // no expiry
    forged.extend_from_slice(&0u64.to_le_bytes()); // zero items
    let crc = crc32c_of(&forged);
    forged.extend_from_slice(&crc.to_le_bytes());
    let mut store = Store::new();
    let e = store.restore(&mut forged.as_slice()).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn snapshot_of_empty_store_round_trips() {
    let snap = snapshot(&Store::new());
    let mut s = sample_store();
    s.restore(&mut snap.as_slice()).unwrap();
    assert_eq!(s.key_count(), 0);
    assert_eq!(s.session_count(), 0);
    assert_eq!(snapshot(&s), snap);
}

#[test]
fn snapshot_streams_in_small_writes() {
    /// Counts the largest single write.
    struct Probe(usize, usize);
    impl std::io::Write for Probe {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.max(buf.len());
            self.1 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut db = Db::new();
    for i in 0..5000 {
        db.cmd(&format!("set key:{i} {}", "x".repeat(100)));
    }
    let mut probe = Probe(0, 0);
    db.store.snapshot(&mut probe).unwrap();
    assert!(probe.1 > 500_000);
    assert!(probe.0 <= 64 * 1024, "largest write {}", probe.0);
}

/// CRC32C (Castagnoli), bit by bit: an independent check of the format.
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}
