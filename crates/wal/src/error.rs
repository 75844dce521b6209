//! Error values of the WAL.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use raft::Index;
use thiserror::Error;

/// An error from a write operation. Every one is fatal: once a [`Wal`](crate::Wal)
/// has returned one it refuses all further work with the same error, and the
/// runtime must stop (a failed `fsync` is never retried: after one, the kernel
/// may have dropped the dirty pages, so retrying can report success for data
/// that is gone).
#[derive(Clone, Debug, Error)]
pub enum WalError {
    /// A write, sync, create, rename or remove failed.
    #[error("fatal IO error during {op} on {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: Arc<io::Error>,
    },
    /// Appended entries do not continue the log: a driver bug.
    #[error("append at index {got} would leave a hole after {last}")]
    Hole {
        /// The last index in the log.
        last: Index,
        /// The index that was offered.
        got: Index,
    },
    /// An entry's encoding exceeds the record size limit.
    #[error("entry {index} encodes to {len} bytes, above the record limit")]
    TooLarge {
        /// The entry's index.
        index: Index,
        /// Its encoded length.
        len: usize,
    },
    /// The writer thread is gone (shut down, or it panicked).
    #[error("the WAL writer has stopped")]
    Stopped,
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io { op, path: path.into(), source: Arc::new(source) }
    }
}

/// Why a WAL directory could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// Reading or repairing the directory failed.
    #[error("IO error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The directory holds damaged or inconsistent data. Opening refuses so
    /// that an operator looks at it (and, usually, rebuilds this node from
    /// its peers) instead of the node serving a log that lost entries.
    #[error("corrupt WAL: {} at byte offset {offset}: {what}", path.display())]
    Corrupt {
        /// The damaged file (or the directory, for a missing file).
        path: PathBuf,
        /// Where in the file the damage starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

impl OpenError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        OpenError::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        OpenError::Corrupt { path: path.into(), offset, what: what.into() }
    }
}
