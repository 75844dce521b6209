//! One client connection: parse what is buffered, answer in order, read more.
//! Requests pipelined in one read are proposed together (their writes share
//! AppendEntries and fsyncs), a run of pipelined reads shares one ReadIndex,
//! and everything is answered in order.

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
use crate::session;
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
    /// Already answered.
    Now(Frame),
    /// A write to propose under a session ([`kv::NO_SESSION`] for none);
    /// the key names the slot of a redirect (hashed only if one is needed).
    Write(RequestBody, Option<Bytes>, Session),
    /// A read of the store.
    Read(Command),
    /// Anything else that needs the node; runs alone.
    Later(Reply),
}

/// A client session (Raft thesis §6.3): `(client id, sequence)`, or
/// `(kv::NO_SESSION, 0)` for a plain Redis client.
pub(crate) type Session = (u64, u64);

/// Plain Redis clients have no session: each request is applied every time it is seen.
const NO_SESSION: Session = (kv::NO_SESSION, 0);

/// What the commands of the current pipeline segment are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Segment {
    Empty,
    Writes,
    Reads,
}

/// Command names up to this long are upper-cased on the stack.
const NAME_BYTES_MAX: usize = 32;

/// `raw` in upper case, in `buf` when it fits (every command name does), so
/// dispatching a command allocates nothing.
fn upper_case<'a>(raw: &[u8], buf: &'a mut [u8; NAME_BYTES_MAX]) -> std::borrow::Cow<'a, str> {
    if let Some(dst) = buf.get_mut(..raw.len()) {
        dst.copy_from_slice(raw);
        dst.make_ascii_uppercase();
        if let Ok(name) = std::str::from_utf8(dst) {
            return std::borrow::Cow::Borrowed(name);
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(raw).to_ascii_uppercase())
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
            if input.len() > self.shared.config.max_request_bytes {
                // Like Redis past `client-query-buffer-limit`: drop this client only.
                let error = Frame::Error("ERR Protocol error: query buffer limit reached".into());
                error.encode(self.version, &mut output);
                self.stream.write_all(&output).await?;
                return Ok(());
            }
        }
    }

    /// Answers a pipeline in request order. Consecutive writes are proposed
    /// one after another (so the log keeps their order) and awaited together
    /// (so they share AppendEntries and fsyncs); consecutive reads run
    /// together. Between a write and a read the pipeline waits, so every
    /// command sees exactly the effects of the commands before it.
    async fn answer(&mut self, outcomes: Vec<Outcome>, output: &mut BytesMut) {
        let mut frames: Vec<Option<Frame>> = (0..outcomes.len()).map(|_| None).collect();
        let mut segment: Vec<(usize, Reply)> = Vec::new();
        let mut reads: Vec<(usize, Command)> = Vec::new();
        let mut kind = Segment::Empty;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let wanted = match &outcome {
                Outcome::Now(_) => kind,
                Outcome::Write(..) => Segment::Writes,
                Outcome::Read(..) => Segment::Reads,
                Outcome::Later(_) => Segment::Empty,
            };
            if wanted != kind || wanted == Segment::Empty {
                self.read_all(&mut reads, &mut frames).await;
                flush(&mut segment, &mut frames).await;
            }
            kind = wanted;
            match outcome {
                Outcome::Now(frame) => frames[i] = Some(frame),
                Outcome::Write(body, key, session) => segment.push((i, self.submit(body, key, session).await)),
                Outcome::Read(command) => reads.push((i, command)),
                Outcome::Later(reply) => segment.push((i, reply)),
            }
        }
        self.read_all(&mut reads, &mut frames).await;
        flush(&mut segment, &mut frames).await;
        for frame in frames.into_iter().flatten() {
            frame.encode(self.version, output);
        }
    }

    /// Hands a write to the node now; the reply comes later.
    async fn submit(&self, body: RequestBody, key: Option<Bytes>, (client_id, seq): Session) -> Reply {
        let Some(node) = self.shared.node() else { return Box::pin(std::future::ready(starting_error())) };
        let request = Request { client_id, seq, time_ms: now_ms(), body };
        match node.submit(Bytes::from(request.encode())).await {
            Ok(proposal) => Box::pin(async move {
                match proposal.await {
                    Ok(response) => to_frame(response),
                    Err(e) => store_error(&e, slot_of(key.as_ref())),
                }
            }),
            Err(e) => Box::pin(std::future::ready(store_error(&e, slot_of(key.as_ref())))),
        }
    }

    /// Answers a run of reads, all invoked before it starts: linearizable
    /// (one ReadIndex for the run, thesis §6.4) unless the connection said
    /// READONLY, and all served under one read of the store.
    async fn read_all(&self, reads: &mut Vec<(usize, Command)>, frames: &mut [Option<Frame>]) {
        if reads.is_empty() {
            return;
        }
        let reads = std::mem::take(reads);
        let Some(node) = self.shared.node() else {
            // Nothing to read from yet, not even a stale state.
            for (i, _) in &reads {
                frames[*i] = Some(starting_error());
            }
            return;
        };
        let index = if self.readonly { Ok(0) } else { node.read_index().await };
        let answers = match index {
            Ok(index) => {
                let now = now_ms();
                let read = |m: &crate::machine::KvMachine| -> Vec<Frame> {
                    reads.iter().map(|(_, command)| to_frame(m.store.read(command, now))).collect()
                };
                node.read_at(index, read).await
            }
            Err(e) => Err(e),
        };
        match answers {
            Ok(answers) => {
                for ((i, _), frame) in reads.iter().zip(answers) {
                    frames[*i] = Some(frame);
                }
            }
            Err(e) => {
                for (i, command) in &reads {
                    frames[*i] = Some(store_error(&e, slot_of(command.first_key())));
                }
            }
        }
    }

    fn dispatch(&mut self, args: Vec<Bytes>) -> Outcome {
        let mut buf = [0u8; NAME_BYTES_MAX];
        let name = upper_case(&args[0], &mut buf);
        if !self.authenticated && !matches!(name.as_ref(), "AUTH" | "HELLO" | "QUIT") {
            return Outcome::Now(Frame::Error("NOAUTH Authentication required.".into()));
        }
        if self.multi.is_some() && !matches!(name.as_ref(), "EXEC" | "DISCARD" | "MULTI" | "QUIT") {
            return Outcome::Now(self.queue(&args));
        }
        match name.as_ref() {
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
            "RAFTKV.SESSION" => match session::parse(&args) {
                Ok((session, command)) => self.store_command(command, session),
                Err(frame) => Outcome::Now(frame),
            },
            "INFO" | "RAFT.NODE" | "RAFT.TRANSFER-LEADER" | "RAFT.SNAPSHOT" => {
                Outcome::Later(admin::command(self.shared.clone(), name.into_owned(), args))
            }
            _ => match admin::connection_command(self, name.as_ref(), &args) {
                Some(frame) => Outcome::Now(frame),
                None => self.store_command(&args, NO_SESSION),
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
                let key = commands.iter().find_map(Command::first_key).cloned();
                Outcome::Write(RequestBody::Transaction(commands), key, NO_SESSION)
            }
        }
    }

    fn store_command(&mut self, args: &[Bytes], session: Session) -> Outcome {
        let command = match Command::parse(args) {
            Ok(command) => command,
            Err(e) => return Outcome::Now(Frame::Error(e.to_string())),
        };
        if command.is_write() {
            let key = command.first_key().cloned();
            Outcome::Write(RequestBody::Command(command), key, session)
        } else {
            Outcome::Read(command)
        }
    }
}

