//! Membership changes (§6, thesis ch. 4) and learners in the simulator, with
//! the invariant checks on after every step.

use std::collections::BTreeSet;

use raft::{ConfChange, Membership, NodeId, ProposeError};
use sim::harness::{RAFT_ELECTION_TIMEOUT_MS as ELECTION_TIMEOUT, cmd, for_each_seed};
use sim::{Cluster, ClusterOptions, NetworkConfig};

fn cluster(seed: u64, servers: usize, unreliable: bool) -> Cluster {
    let mut options = ClusterOptions::new(servers);
    options.network = NetworkConfig { unreliable, long_reordering: false };
    Cluster::new(seed, options)
}

fn voters(ids: &[NodeId]) -> impl Fn(&Membership) -> bool + '_ {
    move |m: &Membership| !m.is_joint() && m.voters == ids.iter().copied().collect::<BTreeSet<_>>()
}

/// Adds `new` as a voter as an operator would: `AddVoter` makes it a learner
/// that the leader promotes once caught up; if leadership changes before
/// that, the new leader does not know to promote it, so ask again until
/// `voters` is the configuration everywhere.
fn add_voter(c: &mut Cluster, new: NodeId, voters: &[NodeId]) {
    let t0 = c.now;
    loop {
        // Whoever leads takes it; a refusal (already a voter, a change in
        // flight, not the leader) just means look again later.
        for i in 0..c.n() {
            if c.with_raft(i, |r| r.propose_conf_change(ConfChange::AddVoter(new)).is_ok()) == Some(true) {
                c.drive(i);
            }
        }
        let deadline = c.now + 3_000;
        while c.now < deadline {
            let done = voters.iter().map(|&v| (v - 1) as usize).filter(|&i| c.is_connected(i)).all(|i| {
                c.nodes[i].raft.as_ref().is_none_or(|r| {
                    let m = r.membership();
                    !m.is_joint() && m.voters == voters.iter().copied().collect::<BTreeSet<_>>()
                })
            });
            if done {
                return;
            }
            c.sleep(20);
        }
        assert!(c.now - t0 < 30_000, "seed {}: node {new} never became a voter", c.seed);
    }
}

fn id(i: usize) -> NodeId {
    i as NodeId + 1
}

/// Keeps `count` proposals in flight in the background (load during changes).
fn load(c: &mut Cluster, base: u64, count: u64) {
    for k in 0..count {
        c.spawn_one(cmd(base + k), 1, true);
    }
}

fn finish_load(c: &mut Cluster) {
    while c.tasks_running() {
        c.sleep(10);
    }
}

#[test]
fn grow_3_to_5_under_load() {
    for_each_seed("grow_3_to_5_under_load", 3, |seed| {
        let mut c = cluster(seed, 3, true);
        c.one(cmd(1), 3, true);
        let (a, b) = (c.add_node(), c.add_node());
        load(&mut c, 100, 100);
        add_voter(&mut c, id(a), &[1, 2, 3, 4]);
        load(&mut c, 200, 100);
        add_voter(&mut c, id(b), &[1, 2, 3, 4, 5]);
        finish_load(&mut c);
        c.set_network(NetworkConfig::default());
        c.one(cmd(1000), 5, true);
    });
}

#[test]
fn shrink_5_to_3_under_load() {
    for_each_seed("shrink_5_to_3_under_load", 3, |seed| {
        let mut c = cluster(seed, 5, true);
        c.one(cmd(1), 5, true);
        load(&mut c, 100, 100);
        c.propose_change(ConfChange::RemoveVoter(5));
        c.await_membership("1-4 voters", &[1, 2, 3, 4], voters(&[1, 2, 3, 4]));
        load(&mut c, 200, 100);
        c.propose_change(ConfChange::RemoveVoter(4));
        c.await_membership("1-3 voters", &[1, 2, 3], voters(&[1, 2, 3]));
        c.disconnect(3);
        c.disconnect(4);
        finish_load(&mut c);
        c.set_network(NetworkConfig::default());
        // The removed nodes are gone; three voters still agree.
        c.one(cmd(1000), 3, true);
    });
}

