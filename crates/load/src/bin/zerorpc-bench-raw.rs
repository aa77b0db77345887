//! `zerorpc-bench-raw`: round trips and one-way transfers over bare ZeroMQ
//! sockets, the baselines of `cargo xtask bench`.
//!
//! It goes through the same `zmq` crate (and so the same libzmq) as the
//! transport. Without flags it has nothing of ZeroRPC on top: no events, no
//! msgpack, no heartbeats, no I/O thread. What it measures is the floor a
//! ZeroRPC call or stream over the same sockets cannot go below.
//!
//! Its flags add, one at a time, a part of what the protocol or our design
//! cannot do without, and nothing else, so that each of our figures can be
//! set against the cheapest implementation of what it must do (the suite's
//! *floors*):
//!
//! * `--handoff` puts a thread hand-off between the socket and the code
//!   that makes or answers the round trips, as our transport does. The
//!   thread that owns the socket waits in `zmq_poll` on it and on the read
//!   end of a Unix socket pair, the wake-up of what is handed to it (an
//!   `mpsc` queue; a flag makes a burst of hand-offs cost one wake-up
//!   write); what it hands the other way goes through an `mpsc` queue the
//!   other thread blocks on. On `call`, the caller hands each request to an
//!   I/O thread that owns the DEALER and waits for the reply to be handed
//!   back: the floor of our client. On `echo`, the ROUTER's thread hands
//!   each request to a worker thread and sends the reply the worker hands
//!   back: the floor of our async and sync methods (inline methods are
//!   answered on the I/O thread, as `echo` without the flag answers).
//! * `--codec` makes every message a ZeroRPC event encoded and decoded
//!   with our codec (`zerorpc::wire`), each with a fresh message id and
//!   each answer with its request's id in `response_to`: on `call` and
//!   `echo`, the request `echo_inline([i, <BYTES bytes>])` and its `OK`
//!   reply, as `zerorpc-load-client --echo` and `zerorpc-load-server`
//!   exchange them; on `stream-serve` and `stream-take`, a `blobs` request
//!   and `STREAM` events carrying the items as bin. No heartbeats, no
//!   channels, no threads: the CPU floor of any implementation with this
//!   codec.
//! * `--traced SINK` (with `--codec`, on `call` and `echo`) adds what
//!   tracing cannot do without (`zerorpc_load::trace_floor`): the trace
//!   keys on every request and reply, and one report per call from each
//!   side, batched to a `sink`. The floor of traced calls.
//!
//! The commands:
//!
//! * `echo [--bind ENDPOINT] [--handoff] [--codec]`: a ROUTER sending every
//!   message back to whoever sent it (with `--codec`, the reply to it).
//!   Prints `listening <endpoint>` once bound and serves until killed.
//! * `call --connect ENDPOINT [--handoff] [--codec]`: a DEALER making
//!   `--calls` round trips of `--bytes`-byte messages with at most
//!   `--in-flight` waiting at once (after `--warmup` unmeasured ones),
//!   checking every reply, then printing one JSON line like
//!   `zerorpc-load-client`'s: `ok`, `elapsed_s` and `latency_us` (`p50`,
//!   `p90`, `p99`, `max`, `mean`).
//! * `sink [--bind ENDPOINT]`: a PULL keeping the latest report batches
//!   of `--traced` peers (64 MiB of them), as the least a trace collector
//!   does. Prints `listening <endpoint>` once bound and receives until
//!   killed.
//! * `relay --connect ENDPOINT [--bind ENDPOINT]`: libzmq's own proxy
//!   (`zmq_proxy`) from a ROUTER it binds to a DEALER connected to an
//!   `echo`: the floor for a relay such as `zerorpc-hub`. Prints
//!   `listening <endpoint>` once bound and relays until killed.
//! * `pull [--bind ENDPOINT] --items N`: a PULL receiving N messages and
//!   checking each (`zerorpc_load::is_stream_item`). Prints `listening
//!   <endpoint>` once bound, and at the end one JSON line: `ok` (1),
//!   `items` and `elapsed_s`, the time from the first item to the last.
//! * `push --connect ENDPOINT --items N`: a PUSH sending N messages of
//!   `--bytes` bytes (`zerorpc_load::stream_item`) and waiting until they
//!   have left.
//! * `stream-serve [--bind ENDPOINT] --items N [--codec]`: a stream framed
//!   as the protocol frames one. ZeroRPC has no one-way socket for a
//!   stream: its items go from the server's ROUTER to the client's DEALER,
//!   each `[routing id, "", item]` (PROTOCOL.md, section 2.2), where
//!   PUSH/PULL sends one frame. For every request `["", anything]` a DEALER
//!   sends, the ROUTER sends N items of `--bytes` bytes back as fast as it
//!   can, waiting as `push` does when libzmq's high-water mark is reached,
//!   never dropping. Prints `listening <endpoint>` once bound and serves
//!   until killed.
//! * `stream-take --connect ENDPOINT --items N [--codec]`: the DEALER
//!   sending that request, then receiving and checking the N items;
//!   prints the same JSON line as `pull`.
//!
//! Messages between DEALER and ROUTER carry an empty delimiter frame before
//! the payload, as ZeroRPC's do. Every message's first 8 bytes are its
//! sequence number (with `--codec`, the bin's), so a lost, repeated or
//! reordered reply is an error.
//!
//! Exit status: 0 on success, 1 if a reply or item was wrong or missing
//! (the reason on stderr), 2 on a bad command line.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};
use zerorpc::wire::{Event, Header, MessageId, Value, names};
use zerorpc_load::trace_floor::{self, CallIds, CallRecord, Reporter, Sink, now_us};
use zerorpc_load::{Latencies, is_stream_item, stream_item};

