//! Chaos against real processes (`raftkv chaos`): a cluster of `raftkv`
//! processes on loopback, clients recording a history, a nemesis killing and
//! pausing nodes, and at the end a linearizability check of the history and
//! a check that every acknowledged write is readable.
//!
//! One run:
//!
//! 1. start `nodes` processes of the `raftkv` binary (data and logs in a
//!    temporary directory, or `dir`);
//! 2. for `duration`, run `clients` concurrent [`crate::Client`]s (see
//!    [`workload`] for the operations and how outcomes are recorded) while
//!    the [`nemesis`] SIGKILLs the leader and random nodes, SIGSTOPs and
//!    SIGCONTs nodes, restarts the killed ones and, when the nodes run in
//!    network namespaces ([`netns`]), cuts the leader or a random node off
//!    the network and reconnects it;
//! 3. heal (resume and restart everything), stop the clients, then SIGKILL
//!    every node at once and restart them all, so what is read next is what
//!    survived a whole-cluster crash;
//! 4. read every key, check every acknowledged append and counter increment
//!    is there ([`verify::lost_writes`]), write the history as JSON lines
//!    (`history`), and check it with `lincheck`.
//!
//! Partitions need root and `ip netns`: the caller creates a [`netns::Netns`]
//! and enters its hub namespace before starting the async runtime (`raftkv
//! chaos` does), and passes it in [`ChaosConfig::netns`]. Without it the
//! nodes run on loopback and the report says partitions were skipped, and why.
//! The partitions are isolations of one node at a time (from the other nodes
//! and the clients alike); majority/minority splits with clients on both
//! sides, bridges and one-way links are not done here (the simulator does them).
//!
//! Every process is SIGKILLed when the run ends, on every path: the
//! [`procs::Cluster`] guard kills its children when dropped, panics included.

pub mod nemesis;
pub mod netns;
pub mod procs;
pub mod verify;
pub mod workload;

use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lincheck::{Budget, History, Report, Verdict, check_with_stats, write_history};

use nemesis::NemesisStats;
use procs::Cluster;
use workload::Recorder;

/// How to run the chaos test.
#[derive(Clone, Debug)]
pub struct ChaosConfig {
    /// The `raftkv` binary to run the nodes with.
    pub exe: PathBuf,
    /// Cluster size.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// How long the nemesis runs.
    pub duration: Duration,
    /// Seeds the nemesis and the clients' choices (timing is real, so a
    /// seed does not replay a run exactly; the history file does).
    pub seed: u64,
    /// Where to write the history (JSON lines, for `raftkv check-history`).
    pub history: Option<PathBuf>,
    /// Where the nodes keep data and logs; `None`: a temporary directory,
    /// removed after a run that passes and kept after one that does not.
    pub dir: Option<PathBuf>,
    /// Time budget of the linearizability check.
    pub check_timeout: Duration,
    /// The namespaces to run the nodes in, for partitions; the caller has
    /// entered their hub. `None`: loopback, no partitions.
    pub netns: Option<Arc<netns::Netns>>,
    /// Why there is no `netns`, for the report.
    pub partitions_skipped: Option<String>,
}

/// Why a run could not be carried out (as opposed to a run that found a bug).
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// The configuration makes no sense.
    #[error("invalid chaos configuration: {0}")]
    Config(String),
    /// A directory or file could not be created or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A node could not be started.
    #[error(transparent)]
    Spawn(#[from] procs::SpawnError),
    /// A link could not be cut or restored.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
}

/// What a run found.
#[derive(Debug)]
pub struct ChaosReport {
    /// The configuration it ran with.
    pub config: ChaosConfig,
    /// Wall-clock time of the faulty phase.
    pub elapsed: Duration,
    /// Operations recorded in the history (final reads included).
    pub ops: usize,
    /// Client operations whose outcome the client learned.
    pub ok: u64,
    /// Client operations whose outcome stayed unknown.
    pub unknown: u64,
    /// Client operations that definitely failed (not in the history).
    pub failed: u64,
    /// What the nemesis did.
    pub nemesis: NemesisStats,
    /// Errors that cannot happen with a correct cluster (error replies,
    /// failed final reads, nodes that exited by themselves).
    pub anomalies: Vec<String>,
    /// Acknowledged writes missing at the end.
    pub lost: Vec<String>,
    /// The linearizability check.
    pub check: Report,
    /// Where the nodes' data and logs are, if kept.
    pub kept_dir: Option<PathBuf>,
}

