//! Network namespaces for partitions: every node in a namespace of its own,
//! linked by a veth pair to a bridge in a hub namespace where the chaos
//! runner and its clients live. Cutting a node's link (`ip link set eth0
//! down` inside its namespace) isolates it from the others and from the
//! clients, without a packet filter; in-flight TCP segments are lost, not
//! refused, as in a real partition.
//!
//! Needs root and a working `ip netns` (iproute2). All names start with
//! `rkvchaos<pid>-`, and addresses live only inside these namespaces
//! (10.77.0.0/24), so nothing outside the run is touched. The namespaces are
//! deleted when the [`Netns`] guard is dropped; namespaces left by a runner
//! that was SIGKILLed (its pid no longer exists) are deleted at the next start.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

/// Why namespaces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Partitions need root.
    #[error("not running as root")]
    NotRoot,
    /// An `ip` command failed.
    #[error("`ip {args}` failed: {why}")]
    Ip {
        /// The arguments.
        args: String,
        /// Its error output or the spawn error.
        why: String,
    },
    /// Entering the hub namespace failed.
    #[error("entering the hub namespace: {0}")]
    Enter(String),
}

fn ip(args: &[&str]) -> Result<String, NetnsError> {
    let failed = |why: String| NetnsError::Ip { args: args.join(" "), why };
    let out = Command::new("ip").args(args).output().map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespaces of one run.
#[derive(Debug)]
pub struct Netns {
    prefix: String,
    nodes: u64,
}

impl Netns {
    /// Creates the hub and `nodes` node namespaces, wired to one bridge.
    pub fn create(nodes: u64) -> Result<Netns, NetnsError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(NetnsError::NotRoot);
        }
        delete_stale()?;
        let mut netns = Netns { prefix: format!("rkvchaos{}", std::process::id()), nodes: 0 };
        let hub = netns.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "addr", "add", "10.77.0.254/24", "dev", "br0"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 1..=nodes {
            let ns = netns.node(i);
            ip(&["netns", "add", &ns])?;
            netns.nodes = i;
            let veth = format!("vh{i}");
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(&["-n", &hub, "link", "set", &veth, "master", "br0", "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("10.77.0.{i}/24"), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(netns)
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    /// The namespace of node `id` (1-based).
    pub fn node(&self, id: u64) -> String {
        format!("{}-n{id}", self.prefix)
    }

    /// Node `id`'s address.
    pub fn addr(&self, id: u64) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, id as u8))
    }

    /// Moves the calling thread into the hub namespace. Call it before any
    /// other thread starts (before the async runtime): threads started later
    /// inherit it.
    pub fn enter_hub(&self) -> Result<(), NetnsError> {
        let path = format!("/var/run/netns/{}", self.hub());
        let file = std::fs::File::open(&path).map_err(|e| NetnsError::Enter(format!("{path}: {e}")))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::Enter(e.to_string()))
    }

    /// Cuts (`up == false`) or restores node `id`'s link to everyone.
    pub fn set_link(&self, id: u64, up: bool) -> Result<(), NetnsError> {
        ip(&["-n", &self.node(id), "link", "set", "eth0", if up { "up" } else { "down" }]).map(drop)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for i in 1..=self.nodes {
            let _ = ip(&["netns", "del", &self.node(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}

/// Deletes namespaces of earlier runs whose runner no longer exists.
fn delete_stale() -> Result<(), NetnsError> {
    for line in ip(&["netns", "list"])?.lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(rest) = name.strip_prefix("rkvchaos") else { continue };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "del", name]);
        }
    }
    Ok(())
}
