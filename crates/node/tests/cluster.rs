//! In-process clusters over real loopback TCP with WALs in temporary
//! directories.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, Counter};
use node::{NodeError, StateMachine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elect_and_replicate() {
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    for i in 0..100u64 {
        let out = c.node(leader).propose(Bytes::from(format!("{i}"))).await.unwrap();
        assert_eq!(out, i + 1, "the counter state machine returns the running count");
    }
    c.await_applied_everywhere(100).await;
    let total = c.node(leader).read(|sm: &Counter| sm.count).await.unwrap();
    assert_eq!(total, 100);
    // A follower refuses, naming the leader.
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    match c.node(follower).propose(Bytes::from_static(b"x")).await {
        Err(NodeError::NotLeader { leader: Some(l), .. }) => assert_eq!(l, leader),
        other => panic!("expected NotLeader, got {other:?}"),
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_leader_and_keep_writing() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader().await;
    c.node(leader).propose(Bytes::from_static(b"a")).await.unwrap();
    c.stop(leader).await;
    let new_leader = c.leader().await;
    assert_ne!(new_leader, leader);
    let out = c.node(new_leader).propose(Bytes::from_static(b"b")).await.unwrap();
    assert_eq!(out, 2, "the first write survived the leader");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_catches_up_from_its_directory() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader().await;
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    for _ in 0..10 {
        c.node(leader).propose(Bytes::from_static(b"x")).await.unwrap();
    }
    c.stop(follower).await;
    for _ in 0..10 {
        c.node(leader).propose(Bytes::from_static(b"y")).await.unwrap();
    }
    c.restart(follower).await;
    c.await_applied(follower, 20).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_keeps_every_acknowledged_write() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader().await;
    for _ in 0..25 {
        c.node(leader).propose(Bytes::from_static(b"x")).await.unwrap();
    }
    let ids = c.ids();
    for &id in &ids {
        c.stop(id).await;
    }
    for &id in &ids {
        c.restart(id).await;
    }
    let leader = c.leader().await;
    let out = c.node(leader).propose(Bytes::from_static(b"z")).await.unwrap();
    assert_eq!(out, 26);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_node_catches_up_by_snapshot() {
    let mut c = Cluster::start_with(3, |cfg| cfg.snapshot_entries = 20).await;
    let leader = c.leader().await;
    for _ in 0..100 {
        c.node(leader).propose(Bytes::from_static(b"x")).await.unwrap();
    }
    let new = c.add_empty_node(|cfg| cfg.snapshot_entries = 20).await;
    let leader = c.leader().await;
    let addr = c.peer_addr(new);
    tokio::time::timeout(Duration::from_secs(20), c.node(leader).add_voter(new, addr)).await.unwrap().unwrap();
    c.await_applied(new, 100).await;
    let status = c.node(new).status().await.unwrap();
    assert!(status.raft.snapshot_index > 0, "caught up without a snapshot: {status:?}");
    c.await_voter(new).await;
    c.shutdown().await;
}

/// A joining node that knows no one but itself (`raftkv server --join`
/// without `--initial-cluster`) must accept the leader that dials it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_that_knows_no_peer_accepts_the_leader() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader().await;
    for _ in 0..10 {
        c.node(leader).propose(Bytes::from_static(b"x")).await.unwrap();
    }
    let new = c
        .add_empty_node(|cfg| {
            let me = cfg.id;
            cfg.peers.retain(|&id, _| id == me);
        })
        .await;
    let addr = c.peer_addr(new);
    tokio::time::timeout(Duration::from_secs(20), c.node(leader).add_voter(new, addr)).await.unwrap().unwrap();
    c.await_applied(new, 10).await;
    c.await_voter(new).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_taken_once_enough_command_bytes_were_applied() {
    // Few entries, but large: the byte policy, not the entry count, is due.
    let c = Cluster::start_with(3, |cfg| {
        cfg.snapshot_entries = 1_000_000;
        cfg.snapshot_bytes = 64 << 10;
    })
    .await;
    let leader = c.leader().await;
    let value = Bytes::from(vec![b'v'; 8 << 10]);
    for _ in 0..4 {
        c.node(leader).propose(value.clone()).await.unwrap();
    }
    let status = c.node(leader).status().await.unwrap();
    assert_eq!(status.raft.snapshot_index, 0, "32 KiB applied: not due yet");
    for _ in 0..6 {
        c.node(leader).propose(value.clone()).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.node(leader).status().await.unwrap().raft.snapshot_index == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no snapshot after 80 KiB of commands");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_a_node_and_transfer_leadership() {
    let mut c = Cluster::start(3).await;
    let leader = c.leader().await;
    let others: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    c.node(leader).remove_voter(others[0]).await.unwrap();
    c.stop(others[0]).await;
    c.node(leader).transfer_leader(others[1]).await.unwrap();
    let mut new_leader = c.leader().await;
    for _ in 0..100 {
        if new_leader == others[1] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        new_leader = c.leader().await;
    }
    assert_eq!(new_leader, others[1], "the transfer target leads");
    // Two voters left, both up: writes commit.
    c.node(new_leader).propose(Bytes::from_static(b"x")).await.unwrap();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_a_peer_port_is_refused_and_the_node_keeps_serving() {
    use tokio::io::AsyncWriteExt;
    let c = Cluster::start(3).await;
    let leader = c.leader().await;
    let target = c.peer_addr(leader);
    // Not a handshake at all.
    let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\nthis is not raft").await.unwrap();
    // A valid-looking handshake from an unknown node.
    let mut s2 = tokio::net::TcpStream::connect(target).await.unwrap();
    let mut hello = b"RKVN\x01".to_vec();
    hello.extend_from_slice(&1u64.to_le_bytes());
    hello.extend_from_slice(&999u64.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    s2.write_all(&hello).await.unwrap();
    // A known node id with an oversized frame, then garbage.
    let mut s3 = tokio::net::TcpStream::connect(target).await.unwrap();
    let mut hello = b"RKVN\x01".to_vec();
    hello.extend_from_slice(&1u64.to_le_bytes());
    let other = c.ids().into_iter().find(|&id| id != leader).unwrap();
    hello.extend_from_slice(&other.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    hello.extend_from_slice(&u32::MAX.to_le_bytes());
    s3.write_all(&hello).await.unwrap();
    let mut s4 = tokio::net::TcpStream::connect(target).await.unwrap();
    let mut hello = b"RKVN\x01".to_vec();
    hello.extend_from_slice(&1u64.to_le_bytes());
    hello.extend_from_slice(&other.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    hello.extend_from_slice(&16u32.to_le_bytes());
    hello.extend_from_slice(&[0xAB; 16]);
    s4.write_all(&hello).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        c.node(leader).propose(Bytes::from_static(b"x")).await.unwrap();
    }
    assert_eq!(c.leader().await, leader, "garbage did not disturb the leader");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_that_cannot_commit_ends_as_unknown_not_as_failure() {
    let mut c = Cluster::start_with(3, |cfg| cfg.propose_timeout = Duration::from_millis(300)).await;
    let leader = c.leader().await;
    // Both at once: stopped one after the other on a slow disk, they could
    // take an election timeout, and the leader step down (check-quorum)
    // before the proposal reaches it.
    let followers: Vec<_> = c.ids().into_iter().filter(|&id| id != leader).collect();
    c.stop_together(&followers).await;
    // No majority: the command may still commit later (if the followers come
    // back), so the only honest answer is "unknown".
    match c.node(leader).propose(Bytes::from_static(b"x")).await {
        Err(NodeError::Unknown(_)) => {}
        other => panic!("expected Unknown, got {other:?}"),
    }
    c.shutdown().await;
}

/// Thesis §6.4.1 over real clocks: a leader serving lease reads answers them
/// while its followers are up, goes on answering them without its followers
/// while its lease lasts (no heartbeat round: under ReadIndex such a read
/// would wait for a quorum that is gone), and stops within its lease (it
/// falls back to heartbeat rounds nobody answers), long before the
/// followers could have elected another leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_stop_when_the_lease_runs_out() {
    // Ticks of 50 ms: a lease of 800 ms, renewed every 250 ms, so a slow
    // machine stops two nodes well within it.
    let tick = Duration::from_millis(50);
    let mut c = Cluster::start_with(3, |cfg| {
        cfg.raft.lease_read = true;
        cfg.tick = tick;
    })
    .await;
    let leader = c.leader().await;
    c.node(leader).propose(Bytes::from_static(b"a")).await.unwrap();
    let raft = &c.configs[&leader].raft;
    let lease = tick * u32::try_from(raft.lease_ticks()).unwrap();
    let heartbeat = tick * u32::try_from(raft.heartbeat_interval_ticks).unwrap();
    // A read served now shows a quorum answered a heartbeat round that
    // started about a heartbeat interval ago at most, so the lease runs on
    // for about `lease - heartbeat`: past the reads below.
    let total = c.node(leader).read(|sm: &Counter| sm.count).await.unwrap();
    assert_eq!(total, 1);
    let followers_gone = std::time::Instant::now();
    for id in c.ids().into_iter().filter(|&id| id != leader) {
        c.stop(id).await;
    }
    let within_lease = (lease - heartbeat) / 2;
    assert!(followers_gone.elapsed() < within_lease / 2, "stopping two nodes took {:?}", followers_gone.elapsed());
    let read = tokio::time::timeout(within_lease / 2, c.node(leader).read(|sm: &Counter| sm.count)).await;
    assert!(matches!(read, Ok(Ok(1))), "a read within the lease, with no follower up, was not served: {read:?}");
    tokio::time::sleep(lease + tick * 2).await;
    let read = tokio::time::timeout(Duration::from_secs(5), c.node(leader).read(|sm: &Counter| sm.count)).await;
    assert!(!matches!(read, Ok(Ok(_))), "a read after the lease ran out was served: {read:?}");
    c.shutdown().await;
}

/// A [`Counter`] that panics on the command `boom`.
#[derive(Default)]
struct Fragile(Counter);

impl StateMachine for Fragile {
    type Output = u64;
    fn apply(&mut self, index: raft::Index, command: &[u8]) -> u64 {
        assert_ne!(command, b"boom", "the state machine refuses to go on");
        self.0.apply(index, command)
    }
    fn snapshot(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.0.snapshot(out)
    }
    fn restore(&mut self, input: &mut dyn std::io::Read) -> std::io::Result<()> {
        self.0.restore(input)
    }
}

/// A state machine whose apply panics leaves its state unknown: the node
/// stops (the applier is gone, the core stops on its next hand-over), the
/// proposal that panicked ends as an unknown outcome, later calls fail at
/// once, reads too, and shutdown completes — nothing hangs and nothing
/// is answered as if applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_apply_stops_the_node_and_nothing_hangs() {
    let network = node::ChannelNetwork::new();
    let peers = [(1, common::free_addr())].into_iter().collect();
    let cfg = node::NodeConfig::new(1, peers, node::StorageConfig::Memory, node::NetworkConfig::Channel(network));
    let n = node::Node::start(cfg, Fragile::default()).await.unwrap();
    let within = Duration::from_secs(5);
    let first = loop {
        match n.propose(Bytes::from_static(b"a")).await {
            Ok(out) => break out,
            Err(NodeError::NotLeader { .. }) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("a one-node cluster refused a proposal: {e}"),
        }
    };
    assert_eq!(first, 1);
    let boom = tokio::time::timeout(within, n.propose(Bytes::from_static(b"boom"))).await;
    assert!(matches!(boom, Ok(Err(NodeError::Unknown(_)))), "{boom:?}");
    let after = tokio::time::timeout(within, n.propose(Bytes::from_static(b"b"))).await;
    assert!(matches!(after, Ok(Err(_))), "a proposal after the panic: {after:?}");
    let read = tokio::time::timeout(within, n.read(|sm: &Fragile| sm.0.count)).await;
    assert!(matches!(read, Ok(Err(_))), "a read after the panic: {read:?}");
    tokio::time::timeout(within, n.shutdown()).await.expect("shutdown completes").expect("shutdown");
}