/// The slot a redirect names for a command on `key` (0 for none). Hashed
/// only when an answer needs it: it is a CRC16 over the key, which on a
/// pipelined GET was 5% of the leader's time.
fn slot_of(key: Option<&Bytes>) -> u16 {
    key.map_or(0, |k| key_slot(k))
}

/// Waits for a segment's replies and puts them in their places. The writes
/// are all proposed already and are applied in log order, which is the
/// order awaited here: by the time the first is answered most of the others
/// are too, so the task wakes about once per segment (`join_all` would poll
/// every pending reply on each wake).
async fn flush(segment: &mut Vec<(usize, Reply)>, frames: &mut [Option<Frame>]) {
    for (i, reply) in segment.drain(..) {
        frames[i] = Some(reply.await);
    }
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

/// The answer to a command that needs the node while it is still starting
/// (opening its log, restoring its snapshot): it knows no leader yet and
/// nothing was executed, so DESIGN.md's `-CLUSTERDOWN no leader`, which
/// clients answer by trying another node after a pause.
pub fn starting_error() -> Frame {
    Frame::Error("CLUSTERDOWN no leader known yet: this node is starting (recovering its log and snapshot)".into())
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

/// [`node_error`] for a key command: a refusal that left nothing done (a
/// leadership transfer under way, an entry overwritten by a new leader
/// before it committed, a node stopping) is `-TRYAGAIN`, so a client knows
/// to retry rather than report a failure of the command itself.
pub fn store_error(e: &NodeError, slot: u16) -> Frame {
    match e {
        NodeError::Refused(why) => Frame::Error(format!("TRYAGAIN {why}")),
        NodeError::Stopped => Frame::Error("TRYAGAIN node stopping".into()),
        e => node_error(e, slot),
    }
}
