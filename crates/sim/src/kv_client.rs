//! A key-value client in the simulated cluster, as a Redis client of raftkv
//! would behave: one request at a time under a session (Raft thesis §6.3),
//! retries after a timeout or a redirect with the same `(client, seq)` so a
//! request is applied at most once, leader discovery from the hints nodes
//! give, and a history of what it saw in [`lincheck`] terms.
//!
//! Writes are proposed at the node the client thinks leads and complete when
//! that node applies the entry at the proposed index and it is this
//! request (another request at that index means it was lost: retry). Reads
//! go through ReadIndex (thesis §6.4): the node confirms its leadership, and
//! the read is served from its store once it has applied the read index.
//!
//! An operation whose client gives up is recorded with an unknown outcome:
//! it may have been applied, or may still be.

use bytes::Bytes;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use kv::{Command, Request, RequestBody, Response, STALE_REQUEST_PREFIX};
use lincheck::{Op, Operation};
use raft::{Index, NodeId};

use crate::cluster::Cluster;
use crate::workload::KvOp;

/// An attempt waits this long for an answer before the client retries (the
/// same request, elsewhere if it learned of another leader).
pub const ATTEMPT_TIMEOUT_MS: u64 = 1_000;
/// The client waits this long between a refused attempt and the next one.
pub const RETRY_BACKOFF_MS: u64 = 20;

/// What one attempt of the current operation is waiting for.
#[derive(Clone, Debug)]
enum Attempt {
    /// Nothing sent; try again at this time.
    Backoff { until: u64 },
    /// Proposed at `node` (in its `incarnation`) at `index`.
    Write { node: usize, incarnation: u64, index: Index },
    /// ReadIndex `ctx` asked of `node`; `index` once it answered.
    Read { node: usize, ctx: u64, index: Option<Index> },
}

/// The operation in flight.
#[derive(Clone, Debug)]
struct Pending {
    op: KvOp,
    seq: u64,
    invoke: u64,
    attempt: Attempt,
    attempt_started: u64,
    attempts: u64,
}

/// What a poll of the client produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Invoked an operation.
    Invoked {
        /// Its sequence number.
        seq: u64,
        /// The operation.
        op: KvOp,
    },
    /// An operation completed, with the reply.
    Completed {
        /// Its sequence number.
        seq: u64,
        /// The history entry.
        op: Operation,
        /// Attempts it took.
        attempts: u64,
    },
    /// The client gave up on an operation: its outcome is unknown.
    GaveUp {
        /// Its sequence number.
        seq: u64,
        /// The history entry.
        op: Operation,
    },
}

/// One client: a session id, a sequence counter and at most one operation in
/// flight.
#[derive(Debug)]
pub struct KvClient {
    /// Session id (never [`kv::NO_SESSION`]) and history client label.
    pub id: u64,
    rng: Xoshiro256PlusPlus,
    seq: u64,
    next_ctx: u64,
    leader_guess: usize,
    pending: Option<Pending>,
    next_op_at: u64,
    /// Give up on an operation after this long (it is then unknown); `None`
    /// never gives up (the liveness phase, which fails instead).
    pub give_up_ms: Option<u64>,
    /// Longest think time between two operations, in ms.
    pub think_ms_max: u64,
    /// Whether to generate new operations (false: finish the current one).
    pub generating: bool,
    /// Whether to generate only reads.
    pub read_only: bool,
    /// Planted client bug (a test hook): serve reads from any node's store
    /// at once, without ReadIndex, as Redis's `READONLY` allows. Only the
    /// linearizability check can see the stale reads this gives.
    pub stale_reads: bool,
    /// Planted client bug (a test hook): a retry gets a new sequence number,
    /// as if the client had no session, so a request whose first attempt
    /// was applied is applied again.
    pub fresh_seq_per_retry: bool,
}

impl KvClient {
    /// Client `id` (> 0) of a run seeded with `seed`.
    pub fn new(id: u64, seed: u64) -> Self {
        KvClient {
            id,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            seq: 0,
            next_ctx: 0,
            leader_guess: id as usize,
            pending: None,
            next_op_at: 0,
            give_up_ms: Some(4_000),
            think_ms_max: 30,
            generating: true,
            read_only: false,
            stale_reads: false,
            fresh_seq_per_retry: false,
        }
    }