#[test]
fn replace_a_crashed_node() {
    for_each_seed("replace_a_crashed_node", 3, |seed| {
        let mut c = cluster(seed, 3, false);
        c.one(cmd(1), 3, true);
        let leader = c.check_one_leader();
        let victim = (leader + 1) % 3;
        c.crash1(victim);
        c.one(cmd(2), 2, true);
        c.propose_change(ConfChange::RemoveVoter(id(victim)));
        let survivors: Vec<NodeId> = (0..3).filter(|&i| i != victim).map(id).collect();
        c.await_membership("victim removed", &survivors, voters(&survivors));
        let fresh = c.add_node();
        let mut all = survivors.clone();
        all.push(id(fresh));
        add_voter(&mut c, id(fresh), &all);
        // Survive losing one more of the new set: 2 of 3 still commit.
        let leader = c.check_one_leader();
        let other = (0..c.n()).find(|&i| i != leader && i != victim).unwrap_or(leader);
        c.disconnect(other);
        c.one(cmd(3), 2, true);
    });
}

#[test]
fn remove_the_leader() {
    for_each_seed("remove_the_leader", 3, |seed| {
        let mut c = cluster(seed, 3, false);
        c.one(cmd(1), 3, true);
        let leader = c.check_one_leader();
        let (_, at) = c.propose_change(ConfChange::RemoveVoter(id(leader)));
        assert_eq!(at, leader, "seed {seed}: the leader proposes");
        let rest: Vec<NodeId> = (0..3).filter(|&i| i != leader).map(id).collect();
        c.await_membership("leader removed", &rest, voters(&rest));
        c.sleep(ELECTION_TIMEOUT);
        // The removed leader stepped down (thesis §4.2.2) and the others elected one of themselves.
        assert!(c.state(leader).is_some_and(|(_, l)| !l), "seed {seed}: removed leader still leads");
        c.disconnect(leader);
        let new_leader = c.check_one_leader();
        assert_ne!(new_leader, leader, "seed {seed}");
        c.one(cmd(2), 2, true);
    });
}

/// The RedisRaft lost-update shape: a change proposed to a leader that has
/// just been cut off must not survive when the majority moved on.
#[test]
fn change_proposed_to_an_isolated_leader_is_reverted() {
    for_each_seed("change_proposed_to_an_isolated_leader_is_reverted", 3, |seed| {
        let mut c = cluster(seed, 5, false);
        c.one(cmd(1), 5, true);
        let old = c.check_one_leader();
        c.disconnect(old);
        let refused = c.with_raft(old, |r| r.propose_conf_change(ConfChange::RemoveVoter(id((old + 1) % 5))));
        assert!(matches!(refused, Some(Ok(_))), "seed {seed}: the isolated leader still accepts: {refused:?}");
        c.drive(old);
        // The majority elects a leader and makes its own change and writes.
        let victim = (old + 2) % 5;
        c.one(cmd(2), 4, true);
        c.propose_change(ConfChange::RemoveVoter(id(victim)));
        let expected: Vec<NodeId> = (0..5).filter(|&i| i != victim).map(id).collect();
        c.await_membership("majority's change", &expected, voters(&expected));
        let index3 = c.one(cmd(3), 3, true);
        c.connect(old);
        c.await_membership("old leader converged", &expected, voters(&expected));
        c.one(cmd(4), 4, true);
        // The old leader's change was truncated; the write acknowledged by the majority is there.
        let (n, v) = c.n_committed(index3);
        assert!(n >= 4 && v == Some(Some(cmd(3))), "seed {seed}: lost update: {n} nodes have {v:?}");
    });
}

