//! The tables of results: which jobs each row sets side by side, and how
//! figures and ratios are written (Markdown, printed and written alike).
//!
//! The results compare ours with raw libzmq and zerorpc-python; a row
//! whose workload has a measured floor (the cheapest implementation of
//! what it must do: [`Job::FloorCalls`], [`Job::FloorStream`]) is also set
//! against it, in its note. The floors have tables of their own, after the
//! results, each against raw libzmq.

use std::fmt::Write;

use super::Results;
use super::workloads::{Figures, Handler, Handoffs, Job, LARGE, Metric, OurEnd, SMALL, Scale};

/// A table: a title saying the unit, and its rows.
pub(crate) struct Section {
    pub(crate) title: &'static str,
    pub(crate) kind: Kind,
    pub(crate) rows: Vec<Row>,
}

/// What a table's rows are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Our workloads, next to raw libzmq and zerorpc-python.
    Results,
    /// Floors (in `ours`), each against raw libzmq (`raw`, `None` for a
    /// baseline itself), with what they are the floor of in the note.
    Floors,
    /// Our workloads next to the same over gRPC in Rust (`grpc`).
    Grpc,
    /// One end ours and the other a floor's (in `ours`), against raw
    /// libzmq, with what that end of ours keeps of the floor in the note.
    Split,
}

/// What the "Floors" part of the tables says before them.
const FLOORS_INTRO: &str = "\
The cheapest implementation of what a ZeroRPC call or stream must do over
the same sockets, measured in the same runs with `zerorpc-bench-raw`: each
floor adds to the raw round trip or stream one thing that our design or the
protocol cannot do without, and nothing else (no heartbeats, channels or
bookkeeping). Between raw libzmq and a floor is what that design or the
protocol costs at the least; between a floor and zerorpc-rs (the rows'
notes above) is what our implementation adds to it.";

/// One workload, measured with raw libzmq, ours and zerorpc-python where
/// each applies.
pub(crate) struct Row {
    /// What `--only` matches.
    pub(crate) id: &'static str,
    pub(crate) label: String,
    /// The figures shown, the first one compared.
    pub(crate) metrics: &'static [Metric],
    pub(crate) raw: Option<Job>,
    pub(crate) ours: Job,
    pub(crate) python: Option<Job>,
    /// The same workload over gRPC (tonic).
    pub(crate) grpc: Option<Job>,
    pub(crate) note: Option<Note>,
    /// The floor `ours` is set against.
    pub(crate) floor: Option<Floor>,
}

/// The cheapest implementation of what a row's workload must do.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Floor {
    pub(crate) job: Job,
    /// What it adds to raw libzmq, in the row's note.
    pub(crate) name: &'static str,
}

