//! The workloads of the suite: the processes each starts, the figures it
//! reads from their reports, and the rows of the tables they fill.
//!
//! A [`Job`] is one measurement (one server and its clients, started
//! afresh for every run); a [`Row`](super::table::Row) of the tables shows up to three jobs
//! side by side (raw libzmq, ours, zerorpc-python), with a fourth, its
//! floor, in its note, and several rows may share a job: the raw
//! sequential round trip is the baseline of every latency row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::process::{Peer, free_tcp_endpoint};

/// Bound on a server becoming ready.
const START: Duration = Duration::from_secs(30);

/// Bound on one run of a job's clients: a safety net far above what any
/// run needs, even in a debug build.
const RUN: Duration = Duration::from_secs(300);

/// The call timeout our clients get: a safety net too.
const CALL_TIMEOUT: &str = "120";

/// Bytes of each call's payload and of each small stream item.
pub(crate) const SMALL: usize = 64;

/// Bytes of each large stream item.
pub(crate) const LARGE: usize = 64 << 10;

/// How long each of the calls kept in flight for the memory figure waits
/// before answering: long enough for all of them to be in flight at once.
const NAP_FULL: &str = "2";
const NAP_QUICK: &str = "0.5";

/// What `--quick` divides the amounts of work by, and the least it leaves.
const QUICK_DIVISOR: u64 = 20;
const QUICK_LEAST: u64 = 100;

/// Full or quick: how much work each job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    Full,
    Quick,
}

impl Scale {
    /// `full` units of work, scaled.
    pub(crate) fn scaled(self, full: u64) -> u64 {
        match self {
            Scale::Full => full,
            Scale::Quick => (full / QUICK_DIVISOR).max(QUICK_LEAST),
        }
    }

    /// Unmeasured calls before the measured ones.
    fn warmup(self, full: u64) -> u64 {
        match self {
            Scale::Full => full,
            Scale::Quick => 20,
        }
    }

    /// Calls in flight for the memory figure (each a call that waits).
    pub(crate) fn rss_in_flight(self) -> u64 {
        match self {
            Scale::Full => 10_000,
            Scale::Quick => 1_000,
        }
    }

    /// Streams at once, and items in each, of the "many streams" memory
    /// figures.
    pub(crate) fn rss_streams(self) -> u64 {
        match self {
            Scale::Full => 1_000,
            Scale::Quick => 100,
        }
    }

    /// Calls made before the "after many calls" memory figure.
    pub(crate) fn rss_calls(self) -> u64 {
        match self {
            Scale::Full => 1_000_000,
            Scale::Quick => 10_000,
        }
    }
}

/// The kinds of method a call can reach on the load server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Handler {
    Inline,
    Async,
    Sync,
    InlineAsync,
}

impl Handler {
    /// The load client's `--handler`.
    fn flag(self) -> &'static str {
        match self {
            Handler::Inline => "inline",
            Handler::Async => "async",
            Handler::Sync => "sync",
            Handler::InlineAsync => "inline-async",
        }
    }
}

/// Where a [`Job::FloorCalls`] hands its messages from thread to thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Handoffs {
    /// Nowhere: each end's socket is used by the thread that makes or
    /// answers the round trips.
    None,
    /// On the client: the caller reaches its DEALER through an I/O thread.
    Client,
    /// On the server only, where a worker thread makes the replies the
    /// ROUTER's thread sends.
    Server,
}

/// Which end of a [`Job::SplitCalls`] is ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum OurEnd {
    /// Our client (`zerorpc-load-client`), the codec floor's server.
    Client,
    /// The codec floor's client, our server (`zerorpc-load-server`).
    Server,
}

