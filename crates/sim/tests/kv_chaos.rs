//! KV chaos runs (`sim::run`): clients with sessions on a five-node cluster
//! under the nemesis, invariants after every step, a liveness phase on the
//! healed cluster, and the linearizability check of the whole history.
//!
//! `RAFT_SEEDS=K` runs `K` seeds of the passing test (default 6), `RAFT_SEED=N`
//! replays one; the long version is `cargo run -p sim --release -- run --seeds 0..2000`.
//! Every checker is shown to fail: each planted bug is caught within
//! [`BUG_SEEDS`] seeds, and a cluster that never heals fails the liveness phase.

use raft::PlantedBugs;
use sim::harness::for_each_seed;
use sim::run::{RunOptions, RunReport, run};

/// Seeds tried per planted bug before declaring it missed.
const BUG_SEEDS: u64 = 30;

/// Shorter runs than the CLI's default, so CI stays fast; still 15 s of
/// virtual faults, several hundred operations and ~15 faults per seed.
fn options() -> RunOptions {
    RunOptions {
        safety_ms: 15_000,
        liveness_ms: 7_000,
        liveness_op_ms_max: 3_000,
        liveness_read_only_ms: 4_000,
        ..RunOptions::default()
    }
}

/// Faults twice as often, one entry per AppendEntries: followers then
/// acknowledge old-term entries before a new leader's own entry reaches them
/// (the Figure 8 window).
fn figure8() -> RunOptions {
    RunOptions { nemesis_interval_ms: 350, tweak_cluster: Some(|o| o.raft.max_message_bytes = 1), ..options() }
}

/// Three nodes on slow disks, crashes and partitions only, a fault every
/// 200 ms: acknowledged-but-unsynced windows are long, and a crash loses
/// what a follower vouched for.
fn slow_disks() -> RunOptions {
    RunOptions {
        nodes: 3,
        nemesis_interval_ms: 200,
        fault_kinds: vec!["crash", "partition-leader", "partition-majority"],
        tweak_cluster: Some(|o| o.disk_latency_ms = (20, 120)),
        ..options()
    }
}

fn with_bugs(options: RunOptions, bugs: PlantedBugs) -> RunOptions {
    let mut o = options;
    o.raft.bugs = bugs;
    o
}

#[test]
fn kv_chaos_runs_are_safe_and_live() {
    for_each_seed("kv_chaos_runs_are_safe_and_live", 6, |seed| {
        let report = run(seed, &options());
        assert!(report.ops > 200, "seed {seed}: only {} operations", report.ops);
        assert!(report.fault_count() >= 5, "seed {seed}: only {} faults", report.fault_count());
        assert!(!report.check_inconclusive, "seed {seed}: the checker ran out of budget");
    });
}

/// Thesis §6.4.1: the same runs with leaders serving reads under a lease.
/// The nemesis keeps clock skew within the lease's drift bound, and nodes
/// tick by their clocks as the runtime does; stale reads would fail the
/// read-floor check or the linearizability check.
#[test]
fn kv_chaos_runs_with_lease_reads_are_safe_and_live() {
    let mut lease = options();
    lease.raft.lease_read = true;
    for_each_seed("kv_chaos_runs_with_lease_reads_are_safe_and_live", 6, |seed| {
        let report = run(seed, &lease);
        assert!(report.ops > 200, "seed {seed}: only {} operations", report.ops);
        assert!(!report.check_inconclusive, "seed {seed}: the checker ran out of budget");
    });
}

#[test]
fn a_seed_replays_exactly() {
    let summary = |r: &RunReport| (r.ops, r.unknown, r.liveness_ops, r.faults.clone(), r.virtual_ms, r.steps);
    let (a, b) = (run(3, &options()), run(3, &options()));
    assert_eq!(summary(&a), summary(&b));
}

/// The first seed in `0..BUG_SEEDS` whose run fails, and the first line of why.
fn first_failure(options: &RunOptions) -> Option<(u64, String)> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = (0..BUG_SEEDS).find_map(|seed| {
        let outcome = std::panic::catch_unwind(|| run(seed, options));
        if let Ok(report) = &outcome
            && (report.ops < 100 || report.fault_count() < 5)
        {
            return Some((seed, format!("a weak run: {} ops, {} faults", report.ops, report.fault_count())));
        }
        outcome.err().map(|panic| {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            (seed, text.lines().next().unwrap_or_default().to_string())
        })
    });
    std::panic::set_hook(previous);
    found
}

