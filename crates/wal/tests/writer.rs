//! Group commit through the writer thread, counted at the file layer: all
//! that queued up while one `fdatasync` ran goes out with one write and one
//! `fdatasync`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use raft::{HardState, Storage};
use wal::fs::{File, FileRef, Fs};
use wal::sim::SimFs;
use wal::{Op, Wal, WalWriter, WriterOptions};

/// Whether file syncs are held, and how many are waiting.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<(bool, usize)>,
    cv: Condvar,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        self.state.lock().unwrap().0 = closed;
        self.cv.notify_all();
    }

    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.1 += 1;
        self.cv.notify_all();
        while s.0 {
            s = self.cv.wait(s).unwrap();
        }
        s.1 -= 1;
    }

    fn wait_for_waiter(&self) {
        let mut s = self.state.lock().unwrap();
        while s.1 == 0 {
            let (guard, timeout) = self.cv.wait_timeout(s, Duration::from_secs(10)).unwrap();
            assert!(!timeout.timed_out(), "the writer never reached its fdatasync");
            s = guard;
        }
    }
}

/// A [`SimFs`] whose file syncs wait at a gate before they run.
#[derive(Debug)]
struct GatedFs {
    sim: SimFs,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: FileRef,
    gate: Arc<Gate>,
}

impl File for GatedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
}

impl Fs for GatedFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.sim.create_dir_all(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.sim.list(dir)
    }
    fn create(&self, path: &Path) -> io::Result<FileRef> {
        Ok(Arc::new(GatedFile { inner: self.sim.create(path)?, gate: self.gate.clone() }))
    }
    fn open(&self, path: &Path) -> io::Result<FileRef> {
        Ok(Arc::new(GatedFile { inner: self.sim.open(path)?, gate: self.gate.clone() }))
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.sim.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.sim.remove(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.sim.sync_dir(dir)
    }
    fn salt_seed(&self) -> u32 {
        self.sim.salt_seed()
    }
}

#[test]
fn everything_queued_during_a_sync_goes_out_with_one_write_and_one_fdatasync() {
    let sim = SimFs::new();
    let gate = Arc::new(Gate::default());
    let fs = Arc::new(GatedFs { sim: sim.clone(), gate: gate.clone() });
    let mut wal = Wal::open_on(fs, dir(), sim_options()).unwrap();
    wal.append(&[cmd(1, 1)]).unwrap();
    wal.sync().unwrap();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    // Hold the writer in the fdatasync of a first batch...
    gate.set_closed(true);
    let first = writer.submit(Op::Append(vec![cmd(2, 1)])).unwrap();
    gate.wait_for_waiter();
    let before = sim.ops();
    // ...while 100 appends and hard-state changes queue up behind it.
    let mut last = first;
    for i in 3..=102 {
        last = writer.submit(Op::Append(vec![cmd(i, 1)])).unwrap();
        if i % 10 == 0 {
            last = writer.submit(Op::HardState(HardState { term: 1, vote: 1, commit: i - 1 })).unwrap();
        }
    }
    assert_eq!(writer.durable().unwrap().seq, 0, "nothing is reported durable before its fdatasync");
    assert_eq!(writer.storage().last_index(), 1, "nor shown to readers");
    gate.set_closed(false);
    let durable = writer.wait_durable(last).unwrap();
    assert_eq!((durable.seq, durable.index), (last, 102));
    // The first batch's fdatasync, then for all 110 operations one write and
    // one fdatasync of the log and one write and one fdatasync of the hard
    // state (its vote changed, so it is not deferred).
    assert_eq!(sim.ops() - before, 1 + 2 + 2);
    assert_eq!(writer.storage().entries(1, 103, u64::MAX).unwrap(), (1..=102).map(|i| cmd(i, 1)).collect::<Vec<_>>());
    assert_eq!(writer.storage().hard_state(), HardState { term: 1, vote: 1, commit: 99 });
    writer.shutdown().unwrap();
}

/// A batch that only raises the commit index (what a heartbeat brings a
/// follower, or an acknowledgement the leader) does no I/O: Raft does not
/// need `commit` durable, and forcing it cost every node a second
/// `fdatasync` per write. A term change still goes to disk at once, and the
/// writer's last sync when it stops writes the commit index.
#[test]
fn a_batch_that_only_raises_commit_does_no_io() {
    let sim = SimFs::new();
    let wal = Wal::open_on(Arc::new(sim.clone()), dir(), sim_options()).unwrap();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    let wait = |op| writer.wait_durable(writer.submit(op).unwrap()).unwrap();
    wait(Op::Append(vec![cmd(1, 1), cmd(2, 1)]));
    wait(Op::HardState(HardState { term: 1, vote: 1, commit: 0 }));
    let before = sim.ops();
    wait(Op::HardState(HardState { term: 1, vote: 1, commit: 1 }));
    assert_eq!(sim.ops(), before, "a commit-only hard state was written");
    wait(Op::HardState(HardState { term: 2, vote: 1, commit: 1 }));
    assert!(sim.ops() > before, "a term change must be written");
    let crashed = Wal::open_on(Arc::new(sim.crash_image()), dir(), sim_options()).unwrap();
    assert_eq!(crashed.storage().hard_state(), HardState { term: 2, vote: 1, commit: 1 });
    let before = sim.ops();
    wait(Op::HardState(HardState { term: 2, vote: 1, commit: 2 }));
    assert_eq!(sim.ops(), before, "a commit-only hard state was written");
    writer.shutdown().unwrap();
    let reopened = Wal::open_on(Arc::new(sim.crash_image()), dir(), sim_options()).unwrap();
    assert_eq!(reopened.storage().hard_state(), HardState { term: 2, vote: 1, commit: 2 });
}