/// One measurement, run afresh (new server, new clients) each time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Job {
    /// DEALER/ROUTER round trips of [`SMALL`] bytes: `clients` processes,
    /// each with `in_flight` waiting at once.
    RawCalls { clients: usize, in_flight: usize },
    /// One DEALER's round trips, one at a time, to the ROUTER through
    /// libzmq's own proxy (`zmq_proxy`): the floor for a relay.
    RawRelayCalls,
    /// PUSH/PULL one way, items of `item_bytes`.
    RawStream { item_bytes: usize },
    /// One client's raw round trips, `in_flight` at once, with what our
    /// design or the protocol cannot do without added, and nothing else:
    /// thread hand-offs (`zerorpc-bench-raw --handoff`), events of our
    /// codec (`--codec`) and, with them, trace keys and reports to a sink
    /// (`--traced`). A floor of our calls.
    FloorCalls {
        in_flight: usize,
        handoffs: Handoffs,
        codec: bool,
        traced: bool,
    },
    /// One client's calls of the inline echo method, `in_flight` at once,
    /// with one end ours and the other the codec floor's (`zerorpc-bench-raw
    /// call --codec` or `echo --codec`): which end of our calls holds them
    /// below their floor.
    SplitCalls { in_flight: usize, ours: OurEnd },
    /// A stream framed as the protocol frames one, `[id, "", item]` from
    /// a ROUTER to a DEALER (`stream-serve`, `stream-take`), items of
    /// `item_bytes`, each a `STREAM` event of our codec if `codec`. A floor
    /// of our streams.
    FloorStream { item_bytes: usize, codec: bool },
    /// Our calls of an echo method with a [`SMALL`]-byte payload.
    Calls {
        handler: Handler,
        clients: usize,
        in_flight: usize,
        through_hub: bool,
    },
    /// Our calls of an echo method, `in_flight` at once, the server driven
    /// by its tokio runtime (`zerorpc-load-server --io-on-runtime`).
    RuntimeServerCalls { handler: Handler, in_flight: usize },
    /// Our calls of an echo method, one client with `in_flight` waiting,
    /// client and server traced and reporting to a collector.
    TracedCalls { handler: Handler, in_flight: usize },
    /// One of our streams, items of `item_bytes`.
    Stream { item_bytes: usize },
    /// One of our streams, items of `item_bytes`, the server driven by its
    /// tokio runtime.
    RuntimeServerStream { item_bytes: usize },
    /// One of our streams from a `#[zerorpc(inline)]` method, made on the
    /// server's I/O thread, items of `item_bytes`.
    InlineStream { item_bytes: usize },
    /// Our server's memory with [`Scale::rss_in_flight`] calls in flight.
    RssInFlight,
    /// Our server's memory while [`Scale::rss_streams`] streams of as many
    /// [`SMALL`]-byte items run at once, made by tasks or, if `inline`, on
    /// the I/O thread.
    RssStreams { inline: bool },
    /// Our server's memory before and after [`Scale::rss_calls`] calls.
    RssAfterCalls,
    /// zerorpc-python calls of `echo`, `in_flight` greenlets at once.
    PythonCalls { in_flight: usize },
    /// One zerorpc-python stream, items of `item_bytes`.
    PythonStream { item_bytes: usize },
    /// gRPC unary calls (tonic, `zerorpc-bench-grpc`) of a [`SMALL`]-byte
    /// payload, `in_flight` at once over one connection.
    GrpcCalls { in_flight: usize },
    /// One gRPC server-streaming call (tonic), items of `item_bytes`.
    GrpcStream { item_bytes: usize },
}

impl Job {
    pub(crate) fn is_python(self) -> bool {
        matches!(self, Job::PythonCalls { .. } | Job::PythonStream { .. })
    }

