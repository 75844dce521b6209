//! WAL benchmark against the physical limits of the same disk, measured in
//! the same run: raw `fdatasync` rate, sequential write bandwidth, WAL appends
//! of 256-byte entries in batches of 1, 16 and 256 per sync, group commit
//! through the writer thread, and recovery time against reading the files.
//!
//! `cargo bench -p wal --bench wal`. Environment:
//! * `WAL_BENCH_DIR` — where to write (default: the system temp dir);
//! * `WAL_BENCH_SECS` — seconds per throughput measurement (default 2);
//! * `WAL_BENCH_ROUNDS` — interleaved rounds, medians reported (default 3;
//!   a shared virtual disk drifts a lot, so raw and WAL figures alternate);
//! * `WAL_BENCH_SEQ_MB` — size of the sequential-write test (default 128);
//! * `WAL_BENCH_RECOVERY_MB` — size of the log to recover (default 64; 1024
//!   for the 1 GiB figure).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::{Entry, EntryPayload, Storage};
use wal::{Op, Wal, WalOptions, WalWriter, WriterOptions};

const ENTRY_PAYLOAD_BYTES: usize = 256;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_root() -> PathBuf {
    std::env::var("WAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir())
}

fn secs() -> Duration {
    Duration::from_secs(env_u64("WAL_BENCH_SECS", 2))
}

/// Append `size` bytes, `fdatasync`, repeat: the most syncs per second the
/// disk gives for writes of that size.
fn raw_fsync_rate(dir: &Path, size: usize) -> f64 {
    let f = std::fs::File::create(dir.join("raw-fsync")).unwrap();
    let buf = vec![7u8; size];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < secs() {
        f.write_all_at(&buf, n * size as u64).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// 1 MiB writes then one `fdatasync`: sequential bandwidth in MB/s.
fn raw_seq_bandwidth(dir: &Path) -> f64 {
    let total_mb = env_u64("WAL_BENCH_SEQ_MB", 128);
    let mut f = std::fs::File::create(dir.join("raw-seq")).unwrap();
    let buf = vec![7u8; 1 << 20];
    let start = Instant::now();
    for _ in 0..total_mb {
        f.write_all(&buf).unwrap();
    }
    f.sync_data().unwrap();
    (total_mb << 20) as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// A 256-byte command entry. The payload is shared, so the loop measures
/// the WAL rather than the allocator (a runtime hands over entries it
/// already holds).
fn entry(index: u64) -> Entry {
    static PAYLOAD: [u8; ENTRY_PAYLOAD_BYTES] = [7; ENTRY_PAYLOAD_BYTES];
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(Bytes::from_static(&PAYLOAD)),
    }
}

/// Appends `batch` entries then syncs, repeatedly. Returns entries/s.
fn wal_appends(dir: &Path, batch: u64) -> f64 {
    let mut wal = Wal::open(dir, WalOptions::default()).unwrap();
    let start = Instant::now();
    let mut next = 1;
    while start.elapsed() < secs() {
        let entries: Vec<Entry> = (next..next + batch).map(entry).collect();
        wal.append(&entries).unwrap();
        wal.sync().unwrap();
        next += batch;
    }
    (next - 1) as f64 / start.elapsed().as_secs_f64()
}

/// Single-entry submissions through the writer thread with up to `window`
/// in flight: how far group commit lifts batch-of-1 proposals.
fn writer_group_commit(dir: &Path, window: u64) -> f64 {
    let wal = Wal::open(dir, WalOptions::default()).unwrap();
    let writer = WalWriter::start(wal, WriterOptions::default(), None).unwrap();
    let start = Instant::now();
    let mut next = 1;
    while start.elapsed() < secs() {
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

/// Builds a log of about `mb` MiB, then times reading its files and opening it.
fn recovery(dir: &Path, mb: u64) -> (f64, f64, u64) {
    let mut wal = Wal::open(dir, WalOptions::default()).unwrap();
    let per_entry = (ENTRY_PAYLOAD_BYTES + 25) as u64;
    let total = (mb << 20) / per_entry;
    let mut next = 1;
    while next <= total {
        let entries: Vec<Entry> = (next..(next + 4096).min(total + 1)).map(entry).collect();
        wal.append(&entries).unwrap();
        next += entries.len() as u64;
    }
    wal.sync().unwrap();
    drop(wal);
    let start = Instant::now();
    let mut bytes = 0u64;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            bytes += std::fs::read(&path).unwrap().len() as u64;
        }
    }
    let read = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let wal = Wal::open(dir, WalOptions::default()).unwrap();
    let open = start.elapsed().as_secs_f64();
    assert_eq!(wal.storage().last_index(), total);
    (read, open, bytes)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// "median (min–max)" of a figure across rounds.
fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{:.0} ({lo:.0}-{hi:.0})", median(v.to_vec()))
}

/// The figures of one round, every one measured once.
#[derive(Default)]
struct Figures {
    raw_sync_256: Vec<f64>,
    raw_seq_mbs: Vec<f64>,
    /// Per batch size: raw syncs/s at the batch's byte size, WAL entries/s.
    raw_sync_batch: [Vec<f64>; 4],
    wal_entries: [Vec<f64>; 4],
    writer_entries: Vec<f64>,
}

const BATCHES: [u64; 4] = [1, 16, 256, 4096];
const RECORD_BYTES: usize = ENTRY_PAYLOAD_BYTES + 25;

fn round(root: &Path, r: usize, f: &mut Figures) {
    let sub = |name: &str| {
        let p = root.join(format!("{name}-{r}"));
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    f.raw_sync_256
        .push(raw_fsync_rate(&sub("raw"), ENTRY_PAYLOAD_BYTES));
    f.raw_seq_mbs.push(raw_seq_bandwidth(&sub("seq")));
    for (k, batch) in BATCHES.into_iter().enumerate() {
        f.raw_sync_batch[k].push(raw_fsync_rate(
            &sub(&format!("rawb{batch}")),
            RECORD_BYTES * batch as usize,
        ));
        f.wal_entries[k].push(wal_appends(&sub(&format!("batch{batch}")), batch));
    }
    f.writer_entries
        .push(writer_group_commit(&sub("writer"), 64));
}

fn report(f: Figures) {
    let mb = |entries: f64| entries * ENTRY_PAYLOAD_BYTES as f64 / 1e6;
    let (fsyncs, seq) = (
        median(f.raw_sync_256.clone()),
        median(f.raw_seq_mbs.clone()),
    );
    println!(
        "raw append 256 B + fdatasync, syncs/s: {}",
        spread(&f.raw_sync_256)
    );
    println!(
        "raw sequential write (1 MiB writes, one fdatasync), MB/s: {}",
        spread(&f.raw_seq_mbs)
    );
    for (k, batch) in BATCHES.into_iter().enumerate() {
        let rate = median(f.wal_entries[k].clone());
        let raw_same = median(f.raw_sync_batch[k].clone());
        let syncs = rate / batch as f64;
        println!(
            "wal batch {batch:>4}: entries/s {} = {:.1} MB/s payload, {syncs:.0} syncs/s",
            spread(&f.wal_entries[k]),
            mb(rate)
        );
        println!(
            "    {:.1}% of raw 256 B fsync rate, {:.1}% of seq bandwidth; raw append {} B + fdatasync: {} syncs/s, WAL at {:.1}% of it",
            100.0 * syncs / fsyncs,
            100.0 * mb(rate) / seq,
            RECORD_BYTES * batch as usize,
            spread(&f.raw_sync_batch[k]),
            100.0 * syncs / raw_same,
        );
    }
    let rate = median(f.writer_entries.clone());
    println!(
        "writer thread, 1-entry submissions, 64 in flight: entries/s {} = {:.1} MB/s",
        spread(&f.writer_entries),
        mb(rate)
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; only bench for real.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let root = tempfile::tempdir_in(bench_root()).unwrap();
    let rounds = env_u64("WAL_BENCH_ROUNDS", 3) as usize;
    println!(
        "WAL benchmark in {}: {rounds} interleaved rounds of {} s per figure, medians",
        root.path().display(),
        secs().as_secs()
    );
    let mut figures = Figures::default();
    for r in 0..rounds {
        round(root.path(), r, &mut figures);
    }
    report(figures);
    let rec_mb = env_u64("WAL_BENCH_RECOVERY_MB", 64);
    let dir = root.path().join("recovery");
    std::fs::create_dir_all(&dir).unwrap();
    let (read, open, bytes) = recovery(&dir, rec_mb);
    println!(
        "recovery of {:.0} MiB: read files {:.3} s, Wal::open {:.3} s = {:.2}x the read time",
        bytes as f64 / (1 << 20) as f64,
        read,
        open,
        open / read
    );
}
