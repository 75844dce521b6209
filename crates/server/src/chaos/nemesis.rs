//! The nemesis: seed-driven faults against real processes. It SIGKILLs the
//! leader or a random node (restarting it a few seconds later), SIGSTOPs a
//! node and SIGCONTs it later, and, when the nodes run in network
//! namespaces, cuts the leader or a random node off the network and heals
//! it later. It keeps at most a minority faulty at once so the cluster can
//! make progress between faults.

use std::fmt;
use std::time::{Duration, Instant};

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use super::ChaosError;
use super::netns::Netns;
use super::procs::Cluster;
use crate::resp::Frame;
use crate::{Client, ClientConfig};

/// What the nemesis did.
#[derive(Clone, Debug, Default)]
pub struct NemesisStats {
    /// SIGKILLs, the leader's included.
    pub kills: u64,
    /// SIGKILLs of the node that was leader.
    pub leader_kills: u64,
    /// SIGSTOPs (each resumed with SIGCONT).
    pub pauses: u64,
    /// Restarts of killed nodes.
    pub restarts: u64,
    /// Nodes cut off the network (each healed later).
    pub partitions: u64,
    /// Nodes that exited without being killed: `(id, status)`.
    pub crashes: Vec<(u64, String)>,
}

impl fmt::Display for NemesisStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} SIGKILLs ({} of the leader), {} SIGSTOP/SIGCONT pauses, {} restarts, {} nodes isolated",
            self.kills, self.leader_kills, self.pauses, self.restarts, self.partitions
        )
    }
}

/// When a faulty node gets better.
#[derive(Clone, Copy)]
enum Fault {
    Healthy,
    Down { until: Instant },
    Paused { until: Instant },
    Isolated { until: Instant },
}

/// What the nemesis does next.
enum Action {
    KillLeader,
    KillRandom,
    PauseRandom,
    IsolateLeader,
    IsolateRandom,
    Nothing,
}

fn action(roll: u64, partitions: bool) -> Action {
    match (roll, partitions) {
        (0..35, false) | (0..25, true) => Action::KillLeader,
        (35..60, false) | (25..45, true) => Action::KillRandom,
        (60..90, false) | (45..70, true) => Action::PauseRandom,
        (70..85, true) => Action::IsolateLeader,
        (85..100, true) => Action::IsolateRandom,
        _ => Action::Nothing,
    }
}

/// Seconds since `start`, for the event log.
fn at(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Runs faults until `until`, then resumes, reconnects and restarts every node.
pub async fn run(
    cluster: &mut Cluster,
    netns: Option<&Netns>,
    start: Instant,
    until: Instant,
    seed: u64,
    stats: &mut NemesisStats,
) -> Result<(), ChaosError> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let n = cluster.nodes.len();
    let max_faulty = (n - 1) / 2;
    let mut faults = vec![Fault::Healthy; n];
    let ms = |rng: &mut Xoshiro256PlusPlus, lo: u64, hi: u64| Duration::from_millis(lo + rng.next_u64() % (hi - lo));
    while Instant::now() < until {
        let pause = ms(&mut rng, 500, 2000);
        tokio::time::sleep(pause.min(until.saturating_duration_since(Instant::now()))).await;
        heal_due(cluster, netns, &mut faults, start, stats, false)?;
        for crash in cluster.reap_exited() {
            println!("[{:7.2}s] node {} exited by itself: {}", at(start), crash.0, crash.1);
            stats.crashes.push(crash);
        }
        let faulty = faults.iter().filter(|f| !matches!(f, Fault::Healthy)).count();
        if faulty >= max_faulty || Instant::now() >= until {
            continue;
        }
        let healthy: Vec<usize> = (0..n).filter(|&i| matches!(faults[i], Fault::Healthy)).collect();
        let roll = rng.next_u64() % 100;
        let random = healthy[(rng.next_u64() % healthy.len() as u64) as usize];
        let target = match action(roll, netns.is_some()) {
            Action::KillLeader | Action::IsolateLeader => match find_leader(cluster).await {
                Some(leader) if matches!(faults[leader], Fault::Healthy) => leader,
                _ => continue,
            },
            _ => random,
        };
        let id = target + 1;
        match (action(roll, netns.is_some()), netns) {
            (a @ (Action::KillLeader | Action::KillRandom), _) => {
                cluster.kill(target);
                faults[target] = Fault::Down { until: Instant::now() + ms(&mut rng, 1000, 5000) };
                stats.kills += 1;
                let leader = matches!(a, Action::KillLeader);
                stats.leader_kills += u64::from(leader);
                println!("[{:7.2}s] SIGKILL node {id}{}", at(start), if leader { " (the leader)" } else { "" });
            }
            (Action::PauseRandom, _) => {
                cluster.pause(target);
                faults[target] = Fault::Paused { until: Instant::now() + ms(&mut rng, 500, 4000) };
                stats.pauses += 1;
                println!("[{:7.2}s] SIGSTOP node {id}", at(start));
            }
            (a @ (Action::IsolateLeader | Action::IsolateRandom), Some(netns)) => {
                netns.set_link(id as u64, false)?;
                faults[target] = Fault::Isolated { until: Instant::now() + ms(&mut rng, 1000, 5000) };
                stats.partitions += 1;
                let leader = if matches!(a, Action::IsolateLeader) { " (the leader)" } else { "" };
                println!("[{:7.2}s] isolate node {id}{leader} (link down)", at(start));
            }
            _ => {}
        }
    }
    heal_due(cluster, netns, &mut faults, start, stats, true)
}

/// Restarts, resumes and reconnects the nodes whose fault is over (all of them if `all`).
fn heal_due(
    cluster: &mut Cluster,
    netns: Option<&Netns>,
    faults: &mut [Fault],
    start: Instant,
    stats: &mut NemesisStats,
    all: bool,
) -> Result<(), ChaosError> {
    let now = Instant::now();
    for (i, fault) in faults.iter_mut().enumerate() {
        match *fault {
            Fault::Down { until } if all || until <= now => {
                cluster.restart(i)?;
                stats.restarts += 1;
                println!("[{:7.2}s] restart node {}", at(start), i + 1);
                *fault = Fault::Healthy;
            }
            Fault::Paused { until } if all || until <= now => {
                cluster.resume(i);
                println!("[{:7.2}s] SIGCONT node {}", at(start), i + 1);
                *fault = Fault::Healthy;
            }
            Fault::Isolated { until } if all || until <= now => {
                if let Some(netns) = netns {
                    netns.set_link(i as u64 + 1, true)?;
                }
                println!("[{:7.2}s] reconnect node {}", at(start), i + 1);
                *fault = Fault::Healthy;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The index of the node that says it leads (asked with `INFO raft`), if any answers so.
pub async fn find_leader(cluster: &Cluster) -> Option<usize> {
    for (i, node) in cluster.nodes.iter().enumerate() {
        if !node.is_running() || node.is_paused() {
            continue;
        }
        let mut config = ClientConfig::new(vec![node.client_addr]);
        config.deadline = Duration::from_millis(500);
        config.attempt_timeout = Duration::from_millis(300);
        let Ok(mut client) = Client::new(config) else { continue };
        if let Ok(Frame::Bulk(Some(info))) = client.command(["INFO", "raft"]).await
            && String::from_utf8_lossy(&info).lines().any(|l| l.trim() == "raft_role:leader")
        {
            return Some(i);
        }
    }
    None
}
