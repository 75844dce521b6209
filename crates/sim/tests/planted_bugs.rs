//! Every checker can fail: with a deliberate bug planted in the core, a chaos
//! run must trip a check within a bounded number of seeds — and the same
//! runs without the bug must pass, so what trips is the bug, not the harness.

use raft::PlantedBugs;
use sim::harness::cmd;
use sim::{Cluster, ClusterOptions, NetworkConfig};

/// Seeds tried per bug before declaring it missed.
const SEEDS: u64 = 40;

/// Five nodes on an unreliable network; every node that thinks it leads gets
/// a proposal and a read each round; leaders are crashed or cut off often,
/// and nodes come back. Panics (naming the seed) if any check fails.
fn chaos(seed: u64, bugs: PlantedBugs) {
    chaos_with(seed, bugs, 5, (2, 30));
}

/// [`chaos`] with `servers` nodes and disk latency `disk_ms`.
fn chaos_with(seed: u64, bugs: PlantedBugs, servers: usize, disk_ms: (u64, u64)) {
    let mut options = ClusterOptions::new(servers);
    options.network = NetworkConfig { unreliable: true, long_reordering: false };
    options.raft.bugs = bugs;
    // One entry per message: followers acknowledge old-term entries before a
    // new leader's own entry reaches them (the Figure 8 window).
    options.raft.max_message_bytes = 1;
    // Slow disks: acknowledged-but-unsynced windows are long.
    options.disk_latency_ms = disk_ms;
    let mut c = Cluster::new(seed, options);
    let mut ctx = 0;
    for round in 0..400u64 {
        for i in 0..servers {
            if c.nodes[i].is_up() {
                c.start_command(i, cmd(round * 10 + i as u64));
                ctx += 1;
                c.read_index(i, ctx);
            }
        }
        let ms = if c.random(10) == 0 { c.random(600) } else { c.random(60) };
        c.sleep(ms);
        if let Some(leader) = (0..servers).find(|&i| c.state(i).is_some_and(|(_, l)| l))
            && c.random(8) == 0
        {
            if c.random(2) == 0 { c.crash1(leader) } else { c.disconnect(leader) }
        }
        // Followers crash too, losing what they had not synced.
        if c.random(10) == 0 {
            let victim = c.random(servers as u64) as usize;
            c.crash1(victim);
        }
        // And nodes come back.
        let s = c.random(servers as u64) as usize;
        let up = (0..servers).filter(|&i| c.nodes[i].is_up() && c.is_connected(i)).count();
        if up < 3 || c.random(4) == 0 {
            if !c.nodes[s].is_up() {
                c.start1(s);
            }
            c.connect(s);
        }
    }
    if std::env::var("CHAOS_STATS").is_ok() {
        eprintln!("seed {seed}: {} ms, {} steps, max index {}", c.now, c.steps, c.max_index);
    }
}

/// The first seed in `0..SEEDS` whose chaos run fails, if any.
fn first_failure(bugs: PlantedBugs) -> Option<(u64, String)> {
    first_failure_of(|seed| chaos(seed, bugs))
}

fn first_failure_of(run: impl Fn(u64) + std::panic::RefUnwindSafe) -> Option<(u64, String)> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let found = (0..SEEDS).find_map(|seed| {
        std::panic::catch_unwind(|| run(seed)).err().map(|panic| {
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

fn caught(name: &str, bugs: PlantedBugs, expect: &str) {
    report(name, first_failure(bugs), expect);
}

fn report(name: &str, failure: Option<(u64, String)>, expect: &str) {
    match failure {
        Some((seed, why)) => {
            println!("{name}: caught at seed {seed}: {why}");
            assert!(why.contains(expect), "{name} was caught, but not by the expected check: {why}");
        }
        None => panic!("{name} survived {SEEDS} seeds of chaos: a checker is blind to it"),
    }
}

#[test]
fn the_chaos_runs_pass_without_bugs() {
    assert_eq!(first_failure(PlantedBugs::default()), None);
}

#[test]
fn voting_twice_in_a_term_is_caught() {
    caught("vote_twice", PlantedBugs { vote_twice: true, ..Default::default() }, "two leaders in term");
}

#[test]
fn committing_old_term_entries_by_counting_is_caught() {
    // Seen caught by the read checker first (an entry committed wrongly makes
    // reads stale) or by State Machine Safety: either is a checker failing.
    caught("commit_old_terms", PlantedBugs { commit_old_terms: true, ..Default::default() }, "");
}

/// Losing an acknowledged entry takes the acknowledging followers crashing
/// before their write lands and a leader being elected without it: three
/// nodes on slow disks make that window wide enough to hit.
#[test]
fn acknowledging_before_persisting_is_caught() {
    let bugs = PlantedBugs { ack_before_persist: true, ..Default::default() };
    let slow = |seed| chaos_with(seed, bugs, 3, (20, 120));
    assert_eq!(first_failure_of(|seed| chaos_with(seed, PlantedBugs::default(), 3, (20, 120))), None);
    report("ack_before_persist", first_failure_of(slow), "invariant violated");
}

#[test]
fn reading_without_read_index_is_caught() {
    caught(
        "read_without_read_index",
        PlantedBugs { read_without_read_index: true, ..Default::default() },
        "stale read",
    );
}