/// Where `echo`, `pull` and `stream-serve` bind when not told.
const DEFAULT_BIND: &str = "tcp://127.0.0.1:*";

/// The largest `--bytes`: a bound on what one bad flag can allocate.
const MAX_BYTES: u64 = 64 << 20;

/// How long a receiver waits for the next message before giving up: a
/// safety net, far above any gap a working peer leaves.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `push` waits for its messages to leave before exiting.
const LINGER: Duration = Duration::from_secs(30);

/// The method `call --codec` calls: the load server's inline echo, whose
/// requests and replies these events copy.
const ECHO_METHOD: &str = "echo_inline";

/// The method `stream-take --codec` opens its stream with, the load
/// server's stream of binary items.
const STREAM_METHOD: &str = "blobs";

/// Round trips and one-way transfers over bare ZeroMQ sockets.
#[derive(Parser, Debug)]
#[command(name = "zerorpc-bench-raw", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A ROUTER sending every message back to its sender.
    Echo {
        /// Endpoint to bind.
        #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_BIND)]
        bind: String,
        #[command(flatten)]
        floor: Floor,
    },
    /// A DEALER making round trips to `echo` and reporting their latency.
    Call {
        /// The `echo` endpoint.
        #[arg(long, value_name = "ENDPOINT")]
        connect: String,
        #[command(flatten)]
        round_trips: RoundTrips,
        #[command(flatten)]
        floor: Floor,
    },
    /// A PULL keeping the latest report batches of `call --traced` and
    /// `echo --traced`: the least a trace collector does.
    Sink {
        /// Endpoint to bind.
        #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_BIND)]
        bind: String,
    },
    /// libzmq's own proxy from a bound ROUTER to a DEALER connected to
    /// `echo`: the floor for a relay.
    Relay {
        /// Endpoint to bind for `call`.
        #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_BIND)]
        bind: String,
        /// The `echo` endpoint.
        #[arg(long, value_name = "ENDPOINT")]
        connect: String,
    },
    /// A PULL receiving `--items` messages and reporting the rate.
    Pull {
        /// Endpoint to bind.
        #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_BIND)]
        bind: String,
        #[command(flatten)]
        transfer: Transfer,
    },
    /// A PUSH sending `--items` messages to `pull`.
    Push {
        /// The `pull` endpoint.
        #[arg(long, value_name = "ENDPOINT")]
        connect: String,
        #[command(flatten)]
        transfer: Transfer,
    },
    /// A ROUTER answering each request of a DEALER with `--items` messages
    /// `[routing id, "", item]`: a stream as the protocol frames it.
    StreamServe {
        /// Endpoint to bind.
        #[arg(long, value_name = "ENDPOINT", default_value = DEFAULT_BIND)]
        bind: String,
        #[command(flatten)]
        transfer: Transfer,
        /// Send each item as a ZeroRPC `STREAM` event, encoded with our
        /// codec.
        #[arg(long)]
        codec: bool,
    },
    /// A DEALER asking `stream-serve` for a stream of `--items` messages and
    /// reporting the rate.
    StreamTake {
        /// The `stream-serve` endpoint.
        #[arg(long, value_name = "ENDPOINT")]
        connect: String,
        #[command(flatten)]
        transfer: Transfer,
        /// Ask with a ZeroRPC request and expect `STREAM` events, decoded
        /// with our codec.
        #[arg(long)]
        codec: bool,
    },
}

/// What `call` does.
#[derive(clap::Args, Debug, Clone, Copy)]
struct RoundTrips {
    /// Measured round trips.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = RangedU64ValueParser::<u64>::new())]
    calls: u64,
    /// Round trips waiting for their reply at once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    in_flight: usize,
    /// Bytes of each message (its first 8 are its sequence number).
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_BYTES))]
    bytes: usize,
    /// Round trips made first, neither measured nor counted.
    #[arg(long, value_name = "N", default_value_t = 0)]
    warmup: u64,
}

/// What `call` and `echo` add to bare round trips; see the module's
/// documentation.
#[derive(clap::Args, Debug, Clone)]
struct Floor {
    /// Hand every message between the socket's thread and another thread:
    /// on `call` the caller reaches the DEALER through an I/O thread, on
    /// `echo` a worker thread makes the replies.
    #[arg(long)]
    handoff: bool,
    /// Exchange ZeroRPC events encoded with our codec, `echo_inline([i,
    /// <BYTES bytes>])` and its `OK` reply, rather than opaque bytes (both
    /// ends need the flag).
    #[arg(long)]
    codec: bool,
    /// Carry trace context in every event's header, as traced peers do,
    /// and report each call once from each side, in batches, to the `sink`
    /// at ENDPOINT (needs `--codec`).
    #[arg(
        long,
        value_name = "ENDPOINT",
        requires = "codec",
        conflicts_with = "handoff"
    )]
    traced: Option<String>,
}

