//! `raftkv::Client`: an async Rust client that finds the leader, follows
//! `-MOVED`, retries what is safe to retry, and makes retried writes
//! exactly-once.
//!
//! ```no_run
//! # async fn demo() -> Result<(), raftkv::ClientError> {
//! use raftkv::{Client, ClientConfig};
//!
//! let nodes = vec!["127.0.0.1:6381".parse().unwrap(), "127.0.0.1:6382".parse().unwrap()];
//! let mut client = Client::new(ClientConfig::new(nodes))?;
//! client.set("greeting", "hello").await?;
//! assert_eq!(client.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//! assert_eq!(client.incr("visits").await?, 1);
//! # Ok(()) }
//! ```
//!
//! # Retries
//!
//! Each call has a deadline ([`ClientConfig::deadline`]). Until it passes,
//! the client
//!
//! - follows `-MOVED <slot> <addr>` to the leader it names (nothing ran);
//! - on `-CLUSTERDOWN` (no leader known), `-TRYAGAIN` (refused, nothing
//!   ran), a refused connection or a node that does not answer, backs off
//!   (doubling from [`ClientConfig::backoff_min`] to
//!   [`ClientConfig::backoff_max`]) and tries the next node;
//! - on `-TIMEOUT` or a connection lost after sending, resends the command
//!   if that is safe: reads always, key-value writes always, because they
//!   carry a session (below); anything else (admin commands) is not resent
//!   and the call ends with [`ClientError::OutcomeUnknown`].
//!
//! When the deadline passes, the call fails with
//! [`ClientError::OutcomeUnknown`] if any attempt may have been applied,
//! and [`ClientError::Unavailable`] (definite: nothing was applied) if none
//! could have been.
//!
//! # Exactly-once writes (Raft thesis §6.3)
//!
//! Every client has a random session id; its key-value writes are numbered
//! 1, 2, 3, ... and sent as `RAFTKV.SESSION <id> <seq> <command...>` (see
//! the server's [`SESSION_COMMAND`]). A
//! resend reuses the sequence of the write it resends, so the store applies
//! it once however many copies reach the log, and the copy that answers
//! carries the reply of the one that was applied. A call therefore has one
//! write in flight: a `Client` is used by one task at a time (`&mut self`);
//! run several clients for concurrency. A write whose outcome stayed unknown
//! can never be applied after the client's next write (the store refuses
//! older sequences), though it may have been applied before.
//!
//! Not supported: MULTI/EXEC (connection state does not survive a
//! failover) and pipelining.

mod commands;
mod conn;
mod error;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use error::ClientError;

use crate::resp::Frame;
use crate::session::SESSION_COMMAND;
use conn::{Conn, ConnError};

/// How a [`Client`] finds nodes and how long it keeps trying.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Client addresses of (some of) the cluster's nodes; any one that is up
    /// is enough to find the leader.
    pub nodes: Vec<SocketAddr>,
    /// How long one call may take, retries included.
    pub deadline: Duration,
    /// How long one attempt may take to connect, to send, and to get its reply.
    pub attempt_timeout: Duration,
    /// The first pause between retries.
    pub backoff_min: Duration,
    /// The longest pause between retries. An election takes a few hundred
    /// milliseconds; a longer pause would add itself to every failover the
    /// client sees.
    pub backoff_max: Duration,
    /// Sent with `AUTH` on every new connection, when set.
    pub password: Option<String>,
    /// The session id; `None` picks a random one. Two clients must never
    /// share one.
    pub session_id: Option<u64>,
}

impl ClientConfig {
    /// Defaults: 10 s per call, 2 s per attempt, backoff 10 ms to 100 ms.
    pub fn new(nodes: Vec<SocketAddr>) -> Self {
        ClientConfig {
            nodes,
            deadline: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            password: None,
            session_id: None,
        }
    }
}

/// What kind of command a call sends, which decides what is safe to resend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A key-value read: changes nothing, always safe to resend.
    Read,
    /// A key-value write: sent under the session, safe to resend with its sequence.
    Write,
    /// Anything else (INFO, RAFT.*, PING): resent only when it cannot have run.
    Other,
}

fn kind(args: &[Bytes]) -> Kind {
    match kv::Command::parse(args) {
        Ok(command) if command.is_write() => Kind::Write,
        Ok(_) => Kind::Read,
        Err(_) => Kind::Other,
    }
}