/// A remark computed from other jobs than the row's own.
pub(crate) enum Note {
    /// What a floor is the floor of.
    FloorOf(&'static str),
    /// How much latency the hub adds to `direct`, in raw round trips,
    /// next to what libzmq's own proxy adds to a raw round trip
    /// ([`Job::RawRelayCalls`]).
    HubAdds { direct: Job },
    /// The hub's throughput as a share of `direct`'s.
    HubShare { direct: Job },
    /// Traced calls' throughput as a share of the same calls untraced.
    TracedShare { untraced: Job },
    /// The floor of traced calls, and its throughput as a share of the
    /// same floor untraced: the least tracing costs.
    TracedFloor { untraced: Job },
    /// One end ours, the other the codec floor's: its throughput as a
    /// share of the floor's (`whole`), which is what that end of ours
    /// keeps of the floor.
    SplitShare { whole: Job, end: &'static str },
    /// The server's size when the calls started, and at its peak if
    /// `peak`.
    RssStart { peak: bool },
}

impl Row {
    /// Every job the row needs, its note's included.
    pub(crate) fn jobs(&self) -> Vec<Job> {
        let direct = match self.note {
            Some(Note::HubAdds { direct }) => Some(direct),
            _ => self.share_of(),
        };
        let relay = matches!(self.note, Some(Note::HubAdds { .. })).then_some(Job::RawRelayCalls);
        let floor = self.floor.map(|floor| floor.job);
        [
            self.raw,
            Some(self.ours),
            self.python,
            self.grpc,
            direct,
            relay,
            floor,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The job whose throughput this row's note gives a share of, if any:
    /// the untraced calls (or the untraced floor), the direct ones, or the
    /// floor one end of ours is set against.
    pub(crate) fn share_of(&self) -> Option<Job> {
        match self.note {
            Some(
                Note::TracedShare { untraced: job }
                | Note::TracedFloor { untraced: job }
                | Note::HubShare { direct: job }
                | Note::SplitShare { whole: job, .. },
            ) => Some(job),
            _ => None,
        }
    }

    /// The row, set against `job`, a floor that adds `name` to raw libzmq.
    fn against_floor(self, job: Job, name: &'static str) -> Row {
        Row {
            floor: Some(Floor { job, name }),
            ..self
        }
    }
}

fn calls(handler: Handler, clients: usize, in_flight: usize, through_hub: bool) -> Job {
    Job::Calls {
        handler,
        clients,
        in_flight,
        through_hub,
    }
}

fn raw_calls(clients: usize, in_flight: usize) -> Job {
    Job::RawCalls { clients, in_flight }
}

fn floor_calls(in_flight: usize, handoffs: Handoffs, codec: bool) -> Job {
    Job::FloorCalls {
        in_flight,
        handoffs,
        codec,
        traced: false,
    }
}

/// The suite's tables, with the amounts of work of `scale` in the labels.
pub(crate) fn sections(scale: Scale) -> Vec<Section> {
    use Handler::{Async, Inline, InlineAsync, Sync};
    use Handoffs::{Client, Server};
    let sequential = calls(Inline, 1, 1, false);
    let python_sequential = Some(Job::PythonCalls { in_flight: 1 });
    let client_io = floor_calls(1, Client, false);
    let server_io = floor_calls(1, Server, false);
    let codec_1 = floor_calls(1, Handoffs::None, true);
    let codec_100 = floor_calls(100, Handoffs::None, true);
    let client_io_codec_100 = floor_calls(100, Client, true);
    let traced_codec_100 = Job::FloorCalls {
        in_flight: 100,
        handoffs: Handoffs::None,
        codec: true,
        traced: true,
    };
    let framed = |item_bytes, codec| Job::FloorStream { item_bytes, codec };
    let latency = |id, label: &str, ours, note| Row {
        id,
        label: label.to_owned(),
        metrics: &[Metric::P50, Metric::P99],
        raw: Some(raw_calls(1, 1)),
        ours,
        python: python_sequential,
        grpc: None,
        note,
        floor: None,
    };
    let throughput = |id, label: &str, raw, ours, python, note| Row {
        id,
        label: label.to_owned(),
        metrics: &[Metric::PerSecond],
        raw: Some(raw),
        ours,
        python,
        grpc: None,
        note,
        floor: None,
    };
    let stream = |id, label: &str, metric, item_bytes| Row {
        id,
        label: label.to_owned(),
        metrics: metric,
        raw: Some(Job::RawStream { item_bytes }),
        ours: Job::Stream { item_bytes },
        python: Some(Job::PythonStream { item_bytes }),
        grpc: None,
        note: None,
        floor: Some(Floor {
            job: framed(item_bytes, true),
            name: "framing + codec",
        }),
    };
    let memory = |id, label: String, metric, ours, peak| Row {
        id,
        label,
        metrics: metric,
        raw: None,
        ours,
        python: None,
        grpc: None,
        note: Some(Note::RssStart { peak }),
        floor: None,
    };
    let floor = |id, label: &str, metrics, raw, ours, of| Row {
        id,
        label: label.to_owned(),
        metrics,
        raw,
        ours,
        python: None,
        grpc: None,
        note: Some(Note::FloorOf(of)),
        floor: None,
    };
    let split = |id, label: &str, ours, end| Row {
        note: Some(Note::SplitShare {
            whole: codec_100,
            end,
        }),
        ..floor(
            id,
            label,
            &[Metric::PerSecond],
            Some(raw_calls(1, 100)),
            Job::SplitCalls {
                in_flight: 100,
                ours,
            },
            "",
        )
    };
    let versus_grpc = |id, label: &str, metrics, ours, grpc| Row {
        id,
        label: label.to_owned(),
        metrics,
        raw: None,
        ours,
        python: None,
        grpc: Some(grpc),
        note: None,
        floor: None,
    };
    vec![
        Section {
            title: "Latency of one call at a time: p50 / p99, µs (lower is better)",
            kind: Kind::Results,
            rows: vec![
                latency(
                    "latency-inline",
                    "`#[zerorpc(inline)]` method",
                    sequential,
                    None,
                )
                .against_floor(codec_1, "codec, no threads"),
                latency(
                    "latency-async",
                    "async method",
                    calls(Async, 1, 1, false),
                    None,
                )
                .against_floor(server_io, "server hand-offs"),
                latency(
                    "latency-inline-async",
                    "`#[zerorpc(inline)]` async method, completing without waiting",
                    calls(InlineAsync, 1, 1, false),
                    None,
                )
                .against_floor(codec_1, "codec, no threads"),
                latency(
                    "latency-sync",
                    "plain sync method (blocking pool)",
                    calls(Sync, 1, 1, false),
                    None,
                )
                .against_floor(server_io, "server hand-offs"),
                latency(
                    "latency-async-runtime-server",
                    "async method, the server driven by its runtime (`ServerBuilder::io_thread(false)`)",
                    Job::RuntimeServerCalls {
                        handler: Async,
                        in_flight: 1,
                    },
                    None,
                )
                .against_floor(codec_1, "codec, no threads"),
                latency(
                    "latency-inline-async-runtime-server",
                    "`#[zerorpc(inline)]` async method, the server driven by its runtime",
                    Job::RuntimeServerCalls {
                        handler: InlineAsync,
                        in_flight: 1,
                    },
                    None,
                )
                .against_floor(codec_1, "codec, no threads"),
                latency(
                    "latency-sync-runtime-server",
                    "plain sync method, the server driven by its runtime",
                    Job::RuntimeServerCalls {
                        handler: Sync,
                        in_flight: 1,
                    },
                    None,
                )
                .against_floor(server_io, "server hand-offs"),
                latency(
                    "latency-hub",
                    "inline method through `zerorpc-hub`",
                    calls(Inline, 1, 1, true),
                    Some(Note::HubAdds { direct: sequential }),
                ),
            ],
        },
        Section {
            title: "Calls per second, inline method unless said otherwise (higher is better)",
            kind: Kind::Results,
            rows: vec![
                throughput(
                    "calls-1",
                    "one client, 1 in flight",
                    raw_calls(1, 1),
                    sequential,
                    python_sequential,
                    None,
                )
                .against_floor(codec_1, "codec, no threads"),
                throughput(
                    "calls-16",
                    "one client, 16 in flight",
                    raw_calls(1, 16),
                    calls(Inline, 1, 16, false),
                    None,
                    None,
                ),
                throughput(
                    "calls-100",
                    "one client, 100 in flight (Python: 100 greenlets)",
                    raw_calls(1, 100),
                    calls(Inline, 1, 100, false),
                    Some(Job::PythonCalls { in_flight: 100 }),
                    None,
                )
                .against_floor(codec_100, "codec, no threads"),
                throughput(
                    "calls-100-async",
                    "one client, 100 in flight, async method",
                    raw_calls(1, 100),
                    calls(Async, 1, 100, false),
                    None,
                    None,
                ),
                throughput(
                    "calls-100-async-runtime-server",
                    "one client, 100 in flight, async method, the server driven by its runtime",
                    raw_calls(1, 100),
                    Job::RuntimeServerCalls {
                        handler: Async,
                        in_flight: 100,
                    },
                    None,
                    None,
                ),
                throughput(
                    "calls-1000",
                    "one client, 1,000 in flight",
                    raw_calls(1, 1000),
                    calls(Inline, 1, 1000, false),
                    None,
                    None,
                ),
                throughput(
                    "calls-8-clients",
                    "8 client processes, 100 in flight each",
                    raw_calls(8, 100),
                    calls(Inline, 8, 100, false),
                    None,
                    None,
                ),
                throughput(
                    "calls-hub",
                    "one client, 100 in flight, through `zerorpc-hub`",
                    raw_calls(1, 100),
                    calls(Inline, 1, 100, true),
                    None,
                    Some(Note::HubShare {
                        direct: calls(Inline, 1, 100, false),
                    }),
                ),
                throughput(
                    "calls-traced",
                    "one client, 100 in flight, traced (client and server report to a `zerorpc collector` in memory)",
                    raw_calls(1, 100),
                    Job::TracedCalls {
                        handler: Inline,
                        in_flight: 100,
                    },
                    None,
                    Some(Note::TracedShare {
                        untraced: calls(Inline, 1, 100, false),
                    }),
                )
                .against_floor(traced_codec_100, "codec + tracing, no threads"),
                throughput(
                    "calls-traced-async",
                    "one client, 100 in flight, async method, traced",
                    raw_calls(1, 100),
                    Job::TracedCalls {
                        handler: Async,
                        in_flight: 100,
                    },
                    None,
                    Some(Note::TracedShare {
                        untraced: calls(Async, 1, 100, false),
                    }),
                ),
            ],
        },
        Section {
            title: "One stream, server to client (raw: one-way PUSH/PULL; higher is better)",
            kind: Kind::Results,
            rows: vec![
                stream(
                    "stream-64",
                    "64-byte items, items/s",
                    &[Metric::PerSecond],
                    SMALL,
                ),
                Row {
                    id: "stream-64-runtime-server",
                    label: "64-byte items, items/s, the server driven by its runtime".to_owned(),
                    ours: Job::RuntimeServerStream { item_bytes: SMALL },
                    python: None,
                    ..stream("", "", &[Metric::PerSecond], SMALL)
                },
                Row {
                    id: "stream-64-inline",
                    label: "64-byte items, items/s, a `#[zerorpc(inline)]` stream (made on the server's I/O thread)".to_owned(),
                    ours: Job::InlineStream { item_bytes: SMALL },
                    python: None,
                    ..stream("", "", &[Metric::PerSecond], SMALL)
                },
                stream(
                    "stream-64k",
                    "64 KiB items, MB/s",
                    &[Metric::MegabytesPerSecond],
                    LARGE,
                ),
            ],
        },
        Section {
            title: "Server memory: resident size, MiB (lower is better)",
            kind: Kind::Results,
            rows: vec![
                memory(
                    "rss-in-flight",
                    format!(
                        "with {} calls in flight (peak)",
                        grouped(scale.rss_in_flight())
                    ),
                    &[Metric::RssPeak],
                    Job::RssInFlight,
                    false,
                ),
                memory(
                    "rss-after-calls",
                    format!("after {} calls, 100 in flight", grouped(scale.rss_calls())),
                    &[Metric::RssEnd],
                    Job::RssAfterCalls,
                    true,
                ),
                memory(
                    "rss-streams",
                    format!(
                        "with {0} streams of {0} 64-byte items at once (peak)",
                        grouped(scale.rss_streams())
                    ),
                    &[Metric::RssPeak],
                    Job::RssStreams { inline: false },
                    false,
                ),
                memory(
                    "rss-streams-inline",
                    format!(
                        "with {0} `#[zerorpc(inline)]` streams of {0} 64-byte items at once (peak)",
                        grouped(scale.rss_streams())
                    ),
                    &[Metric::RssPeak],
                    Job::RssStreams { inline: true },
                    false,
                ),
            ],
        },
        Section {
            title: "Against gRPC in Rust: tonic 0.14, unary and server-streaming calls over HTTP/2",
            kind: Kind::Grpc,
            rows: vec![
                versus_grpc(
                    "grpc-latency",
                    "one call at a time, p50 / p99 µs (ours: `#[zerorpc(inline)]` method)",
                    &[Metric::P50, Metric::P99],
                    sequential,
                    Job::GrpcCalls { in_flight: 1 },
                ),
                versus_grpc(
                    "grpc-calls-100",
                    "one client, 100 in flight, calls/s (gRPC: 100 streams on one connection)",
                    &[Metric::PerSecond],
                    calls(Inline, 1, 100, false),
                    Job::GrpcCalls { in_flight: 100 },
                ),
                versus_grpc(
                    "grpc-stream-64",
                    "one stream, 64-byte items, items/s",
                    &[Metric::PerSecond],
                    Job::Stream { item_bytes: SMALL },
                    Job::GrpcStream { item_bytes: SMALL },
                ),
                versus_grpc(
                    "grpc-stream-64k",
                    "one stream, 64 KiB items, MB/s",
                    &[Metric::MegabytesPerSecond],
                    Job::Stream { item_bytes: LARGE },
                    Job::GrpcStream { item_bytes: LARGE },
                ),
            ],
        },
        Section {
            title: "Floors of one call at a time: p50 / p99, µs (lower is better)",
            kind: Kind::Floors,
            rows: vec![
                floor(
                    "floor-latency-raw",
                    "raw libzmq: DEALER/ROUTER round trip",
                    &[Metric::P50, Metric::P99],
                    None,
                    raw_calls(1, 1),
                    "every latency row (their raw column)",
                ),
                floor(
                    "floor-latency-client-io",
                    "a client I/O thread: the caller hands each request to the thread that owns the DEALER and waits for the reply to be handed back",
                    &[Metric::P50, Metric::P99],
                    Some(raw_calls(1, 1)),
                    client_io,
                    "a client on an I/O thread of its own (`ClientBuilder::io_thread`, and clients outside a multi-thread tokio runtime)",
                ),
                floor(
                    "floor-latency-server-handoffs",
                    "hand-offs on the server: a server whose ROUTER thread hands each request to a worker thread and sends the reply handed back",
                    &[Metric::P50, Metric::P99],
                    Some(raw_calls(1, 1)),
                    server_io,
                    "async method; plain sync method",
                ),
                floor(
                    "floor-latency-codec",
                    "codec: requests and replies are ZeroRPC events, encoded and decoded with ours; no threads",
                    &[Metric::P50, Metric::P99],
                    Some(raw_calls(1, 1)),
                    codec_1,
                    "`#[zerorpc(inline)]` method (the client driven by the caller's tokio runtime, the server answering on its I/O thread)",
                ),
            ],
        },
        Section {
            title: "Floors of calls in flight: calls per second (higher is better)",
            kind: Kind::Floors,
            rows: vec![
                floor(
                    "floor-calls-raw-100",
                    "raw libzmq: round trips, 100 in flight",
                    &[Metric::PerSecond],
                    None,
                    raw_calls(1, 100),
                    "one client, 100 in flight (its raw column)",
                ),
                floor(
                    "floor-calls-codec-100",
                    "codec, 100 in flight, no threads: the CPU floor of any implementation with our codec",
                    &[Metric::PerSecond],
                    Some(raw_calls(1, 100)),
                    codec_100,
                    "one client, 100 in flight (`#[zerorpc(inline)]` method)",
                ),
                Row {
                    note: Some(Note::TracedFloor {
                        untraced: codec_100,
                    }),
                    ..floor(
                        "floor-calls-codec-traced-100",
                        "codec + tracing, 100 in flight, no threads: the trace keys on every request and reply, and one report per call from each side, batched every few milliseconds to a sink that keeps them",
                        &[Metric::PerSecond],
                        Some(raw_calls(1, 100)),
                        traced_codec_100,
                        "",
                    )
                },
                floor(
                    "floor-calls-client-io-codec-100",
                    "a client I/O thread + codec, 100 in flight: the caller hands each request, an event of our codec, to the thread that owns the DEALER and takes each reply handed back, the server answers on its socket's thread",
                    &[Metric::PerSecond],
                    Some(raw_calls(1, 100)),
                    client_io_codec_100,
                    "one client on an I/O thread of its own, 100 in flight",
                ),
            ],
        },
        Section {
            title: "One end ours, the other the codec floor's: calls per second (higher is better)",
            kind: Kind::Split,
            rows: vec![
                split(
                    "floor-calls-split-our-server-100",
                    "our server alone: the codec floor's client, 100 in flight, calling our `#[zerorpc(inline)]` echo",
                    OurEnd::Server,
                    "our server",
                ),
                split(
                    "floor-calls-split-our-client-100",
                    "our client alone: our client, 100 in flight, calling the codec floor's server",
                    OurEnd::Client,
                    "our client",
                ),
            ],
        },
        Section {
            title: "Floors of one stream, server to client (higher is better)",
            kind: Kind::Floors,
            rows: vec![
                floor(
                    "floor-stream-push-pull",
                    "raw libzmq: PUSH/PULL, one frame per item; 64-byte items, items/s",
                    &[Metric::PerSecond],
                    None,
                    Job::RawStream { item_bytes: SMALL },
                    "64-byte items (their raw column)",
                ),
                floor(
                    "floor-stream-framing",
                    "framing: ROUTER to DEALER, `[id, \"\", item]`, as the protocol sends a stream; 64-byte items, items/s",
                    &[Metric::PerSecond],
                    Some(Job::RawStream { item_bytes: SMALL }),
                    framed(SMALL, false),
                    "part of every stream",
                ),
                floor(
                    "floor-stream-codec",
                    "framing + codec: each item a `STREAM` event of ours; 64-byte items, items/s",
                    &[Metric::PerSecond],
                    Some(Job::RawStream { item_bytes: SMALL }),
                    framed(SMALL, true),
                    "64-byte items",
                ),
                floor(
                    "floor-stream-codec-64k",
                    "framing + codec; 64 KiB items, MB/s",
                    &[Metric::MegabytesPerSecond],
                    Some(Job::RawStream { item_bytes: LARGE }),
                    framed(LARGE, true),
                    "64 KiB items",
                ),
            ],
        },
    ]
}

/// The tables in Markdown, from the median figures of each job; a job
/// without figures (not run) shows as `–`. The floors' tables come under a
/// heading of their own.
pub(crate) fn render(sections: &[Section], results: &Results) -> String {
    let mut out = String::new();
    let mut floors_introduced = false;
    for section in sections.iter().filter(|section| !section.rows.is_empty()) {
        if section.kind == Kind::Floors && !floors_introduced {
            let _ = writeln!(out, "## Floors\n\n{FLOORS_INTRO}\n");
            floors_introduced = true;
        }
        let _ = writeln!(out, "### {}\n", section.title);
        out.push_str(match section.kind {
            Kind::Results => {
                "| workload | raw libzmq | zerorpc-rs | zerorpc-python | zerorpc-rs vs raw | zerorpc-rs vs python | note |\n\
                 | --- | --: | --: | --: | --: | --: | --- |\n"
            }
            Kind::Floors => {
                "| floor | measured | vs raw libzmq | the floor of |\n\
                 | --- | --: | --: | --- |\n"
            }
            Kind::Grpc => {
                "| workload | gRPC (tonic) | zerorpc-rs | zerorpc-rs vs gRPC |\n\
                 | --- | --: | --: | --: |\n"
            }
            Kind::Split => {
                "| pairing | measured | vs raw libzmq | against the floor |\n\
                 | --- | --: | --: | --- |\n"
            }
        });
        for row in &section.rows {
            let figures = |job: Option<Job>| job.and_then(|job| results.get(&job));
            let (raw, ours, python, grpc) = (
                figures(row.raw),
                figures(Some(row.ours)),
                figures(row.python),
                figures(row.grpc),
            );
            let first = row.metrics[0];
            let compare = |other: Option<&Figures>, compare: fn(Metric, f64, f64) -> String| match (
                ours.and_then(|f| f.get(&first)),
                other.and_then(|f| f.get(&first)),
            ) {
                (Some(&ours), Some(&other)) => compare(first, ours, other),
                _ => "–".to_owned(),
            };
            let _ = match section.kind {
                Kind::Results => writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    row.label,
                    cell(raw, row.metrics),
                    cell(ours, row.metrics),
                    cell(python, row.metrics),
                    compare(raw, versus_raw),
                    compare(python, versus_other),
                    note(row, results),
                ),
                Kind::Grpc => writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    row.label,
                    cell(grpc, row.metrics),
                    cell(ours, row.metrics),
                    compare(grpc, versus_other),
                ),
                Kind::Floors | Kind::Split => writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    row.label,
                    cell(ours, row.metrics),
                    if row.raw.is_none() {
                        "baseline".to_owned()
                    } else {
                        compare(raw, versus_raw)
                    },
                    note(row, results),
                ),
            };
        }
        out.push('\n');
    }
    out
}

/// The row's figures joined by ` / `, or `–`.
fn cell(figures: Option<&Figures>, metrics: &[Metric]) -> String {
    let shown: Option<Vec<String>> = metrics
        .iter()
        .map(|metric| figures?.get(metric).map(|&value| figure(*metric, value)))
        .collect();
    shown.map_or_else(|| "–".to_owned(), |shown| shown.join(" / "))
}

/// One figure, rounded as its unit deserves.
pub(crate) fn figure(metric: Metric, value: f64) -> String {
    match metric {
        Metric::P50 | Metric::P99 | Metric::Mean | Metric::MegabytesPerSecond if value < 100.0 => {
            format!("{value:.1}")
        }
        Metric::P50 | Metric::P99 | Metric::Mean | Metric::MegabytesPerSecond => {
            format!("{value:.0}")
        }
        Metric::PerSecond => grouped(significant(value)),
        Metric::RssStart | Metric::RssPeak | Metric::RssEnd => format!("{value:.1}"),
    }
}

/// `value` rounded to three significant digits.
fn significant(value: f64) -> u64 {
    if !value.is_finite() || value < 1.0 {
        return 0;
    }
    let digits = value.log10().floor() as i32;
    let unit = 10f64.powi((digits - 2).max(0));
    ((value / unit).round() * unit) as u64
}

/// `n` with a comma every three digits.
pub(crate) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Ours against raw libzmq: a multiple of its latency, or a share of its
/// throughput.
fn versus_raw(metric: Metric, ours: f64, raw: f64) -> String {
    if metric.lower_is_better() {
        format!("{:.2}x raw", ours / raw)
    } else {
        format!("{:.0}% of raw", 100.0 * ours / raw)
    }
}

/// Ours against another implementation (zerorpc-python, gRPC): how many
/// times faster (or slower).
fn versus_other(metric: Metric, ours: f64, python: f64) -> String {
    let factor = if metric.lower_is_better() {
        python / ours
    } else {
        ours / python
    };
    if factor >= 1.0 {
        format!("{} faster", times(factor))
    } else {
        format!("{} slower", times(1.0 / factor))
    }
}

fn times(factor: f64) -> String {
    if factor < 10.0 {
        format!("{factor:.1}x")
    } else {
        format!("{factor:.0}x")
    }
}

/// The row's note: how it compares with its floor, then its own remark.
fn note(row: &Row, results: &Results) -> String {
    let get = |job: Option<Job>, metric| {
        job.and_then(|job| results.get(&job))
            .and_then(|figures| figures.get(&metric))
            .copied()
    };
    let first = row.metrics[0];
    let floor = row.floor.and_then(|floor| {
        let ours = get(Some(row.ours), first)?;
        let measured = get(Some(floor.job), first)?;
        Some(versus_floor(first, ours, measured, floor.name))
    });
    let text = match row.note {
        None => None,
        Some(Note::FloorOf(rows)) => Some(rows.to_owned()),
        Some(Note::HubAdds { direct }) => {
            match (
                get(Some(row.ours), Metric::P50),
                get(Some(direct), Metric::P50),
                get(row.raw, Metric::P50),
            ) {
                (Some(hub), Some(direct), Some(raw)) => {
                    let mut text = format!(
                        "the hub adds {:.1} raw round trips ({:+.0} µs) to a direct call",
                        (hub - direct) / raw,
                        hub - direct
                    );
                    if let Some(relayed) = get(Some(Job::RawRelayCalls), Metric::P50) {
                        let _ = write!(
                            text,
                            "; libzmq's own proxy adds {:.1} ({:+.0} µs) to a raw one",
                            (relayed - raw) / raw,
                            relayed - raw
                        );
                    }
                    Some(text)
                }
                _ => None,
            }
        }
        Some(Note::HubShare { direct }) => results
            .paired_share(row.ours, direct, Metric::PerSecond)
            .map(|share| format!("{:.0}% of a direct call's", 100.0 * share)),
        Some(Note::TracedShare { untraced }) => results
            .paired_share(row.ours, untraced, Metric::PerSecond)
            .map(|share| {
                format!(
                    "{:.0}% of untraced calls' (target: at least 85%)",
                    100.0 * share
                )
            }),
        Some(Note::TracedFloor { untraced }) => results
            .paired_share(row.ours, untraced, Metric::PerSecond)
            .map(|share| {
                format!(
                    "one client, 100 in flight, traced; {:.0}% of the codec floor's calls untraced: the least tracing costs",
                    100.0 * share
                )
            }),
        Some(Note::SplitShare { whole, end }) => results
            .paired_share(row.ours, whole, Metric::PerSecond)
            .map(|share| {
                format!(
                    "one client, 100 in flight: {end} keeps {:.0}% of the codec floor's calls",
                    100.0 * share
                )
            }),
        Some(Note::RssStart { peak }) => {
            let start = get(Some(row.ours), Metric::RssStart);
            let top = get(Some(row.ours), Metric::RssPeak).filter(|_| peak);
            start.map(|start| match top {
                Some(top) => format!(
                    "{} MiB when the calls started, {} MiB at the peak",
                    figure(Metric::RssStart, start),
                    figure(Metric::RssPeak, top)
                ),
                None => format!(
                    "{} MiB when the calls started",
                    figure(Metric::RssStart, start)
                ),
            })
        }
    };
    [floor, text]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
}

/// Ours against its floor, named: a multiple of its latency, or a share of
/// its throughput.
fn versus_floor(metric: Metric, ours: f64, floor: f64, name: &str) -> String {
    if metric.lower_is_better() {
        format!("{:.2}x its floor ({name})", ours / floor)
    } else {
        format!("{:.0}% of its floor ({name})", 100.0 * ours / floor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The (first) table of `kind`.
    fn section_of(sections: &[Section], kind: Kind) -> &Section {
        sections
            .iter()
            .find(|section| section.kind == kind)
            .unwrap_or_else(|| panic!("a table of kind {kind:?}"))
    }

    /// Results of one round with these figures.
    fn one_round(figures: HashMap<Job, Figures>) -> Results {
        Results::new(figures.into_iter().map(|(job, f)| (job, vec![f])).collect())
    }

    #[test]
    fn figures_are_rounded_for_reading() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(figure(Metric::PerSecond, 52_149.7), "52,100");
        assert_eq!(figure(Metric::PerSecond, 3_812_345.0), "3,810,000");
        assert_eq!(figure(Metric::PerSecond, 87.4), "87");
        assert_eq!(figure(Metric::P50, 53.43), "53.4");
        assert_eq!(figure(Metric::P99, 1242.3), "1242");
        assert_eq!(figure(Metric::RssPeak, 73.44), "73.4");
    }

    #[test]
    fn ratios_say_which_way() {
        assert_eq!(versus_raw(Metric::P50, 110.0, 50.0), "2.20x raw");
        assert_eq!(versus_raw(Metric::PerSecond, 50.0, 200.0), "25% of raw");
        assert_eq!(versus_other(Metric::P50, 100.0, 600.0), "6.0x faster");
        assert_eq!(
            versus_other(Metric::PerSecond, 50_000.0, 1_000.0),
            "50x faster"
        );
        assert_eq!(
            versus_other(Metric::PerSecond, 1_000.0, 2_000.0),
            "2.0x slower"
        );
    }

    #[test]
    fn rows_show_what_ran_and_dashes_for_the_rest() {
        let sections = sections(Scale::Quick);
        let inline = &sections[0].rows[0];
        let hub = sections[0]
            .rows
            .iter()
            .find(|row| row.id == "latency-hub")
            .expect("a hub latency row");
        let mut results = HashMap::new();
        results.insert(
            inline.raw.unwrap(),
            Figures::from([(Metric::P50, 50.0), (Metric::P99, 90.0)]),
        );
        results.insert(
            inline.ours,
            Figures::from([(Metric::P50, 100.0), (Metric::P99, 200.0)]),
        );
        results.insert(
            hub.ours,
            Figures::from([(Metric::P50, 160.0), (Metric::P99, 300.0)]),
        );
        let table = render(&sections[..1], &one_round(results));
        assert!(
            table.contains(
                "| `#[zerorpc(inline)]` method | 50.0 / 90.0 | 100 / 200 | – | 2.00x raw | – |"
            ),
            "{table}"
        );
        assert!(
            table.contains("the hub adds 1.2 raw round trips (+60 µs) to a direct call"),
            "{table}"
        );
        // The async row's own job did not run.
        assert!(
            table.contains("| async method | 50.0 / 90.0 | – | – | – | – |"),
            "{table}"
        );
        assert!(hub.jobs().contains(&inline.ours));
    }

    #[test]
    fn rows_are_set_against_their_floors_and_floors_against_raw() {
        let sections = sections(Scale::Quick);
        let inline = &sections[0].rows[0];
        let stream = &sections[2].rows[0];
        let (inline_floor, stream_floor) = (inline.floor.unwrap().job, stream.floor.unwrap().job);
        assert!(inline.jobs().contains(&inline_floor));
        assert!(stream.jobs().contains(&stream_floor));
        let latency = |p50, p99| Figures::from([(Metric::P50, p50), (Metric::P99, p99)]);
        let per_second = |value| Figures::from([(Metric::PerSecond, value)]);
        let results = HashMap::from([
            (inline.raw.unwrap(), latency(50.0, 90.0)),
            (inline.ours, latency(100.0, 200.0)),
            (inline_floor, latency(80.0, 120.0)),
            (stream.raw.unwrap(), per_second(4_000_000.0)),
            (stream.ours, per_second(400_000.0)),
            (stream_floor, per_second(1_000_000.0)),
        ]);
        let table = render(&sections, &one_round(results));
        for expected in [
            "| 2.00x raw | – | 1.25x its floor (codec, no threads) |",
            "| 10% of raw | – | 40% of its floor (framing + codec) |",
            "| raw libzmq: DEALER/ROUTER round trip | 50.0 / 90.0 | baseline | every latency row (their raw column) |",
            "| 80.0 / 120 | 1.60x raw | `#[zerorpc(inline)]` method",
            "| 1,000,000 | 25% of raw | 64-byte items |",
        ] {
            assert!(table.contains(expected), "{expected}\n{table}");
        }
        // Once, after every table of results.
        assert_eq!(table.matches("\n## Floors\n").count(), 1, "{table}");
        assert!(table.find("\n## Floors\n") > table.find("### Server memory"));
    }

    #[test]
    fn grpc_rows_set_ours_beside_the_same_workload_over_tonic() {
        let sections = sections(Scale::Quick);
        let versus = section_of(&sections, Kind::Grpc);
        let latency = &versus.rows[0];
        let stream = &versus.rows[2];
        assert!(latency.jobs().contains(&Job::GrpcCalls { in_flight: 1 }));
        let results = HashMap::from([
            (
                latency.grpc.unwrap(),
                Figures::from([(Metric::P50, 160.0), (Metric::P99, 240.0)]),
            ),
            (
                latency.ours,
                Figures::from([(Metric::P50, 100.0), (Metric::P99, 160.0)]),
            ),
            (
                stream.grpc.unwrap(),
                Figures::from([(Metric::PerSecond, 5_000_000.0)]),
            ),
            (stream.ours, Figures::from([(Metric::PerSecond, 700_000.0)])),
        ]);
        let table = render(std::slice::from_ref(versus), &one_round(results));
        for expected in [
            "| workload | gRPC (tonic) | zerorpc-rs | zerorpc-rs vs gRPC |",
            "| 160 / 240 | 100 / 160 | 1.6x faster |",
            "| 5,000,000 | 700,000 | 7.1x slower |",
            "| one client, 100 in flight, calls/s (gRPC: 100 streams on one connection) | – | – | – |",
        ] {
            assert!(table.contains(expected), "{expected}\n{table}");
        }
    }

    #[test]
    fn split_rows_say_what_each_end_of_ours_keeps_of_the_codec_floor() {
        let sections = sections(Scale::Quick);
        let split = section_of(&sections, Kind::Split);
        let ends: Vec<Job> = split.rows.iter().map(|row| row.ours).collect();
        assert_eq!(
            ends,
            [OurEnd::Server, OurEnd::Client].map(|ours| Job::SplitCalls {
                in_flight: 100,
                ours
            })
        );
        let floor = floor_calls(100, Handoffs::None, true);
        assert!(split.rows.iter().all(|row| row.jobs().contains(&floor)));
        let per_second = |value| Figures::from([(Metric::PerSecond, value)]);
        let results = HashMap::from([
            (split.rows[0].raw.unwrap(), per_second(400_000.0)),
            (floor, per_second(300_000.0)),
            (ends[0], per_second(291_000.0)),
            (ends[1], per_second(210_000.0)),
        ]);
        let table = render(std::slice::from_ref(split), &one_round(results));
        for expected in [
            "| pairing | measured | vs raw libzmq | against the floor |",
            "| 291,000 | 73% of raw | one client, 100 in flight: our server keeps 97% of the codec floor's calls |",
            "| 210,000 | 52% of raw | one client, 100 in flight: our client keeps 70% of the codec floor's calls |",
        ] {
            assert!(table.contains(expected), "{expected}\n{table}");
        }
    }

    #[test]
    fn row_ids_are_unique() {
        let sections = sections(Scale::Full);
        let mut ids: Vec<&str> = sections
            .iter()
            .flat_map(|section| section.rows.iter().map(|row| row.id))
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
    }

    #[test]
    fn shares_are_the_median_of_each_rounds_share() {
        let sections = sections(Scale::Quick);
        let traced = sections[1]
            .rows
            .iter()
            .find(|row| matches!(row.note, Some(Note::TracedShare { .. })))
            .expect("the traced row");
        let Some(Note::TracedShare { untraced }) = traced.note else {
            unreachable!()
        };
        let per_second = |value| Figures::from([(Metric::PerSecond, value)]);
        // The machine's speed moves between rounds: a ratio of medians
        // (127/207, 61%) would set figures of different rounds side by side.
        let rounds = HashMap::from([
            (
                traced.ours,
                vec![per_second(80.0), per_second(127.0), per_second(127.0)],
            ),
            (
                untraced,
                vec![per_second(200.0), per_second(207.0), per_second(232.0)],
            ),
        ]);
        let results = Results::new(rounds);
        let share = results
            .paired_share(traced.ours, untraced, Metric::PerSecond)
            .unwrap();
        assert!((share - 127.0 / 232.0).abs() < 1e-9, "{share}");
        let table = render(&sections[1..2], &results);
        assert!(
            table.contains("55% of untraced calls' (target: at least 85%)"),
            "{table}"
        );
    }
}
