//! `raftkv bench`: the load generator pointed at a RESP server (raftkv or
//! Redis) with its own client code — not redis-benchmark. The workload,
//! schedule, histograms and report come from the `loadgen` crate, which the
//! etcd benchmark (`etcd-load`) shares, so both systems run the same thing.
//!
//! ```text
//! raftkv bench --addr 127.0.0.1:6381 -c 64 -P 1 --keys 10000 -d 256 --read-percent 50 --duration 10 --json out.json
//! ```
//!
//! A follower answers `-MOVED <slot> <leader>`; connections follow it to the
//! leader and re-send what was redirected, so any node's address will do.

mod resp_client;

use std::net::SocketAddr;
use std::sync::Arc;

use loadgen::Report;
use loadgen::cli::{CliError, LoadArgs};

pub use resp_client::{RespBackend, RespConnection};

/// Options of `raftkv bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// A node's client address (or a Redis server's); redirects are followed.
    #[arg(long, default_value = "127.0.0.1:6381")]
    pub addr: SocketAddr,
    /// Send `AUTH <password>` on every connection.
    #[arg(long)]
    pub password: Option<String>,
    /// The workload and the report.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Why `raftkv bench` failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The run failed or its report could not be written.
    #[error(transparent)]
    Load(#[from] CliError),
    /// Every operation failed.
    #[error("no operation succeeded ({errors} errors)")]
    NothingSucceeded {
        /// How many failed.
        errors: u64,
    },
}

/// Runs the benchmark these options describe and prints or writes its report.
pub async fn run(args: BenchArgs) -> Result<Report, BenchError> {
    let backend = Arc::new(RespBackend::new(args.addr, args.password.clone(), args.load.value_size));
    let report = args.load.execute(backend, format!("resp {}", args.addr)).await?;
    if report.ops == 0 {
        return Err(BenchError::NothingSucceeded { errors: report.errors });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn arguments_parse() {
        let cmd = Cmd::try_parse_from(["bench", "--addr", "127.0.0.1:7000", "--password", "pw", "-c", "3", "-n", "10"])
            .unwrap();
        assert_eq!(cmd.bench.addr, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(cmd.bench.password.as_deref(), Some("pw"));
        assert_eq!(cmd.bench.load.connections, 3);
        assert_eq!(cmd.bench.load.ops, Some(10));
        assert!(Cmd::try_parse_from(["bench", "--addr", "not-an-address"]).is_err());
    }
}
