//! The node: state shared by every role, the inputs, and the role changes.
//! How each role reacts to messages lives in `follower.rs`, `candidate.rs` and
//! `leader.rs`; elections and the term rules in `election.rs`.

use std::collections::BTreeMap;

use bytes::Bytes;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use crate::action::Action;
use crate::config::{Config, ConfigError};
use crate::error::{LeaderHint, ProposeError, ReadError, StepError, TransferError};
use crate::log::RaftLog;
use crate::membership::MembershipLog;
use crate::message::{Message, MessageBody};
use crate::quorum::JointQuorum;
use crate::read_only::ReadOnly;
use crate::storage::Storage;
use crate::tracker::{Inflights, Progress};
use crate::types::{Entry, EntryPayload, HardState, Index, Membership, NO_NODE, NodeId, Term};

/// The role a node plays in its current term (§5.1, plus pre-vote).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes before starting a real election (thesis §9.6).
    PreCandidate,
    /// Asks for votes in a new term (§5.2).
    Candidate,
    /// Leads the current term.
    Leader,
}

/// A snapshot of a node's state, for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Whether it is a learner of the current configuration.
    pub is_learner: bool,
    /// Its current term.
    pub term: Term,
    /// Whom it voted for in `term`.
    pub vote: NodeId,
    /// The leader it knows of in `term`, or 0.
    pub leader: NodeId,
    /// The highest committed index it knows.
    pub commit: Index,
    /// The highest index handed out for applying.
    pub applied: Index,
    /// Its last log index.
    pub last_index: Index,
    /// Its highest durable log index.
    pub persisted: Index,
    /// The index its latest snapshot covers.
    pub snapshot_index: Index,
    /// The configuration in effect.
    pub membership: Membership,
    /// On a leader: each member's `(match_index, next_index)`.
    pub progress: BTreeMap<NodeId, (Index, Index)>,
}

/// One Raft node: a deterministic state machine with no IO of its own.
///
/// Feed it time ([`tick`](Raft::tick)), messages ([`step`](Raft::step)) and
/// requests; collect what it wants done with [`take_actions`](Raft::take_actions).
/// See the crate docs for the driver's contract.
#[derive(Debug)]
pub struct Raft<S: Storage> {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) role: Role,
    /// Figure 2 `currentTerm`.
    pub(crate) term: Term,
    /// Figure 2 `votedFor`, or `NO_NODE`.
    pub(crate) vote: NodeId,
    /// The leader of `term`, once known.
    pub(crate) leader_id: NodeId,
    pub(crate) log: RaftLog<S>,
    pub(crate) membership: MembershipLog,
    pub(crate) quorum: JointQuorum,
    /// On a leader: every other member's progress, and its own.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// On a (pre-)candidate: the answers so far.
    pub(crate) votes: BTreeMap<NodeId, bool>,
    /// Logical time, in ticks since start.
    pub(crate) now: u64,
    /// When this node last heard from a leader (or started, under lease
    /// reads): until a minimum election timeout later it ignores vote
    /// requests (thesis §4.2.3).
    pub(crate) leader_contact: Option<u64>,
    /// When the election timer was last reset (heard from the leader, granted
    /// a vote, started an election).
    pub(crate) last_election_reset: u64,
    /// This round's randomized election timeout, in ticks.
    pub(crate) election_timeout: u64,
    pub(crate) last_heartbeat: u64,
    pub(crate) last_quorum_check: u64,
    /// A leadership transfer under way: the target, and when it started.
    pub(crate) transfer: Option<(NodeId, u64)>,
    pub(crate) reads: ReadOnly,
    /// On a leader: nodes added with `AddVoter` that are learners until they
    /// catch up.
    pub(crate) catching_up: std::collections::BTreeSet<NodeId>,
    /// On a follower: a snapshot being received from the leader.
    pub(crate) receiving: Option<crate::snapshot::Receiving>,
    /// Proposals were appended since the last broadcast.
    pub(crate) broadcast_pending: bool,
    /// The hard state last handed to the driver for persisting.
    pub(crate) last_hard_state: HardState,
    pub(crate) actions: Vec<Action>,
    rng: Xoshiro256PlusPlus,
}

