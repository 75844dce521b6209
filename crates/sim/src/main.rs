//! `sim`: KV chaos runs of the simulated cluster, many seeds at a time.
//!
//! ```text
//! cargo run -p sim --release -- run --seeds 0..2000     # many seeds, a summary
//! cargo run -p sim --release -- run --seed 17           # one seed, with its trace
//! cargo run -p sim --release -- run --seeds 0..500 --lease-read   # leases instead of ReadIndex rounds
//! ```
//!
//! Each seed is a safety phase under the nemesis, a liveness phase on the
//! healed cluster and a linearizability check of the whole history (see the
//! `run` module of the `sim` crate). A failing seed is printed with the
//! command that replays it; the exit status is 1 if any seed failed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use sim::run::{RunOptions, RunReport, run};

#[derive(Parser)]
#[command(name = "sim", about = "Deterministic KV chaos runs of a simulated raftkv cluster")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs seeds: `--seeds A..B` for a summary, `--seed N` to replay one with a trace.
    Run {
        /// A range of seeds, `A..B` (B excluded).
        #[arg(long, conflicts_with = "seed")]
        seeds: Option<String>,
        /// One seed, replayed with a readable trace.
        #[arg(long)]
        seed: Option<u64>,
        /// Virtual length of the safety phase, in ms.
        #[arg(long, default_value_t = RunOptions::default().safety_ms)]
        safety_ms: u64,
        /// Virtual length of the liveness phase, in ms.
        #[arg(long, default_value_t = RunOptions::default().liveness_ms)]
        liveness_ms: u64,
        /// Voters at the start.
        #[arg(long, default_value_t = RunOptions::default().nodes)]
        nodes: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = RunOptions::default().clients)]
        clients: u64,
        /// Stop at the first failing seed.
        #[arg(long)]
        fail_fast: bool,
        /// Print the trace even for a range of seeds.
        #[arg(long)]
        trace: bool,
        /// Leaders serve reads under a lease (thesis §6.4.1) instead of a
        /// heartbeat round each; clock skew stays within the lease's bound.
        #[arg(long)]
        lease_read: bool,
    },
}

fn parse_range(text: &str) -> anyhow::Result<Range<u64>> {
    let (a, b) = text.split_once("..").context("--seeds wants A..B")?;
    let (a, b): (u64, u64) =
        (a.trim().parse().context("bad start of --seeds")?, b.trim().parse().context("bad end of --seeds")?);
    if b <= a {
        bail!("--seeds {a}..{b} is empty");
    }
    Ok(a..b)
}

/// Totals over the seeds run.
#[derive(Default)]
struct Summary {
    seeds: u64,
    failed: Vec<(u64, String)>,
    ops: u64,
    unknown: u64,
    inconclusive: Vec<u64>,
    faults: BTreeMap<&'static str, u64>,
    virtual_ms: u64,
    check_time: Duration,
    longest: Option<(usize, Duration, u64)>,
}

impl Summary {
    fn add(&mut self, report: &RunReport) {
        self.ops += report.ops as u64;
        self.unknown += report.unknown as u64;
        self.virtual_ms += report.virtual_ms;
        self.check_time += report.check_time;
        for (kind, n) in &report.faults {
            *self.faults.entry(kind).or_default() += n;
        }
        if report.check_inconclusive {
            self.inconclusive.push(report.seed);
        }
        if self.longest.is_none_or(|(ops, _, _)| report.ops > ops) {
            self.longest = Some((report.ops, report.check_time, report.seed));
        }
    }

    fn print(&self, wall: Duration, replay_flags: &str) {
        let secs = wall.as_secs_f64().max(1e-9);
        let faults: u64 = self.faults.iter().filter(|(k, _)| **k != "heal").map(|(_, n)| n).sum();
        println!(
            "seeds: {} run, {} failed, {:.2} seeds/s, {:.1} s wall",
            self.seeds,
            self.failed.len(),
            self.seeds as f64 / secs,
            secs
        );
        println!(
            "operations checked: {} ({} with unknown outcome), {:.0} ops checked/s overall, checker alone {:.0} ops/s",
            self.ops,
            self.unknown,
            self.ops as f64 / secs,
            self.ops as f64 / self.check_time.as_secs_f64().max(1e-9)
        );
        println!(
            "virtual time: {:.1} s in all, {:.0}x faster than real time",
            self.virtual_ms as f64 / 1000.0,
            self.virtual_ms as f64 / 1000.0 / secs
        );
        println!("faults injected: {faults} ({:.1} per run)", faults as f64 / self.seeds.max(1) as f64);
        for (kind, n) in &self.faults {
            println!("  {kind:<20} {n}");
        }
        if let Some((ops, time, seed)) = self.longest {
            println!("longest history: {ops} ops (seed {seed}), checked in {:.1} ms", time.as_secs_f64() * 1000.0);
        }
        if !self.inconclusive.is_empty() {
            println!("check ran out of budget (unknown, not failed) for seeds {:?}", self.inconclusive);
        }
        for (seed, why) in &self.failed {
            println!(
                "FAILED seed {seed}: {why}\n  replay: cargo run -p sim --release -- run --seed {seed}{replay_flags}"
            );
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

fn main() -> anyhow::Result<ExitCode> {
    let Cmd::Run { seeds, seed, safety_ms, liveness_ms, nodes, clients, fail_fast, trace, lease_read } =
        Cli::parse().command;
    if nodes == 0 || clients == 0 {
        bail!("--nodes and --clients must be at least 1");
    }
    let range = match (seeds, seed) {
        (_, Some(seed)) => seed..seed + 1,
        (Some(text), None) => parse_range(&text)?,
        (None, None) => bail!("give --seeds A..B or --seed N"),
    };
    let mut options =
        RunOptions { safety_ms, liveness_ms, nodes, clients, trace: trace || seed.is_some(), ..RunOptions::default() };
    options.raft.lease_read = lease_read;
    let quiet = !options.trace;
    if quiet {
        // Failures are reported once, in the summary, not as panic dumps.
        std::panic::set_hook(Box::new(|_| {}));
    }
    let started = Instant::now();
    let mut summary = Summary::default();
    for seed in range {
        summary.seeds += 1;
        match std::panic::catch_unwind(|| run(seed, &options)) {
            Ok(report) => {
                summary.add(&report);
                if !quiet {
                    println!(
                        "seed {seed}: ok, {} ops, {} faults, {} steps",
                        report.ops,
                        report.fault_count(),
                        report.steps
                    );
                }
            }
            Err(panic) => {
                let why = panic_text(panic.as_ref());
                eprintln!("seed {seed} FAILED: {why}");
                summary.failed.push((seed, why.lines().next().unwrap_or_default().to_string()));
                if fail_fast {
                    break;
                }
            }
        }
        if quiet && summary.seeds.is_multiple_of(100) {
            eprintln!(
                "... {} seeds, {} failed, {:.0} s",
                summary.seeds,
                summary.failed.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    summary.print(started.elapsed(), if lease_read { " --lease-read" } else { "" });
    Ok(if summary.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn seed_ranges_parse_and_bad_ones_are_errors() {
        assert_eq!(parse_range("3..7").ok(), Some(3..7));
        assert_eq!(parse_range(" 0 .. 2000 ").ok(), Some(0..2000));
        for bad in ["7..3", "5..5", "x..4", "4", "1..-2"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
