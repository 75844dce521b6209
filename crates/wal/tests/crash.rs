//! Crash testing on the simulated disk: random operation sequences, a crash
//! at every mutating file operation (unsynced data lost, the last write
//! possibly torn), reopen, and check that everything synced is there and
//! nothing invented is. The same scenarios also check that appends
//! encoded ahead write the files plain appends write.
//!
//! `WAL_FUZZ_ITERS` sets how many random sequences run (default 100; each takes a few milliseconds).
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use raft::{Entry, HardState, Index, Storage, Term};
use wal::Wal;
use wal::sim::SimFs;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Model {
    snap: (Index, Term, Bytes),
    /// Entries after the snapshot.
    entries: Vec<Entry>,
    hs: HardState,
}

impl Model {
    fn last(&self) -> Index {
        self.snap.0 + self.entries.len() as Index
    }

    fn entry(&self, index: Index) -> Option<&Entry> {
        let k = index.checked_sub(self.snap.0 + 1)?;
        self.entries.get(k as usize)
    }

    fn term(&self, index: Index) -> Option<Term> {
        if index == self.snap.0 { Some(self.snap.1) } else { self.entry(index).map(|e| e.term) }
    }

    fn append(&mut self, entries: &[Entry]) {
        let first = entries[0].index;
        self.entries.truncate((first - self.snap.0 - 1) as usize);
        self.entries.extend_from_slice(entries);
    }

    fn install(&mut self, index: Index, term: Term, data: Bytes) {
        if self.term(index) == Some(term) {
            self.entries.drain(..(index - self.snap.0) as usize);
        } else {
            self.entries.clear();
        }
        self.snap = (index, term, data);
    }
}

/// One step of a scenario.
#[derive(Clone, Debug)]
enum Step {
    /// Entries, and whether they go in pre-encoded (`Wal::append_encoded`).
    Append(Vec<Entry>, bool),
    HardState(HardState),
    Sync,
    Snapshot(Index, Term, Bytes),
    Compact(Index),
}

/// Plans a random scenario, tracking the model to keep steps valid.
fn plan(seed: u64, len: usize) -> Vec<Step> {
    let mut rng = Rng(seed);
    let mut m = Model { snap: (0, 0, Bytes::new()), entries: Vec::new(), hs: HardState::default() };
    let mut term = 1;
    let mut steps = Vec::new();
    for _ in 0..len {
        let step = match rng.below(20) {
            0..=8 => {
                let conflict = rng.below(4) == 0 && m.last() > m.snap.0;
                let start = if conflict { m.snap.0 + 1 + rng.below(m.last() - m.snap.0) } else { m.last() + 1 };
                term += u64::from(conflict);
                let n = 1 + rng.below(6);
                Step::Append(
                    (start..start + n)
                        .map(|i| if rng.below(8) == 0 { member(i, term) } else { cmd(i, term) })
                        .collect(),
                    rng.below(2) == 0,
                )
            }
            9..=10 => Step::HardState(HardState { term, vote: rng.below(4), commit: rng.below(m.last() + 1) }),
            11..=15 => Step::Sync,
            16..=17 if m.last() > m.snap.0 => {
                let i = m.snap.0 + 1 + rng.below(m.last() - m.snap.0);
                Step::Snapshot(i, m.term(i).unwrap_or(0), Bytes::from(format!("snap-{seed}-{i}")))
            }
            16..=17 => {
                term += 1;
                Step::Snapshot(m.last() + 1 + rng.below(3), term, Bytes::from(format!("leader-{seed}")))
            }
            _ => Step::Compact(m.snap.0.saturating_sub(rng.below(3))),
        };
        apply_model(&mut m, &step);
        steps.push(step);
    }
    steps.push(Step::Sync);
    steps
}

fn apply_model(m: &mut Model, step: &Step) {
    match step {
        Step::Append(entries, _) => m.append(entries),
        Step::HardState(hs) => m.hs = *hs,
        Step::Snapshot(i, t, data) => m.install(*i, *t, data.clone()),
        Step::Sync | Step::Compact(_) => {}
    }
}

