//! The command table: what `COMMAND`, `COMMAND INFO`, `COMMAND COUNT`,
//! `COMMAND LIST` and `COMMAND DOCS` report about every command raftkv
//! serves, in Redis 7's formats.
//!
//! Clients depend on it: cluster-aware clients (redis-py's `RedisCluster`,
//! for one) read each command's key positions from `COMMAND`, and redis-cli
//! builds its as-you-type hints from `COMMAND DOCS`. Each command's
//! arguments are written here as the one-line synopsis of Redis's help
//! (`key value [NX|XX] ...`) and turned into the argument trees of `COMMAND
//! DOCS`; a test renders the trees back the way redis-cli does and checks
//! that it gets the synopsis again.

use crate::resp::Frame;

/// One command, as `COMMAND` and `COMMAND DOCS` describe it.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Argument count including the name; negative: at least that many.
    pub arity: i64,
    /// Redis command flags (`write`, `readonly`, `fast`, ...).
    pub flags: &'static [&'static str],
    /// Position of the first key (0: none).
    pub first_key: i64,
    /// Position of the last key (-1: the last argument).
    pub last_key: i64,
    /// Step between keys.
    pub step: i64,
    /// Redis command group (`string`, `hash`, `list`, `generic`, ...).
    pub group: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// The argument synopsis, in Redis's help syntax.
    pub synopsis: &'static str,
}

const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const D: &[&str] = &["write", "fast"];
const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];
const C: &[&str] = &["fast", "loading", "stale"];
const A: &[&str] = &["admin", "noscript"];

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    group: &'static str,
    summary: &'static str,
    synopsis: &'static str,
) -> CommandSpec {
    CommandSpec { name, arity, flags, first_key: keys.0, last_key: keys.1, step: keys.2, group, summary, synopsis }
}

const ONE: (i64, i64, i64) = (1, 1, 1);
const ALL: (i64, i64, i64) = (1, -1, 1);
const NONE: (i64, i64, i64) = (0, 0, 0);

