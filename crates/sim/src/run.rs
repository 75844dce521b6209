//! One KV chaos run, from a seed: a safety phase under the [`Nemesis`] with
//! the cluster's invariants checked after every step, then a liveness phase
//! on the healed cluster in which every client must keep completing
//! operations, then the linearizability check of the whole history.
//!
//! Everything derives from the seed (the cluster's shape and fault model,
//! the clients' operations, the nemesis's faults), so a failing seed replays
//! exactly: `cargo run -p sim --release -- run --seed N` prints its trace. A
//! failure panics with a message starting `seed N at T ms:`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lincheck::{Budget, History, Operation, Verdict};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use crate::cluster::{Cluster, ClusterOptions};
use crate::kv_client::{Event, KvClient};
use crate::nemesis::{Nemesis, leader};
use crate::network::NetworkConfig;
use crate::workload::KeySet;

/// Virtual ms between two rounds of the clients and the nemesis.
pub const ROUND_MS: u64 = 5;

/// What a run does; [`RunOptions::default`] is what CI and the CLI run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Voters at the start.
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: u64,
    /// Virtual length of the safety phase (faults), in ms.
    pub safety_ms: u64,
    /// Virtual length of the liveness phase (healed), in ms.
    pub liveness_ms: u64,
    /// In the liveness phase, an operation must complete within this many
    /// virtual ms of the later of its invoke and the heal.
    pub liveness_op_ms_max: u64,
    /// Whether the nemesis injects faults in the safety phase.
    pub nemesis: bool,
    /// Test hook: instead of healing, cut every link before the liveness
    /// phase, so it must fail (shows the liveness check can).
    pub never_heal: bool,
    /// The liveness phase starts with this many ms of reads only, after an
    /// operator-style leadership transfer: a leader must then serve reads
    /// with no client write to commit in its term (its no-op does that, §8).
    pub liveness_read_only_ms: u64,
    /// Planted client bug (a test hook): clients read from any node without
    /// ReadIndex ([`KvClient::stale_reads`]).
    pub stale_reads: bool,
    /// Planted client bug (a test hook): retries without the session's
    /// protection ([`KvClient::fresh_seq_per_retry`]).
    pub fresh_seq_per_retry: bool,
    /// Print a readable trace (faults, leaders, client operations) to stdout.
    pub trace: bool,
    /// Core configuration template (tests plant bugs here).
    pub raft: raft::Config,
    /// Budget of the linearizability check.
    pub check_budget: Budget,
    /// Mean virtual ms between two faults.
    pub nemesis_interval_ms: u64,
    /// The fault kinds the nemesis draws from; empty: all of them.
    pub fault_kinds: Vec<&'static str>,
    /// Changes the cluster options the seed picked (tests use it to widen
    /// a window: slow disks, one entry per message).
    pub tweak_cluster: Option<fn(&mut ClusterOptions)>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            nodes: 5,
            clients: 5,
            safety_ms: 20_000,
            liveness_ms: 10_000,
            liveness_op_ms_max: 5_000,
            liveness_read_only_ms: 6_000,
            nemesis: true,
            never_heal: false,
            stale_reads: false,
            fresh_seq_per_retry: false,
            trace: false,
            raft: raft::Config::new(1),
            check_budget: Budget { time: Some(Duration::from_secs(20)), max_steps: Some(20_000_000) },
            nemesis_interval_ms: 700,
            fault_kinds: Vec::new(),
            tweak_cluster: None,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Operations in the history (checked).
    pub ops: usize,
    /// Of which the outcome is unknown.
    pub unknown: usize,
    /// Completed in the liveness phase.
    pub liveness_ops: usize,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Virtual time at the end, in ms.
    pub virtual_ms: u64,
    /// Simulation steps (events processed).
    pub steps: u64,
    /// Wall time of the linearizability check.
    pub check_time: Duration,
    /// Wall time of the whole run.
    pub wall_time: Duration,
    /// The checker's answer was "unknown" (budget exhausted): not a failure,
    /// but nothing was proven about this history.
    pub check_inconclusive: bool,
}

impl RunReport {
    /// Faults injected (heals not counted).
    pub fn fault_count(&self) -> u64 {
        self.faults.iter().filter(|(k, _)| **k != "heal").map(|(_, n)| n).sum()
    }
}

