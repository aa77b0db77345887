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
    // What cargo tells the running test about its own package is no
    // setting of this build, but build scripts that watch a variable of
    // that name (ring's watches CARGO_MANIFEST_DIR) would see it change
    // and rebuild their crate and all above it, once per package whose
    // tests get here and again in the next plain build: ~30 s each time.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_package_variable) {
            build.env_remove(&key);
        }
    }
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

/// Whether `key` is one of the variables cargo sets for the package of the
/// running test (not a setting of cargo, such as `CARGO_TARGET_DIR`).
fn is_package_variable(key: &str) -> bool {
    const PACKAGE_VARIABLES: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
    ];
    PACKAGE_VARIABLES.contains(&key)
        || key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_BIN_EXE_")
}

#[cfg(test)]
mod tests {
    use super::is_package_variable;

    #[test]
    fn the_running_tests_package_is_not_passed_to_the_build_but_cargos_settings_are() {
        for key in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_BIN_EXE_zerorpc-hub",
            "OUT_DIR",
        ] {
            assert!(is_package_variable(key), "{key}");
        }
        for key in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_INCREMENTAL",
            "CARGO_PROFILE_DEV_DEBUG",
            "PATH",
        ] {
            assert!(!is_package_variable(key), "{key}");
        }
    }
}
