//! `raftkv check-history FILE`: checks a JSON-lines history of key-value
//! operations for linearizability with `lincheck` (the format is in the
//! `lincheck` crate docs; `-` reads standard input). Exits 0 when the
//! history is linearizable, 1 when it is not (with an explanation), 2 when
//! the budget ran out or the input could not be read. Mirrors `sim`'s
//! `check_history` binary.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use lincheck::{Budget, check_with_stats, read_history};

/// The subcommand's arguments.
#[derive(clap::Args)]
pub struct CheckHistoryArgs {
    /// The history: one JSON operation per line (`-`: standard input).
    file: PathBuf,
    /// Give up (exit 2) after this many milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Give up (exit 2) after this many search steps.
    #[arg(long)]
    max_steps: Option<u64>,
}

fn open(path: &std::path::Path) -> io::Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        Ok(Box::new(BufReader::new(File::open(path)?)))
    }
}

/// Runs the check, prints the verdict and what it cost, and returns the exit status.
pub fn run(args: &CheckHistoryArgs) -> i32 {
    let budget = Budget { time: args.timeout_ms.map(Duration::from_millis), max_steps: args.max_steps };
    let read = open(&args.file).map_err(|e| e.to_string()).and_then(|r| read_history(r).map_err(|e| e.to_string()));
    let history = match read {
        Ok(history) => history,
        Err(e) => {
            eprintln!("raftkv check-history: {}: {e}", args.file.display());
            return 2;
        }
    };
    let report = check_with_stats(&history, &budget);
    println!("{}", report.verdict);
    println!("{}", report.stats);
    i32::from(report.verdict.exit_status())
}
