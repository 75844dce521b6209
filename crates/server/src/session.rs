//! `RAFTKV.SESSION <client-id> <seq> <command> [arg ...]`: a key command
//! under a client session, so that a retry is applied exactly once (Raft
//! thesis §6.3).
//!
//! Plain Redis clients never need it. A client that retries (such as
//! [`crate::Client`]) picks a random non-zero client id, numbers its writes
//! 1, 2, 3, ... and sends a retry with the sequence of the request it
//! retries: the store applies the first copy that commits and answers every
//! later copy with the reply it cached (see the `kv` crate's *Client
//! sessions*). Only the last reply of a session is kept, so a client keeps
//! one write in flight per session. A read under the prefix is an ordinary
//! read (reads change nothing, so need no session).

use bytes::Bytes;

use crate::connection::Session;
use crate::resp::Frame;

/// The command's name, as clients send it.
pub const SESSION_COMMAND: &str = "RAFTKV.SESSION";

/// Splits `RAFTKV.SESSION id seq command...` into the session and the
/// wrapped command's arguments, or the error to answer.
pub(crate) fn parse(args: &[Bytes]) -> Result<(Session, &[Bytes]), Frame> {
    let [_, id, seq, command @ ..] = args else {
        return Err(usage());
    };
    if command.is_empty() {
        return Err(usage());
    }
    let number = |b: &Bytes| std::str::from_utf8(b).ok().and_then(|s| s.parse::<u64>().ok());
    match (number(id), number(seq)) {
        (Some(id), Some(seq)) if id != kv::NO_SESSION => Ok(((id, seq), command)),
        (Some(_), Some(_)) => Err(Frame::Error("ERR RAFTKV.SESSION client id must not be 0".into())),
        _ => Err(Frame::Error("ERR RAFTKV.SESSION client id and seq must be unsigned 64-bit integers".into())),
    }
}

fn usage() -> Frame {
    Frame::Error("ERR wrong number of arguments for 'raftkv.session' command (RAFTKV.SESSION <client-id> <seq> <command> [arg ...])".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_owned())).collect()
    }

    #[test]
    fn splits_session_and_command() {
        let a = args("RAFTKV.SESSION 7 3 INCR n");
        let ((id, seq), command) = parse(&a).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((id, seq), (7, 3));
        assert_eq!(command, &args("INCR n")[..]);
    }

    #[test]
    fn refuses_bad_sessions() {
        for bad in [
            "RAFTKV.SESSION",
            "RAFTKV.SESSION 7 3",
            "RAFTKV.SESSION 0 1 GET k",
            "RAFTKV.SESSION x 1 GET k",
            "RAFTKV.SESSION 1 -1 GET k",
        ] {
            assert!(matches!(parse(&args(bad)), Err(Frame::Error(_))), "{bad}");
        }
    }
}
