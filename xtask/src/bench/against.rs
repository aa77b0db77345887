//! `cargo xtask bench --against REV`: the working tree against a git
//! revision, in the same sitting.
//!
//! REV is exported (`git archive`, so no worktree is registered) to
//! `target/bench-against/src-<commit>` and built in release mode into
//! `target/bench-against/target`, which later comparisons reuse. Then
//! both builds' `zerorpc-load-server` and `zerorpc-load-client` run the
//! sequential and 100-in-flight `add` workloads, taking turns run by run,
//! so that a change in the machine's load hits both alike. Only flags that
//! every revision's load client has are used; a revision that reports no
//! latency percentiles is compared on the mean (the run's time over its
//! calls).

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use super::workloads::{Figures, Metric, add_calls};
use super::{Options, build_load_tools, medians, summary, table, target_dir};
use crate::run::run as run_command;

/// Calls of each workload, at full scale.
const SEQUENTIAL_CALLS: u64 = 10_000;
const IN_FLIGHT_CALLS: u64 = 150_000;

/// The two workloads: (name, calls in flight, calls at full scale).
const WORKLOADS: &[(&str, usize, u64)] = &[
    ("sequential add", 1, SEQUENTIAL_CALLS),
    ("add, 100 in flight", 100, IN_FLIGHT_CALLS),
];

/// A build to measure: its name in the table and its two binaries.
struct Side {
    name: String,
    server: PathBuf,
    client: PathBuf,
}

pub(super) fn run(root: &Path, revision: &str, options: &Options) -> anyhow::Result<()> {
    let commit = resolve(root, revision)?;
    let short = &commit[..12.min(commit.len())];
    let work = root.join("target/bench-against");
    let source = work.join(format!("src-{short}"));
    if !source.join("Cargo.toml").exists() {
        export(root, &commit, &work, &source)?;
    }
    let before = build_load_tools(&source, &work.join("target"), "release", false)
        .with_context(|| format!("building {revision} ({short})"))?;
    let after = build_load_tools(root, &target_dir(root), options.profile(), false)?;
    let sides = [
        Side {
            name: format!("{revision} ({short})"),
            server: before.join("zerorpc-load-server"),
            client: before.join("zerorpc-load-client"),
        },
        Side {
            name: "working tree".to_owned(),
            server: after.join("zerorpc-load-server"),
            client: after.join("zerorpc-load-client"),
        },
    ];
    let scale = options.scale();
    let runs = options.runs();
    let mut samples: HashMap<(usize, usize), Vec<Figures>> = HashMap::new();
    for round in 1..=runs {
        for (w, &(workload, in_flight, calls)) in WORKLOADS.iter().enumerate() {
            for (s, side) in sides.iter().enumerate() {
                let started = Instant::now();
                let figures = add_calls(&side.server, &side.client, scale.scaled(calls), in_flight)
                    .with_context(|| format!("{workload}, {}", side.name))?;
                println!(
                    "bench: [{round}/{runs}] {workload:<20} {:<28} {} ({:.1} s)",
                    side.name,
                    summary(&figures),
                    started.elapsed().as_secs_f64()
                );
                samples.entry((w, s)).or_default().push(figures);
            }
        }
    }
    let results: HashMap<(usize, usize), Figures> = samples
        .into_iter()
        .map(|(key, runs)| (key, medians(&runs)))
        .collect();
    println!("\n{}", render(&sides, &results, runs));
    Ok(())
}

/// The full commit id of `revision`.
fn resolve(root: &Path, revision: &str) -> anyhow::Result<String> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{revision}^{{commit}}"))
        .output()
        .context("cannot run git")?;
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || commit.is_empty() {
        bail!("`{revision}` is not a git revision of {}", root.display());
    }
    Ok(commit)
}

/// Writes the tree of `commit` to `source`, through a tar file in `work`.
fn export(root: &Path, commit: &str, work: &Path, source: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(source)
        .with_context(|| format!("cannot create {}", source.display()))?;
    let archive = work.join(format!("{commit}.tar"));
    run_command(
        Command::new("git")
            .current_dir(root)
            .args(["archive", "--format=tar", "--output"])
            .arg(&archive)
            .arg(commit),
    )?;
    let extracted = run_command(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(source),
    );
    let _ = std::fs::remove_file(&archive);
    if extracted.is_err() {
        // A half-extracted tree must not pass for a whole one next time.
        let _ = std::fs::remove_dir_all(source);
    }
    extracted
}

/// The before/after table: for each workload its figures on both sides
/// and the change.
fn render(sides: &[Side; 2], results: &HashMap<(usize, usize), Figures>, runs: usize) -> String {
    let mut out = format!(
        "Median of {runs} run(s), the two builds taking turns.\n\n\
         | workload | {} | {} | change |\n| --- | --: | --: | --: |\n",
        sides[0].name, sides[1].name
    );
    for (w, &(workload, in_flight, _)) in WORKLOADS.iter().enumerate() {
        let metrics: &[(Metric, &str)] = if in_flight == 1 {
            &[
                (Metric::Mean, "mean µs"),
                (Metric::P50, "p50 µs"),
                (Metric::P99, "p99 µs"),
            ]
        } else {
            &[(Metric::PerSecond, "calls/s")]
        };
        for &(metric, unit) in metrics {
            let value = |side| {
                results
                    .get(&(w, side))
                    .and_then(|figures| figures.get(&metric))
                    .copied()
            };
            // A figure only one side reports (percentiles, new) is left out.
            let (Some(before), Some(after)) = (value(0), value(1)) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {workload}, {unit} | {} | {} | {} |",
                table::figure(metric, before),
                table::figure(metric, after),
                change(metric, before, after)
            );
        }
    }
    out
}

/// How `after` compares with `before`, with which way is better.
fn change(metric: Metric, before: f64, after: f64) -> String {
    let percent = 100.0 * (after - before) / before;
    let better = if metric.lower_is_better() {
        after < before
    } else {
        after > before
    };
    let verdict = if percent.abs() < 0.5 {
        "same"
    } else if better {
        "better"
    } else {
        "worse"
    };
    format!("{percent:+.1}% ({verdict})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_say_which_way_is_better() {
        assert_eq!(change(Metric::Mean, 200.0, 150.0), "-25.0% (better)");
        assert_eq!(change(Metric::PerSecond, 100.0, 90.0), "-10.0% (worse)");
        assert_eq!(change(Metric::PerSecond, 100.0, 100.2), "+0.2% (same)");
    }
}
