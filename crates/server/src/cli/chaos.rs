//! `raftkv chaos`: the real-process chaos test as one command (see
//! [`raftkv::chaos`]). Exits 0 when the run found nothing wrong, 1 when it
//! found a violation (not linearizable, a lost acknowledged write, an
//! anomaly), 2 when it could not run or the check ran out of budget.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lincheck::Verdict;
use raftkv::chaos::netns::Netns;
use raftkv::chaos::{ChaosConfig, run};

/// The subcommand's arguments.
#[derive(clap::Args)]
pub struct ChaosArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 5)]
    nodes: u64,
    /// How long the nemesis runs (`300s`, `5m`, `90`: seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: u64,
    /// Write the history here (JSON lines, for `raftkv check-history`).
    #[arg(long)]
    history: Option<PathBuf>,
    /// Keep node data and logs here (default: a temporary directory, kept only on failure).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seed of the nemesis and the workload (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Time budget of the linearizability check (`60s`, `2m`).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    check_timeout: Duration,
    /// Run the nodes on loopback without network namespaces, so no partitions.
    #[arg(long)]
    no_partitions: bool,
    /// Set by [`prepare`]: the namespaces, or why there are none.
    #[arg(skip)]
    prepared: Option<Result<Arc<Netns>, String>>,
}

/// Sets up the network namespaces for partitions and moves this thread into
/// their hub. Must run before the async runtime starts any thread (threads
/// started later inherit the namespace). Without root or `ip netns`, the run
/// goes ahead on loopback and says why partitions were skipped.
pub fn prepare(args: &mut ChaosArgs) {
    let prepared = if args.no_partitions {
        Err("--no-partitions".to_owned())
    } else {
        match Netns::create(args.nodes) {
            Ok(netns) => match netns.enter_hub() {
                Ok(()) => Ok(Arc::new(netns)),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        }
    };
    if let Err(why) = &prepared {
        println!("raftkv chaos: partitions skipped ({why}); nodes run on loopback");
    }
    args.prepared = Some(prepared);
}

/// `300s`, `5m`, `1h`, `250ms`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| format!("not a duration: {text:?} (try 300s or 5m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("unknown unit {unit:?} in {text:?} (ms, s, m or h)")),
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// Runs the chaos test, prints the report and exits with its status.
pub async fn chaos(args: ChaosArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let (netns, partitions_skipped) = match args.prepared {
        Some(Ok(netns)) => (Some(netns), None),
        Some(Err(why)) => (None, Some(why)),
        None => (None, Some("namespaces were not prepared".to_owned())),
    };
    let config = ChaosConfig {
        exe: std::env::current_exe().context("finding the raftkv binary")?,
        nodes: args.nodes,
        clients: args.clients,
        duration: args.duration,
        seed,
        history: args.history,
        dir: args.dir,
        check_timeout: args.check_timeout,
        netns,
        partitions_skipped,
    };
    // On a signal the run is dropped: its cluster guard kills every node,
    // and the namespaces go with the last reference to them.
    let outcome = tokio::select! {
        report = run(config) => Some(report),
        signal = wait_for_signal() => {
            signal?;
            None
        }
    };
    let Some(report) = outcome else {
        eprintln!("raftkv chaos: interrupted; every node was killed");
        std::process::exit(2);
    };
    let report = report?;
    println!("{report}");
    let code = match (&report.check.verdict, report.passed()) {
        (_, true) => 0,
        (Verdict::Unknown { .. }, _) if report.lost.is_empty() && report.anomalies.is_empty() => 2,
        _ => 1,
    };
    // `exit` runs no destructors: delete the namespaces first.
    drop(report);
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("s").is_err());
    }
}
