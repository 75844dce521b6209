//! Commands about the connection and the server rather than the data:
//! PING, ECHO, SELECT, HELLO, AUTH, CLIENT, COMMAND, CONFIG, INFO and the
//! RAFT.* administration commands.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use raft::Role;

use node::Node;

use crate::connection::{Connection, node_error, starting_error};
use crate::machine::KvMachine;
use crate::resp::Frame;
use crate::server::Shared;

fn arity(name: &str) -> Frame {
    Frame::Error(format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase()))
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Answers the connection-level commands; `None` for everything else.
pub fn connection_command(conn: &mut Connection, name: &str, args: &[Bytes]) -> Option<Frame> {
    let frame = match name {
        "PING" => match args.len() {
            1 => Frame::Simple("PONG".into()),
            2 => Frame::Bulk(Some(args[1].clone())),
            _ => arity(name),
        },
        "ECHO" if args.len() == 2 => Frame::Bulk(Some(args[1].clone())),
        "ECHO" => arity(name),
        "SELECT" if args.len() == 2 => match &args[1][..] {
            b"0" => Frame::ok(),
            _ => Frame::Error("ERR DB index is out of range".into()),
        },
        "SELECT" => arity(name),
        "AUTH" => auth(conn, &args[1..]),
        "HELLO" => hello(conn, &args[1..]),
        "CLIENT" => client(conn, args),
        "COMMAND" => command_table(args),
        "CONFIG" => config(args),
        _ => return None,
    };
    Some(frame)
}

/// `COMMAND [COUNT | LIST | INFO name... | DOCS [name...]]`, from the
/// command table.
fn command_table(args: &[Bytes]) -> Frame {
    use crate::commands::{COMMANDS, docs, find, info};
    let names = args.get(2..).unwrap_or_default();
    match args.get(1).map(|a| text(a).to_ascii_uppercase()).as_deref() {
        None => Frame::Array(Some(COMMANDS.iter().map(info).collect())),
        Some("COUNT") if args.len() == 2 => Frame::Integer(COMMANDS.len() as i64),
        Some("LIST") if args.len() == 2 => Frame::Array(Some(COMMANDS.iter().map(|c| Frame::bulk(c.name)).collect())),
        Some("INFO") => {
            let all = || COMMANDS.iter().map(info).collect();
            let named = || names.iter().map(|n| find(n).map_or(Frame::Null, info)).collect();
            Frame::Array(Some(if names.is_empty() { all() } else { named() }))
        }
        Some("DOCS") => {
            let wanted: Vec<_> = if names.is_empty() {
                COMMANDS.iter().collect()
            } else {
                names.iter().filter_map(|n| find(n)).collect()
            };
            Frame::Map(wanted.into_iter().map(|c| (Frame::bulk(c.name), docs(c))).collect())
        }
        _ => Frame::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try COMMAND HELP.",
            args.get(1).map(text).unwrap_or_default()
        )),
    }
}

fn auth(conn: &mut Connection, args: &[Bytes]) -> Frame {
    let password = match args {
        [password] | [_, password] => password,
        _ => return arity("auth"),
    };
    match &conn.shared.config.password {
        None => Frame::Error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?"
                .into(),
        ),
        Some(expected) if expected.as_bytes() == &password[..] => {
            conn.authenticated = true;
            Frame::ok()
        }
        Some(_) => Frame::Error("WRONGPASS invalid username-password pair or user is disabled.".into()),
    }
}

fn hello(conn: &mut Connection, args: &[Bytes]) -> Frame {
    let mut rest = args;
    if let Some(version) = rest.first() {
        match &version[..] {
            b"2" => conn.version = 2,
            b"3" => conn.version = 3,
            _ => return Frame::Error("NOPROTO unsupported protocol version".into()),
        }
        rest = &rest[1..];
    }
    while let Some(option) = rest.first() {
        match (text(option).to_ascii_uppercase().as_str(), rest) {
            ("AUTH", [_, _, password, tail @ ..]) => {
                let reply = auth(conn, std::slice::from_ref(password));
                if matches!(reply, Frame::Error(_)) {
                    return reply;
                }
                rest = tail;
            }
            ("SETNAME", [_, name, tail @ ..]) => {
                conn.name = Some(name.clone());
                rest = tail;
            }
            _ => return Frame::Error("ERR syntax error".into()),
        }
    }
    if !conn.authenticated {
        return Frame::Error("NOAUTH HELLO must be called with the client already authenticated".into());
    }
    Frame::Map(vec![
        (Frame::bulk("server"), Frame::bulk("raftkv")),
        (Frame::bulk("version"), Frame::bulk(env!("CARGO_PKG_VERSION"))),
        (Frame::bulk("proto"), Frame::Integer(i64::from(conn.version))),
        (Frame::bulk("id"), Frame::Integer(conn.id as i64)),
        (Frame::bulk("mode"), Frame::bulk("cluster")),
        (Frame::bulk("role"), Frame::bulk("master")),
        (Frame::bulk("modules"), Frame::Array(Some(Vec::new()))),
    ])
}

