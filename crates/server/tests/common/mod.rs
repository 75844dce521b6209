//! Real `raftkv` processes on loopback, and a small blocking RESP client.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use raftkv::resp::{Frame, parse_reply};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A blocking client for one connection.
pub struct Client {
    stream: TcpStream,
    input: BytesMut,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client { stream, input: BytesMut::new() })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn send(&mut self, args: &[&str]) -> std::io::Result<()> {
        let frame = Frame::Array(Some(args.iter().map(|a| Frame::bulk(a.as_bytes().to_vec())).collect()));
        let mut out = BytesMut::new();
        frame.encode(2, &mut out);
        self.stream.write_all(&out)
    }

    /// The next reply, or `None` if the server closed the connection.
    pub fn read_reply(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = parse_reply(&mut self.input).map_err(std::io::Error::other)? {
                return Ok(Some(frame));
            }
            let mut buf = [0u8; 16 << 10];
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.input.extend_from_slice(&buf[..n]);
        }
    }

    pub fn call(&mut self, args: &[&str]) -> std::io::Result<Frame> {
        self.send(args)?;
        self.read_reply()?.ok_or_else(|| std::io::Error::other("connection closed"))
    }
}

pub fn bulk(s: &str) -> Frame {
    Frame::bulk(s.as_bytes().to_vec())
}

pub struct Node {
    pub id: u64,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub child: Option<Child>,
    pub dir: std::path::PathBuf,
    /// The `--initial-cluster` list; empty for a node started with `--join` alone.
    pub cluster: String,
    /// More `raftkv server` flags.
    pub flags: Vec<String>,
}

impl Node {
    pub fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .arg("server")
            .args(["--id", &self.id.to_string()])
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--client-addr", &self.client.to_string(), "--peer-addr", &self.peer.to_string()])
            .args(if self.cluster.is_empty() { vec!["--join"] } else { vec!["--initial-cluster", &self.cluster] })
            .args(&self.flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn terminate(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Sends the process `signal` (SIGSTOP and SIGCONT pause and resume it).
    /// Until it is waited for, the child's pid is ours: the call cannot miss.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(child) = &self.child {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, signal).unwrap();
        }
    }

    pub fn info_raft(&self) -> Option<String> {
        let mut c = Client::connect(self.client).ok()?;
        match c.call(&["INFO", "raft"]).ok()? {
            Frame::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        }
    }
}

/// Waits until `client` (a connection that said READONLY) sees `keys` keys,
/// failing with `what` after `within`.
pub fn await_dbsize(client: &mut Client, keys: i64, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while client.call(&["DBSIZE"]).unwrap() != Frame::Integer(keys) {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
}

/// Real processes, killed when dropped.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

impl Cluster {
    pub fn start(n: u64) -> Cluster {
        Cluster::start_with_flags(n, &[])
    }

    /// `n` nodes started with `flags` besides the usual ones.
    pub fn start_with_flags(n: u64, flags: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let cluster: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, p))| format!("{}=127.0.0.1:{p}", i + 1)).collect();
        let cluster = cluster.join(",");
        let mut nodes: Vec<Node> = ports
            .iter()
            .enumerate()
            .map(|(i, (c, p))| Node {
                id: i as u64 + 1,
                client: format!("127.0.0.1:{c}").parse().unwrap(),
                peer: format!("127.0.0.1:{p}").parse().unwrap(),
                child: None,
                dir: dir.path().join(format!("node{}", i + 1)),
                cluster: cluster.clone(),
                flags: flags.iter().map(|f| f.to_string()).collect(),
            })
            .collect();
        for node in &mut nodes {
            node.start();
        }
        Cluster { dir, nodes }
    }

    /// Starts node `id` empty with `--join` alone (it knows no other node);
    /// it serves once a leader adds it.
    pub fn start_joining(&mut self, id: u64) -> usize {
        let (c, p) = (free_port(), free_port());
        self.nodes.push(Node {
            id,
            client: format!("127.0.0.1:{c}").parse().unwrap(),
            peer: format!("127.0.0.1:{p}").parse().unwrap(),
            child: None,
            dir: self.dir.path().join(format!("node{id}")),
            cluster: String::new(),
            flags: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.nodes[i].start();
        i
    }

    /// The index of the one running node that says it leads, waiting up to
    /// `within`. The others may not have heard from it yet: see
    /// [`Cluster::await_leader_known`].
    pub fn leader(&self, within: Duration) -> usize {
        self.leader_among(|_| true, within)
    }

    /// Waits up to `within` until node `i` names node `leader` as its leader
    /// (a follower learns it from the leader's first AppendEntries, which
    /// may come after the leader already answers as one).
    pub fn await_leader_known(&self, i: usize, leader: usize, within: Duration) {
        let leader_id = self.nodes[leader].info_raft().and_then(|info| field(&info, "raft_node_id").map(String::from));
        let what = format!("node {i} never learned that node {leader} leads");
        self.await_info(i, within, &what, |info| {
            leader_id.is_some() && field(info, "raft_leader_id") == leader_id.as_deref()
        });
    }

    /// Waits up to `within` until node `i`'s `INFO raft` satisfies `ready`,
    /// failing with `what` and the last answer.
    pub fn await_info(&self, i: usize, within: Duration, what: &str, ready: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let info = self.nodes[i].info_raft().unwrap_or_default();
            if ready(&info) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {info}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The one running node among those `asked` says yes to that says it
    /// leads, waiting up to `within` (leave out paused nodes: they would
    /// not answer).
    pub fn leader_among(&self, asked: impl Fn(usize) -> bool, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut leaders = Vec::new();
            for (i, node) in self.nodes.iter().enumerate() {
                if node.child.is_none() || !asked(i) {
                    continue;
                }
                if let Some(info) = node.info_raft()
                    && field(&info, "raft_role") == Some("leader")
                {
                    leaders.push(i);
                }
            }
            if leaders.len() == 1 {
                return leaders[0];
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no single leader within {within:?}");
    }

    pub fn client(&self, i: usize) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Client::connect(self.nodes[i].client) {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => panic!("cannot connect to node {i}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
