//! Binaries of other workspace packages, built on demand.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use crate::workspace_root;

/// The path of binary `bin` of workspace package `package`, built (with
/// the rest of the workspace's binaries and tests) once per test run in the
/// profile of the running test.
///
/// Cargo sets `CARGO_BIN_EXE_*` only for the binaries of the package under
/// test; a test that starts another package's binary (the hub's tests start
/// `zerorpc-hub`, which lives in `zerorpc-cli`) builds it here. Panics when
/// the build fails, naming the binary.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    // target/<profile>/deps/it-<hash> → target/<profile>/<bin>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // The whole workspace with its tests, not `-p package --bin bin`: that
    // is the selection `cargo test --workspace` builds, so the features
    // resolve the same and the binary it already built is reused. A `-p`
    // build resolves other features and compiles a second copy of most
    // crates, doubling the target directory.
    build.current_dir(workspace_root()).args([
        "build",
        "--quiet",
        "--workspace",
        "--bins",
        "--tests",
    ]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build");
    assert!(
        status.success(),
        "building {bin} (package {package}) failed"
    );
    let binary = profile_dir.join(bin);
    assert!(
        binary.exists(),
        "{} missing after the build",
        binary.display()
    );
    built.insert(bin.to_owned(), binary.clone());
    binary
}
