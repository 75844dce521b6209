//! [`Node`]: the handle a program holds on its replicated state machine.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use raft::{ConfChange, Index, MemStorage, NodeId, Raft, Storage};
use tokio::sync::{mpsc, oneshot};
use wal::{Wal, WalOptions, WalWriter, WriterOptions};

use crate::applier::{Applier, ApplierMsg, SnapshotPolicy};
use crate::backend::{LogStorage, Persister, SnapshotReader, bootstrap_entry};
use crate::config::{NetworkConfig, NodeConfig, StorageConfig};
use crate::core::{Core, Internal, NodeStatus, Request};
use crate::error::{NodeError, StartError};
use crate::lease::PublishedLease;
use crate::shared::SharedMachine;
use crate::state_machine::StateMachine;
use crate::transport::{TcpHandle, TcpSettings, TcpTransport, Transport};

/// Requests queued for the core before callers wait (back pressure).
const REQUEST_QUEUE: usize = 65_536;
/// Peer messages queued for the core before new ones are dropped.
const PEER_INBOX: usize = 65_536;

/// A running Raft node: a replicated `SM`.
pub struct Node<SM: StateMachine> {
    id: NodeId,
    requests: mpsc::Sender<Request<SM::Output>>,
    applier: mpsc::UnboundedSender<ApplierMsg<SM>>,
    /// The state machine, shared with the applier: reads run on the caller's task.
    sm: Arc<SharedMachine<SM>>,
    fatal: Arc<Mutex<Option<String>>>,
    /// The leader's lease, under lease reads: reads within it skip the core.
    lease: Arc<PublishedLease>,
    propose_timeout: std::time::Duration,
    core: Option<tokio::task::JoinHandle<()>>,
    applier_task: Option<tokio::task::JoinHandle<()>>,
    /// For the channel network: this node's inbox, to unregister on shutdown.
    channel: Option<crate::ChannelNetwork>,
}

impl<SM: StateMachine> Node<SM> {
    /// Opens (or creates and bootstraps) the log, restores the state machine
    /// from the latest snapshot, connects to the peers and starts serving.
    ///
    /// Opening the log and restoring the snapshot is blocking IO that takes
    /// seconds on a large data directory; it runs on tokio's blocking pool,
    /// so the rest of the program (a client listener bound before this call)
    /// keeps running on the runtime's workers. Each stage is logged at info
    /// level with its duration; the applier logs when it has applied the
    /// log recovered here (everything committed before the restart).
    pub async fn start(config: NodeConfig, sm: SM) -> Result<Self, StartError> {
        let started = Instant::now();
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let (recover_config, internal) = (config.clone(), internal_tx.clone());
        let Recovered { storage, persister, sm, snapshot } =
            tokio::task::spawn_blocking(move || recover(&recover_config, sm, internal))
                .await
                .map_err(|e| StartError::Restore(std::io::Error::other(format!("recovery task failed: {e}"))))??;
        let recovered_commit = storage.initial_state().hard_state.commit;
        let mut raft_config = config.raft.clone();
        raft_config.id = config.id;
        raft_config.seed = seed(config.id);
        let raft = Raft::new(raft_config, storage.clone()).map_err(|e| StartError::Config(e.to_string()))?;

        let (peer_tx, peer_rx) = mpsc::channel(PEER_INBOX);
        let (transport, channel) = start_transport(&config, peer_tx).await?;
        let persister = Arc::new(persister);
        let (applier_tx, applier_rx) = mpsc::unbounded_channel();
        let sm = Arc::new(SharedMachine::new(sm, snapshot.index));
        let policy = SnapshotPolicy { entries: config.snapshot_entries, bytes: config.snapshot_bytes };
        let mut applier = Applier::new(sm.clone(), snapshot.index, policy, storage, persister.clone(), internal_tx);
        applier.report_replay_until(recovered_commit, started);
        let applier_task = tokio::spawn(applier.run(applier_rx));

        let fatal = Arc::new(Mutex::new(None));
        let mut core = Core::new(
            raft,
            persister,
            transport,
            applier_tx.clone(),
            config.client_addr.clone(),
            fatal.clone(),
            config.tick,
        );
        let lease = core.lease.clone();
        core.propose_timeout = config.propose_timeout;
        let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
        let handle = tokio::spawn(core.run(requests_rx, peer_rx, internal_rx));
        tracing::info!(
            id = config.id,
            snapshot = snapshot.index,
            commit = recovered_commit,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "node started"
        );
        Ok(Node {
            id: config.id,
            requests,
            applier: applier_tx,
            sm,
            fatal,
            lease,
            propose_timeout: config.propose_timeout,
            core: Some(handle),
            applier_task: Some(applier_task),
            channel,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request<SM::Output>) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(make(tx)).await.is_err() {
            return Err(self.stopped());
        }
        rx.await.map_err(|_| self.stopped())
    }

    fn stopped(&self) -> NodeError {
        match self.fatal.lock().ok().and_then(|f| f.clone()) {
            Some(e) => NodeError::Storage(e),
            None => NodeError::Stopped,
        }
    }

    /// Replicates `command` and resolves with the state machine's output once
    /// it is applied here. On the leader only ([`NodeError::NotLeader`]
    /// elsewhere); [`NodeError::Unknown`] if the outcome could not be learned
    /// within the propose timeout.
    pub async fn propose(&self, command: Bytes) -> Result<SM::Output, NodeError> {
        self.submit(command).await?.await
    }

    /// Hands `command` to the core and returns at once with the future of its
    /// outcome. Commands submitted one after another from one task are
    /// appended to the log in that order (what pipelining clients need),
    /// while their outcomes can be awaited together.
    pub async fn submit(&self, command: Bytes) -> Result<Proposal<SM::Output>, NodeError> {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Propose { cmd: command, reply: tx }).await.is_err() {
            return Err(self.stopped());
        }
        Ok(Proposal { rx })
    }

