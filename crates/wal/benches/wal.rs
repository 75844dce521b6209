//! WAL benchmark against the physical limits of the same disk, measured in
//! the same run: raw `fdatasync` rate and sequential write bandwidth, each
//! both appending to a growing file and overwriting a pre-written one (on
//! ext4 a write that grows a file makes `fdatasync` write the inode too, so
//! the pre-written file is the true limit, and the one a WAL with
//! preallocated segments is compared with), WAL appends
//! of 256-byte entries in batches of 1, 16, 256 (and 4096) per sync, both
//! through `Wal` directly and through the `WalWriter` thread with batches
//! submitted ahead (encoding overlapping the previous sync), each in the
//! steady state of a Raft node (a snapshot installed every
//! `WAL_BENCH_COMPACT_MB`, so compaction frees segments that later ones
//! reuse) and, directly, on a log that only grows (every segment a new,
//! zero-filled file), group commit of
//! single-entry submissions, append throughput on a fresh log against a long
//! one, and recovery time against reading the files.
//!
//! A shared virtual disk drifts by 10x within seconds, so each WAL figure is
//! measured *paired*: short slices of the WAL workload alternate with slices
//! of the raw workloads it is compared with, and each side's rate is its
//! operations over its own time. Drift slower than a slice hits both alike.
//!
//! `cargo bench -p wal --bench wal`. Environment:
//! * `WAL_BENCH_DIR` — where to write (default: the system temp dir);
//! * `WAL_BENCH_SECS` — seconds per batch size, all sides together (default 8);
//! * `WAL_BENCH_SLICE_MS` — length of one slice (default 100);
//! * `WAL_BENCH_IN_FLIGHT` — batches the writer-thread side keeps submitted
//!   ahead of durability (default 2);
//! * `WAL_BENCH_LONG_ENTRIES` — entries in the long log of the log-length
//!   comparison (default 2,000,000: about 560 MB; 0 skips it);
//! * `WAL_BENCH_SEGMENT_MB` — the WAL's segment size (default: the
//!   `WalOptions` default, 64);
//! * `WAL_BENCH_PREALLOCATION` — `background` (the default), `inline` or
//!   `off`: how the WAL prepares its segments ([`Preallocation`]);
//! * `WAL_BENCH_RECOVERY_MB` — size of the log to recover (default 64; 1024
//!   for the 1 GiB figure);
//! * `WAL_BENCH_COMPACT_MB` — in the steady-state sides, a snapshot is
//!   installed (compacting the log below it) every this many MiB of
//!   appends (default: two segments).
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::{Entry, EntryPayload, Index, SnapshotMeta, Storage};
use wal::{Op, Preallocation, Wal, WalOptions, WalWriter, WriterOptions};

const ENTRY_PAYLOAD_BYTES: usize = 256;
/// The encoded size of one such entry.
const RECORD_BYTES: usize = ENTRY_PAYLOAD_BYTES + 29;
/// Batch sizes measured by default; `WAL_BENCH_BATCHES=1,65536` picks others
/// (65536 entries = 18 MB per sync, the size of the sequential workload's).
const BATCHES: [u64; 4] = [1, 16, 256, 4096];
/// Bytes per operation of the sequential-bandwidth workload.
const SEQ_OP_BYTES: usize = 16 << 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The WAL's options: the defaults, with `WAL_BENCH_SEGMENT_MB` and
/// `WAL_BENCH_PREALLOCATION` (`background`, `inline` or `off`) if set.
fn options() -> WalOptions {
    let default = WalOptions::default();
    let segment_bytes_max = env_u64("WAL_BENCH_SEGMENT_MB", default.segment_bytes_max >> 20) << 20;
    let preallocation = match std::env::var("WAL_BENCH_PREALLOCATION").as_deref() {
        Ok("off") => Preallocation::Off,
        Ok("inline") => Preallocation::Inline,
        _ => Preallocation::Background,
    };
    WalOptions { segment_bytes_max, preallocation, ..default }
}

