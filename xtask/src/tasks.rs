//! The tasks that wrap one cargo invocation: demo, criterion benchmarks
//! and fuzz.

use std::path::Path;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, bail};

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

/// Runs the fuzz targets of `<root>/fuzz` (every one, or `target`) for
/// `seconds` each, installing cargo-fuzz first if needed, and reports how
/// many inputs each ran. A crash fails the task with libFuzzer's account.
pub(crate) fn fuzz(root: &Path, target: Option<&str>, seconds: u64) -> anyhow::Result<()> {
    let fuzz_dir = root.join("fuzz");
    if !fuzz_dir.join("Cargo.toml").exists() {
        bail!("{} has no Cargo.toml", fuzz_dir.display());
    }
    let targets = match target {
        Some(target) => vec![target.to_owned()],
        None => fuzz_targets(&fuzz_dir)?,
    };
    if !succeeds(cargo().args(["fuzz", "--version"])) {
        println!("fuzz: cargo-fuzz not found, installing it");
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    for target in &targets {
        println!("fuzz: {target} for {seconds} s");
        // cargo-fuzz needs nightly-only sanitizer flags; RUSTC_BOOTSTRAP
        // lets the stable toolchain accept them.
        let output = cargo()
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run cargo fuzz for {target}"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            eprintln!("{log}");
            bail!("fuzz target {target} failed ({}): see above", output.status);
        }
        let done = log
            .lines()
            .rev()
            .find(|line| line.starts_with("Done "))
            .with_context(|| format!("{target}: libFuzzer reported no run count\n{log}"))?;
        println!("fuzz: {target}: {done}, no failure");
    }
    Ok(())
}

/// The fuzz targets: the files of `fuzz/fuzz_targets`.
fn fuzz_targets(fuzz_dir: &Path) -> anyhow::Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut targets = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            targets.push(stem.to_string_lossy().into_owned());
        }
    }
    targets.sort();
    if targets.is_empty() {
        bail!("no fuzz target in {}", dir.display());
    }
    Ok(targets)
}
