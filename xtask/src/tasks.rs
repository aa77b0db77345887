//! The tasks that wrap one cargo invocation: demo, bench and fuzz.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use crate::run::{cargo, run, status, succeeds};

/// Benchmarks run by `cargo xtask bench`: (package, bench target).
const BENCHES: &[(&str, &str)] = &[("zerorpc-wire", "codec"), ("zerorpc-hub", "latency")];

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

/// Runs all benchmarks, or the one called `name`.
pub(crate) fn bench(root: &Path, name: Option<&str>) -> anyhow::Result<()> {
    let selected: Vec<_> = BENCHES
        .iter()
        .filter(|(_, bench)| name.is_none_or(|name| name == *bench))
        .collect();
    if selected.is_empty() {
        let known: Vec<&str> = BENCHES.iter().map(|(_, bench)| *bench).collect();
        bail!(
            "no benchmark named `{}`; known: {}",
            name.unwrap_or_default(),
            known.join(", ")
        );
    }
    for (package, bench) in selected {
        run(cargo()
            .current_dir(root)
            .args(["bench", "-p", package, "--bench", bench]))?;
    }
    Ok(())
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
