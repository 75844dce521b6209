//! Driving N connections through a workload and collecting what they measured.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::SeedableRng;

use crate::progress;
use crate::report::{Report, ReportSettings};
use crate::schedule::Schedule;
use crate::stats::{Recorder, StatsError};
use crate::workload::{Op, OpGenerator, OpKind, Workload, WorkloadError};

/// When a run stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    /// After this long (operations in flight at the end still complete).
    Duration(Duration),
    /// After this many operations in total.
    Ops(u64),
}

/// The settings of a run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// A name for the system under test, repeated in the report.
    pub target: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Operations sent together on one connection before reading the replies.
    pub pipeline: usize,
    /// When to stop.
    pub limit: Limit,
    /// Total target rate in operations per second (open loop), or closed loop.
    pub rate: Option<f64>,
    /// The operations.
    pub workload: Workload,
    /// Seed of the operation streams (connection `i` uses `seed + i`).
    pub seed: u64,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

/// The outcome of one operation the system answered.
#[derive(Clone, Debug, PartialEq)]
pub enum OpResult {
    /// Done as asked (a GET of a missing key is a success too).
    Ok,
    /// Refused; the string is the short kind of error (`ERR`, `CLUSTERDOWN`, a gRPC code).
    Err(String),
}

/// A connection-level failure: the batch's outcome is unknown.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The socket failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not a valid reply.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Anything else the client library reported.
    #[error("{0}")]
    Other(String),
}

/// One connection to the system under test.
pub trait Connection: Send + 'static {
    /// Executes `ops` in order as one pipeline and pushes one result per op to
    /// `results` (following redirects itself where the protocol has them).
    fn execute(
        &mut self,
        ops: &[Op],
        results: &mut Vec<OpResult>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// A system under test: opens connections.
pub trait Backend: Send + Sync + 'static {
    /// Its connection type.
    type Conn: Connection;
    /// Opens connection number `index` (backends may spread them over endpoints).
    fn connect(&self, index: usize) -> impl Future<Output = Result<Self::Conn, BackendError>> + Send;
}

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings make no sense.
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The workload is invalid.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// A histogram could not be created.
    #[error(transparent)]
    Stats(#[from] StatsError),
    /// A connection could not be opened before the start.
    #[error("connecting: {0}")]
    Connect(BackendError),
    /// A connection task panicked.
    #[error("a connection task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Open loop: how late past the deadline a due operation is still sent.
const LATE_WAKE_GRACE: Duration = Duration::from_millis(20);

/// How long a connection that failed waits before reconnecting.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Runs `config` against `backend` and reports what was measured.
pub async fn run<B: Backend>(backend: Arc<B>, config: &RunConfig) -> Result<Report, RunError> {
    validate(config)?;
    let generator = config.workload.generator()?;
    let mut conns = Vec::with_capacity(config.connections);
    for i in 0..config.connections {
        conns.push(backend.connect(i).await.map_err(RunError::Connect)?);
    }
    let start = Instant::now();
    let shared = Shared {
        start,
        deadline: match config.limit {
            Limit::Duration(d) => Some(start + d),
            Limit::Ops(_) => None,
        },
        budget: match config.limit {
            Limit::Ops(n) => Some(Arc::new(AtomicU64::new(n))),
            Limit::Duration(_) => None,
        },
        done: Arc::new(AtomicU64::new(0)),
        pipeline: config.pipeline,
    };
    let progress = config.progress.then(|| progress::spawn(shared.done.clone(), config.limit, start));
    let mut tasks = Vec::with_capacity(conns.len());
    for (i, conn) in conns.into_iter().enumerate() {
        let task = Task {
            index: i,
            backend: backend.clone(),
            generator: generator.clone(),
            rng: Xoshiro256PlusPlus::seed_from_u64(config.seed.wrapping_add(i as u64)),
            schedule: Schedule::for_connection(config.rate, i, config.connections),
            shared: shared.clone(),
            recorder: Recorder::new()?,
        };
        tasks.push(tokio::spawn(task.drive(conn)));
    }
    let mut total = Recorder::new()?;
    for task in tasks {
        total.merge(&task.await?);
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let settings = ReportSettings {
        target: config.target.clone(),
        workload: config.workload.clone(),
        connections: config.connections,
        pipeline: config.pipeline,
        rate: config.rate,
    };
    Ok(Report::new(settings, &total, elapsed_s))
}

fn validate(config: &RunConfig) -> Result<(), RunError> {
    if config.connections == 0 {
        return Err(RunError::Settings("--connections must be at least 1".into()));
    }
    if config.pipeline == 0 {
        return Err(RunError::Settings("--pipeline must be at least 1".into()));
    }
    if let Some(rate) = config.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(RunError::Settings(format!("--rate must be positive, got {rate}")));
    }
    Ok(())
}

/// Writes every key of `workload` once (SET, closed loop, not measured), so
/// reads find values; returns how many writes failed.
pub async fn prefill<B: Backend>(
    backend: Arc<B>,
    workload: &Workload,
    connections: usize,
    pipeline: usize,
) -> Result<u64, RunError> {
    let connections = connections.max(1) as u64;
    let pipeline = pipeline.max(1) as u64;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let mut conn = backend.connect(c as usize).await.map_err(RunError::Connect)?;
        let keys = workload.keys;
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            let mut results = Vec::new();
            let mut key = c * pipeline;
            while key < keys {
                let ops: Vec<Op> = (key..(key + pipeline).min(keys)).map(|key| Op { kind: OpKind::Set, key }).collect();
                results.clear();
                match conn.execute(&ops, &mut results).await {
                    Ok(()) => failed += results.iter().filter(|r| **r != OpResult::Ok).count() as u64,
                    Err(_) => failed += ops.len() as u64,
                }
                key += connections * pipeline;
            }
            failed
        }));
    }
    let mut failed = 0;
    for task in tasks {
        failed += task.await?;
    }
    Ok(failed)
}

