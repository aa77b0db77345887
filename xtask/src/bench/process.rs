//! The processes a benchmark starts: spawned with their output captured,
//! waited for with a bound, killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::run::display;

/// How often waits look again.
const POLL: Duration = Duration::from_millis(5);

/// Lines of a process's stderr shown when it misbehaves.
const REPORT_LINES: usize = 20;

/// A process started by the suite, killed (if still running) when dropped.
pub(crate) struct Peer {
    name: String,
    child: Child,
    stdout: Lines,
    stderr: Lines,
}

/// The lines a process wrote so far, filled by a reader thread.
type Lines = Arc<Mutex<Vec<String>>>;

impl Peer {
    /// Starts `command` with stdin closed and stdout and stderr captured.
    pub(crate) fn spawn(name: &str, mut command: Command) -> anyhow::Result<Peer> {
        let shown = display(&command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {name}: `{shown}`"))?;
        let stdout = capture(child.stdout.take());
        let stderr = capture(child.stderr.take());
        Ok(Peer {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for a line of stdout, or of stderr if
    /// `on_stderr`, starting with `prefix`; returns it.
    pub(crate) fn wait_for_line(
        &mut self,
        prefix: &str,
        on_stderr: bool,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = if on_stderr {
                &self.stderr
            } else {
                &self.stdout
            };
            let found = locked(lines)
                .iter()
                .find(|line| line.starts_with(prefix))
                .cloned();
            if let Some(line) = found {
                return Ok(line);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before printing `{prefix}...`{}",
                    self.name,
                    self.report()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} printed no `{prefix}...` line within {timeout:?}{}",
                    self.name,
                    self.report()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Kills the process and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last JSON line the process printed, waiting a moment for the
    /// reader thread to take it in after the process exited.
    pub(crate) fn last_json_line(&self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let last = locked(&self.stdout)
                .iter()
                .rev()
                .find(|line| line.starts_with('{'))
                .cloned();
            if last.is_some() || Instant::now() >= deadline {
                return last;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits for `listening ENDPOINT` on stdout and returns the endpoint.
    pub(crate) fn wait_listening(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let line = self.wait_for_line("listening ", false, timeout)?;
        Ok(line["listening ".len()..].trim().to_owned())
    }

    /// Waits up to `timeout` for the process to exit successfully and
    /// returns the last JSON line it printed.
    pub(crate) fn json_result(&mut self, timeout: Duration) -> anyhow::Result<Value> {
        let status = self.wait(timeout)?;
        // The reader thread may still be taking the last line in.
        let deadline = Instant::now() + Duration::from_secs(5);
        let line = loop {
            let last = locked(&self.stdout)
                .iter()
                .rev()
                .find(|line| line.starts_with('{'))
                .cloned();
            match last {
                Some(line) => break Some(line),
                None if Instant::now() < deadline && status.success() => thread::sleep(POLL),
                None => break None,
            }
        };
        if !status.success() {
            bail!(
                "{} failed ({status}){}{}",
                self.name,
                line.map(|line| format!("\nits report: {line}"))
                    .unwrap_or_default(),
                self.report()
            );
        }
        let line = line.with_context(|| format!("{} printed no JSON line", self.name))?;
        serde_json::from_str(&line)
            .with_context(|| format!("{} printed a bad JSON line: {line}", self.name))
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} still running after {timeout:?}{}",
                    self.name,
                    self.report()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// The end of its stderr, for error messages.
    fn report(&self) -> String {
        let stderr = locked(&self.stderr);
        let skip = stderr.len().saturating_sub(REPORT_LINES);
        let tail: Vec<&str> = stderr[skip..].iter().map(String::as_str).collect();
        if tail.is_empty() {
            String::new()
        } else {
            format!("\n{} stderr:\n  {}", self.name, tail.join("\n  "))
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn locked(lines: &Lines) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Collects what `pipe` carries, line by line, on a thread that ends with
/// the pipe.
fn capture(pipe: Option<impl Read + Send + 'static>) -> Lines {
    let lines = Lines::default();
    if let Some(pipe) = pipe {
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                locked(&sink).push(line);
            }
        });
    }
    lines
}

/// `tcp://127.0.0.1:PORT` on a port that was free a moment ago, for the
/// programs that cannot bind port 0 and say which port they got.
pub(crate) fn free_tcp_endpoint() -> anyhow::Result<String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to find a free port")?;
    Ok(format!("tcp://127.0.0.1:{}", listener.local_addr()?.port()))
}
