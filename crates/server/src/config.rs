//! The server's settings, from flags or a TOML file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Everything `raftkv server` needs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// This node's id (1, 2, ...).
    pub id: u64,
    /// Where the WAL and snapshots live.
    pub data_dir: PathBuf,
    /// Address for Redis clients.
    pub client_addr: SocketAddr,
    /// Address for peers.
    pub peer_addr: SocketAddr,
    /// The initial cluster, `id -> peer address`; only seeds an empty data dir.
    #[serde(default)]
    pub initial_cluster: BTreeMap<u64, SocketAddr>,
    /// Join an existing cluster instead of bootstrapping one.
    #[serde(default)]
    pub join: bool,
    /// Clients must `AUTH` with this password first, if set.
    #[serde(default)]
    pub password: Option<String>,
    /// Most client connections at once (Redis: `maxclients` 10000).
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    /// Largest bulk string a client may send (Redis: 512 MiB).
    #[serde(default = "default_max_bulk")]
    pub max_bulk_bytes: usize,
    /// Most requests parsed from one read before answering (pipelining bound).
    #[serde(default = "default_max_pipeline")]
    pub max_pipeline: usize,
    /// Most bytes one connection may have buffered of requests not yet
    /// complete (Redis: `client-query-buffer-limit`, 1 GiB); a client past it
    /// is told so and disconnected.
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
    /// Snapshot every this many applied entries.
    #[serde(default = "default_snapshot_entries")]
    pub snapshot_entries: u64,
    /// ... or once the commands applied since the last snapshot add up to
    /// this many bytes, whichever comes first.
    #[serde(default = "default_snapshot_bytes")]
    pub snapshot_bytes: u64,
    /// Serve linearizable reads on the leader under a lease (Raft thesis
    /// §6.4.1) rather than confirming leadership with a heartbeat round per
    /// batch of reads: faster, but it assumes the nodes' clocks run at rates
    /// within 10% of each other and no node is suspended. Off by default.
    #[serde(default)]
    pub lease_read: bool,
}

fn default_max_clients() -> usize {
    10_000
}
fn default_max_bulk() -> usize {
    512 << 20
}
fn default_max_pipeline() -> usize {
    1024
}
fn default_max_request() -> usize {
    1 << 30
}
fn default_snapshot_entries() -> u64 {
    100_000
}
fn default_snapshot_bytes() -> u64 {
    256 << 20
}

impl ServerConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<ServerConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: ServerConfig = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings fit together.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.id == 0 {
            bail!("--id must be at least 1");
        }
        if self.max_request_bytes < self.max_bulk_bytes {
            bail!("--max-request-bytes must be at least --max-bulk-bytes");
        }
        if self.snapshot_entries == 0 || self.snapshot_bytes == 0 {
            bail!("--snapshot-entries and --snapshot-bytes must be at least 1");
        }
        if self.max_clients == 0 || self.max_pipeline == 0 {
            bail!("--max-clients and --max-pipeline must be at least 1");
        }
        if !self.join && !self.initial_cluster.is_empty() && !self.initial_cluster.contains_key(&self.id) {
            bail!("--initial-cluster does not name this node (id {})", self.id);
        }
        Ok(())
    }
}

/// Parses `1=127.0.0.1:7381,2=127.0.0.1:7382`.
pub fn parse_cluster(text: &str) -> anyhow::Result<BTreeMap<u64, SocketAddr>> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').with_context(|| format!("expected ID=ADDR, got {part:?}"))?;
        let id: u64 = id.trim().parse().with_context(|| format!("bad node id {id:?}"))?;
        let addr: SocketAddr = addr.trim().parse().with_context(|| format!("bad address {addr:?}"))?;
        if out.insert(id, addr).is_some() {
            bail!("node {id} named twice in the cluster");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_flag_parses_and_rejects_mistakes() {
        let cluster = parse_cluster("1=127.0.0.1:7381, 2=127.0.0.1:7382").unwrap_or_default();
        assert_eq!(cluster.len(), 2);
        assert!(parse_cluster("1=127.0.0.1:7381,1=127.0.0.1:7382").is_err(), "a node named twice");
        assert!(parse_cluster("x=127.0.0.1:1").is_err());
        assert!(parse_cluster("1=nowhere").is_err());
    }

    #[test]
    fn a_snapshot_policy_of_zero_is_refused() {
        let text = r#"
            id = 1
            data_dir = "d"
            client_addr = "127.0.0.1:6381"
            peer_addr = "127.0.0.1:7381"
        "#;
        let parse = |extra: &str| toml::from_str::<ServerConfig>(&format!("{text}{extra}")).map_err(|e| e.to_string());
        let ok = parse("snapshot_bytes = 1073741824").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.snapshot_bytes, 1 << 30);
        assert!(ok.validate().is_ok());
        for bad in ["snapshot_bytes = 0", "snapshot_entries = 0"] {
            let config = parse(bad).unwrap_or_else(|e| panic!("{e}"));
            assert!(config.validate().is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn toml_file_has_the_flags_settings() {
        let dir = std::env::temp_dir().join(format!("raftkv-config-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("node1.toml");
        let text = r#"
            id = 1
            data_dir = "data/node1"
            client_addr = "127.0.0.1:6381"
            peer_addr = "127.0.0.1:7381"
            initial_cluster = { 1 = "127.0.0.1:7381", 2 = "127.0.0.1:7382", 3 = "127.0.0.1:7383" }
        "#;
        std::fs::write(&path, text).unwrap_or_default();
        let config = ServerConfig::from_file(&path);
        let _ = std::fs::remove_dir_all(&dir);
        let config = config.unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(config.initial_cluster.len(), 3);
        assert_eq!(config.max_clients, 10_000);
        assert_eq!(config.max_request_bytes, 1 << 30);
        assert_eq!((config.snapshot_entries, config.snapshot_bytes), (100_000, 256 << 20));
    }
}