impl<S: Storage> Raft<S> {
    /// A node that starts from what `storage` holds, as a follower.
    pub fn new(config: Config, storage: S) -> Result<Self, ConfigError> {
        config.validate()?;
        let init = storage.initial_state();
        let membership = MembershipLog::new(init.snapshot.index, init.snapshot.membership, init.log_memberships);
        let quorum = JointQuorum::new(membership.current());
        let hs = init.hard_state;
        let config_lease_read = config.lease_read;
        let mut raft = Raft {
            id: config.id,
            rng: Xoshiro256PlusPlus::seed_from_u64(config.seed),
            config,
            role: Role::Follower,
            term: hs.term,
            vote: hs.vote,
            leader_id: NO_NODE,
            log: RaftLog::new(storage, hs.commit),
            membership,
            quorum,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            now: 0,
            last_election_reset: 0,
            // A restarted server may have acknowledged a leader's lease just
            // before it went down: it must not help elect another until that
            // lease has run out.
            leader_contact: if config_lease_read { Some(0) } else { None },
            election_timeout: 0,
            last_heartbeat: 0,
            last_quorum_check: 0,
            transfer: None,
            reads: ReadOnly::default(),
            receiving: None,
            catching_up: Default::default(),
            broadcast_pending: false,
            last_hard_state: hs,
            actions: Vec::new(),
        };
        raft.reset_election_timer();
        Ok(raft)
    }

