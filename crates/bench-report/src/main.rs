//! `bench-report`: turns the results bench/compare.sh collected (one loadgen
//! JSON report per system and workload, plus the run's description) into the
//! Markdown tables of docs/BENCHMARKS.md and SVG plots.
//!
//! ```text
//! bench-report --results DIR --svg-dir docs/bench --markdown section.md
//! ```
//!
//! DIR holds `meta.json`, `runs/<system>__<workload>.json` and, when the
//! opt-in steps ran, `failover.json` and `memory.json`.

mod input;
mod markdown;
mod plots;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(name = "bench-report", about = "Markdown tables and SVG plots from bench/compare.sh's results")]
struct Cli {
    /// The results directory compare.sh wrote.
    #[arg(long)]
    results: PathBuf,
    /// Where the SVG plots go.
    #[arg(long)]
    svg_dir: PathBuf,
    /// How the Markdown refers to the plots' directory.
    #[arg(long, default_value = "bench")]
    svg_link: String,
    /// Where the Markdown section goes.
    #[arg(long)]
    markdown: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let results = input::Results::load(&cli.results)?;
    std::fs::create_dir_all(&cli.svg_dir).with_context(|| format!("creating {}", cli.svg_dir.display()))?;
    let plots = plots::draw_all(&results, &cli.svg_dir)?;
    let text = markdown::render(&results, &plots, &cli.svg_link);
    std::fs::write(&cli.markdown, text).with_context(|| format!("writing {}", cli.markdown.display()))?;
    Ok(())
}
