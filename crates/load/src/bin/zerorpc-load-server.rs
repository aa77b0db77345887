//! `zerorpc-load-server`: a ZeroRPC server for load tests and benchmarks.
//!
//! Serves one method per kind of handler the core runs, so a client can
//! load each path on its own:
//!
//! | method | handler | answers |
//! | --- | --- | --- |
//! | `nap(seconds, tag)` | async (a tokio sleep) | `tag`, after `seconds` |
//! | `echo(value)` | plain sync (tokio's blocking pool) | `value`, any msgpack value |
//! | `echo_inline(value)` | sync `#[zerorpc(inline)]` (the I/O thread) | `value` |
//! | `echo_async(value)` | async | `value` |
//! | `echo_inline_async(value)` | async `#[zerorpc(inline)]` (started on the I/O thread, completes there) | `value` |
//! | `add(a, b)` | sync `#[zerorpc(inline)]` (the I/O thread) | `a + b` |
//! | `count(n)` | stream | `0, 1, ..., n - 1` |
//! | `blobs(n, bytes)` | stream | `n` binary items of `bytes` bytes (`zerorpc_load::stream_item`) |
//! | `count_inline(n)`, `blobs_inline(n, bytes)` | stream `#[zerorpc(inline)]` (polled on the I/O thread) | as `count` and `blobs` |
//! | `stats()` | plain sync | a map of counters, see below |
//!
//! `stats()` answers every counter of the server's socket (see
//! `zerorpc::transport::Stats`: events sent, received, waiting, and drops
//! by reason), `dropped` (all drops together), `rss_bytes` and `threads`
//! (from `/proc/self/status`) and `napping` (calls of `nap` running now, so
//! a test knows when its calls have arrived).
//!
//! The server binds `--bind` (default `tcp://127.0.0.1:*`, a free port) or
//! connects to each `--connect` endpoint (a worker behind a hub). Once ready
//! it prints one line on stdout, `listening <endpoint>` or `connected
//! <endpoint> ...`, and serves until SIGTERM or SIGINT, then exits with
//! status 0. Status 1: the server could not start (bad endpoint, address in
//! use); 2: bad command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use futures::{Stream, StreamExt};
use tokio::signal::unix::{SignalKind, signal};
use zerorpc::{Server, ShutdownHandle, Value};
use zerorpc_load::{ProcStatus, optional_duration, parse_seconds, stream_item, tracer};
use zerorpc_tracing_collector::Traced as _;

/// The largest item `blobs` makes: a bound on what one call can allocate.
const MAX_BLOB_BYTES: usize = 64 << 20;

/// Where the server binds when given neither `--bind` nor `--connect`.
const DEFAULT_BIND: &str = "tcp://127.0.0.1:*";

/// Serve methods for load tests and benchmarks: nap (async), echo (sync,
/// inline, async), add (inline), count and blobs (streams, and their
/// inline twins) and stats.
///
/// Prints `listening <endpoint>` (or `connected <endpoint>...`) on stdout
/// once ready; serves until SIGTERM or SIGINT.
#[derive(Parser, Debug)]
#[command(name = "zerorpc-load-server", version)]
struct Args {
    /// Endpoint to bind [default: tcp://127.0.0.1:*, a free port].
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "connect")]
    bind: Option<String>,
    /// Endpoint to connect to instead, e.g. a hub's worker side (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Heartbeat interval in seconds, fractions allowed; 0 disables
    /// heartbeats [default: the library's, 5].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    heartbeat: Option<f64>,
    /// Bytes of replies that may wait for one client reading slower than they
    /// are made [default: the library's, 64 MiB].
    #[arg(long, value_name = "BYTES")]
    send_queue_limit: Option<usize>,
    /// The largest request a client may send, in bytes; 0 for no limit
    /// [default: the library's, 16 MiB].
    #[arg(long, value_name = "BYTES")]
    max_message_size: Option<u64>,
    /// Trace every call, reporting to the collector at ENDPOINT (as
    /// `zerorpc --trace-collector` does).
    #[arg(long, value_name = "ENDPOINT")]
    trace_collector: Option<String>,
    /// Drive the server's socket from its tokio runtime rather than from a
    /// thread of its own (`ServerBuilder::io_thread(false)`).
    #[arg(long)]
    io_on_runtime: bool,
}

/// The service: stateless but for a gauge of running naps, and a handle
/// on its own server for the socket's counters (set once it is built).
#[derive(Default)]
struct Load {
    napping: AtomicU64,
    server: Arc<OnceLock<ShutdownHandle>>,
}

/// Counts a running nap while alive, including one cancelled by the
/// client's loss (its future is dropped).
struct NapGuard<'a>(&'a AtomicU64);

impl<'a> NapGuard<'a> {
    fn enter(gauge: &'a AtomicU64) -> NapGuard<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        NapGuard(gauge)
    }
}