    /// A short name for progress lines.
    pub(crate) fn name(self) -> String {
        match self {
            Job::RawCalls { clients, in_flight } => {
                format!("raw round trips, {clients} client(s) x {in_flight} in flight")
            }
            Job::RawRelayCalls => "raw round trips through zmq_proxy".to_owned(),
            Job::RawStream { item_bytes } => format!("raw push/pull, {item_bytes}-byte items"),
            Job::FloorCalls {
                in_flight,
                handoffs,
                codec,
                traced,
            } => format!(
                "floor: round trips, {in_flight} in flight{}{}{}",
                match handoffs {
                    Handoffs::None => "",
                    Handoffs::Client => ", client hand-offs",
                    Handoffs::Server => ", server hand-offs",
                },
                if codec { ", codec" } else { "" },
                if traced { ", traced" } else { "" }
            ),
            Job::SplitCalls { in_flight, ours } => format!(
                "split: {} with the codec floor's {}, {in_flight} in flight",
                match ours {
                    OurEnd::Client => "our client",
                    OurEnd::Server => "our server",
                },
                match ours {
                    OurEnd::Client => "server",
                    OurEnd::Server => "client",
                },
            ),
            Job::FloorStream { item_bytes, codec } => format!(
                "floor: router to dealer, {item_bytes}-byte items{}",
                if codec { ", codec" } else { "" }
            ),
            Job::Calls {
                handler,
                clients,
                in_flight,
                through_hub,
            } => format!(
                "calls ({}), {clients} client(s) x {in_flight} in flight{}",
                handler.flag(),
                if through_hub { ", through the hub" } else { "" }
            ),
            Job::RuntimeServerCalls { handler, in_flight } => format!(
                "calls ({}), 1 client(s) x {in_flight} in flight, server on its runtime",
                handler.flag()
            ),
            Job::TracedCalls { handler, in_flight } => format!(
                "traced calls ({}), 1 client(s) x {in_flight} in flight",
                handler.flag()
            ),
            Job::Stream { item_bytes } => format!("stream, {item_bytes}-byte items"),
            Job::RuntimeServerStream { item_bytes } => {
                format!("stream, {item_bytes}-byte items, server on its runtime")
            }
            Job::InlineStream { item_bytes } => {
                format!("inline stream, {item_bytes}-byte items")
            }
            Job::RssInFlight => "server memory, calls in flight".to_owned(),
            Job::RssStreams { inline: false } => "server memory, many streams".to_owned(),
            Job::RssStreams { inline: true } => "server memory, many inline streams".to_owned(),
            Job::RssAfterCalls => "server memory, many calls".to_owned(),
            Job::PythonCalls { in_flight } => {
                format!("zerorpc-python calls, {in_flight} in flight")
            }
            Job::PythonStream { item_bytes } => {
                format!("zerorpc-python stream, {item_bytes}-byte items")
            }
            Job::GrpcCalls { in_flight } => format!("gRPC (tonic) calls, {in_flight} in flight"),
            Job::GrpcStream { item_bytes } => {
                format!("gRPC (tonic) stream, {item_bytes}-byte items")
            }
        }
    }
}

/// What a job's runs report; each row shows some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Metric {
    /// Median call latency, µs.
    P50,
    /// 99th percentile call latency, µs.
    P99,
    /// The run's time divided by its calls, µs: the mean latency when
    /// calls are made one at a time.
    Mean,
    /// Calls or items per second.
    PerSecond,
    /// Payload bytes per second, in MB (10^6 bytes).
    MegabytesPerSecond,
    /// The server's resident size when the measured calls start, MiB.
    RssStart,
    /// The largest seen while they ran, MiB.
    RssPeak,
    /// After the last answer, MiB.
    RssEnd,
}

impl Metric {
    /// Its name and unit, for progress lines.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Metric::P50 => "p50 µs",
            Metric::P99 => "p99 µs",
            Metric::Mean => "mean µs",
            Metric::PerSecond => "per s",
            Metric::MegabytesPerSecond => "MB/s",
            Metric::RssStart => "RSS at start MiB",
            Metric::RssPeak => "peak MiB",
            Metric::RssEnd => "at end MiB",
        }
    }

    /// Whether a smaller figure is the better one.
    pub(crate) fn lower_is_better(self) -> bool {
        matches!(
            self,
            Metric::P50
                | Metric::P99
                | Metric::Mean
                | Metric::RssStart
                | Metric::RssPeak
                | Metric::RssEnd
        )
    }
}

/// The figures of one run of a job.
pub(crate) type Figures = BTreeMap<Metric, f64>;

/// The programs the jobs run.
#[derive(Clone, Debug)]
pub(crate) struct Programs {
    pub(crate) load_server: PathBuf,
    pub(crate) load_client: PathBuf,
    pub(crate) raw: PathBuf,
    /// `zerorpc-bench-grpc`: the same workloads over gRPC (tonic).
    pub(crate) grpc: PathBuf,
    pub(crate) hub: PathBuf,
    /// The `zerorpc` command line, for `zerorpc collector`.
    pub(crate) zerorpc: PathBuf,
    /// The interpreter with zerorpc-python and the peer script, if any.
    pub(crate) python: Option<(PathBuf, PathBuf)>,
}

/// Runs jobs at one scale with one set of programs.
pub(crate) struct Runner {
    pub(crate) programs: Programs,
    pub(crate) scale: Scale,
}

