//! `raftkv` as users run it: real processes on loopback, killed with SIGKILL,
//! restarted, and spoken to in RESP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, await_dbsize, bulk, field};
use raftkv::resp::Frame;

const ELECTION: Duration = Duration::from_secs(10);

#[test]
fn commands_redirects_and_info() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    assert_eq!(l.call(&["SET", "k", "v"]).unwrap(), Frame::ok());
    assert_eq!(l.call(&["GET", "k"]).unwrap(), bulk("v"));
    assert_eq!(l.call(&["INCR", "n"]).unwrap(), Frame::Integer(1));
    assert_eq!(
        l.call(&["LPUSH", "k", "x"]).unwrap(),
        Frame::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    );
    // A follower redirects key commands to the leader, like Redis Cluster.
    let follower = (leader + 1) % 3;
    c.await_leader_known(follower, leader, ELECTION);
    let mut f = c.client(follower);
    let expected = format!("MOVED {} {}", raftkv::slot::key_slot(b"k"), c.nodes[leader].client);
    assert_eq!(f.call(&["GET", "k"]).unwrap(), Frame::Error(expected));
    // READONLY allows (possibly stale) reads from the follower; this one has caught up.
    assert_eq!(f.call(&["READONLY"]).unwrap(), Frame::ok());
    let deadline = Instant::now() + Duration::from_secs(5);
    while f.call(&["GET", "k"]).unwrap() != bulk("v") {
        assert!(Instant::now() < deadline, "follower never applied k");
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = c.nodes[follower].info_raft().unwrap();
    assert_eq!(field(&info, "raft_role"), Some("follower"));
    assert_eq!(field(&info, "raft_leader_id"), Some(&*(leader + 1).to_string()));
    assert_eq!(field(&info, "raft_voters"), Some("1,2,3"));
    // MULTI/EXEC applies atomically, in one entry.
    l.send(&["MULTI"]).unwrap();
    l.send(&["SET", "a", "1"]).unwrap();
    l.send(&["INCR", "a"]).unwrap();
    l.send(&["EXEC"]).unwrap();
    assert_eq!(l.read_reply().unwrap(), Some(Frame::ok()));
    assert_eq!(l.read_reply().unwrap(), Some(Frame::Simple("QUEUED".into())));
    assert_eq!(l.read_reply().unwrap(), Some(Frame::Simple("QUEUED".into())));
    assert_eq!(l.read_reply().unwrap(), Some(Frame::Array(Some(vec![Frame::ok(), Frame::Integer(2)]))));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(
            format!("*3\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n${}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
    }
    l.send_raw(&batch).unwrap();
    for i in 0..200 {
        assert_eq!(l.read_reply().unwrap(), Some(Frame::Integer(i + 1)));
    }
    let range = l.call(&["LRANGE", "l", "0", "2"]).unwrap();
    assert_eq!(range, Frame::Array(Some(vec![bulk("0"), bulk("1"), bulk("2")])));
}

#[test]
fn sigkill_the_leader_and_writes_succeed_again() {
    let mut c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    assert_eq!(c.client(leader).call(&["SET", "before", "1"]).unwrap(), Frame::ok());
    c.nodes[leader].kill();
    let killed = Instant::now();
    let new_leader = c.leader(ELECTION);
    assert_ne!(new_leader, leader);
    let mut l = c.client(new_leader);
    assert_eq!(l.call(&["SET", "after", "2"]).unwrap(), Frame::ok());
    println!("failover: first successful write {:?} after SIGKILL", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(5), "failover took {:?}", killed.elapsed());
    assert_eq!(l.call(&["GET", "before"]).unwrap(), bulk("1"));
}

/// `--lease-read`: the leader serves GETs under its lease; each sees the
/// write acknowledged just before it, before and after the leader is killed.
#[test]
fn lease_reads_see_every_acknowledged_write_across_a_failover() {
    let mut c = Cluster::start_with_flags(3, &["--lease-read"]);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    for i in 0..200 {
        let value = i.to_string();
        assert_eq!(l.call(&["SET", "k", &value]).unwrap(), Frame::ok());
        assert_eq!(l.call(&["GET", "k"]).unwrap(), bulk(&value));
    }
    c.nodes[leader].kill();
    let new_leader = c.leader(ELECTION);
    let mut l = c.client(new_leader);
    assert_eq!(l.call(&["GET", "k"]).unwrap(), bulk("199"), "the new leader's first read");
    assert_eq!(l.call(&["SET", "k", "after"]).unwrap(), Frame::ok());
    assert_eq!(l.call(&["GET", "k"]).unwrap(), bulk("after"));
}

/// A leader paused past its lease (SIGSTOP: a long GC pause, a stalled VM)
/// while the others elect a new leader and acknowledge a write must not
/// answer a read from its old state when it resumes (thesis §6.4.1).
#[test]
fn a_leader_paused_past_its_lease_serves_no_stale_read() {
    use nix::sys::signal::Signal;
    let c = Cluster::start_with_flags(3, &["--lease-read"]);
    let old = c.leader(ELECTION);
    let mut stale = c.client(old);
    assert_eq!(stale.call(&["SET", "k", "before"]).unwrap(), Frame::ok());
    assert_eq!(stale.call(&["GET", "k"]).unwrap(), bulk("before"));
    c.nodes[old].signal(Signal::SIGSTOP);
    let new = c.leader_among(|i| i != old, ELECTION);
    let mut l = c.client(new);
    assert_eq!(l.call(&["SET", "k", "after"]).unwrap(), Frame::ok());
    // The read waits in the paused leader's socket; it is the first thing
    // its connection sees when the process resumes.
    stale.send(&["GET", "k"]).unwrap();
    c.nodes[old].signal(Signal::SIGCONT);
    let answer = stale.read_reply().unwrap().expect("an answer");
    assert_ne!(answer, bulk("before"), "a stale read from the paused leader");
    assert!(
        answer == bulk("after")
            || matches!(&answer, Frame::Error(e) if e.starts_with("MOVED") || e.starts_with("CLUSTERDOWN") || e.starts_with("TIMEOUT")),
        "{answer:?}"
    );
}

#[test]
fn every_acknowledged_write_survives_restarting_all_nodes() {
    let mut c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    for i in 0..100 {
        assert_eq!(l.call(&["SET", &format!("k{i}"), &i.to_string()]).unwrap(), Frame::ok());
    }
    drop(l);
    for node in &mut c.nodes {
        node.kill();
    }
    for node in &mut c.nodes {
        node.start();
    }
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    for i in 0..100 {
        assert_eq!(l.call(&["GET", &format!("k{i}")]).unwrap(), bulk(&i.to_string()), "k{i} lost");
    }
}

#[test]
fn a_restarted_node_catches_up() {
    let mut c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let lagging = (leader + 1) % 3;
    c.nodes[lagging].terminate();
    let mut l = c.client(leader);
    for i in 0..50 {
        assert_eq!(l.call(&["SET", &format!("k{i}"), "x"]).unwrap(), Frame::ok());
    }
    c.nodes[lagging].start();
    let mut f = c.client(lagging);
    f.call(&["READONLY"]).unwrap();
    await_dbsize(&mut f, 50, Duration::from_secs(10), "restarted node never caught up");
}

/// OPERATIONS.md's way to grow a cluster: start the node with `--join`
/// alone, then `RAFT.NODE ADD` on the leader.
#[test]
fn a_node_started_with_join_alone_is_added_and_catches_up() {
    let mut c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    for i in 0..20 {
        assert_eq!(l.call(&["SET", &format!("k{i}"), "x"]).unwrap(), Frame::ok());
    }
    let new = c.start_joining(4);
    let (peer, client) = (c.nodes[new].peer.to_string(), c.nodes[new].client.to_string());
    let _ = c.client(new);
    assert_eq!(l.call(&["RAFT.NODE", "ADD", "4", &peer, &client]).unwrap(), Frame::ok());
    let mut f = c.client(new);
    f.call(&["READONLY"]).unwrap();
    await_dbsize(&mut f, 20, Duration::from_secs(10), "the joined node never caught up");
    // The promotion to voter is a second change the leader proposes once
    // the learner has caught up: it may land a little after the data.
    c.await_info(leader, Duration::from_secs(10), "the joined node was never promoted", |info| {
        field(info, "raft_voters").is_some_and(|v| v.split(',').any(|id| id == "4"))
    });
}

#[test]
fn bad_input_closes_that_connection_and_the_server_keeps_serving() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut good = c.client(leader);
    assert_eq!(good.call(&["SET", "k", "v"]).unwrap(), Frame::ok());
    let cases: [&[u8]; 5] = [
        b"*1\r\n$999999999999\r\n",          // a huge bulk length
        b"*x\r\n",                           // not a count
        b"*1\r\n:12\r\n",                    // not a bulk string
        b"\x00\x01\x02\xff\xfe garbage\r\n", // binary garbage as an inline command
        b"*2\r\n$3\r\nGET\r\n$1\r\nkk\r\n",  // a bulk longer than announced
    ];
    for case in cases {
        let mut bad = c.client(leader);
        bad.send_raw(case).unwrap();
        let reply = bad.read_reply().unwrap();
        assert!(matches!(reply, Some(Frame::Error(_))), "{case:?}: {reply:?}");
    }
    // Half-closed and abandoned connections.
    let mut half = c.client(leader);
    half.send_raw(b"*2\r\n$3\r\nGET").unwrap();
    drop(half);
    assert_eq!(good.call(&["GET", "k"]).unwrap(), bulk("v"));
    assert_eq!(c.client(leader).call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
}

#[test]
fn redis_cli_follows_moved_to_the_leader() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let follower = (leader + 1) % 3;
    c.await_leader_known(follower, leader, ELECTION);
    let port = c.nodes[follower].client.port().to_string();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-c", "-p", &port])
            .args(args)
            .output()
            .expect("redis-cli is installed by scripts/setup (redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "greeting", "hello"]), "OK");
    assert_eq!(cli(&["GET", "greeting"]), "hello");
}

#[test]
fn redis_benchmark_completes_without_errors() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let out = std::process::Command::new("redis-benchmark")
        .args(["-p", &c.nodes[leader].client.port().to_string()])
        .args(["-t", "set,get,incr,lpush,rpush,lpop,rpop,hset,mset", "-n", "2000", "-c", "10", "-q"])
        .output()
        .expect("redis-benchmark is installed by scripts/setup (redis-tools)");
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
    for test in ["SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP", "RPOP", "HSET", "MSET"] {
        assert!(text.contains(test), "{test} missing from: {text}");
    }
}
