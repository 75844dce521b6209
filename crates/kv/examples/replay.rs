//! Replays N encoded `SET key:NNNNNNNNNN <value>` entries through
//! [`Request::decode`] and [`Store::apply`], as a restarted node does with
//! the log it recovered, and prints the time per entry.
//!
//! Then it writes the store's snapshot to memory and times
//! [`Store::restore`] of it, as a node restarted from a snapshot does.
//!
//! ```text
//! cargo run --release -p kv --example replay -- [entries] [value_bytes]
//! ```
//!
//! Defaults: 1,000,000 entries of 256 B, no session (what `raftkv bench
//! --prefill` writes). The entries are encoded before the clock starts; the
//! resident set size is read from `/proc/self/status` where there is one.

use std::time::Instant;

use bytes::Bytes;
use kv::{Command, NO_SESSION, Request, RequestBody, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let entries: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let value_bytes: usize = args.next().map_or(Ok(256), |a| a.parse())?;
    let value = Bytes::from(vec![b'x'; value_bytes]);
    let time_ms = 1_700_000_000_000;
    let encoded: Vec<Vec<u8>> = (0..entries)
        .map(|i| {
            let key = Bytes::from(format!("key:{i:010}"));
            let set = Command::parse(&[Bytes::from_static(b"SET"), key, value.clone()])?;
            Ok(Request { client_id: NO_SESSION, seq: 0, time_ms, body: RequestBody::Command(set) }.encode())
        })
        .collect::<Result<_, kv::CommandError>>()?;
    let mut store = Store::new();
    let rss_start = rss_mib();
    let start = Instant::now();
    for (index, entry) in (1..).zip(&encoded) {
        let request = Request::decode(entry)?;
        store.apply(index, &request);
    }
    report("applied", entries, start.elapsed(), &store);
    let applied_mib = rss_mib() - rss_start;
    let mut snapshot = Vec::new();
    store.snapshot(&mut snapshot)?;
    let before = rss_mib();
    let mut restored = Store::new();
    let start = Instant::now();
    restored.restore(&mut snapshot.as_slice())?;
    report("restored", entries, start.elapsed(), &restored);
    let restored_mib = rss_mib() - before;
    println!(
        "snapshot {} MiB; RSS grew by {applied_mib} MiB applying, by {restored_mib} MiB restoring",
        snapshot.len() >> 20
    );
    // Freed only now, so the restore could not reuse the entries' memory.
    drop(encoded);
    Ok(())
}

fn report(what: &str, entries: u64, elapsed: std::time::Duration, store: &Store) {
    println!(
        "{what} {entries} entries in {:.3} s: {:.0} ns per entry, {} keys",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / entries as f64,
        store.key_count()
    );
}

/// The resident set size in MiB (0 where `/proc` does not say).
fn rss_mib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().strip_suffix("kB"));
    kib.and_then(|k| k.trim().parse::<i64>().ok()).map_or(0, |k| k >> 10)
}
