//! A child process that is killed and reaped when the test lets go of it.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::wait::wait_until;

/// Upper bound on condition-variable wake-ups in one [`Process::wait_for_line`],
/// on top of its deadline.
const MAX_WAKEUPS: usize = 1 << 20;

/// A spawned child process with its output collected line by line.
///
/// The child runs in its own process group with stdin closed and stdout and
/// stderr captured by background threads. Dropping the guard kills the whole
/// group (so helpers the child started die too) and reaps the child, so no
/// zombie or stray server outlives the test. If the test is panicking, the
/// drop also prints everything the child wrote, to explain the failure.
pub struct Process {
    name: String,
    child: Child,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    status: Option<ExitStatus>,
}

impl Process {
    /// Spawns `command`; `name` labels its output in messages.
    ///
    /// Overrides the command's stdin (null), stdout and stderr (piped) and
    /// process group (a new one).
    pub fn spawn(name: &str, mut command: Command) -> io::Result<Process> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn()?;
        let stdout = Lines::collect(child.stdout.take().expect("stdout is piped"));
        let stderr = Lines::collect(child.stderr.take().expect("stderr is piped"));
        Ok(Process {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
            status: None,
        })
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operating-system process id (also the process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a stdout line contains `pattern`, and returns that line.
    ///
    /// Lines printed before the call count too. Fails early if stdout is
    /// closed (usually: the process exited) without such a line.
    pub fn wait_for_line(&self, pattern: &str, timeout: Duration) -> Result<String, WaitLineError> {
        self.wait_for(&self.stdout, "stdout", pattern, timeout)
    }

    /// Like [`wait_for_line`](Self::wait_for_line), for stderr.
    pub fn wait_for_stderr_line(
        &self,
        pattern: &str,
        timeout: Duration,
    ) -> Result<String, WaitLineError> {
        self.wait_for(&self.stderr, "stderr", pattern, timeout)
    }

    fn wait_for(
        &self,
        lines: &Lines,
        stream: &'static str,
        pattern: &str,
        timeout: Duration,
    ) -> Result<String, WaitLineError> {
        let deadline = Instant::now() + timeout;
        let mut state = lines.lock();
        let mut scanned = 0;
        let mut closed = false;
        for _ in 0..MAX_WAKEUPS {
            if let Some(line) = state.lines[scanned..].iter().find(|l| l.contains(pattern)) {
                return Ok(line.clone());
            }
            scanned = state.lines.len();
            if state.closed {
                closed = true;
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = lines
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(state);
        Err(WaitLineError {
            closed,
            stream,
            pattern: pattern.to_owned(),
            timeout,
            report: self.report(),
        })
    }

    /// The stdout lines collected so far, without line terminators.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().lines.clone()
    }

    /// The stderr lines collected so far, without line terminators.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().lines.clone()
    }

    /// Everything collected so far, formatted for a failure message.
    pub fn report(&self) -> String {
        let mut report = format!("--- {} (pid {}) stdout ---\n", self.name, self.id());
        for line in self.stdout_lines() {
            report.push_str(&line);
            report.push('\n');
        }
        report.push_str(&format!("--- {} stderr ---\n", self.name));
        for line in self.stderr_lines() {
            report.push_str(&line);
            report.push('\n');
        }
        report.push_str("--- end ---");
        report
    }

    /// The exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    ///
    /// Its last output may still be on the way: read it after
    /// [`wait_for_output`](Self::wait_for_output) instead.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let mut error = None;
        wait_until(timeout, || match self.try_wait() {
            Ok(status) => status.is_some(),
            Err(e) => {
                error = Some(e);
                true
            }
        });
        match error {
            Some(e) => Err(e),
            None => Ok(self.status),
        }
    }

    /// Waits up to `timeout` for the process to exit and for its output to
    /// be collected to the end (both streams closed); `None` if either
    /// takes longer.
    pub fn wait_for_output(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        let Some(status) = self.wait_timeout(timeout)? else {
            return Ok(None);
        };
        for lines in [&self.stdout, &self.stderr] {
            let mut state = lines.lock();
            for _ in 0..MAX_WAKEUPS {
                if state.closed {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                state = lines
                    .changed
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if !state.closed {
                return Ok(None);
            }
        }
        Ok(Some(status))
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process only, not its group.
    ///
    /// Does nothing once the process has been reaped, so a recycled pid is
    /// never signalled.
    pub fn signal(&mut self, signal: i32) -> io::Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.id()).expect("pid fits in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
        // own unreaped child, so it cannot have been reused.
        if unsafe { libc::kill(pid, signal) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Kills the whole process group and reaps the process; returns its status.
    ///
    /// If the process was already reaped (it exited and [`try_wait`](Self::try_wait)
    /// or [`wait_timeout`](Self::wait_timeout) saw it), its group is left
    /// alone: the group id could by then belong to an unrelated process.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        // Until it is reaped the child's pid, and so its group id, cannot be
        // reused, even if it already exited.
        self.kill_group();
        // In case the group kill missed it, e.g. the child left the group.
        let _ = self.child.kill();
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }

    fn kill_group(&self) {
        let Ok(pgid) = libc::pid_t::try_from(self.id()) else {
            return;
        };
        // SAFETY: kill(2) has no memory-safety preconditions. A negative pid
        // addresses the process group this guard created at spawn time.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let result = self.kill();
        if thread::panicking() {
            eprintln!("{}", self.report());
        }
        if let Err(e) = result {
            eprintln!(
                "could not kill and reap {} (pid {}): {e}",
                self.name,
                self.id()
            );
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.id())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A [`Process::wait_for_line`] that did not see its line.
///
/// Its `Display` includes the process output, so `.unwrap()` in a test shows
/// why the peer did not become ready.
pub struct WaitLineError {
    closed: bool,
    stream: &'static str,
    pattern: String,
    timeout: Duration,
    report: String,
}

impl WaitLineError {
    /// Whether the stream closed (the process exited) rather than timing out.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl fmt::Display for WaitLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = if self.closed {
            "closed".to_owned()
        } else {
            format!("silent for {:?}", self.timeout)
        };
        write!(
            f,
            "no {} line containing {:?} ({} {why})\n{}",
            self.stream, self.pattern, self.stream, self.report
        )
    }
}

// `unwrap` prints `Debug`: keep the output readable there too.
impl fmt::Debug for WaitLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for WaitLineError {}

/// The lines read so far from one output stream.
struct Lines {
    state: Mutex<LinesState>,
    changed: Condvar,
}

struct LinesState {
    lines: Vec<String>,
    closed: bool,
}

impl Lines {
    fn collect(stream: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines {
            state: Mutex::new(LinesState {
                lines: Vec::new(),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let writer = Arc::clone(&lines);
        // Detached: the loop ends at end of file, which the group kill in
        // `Process::drop` guarantees.
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']).to_owned();
                        writer.lock().lines.push(line);
                        writer.changed.notify_all();
                    }
                }
            }
            writer.lock().closed = true;
            writer.changed.notify_all();
        });
        lines
    }

    fn lock(&self) -> MutexGuard<'_, LinesState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