/// Asserts the bug is caught under `options`, by a message containing one of `by`.
fn caught(name: &str, options: RunOptions, bugs: PlantedBugs, by: &[&str]) {
    match first_failure(&with_bugs(options, bugs)) {
        Some((seed, why)) => {
            println!("{name}: caught at seed {seed}: {why}");
            assert!(by.iter().any(|b| why.contains(b)), "{name} was caught, but not by an expected check: {why}");
        }
        None => panic!("{name} survived {BUG_SEEDS} seeds of KV chaos: a checker is blind to it"),
    }
}

#[test]
fn the_bug_seeds_pass_without_bugs() {
    assert_eq!(first_failure(&options()), None);
}

#[test]
fn the_bug_seeds_pass_without_bugs_with_one_entry_messages() {
    assert_eq!(first_failure(&figure8()), None);
}

#[test]
fn the_bug_seeds_pass_without_bugs_on_slow_disks() {
    assert_eq!(first_failure(&slow_disks()), None);
}

#[test]
fn kv_chaos_catches_voting_twice() {
    caught(
        "vote_twice",
        options(),
        PlantedBugs { vote_twice: true, ..Default::default() },
        &["two leaders in term", "invariant", "linearizable"],
    );
}

#[test]
fn kv_chaos_catches_committing_old_terms_by_counting() {
    caught(
        "commit_old_terms",
        figure8(),
        PlantedBugs { commit_old_terms: true, ..Default::default() },
        &["invariant", "stale read", "linearizable"],
    );
}

#[test]
fn kv_chaos_catches_acknowledging_before_persisting() {
    caught(
        "ack_before_persist",
        slow_disks(),
        PlantedBugs { ack_before_persist: true, ..Default::default() },
        &["invariant", "linearizable"],
    );
}

#[test]
fn kv_chaos_catches_reading_without_read_index() {
    caught(
        "read_without_read_index",
        options(),
        PlantedBugs { read_without_read_index: true, ..Default::default() },
        &["stale read", "linearizable"],
    );
}

#[test]
fn kv_chaos_catches_skipping_the_noop() {
    caught(
        "skip_noop",
        options(),
        PlantedBugs { skip_noop: true, ..Default::default() },
        &["invariant", "stale read", "linearizable", "liveness"],
    );
}

/// Reads served by any node without ReadIndex (a client-side bug: the
/// cluster's own stale-read checker never sees them) are caught by the
/// linearizability check of the history.
#[test]
fn the_linearizability_check_catches_stale_follower_reads() {
    let stale = RunOptions { stale_reads: true, ..options() };
    match first_failure(&stale) {
        Some((seed, why)) => {
            println!("stale follower reads: caught at seed {seed}: {why}");
            assert!(why.contains("not linearizable"), "caught, but not by the linearizability check: {why}");
        }
        None => panic!("stale follower reads survived {BUG_SEEDS} seeds"),
    }
}

/// Retries that do not reuse `(client, seq)` apply a request twice when
/// the first attempt made it after all (thesis §6.3): the history shows it.
#[test]
fn the_linearizability_check_catches_retries_without_sessions() {
    let unsafe_retries = RunOptions { fresh_seq_per_retry: true, ..options() };
    match first_failure(&unsafe_retries) {
        Some((seed, why)) => {
            println!("retries without sessions: caught at seed {seed}: {why}");
            assert!(why.contains("not linearizable"), "caught, but not by the linearizability check: {why}");
        }
        None => panic!("retries without sessions survived {BUG_SEEDS} seeds"),
    }
}

/// A cluster that is never healed must fail the liveness phase: the check
/// can fail.
#[test]
fn the_liveness_phase_catches_a_cluster_that_cannot_progress() {
    let stuck = RunOptions { never_heal: true, ..options() };
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| run(1, &stuck));
    std::panic::set_hook(previous);
    let panic = outcome.expect_err("a cluster cut off for good passed the liveness phase");
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.starts_with("seed 1 at "), "the failure names its seed: {text}");
    assert!(text.contains("liveness"), "caught by the liveness check: {text}");
}
