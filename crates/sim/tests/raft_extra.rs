//! Simulated tests of what MIT 6.824's suite does not cover: pre-vote,
//! check-quorum, ReadIndex, leadership transfer and the bound fast
//! backtracking puts on a follower's rejections.
//!
//! Each test runs over `RAFT_SEEDS` seeds (default 3); `RAFT_SEED=N` replays
//! one. Times are virtual milliseconds; election timeouts are read from the
//! cluster's configuration, never hard-coded.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use raft::{LeaderHint, MessageBody, NodeId, ProposeError, ReadError, Role, Status, Term, TransferError};
use sim::harness::{cmd, for_each_seed};
use sim::{Cluster, ClusterOptions, TICK_MS};

// ---- helpers ------------------------------------------------------------------

/// Node id of node index `i`.
fn id(i: usize) -> NodeId {
    i as NodeId + 1
}

/// The status of node index `i`, which must be up.
fn status(c: &Cluster, i: usize) -> Status {
    c.nodes[i].raft.as_ref().unwrap().status()
}

fn term_of(c: &Cluster, i: usize) -> Term {
    c.state(i).unwrap().0
}

fn is_leader(c: &Cluster, i: usize) -> bool {
    c.state(i).is_some_and(|(_, leader)| leader)
}

/// The longest randomized election timeout, in virtual ms.
fn election_timeout_max_ms(c: &Cluster) -> u64 {
    c.options.raft.election_timeout_max_ticks * TICK_MS
}

/// The shortest randomized election timeout, in virtual ms.
fn election_timeout_min_ms(c: &Cluster) -> u64 {
    c.options.raft.election_timeout_min_ticks * TICK_MS
}

/// Runs the cluster in 1 ms slices until `done` holds, for at most `limit` ms.
/// Returns how long it took, or `None` if it never held.
fn run_until(c: &mut Cluster, limit: u64, mut done: impl FnMut(&Cluster) -> bool) -> Option<u64> {
    let start = c.now;
    loop {
        if done(c) {
            return Some(c.now - start);
        }
        if c.now - start >= limit {
            return None;
        }
        c.run_for(1);
    }
}

// ---- 1. pre-vote ----------------------------------------------------------------

/// A 3-node cluster that elected a leader and committed. Returns it, the
/// leader and its term.
fn idle_cluster(seed: u64, options: ClusterOptions) -> (Cluster, usize, Term) {
    let mut c = Cluster::new(seed, options);
    let leader = c.check_one_leader();
    c.one(cmd(1), 3, false);
    let term = c.check_terms();
    assert!(is_leader(&c, leader), "seed {seed}: node {leader} lost leadership with no fault");
    (c, leader, term)
}

/// Cuts `follower` off for six maximal election timeouts, then reconnects it
/// and lets the cluster run for four more. Returns the follower's term just
/// before it rejoined.
fn partition_and_rejoin(c: &mut Cluster, follower: usize) -> Term {
    c.disconnect(follower);
    c.sleep(6 * election_timeout_max_ms(c));
    let isolated_term = term_of(c, follower);
    c.connect(follower);
    c.sleep(4 * election_timeout_max_ms(c));
    isolated_term
}

/// Thesis §9.6: a node that was cut off must not depose a working leader when
/// it comes back. The cluster is idle, so the rejoining node's log is as
/// up-to-date as anyone's and only pre-vote plus leader stickiness stand in
/// its way. The partition is repeated (alternating followers), so that some
/// rejoin lands with the node's election timer firing before the leader's
/// next heartbeat reaches it.
#[test]
fn pre_vote_keeps_rejoining_node_from_disrupting() {
    for_each_seed("pre_vote_keeps_rejoining_node_from_disrupting", 3, |seed| {
        const REJOINS: usize = 6;
        let options = ClusterOptions::new(3);
        assert!(options.raft.pre_vote && options.raft.check_quorum, "seed {seed}: defaults changed");
        let (mut c, leader, term) = idle_cluster(seed, options);
        for rejoin in 0..REJOINS {
            let follower = (leader + 1 + rejoin % 2) % 3;
            let isolated_term = partition_and_rejoin(&mut c, follower);
            assert_eq!(
                isolated_term, term,
                "seed {seed}, rejoin {rejoin}: isolated node {follower} raised its term ({term} -> {isolated_term}) \
                 although it never won a pre-vote"
            );
            if c.state(leader) != Some((term, true)) {
                c.fail(format!(
                    "rejoin {rejoin}: node {leader} should still lead term {term} after node {follower} rejoined"
                ));
            }
            for i in 0..c.n() {
                assert_eq!(
                    term_of(&c, i),
                    term,
                    "seed {seed}, rejoin {rejoin}: node {i} changed term\n{}",
                    c.describe()
                );
            }
            let s = status(&c, follower);
            assert_eq!(
                (s.role, s.leader),
                (Role::Follower, id(leader)),
                "seed {seed}, rejoin {rejoin}: the rejoined node should follow the leader"
            );
        }
        // And the rejoined nodes catch up.
        c.one(cmd(2), 3, false);
    });
}

