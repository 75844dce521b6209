//! The `check_history` binary: verdicts and exit codes on files.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-check-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_check_history")).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const GOOD: &str = r#"{"client":1,"invoke":0,"complete":10,"op":"put","key":"x","value":"1"}
{"client":2,"invoke":5,"complete":null,"op":"append","key":"x","value":"2"}
{"client":3,"invoke":12,"complete":20,"op":"get","key":"x","result":"12"}
"#;

const STALE_READ: &str = r#"{"client":1,"invoke":0,"complete":10,"op":"put","key":"x","value":"1"}
{"client":1,"invoke":20,"complete":30,"op":"put","key":"x","value":"2"}
{"client":2,"invoke":40,"complete":50,"op":"get","key":"x","result":"1"}
"#;

#[test]
fn linearizable_history_exits_0() {
    let path = write_temp("good.jsonl", GOOD);
    let out = run(&[path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).starts_with("linearizable\n"), "{}", stdout(&out));
}

#[test]
fn stale_read_exits_1_with_an_explanation() {
    let path = write_temp("stale.jsonl", STALE_READ);
    let out = run(&[path.to_str().unwrap(), "--timeout-ms", "10000"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("NOT linearizable"), "{text}");
    assert!(text.contains("#2 client 2 [40, 50] get \"x\" -> \"1\""), "{text}");
}

#[test]
fn exhausted_budget_exits_2() {
    let path = write_temp("budget.jsonl", STALE_READ);
    let out = run(&[path.to_str().unwrap(), "--max-steps", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stdout(&out).starts_with("unknown: the step budget ran out"), "{}", stdout(&out));
}

#[test]
fn bad_input_exits_2_naming_the_line() {
    let path = write_temp("bad.jsonl", &format!("{GOOD}{{\"client\":1}}\n"));
    let out = run(&[path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 4:"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(run(&["a", "--timeout-ms"]).status.code(), Some(2));
    assert_eq!(run(&["a", "--bogus"]).status.code(), Some(2));
    assert_eq!(run(&["/nonexistent/history.jsonl"]).status.code(), Some(2));
}
