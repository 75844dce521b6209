//! The simulator's fault primitives for the nemesis do what they say:
//! pauses stop a node's clock and its inbox, clogs delay, skewed ticks run a
//! clock fast, and KV snapshots move a real store between nodes.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use kv::{Command, Request, RequestBody};
use raft::MessageBody;
use sim::{Cluster, ClusterOptions};

fn set(seq: u64, key: &str, value: &str) -> Bytes {
    let args: Vec<Bytes> = ["SET", key, value].iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    let body = RequestBody::Command(Command::parse(&args).unwrap());
    Bytes::from(Request { client_id: 1, seq, time_ms: seq, body }.encode())
}

#[test]
fn a_paused_leader_stops_and_steps_down_when_it_wakes() {
    let mut c = Cluster::new(1, ClusterOptions::new(3));
    let old = c.check_one_leader();
    let (term, _) = c.state(old).unwrap();
    let ticks = c.nodes[old].raft.as_ref().unwrap().now();
    c.paused_until[old] = c.now + 3_000;
    c.sleep(2_500);
    assert_eq!(c.nodes[old].raft.as_ref().unwrap().now(), ticks, "a paused node does not tick");
    assert_eq!(c.state(old), Some((term, true)), "asleep, it still believes it leads");
    let new = (0..3).find(|&i| i != old && c.state(i).is_some_and(|(_, l)| l)).expect("the others elect a leader");
    assert!(c.state(new).unwrap().0 > term);
    c.sleep(1_500);
    assert!(c.state(old).is_some_and(|(t, l)| !l && t > term), "awake, it learns the new term");
}

#[test]
fn a_clogged_link_delays_commits_by_its_delay() {
    let mut c = Cluster::new(2, ClusterOptions::new(3));
    let l = c.check_one_leader();
    // Shorter than the election timeout (200 ms at least), so the leader stays.
    for j in 0..3 {
        if j != l {
            c.net.set_clog(l, j, 150);
        }
    }
    let command = set(1, "k", "v");
    let (index, term) = c.start_command(l, command.clone()).unwrap();
    c.sleep(120);
    assert_eq!(c.n_committed(index).0, 0, "nothing reaches a follower before 150 ms");
    c.sleep(200);
    let (applied_by, value) = c.n_committed(index);
    assert!(applied_by >= 1, "it commits once the appends arrive");
    assert_eq!(value, Some(Some(command)));
    assert_eq!(c.state(l), Some((term, true)));
    c.net.unclog_all();
}

#[test]
fn a_skewed_clock_ticks_at_its_own_rate() {
    let mut c = Cluster::new(3, ClusterOptions::new(3));
    c.tick_ms[0] = 5;
    c.tick_ms[1] = 20;
    c.sleep(2_000);
    let ticks = |c: &Cluster, i: usize| c.nodes[i].raft.as_ref().unwrap().now();
    let (fast, normal, slow) = (ticks(&c, 0), ticks(&c, 2), ticks(&c, 1));
    assert!((380..=420).contains(&fast), "fast: {fast}");
    assert!((190..=210).contains(&normal), "normal: {normal}");
    assert!((90..=110).contains(&slow), "slow: {slow}");
}

#[test]
fn a_lagging_node_gets_the_kv_store_through_install_snapshot() {
    let mut options = ClusterOptions::new(3);
    options.kv = true;
    options.snapshot_interval = Some(10);
    let mut c = Cluster::new(4, options);
    let l = c.check_one_leader();
    let f = (l + 1) % 3;
    c.crash1(f);
    for seq in 1..=40 {
        c.start_command(l, set(seq, &format!("k{}", seq % 7), &format!("v{seq}"))).unwrap();
        c.sleep(20);
    }
    c.net.delivered = Some(Vec::new());
    c.start1(f);
    c.connect(f);
    c.sleep(2_000);
    let delivered = c.net.delivered.take().unwrap();
    assert!(
        delivered.iter().any(|m| m.to == f as u64 + 1 && matches!(m.body, MessageBody::InstallSnapshot(_))),
        "the leader compacted its log: the follower must catch up by snapshot"
    );
    assert_eq!(c.nodes[f].last_applied, c.nodes[l].last_applied);
    let snapshot = |i: usize| c.nodes[i].kv.as_ref().unwrap().snapshot().unwrap();
    assert_eq!(snapshot(f), snapshot(l), "same entries applied, byte-identical stores");
    assert_eq!(c.nodes[f].kv.as_ref().unwrap().store.key_count(), 7);
}
