//! The task that owns the Raft core: it ticks, steps peer messages, takes
//! requests (batching everything queued), and carries out the core's actions
//! under the driver contract of the `raft` crate.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use raft::{Action, ConfChange, Index, Message, NodeId, ProposeError, Raft, SnapshotMeta, Status, Term};
use tokio::sync::{mpsc, oneshot};
use wal::Op;

use crate::applier::{ApplierMsg, LONG_BATCH_ENTRIES};
use crate::backend::{LogStorage, Persister, SnapshotDone, SnapshotSink, Submitted};
use crate::error::NodeError;
use crate::lease::PublishedLease;
use crate::state_machine::StateMachine;
use crate::ticker::Ticker;
use crate::transport::Transport;

/// How often (in ticks) pending proposals are checked for their deadline.
const SWEEP_EVERY_TICKS: u64 = 10;

/// How many queued inputs one loop iteration takes before acting on them.
const BATCH_INPUTS_MAX: usize = 4096;

/// How far [`Core::act`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acted {
    /// The core has no actions left.
    Done,
    /// It handed the applier a long batch and may have more.
    LongApply,
}

/// What a [`Node`](crate::Node) handle asks of the core.
pub(crate) enum Request<O> {
    Propose { cmd: Bytes, reply: oneshot::Sender<Result<O, NodeError>> },
    ReadIndex { reply: oneshot::Sender<Result<Index, NodeError>> },
    ConfChange { change: ConfChange, addr: Option<SocketAddr>, reply: oneshot::Sender<Result<Index, NodeError>> },
    Transfer { to: NodeId, reply: oneshot::Sender<Result<(), NodeError>> },
    Status { reply: oneshot::Sender<NodeStatus> },
    Snapshot,
    Shutdown { reply: oneshot::Sender<()> },
}

/// What the WAL writer and the applier tell the core.
pub(crate) enum Internal {
    Durable(wal::Durable),
    SnapshotMetaAt { index: Index, reply: oneshot::Sender<Result<SnapshotMeta, NodeError>> },
    SnapshotTaken { meta: SnapshotMeta, done: SnapshotDone },
    Restored(SnapshotMeta),
    Fatal(String),
}

/// A node's state, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The core's view: role, term, leader, commit, applied, last index,
    /// snapshot index, configuration, and on a leader each peer's progress.
    pub raft: Status,
    /// The leader's client address, if known.
    pub leader_client_addr: Option<String>,
}

pub(crate) struct Core<SM: StateMachine> {
    pub raft: Raft<LogStorage>,
    pub persister: Arc<Persister>,
    pub transport: Transport,
    pub applier: mpsc::UnboundedSender<ApplierMsg<SM>>,
    pub client_addr: String,
    pub fatal: Arc<Mutex<Option<String>>>,
    /// Messages waiting for writes up to a sequence number to be durable.
    held: VecDeque<(u64, Message)>,
    /// Received snapshots waiting for their install to be durable.
    installs: VecDeque<(u64, SnapshotMeta)>,
    submitted: u64,
    durable: u64,
    receiving: Option<SnapshotSink>,
    next_read: u64,
    reads: BTreeMap<u64, oneshot::Sender<Result<Index, NodeError>>>,
    /// Entries durable in memory storage during this batch.
    memory_persisted: Option<(Index, Term)>,
    /// The hard state last handed to the persister.
    hard_state: Option<raft::HardState>,
    /// How long a proposal may wait for its outcome.
    pub propose_timeout: std::time::Duration,
    /// Proposals accepted in this batch, to register with the applier at once.
    proposed: Vec<(Index, Term, crate::applier::Reply<SM>)>,
    /// The configuration the transport was last told about.
    members: std::collections::BTreeSet<NodeId>,
    /// The core's clock.
    ticker: Ticker,
    /// The lease readers see, and what was last published in it.
    pub lease: Arc<PublishedLease>,
    published_lease: Option<(u64, Index)>,
}