/// The control: without pre-vote (and without check-quorum's leader
/// stickiness), one such partition makes the rejoining node raise everyone's
/// term. That is what pre-vote saves us from.
#[test]
fn without_pre_vote_rejoining_node_disrupts() {
    for_each_seed("without_pre_vote_rejoining_node_disrupts", 3, |seed| {
        let mut options = ClusterOptions::new(3);
        options.raft.pre_vote = false;
        options.raft.check_quorum = false;
        let (mut c, leader, term) = idle_cluster(seed, options);
        let follower = (leader + 1) % 3;
        let isolated_term = partition_and_rejoin(&mut c, follower);
        assert!(
            isolated_term > term + 1,
            "seed {seed}: without pre-vote the isolated node should keep raising its term (was {term}, now {isolated_term})"
        );
        for i in 0..c.n() {
            assert!(
                term_of(&c, i) > term,
                "seed {seed}: node {i} is still in term {term} after node {follower} rejoined without pre-vote\n{}",
                c.describe()
            );
        }
        c.check_one_leader();
        c.one(cmd(2), 3, true);
    });
}

// ---- 2. check-quorum ------------------------------------------------------------

/// 5 nodes elect a leader, which is then cut off alone. Returns the cluster,
/// the old leader, its term, and how long it kept leading (if it stepped down
/// within `limit` ms).
fn isolate_leader(seed: u64, check_quorum: bool, limit_timeouts: u64) -> (Cluster, usize, Term, Option<u64>) {
    let mut options = ClusterOptions::new(5);
    options.raft.check_quorum = check_quorum;
    let mut c = Cluster::new(seed, options);
    let leader = c.check_one_leader();
    c.one(cmd(1), 5, false);
    assert!(is_leader(&c, leader), "seed {seed}: node {leader} lost leadership with no fault");
    let term = term_of(&c, leader);
    c.disconnect(leader);
    let limit = limit_timeouts * election_timeout_max_ms(&c);
    let deposed = run_until(&mut c, limit, |c| !is_leader(c, leader));
    (c, leader, term, deposed)
}

/// Thesis §6.2: the leader checks every minimal election timeout whether a
/// quorum answered since the last check, so an isolated leader steps down
/// within two election timeouts — two of the *shortest* (plus a tick), which
/// is stricter than two of the randomized ones.
#[test]
fn check_quorum_deposes_minority_leader() {
    for_each_seed("check_quorum_deposes_minority_leader", 3, |seed| {
        let (mut c, leader, term, deposed) = isolate_leader(seed, true, 2);
        let bound = 2 * election_timeout_min_ms(&c) + TICK_MS;
        match deposed {
            Some(took) if took <= bound => {}
            Some(took) => c.fail(format!("node {leader} stepped down after {took} ms, more than {bound} ms")),
            None => c.fail(format!("node {leader} still leads term {term} alone after 2 election timeouts")),
        }
        // It stepped down without raising its term (pre-vote) ...
        assert_eq!(term_of(&c, leader), term, "seed {seed}: the deposed leader changed term");
        // ... and the majority carries on without it.
        let new_leader = c.check_one_leader();
        assert_ne!(new_leader, leader, "seed {seed}: the isolated node cannot be the new leader");
        c.one(cmd(2), 4, false);
        assert!(!is_leader(&c, leader), "seed {seed}: node {leader} leads again while isolated");
    });
}

