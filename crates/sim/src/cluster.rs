//! A whole cluster in one thread, in virtual time, driven by one seed.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use bytes::Bytes;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use raft::{Action, Config, EntryPayload, Index, MemStorage, Membership, Message, NodeId, Raft, Role, Storage, Term};

use crate::invariants::{Invariants, NodeView, ShadowLog, empty_shadow, shadow_append};
use crate::kv_replica::KvReplica;
use crate::network::{Network, NetworkConfig, index_of};
use crate::node::{Applied, Durable, IoOp, SimNode, decode_snapshot_with_rest, encode_snapshot};

/// How long one tick of the cores is, in virtual milliseconds.
pub const TICK_MS: u64 = 10;

/// At most this many events may happen at one virtual instant (and rounds of
/// actions in one [`Cluster::drive`]): more means nodes are trading messages
/// in a loop that makes no progress, and with no network delay virtual time
/// would never move again. Such a test fails instead of hanging.
pub const EVENTS_PER_INSTANT_MAX: u64 = 1_000_000;

/// Options of a simulated cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Number of nodes.
    pub nodes: usize,
    /// The network's fault model at the start.
    pub network: NetworkConfig,
    /// Take a snapshot every this many applied entries (6.824's
    /// `SnapShotInterval`), or never.
    pub snapshot_interval: Option<u64>,
    /// Core configuration template (id and seed are set per node).
    pub raft: Config,
    /// Disk write latency, in ms: a uniform draw in `[min, max]`.
    pub disk_latency_ms: (u64, u64),
    /// Every node runs a [`kv::Store`] fed from its committed entries (every
    /// command must then be an encoded [`kv::Request`]), and snapshots carry
    /// the store. See [`crate::kv_replica`].
    pub kv: bool,
}

impl ClusterOptions {
    /// `nodes` nodes on a reliable network, with the 6.824 timing the lab asks
    /// for (no more than ten heartbeats a second).
    pub fn new(nodes: usize) -> Self {
        let mut raft = Config::new(1);
        raft.heartbeat_interval_ticks = 10;
        ClusterOptions {
            nodes,
            network: NetworkConfig::default(),
            snapshot_interval: None,
            raft,
            disk_latency_ms: (0, 2),
            kv: false,
        }
    }
}

#[derive(Debug)]
enum Event {
    Tick { node: usize, incarnation: u64 },
    Deliver(Message),
    IoDone { node: usize, incarnation: u64 },
}

#[derive(Debug)]
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A simulated cluster. Nodes are addressed by index `0..n` (node id = index + 1),
/// as in 6.824's tester.
pub struct Cluster {
    /// The seed everything derives from.
    pub seed: u64,
    /// Virtual time in milliseconds.
    pub now: u64,
    /// The options it was built with.
    pub options: ClusterOptions,
    /// The nodes.
    pub nodes: Vec<SimNode>,
    /// The network.
    pub net: Network,
    /// The safety checker.
    pub invariants: Invariants,
    /// Events processed so far.
    pub steps: u64,
    rng: Xoshiro256PlusPlus,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    /// Highest index any state machine applied (6.824's `maxIndex`).
    pub max_index: Index,
    /// Reads that completed: `(node index, ctx) -> Some(read index)`, or `None` if failed.
    pub reads: BTreeMap<(usize, u64), Option<Index>>,
    /// For each read asked and not yet answered: the highest index committed
    /// anywhere when it was asked. A linearizable read must not answer below
    /// it (it began after those entries were committed).
    read_floors: BTreeMap<(usize, u64), Index>,
    /// Background clients, each with the virtual time it wants to run next.
    pub(crate) tasks: Vec<(u64, Box<dyn crate::harness::Task>)>,
    /// Per node: until when it is paused (a SIGSTOP): its ticks, deliveries
    /// and disk completions wait until then. 0: running.
    pub paused_until: Vec<u64>,
    /// Per node: virtual ms between its ticks ([`TICK_MS`] unless a nemesis
    /// skews its clock).
    pub tick_ms: Vec<u64>,
    /// Per node, under lease reads: when its next tick is due. Such a node
    /// ticks by its clock, as the runtime does: after a pause it catches up on
    /// the ticks it missed before it handles anything else, so its count of
    /// ticks never lags its clock (a lease counted in lagging ticks would
    /// outlast the voters' promise).
    next_tick_at: Vec<u64>,
}