/// A 256-byte command entry. The payload is shared, so the loop measures
/// the WAL rather than the allocator (a runtime hands over entries it
/// already holds).
fn entry(index: u64) -> Entry {
    static PAYLOAD: [u8; ENTRY_PAYLOAD_BYTES] = [7; ENTRY_PAYLOAD_BYTES];
    Entry { term: 1, index, payload: EntryPayload::Command(Bytes::from_static(&PAYLOAD)) }
}

/// Bytes of appends between two snapshots in the steady-state sides.
fn compact_every() -> u64 {
    env_u64("WAL_BENCH_COMPACT_MB", 2 * (options().segment_bytes_max >> 20)) << 20
}

/// A log kept at the steady state of a Raft node: every [`compact_every`]
/// bytes appended, a (tiny) snapshot of everything durable is installed,
/// which removes the segments below it for reuse.
#[derive(Default)]
struct Compactor {
    since: u64,
}

impl Compactor {
    /// Counts `bytes` appended; whether a snapshot is due.
    fn due(&mut self, bytes: u64) -> bool {
        self.since += bytes;
        let due = self.since >= compact_every();
        if due {
            self.since = 0;
        }
        due
    }
}

/// Entries per batch while a steady-state side warms up.
const WARM_UP_BATCH: u64 = 4096;

/// How much is appended (and compacted) before a steady-state side is
/// measured: enough that compaction has removed segments for reuse and
/// the writes go into them, as in a node that has run for a while.
fn warm_up_bytes() -> u64 {
    3 * compact_every().max(options().segment_bytes_max)
}

/// Appends `batch` entries from `*next` directly, syncs, and installs a
/// snapshot when one is due.
fn append_steady(wal: &mut Wal, next: &mut u64, batch: u64, compactor: &mut Compactor) {
    let entries: Vec<Entry> = (*next..*next + batch).map(entry).collect();
    wal.append(&entries).unwrap();
    let (last, _) = wal.sync().unwrap();
    *next += batch;
    if compactor.due(batch * RECORD_BYTES as u64) {
        wal.install_snapshot(tiny_snapshot(wal.begin_snapshot(snapshot_meta(last)).unwrap())).unwrap();
    }
}

/// A snapshot of a few bytes: what compacts the log, at no cost of its own.
fn tiny_snapshot(mut w: wal::SnapshotWriter) -> wal::SnapshotFile {
    w.write(b"bench").unwrap();
    w.finish().unwrap()
}

fn snapshot_meta(index: Index) -> SnapshotMeta {
    SnapshotMeta { index, term: 1, ..Default::default() }
}

/// One side of a paired measurement: operations, bytes and time spent.
#[derive(Default)]
struct Side {
    ops: u64,
    bytes: u64,
    secs: f64,
}

impl Side {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }

    fn mbs(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs
    }

    /// Runs `op` (returning bytes moved) until `slice` has passed.
    fn run_slice(&mut self, slice: Duration, mut op: impl FnMut() -> u64) {
        let start = Instant::now();
        while start.elapsed() < slice {
            self.bytes += op();
            self.ops += 1;
        }
        self.secs += start.elapsed().as_secs_f64();
    }
}

/// How far a growing raw file grows before it is cut back to empty.
const GROWING_BYTES_MAX: u64 = 1 << 30;
/// Size of the pre-written file of the raw fsync-rate workload.
const PREWRITTEN_SMALL_BYTES: u64 = 16 << 20;
/// Size of the pre-written file of the raw sequential workload (it wraps
/// around within it; what it overwrites stays allocated).
const PREWRITTEN_SEQ_BYTES: u64 = 256 << 20;

/// Writes `size` bytes `sync_every` times then `fdatasync`s a file, at a
/// moving offset: appending to a growing file (cut back to empty at
/// [`GROWING_BYTES_MAX`]), or overwriting a pre-written one of `region`
/// bytes, wrapping around within it.
struct RawAppender {
    file: File,
    at: u64,
    buf: Vec<u8>,
    sync_every: usize,
    /// `Some(bytes)`: the file was written and synced to this size first.
    region: Option<u64>,
}

impl RawAppender {
    fn growing(path: &Path, size: usize, sync_every: usize) -> Self {
        RawAppender { file: File::create(path).unwrap(), at: 0, buf: vec![7; size], sync_every, region: None }
    }