    // ---- inputs -------------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.now += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    /// Handles a message from a peer.
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        if m.to != self.id {
            return Err(StepError::WrongRecipient { to: m.to, me: self.id });
        }
        if m.from == NO_NODE || m.from == self.id {
            return Err(StepError::InvalidSender(m.from));
        }
        if !self.step_term(&m) {
            return Ok(());
        }
        if let MessageBody::RequestVote(rv) = &m.body {
            self.handle_request_vote(&m, rv);
            return Ok(());
        }
        match self.role {
            Role::Follower => self.step_follower(m),
            Role::PreCandidate | Role::Candidate => self.step_candidate(m),
            Role::Leader => self.step_leader(m),
        }
        Ok(())
    }

    /// Proposes a command. On the leader it is appended at the returned index;
    /// it is committed once [`Action::Apply`] hands it out.
    pub fn propose(&mut self, data: Bytes) -> Result<Index, ProposeError> {
        self.propose_entry(EntryPayload::Command(data))
    }

    /// Asks for a linearizable read (thesis §6.4). On success, an
    /// [`Action::ReadReady`] with `ctx` follows once leadership is confirmed
    /// (or an [`Action::ReadFailed`] if it is lost first).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadError> {
        if self.role != Role::Leader {
            return Err(ReadError::NotLeader(self.leader_hint()));
        }
        #[cfg(feature = "planted-bugs")]
        if self.config.bugs.read_without_read_index {
            self.actions.push(Action::ReadReady { ctx, index: self.log.committed() });
            return Ok(());
        }
        if !self.committed_in_current_term() {
            self.reads.await_term_commit(ctx);
        } else if self.config.lease_read && self.reads.in_lease(self.now) {
            // Thesis §6.4.1: within the lease no other leader can exist.
            self.actions.push(Action::ReadReady { ctx, index: self.log.committed() });
        } else {
            self.reads.register(ctx, self.log.committed());
            // A lone voter is its own quorum.
            self.confirm_reads();
        }
        Ok(())
    }

    /// The lease a driver may serve reads under without calling
    /// [`Raft::read_index`]: `(end, index)` if this is a leader with
    /// [`Config::lease_read`] holding a lease, where `end` is the tick the
    /// lease ends at and `index` the index such reads wait for (the commit
    /// index, which covers every entry committed before this term). Until
    /// the tick `end` (by a clock that never runs behind the ticks handed to
    /// [`Raft::tick`]) a read of a state that applied `index` or more is
    /// linearizable. Ask again after every step: TimeoutNow, a configuration
    /// change or stepping down end it early.
    pub fn lease(&self) -> Option<(u64, Index)> {
        let held = self.role == Role::Leader
            && self.config.lease_read
            && self.committed_in_current_term()
            && self.reads.in_lease(self.now);
        held.then(|| (self.reads.lease_until(), self.log.committed()))
    }

    /// Hands leadership to `to` (thesis §3.10): catch it up, then tell it to
    /// start an election at once. Proposals are refused meanwhile; the transfer
    /// is abandoned after an election timeout.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader(self.leader_hint()));
        }
        if !self.membership.current().is_voter(to) {
            return Err(TransferError::UnknownTarget(to));
        }
        if to == self.id || self.transfer.is_some_and(|(t, _)| t == to) {
            return Ok(());
        }
        self.transfer = Some((to, self.now));
        self.maybe_send_timeout_now(to);
        Ok(())
    }

    /// The driver reports that entries up to `(index, term)` are durable.
    pub fn on_persisted(&mut self, index: Index, term: Term) {
        if !self.log.stable_to(index, term) {
            return;
        }
        if self.role == Role::Leader {
            let persisted = self.log.persisted();
            if let Some(pr) = self.progress.get_mut(&self.id) {
                pr.maybe_update(persisted);
            }
            self.maybe_commit();
        }
    }

    /// Collects what the driver must do, in order. See [`Action`].
    pub fn take_actions(&mut self) -> Vec<Action> {
        if std::mem::take(&mut self.broadcast_pending) && self.role == Role::Leader {
            self.broadcast_append();
        }
        if let Some(round) = self.reads.start_round(self.now, false) {
            self.broadcast_heartbeat(round);
            self.confirm_reads();
        }
        self.flush_hard_state();
        if !self.installing_snapshot() {
            let committed = self.log.next_to_apply(self.config.max_apply_bytes);
            if !committed.is_empty() {
                self.actions.push(Action::Apply(committed));
            }
        }
        std::mem::take(&mut self.actions)
    }

    // ---- queries ------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader known for the current term, or 0.
    pub fn leader(&self) -> NodeId {
        self.leader_id
    }

    /// The log (durable part and unstable tail).
    pub fn log(&self) -> &RaftLog<S> {
        &self.log
    }

    /// The configuration in effect.
    pub fn membership(&self) -> &Membership {
        self.membership.current()
    }

    /// Logical time: ticks since this node started.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// A summary of the node's state.
    pub fn status(&self) -> Status {
        let progress = match self.role {
            Role::Leader => self.progress.iter().map(|(&id, p)| (id, (p.match_index, p.next_index))).collect(),
            _ => BTreeMap::new(),
        };
        Status {
            id: self.id,
            role: self.role,
            is_learner: self.membership.current().is_learner(self.id),
            term: self.term,
            vote: self.vote,
            leader: self.leader_id,
            commit: self.log.committed(),
            applied: self.log.applied(),
            last_index: self.log.last_index(),
            persisted: self.log.persisted(),
            snapshot_index: self.log.snapshot_index(),
            membership: self.membership.current().clone(),
            progress,
        }
    }

    // ---- shared machinery -----------------------------------------------------

    pub(crate) fn leader_hint(&self) -> LeaderHint {
        LeaderHint::from_id(self.leader_id)
    }

    /// Whether this node may stand for election: it votes in the configuration.
    pub(crate) fn is_promotable(&self) -> bool {
        self.membership.current().is_voter(self.id)
    }

    /// §5.4.2: a leader knows its commit index is current only once it has
    /// committed an entry of its own term.
    pub(crate) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Some(self.term)
    }

    pub(crate) fn reset_election_timer(&mut self) {
        let (min, max) = (self.config.election_timeout_min_ticks, self.config.election_timeout_max_ticks);
        self.election_timeout = min + self.rng.next_u64() % (max - min);
        self.last_election_reset = self.now;
    }

    pub(crate) fn election_timer_expired(&self) -> bool {
        self.now >= self.last_election_reset + self.election_timeout
    }

    /// What must be durable: the term and vote, and the commit index capped at
    /// the durable log, so a restart never finds a commit index pointing past (or
    /// at stale entries of) what it holds.
    pub(crate) fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.log.committed().min(self.log.persisted()) }
    }

    pub(crate) fn flush_hard_state(&mut self) {
        let hs = self.hard_state();
        if hs != self.last_hard_state {
            self.last_hard_state = hs;
            self.actions.push(Action::PersistHardState(hs));
        }
    }

    /// Sends `body` to `to` in the current term.
    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    /// Sends with an explicit term (pre-votes speak of the next term).
    ///
    /// Only two kinds may leave before pending persists are durable: a
    /// leader's replication traffic (thesis §10.2.1), and heartbeat answers,
    /// which vouch for nothing on disk — only that this node still follows the
    /// sender — so a slow disk cannot starve the leader of them and trip its
    /// check-quorum. Everything else answers for state that must be on disk.
    pub(crate) fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let early = matches!(
            body,
            MessageBody::AppendEntries(_)
                | MessageBody::Heartbeat(_)
                | MessageBody::InstallSnapshot(_)
                | MessageBody::TimeoutNow
                | MessageBody::HeartbeatResponse(_)
        );
        // Thesis §10.2.1 lets a leader replicate entries it has not written
        // yet, but not before its term is durable (a lone voter wins without
        // any RequestVote having waited for it): until its first entry of the
        // term — written after the hard state — is durable, everything waits.
        let term_durable = self.log.persisted() > 0 && self.log.term(self.log.persisted()) == Some(self.term);
        let after_persist = !early || (self.role == Role::Leader && !term_durable);
        #[cfg(feature = "planted-bugs")]
        let after_persist = after_persist
            && !(self.config.bugs.ack_before_persist && matches!(body, MessageBody::AppendEntriesResponse(_)));
        if after_persist {
            self.flush_hard_state();
        }
        let message = Message { from: self.id, to, term, body };
        self.actions.push(Action::Send { message, after_persist });
    }

    /// Appends entries to this node's log and asks the driver to persist them.
    pub(crate) fn append_and_persist(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        self.log.append(&entries);
        self.on_entries_appended(&entries);
        // Proposals that arrive together become one write: extend the
        // previous action when it persists the entries just before these.
        if let Some(Action::PersistEntries(pending)) = self.actions.last_mut()
            && pending.last().is_some_and(|e| e.index + 1 == entries[0].index)
        {
            pending.extend(entries);
            return;
        }
        self.actions.push(Action::PersistEntries(entries));
    }

    /// Bookkeeping after entries landed in the log: configurations take effect
    /// as soon as they are in the log (thesis §4.1).
    pub(crate) fn on_entries_appended(&mut self, entries: &[Entry]) {
        if self.membership.on_append(entries) {
            tracing::info!(id = self.id, membership = ?self.membership.current(), "configuration changed");
            self.apply_membership();
        }
    }

    /// Makes the configuration in effect the one quorums are computed over.
    pub(crate) fn apply_membership(&mut self) {
        self.quorum = JointQuorum::new(self.membership.current());
        if self.role == Role::Leader {
            self.sync_progress();
        }
    }

    /// Keeps one progress entry per member: new members are probed from the end
    /// of the log, removed ones forgotten.
    pub(crate) fn sync_progress(&mut self) {
        // A lease granted by the old configuration's quorums proves nothing
        // about the new one's.
        self.reads.expire_lease();
        let members = self.membership.current().members();
        self.progress.retain(|id, _| members.contains(id) || *id == self.id);
        let next = self.log.last_index() + 1;
        for id in members {
            if !self.progress.contains_key(&id) {
                let mut pr = self.new_progress(next);
                pr.recent_active = true;
                self.progress.insert(id, pr);
            }
        }
    }

    pub(crate) fn new_progress(&self, next_index: Index) -> Progress {
        let window = Inflights::new(self.config.max_inflight_messages, self.config.max_inflight_bytes);
        Progress::new(next_index, window)
    }

    // ---- role changes ---------------------------------------------------------

    /// Steps down to follower in `term` under `leader` (`NO_NODE` if unknown).
    pub(crate) fn become_follower(&mut self, term: Term, leader: NodeId) {
        if term > self.term {
            self.term = term;
            self.vote = NO_NODE;
        }
        if self.role == Role::Leader {
            tracing::info!(id = self.id, term, "leader stepping down");
        }
        self.abort_leadership();
        self.role = Role::Follower;
        self.leader_id = leader;
        self.reset_election_timer();
    }

    /// Drops what only a leader keeps, failing the reads it was serving.
    fn abort_leadership(&mut self) {
        for ctx in self.reads.abort_all() {
            self.actions.push(Action::ReadFailed { ctx });
        }
        self.progress.clear();
        self.catching_up.clear();
        self.transfer = None;
        self.broadcast_pending = false;
    }

    pub(crate) fn become_pre_candidate(&mut self) {
        self.abort_leadership();
        self.role = Role::PreCandidate;
        self.leader_id = NO_NODE;
        self.votes.clear();
        self.reset_election_timer();
    }

    /// §5.2: increment the term and vote for yourself.
    pub(crate) fn become_candidate(&mut self) {
        self.abort_leadership();
        self.role = Role::Candidate;
        self.term += 1;
        self.vote = self.id;
        self.leader_id = NO_NODE;
        self.votes.clear();
        self.reset_election_timer();
    }

    /// Won the election: take charge of every follower's progress and append
    /// the term's no-op (§8: "each leader commit a blank no-op entry into the
    /// log at the start of its term").
    pub(crate) fn become_leader(&mut self) {
        tracing::info!(id = self.id, term = self.term, "became leader");
        self.role = Role::Leader;
        self.leader_id = self.id;
        self.votes.clear();
        self.progress.clear();
        self.sync_progress();
        let persisted = self.log.persisted();
        if let Some(own) = self.progress.get_mut(&self.id) {
            own.maybe_update(persisted);
        }
        self.last_heartbeat = self.now;
        self.last_quorum_check = self.now;
        let noop = Entry { term: self.term, index: self.log.last_index() + 1, payload: EntryPayload::Noop };
        self.flush_hard_state();
        #[cfg(feature = "planted-bugs")]
        let noop_entries = if self.config.bugs.skip_noop { Vec::new() } else { vec![noop] };
        #[cfg(not(feature = "planted-bugs"))]
        let noop_entries = vec![noop];
        self.append_and_persist(noop_entries);
        self.broadcast_append();
    }

    pub(crate) fn propose_entry(&mut self, payload: EntryPayload) -> Result<Index, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader(self.leader_hint()));
        }
        if self.transfer.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let index = self.log.last_index() + 1;
        self.append_and_persist(vec![Entry { term: self.term, index, payload }]);
        // Proposals that arrive together leave in one AppendEntries: the
        // broadcast waits for `take_actions`.
        self.broadcast_pending = true;
        Ok(index)
    }
}
