//! The progress line on stderr: a bar, elapsed time, the last second's rate.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::run::Limit;

const BAR_WIDTH: usize = 30;

/// Prints a progress line every second until aborted.
pub fn spawn(done: Arc<AtomicU64>, limit: Limit, start: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0u64;
        let mut tick = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
        loop {
            tick.tick().await;
            let now = done.load(Ordering::Relaxed);
            let line = line(now, now - last, start.elapsed(), limit);
            last = now;
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{line}");
            let _ = err.flush();
        }
    })
}

/// One progress line.
fn line(done: u64, last_second: u64, elapsed: Duration, limit: Limit) -> String {
    let fraction = match limit {
        Limit::Duration(d) => elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9),
        Limit::Ops(n) => done as f64 / n.max(1) as f64,
    }
    .clamp(0.0, 1.0);
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%  {:>5.1} s  {last_second:>9} ops/s  {done:>11} ops",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        fraction * 100.0,
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_follows_the_limit() {
        let half = line(500, 100, Duration::from_secs(5), Limit::Duration(Duration::from_secs(10)));
        assert!(half.starts_with(&format!("[{}{}]", "#".repeat(15), "-".repeat(15))), "{half}");
        assert!(half.contains(" 50%"));
        let full = line(2000, 10, Duration::from_secs(1), Limit::Ops(1000));
        assert!(full.contains("100%"), "{full}");
    }
}
