//! The state machine: keyspace and its expiry index, sessions, apply and read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::command::Command;
use crate::error::CommandError;
use crate::request::{NO_SESSION, Request, RequestBody};
use crate::response::Response;

/// Limits of the store. They change what `apply` does, so every replica of a
/// group must use the same values (they are not part of snapshots).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A session unused for this long (by entry time) is dropped.
    pub session_idle_ms: u64,
    /// At most this many sessions; beyond it the least recently used one is
    /// dropped (ties broken by the smaller client id).
    pub sessions_max: usize,
    /// At most this many expired keys are removed at the start of each
    /// applied entry, so a mass expiry cannot stall one apply; the rest go on
    /// later entries or when touched.
    pub expired_purge_per_apply_max: usize,
    /// Longest string APPEND may build: Redis's default `proto-max-bulk-len`
    /// (512 MiB). The server should refuse longer bulk strings at the protocol.
    pub string_len_max: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            session_idle_ms: 60 * 60 * 1000,
            sessions_max: 100_000,
            expired_purge_per_apply_max: 1024,
            string_len_max: 512 * 1024 * 1024,
        }
    }
}

/// A key with its position in the keyspace order: a stable 64-bit hash first,
/// then the bytes. SCAN cursors are hashes, so the order never depends on
/// what else is in the store, and two replicas iterate the same way.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) hash: u64,
    pub(crate) bytes: Bytes,
}

impl Key {
    pub(crate) fn new(bytes: &Bytes) -> Key {
        Key { hash: key_hash(bytes), bytes: bytes.clone() }
    }
}

/// FNV-1a followed by the SplitMix64 finaliser: fixed across platforms, Rust
/// versions and runs, unlike `std`'s hashers.
pub(crate) fn key_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A stored value. Hashes and lists are never empty: removing their last
/// element removes the key, as in Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Str(Bytes),
    Hash(BTreeMap<Bytes, Bytes>),
    List(VecDeque<Bytes>),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) value: Value,
    /// Unix ms at which the key stops existing.
    pub(crate) expires_at_ms: Option<u64>,
}

impl Slot {
    pub(crate) fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|t| now_ms < t)
    }
}

/// A client session (Raft thesis §6.3): the last request applied for the
/// client and its reply, so a retry is answered without applying it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) last_seq: u64,
    pub(crate) reply: Response,
    pub(crate) last_active_ms: u64,
}

/// How the error reply to a request older than its session's last one begins.
/// Whether that request was applied is unknown, so a server should report it
/// to its client as an unknown outcome (`-TIMEOUT`), never as a failure.
pub const STALE_REQUEST_PREFIX: &str = "ERR stale request";

/// The key-value state machine. See the crate docs for the model.
#[derive(Clone, Debug, Default)]
pub struct Store {
    pub(crate) limits: Limits,
    pub(crate) keys: BTreeMap<Key, Slot>,
    /// `(deadline, key)` for every key with an expiry.
    pub(crate) expiries: BTreeSet<(u64, Key)>,
    pub(crate) sessions: BTreeMap<u64, Session>,
    /// `(last_active_ms, client_id)` for every session: least recently used first.
    pub(crate) session_lru: BTreeSet<(u64, u64)>,
    /// The store's clock: the largest entry time applied so far.
    pub(crate) clock_ms: u64,
    pub(crate) applied_index: u64,
}

pub(crate) fn is_past(deadline_ms: i64, now_ms: u64) -> bool {
    u64::try_from(deadline_ms).map_or(true, |d| d <= now_ms)
}

impl Store {
    /// An empty store with default [`Limits`].
    pub fn new() -> Store {
        Store::default()
    }

    /// An empty store with the given limits (the same on every replica).
    pub fn with_limits(limits: Limits) -> Store {
        Store { limits, ..Store::default() }
    }