/// Every command raftkv serves.
pub const COMMANDS: &[CommandSpec] = &[
    // Strings.
    spec("get", 2, RF, ONE, "string", "Returns the string value of a key.", "key"),
    spec(
        "set",
        -3,
        W,
        ONE,
        "string",
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
        "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]",
    ),
    spec("setnx", 3, WF, ONE, "string", "Set the string value of a key only when the key doesn't exist.", "key value"),
    spec(
        "getset",
        3,
        WF,
        ONE,
        "string",
        "Returns the previous string value of a key after setting it to a new value.",
        "key value",
    ),
    spec("getdel", 2, D, ONE, "string", "Returns the string value of a key after deleting the key.", "key"),
    spec("incr", 2, WF, ONE, "string", "Increments the integer value of a key by one.", "key"),
    spec("incrby", 3, WF, ONE, "string", "Increments the integer value of a key by a number.", "key increment"),
    spec("decr", 2, WF, ONE, "string", "Decrements the integer value of a key by one.", "key"),
    spec("decrby", 3, WF, ONE, "string", "Decrements a number from the integer value of a key.", "key decrement"),
    spec(
        "append",
        3,
        WF,
        ONE,
        "string",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
        "key value",
    ),
    spec("strlen", 2, RF, ONE, "string", "Returns the length of a string value.", "key"),
    spec("mget", -2, RF, ALL, "string", "Atomically returns the string values of one or more keys.", "key [key ...]"),
    spec(
        "mset",
        -3,
        W,
        (1, -1, 2),
        "string",
        "Atomically creates or modifies the string values of one or more keys.",
        "key value [key value ...]",
    ),
    spec(
        "msetnx",
        -3,
        W,
        (1, -1, 2),
        "string",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
        "key value [key value ...]",
    ),
    // Keys.
    spec("del", -2, &["write"], ALL, "generic", "Deletes one or more keys.", "key [key ...]"),
    spec("exists", -2, RF, ALL, "generic", "Determines whether one or more keys exist.", "key [key ...]"),
    spec("ttl", 2, RF, ONE, "generic", "Returns the expiration time in seconds of a key.", "key"),
    spec("pttl", 2, RF, ONE, "generic", "Returns the expiration time in milliseconds of a key.", "key"),
    spec("expire", -3, D, ONE, "generic", "Sets the expiration time of a key in seconds.", "key seconds [NX|XX|GT|LT]"),
    spec(
        "pexpire",
        -3,
        D,
        ONE,
        "generic",
        "Sets the expiration time of a key in milliseconds.",
        "key milliseconds [NX|XX|GT|LT]",
    ),
    spec(
        "expireat",
        -3,
        D,
        ONE,
        "generic",
        "Sets the expiration time of a key to a Unix timestamp.",
        "key unix-time-seconds [NX|XX|GT|LT]",
    ),
    spec(
        "pexpireat",
        -3,
        D,
        ONE,
        "generic",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        "key unix-time-milliseconds [NX|XX|GT|LT]",
    ),
    spec("persist", 2, D, ONE, "generic", "Removes the expiration time of a key.", "key"),
    spec("type", 2, RF, ONE, "generic", "Determines the type of value stored at a key.", "key"),
    spec("keys", 2, R, NONE, "generic", "Returns all key names that match a pattern.", "pattern"),
    spec(
        "scan",
        -2,
        R,
        NONE,
        "generic",
        "Iterates over the key names in the database.",
        "cursor [MATCH pattern] [COUNT count] [TYPE type]",
    ),
    spec("dbsize", 1, RF, NONE, "server", "Returns the number of keys in the database.", ""),
    spec("flushall", -1, &["write"], NONE, "server", "Removes all keys from all databases.", "[ASYNC|SYNC]"),
    // Hashes.
    spec(
        "hset",
        -4,
        WF,
        ONE,
        "hash",
        "Creates or modifies the value of a field in a hash.",
        "key field value [field value ...]",
    ),
    spec("hget", 3, RF, ONE, "hash", "Returns the value of a field in a hash.", "key field"),
    spec("hmget", -3, RF, ONE, "hash", "Returns the values of all fields in a hash.", "key field [field ...]"),
    spec(
        "hdel",
        -3,
        D,
        ONE,
        "hash",
        "Deletes one or more fields and their values from a hash.",
        "key field [field ...]",
    ),
    spec("hgetall", 2, R, ONE, "hash", "Returns all fields and values in a hash.", "key"),
    spec("hlen", 2, RF, ONE, "hash", "Returns the number of fields in a hash.", "key"),
    spec("hexists", 3, RF, ONE, "hash", "Determines whether a field exists in a hash.", "key field"),
    spec(
        "hincrby",
        4,
        WF,
        ONE,
        "hash",
        "Increments the integer value of a field in a hash by a number.",
        "key field increment",
    ),
    // Lists.
    spec("lpush", -3, WF, ONE, "list", "Prepends one or more elements to a list.", "key element [element ...]"),
    spec("rpush", -3, WF, ONE, "list", "Appends one or more elements to a list.", "key element [element ...]"),
    spec("lpop", -2, D, ONE, "list", "Returns the first elements in a list after removing it.", "key [count]"),
    spec("rpop", -2, D, ONE, "list", "Returns and removes the last elements of a list.", "key [count]"),
    spec("lrange", 4, R, ONE, "list", "Returns a range of elements from a list.", "key start stop"),
    spec("llen", 2, RF, ONE, "list", "Returns the length of a list.", "key"),
    spec("lindex", 3, R, ONE, "list", "Returns an element from a list by its index.", "key index"),
    // Transactions.
    spec("multi", 1, C, NONE, "transactions", "Starts a transaction.", ""),
    spec(
        "exec",
        1,
        &["noscript", "loading", "stale"],
        NONE,
        "transactions",
        "Executes all commands in a transaction.",
        "",
    ),
    spec("discard", 1, C, NONE, "transactions", "Discards a transaction.", ""),
    // Connections.
    spec("ping", -1, &["fast"], NONE, "connection", "Returns the server's liveliness response.", "[message]"),
    spec("echo", 2, &["fast"], NONE, "connection", "Returns the given string.", "message"),
    spec("select", 2, C, NONE, "connection", "Changes the selected database (raftkv has database 0 only).", "index"),
    spec("auth", -2, C, NONE, "connection", "Authenticates the connection.", "[username] password"),
    spec(
        "hello",
        -1,
        C,
        NONE,
        "connection",
        "Handshakes with the Redis server.",
        "[protover [AUTH username password] [SETNAME clientname]]",
    ),
    spec(
        "client",
        -2,
        &["loading", "stale"],
        NONE,
        "connection",
        "CLIENT ID, GETNAME, SETNAME, SETINFO.",
        "subcommand [argument [argument ...]]",
    ),
    spec("quit", -1, C, NONE, "connection", "Closes the connection.", ""),
    spec("readonly", 1, C, NONE, "cluster", "Allows possibly stale reads from this node (a follower).", ""),
    spec("readwrite", 1, C, NONE, "cluster", "Back to linearizable reads (ReadIndex on the leader).", ""),
    // Server.
    spec(
        "info",
        -1,
        &["loading", "stale"],
        NONE,
        "server",
        "Returns information and statistics about the server.",
        "[section [section ...]]",
    ),
    spec(
        "command",
        -1,
        &["loading", "stale"],
        NONE,
        "server",
        "Returns detailed information about all commands.",
        "[subcommand [argument [argument ...]]]",
    ),
    spec(
        "config",
        -2,
        &["loading", "stale"],
        NONE,
        "server",
        "CONFIG GET (CONFIG SET is refused).",
        "subcommand [argument [argument ...]]",
    ),
    // Raft administration.
    spec(
        "raft.node",
        -3,
        A,
        NONE,
        "cluster",
        "Changes the membership: ADD or ADDLEARNER a node, or REMOVE one.",
        "subcommand id [peer-addr client-addr]",
    ),
    spec("raft.transfer-leader", -1, A, NONE, "cluster", "Hands leadership to another voter.", "[id]"),
    spec("raft.snapshot", 1, A, NONE, "cluster", "Takes a snapshot of the state machine now.", ""),
];

