//! Running external commands with echo and status checks.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};

/// Settings for builds that are made once and thrown away, as in CI: no
/// incremental state (a third of a debug target directory, and useless
/// to a build from scratch) and line tables only for debug information
/// (backtraces keep their file and line; the rest is most of the
/// remaining size). Together they take the suite's target directory from
/// 7.3 GB to 3.0.
const LEAN_BUILD: [(&str, &str); 2] = [
    ("CARGO_INCREMENTAL", "0"),
    ("CARGO_PROFILE_DEV_DEBUG", "line-tables-only"),
];

static LEAN: AtomicBool = AtomicBool::new(false);

/// Makes every later [`cargo`] command, and the cargo commands the tests
/// run in turn, a [`LEAN_BUILD`].
pub(crate) fn lean_builds() {
    LEAN.store(true, Ordering::Relaxed);
}

/// A `cargo` command using the same cargo that runs xtask.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo_env(&mut command);
    command
}

/// The environment of [`cargo`], for a command that runs cargo in turn.
///
/// Without the variables `cargo run` set for xtask's own package: builds
/// of ours would see `CARGO_MANIFEST_DIR` set to `xtask/` while a build a
/// test starts, or one from a shell, sees it unset, and ring's build
/// script watches it, so each switch rebuilt ring and the eight crates
/// above it (~22 s in CI's bench step).
pub(crate) fn cargo_env(command: &mut Command) {
    if LEAN.load(Ordering::Relaxed) {
        command.envs(LEAN_BUILD);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(is_package_variable) {
            command.env_remove(&key);
        }
    }
}

/// Whether `key` is one of the variables cargo sets for the package it
/// runs (not one of cargo's settings, such as `CARGO_TARGET_DIR`).
fn is_package_variable(key: &str) -> bool {
    matches!(
        key,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_MANIFEST_LINKS"
            | "CARGO_CRATE_NAME"
            | "CARGO_BIN_NAME"
            | "CARGO_PRIMARY_PACKAGE"
    ) || key.starts_with("CARGO_PKG_")
}

/// The command line, for echoing and error messages.
pub(crate) fn display(command: &Command) -> String {
    let mut text = String::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            text.push_str(&format!(
                "{}={} ",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    text.push_str(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&quote(arg));
    }
    text
}

fn quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c))
    {
        arg.into_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Echoes and runs `command` with inherited stdio; returns its status.
pub(crate) fn status(command: &mut Command) -> anyhow::Result<ExitStatus> {
    eprintln!("$ {}", display(command));
    command
        .status()
        .with_context(|| format!("cannot run `{}`", display(command)))
}

/// Echoes and runs `command`; fails unless it succeeds.
pub(crate) fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = status(command)?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(command));
    }
    Ok(())
}

/// Runs `command` silently; whether it could start and succeeded.
pub(crate) fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::is_package_variable;

    #[test]
    fn cargo_commands_get_cargos_settings_but_not_xtasks_package() {
        let expected = [
            ("CARGO_MANIFEST_DIR", true),
            ("CARGO_PKG_NAME", true),
            ("CARGO_CRATE_NAME", true),
            ("CARGO", false),
            ("CARGO_HOME", false),
            ("CARGO_TARGET_DIR", false),
            ("CARGO_INCREMENTAL", false),
        ];
        let actual = expected.map(|(key, _)| (key, is_package_variable(key)));
        assert_eq!(actual, expected);
    }
}