/// What one reply means for the call.
enum Verdict {
    /// The answer (possibly an error of the command itself).
    Done(Result<Frame, ClientError>),
    /// Try the named leader; nothing ran.
    Moved(SocketAddr),
    /// Try another node after a pause; nothing ran.
    Elsewhere(String),
    /// Try again after a pause; nothing ran.
    Again(String),
    /// It may have run.
    Unknown(String),
}

fn judge(frame: Frame) -> Verdict {
    let Frame::Error(e) = frame else { return Verdict::Done(Ok(frame)) };
    let code = e.split(' ').next().unwrap_or_default();
    match code {
        "MOVED" => match e.split(' ').nth(2).and_then(|a| a.parse().ok()) {
            Some(addr) => Verdict::Moved(addr),
            None => Verdict::Done(Err(ClientError::Command(e))),
        },
        "CLUSTERDOWN" => Verdict::Elsewhere(e),
        "TRYAGAIN" => Verdict::Again(e),
        "TIMEOUT" => Verdict::Unknown(e),
        _ if e.starts_with(kv::STALE_REQUEST_PREFIX) => {
            // Only the session's last reply is kept; ours is gone, so we cannot learn it.
            Verdict::Done(Err(ClientError::OutcomeUnknown(e)))
        }
        _ => Verdict::Done(Err(ClientError::Command(e))),
    }
}

/// An async client of a raftkv cluster (see the [module docs](self)).
pub struct Client {
    config: ClientConfig,
    session_id: u64,
    /// The sequence the next write gets.
    next_seq: u64,
    /// The node to talk to next: the leader when known.
    target: SocketAddr,
    /// Where in `config.nodes` the last fallback was.
    next_node: usize,
    conn: Option<Conn>,
}