    /// A linearizable read (ReadIndex, thesis §6.4): `read` runs against the
    /// state machine once it has applied everything committed when the read
    /// was asked. Reads that arrive together share one leadership check.
    pub async fn read<R>(&self, read: impl FnOnce(&SM) -> R) -> Result<R, NodeError> {
        let index = self.read_index().await?;
        self.sm.read_at(index, read).await
    }

    /// The first half of [`Node::read`]: confirms leadership and returns the
    /// index a linearizable read must wait for. Many reads invoked before this
    /// call may share its answer ([`Node::read_at`] each).
    pub async fn read_index(&self) -> Result<Index, NodeError> {
        if let Some(index) = self.lease.read_index(Instant::now()) {
            return Ok(index);
        }
        self.ask(|reply| Request::ReadIndex { reply }).await?
    }

    /// The second half of [`Node::read`]: runs `read` once everything up to
    /// `index` (from [`Node::read_index`]) is applied here. With index 0 it is
    /// [`Node::local_read`].
    pub async fn read_at<R>(&self, index: Index, read: impl FnOnce(&SM) -> R) -> Result<R, NodeError> {
        self.sm.read_at(index, read).await
    }

    /// A read of this node's state machine as it is now, without asking the
    /// leader: possibly stale (what Redis Cluster's `READONLY` allows), but
    /// served by any node.
    pub async fn local_read<R>(&self, read: impl FnOnce(&SM) -> R) -> Result<R, NodeError> {
        self.sm.read_at(0, read).await
    }

    /// The index of the last entry the state machine has applied (or the
    /// snapshot it was restored from). The core's
    /// [`NodeStatus`]`.raft.applied` is what it has handed to the applier,
    /// which runs ahead of this while a restart replays its log.
    pub fn applied_index(&self) -> Index {
        self.sm.applied_index()
    }

    /// Adds `id` as a voter: it joins as a learner, catches up (by snapshot if
    /// far behind) and is promoted by the leader. `addr` is its peer address.
    pub async fn add_voter(&self, id: NodeId, addr: SocketAddr) -> Result<Index, NodeError> {
        self.change(ConfChange::AddVoter(id), Some(addr)).await
    }

    /// Adds `id` as a learner at peer address `addr`.
    pub async fn add_learner(&self, id: NodeId, addr: SocketAddr) -> Result<Index, NodeError> {
        self.change(ConfChange::AddLearner(id), Some(addr)).await
    }

    /// Removes voter `id`.
    pub async fn remove_voter(&self, id: NodeId) -> Result<Index, NodeError> {
        self.change(ConfChange::RemoveVoter(id), None).await
    }

    /// Proposes a membership change; resolves once it is applied here.
    pub async fn change(&self, change: ConfChange, addr: Option<SocketAddr>) -> Result<Index, NodeError> {
        let index = self.ask(|reply| Request::ConfChange { change, addr, reply }).await??;
        self.wait_applied(index).await?;
        Ok(index)
    }

    async fn wait_applied(&self, index: Index) -> Result<(), NodeError> {
        match tokio::time::timeout(self.propose_timeout, self.sm.read_at(index, |_| ())).await {
            Ok(result) => result,
            Err(_) => Err(NodeError::Unknown("timed out waiting for the change to apply")),
        }
    }

    /// Hands leadership to `to` (thesis §3.10). Resolves once the transfer has
    /// started; watch [`Node::status`] for the outcome.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), NodeError> {
        self.ask(|reply| Request::Transfer { to, reply }).await?
    }

    /// Takes a snapshot now (normally a policy does: every
    /// [`NodeConfig::snapshot_entries`] applied entries).
    pub async fn snapshot(&self) -> Result<(), NodeError> {
        self.requests.send(Request::Snapshot).await.map_err(|_| self.stopped())
    }

    /// Role, term, leader, commit and applied indices, configuration, and on a
    /// leader each peer's replication progress.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        self.ask(|reply| Request::Status { reply }).await
    }

    /// Stops the node: the core stops taking input, and the WAL is closed
    /// once the last handles go.
    pub async fn shutdown(mut self) -> Result<(), NodeError> {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Shutdown { reply: tx }).await.is_ok() {
            let _ = rx.await;
        }
        if let Some(core) = self.core.take() {
            let _ = core.await;
        }
        if let Some(network) = self.channel.take() {
            network.unregister(self.id);
        }
        // The core is gone; closing our side of the applier's inbox ends it,
        // and with it the last handle on the WAL, which syncs and closes.
        let (closed, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.applier, closed));
        if let Some(applier) = self.applier_task.take() {
            let _ = applier.await;
        }
        Ok(())
    }
}