impl Cluster {
    /// Starts `options.nodes` nodes, all connected, from empty disks whose
    /// bootstrap configuration makes every node a voter.
    pub fn new(seed: u64, options: ClusterOptions) -> Self {
        let n = options.nodes;
        let membership = Membership::new(1..=n as NodeId);
        let nodes = (0..n)
            .map(|i| SimNode::new(i as NodeId + 1, MemStorage::new_with_membership(membership.clone())))
            .collect();
        let mut net = Network::new(n);
        net.config = options.network;
        let mut cluster = Cluster {
            seed,
            now: 0,
            options,
            nodes,
            net,
            invariants: Invariants::new(),
            steps: 0,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            next_seq: 0,
            max_index: 0,
            reads: BTreeMap::new(),
            read_floors: BTreeMap::new(),
            tasks: Vec::new(),
            paused_until: vec![0; n],
            tick_ms: vec![TICK_MS; n],
            next_tick_at: vec![0; n],
        };
        for i in 0..n {
            cluster.start(i);
            cluster.connect(i);
        }
        cluster
    }

    /// Fails the test, naming the seed so the run can be replayed.
    pub fn fail(&self, message: impl std::fmt::Display) -> ! {
        panic!("seed {} at {} ms: {message}\n{}", self.seed, self.now, self.describe())
    }

