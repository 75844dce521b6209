//! Per-command behaviour, mirroring Redis 7 (replies and error texts).
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use kv::{Command, CommandError, Response};

#[test]
fn parse_errors_are_redis_texts() {
    let e = |line: &str| Command::parse(&args(line)).unwrap_err().to_string();
    assert_eq!(e("foo a b"), "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
    assert_eq!(e("foo"), "ERR unknown command 'foo', with args beginning with: ");
    assert_eq!(e("get"), "ERR wrong number of arguments for 'get' command");
    assert_eq!(e("GET a b"), "ERR wrong number of arguments for 'get' command");
    assert_eq!(e("mset a"), "ERR wrong number of arguments for 'mset' command");
    assert_eq!(e("mset a 1 b"), "ERR wrong number of arguments for 'mset' command");
    assert_eq!(e("hset h f"), "ERR wrong number of arguments for 'hset' command");
    assert_eq!(e("hset h f v g"), "ERR wrong number of arguments for 'hset' command");
    assert_eq!(e("lpop l 1 2"), "ERR wrong number of arguments for 'lpop' command");
    assert_eq!(e("incrby k x"), NOT_INT);
    assert_eq!(e("incrby k 01"), NOT_INT);
    assert_eq!(e("incrby k +1"), NOT_INT);
    assert_eq!(e("incrby k 9223372036854775808"), NOT_INT);
    assert_eq!(e("decrby k -9223372036854775808"), "ERR decrement would overflow");
    assert_eq!(e("lpop l -1"), "ERR value is out of range, must be positive");
    assert_eq!(e("lpop l x"), "ERR value is out of range, must be positive");
    assert_eq!(e("scan x"), "ERR invalid cursor");
    assert_eq!(e("scan 0 count 0"), SYNTAX);
    assert_eq!(e("scan 0 match"), SYNTAX);
    assert_eq!(e("flushall now"), SYNTAX);
    assert_eq!(Command::parse(&[]).unwrap_err(), CommandError::Empty);
    // Newlines never reach the error text (it must stay a valid RESP simple error).
    let weird = [Bytes::from("fo\r\no"), Bytes::from("a\nb")];
    assert_eq!(
        Command::parse(&weird).unwrap_err().to_string(),
        "ERR unknown command 'fo  o', with args beginning with: 'a b' "
    );
}

#[test]
fn unknown_command_lists_about_128_bytes_of_args() {
    let mut a = vec![Bytes::from("nope")];
    a.extend((0..100).map(|_| Bytes::from("x".repeat(50))));
    let text = Command::parse(&a).unwrap_err().to_string();
    assert!(text.len() < 128 + 150, "{}", text.len());
}

#[test]
fn names_are_case_insensitive() {
    let mut db = Db::new();
    assert_eq!(db.cmd("SeT k v"), ok());
    assert_eq!(db.cmd("gEt k"), bulk("v"));
}

#[test]
fn get_set_basics() {
    let mut db = Db::new();
    assert_eq!(db.cmd("get k"), nil());
    assert_eq!(db.cmd("set k v"), ok());
    assert_eq!(db.cmd("get k"), bulk("v"));
    assert_eq!(db.cmd("set k w"), ok());
    assert_eq!(db.cmd("get k"), bulk("w"));
    db.cmd("lpush l a");
    assert_eq!(db.cmd("get l"), err(WRONGTYPE));
    assert_eq!(db.cmd("set l v"), ok(), "plain SET overwrites any type");
    assert_eq!(db.cmd("type l"), simple("string"));
}

#[test]
fn set_nx_xx_get() {
    let mut db = Db::new();
    assert_eq!(db.cmd("set k v xx"), nil());
    assert_eq!(db.cmd("get k"), nil());
    assert_eq!(db.cmd("set k v nx"), ok());
    assert_eq!(db.cmd("set k w nx"), nil());
    assert_eq!(db.cmd("get k"), bulk("v"));
    assert_eq!(db.cmd("set k w xx"), ok());
    assert_eq!(db.cmd("set k x get"), bulk("w"));
    assert_eq!(db.cmd("set n x get"), nil());
    assert_eq!(db.cmd("set k y nx get"), bulk("x"), "NX GET returns the old value and does not set");
    assert_eq!(db.cmd("get k"), bulk("x"));
    db.cmd("hset h f v");
    assert_eq!(db.cmd("set h v get"), err(WRONGTYPE));
    assert_eq!(db.cmd("type h"), simple("hash"), "SET GET on a wrong type does not write");
}

#[test]
fn set_conflicting_options() {
    let mut db = Db::new();
    for line in [
        "set k v nx xx",
        "set k v xx nx",
        "set k v ex 10 px 100",
        "set k v ex 10 keepttl",
        "set k v keepttl ex 10",
        "set k v pxat 10 exat 10",
        "set k v ex",
        "set k v bogus",
    ] {
        assert_eq!(db.cmd(line), err(SYNTAX), "{line}");
    }
    assert_eq!(db.cmd("set k v ex 10 ex 20"), ok(), "a repeated option is allowed, the last wins");
    assert_eq!(db.cmd("ttl k"), int(20));
    assert_eq!(db.cmd("set k v ex 0"), err("ERR invalid expire time in 'set' command"));
    assert_eq!(db.cmd("set k v px -5"), err("ERR invalid expire time in 'set' command"));
    assert_eq!(db.cmd("set k v ex 9223372036854775"), err("ERR invalid expire time in 'set' command"));
    assert_eq!(db.cmd("set k v ex abc"), err(NOT_INT));
    assert_eq!(db.cmd("set k v px 9223372036854775807"), err("ERR invalid expire time in 'set' command"));
}

#[test]
fn set_expiry_options() {
    let mut db = Db::new();
    assert_eq!(db.cmd("set a v ex 10"), ok());
    assert_eq!(db.cmd("pttl a"), int(10_000));
    assert_eq!(db.cmd("set b v px 1500"), ok());
    assert_eq!(db.cmd("ttl b"), int(2), "TTL rounds to the nearest second");
    assert_eq!(db.cmd(&format!("set c v exat {}", T0 / 1000 + 100)), ok());
    assert_eq!(db.cmd("ttl c"), int(100));
    assert_eq!(db.cmd(&format!("set d v pxat {}", T0 + 42)), ok());
    assert_eq!(db.cmd("pttl d"), int(42));
    assert_eq!(db.cmd(&format!("set e v pxat {}", T0 - 1)), ok(), "a past time sets and expires at once");
    assert_eq!(db.cmd("exists e"), int(0));
    assert_eq!(db.cmd("set a w"), ok());
    assert_eq!(db.cmd("ttl a"), int(-1), "SET clears the TTL");
    assert_eq!(db.cmd("set d w keepttl"), ok());
    assert_eq!(db.cmd("pttl d"), int(42), "KEEPTTL keeps it");
}

#[test]
fn setnx_getset_getdel() {
    let mut db = Db::new();
    assert_eq!(db.cmd("setnx k v"), int(1));
    assert_eq!(db.cmd("setnx k w"), int(0));
    assert_eq!(db.cmd("getset k w"), bulk("v"));
    assert_eq!(db.cmd("getset n w"), nil());
    db.cmd("expire k 100");
    assert_eq!(db.cmd("getset k x"), bulk("w"));
    assert_eq!(db.cmd("ttl k"), int(-1), "GETSET clears the TTL");
    assert_eq!(db.cmd("getdel k"), bulk("x"));
    assert_eq!(db.cmd("getdel k"), nil());
    assert_eq!(db.cmd("exists k"), int(0));
    db.cmd("rpush l a");
    assert_eq!(db.cmd("getdel l"), err(WRONGTYPE));
    assert_eq!(db.cmd("getset l v"), err(WRONGTYPE));
    assert_eq!(db.cmd("llen l"), int(1));
}

#[test]
fn del_exists_dbsize_type_flushall() {
    let mut db = Db::new();
    db.cmd("mset a 1 b 2 c 3");
    db.cmd("hset h f v");
    assert_eq!(db.cmd("exists a a b zz"), int(3), "EXISTS counts repeats");
    assert_eq!(db.cmd("dbsize"), int(4));
    assert_eq!(db.cmd("del a b zz"), int(2));
    assert_eq!(db.cmd("del a"), int(0));
    assert_eq!(db.cmd("type c"), simple("string"));
    assert_eq!(db.cmd("type zz"), simple("none"));
    assert_eq!(db.cmd("flushall"), ok());
    assert_eq!(db.cmd("flushall async"), ok());
    assert_eq!(db.cmd("dbsize"), int(0));
}

#[test]
fn incr_decr() {
    let mut db = Db::new();
    assert_eq!(db.cmd("incr n"), int(1));
    assert_eq!(db.cmd("incrby n 10"), int(11));
    assert_eq!(db.cmd("decr n"), int(10));
    assert_eq!(db.cmd("decrby n 20"), int(-10));
    assert_eq!(db.cmd("get n"), bulk("-10"));
    db.cmd("set s abc");
    assert_eq!(db.cmd("incr s"), err(NOT_INT));
    db.cmd("set s 007");
    assert_eq!(db.cmd("incr s"), err(NOT_INT), "leading zeros are not an integer");
    db.cmd("set m 9223372036854775807");
    assert_eq!(db.cmd("incr m"), err("ERR increment or decrement would overflow"));
    assert_eq!(db.cmd("get m"), bulk("9223372036854775807"), "a failed INCR writes nothing");
    db.cmd("set m -9223372036854775808");
    assert_eq!(db.cmd("decr m"), err("ERR increment or decrement would overflow"));
    db.cmd("lpush l a");
    assert_eq!(db.cmd("incr l"), err(WRONGTYPE));
    db.cmd("set t 5 ex 100");
    assert_eq!(db.cmd("incr t"), int(6));
    assert_eq!(db.cmd("ttl t"), int(100), "INCR keeps the TTL");
}

#[test]
fn append_strlen() {
    let mut db = Db::new();
    assert_eq!(db.cmd("strlen k"), int(0));
    assert_eq!(db.cmd("append k ab"), int(2));
    assert_eq!(db.cmd("append k cde"), int(5));
    assert_eq!(db.cmd("get k"), bulk("abcde"));
    assert_eq!(db.cmd("strlen k"), int(5));
    db.cmd("hset h f v");
    assert_eq!(db.cmd("append h x"), err(WRONGTYPE));
    assert_eq!(db.cmd("strlen h"), err(WRONGTYPE));
}

#[test]
fn mget_mset_msetnx() {
    let mut db = Db::new();
    assert_eq!(db.cmd("mset a 1 b 2"), ok());
    db.cmd("lpush l x");
    assert_eq!(db.cmd("mget a b c l"), list(vec![bulk("1"), bulk("2"), nil(), nil()]), "MGET: nil for non-strings");
    assert_eq!(db.cmd("msetnx c 3 a 9"), int(0), "all or nothing");
    assert_eq!(db.cmd("exists c"), int(0));
    assert_eq!(db.cmd("get a"), bulk("1"));
    assert_eq!(db.cmd("msetnx c 3 d 4"), int(1));
    assert_eq!(db.cmd("mget c d"), arr(&["3", "4"]));
    assert_eq!(db.cmd("msetnx l 1"), int(0), "any type counts as existing");
}

#[test]
fn expire_ttl_persist() {
    let mut db = Db::new();
    assert_eq!(db.cmd("ttl k"), int(-2));
    assert_eq!(db.cmd("pttl k"), int(-2));
    assert_eq!(db.cmd("expire k 10"), int(0));
    db.cmd("set k v");
    assert_eq!(db.cmd("ttl k"), int(-1));
    assert_eq!(db.cmd("expire k 10"), int(1));
    assert_eq!(db.cmd("ttl k"), int(10));
    assert_eq!(db.cmd("pexpire k 2500"), int(1));
    assert_eq!(db.cmd("pttl k"), int(2500));
    assert_eq!(db.cmd("persist k"), int(1));
    assert_eq!(db.cmd("persist k"), int(0));
    assert_eq!(db.cmd("ttl k"), int(-1));
    assert_eq!(db.cmd(&format!("expireat k {}", T0 / 1000 + 5)), int(1));
    assert_eq!(db.cmd("ttl k"), int(5));
    assert_eq!(db.cmd(&format!("pexpireat k {}", T0 + 5)), int(1));
    assert_eq!(db.cmd("pttl k"), int(5));
    assert_eq!(db.cmd("expire k abc"), err(NOT_INT));
    assert_eq!(db.cmd("expire k 9223372036854775807"), err("ERR invalid expire time in 'expire' command"));
    assert_eq!(db.cmd("pexpire k 9223372036854775807"), err("ERR invalid expire time in 'pexpire' command"));
    assert_eq!(db.cmd("pttl k"), int(5), "a failed EXPIRE changes nothing");
}

#[test]
fn zero_or_negative_expire_deletes() {
    let mut db = Db::new();
    db.cmd("set a v");
    db.cmd("set b v");
    db.cmd("set c v");
    assert_eq!(db.cmd("expire a 0"), int(1));
    assert_eq!(db.cmd("pexpire b -100"), int(1));
    assert_eq!(db.cmd("expireat c 1"), int(1));
    assert_eq!(db.cmd("exists a b c"), int(0));
    assert_eq!(db.cmd("dbsize"), int(0));
    assert_eq!(db.store.key_count(), 0, "deleted, not just hidden");
}

#[test]
fn expire_options() {
    let mut db = Db::new();
    db.cmd("set k v");
    assert_eq!(db.cmd("expire k 10 xx"), int(0), "XX: no TTL yet");
    assert_eq!(db.cmd("expire k 10 gt"), int(0), "GT: no TTL counts as infinite");
    assert_eq!(db.cmd("expire k 10 nx"), int(1));
    assert_eq!(db.cmd("expire k 20 nx"), int(0));
    assert_eq!(db.cmd("expire k 20 xx"), int(1));
    assert_eq!(db.cmd("expire k 10 gt"), int(0));
    assert_eq!(db.cmd("expire k 30 gt"), int(1));
    assert_eq!(db.cmd("expire k 40 lt"), int(0));
    assert_eq!(db.cmd("expire k 5 XX LT"), int(1));
    assert_eq!(db.cmd("ttl k"), int(5));
    db.cmd("persist k");
    assert_eq!(db.cmd("expire k 5 lt"), int(1), "LT: no TTL counts as infinite");
    assert_eq!(db.cmd("expire k 5 nx xx"), err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    assert_eq!(db.cmd("expire k 5 gt lt"), err("ERR GT and LT options at the same time are not compatible"));
    assert_eq!(db.cmd("expire k 5 foo"), err("ERR Unsupported option foo"));
}

#[test]
fn expiry_uses_entry_time() {
    let mut db = Db::new();
    db.cmd("set k v px 1000");
    db.cmd("set p v");
    db.advance(999);
    assert_eq!(db.cmd("get k"), bulk("v"));
    assert_eq!(db.cmd("pttl k"), int(1));
    db.advance(1);
    assert_eq!(db.cmd("get k"), nil(), "gone at its deadline");
    assert_eq!(db.cmd("ttl k"), int(-2));
    assert_eq!(db.cmd("dbsize"), int(1));
    assert_eq!(db.store.key_count(), 1, "removed when the entry was applied");
}

#[test]
fn expired_keys_behave_as_absent_for_writes() {
    let mut db = Db::new();
    db.cmd("rpush l a b");
    db.cmd("pexpire l 10");
    db.cmd("hset h f 1");
    db.cmd("pexpire h 10");
    db.cmd("set s 5 px 10");
    db.cmd("set n v px 10");
    db.advance(10);
    // Read outside the log first: hidden, nothing removed.
    assert_eq!(db.read("llen l"), int(0));
    assert_eq!(db.read("dbsize"), int(0));
    assert_eq!(db.store.key_count(), 4);
    assert_eq!(db.cmd("rpush l c"), int(1));
    assert_eq!(db.cmd("hincrby h f 1"), int(1));
    assert_eq!(db.cmd("incr s"), int(1));
    assert_eq!(db.cmd("ttl s"), int(-1));
    assert_eq!(db.cmd("setnx n w"), int(1));
}

#[test]
fn clock_never_goes_back() {
    let mut db = Db::new();
    db.cmd("set k v px 100");
    db.advance(100);
    assert_eq!(db.cmd("get k"), nil());
    db.time_ms -= 50; // a new leader whose clock is behind
    db.cmd("set other v");
    assert_eq!(db.store.clock_ms(), T0 + 100);
    db.cmd("set j v px 100");
    assert_eq!(db.cmd("pttl j"), int(100), "relative expiries count from the store's clock");
    assert_eq!(db.store.read(&parse("pttl j"), 0), int(100), "a reader's slow clock does not revive anything");
}

#[test]
fn keys_patterns() {
    let mut db = Db::new();
    db.cmd("mset hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5 a*b 6 a?b 7 axb 8");
    let keys = |db: &mut Db, p: &str| {
        let Response::Array(Some(items)) = db.cmd(&format!("keys {p}")) else { panic!() };
        let mut names: Vec<String> = items
            .into_iter()
            .map(|r| match r {
                Response::Bulk(Some(b)) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(keys(&mut db, "h?llo"), ["hallo", "hello", "hxllo"]);
    assert_eq!(keys(&mut db, "h*llo"), ["hallo", "heeeello", "hello", "hllo", "hxllo"]);
    assert_eq!(keys(&mut db, "h[ae]llo"), ["hallo", "hello"]);
    assert_eq!(keys(&mut db, "h[^e]llo"), ["hallo", "hxllo"]);
    assert_eq!(keys(&mut db, "h[a-b]llo"), ["hallo"]);
    assert_eq!(keys(&mut db, "a\\*b"), ["a*b"]);
    assert_eq!(keys(&mut db, "a\\?b"), ["a?b"]);
    assert_eq!(keys(&mut db, "a?b"), ["a*b", "a?b", "axb"]);
    assert_eq!(keys(&mut db, "*").len(), 8);
    assert_eq!(keys(&mut db, "nothing*"), Vec::<String>::new());
    db.cmd("pexpire hello 1");
    db.advance(1);
    assert_eq!(keys(&mut db, "h?llo"), ["hallo", "hxllo"]);
}

fn scan_all(db: &Db, extra: &str) -> (Vec<Bytes>, usize) {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        calls += 1;
        let reply = db.read(&format!("scan {cursor} {extra}"));
        let Response::Array(Some(parts)) = reply else { panic!("{reply:?}") };
        let [Response::Bulk(Some(next)), Response::Array(Some(keys))] = &parts[..] else { panic!() };
        for k in keys {
            let Response::Bulk(Some(k)) = k else { panic!() };
            out.push(k.clone());
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            return (out, calls);
        }
        assert!(calls < 10_000);
    }
}

#[test]
fn scan_visits_every_key_once() {
    let mut db = Db::new();
    for i in 0..250 {
        db.cmd(&format!("set key:{i} v"));
    }
    for i in 0..20 {
        db.cmd(&format!("rpush list:{i} v"));
    }
    let (mut keys, calls) = scan_all(&db, "");
    assert!(calls >= 27, "COUNT 10 by default: {calls} calls");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 270);
    let (keys, calls) = scan_all(&db, "count 1000");
    assert_eq!((keys.len(), calls), (270, 1));
    let (keys, _) = scan_all(&db, "match list:* count 7");
    assert_eq!(keys.len(), 20);
    let (keys, _) = scan_all(&db, "type LIST");
    assert_eq!(keys.len(), 20);
    let (keys, _) = scan_all(&db, "type hash");
    assert!(keys.is_empty());
    // Stable: the same calls on an unchanged keyspace give the same answers.
    assert_eq!(db.read("scan 0 count 5"), db.read("scan 0 count 5"));
}

#[test]
fn scan_survives_changes_between_calls() {
    let mut db = Db::new();
    for i in 0..100 {
        db.cmd(&format!("set stay:{i} v"));
    }
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let Response::Array(Some(parts)) = db.read(&format!("scan {cursor} count 3")) else { panic!() };
        let [Response::Bulk(Some(next)), Response::Array(Some(keys))] = &parts[..] else { panic!() };
        seen.extend(keys.iter().cloned());
        cursor = String::from_utf8(next.to_vec()).unwrap();
        // Churn: add and delete other keys between calls.
        db.cmd(&format!("set churn:{round} v"));
        db.cmd(&format!("del churn:{}", round / 2));
        round += 1;
        if cursor == "0" {
            break;
        }
    }
    for i in 0..100 {
        let k = bulk(&format!("stay:{i}"));
        assert_eq!(seen.iter().filter(|s| **s == k).count(), 1, "stay:{i}");
    }
}

#[test]
fn hashes() {
    let mut db = Db::new();
    assert_eq!(db.cmd("hset h a 1 b 2"), int(2));
    assert_eq!(db.cmd("hset h a 9 c 3"), int(1));
    assert_eq!(db.cmd("hget h a"), bulk("9"));
    assert_eq!(db.cmd("hget h zz"), nil());
    assert_eq!(db.cmd("hget nope a"), nil());
    assert_eq!(db.cmd("hmget h a zz c"), list(vec![bulk("9"), nil(), bulk("3")]));
    assert_eq!(db.cmd("hmget nope a b"), list(vec![nil(), nil()]));
    assert_eq!(db.cmd("hlen h"), int(3));
    assert_eq!(db.cmd("hexists h a"), int(1));
    assert_eq!(db.cmd("hexists h zz"), int(0));
    assert_eq!(
        db.cmd("hgetall h"),
        Response::Map(vec![(bulk("a"), bulk("9")), (bulk("b"), bulk("2")), (bulk("c"), bulk("3"))])
    );
    assert_eq!(db.cmd("hgetall nope"), Response::Map(vec![]));
    assert_eq!(db.cmd("hdel h a zz"), int(1));
    assert_eq!(db.cmd("hdel h b c"), int(2));
    assert_eq!(db.cmd("exists h"), int(0), "the last field deleted removes the key");
    assert_eq!(db.cmd("hdel h b"), int(0));
    db.cmd("set s v");
    for line in
        ["hset s a 1", "hget s a", "hmget s a", "hdel s a", "hgetall s", "hlen s", "hexists s a", "hincrby s a 1"]
    {
        assert_eq!(db.cmd(line), err(WRONGTYPE), "{line}");
    }
}

#[test]
fn hincrby() {
    let mut db = Db::new();
    assert_eq!(db.cmd("hincrby h n 5"), int(5));
    assert_eq!(db.cmd("hincrby h n -7"), int(-2));
    db.cmd("hset h s abc");
    assert_eq!(db.cmd("hincrby h s 1"), err("ERR hash value is not an integer"));
    assert_eq!(db.cmd("hincrby h n x"), err(NOT_INT));
    db.cmd("hset h m 9223372036854775807");
    assert_eq!(db.cmd("hincrby h m 1"), err("ERR increment or decrement would overflow"));
    assert_eq!(db.cmd("hget h m"), bulk("9223372036854775807"));
}

#[test]
fn lists_push_pop_len_index() {
    let mut db = Db::new();
    assert_eq!(db.cmd("lpush l a b c"), int(3));
    assert_eq!(db.cmd("rpush l x y"), int(5));
    assert_eq!(db.cmd("lrange l 0 -1"), arr(&["c", "b", "a", "x", "y"]));
    assert_eq!(db.cmd("llen l"), int(5));
    assert_eq!(db.cmd("lindex l 0"), bulk("c"));
    assert_eq!(db.cmd("lindex l -1"), bulk("y"));
    assert_eq!(db.cmd("lindex l 5"), nil());
    assert_eq!(db.cmd("lindex l -6"), nil());
    assert_eq!(db.cmd("lindex l x"), err(NOT_INT));
    assert_eq!(db.cmd("lpop l"), bulk("c"));
    assert_eq!(db.cmd("rpop l"), bulk("y"));
    assert_eq!(db.cmd("lpop l 2"), arr(&["b", "a"]));
    assert_eq!(db.cmd("rpop l 10"), arr(&["x"]));
    assert_eq!(db.cmd("exists l"), int(0), "the last element popped removes the key");
    assert_eq!(db.cmd("llen l"), int(0));
    assert_eq!(db.cmd("lindex l 0"), nil());
}

#[test]
fn pop_on_missing_and_empty_counts() {
    let mut db = Db::new();
    assert_eq!(db.cmd("lpop l"), nil());
    assert_eq!(db.cmd("rpop l 2"), Response::Array(None), "missing key with a count: null array");
    assert_eq!(db.cmd("lpop l 0"), Response::Array(None));
    db.cmd("rpush l a");
    assert_eq!(db.cmd("lpop l 0"), list(vec![]), "existing key, count 0: empty array");
    assert_eq!(db.cmd("llen l"), int(1));
    db.cmd("set s v");
    assert_eq!(db.cmd("lpop s"), err(WRONGTYPE));
    assert_eq!(db.cmd("lpop s 0"), err(WRONGTYPE));
    assert_eq!(db.cmd("lpush s a"), err(WRONGTYPE));
    assert_eq!(db.cmd("lrange s 0 1"), err(WRONGTYPE));
    assert_eq!(db.cmd("llen s"), err(WRONGTYPE));
    assert_eq!(db.cmd("lindex s 0"), err(WRONGTYPE));
}

#[test]
fn lrange_indices() {
    let mut db = Db::new();
    db.cmd("rpush l 0 1 2 3 4 5");
    assert_eq!(db.cmd("lrange l 0 2"), arr(&["0", "1", "2"]));
    assert_eq!(db.cmd("lrange l -3 -1"), arr(&["3", "4", "5"]));
    assert_eq!(db.cmd("lrange l -100 1"), arr(&["0", "1"]));
    assert_eq!(db.cmd("lrange l 4 100"), arr(&["4", "5"]));
    assert_eq!(db.cmd("lrange l 3 2"), arr(&[]));
    assert_eq!(db.cmd("lrange l 6 10"), arr(&[]));
    assert_eq!(db.cmd("lrange l -1 -2"), arr(&[]));
    assert_eq!(db.cmd("lrange l 0 -7"), arr(&[]));
    assert_eq!(db.cmd("lrange nope 0 -1"), arr(&[]));
    assert_eq!(db.cmd("lrange l 0 x"), err(NOT_INT));
}

#[test]
fn read_refuses_writes_and_is_write_is_right() {
    let db = Db::new();
    assert_eq!(db.store.read(&parse("set k v"), T0), err("ERR 'set' is not a read-only command"));
    for line in ["get k", "exists k", "strlen k", "mget k", "dbsize", "ttl k", "pttl k", "type k", "keys *", "scan 0"] {
        assert!(!parse(line).is_write(), "{line}");
    }
    for line in ["hget h f", "hmget h f", "hgetall h", "hlen h", "hexists h f", "lrange l 0 1", "llen l", "lindex l 0"]
    {
        assert!(!parse(line).is_write(), "{line}");
    }
    for line in ["set k v", "set k v get", "getdel k", "getset k v", "del k", "incr k", "append k v", "expire k 1"] {
        assert!(parse(line).is_write(), "{line}");
    }
    for line in ["persist k", "flushall", "hset h f v", "hdel h f", "hincrby h f 1", "lpush l a", "rpop l", "mset a b"]
    {
        assert!(parse(line).is_write(), "{line}");
    }
}

#[test]
fn command_keys_for_slots() {
    assert_eq!(parse("mset a 1 b 2").keys(), vec![&Bytes::from("a"), &Bytes::from("b")]);
    assert_eq!(parse("hset h f v").keys(), vec![&Bytes::from("h")]);
    assert!(parse("scan 0").keys().is_empty());
}

#[test]
fn to_args_round_trips() {
    for line in [
        "set k v nx get pxat 55",
        "set k v xx keepttl",
        "set k v ex 5",
        "decr k",
        "decrby k 5",
        "expire k 5 xx gt",
        "pexpireat k -5 lt",
        "scan 17 match a* count 3 type List",
        "lpop l 0",
        "rpop l",
        "hincrby h f -3",
        "flushall sync",
    ] {
        let c = parse(line);
        assert_eq!(Command::parse(&c.to_args()).unwrap(), c, "{line}");
    }
}

#[test]
fn mass_expiry_is_purged_a_bounded_amount_per_entry() {
    let mut db = Db::new();
    for i in 0..3000 {
        db.cmd(&format!("set k{i} v px 10"));
    }
    db.cmd("set stay v");
    db.advance(10);
    assert_eq!(db.read("dbsize"), int(1), "hidden at once");
    db.cmd("get stay");
    assert_eq!(db.store.key_count(), 1 + 3000 - 1024, "at most 1024 removed per entry");
    assert_eq!(db.cmd("dbsize"), int(1));
    db.cmd("get stay");
    assert_eq!(db.store.key_count(), 1);
}

#[test]
fn append_refuses_to_grow_past_the_string_limit() {
    let limits = kv::Limits { string_len_max: 5, ..kv::Limits::default() };
    let mut db = Db { store: kv::Store::with_limits(limits), index: 0, time_ms: T0 };
    assert_eq!(db.cmd("append k abc"), int(3));
    assert_eq!(db.cmd("append k de"), int(5));
    assert_eq!(db.cmd("append k f"), err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
    assert_eq!(db.cmd("get k"), bulk("abcde"));
}
