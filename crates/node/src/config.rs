//! How a node is set up. Every field has a sane default; see [`NodeConfig::new`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use raft::NodeId;

use crate::transport::ChannelNetwork;

/// Where a node keeps its log.
#[derive(Clone, Debug)]
pub enum StorageConfig {
    /// The durable WAL in this directory (created if missing).
    Wal(PathBuf),
    /// The WAL in this directory on another file layer (fault injection in tests).
    WalOn(PathBuf, std::sync::Arc<dyn wal::fs::Fs>),
    /// In memory only: for tests and benchmarks. Nothing survives the process.
    Memory,
}

/// How peers reach each other.
#[derive(Clone, Debug)]
pub enum NetworkConfig {
    /// TCP: listen on `listen`, reach peers at the addresses in
    /// [`NodeConfig::peers`].
    Tcp {
        /// Address to accept peer connections on.
        listen: SocketAddr,
    },
    /// In-process channels through a shared [`ChannelNetwork`] (tests and
    /// benchmarks).
    Channel(ChannelNetwork),
}

/// A node's configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (never 0).
    pub id: NodeId,
    /// Nodes of different clusters refuse each other's connections.
    pub cluster_id: u64,
    /// The initial voters and their peer addresses. Used only to bootstrap an
    /// empty log; afterwards the configuration comes from the log, and
    /// addresses of added nodes from [`Node::add_voter`](crate::Node::add_voter).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Set on a node joining an existing cluster: it starts with an empty log
    /// and waits for the leader instead of bootstrapping from `peers`.
    pub join: bool,
    /// The address clients use for this node, told to peers so followers can
    /// redirect clients to the leader.
    pub client_addr: String,
    /// Where the log lives.
    pub storage: StorageConfig,
    /// How peers talk.
    pub network: NetworkConfig,
    /// Length of one tick of the core. Timeouts below are in ticks of this.
    pub tick: Duration,
    /// The core's tunables (election timeouts, heartbeat, limits); `id` and
    /// `seed` are filled in from this config.
    pub raft: raft::Config,
    /// Take a snapshot once this many entries were applied since the last one.
    pub snapshot_entries: u64,
    /// ... or once the commands applied since the last one add up to this
    /// many bytes (whichever comes first): a log of large values is
    /// compacted as soon as one of small values.
    pub snapshot_bytes: u64,
    /// A proposal whose outcome is not known after this long fails with
    /// [`NodeError::Unknown`](crate::NodeError::Unknown).
    pub propose_timeout: Duration,
    /// The largest frame accepted from a peer.
    pub max_frame_bytes: u32,
    /// Messages queued for one peer before new ones are dropped (a slow peer
    /// never blocks the core).
    pub peer_queue_messages: usize,
    /// Reconnection backoff to a peer: first delay, doubled up to the cap.
    pub reconnect_backoff: (Duration, Duration),
}

impl NodeConfig {
    /// Defaults for node `id` of a cluster whose initial voters are `peers`.
    pub fn new(
        id: NodeId,
        peers: BTreeMap<NodeId, SocketAddr>,
        storage: StorageConfig,
        network: NetworkConfig,
    ) -> Self {
        NodeConfig {
            id,
            cluster_id: 1,
            peers,
            join: false,
            client_addr: String::new(),
            storage,
            network,
            tick: Duration::from_millis(10),
            raft: raft::Config::new(id),
            snapshot_entries: 100_000,
            snapshot_bytes: 256 << 20,
            propose_timeout: Duration::from_secs(5),
            max_frame_bytes: 64 << 20,
            peer_queue_messages: 4096,
            reconnect_backoff: (Duration::from_millis(50), Duration::from_secs(2)),
        }
    }
}