    /// One line per node: what a person debugging a failure wants first.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let net = if self.net.is_connected(i) { "connected" } else { "disconnected" };
            let line = match node.raft.as_ref() {
                None => format!("node {i}: down ({net})\n"),
                Some(r) => {
                    let s = r.status();
                    format!(
                        "node {i}: {:?} term {} vote {} leader {} commit {} applied {} last {} persisted {} snapshot {} ({net}) progress {:?}\n",
                        s.role,
                        s.term,
                        s.vote,
                        s.leader,
                        s.commit,
                        node.last_applied,
                        s.last_index,
                        s.persisted,
                        s.snapshot_index,
                        s.progress
                    )
                }
            };
            out.push_str(&line);
        }
        out
    }

    /// A random number in `[0, n)` from the cluster's generator.
    pub fn random(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    /// Number of nodes.
    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled { at: self.now + delay, seq: self.next_seq, event }));
    }

    // ---- lifecycle ------------------------------------------------------------

    /// Adds a node with an empty disk and no configuration, started and
    /// connected: it waits for a leader to bring it in. Returns its index.
    pub fn add_node(&mut self) -> usize {
        let i = self.net.add_node();
        self.nodes.push(SimNode::new(i as NodeId + 1, MemStorage::default()));
        self.paused_until.push(0);
        self.tick_ms.push(TICK_MS);
        self.next_tick_at.push(0);
        self.start(i);
        self.connect(i);
        i
    }

    /// Starts (or restarts) node `i` from its disk, like 6.824's `start1`.
    pub fn start(&mut self, i: usize) {
        if self.nodes[i].is_up() {
            self.crash(i);
        }
        let mut config = self.options.raft.clone();
        config.id = i as NodeId + 1;
        config.seed = self.rng.next_u64();
        let disk = self.nodes[i].disk.clone();
        let raft = match Raft::new(config, disk.clone()) {
            Ok(raft) => raft,
            Err(e) => self.fail(format!("bad config: {e}")),
        };
        self.restore_from_disk(i, &disk);
        let node = &mut self.nodes[i];
        node.raft = Some(raft);
        node.incarnation += 1;
        let incarnation = node.incarnation;
        self.invariants.on_restart(i as NodeId + 1);
        // Nodes tick out of phase, as real clocks do.
        let phase = self.random(TICK_MS);
        self.next_tick_at[i] = self.now + phase;
        self.schedule(phase, Event::Tick { node: i, incarnation });
    }

    /// After a restart the state machine restarts from the durable snapshot,
    /// and the checker's view of the log is what the disk holds.
    fn restore_from_disk(&mut self, i: usize, disk: &MemStorage) {
        let meta = disk.snapshot_meta();
        let mut shadow = if meta.index == 0 {
            empty_shadow()
        } else {
            match self.invariants.committed_prefix(meta.index) {
                Some(prefix) => prefix,
                None => self.fail(format!("node {i} has a snapshot at {} beyond anything committed", meta.index)),
            }
        };
        shadow_append(&mut shadow, &disk.all_entries());
        let node = &mut self.nodes[i];
        node.shadow = shadow;
        node.last_applied = meta.index;
        let mut kv_data = None;
        if meta.index > 0 {
            let data = disk.snapshot_data();
            match decode_snapshot_with_rest(&data) {
                Ok((_, applied, rest)) => {
                    node.applied = applied;
                    kv_data = Some(rest.to_vec());
                }
                Err(e) => self.fail(format!("node {i}: bad snapshot: {e}")),
            }
        }
        if self.options.kv {
            self.restore_kv(i, kv_data.as_deref());
        }
    }

    /// Node `i`'s store restarts from `data` (a `kv` snapshot), or empty.
    fn restore_kv(&mut self, i: usize, data: Option<&[u8]>) {
        let replica = match data {
            None => KvReplica::new(),
            Some(data) => match KvReplica::restore(data) {
                Ok(replica) => replica,
                Err(e) => self.fail(format!("node {i}: {e}")),
            },
        };
        self.nodes[i].kv = Some(replica);
    }

    /// Node `i` takes a snapshot of what it has applied now (a nemesis's
    /// "trigger a snapshot", or an operator's `RAFT.SNAPSHOT`). Does nothing
    /// if it is down or has applied nothing new since its last snapshot.
    pub fn snapshot_now(&mut self, i: usize) {
        let applied = self.nodes[i].last_applied;
        if self.nodes[i].is_up() && applied > self.nodes[i].disk.snapshot_meta().index {
            self.take_snapshot(i, applied);
        }
    }

    /// Crashes node `i` (6.824's `crash1`, without the disconnect): it stops,
    /// and writes that were not yet durable are lost, except a random prefix
    /// that reached the disk anyway, the last of it possibly torn.
    pub fn crash(&mut self, i: usize) {
        if !self.nodes[i].is_up() {
            return;
        }
        let pending = self.nodes[i].io_queue.len() as u64;
        let keep = self.random(pending + 1) as usize;
        let torn = self.random(8) as usize;
        self.nodes[i].crash(keep, torn);
    }

    /// Puts node `i` on the network.
    pub fn connect(&mut self, i: usize) {
        self.net.set_connected(i, true);
    }

    /// Takes node `i` off the network.
    pub fn disconnect(&mut self, i: usize) {
        self.net.set_connected(i, false);
    }

    /// Whether node `i` is on the network.
    pub fn is_connected(&self, i: usize) -> bool {
        self.net.is_connected(i)
    }

    /// Sets the network's fault model.
    pub fn set_network(&mut self, config: NetworkConfig) {
        self.net.config = config;
    }

    // ---- running --------------------------------------------------------------

    /// Runs the cluster for `ms` virtual milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        let mut same_instant = 0u64;
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until {
                break;
            }
            let Some(Reverse(Scheduled { at, event, .. })) = self.queue.pop() else { break };
            same_instant = if at == self.now { same_instant + 1 } else { 0 };
            if same_instant > EVENTS_PER_INSTANT_MAX {
                self.fail(format!("livelock: {EVENTS_PER_INSTANT_MAX} events without virtual time moving"));
            }
            self.now = at;
            self.process(event);
        }
        self.now = until;
    }

    fn process(&mut self, event: Event) {
        let target = match &event {
            Event::Tick { node, .. } | Event::IoDone { node, .. } => *node,
            Event::Deliver(message) => index_of(message.to),
        };
        if self.paused_until[target] > self.now {
            // A paused process does nothing; what reached it waits.
            let delay = self.paused_until[target] - self.now;
            self.schedule(delay, event);
            return;
        }
        self.steps += 1;
        let node = match event {
            Event::Tick { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || !self.nodes[node].is_up() {
                    return;
                }
                if self.ticks_by_clock() {
                    self.catch_up_ticks(node);
                    self.schedule(self.next_tick_at[node] - self.now, Event::Tick { node, incarnation });
                } else {
                    self.schedule(self.tick_ms[node], Event::Tick { node, incarnation });
                    self.with_raft(node, |r| r.tick());
                }
                node
            }
            Event::Deliver(message) => {
                let node = index_of(message.to);
                if !self.net.arrive(&message) || !self.nodes[node].is_up() {
                    return;
                }
                self.catch_up_ticks(node);
                let result = self.with_raft(node, |r| r.step(message));
                if let Some(Err(e)) = result {
                    self.fail(format!("node {node} refused a message: {e}"));
                }
                node
            }
            Event::IoDone { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || !self.nodes[node].is_up() {
                    return;
                }
                self.catch_up_ticks(node);
                self.complete_io(node);
                node
            }
        };
        self.drive(node);
        self.check(node);
    }

    /// Whether nodes tick by their clocks (see `next_tick_at`).
    fn ticks_by_clock(&self) -> bool {
        self.options.raft.lease_read
    }

    /// Under lease reads, a paused node takes no client requests: a request
    /// waits in its socket until it resumes and catches up on its ticks, and
    /// the client gives up first. (Handed to the core at once, a lease read
    /// would be checked against a clock the pause stopped.)
    fn refuses_clients(&self, i: usize) -> bool {
        self.ticks_by_clock() && self.paused_until[i] > self.now
    }

    /// Under lease reads, gives node `i` every tick due by now.
    fn catch_up_ticks(&mut self, i: usize) {
        if !self.ticks_by_clock() {
            return;
        }
        while self.next_tick_at[i] <= self.now && self.nodes[i].is_up() {
            self.next_tick_at[i] += self.tick_ms[i];
            self.with_raft(i, |r| r.tick());
            self.drive(i);
        }
    }

    /// Calls `f` on node `i`'s core if it is up.
    pub fn with_raft<T>(&mut self, i: usize, f: impl FnOnce(&mut Raft<MemStorage>) -> T) -> Option<T> {
        self.nodes[i].raft.as_mut().map(f)
    }

    /// Carries out node `i`'s actions until it has none left.
    pub fn drive(&mut self, i: usize) {
        for _ in 0..EVENTS_PER_INSTANT_MAX {
            let Some(actions) = self.with_raft(i, |r| r.take_actions()) else { return };
            if actions.is_empty() {
                return;
            }
            for action in actions {
                self.execute(i, action);
            }
        }
        self.fail(format!("node {i} never runs out of actions"))
    }

    fn execute(&mut self, i: usize, action: Action) {
        match action {
            Action::PersistHardState(hs) => self.submit_io(i, IoOp::HardState(hs)),
            Action::PersistEntries(entries) => self.submit_io(i, IoOp::Entries(entries)),
            Action::PersistSnapshotChunk { offset, data, .. } => {
                self.submit_io(i, IoOp::SnapshotChunk { offset, data })
            }
            Action::InstallSnapshot(meta) => self.submit_io(i, IoOp::InstallSnapshot(meta)),
            // MemStorage drops the prefix when the snapshot is stored.
            Action::CompactLog(_) => {}
            Action::Send { message, after_persist } => {
                let node = &mut self.nodes[i];
                if after_persist && node.io_durable() < node.io_submitted {
                    let seq = node.io_submitted;
                    node.held.push_back((seq, message));
                } else {
                    self.send(message);
                }
            }
            Action::Apply(entries) => {
                for entry in entries {
                    let value = match entry.payload {
                        EntryPayload::Command(data) => Some(data),
                        _ => None,
                    };
                    self.apply(i, entry.index, value);
                }
            }
            Action::ReadReady { ctx, index } => {
                if let Some(floor) = self.read_floors.remove(&(i, ctx))
                    && index < floor
                {
                    self.fail(format!(
                        "stale read: node {i} read at index {index}, but {floor} was committed before the read began"
                    ));
                }
                self.reads.insert((i, ctx), Some(index));
            }
            Action::ReadFailed { ctx } => {
                self.reads.insert((i, ctx), None);
            }
        }
    }

    fn send(&mut self, message: Message) {
        if let Some(delay) = self.net.plan(&mut self.rng, &message) {
            self.schedule(delay, Event::Deliver(message));
        }
    }

    fn submit_io(&mut self, i: usize, op: IoOp) {
        self.nodes[i].submit(op);
        if !self.nodes[i].io_scheduled {
            self.nodes[i].io_scheduled = true;
            let (lo, hi) = self.options.disk_latency_ms;
            let delay = lo + self.random(hi - lo + 1);
            let incarnation = self.nodes[i].incarnation;
            self.schedule(delay, Event::IoDone { node: i, incarnation });
        }
    }

    /// Group commit: everything queued becomes durable at once; then the core
    /// hears about it and held messages go out.
    fn complete_io(&mut self, i: usize) {
        self.nodes[i].io_scheduled = false;
        let ops: Vec<(u64, IoOp)> = self.nodes[i].io_queue.drain(..).collect();
        for (_, op) in ops {
            match self.nodes[i].make_durable(&op) {
                Some(Durable::Entries(index, term)) => {
                    self.with_raft(i, |r| r.on_persisted(index, term));
                }
                Some(Durable::Snapshot(meta, data)) => self.install_snapshot(i, &meta, &data),
                None => {}
            }
        }
        let durable = self.nodes[i].io_durable();
        while self.nodes[i].held.front().is_some_and(|(seq, _)| *seq <= durable) {
            if let Some((_, message)) = self.nodes[i].held.pop_front() {
                self.send(message);
            }
        }
    }

    fn install_snapshot(&mut self, i: usize, meta: &raft::SnapshotMeta, data: &Bytes) {
        let (index, applied, kv_data) = match decode_snapshot_with_rest(data) {
            Ok(decoded) => decoded,
            Err(e) => self.fail(format!("node {i} received a bad snapshot: {e}")),
        };
        if index != meta.index {
            self.fail(format!("node {i}: snapshot data for {index} labelled {}", meta.index));
        }
        let node = &mut self.nodes[i];
        if node.shadow.get(meta.index as usize).is_none_or(|s| s.term != meta.term) {
            node.shadow = match self.invariants.committed_prefix(meta.index) {
                Some(prefix) => prefix,
                None => self.fail(format!("node {i}: snapshot at {} beyond the committed log", meta.index)),
            };
        }
        let node = &mut self.nodes[i];
        node.applied = applied;
        node.last_applied = meta.index;
        if self.options.kv {
            self.restore_kv(i, Some(kv_data));
        }
        self.with_raft(i, |r| r.on_snapshot_installed(meta));
    }

    /// The state machine of node `i` applies `value` at `index`, checked like
    /// 6.824's `applierSnap`: in order, and the same value everywhere.
    fn apply(&mut self, i: usize, index: Index, value: Applied) {
        let expected = self.nodes[i].last_applied + 1;
        if index != expected {
            self.fail(format!("server {i} apply out of order, expected index {expected}, got {index}"));
        }
        for (j, other) in self.nodes.iter().enumerate() {
            if let Some(old) = other.applied.get(&index)
                && *old != value
            {
                self.fail(format!("commit index={index} server={i} {value:?} != server={j} {old:?}"));
            }
        }
        if let Some(replica) = self.nodes[i].kv.as_mut()
            && let Err(e) = replica.apply(index, value.as_deref())
        {
            self.fail(format!("node {i}: {e}"));
        }
        let node = &mut self.nodes[i];
        node.applied.insert(index, value);
        node.last_applied = index;
        self.max_index = self.max_index.max(index);
        if let Some(interval) = self.options.snapshot_interval
            && (index + 1).is_multiple_of(interval)
        {
            self.take_snapshot(i, index);
        }
    }

    /// The application snapshots its state at `index` (6.824's `rf.Snapshot`).
    fn take_snapshot(&mut self, i: usize, index: Index) {
        let meta = match self.nodes[i].raft.as_ref().map(|r| r.snapshot_meta_at(index)) {
            Some(Ok(meta)) => meta,
            Some(Err(e)) => self.fail(format!("node {i} cannot snapshot at {index}: {e}")),
            None => return,
        };
        let mut data = encode_snapshot(&self.nodes[i].applied, index).to_vec();
        if let Some(replica) = self.nodes[i].kv.as_ref() {
            // The store has applied exactly `index`: snapshots are taken right
            // after an apply, or of everything applied so far.
            match replica.snapshot() {
                Ok(kv) => data.extend_from_slice(&kv),
                Err(e) => self.fail(format!("node {i}: {e}")),
            }
        }
        self.nodes[i].disk.install_snapshot(meta.clone(), Bytes::from(data));
        self.with_raft(i, |r| r.on_snapshot_taken(&meta));
    }

    /// Runs the safety checks after node `i` took a step.
    fn check(&mut self, i: usize) {
        let Some(raft) = self.nodes[i].raft.as_ref() else { return };
        let view = NodeView {
            id: raft.id(),
            term: raft.term(),
            is_leader: raft.role() == Role::Leader,
            commit: raft.log().committed(),
            applied: self.nodes[i].last_applied,
            log: &self.nodes[i].shadow,
        };
        let others: Vec<(NodeId, &ShadowLog)> =
            self.nodes.iter().filter(|n| n.id != view.id).map(|n| (n.id, &n.shadow)).collect();
        if let Err(v) = self.invariants.check(&view, &others) {
            let message = v.0;
            self.fail(format!("invariant violated: {message}"));
        }
    }

    // ---- client side ------------------------------------------------------------

    /// Proposes `cmd` at node `i`; returns `(index, term)` if it is the leader
    /// (6.824's `Start`).
    pub fn start_command(&mut self, i: usize, cmd: Bytes) -> Option<(Index, Term)> {
        if self.refuses_clients(i) {
            return None;
        }
        let result = self.with_raft(i, |r| r.propose(cmd).ok().map(|index| (index, r.term())))?;
        self.drive(i);
        self.check(i);
        result
    }

    /// Asks node `i` for a linearizable read `ctx`; the answer lands in
    /// [`Cluster::reads`] and is checked against what was committed when the
    /// read began. Returns whether the node took it.
    pub fn read_index(&mut self, i: usize, ctx: u64) -> bool {
        if self.refuses_clients(i) {
            return false;
        }
        let floor = self.invariants.committed_len();
        let taken = self.with_raft(i, |r| r.read_index(ctx).is_ok()).unwrap_or(false);
        if taken {
            self.read_floors.insert((i, ctx), floor);
        }
        self.drive(i);
        self.check(i);
        taken
    }

    /// `(term, is_leader)` of node `i` (6.824's `GetState`); `None` if down.
    pub fn state(&self, i: usize) -> Option<(Term, bool)> {
        self.nodes[i].raft.as_ref().map(|r| (r.term(), r.role() == Role::Leader))
    }
}
