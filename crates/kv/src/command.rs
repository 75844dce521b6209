//! Commands: parsed from Redis-style argument lists, printed back to canonical ones.

use bytes::Bytes;

use crate::error::CommandError;

/// When SET writes: always, only if the key is absent (NX), or only if present (XX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCondition {
    /// No NX or XX.
    Always,
    /// NX: only if the key does not exist.
    IfAbsent,
    /// XX: only if the key exists.
    IfPresent,
}

/// The unit of an expiry amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds (EX, EXAT, EXPIRE, EXPIREAT, TTL).
    Seconds,
    /// Milliseconds (PX, PXAT, PEXPIRE, PEXPIREAT, PTTL).
    Millis,
}

/// An expiry as the client wrote it. It is made absolute at apply time with the
/// entry's time, never with the applying node's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpireSpec {
    /// The amount, in `unit`.
    pub amount: i64,
    /// Seconds or milliseconds.
    pub unit: TimeUnit,
    /// `true` for a Unix time (EXAT, PXAT, EXPIREAT), `false` for a duration from now.
    pub absolute: bool,
}

impl ExpireSpec {
    /// The deadline in Unix milliseconds, or `None` if it does not fit in an `i64`.
    pub fn deadline_ms(&self, now_ms: u64) -> Option<i64> {
        let ms = match self.unit {
            TimeUnit::Seconds => self.amount.checked_mul(1000)?,
            TimeUnit::Millis => self.amount,
        };
        if self.absolute { Some(ms) } else { ms.checked_add(i64::try_from(now_ms).ok()?) }
    }
}

/// What SET does to the key's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetExpiry {
    /// No option: the new value has no expiry.
    Clear,
    /// KEEPTTL: keep the expiry the key had.
    Keep,
    /// EX, PX, EXAT or PXAT.
    At(ExpireSpec),
}

/// The NX / XX / GT / LT options of EXPIRE (Redis 7). Only valid combinations are
/// ever built by [`Command::parse`]: NX alone, or any of XX with one of GT/LT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireCondition {
    /// NX: only if the key has no expiry.
    pub nx: bool,
    /// XX: only if the key has an expiry.
    pub xx: bool,
    /// GT: only if the new expiry is later (no expiry counts as infinite).
    pub gt: bool,
    /// LT: only if the new expiry is earlier (no expiry counts as infinite).
    pub lt: bool,
}

/// The end of a list a push or pop works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (LPUSH, LPOP).
    Left,
    /// The tail (RPUSH, RPOP).
    Right,
}