/// The command named `name` (any case).
pub fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The reply to `COMMAND` / `COMMAND INFO` for one command: name, arity,
/// flags, first key, last key, step, ACL categories, tips, key specs,
/// subcommands.
pub fn info(spec: &CommandSpec) -> Frame {
    let flags = spec.flags.iter().map(|f| Frame::Simple((*f).into())).collect();
    let category = if spec.flags.contains(&"write") { "@write" } else { "@read" };
    Frame::Array(Some(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity),
        Frame::Set(flags),
        Frame::Integer(spec.first_key),
        Frame::Integer(spec.last_key),
        Frame::Integer(spec.step),
        Frame::Set(vec![Frame::Simple(category.into()), Frame::Simple(format!("@{}", spec.group))]),
        Frame::Array(Some(Vec::new())),
        Frame::Array(Some(Vec::new())),
        Frame::Array(Some(Vec::new())),
    ]))
}

/// The `COMMAND DOCS` entry of one command: summary, since, group and the
/// argument tree.
pub fn docs(spec: &CommandSpec) -> Frame {
    let mut fields = vec![
        (Frame::bulk("summary"), Frame::bulk(spec.summary)),
        (Frame::bulk("since"), Frame::bulk("1.0.0")),
        (Frame::bulk("group"), Frame::bulk(spec.group)),
    ];
    let arguments = parse_synopsis(spec.synopsis);
    if !arguments.is_empty() {
        fields.push((Frame::bulk("arguments"), Frame::Array(Some(arguments.iter().map(Arg::to_frame).collect()))));
    }
    Frame::Map(fields)
}

/// One argument of a command, as `COMMAND DOCS` describes it.
#[derive(Clone, Debug, PartialEq)]
struct Arg {
    name: String,
    kind: Kind,
    token: Option<String>,
    optional: bool,
    multiple: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// A value: `key`, `string`, `integer`, `pattern`, `unix-time`.
    Value(&'static str),
    /// A keyword alone (`NX`).
    PureToken,
    /// One of several.
    OneOf(Vec<Arg>),
    /// Several in sequence.
    Block(Vec<Arg>),
}

impl Arg {
    fn value(name: &str) -> Arg {
        let kind = match name {
            "key" => "key",
            "pattern" => "pattern",
            "seconds" | "milliseconds" | "increment" | "decrement" | "count" | "start" | "stop" | "index"
            | "cursor" | "protover" | "id" => "integer",
            n if n.starts_with("unix-time") => "unix-time",
            _ => "string",
        };
        Arg { name: name.into(), kind: Kind::Value(kind), token: None, optional: false, multiple: false }
    }

    fn pure_token(token: &str) -> Arg {
        Arg {
            name: token.to_ascii_lowercase(),
            kind: Kind::PureToken,
            token: Some(token.into()),
            optional: false,
            multiple: false,
        }
    }

