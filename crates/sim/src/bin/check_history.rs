//! Checks a history of key-value operations for linearizability.
//!
//! `cargo run -p sim --release --bin check_history -- FILE [--timeout-ms N] [--max-steps N]`
//!
//! FILE holds one operation per line in the JSON format documented in
//! the `lincheck` crate (`-` reads standard input). Prints the verdict, with
//! an explanation when the history is not linearizable, and exits 0 when it
//! is linearizable, 1 when it is not, 2 when the budget ran out or the input
//! could not be read.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::process::ExitCode;
use std::time::Duration;

use lincheck::{Budget, check_with_stats, read_history};

const USAGE: &str = "usage: check_history FILE [--timeout-ms N] [--max-steps N]";

struct Args {
    file: String,
    budget: Budget,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut file = None;
    let mut budget = Budget::unlimited();
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            let text = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            text.parse().map_err(|_| format!("{flag}: not a number: {text:?}"))
        };
        match arg.as_str() {
            "--timeout-ms" => budget.time = Some(Duration::from_millis(number("--timeout-ms")?)),
            "--max-steps" => budget.max_steps = Some(number("--max-steps")?),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if file.is_none() => file = Some(path.to_owned()),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    Ok(Args { file: file.ok_or("no FILE given")?, budget })
}

fn open(path: &str) -> io::Result<Box<dyn BufRead>> {
    if path == "-" { Ok(Box::new(io::stdin().lock())) } else { Ok(Box::new(BufReader::new(File::open(path)?))) }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("check_history: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let history =
        match open(&args.file).map_err(|e| e.to_string()).and_then(|r| read_history(r).map_err(|e| e.to_string())) {
            Ok(history) => history,
            Err(e) => {
                eprintln!("check_history: {}: {e}", args.file);
                return ExitCode::from(2);
            }
        };
    let report = check_with_stats(&history, &args.budget);
    println!("{}", report.verdict);
    println!("{}", report.stats);
    ExitCode::from(report.verdict.exit_status())
}