    /// Over a file of `region` bytes written (zeros, 1 MiB writes) and
    /// synced before the measurement.
    fn prewritten(path: &Path, size: usize, sync_every: usize, region: u64) -> Self {
        let file = File::create(path).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for at in (0..region).step_by(zeros.len()) {
            file.write_all_at(&zeros, at).unwrap();
        }
        file.sync_all().unwrap();
        RawAppender { file, at: 0, buf: vec![7; size], sync_every, region: Some(region) }
    }

    fn op(&mut self) -> u64 {
        for _ in 0..self.sync_every {
            if self.region.is_some_and(|r| self.at + self.buf.len() as u64 > r) {
                self.at = 0;
            }
            self.file.write_all_at(&self.buf, self.at).unwrap();
            self.at += self.buf.len() as u64;
        }
        self.file.sync_data().unwrap();
        if self.region.is_none() && self.at > GROWING_BYTES_MAX {
            self.file.set_len(0).unwrap();
            self.at = 0;
        }
        (self.buf.len() * self.sync_every) as u64
    }
}

/// The pre-written raw files, made once per run and shared by all batch
/// sizes (pre-writing 272 MiB per batch size would cost more than it
/// measures).
struct Prewritten {
    small: RawAppender,
    seq: RawAppender,
}

impl Prewritten {
    fn new(dir: &Path) -> Self {
        Prewritten {
            small: RawAppender::prewritten(&dir.join("pre256"), ENTRY_PAYLOAD_BYTES, 1, PREWRITTEN_SMALL_BYTES),
            seq: RawAppender::prewritten(&dir.join("preseq"), 1 << 20, SEQ_OP_BYTES >> 20, PREWRITTEN_SEQ_BYTES),
        }
    }
}

/// The sides measured together for one batch size.
#[derive(Default)]
struct Paired {
    raw_256: Side,
    raw_256_pre: Side,
    raw_same: Side,
    raw_seq: Side,
    raw_seq_pre: Side,
    /// The direct path on a log that only grows.
    wal_growing: Side,
    wal: Side,
    writer: Side,
}

/// Appends batches through a [`WalWriter`], keeping up to `in_flight`
/// submitted but not yet durable, so the next batch is built and encoded
/// on this thread while the writer thread syncs the previous one.
struct Pipelined {
    writer: WalWriter,
    next: u64,
    batch: u64,
    in_flight: usize,
    waiting: std::collections::VecDeque<u64>,
    compactor: Compactor,
}

impl Pipelined {
    fn new(dir: &Path, batch: u64, in_flight: usize) -> Self {
        let mut wal = Wal::open(dir, options()).unwrap();
        // The first segment is prepared before the measurement starts.
        wal.wait_for_preparation();
        let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
        Pipelined {
            writer,
            next: 1,
            batch,
            in_flight: in_flight.max(1),
            waiting: Default::default(),
            compactor: Compactor::default(),
        }
    }

    /// Appends (compacting) until the log is in its steady state.
    fn warm_up(&mut self) {
        let (batch, mut ignored) = (self.batch, Side::default());
        self.batch = WARM_UP_BATCH;
        while self.next * (RECORD_BYTES as u64) < warm_up_bytes() {
            self.fill();
            self.complete_one(&mut ignored);
        }
        while !self.waiting.is_empty() {
            self.complete_one(&mut ignored);
        }
        self.batch = batch;
    }

    /// Submits batches until `in_flight` are waiting.
    fn fill(&mut self) {
        while self.waiting.len() < self.in_flight {
            let entries: Vec<Entry> = (self.next..self.next + self.batch).map(entry).collect();
            self.next += self.batch;
            self.waiting.push_back(self.writer.submit(Op::Append(entries)).unwrap());
        }
    }

    /// Runs until `slice` has passed, then waits for everything submitted,
    /// so each slice counts exactly the batches made durable in it.
    fn run_slice(&mut self, side: &mut Side, slice: Duration) {
        let start = Instant::now();
        while start.elapsed() < slice {
            self.fill();
            self.complete_one(side);
        }
        while !self.waiting.is_empty() {
            self.complete_one(side);
        }
        side.secs += start.elapsed().as_secs_f64();
    }

