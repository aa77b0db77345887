//! `cargo xtask ci`: every check CI runs, in order, stopping at the first
//! failure.
//!
//! Cheap checks come before the test build so a formatting slip fails in
//! seconds; the UI tests run beside the rest of the tests ([`BESIDE`]);
//! the benchmark suite runs last, briefly (`bench --quick`). `CI`
//! is passed through unchanged: when set, tests whose real peer is missing
//! fail instead of skipping. Every build is lean (see
//! [`crate::run::lean_builds`]): CI machines have little disk to spare.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::run::{cargo, cargo_env, display, run as run_command};
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
        run_command(cargo().current_dir(root).envs(SYSTEM_LIBSODIUM).args([
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
                .envs(SYSTEM_LIBSODIUM)
                .args(["doc", "--workspace", "--no-deps"]),
        )
    })?;
    ci.step("test", || test_suite(root, &python))?;
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

/// For the builds that only check (clippy, rustdoc, the UI tests'
/// project): Debian's libsodium (`libsodium-dev`, which setup installs)
/// rather than building it from source once more for each (~50 s on the
/// way to libzmq every time: cargo runs build scripts apart for checking
/// and building, and the UI tests' project has a target directory of its
/// own). None of them links or runs it. The build the tests and the
/// benchmarks run is the one users get, libsodium built from source; so
/// is the fuzz targets' (release, where it overlaps other crates' builds:
/// linking Debian's saved nothing measurable there, 240 s against 247).
const SYSTEM_LIBSODIUM: [(&str, &str); 1] = [("SODIUM_USE_PKG_CONFIG", "1")];

/// The tests run beside the rest of the suite rather than in their turn.
///
/// The macro's UI tests (trybuild) compile a project of their own, its
/// dependencies, libsodium and libzmq included: on a clean clone that is
/// ~2 min of CPU, and in its turn it held the core package's tests for all
/// of it while the other test thread sat idle. The rest of the suite
/// leaves ~40% of the machine idle (it waits on peers, heartbeats and
/// timeouts), which is where that build now goes.
const BESIDE: BesideTests = BesideTests {
    package: "zerorpc",
    target: "it",
    filter: "compile_fail::",
};

struct BesideTests {
    package: &'static str,
    /// The test target (binary) holding them.
    target: &'static str,
    /// The name filter that selects them, and that the rest skips.
    filter: &'static str,
}

