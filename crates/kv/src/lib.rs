//! The key-value state machine of raftkv: Redis commands applied from the Raft
//! log, deterministically, with client sessions and streaming snapshots.
//!
//! This crate is pure. It does no IO except through the `Read` / `Write` handed
//! to [`Store::snapshot`] and [`Store::restore`], reads no clock, spawns
//! nothing, and depends on no other crate of raftkv. The server parses client
//! input into a [`Command`], wraps it in a [`Request`], proposes
//! [`Request::encode`]'s bytes through Raft, and every replica calls
//! [`Store::apply`] with the decoded entry in log order. Read-only commands
//! ([`Command::is_write`] is `false`) may skip the log and use [`Store::read`].
//!
//! ```
//! use bytes::Bytes;
//! use kv::{Command, Request, RequestBody, Response, Store};
//!
//! let args = |s: &str| s.split(' ').map(|a| Bytes::from(a.to_string())).collect::<Vec<_>>();
//! let mut store = Store::new();
//!
//! // On the leader: parse, stamp the time, encode, propose.
//! let set = Command::parse(&args("SET greeting hello EX 10"))?;
//! let entry = Request { client_id: 7, seq: 1, time_ms: 1_700_000_000_000, body: RequestBody::Command(set) }.encode();
//!
//! // On every replica, once committed: decode and apply.
//! let request = Request::decode(&entry)?;
//! assert_eq!(store.apply(1, &request), Response::ok());
//! assert_eq!(store.apply(1, &request), Response::ok()); // a retry: answered from the session
//!
//! // A read outside the log, with the reader's clock.
//! let get = Command::parse(&args("get greeting"))?;
//! assert_eq!(store.read(&get, 1_700_000_005_000), Response::bulk("hello"));
//! assert_eq!(store.read(&get, 1_700_000_010_000), Response::nil()); // expired
//!
//! // Snapshot and restore.
//! let mut snapshot = Vec::new();
//! store.snapshot(&mut snapshot)?;
//! let mut other = Store::new();
//! other.restore(&mut snapshot.as_slice())?;
//! assert_eq!(other.read(&get, 1_700_000_005_000), Response::bulk("hello"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Model
//!
//! A single keyspace (Redis database 0) of byte-string keys, each holding a
//! string, a hash or a list, optionally with an expiry. Commands and their
//! replies follow Redis 7, error texts included ([`CommandError`]); replies are
//! [`Response`] values the server encodes as RESP2 or RESP3. Hashes and lists
//! are never empty: removing the last element removes the key.
//!
//! Keys are ordered by a fixed 64-bit hash of their bytes, then the bytes.
//! KEYS lists them in that order, and a SCAN cursor is the hash to resume
//! from, so SCAN returns every key present for the whole iteration exactly
//! once, however the keyspace changes in between, and the same on every
//! replica.
//!
//! # Determinism: time comes from the entry
//!
//! The state after an entry depends only on the state before and the entry.
//! Time-dependent commands (SET EX, EXPIRE, TTL...) use [`Request::time_ms`],
//! stamped by the leader when it proposes, never the applying node's clock. The
//! store keeps a clock ([`Store::clock_ms`]) that is the largest entry time
//! seen, so time never runs backwards when a leader with a slower clock takes
//! over. A key is gone from the moment its deadline is reached (`now >=
//! deadline`); it then behaves as absent everywhere. Expired keys are removed
//! deterministically: those a command names, when it is applied, plus, at the
//! start of every entry, up to [`Limits::expired_purge_per_apply_max`] of the
//! earliest-expiring ones. [`Store::read`] removes nothing; it hides expired
//! keys using the later of the caller's clock and the store's.
//!
//! Every map is ordered (`BTreeMap`), so two stores that applied the same
//! entries write byte-identical snapshots.
//!
//! # Cost of applying
//!
//! A node restarted from its log applies every entry again, so apply is
//! also the restart path. With millions of keys it is bound by the cache
//! misses of descending the keyspace tree (keys are in hash order, so each
//! new key lands somewhere random): SET, what logs mostly hold, makes one
//! descent (it purges an expired key, reads the old slot and writes the new
//! one through a single `btree_map::Entry`), and parsing a command copies
//! nothing but its arguments. `cargo run --release -p kv --example replay`
//! times it.
//!
//! # Client sessions (Raft thesis §6.3)
//!
//! A client that may retry sends a non-zero [`Request::client_id`] and a
//! [`Request::seq`] that grows by one per new request; a retry reuses the
//! sequence. The store keeps, per client, the last sequence applied and its
//! reply. A request whose sequence equals it gets the cached reply and changes
//! nothing; an older one gets an error starting with [`STALE_REQUEST_PREFIX`]
//! and changes nothing. So a command is applied at most once however often it
//! is retried, and a retry of the last request learns its real outcome.
//! Client id [`NO_SESSION`] (0) opts out.
//!
//! Only the last reply is kept. A client that pipelines several requests under
//! one session and retries them gets the real reply only for the last; the
//! earlier ones get the stale-request error, whose outcome is unknown (they
//! may or may not have been applied), never a second application.
//!
//! Sessions are created on first use and expire deterministically, by entry
//! time: after [`Limits::session_idle_ms`] unused (one hour by default), and
//! beyond [`Limits::sessions_max`] the least recently used goes first. A retry
//! arriving after its session was dropped is applied again: clients must not
//! retry for longer than the idle timeout, and the cap must stay well above
//! the number of clients active at once. Sessions are part of snapshots.
//!
//! # Transactions
//!
//! MULTI ... EXEC reaches the store as one entry, [`RequestBody::Transaction`],
//! applied with nothing in between; the reply is the array of the commands'
//! replies. As in Redis, a command failing at run time (WRONGTYPE, overflow)
//! leaves its error in the array and does not undo the others. A command that
//! fails to parse is the server's business: Redis answers the queuing with the
//! error and EXEC with `EXECABORT Transaction discarded because of previous
//! errors.`, so such a transaction is never proposed.
//!
//! # Snapshot format (version 1)
//!
//! Integers are little-endian; `bytes` is a `u64` length then the bytes.
//!
//! ```text
//! magic "RKVSNAP\0" | version u32 = 1
//! applied_index u64 | clock_ms u64 | key_count u64 | session_count u64
//! key_count times, in key order:
//!     kind u8 (1 string, 2 hash, 3 list) | key bytes | expires_at_ms u64 (0 = none)
//!     string: value bytes
//!     hash:   n u64 (>= 1) | n times (field bytes, value bytes), fields in order
//!     list:   n u64 (>= 1) | n times item bytes, head first
//! session_count times, by client id:
//!     client_id u64 | last_seq u64 | last_active_ms u64 | reply bytes (encoded Response)
//! crc32c u32 of every byte before it
//! ```
//!
//! [`Store::snapshot`] streams this through a 64 KiB buffer, record by record;
//! [`Store::restore`] reads it into a fresh store and swaps it in only when the
//! whole snapshot, checksum included, is valid. Each key and value it reads
//! gets an allocation of exactly its length (so a restored replica holds no
//! more memory than the one that wrote the snapshot), and a length longer
//! than what the input holds is an `InvalidData` error after at most 1 MiB
//! was allocated for it, never a huge allocation.

#![forbid(unsafe_code)]

mod command;
mod error;
mod exec;
mod glob;
mod request;
mod response;
mod snapshot;
mod store;

pub use command::{Command, End, ExpireCondition, ExpireSpec, SetCondition, SetExpiry, TimeUnit, parse_i64};
pub use error::CommandError;
pub use glob::{Pattern, glob_match};
pub use request::{DecodeError, NO_SESSION, REQUEST_VERSION, Request, RequestBody};
pub use response::Response;
pub use snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
pub use store::{Limits, STALE_REQUEST_PREFIX, Store};
