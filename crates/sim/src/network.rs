//! The simulated network: labrpc's fault model (6.824), one-way messages.
//!
//! Requests (AppendEntries, RequestVote, ...) and responses travel separately.
//! In unreliable mode every message waits 0–26 ms and 10% are lost; with long
//! reordering, 2 in 3 responses are held back 200–2200 ms. A message between
//! two nodes that are not both connected, when sent or when it arrives, is lost.

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::Rng;

use raft::{Message, MessageBody, NodeId};

/// How hostile the network is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkConfig {
    /// When false: short random delays and 10% loss of every message.
    pub unreliable: bool,
    /// When true: most responses are delayed by up to 2.2 s (reordering).
    pub long_reordering: bool,
}

/// Message, RPC and byte counters (6.824's `rpcCount`, `rpcTotal`, `bytesTotal`).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Requests sent, by anyone (a request/response pair is one RPC).
    pub rpcs_total: u64,
    /// Requests delivered to each node, by node index.
    pub rpcs_received: Vec<u64>,
    /// Bytes of requests sent plus responses delivered.
    pub bytes_total: u64,
    /// Messages lost to faults or disconnection.
    pub dropped: u64,
}

/// Who can talk to whom, and how badly.
#[derive(Clone, Debug)]
pub struct Network {
    /// The fault model.
    pub config: NetworkConfig,
    /// `connected[i]`: node index `i` is on the network.
    connected: Vec<bool>,
    /// `blocked[from][to]`: one-way link cut (for partitions finer than a node).
    blocked: Vec<Vec<bool>>,
    /// `clog_ms[from][to]`: extra delay on a one-way link (a clogged link
    /// delivers late, in order of its sends, rather than not at all).
    clog_ms: Vec<Vec<u64>>,
    /// Counters.
    pub counters: Counters,
    /// When `Some`, every message that arrives is appended here, in delivery
    /// order (off by default: it costs a clone per message). For tests that
    /// need to look at particular messages, e.g. count a follower's rejections.
    pub delivered: Option<Vec<Message>>,
}

/// A message's approximate encoded size: a fixed header plus its entries or
/// snapshot chunk (the codec in `node` is within a few bytes of this).
pub fn wire_size(m: &Message) -> u64 {
    const HEADER: u64 = 40;
    HEADER
        + match &m.body {
            MessageBody::AppendEntries(ae) => ae.entries.iter().map(|e| e.size_bytes()).sum(),
            MessageBody::InstallSnapshot(s) => s.data.len() as u64 + 8 * s.meta.membership.node_count() as u64,
            _ => 0,
        }
}

/// The node index of a node id (ids are 1-based, indices 0-based).
pub fn index_of(id: NodeId) -> usize {
    (id - 1) as usize
}

impl Network {
    /// A network of `n` nodes, all disconnected.
    pub fn new(n: usize) -> Self {
        Network {
            config: NetworkConfig::default(),
            connected: vec![false; n],
            blocked: vec![vec![false; n]; n],
            clog_ms: vec![vec![0; n]; n],
            counters: Counters { rpcs_received: vec![0; n], ..Default::default() },
            delivered: None,
        }
    }

    /// Adds a node (disconnected); returns its index.
    pub fn add_node(&mut self) -> usize {
        let n = self.connected.len();
        self.connected.push(false);
        for row in &mut self.blocked {
            row.push(false);
        }
        self.blocked.push(vec![false; n + 1]);
        for row in &mut self.clog_ms {
            row.push(0);
        }
        self.clog_ms.push(vec![0; n + 1]);
        self.counters.rpcs_received.push(0);
        n
    }

    /// Connects or disconnects node index `i`.
    pub fn set_connected(&mut self, i: usize, connected: bool) {
        self.connected[i] = connected;
    }

    /// Whether node index `i` is connected.
    pub fn is_connected(&self, i: usize) -> bool {
        self.connected[i]
    }

    /// Cuts or restores the one-way link `from -> to` (node indices).
    pub fn set_link_blocked(&mut self, from: usize, to: usize, blocked: bool) {
        self.blocked[from][to] = blocked;
    }

    /// Restores every link (node connectivity is unchanged).
    pub fn heal_links(&mut self) {
        for row in &mut self.blocked {
            row.fill(false);
        }
    }

    /// Clogs the one-way link `from -> to` with `ms` of extra delay (0 unclogs).
    pub fn set_clog(&mut self, from: usize, to: usize, ms: u64) {
        self.clog_ms[from][to] = ms;
    }

    /// Unclogs every link.
    pub fn unclog_all(&mut self) {
        for row in &mut self.clog_ms {
            row.fill(0);
        }
    }

    /// Whether a message can pass from `from` to `to` right now.
    pub fn can_pass(&self, from: usize, to: usize) -> bool {
        self.connected[from] && self.connected[to] && !self.blocked[from][to]
    }

    /// Decides the fate of a message being sent: `Some(delay_ms)` to deliver,
    /// `None` if it is lost. Counts it.
    pub fn plan(&mut self, rng: &mut Xoshiro256PlusPlus, m: &Message) -> Option<u64> {
        let (from, to) = (index_of(m.from), index_of(m.to));
        let request = m.body.is_request();
        if request {
            self.counters.rpcs_total += 1;
            self.counters.bytes_total += wire_size(m);
        }
        if !self.can_pass(from, to) {
            self.counters.dropped += 1;
            return None;
        }
        let mut delay = self.clog_ms[from][to];
        if self.config.unreliable {
            delay += rng.next_u64() % 27;
            if rng.next_u64() % 1000 < 100 {
                self.counters.dropped += 1;
                return None;
            }
        }
        if !request && self.config.long_reordering && rng.next_u64() % 900 < 600 {
            let spread = 1 + rng.next_u64() % 2000;
            delay += 200 + rng.next_u64() % spread;
        }
        Some(delay)
    }

    /// Whether a message still arrives (the link may have been cut in flight);
    /// counts it.
    pub fn arrive(&mut self, m: &Message) -> bool {
        let (from, to) = (index_of(m.from), index_of(m.to));
        if !self.can_pass(from, to) {
            self.counters.dropped += 1;
            return false;
        }
        if m.body.is_request() {
            self.counters.rpcs_received[to] += 1;
        } else {
            self.counters.bytes_total += wire_size(m);
        }
        if let Some(log) = self.delivered.as_mut() {
            log.push(m.clone());
        }
        true
    }
}