impl Runner {
    /// Runs `job` once, checking that every call and item arrived right.
    pub(crate) fn run(&self, job: Job) -> anyhow::Result<Figures> {
        let scale = self.scale;
        match job {
            Job::RawCalls { clients, in_flight } => {
                let calls = scale.scaled(raw_calls(clients, in_flight));
                let mut server = self.spawn_raw("echo", &[])?;
                let endpoint = server.wait_listening(START)?;
                let args = call_args(&endpoint, calls, in_flight, scale.warmup(1000));
                let peers = (0..clients)
                    .map(|_| self.spawn_raw("call", &args))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                call_figures(peers, calls)
            }
            Job::RawRelayCalls => {
                let calls = scale.scaled(raw_calls(1, 1));
                let mut server = self.spawn_raw("echo", &[])?;
                let echo = server.wait_listening(START)?;
                let mut relay = self.spawn_raw("relay", &strings(&["--connect", &echo]))?;
                let endpoint = relay.wait_listening(START)?;
                let args = call_args(&endpoint, calls, 1, scale.warmup(1000));
                call_figures(vec![self.spawn_raw("call", &args)?], calls)
            }
            Job::RawStream { item_bytes } => {
                let items = scale.scaled(raw_items(item_bytes));
                let mut transfer = transfer_args(items, item_bytes);
                let mut pull = self.spawn_raw("pull", &transfer)?;
                transfer.extend(["--connect".to_owned(), pull.wait_listening(START)?]);
                let mut push = self.spawn_raw("push", &transfer)?;
                let report = pull.json_result(RUN)?;
                let status = push.wait(RUN)?;
                if !status.success() {
                    bail!("zerorpc-bench-raw push failed ({status})");
                }
                check_all_ok(&report, 1)?;
                stream_figures(&report, items, item_bytes)
            }
            Job::FloorCalls {
                in_flight,
                handoffs,
                codec,
                traced,
            } => {
                let calls = scale.scaled(raw_calls(1, in_flight));
                let mut echo_flags = Vec::new();
                let mut call_flags = Vec::new();
                if handoffs == Handoffs::Server {
                    echo_flags.push("--handoff".to_owned());
                }
                if handoffs == Handoffs::Client {
                    call_flags.push("--handoff".to_owned());
                }
                if codec {
                    echo_flags.push("--codec".to_owned());
                    call_flags.push("--codec".to_owned());
                }
                let mut sink = None;
                if traced {
                    let mut started = self.spawn_raw("sink", &[])?;
                    let endpoint = started.wait_listening(START)?;
                    for flags in [&mut echo_flags, &mut call_flags] {
                        flags.extend(["--traced".to_owned(), endpoint.clone()]);
                    }
                    sink = Some(started);
                }
                let mut server = self.spawn_raw("echo", &echo_flags)?;
                let endpoint = server.wait_listening(START)?;
                let mut args = call_args(&endpoint, calls, in_flight, scale.warmup(1000));
                args.extend(call_flags);
                let figures = call_figures(vec![self.spawn_raw("call", &args)?], calls);
                drop(sink);
                figures
            }
            Job::SplitCalls { in_flight, ours } => {
                let calls = scale.scaled(our_calls(1, in_flight, false));
                let warmup = scale.warmup(1000);
                match ours {
                    OurEnd::Server => {
                        let (_, _server, endpoint) = self.start_load_server(false)?;
                        let mut args = call_args(&endpoint, calls, in_flight, warmup);
                        args.push("--codec".to_owned());
                        call_figures(vec![self.spawn_raw("call", &args)?], calls)
                    }
                    OurEnd::Client => {
                        let mut server = self.spawn_raw("echo", &strings(&["--codec"]))?;
                        let endpoint = server.wait_listening(START)?;
                        let mut args = call_args(&endpoint, calls, in_flight, warmup);
                        args.extend(strings(&[
                            "--echo",
                            "64",
                            "--handler",
                            Handler::Inline.flag(),
                        ]));
                        call_figures(vec![self.spawn_load_client(&args)?], calls)
                    }
                }
            }
            Job::FloorStream { item_bytes, codec } => {
                let items = scale.scaled(raw_items(item_bytes));
                let mut transfer = transfer_args(items, item_bytes);
                if codec {
                    transfer.push("--codec".to_owned());
                }
                let mut serve = self.spawn_raw("stream-serve", &transfer)?;
                transfer.extend(["--connect".to_owned(), serve.wait_listening(START)?]);
                let report = self.spawn_raw("stream-take", &transfer)?.json_result(RUN)?;
                check_all_ok(&report, 1)?;
                stream_figures(&report, items, item_bytes)
            }
            Job::Calls {
                handler,
                clients,
                in_flight,
                through_hub,
            } => {
                let calls = scale.scaled(our_calls(clients, in_flight, through_hub));
                let (_hub, _server, endpoint) = self.start_load_server(through_hub)?;
                let mut args = call_args(&endpoint, calls, in_flight, scale.warmup(1000));
                args.extend(strings(&["--echo", "64", "--handler", handler.flag()]));
                let peers = (0..clients)
                    .map(|_| self.spawn_load_client(&args))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                call_figures(peers, calls)
            }
            Job::RuntimeServerCalls { handler, in_flight } => {
                let calls = scale.scaled(our_calls(1, in_flight, false));
                let (_server, endpoint) = self.start_runtime_server()?;
                let mut args = call_args(&endpoint, calls, in_flight, scale.warmup(1000));
                args.extend(strings(&["--echo", "64", "--handler", handler.flag()]));
                call_figures(vec![self.spawn_load_client(&args)?], calls)
            }
            Job::TracedCalls { handler, in_flight } => {
                let calls = scale.scaled(our_calls(1, in_flight, false));
                let (_collector, collector) = self.start_collector()?;
                let trace = ["--trace-collector".to_owned(), collector];
                let mut server = Command::new(&self.programs.load_server);
                server.args(&trace);
                let mut server = Peer::spawn("zerorpc-load-server", server)?;
                let endpoint = server.wait_listening(START)?;
                let mut args = call_args(&endpoint, calls, in_flight, scale.warmup(1000));
                args.extend(strings(&["--echo", "64", "--handler", handler.flag()]));
                args.extend(trace);
                let report = self.spawn_load_client(&args)?.json_result(RUN)?;
                check_all_ok(&report, calls)?;
                let dropped = &report["trace_reports"]["dropped_queue_full"];
                if dropped.as_u64().is_none() {
                    bail!("the traced client reported no trace_reports: {report}");
                }
                let mut figures = Figures::new();
                figures.insert(Metric::PerSecond, calls as f64 / elapsed(&report)?);
                Ok(figures)
            }
            Job::Stream { item_bytes }
            | Job::RuntimeServerStream { item_bytes }
            | Job::InlineStream { item_bytes } => {
                let items = scale.scaled(if item_bytes == LARGE { 10_000 } else { 300_000 });
                let (_hub, _server, endpoint) = match job {
                    Job::RuntimeServerStream { .. } => {
                        let (server, endpoint) = self.start_runtime_server()?;
                        (None, Some(server), endpoint)
                    }
                    _ => self.start_load_server(false)?,
                };
                let mut args = call_args(&endpoint, 0, 1, scale.warmup(100));
                args.extend(strings(&["--streams", "1"]));
                args.extend(["--items".to_owned(), items.to_string()]);
                args.extend(["--item-bytes".to_owned(), item_bytes.to_string()]);
                if matches!(job, Job::InlineStream { .. }) {
                    args.push("--inline-streams".to_owned());
                }
                let report = self.spawn_load_client(&args)?.json_result(RUN)?;
                check_all_ok(&report, 1)?;
                stream_figures(&report, items, item_bytes)
            }
            Job::RssInFlight | Job::RssAfterCalls | Job::RssStreams { .. } => {
                self.server_memory(job)
            }
            Job::GrpcCalls { in_flight } => {
                let calls = scale.scaled(our_calls(1, in_flight, false));
                let mut server = self.spawn_grpc("serve", &[])?;
                let url = server.wait_listening(START)?;
                let mut args = call_args(&url, calls, in_flight, scale.warmup(1000));
                args.extend(strings(&["--bytes", "64"]));
                call_figures(vec![self.spawn_grpc("call", &args)?], calls)
            }
            Job::GrpcStream { item_bytes } => {
                // HTTP/2 packs small messages many to a frame: as many
                // items as a raw stream, so that the run lasts long enough
                // to be timed.
                let items = scale.scaled(raw_items(item_bytes));
                let mut server = self.spawn_grpc("serve", &[])?;
                let mut args = transfer_args(items, item_bytes);
                args.extend(["--connect".to_owned(), server.wait_listening(START)?]);
                let report = self.spawn_grpc("stream", &args)?.json_result(RUN)?;
                check_all_ok(&report, 1)?;
                stream_figures(&report, items, item_bytes)
            }
            Job::PythonCalls { in_flight } => {
                let calls = scale.scaled(if in_flight == 1 { 3_000 } else { 5_000 });
                let (_server, endpoint) = self.start_python_server()?;
                let mut args = strings(&["client"]);
                args.extend(call_args(&endpoint, calls, in_flight, scale.warmup(200)));
                args.extend(strings(&["--bytes", "64"]));
                call_figures(vec![self.spawn_python(&args)?], calls)
            }
            Job::PythonStream { item_bytes } => {
                let items = scale.scaled(if item_bytes == LARGE { 5_000 } else { 30_000 });
                let (_server, endpoint) = self.start_python_server()?;
                let mut args = strings(&["client", "--connect", &endpoint]);
                args.extend(["--stream-items".to_owned(), items.to_string()]);
                args.extend(["--item-bytes".to_owned(), item_bytes.to_string()]);
                let report = self.spawn_python(&args)?.json_result(RUN)?;
                check_all_ok(&report, 1)?;
                stream_figures(&report, items, item_bytes)
            }
        }
    }

