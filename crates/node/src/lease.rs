//! The leader's lease as readers see it (thesis §6.4.1).
//!
//! Under lease reads the core publishes, after every step, the lease it
//! holds: until when, by the monotonic clock, and the index reads must wait
//! for. A reader that finds the lease unexpired reads without a trip to the
//! core at all; otherwise it asks the core, which confirms leadership with a
//! heartbeat round. The core unpublishes the lease before it sends anything
//! that ends it early (TimeoutNow).

use std::sync::Mutex;
use std::time::Instant;

use raft::Index;

/// The lease the core last published.
#[derive(Debug, Default)]
pub(crate) struct PublishedLease {
    lease: Mutex<Option<(Instant, Index)>>,
}

impl PublishedLease {
    /// Publishes a lease ending at `until` for reads at `index`, or none.
    pub(crate) fn publish(&self, lease: Option<(Instant, Index)>) {
        if let Ok(mut held) = self.lease.lock() {
            *held = lease;
        }
    }

    /// The index a linearizable read at `now` waits for, if the lease covers
    /// `now`.
    pub(crate) fn read_index(&self, now: Instant) -> Option<Index> {
        let held = *self.lease.lock().ok()?;
        held.and_then(|(until, index)| (now < until).then_some(index))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_lease_serves_reads_until_it_ends() {
        let lease = PublishedLease::default();
        let now = Instant::now();
        assert_eq!(lease.read_index(now), None);
        lease.publish(Some((now + Duration::from_millis(100), 7)));
        assert_eq!(lease.read_index(now), Some(7));
        assert_eq!(lease.read_index(now + Duration::from_millis(100)), None, "ended");
        lease.publish(None);
        assert_eq!(lease.read_index(now), None);
    }
}
