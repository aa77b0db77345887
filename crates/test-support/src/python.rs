//! The zerorpc-python 0.6.3 peer: locating the interpreter, running scripts
//! and the `zerorpc` command-line tool.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::component::{report_missing, workspace_root};
use crate::process::{Process, WaitLineError};

/// Python source that makes zerorpc-python 0.6.3 work on Python 3.10+.
///
/// 0.6.3 calls `inspect.getargspec` (for `_zerorpc_args` and
/// `_zerorpc_inspect`) and `inspect.formatargspec` (in the CLI), both removed
/// in Python 3.11, and its CLI tests results against `collections.Iterator`,
/// removed in 3.10, so it crashes after every successful call. The prelude
/// restores all three, each only if absent, and must run before
/// `import zerorpc`. It defines only names starting with `_zt_`.
pub const PYTHON_PRELUDE: &str = r#"import collections as _zt_collections
import collections.abc as _zt_collections_abc
import inspect as _zt_inspect

if not hasattr(_zt_inspect, "getargspec"):
    _zt_ArgSpec = _zt_collections.namedtuple("ArgSpec", "args varargs keywords defaults")

    def _zt_getargspec(func):
        spec = _zt_inspect.getfullargspec(func)
        return _zt_ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)

    _zt_inspect.getargspec = _zt_getargspec

if not hasattr(_zt_inspect, "formatargspec"):
    def _zt_formatargspec(args, varargs=None, varkw=None, defaults=None, *_rest, **_kw):
        defaults = tuple(defaults or ())
        first_default = len(args) - len(defaults)
        specs = []
        for i, arg in enumerate(args):
            spec = str(arg)
            if i >= first_default:
                spec += "=" + repr(defaults[i - first_default])
            specs.append(spec)
        if varargs is not None:
            specs.append("*" + str(varargs))
        if varkw is not None:
            specs.append("**" + str(varkw))
        return "(" + ", ".join(specs) + ")"

    _zt_inspect.formatargspec = _zt_formatargspec

if not hasattr(_zt_collections, "Iterator"):
    _zt_collections.Iterator = _zt_collections_abc.Iterator
"#;

/// Runs the `zerorpc` CLI's `main` with the prelude applied. `argv[0]` is set
/// before `zerorpc.cli` is imported because its argparse parser is built at
/// import time and takes the program name from it.
const CLI_MAIN: &str = "import sys\n\
                        sys.argv[0] = 'zerorpc'\n\
                        from zerorpc.cli import main\n\
                        sys.exit(main())\n";

const COMPONENT: &str = "python with zerorpc";

/// A Python interpreter that can `import zerorpc`.
#[derive(Clone, Debug)]
pub struct Python {
    path: PathBuf,
}

/// The Python peer, or `None` (after the missing-component policy of
/// [`require`](crate::require)) if there is none.
///
/// Uses `$ZERORPC_PYTHON` if set, else `<workspace>/target/venv/bin/python`
/// (created by `cargo xtask setup`). The interpreter is checked once per test
/// binary with `python -c "import zerorpc"`.
pub fn python() -> Option<Python> {
    static FOUND: OnceLock<Result<Python, String>> = OnceLock::new();
    match FOUND.get_or_init(locate) {
        Ok(python) => Some(python.clone()),
        Err(detail) => {
            report_missing(COMPONENT, Some(detail));
            None
        }
    }
}

fn locate() -> Result<Python, String> {
    let (path, origin) = match env::var_os("ZERORPC_PYTHON") {
        Some(path) if !path.is_empty() => (PathBuf::from(path), "ZERORPC_PYTHON"),
        _ => (
            workspace_root().join("target/venv/bin/python"),
            "default path",
        ),
    };
    if !path.exists() {
        return Err(format!("{} ({origin}) does not exist", path.display()));
    }
    let output = Command::new(&path)
        .args(["-c", "import zerorpc"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} ({origin}): {e}", path.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no error output");
        return Err(format!(
            "{} ({origin}) cannot import zerorpc: {last}",
            path.display()
        ));
    }
    Ok(Python { path })
}

impl Python {
    /// The interpreter's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command running the interpreter unbuffered (`-u`,
    /// `PYTHONUNBUFFERED=1`), so output lines arrive as they are printed.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        command
            .arg("-u")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }

    /// Runs `script` (preceded by [`PYTHON_PRELUDE`]) with `args` as
    /// `sys.argv[1:]`.
    ///
    /// The script cannot start with `from __future__` imports, and traceback
    /// line numbers include the prelude's lines.
    pub fn spawn(&self, script: &str, args: &[&str]) -> io::Result<PythonPeer> {
        self.spawn_source(&format!("{PYTHON_PRELUDE}\n{script}"), args)
    }

    /// Runs `script` as is, without the prelude: for testing against plain
    /// zerorpc-python 0.6.3 on this Python.
    pub fn spawn_without_prelude(&self, script: &str, args: &[&str]) -> io::Result<PythonPeer> {
        self.spawn_source(script, args)
    }

    fn spawn_source(&self, source: &str, args: &[&str]) -> io::Result<PythonPeer> {
        let script = TempScript::create(source)?;
        let mut command = self.command();
        command.arg(&script.path).args(args);
        let process = Process::spawn("python peer", command)?;
        Ok(PythonPeer {
            process,
            _script: script,
        })
    }

    /// A command running the `zerorpc` command-line tool of zerorpc-python with
    /// [`PYTHON_PRELUDE`] applied, with `args` as its arguments.
    ///
    /// Its stdin, stdout and stderr are left as `Command` defaults; use
    /// `.output()` to capture them.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut command = self.command();
        command
            .arg("-c")
            .arg(format!("{PYTHON_PRELUDE}\n{CLI_MAIN}"))
            .args(args);
        command
    }
}

/// A running Python script, killed (with its process group) on drop; its
/// temporary script file is removed then too.
#[derive(Debug)]
pub struct PythonPeer {
    process: Process,
    _script: TempScript,
}

impl PythonPeer {
    /// Runs `script` (preceded by [`PYTHON_PRELUDE`]) on the [`python`] peer
    /// with `args` as `sys.argv[1:]`.
    ///
    /// Returns `None` when there is no Python peer (the test should return).
    ///
    /// # Panics
    ///
    /// If the interpreter exists but cannot be started.
    pub fn spawn(script: &str, args: &[&str]) -> Option<PythonPeer> {
        let python = python()?;
        let peer = python
            .spawn(script, args)
            .unwrap_or_else(|e| panic!("starting {}: {e}", python.path().display()));
        Some(peer)
    }

    /// Waits until a stdout line contains `pattern`; see [`Process::wait_for_line`].
    pub fn wait_for_line(&self, pattern: &str, timeout: Duration) -> Result<String, WaitLineError> {
        self.process.wait_for_line(pattern, timeout)
    }

    /// The underlying process: its output lines, exit status, signals.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// The underlying process, mutably (for `kill`, `try_wait`, `signal`).
    pub fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// A script file in the temporary directory, removed on drop.
#[derive(Debug)]
struct TempScript {
    path: PathBuf,
}

impl TempScript {
    fn create(source: &str) -> io::Result<TempScript> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        const ATTEMPTS: usize = 16;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last_error = None;
        for _ in 0..ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = env::temp_dir().join(format!(
                "zerorpc-test-{}-{n}-{nanos}.py",
                std::process::id()
            ));
            // create_new: never reuse a file another test binary still runs.
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let script = TempScript { path };
                    file.write_all(source.as_bytes())?;
                    return Ok(script);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no unique script file name")))
    }
}

impl Drop for TempScript {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
