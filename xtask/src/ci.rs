//! `cargo xtask ci`: every check CI runs, in order, stopping at the first
//! failure.
//!
//! Cheap checks come before the test build so a formatting slip fails in
//! seconds; the benchmark suite runs last, briefly (`bench --quick`). `CI`
//! is passed through unchanged: when set, tests whose real peer is missing
//! fail instead of skipping. Every build is lean (see
//! [`crate::run::lean_builds`]): CI machines have little disk to spare.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::run::{cargo, run as run_command};
use crate::{bench, layering, setup, tasks, tidy};

/// Number of steps, for the `[n/N]` headers.
const STEPS: usize = 9;

/// Runs the steps; fails with the first failing step's error.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    crate::run::lean_builds();
    let mut ci = Steps::new();
    let python = ci.step("setup", || setup::run(root))?;
    ci.step("fmt", || {
        run_command(cargo().current_dir(root).args(["fmt", "--all", "--check"]))
    })?;
    ci.step("clippy", || {
        run_command(cargo().current_dir(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    ci.step("layering", || layering::run(&root.join("Cargo.toml")))?;
    ci.step("tidy", || tidy::run(root))?;
    ci.step("doc", || {
        run_command(
            cargo()
                .current_dir(root)
                .env("RUSTDOCFLAGS", "-D warnings")
                .args(["doc", "--workspace", "--no-deps"]),
        )
    })?;
    ci.step("test", || {
        run_command(
            cargo()
                .current_dir(root)
                .env("ZERORPC_PYTHON", &python)
                .args(["test", "--workspace"]),
        )
    })?;
    // Every benchmark workload, briefly, on the debug builds the tests
    // made: it keeps the suite working and asserts nothing about speed.
    ci.step("bench", || {
        bench::run(
            root,
            &bench::Options {
                quick: true,
                debug: true,
                python: Some(python.clone()),
                ..bench::Options::default()
            },
        )
    })?;
    // A short pass of every fuzz target: they keep building, and what
    // they find early is found on every run.
    ci.step("fuzz", || tasks::fuzz(root, None, CI_FUZZ_SECONDS))?;
    ci.summary();
    Ok(())
}

/// Seconds each fuzz target runs in CI.
const CI_FUZZ_SECONDS: u64 = 10;

/// Headers, timings and the final summary.
struct Steps {
    started: Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Steps {
    fn new() -> Steps {
        Steps {
            started: Instant::now(),
            done: Vec::new(),
        }
    }

    fn step<T>(
        &mut self,
        name: &'static str,
        step: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        println!("\n==> [{}/{STEPS}] {name}", self.done.len() + 1);
        let started = Instant::now();
        let result = step();
        let elapsed = started.elapsed();
        self.done.push((name, elapsed));
        let outcome = if result.is_ok() { "ok" } else { "FAILED" };
        println!("==> {name}: {outcome} in {elapsed:.1?}");
        result
    }

    fn summary(&self) {
        println!("\n==> ci passed in {:.1?}", self.started.elapsed());
        for (name, elapsed) in &self.done {
            println!("    {name:<9} {elapsed:>8.1?}");
        }
    }
}
