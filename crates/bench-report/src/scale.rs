//! The scale section of docs/BENCHMARKS.md, from bench/scale.sh's results:
//! `scale-keys.json`, `scale-restart.json`, `scale-meta-*.json` and
//! `scale-runs/<system>__get-c64-keys<N>.json`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, bail};
use loadgen::Report;
use serde::Deserialize;

use crate::input::percentile;
use crate::markdown::ops;

/// One invocation of scale.sh (the steps may run in separate invocations).
#[derive(Debug, Deserialize)]
pub struct ScaleMeta {
    /// UTC date and time at the end of the invocation.
    pub date: String,
    /// The steps it ran.
    pub steps: String,
    /// CPU, cores, memory, kernel, disk.
    pub machine: String,
    /// Versions of what ran.
    pub versions: String,
    /// Load average and anything else the reader must know.
    #[serde(default)]
    pub notes: String,
}

/// RSS of one system after a number of keys was written.
#[derive(Debug, Deserialize)]
pub struct KeysPoint {
    /// Keys in the store.
    pub keys: u64,
    /// RSS before the first key was written, bytes.
    pub rss_before: u64,
    /// RSS after these keys were written, bytes.
    pub rss_after: u64,
    /// Seconds the load took (64 connections, pipelines of 32).
    pub load_s: f64,
}

impl KeysPoint {
    /// RSS growth per key, bytes.
    pub fn per_key(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.keys.max(1) as f64
    }
}

/// The keys step.
#[derive(Debug, Deserialize)]
pub struct Keys {
    /// Bytes per value.
    pub value_size: usize,
    /// Per system, one point per key count, ascending.
    pub points: BTreeMap<String, Vec<KeysPoint>>,
}

/// One restart of a follower.
#[derive(Debug, Deserialize)]
pub struct Restart {
    /// `log` (the state is all in the log) or `snapshot` (all in a snapshot).
    pub kind: String,
    /// `KILL` or `TERM`.
    pub signal: String,
    /// From exec to the client port answering PING (absent in results of
    /// runs before it was measured).
    #[serde(default)]
    pub answering_ms: Option<u64>,
    /// From exec to INFO showing the node's Raft section: its log is open
    /// and its snapshot restored.
    pub serving_ms: u64,
    /// From exec to the applied index reaching the leader's commit index.
    pub caught_up_ms: u64,
    /// Reading the node's log (or snapshot) files with `cat`, warm cache.
    pub read_ms: u64,
    /// Bytes of the node's log files (data dir without `snap/`).
    pub log_bytes: u64,
    /// Bytes of the node's `snap/` directory.
    pub snapshot_bytes: u64,
    /// The index the node had to apply.
    pub applied: u64,
    /// RSS once caught up.
    pub rss: u64,
    /// Peak RSS (VmHWM) of the restarted process.
    pub rss_peak: u64,
}

/// A new node catching up by snapshot.
#[derive(Debug, Deserialize)]
pub struct CatchUp {
    /// From `RAFT.NODE ADD` to its applied index reaching the leader's commit.
    pub caught_up_ms: u64,
    /// The leader's commit index it had to reach.
    pub applied: u64,
    /// Bytes of the snapshot it received.
    pub snapshot_bytes: u64,
    /// Its RSS once caught up.
    pub rss: u64,
    /// Its peak RSS.
    pub rss_peak: u64,
    /// The leader's RSS at that time.
    pub leader_rss: u64,
}

/// The restart step.
#[derive(Debug, Deserialize)]
pub struct RestartStep {
    /// Keys written (each once).
    pub keys: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Seconds the load took.
    pub load_s: f64,
    /// Restarts, in the order they ran.
    pub restarts: Vec<Restart>,
    /// The new node.
    pub catch_up: CatchUp,
}

/// Everything the scale section is made from.
pub struct ScaleResults {
    /// The invocations, oldest first.
    pub metas: Vec<ScaleMeta>,
    /// The keys step, if it ran.
    pub keys: Option<Keys>,
    /// The restart step, if it ran.
    pub restart: Option<RestartStep>,
    /// `(system, workload)` → GET report.
    pub runs: BTreeMap<(String, String), Report>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

impl ScaleResults {
    /// Reads scale.sh's files in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<ScaleResults> {
        let mut meta_paths = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with("scale-meta-") && name.ends_with(".json") {
                meta_paths.push(path);
            }
        }
        meta_paths.sort();
        let metas = meta_paths.iter().map(|p| read_json(p)).collect::<anyhow::Result<Vec<ScaleMeta>>>()?;
        let optional = |name: &str| dir.join(name).exists().then(|| dir.join(name));
        let keys = optional("scale-keys.json").map(|p| read_json(&p)).transpose()?;
        let restart = optional("scale-restart.json").map(|p| read_json(&p)).transpose()?;
        if keys.is_none() && restart.is_none() {
            bail!("no scale-keys.json or scale-restart.json in {}", dir.display());
        }
        let mut runs = BTreeMap::new();
        if let Some(runs_dir) = optional("scale-runs") {
            for entry in std::fs::read_dir(&runs_dir).with_context(|| format!("listing {}", runs_dir.display()))? {
                let path = entry?.path();
                let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
                let Some((system, workload)) = stem.split_once("__") else { continue };
                runs.insert((system.to_string(), workload.to_string()), read_json(&path)?);
            }
        }
        Ok(ScaleResults { metas, keys, restart, runs })
    }

    fn get(&self, system: &str, keys: u64) -> Option<&Report> {
        self.runs.get(&(system.to_string(), format!("get-c64-keys{keys}")))
    }
}

