//! The applier: applies committed entries to the state machine in log order
//! as a task on the node's runtime (a long batch, such as a restart's
//! replay, on the runtime's blocking pool), answers the proposals waiting
//! for them, publishes the applied index (readers wait for it, see
//! [`SharedMachine`]), and takes and restores snapshots (on the blocking
//! pool too, which the applier waits for: nothing is applied meanwhile).
//!
//! A task rather than a thread of its own: handing a batch from the core to
//! a parked thread and its answers back to the runtime cost two thread
//! wake-ups per commit, each tens of microseconds on a virtual machine.
//! Between tasks of one runtime a wake-up is a queue push.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use raft::{Entry, EntryPayload, Index, SnapshotMeta, Term};
use tokio::sync::{mpsc, oneshot};

use crate::backend::{LogStorage, Persister, SnapshotReader};
use crate::core::Internal;
use crate::error::NodeError;
use crate::shared::SharedMachine;
use crate::state_machine::StateMachine;

/// Where a proposal's outcome goes.
pub(crate) type Reply<SM> = oneshot::Sender<Result<<SM as StateMachine>::Output, NodeError>>;

/// Entries applied under one write lock before readers get a turn at it.
const APPLY_CHUNK: usize = 1024;

/// A batch of committed entries longer than this (a restart's replay: a
/// batch can be as large as `raft::Config::max_apply_bytes`) is applied on
/// the blocking pool, and the core yields after handing it over (see
/// `Core::act_all`). Shorter ones, however many proposers wait, are
/// applied on the runtime.
pub(crate) const LONG_BATCH_ENTRIES: usize = 16 * 1024;

/// Answers of one message, sent once the applied index is published.
type Answers<SM> = Vec<(Reply<SM>, Result<<SM as StateMachine>::Output, NodeError>)>;

/// What the core and the node handle tell the applier.
pub(crate) enum ApplierMsg<SM: StateMachine> {
    /// Proposals were appended at `(index, term)`: answer each `reply` when
    /// its index is applied, or with [`NodeError::Unknown`] once `deadline`
    /// passes (one timer sweep for all, rather than a timer per proposal).
    Register(Vec<(Index, Term, Reply<SM>)>, Instant),
    /// Fail proposals whose deadline passed.
    Sweep(Instant),
    /// Committed entries, in order.
    Apply(Vec<Entry>),
    /// Restore the state machine from the snapshot storage now holds.
    Restore(SnapshotMeta),
    /// Take a snapshot now.
    SnapshotNow,
}

pub(crate) struct Applier<SM: StateMachine> {
    pub sm: Arc<SharedMachine<SM>>,
    pub applied: Index,
    pub last_snapshot: Index,
    /// The snapshot policy: entries, or command bytes, since the last one.
    pub policy: SnapshotPolicy,
    /// Command bytes applied since the last snapshot.
    bytes_since_snapshot: u64,
    pub storage: LogStorage,
    pub persister: Arc<Persister>,
    pub core: mpsc::UnboundedSender<Internal>,
    pending: BTreeMap<Index, (Term, Reply<SM>)>,
    /// Deadlines of pending proposals, in registration (so deadline) order.
    deadlines: VecDeque<(Instant, Index)>,
    /// Answers of the message being handled.
    outbox: Answers<SM>,
    /// The commit index the node knew at start and when it started: once
    /// applied, the replay of the recovered log is done and is logged.
    replay: Option<(Index, Instant)>,
}

/// When the applier takes a snapshot by itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SnapshotPolicy {
    /// Entries applied since the last snapshot.
    pub entries: u64,
    /// Command bytes applied since the last snapshot.
    pub bytes: u64,
}

impl SnapshotPolicy {
    fn is_due(&self, entries: u64, bytes: u64) -> bool {
        entries >= self.entries || bytes >= self.bytes
    }
}

/// However the applier ends (its inbox closed, a fatal error, a panic in
/// `apply`), readers waiting for entries it will never apply are told.
impl<SM: StateMachine> Drop for Applier<SM> {
    fn drop(&mut self) {
        self.sm.close();
    }
}

