//! `zerorpc-load-client`: puts load on a `zerorpc-load-server` (directly or
//! through a hub) and checks every answer.
//!
//! It makes `--calls` calls with at most `--in-flight` of them waiting at
//! once, spread over `--sockets` clients (one ZeroMQ socket and I/O thread
//! each, to load a server with many connections). Each call is one of:
//!
//! * `nap(SECS, i)` with `--nap SECS`: a call that stays open for a while;
//!   the answer must be `i`;
//! * `echo([i, <BYTES bytes>])` with `--echo BYTES`: the answer must be the
//!   argument; `--handler` picks the server's sync `echo` (the default),
//!   `echo_inline` or `echo_async`;
//! * otherwise `add(i, 1)`: the answer must be `i + 1`.
//!
//! With `--streams N`, it also opens N streams of `count(--items)` at once,
//! each of which must yield exactly `0, 1, ..., items - 1`; with
//! `--item-bytes B`, streams of `blobs(--items, B)` instead, binary items
//! of B bytes that must arrive whole and in order.
//!
//! `--warmup N` makes N calls first, unmeasured and uncounted (any failure
//! among them stops the client), so that connecting is not measured.
//!
//! At the end it prints one JSON line on stdout:
//!
//! ```text
//! {"ok":9998,"failed":1,"wrong":1,"errors":{"Timeout: ...":1},"elapsed_s":2.5,
//!  "latency_us":{"p50":95.1,"p90":120.3,"p99":180.2,"max":950.0,"mean":99.9},"client_stats":{...}}
//! ```
//!
//! `ok`, `failed` and `wrong` count calls and streams: `failed` ended with
//! an error, whose text (prefixed with its kind, e.g. `LostRemote: ...`)
//! is counted in `errors`; `wrong` answered something else than expected
//! (a stream is wrong if an item is out of order or missing). `elapsed_s`
//! is the time from the first call to the last answer; `latency_us` sums up
//! how long each call took, from being made to its answer (absent without
//! calls); `client_stats` has the transport counters of the clients'
//! sockets added up (`sent`, `received`, `dropped_*`, `queued_peak`... and
//! `dropped`, their sum of losses) and the client process's `rss_bytes` and
//! `threads`, at the end. With `--watch-rss PID`, `watched_rss` has the
//! resident size of process PID (a server on the same machine) when the
//! measured calls start (`start_bytes`), the largest seen while they run,
//! sampled every 20 ms (`peak_bytes`), and after the last answer
//! (`end_bytes`).
//!
//! Exit status: 0 if every call and stream was ok, 1 otherwise or if the
//! client could not start (the reason on stderr), 2 on a bad command line.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::builder::RangedU64ValueParser;
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use futures::stream;
use zerorpc::{CallOptions, Client, Response, Value};
use zerorpc_load::{
    Latencies, ProcStatus, echo_payload, is_echo_payload, is_stream_item, optional_duration,
    parse_seconds, tracer, tracer_json,
};
use zerorpc_tracing_collector::Traced as _;

/// The largest `--echo` payload or `--item-bytes` item: a bound on what one
/// bad flag can allocate (the server has the same bound).
const MAX_PAYLOAD_BYTES: u64 = 64 << 20;

/// How often `--watch-rss` samples the watched process.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// How long the traced client waits for its reports to be handed on
/// before it counts them.
const TRACE_FLUSH: Duration = Duration::from_secs(5);

