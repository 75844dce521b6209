//! The `raftkv` command: run a node, a local cluster, or an admin command.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use raftkv::config::{ServerConfig, parse_cluster};
use raftkv::resp::Frame;
use raftkv::{Client, ClientConfig, ClientError};

/// mimalloc instead of glibc's malloc: the server allocates per request on
/// one thread (parsing, proposing) and frees on another (another runtime
/// worker, the WAL writer), the pattern glibc's per-thread arenas handle
/// worst; malloc
/// and free were ~15% of a leader's profile under `redis-benchmark -P 16`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

#[derive(Parser)]
#[command(name = "raftkv", version, about = "A strongly consistent, Redis-compatible key-value store on Raft")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node.
    Server(ServerArgs),
    /// A local cluster on this machine, for trying raftkv out.
    Cluster {
        #[command(subcommand)]
        action: ClusterCmd,
    },
    /// Send one command to a node and print the reply (e.g. `INFO raft`,
    /// `RAFT.NODE ADD 4 127.0.0.1:7384 127.0.0.1:6384`).
    Admin {
        /// The node's client address.
        #[arg(long, default_value = "127.0.0.1:6381")]
        addr: SocketAddr,
        /// The command and its arguments.
        #[arg(required = true)]
        args: Vec<String>,
    },
    /// Check a JSON-lines history for linearizability (exit 0: linearizable,
    /// 1: not, 2: budget ran out or unreadable input).
    CheckHistory(cli::check_history::CheckHistoryArgs),
    /// Chaos against real processes: a local cluster under SIGKILL/SIGSTOP
    /// faults and client load, its history checked for linearizability.
    Chaos(cli::chaos::ChaosArgs),
    /// Load generator: N connections, pipelining, key distribution, open or
    /// closed loop, HdrHistogram latencies; a table or JSON (see docs/BENCHMARKS.md).
    Bench(raftkv::bench::BenchArgs),
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Start a local cluster; Ctrl-C stops every node cleanly.
    Up {
        /// How many nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Where the nodes keep their data (one directory each).
        #[arg(long, default_value = "raftkv-data")]
        dir: PathBuf,
        /// Client port of node 1 (node i listens on base + i - 1; peers on base + 1000 + i - 1).
        #[arg(long, default_value_t = 6381)]
        base_port: u16,
        /// Start every node with `--lease-read`.
        #[arg(long)]
        lease_read: bool,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Read every setting from this TOML file.
    #[arg(long, conflicts_with_all = ["id", "data_dir", "client_addr", "peer_addr"])]
    config: Option<PathBuf>,
    /// This node's id.
    #[arg(long, required_unless_present = "config")]
    id: Option<u64>,
    /// Where the log and snapshots live.
    #[arg(long, required_unless_present = "config")]
    data_dir: Option<PathBuf>,
    /// Address for Redis clients.
    #[arg(long, required_unless_present = "config")]
    client_addr: Option<SocketAddr>,
    /// Address for peers.
    #[arg(long, required_unless_present = "config")]
    peer_addr: Option<SocketAddr>,
    /// `1=127.0.0.1:7381,2=...`: the initial voters; only seeds an empty data dir.
    #[arg(long)]
    initial_cluster: Option<String>,
    /// Join an existing cluster (add it there with `RAFT.NODE ADD`).
    #[arg(long)]
    join: bool,
    /// Require `AUTH <password>`.
    #[arg(long)]
    password: Option<String>,
    /// Most client connections at once (Redis's `maxclients`).
    #[arg(long, default_value_t = 10_000)]
    max_clients: usize,
    /// Largest bulk string a client may send (Redis's `proto-max-bulk-len`).
    #[arg(long, default_value_t = 512 << 20)]
    max_bulk_bytes: usize,
    /// Most bytes of incomplete requests one connection may buffer (Redis's
    /// `client-query-buffer-limit`).
    #[arg(long, default_value_t = 1 << 30)]
    max_request_bytes: usize,
    /// Most pipelined requests taken from one connection before answering.
    #[arg(long, default_value_t = 1024)]
    max_pipeline: usize,
    /// Snapshot the store every this many applied entries.
    #[arg(long, default_value_t = 100_000)]
    snapshot_entries: u64,
    /// ... or once the commands applied since the last one add up to this
    /// many bytes, whichever comes first.
    #[arg(long, default_value_t = 256 << 20)]
    snapshot_bytes: u64,
    /// Serve reads on the leader under a lease (Raft thesis §6.4.1) instead
    /// of a heartbeat round per batch: assumes clocks within 10% of each
    /// other and no suspended node.
    #[arg(long)]
    lease_read: bool,
    /// Threads of the async runtime (default: one per core). Fewer cost
    /// less CPU per request when nodes share a machine, but with a single
    /// thread a long apply delays the node's heartbeats (see OPERATIONS.md).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    worker_threads: Option<u16>,
}