impl<SM: StateMachine> Applier<SM> {
    pub fn new(
        sm: Arc<SharedMachine<SM>>,
        applied: Index,
        policy: SnapshotPolicy,
        storage: LogStorage,
        persister: Arc<Persister>,
        core: mpsc::UnboundedSender<Internal>,
    ) -> Self {
        Applier {
            sm,
            applied,
            last_snapshot: applied,
            policy,
            bytes_since_snapshot: 0,
            storage,
            persister,
            core,
            pending: BTreeMap::new(),
            deadlines: VecDeque::new(),
            replay: None,
            outbox: Vec::new(),
        }
    }

    /// Logs (info) when everything up to `commit`, what the node knew to be
    /// committed when it started at `started`, has been applied: the end of
    /// a restart's replay. Nothing is logged if it already is.
    pub fn report_replay_until(&mut self, commit: Index, started: Instant) {
        self.replay = (commit > self.applied).then_some((commit, started));
    }

    fn maybe_report_replay(&mut self) {
        let Some((commit, started)) = self.replay else { return };
        if self.applied >= commit {
            self.replay = None;
            tracing::info!(
                applied = self.applied,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "applied the log recovered at start"
            );
        }
    }

    /// Runs until every sender is gone.
    pub async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<ApplierMsg<SM>>) {
        while let Some(msg) = inbox.recv().await {
            let handled = match msg {
                // A long batch (a restart's replay) is applied on the
                // blocking pool: it neither holds a worker for long nor
                // keeps the core, reading the next batch, off the other core.
                ApplierMsg::Apply(entries) if entries.len() > LONG_BATCH_ENTRIES => {
                    let done = tokio::task::spawn_blocking(move || {
                        let applied = self.apply_all(entries);
                        (self, applied)
                    })
                    .await;
                    // On a panic the applier went down with it (see Drop).
                    let Ok((me, applied)) = done.inspect_err(|e| tracing::error!(error = %e, "applier stopped")) else {
                        return;
                    };
                    self = me;
                    match applied {
                        Ok(()) => self.snapshot_if_due().await,
                        failed => failed,
                    }
                }
                msg => self.handle(msg).await,
            };
            self.answer();
            if let Err(e) = handled {
                tracing::error!(error = %e, "applier stopped");
                let _ = self.core.send(Internal::Fatal(e.to_string()));
                break;
            }
        }
        // The applier may hold the last handle on the WAL: closing it waits
        // for the writer thread's last sync, which is no work for a worker.
        let persister = self.persister.clone();
        drop(self);
        let _ = tokio::task::spawn_blocking(move || drop(persister)).await;
    }

    /// Sends the answers of what was applied (and published) so far.
    fn answer(&mut self) {
        for (reply, result) in self.outbox.drain(..) {
            let _ = reply.send(result);
        }
    }

    async fn handle(&mut self, msg: ApplierMsg<SM>) -> Result<(), NodeError> {
        match msg {
            ApplierMsg::Register(proposals, deadline) => {
                for (index, term, reply) in proposals {
                    self.pending.insert(index, (term, reply));
                    self.deadlines.push_back((deadline, index));
                }
            }
            ApplierMsg::Sweep(now) => self.expire(now),
            ApplierMsg::Apply(entries) => {
                self.apply_all(entries)?;
                self.snapshot_if_due().await?;
            }
            ApplierMsg::Restore(meta) => self.restore(meta).await?,
            ApplierMsg::SnapshotNow => self.take_snapshot().await?,
        }
        Ok(())
    }

    /// Applies `entries`, [`APPLY_CHUNK`] at a time, answering the proposals
    /// of each chunk once it is published.
    fn apply_all(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        let mut entries = entries.into_iter();
        while entries.len() > 0 {
            self.apply_some(&mut entries)?;
            self.answer();
        }
        Ok(())
    }

    /// Takes a snapshot if the policy says one is due.
    async fn snapshot_if_due(&mut self) -> Result<(), NodeError> {
        if self.policy.is_due(self.applied - self.last_snapshot, self.bytes_since_snapshot) {
            self.take_snapshot().await?;
        }
        Ok(())
    }

    /// Applies up to [`APPLY_CHUNK`] of `entries` under one write lock, then
    /// publishes them applied.
    fn apply_some(&mut self, entries: &mut std::vec::IntoIter<Entry>) -> Result<(), NodeError> {
        let sm = self.sm.clone();
        let mut sm = sm.write()?;
        for entry in entries.take(APPLY_CHUNK) {
            self.apply(&mut sm, entry);
        }
        drop(sm);
        self.sm.publish_applied(self.applied);
        self.maybe_report_replay();
        Ok(())
    }

    fn apply(&mut self, sm: &mut SM, entry: Entry) {
        let mut output = match &entry.payload {
            EntryPayload::Command(data) => {
                self.bytes_since_snapshot += data.len() as u64;
                Some(sm.apply(entry.index, data))
            }
            _ => None,
        };
        self.applied = entry.index;
        while let Some(first) = self.pending.first_entry() {
            if *first.key() > entry.index {
                break;
            }
            let (index, (term, reply)) = first.remove_entry();
            let result = if index == entry.index && term == entry.term {
                output.take().ok_or(NodeError::Unknown("the entry carried no command"))
            } else {
                // Another entry committed at this index: ours never will
                // (entries do not move), so this failure is definite.
                Err(NodeError::Refused("overwritten by a new leader before it committed".into()))
            };
            self.outbox.push((reply, result));
        }
    }

    /// Answers proposals still pending past their deadline: their outcome is
    /// unknown (they may yet commit).
    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, index)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if let Some((_, reply)) = self.pending.remove(&index) {
                self.outbox.push((reply, Err(NodeError::Unknown("timed out after the command was proposed"))));
            }
        }
    }

    /// Writes the state machine out as a snapshot at the applied index and
    /// hands it to the core to install and compact the log.
    async fn take_snapshot(&mut self) -> Result<(), NodeError> {
        if self.applied <= self.storage_snapshot_index() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.core.send(Internal::SnapshotMetaAt { index: self.applied, reply: tx }).map_err(|_| NodeError::Stopped)?;
        let Ok(Ok(meta)) = rx.await else {
            return Ok(());
        };
        let (sm, persister, written) = (self.sm.clone(), self.persister.clone(), meta.clone());
        let done = blocking(move || {
            let mut sink = persister.begin_snapshot(written)?;
            sm.snapshot_view()?.snapshot(&mut sink).map_err(|e| NodeError::Storage(format!("snapshot: {e}")))?;
            sink.finish()
        })
        .await?;
        tracing::info!(index = meta.index, term = meta.term, "snapshot taken");
        self.last_snapshot = meta.index;
        self.bytes_since_snapshot = 0;
        self.core.send(Internal::SnapshotTaken { meta, done }).map_err(|_| NodeError::Stopped)
    }

    fn storage_snapshot_index(&self) -> Index {
        use raft::Storage;
        self.storage.first_index() - 1
    }

    async fn restore(&mut self, meta: SnapshotMeta) -> Result<(), NodeError> {
        let (sm, storage) = (self.sm.clone(), self.storage.clone());
        blocking(move || sm.restore(|sm| sm.restore(&mut SnapshotReader::new(&storage)))).await?;
        self.applied = meta.index;
        self.last_snapshot = meta.index;
        self.bytes_since_snapshot = 0;
        // Proposals the snapshot covers may or may not be in it.
        let later = self.pending.split_off(&(meta.index + 1));
        for (_, (_, reply)) in std::mem::replace(&mut self.pending, later) {
            self.outbox.push((reply, Err(NodeError::Unknown("a snapshot from the leader replaced the log"))));
        }
        self.sm.publish_applied(self.applied);
        tracing::info!(index = meta.index, "state machine restored from snapshot");
        self.core.send(Internal::Restored(meta)).map_err(|_| NodeError::Stopped)
    }
}

/// Runs blocking IO (writing or reading a whole snapshot) on the runtime's
/// blocking pool and waits for it.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(NodeError::Storage(format!("snapshot IO task: {e}"))))
}
