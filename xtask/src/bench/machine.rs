//! What the figures were measured on: machine, toolchain, date and commit.

use std::path::Path;
use std::process::Command;

/// A description of the run, for the top of docs/benchmarks.md.
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) python: Option<String>,
    pub(crate) date: String,
    pub(crate) commit: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages when the run started:
    /// other work on the machine makes the figures noisy.
    pub(crate) load_average: String,
}

impl Machine {
    /// Reads what it can; an unknown item is `unknown`, never an error.
    pub(crate) fn describe(root: &Path, python: Option<&Path>) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
            .map(|(_, model)| model.trim().to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|text| text.trim().to_owned());
        let load_average = std::fs::read_to_string("/proc/loadavg").ok().map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        });
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let python = python.and_then(|python| {
            output(Command::new(python).args([
                "-c",
                "import sys, importlib.metadata as m; \
                 print('Python %d.%d.%d, zerorpc %s, gevent %s' % (sys.version_info[:3] \
                 + (m.version('zerorpc'), m.version('gevent'))))",
            ]))
        });
        let commit =
            output(
                Command::new("git")
                    .current_dir(root)
                    .args(["rev-parse", "--short=12", "HEAD"]),
            )
            .map(|commit| {
                let dirty = output(Command::new("git").current_dir(root).args([
                    "status",
                    "--porcelain",
                    "--untracked-files=no",
                ]))
                .is_some_and(|status| !status.is_empty());
                if dirty {
                    format!("{commit} with uncommitted changes")
                } else {
                    commit
                }
            });
        Machine {
            cpu: known(cpu),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: known(kernel),
            rustc: known(output(Command::new(rustc).arg("--version"))),
            python,
            date: known(output(
                Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]),
            )),
            commit: known(commit),
            load_average: known(load_average),
        }
    }

    /// The description as a Markdown list.
    pub(crate) fn to_markdown(&self) -> String {
        let mut lines = vec![
            format!("* CPU: {}, {} cores", self.cpu, self.cores),
            format!("* Linux {}", self.kernel),
            format!("* {}", self.rustc),
        ];
        if let Some(python) = &self.python {
            lines.push(format!("* {python}"));
        }
        lines.push(format!(
            "* measured {} at commit {}",
            self.date, self.commit
        ));
        lines.push(format!(
            "* load average when the run started: {}",
            self.load_average
        ));
        lines.join("\n") + "\n"
    }
}

/// The trimmed stdout of `command` if it succeeds with some.
fn output(command: &mut Command) -> Option<String> {
    let output = command.output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn known(item: Option<String>) -> String {
    item.unwrap_or_else(|| "unknown".to_owned())
}