impl Client {
    /// A client of the cluster that `config.nodes` belong to. It connects
    /// lazily, on the first call.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let Some(&first) = config.nodes.first() else {
            return Err(ClientError::Invalid("no node addresses given".into()));
        };
        let session_id = match config.session_id {
            Some(kv::NO_SESSION) => return Err(ClientError::Invalid("session id 0 means no session".into())),
            Some(id) => id,
            None => random_session_id(),
        };
        Ok(Client { config, session_id, next_seq: 1, target: first, next_node: 0, conn: None })
    }

    /// This client's session id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The node the client sends to next: the leader, once a call found it.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Finds the leader (following redirects from whichever node answers) and
    /// returns its client address.
    pub async fn find_leader(&mut self) -> Result<SocketAddr, ClientError> {
        // DBSIZE is a linearizable read, so only the leader answers it.
        self.command(["DBSIZE"]).await?;
        Ok(self.target)
    }

    /// Sends one command (name and arguments) and returns its reply; an error
    /// reply of the command itself is [`ClientError::Command`].
    pub async fn command<A: Into<Bytes>>(&mut self, args: impl IntoIterator<Item = A>) -> Result<Frame, ClientError> {
        let args: Vec<Bytes> = args.into_iter().map(Into::into).collect();
        if args.is_empty() {
            return Err(ClientError::Invalid("empty command".into()));
        }
        let kind = kind(&args);
        let wire = match kind {
            Kind::Write => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let mut wire = vec![
                    Bytes::from_static(SESSION_COMMAND.as_bytes()),
                    Bytes::from(self.session_id.to_string()),
                    Bytes::from(seq.to_string()),
                ];
                wire.extend(args);
                wire
            }
            Kind::Read | Kind::Other => args,
        };
        self.call(&wire, kind).await
    }

    /// The retry loop of the [module docs](self).
    async fn call(&mut self, wire: &[Bytes], kind: Kind) -> Result<Frame, ClientError> {
        let started = Instant::now();
        let deadline = started + self.config.deadline;
        let mut backoff = self.config.backoff_min;
        let mut maybe_applied = false;
        let mut redirects = 0u32;
        loop {
            let (pause, last) = match self.attempt(wire).await {
                Ok(frame) => match judge(frame) {
                    Verdict::Done(result) => return result,
                    Verdict::Moved(addr) => {
                        self.retarget(addr);
                        redirects += 1;
                        // The first redirect is followed at once; more mean a
                        // leader change under way, worth a pause.
                        (redirects > 1, format!("redirected to {addr}"))
                    }
                    Verdict::Elsewhere(why) => {
                        self.fall_back();
                        (true, why)
                    }
                    Verdict::Again(why) => (true, why),
                    Verdict::Unknown(why) if kind == Kind::Other => return Err(ClientError::OutcomeUnknown(why)),
                    Verdict::Unknown(why) => {
                        maybe_applied |= kind == Kind::Write;
                        (true, why)
                    }
                },
                Err(ConnError::NotSent(why)) => {
                    self.drop_conn_and_fall_back();
                    (true, why)
                }
                Err(ConnError::Lost(why)) if kind == Kind::Other => {
                    self.conn = None;
                    return Err(ClientError::OutcomeUnknown(why));
                }
                Err(ConnError::Lost(why)) => {
                    maybe_applied |= kind == Kind::Write;
                    self.drop_conn_and_fall_back();
                    (true, why)
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(if maybe_applied {
                    ClientError::OutcomeUnknown(last)
                } else {
                    ClientError::Unavailable { waited: now - started, last }
                });
            }
            if pause {
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(self.config.backoff_max);
            }
        }
    }

    /// One exchange with the target, connecting (and authenticating) first if needed.
    async fn attempt(&mut self, wire: &[Bytes]) -> Result<Frame, ConnError> {
        let timeout = self.config.attempt_timeout;
        if self.conn.is_none() {
            let mut conn = Conn::connect(self.target, timeout).await?;
            if let Some(password) = &self.config.password {
                let auth = [Bytes::from_static(b"AUTH"), Bytes::from(password.clone())];
                match conn.call(&auth, timeout).await {
                    Ok(Frame::Error(e)) => return Ok(Frame::Error(e)),
                    Ok(_) => {}
                    // AUTH changes nothing: a lost reply is as good as not sent.
                    Err(ConnError::Lost(why) | ConnError::NotSent(why)) => return Err(ConnError::NotSent(why)),
                }
            }
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else { return Err(ConnError::NotSent("no connection".into())) };
        conn.call(wire, timeout).await
    }

    fn retarget(&mut self, addr: SocketAddr) {
        if self.target != addr {
            self.target = addr;
            self.conn = None;
        }
    }

    /// The next configured node, round-robin.
    fn fall_back(&mut self) {
        self.next_node = (self.next_node + 1) % self.config.nodes.len();
        let next = self.config.nodes[self.next_node];
        self.retarget(next);
    }

    fn drop_conn_and_fall_back(&mut self) {
        self.conn = None;
        self.fall_back();
    }
}

/// A random non-zero 64-bit id, from the standard library's per-process
/// random hasher keys, the clock and a counter.
fn random_session_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_owned())).collect()
    }

    #[test]
    fn kinds_decide_what_may_be_resent() {
        assert_eq!(kind(&args("GET k")), Kind::Read);
        assert_eq!(kind(&args("INCR k")), Kind::Write);
        assert_eq!(kind(&args("SET k v")), Kind::Write);
        assert_eq!(kind(&args("INFO raft")), Kind::Other);
        assert_eq!(kind(&args("RAFT.NODE REMOVE 3")), Kind::Other);
    }

    #[test]
    fn replies_are_judged_by_their_code() {
        assert!(matches!(judge(Frame::Integer(1)), Verdict::Done(Ok(Frame::Integer(1)))));
        assert!(matches!(judge(Frame::Error("MOVED 12 127.0.0.1:7000".into())), Verdict::Moved(a) if a.port() == 7000));
        assert!(matches!(judge(Frame::Error("CLUSTERDOWN no leader".into())), Verdict::Elsewhere(_)));
        assert!(matches!(judge(Frame::Error("TRYAGAIN leadership transfer".into())), Verdict::Again(_)));
        assert!(matches!(judge(Frame::Error("TIMEOUT the outcome is unknown".into())), Verdict::Unknown(_)));
        let stale = format!("{} 3 of client 9 is older than its last request 4", kv::STALE_REQUEST_PREFIX);
        assert!(matches!(judge(Frame::Error(stale)), Verdict::Done(Err(ClientError::OutcomeUnknown(_)))));
        assert!(matches!(judge(Frame::Error("WRONGTYPE x".into())), Verdict::Done(Err(ClientError::Command(_)))));
    }

    #[test]
    fn session_ids_are_non_zero_and_differ() {
        let (a, b) = (random_session_id(), random_session_id());
        assert!(a != 0 && b != 0 && a != b);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_definite_failure() {
        // A port nobody listens on: bind, read the port, close.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        let Ok(addr) = addr else { return };
        let mut config = ClientConfig::new(vec![addr]);
        config.deadline = Duration::from_millis(200);
        let Ok(mut client) = Client::new(config) else { panic!("valid config") };
        let result = client.set("k", "v").await;
        assert!(matches!(result, Err(ClientError::Unavailable { .. })), "{result:?}");
        assert!(result.err().is_some_and(|e| e.is_definite()));
    }
}
