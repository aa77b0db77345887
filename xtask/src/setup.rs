//! `cargo xtask setup`: installs what the test suite needs, when missing.
//!
//! Debian packages for the real peers (`redis-server`, `redis-cli`, `named`, `haproxy`,
//! `dig`, `dnsmasq`, `tinydns-data`), libsodium's headers for CI's check
//! builds, and a virtualenv at `target/venv` with
//! zerorpc-python 0.6.3, the version the wire format is checked against.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::run::{run as run_command, succeeds};

/// The zerorpc-python release the implementation is wire-compatible with.
const ZERORPC_PYTHON: &str = "zerorpc==0.6.3";

/// Directories searched after `PATH`, as `named` lives in `/usr/sbin`.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The C++ compiler that builds the vendored libzmq, and `make`, which
/// builds the vendored libsodium (libzmq's CURVE; ARCHITECTURE.md, "libzmq
/// build"): needed by every build, the demo's included, and not always on
/// a machine that has Rust.
const BUILD_TOOLS: &[(&str, &str)] = &[("g++", "g++"), ("make", "make")];

/// Debian packages the tests use besides the build tools, each with the
/// program that shows it is installed.
const PACKAGES: &[(&str, &str)] = &[
    ("redis-server", "redis-server"),
    // `redis-cli --cluster create` makes the tracing tests' Redis Cluster.
    ("redis-tools", "redis-cli"),
    ("bind9", "named"),
    ("bind9-utils", "named-checkconf"),
    ("dnsutils", "dig"),
    ("haproxy", "haproxy"),
    // The binary only: the `dnsmasq` package would also start a system
    // daemon on port 53; the tests start their own on a free port.
    ("dnsmasq-base", "dnsmasq"),
    ("tinydns", "tinydns-data"),
    ("pkgconf", "pkg-config"),
];

/// Debian packages of C libraries, each with its pkg-config name. CI's
/// builds that only check use the system's libsodium (see
/// `SYSTEM_LIBSODIUM` in `ci.rs`).
const LIBRARIES: &[(&str, &str)] = &[("libsodium-dev", "libsodium")];

/// Installs what is missing; returns the virtualenv's python.
pub(crate) fn run(root: &Path) -> anyhow::Result<PathBuf> {
    let python = system_python();
    let mut missing = Vec::new();
    if !has_venv_support(&python) {
        println!(
            "setup: {} cannot create virtualenvs (needs python3-venv)",
            python.display()
        );
        missing.push("python3-venv");
    }
    for (package, program) in BUILD_TOOLS.iter().chain(PACKAGES) {
        match find_program(program) {
            Some(path) => println!("setup: {package}: found {}", path.display()),
            None => {
                println!("setup: {package}: `{program}` not found");
                missing.push(package);
            }
        }
    }
    for (package, library) in LIBRARIES {
        if succeeds(Command::new("pkg-config").args(["--exists", library])) {
            println!("setup: {package}: found {library} through pkg-config");
        } else {
            println!("setup: {package}: pkg-config does not find {library}");
            missing.push(package);
        }
    }
    if missing.is_empty() {
        println!("setup: all system packages present");
    } else {
        apt_install(&missing)?;
    }
    venv(root, &python)
}

/// Installs the build tools when missing (for `cargo xtask demo`).
pub(crate) fn build_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = BUILD_TOOLS
        .iter()
        .filter(|(_, program)| find_program(program).is_none())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        apt_install(&missing)
    }
}

/// `/usr/bin/python3` when it can create virtualenvs, else `python3` from
/// `PATH`. The system interpreter comes first so that a pyenv or similar
/// shim on `PATH` does not decide which Python the tests get.
fn system_python() -> PathBuf {
    let system = PathBuf::from("/usr/bin/python3");
    if system.exists() && has_venv_support(&system) {
        return system;
    }
    if has_venv_support(Path::new("python3")) {
        return PathBuf::from("python3");
    }
    // Neither works yet; installing python3-venv fixes the system one.
    if system.exists() {
        system
    } else {
        PathBuf::from("python3")
    }
}

/// Debian splits `ensurepip` (needed by `python3 -m venv`) into python3-venv,
/// so `python3 -m venv --help` alone is not enough.
fn has_venv_support(python: &Path) -> bool {
    succeeds(Command::new(python).args(["-c", "import venv, ensurepip"]))
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    if find_program("apt-get").is_none() {
        bail!(
            "missing packages {packages:?}, and this is not a Debian-like system \
             (no apt-get): install them with the system's package manager"
        );
    }
    println!("setup: installing {}", packages.join(" "));
    let started = Instant::now();
    run_command(&mut privileged(&["apt-get", "update"])?)?;
    let mut install = privileged(&["apt-get", "install", "-y", "--no-install-recommends"])?;
    install
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_command(&mut install)?;
    println!(
        "setup: installed {} in {:.0?}",
        packages.join(" "),
        started.elapsed()
    );
    Ok(())
}

/// `argv` as root: directly when already root, else through sudo.
fn privileged(argv: &[&str]) -> anyhow::Result<Command> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .context("cannot run `id -u`")?;
    let is_root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    let mut command = if is_root {
        Command::new(argv[0])
    } else {
        let mut sudo = Command::new("sudo");
        // sudo drops DEBIAN_FRONTEND unless told to keep it.
        sudo.arg("--preserve-env=DEBIAN_FRONTEND").arg(argv[0]);
        sudo
    };
    command.args(&argv[1..]);
    Ok(command)
}

/// Creates `target/venv` with zerorpc-python unless it already imports.
fn venv(root: &Path, system_python: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("target/venv");
    let python = venv.join("bin/python");
    if imports_zerorpc(&python) {
        println!("setup: {} already has {ZERORPC_PYTHON}", venv.display());
        return Ok(python);
    }
    let started = Instant::now();
    if !python.exists() {
        run_command(Command::new(system_python).arg("-m").arg("venv").arg(&venv))?;
    }
    run_command(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
        ZERORPC_PYTHON,
    ]))?;
    if !imports_zerorpc(&python) {
        bail!(
            "{} still cannot `import zerorpc` after installing {ZERORPC_PYTHON}",
            python.display()
        );
    }
    println!(
        "setup: {} ready with {ZERORPC_PYTHON} in {:.0?}",
        venv.display(),
        started.elapsed()
    );
    Ok(python)
}

fn imports_zerorpc(python: &Path) -> bool {
    python.exists() && succeeds(Command::new(python).args(["-c", "import zerorpc"]))
}
