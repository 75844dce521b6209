//! `raftkv bench` against a real 3-node cluster, started at a follower so the
//! redirect to the leader is exercised.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Cluster, bulk};
use loadgen::Report;

#[test]
fn bench_runs_a_mixed_workload_through_a_follower() {
    let cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(20));
    let follower = (leader + 1) % 3;
    cluster.await_leader_known(follower, leader, Duration::from_secs(20));
    let json = cluster.dir.path().join("report.json");
    let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .arg("bench")
        .args(["--addr", &cluster.nodes[follower].client.to_string()])
        .args(["-c", "4", "-P", "4", "-n", "2000", "--keys", "100", "-d", "64", "--read-percent", "50"])
        .args(["--prefill", "-q", "--json"])
        .arg(&json)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_bounded(child, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("p99.9 µs"), "the table is printed: {stdout}");
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report.ops, 2000, "{stdout}");
    assert_eq!(report.errors, 0, "{:?}", report.error_kinds);
    let (gets, sets) = (report.latency["get"].count, report.latency["set"].count);
    assert_eq!(gets + sets, 2000);
    assert!(gets > 700 && sets > 700, "about half reads: {gets} gets, {sets} sets");
    assert!(report.latency["all"].p50_us > 0);
    // The prefill and the writes reached the replicated store.
    let mut client = cluster.client(leader);
    assert_eq!(client.call(&["GET", "key:0000000099"]).unwrap(), bulk(&"x".repeat(64)));
}

/// The child's output, killing it if it runs longer than `limit`.
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("raftkv bench ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}
