//! `zerorpc --server`: existing programs served as ZeroRPC methods.
//!
//! Each call runs its method's command with the call's arguments, checked
//! by [`MethodSpec::argv`], as separate argv entries (never through a
//! shell). The result is stdout;
//! a streaming method sends stdout line by line, reading the next line only
//! once the previous one was sent, so a slow consumer pauses the program
//! through the pipe. Every child runs in its own process group, which is
//! killed and the child reaped on timeout, on cancellation (the client
//! disappeared) and at shutdown.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zerorpc::{Arg, MethodInfo, Methods, RemoteError, Reply, Server, Value};
use zerorpc_tracing_collector::Traced;

use crate::args::ServeArgs;
use crate::exit::{Failure, stderr_line};
use crate::spec::{self, MethodSpec, ServiceSpec};

/// How much of a failed command's stderr its remote error carries.
const STDERR_TAIL: usize = 2048;

/// Runs the server until SIGINT or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    let spec = spec::load(&args.spec).map_err(|e| Failure::usage(e.0))?;
    let announcing = match &args.register {
        Some(register) => Some((register, crate::register::prepare(register)?)),
        None => None,
    };
    // A server heartbeats actively, as zerorpc-python's: that is how it
    // notices a vanished client and cancels its calls (killing commands).
    let mut builder = Server::builder(methods(&spec))
        .heartbeat(args.heartbeat.interval)
        .max_message_size(args.max_message_size);
    if let Some(limit) = args.pool_size {
        builder = builder.max_concurrent_calls(limit);
    }
    let printer = args.debug.then(crate::debug::Printer::start);
    if let Some(printer) = &printer {
        builder = builder.observer(printer.observer());
    }
    let (security, guard) = args.security.resolve(&args.endpoints)?;
    builder = builder.security(security);
    if let Some(tracer) = crate::trace::server_tracer(&spec.name, &args.tracing)? {
        builder = builder.traced(&tracer);
    }
    if let Some(resolver) = crate::dns::resolver(&args.endpoints)? {
        builder = builder.resolver(resolver);
    }
    for endpoint in &args.endpoints.binds {
        stderr_line(format_args!("binding to \"{endpoint}\""));
        builder = builder.bind(endpoint);
    }
    for endpoint in &args.endpoints.connects {
        stderr_line(format_args!("connecting to \"{endpoint}\""));
        builder = builder.connect(endpoint);
    }
    let server = builder.build().map_err(Failure::from_setup)?;
    let shutdown = server.shutdown_handle();
    stderr_line(format_args!(
        "serving \"{}\" ({}) on {}",
        spec.name,
        args.spec.display(),
        server.endpoints().join(", ")
    ));
    // Announced once bound, so that the records name the ports bound
    // (`*`, 0) and clients find a server already listening. The update
    // blocks until the name server answers.
    let registration = match announcing {
        Some((register, builder)) => Some((
            register,
            tokio::task::block_in_place(|| {
                crate::register::register_server(register, builder, server.bound_endpoints())
            })?,
        )),
        None => None,
    };
    let reloading = guard.as_ref().map(|g| g.reload_on_hangup());
    let serving = tokio::spawn(server.serve());
    wait_for_signal().await;
    if let Some(reloading) = reloading {
        reloading.abort();
    }
    // Withdrawn before the server stops, so that no client resolving the
    // name meanwhile is sent to a closed port (caches still hold the
    // records for their TTL).
    let withdrawn = match registration {
        Some((register, registration)) => {
            tokio::task::block_in_place(|| crate::register::withdraw_server(register, registration))
        }
        None => Ok(()),
    };
    shutdown.shutdown();
    let result = match serving.await {
        Ok(Ok(())) => withdrawn,
        Ok(Err(e)) => Err(Failure::from_setup(e)),
        Err(e) => Err(Failure::local(format!("the server stopped: {e}"))),
    };
    if let Some(printer) = printer {
        printer.finish();
    }
    result
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        // Without signal handlers the default action still ends the process.
        _ => futures::future::pending::<()>().await,
    }
}

