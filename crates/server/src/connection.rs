//! One client connection: parse what is buffered, answer in order, read more.
//! Requests pipelined in one read are proposed together (their writes share
//! AppendEntries and fsyncs) and answered in order.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kv::{Command, Request, RequestBody, Response};
use node::NodeError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::admin;
use crate::resp::{Frame, parse_request};
use crate::server::Shared;
use crate::slot::key_slot;

type Reply = Pin<Box<dyn Future<Output = Frame> + Send>>;

/// What the connection asked for that outlives one command.
pub struct Connection {
    stream: TcpStream,
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u64,
    /// RESP protocol version (2, or 3 after `HELLO 3`).
    pub(crate) version: u8,
    pub(crate) authenticated: bool,
    /// `READONLY`: serve reads from this node's state, possibly stale.
    pub(crate) readonly: bool,
    pub(crate) name: Option<Bytes>,
    /// Inside MULTI: the queued commands, and whether one failed to queue.
    multi: Option<(Vec<Command>, bool)>,
    quit: bool,
}

/// How a command is answered.
enum Outcome {
    Now(Frame),
    Later(Reply),
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Connection {
    /// Serves `stream` as client `id`.
    pub fn new(stream: TcpStream, shared: Arc<Shared>, id: u64) -> Self {
        let authenticated = shared.config.password.is_none();
        Connection {
            stream,
            shared,
            id,
            version: 2,
            authenticated,
            readonly: false,
            name: None,
            multi: None,
            quit: false,
        }
    }

    /// Runs until the client leaves or breaks the protocol.
    pub async fn run(mut self) -> std::io::Result<()> {
        let mut input = BytesMut::with_capacity(16 << 10);
        let mut output = BytesMut::with_capacity(16 << 10);
        loop {
            let mut replies = Vec::new();
            let mut broken = None;
            while replies.len() < self.shared.config.max_pipeline {
                match parse_request(&mut input, &self.shared.limits) {
                    Ok(Some(args)) if args.is_empty() => continue,
                    Ok(Some(args)) => replies.push(self.dispatch(args)),
                    Ok(None) => break,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
                if self.quit {
                    break;
                }
            }
            self.answer(replies, &mut output).await;
            if let Some(e) = broken {
                // The stream cannot be resynchronised: say why and close (as Redis does).
                Frame::Error(e.to_string()).encode(self.version, &mut output);
                self.stream.write_all(&output).await?;
                return Ok(());
            }
            if !output.is_empty() {
                self.stream.write_all(&output).await?;
                output.clear();
            }
            if self.quit {
                return Ok(());
            }
            if self.stream.read_buf(&mut input).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Waits for every reply (concurrently, so writes are proposed together)
    /// and encodes them in request order.
    async fn answer(&mut self, replies: Vec<Outcome>, output: &mut BytesMut) {
        let frames = futures::future::join_all(replies.into_iter().map(|outcome| async move {
            match outcome {
                Outcome::Now(frame) => frame,
                Outcome::Later(reply) => reply.await,
            }
        }))
        .await;
        for frame in frames {
            frame.encode(self.version, output);
        }
    }

    fn dispatch(&mut self, args: Vec<Bytes>) -> Outcome {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        if !self.authenticated && !matches!(name.as_str(), "AUTH" | "HELLO" | "QUIT") {
            return Outcome::Now(Frame::Error("NOAUTH Authentication required.".into()));
        }
        if self.multi.is_some() && !matches!(name.as_str(), "EXEC" | "DISCARD" | "MULTI" | "QUIT") {
            return Outcome::Now(self.queue(&args));
        }
        match name.as_str() {
            "MULTI" => Outcome::Now(self.begin_multi()),
            "EXEC" => self.exec(),
            "DISCARD" => Outcome::Now(match self.multi.take() {
                Some(_) => Frame::ok(),
                None => Frame::Error("ERR DISCARD without MULTI".into()),
            }),
            "QUIT" => {
                self.quit = true;
                Outcome::Now(Frame::ok())
            }
            "READONLY" => {
                self.readonly = true;
                Outcome::Now(Frame::ok())
            }
            "READWRITE" => {
                self.readonly = false;
                Outcome::Now(Frame::ok())
            }
            "INFO" | "RAFT.NODE" | "RAFT.TRANSFER-LEADER" | "RAFT.SNAPSHOT" => {
                Outcome::Later(admin::command(self.shared.clone(), name, args))
            }
            _ => match admin::connection_command(self, &name, &args) {
                Some(frame) => Outcome::Now(frame),
                None => self.store_command(&args),
            },
        }
    }

    fn begin_multi(&mut self) -> Frame {
        if self.multi.is_some() {
            return Frame::Error("ERR MULTI calls can not be nested".into());
        }
        self.multi = Some((Vec::new(), false));
        Frame::ok()
    }

    fn queue(&mut self, args: &[Bytes]) -> Frame {
        let Some((queued, failed)) = self.multi.as_mut() else { return Frame::Error("ERR not in MULTI".into()) };
        match Command::parse(args) {
            Ok(command) => {
                queued.push(command);
                Frame::Simple("QUEUED".into())
            }
            Err(e) => {
                *failed = true;
                Frame::Error(e.to_string())
            }
        }
    }

    fn exec(&mut self) -> Outcome {
        match self.multi.take() {
            None => Outcome::Now(Frame::Error("ERR EXEC without MULTI".into())),
            Some((_, true)) => {
                Outcome::Now(Frame::Error("EXECABORT Transaction discarded because of previous errors.".into()))
            }
            Some((commands, false)) if commands.is_empty() => Outcome::Now(Frame::Array(Some(Vec::new()))),
            Some((commands, false)) => {
                let slot = commands.iter().flat_map(|c| c.keys()).next().map_or(0, |k| key_slot(k));
                Outcome::Later(propose(self.shared.clone(), RequestBody::Transaction(commands), slot))
            }
        }
    }

    fn store_command(&mut self, args: &[Bytes]) -> Outcome {
        let command = match Command::parse(args) {
            Ok(command) => command,
            Err(e) => return Outcome::Now(Frame::Error(e.to_string())),
        };
        let slot = command.keys().first().map_or(0, |k| key_slot(k));
        if command.is_write() {
            return Outcome::Later(propose(self.shared.clone(), RequestBody::Command(command), slot));
        }
        let shared = self.shared.clone();
        let readonly = self.readonly;
        Outcome::Later(Box::pin(async move {
            let read = move |m: &crate::machine::KvMachine| m.store.read(&command, now_ms());
            let result = if readonly { shared.node.local_read(read).await } else { shared.node.read(read).await };
            match result {
                Ok(response) => to_frame(response),
                Err(e) => node_error(&e, slot),
            }
        }))
    }
}

/// Proposes a write stamped with the leader's time and answers with its reply.
fn propose(shared: Arc<Shared>, body: RequestBody, slot: u16) -> Reply {
    Box::pin(async move {
        let request = Request { client_id: kv::NO_SESSION, seq: 0, time_ms: now_ms(), body };
        match shared.node.propose(Bytes::from(request.encode())).await {
            Ok(response) => to_frame(response),
            Err(e) => node_error(&e, slot),
        }
    })
}

/// The store's reply as a RESP frame.
pub fn to_frame(response: Response) -> Frame {
    match response {
        Response::Simple(s) => Frame::Simple(s),
        Response::Error(e) => Frame::Error(e),
        Response::Integer(n) => Frame::Integer(n),
        Response::Bulk(b) => Frame::Bulk(b),
        Response::Array(items) => Frame::Array(items.map(|v| v.into_iter().map(to_frame).collect())),
        Response::Map(pairs) => Frame::Map(pairs.into_iter().map(|(k, v)| (to_frame(k), to_frame(v))).collect()),
    }
}

/// DESIGN.md's contract: redirect to the leader, say when there is none, and
/// never report a definite failure for what may have been committed.
pub fn node_error(e: &NodeError, slot: u16) -> Frame {
    match e {
        NodeError::NotLeader { leader_addr: Some(addr), .. } if !addr.is_empty() => {
            Frame::Error(format!("MOVED {slot} {addr}"))
        }
        NodeError::NotLeader { .. } => Frame::Error("CLUSTERDOWN no leader".into()),
        NodeError::Unknown(why) => Frame::Error(format!("TIMEOUT the outcome is unknown: {why}")),
        NodeError::Refused(why) => Frame::Error(format!("ERR {why}")),
        NodeError::Stopped | NodeError::Storage(_) => Frame::Error(format!("ERR node unavailable: {e}")),
    }
}