/// The control: without check-quorum the isolated leader never finds out.
#[test]
fn without_check_quorum_minority_leader_stays() {
    for_each_seed("without_check_quorum_minority_leader_stays", 3, |seed| {
        let (c, leader, term, deposed) = isolate_leader(seed, false, 6);
        assert_eq!(deposed, None, "seed {seed}: without check-quorum node {leader} stepped down alone");
        assert_eq!(c.state(leader), Some((term, true)), "seed {seed}: node {leader} should still think it leads");
    });
}

// ---- 3. ReadIndex ---------------------------------------------------------------

/// Asserts the read `(node, ctx)` never completed successfully.
fn assert_read_not_served(c: &Cluster, node: usize, ctx: u64, when: &str) {
    if let Some(Some(index)) = c.reads.get(&(node, ctx)) {
        c.fail(format!("{when}: deposed leader {node} served read {ctx} at index {index}"));
    }
}

/// A leader cut off from the others (before check-quorum notices) accepts a
/// read, but must never confirm it: a new leader has committed since.
#[test]
fn deposed_leader_cannot_complete_read_index() {
    for_each_seed("deposed_leader_cannot_complete_read_index", 3, |seed| {
        let mut c = Cluster::new(seed, ClusterOptions::new(5));
        let old = c.check_one_leader();
        c.one(cmd(1), 5, false);
        c.disconnect(old);
        let accepted = c.with_raft(old, |r| r.read_index(7)).unwrap();
        assert_eq!(accepted, Ok(()), "seed {seed}: node {old} still believes it leads; it should accept the read");
        c.drive(old);
        let new = c.check_one_leader();
        assert_ne!(new, old, "seed {seed}: the isolated node cannot be the new leader");
        c.one(cmd(2), 4, false);
        c.sleep(2 * election_timeout_max_ms(&c));
        assert_read_not_served(&c, old, 7, "while partitioned");
        // The documented contract: a read whose leadership is lost fails.
        assert_eq!(
            c.reads.get(&(old, 7)),
            Some(&None),
            "seed {seed}: the stepped-down leader should report ReadFailed for its pending read"
        );
        c.connect(old);
        c.sleep(election_timeout_max_ms(&c));
        assert_read_not_served(&c, old, 7, "after rejoining");
    });
}

/// The same without check-quorum: the old leader keeps believing it leads, so
/// only ReadIndex's own heartbeat round stands between it and a stale read.
#[test]
fn deposed_leader_cannot_complete_read_index_without_check_quorum() {
    for_each_seed("deposed_leader_cannot_complete_read_index_without_check_quorum", 3, |seed| {
        let mut options = ClusterOptions::new(5);
        options.raft.check_quorum = false;
        let mut c = Cluster::new(seed, options);
        let old = c.check_one_leader();
        c.one(cmd(1), 5, false);
        c.disconnect(old);
        let accepted = c.with_raft(old, |r| r.read_index(7)).unwrap();
        assert_eq!(accepted, Ok(()), "seed {seed}: node {old} still believes it leads; it should accept the read");
        c.drive(old);
        let new = c.check_one_leader();
        assert_ne!(new, old, "seed {seed}: the isolated node cannot be the new leader");
        c.one(cmd(2), 4, false);
        c.sleep(4 * election_timeout_max_ms(&c));
        assert!(is_leader(&c, old), "seed {seed}: without check-quorum node {old} should still think it leads");
        assert_eq!(c.reads.get(&(old, 7)), None, "seed {seed}: the read can neither complete nor fail yet");
        // Back on the network it learns of the new term and fails the read.
        c.connect(old);
        c.sleep(election_timeout_max_ms(&c));
        assert_read_not_served(&c, old, 7, "after rejoining");
        assert!(!is_leader(&c, old), "seed {seed}: node {old} should have stepped down");
        assert_eq!(c.reads.get(&(old, 7)), Some(&None), "seed {seed}: the read should fail once leadership is lost");
    });
}

