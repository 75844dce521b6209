//! In-process clusters over real loopback TCP with WALs in temporary
//! directories.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, Counter};
use node::NodeError;

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
    for id in c.ids().into_iter().filter(|&id| id != leader) {
        c.stop(id).await;
    }
    // No majority: the command may still commit later (if the followers come
    // back), so the only honest answer is "unknown".
    match c.node(leader).propose(Bytes::from_static(b"x")).await {
        Err(NodeError::Unknown(_)) => {}
        other => panic!("expected Unknown, got {other:?}"),
    }
    c.shutdown().await;
}

/// Thesis §6.4.1 over real clocks: a leader serving lease reads answers them
/// while its followers are up, and once they are gone stops within its lease
/// (it falls back to heartbeat rounds nobody answers), long before the
/// followers could have elected another leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_stop_when_the_lease_runs_out() {
    let mut c = Cluster::start_with(3, |cfg| cfg.raft.lease_read = true).await;
    let leader = c.leader().await;
    c.node(leader).propose(Bytes::from_static(b"a")).await.unwrap();
    let total = c.node(leader).read(|sm: &Counter| sm.count).await.unwrap();
    assert_eq!(total, 1);
    let network = node::NetworkConfig::Tcp { listen: common::free_addr() };
    let defaults = node::NodeConfig::new(1, Default::default(), node::StorageConfig::Memory, network);
    let (tick, lease_ticks) = (defaults.tick, defaults.raft.lease_ticks());
    let lease = tick * u32::try_from(lease_ticks).unwrap();
    for id in c.ids().into_iter().filter(|&id| id != leader) {
        c.stop(id).await;
    }
    tokio::time::sleep(lease + tick * 2).await;
    let read = tokio::time::timeout(Duration::from_secs(5), c.node(leader).read(|sm: &Counter| sm.count)).await;
    assert!(!matches!(read, Ok(Ok(_))), "a read after the lease ran out was served: {read:?}");
    c.shutdown().await;
}