fn run_step(wal: &mut Wal, step: &Step) -> Result<(), String> {
    let r = match step {
        Step::Append(entries, false) => wal.append(entries),
        Step::Append(entries, true) => wal.append_encoded(wal.encode(entries.clone())),
        Step::HardState(hs) => wal.set_hard_state(*hs),
        Step::Sync => wal.sync().map(|_| ()),
        Step::Compact(i) => wal.compact(*i),
        Step::Snapshot(i, t, data) => {
            let snap = snapshot_file(wal, *i, *t, data).map_err(|e| e.to_string())?;
            wal.install_snapshot(snap)
        }
    };
    r.map_err(|e| e.to_string())
}

fn snapshot_file(wal: &Wal, index: Index, term: Term, data: &[u8]) -> Result<wal::SnapshotFile, wal::WalError> {
    let meta = raft::SnapshotMeta { index, term, membership: raft::Membership::new([1, 2, 3]) };
    let mut w = wal.begin_snapshot(meta)?;
    w.write(data)?;
    w.finish()
}

/// What the WAL shows after reopening.
fn observe(wal: &Wal) -> Model {
    let s = wal.storage();
    let meta = s.snapshot_meta();
    let (data, done) = s.snapshot_chunk(0, 1 << 20);
    assert!(done);
    let entries = if s.last_index() > meta.index {
        s.entries(meta.index + 1, s.last_index() + 1, u64::MAX).unwrap()
    } else {
        vec![]
    };
    Model { snap: (meta.index, meta.term, data), entries, hs: s.hard_state() }
}

/// How many leading entries of `synced` survive in `later` (by index).
fn common_prefix(synced: &Model, later: &Model) -> Index {
    let mut i = later.snap.0;
    while i < synced.last().min(later.last()) && synced.entry(i + 1) == later.entry(i + 1) {
        i += 1;
    }
    i
}

/// The recovered state must be a prefix of some state since the last sync,
/// holding at least every synced entry that no later step removed.
fn check(got: &Model, history: &[Model], ctx: &str) {
    let synced = &history[0];
    // Term and vote: the synced value or a later one. Commit is written
    // lazily (it is not needed for safety), so it may lag, never lead.
    let hs = got.hs;
    assert!(
        history.iter().any(|m| (m.hs.term, m.hs.vote) == (hs.term, hs.vote)),
        "{ctx}: term/vote {hs:?} is neither the synced nor a later value"
    );
    let max_commit = history.iter().map(|m| m.hs.commit).max().unwrap_or(0);
    assert!(hs.commit <= max_commit, "{ctx}: commit {hs:?} was never set");
    assert!(got.snap.0 >= synced.snap.0, "{ctx}: synced snapshot lost");
    let must_have = history.iter().map(|m| common_prefix(synced, m)).min().unwrap_or(0);
    let ok = history
        .iter()
        .any(|m| m.snap == got.snap && got.last() <= m.last() && got.entries[..] == m.entries[..got.entries.len()]);
    assert!(
        ok,
        "{ctx}: recovered log/snapshot is not a prefix of any state since the last sync\ngot {got:#?}\nhistory {history:#?}"
    );
    assert!(got.last() >= must_have, "{ctx}: lost synced entries: last {} < {must_have}", got.last());
}