/// What `push` and `stream-serve` send and `pull` and `stream-take`
/// expect.
#[derive(clap::Args, Debug, Clone, Copy)]
struct Transfer {
    /// Number of messages.
    #[arg(long, value_name = "N", value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
    items: u64,
    /// Bytes of each message.
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_BYTES))]
    bytes: usize,
}

fn main() -> ExitCode {
    // The same allocator settings as the programs measured against it
    // (see `tune_malloc`): raw libzmq's large messages gain from them too.
    zerorpc::transport::tune_malloc();
    let args = Args::parse();
    let context = zmq::Context::new();
    let result = match args.command {
        Command::Echo { bind, floor } => echo(&context, &bind, floor),
        Command::Call {
            connect,
            round_trips,
            floor,
        } => call(&context, &connect, round_trips, floor),
        Command::Sink { bind } => sink(&context, &bind),
        Command::Relay { bind, connect } => relay(&context, &bind, &connect),
        Command::Pull { bind, transfer } => pull(&context, &bind, transfer),
        Command::Push { connect, transfer } => push(&context, &connect, transfer),
        Command::StreamServe {
            bind,
            transfer,
            codec,
        } => stream_serve(&context, &bind, transfer, codec),
        Command::StreamTake {
            connect,
            transfer,
            codec,
        } => stream_take(&context, &connect, transfer, codec),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zerorpc-bench-raw: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Binds `socket` to `endpoint` and prints `listening <endpoint>` with the
/// port filled in.
fn bind_and_announce(socket: &zmq::Socket, endpoint: &str) -> anyhow::Result<()> {
    socket
        .bind(endpoint)
        .with_context(|| format!("cannot bind {endpoint}"))?;
    let bound = socket
        .get_last_endpoint()
        .context("cannot read the bound endpoint")?
        .map_err(|bytes| anyhow::anyhow!("bound endpoint is not UTF-8: {bytes:?}"))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {bound}")?;
    stdout.flush()?;
    Ok(())
}

/// Lifts the high-water marks of a socket of round trips. A ROUTER drops
/// what it cannot queue for a peer, and libzmq accounts for queued messages
/// in batches, so a window of 1,000 in flight can hit the default mark of
/// 1,000 and lose replies. The window bounds the queues anyway.
fn unbounded_queues(socket: &zmq::Socket) -> anyhow::Result<()> {
    socket.set_sndhwm(0)?;
    socket.set_rcvhwm(0)?;
    Ok(())
}

fn echo(context: &zmq::Context, endpoint: &str, floor: Floor) -> anyhow::Result<()> {
    let router = context.socket(zmq::ROUTER)?;
    router.set_linger(0)?;
    unbounded_queues(&router)?;
    bind_and_announce(&router, endpoint)?;
    if let Some(sink) = &floor.traced {
        return echo_traced(&router, Reporter::connect(context, sink)?);
    }
    match (floor.handoff, floor.codec) {
        (false, false) => bounce(&router),
        (false, true) => loop {
            let Some(mut request) = receive_routed(&router, true)? else {
                continue;
            };
            request.payload = answer(&request.payload)?.into();
            send_routed(&router, request)?;
        },
        (true, codec) => echo_through_worker(&router, codec),
    }
}

/// Sends every message back, frame by frame (routing id, delimiter,
/// payload), without copying.
fn bounce(router: &zmq::Socket) -> anyhow::Result<()> {
    let mut frame = zmq::Message::new();
    loop {
        router.recv(&mut frame, 0).context("receiving")?;
        let more = if frame.get_more() { zmq::SNDMORE } else { 0 };
        let sent = std::mem::replace(&mut frame, zmq::Message::new());
        router.send(sent, more).context("sending")?;
    }
}

/// `echo --handoff`: this thread only moves messages between the ROUTER
/// and a worker thread, which makes the replies.
fn echo_through_worker(router: &zmq::Socket, codec: bool) -> anyhow::Result<()> {
    let (to_worker, requests) = mpsc::channel::<Routed>();
    let (replies, mut inbox) = handoff::<Routed>()?;
    let worker = thread::Builder::new()
        .name("worker".to_owned())
        .spawn(move || -> anyhow::Result<()> {
            // Blocks, and is woken by the ROUTER's thread, for every request
            // that finds it idle: the hand-off being measured.
            for mut request in requests {
                if codec {
                    request.payload = answer(&request.payload)?.into();
                }
                if replies.send(request).is_err() {
                    break;
                }
            }
            Ok(())
        })
        .context("cannot start the worker thread")?;
    loop {
        let mut items = [inbox.poll_item(), router.as_poll_item(zmq::POLLIN)];
        poll(&mut items)?;
        let (woken, readable) = (items[0].is_readable(), items[1].is_readable());
        if woken && !inbox.drain(|reply| send_routed(router, reply))? {
            return Err(stopped(worker, "worker"));
        }
        if readable {
            while let Some(request) = receive_routed(router, false)? {
                if to_worker.send(request).is_err() {
                    return Err(stopped(worker, "worker"));
                }
            }
        }
    }
}

/// What `echo --codec` does with a request: decodes it, checks that it
/// calls the load server's echo with one argument, and encodes the `OK`
/// reply that argument makes, as the load server's inline echo does.
fn answer(request: &[u8]) -> anyhow::Result<Vec<u8>> {
    let request = Event::decode(request).context("a request that is not an event")?;
    Ok(reply_to(request, Header::new())?.encode())
}

/// The `OK` reply to an `echo_inline` request, with `header` (the
/// request's id set in it).
fn reply_to(request: Event, mut header: Header) -> anyhow::Result<Event> {
    if request.name != ECHO_METHOD {
        bail!("a call of {:?}, not {ECHO_METHOD}", request.name);
    }
    let args = match request.args {
        Value::Array(args) if args.len() == 1 => args,
        other => bail!("{ECHO_METHOD} takes one argument, not {other}"),
    };
    header.response_to = Some(request.header.message_id);
    // `OK`'s args are `[result]`, and the result is the argument.
    Ok(Event::new(header, names::OK, Value::Array(args)))
}

/// `echo --codec --traced`: answers as `echo --codec` does, the reply
/// carrying the request's trace keys, and reports each call.
fn echo_traced(router: &zmq::Socket, mut reporter: Reporter) -> anyhow::Result<()> {
    loop {
        let Some(mut message) = receive_routed(router, true)? else {
            continue;
        };
        let received_us = now_us();
        let request = Event::decode(&message.payload).context("a request that is not an event")?;
        let ids = CallIds::of(&request.header).context("a request without trace keys")?;
        let mut header = Header::new();
        trace_floor::copy_keys(&request.header, &mut header);
        message.payload = reply_to(request, header)?.encode().into();
        reporter.report(&CallRecord {
            ids,
            server: true,
            method: ECHO_METHOD,
            peer: trace_floor::Peer::RoutingId(&message.id),
            called_us: received_us,
            replied_us: now_us(),
        });
        send_routed(router, message)?;
    }
}

/// Keeps the report batches of traced floors.
fn sink(context: &zmq::Context, endpoint: &str) -> anyhow::Result<()> {
    let pull = context.socket(zmq::PULL)?;
    pull.set_linger(0)?;
    bind_and_announce(&pull, endpoint)?;
    Sink::new(pull).run()
}

/// A message a ROUTER received or sends: `[routing id, "", payload]`.
struct Routed {
    id: zmq::Message,
    payload: zmq::Message,
}

/// Receives one `[routing id, "", payload]` message; `None` if `wait` is
/// false and none is there.
fn receive_routed(router: &zmq::Socket, wait: bool) -> anyhow::Result<Option<Routed>> {
    let mut id = zmq::Message::new();
    match router.recv(&mut id, if wait { 0 } else { zmq::DONTWAIT }) {
        Ok(()) => {}
        Err(zmq::Error::EAGAIN) if !wait => return Ok(None),
        Err(e) => return Err(e).context("receiving"),
    }
    let mut delimiter = zmq::Message::new();
    let mut payload = zmq::Message::new();
    // The rest of a message is there once its first frame is.
    if id.get_more() {
        router.recv(&mut delimiter, 0).context("receiving")?;
    }
    if delimiter.get_more() {
        router.recv(&mut payload, 0).context("receiving")?;
    }
    if !id.get_more() || !delimiter.is_empty() || !delimiter.get_more() || payload.get_more() {
        bail!("expected a request [routing id, \"\", payload]");
    }
    Ok(Some(Routed { id, payload }))
}

fn send_routed(router: &zmq::Socket, message: Routed) -> anyhow::Result<()> {
    router.send(message.id, zmq::SNDMORE).context("sending")?;
    router.send("", zmq::SNDMORE).context("sending")?;
    router.send(message.payload, 0).context("sending")?;
    Ok(())
}

/// Relays between `call`s and an `echo` with `zmq_proxy`, which returns
/// only on an error.
fn relay(context: &zmq::Context, bind: &str, connect: &str) -> anyhow::Result<()> {
    let front = context.socket(zmq::ROUTER)?;
    let back = context.socket(zmq::DEALER)?;
    for socket in [&front, &back] {
        socket.set_linger(0)?;
        unbounded_queues(socket)?;
    }
    back.connect(connect)
        .with_context(|| format!("cannot connect to {connect}"))?;
    bind_and_announce(&front, bind)?;
    zmq::proxy(&front, &back).context("relaying")?;
    Ok(())
}

fn call(
    context: &zmq::Context,
    endpoint: &str,
    round_trips: RoundTrips,
    floor: Floor,
) -> anyhow::Result<()> {
    let dealer = context.socket(zmq::DEALER)?;
    dealer.set_linger(0)?;
    unbounded_queues(&dealer)?;
    dealer.set_rcvtimeo(millis(RECEIVE_TIMEOUT))?;
    dealer
        .connect(endpoint)
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    let link = if floor.handoff {
        Link::Handoff(IoThread::start(dealer)?)
    } else {
        Link::Direct(dealer)
    };
    let traced = match &floor.traced {
        Some(sink) => Some(TracedCalls {
            reporter: Reporter::connect(context, sink)?,
            open: VecDeque::new(),
            endpoint: endpoint.to_owned(),
        }),
        None => None,
    };
    let mut client = Dealer {
        link,
        window: round_trips.in_flight,
        bytes: round_trips.bytes,
        next_seq: 0,
        requests_out: floor.codec.then(VecDeque::new),
        traced,
    };
    client
        .round_trips(round_trips.warmup, None)
        .context("warming up")?;
    let mut latencies = Latencies::with_capacity(usize::try_from(round_trips.calls).unwrap_or(0));
    let started = Instant::now();
    client.round_trips(round_trips.calls, Some(&mut latencies))?;
    let elapsed = started.elapsed();
    if let Some(traced) = &mut client.traced {
        traced.reporter.flush();
    }
    client.link.close()?;
    let mut report = serde_json::json!({
        "ok": round_trips.calls,
        "failed": 0,
        "wrong": 0,
        "elapsed_s": elapsed.as_secs_f64(),
    });
    if let Some(summary) = latencies.summary() {
        report["latency_us"] = summary.to_json();
    }
    println!("{report}");
    Ok(())
}

/// A DEALER's side of the round trips, numbered across phases.
struct Dealer {
    link: Link,
    window: usize,
    bytes: usize,
    /// The sequence number of the next message sent.
    next_seq: u64,
    /// With `--codec`, the message ids of the requests awaiting their
    /// replies, oldest first: each reply's `response_to` must be the first.
    requests_out: Option<VecDeque<MessageId>>,
    /// With `--traced`, what reports the calls.
    traced: Option<TracedCalls>,
}

/// A traced client's calls awaiting their replies, and its reports.
struct TracedCalls {
    reporter: Reporter,
    /// The ids of the calls awaiting their replies and when each was sent,
    /// oldest first.
    open: VecDeque<(CallIds, u64)>,
    /// The server's endpoint, the peer of every call.
    endpoint: String,
}

impl Dealer {
    /// Makes `count` round trips, at most `window` at once, recording each
    /// one's time in `latencies` if given. Replies must come back in order:
    /// one DEALER to one ROUTER is a FIFO.
    fn round_trips(
        &mut self,
        count: u64,
        mut latencies: Option<&mut Latencies>,
    ) -> anyhow::Result<()> {
        let first = self.next_seq;
        let end = first + count;
        // Send times by sequence number modulo the window: at most `window`
        // messages are out at once, and they come back in order.
        let mut sent_at = vec![Instant::now(); self.window];
        let mut expected = first;
        let mut reply = zmq::Message::new();
        while expected < end {
            while self.next_seq < end && self.next_seq - expected < self.window as u64 {
                let seq = self.next_seq;
                sent_at[slot(seq, self.window)] = Instant::now();
                let request = self.request(seq);
                self.link.send(request).context("sending")?;
                self.next_seq += 1;
            }
            self.link
                .receive(&mut reply)
                .with_context(|| format!("waiting for reply {expected}"))?;
            self.check(&reply, expected)
                .with_context(|| format!("reply {expected}"))?;
            if let Some(latencies) = latencies.as_deref_mut() {
                latencies.record(sent_at[slot(expected, self.window)].elapsed());
            }
            expected += 1;
        }
        Ok(())
    }

    /// The payload of request `seq`.
    fn request(&mut self, seq: u64) -> Vec<u8> {
        let Some(requests_out) = &mut self.requests_out else {
            return stream_item(seq, self.bytes);
        };
        let mut header = Header::new();
        if let Some(traced) = &mut self.traced {
            let ids = CallIds::start(&mut header);
            traced.open.push_back((ids, now_us()));
        }
        let request = Event::new(header, ECHO_METHOD, echo_args(seq, self.bytes));
        requests_out.push_back(request.header.message_id.clone());
        request.encode()
    }

    /// Fails unless `reply` answers request `seq`.
    fn check(&mut self, reply: &[u8], seq: u64) -> anyhow::Result<()> {
        let Some(requests_out) = &mut self.requests_out else {
            if !is_stream_item(reply, seq, self.bytes) {
                bail!("not the message sent");
            }
            return Ok(());
        };
        let request = requests_out
            .pop_front()
            .context("a reply with no request waiting")?;
        let reply = Event::decode(reply).context("not an event")?;
        if reply.name != names::OK
            || reply.header.response_to.as_ref() != Some(&request)
            || !is_echo_args(&reply.args, seq, self.bytes)
        {
            bail!("not the answer to the request sent");
        }
        if let Some(traced) = &mut self.traced {
            let (ids, sent_us) = traced
                .open
                .pop_front()
                .context("a reply to an untraced call")?;
            let span_id = reply.header.trace.span_id().map(std::num::NonZeroU64::get);
            if span_id != Some(ids.span_id) {
                bail!("a reply without its call's trace keys");
            }
            traced.reporter.report(&CallRecord {
                ids,
                server: false,
                method: ECHO_METHOD,
                peer: trace_floor::Peer::Endpoint(&traced.endpoint),
                called_us: sent_us,
                replied_us: now_us(),
            });
        }
        Ok(())
    }
}

/// The arguments of `echo_inline` call `seq`, as `zerorpc-load-client
/// --echo` sends them: one argument, `[seq, <bytes bytes>]`. The load
/// client's bin is all `x`; this one starts with `seq`, so that the check
/// of a reply is the raw baseline's.
fn echo_args(seq: u64, bytes: usize) -> Value {
    let value = Value::Array(vec![
        Value::from(seq),
        Value::Binary(stream_item(seq, bytes)),
    ]);
    Value::Array(vec![value])
}

/// Whether `args` are [`echo_args`]`(seq, bytes)`: the reply's `[result]`,
/// compared without building the expected value.
fn is_echo_args(args: &Value, seq: u64, bytes: usize) -> bool {
    let Value::Array(args) = args else {
        return false;
    };
    let [Value::Array(value)] = &args[..] else {
        return false;
    };
    matches!(
        &value[..],
        [Value::Integer(n), Value::Binary(item)]
            if n.as_u64() == Some(seq) && is_stream_item(item, seq, bytes)
    )
}

/// Where message `seq`'s send time is kept.
fn slot(seq: u64, window: usize) -> usize {
    // The remainder is below `window`, a usize.
    (seq % window as u64) as usize
}

/// How the caller reaches its DEALER.
enum Link {
    /// It owns the socket.
    Direct(zmq::Socket),
    /// Through an I/O thread that owns it (`call --handoff`).
    Handoff(IoThread),
}

impl Link {
    fn send(&mut self, payload: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Link::Direct(socket) => send_request(socket, payload),
            Link::Handoff(io) => io.send(payload),
        }
    }

    /// Waits for the next reply's payload.
    fn receive(&mut self, payload: &mut zmq::Message) -> anyhow::Result<()> {
        match self {
            Link::Direct(socket) => {
                receive_reply(socket, payload, true)?;
                Ok(())
            }
            Link::Handoff(io) => io.receive(payload),
        }
    }

    /// Stops the I/O thread, if any, and says whether it failed.
    fn close(self) -> anyhow::Result<()> {
        match self {
            Link::Direct(_) => Ok(()),
            Link::Handoff(io) => io.close(),
        }
    }
}

/// Sends `["", payload]` on a DEALER.
fn send_request(socket: &zmq::Socket, payload: Vec<u8>) -> anyhow::Result<()> {
    socket.send("", zmq::SNDMORE).context("sending")?;
    socket.send(payload, 0).context("sending")?;
    Ok(())
}

/// Receives one `["", payload]` message on a DEALER into `payload`, with
/// [`RECEIVE_TIMEOUT`] as a clear error if `wait`; `false` if not `wait`
/// and none is there.
fn receive_reply(
    socket: &zmq::Socket,
    payload: &mut zmq::Message,
    wait: bool,
) -> anyhow::Result<bool> {
    let mut delimiter = zmq::Message::new();
    match socket.recv(&mut delimiter, if wait { 0 } else { zmq::DONTWAIT }) {
        Ok(()) => {}
        Err(zmq::Error::EAGAIN) if wait => bail!("nothing received for {RECEIVE_TIMEOUT:?}"),
        Err(zmq::Error::EAGAIN) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    if !delimiter.is_empty() || !delimiter.get_more() {
        bail!("expected an empty delimiter frame first");
    }
    // The rest of a message is there once its first frame is.
    socket.recv(payload, 0)?;
    if payload.get_more() {
        bail!("expected two frames, an empty delimiter and the payload");
    }
    Ok(true)
}

/// `call --handoff`: the DEALER's own thread, and the caller's end of the
/// hand-offs to and from it.
struct IoThread {
    requests: Handoff<Vec<u8>>,
    replies: mpsc::Receiver<zmq::Message>,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl IoThread {
    fn start(socket: zmq::Socket) -> anyhow::Result<IoThread> {
        let (requests, inbox) = handoff()?;
        let (replies_tx, replies) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("io".to_owned())
            .spawn(move || dealer_io(&socket, inbox, &replies_tx))
            .context("cannot start the I/O thread")?;
        Ok(IoThread {
            requests,
            replies,
            thread,
        })
    }

    fn send(&mut self, payload: Vec<u8>) -> anyhow::Result<()> {
        if self.requests.send(payload).is_err() {
            bail!("the I/O thread has stopped");
        }
        Ok(())
    }

    /// Blocks until the I/O thread hands a reply over.
    fn receive(&mut self, payload: &mut zmq::Message) -> anyhow::Result<()> {
        match self.replies.recv_timeout(RECEIVE_TIMEOUT) {
            Ok(reply) => {
                *payload = reply;
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("nothing received for {RECEIVE_TIMEOUT:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the I/O thread has stopped"),
        }
    }

    fn close(self) -> anyhow::Result<()> {
        // Closing the hand-off wakes the thread, which then sees it closed.
        drop(self.requests);
        match self.thread.join() {
            Ok(result) => result.context("the I/O thread failed"),
            Err(_) => bail!("the I/O thread panicked"),
        }
    }
}

/// The I/O thread of `call --handoff`: sends what the caller hands over and
/// hands every reply back, until the caller closes its end.
fn dealer_io(
    socket: &zmq::Socket,
    mut inbox: Inbox<Vec<u8>>,
    replies: &mpsc::Sender<zmq::Message>,
) -> anyhow::Result<()> {
    loop {
        let mut items = [inbox.poll_item(), socket.as_poll_item(zmq::POLLIN)];
        poll(&mut items)?;
        let (woken, readable) = (items[0].is_readable(), items[1].is_readable());
        if woken && !inbox.drain(|payload| send_request(socket, payload))? {
            return Ok(());
        }
        if readable {
            loop {
                let mut reply = zmq::Message::new();
                if !receive_reply(socket, &mut reply, false)? {
                    break;
                }
                if replies.send(reply).is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// Waits for any of `items`, for as long as it takes; a signal is no error.
fn poll(items: &mut [zmq::PollItem<'_>]) -> anyhow::Result<()> {
    match zmq::poll(items, -1) {
        Ok(_) | Err(zmq::Error::EINTR) => Ok(()),
        Err(e) => Err(e).context("polling"),
    }
}

/// A hand-off to a thread that waits in `zmq_poll`: a queue, and a Unix
/// socket pair whose read end the thread polls next to its ZeroMQ socket,
/// as the transport's command queue does.
fn handoff<T>() -> anyhow::Result<(Handoff<T>, Inbox<T>)> {
    let (queue, queued) = mpsc::channel();
    let (wake, woken) = UnixStream::pair().context("cannot create the wake-up pipe")?;
    for end in [&wake, &woken] {
        end.set_nonblocking(true)
            .context("cannot configure the wake-up pipe")?;
    }
    let pending = Arc::new(AtomicBool::new(false));
    Ok((
        Handoff {
            queue,
            wake,
            pending: Arc::clone(&pending),
        },
        Inbox {
            queue: queued,
            wake: woken,
            pending,
        },
    ))
}

/// The handing end. Dropping it wakes the thread, which then finds the
/// queue closed: the queue is dropped before the wake-up socket, whose
/// closing the thread sees.
struct Handoff<T> {
    queue: mpsc::Sender<T>,
    wake: UnixStream,
    /// Set while a wake-up is on its way, so that a burst of hand-offs
    /// costs one write.
    pending: Arc<AtomicBool>,
}

/// The polling thread's end.
struct Inbox<T> {
    queue: mpsc::Receiver<T>,
    wake: UnixStream,
    pending: Arc<AtomicBool>,
}

/// The receiving thread has gone.
struct Gone;

impl<T> Handoff<T> {
    fn send(&self, item: T) -> Result<(), Gone> {
        self.queue.send(item).map_err(|_| Gone)?;
        if !self.pending.swap(true, Ordering::AcqRel) {
            // A full pipe already holds a wake-up, so WouldBlock is fine.
            let _ = (&self.wake).write(&[1]);
        }
        Ok(())
    }
}

impl<T> Inbox<T> {
    fn poll_item(&self) -> zmq::PollItem<'static> {
        zmq::PollItem::from_fd(self.wake.as_raw_fd(), zmq::POLLIN)
    }

    /// Takes the wake-ups and gives `each` what was handed over; `false`
    /// once the handing end has gone.
    fn drain(&mut self, mut each: impl FnMut(T) -> anyhow::Result<()>) -> anyhow::Result<bool> {
        // The wake-ups first, then the flag: a hand-off that finds the flag
        // clear writes a wake-up after this drain, which wakes the next
        // poll even if its item arrives after the loop below.
        let mut drained = [0u8; 64];
        loop {
            match (&self.wake).read(&mut drained) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("reading the wake-up pipe"),
            }
        }
        // A swap, not a store: acquiring the flag makes the items handed
        // over before it was set visible to the loop below.
        self.pending.swap(false, Ordering::AcqRel);
        loop {
            match self.queue.try_recv() {
                Ok(item) => each(item)?,
                Err(mpsc::TryRecvError::Empty) => return Ok(true),
                Err(mpsc::TryRecvError::Disconnected) => return Ok(false),
            }
        }
    }
}

/// Why a thread that should have run until its hand-off closed has
/// stopped.
fn stopped(thread: JoinHandle<anyhow::Result<()>>, name: &str) -> anyhow::Error {
    match thread.join() {
        Ok(Err(e)) => e.context(format!("the {name} thread failed")),
        Ok(Ok(())) => anyhow!("the {name} thread has stopped"),
        Err(_) => anyhow!("the {name} thread panicked"),
    }
}

/// Receives one frame into `frame`, with [`RECEIVE_TIMEOUT`] as a clear
/// error rather than EAGAIN.
fn receive(socket: &zmq::Socket, frame: &mut zmq::Message) -> anyhow::Result<()> {
    match socket.recv(frame, 0) {
        Ok(()) => Ok(()),
        Err(zmq::Error::EAGAIN) => bail!("nothing received for {RECEIVE_TIMEOUT:?}"),
        Err(e) => Err(e.into()),
    }
}

fn pull(context: &zmq::Context, endpoint: &str, transfer: Transfer) -> anyhow::Result<()> {
    let socket = context.socket(zmq::PULL)?;
    socket.set_linger(0)?;
    socket.set_rcvtimeo(millis(RECEIVE_TIMEOUT))?;
    bind_and_announce(&socket, endpoint)?;
    let mut item = zmq::Message::new();
    let mut started = None;
    for index in 0..transfer.items {
        receive(&socket, &mut item).with_context(|| format!("waiting for item {index}"))?;
        started.get_or_insert_with(Instant::now);
        if item.get_more() || !is_stream_item(&item, index, transfer.bytes) {
            bail!("item {index}: not the message sent");
        }
    }
    report_transfer(transfer, started);
    Ok(())
}

/// Prints the JSON line of a transfer whose first item came at `started`.
fn report_transfer(transfer: Transfer, started: Option<Instant>) {
    let elapsed = started.map_or(Duration::ZERO, |started| started.elapsed());
    let report = serde_json::json!({
        "ok": 1,
        "failed": 0,
        "wrong": 0,
        "items": transfer.items,
        "elapsed_s": elapsed.as_secs_f64(),
    });
    println!("{report}");
}

fn push(context: &zmq::Context, endpoint: &str, transfer: Transfer) -> anyhow::Result<()> {
    let socket = context.socket(zmq::PUSH)?;
    // Exiting must not throw away what is still queued.
    socket.set_linger(millis(LINGER))?;
    socket
        .connect(endpoint)
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    for index in 0..transfer.items {
        socket
            .send(stream_item(index, transfer.bytes), 0)
            .with_context(|| format!("sending item {index}"))?;
    }
    Ok(())
}

fn stream_serve(
    context: &zmq::Context,
    endpoint: &str,
    transfer: Transfer,
    codec: bool,
) -> anyhow::Result<()> {
    let router = context.socket(zmq::ROUTER)?;
    router.set_linger(0)?;
    // A stream has no window to bound its queues, and lifting the marks
    // let a taker of 64 KiB items fall behind by most of a gigabyte. So
    // the marks stay libzmq's, as for `push`, and a full queue blocks the
    // send where a plain ROUTER would drop: what our servers' ROUTERs do
    // too (ROUTER_MANDATORY), queueing where this one waits.
    router.set_router_mandatory(true)?;
    bind_and_announce(&router, endpoint)?;
    loop {
        let Some(request) = receive_routed(&router, true)? else {
            continue;
        };
        let channel = if codec {
            let request =
                Event::decode(&request.payload).context("a request that is not an event")?;
            Some(request.header.message_id)
        } else {
            None
        };
        for index in 0..transfer.items {
            let item = stream_item(index, transfer.bytes);
            let payload = match &channel {
                None => item,
                Some(channel) => {
                    let header = Header {
                        response_to: Some(channel.clone()),
                        ..Header::new()
                    };
                    Event::new(header, names::STREAM, Value::Binary(item)).encode()
                }
            };
            // EHOSTUNREACH on the first frame if the taker has gone.
            let sent = router
                .send(&*request.id, zmq::SNDMORE)
                .and_then(|()| router.send("", zmq::SNDMORE))
                .and_then(|()| router.send(payload, 0));
            sent.with_context(|| format!("sending item {index}"))?;
        }
    }
}

fn stream_take(
    context: &zmq::Context,
    endpoint: &str,
    transfer: Transfer,
    codec: bool,
) -> anyhow::Result<()> {
    let socket = context.socket(zmq::DEALER)?;
    socket.set_linger(0)?;
    // libzmq's marks, as for `pull` (see `stream_serve`).
    socket.set_rcvtimeo(millis(RECEIVE_TIMEOUT))?;
    socket
        .connect(endpoint)
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    let channel = if codec {
        let args = Value::Array(vec![
            Value::from(transfer.items),
            Value::from(transfer.bytes),
        ]);
        let request = Event::new(Header::new(), STREAM_METHOD, args);
        send_request(&socket, request.encode())?;
        Some(request.header.message_id)
    } else {
        send_request(&socket, b"stream".to_vec())?;
        None
    };
    let mut item = zmq::Message::new();
    let mut started = None;
    for index in 0..transfer.items {
        receive_reply(&socket, &mut item, true)
            .with_context(|| format!("waiting for item {index}"))?;
        started.get_or_insert_with(Instant::now);
        let right = match &channel {
            None => is_stream_item(&item, index, transfer.bytes),
            Some(channel) => is_stream_event(&item, channel, index, transfer.bytes),
        };
        if !right {
            bail!("item {index}: not the message sent");
        }
    }
    report_transfer(transfer, started);
    Ok(())
}

/// Whether `payload` is the `STREAM` event of item `index` of the stream
/// opened by request `channel`.
fn is_stream_event(payload: &[u8], channel: &MessageId, index: u64, bytes: usize) -> bool {
    let Ok(event) = Event::decode(payload) else {
        return false;
    };
    event.name == names::STREAM
        && event.header.response_to.as_ref() == Some(channel)
        && matches!(&event.args, Value::Binary(item) if is_stream_item(item, index, bytes))
}

/// A duration as ZeroMQ's milliseconds option.
fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