#[test]
fn read_index_completes_on_healthy_leader() {
    for_each_seed("read_index_completes_on_healthy_leader", 3, |seed| {
        let mut c = Cluster::new(seed, ClusterOptions::new(5));
        let timeout = election_timeout_max_ms(&c);
        c.check_one_leader();
        let written = c.one(cmd(1), 5, false);
        let leader = c.check_one_leader();
        let commit = status(&c, leader).commit;
        assert!(commit >= written, "seed {seed}: leader's commit {commit} is behind the committed {written}");
        let follower = (leader + 1) % c.n();
        let refused = c.with_raft(follower, |r| r.read_index(1)).unwrap();
        assert_eq!(
            refused,
            Err(ReadError::NotLeader(LeaderHint(Some(id(leader))))),
            "seed {seed}: a follower must refuse ReadIndex and name the leader"
        );
        c.with_raft(leader, |r| r.read_index(1)).unwrap().unwrap();
        c.drive(leader);
        let took = run_until(&mut c, timeout, |c| c.reads.contains_key(&(leader, 1)));
        assert!(took.is_some(), "seed {seed}: the read was not answered within an election timeout");
        match c.reads.get(&(leader, 1)) {
            Some(Some(index)) => assert!(
                *index >= commit && *index >= written,
                "seed {seed}: read index {index} is behind the commit index {commit} when the read was issued"
            ),
            other => c.fail(format!("the read failed on a healthy leader: {other:?}")),
        }
        // A read issued right after a new leader took over waits for it to
        // commit in its term, then completes too.
        let next = (leader + 1) % c.n();
        c.with_raft(leader, |r| r.transfer_leader(id(next))).unwrap().unwrap();
        c.drive(leader);
        let became = run_until(&mut c, timeout, |c| is_leader(c, next));
        assert!(became.is_some(), "seed {seed}: transfer to node {next} did not complete");
        c.with_raft(next, |r| r.read_index(2)).unwrap().unwrap();
        c.drive(next);
        run_until(&mut c, timeout, |c| c.reads.contains_key(&(next, 2)));
        match c.reads.get(&(next, 2)) {
            Some(Some(index)) => {
                assert!(*index > written, "seed {seed}: read index {index} misses the new term's no-op")
            }
            other => c.fail(format!("the read on the new leader did not complete: {other:?}")),
        }
    });
}

// ---- 4. leadership transfer -------------------------------------------------------

/// A 3-node cluster with a leader and every node caught up. Returns it, the
/// leader and its term.
fn settled_cluster(seed: u64) -> (Cluster, usize, Term) {
    let mut c = Cluster::new(seed, ClusterOptions::new(3));
    c.check_one_leader();
    c.one(cmd(1), 3, false);
    let leader = c.check_one_leader();
    let term = term_of(&c, leader);
    (c, leader, term)
}

#[test]
fn leadership_transfer_completes() {
    for_each_seed("leadership_transfer_completes", 3, |seed| {
        let (mut c, leader, term) = settled_cluster(seed);
        let timeout = election_timeout_max_ms(&c);
        let target = (leader + 1) % c.n();
        let (transfer, proposal) = c.with_raft(leader, |r| (r.transfer_leader(id(target)), r.propose(cmd(2)))).unwrap();
        assert_eq!(transfer, Ok(()), "seed {seed}: transfer to a caught-up voter refused");
        assert_eq!(
            proposal,
            Err(ProposeError::TransferInProgress),
            "seed {seed}: a proposal during a transfer must be refused"
        );
        c.drive(leader);
        let took = run_until(&mut c, timeout, |c| is_leader(c, target));
        if took.is_none() {
            c.fail(format!("node {target} did not become leader within an election timeout"));
        }
        assert_eq!(term_of(&c, target), term + 1, "seed {seed}: the transfer should cost exactly one term");
        assert!(!is_leader(&c, leader), "seed {seed}: the old leader should have stepped down");
        // The new leader serves, and the old one follows it.
        c.one(cmd(3), 3, false);
        assert_eq!(c.check_one_leader(), target, "seed {seed}: leadership did not stay with the target");
        assert_eq!(c.check_terms(), term + 1, "seed {seed}: terms moved on after the transfer");
        assert_eq!(status(&c, leader).leader, id(target), "seed {seed}: the old leader does not follow the new one");
    });
}

