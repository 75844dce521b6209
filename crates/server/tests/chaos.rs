//! Chaos against real processes: `raftkv chaos` runs 5 nodes under SIGKILL
//! and SIGSTOP faults with concurrent clients, and must find the history
//! linearizable and every acknowledged write readable. `raftkv
//! check-history` must agree on the history it wrote, and tell good
//! histories from bad ones by its exit status.
//!
//! `RAFTKV_CHAOS_SECS` sets the length of the faulty phase (default 30).
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A child in its own process group (the nodes it starts join it); the
/// whole group is SIGKILLed when dropped, so nothing outlives the test.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn raftkv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_raftkv"))
}

/// Waits for the group leader to exit, at most `limit`; `None` on timeout.
fn wait(group: &mut Group, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = group.0.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn chaos_with_kills_and_pauses_stays_linearizable() {
    use std::os::unix::process::CommandExt;
    let secs: u64 = std::env::var("RAFTKV_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    let out = dir.path().join("chaos.out");
    let mut group = Group(
        raftkv()
            .args(["chaos", "--nodes", "5", "--clients", "4", "--duration", &format!("{secs}s")])
            .arg("--history")
            .arg(&history)
            .args(["--check-timeout", "60s"])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let status = wait(&mut group, Duration::from_secs(secs + 150));
    let report = std::fs::read_to_string(&out).unwrap();
    println!("{report}");
    let status = status.unwrap_or_else(|| panic!("raftkv chaos did not finish in time"));
    assert!(status.success(), "raftkv chaos failed ({status}):\n{report}");
    assert!(report.contains("verdict: PASS"), "{report}");
    assert!(report.contains("SIGKILL node"), "the nemesis never killed a node:\n{report}");
    let check = raftkv().arg("check-history").arg(&history).output().unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{text}");
    assert!(text.starts_with("linearizable"), "{text}");
}

#[test]
fn check_history_exit_status_tells_linearizable_from_not() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, lines: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines).unwrap();
        let out = raftkv().arg("check-history").arg(&path).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let good = concat!(
        r#"{"client":1,"invoke":0,"complete":10,"op":"put","key":"x","value":"1"}"#,
        "\n",
        r#"{"client":2,"invoke":5,"complete":null,"op":"append","key":"x","value":"2"}"#,
        "\n",
        r#"{"client":3,"invoke":12,"complete":20,"op":"get","key":"x","result":"12"}"#,
        "\n"
    );
    assert_eq!(run("good.jsonl", good).0, Some(0));
    // A stale read: "2" was acknowledged before the read of "1" began.
    let stale = concat!(
        r#"{"client":1,"invoke":0,"complete":10,"op":"put","key":"x","value":"1"}"#,
        "\n",
        r#"{"client":1,"invoke":20,"complete":30,"op":"put","key":"x","value":"2"}"#,
        "\n",
        r#"{"client":2,"invoke":40,"complete":50,"op":"get","key":"x","result":"1"}"#,
        "\n"
    );
    let (code, text) = run("stale.jsonl", stale);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("NOT linearizable"), "{text}");
    assert_eq!(run("garbage.jsonl", "{not json\n").0, Some(2));
    let missing = raftkv().args(["check-history", "/nonexistent/history.jsonl"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