impl ServerArgs {
    fn into_config(self) -> anyhow::Result<ServerConfig> {
        if let Some(path) = self.config {
            return ServerConfig::from_file(&path);
        }
        let (Some(id), Some(data_dir), Some(client_addr), Some(peer_addr)) =
            (self.id, self.data_dir, self.client_addr, self.peer_addr)
        else {
            bail!("--id, --data-dir, --client-addr and --peer-addr are required without --config");
        };
        let initial_cluster = match self.initial_cluster {
            Some(text) => parse_cluster(&text)?,
            None if self.join => Default::default(),
            None => [(id, peer_addr)].into_iter().collect(),
        };
        let config = ServerConfig {
            id,
            data_dir,
            client_addr,
            peer_addr,
            initial_cluster,
            join: self.join,
            password: self.password,
            max_clients: self.max_clients,
            max_bulk_bytes: self.max_bulk_bytes,
            max_request_bytes: self.max_request_bytes,
            max_pipeline: self.max_pipeline,
            snapshot_entries: self.snapshot_entries,
            snapshot_bytes: self.snapshot_bytes,
            lease_read: self.lease_read,
        };
        config.validate()?;
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,raft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut cli = Cli::parse();
    if let Cmd::Chaos(args) = &mut cli.command {
        cli::chaos::prepare(args);
    }
    if let Cmd::CheckHistory(args) = &cli.command {
        return match cli::check_history::run(args) {
            0 => Ok(()),
            code => std::process::exit(code),
        };
    }
    let runtime = runtime(match &cli.command {
        Cmd::Server(args) => args.worker_threads,
        _ => None,
    })?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Server(args) => run_server(args.into_config()?).await,
            Cmd::Cluster { action: ClusterCmd::Up { nodes, dir, base_port, lease_read } } => {
                cluster_up(nodes, dir, base_port, lease_read).await
            }
            Cmd::Admin { addr, args } => admin(addr, args).await,
            Cmd::Chaos(args) => cli::chaos::chaos(args).await,
            Cmd::CheckHistory(_) => Ok(()),
            Cmd::Bench(args) => raftkv::bench::run(args).await.map(drop).map_err(Into::into),
        }
    })
}

/// The async runtime: tokio's multi-threaded one, with `workers` threads if given.
fn runtime(workers: Option<u16>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n.into());
    }
    builder.enable_all().build().context("starting the async runtime")
}

async fn run_server(config: ServerConfig) -> anyhow::Result<()> {
    let server = raftkv::Server::start(config).await?;
    wait_for_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await
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

async fn cluster_up(nodes: u64, dir: PathBuf, base_port: u16, lease_read: bool) -> anyhow::Result<()> {
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let exe = std::env::current_exe().context("finding the raftkv binary")?;
    let peer = |i: u64| format!("127.0.0.1:{}", base_port as u64 + 1000 + i - 1);
    let client = |i: u64| format!("127.0.0.1:{}", base_port as u64 + i - 1);
    let cluster: Vec<String> = (1..=nodes).map(|i| format!("{i}={}", peer(i))).collect();
    let mut children = Vec::new();
    for i in 1..=nodes {
        let data = dir.join(format!("node{i}"));
        let child = tokio::process::Command::new(&exe)
            .arg("server")
            .args(["--id", &i.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .args(["--client-addr", &client(i), "--peer-addr", &peer(i)])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(lease_read.then_some("--lease-read"))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        println!("node {i}: clients {}  peers {}  data {}", client(i), peer(i), data.display());
        children.push(child);
    }
    println!("\nraftkv cluster of {nodes} is up. Try:  redis-cli -c -p {base_port} set hello world");
    println!("Ctrl-C stops every node.");
    wait_for_signal().await?;
    for child in &children {
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
    }
    for mut child in children {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait()).await;
    }
    println!("stopped");
    Ok(())
}

/// Sends one command with [`raftkv::Client`], so a key or `RAFT.*` command
/// sent to a follower follows `-MOVED` to the leader; `INFO` is answered by
/// the node asked.
async fn admin(addr: SocketAddr, args: Vec<String>) -> anyhow::Result<()> {
    let mut config = ClientConfig::new(vec![addr]);
    config.deadline = std::time::Duration::from_secs(5);
    let mut client = Client::new(config)?;
    match client.command(args).await {
        Ok(reply) => {
            print_reply(&reply, 0);
            Ok(())
        }
        Err(ClientError::Command(e)) => {
            println!("(error) {e}");
            std::process::exit(1)
        }
        Err(e) => Err(e).with_context(|| format!("asking {addr}")),
    }
}

fn print_reply(frame: &Frame, depth: usize) {
    let pad = "  ".repeat(depth);
    match frame {
        Frame::Simple(s) => println!("{pad}{s}"),
        Frame::Error(e) => println!("{pad}(error) {e}"),
        Frame::Integer(n) => println!("{pad}(integer) {n}"),
        Frame::Bulk(Some(b)) => println!("{pad}{}", String::from_utf8_lossy(b)),
        Frame::Bulk(None) | Frame::Null | Frame::Array(None) => println!("{pad}(nil)"),
        Frame::Array(Some(items)) | Frame::Set(items) => items.iter().for_each(|f| print_reply(f, depth + 1)),
        Frame::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            print_reply(k, depth);
            print_reply(v, depth + 1);
        }),
        Frame::Double(d) => println!("{pad}{d}"),
        Frame::Boolean(b) => println!("{pad}{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_must_be_positive() {
        let args = |n: &str| Cli::try_parse_from(["raftkv", "server", "--config", "x.toml", "--worker-threads", n]);
        assert!(args("0").is_err(), "zero runtime threads is refused");
        assert!(args("1").is_ok());
    }
}