/// A parsed command of the store, ready to apply (or to serve as a read).
///
/// Build one with [`Command::parse`]; [`Command::to_args`] gives back a canonical
/// argument list that parses to the same command, which is how commands travel in
/// log entries (see [`Request::encode`](crate::Request::encode)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// GET key
    Get {
        /// The key.
        key: Bytes,
    },
    /// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`
    Set {
        /// The key.
        key: Bytes,
        /// The value to store.
        value: Bytes,
        /// NX or XX.
        condition: SetCondition,
        /// GET: reply with the old value.
        get: bool,
        /// What happens to the time to live.
        expiry: SetExpiry,
    },
    /// SETNX key value
    SetNx {
        /// The key.
        key: Bytes,
        /// The value to store.
        value: Bytes,
    },
    /// GETSET key value
    GetSet {
        /// The key.
        key: Bytes,
        /// The value to store.
        value: Bytes,
    },
    /// GETDEL key
    GetDel {
        /// The key.
        key: Bytes,
    },
    /// `DEL key [key ...]`
    Del {
        /// The keys, in argument order.
        keys: Vec<Bytes>,
    },
    /// `EXISTS key [key ...]`
    Exists {
        /// The keys, in argument order.
        keys: Vec<Bytes>,
    },
    /// INCR, INCRBY, DECR and DECRBY, as a signed delta.
    IncrBy {
        /// The key.
        key: Bytes,
        /// The amount added (negative for DECR and DECRBY).
        delta: i64,
    },
    /// APPEND key value
    Append {
        /// The key.
        key: Bytes,
        /// The value to store.
        value: Bytes,
    },
    /// STRLEN key
    StrLen {
        /// The key.
        key: Bytes,
    },
    /// `MGET key [key ...]`
    MGet {
        /// The keys, in argument order.
        keys: Vec<Bytes>,
    },
    /// `MSET key value [key value ...]`
    MSet {
        /// The (key or field, value) pairs, in argument order.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// `MSETNX key value [key value ...]`
    MSetNx {
        /// The (key or field, value) pairs, in argument order.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// DBSIZE
    DbSize,
    /// TTL key (seconds) and PTTL key (milliseconds).
    Ttl {
        /// The key.
        key: Bytes,
        /// Seconds (TTL) or milliseconds (PTTL).
        unit: TimeUnit,
    },
    /// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT, with NX / XX / GT / LT.
    Expire {
        /// The key.
        key: Bytes,
        /// The expiry as written.
        spec: ExpireSpec,
        /// The NX / XX / GT / LT options.
        condition: ExpireCondition,
    },
    /// PERSIST key
    Persist {
        /// The key.
        key: Bytes,
    },
    /// TYPE key
    Type {
        /// The key.
        key: Bytes,
    },
    /// KEYS pattern
    Keys {
        /// The glob pattern (see [`Pattern`](crate::Pattern)).
        pattern: Bytes,
    },
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
    Scan {
        /// Where to resume (0 to start).
        cursor: u64,
        /// MATCH pattern, if given.
        pattern: Option<Bytes>,
        /// COUNT: keys to visit per call (default 10).
        count: u64,
        /// TYPE filter, lowercase, if given.
        kind: Option<Bytes>,
    },
    /// `FLUSHALL [ASYNC | SYNC]` (both flush at once).
    FlushAll,
    /// `HSET key field value [field value ...]`
    HSet {
        /// The key.
        key: Bytes,
        /// The (key or field, value) pairs, in argument order.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// HGET key field
    HGet {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// `HMGET key field [field ...]`
    HMGet {
        /// The key.
        key: Bytes,
        /// The fields, in argument order.
        fields: Vec<Bytes>,
    },
    /// `HDEL key field [field ...]`
    HDel {
        /// The key.
        key: Bytes,
        /// The fields, in argument order.
        fields: Vec<Bytes>,
    },
    /// HGETALL key
    HGetAll {
        /// The key.
        key: Bytes,
    },
    /// HLEN key
    HLen {
        /// The key.
        key: Bytes,
    },
    /// HEXISTS key field
    HExists {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// HINCRBY key field increment
    HIncrBy {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// The amount added (negative for DECR and DECRBY).
        delta: i64,
    },
    /// `LPUSH / RPUSH key element [element ...]`
    Push {
        /// The key.
        key: Bytes,
        /// Which end of the list.
        end: End,
        /// The elements, pushed one by one in argument order.
        values: Vec<Bytes>,
    },
    /// `LPOP / RPOP key [count]`
    Pop {
        /// The key.
        key: Bytes,
        /// Which end of the list.
        end: End,
        /// The count, if given; the reply is then an array.
        count: Option<u64>,
    },
    /// LRANGE key start stop
    LRange {
        /// The key.
        key: Bytes,
        /// First index (negative counts from the end).
        start: i64,
        /// Last index, inclusive (negative counts from the end).
        stop: i64,
    },
    /// LLEN key
    LLen {
        /// The key.
        key: Bytes,
    },
    /// LINDEX key index
    LIndex {
        /// The key.
        key: Bytes,
        /// The index (negative counts from the end).
        index: i64,
    },
}

/// Checks the argument count the way Redis's command table does: a positive
/// arity is exact, a negative one is a minimum. The count includes the name.
fn arity(name: &'static str, args: &[Bytes], arity: i64) -> Result<(), CommandError> {
    let n = args.len() as i64;
    if (arity >= 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(CommandError::WrongArity(name));
    }
    Ok(())
}

/// Parses a 64-bit signed integer as Redis's `string2ll` does: optional `-`,
/// no `+`, no leading zeros, no spaces, nothing after the digits.
pub fn parse_i64(raw: &[u8]) -> Option<i64> {
    if raw.is_empty() || raw.len() > 20 {
        return None;
    }
    if raw == b"0" {
        return Some(0);
    }
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    if !matches!(digits.first(), Some(b'1'..=b'9')) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse().ok()
}

fn int(raw: &Bytes) -> Result<i64, CommandError> {
    parse_i64(raw).ok_or(CommandError::NotInteger)
}

fn pairs(args: &[Bytes]) -> Vec<(Bytes, Bytes)> {
    args.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())).collect()
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Longer than any command name: a longer name is unknown without a look.
const NAME_LEN_MAX: usize = 16;

impl Command {
    /// Parses a command from its arguments, the first being its name (any case).
    ///
    /// Errors are Redis's, checked in Redis's order: unknown command, arity,
    /// options, then argument values. Errors that depend on the data (WRONGTYPE,
    /// overflow of INCR) come later, from [`Store::apply`](crate::Store::apply).
    pub fn parse(args: &[Bytes]) -> Result<Command, CommandError> {
        let Some(name) = args.first() else { return Err(CommandError::Empty) };
        // Lowercased on the stack: every applied entry is parsed again, and a
        // heap copy of the name per entry showed in the replay profile.
        let mut lower = [0u8; NAME_LEN_MAX];
        let Some(lower) = lower.get_mut(..name.len()) else { return Err(CommandError::unknown_command(args)) };
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        let key = || args[1].clone();
        let cmd = match &*lower {
            b"get" => {
                arity("get", args, 2)?;
                Command::Get { key: key() }
            }
            b"set" => {
                arity("set", args, -3)?;
                parse_set(args)?
            }
            b"setnx" => {
                arity("setnx", args, 3)?;
                Command::SetNx { key: key(), value: args[2].clone() }
            }
            b"getset" => {
                arity("getset", args, 3)?;
                Command::GetSet { key: key(), value: args[2].clone() }
            }
            b"getdel" => {
                arity("getdel", args, 2)?;
                Command::GetDel { key: key() }
            }
            b"del" => {
                arity("del", args, -2)?;
                Command::Del { keys: args[1..].to_vec() }
            }
            b"exists" => {
                arity("exists", args, -2)?;
                Command::Exists { keys: args[1..].to_vec() }
            }
            b"incr" => {
                arity("incr", args, 2)?;
                Command::IncrBy { key: key(), delta: 1 }
            }
            b"decr" => {
                arity("decr", args, 2)?;
                Command::IncrBy { key: key(), delta: -1 }
            }
            b"incrby" => {
                arity("incrby", args, 3)?;
                Command::IncrBy { key: key(), delta: int(&args[2])? }
            }
            b"decrby" => {
                arity("decrby", args, 3)?;
                let by = int(&args[2])?;
                let delta = by.checked_neg().ok_or(CommandError::DecrementOverflow)?;
                Command::IncrBy { key: key(), delta }
            }
            b"append" => {
                arity("append", args, 3)?;
                Command::Append { key: key(), value: args[2].clone() }
            }
            b"strlen" => {
                arity("strlen", args, 2)?;
                Command::StrLen { key: key() }
            }
            b"mget" => {
                arity("mget", args, -2)?;
                Command::MGet { keys: args[1..].to_vec() }
            }
            b"mset" | b"msetnx" => {
                let (name, nx) = if lower == b"mset" { ("mset", false) } else { ("msetnx", true) };
                arity(name, args, -3)?;
                if args.len().is_multiple_of(2) {
                    return Err(CommandError::WrongArity(name));
                }
                let pairs = pairs(&args[1..]);
                if nx { Command::MSetNx { pairs } } else { Command::MSet { pairs } }
            }
            b"dbsize" => {
                arity("dbsize", args, 1)?;
                Command::DbSize
            }
            b"ttl" => {
                arity("ttl", args, 2)?;
                Command::Ttl { key: key(), unit: TimeUnit::Seconds }
            }
            b"pttl" => {
                arity("pttl", args, 2)?;
                Command::Ttl { key: key(), unit: TimeUnit::Millis }
            }
            b"expire" => parse_expire("expire", args, TimeUnit::Seconds, false)?,
            b"pexpire" => parse_expire("pexpire", args, TimeUnit::Millis, false)?,
            b"expireat" => parse_expire("expireat", args, TimeUnit::Seconds, true)?,
            b"pexpireat" => parse_expire("pexpireat", args, TimeUnit::Millis, true)?,
            b"persist" => {
                arity("persist", args, 2)?;
                Command::Persist { key: key() }
            }
            b"type" => {
                arity("type", args, 2)?;
                Command::Type { key: key() }
            }
            b"keys" => {
                arity("keys", args, 2)?;
                Command::Keys { pattern: key() }
            }
            b"scan" => {
                arity("scan", args, -2)?;
                parse_scan(args)?
            }
            b"flushall" => {
                arity("flushall", args, -1)?;
                match &args[1..] {
                    [] => {}
                    [mode] if is(mode, "async") || is(mode, "sync") => {}
                    _ => return Err(CommandError::Syntax),
                }
                Command::FlushAll
            }
            b"hset" => {
                arity("hset", args, -4)?;
                if !args.len().is_multiple_of(2) {
                    return Err(CommandError::WrongArity("hset"));
                }
                Command::HSet { key: key(), pairs: pairs(&args[2..]) }
            }
            b"hget" => {
                arity("hget", args, 3)?;
                Command::HGet { key: key(), field: args[2].clone() }
            }
            b"hmget" => {
                arity("hmget", args, -3)?;
                Command::HMGet { key: key(), fields: args[2..].to_vec() }
            }
            b"hdel" => {
                arity("hdel", args, -3)?;
                Command::HDel { key: key(), fields: args[2..].to_vec() }
            }
            b"hgetall" => {
                arity("hgetall", args, 2)?;
                Command::HGetAll { key: key() }
            }
            b"hlen" => {
                arity("hlen", args, 2)?;
                Command::HLen { key: key() }
            }
            b"hexists" => {
                arity("hexists", args, 3)?;
                Command::HExists { key: key(), field: args[2].clone() }
            }
            b"hincrby" => {
                arity("hincrby", args, 4)?;
                Command::HIncrBy { key: key(), field: args[2].clone(), delta: int(&args[3])? }
            }
            b"lpush" | b"rpush" => {
                let (name, end) = if lower == b"lpush" { ("lpush", End::Left) } else { ("rpush", End::Right) };
                arity(name, args, -3)?;
                Command::Push { key: key(), end, values: args[2..].to_vec() }
            }
            b"lpop" | b"rpop" => {
                let (name, end) = if lower == b"lpop" { ("lpop", End::Left) } else { ("rpop", End::Right) };
                arity(name, args, -2)?;
                let count = match args.len() {
                    2 => None,
                    // Redis's getPositiveLongFromObjectOrReply: one error for both cases.
                    3 => {
                        Some(parse_i64(&args[2]).and_then(|n| u64::try_from(n).ok()).ok_or(CommandError::NotPositive)?)
                    }
                    _ => return Err(CommandError::WrongArity(name)),
                };
                Command::Pop { key: key(), end, count }
            }
            b"lrange" => {
                arity("lrange", args, 4)?;
                Command::LRange { key: key(), start: int(&args[2])?, stop: int(&args[3])? }
            }
            b"llen" => {
                arity("llen", args, 2)?;
                Command::LLen { key: key() }
            }
            b"lindex" => {
                arity("lindex", args, 3)?;
                Command::LIndex { key: key(), index: int(&args[2])? }
            }
            _ => return Err(CommandError::unknown_command(args)),
        };
        Ok(cmd)
    }

    /// The command's lowercase name, as in error replies (`incrby` for all of
    /// INCR, INCRBY, DECR and DECRBY, which parse to the same command).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Get { .. } => "get",
            Command::Set { .. } => "set",
            Command::SetNx { .. } => "setnx",
            Command::GetSet { .. } => "getset",
            Command::GetDel { .. } => "getdel",
            Command::Del { .. } => "del",
            Command::Exists { .. } => "exists",
            Command::IncrBy { .. } => "incrby",
            Command::Append { .. } => "append",
            Command::StrLen { .. } => "strlen",
            Command::MGet { .. } => "mget",
            Command::MSet { .. } => "mset",
            Command::MSetNx { .. } => "msetnx",
            Command::DbSize => "dbsize",
            Command::Ttl { unit: TimeUnit::Seconds, .. } => "ttl",
            Command::Ttl { unit: TimeUnit::Millis, .. } => "pttl",
            Command::Expire { spec, .. } => match (spec.unit, spec.absolute) {
                (TimeUnit::Seconds, false) => "expire",
                (TimeUnit::Millis, false) => "pexpire",
                (TimeUnit::Seconds, true) => "expireat",
                (TimeUnit::Millis, true) => "pexpireat",
            },
            Command::Persist { .. } => "persist",
            Command::Type { .. } => "type",
            Command::Keys { .. } => "keys",
            Command::Scan { .. } => "scan",
            Command::FlushAll => "flushall",
            Command::HSet { .. } => "hset",
            Command::HGet { .. } => "hget",
            Command::HMGet { .. } => "hmget",
            Command::HDel { .. } => "hdel",
            Command::HGetAll { .. } => "hgetall",
            Command::HLen { .. } => "hlen",
            Command::HExists { .. } => "hexists",
            Command::HIncrBy { .. } => "hincrby",
            Command::Push { end: End::Left, .. } => "lpush",
            Command::Push { end: End::Right, .. } => "rpush",
            Command::Pop { end: End::Left, .. } => "lpop",
            Command::Pop { end: End::Right, .. } => "rpop",
            Command::LRange { .. } => "lrange",
            Command::LLen { .. } => "llen",
            Command::LIndex { .. } => "lindex",
        }
    }

    /// Whether the command may change the store. Commands for which this is
    /// `false` may be served outside the log with [`Store::read`](crate::Store::read)
    /// (after a ReadIndex, or stale on a READONLY connection); all others must
    /// go through the log.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Command::Get { .. }
                | Command::Exists { .. }
                | Command::StrLen { .. }
                | Command::MGet { .. }
                | Command::DbSize
                | Command::Ttl { .. }
                | Command::Type { .. }
                | Command::Keys { .. }
                | Command::Scan { .. }
                | Command::HGet { .. }
                | Command::HMGet { .. }
                | Command::HGetAll { .. }
                | Command::HLen { .. }
                | Command::HExists { .. }
                | Command::LRange { .. }
                | Command::LLen { .. }
                | Command::LIndex { .. }
        )
    }

    /// The keys the command names, in argument order (empty for DBSIZE, KEYS,
    /// SCAN and FLUSHALL, which work on the whole keyspace).
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            Command::Del { keys } | Command::Exists { keys } | Command::MGet { keys } => keys.iter().collect(),
            Command::MSet { pairs } | Command::MSetNx { pairs } => pairs.iter().map(|(k, _)| k).collect(),
            _ => self.first_key().into_iter().collect(),
        }
    }

    /// The first of [`Command::keys`], without collecting them: the server
    /// computes the Redis Cluster slot of a MOVED reply from it.
    pub fn first_key(&self) -> Option<&Bytes> {
        match self {
            Command::Del { keys } | Command::Exists { keys } | Command::MGet { keys } => keys.first(),
            Command::MSet { pairs } | Command::MSetNx { pairs } => pairs.first().map(|(k, _)| k),
            Command::DbSize | Command::Keys { .. } | Command::Scan { .. } | Command::FlushAll => None,
            Command::Get { key }
            | Command::Set { key, .. }
            | Command::SetNx { key, .. }
            | Command::GetSet { key, .. }
            | Command::GetDel { key }
            | Command::IncrBy { key, .. }
            | Command::Append { key, .. }
            | Command::StrLen { key }
            | Command::Ttl { key, .. }
            | Command::Expire { key, .. }
            | Command::Persist { key }
            | Command::Type { key }
            | Command::HSet { key, .. }
            | Command::HGet { key, .. }
            | Command::HMGet { key, .. }
            | Command::HDel { key, .. }
            | Command::HGetAll { key }
            | Command::HLen { key }
            | Command::HExists { key, .. }
            | Command::HIncrBy { key, .. }
            | Command::Push { key, .. }
            | Command::Pop { key, .. }
            | Command::LRange { key, .. }
            | Command::LLen { key }
            | Command::LIndex { key, .. } => Some(key),
        }
    }

    /// A canonical argument list (uppercase name first) that [`Command::parse`]
    /// turns back into exactly this command.
    pub fn to_args(&self) -> Vec<Bytes> {
        let s = |t: &'static str| Bytes::from_static(t.as_bytes());
        let n = |v: i64| Bytes::from(v.to_string());
        let mut out = vec![Bytes::from(self.name().to_ascii_uppercase())];
        match self {
            Command::Get { key }
            | Command::GetDel { key }
            | Command::StrLen { key }
            | Command::Ttl { key, .. }
            | Command::Persist { key }
            | Command::Type { key }
            | Command::HGetAll { key }
            | Command::HLen { key }
            | Command::LLen { key }
            | Command::Keys { pattern: key } => out.push(key.clone()),
            Command::Set { key, value, condition, get, expiry } => {
                out.extend([key.clone(), value.clone()]);
                match condition {
                    SetCondition::Always => {}
                    SetCondition::IfAbsent => out.push(s("NX")),
                    SetCondition::IfPresent => out.push(s("XX")),
                }
                if *get {
                    out.push(s("GET"));
                }
                match expiry {
                    SetExpiry::Clear => {}
                    SetExpiry::Keep => out.push(s("KEEPTTL")),
                    SetExpiry::At(spec) => {
                        let option = match (spec.unit, spec.absolute) {
                            (TimeUnit::Seconds, false) => "EX",
                            (TimeUnit::Millis, false) => "PX",
                            (TimeUnit::Seconds, true) => "EXAT",
                            (TimeUnit::Millis, true) => "PXAT",
                        };
                        out.extend([s(option), n(spec.amount)]);
                    }
                }
            }
            Command::SetNx { key, value } | Command::GetSet { key, value } | Command::Append { key, value } => {
                out.extend([key.clone(), value.clone()]);
            }
            Command::Del { keys } | Command::Exists { keys } | Command::MGet { keys } => {
                out.extend(keys.iter().cloned())
            }
            Command::IncrBy { key, delta } => out.extend([key.clone(), n(*delta)]),
            Command::MSet { pairs } | Command::MSetNx { pairs } => {
                out.extend(pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]));
            }
            Command::DbSize | Command::FlushAll => {}
            Command::Expire { key, spec, condition } => {
                out.extend([key.clone(), n(spec.amount)]);
                for (on, word) in
                    [(condition.nx, "NX"), (condition.xx, "XX"), (condition.gt, "GT"), (condition.lt, "LT")]
                {
                    if on {
                        out.push(s(word));
                    }
                }
            }
            Command::Scan { cursor, pattern, count, kind } => {
                out.extend([Bytes::from(cursor.to_string()), s("COUNT"), Bytes::from(count.to_string())]);
                if let Some(p) = pattern {
                    out.extend([s("MATCH"), p.clone()]);
                }
                if let Some(k) = kind {
                    out.extend([s("TYPE"), k.clone()]);
                }
            }
            Command::HSet { key, pairs } => {
                out.push(key.clone());
                out.extend(pairs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]));
            }
            Command::HGet { key, field } | Command::HExists { key, field } => out.extend([key.clone(), field.clone()]),
            Command::HMGet { key, fields } | Command::HDel { key, fields } => {
                out.push(key.clone());
                out.extend(fields.iter().cloned());
            }
            Command::HIncrBy { key, field, delta } => out.extend([key.clone(), field.clone(), n(*delta)]),
            Command::Push { key, values, .. } => {
                out.push(key.clone());
                out.extend(values.iter().cloned());
            }
            Command::Pop { key, count, .. } => {
                out.push(key.clone());
                if let Some(c) = count {
                    out.push(Bytes::from(c.to_string()));
                }
            }
            Command::LRange { key, start, stop } => out.extend([key.clone(), n(*start), n(*stop)]),
            Command::LIndex { key, index } => out.extend([key.clone(), n(*index)]),
        }
        out
    }
}