#[test]
fn leadership_transfer_refused_for_unknown_target() {
    for_each_seed("leadership_transfer_refused_for_unknown_target", 3, |seed| {
        let (mut c, leader, term) = settled_cluster(seed);
        let refused = c.with_raft(leader, |r| r.transfer_leader(99)).unwrap();
        assert_eq!(refused, Err(TransferError::UnknownTarget(99)), "seed {seed}: transfer to a non-member accepted");
        let follower = (leader + 1) % c.n();
        let refused = c.with_raft(follower, |r| r.transfer_leader(id(leader))).unwrap();
        assert_eq!(
            refused,
            Err(TransferError::NotLeader(LeaderHint(Some(id(leader))))),
            "seed {seed}: a follower must refuse to transfer and name the leader"
        );
        // Nothing was started: the leader still takes proposals, in its term.
        assert!(c.start_command(leader, cmd(2)).is_some(), "seed {seed}: a refused transfer blocks proposals");
        c.one(cmd(3), 3, false);
        assert_eq!(c.state(leader), Some((term, true)), "seed {seed}: a refused transfer changed the leader");
    });
}

#[test]
fn leadership_transfer_to_disconnected_follower_is_abandoned() {
    for_each_seed("leadership_transfer_to_disconnected_follower_is_abandoned", 3, |seed| {
        let (mut c, leader, term) = settled_cluster(seed);
        let target = (leader + 1) % c.n();
        c.disconnect(target);
        let transfer = c.with_raft(leader, |r| r.transfer_leader(id(target))).unwrap();
        assert_eq!(transfer, Ok(()), "seed {seed}: transfer to a voter refused");
        c.drive(leader);
        assert_eq!(c.start_command(leader, cmd(2)), None, "seed {seed}: a proposal during a transfer was accepted");
        c.sleep(election_timeout_min_ms(&c) / 2);
        let refused = c.with_raft(leader, |r| r.propose(cmd(2))).unwrap();
        assert_eq!(refused, Err(ProposeError::TransferInProgress), "seed {seed}: the transfer ended too early");
        c.sleep(election_timeout_max_ms(&c));
        assert_eq!(c.state(leader), Some((term, true)), "seed {seed}: the leader should keep its leadership");
        let Some((index, _)) = c.start_command(leader, cmd(3)) else {
            c.fail(format!("leader {leader} still refuses proposals after the transfer timed out"))
        };
        c.wait(index, 2, None);
        c.connect(target);
        c.one(cmd(4), 3, false);
        assert_eq!(
            c.state(leader),
            Some((term, true)),
            "seed {seed}: the target took over after the abandoned transfer"
        );
    });
}

// ---- 5. fast backtracking -----------------------------------------------------------