/// Put load on a zerorpc-load-server and check every answer.
///
/// Calls add(i, 1), nap(SECS, i) or echo([i, bytes]); optionally opens
/// streams of count(items). Prints one JSON line of counts; exits 0 only if
/// everything succeeded with the right answer.
#[derive(Parser, Debug)]
#[command(name = "zerorpc-load-client", version)]
struct Args {
    /// Server (or hub) endpoint (repeatable: calls are spread over them).
    #[arg(long, value_name = "ENDPOINT", required = true)]
    connect: Vec<String>,
    /// Number of calls.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(i64).range(0..))]
    calls: i64,
    /// Calls waiting for their answer at once.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    in_flight: usize,
    /// Call nap(SECS, i), which answers i after SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, conflicts_with = "echo")]
    nap: Option<f64>,
    /// Call echo([i, payload]) with a binary payload of BYTES bytes.
    #[arg(long, value_name = "BYTES", value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_PAYLOAD_BYTES))]
    echo: Option<usize>,
    /// Which of the server's echo methods `--echo` calls.
    #[arg(long, value_enum, default_value_t = Handler::Sync, requires = "echo")]
    handler: Handler,
    /// Calls made first, neither measured nor counted.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new())]
    warmup: usize,
    /// Also open N streams of count(ITEMS) at once.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new())]
    streams: usize,
    /// Items of each stream.
    #[arg(long, value_name = "ITEMS", default_value_t = 100)]
    items: u64,
    /// Stream binary items of this many bytes (`blobs`) instead of numbers
    /// (`count`).
    #[arg(long, value_name = "B", value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_PAYLOAD_BYTES))]
    item_bytes: Option<usize>,
    /// Open the streams of the inline twins of these methods
    /// (`count_inline`, `blobs_inline`), whose items the server makes on
    /// its I/O thread.
    #[arg(long, requires = "streams")]
    inline_streams: bool,
    /// Report the resident size of process PID (on this machine) before,
    /// during and after the measured calls.
    #[arg(long, value_name = "PID")]
    watch_rss: Option<u32>,
    /// Heartbeat interval in seconds; 0 disables heartbeats [default: the
    /// library's, 5].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    heartbeat: Option<f64>,
    /// Bytes of requests that may wait for one server reading slower than they
    /// are made [default: the library's, 64 MiB].
    #[arg(long, value_name = "BYTES")]
    send_queue_limit: Option<usize>,
    /// Call timeout in seconds (until the first answer); 0 waits for ever,
    /// relying on heartbeats [default: the library's, 30].
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    timeout: Option<f64>,
    /// Separate clients (ZeroMQ sockets) the calls are spread over.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=4096))]
    sockets: usize,
    /// Trace every call, reporting to the collector at ENDPOINT (as
    /// `zerorpc --trace-collector` does); the report gains `trace_reports`.
    #[arg(long, value_name = "ENDPOINT")]
    trace_collector: Option<String>,
}

/// How one call or stream ended.
enum Outcome {
    Ok,
    /// An answer, but not the expected one.
    Wrong,
    /// An error, as counted in the report.
    Failed(String),
}

impl From<zerorpc::Error> for Outcome {
    fn from(error: zerorpc::Error) -> Self {
        let kind = error.kind();
        // `{:#}` prints the causes too: each level's text describes only itself.
        Outcome::Failed(format!("{kind:?}: {:#}", anyhow::Error::from(error)))
    }
}

/// The counts printed at the end.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    wrong: u64,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Wrong => self.wrong += 1,
            Outcome::Failed(text) => {
                self.failed += 1;
                *self.errors.entry(text).or_default() += 1;
            }
        }
    }
}

/// What each call does.
#[derive(Clone, Copy, Debug)]
enum Method {
    Add,
    Nap(f64),
    Echo(usize, Handler),
}

/// The kinds of server method `--echo` can call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Handler {
    /// `echo`: a plain sync method, run on the blocking pool.
    Sync,
    /// `echo_inline`: a `#[zerorpc(inline)]` sync method.
    Inline,
    /// `echo_async`: an async method.
    Async,
    /// `echo_inline_async`: a `#[zerorpc(inline)]` async method that
    /// completes without waiting.
    InlineAsync,
}

impl Handler {
    fn method(self) -> &'static str {
        match self {
            Handler::Sync => "echo",
            Handler::Inline => "echo_inline",
            Handler::Async => "echo_async",
            Handler::InlineAsync => "echo_inline_async",
        }
    }
}

/// What each stream yields.
#[derive(Clone, Copy, Debug)]
enum Items {
    /// `count(n)`: the numbers `0..n`.
    Numbers,
    /// `blobs(n, bytes)`: `stream_item(i, bytes)` for `i` in `0..n`.
    Blobs(usize),
}

