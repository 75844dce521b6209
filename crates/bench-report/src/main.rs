//! `bench-report`: turns the results bench/compare.sh collected (one loadgen
//! JSON report per system and workload, plus the run's description) into the
//! Markdown tables of docs/BENCHMARKS.md and SVG plots.
//!
//! ```text
//! bench-report --results DIR --svg-dir docs/bench --markdown section.md
//! bench-report --results DIR --scale --markdown scale-section.md
//! ```
//!
//! DIR holds `meta.json`, `runs/<system>__<workload>.json` and, when the
//! opt-in steps ran, `failover.json` and `memory.json`. With `--scale` it
//! renders bench/scale.sh's results instead (`scale-*.json`, `scale-runs/`).

mod input;
mod markdown;
mod plots;
mod scale;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(name = "bench-report", about = "Markdown tables and SVG plots from bench/compare.sh's results")]
struct Cli {
    /// The results directory compare.sh wrote.
    #[arg(long)]
    results: PathBuf,
    /// Where the SVG plots go (required without `--scale`).
    #[arg(long, required_unless_present = "scale")]
    svg_dir: Option<PathBuf>,
    /// How the Markdown refers to the plots' directory.
    #[arg(long, default_value = "bench")]
    svg_link: String,
    /// Where the Markdown section goes.
    #[arg(long)]
    markdown: PathBuf,
    /// Render bench/scale.sh's results (the scale section) instead.
    #[arg(long)]
    scale: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let text = match &cli.svg_dir {
        _ if cli.scale => scale::render(&scale::ScaleResults::load(&cli.results)?),
        Some(svg_dir) => {
            let results = input::Results::load(&cli.results)?;
            std::fs::create_dir_all(svg_dir).with_context(|| format!("creating {}", svg_dir.display()))?;
            let plots = plots::draw_all(&results, svg_dir)?;
            markdown::render(&results, &plots, &cli.svg_link)
        }
        None => anyhow::bail!("--svg-dir is required without --scale"),
    };
    std::fs::write(&cli.markdown, text).with_context(|| format!("writing {}", cli.markdown.display()))?;
    Ok(())
}