    /// The server's size while many calls or streams wait in it, or before
    /// and after many quick calls.
    fn server_memory(&self, job: Job) -> anyhow::Result<Figures> {
        let (_hub, server, endpoint) = self.start_load_server(false)?;
        let server = server.context("a direct server")?;
        if let Job::RssStreams { inline } = job {
            let streams = self.scale.rss_streams();
            let mut args = call_args(&endpoint, 0, 1, 0);
            args.extend(["--streams".to_owned(), streams.to_string()]);
            args.extend(["--items".to_owned(), streams.to_string()]);
            args.extend(["--item-bytes".to_owned(), SMALL.to_string()]);
            if inline {
                args.push("--inline-streams".to_owned());
            }
            args.extend(["--watch-rss".to_owned(), server.pid().to_string()]);
            let report = self.spawn_load_client(&args)?.json_result(RUN)?;
            check_all_ok(&report, streams)?;
            let items = streams * streams;
            return watched_rss(&report, items as f64 / elapsed(&report)?);
        }
        let (calls, in_flight, method) = if job == Job::RssInFlight {
            let calls = self.scale.rss_in_flight();
            let nap = match self.scale {
                Scale::Full => NAP_FULL,
                Scale::Quick => NAP_QUICK,
            };
            (calls, calls, vec!["--nap".to_owned(), nap.to_owned()])
        } else {
            (self.scale.rss_calls(), 100, Vec::new())
        };
        let mut args = call_args(&endpoint, calls, usize_of(in_flight), 0);
        args.extend(method);
        args.extend(["--watch-rss".to_owned(), server.pid().to_string()]);
        let report = self.spawn_load_client(&args)?.json_result(RUN)?;
        check_all_ok(&report, calls)?;
        watched_rss(&report, calls as f64 / elapsed(&report)?)
    }