    /// The index of the last entry applied (or restored from a snapshot).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The store's clock: the largest entry time applied so far, in Unix ms.
    /// Entry times that go backwards (a new leader with a slower clock) do not
    /// move it back, so a key that expired never comes back.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Number of keys held, including expired ones not yet removed.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of client sessions held.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Applies a committed log entry and returns the reply for the client.
    ///
    /// Deterministic: the result and the new state depend only on the state
    /// and `request`. `index` is recorded as [`Store::applied_index`]; the
    /// caller applies entries in log order. Steps, in order:
    /// 1. the clock advances to `request.time_ms` (never back);
    /// 2. idle sessions expire, and up to `expired_purge_per_apply_max`
    ///    expired keys are removed;
    /// 3. a request whose sequence the client's session has already seen is
    ///    answered from the session (the cached reply for the last sequence,
    ///    an error for an older one) and changes nothing else;
    /// 4. otherwise the body runs and its reply is cached in the session.
    pub fn apply(&mut self, index: u64, request: &Request) -> Response {
        self.applied_index = index;
        self.clock_ms = self.clock_ms.max(request.time_ms);
        let now = self.clock_ms;
        self.expire_sessions(now);
        self.purge_expired(now);
        let client = request.client_id;
        if client != NO_SESSION
            && let Some(session) = self.sessions.get(&client)
            && request.seq <= session.last_seq
        {
            if request.seq < session.last_seq {
                // Not "it was applied": a client that pipelines may have lost this
                // one while a later one committed. The outcome is unknown here.
                return Response::Error(format!(
                    "{STALE_REQUEST_PREFIX} {} of client {client} is older than its last request {}; \
                     its outcome is no longer known",
                    request.seq, session.last_seq
                ));
            }
            let reply = session.reply.clone();
            self.touch_session(client, request.seq, reply.clone(), now);
            return reply;
        }
        let reply = match &request.body {
            RequestBody::Command(c) => self.execute(c, now),
            RequestBody::Transaction(cs) => Response::Array(Some(cs.iter().map(|c| self.execute(c, now)).collect())),
        };
        if client != NO_SESSION {
            self.touch_session(client, request.seq, reply.clone(), now);
        }
        reply
    }

    /// Serves a read-only command outside the log (after a ReadIndex, or a
    /// stale read). `now_ms` is the caller's clock; the store uses the later of
    /// it and [`Store::clock_ms`], so a read never sees a key the log has
    /// already expired. Changes nothing: expired keys just look absent.
    /// A command that writes gets an error reply.
    pub fn read(&self, command: &Command, now_ms: u64) -> Response {
        if command.is_write() {
            return CommandError::NotReadOnly(command.name()).into();
        }
        self.read_at(command, now_ms.max(self.clock_ms)).into()
    }

    fn touch_session(&mut self, client: u64, seq: u64, reply: Response, now: u64) {
        if let Some(old) = self.sessions.insert(client, Session { last_seq: seq, reply, last_active_ms: now }) {
            self.session_lru.remove(&(old.last_active_ms, client));
        }
        self.session_lru.insert((now, client));
        while self.sessions.len() > self.limits.sessions_max {
            let Some((_, victim)) = self.session_lru.pop_first() else { break };
            self.sessions.remove(&victim);
        }
    }

    fn expire_sessions(&mut self, now: u64) {
        while let Some(&(active, client)) = self.session_lru.first() {
            if active.saturating_add(self.limits.session_idle_ms) > now {
                break;
            }
            self.session_lru.pop_first();
            self.sessions.remove(&client);
        }
    }

    fn purge_expired(&mut self, now: u64) {
        for _ in 0..self.limits.expired_purge_per_apply_max {
            match self.expiries.first() {
                Some((t, key)) if *t <= now => {
                    let key = key.bytes.clone();
                    self.remove(&key);
                }
                _ => break,
            }
        }
    }

    /// Removes `key` if it has expired (lazy expiry on access).
    pub(crate) fn purge_key(&mut self, key: &Bytes, now: u64) {
        if self.keys.get(&Key::new(key)).is_some_and(|s| !s.live(now)) {
            self.remove(key);
        }
    }

    pub(crate) fn live(&self, key: &Bytes, now: u64) -> Option<&Slot> {
        self.keys.get(&Key::new(key)).filter(|s| s.live(now))
    }

    pub(crate) fn put(&mut self, key: &Bytes, value: Value, expires_at_ms: Option<u64>) {
        let k = Key::new(key);
        if let Some(old) = self.keys.insert(k.clone(), Slot { value, expires_at_ms })
            && let Some(t) = old.expires_at_ms
        {
            self.expiries.remove(&(t, k.clone()));
        }
        if let Some(t) = expires_at_ms {
            self.expiries.insert((t, k));
        }
    }

