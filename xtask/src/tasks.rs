//! The tasks that wrap one cargo invocation: demo, criterion benchmarks
//! and fuzz.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use crate::run::{cargo, run, status, succeeds};

/// The criterion benchmarks `cargo xtask bench NAME` runs: (package,
/// bench target).
const CRITERION_BENCHES: &[(&str, &str)] = &[("zerorpc-wire", "codec"), ("zerorpc-hub", "latency")];

/// Runs the demo of the whole system and returns its exit status.
pub(crate) fn demo(root: &Path) -> anyhow::Result<ExitCode> {
    crate::setup::build_tools()?;
    let status = status(cargo().current_dir(root).args([
        "run",
        "--release",
        "-p",
        "zerorpc-cli",
        "--example",
        "demo",
    ]))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // Killed by a signal: report failure.
        None => ExitCode::FAILURE,
    })
}

/// Runs the criterion benchmark called `name`.
pub(crate) fn criterion(root: &Path, name: &str) -> anyhow::Result<()> {
    let Some((package, bench)) = CRITERION_BENCHES.iter().find(|(_, bench)| *bench == name) else {
        let known: Vec<&str> = CRITERION_BENCHES.iter().map(|(_, bench)| *bench).collect();
        bail!(
            "no benchmark named `{name}`; known: {} (or no name: the suite)",
            known.join(", ")
        );
    };
    run(cargo()
        .current_dir(root)
        .args(["bench", "-p", package, "--bench", bench]))
}

/// Runs a fuzz target of `<root>/fuzz` for `seconds`, installing cargo-fuzz
/// first if needed.
pub(crate) fn fuzz(root: &Path, target: &str, seconds: u64) -> anyhow::Result<()> {
    let fuzz_dir = root.join("fuzz");
    if !fuzz_dir.join("Cargo.toml").exists() {
        bail!("{} has no Cargo.toml", fuzz_dir.display());
    }
    if !succeeds(cargo().args(["fuzz", "--version"])) {
        println!("fuzz: cargo-fuzz not found, installing it");
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    // cargo-fuzz needs nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets
    // the stable toolchain accept them.
    run(cargo()
        .current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={seconds}")))
}