/// The cluster options a seed picks: a lossy network for half the seeds,
/// periodic snapshots for half, one-entry messages for a quarter (the
/// Figure 8 window is widest then), and slow disks for some.
pub fn cluster_options(seed: u64, run: &RunOptions) -> ClusterOptions {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x0063_6c75_7374_6572);
    let mut pick = |n: u64| rng.next_u64() % n;
    let mut options = ClusterOptions::new(run.nodes);
    options.kv = true;
    options.raft = run.raft.clone();
    options.network = NetworkConfig { unreliable: pick(2) == 0, long_reordering: pick(8) == 0 };
    options.snapshot_interval = (pick(2) == 0).then_some(20 + pick(80));
    if pick(4) == 0 {
        options.raft.max_message_bytes = 1;
    }
    options.disk_latency_ms = if pick(3) == 0 { (5, 60) } else { (0, 3) };
    if let Some(tweak) = run.tweak_cluster {
        tweak(&mut options);
    }
    options
}

/// A run in progress.
struct Runner<'a> {
    run: &'a RunOptions,
    c: Cluster,
    clients: Vec<KvClient>,
    nemesis: Nemesis,
    keys: KeySet,
    history: Vec<Operation>,
    liveness_from: Option<u64>,
    liveness_ops: usize,
    /// Per client: operations completed in the liveness phase.
    liveness_done: Vec<usize>,
    last_leader: Option<(usize, u64)>,
    /// Whether the liveness phase's leadership transfer was asked.
    transferred: bool,
}

/// Runs seed `seed`; panics (naming the seed) if any check fails.
pub fn run(seed: u64, run: &RunOptions) -> RunReport {
    let started = Instant::now();
    let c = Cluster::new(seed, cluster_options(seed, run));
    let clients = (1..=run.clients)
        .map(|id| {
            let mut client = KvClient::new(id, seed);
            client.stale_reads = run.stale_reads;
            client.fresh_seq_per_retry = run.fresh_seq_per_retry;
            client
        })
        .collect();
    let mut nemesis = Nemesis::new(seed, run.nemesis_interval_ms);
    if !run.fault_kinds.is_empty() {
        nemesis.kinds = run.fault_kinds.clone();
    }
    let mut r = Runner {
        run,
        c,
        clients,
        nemesis,
        keys: KeySet::default(),
        history: Vec::new(),
        liveness_from: None,
        liveness_ops: 0,
        liveness_done: vec![0; run.clients as usize],
        last_leader: None,
        transferred: false,
    };
    r.say(format!("seed {seed}: {:?}", r.c.options));
    r.phase(run.safety_ms, true);
    r.heal();
    r.phase(run.liveness_ms, false);
    r.require_progress();
    let (check_time, inconclusive) = r.check();
    RunReport {
        seed,
        ops: r.history.len(),
        unknown: r.history.iter().filter(|op| !op.is_known()).count(),
        liveness_ops: r.liveness_ops,
        faults: r.nemesis.injected.clone(),
        virtual_ms: r.c.now,
        steps: r.c.steps,
        check_time,
        wall_time: started.elapsed(),
        check_inconclusive: inconclusive,
    }
}