    /// A load server, bound or behind a hub; returns the hub, the server
    /// and the endpoint for clients.
    fn start_load_server(
        &self,
        through_hub: bool,
    ) -> anyhow::Result<(Option<Peer>, Option<Peer>, String)> {
        let programs = &self.programs;
        if !through_hub {
            let mut server =
                Peer::spawn("zerorpc-load-server", Command::new(&programs.load_server))?;
            let endpoint = server.wait_listening(START)?;
            return Ok((None, Some(server), endpoint));
        }
        let (front, back) = (free_tcp_endpoint()?, free_tcp_endpoint()?);
        let mut hub = Command::new(&programs.hub);
        // Calls made before the worker is connected wait for it (the
        // clients' warm-up), rather than failing.
        hub.args(["--in", &front, "--out", &back, "--type", "queue"])
            .args(["--name", "bench", "--queue-timeout", CALL_TIMEOUT]);
        let mut hub = Peer::spawn("zerorpc-hub", hub)?;
        hub.wait_for_line("zerorpc-hub: bench", true, START)?;
        let mut server = Command::new(&programs.load_server);
        server.args(["--connect", &back]);
        let mut server = Peer::spawn("zerorpc-load-server", server)?;
        server.wait_for_line("connected", false, START)?;
        Ok((Some(hub), Some(server), front))
    }