#[test]
fn empty_node_catches_up_through_a_snapshot() {
    for_each_seed("empty_node_catches_up_through_a_snapshot", 3, |seed| {
        let mut options = ClusterOptions::new(3);
        options.snapshot_interval = Some(10);
        options.raft.snapshot_chunk_bytes = 128;
        let mut c = Cluster::new(seed, options);
        for v in 0..60 {
            c.one(cmd(v), 3, true);
        }
        let fresh = c.add_node();
        c.net.delivered = Some(Vec::new());
        add_voter(&mut c, id(fresh), &[1, 2, 3, 4]);
        let index = c.one(cmd(1000), 4, true);
        let status = c.nodes[fresh].raft.as_ref().map(|r| r.status());
        let snapshot_index = status.as_ref().map_or(0, |s| s.snapshot_index);
        assert!(snapshot_index > 0, "seed {seed}: the new node caught up without a snapshot: {status:?}");
        let delivered = c.net.delivered.take().unwrap_or_default();
        let chunks = delivered
            .iter()
            .filter(|m| m.to == id(fresh) && matches!(m.body, raft::MessageBody::InstallSnapshot(_)))
            .count();
        assert!(chunks > 1, "seed {seed}: the new node got {chunks} snapshot chunks; expected a chunked transfer");
        assert_eq!(c.n_committed(index).0, 4, "seed {seed}");
    });
}

#[test]
fn crash_in_a_joint_configuration_then_finish() {
    for_each_seed("crash_in_a_joint_configuration_then_finish", 3, |seed| {
        let mut c = cluster(seed, 3, false);
        c.one(cmd(1), 3, true);
        let fresh = c.add_node();
        c.propose_change(ConfChange::AddLearner(id(fresh)));
        c.await_membership("learner added", &[1, 2, 3, id(fresh)], |m| m.is_learner(id(fresh)));
        c.sleep(200);
        let (_, leader) = c.propose_change(ConfChange::PromoteLearner(id(fresh)));
        // Let the joint entry reach some followers, then crash everyone.
        let delay = c.random(30);
        c.sleep(delay);
        for i in 0..c.n() {
            c.crash1(i);
        }
        for i in 0..c.n() {
            c.start1(i);
            c.connect(i);
        }
        // Either the joint configuration was lost with the crash (back to three
        // voters) or some leader finishes it (four voters); never stuck joint.
        c.one(cmd(2), 3, true);
        c.sleep(ELECTION_TIMEOUT);
        let t0 = c.now;
        loop {
            let configs: Vec<Membership> =
                (0..c.n()).filter_map(|i| c.nodes[i].raft.as_ref().map(|r| r.membership().clone())).collect();
            let settled = configs.iter().all(|m| !m.is_joint() && *m == configs[0]);
            if settled {
                break;
            }
            assert!(c.now - t0 < 10_000, "seed {seed}: stuck in {configs:?} (leader was {leader})");
            c.sleep(50);
        }
        c.one(cmd(3), 3, true);
    });
}

/// The joint entry is durable on every node but committed nowhere when all
/// crash (the followers' acknowledgements are cut): after the restart, a leader
/// elected under the joint rules commits it and leaves it, finishing the change.
#[test]
fn crash_while_joint_is_uncommitted_then_finish() {
    for_each_seed("crash_while_joint_is_uncommitted_then_finish", 3, |seed| {
        let mut c = cluster(seed, 3, false);
        c.one(cmd(1), 3, true);
        let fresh = c.add_node();
        c.propose_change(ConfChange::AddLearner(id(fresh)));
        c.await_membership("learner added", &[1, 2, 3, id(fresh)], |m| m.is_learner(id(fresh)));
        c.one(cmd(2), 4, true);
        let leader = c.check_one_leader();
        for f in (0..c.n()).filter(|&f| f != leader) {
            c.net.set_link_blocked(f, leader, true);
        }
        let (index, at) = c.propose_change(ConfChange::PromoteLearner(id(fresh)));
        assert_eq!(at, leader, "seed {seed}: the leader takes the change");
        // Less than an election timeout: the followers still follow.
        c.sleep(150);
        for i in 0..c.n() {
            let on_disk =
                c.nodes[i].disk.all_entries().iter().any(|e| {
                    e.index == index && matches!(&e.payload, raft::EntryPayload::Membership(m) if m.is_joint())
                });
            assert!(on_disk, "seed {seed}: node {i} has no durable joint entry at {index}\n{}", c.describe());
            let commit = c.nodes[i].raft.as_ref().map_or(0, |r| r.log().committed());
            assert!(commit < index, "seed {seed}: node {i} committed the joint entry before the crash");
        }
        for i in 0..c.n() {
            c.crash1(i);
        }
        c.net.heal_links();
        for i in 0..c.n() {
            c.start1(i);
            c.connect(i);
        }
        let all = [1, 2, 3, id(fresh)];
        c.await_membership("change finished", &all, voters(&all));
        c.one(cmd(3), 4, true);
    });
}