    fn complete_one(&mut self, side: &mut Side) {
        if let Some(seq) = self.waiting.pop_front() {
            let durable = self.writer.wait_durable(seq).unwrap();
            side.ops += 1;
            side.bytes += self.batch * ENTRY_PAYLOAD_BYTES as u64;
            if self.compactor.due(self.batch * RECORD_BYTES as u64) {
                let snap = tiny_snapshot(self.writer.begin_snapshot(snapshot_meta(durable.index)).unwrap());
                self.waiting.push_back(self.writer.submit(Op::InstallSnapshot(snap)).unwrap());
            }
        }
    }
}

fn paired(dir: &Path, batch: u64, pre: &mut Prewritten) -> Paired {
    let slice = Duration::from_millis(env_u64("WAL_BENCH_SLICE_MS", 100));
    let total = Duration::from_secs(env_u64("WAL_BENCH_SECS", 8));
    let mut raw_256 = RawAppender::growing(&dir.join("raw256"), ENTRY_PAYLOAD_BYTES, 1);
    let mut raw_same = RawAppender::growing(&dir.join("rawsame"), RECORD_BYTES * batch as usize, 1);
    let mut raw_seq = RawAppender::growing(&dir.join("rawseq"), 1 << 20, SEQ_OP_BYTES >> 20);
    let mut wal = Wal::open(dir.join("wal"), options()).unwrap();
    wal.wait_for_preparation();
    let mut growing = Wal::open(dir.join("growing"), options()).unwrap();
    growing.wait_for_preparation();
    let (mut next, mut next_growing, mut compactor) = (1, 1, Compactor::default());
    while next * (RECORD_BYTES as u64) < warm_up_bytes() {
        append_steady(&mut wal, &mut next, WARM_UP_BATCH, &mut compactor);
    }
    let mut pipelined = Pipelined::new(&dir.join("writer"), batch, env_u64("WAL_BENCH_IN_FLIGHT", 2) as usize);
    pipelined.warm_up();
    wal.wait_for_preparation();
    let mut p = Paired::default();
    let start = Instant::now();
    while start.elapsed() < total {
        p.raw_256.run_slice(slice, || raw_256.op());
        p.raw_256_pre.run_slice(slice, || pre.small.op());
        p.raw_same.run_slice(slice, || raw_same.op());
        p.raw_seq.run_slice(slice, || raw_seq.op());
        p.raw_seq_pre.run_slice(slice, || pre.seq.op());
        p.wal.run_slice(slice, || {
            append_steady(&mut wal, &mut next, batch, &mut compactor);
            batch * ENTRY_PAYLOAD_BYTES as u64
        });
        p.wal_growing.run_slice(slice, || {
            let entries: Vec<Entry> = (next_growing..next_growing + batch).map(entry).collect();
            growing.append(&entries).unwrap();
            growing.sync().unwrap();
            next_growing += batch;
            batch * ENTRY_PAYLOAD_BYTES as u64
        });
        // The next segment's zero-filling, started in the background by a
        // rotation in these slices, is charged to the WAL's time, not left
        // to slow the raw workloads that come next.
        for (w, side) in [(&mut wal, &mut p.wal), (&mut growing, &mut p.wal_growing)] {
            let settle = Instant::now();
            w.wait_for_preparation();
            side.secs += settle.elapsed().as_secs_f64();
        }
        pipelined.run_slice(&mut p.writer, slice);
    }
    pipelined.writer.shutdown().unwrap();
    p
}