fn mib(bytes: u64) -> String {
    ops(bytes as f64 / f64::from(1 << 20))
}

/// The section, from its first line on.
pub fn render(results: &ScaleResults) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "<!-- generated by bench/scale.sh (bench-report --scale); edit the script, not this text -->\n");
    for m in &results.metas {
        let _ = writeln!(
            out,
            "Run of `{}`: {}. Machine: {}. Versions: {}; {}.\n",
            m.steps, m.date, m.machine, m.versions, m.notes
        );
    }
    if let Some(keys) = &results.keys {
        keys_table(results, keys, &mut out);
    }
    if let Some(restart) = &results.restart {
        restart_table(restart, &mut out);
    }
    out
}

fn keys_table(results: &ScaleResults, keys: &Keys, out: &mut String) {
    let _ = writeln!(
        out,
        "**Keys loaded**: each key written once with {} B values (`raftkv bench --prefill`, 64 connections, \
         pipelines of 32), RSS growth of the process (raftkv: the leader of 3 nodes, automatic snapshots off), \
         then 64 clients doing GETs over all keys for the run's duration (raftkv: linearizable ReadIndex reads). \
         Redis is `appendonly yes`, `appendfsync always`, and ran alone before raftkv started.\n",
        keys.value_size
    );
    let _ = writeln!(out, "| keys | system | load, writes/s | RSS, MiB | RSS per key, B | GETs/s | GET p99 µs |");
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|");
    let mut counts: Vec<u64> = keys.points.values().flatten().map(|p| p.keys).collect();
    counts.sort();
    counts.dedup();
    for &n in &counts {
        for (system, points) in &keys.points {
            let Some(p) = points.iter().find(|p| p.keys == n) else { continue };
            let get = results.get(system, n);
            let p99 = get.and_then(|r| r.latency.get("all")).map_or("–".into(), |l| ops(l.p99_us as f64));
            let _ = writeln!(
                out,
                "| {} | {system} | {} | {} | {:.0} | {} | {p99} |",
                ops(n as f64),
                ops(n as f64 / p.load_s.max(1e-9)),
                mib(p.rss_after),
                p.per_key(),
                get.map_or("–".into(), |r| ops(r.throughput)),
            );
        }
    }
    let _ = writeln!(out, "\n**raftkv against Redis** (issue 8: memory per key within 2× of Redis's):\n");
    let _ = writeln!(out, "| keys | memory per key, raftkv / Redis | goal | GETs, raftkv / Redis |");
    let _ = writeln!(out, "|---:|---:|---|---:|");
    for &n in &counts {
        let point = |s: &str| keys.points.get(s).and_then(|ps| ps.iter().find(|p| p.keys == n));
        let (Some(r), Some(d)) = (point("raftkv"), point("redis")) else { continue };
        let x = r.per_key() / d.per_key().max(1e-9);
        let gets = match (results.get("raftkv", n), results.get("redis", n)) {
            (Some(a), Some(b)) => format!("{:.2}×", a.throughput / b.throughput.max(1e-9)),
            _ => "–".into(),
        };
        let verdict = if x <= 2.0 { "**met**" } else { "**not met**" };
        let _ = writeln!(out, "| {} | {x:.2}× | {verdict} | {gets} |", ops(n as f64));
    }
    let _ = writeln!(
        out,
        "\netcd is not in this table: its default backend quota (2 GiB) cannot hold 10M × 256 B, and at the \
         write rate it reached in the comparison above, loading 10M keys would take longer than the whole \
         benchmark may.\n"
    );
}

