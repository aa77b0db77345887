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
//!   argument;
//! * otherwise `add(i, 1)`: the answer must be `i + 1`.
//!
//! With `--streams N`, it also opens N streams of `count(--items)` at once,
//! each of which must yield exactly `0, 1, ..., items - 1`.
//!
//! At the end it prints one JSON line on stdout:
//!
//! ```text
//! {"ok":9998,"failed":1,"wrong":1,"errors":{"Timeout: ...":1},"elapsed_s":2.5,"client_stats":{...}}
//! ```
//!
//! `ok`, `failed` and `wrong` count calls and streams: `failed` ended with
//! an error, whose text (prefixed with its kind, e.g. `LostRemote: ...`)
//! is counted in `errors`; `wrong` answered something else than expected
//! (a stream is wrong if an item is out of order or missing). `elapsed_s`
//! is the time from the first call to the last answer; `client_stats` has
//! the transport counters of the clients' sockets added up (`sent`,
//! `received`, `dropped_*`, `queued_peak`... and `dropped`, their sum of
//! losses) and the client process's `rss_bytes` and `threads`, at the end.
//!
//! Exit status: 0 if every call and stream was ok, 1 otherwise or if the
//! client could not start (the reason on stderr), 2 on a bad command line.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use clap::builder::RangedU64ValueParser;
use futures::StreamExt;
use futures::stream;
use zerorpc::{CallOptions, Client, Response, Value};
use zerorpc_load::{ProcStatus, optional_duration, parse_seconds};

/// The largest `--echo` payload: a bound on what one bad flag can allocate.
const MAX_ECHO_BYTES: u64 = 64 << 20;

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
    #[arg(long, value_name = "BYTES", value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_ECHO_BYTES))]
    echo: Option<usize>,
    /// Also open N streams of count(ITEMS) at once.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = RangedU64ValueParser::<usize>::new())]
    streams: usize,
    /// Items of each stream.
    #[arg(long, value_name = "ITEMS", default_value_t = 100)]
    items: u64,
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
    Echo(usize),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
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
    let clients = (0..args.sockets)
        .map(|_| {
            let mut builder = Client::builder();
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
        (None, Some(bytes)) => Method::Echo(bytes),
        (None, None) => Method::Add,
    };

    let started = Instant::now();
    let calls = stream::iter(0..args.calls)
        .map(|i| call(&clients[client_index(i, clients.len())], method, i))
        .buffer_unordered(args.in_flight);
    let streams = stream::iter(0..args.streams)
        .map(|i| count(&clients[i % clients.len()], args.items))
        .buffer_unordered(args.streams.max(1));
    let mut tally = Tally::default();
    let mut outcomes = stream::select(calls, streams);
    while let Some(outcome) = outcomes.next().await {
        tally.add(outcome);
    }
    let elapsed = started.elapsed();

    let client_stats = client_stats(&clients);
    let report = serde_json::json!({
        "ok": tally.ok,
        "failed": tally.failed,
        "wrong": tally.wrong,
        "errors": tally.errors,
        "elapsed_s": elapsed.as_secs_f64(),
        "client_stats": client_stats,
    });
    println!("{report}");
    Ok(tally.failed == 0 && tally.wrong == 0)
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

/// Makes call number `i` and checks its answer.
async fn call(client: &Client, method: Method, i: i64) -> Outcome {
    let (name, args, expected) = match method {
        Method::Add => (
            "add",
            vec![Value::from(i), Value::from(1)],
            Value::from(i.wrapping_add(1)),
        ),
        Method::Nap(secs) => (
            "nap",
            vec![Value::F64(secs), Value::from(i)],
            Value::from(i),
        ),
        Method::Echo(bytes) => {
            let payload = Value::Array(vec![Value::from(i), Value::Binary(vec![b'x'; bytes])]);
            ("echo", vec![payload.clone()], payload)
        }
    };
    match client.invoke(name, args, CallOptions::new()).await {
        Ok(Response::Value(value)) if value == expected => Outcome::Ok,
        Ok(_) => Outcome::Wrong,
        Err(e) => e.into(),
    }
}

/// Opens a stream of `count(items)` and checks it yields `0..items` in order.
async fn count(client: &Client, items: u64) -> Outcome {
    let mut stream = match client.stream::<u64>("count", (items,)).await {
        Ok(stream) => stream,
        Err(e) => return e.into(),
    };
    let mut expected = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(n) if n == expected && n < items => expected += 1,
            Ok(_) => return Outcome::Wrong,
            Err(e) => return e.into(),
        }
    }
    if expected == items {
        Outcome::Ok
    } else {
        Outcome::Wrong
    }
}
