//! Reading compare.sh's results directory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use loadgen::Report;
use serde::Deserialize;

/// The systems, in the order tables show them.
pub const SYSTEMS: [&str; 3] = ["raftkv", "etcd", "redis"];

/// The description of the run (written by compare.sh).
#[derive(Debug, Deserialize)]
pub struct Meta {
    /// UTC date and time of the run.
    pub date: String,
    /// CPU, cores, memory, kernel, disk.
    pub machine: String,
    /// fdatasync calls per second of the data disk (4 KiB writes, dd oflag=dsync).
    pub fsync_per_s: f64,
    /// Versions of what ran.
    pub versions: String,
    /// Seconds per workload.
    pub duration_s: f64,
    /// Keys in the key space.
    pub keys: u64,
    /// Anything the reader must know (e.g. other builds were running).
    #[serde(default)]
    pub notes: String,
}

/// Failover trials: SIGKILL of the leader to the first acknowledged write.
#[derive(Debug, Deserialize)]
pub struct Failover {
    /// One figure per trial, milliseconds.
    pub trials_ms: Vec<f64>,
}

/// Resident memory with many keys loaded.
#[derive(Debug, Deserialize)]
pub struct Memory {
    /// Keys loaded.
    pub keys: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Per system: RSS in bytes before and after loading (raftkv: the leader).
    pub rss: BTreeMap<String, (u64, u64)>,
}

/// Everything the report is made from.
pub struct Results {
    /// The run.
    pub meta: Meta,
    /// `(system, workload)` → report.
    pub runs: BTreeMap<(String, String), Report>,
    /// The failover step, if it ran.
    pub failover: Option<Failover>,
    /// The memory step, if it ran.
    pub memory: Option<Memory>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

impl Results {
    /// Reads `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Results> {
        let meta = read_json(&dir.join("meta.json"))?;
        let mut runs = BTreeMap::new();
        let runs_dir = dir.join("runs");
        for entry in std::fs::read_dir(&runs_dir).with_context(|| format!("listing {}", runs_dir.display()))? {
            let path = entry?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            let Some((system, workload)) = stem.split_once("__") else { continue };
            runs.insert((system.to_string(), workload.to_string()), read_json(&path)?);
        }
        if runs.is_empty() {
            bail!("no results in {}", runs_dir.display());
        }
        let optional = |name: &str| dir.join(name).exists().then(|| dir.join(name));
        let failover = optional("failover.json").map(|p| read_json(&p)).transpose()?;
        let memory = optional("memory.json").map(|p| read_json(&p)).transpose()?;
        Ok(Results { meta, runs, failover, memory })
    }

    /// The report of `system` on `workload`.
    pub fn get(&self, system: &str, workload: &str) -> Option<&Report> {
        self.runs.get(&(system.to_string(), workload.to_string()))
    }

    /// The write workloads by client count, ascending: `(clients, name)`.
    pub fn write_workloads(&self) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> =
            self.runs.keys().filter_map(|(_, w)| Some((w.strip_prefix("set-c")?.parse().ok()?, w.clone()))).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every workload name, writes first by client count, then the others.
    pub fn workloads(&self) -> Vec<String> {
        let mut names: Vec<String> = self.write_workloads().into_iter().map(|(_, w)| w).collect();
        for (_, w) in self.runs.keys() {
            if !names.contains(w) {
                names.push(w.clone());
            }
        }
        names
    }
}

/// The median of `xs` (sorted copy); `None` when empty.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v.get(rank).copied()
}