/// Runs `steps` with a crash at mutating operation `crash_at`, then checks.
fn crash_and_check(seed: u64, steps: &[Step], crash_at: u64) {
    let fs = SimFs::new();
    fs.crash_at(crash_at);
    fs.set_torn_seed(seed.wrapping_mul(31).wrapping_add(crash_at));
    let mut history = vec![];
    let mut model = Model { snap: (0, 0, Bytes::new()), entries: Vec::new(), hs: HardState::default() };
    if let Ok(mut wal) = open_sim(&fs, small_segments()) {
        history.push(model.clone());
        for step in steps {
            apply_model(&mut model, step);
            history.push(model.clone());
            if run_step(&mut wal, step).is_err() {
                break;
            }
            // A sync, an installed snapshot and a compaction are durable
            // when they return (the latter two sync what was buffered first):
            // from then on only this state or a later one may be recovered.
            if matches!(step, Step::Sync | Step::Snapshot(..) | Step::Compact(_)) {
                history.drain(..history.len() - 1);
            }
        }
    } else {
        history.push(model.clone());
    }
    assert!(fs.has_crashed(), "seed {seed}: crash point {crash_at} not reached");
    let image = fs.crash_image();
    let ctx = format!("seed {seed} crash_at {crash_at}");
    crash_during_recovery(&image, &history, &ctx);
    let mut wal = open_sim(&image, small_segments()).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let got = observe(&wal);
    check(&got, &history, &ctx);
    // The recovered WAL must take new writes and keep them.
    let next = cmd(got.last() + 1, 99);
    wal.append(std::slice::from_ref(&next)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = open_sim(&image, small_segments()).unwrap();
    assert_eq!(wal.storage().entries(next.index, next.index + 1, u64::MAX), Ok(vec![next]), "{ctx}");
}

/// Recovery repairs (cuts a torn tail, removes leftovers): crash it at each
/// of its own mutating operations, reopen, and check the same promise.
fn crash_during_recovery(image: &SimFs, history: &[Model], ctx: &str) {
    let probe = image.crash_image();
    open_sim(&probe, small_segments()).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    for k in 1..=probe.ops() {
        let copy = image.crash_image();
        copy.crash_at(k);
        assert!(open_sim(&copy, small_segments()).is_err(), "{ctx}: recovery crash {k} not reached");
        let again = copy.crash_image();
        let ctx = format!("{ctx}, then recovery crashed at {k}");
        let wal = open_sim(&again, small_segments()).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
        check(&observe(&wal), history, &ctx);
    }
}

fn fuzz_iters() -> u64 {
    std::env::var("WAL_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}

#[test]
fn crash_at_every_write_and_sync_point() {
    for seed in 0..fuzz_iters() {
        let steps = plan(seed, 40);
        // A run without a crash counts the mutating operations.
        let fs = SimFs::new();
        let mut wal = open_sim(&fs, small_segments()).unwrap();
        for step in &steps {
            run_step(&mut wal, step).unwrap();
        }
        let total = fs.ops();
        for crash_at in 1..=total {
            crash_and_check(seed, &steps, crash_at);
        }
    }
}

/// Appends encoded ahead (each batch encoded before the step before it
/// runs, as the writer thread's submitters do, so a rotation, truncation
/// or snapshot can come in between) leave the same files, byte for byte,
/// as plain appends of the same scenario.
#[test]
fn appends_encoded_ahead_write_the_files_plain_appends_write() {
    use wal::fs::Fs;
    for seed in 0..fuzz_iters() * 10 {
        let steps = plan(seed, 60);
        let plain = SimFs::new();
        let mut wal = open_sim(&plain, small_segments()).unwrap();
        for step in &steps {
            let step = match step {
                Step::Append(entries, _) => Step::Append(entries.clone(), false),
                other => other.clone(),
            };
            run_step(&mut wal, &step).unwrap();
        }
        let ahead = SimFs::new();
        let mut wal = open_sim(&ahead, small_segments()).unwrap();
        let mut encoded = None;
        for (k, step) in steps.iter().enumerate() {
            let mine = encoded.take();
            if let Some(Step::Append(next, _)) = steps.get(k + 1) {
                encoded = Some(wal.encode(next.clone()));
            }
            match (step, mine) {
                (Step::Append(..), Some(batch)) => wal.append_encoded(batch).unwrap(),
                (step, _) => run_step(&mut wal, step).unwrap(),
            }
        }
        let files = plain.list(dir()).unwrap();
        assert_eq!(files, ahead.list(dir()).unwrap(), "seed {seed}");
        for name in files.iter().filter(|n| n.ends_with(".log")) {
            let path = dir().join(name);
            assert!(plain.read_file(&path).unwrap() == ahead.read_file(&path).unwrap(), "seed {seed}: {name} differs");
        }
    }
}