fn restart_table(step: &RestartStep, out: &mut String) {
    let _ = writeln!(
        out,
        "**Restart and catch-up**: {} keys of {} B written once into a 3-node cluster with automatic snapshots \
         off (load {:.0} s), so a follower's whole state is in its log; that follower is stopped (SIGKILL, and \
         once SIGTERM) and started again. Then `RAFT.SNAPSHOT` on every node (the log is compacted into a \
         snapshot) and the same restarts. *Port answers*: from exec to the client port answering `PING`; \
         *serving*: from exec to `INFO` showing the Raft section (the node has opened its log and restored \
         its snapshot; until then commands get `-CLUSTERDOWN`); *caught up*: from exec to `raft_applied_index` reaching the leader's `raft_commit_index` (read just \
         before the stop). *cat*: reading the node's log or snapshot files with `cat`, warm page cache, \
         the floor for any replay.\n",
        ops(step.keys as f64),
        step.value_size,
        step.load_s
    );
    let _ = writeln!(
        out,
        "| state in | signal | index | log, MiB | snapshot, MiB | port answers, ms | serving, ms | caught up, ms | cat, ms | caught up / cat | RSS, MiB | peak RSS, MiB |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &step.restarts {
        let _ = writeln!(
            out,
            "| {} | SIG{} | {} | {} | {} | {} | {} | {} | {} | {:.1}× | {} | {} |",
            r.kind,
            r.signal,
            ops(r.applied as f64),
            mib(r.log_bytes),
            mib(r.snapshot_bytes),
            r.answering_ms.map_or("–".to_string(), |ms| ops(ms as f64)),
            ops(r.serving_ms as f64),
            ops(r.caught_up_ms as f64),
            ops(r.read_ms as f64),
            r.caught_up_ms as f64 / (r.read_ms.max(1)) as f64,
            mib(r.rss),
            mib(r.rss_peak)
        );
    }
    for kind in ["log", "snapshot"] {
        let kills: Vec<&Restart> = step.restarts.iter().filter(|r| r.kind == kind && r.signal == "KILL").collect();
        let median = |f: fn(&Restart) -> u64| percentile(&kills.iter().map(|r| f(r) as f64).collect::<Vec<_>>(), 50.0);
        if let (Some(s), Some(c)) = (median(|r| r.serving_ms), median(|r| r.caught_up_ms)) {
            let _ = writeln!(
                out,
                "\nRestart with its state in the {kind}, median of {} SIGKILL restarts: serving after {} ms, \
                 caught up after {} ms.",
                kills.len(),
                ops(s),
                ops(c)
            );
        }
    }
    let c = &step.catch_up;
    let _ = writeln!(
        out,
        "\n**Catch-up by snapshot**: a new node started empty (`--join`) and added with `RAFT.NODE ADD` \
         reached the leader's commit index {} after **{} ms** (a {} MiB snapshot); its RSS then {} MiB \
         (peak {} MiB), the leader's {} MiB.\n",
        ops(c.applied as f64),
        ops(c.caught_up_ms as f64),
        mib(c.snapshot_bytes),
        mib(c.rss),
        mib(c.rss_peak),
        mib(c.leader_rss)
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn point(keys: u64, before: u64, after: u64) -> KeysPoint {
        KeysPoint { keys, rss_before: before, rss_after: after, load_s: 2.0 }
    }

    #[test]
    fn memory_ratio_is_per_key_growth_and_judged_against_twice_redis() {
        let keys = Keys {
            value_size: 256,
            points: [
                ("raftkv".to_string(), vec![point(1000, 100, 500_100), point(10_000, 100, 9_000_100)]),
                ("redis".to_string(), vec![point(1000, 0, 400_000), point(10_000, 0, 4_000_000)]),
            ]
            .into_iter()
            .collect(),
        };
        let results = ScaleResults { metas: vec![], keys: Some(keys), restart: None, runs: BTreeMap::new() };
        let text = render(&results);
        assert!(text.contains("| 1,000 | 1.25× | **met** |"), "{text}");
        assert!(text.contains("| 10,000 | 2.25× | **not met** |"), "{text}");
        assert!(text.contains("| 10,000 | raftkv | 5,000 | 9 | 900 |"), "{text}");
    }

    #[test]
    fn restart_medians_use_the_sigkill_trials_only() {
        let restart = |kind: &str, signal: &str, serving_ms, caught_up_ms| Restart {
            kind: kind.into(),
            signal: signal.into(),
            answering_ms: Some(1),
            serving_ms,
            caught_up_ms,
            read_ms: 100,
            log_bytes: 1 << 30,
            snapshot_bytes: 0,
            applied: 10,
            rss: 0,
            rss_peak: 0,
        };
        let step = RestartStep {
            keys: 10,
            value_size: 256,
            load_s: 1.0,
            restarts: vec![
                restart("log", "KILL", 10, 300),
                restart("log", "KILL", 30, 100),
                restart("log", "KILL", 20, 200),
                restart("log", "TERM", 9_000, 9_000),
            ],
            catch_up: CatchUp { caught_up_ms: 5, applied: 10, snapshot_bytes: 0, rss: 0, rss_peak: 0, leader_rss: 0 },
        };
        let results = ScaleResults { metas: vec![], keys: None, restart: Some(step), runs: BTreeMap::new() };
        let text = render(&results);
        assert!(text.contains("median of 3 SIGKILL restarts: serving after 20 ms, caught up after 200 ms"), "{text}");
        assert!(text.contains("| log | SIGKILL | 10 | 1,024 | 0 | 1 | 10 | 300 | 100 | 3.0× | 0 | 0 |"), "{text}");
    }
}
