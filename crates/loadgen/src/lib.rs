//! The load generator behind `raftkv bench` and `etcd-load`: one workload,
//! one schedule and one report format for every system it is pointed at.
//!
//! A [`Backend`] opens connections to a system; a [`Connection`] executes a
//! batch of [`Op`]s (a pipeline) in order. [`run`] drives N connections for a
//! fixed duration or operation count, closed loop (each connection sends its
//! next batch when the last one is answered) or open loop (a target rate:
//! every operation has an *intended* send time, and its latency is measured
//! from that time, so a slow reply delays the clock of every operation queued
//! behind it instead of hiding it — no coordinated omission). Latencies go to
//! HdrHistograms; the [`Report`] holds percentiles, a CDF and throughput per
//! second, prints as a table and serialises to JSON.
//!
//! The product (`server`) depends on this crate; the etcd client lives only in
//! the benchmark-only `loadgen-etcd` crate.
#![forbid(unsafe_code)]

pub mod cli;
mod progress;
pub mod report;
mod run;
pub mod schedule;
pub mod stats;
pub mod workload;
pub mod zipf;

pub use report::{LatencySummary, Report};
pub use run::{Backend, BackendError, Connection, Limit, OpResult, RunConfig, run};
pub use workload::{Distribution, Op, OpKind, Workload};
