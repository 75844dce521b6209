//! The result of a run: throughput, latency percentiles and CDF, throughput
//! per second; as a table for people and as JSON for scripts and plots.

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::stats::Recorder;
use crate::workload::Workload;

/// Percentiles at which the CDF is sampled (denser in the tail).
const CDF_PERCENTILES: &[f64] = &[
    0.0, 1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 97.0, 98.0, 99.0,
    99.5, 99.7, 99.9, 99.95, 99.99, 100.0,
];

/// Latency of one kind of operation, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Operations measured.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Slowest.
    pub max_us: u64,
    /// `(percentile, latency_us)` pairs from 0 to 100, for CDF plots.
    pub cdf: Vec<(f64, u64)>,
}

impl LatencySummary {
    /// The summary of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            cdf: CDF_PERCENTILES.iter().map(|&p| (p, h.value_at_quantile(p / 100.0))).collect(),
        }
    }
}

/// Everything a run measured, with the settings that produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was measured (e.g. `raftkv 127.0.0.1:6381`, `etcd 127.0.0.1:2379`).
    pub target: String,
    /// The operations.
    pub workload: Workload,
    /// Concurrent connections.
    pub connections: usize,
    /// Operations per batch on one connection.
    pub pipeline: usize,
    /// Target rate (operations per second, open loop), or `None` for closed loop.
    pub rate: Option<f64>,
    /// Wall time of the measured phase, seconds.
    pub elapsed_s: f64,
    /// Successful operations.
    pub ops: u64,
    /// Successful operations per second over the whole run.
    pub throughput: f64,
    /// Failed operations.
    pub errors: u64,
    /// Failed operations by kind of error.
    pub error_kinds: BTreeMap<String, u64>,
    /// Open loop: operations due before the end that were never sent.
    pub behind: u64,
    /// Latency of every operation (`all`) and per kind (`get`, `set`).
    pub latency: BTreeMap<String, LatencySummary>,
    /// Successful operations completed in each second.
    pub per_second: Vec<u64>,
}

/// The settings of a run that a report repeats.
#[derive(Clone, Debug)]
pub struct ReportSettings {
    /// See [`Report::target`].
    pub target: String,
    /// See [`Report::workload`].
    pub workload: Workload,
    /// See [`Report::connections`].
    pub connections: usize,
    /// See [`Report::pipeline`].
    pub pipeline: usize,
    /// See [`Report::rate`].
    pub rate: Option<f64>,
}

impl Report {
    /// The report of `recorded` over `elapsed_s` seconds.
    pub fn new(settings: ReportSettings, recorded: &Recorder, elapsed_s: f64) -> Report {
        let mut latency = BTreeMap::new();
        if recorded.ops() > 0 {
            latency.insert("all".to_string(), LatencySummary::of(&recorded.all()));
        }
        for (kind, h) in &recorded.latency_us {
            latency.insert(kind.name().to_string(), LatencySummary::of(h));
        }
        let ops = recorded.ops();
        Report {
            target: settings.target,
            workload: settings.workload,
            connections: settings.connections,
            pipeline: settings.pipeline,
            rate: settings.rate,
            elapsed_s,
            ops,
            throughput: if elapsed_s > 0.0 { ops as f64 / elapsed_s } else { 0.0 },
            errors: recorded.error_count(),
            error_kinds: recorded.errors.clone(),
            behind: recorded.behind,
            latency,
            per_second: recorded.per_second.clone(),
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        // A Report holds only strings, numbers, maps and vectors: it always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A table for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let w = &self.workload;
        let mode = match self.rate {
            Some(r) => format!("open loop at {r:.0} ops/s"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(
            out,
            "{}: {} connections, pipeline {}, {mode}; {} keys {:?}, {} B values, {}% reads",
            self.target, self.connections, self.pipeline, w.keys, w.distribution, w.value_size, w.read_percent
        );
        let _ = writeln!(
            out,
            "{} ops in {:.2} s: {:.0} ops/s; {} errors{}",
            self.ops,
            self.elapsed_s,
            self.throughput,
            self.errors,
            if self.behind > 0 { format!(", {} ops never sent (behind schedule)", self.behind) } else { String::new() }
        );
        for (kind, n) in &self.error_kinds {
            let _ = writeln!(out, "  error {kind}: {n}");
        }
        let _ = writeln!(
            out,
            "{:<5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "op", "count", "mean µs", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
        );
        for (kind, l) in &self.latency {
            let _ = writeln!(
                out,
                "{kind:<5} {:>10} {:>10.0} {:>10} {:>10} {:>10} {:>10} {:>10}",
                l.count, l.mean_us, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
            );
        }
        let series: Vec<String> = self.per_second.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "ops per second: {}", series.join(" "));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::workload::{Distribution, OpKind};
    use std::time::Duration;

    fn sample() -> Report {
        let mut r = Recorder::new().unwrap();
        for i in 1..=1000u64 {
            r.record(OpKind::Set, Duration::from_micros(i), Duration::from_millis(i));
        }
        r.record(OpKind::Get, Duration::from_micros(10), Duration::from_millis(10));
        r.record_error("CLUSTERDOWN");
        let settings = ReportSettings {
            target: "raftkv 127.0.0.1:6381".into(),
            workload: Workload { keys: 100, distribution: Distribution::Zipfian, value_size: 256, read_percent: 50 },
            connections: 4,
            pipeline: 1,
            rate: None,
        };
        Report::new(settings, &r, 1.001)
    }

    #[test]
    fn percentiles_and_throughput() {
        let report = sample();
        assert_eq!(report.ops, 1001);
        assert!((report.throughput - 1000.0).abs() < 1.0);
        let set = &report.latency["set"];
        assert_eq!(set.count, 1000);
        assert!((499..=501).contains(&set.p50_us), "{}", set.p50_us);
        assert!((989..=991).contains(&set.p99_us), "{}", set.p99_us);
        assert_eq!(set.max_us, 1000);
        assert_eq!(report.latency["all"].count, 1001);
        assert_eq!(report.per_second, vec![1000, 1]);
        let cdf = &set.cdf;
        assert_eq!(cdf.first().unwrap().0, 0.0);
        assert_eq!(cdf.last().unwrap(), &(100.0, 1000));
        assert!(cdf.windows(2).all(|w| w[0].1 <= w[1].1), "a CDF never decreases");
    }

    #[test]
    fn json_has_the_documented_shape_and_round_trips() {
        let report = sample();
        let json = report.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in ["target", "workload", "connections", "pipeline", "rate", "elapsed_s", "ops", "throughput"] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        assert_eq!(value["workload"]["distribution"], "zipfian");
        assert_eq!(value["error_kinds"]["CLUSTERDOWN"], 1);
        assert!(value["rate"].is_null());
        for field in ["count", "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "cdf"] {
            assert!(value["latency"]["set"].get(field).is_some(), "missing latency.set.{field}");
        }
        assert_eq!(value["per_second"], serde_json::json!([1000, 1]));
        let back: Report = serde_json::from_str(&json).unwrap();
        assert!((back.throughput - report.throughput).abs() < 1e-6);
        assert_eq!(
            (back.ops, &back.per_second, &back.error_kinds),
            (report.ops, &report.per_second, &report.error_kinds)
        );
        assert_eq!(back.latency["set"].cdf, report.latency["set"].cdf);
    }

    #[test]
    fn table_names_every_figure() {
        let table = sample().table();
        assert!(table.contains("1001 ops"), "{table}");
        assert!(table.contains("p99.9 µs"));
        assert!(table.contains("error CLUSTERDOWN: 1"));
        assert!(table.contains("ops per second: 1000 1"));
    }
}
