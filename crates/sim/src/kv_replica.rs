//! The key-value state machine of one simulated node: a [`kv::Store`] fed
//! from the node's committed entries, and the replies a server would hand
//! back to the clients waiting on those entries.
//!
//! The store lives in [`SimNode::kv`](crate::node::SimNode::kv) when
//! [`ClusterOptions::kv`](crate::ClusterOptions::kv) is set. A crash loses it
//! (it is memory); a restart rebuilds it from the durable snapshot, and the
//! core then re-applies the log after it. Snapshots carry the store's own
//! snapshot format (`kv`'s streaming snapshot, checksummed) after the
//! simulator's record of applied values, so InstallSnapshot moves a real KV
//! snapshot between nodes.

use std::collections::BTreeMap;

use raft::Index;

use kv::{Request, Response, Store};

/// What a server tells the client whose request was applied at an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The request's session id.
    pub client_id: u64,
    /// The request's sequence number.
    pub seq: u64,
    /// The store's answer.
    pub response: Response,
}

/// A node's store and the replies not yet collected by clients.
#[derive(Debug, Default)]
pub struct KvReplica {
    /// The state machine.
    pub store: Store,
    /// Replies to session requests applied by this incarnation, by log index.
    /// A client that proposed at an index takes its reply from here (and
    /// checks it is for its own request: another may have won the index).
    pub replies: BTreeMap<Index, Reply>,
}

impl KvReplica {
    /// An empty store.
    pub fn new() -> Self {
        KvReplica::default()
    }

    /// A store restored from `kv` snapshot bytes.
    pub fn restore(data: &[u8]) -> Result<Self, String> {
        let mut store = Store::new();
        let mut input = data;
        store.restore(&mut input).map_err(|e| format!("kv snapshot does not restore: {e}"))?;
        Ok(KvReplica { store, replies: BTreeMap::new() })
    }

    /// The store's snapshot bytes.
    pub fn snapshot(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.store.snapshot(&mut out).map_err(|e| format!("kv snapshot failed: {e}"))?;
        Ok(out)
    }

    /// Applies the command committed at `index` (`None`: a no-op or
    /// configuration entry, which the store never sees). Bytes that are not
    /// a request are an error: every command in a KV run comes from a client
    /// of this module.
    pub fn apply(&mut self, index: Index, command: Option<&[u8]>) -> Result<(), String> {
        let Some(bytes) = command else { return Ok(()) };
        let request = Request::decode(bytes).map_err(|e| format!("entry {index} is not a kv request: {e}"))?;
        let response = self.store.apply(index, &request);
        if request.client_id != kv::NO_SESSION {
            self.replies.insert(index, Reply { client_id: request.client_id, seq: request.seq, response });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::Bytes;
    use kv::{Command, RequestBody};

    fn set(client_id: u64, seq: u64, key: &str, value: &str) -> Vec<u8> {
        let args = ["SET", key, value].map(|a| Bytes::from(a.to_string()));
        let body = RequestBody::Command(Command::parse(&args).unwrap());
        Request { client_id, seq, time_ms: 1, body }.encode()
    }

    #[test]
    fn a_retried_request_is_applied_once_and_answered_again() {
        let mut r = KvReplica::new();
        r.apply(1, Some(&set(7, 1, "k", "a"))).unwrap();
        r.apply(2, None).unwrap();
        r.apply(3, Some(&set(7, 1, "k", "a"))).unwrap();
        assert_eq!(r.replies[&1].response, Response::ok());
        assert_eq!(r.replies[&3].response, Response::ok());
        assert!(!r.replies.contains_key(&2));
        let snap = r.snapshot().unwrap();
        let restored = KvReplica::restore(&snap).unwrap();
        assert_eq!(restored.store.key_count(), 1);
        assert_eq!(restored.store.applied_index(), 3);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut r = KvReplica::new();
        assert!(r.apply(1, Some(b"\x09junk")).is_err());
        assert!(KvReplica::restore(b"not a snapshot").is_err());
    }
}