    /// The invoke time of the operation in flight, if any.
    pub fn pending_since(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.invoke)
    }

    /// The operation in flight as an unknown-outcome history entry (for the
    /// end of a run), taking it.
    pub fn abandon(&mut self) -> Option<Operation> {
        self.pending.take().map(|p| Operation::unknown(self.id, p.invoke, p.op.unknown()))
    }

    /// Runs the client at `c.now`: starts, advances or finishes its
    /// operation. A reply no correct store could give is an error.
    pub fn poll(&mut self, c: &mut Cluster, keys: &crate::workload::KeySet) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        if self.pending.is_none() {
            if !self.generating || c.now < self.next_op_at {
                return Ok(events);
            }
            self.seq += 1;
            let op = match self.read_only {
                true => keys.generate_read(&mut self.rng),
                false => keys.generate(&mut self.rng, self.id, self.seq),
            };
            events.push(Event::Invoked { seq: self.seq, op: op.clone() });
            let attempt = Attempt::Backoff { until: c.now };
            self.pending =
                Some(Pending { op, seq: self.seq, invoke: c.now, attempt, attempt_started: c.now, attempts: 0 });
        }
        if let Some(done) = self.advance(c)? {
            self.pending = None;
            self.next_op_at = c.now + self.rng.next_u64() % (self.think_ms_max + 1);
            events.push(done);
        }
        Ok(events)
    }

    /// Moves the operation in flight on; returns its end, if it ended.
    fn advance(&mut self, c: &mut Cluster) -> Result<Option<Event>, String> {
        let Some(mut p) = self.pending.take() else { return Ok(None) };
        let result = self.advance_pending(c, &mut p);
        let id = self.id;
        match result {
            Ok(Some(response)) => {
                let op = p.op.completed(&response).map_err(|e| format!("client {id} seq {}: {e}", p.seq))?;
                let entry = Operation::completed(id, p.invoke, c.now, op);
                Ok(Some(Event::Completed { seq: p.seq, op: entry, attempts: p.attempts }))
            }
            Ok(None) => {
                if self.give_up_ms.is_some_and(|limit| c.now - p.invoke >= limit) {
                    let op = Operation::unknown(id, p.invoke, p.op.unknown());
                    return Ok(Some(Event::GaveUp { seq: p.seq, op }));
                }
                self.pending = Some(p);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// One step of the attempt state machine; the reply once there is one.
    fn advance_pending(&mut self, c: &mut Cluster, p: &mut Pending) -> Result<Option<Response>, String> {
        if !matches!(p.attempt, Attempt::Backoff { .. }) && c.now - p.attempt_started >= ATTEMPT_TIMEOUT_MS {
            // No answer in time: the outcome is unknown; retry the same request.
            self.leader_guess = (self.leader_guess + 1) % c.n();
            p.attempt = Attempt::Backoff { until: c.now };
        }
        match p.attempt.clone() {
            Attempt::Backoff { until } => {
                if c.now >= until {
                    self.send(c, p);
                }
                Ok(None)
            }
            Attempt::Write { node, incarnation, index } => Ok(self.poll_write(c, p, node, incarnation, index)),
            Attempt::Read { node, ctx, index } => Ok(self.poll_read(c, p, node, ctx, index)),
        }
    }

    /// Sends the current operation to the node the client believes leads.
    fn send(&mut self, c: &mut Cluster, p: &mut Pending) {
        let node = self.leader_guess % c.n();
        p.attempts += 1;
        p.attempt_started = c.now;
        if self.fresh_seq_per_retry && p.attempts > 1 {
            self.seq += 1;
            p.seq = self.seq;
        }
        if p.op.is_read() && self.stale_reads {
            let node = self.rng.next_u64() as usize % c.n();
            p.attempt = Attempt::Read { node, ctx: 0, index: Some(0) };
            return;
        }
        if p.op.is_read() {
            self.next_ctx += 1;
            let ctx = (self.id << 40) | self.next_ctx;
            if c.read_index(node, ctx) {
                p.attempt = Attempt::Read { node, ctx, index: None };
                return;
            }
        } else {
            let request = Request { client_id: self.id, seq: p.seq, time_ms: c.now, body: p.op.body() };
            if let Some((index, _)) = c.start_command(node, Bytes::from(request.encode())) {
                let incarnation = c.nodes[node].incarnation;
                p.attempt = Attempt::Write { node, incarnation, index };
                return;
            }
        }
        self.redirect(c, node);
        p.attempt = Attempt::Backoff { until: c.now + RETRY_BACKOFF_MS };
    }

    /// A node refused: follow its leader hint, or try the next node.
    fn redirect(&mut self, c: &Cluster, refused_by: usize) {
        let hint: NodeId = c.nodes[refused_by].raft.as_ref().map_or(0, |r| r.leader());
        self.leader_guess = match hint {
            0 => (refused_by + 1) % c.n(),
            id => (id - 1) as usize,
        };
        if self.leader_guess == refused_by {
            self.leader_guess = (refused_by + 1) % c.n();
        }
    }

    fn poll_write(
        &mut self,
        c: &mut Cluster,
        p: &mut Pending,
        node: usize,
        incarnation: u64,
        index: Index,
    ) -> Option<Response> {
        let n = &mut c.nodes[node];
        if !n.is_up() || n.incarnation != incarnation {
            // The node died with the request: retry it (the session dedups).
            p.attempt = Attempt::Backoff { until: c.now + RETRY_BACKOFF_MS };
            return None;
        }
        let reply = n.kv.as_mut().and_then(|kv| kv.replies.remove(&index))?;
        if reply.client_id == self.id && reply.seq == p.seq {
            return Some(reply.response);
        }
        // Another request won the index: ours was lost there. Retry.
        self.redirect(c, node);
        p.attempt = Attempt::Backoff { until: c.now };
        None
    }

    fn poll_read(
        &mut self,
        c: &mut Cluster,
        p: &mut Pending,
        node: usize,
        ctx: u64,
        index: Option<Index>,
    ) -> Option<Response> {
        let index = match index {
            Some(index) => index,
            None => match c.reads.remove(&(node, ctx)) {
                None => return None,
                Some(None) => {
                    self.redirect(c, node);
                    p.attempt = Attempt::Backoff { until: c.now + RETRY_BACKOFF_MS };
                    return None;
                }
                Some(Some(index)) => {
                    p.attempt = Attempt::Read { node, ctx, index: Some(index) };
                    index
                }
            },
        };
        let n = &c.nodes[node];
        if !n.is_up() || n.last_applied < index {
            return None;
        }
        n.kv.as_ref().map(|kv| kv.store.read(&p.op.command(), c.now))
    }
}

/// Why a reply cannot be the answer to an operation.
pub fn unexpected(op: &KvOp, response: &Response) -> String {
    if let Response::Error(e) = response
        && e.starts_with(STALE_REQUEST_PREFIX)
    {
        return format!("{op:?} got a stale-request error with one request in flight: {e}");
    }
    format!("{op:?} got a reply no correct store gives: {response:?}")
}

/// Builds a command from words (the workload's commands always parse).
pub fn parse(words: &[&str]) -> Command {
    let args: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
    match Command::parse(&args) {
        Ok(c) => c,
        // The workload builds only well-formed commands; a failure here is a
        // bug in this file, not input.
        Err(e) => panic!("workload built a bad command {words:?}: {e}"),
    }
}

/// The request body of a command.
pub fn body(command: Command) -> RequestBody {
    RequestBody::Command(command)
}

/// The lincheck operation of a GET whose outcome is known.
pub fn get_result(key: &str, response: &Response) -> Option<Op> {
    match response {
        Response::Bulk(None) => Some(Op::Get { key: key.into(), result: None }),
        Response::Bulk(Some(b)) => {
            Some(Op::Get { key: key.into(), result: Some(String::from_utf8_lossy(b).into_owned()) })
        }
        _ => None,
    }
}
