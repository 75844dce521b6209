//! The leader answers a proposal only once a majority has the entry on disk,
//! and a peer that stops reading never stalls the others.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Counter, free_addr};
use node::{NetworkConfig, Node, NodeConfig, StorageConfig};
use raft::{NodeId, Role};
use wal::fs::{File, FileRef, Fs, StdFs};

/// A gate every `fdatasync` of a node's files waits at while closed.
#[derive(Debug, Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
    }
}

/// The real file system, except that syncs wait at the gate.
#[derive(Debug)]
struct GatedFs {
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: FileRef,
    gate: Arc<Gate>,
}

impl File for GatedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
}

impl Fs for GatedFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFs.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFs.list(dir)
    }
    fn create(&self, path: &Path) -> io::Result<FileRef> {
        Ok(Arc::new(GatedFile { inner: StdFs.create(path)?, gate: self.gate.clone() }))
    }
    fn open(&self, path: &Path) -> io::Result<FileRef> {
        Ok(Arc::new(GatedFile { inner: StdFs.open(path)?, gate: self.gate.clone() }))
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        StdFs.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFs.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFs.sync_dir(dir)
    }
    fn salt_seed(&self) -> u32 {
        StdFs.salt_seed()
    }
}

async fn leader_of(nodes: &BTreeMap<NodeId, Node<Counter>>) -> NodeId {
    for _ in 0..500 {
        for (id, node) in nodes {
            if node.status().await.unwrap().raft.role == Role::Leader {
                return *id;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_replies_only_after_a_majority_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let peers: BTreeMap<NodeId, _> = (1..=3).map(|id| (id, free_addr())).collect();
    let mut gates = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    for &id in peers.keys() {
        let gate = Arc::new(Gate::default());
        let fs = Arc::new(GatedFs { gate: gate.clone() });
        let storage = StorageConfig::WalOn(dir.path().join(format!("n{id}")), fs);
        let cfg = NodeConfig::new(id, peers.clone(), storage, NetworkConfig::Tcp { listen: peers[&id] });
        gates.insert(id, gate);
        nodes.insert(id, Node::start(cfg, Counter::default()).await.unwrap());
    }
    let leader = leader_of(&nodes).await;
    nodes[&leader].propose(Bytes::from_static(b"warm-up")).await.unwrap();
    let followers: Vec<NodeId> = peers.keys().copied().filter(|&id| id != leader).collect();

    // Both followers' disks stall: the leader alone is no majority.
    for f in &followers {
        gates[f].set_closed(true);
    }
    let nodes = Arc::new(nodes);
    let proposal = {
        let nodes = nodes.clone();
        tokio::spawn(async move { nodes[&leader].propose(Bytes::from_static(b"x")).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!proposal.is_finished(), "answered before any follower had the entry on disk");
    // One follower's disk catches up: leader + follower is a majority.
    gates[&followers[0]].set_closed(false);
    let out = tokio::time::timeout(Duration::from_secs(5), proposal).await.unwrap().unwrap().unwrap();
    assert_eq!(out, 2);

    // Now the leader's own disk stalls: followers make it committed, but the
    // leader applies (and answers) only what is durable on its own disk.
    gates[&leader].set_closed(true);
    gates[&followers[1]].set_closed(false);
    let proposal = {
        let nodes = nodes.clone();
        tokio::spawn(async move { nodes[&leader].propose(Bytes::from_static(b"y")).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    if proposal.is_finished() {
        panic!("answered before the leader's own fsync: {:?}", proposal.await);
    }
    gates[&leader].set_closed(false);
    let out = tokio::time::timeout(Duration::from_secs(5), proposal).await.unwrap().unwrap().unwrap();
    assert_eq!(out, 3);
    for gate in gates.values() {
        gate.set_closed(false);
    }
    let nodes = Arc::try_unwrap(nodes).unwrap_or_else(|_| panic!("handles still shared"));
    for (_, node) in nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_never_stalls_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let peers: BTreeMap<NodeId, _> = (1..=3).map(|id| (id, free_addr())).collect();
    // Node 3 is a black hole: it accepts connections and never reads them.
    let hole = tokio::net::TcpListener::bind(peers[&3]).await.unwrap();
    let sinks = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let mut nodes = BTreeMap::new();
    for id in [1, 2] {
        let storage = StorageConfig::Wal(dir.path().join(format!("n{id}")));
        let mut cfg = NodeConfig::new(id, peers.clone(), storage, NetworkConfig::Tcp { listen: peers[&id] });
        cfg.peer_queue_messages = 64;
        nodes.insert(id, Node::start(cfg, Counter::default()).await.unwrap());
    }
    let leader = leader_of(&nodes).await;
    let payload = Bytes::from(vec![7u8; 4096]);
    let started = std::time::Instant::now();
    for _ in 0..2000 {
        nodes[&leader].propose(payload.clone()).await.unwrap();
    }
    // 8 MB never read by node 3: had its queue or socket blocked the leader,
    // this would time out instead.
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    sinks.abort();
    for (_, node) in nodes {
        node.shutdown().await.unwrap();
    }
}