fn report(batch: u64, p: &Paired) {
    let entries = p.wal.rate() * batch as f64;
    println!(
        "wal batch {batch:>4}, steady state: {entries:>9.0} entries/s {:>6.1} MB/s payload {:>6.0} syncs/s | raw 256 B+sync: growing {:>5.0}/s, pre-written {:>5.0}/s | {} B+sync (growing) {:>5.0}/s | seq: growing {:>4.0} MB/s, pre-written {:>4.0} MB/s",
        p.wal.mbs(),
        p.wal.rate(),
        p.raw_256.rate(),
        p.raw_256_pre.rate(),
        RECORD_BYTES * batch as usize,
        p.raw_same.rate(),
        p.raw_seq.mbs(),
        p.raw_seq_pre.mbs()
    );
    let disk_mbs = |side: &Side| side.mbs() * RECORD_BYTES as f64 / ENTRY_PAYLOAD_BYTES as f64;
    println!(
        "      syncs/s = {:.1}% of raw pre-written 256 B fsync rate ({:.1}% of growing, {:.1}% of growing same-size); MB/s = {:.1}% / {:.1}% (payload / counting framing) of pre-written sequential bandwidth ({:.1}% / {:.1}% of growing)",
        100.0 * p.wal.rate() / p.raw_256_pre.rate(),
        100.0 * p.wal.rate() / p.raw_256.rate(),
        100.0 * p.wal.rate() / p.raw_same.rate(),
        100.0 * p.wal.mbs() / p.raw_seq_pre.mbs(),
        100.0 * disk_mbs(&p.wal) / p.raw_seq_pre.mbs(),
        100.0 * p.wal.mbs() / p.raw_seq.mbs(),
        100.0 * disk_mbs(&p.wal) / p.raw_seq.mbs()
    );
    println!(
        "      growing log (no compaction, every segment zero-filled): {:>9.0} entries/s {:>6.1} MB/s payload = {:.1}% / {:.1}% of pre-written sequential bandwidth",
        p.wal_growing.rate() * batch as f64,
        p.wal_growing.mbs(),
        100.0 * p.wal_growing.mbs() / p.raw_seq_pre.mbs(),
        100.0 * disk_mbs(&p.wal_growing) / p.raw_seq_pre.mbs(),
    );
    println!(
        "      writer thread, batches submitted ahead: {:>9.0} entries/s {:>6.1} MB/s payload ({:.1} MB/s written) = {:.1}% / {:.1}% of pre-written sequential bandwidth",
        p.writer.rate() * batch as f64,
        p.writer.mbs(),
        disk_mbs(&p.writer),
        100.0 * p.writer.mbs() / p.raw_seq_pre.mbs(),
        100.0 * disk_mbs(&p.writer) / p.raw_seq_pre.mbs(),
    );
}

/// Append throughput on a fresh log against one already `long` entries
/// long: paired slices of batch-256 appends alternate between the two.
fn log_length(dir: &Path, long: u64) -> (f64, f64) {
    const BATCH: u64 = 256;
    let slice = Duration::from_millis(env_u64("WAL_BENCH_SLICE_MS", 100));
    let total = Duration::from_secs(env_u64("WAL_BENCH_SECS", 8));
    let mut short_wal = Wal::open(dir.join("short"), options()).unwrap();
    let mut long_wal = Wal::open(dir.join("long"), options()).unwrap();
    let mut long_next = 1;
    while long_next <= long {
        let entries: Vec<Entry> = (long_next..(long_next + 4096).min(long + 1)).map(entry).collect();
        long_wal.append(&entries).unwrap();
        long_next += entries.len() as u64;
    }
    long_wal.sync().unwrap();
    short_wal.wait_for_preparation();
    long_wal.wait_for_preparation();
    let (mut short, mut long_side) = (Side::default(), Side::default());
    let mut short_next = 1;
    let start = Instant::now();
    while start.elapsed() < total {
        for (wal, next, side) in
            [(&mut short_wal, &mut short_next, &mut short), (&mut long_wal, &mut long_next, &mut long_side)]
        {
            side.run_slice(slice, || {
                let entries: Vec<Entry> = (*next..*next + BATCH).map(entry).collect();
                wal.append(&entries).unwrap();
                wal.sync().unwrap();
                *next += BATCH;
                BATCH * ENTRY_PAYLOAD_BYTES as u64
            });
            let settle = Instant::now();
            wal.wait_for_preparation();
            side.secs += settle.elapsed().as_secs_f64();
        }
    }
    (short.rate() * BATCH as f64, long_side.rate() * BATCH as f64)
}

