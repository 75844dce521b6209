//! The client-facing server: accepts Redis connections and serves them from
//! the replicated store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

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
    /// The Raft node, set once it has started and never unset: until then
    /// the client port answers, but whatever needs the node gets
    /// [`starting_error`](crate::connection::starting_error).
    node: OnceLock<Node<KvMachine>>,
    /// The store's key count, published by the state machine (`INFO
    /// keyspace` reads it without locking the store).
    pub key_count: Arc<AtomicU64>,
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

impl Shared {
    /// The state of a server whose node has not started yet.
    fn new(config: ServerConfig, key_count: Arc<AtomicU64>) -> Shared {
        Shared {
            node: OnceLock::new(),
            key_count,
            limits: Limits { max_bulk_bytes: config.max_bulk_bytes, ..Limits::default() },
            next_client_id: AtomicU64::new(1),
            connected: AtomicU64::new(0),
            started: std::time::Instant::now(),
            config,
        }
    }

    /// The Raft node, once it has started.
    pub fn node(&self) -> Option<&Node<KvMachine>> {
        self.node.get()
    }
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds the client port, then starts the node, and returns once the
    /// node runs. The port answers from the start: while the node opens its
    /// log and restores its snapshot (seconds with a large data directory),
    /// PING and INFO are answered (INFO with `loading:1` and no Raft
    /// section) and everything that needs the node gets `-CLUSTERDOWN`, so
    /// nothing is executed and nothing is read before the node is ready.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        config.validate()?;
        let started = std::time::Instant::now();
        let listener = TcpListener::bind(config.client_addr)
            .await
            .with_context(|| format!("listening for clients on {}", config.client_addr))?;
        tracing::info!(client = %config.client_addr, "client port bound; answering CLUSTERDOWN until the node has started");
        let machine = KvMachine::default();
        let shared = Arc::new(Shared::new(config, machine.key_count()));
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        let server = Server { shared, stop, accept };
        let node = match start_node(&server.shared.config, machine).await {
            Ok(node) => node,
            Err(e) => {
                let _ = server.shutdown().await;
                return Err(e);
            }
        };
        if server.shared.node.set(node).is_err() {
            anyhow::bail!("the node was started twice");
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(client = %server.shared.config.client_addr, peer = %server.shared.config.peer_addr, elapsed_ms, "raftkv serving");
        Ok(server)
    }

    /// The node behind the server (always there once [`Server::start`] returned).
    pub fn node(&self) -> Option<&Node<KvMachine>> {
        self.shared.node()
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
        match Arc::try_unwrap(self.shared).map(|shared| shared.node.into_inner()) {
            Ok(Some(node)) => node.shutdown().await.map_err(|e| anyhow::anyhow!("{e}")),
            Ok(None) | Err(_) => Ok(()),
        }
    }
}

/// Starts the node of `config` around `machine`.
async fn start_node(config: &ServerConfig, machine: KvMachine) -> anyhow::Result<Node<KvMachine>> {
    let mut peers: BTreeMap<u64, _> = config.initial_cluster.clone();
    peers.entry(config.id).or_insert(config.peer_addr);
    let storage = StorageConfig::Wal(config.data_dir.clone());
    let mut node_config = NodeConfig::new(config.id, peers, storage, NetworkConfig::Tcp { listen: config.peer_addr });
    node_config.client_addr = config.client_addr.to_string();
    node_config.join = config.join || config.initial_cluster.is_empty();
    node_config.snapshot_entries = config.snapshot_entries;
    node_config.snapshot_bytes = config.snapshot_bytes;
    node_config.raft.lease_read = config.lease_read;
    Node::start(node_config, machine)
        .await
        .with_context(|| format!("starting node {} in {}", config.id, config.data_dir.display()))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Sends one RESP command and reads its whole reply (simple or bulk).
    async fn ask(stream: &mut TcpStream, args: &[&str]) -> String {
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request += &format!("${}\r\n{a}\r\n", a.len());
        }
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        while !complete(&reply) {
            let mut buf = [0; 4096];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed");
            reply.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(reply).unwrap()
    }

    fn complete(reply: &[u8]) -> bool {
        let text = String::from_utf8_lossy(reply);
        let Some((head, rest)) = text.split_once("\r\n") else { return false };
        match head.strip_prefix('$').map(str::parse::<usize>) {
            Some(Ok(len)) => rest.len() >= len + 2,
            _ => true,
        }
    }

    #[tokio::test]
    async fn while_the_node_starts_the_port_answers_but_reads_and_writes_get_clusterdown() {
        let config: ServerConfig =
            toml::from_str("id = 1\ndata_dir = \"unused\"\nclient_addr = \"127.0.0.1:1\"\npeer_addr = \"127.0.0.1:2\"")
                .unwrap();
        let shared = Arc::new(Shared::new(config, Arc::new(AtomicU64::new(0))));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        let mut client = TcpStream::connect(addr).await.unwrap();
        assert_eq!(ask(&mut client, &["PING"]).await, "+PONG\r\n");
        let info = ask(&mut client, &["INFO"]).await;
        assert!(info.contains("loading:1\r\n"), "{info}");
        assert!(!info.contains("raft_"), "no Raft section before the node runs: {info}");
        let starting = "-CLUSTERDOWN no leader known yet";
        assert!(ask(&mut client, &["SET", "k", "v"]).await.starts_with(starting));
        assert!(ask(&mut client, &["GET", "k"]).await.starts_with(starting));
        assert!(ask(&mut client, &["RAFT.SNAPSHOT"]).await.starts_with(starting));
        assert_eq!(ask(&mut client, &["READONLY"]).await, "+OK\r\n");
        assert!(ask(&mut client, &["GET", "k"]).await.starts_with(starting), "not even a stale read");
        assert!(ask(&mut client, &["MULTI"]).await.starts_with("+OK"));
        assert!(ask(&mut client, &["SET", "k", "v"]).await.starts_with("+QUEUED"));
        assert!(ask(&mut client, &["EXEC"]).await.starts_with(starting));
    }
}