#[tokio::main]
async fn main() -> ExitCode {
    // As the `zerorpc` binaries do (see `tune_malloc`).
    zerorpc::transport::tune_malloc();
    let args = Args::parse();
    // On a worker, not on the main thread that runs `main`'s own future:
    // the client's socket is driven by a task of the runtime, which then
    // wakes the calls on the same thread.
    let ran = tokio::spawn(run(args))
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the load task failed: {e}")));
    match ran {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("zerorpc-load-client: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the load; true if everything was ok.
async fn run(args: Args) -> anyhow::Result<bool> {
    let tracer = tracer("zerorpc-load-client", args.trace_collector.as_deref())?;
    let clients = (0..args.sockets)
        .map(|_| {
            let mut builder = Client::builder();
            if let Some(tracer) = &tracer {
                builder = builder.traced(tracer);
            }
            for endpoint in &args.connect {
                builder = builder.connect(endpoint);
            }
            if let Some(secs) = args.heartbeat {
                builder = builder.heartbeat(optional_duration(secs));
            }
            if let Some(bytes) = args.send_queue_limit {
                builder = builder.send_queue_limit(bytes);
            }
            if let Some(secs) = args.timeout {
                builder = builder.timeout(optional_duration(secs));
            }
            builder.build()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot start the client")?;
    let method = match (args.nap, args.echo) {
        (Some(secs), _) => Method::Nap(secs),
        (None, Some(bytes)) => Method::Echo(bytes, args.handler),
        (None, None) => Method::Add,
    };
    let items = args.item_bytes.map_or(Items::Numbers, Items::Blobs);
    warm_up(&clients, method, args.warmup, args.in_flight).await?;
    let watch = args.watch_rss.map(RssWatch::start).transpose()?;

    let started = Instant::now();
    let mut tally = Tally::default();
    let mut latencies = Latencies::with_capacity(usize::try_from(args.calls).unwrap_or(0));
    if args.in_flight == 1 && args.streams == 0 {
        // One call at a time, each awaited before the next, as a program
        // calling in turn writes it. A set of futures would cost every
        // call a wake-up of another worker: `FuturesUnordered` wakes its
        // task again whenever it has polled all its futures.
        for i in 0..args.calls {
            let client = &clients[client_index(i, clients.len())];
            let (outcome, took) = timed_call(client, method, i).await;
            latencies.record(took);
            tally.add(outcome);
        }
    } else {
        let calls = stream::iter(0..args.calls)
            .map(|i| timed_call(&clients[client_index(i, clients.len())], method, i))
            .buffer_unordered(args.in_flight);
        let streams = stream::iter(0..args.streams)
            .map(|i| {
                let client = &clients[i % clients.len()];
                open_stream(client, items, args.items, args.inline_streams)
            })
            .buffer_unordered(args.streams.max(1));
        let mut outcomes = stream::select(
            calls.map(|(outcome, took)| (outcome, Some(took))),
            streams.map(|outcome| (outcome, None)),
        );
        while let Some((outcome, took)) = outcomes.next().await {
            if let Some(took) = took {
                latencies.record(took);
            }
            tally.add(outcome);
        }
    }
    let elapsed = started.elapsed();
    let watched_rss = watch.map(RssWatch::stop).transpose()?;

    let client_stats = client_stats(&clients);
    let mut report = serde_json::json!({
        "ok": tally.ok,
        "failed": tally.failed,
        "wrong": tally.wrong,
        "errors": tally.errors,
        "elapsed_s": elapsed.as_secs_f64(),
        "client_stats": client_stats,
    });
    if let Some(summary) = latencies.summary() {
        report["latency_us"] = summary.to_json();
    }
    if let Some(tracer) = &tracer {
        // The counters once what was reported has been handed on (or
        // dropped): read at once, they would count reports still queued
        // as unsent. After `elapsed`, so the figures do not pay for it.
        tracer.flush(TRACE_FLUSH);
        report["trace_reports"] = tracer_json(tracer);
    }
    if let Some(rss) = watched_rss {
        report["watched_rss"] = serde_json::json!({
            "start_bytes": rss.start,
            "peak_bytes": rss.peak,
            "end_bytes": rss.end,
        });
    }
    println!("{report}");
    Ok(tally.failed == 0 && tally.wrong == 0)
}

/// Makes `calls` calls of `method`, `in_flight` at a time; fails at the
/// first that does not succeed with the right answer.
async fn warm_up(
    clients: &[Client],
    method: Method,
    calls: usize,
    in_flight: usize,
) -> anyhow::Result<()> {
    let mut outcomes = stream::iter(0..calls)
        .map(|i| {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            call(&clients[client_index(i, clients.len())], method, i)
        })
        .buffer_unordered(in_flight);
    while let Some(outcome) = outcomes.next().await {
        match outcome {
            Outcome::Ok => {}
            Outcome::Wrong => bail!("a warm-up call answered something else than expected"),
            Outcome::Failed(text) => bail!("a warm-up call failed: {text}"),
        }
    }
    Ok(())
}

/// The resident size of a process, sampled by a thread until stopped.
struct RssWatch {
    start: u64,
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<u64>,
    pid: u32,
}

/// What an [`RssWatch`] saw, in bytes.
struct WatchedRss {
    start: u64,
    peak: u64,
    end: u64,
}

impl RssWatch {
    fn start(pid: u32) -> anyhow::Result<RssWatch> {
        let start = rss_of(pid)?;
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut peak = start;
                // Ends when told to, or when the process is gone.
                while !stop.load(Ordering::Relaxed) {
                    match ProcStatus::of(pid) {
                        Ok(status) => peak = peak.max(status.rss_bytes),
                        Err(_) => break,
                    }
                    std::thread::sleep(RSS_SAMPLE_EVERY);
                }
                peak
            }
        });
        Ok(RssWatch {
            start,
            stop,
            sampler,
            pid,
        })
    }

    fn stop(self) -> anyhow::Result<WatchedRss> {
        let end = rss_of(self.pid)?;
        self.stop.store(true, Ordering::Relaxed);
        let peak = self
            .sampler
            .join()
            .map_err(|_| anyhow::anyhow!("the RSS sampling thread panicked"))?;
        Ok(WatchedRss {
            start: self.start,
            peak: peak.max(end),
            end,
        })
    }
}

fn rss_of(pid: u32) -> anyhow::Result<u64> {
    Ok(ProcStatus::of(pid)
        .with_context(|| format!("cannot read the size of process {pid}"))?
        .rss_bytes)
}

/// The transport counters of all `clients` added up, their sum of drops
/// (`dropped`), and the process's `rss_bytes` and `threads`.
fn client_stats(clients: &[Client]) -> BTreeMap<&'static str, u64> {
    let mut stats = BTreeMap::new();
    for client in clients {
        let counters = client.stats();
        for (name, value) in counters.counters() {
            *stats.entry(name).or_default() += value;
        }
        *stats.entry("dropped").or_default() += counters.dropped();
    }
    if let Ok(process) = ProcStatus::current() {
        stats.insert("rss_bytes", process.rss_bytes);
        stats.insert("threads", process.threads);
    }
    stats
}

/// Which of `clients` clients makes call `i` (round robin).
fn client_index(i: i64, clients: usize) -> usize {
    // `i` is never negative and `clients` is at least 1.
    usize::try_from(i.unsigned_abs() % clients as u64).unwrap_or(0)
}

/// Makes call number `i`, checks its answer and says how long it took.
async fn timed_call(client: &Client, method: Method, i: i64) -> (Outcome, Duration) {
    let started = Instant::now();
    let outcome = call(client, method, i).await;
    (outcome, started.elapsed())
}

/// Makes call number `i` and checks its answer.
async fn call(client: &Client, method: Method, i: i64) -> Outcome {
    let (name, args) = match method {
        Method::Add => ("add", vec![Value::from(i), Value::from(1)]),
        Method::Nap(secs) => ("nap", vec![Value::F64(secs), Value::from(i)]),
        Method::Echo(bytes, handler) => (handler.method(), vec![echo_payload(i, bytes)]),
    };
    match client.invoke(name, args, CallOptions::new()).await {
        Ok(Response::Value(value)) if is_answer(method, i, &value) => Outcome::Ok,
        Ok(_) => Outcome::Wrong,
        Err(e) => e.into(),
    }
}

/// Whether `value` is the right answer to call `i` of `method`. Checked
/// in place rather than against a copy of what was sent, which cost the
/// client two allocations and a copy per call that no caller of a
/// service pays (as the raw baseline checks its round trips' numbers).
fn is_answer(method: Method, i: i64, value: &Value) -> bool {
    match method {
        Method::Add => value.as_i64() == Some(i.wrapping_add(1)),
        Method::Nap(_) => value.as_i64() == Some(i),
        Method::Echo(bytes, _) => is_echo_payload(value, i, bytes),
    }
}

/// Opens a stream of `count(items)` or `blobs(items, bytes)` (or of their
/// `inline` twins) and checks it yields the `items` expected items in order.
async fn open_stream(client: &Client, kind: Items, items: u64, inline: bool) -> Outcome {
    let opened = match (kind, inline) {
        (Items::Numbers, false) => client.stream::<Value>("count", (items,)).await,
        (Items::Numbers, true) => client.stream::<Value>("count_inline", (items,)).await,
        (Items::Blobs(bytes), false) => client.stream::<Value>("blobs", (items, bytes)).await,
        (Items::Blobs(bytes), true) => {
            let args = (items, bytes);
            client.stream::<Value>("blobs_inline", args).await
        }
    };
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(e) => return e.into(),
    };
    let mut expected = 0;
    while let Some(item) = stream.next().await {
        let item = match item {
            Ok(item) => item,
            Err(e) => return e.into(),
        };
        let right = expected < items
            && match (kind, &item) {
                (Items::Numbers, Value::Integer(n)) => n.as_u64() == Some(expected),
                (Items::Blobs(bytes), Value::Binary(blob)) => is_stream_item(blob, expected, bytes),
                _ => false,
            };
        if !right {
            return Outcome::Wrong;
        }
        expected += 1;
    }
    if expected == items {
        Outcome::Ok
    } else {
        Outcome::Wrong
    }
}