/// The method table for a service file.
pub(crate) fn methods(spec: &ServiceSpec) -> Methods {
    let mut methods = Methods::new(spec.name.clone());
    for method in &spec.methods {
        let runner = Arc::new(Runner {
            limit: method.max_concurrent.map(|n| Arc::new(Semaphore::new(n))),
            spec: method.clone(),
        });
        let mut doc = method.description.clone().unwrap_or_default();
        if !doc.is_empty() {
            doc.push_str("\n\n");
        }
        doc.push_str(&format!("Runs: {}", method.usage()));
        if method.stream {
            doc.push_str("\nStreams stdout line by line.");
        }
        if let Some(timeout) = method.timeout {
            doc.push_str(&format!("\nTimeout: {}s.", timeout.as_secs_f64()));
        }
        let mut info = MethodInfo::new().doc(doc).streaming(method.stream);
        if let Some(names) = &method.args {
            info = info.args(names.iter().map(|a| Arg::new(&a.name)).collect());
        }
        methods.add(method.name.clone(), info, move |args: Vec<Value>| {
            let runner = runner.clone();
            async move { runner.call(args).await }
        });
    }
    methods
}

struct Runner {
    spec: MethodSpec,
    limit: Option<Arc<Semaphore>>,
}

impl Runner {
    fn command_text(&self) -> String {
        spec::shell_words(&self.spec.command)
    }

    async fn call(&self, args: Vec<Value>) -> Reply {
        let argv = match self.spec.argv(args) {
            Ok(argv) => argv,
            Err(e) => return Reply::Value(Err(e)),
        };
        // Waiting for a slot does not count towards the method's timeout.
        let permit = match &self.limit {
            Some(limit) => match limit.clone().acquire_owned().await {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return Reply::Value(Err(RemoteError::new(
                        "RuntimeError",
                        "the server is shutting down",
                        "",
                    )));
                }
            },
            None => None,
        };
        let deadline = self.spec.timeout.map(|t| Instant::now() + t);
        let mut child = match self.spawn(&argv) {
            Ok(child) => child,
            Err(e) => return Reply::Value(Err(e)),
        };
        let stderr = child.take_stderr().map(|s| tokio::spawn(tail(s)));
        let Some(stdout) = child.take_stdout() else {
            return Reply::Value(Err(RemoteError::new(
                "OSError",
                "stdout of the command is not piped",
                "",
            )));
        };
        let run = Run {
            child,
            stderr,
            deadline,
            command: self.command_text(),
            timeout: self.spec.timeout,
            _permit: permit,
        };
        if self.spec.stream {
            Reply::Stream(run.stream(stdout))
        } else {
            Reply::Value(run.collect(stdout).await)
        }
    }

    fn spawn(&self, argv: &[OsString]) -> Result<Guarded, RemoteError> {
        let mut command = Command::new(&self.spec.command[0]);
        command
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so a timeout also kills what the program started.
            .process_group(0)
            .kill_on_drop(true);
        crate::trace::program_env(&mut command);
        #[cfg(target_os = "linux")]
        // SAFETY: the closure runs in the forked child before exec and only
        // calls prctl(2), which is async-signal-safe.
        unsafe {
            // The command's own process group escapes a kill of the server's
            // group; this makes it die with the server all the same.
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        match command.spawn() {
            Ok(child) => Ok(Guarded { child: Some(child) }),
            Err(e) => {
                let message = format!("cannot run {}: {e}", self.command_text());
                Err(RemoteError::with_summary("OSError", message))
            }
        }
    }
}

/// A child that is killed (with its process group) and reaped when dropped
/// before it was waited for.
struct Guarded {
    child: Option<Child>,
}

impl Guarded {
    fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.as_mut()?.stderr.take()
    }

    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self.child.as_mut() {
            Some(child) => {
                let status = child.wait().await;
                if status.is_ok() {
                    self.child = None;
                }
                status
            }
            None => Err(std::io::Error::other("already reaped")),
        }
    }

    /// Kills the process group and reaps the child.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&child);
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        kill_group(&child);
        let _ = child.start_kill();
        // Reap in the background: a drop cannot wait. Without a runtime
        // (process exit) there is nothing left to leak.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = child.wait().await;
            });
        }
    }
}

fn kill_group(child: &Child) {
    let Some(pid) = child.id().and_then(|id| libc::pid_t::try_from(id).ok()) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions. The child is not
    // reaped yet (we hold it), so its pid, which is also its process group
    // id, cannot have been reused.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// Keeps the last [`STDERR_TAIL`] bytes of a stream.
async fn tail(mut stream: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by the stream's end: the child's exit closes it.
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_TAIL {
                    kept.drain(..kept.len() - STDERR_TAIL);
                }
            }
        }
    }
    if kept.len() > STDERR_TAIL {
        kept.drain(..kept.len() - STDERR_TAIL);
    }
    kept
}

