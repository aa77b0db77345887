//! Finding the external programs a test needs, and what to do when one is missing.

use std::env;
use std::path::{Path, PathBuf};

/// Directories searched after `PATH`: `named` lives in `/usr/sbin`, which is
/// not on the `PATH` of unprivileged users on Debian.
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// How to install each component, shown when one is missing.
const INSTALL_HINTS: &[(&str, &str)] = &[
    (
        "python with zerorpc",
        "run `cargo xtask setup` (creates target/venv with zerorpc==0.6.3) \
         or point ZERORPC_PYTHON at a python that can `import zerorpc`",
    ),
    (
        "redis-server",
        "run `cargo xtask setup` or `apt-get install redis-server`",
    ),
    (
        "redis-cli",
        "run `cargo xtask setup` or `apt-get install redis-tools`",
    ),
    (
        "named",
        "run `cargo xtask setup` or `apt-get install bind9 bind9-utils`",
    ),
    (
        "tsig-keygen",
        "run `cargo xtask setup` or `apt-get install bind9`",
    ),
    (
        "haproxy",
        "run `cargo xtask setup` or `apt-get install haproxy`",
    ),
    (
        "dnsmasq",
        "run `cargo xtask setup` or `apt-get install dnsmasq-base`",
    ),
    (
        "tinydns-data",
        "run `cargo xtask setup` or `apt-get install tinydns`",
    ),
    (
        "tinydns-get",
        "run `cargo xtask setup` or `apt-get install tinydns`",
    ),
];

/// The root of the zerorpc-rs workspace (where `Cargo.lock` and `target/` live).
pub fn workspace_root() -> PathBuf {
    // The path is baked in when this crate is compiled, which is always from
    // inside the workspace, so it holds wherever the test binary runs from.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Decides what a test does when `component` is (not) `found`.
///
/// Returns `true` when found. When not found: panics if the `CI` environment
/// variable is set and non-empty, otherwise prints a "skipped" line to stderr
/// and returns `false` so the test can return early:
///
/// ```no_run
/// # let redis_installed = false;
/// if !zerorpc_test_support::require("redis-server", redis_installed) {
///     return;
/// }
/// ```
pub fn require(component: &str, found: bool) -> bool {
    if !found {
        report_missing(component, None);
    }
    found
}

/// Applies the missing-component policy; `detail` says what was tried.
pub(crate) fn report_missing(component: &str, detail: Option<&str>) {
    let hint = INSTALL_HINTS
        .iter()
        .find(|(name, _)| *name == component)
        .map_or("run `cargo xtask setup`", |(_, hint)| hint);
    let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
    if in_ci() {
        panic!(
            "{component} is required when CI is set but was not found{detail}; to install it: {hint}"
        );
    }
    let test = std::thread::current()
        .name()
        .map(|name| format!("{name}: "))
        .unwrap_or_default();
    eprintln!("{test}test skipped: {component} not found{detail}; to install it: {hint}");
}

fn in_ci() -> bool {
    env::var_os("CI").is_some_and(|value| !value.is_empty())
}

/// Finds an executable named `name` on `PATH` or in the sbin directories.
///
/// Does not apply the missing-component policy; see [`require`].
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path_dirs = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

pub(crate) fn required_program(component: &str) -> Option<PathBuf> {
    let found = find_program(component);
    require(component, found.is_some()).then_some(found?)
}

/// The `redis-server` executable, or `None` (after the skip message) if missing.
pub fn redis_server() -> Option<PathBuf> {
    required_program("redis-server")
}

/// The `named` (BIND 9) executable, or `None` (after the skip message) if missing.
pub fn named() -> Option<PathBuf> {
    required_program("named")
}

/// The `haproxy` executable, or `None` (after the skip message) if missing.
pub fn haproxy() -> Option<PathBuf> {
    required_program("haproxy")
}

/// The `dnsmasq` executable, or `None` (after the skip message) if missing.
pub fn dnsmasq() -> Option<PathBuf> {
    required_program("dnsmasq")
}

/// The `tinydns-data` and `tinydns-get` executables, or `None` (after the
/// skip message) if either is missing.
pub fn tinydns() -> Option<(PathBuf, PathBuf)> {
    Some((
        required_program("tinydns-data")?,
        required_program("tinydns-get")?,
    ))
}
