//! Every command raftkv serves, against a real 3-node cluster: the replies
//! Redis gives, on the leader, on a follower (redirects, READONLY), in RESP2
//! and RESP3, with and without a password.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Client, Cluster, bulk};
use raftkv::resp::Frame;

const ELECTION: Duration = Duration::from_secs(10);

fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

fn nil() -> Frame {
    Frame::Bulk(None)
}

fn array(items: Vec<Frame>) -> Frame {
    Frame::Array(Some(items))
}

fn bulks(items: &[&str]) -> Frame {
    array(items.iter().map(|s| bulk(s)).collect())
}

fn err(text: &str) -> Frame {
    Frame::Error(text.into())
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// Runs `script` in order on `client`, each command with the reply Redis gives.
fn run(client: &mut Client, script: &[(&str, Frame)]) {
    for (command, expected) in script {
        let args: Vec<&str> = command.split(' ').collect();
        let reply = client.call(&args).unwrap();
        assert_eq!(&reply, expected, "{command}");
    }
}

fn bytes_of(frame: &Frame) -> Vec<u8> {
    match frame {
        Frame::Bulk(Some(b)) => b.to_vec(),
        other => panic!("not a bulk string: {other:?}"),
    }
}

fn sorted_bulks(frame: Frame) -> Vec<Vec<u8>> {
    let Frame::Array(Some(items)) = frame else { panic!("not an array: {frame:?}") };
    let mut items: Vec<Vec<u8>> = items.iter().map(bytes_of).collect();
    items.sort();
    items
}

fn integer(frame: Frame) -> i64 {
    match frame {
        Frame::Integer(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

#[test]
fn strings_keys_hashes_lists_and_transactions_behave_as_in_redis() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    run(
        &mut l,
        &[
            ("FLUSHALL", Frame::ok()),
            // Strings.
            ("SET s hello", Frame::ok()),
            ("GET s", bulk("hello")),
            ("SET s world NX", nil()),
            ("SET s world XX GET", bulk("hello")),
            ("GET s", bulk("world")),
            ("SET absent v XX", nil()),
            ("SET s v NX XX", err("ERR syntax error")),
            ("SETNX s x", int(0)),
            ("SETNX s2 x", int(1)),
            ("GETSET s2 y", bulk("x")),
            ("GETDEL s2", bulk("y")),
            ("GET s2", nil()),
            ("GETDEL s2", nil()),
            ("APPEND s !", int(6)),
            ("STRLEN s", int(6)),
            ("STRLEN absent", int(0)),
            ("INCR n", int(1)),
            ("INCRBY n 10", int(11)),
            ("DECR n", int(10)),
            ("DECRBY n 3", int(7)),
            ("INCR s", err(NOT_INTEGER)),
            ("INCRBY n x", err(NOT_INTEGER)),
            ("SET big 9223372036854775807", Frame::ok()),
            ("INCR big", err("ERR increment or decrement would overflow")),
            ("MSET a 1 b 2", Frame::ok()),
            ("MSET a", err("ERR wrong number of arguments for 'mset' command")),
            ("MGET a b absent", array(vec![bulk("1"), bulk("2"), nil()])),
            ("MSETNX a 9 c 3", int(0)),
            ("GET c", nil()),
            ("MSETNX c 3 d 4", int(1)),
            ("MGET c d", bulks(&["3", "4"])),
            // Keys.
            ("EXISTS a b absent a", int(3)),
            ("DEL a absent", int(1)),
            ("EXISTS a", int(0)),
            ("TYPE s", Frame::Simple("string".into())),
            ("TYPE absent", Frame::Simple("none".into())),
            ("EXPIRE s 100", int(1)),
            ("EXPIRE absent 100", int(0)),
            ("PERSIST s", int(1)),
            ("PERSIST s", int(0)),
            ("TTL s", int(-1)),
            ("PTTL s", int(-1)),
            ("TTL absent", int(-2)),
            ("PTTL absent", int(-2)),
            // Hashes.
            ("HSET h f1 v1 f2 v2", int(2)),
            ("HSET h f1 v9", int(0)),
            ("HGET h f1", bulk("v9")),
            ("HGET h absent", nil()),
            ("HMGET h f1 absent f2", array(vec![bulk("v9"), nil(), bulk("v2")])),
            ("HEXISTS h f1", int(1)),
            ("HEXISTS h absent", int(0)),
            ("HLEN h", int(2)),
            ("HINCRBY h count 5", int(5)),
            ("HINCRBY h count -7", int(-2)),
            ("HINCRBY h f1 1", err("ERR hash value is not an integer")),
            ("HDEL h f1 absent", int(1)),
            ("HLEN h", int(2)),
            ("TYPE h", Frame::Simple("hash".into())),
            // Lists.
            ("LPUSH l a b", int(2)),
            ("RPUSH l c d", int(4)),
            ("LRANGE l 0 -1", bulks(&["b", "a", "c", "d"])),
            ("LRANGE l 1 2", bulks(&["a", "c"])),
            ("LRANGE l 5 9", array(vec![])),
            ("LLEN l", int(4)),
            ("LINDEX l 0", bulk("b")),
            ("LINDEX l -1", bulk("d")),
            ("LINDEX l 9", nil()),
            ("LPOP l", bulk("b")),
            ("RPOP l", bulk("d")),
            ("LPOP l 5", bulks(&["a", "c"])),
            ("LPOP l", nil()),
            ("EXISTS l", int(0)),
            ("LLEN l", int(0)),
            ("TYPE absent", Frame::Simple("none".into())),
            // Wrong types, as Redis words them.
            ("GET h", err(WRONGTYPE)),
            ("LPUSH h x", err(WRONGTYPE)),
            ("HGET s f", err(WRONGTYPE)),
            ("APPEND h x", err(WRONGTYPE)),
            ("LRANGE s 0 1", err(WRONGTYPE)),
            // Parse errors.
            ("GET", err("ERR wrong number of arguments for 'get' command")),
            ("NOSUCH a b", err("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")),
            // Transactions: queued, discarded, or applied as one.
            ("MULTI", Frame::ok()),
            ("SET t 1", Frame::Simple("QUEUED".into())),
            ("DISCARD", Frame::ok()),
            ("GET t", nil()),
            ("EXEC", err("ERR EXEC without MULTI")),
            ("DISCARD", err("ERR DISCARD without MULTI")),
            ("MULTI", Frame::ok()),
            ("INCR t", Frame::Simple("QUEUED".into())),
            ("LPUSH t x", Frame::Simple("QUEUED".into())),
            ("INCR t", Frame::Simple("QUEUED".into())),
            ("EXEC", array(vec![int(1), err(WRONGTYPE), int(2)])),
            ("MULTI", Frame::ok()),
            ("GET", err("ERR wrong number of arguments for 'get' command")),
            ("EXEC", err("EXECABORT Transaction discarded because of previous errors.")),
        ],
    );

    // Expiry: decided with the leader's time stamped in the entry.
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    run(&mut l, &[("SET e v PX 100000", Frame::ok()), ("SET x v EX 100", Frame::ok())]);
    let pttl = integer(l.call(&["PTTL", "e"]).unwrap());
    assert!((90_000..=100_000).contains(&pttl), "PTTL {pttl}");
    let ttl = integer(l.call(&["TTL", "x"]).unwrap());
    assert!((90..=100).contains(&ttl), "TTL {ttl}");
    let at = (now_ms / 1000 + 200).to_string();
    assert_eq!(l.call(&["SET", "y", "v", "EXAT", &at]).unwrap(), Frame::ok());
    assert!((190..=200).contains(&integer(l.call(&["TTL", "y"]).unwrap())));
    let at_ms = (now_ms + 300_000).to_string();
    assert_eq!(l.call(&["SET", "z", "v", "PXAT", &at_ms]).unwrap(), Frame::ok());
    assert!((290_000..=300_000).contains(&integer(l.call(&["PTTL", "z"]).unwrap())));
    assert_eq!(l.call(&["SET", "z", "w", "KEEPTTL"]).unwrap(), Frame::ok());
    assert!(integer(l.call(&["PTTL", "z"]).unwrap()) > 0, "KEEPTTL kept the expiry");
    assert_eq!(l.call(&["SET", "gone", "v", "PX", "1"]).unwrap(), Frame::ok());
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(l.call(&["GET", "gone"]).unwrap(), nil(), "expired");
    assert_eq!(l.call(&["EXPIRE", "x", "-1"]).unwrap(), int(1), "a past expiry deletes");
    assert_eq!(l.call(&["EXISTS", "x"]).unwrap(), int(0));

    // The keyspace, whole.
    let expected: Vec<&str> = vec!["b", "big", "c", "d", "e", "h", "n", "s", "t", "y", "z"];
    assert_eq!(integer(l.call(&["DBSIZE"]).unwrap()), expected.len() as i64);
    let keys = sorted_bulks(l.call(&["KEYS", "*"]).unwrap());
    assert_eq!(keys, expected.iter().map(|k| k.as_bytes().to_vec()).collect::<Vec<_>>());
    assert_eq!(sorted_bulks(l.call(&["KEYS", "?"]).unwrap()).len(), 10, "every key but big");
    let mut scanned = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Frame::Array(Some(reply)) = l.call(&["SCAN", &cursor, "COUNT", "3"]).unwrap() else { panic!() };
        cursor = String::from_utf8(bytes_of(&reply[0])).unwrap();
        scanned.extend(sorted_bulks(reply[1].clone()));
        if cursor == "0" {
            break;
        }
    }
    scanned.sort();
    scanned.dedup();
    assert_eq!(scanned, keys, "SCAN visits every key");
    let Frame::Array(Some(reply)) = l.call(&["SCAN", "0", "MATCH", "b*", "COUNT", "100"]).unwrap() else { panic!() };
    assert_eq!(sorted_bulks(reply[1].clone()), vec![b"b".to_vec(), b"big".to_vec()]);
    let Frame::Array(Some(reply)) = l.call(&["SCAN", "0", "TYPE", "hash", "COUNT", "100"]).unwrap() else { panic!() };
    assert_eq!(sorted_bulks(reply[1].clone()), vec![b"h".to_vec()]);
    let Frame::Array(Some(all)) = l.call(&["HGETALL", "h"]).unwrap() else { panic!() };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = all.chunks(2).map(|p| (bytes_of(&p[0]), bytes_of(&p[1]))).collect();
    pairs.sort();
    assert_eq!(pairs, vec![(b"count".to_vec(), b"-2".to_vec()), (b"f2".to_vec(), b"v2".to_vec())]);

    // Everything was replicated: a follower that allows stale reads sees it.
    let mut f = c.client((leader + 1) % 3);
    assert_eq!(f.call(&["READONLY"]).unwrap(), Frame::ok());
    common::await_dbsize(&mut f, expected.len() as i64, Duration::from_secs(5), "the follower never caught up");
    run(&mut f, &[("GET s", bulk("world!")), ("MGET c d", bulks(&["3", "4"])), ("HGET h f2", bulk("v2"))]);
    assert_eq!(f.call(&["FLUSHALL"]).unwrap(), moved(&c, leader, b""), "writes still go to the leader");
    run(&mut l, &[("FLUSHALL", Frame::ok()), ("DBSIZE", int(0))]);
}

/// The MOVED error a follower gives for a key.
fn moved(c: &Cluster, leader: usize, key: &[u8]) -> Frame {
    Frame::Error(format!("MOVED {} {}", raftkv::slot::key_slot(key), c.nodes[leader].client))
}

#[test]
fn followers_redirect_every_key_command_and_say_when_there_is_no_leader() {
    let mut c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let follower = (leader + 1) % 3;
    c.await_leader_known(follower, leader, ELECTION);
    let mut f = c.client(follower);
    for command in ["GET k", "SET k v", "INCR k", "HSET k f v", "LPUSH k x", "DEL k", "MGET k", "EXPIRE k 1"] {
        let args: Vec<&str> = command.split(' ').collect();
        assert_eq!(f.call(&args).unwrap(), moved(&c, leader, b"k"), "{command}");
    }
    // Connection commands are answered by any node.
    assert_eq!(f.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
    // READONLY serves reads locally; READWRITE redirects them again.
    run(&mut f, &[("READONLY", Frame::ok()), ("GET k", nil()), ("READWRITE", Frame::ok())]);
    assert_eq!(f.call(&["GET", "k"]).unwrap(), moved(&c, leader, b"k"));
    // With the other two gone, the survivor learns it knows no leader.
    let other = (leader + 2) % 3;
    c.nodes[leader].kill();
    c.nodes[other].kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = f.call(&["GET", "k"]).unwrap();
        if reply == err("CLUSTERDOWN no leader") {
            break;
        }
        assert!(Instant::now() < deadline, "still {reply:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connection_and_server_commands() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    run(
        &mut l,
        &[
            ("PING", Frame::Simple("PONG".into())),
            ("PING hi", bulk("hi")),
            ("ECHO hello", bulk("hello")),
            ("SELECT 0", Frame::ok()),
            ("SELECT 1", err("ERR DB index is out of range")),
            ("CLIENT GETNAME", nil()),
            ("CLIENT SETNAME app", Frame::ok()),
            ("CLIENT GETNAME", bulk("app")),
            ("CONFIG GET appendonly", bulks(&["appendonly", "yes"])),
            (
                "AUTH secret",
                err("ERR AUTH <password> called without any password configured for the default user. \
                     Are you sure your configuration is correct?"),
            ),
        ],
    );
    assert!(integer(l.call(&["CLIENT", "ID"]).unwrap()) > 0);
    assert!(integer(l.call(&["COMMAND", "COUNT"]).unwrap()) >= 60);
    let Frame::Array(Some(info)) = l.call(&["COMMAND", "INFO", "mset", "nosuch"]).unwrap() else { panic!() };
    let Frame::Array(Some(mset)) = &info[0] else { panic!("{info:?}") };
    assert_eq!(mset[..2], [bulk("mset"), int(-3)]);
    assert_eq!(mset[3..6], [int(1), int(-1), int(2)], "key positions");
    assert_eq!(info[1], nil());
    let Frame::Array(Some(docs)) = l.call(&["COMMAND", "DOCS", "get"]).unwrap() else { panic!() };
    assert_eq!(docs[0], bulk("get"));
    for section in ["server", "clients", "keyspace", "raft"] {
        let Frame::Bulk(Some(text)) = l.call(&["INFO", section]).unwrap() else { panic!() };
        let text = String::from_utf8_lossy(&text).to_lowercase();
        assert!(text.starts_with(&format!("# {section}")), "INFO {section}: {text}");
    }
    let Frame::Bulk(Some(all)) = l.call(&["INFO"]).unwrap() else { panic!() };
    assert!(String::from_utf8_lossy(&all).contains("# Raft\r\nraft_node_id:"));

    // RESP3 after HELLO 3: maps, nulls.
    let Frame::Map(hello) = l.call(&["HELLO", "3"]).unwrap() else { panic!() };
    assert!(hello.contains(&(bulk("proto"), int(3))));
    run(&mut l, &[("HSET h f v", int(1)), ("GET absent", Frame::Null)]);
    assert_eq!(l.call(&["HGETALL", "h"]).unwrap(), Frame::Map(vec![(bulk("f"), bulk("v"))]));
    assert_eq!(l.call(&["HELLO", "4"]).unwrap(), err("NOPROTO unsupported protocol version"));
    run(&mut l, &[("QUIT", Frame::ok())]);
    assert_eq!(l.read_reply().unwrap(), None, "QUIT closes the connection");
}

/// One node on its own (it elects itself), started with `flags`.
fn single_node(flags: &[&str]) -> (KillOnDrop, std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (client, peer) = (common::free_port(), common::free_port());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["server", "--id", "1"])
        .args(flags)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--client-addr", &format!("127.0.0.1:{client}"), "--peer-addr", &format!("127.0.0.1:{peer}")])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (KillOnDrop(child), format!("127.0.0.1:{client}").parse().unwrap(), dir)
}

fn connect(addr: std::net::SocketAddr) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect(addr) {
            Ok(conn) => return conn,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn limits_are_configurable_and_a_client_past_one_is_dropped_alone() {
    let flags = ["--max-clients", "2", "--max-bulk-bytes", "1024", "--max-request-bytes", "4096"];
    let (_node, addr, _dir) = single_node(&flags);
    let mut first = connect(addr);
    assert_eq!(first.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
    let mut second = connect(addr);
    let mut third = Client::connect(addr).unwrap();
    assert_eq!(third.read_reply().unwrap(), Some(err("ERR max number of clients reached")));
    assert_eq!(third.read_reply().unwrap(), None, "the third client is turned away");
    // A bulk string over the limit: refused, and that connection closed.
    second.send_raw(b"*2\r\n$4\r\nECHO\r\n$2000\r\n").unwrap();
    assert_eq!(second.read_reply().unwrap(), Some(err("ERR Protocol error: invalid bulk length")));
    assert_eq!(second.read_reply().unwrap(), None);
    // A request that never ends, past the request limit: the same. (Its
    // slot is free once the server has let go of the second client.)
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut endless = loop {
        let mut c = connect(addr);
        if c.call(&["PING"]).unwrap() == Frame::Simple("PONG".into()) {
            break c;
        }
        assert!(Instant::now() < deadline, "the second client's slot was never freed");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut request = b"*1000\r\n".to_vec();
    for _ in 0..500 {
        request.extend_from_slice(b"$5\r\nhello\r\n");
    }
    endless.send_raw(&request).unwrap();
    assert_eq!(endless.read_reply().unwrap(), Some(err("ERR Protocol error: query buffer limit reached")));
    assert_eq!(endless.read_reply().unwrap(), None);
    // Everyone else is still served.
    assert_eq!(first.call(&["ECHO", "still here"]).unwrap(), bulk("still here"));
}

#[test]
fn a_password_is_required_when_configured() {
    let (_node, addr, _dir) = single_node(&["--password", "s3cret"]);
    let mut conn = connect(addr);
    let noauth = err("NOAUTH Authentication required.");
    run(
        &mut conn,
        &[
            ("GET k", noauth.clone()),
            ("PING", noauth.clone()),
            ("AUTH wrong", err("WRONGPASS invalid username-password pair or user is disabled.")),
            ("GET k", noauth),
            ("AUTH s3cret", Frame::ok()),
            ("PING", Frame::Simple("PONG".into())),
        ],
    );
    // A single node elects itself; then writes work for the authenticated.
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.call(&["SET", "k", "v"]).unwrap() != Frame::ok() {
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(conn.call(&["GET", "k"]).unwrap(), bulk("v"));
    let mut other = Client::connect(addr).unwrap();
    let Frame::Map(_) = other.call(&["HELLO", "3", "AUTH", "default", "s3cret"]).unwrap() else { panic!() };
    assert_eq!(other.call(&["GET", "k"]).unwrap(), bulk("v"));
}

/// Kills the process however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