/// SET's options, as Redis 7's `parseExtendedStringArgumentsOrReply`: an option
/// may repeat (the last value wins) but NX/XX and the expiry options exclude
/// each other. The expiry value is checked after all options are read.
fn parse_set(args: &[Bytes]) -> Result<Command, CommandError> {
    let mut condition = SetCondition::Always;
    let mut get = false;
    let mut keep = false;
    let mut expiry: Option<(&'static str, &Bytes)> = None;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        let next = args.get(i + 1);
        if is(opt, "nx") && condition != SetCondition::IfPresent {
            condition = SetCondition::IfAbsent;
        } else if is(opt, "xx") && condition != SetCondition::IfAbsent {
            condition = SetCondition::IfPresent;
        } else if is(opt, "get") {
            get = true;
        } else if is(opt, "keepttl") && expiry.is_none() {
            keep = true;
        } else if let Some(word) = ["ex", "px", "exat", "pxat"].into_iter().find(|w| is(opt, w)) {
            let other = expiry.is_some_and(|(w, _)| w != word);
            let Some(value) = next else { return Err(CommandError::Syntax) };
            if keep || other {
                return Err(CommandError::Syntax);
            }
            expiry = Some((word, value));
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let expiry = match expiry {
        None if keep => SetExpiry::Keep,
        None => SetExpiry::Clear,
        Some((word, value)) => {
            let amount = int(value)?;
            let unit = if word.starts_with('e') { TimeUnit::Seconds } else { TimeUnit::Millis };
            if amount <= 0 || (unit == TimeUnit::Seconds && amount > i64::MAX / 1000) {
                return Err(CommandError::InvalidExpireTime("set"));
            }
            SetExpiry::At(ExpireSpec { amount, unit, absolute: word.ends_with("at") })
        }
    };
    Ok(Command::Set { key: args[1].clone(), value: args[2].clone(), condition, get, expiry })
}

fn parse_expire(name: &'static str, args: &[Bytes], unit: TimeUnit, absolute: bool) -> Result<Command, CommandError> {
    arity(name, args, -3)?;
    let mut c = ExpireCondition::default();
    for opt in &args[3..] {
        if is(opt, "nx") {
            c.nx = true;
        } else if is(opt, "xx") {
            c.xx = true;
        } else if is(opt, "gt") {
            c.gt = true;
        } else if is(opt, "lt") {
            c.lt = true;
        } else {
            return Err(CommandError::UnsupportedOption(String::from_utf8_lossy(opt).replace(['\r', '\n'], " ")));
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(CommandError::ExpireNxConflict);
    }
    if c.gt && c.lt {
        return Err(CommandError::ExpireGtLtConflict);
    }
    let amount = int(&args[2])?;
    Ok(Command::Expire { key: args[1].clone(), spec: ExpireSpec { amount, unit, absolute }, condition: c })
}

fn parse_scan(args: &[Bytes]) -> Result<Command, CommandError> {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or(CommandError::InvalidCursor)?;
    let (mut pattern, mut count, mut kind) = (None, 10, None);
    let mut rest = &args[2..];
    while let [opt, value, tail @ ..] = rest {
        if is(opt, "match") {
            pattern = Some(value.clone());
        } else if is(opt, "count") {
            let n = int(value)?;
            count = u64::try_from(n).ok().filter(|&n| n >= 1).ok_or(CommandError::Syntax)?;
        } else if is(opt, "type") {
            kind = Some(Bytes::from(value.to_ascii_lowercase()));
        } else {
            return Err(CommandError::Syntax);
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(CommandError::Syntax);
    }
    Ok(Command::Scan { cursor, pattern, count, kind })
}