impl ChaosReport {
    /// Whether the run found nothing wrong: linearizable, nothing lost, no anomaly.
    pub fn passed(&self) -> bool {
        self.check.verdict.is_linearizable() && self.lost.is_empty() && self.anomalies.is_empty()
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "chaos: {} nodes, {} clients, {:.1} s of faults, seed {}",
            c.nodes,
            c.clients,
            self.elapsed.as_secs_f64(),
            c.seed
        )?;
        writeln!(
            f,
            "operations: {} in the history; {} completed, {} outcome unknown, {} failed definitely",
            self.ops, self.ok, self.unknown, self.failed
        )?;
        write!(f, "nemesis: {}", self.nemesis)?;
        match &c.partitions_skipped {
            Some(why) => writeln!(f, "; partitions skipped: {why}")?,
            None => writeln!(f, " (nodes in network namespaces)")?,
        }
        writeln!(f, "final: every node SIGKILLed and restarted, then every key read")?;
        match self.lost.len() {
            0 => writeln!(f, "acknowledged writes: all readable at the end")?,
            n => writeln!(f, "acknowledged writes: {n} LOST: {}", self.lost.join("; "))?,
        }
        for anomaly in &self.anomalies {
            writeln!(f, "anomaly: {anomaly}")?;
        }
        let s = &self.check.stats;
        let mut verdict = self.check.verdict.to_string();
        if verdict.len() > VERDICT_SHOWN_BYTES_MAX {
            let mut end = VERDICT_SHOWN_BYTES_MAX;
            while !verdict.is_char_boundary(end) {
                end -= 1;
            }
            verdict.truncate(end);
            verdict.push_str(" ... (cut; `raftkv check-history` on the history file prints all of it)");
        }
        writeln!(
            f,
            "linearizability: {} ({} ops on {} keys checked in {:.1} ms, {} steps)",
            verdict,
            s.ops,
            s.keys,
            s.elapsed.as_secs_f64() * 1e3,
            s.steps
        )?;
        if let Some(path) = &c.history {
            writeln!(f, "history: {}", path.display())?;
        }
        if let Some(dir) = &self.kept_dir {
            writeln!(f, "node data and logs kept in {}", dir.display())?;
        }
        write!(f, "verdict: {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}

/// How much of a verdict's explanation the report shows (values of log keys
/// grow to kilobytes, and an explanation quotes several).
const VERDICT_SHOWN_BYTES_MAX: usize = 4000;

/// Where the nodes live: a temporary directory or the one asked for.
enum Dir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl Dir {
    fn path(&self) -> &std::path::Path {
        match self {
            Dir::Temp(t) => t.path(),
            Dir::Given(p) => p,
        }
    }
}

/// Runs one chaos test (see the [module docs](self)).
pub async fn run(config: ChaosConfig) -> Result<ChaosReport, ChaosError> {
    if config.nodes < 3 || config.clients == 0 {
        return Err(ChaosError::Config("at least 3 nodes and 1 client".into()));
    }
    let io = |what: String| move |source| ChaosError::Io { what, source };
    let dir = match &config.dir {
        Some(path) => {
            std::fs::create_dir_all(path).map_err(io(format!("creating {}", path.display())))?;
            Dir::Given(path.clone())
        }
        None => Dir::Temp(
            tempfile::Builder::new()
                .prefix("raftkv-chaos-")
                .tempdir()
                .map_err(io("creating a temporary directory".into()))?,
        ),
    };
    let mut cluster = Cluster::start(&config.exe, config.nodes, dir.path(), config.netns.as_deref())?;
    println!("chaos: {} nodes in {}, clients on {:?}", config.nodes, dir.path().display(), cluster.client_addrs());
    let recorder = Arc::new(Recorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (1..=config.clients)
        .map(|id| {
            let (recorder, stop, nodes) = (recorder.clone(), stop.clone(), cluster.client_addrs());
            let seed = config.seed.wrapping_mul(1000).wrapping_add(id);
            tokio::spawn(async move { workload::run_client(id, nodes, seed, &stop, &recorder).await })
        })
        .collect();
    let start = Instant::now();
    let mut nemesis = NemesisStats::default();
    let faults =
        nemesis::run(&mut cluster, config.netns.as_deref(), start, start + config.duration, config.seed, &mut nemesis)
            .await;
    let elapsed = start.elapsed();
    // Let the clients finish what is in flight against the healed cluster.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    faults?;
    for crash in cluster.reap_exited() {
        nemesis.crashes.push(crash);
    }
    for (id, status) in &nemesis.crashes {
        recorder.anomaly(format!("node {id} exited by itself: {status}"));
    }
    println!("[{:7.2}s] SIGKILL every node, restart all, read every key", start.elapsed().as_secs_f64());
    for i in 0..cluster.nodes.len() {
        cluster.kill(i);
    }
    for i in 0..cluster.nodes.len() {
        cluster.restart(i)?;
    }
    let keys = workload::all_keys(start.elapsed());
    let finals = verify::final_reads(cluster.client_addrs(), &keys, &recorder).await;
    drop(cluster);
    let (ops, anomalies, acked_appends) = recorder.take();
    let lost = verify::lost_writes(&ops, &acked_appends, &finals);
    let history = History::from_ops(ops).map_err(|(id, e)| ChaosError::Config(format!("recorded op {id}: {e}")))?;
    if let Some(path) = &config.history {
        let file = File::create(path).map_err(io(format!("creating {}", path.display())))?;
        write_history(BufWriter::new(file), &history).map_err(io(format!("writing {}", path.display())))?;
    }
    let check = check_with_stats(&history, &Budget::time(config.check_timeout));
    let mut report = ChaosReport {
        ok: recorder.ok.load(Ordering::Relaxed),
        unknown: recorder.unknown.load(Ordering::Relaxed),
        failed: recorder.failed.load(Ordering::Relaxed),
        ops: history.len(),
        config,
        elapsed,
        nemesis,
        anomalies,
        lost,
        check,
        kept_dir: None,
    };
    report.kept_dir = match dir {
        Dir::Given(path) => Some(path),
        Dir::Temp(temp) if !report.passed() => Some(temp.keep()),
        Dir::Temp(_) => None,
    };
    if matches!(report.check.verdict, Verdict::Unknown { .. }) {
        tracing::warn!("the linearizability check ran out of budget");
    }
    Ok(report)
}
