//! The 6.824 tester's helpers (`config.go`), over a simulated cluster. Times
//! are virtual milliseconds; the retry loops and bounds are the lab's.

use std::collections::BTreeMap;

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;

use raft::{ConfChange, Index, Membership, NodeId, Term};

use crate::cluster::Cluster;
use crate::node::Applied;

/// 6.824's `RaftElectionTimeout`: the tester allows an election to take a second.
pub const RAFT_ELECTION_TIMEOUT_MS: u64 = 1000;

/// A command value as bytes (the lab's commands are integers).
pub fn cmd(v: u64) -> Bytes {
    Bytes::copy_from_slice(&v.to_le_bytes())
}

impl Cluster {
    /// Sleeps in virtual time while background clients keep running.
    pub fn sleep(&mut self, ms: u64) {
        let until = self.now + ms;
        loop {
            let next = self.tasks.iter().map(|(due, _)| *due).min().unwrap_or(until).clamp(self.now, until);
            self.run_for(next - self.now);
            self.poll_tasks();
            if self.now >= until {
                return;
            }
        }
    }

    /// Starts a background client (a goroutine of the Go tester).
    pub fn spawn(&mut self, task: Box<dyn Task>) {
        self.tasks.push((self.now, task));
        self.poll_tasks();
    }

    /// Whether any background client is still running.
    pub fn tasks_running(&self) -> bool {
        !self.tasks.is_empty()
    }

    fn poll_tasks(&mut self) {
        let now = self.now;
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.tasks).into_iter().partition(|(at, _)| *at <= now);
        self.tasks = waiting;
        for (_, mut task) in due {
            if let Some(next) = task.poll(self) {
                self.tasks.push((next.max(now + 1), task));
            }
        }
    }

    /// `checkOneLeader`: one connected node leads (the one of the highest
    /// term), and no term has two; retries through re-elections.
    pub fn check_one_leader(&mut self) -> usize {
        for _ in 0..10 {
            let ms = 450 + self.random(100);
            self.sleep(ms);
            let mut leaders: BTreeMap<Term, Vec<usize>> = BTreeMap::new();
            for i in 0..self.n() {
                if let (true, Some((term, true))) = (self.is_connected(i), self.state(i)) {
                    leaders.entry(term).or_default().push(i);
                }
            }
            for (term, ls) in &leaders {
                if ls.len() > 1 {
                    self.fail(format!("term {term} has {} (>1) leaders", ls.len()));
                }
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return ls[0];
            }
        }
        self.fail("expected one leader, got none")
    }

    /// `checkTerms`: every connected node is in the same term.
    pub fn check_terms(&self) -> Term {
        let mut term = None;
        for i in 0..self.n() {
            if !self.is_connected(i) {
                continue;
            }
            let Some((t, _)) = self.state(i) else { continue };
            match term {
                None => term = Some(t),
                Some(x) if x != t => self.fail("servers disagree on term"),
                _ => {}
            }
        }
        term.unwrap_or(0)
    }

    /// `checkNoLeader`: no connected node thinks it leads.
    pub fn check_no_leader(&self) {
        for i in 0..self.n() {
            if self.is_connected(i) && self.state(i).is_some_and(|(_, leader)| leader) {
                self.fail(format!("expected no leader among connected servers, but {i} claims to be leader"));
            }
        }
    }

    /// `nCommitted`: how many state machines applied `index`, and what.
    pub fn n_committed(&self, index: Index) -> (usize, Option<Applied>) {
        let mut count = 0;
        let mut value: Option<Applied> = None;
        for node in &self.nodes {
            if let Some(v) = node.applied.get(&index) {
                if let Some(prev) = &value
                    && prev != v
                {
                    self.fail(format!("committed values do not match: index {index}, {prev:?}, {v:?}"));
                }
                count += 1;
                value = Some(v.clone());
            }
        }
        (count, value)
    }

    /// `wait`: waits (with backoff) for `n` nodes to apply `index`; gives up
    /// with `None` if some node moved past `start_term`.
    pub fn wait(&mut self, index: Index, n: usize, start_term: Option<Term>) -> Option<Applied> {
        let mut to = 10;
        for _ in 0..30 {
            if self.n_committed(index).0 >= n {
                break;
            }
            self.sleep(to);
            if to < 1000 {
                to *= 2;
            }
            if let Some(start) = start_term
                && (0..self.n()).any(|i| self.state(i).is_some_and(|(t, _)| t > start))
            {
                return None;
            }
        }
        let (nd, value) = self.n_committed(index);
        if nd < n {
            self.fail(format!("only {nd} decided for index {index}; wanted {n}"));
        }
        value
    }

    /// `one`: a complete agreement on `cmd` by at least `expected` nodes,
    /// trying each connected node as leader; with `retry`, resubmits after a
    /// leader failed to commit. Returns the index.
    pub fn one(&mut self, cmd: Bytes, expected: usize, retry: bool) -> Index {
        let result = Rc::new(Cell::new(None));
        self.spawn(Box::new(One::new(self.now, cmd, expected, retry, result.clone())));
        loop {
            if let Some(index) = result.get() {
                return index;
            }
            self.sleep(10);
        }
    }

    /// `one` in a goroutine: runs in the background; the index lands in the
    /// returned cell once agreed.
    pub fn spawn_one(&mut self, cmd: Bytes, expected: usize, retry: bool) -> Rc<Cell<Option<Index>>> {
        let result = Rc::new(Cell::new(None));
        self.spawn(Box::new(One::new(self.now, cmd, expected, retry, result.clone())));
        result
    }

    /// `crash1`: disconnects node `i` and crashes it.
    pub fn crash1(&mut self, i: usize) {
        self.disconnect(i);
        self.crash(i);
    }

    /// `start1`: (re)starts node `i` from its disk; it stays disconnected.
    pub fn start1(&mut self, i: usize) {
        self.crash1(i);
        self.start(i);
    }

    /// How many commands (not no-ops or configurations) node `i`'s log holds
    /// up to `index`. The lab's tests count indices from 1 with no leader
    /// no-op; we append one at the start of every term (§8), so the ports
    /// compare command counts where the lab compares indices.
    pub fn commands_up_to(&self, i: usize, index: Index) -> u64 {
        let Some(raft) = self.nodes[i].raft.as_ref() else { return 0 };
        let log = raft.log();
        let entries = log.entries(log.first_index(), index + 1, u64::MAX).unwrap_or_default();
        entries.iter().filter(|e| matches!(e.payload, raft::EntryPayload::Command(_))).count() as u64
    }

    /// Proposes a membership change at whichever connected node leads,
    /// retrying through elections and refusals for up to 10 s. Returns the
    /// entry's index and the node that accepted it.
    pub fn propose_change(&mut self, change: ConfChange) -> (Index, usize) {
        let t0 = self.now;
        while self.now - t0 < 10_000 {
            for i in 0..self.n() {
                if !self.is_connected(i) {
                    continue;
                }
                if let Some(Ok(index)) = self.with_raft(i, |r| r.propose_conf_change(change)) {
                    self.drive(i);
                    return (index, i);
                }
            }
            self.sleep(50);
        }
        self.fail(format!("no leader accepted {change:?}"))
    }

    /// Waits up to 10 s until the configuration of every node in `nodes`
    /// (ids) that is running and connected satisfies `done`.
    pub fn await_membership(&mut self, what: &str, nodes: &[NodeId], done: impl Fn(&Membership) -> bool) {
        let t0 = self.now;
        while self.now - t0 < 10_000 {
            let all = nodes
                .iter()
                .map(|&id| (id - 1) as usize)
                .filter(|&i| self.is_connected(i))
                .all(|i| self.nodes[i].raft.as_ref().is_none_or(|r| done(r.membership())));
            if all {
                return;
            }
            self.sleep(20);
        }
        self.fail(format!("configuration never reached: {what}"))
    }

    /// `rpcCount`: requests delivered to node `i`.
    pub fn rpc_count(&self, i: usize) -> u64 {
        self.net.counters.rpcs_received[i]
    }

    /// `rpcTotal`: requests sent by anyone.
    pub fn rpc_total(&self) -> u64 {
        self.net.counters.rpcs_total
    }

    /// `bytesTotal`: bytes sent.
    pub fn bytes_total(&self) -> u64 {
        self.net.counters.bytes_total
    }

    /// `LogSize`: the largest durable log, in bytes (entries after the snapshot).
    pub fn log_size(&self) -> u64 {
        self.nodes.iter().map(|n| n.disk.all_entries().iter().map(|e| e.size_bytes()).sum()).max().unwrap_or(0)
    }
}

