//! Runtime benchmarks (issue 5). Two parts:
//!
//! 1. openraft's `benchmarks/minimal` workload: 3 nodes in one process, memory
//!    storage, in-process channels, small commands, N concurrent proposers
//!    each awaiting its own result.
//! 2. 3 nodes in one process over loopback TCP with WALs on disk (fsync on),
//!    256-byte commands: throughput and latency, beside what one WAL alone
//!    sustains on the same disk in the same run.
//!
//! `cargo run -p node --release --example bench [-- SECONDS]`
//! (`BENCH_PART=memory` runs part 1 only; `BENCH_PROPOSERS=1,64` picks the
//! proposer counts of part 1).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use node::{ChannelNetwork, NetworkConfig, Node, NodeConfig, StateMachine, StorageConfig};
use raft::{Entry, EntryPayload, HardState, NodeId, Role};

#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    type Output = u64;
    fn apply(&mut self, _index: u64, _command: &[u8]) -> u64 {
        self.0 += 1;
        self.0
    }
    fn snapshot(&self, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(&self.0.to_le_bytes())
    }
    fn restore(&mut self, input: &mut dyn io::Read) -> io::Result<()> {
        let mut b = [0; 8];
        input.read_exact(&mut b)?;
        self.0 = u64::from_le_bytes(b);
        Ok(())
    }
}

type Cluster = BTreeMap<NodeId, Arc<Node<Counter>>>;

async fn leader(nodes: &Cluster) -> Arc<Node<Counter>> {
    loop {
        for node in nodes.values() {
            if node.status().await.is_ok_and(|s| s.raft.role == Role::Leader) {
                return node.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Run {
    ops_per_sec: f64,
    latency: Histogram<u64>,
}

/// `proposers` tasks each propose, await, repeat, for `secs`.
async fn drive(leader: Arc<Node<Counter>>, proposers: usize, payload: Bytes, secs: f64) -> Run {
    // One timer ends the run (a clock read per command would cost as much as the command).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let mut tasks = Vec::new();
    for _ in 0..proposers {
        let (leader, payload, stop) = (leader.clone(), payload.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            // Latency is sampled (every 16th command) into a plain vector: a
            // histogram per proposer would cost more cache misses than the
            // proposal itself at thousands of proposers.
            let mut samples = Vec::new();
            let mut done = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sampled = done.is_multiple_of(16);
                let t = sampled.then(Instant::now);
                if leader.propose(payload.clone()).await.is_ok() {
                    done += 1;
                    if let Some(t) = t {
                        samples.push(t.elapsed().as_micros() as u64);
                    }
                }
            }
            (done, samples)
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for t in tasks {
        if let Ok((done, samples)) = t.await {
            total += done;
            for us in samples {
                let _ = latency.record(us.max(1));
            }
        }
    }
    Run { ops_per_sec: total as f64 / started.elapsed().as_secs_f64(), latency }
}

async fn memory_cluster() -> Cluster {
    let net = ChannelNetwork::new();
    let peers: BTreeMap<NodeId, _> = (1..=3).map(|id| (id, "127.0.0.1:1".parse().expect("addr"))).collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let mut cfg = NodeConfig::new(id, peers.clone(), StorageConfig::Memory, NetworkConfig::Channel(net.clone()));
        cfg.snapshot_entries = u64::MAX;
        nodes.insert(id, Arc::new(Node::start(cfg, Counter::default()).await.expect("start")));
    }
    nodes
}

async fn wal_cluster(dir: &std::path::Path) -> Cluster {
    let peers: BTreeMap<NodeId, _> = (1..=3)
        .map(|id| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            (id, l.local_addr().expect("addr"))
        })
        .collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let storage = StorageConfig::Wal(dir.join(format!("n{id}")));
        let mut cfg = NodeConfig::new(id, peers.clone(), storage, NetworkConfig::Tcp { listen: peers[&id] });
        cfg.snapshot_entries = u64::MAX;
        nodes.insert(id, Arc::new(Node::start(cfg, Counter::default()).await.expect("start")));
    }
    nodes
}

async fn stop(nodes: Cluster) {
    for (_, node) in nodes {
        if let Ok(node) = Arc::try_unwrap(node) {
            let _ = node.shutdown().await;
        }
    }
}

/// What one WAL sustains alone: appends of `batch` 256-byte entries, one
/// fdatasync per batch, for `secs`. Returns entries per second.
fn wal_alone(dir: &std::path::Path, batch: usize, secs: f64) -> f64 {
    let mut wal = wal::Wal::open(dir, wal::WalOptions::default()).expect("wal");
    wal.set_hard_state(HardState { term: 1, vote: 1, commit: 0 }).expect("hs");
    let payload = Bytes::from(vec![7u8; 256]);
    let (mut index, mut total) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    while Instant::now() < deadline {
        let entries: Vec<Entry> = (0..batch)
            .map(|_| {
                index += 1;
                Entry { term: 1, index, payload: EntryPayload::Command(payload.clone()) }
            })
            .collect();
        wal.append(&entries).expect("append");
        wal.sync().expect("sync");
        total += batch as u64;
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    println!("== 3 nodes in one process, memory storage, channel network, 16-byte commands ({secs} s each)");
    println!("{:>10} {:>12} {:>10} {:>10}", "proposers", "ops/s", "p50 µs", "p99 µs");
    let counts: Vec<usize> = match std::env::var("BENCH_PROPOSERS") {
        Ok(list) => list.split(',').filter_map(|n| n.parse().ok()).collect(),
        Err(_) => vec![1, 64, 256, 4096],
    };
    for proposers in counts {
        let nodes = memory_cluster().await;
        let run = drive(leader(&nodes).await, proposers, Bytes::from_static(&[1; 16]), secs).await;
        println!(
            "{proposers:>10} {:>12.0} {:>10} {:>10}",
            run.ops_per_sec,
            run.latency.value_at_quantile(0.5),
            run.latency.value_at_quantile(0.99)
        );
        stop(nodes).await;
    }

    if std::env::var("BENCH_PART").is_ok_and(|p| p == "memory") {
        return;
    }
    let base = std::env::current_dir().expect("cwd").join("target").join("bench-node");
    let _ = std::fs::remove_dir_all(&base);
    println!("\n== one WAL alone on this disk ({}), 256-byte entries", base.display());
    for batch in [1, 64, 256] {
        let dir = base.join(format!("wal-alone-{batch}"));
        let rate = tokio::task::block_in_place(|| wal_alone(&dir, batch, secs.min(2.0)));
        println!("{:>10} entries per fdatasync: {rate:>10.0} entries/s", batch);
    }
    println!("\n== 3 nodes over loopback TCP, WAL with fsync, 256-byte commands ({secs} s each)");
    println!("{:>10} {:>12} {:>10} {:>10}", "proposers", "ops/s", "p50 µs", "p99 µs");
    for proposers in [1, 64, 256] {
        let dir = base.join(format!("cluster-{proposers}"));
        let nodes = wal_cluster(&dir).await;
        let run = drive(leader(&nodes).await, proposers, Bytes::from(vec![7u8; 256]), secs).await;
        println!(
            "{proposers:>10} {:>12.0} {:>10} {:>10}",
            run.ops_per_sec,
            run.latency.value_at_quantile(0.5),
            run.latency.value_at_quantile(0.99)
        );
        stop(nodes).await;
    }
    let _ = std::fs::remove_dir_all(&base);
}
