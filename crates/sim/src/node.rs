//! One simulated node: a Raft core, its "disk", and the driver that carries
//! out the core's actions exactly as the contract in `raft`'s docs says.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use raft::{Entry, HardState, Index, MemStorage, Message, NodeId, Raft, SnapshotMeta};

use crate::invariants::{ShadowLog, empty_shadow, shadow_append};
use crate::kv_replica::KvReplica;

/// A write the core asked for that is not yet durable.
#[derive(Clone, Debug)]
pub enum IoOp {
    /// `Action::PersistHardState`.
    HardState(HardState),
    /// `Action::PersistEntries`.
    Entries(Vec<Entry>),
    /// `Action::PersistSnapshotChunk`.
    SnapshotChunk {
        /// Offset of the chunk.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// `Action::InstallSnapshot`.
    InstallSnapshot(SnapshotMeta),
}

/// What a state machine applied at an index: the command, or `None` for a
/// no-op or configuration entry.
pub type Applied = Option<Bytes>;

/// One node of the simulated cluster.
#[derive(Debug)]
pub struct SimNode {
    /// The node's id (index + 1).
    pub id: NodeId,
    /// The running core, or `None` while crashed.
    pub raft: Option<Raft<MemStorage>>,
    /// What survives a crash.
    pub disk: MemStorage,
    /// Bumped at each restart, so events of a dead incarnation are ignored.
    pub incarnation: u64,
    /// Writes handed to the disk, not yet durable, in order, with their sequence number.
    pub io_queue: VecDeque<(u64, IoOp)>,
    /// Sequence number of the last write submitted.
    pub io_submitted: u64,
    /// Whether a completion event is scheduled.
    pub io_scheduled: bool,
    /// Messages that must wait until writes up to the sequence number are durable.
    pub held: VecDeque<(u64, Message)>,
    /// The snapshot being received (chunks durable so far).
    pub partial_snapshot: BytesMut,
    /// The state machine: what was applied at each index. Survives restarts
    /// (like 6.824's `cfg.logs`); a restored snapshot replaces it.
    pub applied: BTreeMap<Index, Applied>,
    /// The last index this incarnation applied.
    pub last_applied: Index,
    /// The checker's view of this node's log.
    pub shadow: ShadowLog,
    /// The key-value store, in a KV run ([`crate::ClusterOptions::kv`]).
    /// Memory: a crash loses it, a restart rebuilds it from the snapshot.
    pub kv: Option<KvReplica>,
}

impl SimNode {
    /// A node that has never run, with a bootstrapped disk.
    pub fn new(id: NodeId, disk: MemStorage) -> Self {
        SimNode {
            id,
            raft: None,
            disk,
            incarnation: 0,
            io_queue: VecDeque::new(),
            io_submitted: 0,
            io_scheduled: false,
            held: VecDeque::new(),
            partial_snapshot: BytesMut::new(),
            applied: BTreeMap::new(),
            last_applied: 0,
            shadow: empty_shadow(),
            kv: None,
        }
    }

    /// Whether the node is running.
    pub fn is_up(&self) -> bool {
        self.raft.is_some()
    }

    /// Sequence number up to which writes are durable.
    pub fn io_durable(&self) -> u64 {
        self.io_queue.front().map_or(self.io_submitted, |(seq, _)| seq - 1)
    }

    /// Queues a write.
    pub fn submit(&mut self, op: IoOp) {
        if let IoOp::Entries(entries) = &op {
            shadow_append(&mut self.shadow, entries);
        }
        self.io_submitted += 1;
        self.io_queue.push_back((self.io_submitted, op));
    }

    /// Makes one queued write durable on the disk. Returns what the core must
    /// be told, if anything.
    pub fn make_durable(&mut self, op: &IoOp) -> Option<Durable> {
        match op {
            IoOp::HardState(hs) => {
                self.disk.set_hard_state(*hs);
                None
            }
            IoOp::Entries(entries) => {
                self.disk.append(entries);
                entries.last().map(|e| Durable::Entries(e.index, e.term))
            }
            IoOp::SnapshotChunk { offset, data } => {
                if *offset == 0 {
                    self.partial_snapshot.clear();
                }
                if self.partial_snapshot.len() as u64 == *offset {
                    self.partial_snapshot.extend_from_slice(data);
                }
                None
            }
            IoOp::InstallSnapshot(meta) => {
                let data = self.partial_snapshot.split().freeze();
                self.disk.install_snapshot(meta.clone(), data.clone());
                Some(Durable::Snapshot(meta.clone(), data))
            }
        }
    }

    /// A crash: writes not yet durable are lost, except a random prefix of them
    /// that happened to reach the disk (the last of which may be torn: only
    /// some of its entries made it). `keep` and `torn` choose that prefix.
    pub fn crash(&mut self, keep: usize, torn: usize) {
        let queue: Vec<(u64, IoOp)> = self.io_queue.drain(..).collect();
        for (i, (_, op)) in queue.into_iter().enumerate() {
            if i < keep {
                self.make_durable(&op);
            } else if i == keep {
                if let IoOp::Entries(entries) = op {
                    let n = torn.min(entries.len());
                    self.disk.append(&entries[..n]);
                }
                break;
            }
        }
        self.raft = None;
        self.held.clear();
        self.io_scheduled = false;
        self.partial_snapshot.clear();
        self.kv = None;
    }
}

/// A completed write the core needs to hear about.
#[derive(Clone, Debug)]
pub enum Durable {
    /// Entries up to `(index, term)` are durable.
    Entries(Index, u64),
    /// A received snapshot is installed on disk; restore the state machine.
    Snapshot(SnapshotMeta, Bytes),
}

/// Encodes a state machine's applied log up to `index` as snapshot data (the
/// 6.824 tester's snapshot: the index and every value up to it).
pub fn encode_snapshot(applied: &BTreeMap<Index, Applied>, index: Index) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&index.to_le_bytes());
    for i in 1..=index {
        match applied.get(&i).cloned().flatten() {
            Some(v) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(&v);
            }
            None => out.extend_from_slice(&[0]),
        }
    }
    out.freeze()
}

/// Decodes [`encode_snapshot`]'s output, or says what is wrong with it.
pub fn decode_snapshot(data: &[u8]) -> Result<(Index, BTreeMap<Index, Applied>), String> {
    decode_snapshot_with_rest(data).map(|(index, applied, _)| (index, applied))
}

/// What [`decode_snapshot_with_rest`] reads: the index, the applied values
/// and the bytes after them.
pub type DecodedSnapshot<'a> = (Index, BTreeMap<Index, Applied>, &'a [u8]);

/// [`decode_snapshot`], also returning the bytes after the encoded log (a
/// KV run appends the store's snapshot there).
pub fn decode_snapshot_with_rest(data: &[u8]) -> Result<DecodedSnapshot<'_>, String> {
    let mut rest = data;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(format!("snapshot truncated: need {n} bytes, have {}", rest.len()));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let index = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "bad index")?);
    let mut applied = BTreeMap::new();
    for i in 1..=index {
        let value = match take(1)?[0] {
            0 => None,
            _ => {
                let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "bad length")?) as usize;
                Some(Bytes::copy_from_slice(take(len)?))
            }
        };
        applied.insert(i, value);
    }
    Ok((index, applied, rest))
}