    pub(crate) fn remove(&mut self, key: &Bytes) -> Option<Slot> {
        let k = Key::new(key);
        let slot = self.keys.remove(&k)?;
        if let Some(t) = slot.expires_at_ms {
            self.expiries.remove(&(t, k));
        }
        Some(slot)
    }

    pub(crate) fn set_expiry(&mut self, key: &Bytes, expires_at_ms: Option<u64>) {
        let k = Key::new(key);
        let Some(slot) = self.keys.get_mut(&k) else { return };
        if let Some(t) = std::mem::replace(&mut slot.expires_at_ms, expires_at_ms) {
            self.expiries.remove(&(t, k.clone()));
        }
        if let Some(t) = expires_at_ms {
            self.expiries.insert((t, k));
        }
    }

    pub(crate) fn string(&self, key: &Bytes, now: u64) -> Result<Option<&Bytes>, CommandError> {
        match self.live(key, now) {
            None => Ok(None),
            Some(Slot { value: Value::Str(s), .. }) => Ok(Some(s)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    pub(crate) fn hash(&self, key: &Bytes, now: u64) -> Result<Option<&BTreeMap<Bytes, Bytes>>, CommandError> {
        match self.live(key, now) {
            None => Ok(None),
            Some(Slot { value: Value::Hash(h), .. }) => Ok(Some(h)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    pub(crate) fn list(&self, key: &Bytes, now: u64) -> Result<Option<&VecDeque<Bytes>>, CommandError> {
        match self.live(key, now) {
            None => Ok(None),
            Some(Slot { value: Value::List(l), .. }) => Ok(Some(l)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// The slot of `key` for a write, created with `empty` if absent and
    /// `empty` is given. Only called after [`Store::purge_key`], so a present
    /// slot is live.
    fn slot_mut(&mut self, key: &Bytes, empty: Option<Value>) -> Option<&mut Slot> {
        let k = Key::new(key);
        if let Some(value) = empty
            && !self.keys.contains_key(&k)
        {
            self.keys.insert(k.clone(), Slot { value, expires_at_ms: None });
        }
        self.keys.get_mut(&k)
    }

    pub(crate) fn hash_mut(
        &mut self,
        key: &Bytes,
        create: bool,
    ) -> Result<Option<&mut BTreeMap<Bytes, Bytes>>, CommandError> {
        match self.slot_mut(key, create.then(|| Value::Hash(BTreeMap::new()))) {
            None => Ok(None),
            Some(Slot { value: Value::Hash(h), .. }) => Ok(Some(h)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    pub(crate) fn list_mut(&mut self, key: &Bytes, create: bool) -> Result<Option<&mut VecDeque<Bytes>>, CommandError> {
        match self.slot_mut(key, create.then(|| Value::List(VecDeque::new()))) {
            None => Ok(None),
            Some(Slot { value: Value::List(l), .. }) => Ok(Some(l)),
            Some(_) => Err(CommandError::WrongType),
        }
    }

    /// Removes `key` if it holds an empty hash or list.
    pub(crate) fn drop_if_empty(&mut self, key: &Bytes) {
        let empty = match self.keys.get(&Key::new(key)).map(|s| &s.value) {
            Some(Value::Hash(h)) => h.is_empty(),
            Some(Value::List(l)) => l.is_empty(),
            _ => false,
        };
        if empty {
            self.remove(key);
        }
    }

    /// Runs one command at entry time `now`. The keys it names are purged
    /// first if expired, so a command finds them live or absent; SET, the
    /// command a log is mostly made of, does that itself in the one lookup
    /// it makes of its key (`Store::set`).
    fn execute(&mut self, cmd: &Command, now: u64) -> Response {
        if !matches!(cmd, Command::Set { .. }) {
            for key in cmd.keys() {
                self.purge_key(key, now);
            }
        }
        let result = if cmd.is_write() { self.write(cmd, now) } else { self.read_at(cmd, now) };
        result.into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::command::{SetCondition, SetExpiry};
    use proptest::prelude::*;

    /// SET as it was before it took one descent of the keyspace: purge the
    /// key if expired, then look it up, then write. The fast path must do
    /// exactly this.
    fn reference_set(store: &mut Store, cmd: &Command, now: u64) -> Response {
        let Command::Set { key, value, condition, get, expiry } = cmd else { unreachable!("not a SET") };
        store.purge_key(key, now);
        let deadline = match expiry {
            SetExpiry::At(spec) => match spec.deadline_ms(now) {
                Some(d) => Some(d),
                None => return CommandError::InvalidExpireTime("set").into(),
            },
            _ => None,
        };
        let old = store.live(key, now).cloned();
        let old_value = match (get, store.string(key, now)) {
            (true, Err(e)) => return e.into(),
            (true, Ok(v)) => v.cloned(),
            (false, _) => None,
        };
        let allowed = match condition {
            SetCondition::Always => true,
            SetCondition::IfAbsent => old.is_none(),
            SetCondition::IfPresent => old.is_some(),
        };
        let reply = if *get { Response::Bulk(old_value) } else { Response::ok() };
        if !allowed {
            return if *get { reply } else { Response::nil() };
        }
        let expires_at_ms = match (expiry, deadline) {
            (SetExpiry::Keep, _) => old.and_then(|s| s.expires_at_ms),
            (_, Some(d)) if is_past(d, now) => {
                store.remove(key);
                return reply;
            }
            (_, d) => d.and_then(|d| u64::try_from(d).ok()),
        };
        store.put(key, Value::Str(value.clone()), expires_at_ms);
        reply
    }

    /// `Store::apply` without sessions, with SET done by [`reference_set`].
    fn reference_apply(store: &mut Store, index: u64, cmd: &Command, time_ms: u64) -> Response {
        store.applied_index = index;
        store.clock_ms = store.clock_ms.max(time_ms);
        let now = store.clock_ms;
        store.expire_sessions(now);
        store.purge_expired(now);
        match cmd {
            Command::Set { .. } => reference_set(store, cmd, now),
            _ => store.execute(cmd, now),
        }
    }

    const T0: u64 = 1_700_000_000_000;

    fn arb_line() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["k0", "k1", "k2"]);
        let cond = prop::sample::select(vec!["", " nx", " xx"]);
        let get = prop::sample::select(vec!["", " get"]);
        let ttl = prop_oneof![
            Just(String::new()),
            Just(" keepttl".to_string()),
            (1..40u64).prop_map(|n| format!(" px {n}")),
            (0..3u64).prop_map(|n| format!(" ex {n}")),
            (0..60u64).prop_map(|n| format!(" pxat {}", T0 + n * 10)),
        ];
        let set = (key.clone(), cond, get, ttl).prop_map(|(k, c, g, t)| format!("set {k} v{c}{g}{t}"));
        let other = (key, prop::sample::select(vec!["rpush {} x", "pexpire {} 15", "get {}", "del {}", "pttl {}"]))
            .prop_map(|(k, form)| form.replace("{}", k));
        prop_oneof![3 => set, 1 => other]
    }

    proptest! {
        #[test]
        fn set_with_one_descent_does_what_purge_then_set_did(
            history in prop::collection::vec((arb_line(), 0..25u64), 1..60)
        ) {
            // No purge at the start of an entry, so commands meet expired keys.
            let limits = Limits { expired_purge_per_apply_max: 0, ..Limits::default() };
            let (mut fast, mut reference) = (Store::with_limits(limits), Store::with_limits(limits));
            let mut time_ms = T0;
            for (index, (line, dt)) in (1..).zip(&history) {
                time_ms += dt;
                let args: Vec<Bytes> = line.split(' ').map(|a| Bytes::from(a.to_string())).collect();
                let Ok(cmd) = Command::parse(&args) else { continue };
                let request = Request { client_id: NO_SESSION, seq: 0, time_ms, body: RequestBody::Command(cmd.clone()) };
                let got = fast.apply(index, &request);
                prop_assert_eq!(got, reference_apply(&mut reference, index, &cmd, time_ms), "{}", line);
                prop_assert_eq!(&fast.keys, &reference.keys, "{}", line);
                prop_assert_eq!(&fast.expiries, &reference.expiries, "{}", line);
            }
        }
    }
}