fn client(conn: &mut Connection, args: &[Bytes]) -> Frame {
    match (args.get(1).map(|a| text(a).to_ascii_uppercase()).as_deref(), args.len()) {
        (Some("ID"), 2) => Frame::Integer(conn.id as i64),
        (Some("GETNAME"), 2) => Frame::Bulk(conn.name.clone()),
        (Some("SETNAME"), 3) => {
            if args[2].iter().any(|b| *b == b' ' || *b == b'\n') {
                return Frame::Error("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            conn.name = Some(args[2].clone());
            Frame::ok()
        }
        (Some("SETINFO"), 4) => Frame::ok(),
        _ => Frame::Error("ERR unknown subcommand or wrong number of arguments for 'client' command".into()),
    }
}

/// `CONFIG GET` answers what redis-benchmark and clients ask about; `CONFIG
/// SET` is refused (configuration comes from the command line or file).
fn config(args: &[Bytes]) -> Frame {
    match args.get(1).map(|a| text(a).to_ascii_uppercase()).as_deref() {
        Some("GET") if args.len() >= 3 => {
            let mut pairs = Vec::new();
            for pattern in &args[2..] {
                for (key, value) in [("save", ""), ("appendonly", "yes"), ("databases", "1")] {
                    if kv::glob_match(pattern, key.as_bytes()) {
                        pairs.push(Frame::bulk(key));
                        pairs.push(Frame::bulk(value));
                    }
                }
            }
            Frame::Array(Some(pairs))
        }
        _ => Frame::Error("ERR CONFIG subcommand not supported by raftkv (only CONFIG GET)".into()),
    }
}

type Reply = Pin<Box<dyn Future<Output = Frame> + Send>>;

/// The commands that need the node: INFO and RAFT.*. INFO answers while
/// the node is starting too (without its Raft section); RAFT.* get
/// [`starting_error`] then.
pub fn command(shared: Arc<Shared>, name: String, args: Vec<Bytes>) -> Reply {
    Box::pin(async move {
        if name == "INFO" {
            return info(&shared, args.get(1).map(text)).await;
        }
        let Some(node) = shared.node() else { return starting_error() };
        match name.as_str() {
            "RAFT.NODE" => raft_node(node, &args).await,
            "RAFT.TRANSFER-LEADER" => transfer(node, &args).await,
            "RAFT.SNAPSHOT" => match node.snapshot().await {
                Ok(()) => Frame::ok(),
                Err(e) => node_error(&e, 0),
            },
            _ => Frame::Error(format!("ERR unknown command '{name}'")),
        }
    })
}

async fn info(shared: &Shared, section: Option<String>) -> Frame {
    let section = section.map(|s| s.to_ascii_lowercase());
    let want = |name: &str| match section.as_deref() {
        None | Some("all") | Some("default") | Some("everything") => true,
        Some(s) => s == name,
    };
    let mut out = String::new();
    if want("server") {
        let _ = write!(
            out,
            "# Server\r\nredis_version:7.0.0\r\nraftkv_version:{}\r\nredis_mode:cluster\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            shared.config.client_addr.port(),
            shared.started.elapsed().as_secs()
        );
    }
    if want("clients") {
        let _ = write!(out, "# Clients\r\nconnected_clients:{}\r\n\r\n", shared.connected.load(Ordering::Relaxed));
    }
    if want("persistence") {
        // Redis's field for "still loading the data set"; here: the node is
        // still opening its log and restoring its snapshot.
        let _ = write!(out, "# Persistence\r\nloading:{}\r\n\r\n", u8::from(shared.node().is_none()));
    }
    if want("keyspace") {
        let keys = shared.key_count.load(Ordering::Relaxed);
        out.push_str("# Keyspace\r\n");
        if keys > 0 {
            let _ = write!(out, "db0:keys={keys},expires=0,avg_ttl=0\r\n");
        }
        out.push_str("\r\n");
    }
    // A starting node has no Raft state to show yet: no section, so a
    // script waiting for `raft_role` waits for the node, not the port.
    if let (true, Some(node)) = (want("raft"), shared.node()) {
        match node.status().await {
            Ok(status) => out.push_str(&raft_section(&status, node.applied_index())),
            Err(e) => return node_error(&e, 0),
        }
    }
    Frame::bulk(out.trim_end().to_string() + "\r\n")
}

fn ids(set: &std::collections::BTreeSet<u64>) -> String {
    set.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

/// The `# Raft` section, one `field:value` a line, as DESIGN.md specifies.
/// `raft_applied_index` is `applied`, what the store has applied, not what
/// the core has handed to the applier (ahead of it during a replay).
fn raft_section(s: &node::NodeStatus, applied: u64) -> String {
    let r = &s.raft;
    let role = match r.role {
        Role::Leader => "leader",
        Role::Candidate | Role::PreCandidate => "candidate",
        Role::Follower if r.is_learner => "learner",
        Role::Follower => "follower",
    };
    let mut voters = r.membership.voters.clone();
    voters.extend(r.membership.voters_outgoing.iter().copied());
    format!(
        "# Raft\r\nraft_node_id:{}\r\nraft_role:{role}\r\nraft_term:{}\r\nraft_leader_id:{}\r\nraft_leader_client_addr:{}\r\n\
         raft_commit_index:{}\r\nraft_applied_index:{}\r\nraft_last_log_index:{}\r\nraft_snapshot_index:{}\r\n\
         raft_voters:{}\r\nraft_learners:{}\r\n\r\n",
        r.id,
        r.term,
        r.leader,
        s.leader_client_addr.clone().unwrap_or_default(),
        r.commit,
        applied,
        r.last_index,
        r.snapshot_index,
        ids(&voters),
        ids(&r.membership.learners),
    )
}

async fn raft_node(node: &Node<KvMachine>, args: &[Bytes]) -> Frame {
    let sub = args.get(1).map(|a| text(a).to_ascii_uppercase());
    let id = args.get(2).and_then(|a| text(a).parse::<u64>().ok());
    let result = match (sub.as_deref(), id, args.len()) {
        (Some("ADD") | Some("ADDLEARNER"), Some(id), 5) => {
            let Ok(peer) = text(&args[3]).parse() else {
                return Frame::Error("ERR invalid peer address".into());
            };
            if sub.as_deref() == Some("ADD") {
                node.add_voter(id, peer).await
            } else {
                node.add_learner(id, peer).await
            }
        }
        (Some("REMOVE"), Some(id), 3) => node.remove_voter(id).await,
        _ => {
            return Frame::Error(
                "ERR usage: RAFT.NODE ADD|ADDLEARNER <id> <peer-addr> <client-addr> | RAFT.NODE REMOVE <id>".into(),
            );
        }
    };
    match result {
        Ok(_) => Frame::ok(),
        Err(e) => node_error(&e, 0),
    }
}

async fn transfer(node: &Node<KvMachine>, args: &[Bytes]) -> Frame {
    let target = match args.get(1).map(|a| text(a).parse::<u64>()) {
        Some(Ok(id)) => id,
        Some(Err(_)) => return Frame::Error("ERR invalid node id".into()),
        None => {
            // No target: the most up-to-date other voter.
            let Ok(status) = node.status().await else { return Frame::Error("ERR node unavailable".into()) };
            let me = status.raft.id;
            let best = status
                .raft
                .progress
                .iter()
                .filter(|(id, _)| **id != me && status.raft.membership.is_voter(**id))
                .max_by_key(|(_, (matched, _))| *matched)
                .map(|(id, _)| *id);
            match best {
                Some(id) => id,
                None => {
                    return node_error(
                        &node::NodeError::NotLeader { leader: None, leader_addr: status.leader_client_addr },
                        0,
                    );
                }
            }
        }
    };
    match node.transfer_leader(target).await {
        Ok(()) => Frame::ok(),
        Err(e) => node_error(&e, 0),
    }
}
