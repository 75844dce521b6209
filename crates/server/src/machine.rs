//! The glue between the replicated log and the key-value store: each log
//! command is an encoded [`kv::Request`].

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv::{Request, Response, Store};
use node::StateMachine;

/// [`kv::Store`] as the node's state machine.
#[derive(Default)]
pub struct KvMachine {
    /// The store.
    pub store: Store,
    /// The store's key count, published after every apply and restore, so
    /// `INFO keyspace` needs no lock on the store: a reader of the store
    /// waits while the applier holds it (during a restart's replay, a
    /// chunk of entries at a time) or restores a snapshot.
    key_count: Arc<AtomicU64>,
}

impl KvMachine {
    /// The published key count (see [`KvMachine`]), readable without the
    /// state machine: it lags the store by at most the entry being applied.
    pub fn key_count(&self) -> Arc<AtomicU64> {
        self.key_count.clone()
    }

    fn publish_key_count(&self) {
        self.key_count.store(self.store.key_count() as u64, Ordering::Relaxed);
    }
}

impl StateMachine for KvMachine {
    type Output = Response;

    fn apply(&mut self, index: u64, command: &[u8]) -> Response {
        let response = match Request::decode(command) {
            Ok(request) => self.store.apply(index, &request),
            // Every replica decodes the same bytes the same way: an entry that
            // does not decode fails identically everywhere and changes nothing.
            Err(e) => Response::Error(format!("ERR undecodable log entry {index}: {e}")),
        };
        self.publish_key_count();
        response
    }

    fn snapshot(&self, out: &mut dyn io::Write) -> io::Result<()> {
        self.store.snapshot(out)
    }

    fn restore(&mut self, input: &mut dyn io::Read) -> io::Result<()> {
        let restored = self.store.restore(input);
        self.publish_key_count();
        restored
    }
}