/// §5.3's optimization: a follower whose log conflicts with the leader's over
/// K terms is repaired with at most K + 1 rejections (one per conflicting
/// term, plus one if its log is shorter than the leader's), not one per entry.
///
/// Construction (3 nodes F, B, X, all in step after a first commit, F leading):
/// X is cut off and the link F -> B is cut, so F keeps leading without
/// replicating. F proposes a few entries. Then, `ROUNDS - 1` times: F steps
/// down (check-quorum); the link is restored until B has voted for F in a new
/// term, and cut again before B's vote (delayed by a 5 ms disk write) reaches
/// F, so F leads the new term alone and proposes entries of it. Finally F is
/// cut off, B and X elect a leader and commit past F's last index, and
/// leadership moves to the other of the two, so that the new leader starts
/// probing F from beyond F's log. F then rejoins and we count its rejections.
#[test]
fn fast_backtracking_bound() {
    for_each_seed("fast_backtracking_bound", 3, |seed| {
        const ROUNDS: u64 = 5;
        const PER_TERM: u64 = 4;
        let mut options = ClusterOptions::new(3);
        options.disk_latency_ms = (5, 5);
        let mut c = Cluster::new(seed, options);
        let f = c.check_one_leader();
        c.one(cmd(0), 3, false);
        let (b, x) = ((f + 1) % 3, (f + 2) % 3);
        let limit = 20 * election_timeout_max_ms(&c);
        c.disconnect(x);
        c.net.set_link_blocked(f, b, true);
        for round in 0..ROUNDS {
            if round > 0 {
                if run_until(&mut c, limit, |c| !is_leader(c, f)).is_none() {
                    c.fail(format!("round {round}: node {f} never stepped down"));
                }
                c.net.set_link_blocked(f, b, false);
                let before = term_of(&c, b);
                let voted = run_until(&mut c, limit, |c| {
                    let s = status(c, b);
                    s.vote == id(f) && s.term > before
                });
                c.net.set_link_blocked(f, b, true);
                if voted.is_none() {
                    c.fail(format!("round {round}: node {b} never voted for node {f}"));
                }
                if run_until(&mut c, limit, |c| is_leader(c, f)).is_none() {
                    c.fail(format!("round {round}: node {f} did not win the election node {b} voted in"));
                }
            }
            for k in 0..PER_TERM {
                if c.start_command(f, cmd(1000 * round + k)).is_none() {
                    c.fail(format!("round {round}: leader {f} refused a proposal"));
                }
            }
        }

        // B and X take over and commit past the end of F's log.
        c.disconnect(f);
        c.net.heal_links();
        c.connect(x);
        let f_last = status(&c, f).last_index;
        let mut v = 0;
        while status(&c, b).last_index.min(status(&c, x).last_index) <= f_last + 1 {
            c.one(cmd(50_000 + v), 2, true);
            v += 1;
        }
        // A fresh leader, whose probing of F starts past F's log.
        let first = c.check_one_leader();
        let leader = if first == b { x } else { b };
        c.with_raft(first, |r| r.transfer_leader(id(leader))).unwrap().unwrap();
        c.drive(first);
        if run_until(&mut c, limit, |c| is_leader(c, leader)).is_none() {
            c.fail(format!("transfer from {first} to {leader} did not complete"));
        }

        // What F's log gets wrong.
        let (fl, ll) = (c.nodes[f].raft.as_ref().unwrap().log(), c.nodes[leader].raft.as_ref().unwrap().log());
        let mut conflicting_terms = BTreeSet::new();
        let mut conflicting_entries = 0;
        for index in 1..=f_last {
            let ft = fl.term(index).unwrap();
            if ll.term(index) != Some(ft) {
                conflicting_terms.insert(ft);
                conflicting_entries += 1;
            }
        }
        assert!(
            conflicting_terms.len() as u64 >= ROUNDS,
            "seed {seed}: the construction gave only {} conflicting terms: {conflicting_terms:?}",
            conflicting_terms.len()
        );

        c.net.delivered = Some(Vec::new());
        c.connect(f);
        let matched = run_until(&mut c, limit, |c| {
            let s = status(c, leader);
            s.progress.get(&id(f)).is_some_and(|&(m, _)| m == s.last_index)
        });
        if matched.is_none() {
            c.fail(format!("node {f} never caught up with leader {leader}"));
        }
        let delivered = c.net.delivered.take().unwrap();
        let mut rejections = 0;
        for m in delivered.iter().filter(|m| m.from == id(f)) {
            if let MessageBody::AppendEntriesResponse(r) = &m.body {
                if r.success {
                    break;
                }
                rejections += 1;
            }
        }
        let bound = conflicting_terms.len() + 1;
        assert!(
            rejections <= bound,
            "seed {seed}: {rejections} rejections to repair {conflicting_entries} entries over {} terms {conflicting_terms:?}; expected at most {bound}",
            conflicting_terms.len()
        );
        assert!(rejections >= 1, "seed {seed}: node {f}'s log conflicted, yet it never rejected");
        // And the repaired log is the leader's.
        let (fl, ll) = (c.nodes[f].raft.as_ref().unwrap().log(), c.nodes[leader].raft.as_ref().unwrap().log());
        for index in 1..=ll.last_index() {
            assert_eq!(fl.term(index), ll.term(index), "seed {seed}: logs still differ at {index}");
        }
    });
}