impl Runner<'_> {
    fn say(&self, line: impl AsRef<str>) {
        if self.run.trace {
            println!("[{:>7} ms] {}", self.c.now, line.as_ref());
        }
    }

    /// Runs rounds for `ms`: the cluster, then the nemesis, then each client.
    fn phase(&mut self, ms: u64, faults: bool) {
        let end = self.c.now + ms;
        while self.c.now < end {
            self.c.run_for(ROUND_MS);
            self.watch_leader();
            let said = if faults && self.run.nemesis {
                self.nemesis.step(&mut self.c)
            } else if self.nemesis.healing() && !self.run.never_heal {
                self.nemesis.heal_pending(&mut self.c)
            } else {
                Vec::new()
            };
            for line in said {
                self.say(format!("nemesis: {line}"));
            }
            self.liveness_steps();
            self.poll_clients();
            self.check_liveness();
        }
    }

    /// In the liveness phase: hand leadership over once, and let clients
    /// write again after the read-only window.
    fn liveness_steps(&mut self) {
        let Some(from) = self.liveness_from else { return };
        if !self.transferred
            && let Some(l) = leader(&self.c)
        {
            self.transferred = true;
            let voters: Vec<raft::NodeId> = self.c.nodes[l]
                .raft
                .as_ref()
                .map(|r| r.membership().voters.iter().copied().filter(|&v| v != l as raft::NodeId + 1).collect())
                .unwrap_or_default();
            if let Some(&to) = voters.get(self.c.random(voters.len().max(1) as u64) as usize) {
                let asked = self.c.with_raft(l, |r| r.transfer_leader(to).is_ok()).unwrap_or(false);
                self.c.drive(l);
                self.say(format!("operator: transfer leadership from node {l} to node {} ({asked})", to - 1));
            }
        }
        if self.c.now >= from + self.run.liveness_read_only_ms {
            for client in &mut self.clients {
                client.read_only = false;
            }
        }
    }

    fn watch_leader(&mut self) {
        let now = leader(&self.c).and_then(|l| self.c.state(l).map(|(term, _)| (l, term)));
        if now != self.last_leader {
            if let Some((l, term)) = now {
                self.say(format!("node {l} leads in term {term}"));
            }
            self.last_leader = now;
        }
    }

    fn poll_clients(&mut self) {
        for k in 0..self.clients.len() {
            let events = match self.clients[k].poll(&mut self.c, &self.keys) {
                Ok(events) => events,
                Err(e) => self.c.fail(format!("wrong reply: {e}")),
            };
            for event in events {
                self.record(k, event);
            }
        }
    }

    fn record(&mut self, k: usize, event: Event) {
        let id = self.clients[k].id;
        match event {
            Event::Invoked { seq, op } => self.say(format!("client {id} #{seq} invoke {op:?}")),
            Event::Completed { seq, op, attempts } => {
                self.say(format!("client {id} #{seq} ok {:?} after {attempts} attempt(s)", op.op));
                if self.liveness_from.is_some() {
                    self.liveness_ops += 1;
                    self.liveness_done[k] += 1;
                }
                self.history.push(op);
            }
            Event::GaveUp { seq, op } => {
                self.say(format!("client {id} #{seq} gave up: outcome unknown"));
                self.history.push(op);
            }
        }
    }

    /// Ends the faults: heals everything (or, as a test hook, cuts every link).
    fn heal(&mut self) {
        let said = if self.run.never_heal {
            for i in 0..self.c.n() {
                self.c.disconnect(i);
            }
            vec!["(test hook) every node cut off for good".to_string()]
        } else {
            self.nemesis.heal_all(&mut self.c)
        };
        for line in said {
            self.say(format!("nemesis: {line}"));
        }
        self.liveness_from = Some(self.c.now);
        for client in &mut self.clients {
            // From now on an operation must complete: no giving up.
            client.give_up_ms = None;
            client.read_only = self.run.liveness_read_only_ms > 0;
        }
        self.say("liveness phase: the cluster is healed; every operation must complete");
    }

    /// In the liveness phase, fails if an operation waits too long.
    fn check_liveness(&self) {
        let Some(from) = self.liveness_from else { return };
        for client in &self.clients {
            if let Some(invoke) = client.pending_since() {
                let waited = self.c.now - invoke.max(from);
                if waited > self.run.liveness_op_ms_max {
                    self.c.fail(format!(
                        "liveness: client {} has waited {waited} ms (> {} ms) for an operation on a healed cluster",
                        client.id, self.run.liveness_op_ms_max
                    ));
                }
            }
        }
    }

    /// Every client completed something in the liveness phase.
    fn require_progress(&mut self) {
        if let Some(k) = (0..self.clients.len()).find(|&k| self.liveness_done[k] == 0) {
            let id = self.clients[k].id;
            self.c.fail(format!("liveness: client {id} completed nothing on the healed cluster"));
        }
        for client in &mut self.clients {
            client.generating = false;
            if let Some(op) = client.abandon() {
                self.history.push(op);
            }
        }
    }

    /// The linearizability check of the whole history.
    fn check(&self) -> (Duration, bool) {
        let history = match History::from_ops(self.history.iter().cloned()) {
            Ok(h) => h,
            Err((id, e)) => self.c.fail(format!("history entry {id} is malformed: {e}")),
        };
        let report = lincheck::check_with_stats(&history, &self.run.check_budget);
        self.say(format!(
            "linearizability: {} ({} ops, {} keys, {} steps, {:?})",
            report.verdict, report.stats.ops, report.stats.keys, report.stats.steps, report.stats.elapsed
        ));
        match &report.verdict {
            Verdict::NotLinearizable { .. } => self.c.fail(format!("history not linearizable: {}", report.verdict)),
            Verdict::Unknown { .. } => (report.stats.elapsed, true),
            Verdict::Linearizable => (report.stats.elapsed, false),
        }
    }
}
