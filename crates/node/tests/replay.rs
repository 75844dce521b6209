//! A restart's replay (the applier working through the whole recovered log)
//! does not keep the core from running, even on a runtime of one thread.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Counter, free_addr};
use node::{NetworkConfig, Node, NodeConfig, StateMachine, StorageConfig};

/// A [`Counter`] that takes 50 µs per command, as a state machine with
/// real work would.
#[derive(Default)]
struct Slow(Counter);

impl StateMachine for Slow {
    type Output = u64;
    fn apply(&mut self, index: raft::Index, command: &[u8]) -> u64 {
        let until = Instant::now() + Duration::from_micros(50);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        self.0.apply(index, command)
    }
    fn snapshot(&self, out: &mut dyn io::Write) -> io::Result<()> {
        self.0.snapshot(out)
    }
    fn restore(&mut self, input: &mut dyn io::Read) -> io::Result<()> {
        self.0.restore(input)
    }
}

const COMMANDS: u64 = 20_000;

fn config(dir: &std::path::Path) -> NodeConfig {
    let addr = free_addr();
    let peers = [(1, addr)].into_iter().collect();
    let mut cfg = NodeConfig::new(1, peers, StorageConfig::Wal(dir.to_path_buf()), NetworkConfig::Tcp { listen: addr });
    cfg.snapshot_entries = u64::MAX;
    cfg
}

/// Writes `COMMANDS` commands into a one-node cluster in `dir` and stops it.
fn write_log(dir: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let node = Arc::new(Node::start(config(dir), Slow::default()).await.unwrap());
        while node.propose(Bytes::from_static(b"x")).await.is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let writers: Vec<_> = (0..64)
            .map(|_| {
                let node = node.clone();
                tokio::spawn(async move {
                    for _ in 0..(COMMANDS - 1).div_ceil(64) {
                        node.propose(Bytes::from_static(b"x")).await.unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        Arc::try_unwrap(node).ok().unwrap().shutdown().await.unwrap();
    });
}

/// The recovered log takes about a second to apply here (50 µs a command);
/// meanwhile the core answers `status` at once. (Applied on the runtime's
/// only thread, the batch would hold every other task until it ended.)
#[test]
fn the_core_answers_during_a_replay_on_a_one_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let started = Instant::now();
        let node = Node::start(config(dir.path()), Slow::default()).await.unwrap();
        let mut slowest = Duration::ZERO;
        while started.elapsed() < Duration::from_millis(800) {
            let asked = Instant::now();
            tokio::time::timeout(Duration::from_secs(10), node.status()).await.unwrap().unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            slowest = slowest.max(asked.elapsed());
        }
        let applied = node.read_at(COMMANDS, |sm: &Slow| sm.0.count).await.unwrap();
        let replay = started.elapsed();
        assert!(applied >= COMMANDS, "{applied} commands after the replay");
        assert!(replay >= Duration::from_millis(900), "the replay took {replay:?}: too short to tell");
        assert!(
            slowest < Duration::from_millis(500),
            "a status call and a 5 ms sleep took {slowest:?} during the replay"
        );
        node.shutdown().await.unwrap();
    });
}
