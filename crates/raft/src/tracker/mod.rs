//! What a leader knows of each follower's log (Figure 2, "Volatile state on
//! leaders"), and the window of AppendEntries it has in flight to each.

mod inflights;
mod progress;

pub use inflights::Inflights;
pub use progress::{Progress, ProgressState};