#[test]
fn a_second_concurrent_change_is_refused() {
    for_each_seed("a_second_concurrent_change_is_refused", 3, |seed| {
        let mut c = cluster(seed, 3, false);
        c.one(cmd(1), 3, true);
        let leader = c.check_one_leader();
        let (a, b) = (c.add_node(), c.add_node());
        let first = c.with_raft(leader, |r| r.propose_conf_change(ConfChange::AddLearner(id(a))));
        let second = c.with_raft(leader, |r| r.propose_conf_change(ConfChange::AddLearner(id(b))));
        assert!(matches!(first, Some(Ok(_))), "seed {seed}: {first:?}");
        assert_eq!(second, Some(Err(ProposeError::ChangeInProgress)), "seed {seed}");
        c.drive(leader);
        c.await_membership("first learner", &[1, 2, 3, id(a)], |m| m.is_learner(id(a)));
        // Promotion enters a joint configuration; a change during it is refused too.
        c.propose_change(ConfChange::PromoteLearner(id(a)));
        let during = c.with_raft(leader, |r| r.propose_conf_change(ConfChange::AddLearner(id(b))));
        assert!(
            matches!(during, Some(Err(ProposeError::ChangeInProgress)) | Some(Err(ProposeError::NotLeader(_)))),
            "seed {seed}: {during:?}"
        );
        c.await_membership("promoted", &[1, 2, 3, id(a)], voters(&[1, 2, 3, id(a)]));
    });
}

#[test]
fn a_learner_never_counts_for_a_quorum() {
    for_each_seed("a_learner_never_counts_for_a_quorum", 3, |seed| {
        let mut c = cluster(seed, 3, false);
        c.one(cmd(1), 3, true);
        let (a, b) = (c.add_node(), c.add_node());
        c.propose_change(ConfChange::AddLearner(id(a)));
        c.await_membership("learner a", &[1, 2, 3, id(a)], |m| m.is_learner(id(a)));
        c.propose_change(ConfChange::AddLearner(id(b)));
        c.await_membership("learner b", &[1, 2, 3, id(a), id(b)], |m| m.is_learner(id(a)) && m.is_learner(id(b)));
        c.one(cmd(2), 5, true);
        let leader = c.check_one_leader();
        // Cut the leader off from both other voters: only learners hear it.
        for v in (0..3).filter(|&i| i != leader) {
            c.disconnect(v);
        }
        let Some((index, _)) = c.start_command(leader, cmd(3)) else {
            c.fail(format!("leader {leader} refused a proposal right after being cut off"))
        };
        c.sleep(2 * ELECTION_TIMEOUT);
        assert_eq!(c.n_committed(index).0, 0, "seed {seed}: committed with learners' acks");
        let learner_log = |c: &Cluster, i: usize| c.nodes[i].raft.as_ref().map_or(0, |r| r.log().last_index());
        assert!(
            learner_log(&c, a) >= index || learner_log(&c, b) >= index,
            "seed {seed}: the learners never got entry {index}, so the check above proves nothing"
        );
        // And a learner never leads, however long voters are away.
        for i in [a, b] {
            assert!(c.state(i).is_some_and(|(_, l)| !l), "seed {seed}: learner {i} became leader");
        }
    });
}
