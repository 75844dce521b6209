//! Clients under chaos: each runs a loop of random operations on a small
//! key set through [`crate::Client`] and records what it saw in
//! lincheck's model.
//!
//! Three families of keys, so every operation's result fits the model:
//! registers `r*` (get, put, append, delete, SETNX as a compare-and-set
//! from absent), append-only logs `a<epoch>.*` (append a unique token, get;
//! a new set of log keys every [`LOG_EPOCH`] so values stay short) and
//! counters `c*` (INCRBY, get).
//!
//! An operation whose outcome the client never learned
//! ([`ClientError::OutcomeUnknown`]) is recorded with no completion: it may
//! or may not have happened. A definite failure (nothing was applied) is
//! not recorded at all. Anything else (an error reply of the command, a
//! reply of the wrong type) cannot happen with this workload and is kept as
//! an anomaly that fails the run.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lincheck::{Op, Operation};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use crate::{Client, ClientConfig, ClientError};

/// Registers per run.
const REGISTERS: u64 = 4;
/// Append-only log keys per epoch.
const LOGS: u64 = 4;
/// Counters per run.
const COUNTERS: u64 = 2;
/// How long one set of log keys is used.
pub const LOG_EPOCH: Duration = Duration::from_secs(10);

/// What every client records into.
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
    /// `(key, token)` of every acknowledged append to a log key.
    acked_appends: Mutex<Vec<(String, String)>>,
    anomalies: Mutex<Vec<String>>,
    /// Operations whose client learned the outcome.
    pub ok: AtomicU64,
    /// Operations whose outcome stayed unknown.
    pub unknown: AtomicU64,
    /// Operations that definitely failed (nothing applied; not recorded).
    pub failed: AtomicU64,
}

impl Recorder {
    /// An empty recorder whose clock starts now.
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
            acked_appends: Mutex::new(Vec::new()),
            anomalies: Mutex::new(Vec::new()),
            ok: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Microseconds since the recorder was made: the history's clock.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn push(&self, op: Operation) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }

    /// Records an operation of the final reads.
    pub fn record_final(&self, op: Operation) {
        self.push(op);
    }

    /// Records an anomaly that fails the run.
    pub fn anomaly(&self, what: String) {
        self.anomalies.lock().unwrap_or_else(|e| e.into_inner()).push(what);
    }

    /// The recorded operations, anomalies and acknowledged log appends.
    pub fn take(&self) -> (Vec<Operation>, Vec<String>, Vec<(String, String)>) {
        let ops = std::mem::take(&mut *self.ops.lock().unwrap_or_else(|e| e.into_inner()));
        let anomalies = std::mem::take(&mut *self.anomalies.lock().unwrap_or_else(|e| e.into_inner()));
        let appends = std::mem::take(&mut *self.acked_appends.lock().unwrap_or_else(|e| e.into_inner()));
        (ops, anomalies, appends)
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// All keys the workload may have touched up to `elapsed`, for the final reads.
pub fn all_keys(elapsed: Duration) -> Vec<String> {
    let epochs = elapsed.as_secs() / LOG_EPOCH.as_secs() + 1;
    let mut keys: Vec<String> = (0..REGISTERS).map(|i| format!("r{i}")).collect();
    keys.extend((0..COUNTERS).map(|i| format!("c{i}")));
    for epoch in 0..epochs {
        keys.extend((0..LOGS).map(|i| format!("a{epoch}.{i}")));
    }
    keys
}

/// Whether `key` is an append-only log key.
pub fn is_log_key(key: &str) -> bool {
    key.starts_with('a')
}

/// One client's loop, until `stop` is set.
pub async fn run_client(id: u64, nodes: Vec<SocketAddr>, seed: u64, stop: &AtomicBool, recorder: &Recorder) {
    let mut config = ClientConfig::new(nodes);
    config.deadline = Duration::from_secs(5);
    config.attempt_timeout = Duration::from_secs(1);
    let mut client = match Client::new(config) {
        Ok(client) => client,
        Err(e) => return recorder.anomaly(format!("client {id}: {e}")),
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let op = plan(&mut rng, id, n, recorder.start.elapsed());
        let invoke = recorder.now();
        let result = execute(&mut client, &op).await;
        let complete = recorder.now();
        record(recorder, id, invoke, complete, op, result);
    }
}

/// Picks the next operation (results are placeholders until it completes).
fn plan(rng: &mut Xoshiro256PlusPlus, client: u64, n: u64, elapsed: Duration) -> Op {
    let roll = rng.next_u64() % 100;
    let token = format!("{client}.{n}");
    match rng.next_u64() % 10 {
        // Registers.
        0..=3 => {
            let key = format!("r{}", rng.next_u64() % REGISTERS);
            match roll {
                0..40 => Op::Get { key, result: None },
                40..65 => Op::Put { key, value: token },
                65..80 => Op::Append { key, value: format!(";{token}") },
                80..90 => Op::Delete { key, result: false },
                _ => Op::Cas { key, expected: None, new: token, result: false },
            }
        }
        // Append-only logs.
        4..=6 => {
            let epoch = elapsed.as_secs() / LOG_EPOCH.as_secs();
            let key = format!("a{epoch}.{}", rng.next_u64() % LOGS);
            if roll < 60 { Op::Append { key, value: format!(";{token};") } } else { Op::Get { key, result: None } }
        }
        // Counters.
        _ => {
            let key = format!("c{}", rng.next_u64() % COUNTERS);
            if roll < 60 {
                Op::Incr { key, by: (rng.next_u64() % 3 + 1) as i64, result: 0 }
            } else {
                Op::Get { key, result: None }
            }
        }
    }
}

/// Runs `op` and returns it with the results filled in.
async fn execute(client: &mut Client, op: &Op) -> Result<Op, ClientError> {
    let text = |b: bytes::Bytes| String::from_utf8_lossy(&b).into_owned();
    Ok(match op.clone() {
        Op::Get { key, .. } => {
            let result = client.get(&key).await?.map(text);
            Op::Get { key, result }
        }
        Op::Put { key, value } => {
            client.set(&key, &value).await?;
            Op::Put { key, value }
        }
        Op::Append { key, value } => {
            client.append(&key, &value).await?;
            Op::Append { key, value }
        }
        Op::Incr { key, by, .. } => {
            let result = client.incr_by(&key, by).await?;
            Op::Incr { key, by, result }
        }
        Op::Delete { key, .. } => {
            let result = client.del(&key).await?;
            Op::Delete { key, result }
        }
        Op::Cas { key, new, .. } => {
            let result = client.set_nx(&key, &new).await?;
            Op::Cas { key, expected: None, new, result }
        }
    })
}

fn record(recorder: &Recorder, client: u64, invoke: u64, complete: u64, planned: Op, result: Result<Op, ClientError>) {
    match result {
        Ok(op) => {
            if let Op::Append { key, value } = &op
                && is_log_key(key)
            {
                let mut appends = recorder.acked_appends.lock().unwrap_or_else(|e| e.into_inner());
                appends.push((key.clone(), value.clone()));
            }
            recorder.ok.fetch_add(1, Ordering::Relaxed);
            recorder.push(Operation::completed(client, invoke, complete, op));
        }
        Err(ClientError::OutcomeUnknown(_)) => {
            recorder.unknown.fetch_add(1, Ordering::Relaxed);
            if !planned.is_read_only() {
                recorder.push(Operation::unknown(client, invoke, planned));
            }
        }
        Err(ClientError::Unavailable { .. }) => {
            recorder.failed.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => recorder.anomaly(format!("client {client}: {planned}: {e}")),
    }
}
