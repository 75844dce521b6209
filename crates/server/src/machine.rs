//! The glue between the replicated log and the key-value store: each log
//! command is an encoded [`kv::Request`].

use std::io;

use kv::{Request, Response, Store};
use node::StateMachine;

/// [`kv::Store`] as the node's state machine.
#[derive(Default)]
pub struct KvMachine {
    /// The store.
    pub store: Store,
}

impl StateMachine for KvMachine {
    type Output = Response;

    fn apply(&mut self, index: u64, command: &[u8]) -> Response {
        match Request::decode(command) {
            Ok(request) => self.store.apply(index, &request),
            // Every replica decodes the same bytes the same way: an entry that
            // does not decode fails identically everywhere and changes nothing.
            Err(e) => Response::Error(format!("ERR undecodable log entry {index}: {e}")),
        }
    }

    fn snapshot(&self, out: &mut dyn io::Write) -> io::Result<()> {
        self.store.snapshot(out)
    }

    fn restore(&mut self, input: &mut dyn io::Read) -> io::Result<()> {
        self.store.restore(input)
    }
}