    /// `zerorpc-load-server --io-on-runtime`, and the endpoint it listens on.
    fn start_runtime_server(&self) -> anyhow::Result<(Peer, String)> {
        let mut server = Command::new(&self.programs.load_server);
        server.arg("--io-on-runtime");
        let mut server = Peer::spawn("zerorpc-load-server", server)?;
        let endpoint = server.wait_listening(START)?;
        Ok((server, endpoint))
    }

    /// `zerorpc collector`, keeping reports in memory; returns it and the
    /// endpoint reports go to.
    fn start_collector(&self) -> anyhow::Result<(Peer, String)> {
        let endpoint = free_tcp_endpoint()?;
        let mut collector = Command::new(&self.programs.zerorpc);
        collector.args(["collector", "--bind", &endpoint]);
        let mut collector = Peer::spawn("zerorpc collector", collector)?;
        collector.wait_for_line("collecting trace reports", true, START)?;
        Ok((collector, endpoint))
    }

    fn start_python_server(&self) -> anyhow::Result<(Peer, String)> {
        let endpoint = free_tcp_endpoint()?;
        let mut server = self.spawn_python(&strings(&["server", "--bind", &endpoint]))?;
        server.wait_listening(START)?;
        Ok((server, endpoint))
    }

    fn spawn_raw(&self, subcommand: &str, args: &[String]) -> anyhow::Result<Peer> {
        let mut command = Command::new(&self.programs.raw);
        command.arg(subcommand).args(args);
        Peer::spawn("zerorpc-bench-raw", command)
    }

    fn spawn_grpc(&self, subcommand: &str, args: &[String]) -> anyhow::Result<Peer> {
        let mut command = Command::new(&self.programs.grpc);
        command.arg(subcommand).args(args);
        Peer::spawn("zerorpc-bench-grpc", command)
    }

    fn spawn_load_client(&self, args: &[String]) -> anyhow::Result<Peer> {
        let mut command = Command::new(&self.programs.load_client);
        command.args(args).args(["--timeout", CALL_TIMEOUT]);
        Peer::spawn("zerorpc-load-client", command)
    }

    fn spawn_python(&self, args: &[String]) -> anyhow::Result<Peer> {
        let (python, script) = self
            .programs
            .python
            .as_ref()
            .context("zerorpc-python is not available")?;
        let mut command = Command::new(python);
        command.arg(script).args(args);
        Peer::spawn("zerorpc-python", command)
    }
}

/// `add(i, 1)` calls from `client` to `server` (any revision's
/// `zerorpc-load-client` and `zerorpc-load-server`: only the flags every
/// revision has), `in_flight` at a time.
pub(crate) fn add_calls(
    server: &Path,
    client: &Path,
    calls: u64,
    in_flight: usize,
) -> anyhow::Result<Figures> {
    let mut server = Peer::spawn("zerorpc-load-server", Command::new(server))?;
    let endpoint = server.wait_listening(START)?;
    let mut command = Command::new(client);
    command
        .args(["--connect", &endpoint, "--calls", &calls.to_string()])
        .args(["--in-flight", &in_flight.to_string()]);
    let report = Peer::spawn("zerorpc-load-client", command)?.json_result(RUN)?;
    check_all_ok(&report, calls)?;
    let seconds = elapsed(&report)?;
    let mut figures = Figures::from([
        (Metric::PerSecond, calls as f64 / seconds),
        (Metric::Mean, seconds * 1e6 / calls as f64),
    ]);
    // Older revisions report no latencies.
    for (metric, key) in [(Metric::P50, "p50"), (Metric::P99, "p99")] {
        if let Some(micros) = report["latency_us"][key].as_f64() {
            figures.insert(metric, micros);
        }
    }
    Ok(figures)
}

/// Measured round trips per raw client, at full scale.
fn raw_calls(clients: usize, in_flight: usize) -> u64 {
    match (clients, in_flight) {
        (1, 1) => 20_000,
        (1, 16) => 200_000,
        (1, _) => 400_000,
        _ => 100_000,
    }
}

/// Items of a raw stream (or its floors), at full scale.
fn raw_items(item_bytes: usize) -> u64 {
    if item_bytes == LARGE {
        30_000
    } else {
        3_000_000
    }
}

