//! A seed-driven nemesis (in Jepsen's sense): every few hundred virtual
//! milliseconds it injects one fault, and heals it after a while.
//!
//! Faults: partitions (majority/minority, an isolated leader, a bridge, a
//! one-way cut), clogged links, crashes and restarts (the simulated disk
//! loses unsynced writes and tears the last one), pauses (SIGSTOP), skewed
//! tick rates (a fast or slow clock), snapshots, membership changes (remove
//! and re-add a voter; add a learner and promote it) and leadership transfer.
//! At most one partition is active at a time, and at most two nodes are down
//! or paused at once, so the cluster can make progress between faults; a
//! fault whose precondition does not hold (no leader to transfer from, a
//! membership change in flight) is skipped and not counted.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use raft::{ConfChange, NodeId, Role};

use crate::cluster::{Cluster, TICK_MS};

/// The kinds of fault, as counted in reports.
pub const FAULT_KINDS: [&str; 13] = [
    "partition-majority",
    "partition-leader",
    "partition-bridge",
    "partition-one-way",
    "clog",
    "crash",
    "pause",
    "clock-skew",
    "snapshot",
    "remove-voter",
    "add-learner",
    "transfer-leader",
    "heal",
];

/// A fault in force, and what undoes it.
#[derive(Clone, Debug)]
enum Active {
    /// Links are cut: heal them all.
    Partition,
    /// The node's links are clogged.
    Clog(usize),
    /// The node is down: restart it.
    Crash(usize),
    /// The node is paused (it wakes by itself).
    Pause(usize),
    /// The node's clock runs fast or slow.
    Skew(usize),
    /// The voter was removed: add it back.
    Removed(NodeId),
    /// The node joined as a learner: promote it.
    Learner(NodeId),
}

/// The nemesis of one run.
#[derive(Debug)]
pub struct Nemesis {
    rng: Xoshiro256PlusPlus,
    next_at: u64,
    active: Vec<(u64, Active)>,
    /// Faults injected so far, by kind ([`FAULT_KINDS`]).
    pub injected: BTreeMap<&'static str, u64>,
    /// Mean virtual ms between two faults.
    pub interval_ms: u64,
    /// Whether a learner may still be added (one per run).
    learner_budget: usize,
    /// The kinds it draws from (all of [`FAULT_KINDS`] but "heal" by default).
    pub kinds: Vec<&'static str>,
}