/// What every connection task of a run shares.
#[derive(Clone)]
struct Shared {
    start: Instant,
    deadline: Option<Instant>,
    /// Operations left to issue (`Limit::Ops`).
    budget: Option<Arc<AtomicU64>>,
    /// Operations completed, for the progress line.
    done: Arc<AtomicU64>,
    pipeline: usize,
}

impl Shared {
    /// Takes up to `n` operations from the budget; 0 when it is spent.
    fn take(&self, n: usize) -> usize {
        let Some(budget) = &self.budget else { return n };
        let taken =
            budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| Some(left.saturating_sub(n as u64)));
        let left = taken.unwrap_or(0);
        left.min(n as u64) as usize
    }

    fn past_deadline(&self, t: Instant) -> bool {
        self.deadline.is_some_and(|d| t >= d)
    }
}

struct Task<B: Backend> {
    index: usize,
    backend: Arc<B>,
    generator: OpGenerator,
    rng: Xoshiro256PlusPlus,
    schedule: Schedule,
    shared: Shared,
    recorder: Recorder,
}

impl<B: Backend> Task<B> {
    async fn drive(mut self, mut conn: B::Conn) -> Recorder {
        let mut issued: u64 = 0;
        let mut ops = Vec::with_capacity(self.shared.pipeline);
        let mut results = Vec::with_capacity(self.shared.pipeline);
        loop {
            if let Some(due) = self.schedule.due(issued) {
                let at = self.shared.start + due;
                if self.shared.past_deadline(at) {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
            }
            let now = Instant::now();
            // An open-loop operation due before the deadline is still sent if
            // the timer woke a little late; a closed loop stops at the deadline.
            let grace = if self.schedule == Schedule::Closed { Duration::ZERO } else { LATE_WAKE_GRACE };
            if self.shared.past_deadline(now - grace) {
                break;
            }
            let n = self.shared.take(self.schedule.due_by(issued, now - self.shared.start, self.shared.pipeline));
            if n == 0 {
                break;
            }
            ops.clear();
            ops.extend((0..n).map(|_| self.generator.next_op(&mut self.rng)));
            results.clear();
            let sent = Instant::now();
            let outcome = conn.execute(&ops, &mut results).await;
            let finished = Instant::now();
            match outcome {
                Ok(()) => self.record(issued, &ops, &results, sent, finished),
                Err(_) => {
                    ops.iter().for_each(|_| self.recorder.record_error("connection"));
                    match self.reconnect().await {
                        Some(c) => conn = c,
                        None => break,
                    }
                }
            }
            issued += n as u64;
            self.shared.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.recorder.behind = self.behind(issued);
        self.recorder
    }

    fn record(&mut self, first: u64, ops: &[Op], results: &[OpResult], sent: Instant, finished: Instant) {
        let at = finished - self.shared.start;
        for (i, op) in ops.iter().enumerate() {
            // Open loop: from the due time, so time spent waiting to send counts.
            let intended = self.schedule.due(first + i as u64).map_or(sent, |d| self.shared.start + d);
            match results.get(i) {
                Some(OpResult::Ok) => self.recorder.record(op.kind, finished.saturating_duration_since(intended), at),
                Some(OpResult::Err(kind)) => self.recorder.record_error(kind),
                None => self.recorder.record_error("no-reply"),
            }
        }
    }

    /// A new connection, retried until the deadline (or a few times without one).
    async fn reconnect(&self) -> Option<B::Conn> {
        for _ in 0..50 {
            tokio::time::sleep(RECONNECT_PAUSE).await;
            if self.shared.past_deadline(Instant::now()) {
                return None;
            }
            if let Ok(c) = self.backend.connect(self.index).await {
                return Some(c);
            }
        }
        None
    }

    /// Open loop with a deadline: operations due before it that were not issued.
    fn behind(&self, issued: u64) -> u64 {
        let (Some(deadline), Schedule::Open { offset, interval }) = (self.shared.deadline, self.schedule) else {
            return 0;
        };
        let window = (deadline - self.shared.start).saturating_sub(offset);
        let due = (window.as_secs_f64() / interval.as_secs_f64()).ceil() as u64;
        due.saturating_sub(issued)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::workload::Distribution;
    use std::sync::Mutex;

    /// An in-memory backend that answers after a fixed delay and logs what it saw.
    struct Fake {
        delay: Duration,
        seen: Arc<Mutex<Vec<(usize, Op)>>>,
        fail_key: Option<u64>,
    }

    struct FakeConn {
        index: usize,
        delay: Duration,
        seen: Arc<Mutex<Vec<(usize, Op)>>>,
        fail_key: Option<u64>,
    }

    impl Connection for FakeConn {
        async fn execute(&mut self, ops: &[Op], results: &mut Vec<OpResult>) -> Result<(), BackendError> {
            tokio::time::sleep(self.delay).await;
            let mut seen = self.seen.lock().unwrap();
            for op in ops {
                seen.push((self.index, *op));
                results.push(if Some(op.key) == self.fail_key { OpResult::Err("ERR".into()) } else { OpResult::Ok });
            }
            Ok(())
        }
    }

    impl Backend for Fake {
        type Conn = FakeConn;
        async fn connect(&self, index: usize) -> Result<FakeConn, BackendError> {
            Ok(FakeConn { index, delay: self.delay, seen: self.seen.clone(), fail_key: self.fail_key })
        }
    }

    fn config(limit: Limit, connections: usize, pipeline: usize, rate: Option<f64>) -> RunConfig {
        RunConfig {
            target: "fake".into(),
            connections,
            pipeline,
            limit,
            rate,
            workload: Workload { keys: 10, distribution: Distribution::Uniform, value_size: 8, read_percent: 50 },
            seed: 1,
            progress: false,
        }
    }

    fn fake(delay: Duration, fail_key: Option<u64>) -> Arc<Fake> {
        Arc::new(Fake { delay, seen: Arc::new(Mutex::new(Vec::new())), fail_key })
    }

    #[tokio::test]
    async fn an_operation_count_is_exact() {
        let backend = fake(Duration::from_millis(1), None);
        let report = run(backend.clone(), &config(Limit::Ops(1000), 7, 16, None)).await.unwrap();
        assert_eq!(report.ops, 1000);
        assert_eq!(backend.seen.lock().unwrap().len(), 1000);
        let per_conn = |c| backend.seen.lock().unwrap().iter().filter(|(i, _)| *i == c).count();
        assert!((0..7).all(|c| per_conn(c) > 0), "every connection took part");
    }

    #[tokio::test]
    async fn errors_are_counted_by_kind_not_as_latency() {
        let backend = fake(Duration::ZERO, Some(3));
        let report = run(backend, &config(Limit::Ops(2000), 2, 4, None)).await.unwrap();
        let errors = report.error_kinds.get("ERR").copied().unwrap_or(0);
        assert!(errors > 100, "about a tenth of the keys fail: {errors}");
        assert_eq!(report.ops + report.errors, 2000);
    }

    #[tokio::test]
    async fn open_loop_counts_queueing_time() {
        // 1000 ops/s on one connection that takes 5 ms per op: it falls behind,
        // and latency measured from the due time grows far past the service time.
        let backend = fake(Duration::from_millis(5), None);
        let report =
            run(backend, &config(Limit::Duration(Duration::from_millis(500)), 1, 1, Some(1000.0))).await.unwrap();
        // (About 400 ms of backlog by the end.)
        let open_max = report.latency["all"].max_us;
        assert!(open_max > 200_000, "max {open_max} µs hides the queueing");
        assert!(report.behind > 200, "{} ops never sent", report.behind);
        // The same service time in a closed loop shows only itself (compared
        // relatively, so a loaded machine's slow timers do not fail the test).
        let backend = fake(Duration::from_millis(5), None);
        let closed = run(backend, &config(Limit::Duration(Duration::from_millis(300)), 1, 1, None)).await.unwrap();
        let closed_max = closed.latency["all"].max_us;
        assert!(open_max > 2 * closed_max, "open loop max {open_max} µs, closed loop max {closed_max} µs");
    }

    #[tokio::test]
    async fn open_loop_keeps_the_rate_when_the_system_keeps_up() {
        let backend = fake(Duration::ZERO, None);
        let report = run(backend, &config(Limit::Duration(Duration::from_secs(1)), 4, 8, Some(2000.0))).await.unwrap();
        assert!((1800..=2100).contains(&report.ops), "{} ops at 2000/s for 1 s", report.ops);
        assert_eq!(report.behind, 0);
    }

    #[tokio::test]
    async fn bad_settings_are_refused() {
        let backend = fake(Duration::ZERO, None);
        assert!(matches!(run(backend.clone(), &config(Limit::Ops(1), 0, 1, None)).await, Err(RunError::Settings(_))));
        assert!(matches!(run(backend.clone(), &config(Limit::Ops(1), 1, 0, None)).await, Err(RunError::Settings(_))));
        assert!(matches!(run(backend, &config(Limit::Ops(1), 1, 1, Some(-1.0))).await, Err(RunError::Settings(_))));
    }

    #[tokio::test]
    async fn prefill_writes_every_key_once() {
        let backend = fake(Duration::ZERO, None);
        let w = Workload { keys: 103, distribution: Distribution::Uniform, value_size: 8, read_percent: 100 };
        assert_eq!(prefill(backend.clone(), &w, 4, 10).await.unwrap(), 0);
        let mut keys: Vec<u64> = backend.seen.lock().unwrap().iter().map(|(_, op)| op.key).collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..103).collect::<Vec<_>>());
    }
}