/// `submit_commit` queues a commit-only hard state without waking the
/// writer: it goes out with the next batch, and a clean shutdown writes it.
#[test]
fn a_queued_commit_waits_for_the_next_batch() {
    let sim = SimFs::new();
    let wal = Wal::open_on(Arc::new(sim.clone()), dir(), sim_options()).unwrap();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    let wait = |op| writer.wait_durable(writer.submit(op).unwrap()).unwrap();
    wait(Op::Append(vec![cmd(1, 1), cmd(2, 1), cmd(3, 1)]));
    let idle = wait(Op::HardState(HardState { term: 1, vote: 1, commit: 0 }));
    // A writer still finishing that batch would take the commit without a wakeup.
    wait_until_the_writer_sleeps();
    writer.submit_commit(HardState { term: 1, vote: 1, commit: 2 }).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(writer.durable().unwrap().seq, idle.seq, "the idle writer was woken for a commit");
    let next = wait(Op::Append(vec![cmd(4, 1)]));
    assert_eq!(next.seq, idle.seq + 2, "the commit went with the next batch");
    writer.submit_commit(HardState { term: 1, vote: 1, commit: 4 }).unwrap();
    writer.shutdown().unwrap();
    let reopened = Wal::open_on(Arc::new(sim.crash_image()), dir(), sim_options()).unwrap();
    assert_eq!(reopened.storage().hard_state(), HardState { term: 1, vote: 1, commit: 4 });
}

/// Waits until this process's `wal-writer` thread is asleep (state `S` in
/// `/proc/self/task/*/stat`): with nothing queued, that is its wait for work.
fn wait_until_the_writer_sleeps() {
    let asleep = || {
        std::fs::read_dir("/proc/self/task").unwrap().flatten().any(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.starts_with('S'));
            comm.trim() == "wal-writer" && state == Some(true)
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !asleep() {
        assert!(std::time::Instant::now() < deadline, "the writer never went idle");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A crash at any mutating file operation, with batches kept in flight
/// as a runtime keeps them (the next queued while one syncs), loses
/// nothing the writer reported durable: the reopened log holds every
/// entry up to the highest durable index reported, as written.
#[test]
fn a_crash_anywhere_loses_nothing_the_writer_reported_durable() {
    // 1 KiB entries: the 64 KiB segments of `sim_options` rotate.
    let entry = |index: u64, term: u64| raft::Entry {
        index,
        term,
        payload: raft::EntryPayload::Command(bytes::Bytes::from(vec![index as u8; 1024])),
    };
    let batches: Vec<Vec<raft::Entry>> =
        (0..24u64).map(|b| (b * 10 + 1..=b * 10 + 10).map(|i| entry(i, 1 + b / 8)).collect()).collect();
    let run = |crash_at: Option<u64>| -> (SimFs, u64) {
        let sim = SimFs::new();
        if let Some(n) = crash_at {
            sim.crash_at(n);
            sim.set_torn_seed(n);
        }
        let Ok(wal) = Wal::open_on(Arc::new(sim.clone()), dir(), sim_options()) else {
            return (sim, 0);
        };
        let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
        // Two batches in flight, as a runtime keeps them.
        let (mut in_flight, mut reported) = (std::collections::VecDeque::new(), 0);
        for (b, batch) in batches.iter().enumerate() {
            let term = batch[0].term;
            if b % 8 == 0 && writer.submit(Op::HardState(HardState { term, vote: 1, commit: 0 })).is_err() {
                break;
            }
            let Ok(seq) = writer.submit(Op::Append(batch.clone())) else {
                break;
            };
            in_flight.push_back(seq);
            if in_flight.len() > 2 {
                let Some(Ok(d)) = in_flight.pop_front().map(|s| writer.wait_durable(s)) else {
                    break;
                };
                reported = reported.max(d.index);
            }
        }
        while let Some(Ok(d)) = in_flight.pop_front().map(|s| writer.wait_durable(s)) {
            reported = reported.max(d.index);
        }
        let _ = writer.shutdown();
        (sim, reported)
    };
    let (whole, last) = run(None);
    assert_eq!(last, 240);
    let total = whole.ops();
    assert!(total > 20, "{total} operations");
    for crash_at in 1..=total {
        let (sim, reported) = run(Some(crash_at));
        let reopened = Wal::open_on(Arc::new(sim.crash_image()), dir(), sim_options())
            .unwrap_or_else(|e| panic!("crash at {crash_at}: {e}"));
        let storage = reopened.storage();
        assert!(storage.last_index() >= reported, "crash at {crash_at}: {} < {reported}", storage.last_index());
        let expected: Vec<_> = batches.iter().flatten().take(storage.last_index() as usize).cloned().collect();
        let got = storage.entries(1, storage.last_index() + 1, u64::MAX).unwrap();
        assert_eq!(got, expected, "crash at {crash_at}");
    }
}
