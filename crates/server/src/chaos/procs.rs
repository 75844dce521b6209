//! The cluster's processes: started, SIGKILLed, SIGSTOPped, resumed and
//! restarted by the nemesis, and all killed when the guard is dropped (on
//! every exit path, panics included).

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::netns::Netns;

/// Why a node could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The log file or the process could not be created.
    #[error("starting node {id}: {source}")]
    Io {
        /// The node.
        id: u64,
        /// What failed.
        source: std::io::Error,
    },
}

/// One node: its addresses and, while it runs, its process.
pub struct NodeProc {
    /// The node's id (1-based).
    pub id: u64,
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// Where peers connect.
    pub peer_addr: SocketAddr,
    /// The network namespace the node runs in, if any.
    netns: Option<String>,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl NodeProc {
    /// Whether the process runs (it may be paused).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the process is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn signal(&self, signal: Signal) {
        if let Some(child) = &self.child {
            // The pid is our own child's, which we have not reaped: it cannot be reused.
            let _ = kill(Pid::from_raw(child.id() as i32), signal);
        }
    }
}

/// Every node of the cluster; dropping it SIGKILLs and reaps them all.
pub struct Cluster {
    exe: PathBuf,
    initial_cluster: String,
    /// The nodes, by index (`id - 1`).
    pub nodes: Vec<NodeProc>,
}

/// A port the kernel just handed out on loopback (the listener is closed
/// again, so the port is free unless someone else takes it in between).
fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl Cluster {
    /// Starts `n` nodes of `exe` (the raftkv binary), with data and logs
    /// under `dir`: on loopback, or each in its namespace of `netns`.
    pub fn start(exe: &Path, n: u64, dir: &Path, netns: Option<&Netns>) -> Result<Cluster, SpawnError> {
        let mut nodes = Vec::new();
        for id in 1..=n {
            let io = |source| SpawnError::Io { id, source };
            let (client_addr, peer_addr) = match netns {
                Some(netns) => (SocketAddr::new(netns.addr(id), 6379), SocketAddr::new(netns.addr(id), 7379)),
                None => (free_port().map_err(io)?, free_port().map_err(io)?),
            };
            nodes.push(NodeProc {
                id,
                client_addr,
                peer_addr,
                netns: netns.map(|ns| ns.node(id)),
                data_dir: dir.join(format!("node{id}")),
                log: dir.join(format!("node{id}.log")),
                child: None,
                paused: false,
            });
        }
        let initial_cluster = nodes.iter().map(|n| format!("{}={}", n.id, n.peer_addr)).collect::<Vec<_>>().join(",");
        let mut cluster = Cluster { exe: exe.to_owned(), initial_cluster, nodes };
        for i in 0..cluster.nodes.len() {
            cluster.restart(i)?;
        }
        Ok(cluster)
    }

    /// The client addresses of all nodes.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.client_addr).collect()
    }

    /// Starts node `i` again (no-op if it runs), recovering from its data dir.
    pub fn restart(&mut self, i: usize) -> Result<(), SpawnError> {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            return Ok(());
        }
        let io = |source| SpawnError::Io { id: node.id, source };
        let log = OpenOptions::new().create(true).append(true).open(&node.log).map_err(io)?;
        // `ip netns exec` execs the command in place: the child's pid is the node's.
        let mut command = match &node.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.exe);
                c
            }
            None => Command::new(&self.exe),
        };
        let child = command
            .arg("server")
            .args(["--id", &node.id.to_string()])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--client-addr", &node.client_addr.to_string(), "--peer-addr", &node.peer_addr.to_string()])
            .args(["--initial-cluster", &self.initial_cluster])
            .env("RUST_LOG", std::env::var("RAFTKV_CHAOS_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io)?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// SIGSTOPs node `i`.
    pub fn pause(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.child.is_some() && !node.paused {
            node.signal(Signal::SIGSTOP);
            node.paused = true;
        }
    }

    /// SIGCONTs node `i`.
    pub fn resume(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.paused {
            node.signal(Signal::SIGCONT);
            node.paused = false;
        }
    }

    /// Notices nodes that exited on their own (a crash the nemesis did not
    /// cause is worth reporting); returns their ids and exit statuses.
    pub fn reap_exited(&mut self) -> Vec<(u64, String)> {
        let mut exited = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child
                && let Ok(Some(status)) = child.try_wait()
            {
                exited.push((node.id, status.to_string()));
                node.child = None;
                node.paused = false;
            }
        }
        exited
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