impl Drop for NapGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[zerorpc::service(name = "load")]
impl Load {
    /// Sleeps `seconds` without blocking a thread, then returns `tag`.
    pub(crate) async fn nap(&self, seconds: f64, tag: i64) -> Result<i64, String> {
        let duration = Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("cannot nap for {seconds} seconds"))?;
        let _napping = NapGuard::enter(&self.napping);
        tokio::time::sleep(duration).await;
        Ok(tag)
    }

    /// Returns its argument, whatever msgpack value it is.
    pub(crate) fn echo(&self, value: Value) -> Value {
        value
    }

    /// Returns its argument, on the I/O thread: the path of quick sync
    /// methods.
    #[zerorpc(inline)]
    pub(crate) fn echo_inline(&self, value: Value) -> Value {
        value
    }

    /// Returns its argument from an async method.
    pub(crate) async fn echo_async(&self, value: Value) -> Value {
        value
    }

    /// Returns its argument from an async method started on the I/O
    /// thread, where it completes without waiting.
    #[zerorpc(inline)]
    pub(crate) async fn echo_inline_async(&self, value: Value) -> Value {
        value
    }

    /// Adds two numbers (wrapping on overflow), on the I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    /// Streams the numbers from 0 to n - 1.
    pub(crate) fn count(&self, n: u64) -> impl Stream<Item = u64> + use<> {
        futures::stream::iter(0..n)
    }

    /// Streams `n` binary items of `bytes` bytes each, made as they are
    /// sent (the item's index first, see `zerorpc_load::stream_item`).
    pub(crate) fn blobs(
        &self,
        n: u64,
        bytes: u64,
    ) -> Result<impl Stream<Item = Value> + use<>, String> {
        let bytes = usize::try_from(bytes)
            .ok()
            .filter(|&bytes| bytes <= MAX_BLOB_BYTES)
            .ok_or_else(|| format!("items of {bytes} bytes: at most {MAX_BLOB_BYTES} allowed"))?;
        Ok(futures::stream::iter(0..n).map(move |i| Value::Binary(stream_item(i, bytes))))
    }

    /// `count`, its items made on the I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn count_inline(&self, n: u64) -> impl Stream<Item = u64> + use<> {
        self.count(n)
    }

    /// `blobs`, its items made on the I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn blobs_inline(
        &self,
        n: u64,
        bytes: u64,
    ) -> Result<impl Stream<Item = Value> + use<>, String> {
        self.blobs(n, bytes)
    }

    /// The server's counters: the socket's (drops by reason...),
    /// `dropped`, `rss_bytes`, `threads`, `napping`.
    pub(crate) fn stats(&self) -> Result<BTreeMap<&'static str, u64>, std::io::Error> {
        let process = ProcStatus::current()?;
        let mut stats = BTreeMap::from([
            ("rss_bytes", process.rss_bytes),
            ("threads", process.threads),
            ("napping", self.napping.load(Ordering::Relaxed)),
        ]);
        if let Some(server) = self.server.get() {
            let socket = server.stats();
            stats.extend(socket.counters());
            stats.insert("dropped", socket.dropped());
        }
        Ok(stats)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // As the `zerorpc` binaries do (see `tune_malloc`).
    zerorpc::transport::tune_malloc();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zerorpc-load-server: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let load = Load::default();
    let handle = load.server.clone();
    let mut builder = Server::builder(load).io_thread(!args.io_on_runtime);
    if let Some(secs) = args.heartbeat {
        builder = builder.heartbeat(optional_duration(secs));
    }
    if let Some(bytes) = args.send_queue_limit {
        builder = builder.send_queue_limit(bytes);
    }
    if let Some(bytes) = args.max_message_size {
        builder = builder.max_message_size((bytes > 0).then_some(bytes));
    }
    let tracer = tracer("zerorpc-load-server", args.trace_collector.as_deref())?;
    if let Some(tracer) = &tracer {
        builder = builder.traced(tracer);
    }
    let verb = if args.connect.is_empty() {
        builder = builder.bind(args.bind.as_deref().unwrap_or(DEFAULT_BIND));
        "listening"
    } else {
        for endpoint in &args.connect {
            builder = builder.connect(endpoint);
        }
        "connected"
    };
    let server = builder.build().context("cannot start the server")?;
    // Handlers first: a signal sent right after the ready line must stop
    // the server cleanly, not kill it.
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let shutdown = server.shutdown_handle();
    // Set once, right here, before any call can ask for it.
    let _ = handle.set(server.shutdown_handle());
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{verb} {}", server.endpoints().join(" "))?;
        stdout.flush()?;
    }
    let mut serving = tokio::spawn(server.serve());
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
        served = &mut serving => return Ok(served.context("the server task failed")??),
    }
    shutdown.shutdown();
    serving.await.context("the server task failed")??;
    Ok(())
}
