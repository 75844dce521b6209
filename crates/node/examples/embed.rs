//! A replicated counter in a dozen lines: one node, a WAL in a temporary
//! directory, a command proposed and read back linearizably.
//!
//! `cargo run -p node --example embed`

use std::{collections::BTreeMap, io};

use node::{NetworkConfig, Node, NodeConfig, StateMachine, StorageConfig};

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let addr = "127.0.0.1:0".parse()?;
    let peers = BTreeMap::from([(1, addr)]);
    let config = NodeConfig::new(1, peers, StorageConfig::Wal(dir.path().into()), NetworkConfig::Tcp { listen: addr });
    let node = Node::start(config, Counter::default()).await?;
    while node.status().await?.raft.role != raft::Role::Leader {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let applied = node.propose(bytes::Bytes::from_static(b"increment")).await?;
    let read = node.read(|c: &Counter| c.0).await?;
    println!("applied as #{applied}; a linearizable read sees {read}");
    node.shutdown().await?;
    Ok(())
}