/// Runs `test` for each seed the environment asks for: `RAFT_SEED=N` replays
/// one seed; otherwise `RAFT_SEEDS=K` (default `default_count`) runs seeds
/// `0..K`. A failure names its seed and how to replay it.
pub fn for_each_seed(name: &str, default_count: u64, test: impl Fn(u64)) {
    let seeds: Vec<u64> = match std::env::var("RAFT_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => {
            let count = std::env::var("RAFT_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_count);
            (0..count).collect()
        }
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(seed)));
        if let Err(panic) = outcome {
            eprintln!("{name} failed with seed {seed}; replay: RAFT_SEED={seed} cargo test -p sim {name}");
            std::panic::resume_unwind(panic);
        }
    }
}

/// A background client of the tester, run between simulation steps.
pub trait Task {
    /// Runs the client until it would block; returns when to run it next
    /// (virtual ms), or `None` when it is finished.
    fn poll(&mut self, cluster: &mut Cluster) -> Option<u64>;
}

/// The state machine of one `one()` call.
struct One {
    cmd: Bytes,
    expected: usize,
    retry: bool,
    t0: u64,
    starts: usize,
    /// The index being waited for and since when.
    waiting: Option<(Index, u64)>,
    result: Rc<Cell<Option<Index>>>,
}

impl One {
    fn new(now: u64, cmd: Bytes, expected: usize, retry: bool, result: Rc<Cell<Option<Index>>>) -> Self {
        One { cmd, expected, retry, t0: now, starts: 0, waiting: None, result }
    }

    fn submit(&mut self, c: &mut Cluster) -> Option<Index> {
        for _ in 0..c.n() {
            self.starts = (self.starts + 1) % c.n();
            if c.is_connected(self.starts)
                && let Some((index, _)) = c.start_command(self.starts, self.cmd.clone())
            {
                return Some(index);
            }
        }
        None
    }
}

impl Task for One {
    fn poll(&mut self, c: &mut Cluster) -> Option<u64> {
        if let Some((index, t1)) = self.waiting {
            let (nd, value) = c.n_committed(index);
            if nd > 0 && nd >= self.expected && value == Some(Some(self.cmd.clone())) {
                self.result.set(Some(index));
                return None;
            }
            if c.now - t1 < 2000 {
                return Some(c.now + 20);
            }
            if !self.retry {
                c.fail(format!("one({:?}) failed to reach agreement", self.cmd));
            }
            self.waiting = None;
        }
        if c.now - self.t0 >= 10_000 {
            c.fail(format!("one({:?}) failed to reach agreement", self.cmd));
        }
        match self.submit(c) {
            Some(index) => {
                self.waiting = Some((index, c.now));
                Some(c.now + 1)
            }
            None => Some(c.now + 50),
        }
    }
}
