//! `raftkv::Client` against real `raftkv` processes: it finds the leader from
//! any node, follows MOVED, rides out a SIGKILLed leader, and a write it
//! retries after losing the reply is applied exactly once.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Cluster, bulk};
use raftkv::resp::Frame;
use raftkv::{Client, ClientConfig, ClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ELECTION: Duration = Duration::from_secs(10);

fn addrs(c: &Cluster) -> Vec<SocketAddr> {
    c.nodes.iter().map(|n| n.client).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_leader_from_any_node_by_following_moved() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    for start in 0..3 {
        let mut client = Client::new(ClientConfig::new(vec![c.nodes[start].client])).unwrap();
        let key = format!("k{start}");
        client.set(&key, "v").await.unwrap();
        assert_eq!(client.target(), c.nodes[leader].client, "started at node {start}");
        assert_eq!(client.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(client.find_leader().await.unwrap(), c.nodes[leader].client);
    }
    // Typed helpers and errors of the command itself.
    let mut client = Client::new(ClientConfig::new(addrs(&c))).unwrap();
    assert_eq!(client.incr("n").await.unwrap(), 1);
    assert_eq!(client.incr_by("n", 41).await.unwrap(), 42);
    assert_eq!(client.append("s", "ab").await.unwrap(), 2);
    assert!(client.set_nx("fresh", "1").await.unwrap());
    assert!(!client.set_nx("fresh", "2").await.unwrap());
    assert!(client.del("fresh").await.unwrap());
    assert!(!client.del("fresh").await.unwrap());
    assert_eq!(client.get("fresh").await.unwrap(), None);
    let wrong = client.incr("s").await;
    assert!(
        matches!(&wrong, Err(ClientError::Command(e)) if e.starts_with("ERR value is not an integer")),
        "{wrong:?}"
    );
    assert!(wrong.unwrap_err().is_definite());
    assert_eq!(client.command(["PING"]).await.unwrap(), Frame::Simple("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkilling_the_leader_writes_succeed_within_seconds_and_apply_once() {
    let mut c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut client = Client::new(ClientConfig::new(addrs(&c))).unwrap();
    client.set("before", "1").await.unwrap();
    // A second client increments all along; every INCR it is told about must
    // be applied exactly once, so the acknowledged results are distinct and
    // the final count lies between the acknowledged and the attempted.
    let nodes = addrs(&c);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let counter = tokio::spawn(async move {
        let mut client = Client::new(ClientConfig::new(nodes)).unwrap();
        let (mut acked, mut unknown) = (Vec::new(), 0);
        while !*stop.borrow() {
            match client.incr("counter").await {
                Ok(n) => acked.push(n),
                Err(e) if !e.is_definite() => unknown += 1,
                Err(e) => panic!("definite failure of INCR: {e}"),
            }
        }
        (acked, unknown)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.nodes[leader].kill();
    let killed = Instant::now();
    client.set("after", "2").await.unwrap();
    let failover = killed.elapsed();
    println!("failover: the client's first write after SIGKILL of the leader took {failover:?}");
    assert!(failover < Duration::from_secs(5), "failover took {failover:?}");
    assert_ne!(client.target(), c.nodes[leader].client);
    assert_eq!(client.get("before").await.unwrap().as_deref(), Some(&b"1"[..]));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(true).unwrap();
    let (acked, unknown) = counter.await.unwrap();
    let value: i64 =
        String::from_utf8(client.get("counter").await.unwrap().unwrap().to_vec()).unwrap().parse().unwrap();
    let mut sorted = acked.clone();
    sorted.dedup();
    assert_eq!(sorted, acked, "acknowledged INCR results repeat or go back: {acked:?}");
    let attempted = acked.len() as i64 + unknown;
    assert!(
        value >= acked.len() as i64 && value <= attempted,
        "counter {value}, {} acked, {unknown} unknown",
        acked.len()
    );
    println!("counter: {} INCRs acknowledged, {unknown} unknown, final value {value}", acked.len());
}

/// A proxy in front of `upstream` that, on its first connection, delivers
/// the request and the reply reaches the proxy, but the client never gets
/// it: the connection is closed instead. Later connections pass through.
async fn reply_losing_proxy(upstream: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let mut server = TcpStream::connect(upstream).await.unwrap();
            if std::mem::take(&mut first) {
                let mut buf = vec![0u8; 4096];
                let n = client.read(&mut buf).await.unwrap();
                server.write_all(&buf[..n]).await.unwrap();
                // Wait until the reply exists (the command was applied), then lose it.
                let _ = server.read(&mut buf).await.unwrap();
                drop(client);
                continue;
            }
            tokio::spawn(async move {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incr_retried_after_its_reply_was_lost_is_applied_once() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let proxy = reply_losing_proxy(c.nodes[leader].client).await;
    let mut client = Client::new(ClientConfig::new(vec![proxy])).unwrap();
    // The first INCR is applied, its reply lost; the client resends it with
    // the same sequence and learns the real reply from the session.
    assert_eq!(client.incr("n").await.unwrap(), 1);
    assert_eq!(client.incr("n").await.unwrap(), 2);
    assert_eq!(client.get("n").await.unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn the_session_prefix_answers_a_repeated_sequence_from_the_session() {
    let c = Cluster::start(3);
    let leader = c.leader(ELECTION);
    let mut l = c.client(leader);
    let call = |l: &mut common::Client, args: &str| l.call(&args.split(' ').collect::<Vec<_>>()).unwrap();
    assert_eq!(call(&mut l, "RAFTKV.SESSION 42 1 INCR x"), Frame::Integer(1));
    assert_eq!(call(&mut l, "RAFTKV.SESSION 42 1 INCR x"), Frame::Integer(1));
    assert_eq!(call(&mut l, "RAFTKV.SESSION 42 2 INCR x"), Frame::Integer(2));
    let stale = call(&mut l, "RAFTKV.SESSION 42 1 INCR x");
    assert!(matches!(&stale, Frame::Error(e) if e.starts_with(kv::STALE_REQUEST_PREFIX)), "{stale:?}");
    // Another session, and no session at all, are applied as usual.
    assert_eq!(call(&mut l, "RAFTKV.SESSION 43 1 INCR x"), Frame::Integer(3));
    assert_eq!(call(&mut l, "INCR x"), Frame::Integer(4));
    assert_eq!(call(&mut l, "RAFTKV.SESSION 42 3 GET x"), bulk("4"));
    assert!(matches!(call(&mut l, "RAFTKV.SESSION 0 1 INCR x"), Frame::Error(_)));
    // A follower redirects a session command like any key command.
    c.await_leader_known((leader + 1) % 3, leader, ELECTION);
    let mut f = c.client((leader + 1) % 3);
    assert!(matches!(call(&mut f, "RAFTKV.SESSION 42 4 INCR x"), Frame::Error(e) if e.starts_with("MOVED")));
}