/// The outcome of a [`Node::submit`]ted command: the state machine's output
/// once applied here, or why not. The applier answers
/// [`NodeError::Unknown`] itself once the propose timeout passes.
pub struct Proposal<O> {
    rx: oneshot::Receiver<Result<O, NodeError>>,
}

impl<O> std::future::Future for Proposal<O> {
    type Output = Result<O, NodeError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx).poll(cx).map(|result| match result {
            Ok(outcome) => outcome,
            Err(_) => Err(NodeError::Unknown("the node stopped after the command was proposed")),
        })
    }
}

fn seed(id: NodeId) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ id.rotate_left(32)
}

/// What [`recover`] hands back: the opened log and the restored state machine.
struct Recovered<SM> {
    storage: LogStorage,
    persister: Persister,
    sm: SM,
    snapshot: raft::SnapshotMeta,
}

/// Opens the log and restores `sm` from its snapshot: the blocking part of
/// [`Node::start`], timed stage by stage.
fn recover<SM: StateMachine>(
    config: &NodeConfig,
    mut sm: SM,
    internal: mpsc::UnboundedSender<Internal>,
) -> Result<Recovered<SM>, StartError> {
    let opening = Instant::now();
    let (storage, persister) = open_storage(config, internal)?;
    let snapshot = storage.snapshot_meta();
    tracing::info!(
        id = config.id,
        first_index = storage.first_index(),
        last_index = storage.last_index(),
        snapshot = snapshot.index,
        elapsed_ms = opening.elapsed().as_millis() as u64,
        "log opened"
    );
    if snapshot.index > 0 {
        let restoring = Instant::now();
        sm.restore(&mut SnapshotReader::new(&storage)).map_err(StartError::Restore)?;
        tracing::info!(
            id = config.id,
            index = snapshot.index,
            elapsed_ms = restoring.elapsed().as_millis() as u64,
            "state machine restored from the snapshot"
        );
    }
    Ok(Recovered { storage, persister, sm, snapshot })
}

fn open_storage(
    config: &NodeConfig,
    internal: mpsc::UnboundedSender<Internal>,
) -> Result<(LogStorage, Persister), StartError> {
    let bootstrap = (!config.join).then(|| bootstrap_entry(config.peers.keys().copied()));
    let (dir, fs) = match &config.storage {
        StorageConfig::Memory => {
            let memory = MemStorage::default();
            if let Some((entry, hs)) = bootstrap {
                memory.append(&[entry]);
                memory.set_hard_state(hs);
            }
            return Ok((LogStorage::Memory(memory.clone()), Persister::Memory(memory)));
        }
        StorageConfig::Wal(dir) => (dir, None),
        StorageConfig::WalOn(dir, fs) => (dir, Some(fs.clone())),
    };
    let mut wal = match fs {
        Some(fs) => Wal::open_on(fs, dir, WalOptions::default())?,
        None => Wal::open(dir, WalOptions::default())?,
    };
    let empty = wal.storage().last_index() == 0 && wal.storage().snapshot_meta().index == 0;
    if let (true, Some((entry, hs))) = (empty, bootstrap) {
        wal.append(&[entry])?;
        wal.set_hard_state(hs)?;
        wal.sync()?;
    }
    let storage = wal.storage();
    let on_durable = Box::new(move |d| {
        let _ = internal.send(Internal::Durable(d));
    });
    let writer = WalWriter::start(wal, WriterOptions::default(), Some(on_durable)).map_err(StartError::Restore)?;
    Ok((LogStorage::Wal(storage), Persister::Wal(Arc::new(writer))))
}

async fn start_transport(
    config: &NodeConfig,
    inbox: mpsc::Sender<raft::Message>,
) -> Result<(Transport, Option<crate::ChannelNetwork>), StartError> {
    match &config.network {
        NetworkConfig::Channel(network) => {
            network.register(config.id, inbox);
            Ok((Transport::Channel(network.clone()), Some(network.clone())))
        }
        NetworkConfig::Tcp { listen } => {
            let settings = TcpSettings {
                me: config.id,
                cluster_id: config.cluster_id,
                client_addr: config.client_addr.clone(),
                peer_addr: *listen,
                max_frame_bytes: config.max_frame_bytes,
                queue_messages: config.peer_queue_messages,
                backoff: config.reconnect_backoff,
                join: config.join,
            };
            let (stop, stopped) = tokio::sync::watch::channel(());
            let tcp = TcpTransport::start(settings, *listen, inbox, stopped).await.map_err(StartError::Listen)?;
            for (&id, &addr) in &config.peers {
                tcp.add_configured_peer(id, addr);
            }
            Ok((Transport::Tcp(TcpHandle { transport: tcp, _stop: stop }), None))
        }
    }
}
