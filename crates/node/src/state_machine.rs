//! What the application plugs in.

use std::io;

use raft::Index;

/// The replicated state machine. The node applies commands from one task,
/// in log order, exactly once per committed command — across restarts too,
/// because after a restart it is restored from the latest snapshot and only
/// the commands after it are applied again. Reads ([`Node::read`]) run on
/// the readers' tasks, between applies, so the state machine is `Sync`.
///
/// [`apply`](Self::apply) runs on the node's tokio runtime, a batch of
/// committed entries at a time: it must compute, not block (no disk or
/// network IO, no waiting on locks held for long). [`snapshot`](Self::snapshot)
/// and [`restore`](Self::restore) run on the runtime's blocking pool and
/// may do IO.
///
/// [`Node::read`]: crate::Node::read
pub trait StateMachine: Send + Sync + 'static {
    /// What applying a command returns to its proposer.
    type Output: Send + 'static;

    /// Applies the committed command at `index`.
    fn apply(&mut self, index: Index, command: &[u8]) -> Self::Output;

    /// Writes the whole state (as of the last applied index) to `out`.
    fn snapshot(&self, out: &mut dyn io::Write) -> io::Result<()>;

    /// Replaces the whole state with a snapshot read from `input`.
    fn restore(&mut self, input: &mut dyn io::Read) -> io::Result<()>;
}