impl Nemesis {
    /// A nemesis drawing from `seed`, injecting a fault every
    /// `interval_ms` on average.
    pub fn new(seed: u64, interval_ms: u64) -> Self {
        Nemesis {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x006e_656d_6573_6973),
            next_at: 500,
            active: Vec::new(),
            injected: BTreeMap::new(),
            interval_ms,
            learner_budget: 1,
            kinds: FAULT_KINDS.iter().copied().filter(|k| *k != "heal").collect(),
        }
    }

    /// Total faults injected.
    pub fn total(&self) -> u64 {
        self.injected.iter().filter(|(k, _)| **k != "heal").map(|(_, n)| n).sum()
    }

    fn random(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    /// Runs at `c.now`: heals what is due; injects a fault if it is time.
    /// Returns what it did, for the trace.
    pub fn step(&mut self, c: &mut Cluster) -> Vec<String> {
        let mut said = self.heal_due(c, false);
        if c.now >= self.next_at {
            self.next_at = c.now + self.interval_ms / 2 + self.random(self.interval_ms);
            if let Some(what) = self.inject(c) {
                said.push(what);
            }
        }
        said
    }

    /// Heals every fault now (membership is restored as far as a leader
    /// allows; what it refuses is retried by [`Nemesis::heal_pending`]).
    pub fn heal_all(&mut self, c: &mut Cluster) -> Vec<String> {
        for (at, _) in &mut self.active {
            *at = 0;
        }
        let mut said = self.heal_due(c, true);
        c.net.heal_links();
        c.net.unclog_all();
        // Responses held back for seconds starve check-quorum leaders of
        // acknowledgements: a network that does that is not healed.
        c.net.config.long_reordering = false;
        for i in 0..c.n() {
            c.paused_until[i] = 0;
            c.tick_ms[i] = TICK_MS;
            if !c.nodes[i].is_up() {
                c.start(i);
            }
            c.connect(i);
        }
        said.push("heal everything".into());
        said
    }

    /// Retries healing that a leader refused (after [`Nemesis::heal_all`]).
    pub fn heal_pending(&mut self, c: &mut Cluster) -> Vec<String> {
        self.heal_due(c, true)
    }

    /// Whether some fault is still being undone.
    pub fn healing(&self) -> bool {
        !self.active.is_empty()
    }

    fn heal_due(&mut self, c: &mut Cluster, all: bool) -> Vec<String> {
        let now = c.now;
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.active).into_iter().partition(|(at, _)| all || *at <= now);
        self.active = later;
        let mut said = Vec::new();
        for (_, fault) in due {
            match self.heal(c, &fault) {
                Some(what) => {
                    *self.injected.entry("heal").or_default() += 1;
                    said.push(what);
                }
                // Refused for now (no leader, change in flight): try again soon.
                None => self.active.push((now + 200, fault)),
            }
        }
        said
    }

    /// Undoes one fault; `None` if it cannot be undone yet.
    fn heal(&mut self, c: &mut Cluster, fault: &Active) -> Option<String> {
        Some(match *fault {
            Active::Partition => {
                c.net.heal_links();
                "heal partition".into()
            }
            Active::Clog(i) => {
                for j in 0..c.n() {
                    c.net.set_clog(i, j, 0);
                    c.net.set_clog(j, i, 0);
                }
                format!("unclog node {i}")
            }
            Active::Crash(i) => {
                c.start(i);
                format!("restart node {i}")
            }
            Active::Pause(i) => format!("node {i} resumes"),
            Active::Skew(i) => {
                c.tick_ms[i] = TICK_MS;
                format!("node {i} clock back to {TICK_MS} ms ticks")
            }
            // AddVoter brings a non-member in as a learner and promotes it
            // once caught up, and promotes a learner: it undoes both.
            Active::Removed(id) | Active::Learner(id) => {
                let l = leader(c)?;
                if c.nodes[l].raft.as_ref().is_some_and(|r| r.membership().voters.contains(&id)) {
                    return Some(format!("node {} is a voter again", id - 1));
                }
                propose_change(c, ConfChange::AddVoter(id))?;
                // Not healed until the leader reports it a voter: ask again.
                return None;
            }
        })
    }

    fn has_partition(&self) -> bool {
        self.active.iter().any(|(_, f)| matches!(f, Active::Partition))
    }

    fn has_membership_fault(&self) -> bool {
        self.active.iter().any(|(_, f)| matches!(f, Active::Removed(_) | Active::Learner(_)))
    }

    fn down_or_paused(&self) -> usize {
        self.active.iter().filter(|(_, f)| matches!(f, Active::Crash(_) | Active::Pause(_))).count()
    }

    fn is_faulted(&self, i: usize) -> bool {
        self.active.iter().any(|(_, f)| matches!(f, Active::Crash(j) | Active::Pause(j) if *j == i))
    }

    /// Injects one fault of a random kind; says what, or `None` if skipped.
    fn inject(&mut self, c: &mut Cluster) -> Option<String> {
        let pick = self.random(self.kinds.len() as u64) as usize;
        let kind = self.kinds[pick];
        let duration = if kind == "crash" { 50 + self.random(1_500) } else { 300 + self.random(3_000) };
        let (fault, what) = match kind {
            "partition-majority" | "partition-leader" | "partition-bridge" | "partition-one-way" => {
                if self.has_partition() {
                    return None;
                }
                (Active::Partition, self.partition(c, kind))
            }
            "clog" => {
                let i = self.random(c.n() as u64) as usize;
                let ms = 50 + self.random(700);
                for j in 0..c.n() {
                    if j != i {
                        c.net.set_clog(i, j, ms);
                        c.net.set_clog(j, i, ms);
                    }
                }
                (Active::Clog(i), format!("clog node {i}'s links by {ms} ms"))
            }
            "crash" | "pause" => {
                let i = self.victim(c)?;
                if kind == "crash" {
                    c.crash(i);
                    (Active::Crash(i), format!("crash node {i} (unsynced writes lost, last one torn)"))
                } else {
                    c.paused_until[i] = c.now + duration;
                    (Active::Pause(i), format!("pause node {i} for {duration} ms"))
                }
            }
            "clock-skew" => {
                let i = self.random(c.n() as u64) as usize;
                // Lease reads assume clocks within LEASE_CLOCK_DRIFT_PERCENT
                // of each other: skew them no further.
                let tick = if c.options.raft.lease_read {
                    TICK_MS + TICK_MS * raft::LEASE_CLOCK_DRIFT_PERCENT / 100
                } else {
                    [3, 5, 7, 15, 20, 30][self.random(6) as usize]
                };
                c.tick_ms[i] = tick;
                (Active::Skew(i), format!("node {i} ticks every {tick} ms (normal {TICK_MS})"))
            }
            "snapshot" => {
                let i = self.random(c.n() as u64) as usize;
                if !c.nodes[i].is_up() {
                    return None;
                }
                c.snapshot_now(i);
                *self.injected.entry(kind).or_default() += 1;
                return Some(format!("node {i} takes a snapshot at {}", c.nodes[i].last_applied));
            }
            "remove-voter" => self.remove_voter(c)?,
            "add-learner" => self.add_learner(c)?,
            "transfer-leader" => {
                let (leader, to) = self.transfer_target(c)?;
                c.with_raft(leader, |r| r.transfer_leader(to)).and_then(|r| r.ok())?;
                c.drive(leader);
                *self.injected.entry(kind).or_default() += 1;
                return Some(format!("transfer leadership from node {leader} to node {}", to - 1));
            }
            _ => return None,
        };
        *self.injected.entry(kind).or_default() += 1;
        self.active.push((c.now + duration, fault));
        Some(what)
    }

    /// A node to crash or pause, keeping at most two down or paused.
    fn victim(&mut self, c: &mut Cluster) -> Option<usize> {
        if self.down_or_paused() >= 2 {
            return None;
        }
        // Leaders are the interesting victims: half the time, the leader.
        let i = match leader(c) {
            Some(l) if self.random(2) == 0 => l,
            _ => self.random(c.n() as u64) as usize,
        };
        (!self.is_faulted(i) && c.nodes[i].is_up()).then_some(i)
    }

    /// Cuts links for one of the partition kinds; says which.
    fn partition(&mut self, c: &mut Cluster, kind: &str) -> String {
        let n = c.n();
        let mut order: Vec<usize> = (0..n).collect();
        for k in (1..n).rev() {
            let j = self.random(k as u64 + 1) as usize;
            order.swap(k, j);
        }
        let cut = |c: &mut Cluster, a: &[usize], b: &[usize]| {
            for &x in a {
                for &y in b {
                    c.net.set_link_blocked(x, y, true);
                    c.net.set_link_blocked(y, x, true);
                }
            }
        };
        match kind {
            "partition-leader" => {
                let l = leader(c).unwrap_or(order[0]);
                let rest: Vec<usize> = (0..n).filter(|&i| i != l).collect();
                cut(c, &[l], &rest);
                format!("isolate leader {l} from {rest:?}")
            }
            "partition-bridge" if n >= 3 => {
                // Two sides that cannot see each other, and one node that sees both.
                let bridge = order[0];
                let half = (n - 1) / 2;
                let (a, b) = order[1..].split_at(half);
                cut(c, a, b);
                format!("bridge: {a:?} | {b:?}, node {bridge} sees both")
            }
            "partition-one-way" => {
                let x = leader(c).unwrap_or(order[0]);
                let rest: Vec<usize> = (0..n).filter(|&i| i != x).collect();
                let outgoing = self.random(2) == 0;
                for &y in &rest {
                    if outgoing {
                        c.net.set_link_blocked(x, y, true);
                    } else {
                        c.net.set_link_blocked(y, x, true);
                    }
                }
                let dir = if outgoing { "cannot send to" } else { "cannot hear from" };
                format!("one-way: node {x} {dir} {rest:?}")
            }
            _ => {
                let minority = 1 + self.random(((n - 1) / 2).max(1) as u64) as usize;
                let (a, b) = order.split_at(minority);
                cut(c, a, b);
                format!("partition {a:?} | {b:?}")
            }
        }
    }

    fn remove_voter(&mut self, c: &mut Cluster) -> Option<(Active, String)> {
        if self.has_membership_fault() {
            return None;
        }
        let l = leader(c)?;
        let voters: Vec<NodeId> = c.nodes[l].raft.as_ref()?.membership().voters.iter().copied().collect();
        if voters.len() < 4 {
            return None;
        }
        let id = voters[self.random(voters.len() as u64) as usize];
        c.with_raft(l, |r| r.propose_conf_change(ConfChange::RemoveVoter(id))).and_then(|r| r.ok())?;
        c.drive(l);
        Some((Active::Removed(id), format!("remove voter {id} (node {}) at leader {l}", id - 1)))
    }

    fn add_learner(&mut self, c: &mut Cluster) -> Option<(Active, String)> {
        if self.has_membership_fault() || self.learner_budget == 0 {
            return None;
        }
        let l = leader(c)?;
        // The node exists before the leader hears of it (its messages need a
        // destination); if the leader refuses, it idles as a non-member.
        self.learner_budget -= 1;
        let i = c.add_node();
        let id = i as NodeId + 1;
        c.with_raft(l, |r| r.propose_conf_change(ConfChange::AddLearner(id))).and_then(|r| r.ok())?;
        c.drive(l);
        Some((Active::Learner(id), format!("add node {i} as learner {id} at leader {l}")))
    }

    fn transfer_target(&mut self, c: &mut Cluster) -> Option<(usize, NodeId)> {
        let l = leader(c)?;
        let voters: Vec<NodeId> =
            c.nodes[l].raft.as_ref()?.membership().voters.iter().copied().filter(|&v| v != l as NodeId + 1).collect();
        if voters.is_empty() {
            return None;
        }
        Some((l, voters[self.random(voters.len() as u64) as usize]))
    }

    /// Faults injected, as `kind=count` words.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (kind, n) in &self.injected {
            let _ = write!(out, "{kind}={n} ");
        }
        out.trim_end().to_string()
    }
}

/// The running node that leads in the highest term, if any.
pub fn leader(c: &Cluster) -> Option<usize> {
    (0..c.n())
        .filter_map(|i| c.nodes[i].raft.as_ref().filter(|r| r.role() == Role::Leader).map(|r| (r.term(), i)))
        .max()
        .map(|(_, i)| i)
}

/// Proposes `change` at the leader; returns the leader, or `None` if there
/// is none or it refused.
fn propose_change(c: &mut Cluster, change: ConfChange) -> Option<usize> {
    let l = leader(c)?;
    c.with_raft(l, |r| r.propose_conf_change(change)).and_then(|r| r.ok())?;
    c.drive(l);
    Some(l)
}
