//! Client sessions (Raft thesis §6.3) and MULTI/EXEC transactions.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use kv::{Limits, RequestBody, Response, Store};

fn one(line: &str) -> RequestBody {
    RequestBody::Command(parse(line))
}

#[test]
fn retry_gets_the_same_reply_and_applies_once() {
    let mut db = Db::new();
    assert_eq!(db.request(7, 1, one("incr n")), int(1));
    db.advance(10);
    assert_eq!(db.request(7, 1, one("incr n")), int(1), "a retry: cached reply");
    assert_eq!(db.request(7, 1, one("incr n")), int(1));
    assert_eq!(db.cmd("get n"), bulk("1"), "applied once");
    assert_eq!(db.request(7, 2, one("incr n")), int(2));
    assert_eq!(db.request(8, 1, one("incr n")), int(3), "sessions are per client");
}

#[test]
fn older_sequence_is_refused_without_applying() {
    let mut db = Db::new();
    db.request(7, 5, one("incr n"));
    let Response::Error(text) = db.request(7, 4, one("incr n")) else { panic!() };
    assert!(text.starts_with(kv::STALE_REQUEST_PREFIX), "{text}");
    assert_eq!(db.cmd("get n"), bulk("1"));
    assert_eq!(db.request(7, 5, one("incr n")), int(1), "the last reply is still cached");
}

#[test]
fn error_replies_are_cached_too() {
    let mut db = Db::new();
    db.cmd("set s abc");
    assert_eq!(db.request(1, 1, one("incr s")), err(NOT_INT));
    db.cmd("set s 10");
    assert_eq!(db.request(1, 1, one("incr s")), err(NOT_INT), "the outcome the client missed, not a new one");
    assert_eq!(db.cmd("get s"), bulk("10"));
}

#[test]
fn no_session_always_applies() {
    let mut db = Db::new();
    assert_eq!(db.request(0, 1, one("incr n")), int(1));
    assert_eq!(db.request(0, 1, one("incr n")), int(2));
    assert_eq!(db.store.session_count(), 0);
}

#[test]
fn sessions_expire_after_an_idle_hour_of_entry_time() {
    let mut db = Db::new();
    db.request(1, 1, one("incr n"));
    db.request(2, 1, one("incr n"));
    db.advance(30 * 60 * 1000);
    db.request(2, 2, one("incr n")); // client 2 stays active
    assert_eq!(db.store.session_count(), 2);
    db.advance(30 * 60 * 1000);
    db.cmd("dbsize"); // any entry moves time on
    assert_eq!(db.store.session_count(), 1, "client 1 idle for an hour: dropped");
    // Documented limit: a retry after the session is gone is applied again.
    assert_eq!(db.request(1, 1, one("incr n")), int(4));
}

#[test]
fn session_cap_evicts_least_recently_used() {
    let limits = Limits { sessions_max: 2, ..Limits::default() };
    let mut db = Db { store: Store::with_limits(limits), index: 0, time_ms: T0 };
    db.request(1, 1, one("incr n"));
    db.advance(1);
    db.request(2, 1, one("incr n"));
    db.advance(1);
    db.request(1, 1, one("incr n")); // a retry still counts as use
    db.advance(1);
    db.request(3, 1, one("incr n"));
    assert_eq!(db.store.session_count(), 2);
    assert_eq!(db.request(1, 1, one("incr n")), int(1), "client 1 kept");
    assert_eq!(db.request(2, 1, one("incr n")), int(4), "client 2 was evicted, so it applies again");
}

#[test]
fn transaction_is_one_entry_with_an_array_reply() {
    let mut db = Db::new();
    db.cmd("set s abc");
    let tx = RequestBody::Transaction(vec![parse("set a 1"), parse("incr s"), parse("incr a"), parse("get a")]);
    let before = db.index;
    let reply = db.request(9, 1, tx.clone());
    assert_eq!(db.index, before + 1);
    assert_eq!(reply, list(vec![ok(), err(NOT_INT), int(2), bulk("2")]), "an error does not roll back the others");
    assert_eq!(db.request(9, 1, tx), reply, "retried as a whole: cached");
    assert_eq!(db.cmd("get a"), bulk("2"));
    assert_eq!(db.apply(RequestBody::Transaction(vec![])), list(vec![]), "an empty EXEC is an empty array");
}

#[test]
fn transaction_sees_its_own_writes_and_expiry() {
    let mut db = Db::new();
    let tx = RequestBody::Transaction(vec![
        parse("rpush l a b"),
        parse("expire l 0"),
        parse("llen l"),
        parse("set k v"),
        parse("mget k l"),
    ]);
    assert_eq!(db.apply(tx), list(vec![int(2), int(1), int(0), ok(), list(vec![bulk("v"), nil()])]));
}

#[test]
fn transaction_reply_nested_in_session_survives_snapshot() {
    let mut db = Db::new();
    let tx = RequestBody::Transaction(vec![parse("scan 0"), parse("hgetall h")]);
    let reply = db.request(3, 1, tx.clone());
    let mut snap = Vec::new();
    db.store.snapshot(&mut snap).unwrap();
    let mut other = Db::new();
    other.store.restore(&mut snap.as_slice()).unwrap();
    other.index = db.index;
    assert_eq!(other.request(3, 1, tx), reply);
    assert!(matches!(reply, Response::Array(Some(_))));
}
