//! The client-facing server: accepts Redis connections and serves them from
//! the replicated store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use node::{NetworkConfig, Node, NodeConfig, StorageConfig};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::ServerConfig;
use crate::connection::Connection;
use crate::machine::KvMachine;
use crate::resp::Limits;

/// What every connection shares.
pub struct Shared {
    /// The Raft node.
    pub node: Node<KvMachine>,
    /// The configuration.
    pub config: ServerConfig,
    /// Protocol limits.
    pub limits: Limits,
    /// Connections served so far (ids for `CLIENT ID`).
    pub next_client_id: AtomicU64,
    /// Connections open now.
    pub connected: AtomicU64,
    /// When the server started.
    pub started: std::time::Instant,
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts the node and the client listener.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        config.validate()?;
        let mut peers: BTreeMap<u64, _> = config.initial_cluster.clone();
        peers.entry(config.id).or_insert(config.peer_addr);
        let storage = StorageConfig::Wal(config.data_dir.clone());
        let mut node_config =
            NodeConfig::new(config.id, peers, storage, NetworkConfig::Tcp { listen: config.peer_addr });
        node_config.client_addr = config.client_addr.to_string();
        node_config.join = config.join || config.initial_cluster.is_empty();
        node_config.snapshot_entries = config.snapshot_entries;
        node_config.snapshot_bytes = config.snapshot_bytes;
        let node = Node::start(node_config, KvMachine::default())
            .await
            .with_context(|| format!("starting node {} in {}", config.id, config.data_dir.display()))?;
        let listener = TcpListener::bind(config.client_addr)
            .await
            .with_context(|| format!("listening for clients on {}", config.client_addr))?;
        let limits = Limits { max_bulk_bytes: config.max_bulk_bytes, ..Limits::default() };
        let shared = Arc::new(Shared {
            node,
            limits,
            next_client_id: AtomicU64::new(1),
            connected: AtomicU64::new(0),
            started: std::time::Instant::now(),
            config,
        });
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        tracing::info!(client = %shared.config.client_addr, peer = %shared.config.peer_addr, "raftkv serving");
        Ok(Server { shared, stop, accept })
    }

    /// The node behind the server.
    pub fn node(&self) -> &Node<KvMachine> {
        &self.shared.node
    }

    /// Stops accepting clients, closes connections and stops the node.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        // Connections hold the shared state; give them a moment to see the stop.
        for _ in 0..100 {
            if Arc::strong_count(&self.shared) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared.node.shutdown().await.map_err(|e| anyhow::anyhow!("{e}")),
            Err(_) => Ok(()),
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(shared.config.max_clients));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (shared, mut stopped) = (shared.clone(), stopped.clone());
        tokio::spawn(async move {
            let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
            shared.connected.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                result = Connection::new(stream, shared.clone(), id).run() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "client connection ended");
                    }
                }
                _ = stopped.changed() => {}
            }
            shared.connected.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}