/// Measured calls per client of ours, at full scale.
fn our_calls(clients: usize, in_flight: usize, through_hub: bool) -> u64 {
    match (clients, in_flight, through_hub) {
        (1, 1, true) => 5_000,
        (1, 1, false) => 10_000,
        (1, 16, _) => 60_000,
        // Long enough (a second or two) that a neighbour's burst on the
        // machine is a part of a run, not all of it.
        (1, _, true) => 200_000,
        (1, _, false) => 300_000,
        _ => 30_000,
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&arg| arg.to_owned()).collect()
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `zerorpc-bench-raw`'s arguments for a transfer of `items` items of
/// `item_bytes` bytes.
fn transfer_args(items: u64, item_bytes: usize) -> Vec<String> {
    vec![
        "--items".to_owned(),
        items.to_string(),
        "--bytes".to_owned(),
        item_bytes.to_string(),
    ]
}

/// The flags every call-making client takes (ours, raw and Python alike).
fn call_args(endpoint: &str, calls: u64, in_flight: usize, warmup: u64) -> Vec<String> {
    vec![
        "--connect".to_owned(),
        endpoint.to_owned(),
        "--calls".to_owned(),
        calls.to_string(),
        "--in-flight".to_owned(),
        in_flight.to_string(),
        "--warmup".to_owned(),
        warmup.to_string(),
    ]
}

/// Waits for the clients, each making `calls` calls, and sums up their
/// reports: calls per second over all of them, and with one client its
/// latencies.
fn call_figures(mut clients: Vec<Peer>, calls: u64) -> anyhow::Result<Figures> {
    let mut reports = Vec::with_capacity(clients.len());
    for client in &mut clients {
        let report = client.json_result(RUN)?;
        check_all_ok(&report, calls)?;
        reports.push(report);
    }
    let mut slowest: f64 = 0.0;
    for report in &reports {
        slowest = slowest.max(elapsed(report)?);
    }
    let mut figures = Figures::new();
    figures.insert(
        Metric::PerSecond,
        calls as f64 * reports.len() as f64 / slowest,
    );
    if let [report] = &reports[..] {
        for (metric, key) in [(Metric::P50, "p50"), (Metric::P99, "p99")] {
            let micros = report["latency_us"][key]
                .as_f64()
                .with_context(|| format!("no latency_us.{key} in {report}"))?;
            figures.insert(metric, micros);
        }
    }
    Ok(figures)
}

/// Items per second and MB per second of a stream of `items` items.
/// The watched server's sizes in a load client's `report`, with the rate
/// of its calls or items.
fn watched_rss(report: &Value, per_second: f64) -> anyhow::Result<Figures> {
    let mut figures = Figures::new();
    let watched = &report["watched_rss"];
    for (metric, key) in [
        (Metric::RssStart, "start_bytes"),
        (Metric::RssPeak, "peak_bytes"),
        (Metric::RssEnd, "end_bytes"),
    ] {
        let bytes = watched[key]
            .as_f64()
            .with_context(|| format!("no watched_rss.{key} in {report}"))?;
        figures.insert(metric, bytes / f64::from(1 << 20));
    }
    figures.insert(Metric::PerSecond, per_second);
    Ok(figures)
}

fn stream_figures(report: &Value, items: u64, item_bytes: usize) -> anyhow::Result<Figures> {
    let seconds = elapsed(report)?;
    let per_second = items as f64 / seconds;
    Ok(Figures::from([
        (Metric::PerSecond, per_second),
        (
            Metric::MegabytesPerSecond,
            per_second * item_bytes as f64 / 1e6,
        ),
    ]))
}

fn elapsed(report: &Value) -> anyhow::Result<f64> {
    match report["elapsed_s"].as_f64() {
        Some(seconds) if seconds > 0.0 => Ok(seconds),
        _ => bail!("no positive elapsed_s in {report}"),
    }
}

/// Fails unless the report counts `expected` successes and nothing else.
fn check_all_ok(report: &Value, expected: u64) -> anyhow::Result<()> {
    let count = |key: &str| report[key].as_u64();
    if count("ok") != Some(expected) || count("failed") != Some(0) || count("wrong") != Some(0) {
        bail!("expected {expected} calls or streams answered right, got {report}");
    }
    Ok(())
}