impl<SM: StateMachine> Core<SM> {
    pub fn new(
        raft: Raft<LogStorage>,
        persister: Arc<Persister>,
        transport: Transport,
        applier: mpsc::UnboundedSender<ApplierMsg<SM>>,
        client_addr: String,
        fatal: Arc<Mutex<Option<String>>>,
        tick: std::time::Duration,
    ) -> Self {
        Core {
            raft,
            persister,
            transport,
            applier,
            client_addr,
            fatal,
            held: VecDeque::new(),
            installs: VecDeque::new(),
            submitted: 0,
            durable: 0,
            receiving: None,
            next_read: 0,
            reads: BTreeMap::new(),
            memory_persisted: None,
            hard_state: None,
            members: Default::default(),
            proposed: Vec::new(),
            propose_timeout: std::time::Duration::from_secs(5),
            ticker: Ticker::new(tick),
            lease: Default::default(),
            published_lease: None,
        }
    }

    /// The loop. Returns when asked to shut down or on a fatal error.
    pub async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request<SM::Output>>,
        mut peers: mpsc::Receiver<Message>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        let wake = tokio::time::sleep_until(self.ticker.next_deadline().into());
        tokio::pin!(wake);
        loop {
            let outcome = tokio::select! {
                _ = &mut wake => {
                    let outcome = self.catch_up_ticks().map(|_| None);
                    wake.as_mut().reset(self.ticker.next_deadline().into());
                    outcome
                }
                Some(m) = peers.recv() => self.step_messages(m, &mut peers).map(|_| None),
                Some(r) = requests.recv() => self.handle_requests(r, &mut requests),
                Some(i) = internal.recv() => self.handle_internal(i),
                else => return self.lease.publish(None),
            };
            let outcome = match outcome {
                Ok(shutdown) => self.act_all().await.map(|()| shutdown),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(None) => {}
                Ok(Some(reply)) => {
                    self.lease.publish(None);
                    let _ = reply.send(());
                    return;
                }
                Err(e) => return self.stop(e),
            }
        }
    }

    /// Hands the core every tick due by now (see [`Ticker`]), and the
    /// applier its periodic deadline sweep.
    fn catch_up_ticks(&mut self) -> Result<(), NodeError> {
        let (now, before) = (Instant::now(), self.ticker.done());
        for tick in before + 1..=before + self.ticker.take_due(now) {
            self.raft.tick();
            if tick.is_multiple_of(SWEEP_EVERY_TICKS) {
                self.to_applier(ApplierMsg::Sweep(now))?;
            }
        }
        Ok(())
    }

    /// Shows readers the lease the core holds now (see [`PublishedLease`]).
    fn publish_lease(&mut self) {
        let lease = self.raft.lease();
        if lease != self.published_lease {
            self.published_lease = lease;
            self.lease.publish(lease.map(|(end, index)| (self.ticker.due_at(end), index)));
        }
    }

    fn stop(&mut self, e: NodeError) {
        self.lease.publish(None);
        tracing::error!(id = self.raft.id(), error = %e, "node stopping");
        if let Ok(mut fatal) = self.fatal.lock() {
            *fatal = Some(e.to_string());
        }
    }

    /// Steps `first` and whatever else is queued. The clock is read again
    /// before each: a follower that acknowledges a heartbeat promises its
    /// vote from the tick it heard it (thesis §6.4.1), so a message that
    /// arrived after a pause must not be stepped at the tick before it.
    fn step_messages(&mut self, first: Message, peers: &mut mpsc::Receiver<Message>) -> Result<(), NodeError> {
        for_each_queued(first, peers, |m| {
            self.catch_up_ticks()?;
            self.step(m);
            Ok(true)
        })
    }

    fn step(&mut self, m: Message) {
        if let Err(e) = self.raft.step(m) {
            tracing::warn!(error = %e, "dropped a bad peer message");
        }
    }

    /// Handles `first` and whatever else is queued, so proposals that arrive
    /// together go out in one AppendEntries.
    fn handle_requests(
        &mut self,
        first: Request<SM::Output>,
        requests: &mut mpsc::Receiver<Request<SM::Output>>,
    ) -> Result<Option<oneshot::Sender<()>>, NodeError> {
        let mut shutdown = None;
        for_each_queued(first, requests, |request| {
            // A lease read must be checked against the time it arrived by.
            self.catch_up_ticks()?;
            shutdown = self.handle_request(request)?;
            Ok(shutdown.is_none())
        })?;
        // One message for the whole batch: the applier wakes once.
        if !self.proposed.is_empty() {
            let proposed = std::mem::take(&mut self.proposed);
            self.to_applier(ApplierMsg::Register(proposed, Instant::now() + self.propose_timeout))?;
        }
        Ok(shutdown)
    }

    fn handle_request(&mut self, request: Request<SM::Output>) -> Result<Option<oneshot::Sender<()>>, NodeError> {
        match request {
            Request::Propose { cmd, reply } => match self.raft.propose(cmd) {
                Ok(index) => self.proposed.push((index, self.raft.term(), reply)),
                Err(e) => {
                    let _ = reply.send(Err(self.propose_error(e)));
                }
            },
            Request::ReadIndex { reply } => {
                self.next_read += 1;
                match self.raft.read_index(self.next_read) {
                    Ok(()) => {
                        self.reads.insert(self.next_read, reply);
                    }
                    Err(raft::ReadError::NotLeader(_)) => {
                        let _ = reply.send(Err(self.not_leader()));
                    }
                }
            }
            Request::ConfChange { change, addr, reply } => {
                if let (Some(addr), ConfChange::AddVoter(id) | ConfChange::AddLearner(id)) = (addr, change) {
                    self.transport.add_peer(id, addr);
                }
                let result = self.raft.propose_conf_change(change).map_err(|e| self.propose_error(e));
                let _ = reply.send(result);
            }
            Request::Transfer { to, reply } => {
                let result = self.raft.transfer_leader(to).map_err(|e| match e {
                    raft::TransferError::NotLeader(_) => self.not_leader(),
                    e => NodeError::Refused(e.to_string()),
                });
                let _ = reply.send(result);
            }
            Request::Status { reply } => {
                let raft = self.raft.status();
                let leader_client_addr = self.client_addr_of(raft.leader);
                let _ = reply.send(NodeStatus { raft, leader_client_addr });
            }
            Request::Snapshot => self.to_applier(ApplierMsg::SnapshotNow)?,
            Request::Shutdown { reply } => return Ok(Some(reply)),
        }
        Ok(None)
    }

    fn handle_internal(&mut self, internal: Internal) -> Result<Option<oneshot::Sender<()>>, NodeError> {
        match internal {
            Internal::Durable(d) => self.on_durable(d)?,
            Internal::SnapshotMetaAt { index, reply } => {
                let _ = reply.send(self.raft.snapshot_meta_at(index).map_err(|e| NodeError::Refused(e.to_string())));
            }
            Internal::SnapshotTaken { meta, done } => {
                // The snapshot file is durable; installing it drops the log it covers.
                self.submit_install(done)?;
                self.raft.on_snapshot_taken(&meta);
            }
            Internal::Restored(meta) => self.raft.on_snapshot_installed(&meta),
            Internal::Fatal(e) => return Err(NodeError::Storage(e)),
        }
        Ok(None)
    }

    fn on_durable(&mut self, d: wal::Durable) -> Result<(), NodeError> {
        self.durable = self.durable.max(d.seq);
        self.raft.on_persisted(d.index, d.term);
        while self.held.front().is_some_and(|(seq, _)| *seq <= self.durable) {
            if let Some((_, m)) = self.held.pop_front() {
                self.transport.send(m);
            }
        }
        while self.installs.front().is_some_and(|(seq, _)| *seq <= self.durable) {
            if let Some((_, meta)) = self.installs.pop_front() {
                self.to_applier(ApplierMsg::Restore(meta))?;
            }
        }
        Ok(())
    }

    /// Carries out the core's actions until it has none, letting the
    /// runtime run other tasks after each long batch of committed entries.
    ///
    /// After a restart the core hands out the whole recovered log, a
    /// `max_apply_bytes` batch per round of actions, reading each from the
    /// WAL. The applier task, woken by the first batch, waits in this
    /// worker's queue until the core yields; yielding after each long
    /// batch lets it start applying while the core reads the next.
    async fn act_all(&mut self) -> Result<(), NodeError> {
        while self.act()? == Acted::LongApply {
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Carries out the core's actions until it has none (reporting memory
    /// writes durable at once), or until it handed the applier a long batch.
    fn act(&mut self) -> Result<Acted, NodeError> {
        loop {
            let mut actions = self.raft.take_actions();
            // Before anything is sent: a TimeoutNow among the sends ends it.
            self.publish_lease();
            if actions.is_empty() {
                self.sync_members();
                return Ok(Acted::Done);
            }
            let long_apply = actions.iter().any(|a| matches!(a, Action::Apply(e) if e.len() > LONG_BATCH_ENTRIES));
            // Messages that may leave at once (the leader's replication,
            // thesis §10.2.1, and heartbeat answers) go before the writes of
            // this batch are even encoded and queued, so followers start on
            // their own writes while the leader is still on its.
            let early = actions.extract_if(.., |a| matches!(a, Action::Send { after_persist: false, .. }));
            for action in early {
                if let Action::Send { message, .. } = action {
                    self.transport.send(message);
                }
            }
            for action in actions {
                self.execute(action)?;
            }
            if let Some((index, term)) = self.memory_persisted.take() {
                self.raft.on_persisted(index, term);
            }
            if long_apply {
                return Ok(Acted::LongApply);
            }
        }
    }

    fn execute(&mut self, action: Action) -> Result<(), NodeError> {
        match action {
            Action::PersistHardState(hs) => {
                let commit_only = self.hard_state.is_some_and(|h| h.term == hs.term && h.vote == hs.vote);
                self.hard_state = Some(hs);
                if commit_only {
                    // Nothing waits for a commit index to be durable (§5.3).
                    self.persister.submit_commit(hs)?;
                } else {
                    self.submit(Op::HardState(hs))?;
                }
            }
            Action::PersistEntries(entries) => {
                let last = entries.last().map(|e| (e.index, e.term));
                if self.submit(Op::Append(entries))? == Submitted::Done {
                    self.memory_persisted = last;
                }
            }
            Action::PersistSnapshotChunk { meta, offset, data } => {
                if offset == 0 {
                    self.receiving = Some(self.persister.begin_snapshot(meta)?);
                }
                if let Some(sink) = self.receiving.as_mut() {
                    sink.write(&data)?;
                }
            }
            Action::InstallSnapshot(meta) => {
                let Some(sink) = self.receiving.take() else {
                    return Err(NodeError::Storage("install of a snapshot that was not received".into()));
                };
                let seq = self.submit_install(sink.finish()?)?;
                match seq {
                    Submitted::Queued(seq) => self.installs.push_back((seq, meta)),
                    Submitted::Done => self.to_applier(ApplierMsg::Restore(meta))?,
                }
            }
            Action::CompactLog(index) => self.submit(Op::Compact(index)).map(|_| ())?,
            Action::Send { message, after_persist } => {
                if after_persist && self.submitted > self.durable {
                    self.held.push_back((self.submitted, message));
                } else {
                    self.transport.send(message);
                }
            }
            Action::Apply(entries) => self.to_applier(ApplierMsg::Apply(entries))?,
            Action::ReadReady { ctx, index } => {
                if let Some(reply) = self.reads.remove(&ctx) {
                    let _ = reply.send(Ok(index));
                }
            }
            Action::ReadFailed { ctx } => {
                if let Some(reply) = self.reads.remove(&ctx) {
                    let _ = reply.send(Err(self.not_leader()));
                }
            }
        }
        Ok(())
    }

    /// Tells the transport who may connect now that the configuration moved.
    fn sync_members(&mut self) {
        let members = self.raft.membership().members();
        if members != self.members {
            self.transport.set_members(members.clone());
            self.members = members;
        }
    }

    fn submit(&mut self, op: Op) -> Result<Submitted, NodeError> {
        let submitted = self.persister.submit(op)?;
        if let Submitted::Queued(seq) = submitted {
            self.submitted = seq;
        }
        Ok(submitted)
    }

    fn submit_install(&mut self, done: SnapshotDone) -> Result<Submitted, NodeError> {
        let submitted = self.persister.install(done)?;
        if let Submitted::Queued(seq) = submitted {
            self.submitted = seq;
        }
        Ok(submitted)
    }

    fn to_applier(&self, msg: ApplierMsg<SM>) -> Result<(), NodeError> {
        self.applier.send(msg).map_err(|_| NodeError::Storage("the applier stopped".into()))
    }

    fn client_addr_of(&self, id: NodeId) -> Option<String> {
        if id == 0 {
            None
        } else if id == self.raft.id() {
            Some(self.client_addr.clone())
        } else {
            self.transport.client_addr(id)
        }
    }

    fn not_leader(&self) -> NodeError {
        let leader = self.raft.leader();
        NodeError::NotLeader { leader: (leader != 0).then_some(leader), leader_addr: self.client_addr_of(leader) }
    }

    fn propose_error(&self, e: ProposeError) -> NodeError {
        match e {
            ProposeError::NotLeader(_) => self.not_leader(),
            e => NodeError::Refused(e.to_string()),
        }
    }
}

/// Hands `first`, then whatever else is queued in `rx`, to `each`, one at a
/// time, until `each` answers `false`, the queue is empty or
/// [`BATCH_INPUTS_MAX`] inputs were handed; nothing taken from `rx` is
/// left unhandled.
fn for_each_queued<T, E>(
    first: T,
    rx: &mut mpsc::Receiver<T>,
    mut each: impl FnMut(T) -> Result<bool, E>,
) -> Result<(), E> {
    let mut input = first;
    for _ in 1..BATCH_INPUTS_MAX {
        if !each(input)? {
            return Ok(());
        }
        match rx.try_recv() {
            Ok(next) => input = next,
            Err(_) => return Ok(()),
        }
    }
    each(input).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_hands_on_everything_it_takes_from_the_queue() {
        let (tx, mut rx) = mpsc::channel(2 * BATCH_INPUTS_MAX);
        for i in 1..BATCH_INPUTS_MAX + 10 {
            tx.try_send(i).expect("room in the queue");
        }
        let mut handed = vec![];
        for_each_queued::<_, ()>(0, &mut rx, |i| {
            handed.push(i);
            Ok(true)
        })
        .expect("no error");
        assert_eq!(handed, (0..BATCH_INPUTS_MAX).collect::<Vec<_>>(), "a batch stops at its limit");
        assert_eq!(rx.try_recv().ok(), Some(BATCH_INPUTS_MAX), "the next one is still queued");

        let mut handed = vec![];
        for_each_queued::<_, ()>(100, &mut rx, |i| {
            handed.push(i);
            Ok(i != BATCH_INPUTS_MAX + 1)
        })
        .expect("no error");
        assert_eq!(handed, vec![100, BATCH_INPUTS_MAX + 1], "stops when told to");
        assert_eq!(rx.try_recv().ok(), Some(BATCH_INPUTS_MAX + 2));
    }
}