    fn group(name: &str, kind: Kind) -> Arg {
        Arg { name: name.into(), kind, token: None, optional: false, multiple: false }
    }

    fn to_frame(&self) -> Frame {
        let (kind, nested) = match &self.kind {
            Kind::Value(kind) => (*kind, None),
            Kind::PureToken => ("pure-token", None),
            Kind::OneOf(args) => ("oneof", Some(args)),
            Kind::Block(args) => ("block", Some(args)),
        };
        let mut fields =
            vec![(Frame::bulk("name"), Frame::bulk(self.name.clone())), (Frame::bulk("type"), Frame::bulk(kind))];
        if let Some(token) = &self.token {
            fields.push((Frame::bulk("token"), Frame::bulk(token.clone())));
        }
        let flags: Vec<Frame> = [(self.optional, "optional"), (self.multiple, "multiple")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, flag)| Frame::Simple(flag.into()))
            .collect();
        if !flags.is_empty() {
            fields.push((Frame::bulk("flags"), Frame::Array(Some(flags))));
        }
        if let Some(args) = nested {
            fields.push((Frame::bulk("arguments"), Frame::Array(Some(args.iter().map(Arg::to_frame).collect()))));
        }
        Frame::Map(fields)
    }
}

/// Turns a synopsis (`key value [NX|XX] [EX seconds|KEEPTTL]`) into an
/// argument tree. Upper-case words are tokens; `[...]` is optional; `|`
/// separates alternatives; `X [X ...]` is `X` repeated.
fn parse_synopsis(synopsis: &str) -> Vec<Arg> {
    let words: Vec<String> = synopsis
        .replace('[', " [ ")
        .replace(']', " ] ")
        .replace('|', " | ")
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut at = 0;
    sequence(&words, &mut at)
}

/// A sequence up to a closing `]` or `|` (not consumed) or the end.
fn sequence(words: &[String], at: &mut usize) -> Vec<Arg> {
    let mut args: Vec<Arg> = Vec::new();
    while let Some(word) = words.get(*at) {
        match word.as_str() {
            "]" | "|" => break,
            "[" => {
                *at += 1;
                let inner = alternatives(words, at);
                *at += 1; // the closing `]`
                repeat_or_optional(&mut args, inner);
            }
            token if is_token(token) => {
                *at += 1;
                let operands = operands(words, at);
                args.push(with_token(token, operands));
            }
            name => {
                *at += 1;
                args.push(Arg::value(name));
            }
        }
    }
    args
}

/// What follows `[`: alternatives separated by `|`, as one argument.
fn alternatives(words: &[String], at: &mut usize) -> Vec<Arg> {
    let mut choices = vec![sequence(words, at)];
    while words.get(*at).is_some_and(|w| w == "|") {
        *at += 1;
        choices.push(sequence(words, at));
    }
    if choices.len() == 1 {
        return choices.pop().unwrap_or_default();
    }
    let choices = choices.into_iter().map(one).collect();
    vec![Arg::group("choice", Kind::OneOf(choices))]
}

/// A sequence as one argument (a block when it has several).
fn one(mut args: Vec<Arg>) -> Arg {
    if args.len() == 1 { args.remove(0) } else { Arg::group("block", Kind::Block(args)) }
}

/// Lower-case words right after a token are its operands.
fn operands(words: &[String], at: &mut usize) -> Vec<Arg> {
    let mut operands = Vec::new();
    while let Some(word) = words.get(*at).filter(|w| !is_token(w) && !matches!(w.as_str(), "[" | "]" | "|")) {
        operands.push(Arg::value(word));
        *at += 1;
    }
    operands
}

fn with_token(token: &str, mut operands: Vec<Arg>) -> Arg {
    let mut arg = match operands.len() {
        0 => return Arg::pure_token(token),
        1 => operands.remove(0),
        _ => Arg::group(&token.to_ascii_lowercase(), Kind::Block(operands)),
    };
    arg.token = Some(token.into());
    arg
}

