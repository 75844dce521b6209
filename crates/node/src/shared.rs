//! The state machine as the applier and readers share it.
//!
//! The applier task is the only writer: it applies committed entries under
//! the write lock and, once the lock is released, publishes the new applied
//! index. A reader that sees an applied index of at least its read index and
//! then takes the read lock sees every entry up to it (the lock hands the
//! applier's writes over). So a read runs on the reader's own task: no trip
//! to the applier and back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft::Index;
use tokio::sync::watch;

use crate::error::NodeError;

/// A state machine behind a lock, with its applied index published.
pub(crate) struct SharedMachine<SM> {
    sm: RwLock<SM>,
    applied: watch::Sender<Applied>,
    /// A restore failed part way: the state is neither the old nor the new.
    broken: AtomicBool,
}

/// What readers wait on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Applied {
    index: Index,
    /// The applier is gone: nothing more will be applied.
    stopped: bool,
}

impl<SM> SharedMachine<SM> {
    /// `sm` with everything up to `applied` in it.
    pub fn new(sm: SM, applied: Index) -> Self {
        SharedMachine {
            sm: RwLock::new(sm),
            applied: watch::Sender::new(Applied { index: applied, stopped: false }),
            broken: AtomicBool::new(false),
        }
    }

    /// Replaces the state with `restore`'s under the write lock. If it
    /// fails, the state is half the old one and half the new: no read is
    /// served from it again.
    pub fn restore<E>(&self, restore: impl FnOnce(&mut SM) -> Result<(), E>) -> Result<(), NodeError>
    where
        E: std::fmt::Display,
    {
        let mut sm = self.write()?;
        restore(&mut sm).map_err(|e| {
            self.broken.store(true, Ordering::SeqCst);
            NodeError::Storage(format!("restoring the snapshot: {e}"))
        })
    }

    /// For the applier, the only writer. A poisoned lock means an apply
    /// panicked: the state is unknown and the applier must stop.
    pub fn write(&self) -> Result<RwLockWriteGuard<'_, SM>, NodeError> {
        self.sm.write().map_err(|_| poisoned())
    }

    /// For the applier's snapshots (readers may go on meanwhile).
    pub fn snapshot_view(&self) -> Result<RwLockReadGuard<'_, SM>, NodeError> {
        self.sm.read().map_err(|_| poisoned())
    }

    /// Announces that everything up to `index` is applied. Call only after
    /// the write lock that applied it is released. Never goes back.
    pub fn publish_applied(&self, index: Index) {
        self.applied.send_if_modified(|applied| {
            let advanced = index > applied.index;
            applied.index = applied.index.max(index);
            advanced
        });
    }

    /// The last index published as applied.
    pub fn applied_index(&self) -> Index {
        self.applied.borrow().index
    }

    /// Announces that the applier stopped: readers waiting for more fail.
    pub fn close(&self) {
        self.applied.send_modify(|applied| applied.stopped = true);
    }

    /// Runs `read` once everything up to `index` is applied (at once when it
    /// already is). `index` 0 reads the state as it is now.
    pub async fn read_at<R>(&self, index: Index, read: impl FnOnce(&SM) -> R) -> Result<R, NodeError> {
        if self.applied.borrow().index < index {
            let mut applied = self.applied.subscribe();
            // The sender lives as long as `self`: waiting cannot fail.
            let seen = applied.wait_for(|a| a.index >= index || a.stopped).await.map(|a| *a);
            if seen.is_ok_and(|a| a.index < index) {
                return Err(NodeError::Stopped);
            }
        }
        let sm = self.sm.read().map_err(|_| poisoned())?;
        if self.broken.load(Ordering::SeqCst) {
            return Err(NodeError::Storage("the state machine failed to restore a snapshot".into()));
        }
        Ok(read(&sm))
    }
}

fn poisoned() -> NodeError {
    NodeError::Storage("the state machine panicked while applying an entry".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_read_waits_until_its_index_is_published() {
        let shared = Arc::new(SharedMachine::new(0u64, 3));
        assert_eq!(shared.read_at(3, |v| *v).await.unwrap(), 0);
        let reader = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.read_at(5, |v| *v).await.unwrap() })
        };
        tokio::task::yield_now().await;
        assert!(!reader.is_finished());
        for index in 4..=5 {
            *shared.write().unwrap() = index;
            shared.publish_applied(index);
        }
        assert_eq!(reader.await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_failed_restore_serves_no_read_again() {
        let shared = SharedMachine::new(vec![1, 2], 2);
        let failed = shared.restore(|sm| {
            sm.push(3); // part of the new state made it in
            Err("the snapshot ended early")
        });
        assert!(matches!(failed, Err(NodeError::Storage(_))), "{failed:?}");
        assert!(shared.read_at(0, |sm| sm.clone()).await.is_err(), "a half-restored state was read");
        assert!(shared.read_at(2, |sm| sm.clone()).await.is_err());
    }

    #[test]
    fn the_applied_index_never_goes_back() {
        let shared = SharedMachine::new((), 7);
        shared.publish_applied(4);
        assert_eq!(shared.applied.borrow().index, 7);
    }

    #[tokio::test]
    async fn a_waiting_read_fails_when_the_applier_stops() {
        let shared = Arc::new(SharedMachine::new((), 1));
        let reader = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.read_at(2, |_| ()).await })
        };
        tokio::task::yield_now().await;
        shared.close();
        assert!(matches!(reader.await.unwrap(), Err(NodeError::Stopped)));
        assert!(shared.read_at(1, |_| ()).await.is_ok(), "what was applied can still be read");
    }
}
