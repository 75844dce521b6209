//! The command-line options every front end shares (`raftkv bench`,
//! `etcd-load`), and what to do with the report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::report::Report;
use crate::run::{Backend, Limit, RunConfig, RunError, prefill, run};
use crate::workload::{Distribution, Workload};

/// Options of a load run.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct LoadArgs {
    /// Concurrent connections (clients).
    #[arg(short = 'c', long, default_value_t = 16)]
    pub connections: usize,
    /// Operations per batch on a connection (1: no pipelining).
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// How keys are drawn.
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    pub distribution: Distribution,
    /// Bytes per written value.
    #[arg(short = 'd', long, default_value_t = 256)]
    pub value_size: usize,
    /// Percentage of reads; the rest are writes.
    #[arg(long, default_value_t = 0)]
    pub read_percent: u8,
    /// Seconds to run (the default, 10, unless --ops is given).
    #[arg(long, conflicts_with = "ops")]
    pub duration: Option<f64>,
    /// Operations to run in total, instead of a duration.
    #[arg(short = 'n', long)]
    pub ops: Option<u64>,
    /// Target rate in operations per second over all connections (open loop:
    /// latency counts from each operation's due time). Without it: closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Write every key once before the measured run (so reads find values).
    #[arg(long)]
    pub prefill: bool,
    /// Seed of the operation streams.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the report as JSON to this file (`-`: stdout, instead of the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress line.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Why a load run failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The duration is not a positive number of seconds.
    #[error("--duration must be a positive number of seconds, got {0}")]
    Duration(f64),
    /// The run itself failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The JSON report could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Seconds a run lasts when neither --duration nor --ops is given.
pub const DEFAULT_DURATION_S: f64 = 10.0;

impl LoadArgs {
    /// The run these options describe, against `target`.
    pub fn config(&self, target: String) -> Result<RunConfig, CliError> {
        let limit = match (self.ops, self.duration) {
            (Some(n), _) => Limit::Ops(n),
            (None, d) => {
                let d = d.unwrap_or(DEFAULT_DURATION_S);
                if !(d.is_finite() && d > 0.0) {
                    return Err(CliError::Duration(d));
                }
                Limit::Duration(Duration::from_secs_f64(d))
            }
        };
        Ok(RunConfig {
            target,
            connections: self.connections,
            pipeline: self.pipeline,
            limit,
            rate: self.rate,
            workload: self.workload(),
            seed: self.seed,
            progress: !self.quiet,
        })
    }

    /// The workload these options describe.
    pub fn workload(&self) -> Workload {
        Workload {
            keys: self.keys,
            distribution: self.distribution,
            value_size: self.value_size,
            read_percent: self.read_percent,
        }
    }

    /// Prefills if asked, runs, prints the table (unless JSON goes to stdout)
    /// and writes the JSON report if asked.
    pub async fn execute<B: Backend>(&self, backend: Arc<B>, target: String) -> Result<Report, CliError> {
        let config = self.config(target)?;
        config.workload.generator().map_err(RunError::from)?;
        if self.prefill {
            let failed =
                prefill(backend.clone(), &config.workload, config.connections, config.pipeline.max(16)).await?;
            if failed > 0 {
                eprintln!("prefill: {failed} of {} writes failed", config.workload.keys);
            }
        }
        let report = run(backend, &config).await?;
        self.emit(&report)?;
        Ok(report)
    }

    fn emit(&self, report: &Report) -> Result<(), CliError> {
        match &self.json {
            Some(path) if path.as_os_str() == "-" => println!("{}", report.to_json()),
            Some(path) => {
                std::fs::write(path, report.to_json() + "\n")
                    .map_err(|source| CliError::Write { path: path.clone(), source })?;
                print!("{}", report.table());
            }
            None => print!("{}", report.table()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        Cmd::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.load)
    }

    #[test]
    fn defaults_are_a_ten_second_closed_loop_of_writes() {
        let args = parse(&[]).unwrap();
        let config = args.config("t".into()).unwrap();
        assert_eq!(config.connections, 16);
        assert_eq!(config.pipeline, 1);
        assert_eq!(config.limit, Limit::Duration(Duration::from_secs(10)));
        assert_eq!(config.rate, None);
        assert_eq!(config.workload.value_size, 256);
        assert_eq!(config.workload.read_percent, 0);
        assert_eq!(config.workload.distribution, Distribution::Uniform);
    }

    #[test]
    fn every_option_parses() {
        let args = parse(&[
            "-c",
            "64",
            "-P",
            "8",
            "--keys",
            "1000000",
            "--distribution",
            "zipfian",
            "-d",
            "100",
            "--read-percent",
            "50",
            "-n",
            "5000",
            "--rate",
            "20000",
            "--prefill",
            "--seed",
            "9",
            "--json",
            "-",
            "-q",
        ])
        .unwrap();
        let config = args.config("t".into()).unwrap();
        assert_eq!((config.connections, config.pipeline), (64, 8));
        assert_eq!(config.limit, Limit::Ops(5000));
        assert_eq!(config.rate, Some(20000.0));
        assert_eq!(config.workload.distribution, Distribution::Zipfian);
        assert_eq!(
            (config.workload.keys, config.workload.value_size, config.workload.read_percent),
            (1_000_000, 100, 50)
        );
        assert!(args.prefill && args.quiet && !config.progress);
        assert_eq!(args.json.as_deref(), Some(std::path::Path::new("-")));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(parse(&["--duration", "5", "--ops", "10"]).is_err(), "duration and ops conflict");
        assert!(parse(&["--distribution", "pareto"]).is_err());
        assert!(parse(&["--read-percent", "300"]).is_err(), "a u8");
        let zero = parse(&["--duration", "0"]).unwrap();
        assert!(matches!(zero.config("t".into()), Err(CliError::Duration(_))));
    }
}
