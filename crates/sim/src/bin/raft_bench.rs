//! Throughput ceiling of the Raft core: three cores in one thread, messages
//! handed over directly, storage in memory and "durable" at once. Proposers
//! each keep one command in flight and propose again when it is applied.
//!
//! `cargo run -p sim --release --bin raft_bench [-- ENTRIES]`
//!
//! Everything runs on one thread with no IO, so wall time is CPU time.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use raft::{Action, Config, MemStorage, Membership, Message, Raft, Role};

const NODES: u64 = 3;

struct Node {
    raft: Raft<MemStorage>,
    disk: MemStorage,
}

fn cluster() -> Vec<Node> {
    let membership = Membership::new(1..=NODES);
    (1..=NODES)
        .map(|id| {
            let disk = MemStorage::new_with_membership(membership.clone());
            let mut config = Config::new(id);
            config.max_inflight_messages = 1024;
            let raft = match Raft::new(config, disk.clone()) {
                Ok(raft) => raft,
                Err(e) => panic!("config: {e}"),
            };
            Node { raft, disk }
        })
        .collect()
}

/// Carries out a node's actions; returns how many commands it applied.
fn drive(node: &mut Node, network: &mut VecDeque<Message>) -> u64 {
    let mut applied = 0;
    loop {
        let actions = node.raft.take_actions();
        if actions.is_empty() {
            return applied;
        }
        let mut persisted = None;
        for action in actions {
            match action {
                Action::PersistHardState(hs) => node.disk.set_hard_state(hs),
                Action::PersistEntries(entries) => {
                    node.disk.append(&entries);
                    persisted = entries.last().map(|e| (e.index, e.term));
                }
                Action::Send { message, .. } => network.push_back(message),
                Action::Apply(entries) => applied += entries.len() as u64,
                _ => {}
            }
        }
        if let Some((index, term)) = persisted {
            node.raft.on_persisted(index, term);
        }
    }
}

fn elect(nodes: &mut [Node], network: &mut VecDeque<Message>) {
    while nodes[0].raft.role() != Role::Leader {
        nodes[0].raft.tick();
        pump(nodes, network);
    }
    pump(nodes, network);
}

fn pump(nodes: &mut [Node], network: &mut VecDeque<Message>) -> u64 {
    let mut applied_by_leader = 0;
    loop {
        for (i, node) in nodes.iter_mut().enumerate() {
            let n = drive(node, network);
            if i == 0 {
                applied_by_leader += n;
            }
        }
        let Some(m) = network.pop_front() else { return applied_by_leader };
        let to = (m.to - 1) as usize;
        if let Err(e) = nodes[to].raft.step(m) {
            panic!("step: {e}");
        }
    }
}

fn run(proposers: u64, entries: u64) -> (f64, f64) {
    let mut nodes = cluster();
    let mut network = VecDeque::new();
    elect(&mut nodes, &mut network);
    let payload = Bytes::from_static(&[7u8; 16]);
    let start = Instant::now();
    let (mut proposed, mut applied) = (0u64, 0u64);
    while applied < entries {
        // Every proposer whose command was applied proposes again.
        let in_flight = proposed - applied.min(proposed);
        for _ in in_flight..proposers {
            if nodes[0].raft.propose(payload.clone()).is_ok() {
                proposed += 1;
            }
        }
        applied += pump(&mut nodes, &mut network);
        // Heartbeats and their answers keep flowing as in a real cluster.
        for node in nodes.iter_mut() {
            node.raft.tick();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    (applied as f64 / secs, secs * 1e9 / applied as f64)
}

fn main() {
    let entries: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    println!("raft core, 3 nodes in one thread, in-memory, 16-byte commands, {entries} entries per run");
    println!("{:>10} {:>16} {:>18}", "proposers", "entries/s", "CPU ns/entry");
    for proposers in [1u64, 64, 1024] {
        let n = if proposers == 1 { entries / 10 } else { entries };
        let (rate, ns) = run(proposers, n);
        println!("{proposers:>10} {rate:>16.0} {ns:>18.0}");
    }
}