/// `[inner]` after `args`: `X [X ...]` marks X repeated; anything else is an
/// optional argument (alternatives stay alternatives; `[protover [...]]`
/// becomes an optional block).
fn repeat_or_optional(args: &mut Vec<Arg>, mut inner: Vec<Arg>) {
    if inner.last().is_some_and(|a| a.name == "...") {
        inner.pop();
        let n = inner.len();
        if n > 0 && args.len() >= n && args[args.len() - n..] == inner[..] {
            let repeated = args.split_off(args.len() - n);
            let mut arg = if n == 1 {
                repeated.into_iter().next().unwrap_or_else(|| Arg::value("argument"))
            } else {
                Arg::group("data", Kind::Block(repeated))
            };
            arg.multiple = true;
            args.push(arg);
            return;
        }
    }
    let mut arg = one(inner);
    arg.optional = true;
    args.push(arg);
}

fn is_token(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_uppercase()) && !word.chars().any(|c| c.is_ascii_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// redis-cli's `cliAddArgument`: how it renders an argument tree as a hint.
    fn render(arg: &Arg) -> String {
        let token = arg.token.clone().map(|t| if matches!(arg.kind, Kind::PureToken) { t } else { t + " " });
        let token = token.unwrap_or_default();
        let repeat = match &arg.kind {
            Kind::Value(_) => arg.name.clone(),
            Kind::PureToken => String::new(),
            Kind::OneOf(args) => args.iter().map(render).collect::<Vec<_>>().join("|"),
            Kind::Block(args) => args.iter().map(render).collect::<Vec<_>>().join(" "),
        };
        let mut out = format!("{token}{repeat}");
        if arg.multiple {
            out = format!("{out} [{repeat} ...]");
        }
        if arg.optional { format!("[{out}]") } else { out }
    }

    #[test]
    fn every_synopsis_renders_back_as_redis_cli_shows_it() {
        for spec in COMMANDS {
            let args = parse_synopsis(spec.synopsis);
            let shown = args.iter().map(render).collect::<Vec<_>>().join(" ");
            assert_eq!(shown, spec.synopsis, "{}", spec.name);
        }
    }

    #[test]
    fn set_has_the_argument_tree_redis_documents() {
        let args = parse_synopsis(find(b"SET").unwrap().synopsis);
        assert_eq!(args.len(), 5);
        assert_eq!(args[0].kind, Kind::Value("key"));
        let Kind::OneOf(expiry) = &args[4].kind else { panic!("{:?}", args[4]) };
        assert!(args[4].optional);
        assert_eq!(expiry[0].token.as_deref(), Some("EX"));
        assert_eq!(expiry[0].name, "seconds");
        assert_eq!(expiry[4].kind, Kind::PureToken);
        let hset = parse_synopsis(find(b"hset").unwrap().synopsis);
        assert!(hset[1].multiple && matches!(&hset[1].kind, Kind::Block(b) if b.len() == 2));
    }

    #[test]
    fn every_command_the_store_parses_is_in_the_table() {
        let mut compared = 0;
        for name in [
            "get",
            "set",
            "setnx",
            "getset",
            "getdel",
            "del",
            "exists",
            "incr",
            "incrby",
            "decr",
            "decrby",
            "append",
            "strlen",
            "mget",
            "mset",
            "msetnx",
            "dbsize",
            "ttl",
            "pttl",
            "expire",
            "pexpire",
            "expireat",
            "pexpireat",
            "persist",
            "type",
            "keys",
            "scan",
            "flushall",
            "hset",
            "hget",
            "hmget",
            "hdel",
            "hgetall",
            "hlen",
            "hexists",
            "hincrby",
            "lpush",
            "rpush",
            "lpop",
            "rpop",
            "lrange",
            "llen",
            "lindex",
        ] {
            let spec = find(name.as_bytes()).unwrap_or_else(|| panic!("{name} missing"));
            // The key positions agree with what the store reads as keys.
            let mut args: Vec<bytes::Bytes> = vec![name.into()];
            args.extend((1..spec.arity.unsigned_abs()).map(|i| bytes::Bytes::from(format!("{i}"))));
            if let Ok(command) = kv::Command::parse(&args) {
                compared += 1;
                assert_eq!(
                    command.is_write(),
                    spec.flags.contains(&"write"),
                    "{name}: the table's write flag disagrees with the store"
                );
                if spec.first_key > 0 {
                    assert_eq!(command.keys().first().map(|k| &k[..]), Some(&b"1"[..]), "{name}: first key");
                } else {
                    assert!(command.keys().is_empty(), "{name} has keys");
                }
            }
        }
        assert!(compared >= 40, "only {compared} commands parsed with placeholder arguments");
    }
}
