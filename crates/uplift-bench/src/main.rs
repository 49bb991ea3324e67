//! Benchmarks of BENCHMARKS.md: `uplift-bench api` (the data API) and
//! `uplift-bench step1` (step 1 of the upgrade), `uplift-bench flows` (flow runs),
//! `uplift-bench step2` (step 2's verification), `uplift-bench step3` (step 3 under a
//! write load: the lost-write checker), `uplift-bench pages` (the web UI's pages). Each measures against the engine's own
//! limit in the same run, so the ratios hold on a noisy machine.

mod api;
mod flows;
mod pages;
mod step1;
mod step2;
mod step3;

use std::path::Path;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The data API against the engine on the same SQL.
    Api(api::Args),
    /// Step 1 against hand-written SQL and an untransformed clone.
    Step1(api::Args),
    /// Record-triggered flow runs end to end: throughput and lag.
    Flows(api::Args),
    /// Step 2: discovery, rewrite and verification of 1 000 apps and 1 000 flows.
    Step2(api::Args),
    /// The web UI: every page's answer time on the demo, against 100 ms.
    Pages(api::Args),
    /// Step 3 under a write load: the pause, held writes, latency, lost writes, and
    /// write throughput with change capture on against off.
    Step3(step3::Step3Args),
}

/// Replaces (or appends) the section between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
pub(crate) fn write_section(out: &Path, name: &str, body: &str) -> Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let old = std::fs::read_to_string(out).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    let section = format!("{begin}\n{body}{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) => format!("{}{section}{}", &old[..b], &old[e + end.len()..]),
        _ => format!("{old}\n{section}\n"),
    };
    std::fs::write(out, new)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Api(a) => api::run(a).await,
        Command::Step1(a) => step1::run(a).await,
        Command::Flows(a) => flows::run(a).await,
        Command::Step2(a) => step2::run(a).await,
        Command::Step3(a) => step3::run(a).await,
        Command::Pages(a) => pages::run(a).await,
    }
}