/// One running command.
struct Run {
    child: Guarded,
    stderr: Option<JoinHandle<Vec<u8>>>,
    deadline: Option<Instant>,
    command: String,
    timeout: Option<std::time::Duration>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Runs `work` until the deadline, if any.
async fn within<T>(deadline: Option<Instant>, work: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work).await.ok(),
        None => Some(work.await),
    }
}

/// Text when it is UTF-8, binary data otherwise.
fn output_value(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) => Value::from(text),
        Err(e) => Value::Binary(e.into_bytes()),
    }
}

impl Run {
    async fn timed_out(&mut self) -> RemoteError {
        self.child.kill().await;
        let after = self.timeout.map_or(0.0, |t| t.as_secs_f64());
        let message = format!(
            "{} did not finish within {after}s and was killed",
            self.command
        );
        RemoteError::with_summary("TimeoutExpired", message)
    }

    /// Waits for the exit and turns a failure into a remote error.
    async fn finish(&mut self) -> Result<(), RemoteError> {
        let status = match within(self.deadline, self.child.wait()).await {
            Some(Ok(status)) => status,
            Some(Err(e)) => {
                return Err(RemoteError::new(
                    "OSError",
                    format!("waiting for {}: {e}", self.command),
                    "",
                ));
            }
            None => return Err(self.timed_out().await),
        };
        if status.success() {
            return Ok(());
        }
        // The tail is complete when every writer has closed stderr, which a
        // process the command left in the background may hold open long
        // after the command itself exited: wait no longer than the timeout.
        let stderr = match self.stderr.take() {
            Some(task) => match within(self.deadline, task).await {
                Some(tail) => tail.unwrap_or_default(),
                None => return Err(self.timed_out().await),
            },
            None => Vec::new(),
        };
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        let how = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => "failed".to_owned(),
        };
        let last_line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let message = if last_line.is_empty() {
            format!("{} {how}", self.command)
        } else {
            format!("{} {how}: {last_line}", self.command)
        };
        let traceback = format!("CommandFailed: {message}\n--- end of stderr ---\n{stderr}");
        Err(RemoteError::new("CommandFailed", message, traceback))
    }

    /// A single result: all of stdout.
    async fn collect(mut self, mut stdout: ChildStdout) -> Result<Value, RemoteError> {
        let mut output = Vec::new();
        match within(self.deadline, stdout.read_to_end(&mut output)).await {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                self.child.kill().await;
                return Err(RemoteError::new(
                    "OSError",
                    format!("reading the output of {}: {e}", self.command),
                    "",
                ));
            }
            None => return Err(self.timed_out().await),
        }
        self.finish().await?;
        Ok(output_value(output))
    }

    /// A stream: one item per stdout line, read only when the previous one
    /// has been sent.
    fn stream(
        self,
        stdout: ChildStdout,
    ) -> futures::stream::BoxStream<'static, Result<Value, RemoteError>> {
        struct State {
            run: Run,
            lines: BufReader<ChildStdout>,
            done: bool,
        }
        let state = State {
            run: self,
            lines: BufReader::new(stdout),
            done: false,
        };
        futures::stream::unfold(state, |mut s| async move {
            if s.done {
                return None;
            }
            let mut line = Vec::new();
            let read = within(s.run.deadline, s.lines.read_until(b'\n', &mut line)).await;
            match read {
                Some(Ok(n)) if n > 0 => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    Some((Ok(output_value(line)), s))
                }
                Some(Ok(_)) => {
                    s.done = true;
                    match s.run.finish().await {
                        Ok(()) => None,
                        Err(e) => Some((Err(e), s)),
                    }
                }
                Some(Err(e)) => {
                    s.done = true;
                    s.run.child.kill().await;
                    Some((
                        Err(RemoteError::new(
                            "OSError",
                            format!("reading the output of {}: {e}", s.run.command),
                            "",
                        )),
                        s,
                    ))
                }
                None => {
                    s.done = true;
                    let e = s.run.timed_out().await;
                    Some((Err(e), s))
                }
            }
        })
        .boxed()
    }
}