/// Single-entry submissions through the writer thread with up to `window`
/// in flight: how far group commit lifts batch-of-1 proposals.
fn writer_group_commit(dir: &Path, window: u64) -> f64 {
    let mut wal = Wal::open(dir, options()).unwrap();
    wal.wait_for_preparation();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    let start = Instant::now();
    let mut next = 1;
    while start.elapsed() < Duration::from_secs(2) {
        let mut last = 0;
        for _ in 0..window {
            last = writer.submit(Op::Append(vec![entry(next)])).unwrap();
            next += 1;
        }
        writer.wait_durable(last).unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    writer.shutdown().unwrap();
    (next - 1) as f64 / elapsed
}

/// Builds a log of about `mb` MiB, then alternately times reading its files
/// and opening it (three of each); returns the median times and the bytes.
fn recovery(dir: &Path, mb: u64) -> (f64, f64, u64) {
    let mut wal = Wal::open(dir, options()).unwrap();
    let total = (mb << 20) / RECORD_BYTES as u64;
    let mut next = 1;
    while next <= total {
        let entries: Vec<Entry> = (next..(next + 4096).min(total + 1)).map(entry).collect();
        wal.append(&entries).unwrap();
        next += entries.len() as u64;
    }
    wal.sync().unwrap();
    drop(wal);
    let (mut reads, mut opens, mut bytes) = (vec![], vec![], 0);
    for _ in 0..3 {
        let start = Instant::now();
        bytes = read_segments(dir);
        reads.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let wal = Wal::open(dir, options()).unwrap();
        opens.push(start.elapsed().as_secs_f64());
        assert_eq!(wal.storage().last_index(), total);
    }
    reads.sort_by(f64::total_cmp);
    opens.sort_by(f64::total_cmp);
    (reads[1], opens[1], bytes)
}

fn read_segments(dir: &Path) -> u64 {
    let mut bytes = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            bytes += std::fs::read(&path).unwrap().len() as u64;
        }
    }
    bytes
}

fn main() {
    // `cargo test --benches` runs this as a test: only bench when asked to.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    assert_eq!(wal::record::entry_len(&entry(1)), RECORD_BYTES, "the record size the figures count");
    let root_dir = std::env::var("WAL_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let root = tempfile::tempdir_in(root_dir).unwrap();
    println!(
        "WAL benchmark in {}, paired slices, {} MiB segments, preallocation {:?}",
        root.path().display(),
        options().segment_bytes_max >> 20,
        options().preallocation
    );
    let batches: Vec<u64> = match std::env::var("WAL_BENCH_BATCHES") {
        Ok(list) => list.split(',').filter_map(|b| b.trim().parse().ok()).collect(),
        Err(_) => BATCHES.to_vec(),
    };
    let mut pre = Prewritten::new(root.path());
    for batch in batches {
        let dir = root.path().join(format!("batch{batch}"));
        std::fs::create_dir_all(&dir).unwrap();
        report(batch, &paired(&dir, batch, &mut pre));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let long = env_u64("WAL_BENCH_LONG_ENTRIES", 2_000_000);
    if long > 0 {
        let dir = root.path().join("length");
        let (short, long_rate) = log_length(&dir, long);
        println!(
            "log length, batch 256: fresh log {short:.0} entries/s, log of {long} entries {long_rate:.0} entries/s = {:.1}%",
            100.0 * long_rate / short
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let rate = writer_group_commit(&root.path().join("writer"), 64);
    println!(
        "writer thread, 1-entry submissions, 64 in flight: {rate:.0} entries/s ({:.1} MB/s payload)",
        rate * ENTRY_PAYLOAD_BYTES as f64 / 1e6
    );
    let dir = root.path().join("recovery");
    let (read, open, bytes) = recovery(&dir, env_u64("WAL_BENCH_RECOVERY_MB", 64));
    println!(
        "recovery of {:.0} MiB (warm page cache): read the segment files {read:.3} s, Wal::open {open:.3} s = {:.2}x the read time",
        bytes as f64 / (1 << 20) as f64,
        open / read
    );
}
