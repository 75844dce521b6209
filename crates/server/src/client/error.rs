//! What can go wrong for a [`Client`](super::Client) call.

use std::time::Duration;

use crate::resp::Frame;

/// Why a client call did not return a result.
///
/// The one distinction that matters to a caller is [`ClientError::is_definite`]:
/// a definite error means the command was not applied; an unknown outcome
/// means it may or may not have been, and the caller must not report it as
/// a failure (nor blindly resend it, unless it is idempotent).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The command ran and answered an error (`WRONGTYPE`, `ERR value is not
    /// an integer`, a bad argument...). Like Redis, such a command changed
    /// nothing. Definite.
    #[error("{0}")]
    Command(String),
    /// No node accepted the command before the deadline (no leader, nodes
    /// down or unreachable), and no attempt may have been applied. Definite.
    #[error("no node accepted the command within {waited:?}: {last}")]
    Unavailable {
        /// How long the client tried.
        waited: Duration,
        /// The last problem seen.
        last: String,
    },
    /// The command may or may not have been applied: a reply was lost after
    /// it was sent (connection closed, reply timeout, `-TIMEOUT`), and
    /// retrying did not settle it before the deadline (or the command is
    /// not a key command, so the client does not resend it).
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The reply had a type the typed helper does not expect (the command
    /// ran). Definite as to execution, but the value is not usable.
    #[error("unexpected reply {0:?}")]
    UnexpectedReply(Frame),
    /// The client is misconfigured (no nodes given, bad argument).
    #[error("invalid client use: {0}")]
    Invalid(String),
}

impl ClientError {
    /// Whether the command is known to have had no effect (or, for
    /// [`ClientError::UnexpectedReply`], a known effect). `false` only for
    /// [`ClientError::OutcomeUnknown`].
    pub fn is_definite(&self) -> bool {
        !matches!(self, ClientError::OutcomeUnknown(_))
    }
}