/// `cargo test --workspace`, with [`BESIDE`] run at the same time as the
/// rest by its own test binary; fails if either fails, after both end.
fn test_suite(root: &Path, python: &Path) -> anyhow::Result<()> {
    let binary = build_tests(root)?;
    let package_dir = binary
        .manifest_path
        .parent()
        .context("the manifest path has a directory")?
        .to_path_buf();
    let mut beside = Command::new(&binary.executable);
    cargo_env(&mut beside);
    beside
        .arg(BESIDE.filter)
        .current_dir(&package_dir)
        // What `cargo test` would set: trybuild finds the crate under test
        // and the cargo to build with from them.
        .env("CARGO_MANIFEST_DIR", &package_dir)
        .env("CARGO", cargo().get_program())
        .envs(SYSTEM_LIBSODIUM)
        .stdin(Stdio::null());
    eprintln!("$ {} (beside the rest)", display(&beside));
    let beside = std::thread::spawn(move || beside.output());
    // Every test binary runs even after one failed, so that one run shows
    // every failure.
    let rest = run_command(
        cargo()
            .current_dir(root)
            .env("ZERORPC_PYTHON", python)
            .args(["test", "--workspace", "--no-fail-fast", "--"])
            .args(["--skip", BESIDE.filter]),
    );
    let output = beside
        .join()
        .map_err(|_| anyhow::anyhow!("the thread running the tests beside panicked"))?
        .with_context(|| format!("cannot run {}", binary.executable.display()))?;
    println!(
        "\n==> {} tests `{}` (ran beside the rest)",
        BESIDE.package, BESIDE.filter
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    rest?;
    if !output.status.success() {
        bail!(
            "{} tests `{}` failed ({})",
            BESIDE.package,
            BESIDE.filter,
            output.status
        );
    }
    if passed(&stdout) == 0 {
        bail!(
            "no test of {} matched `{}`: renamed? update BESIDE in xtask/src/ci.rs",
            BESIDE.package,
            BESIDE.filter
        );
    }
    Ok(())
}

/// A test binary cargo built.
struct TestBinary {
    executable: PathBuf,
    manifest_path: PathBuf,
}

/// Builds every test of the workspace (diagnostics shown as usual) and
/// returns the binary holding [`BESIDE`].
fn build_tests(root: &Path) -> anyhow::Result<TestBinary> {
    let mut build = cargo();
    build
        .current_dir(root)
        .args([
            "test",
            "--workspace",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit());
    eprintln!("$ {}", display(&build));
    let output = build
        .output()
        .with_context(|| format!("cannot run `{}`", display(&build)))?;
    if !output.status.success() {
        bail!("`{}` failed ({})", display(&build), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    find_test_binary(&stdout, BESIDE.package, BESIDE.target).with_context(|| {
        format!(
            "the build made no test binary `{}` of package {}",
            BESIDE.target, BESIDE.package
        )
    })
}

/// The test binary `target` of `package` among cargo's JSON messages.
fn find_test_binary(messages: &str, package: &str, target: &str) -> Option<TestBinary> {
    messages.lines().find_map(|line| {
        let message: Value = serde_json::from_str(line).ok()?;
        if message["reason"] != "compiler-artifact"
            || message["target"]["name"] != target
            || message["profile"]["test"] != true
        {
            return None;
        }
        // `path+file:///…/crates/core#zerorpc@0.1.0`
        let id = message["package_id"].as_str()?;
        let (_, name_version) = id.rsplit_once('#')?;
        let name = name_version
            .split_once('@')
            .map_or(name_version, |(n, _)| n);
        if name != package {
            return None;
        }
        Some(TestBinary {
            executable: PathBuf::from(message["executable"].as_str()?),
            manifest_path: PathBuf::from(message["manifest_path"].as_str()?),
        })
    })
}

/// The tests libtest's summary line says passed (0 without one).
fn passed(stdout: &str) -> usize {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split_once(" passed"))
        .filter_map(|(count, _)| count.parse::<usize>().ok())
        .sum()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_is_found_by_package_and_target_among_cargos_messages() {
        let messages = [
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/core#zerorpc@0.1.0","manifest_path":"/w/crates/core/Cargo.toml","target":{"name":"zerorpc"},"profile":{"test":true},"executable":"/w/target/debug/deps/zerorpc-1"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/hub#zerorpc-hub@0.1.0","manifest_path":"/w/crates/hub/Cargo.toml","target":{"name":"it"},"profile":{"test":true},"executable":"/w/target/debug/deps/it-2"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/core#zerorpc@0.1.0","manifest_path":"/w/crates/core/Cargo.toml","target":{"name":"it"},"profile":{"test":false},"executable":null}"#,
            "not json",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/core#zerorpc@0.1.0","manifest_path":"/w/crates/core/Cargo.toml","target":{"name":"it"},"profile":{"test":true},"executable":"/w/target/debug/deps/it-3"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        let found = find_test_binary(&messages, "zerorpc", "it").expect("found");
        assert_eq!(found.executable, Path::new("/w/target/debug/deps/it-3"));
        assert_eq!(found.manifest_path, Path::new("/w/crates/core/Cargo.toml"));
        assert!(find_test_binary(&messages, "zerorpc", "ui").is_none());
        assert!(find_test_binary(&messages, "zerorpc-cli", "it").is_none());
    }

    #[test]
    fn passed_tests_are_counted_from_every_summary_line() {
        let stdout = "running 1 test\n\
            test compile_fail::x ... ok\n\n\
            test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 148 filtered out; finished in 9.23s\n\
            test result: ok. 2 passed; 0 failed; 0 ignored\n";
        assert_eq!(passed(stdout), 3);
        assert_eq!(
            passed("test result: ok. 0 passed; 0 failed; 0 ignored; 149 filtered out\n"),
            0
        );
        assert_eq!(passed("test result: FAILED. 1 passed; 1 failed\n"), 0);
    }
}
