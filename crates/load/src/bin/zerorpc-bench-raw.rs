//! `zerorpc-bench-raw`: round trips and one-way transfers over bare ZeroMQ
//! sockets, the baseline of `cargo xtask bench`.
//!
//! It goes through the same `zmq` crate (and so the same libzmq) as the
//! transport, with nothing of ZeroRPC on top: no events, no msgpack, no
//! heartbeats, no I/O thread. What it measures is the floor a ZeroRPC call
//! or stream over the same sockets cannot go below.
//!
//! * `echo [--bind ENDPOINT]`: a ROUTER sending every message back to
//!   whoever sent it. Prints `listening <endpoint>` once bound and serves
//!   until killed.
//! * `call --connect ENDPOINT`: a DEALER making `--calls` round trips of
//!   `--bytes`-byte messages with at most `--in-flight` waiting at once
//!   (after `--warmup` unmeasured ones), checking every reply, then printing
//!   one JSON line like `zerorpc-load-client`'s: `ok`, `elapsed_s` and
//!   `latency_us` (`p50`, `p90`, `p99`, `max`, `mean`).
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
//!
//! Messages between DEALER and ROUTER carry an empty delimiter frame before
//! the payload, as ZeroRPC's do. Every message's first 8 bytes are its
//! sequence number, so a lost, repeated or reordered reply is an error.
//!
//! Exit status: 0 on success, 1 if a reply or item was wrong or missing
//! (the reason on stderr), 2 on a bad command line.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};
use zerorpc_load::{Latencies, is_stream_item, stream_item};

/// Where `echo` and `pull` bind when not told.
const DEFAULT_BIND: &str = "tcp://127.0.0.1:*";

/// The largest `--bytes`: a bound on what one bad flag can allocate.
const MAX_BYTES: u64 = 64 << 20;

/// How long a receiver waits for the next message before giving up: a
/// safety net, far above any gap a working peer leaves.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `push` waits for its messages to leave before exiting.
const LINGER: Duration = Duration::from_secs(30);

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
    },
    /// A DEALER making round trips to `echo` and reporting their latency.
    Call {
        /// The `echo` endpoint.
        #[arg(long, value_name = "ENDPOINT")]
        connect: String,
        #[command(flatten)]
        round_trips: RoundTrips,
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

/// What `push` sends and `pull` expects.
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
    let args = Args::parse();
    let context = zmq::Context::new();
    let result = match args.command {
        Command::Echo { bind } => echo(&context, &bind),
        Command::Call {
            connect,
            round_trips,
        } => call(&context, &connect, round_trips),
        Command::Relay { bind, connect } => relay(&context, &bind, &connect),
        Command::Pull { bind, transfer } => pull(&context, &bind, transfer),
        Command::Push { connect, transfer } => push(&context, &connect, transfer),
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

/// Sends every message back, frame by frame (routing id, delimiter,
/// payload), without copying.
fn echo(context: &zmq::Context, endpoint: &str) -> anyhow::Result<()> {
    let router = context.socket(zmq::ROUTER)?;
    router.set_linger(0)?;
    unbounded_queues(&router)?;
    bind_and_announce(&router, endpoint)?;
    let mut frame = zmq::Message::new();
    loop {
        router.recv(&mut frame, 0).context("receiving")?;
        let more = if frame.get_more() { zmq::SNDMORE } else { 0 };
        let sent = std::mem::replace(&mut frame, zmq::Message::new());
        router.send(sent, more).context("sending")?;
    }
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

fn call(context: &zmq::Context, endpoint: &str, round_trips: RoundTrips) -> anyhow::Result<()> {
    let dealer = context.socket(zmq::DEALER)?;
    dealer.set_linger(0)?;
    unbounded_queues(&dealer)?;
    dealer.set_rcvtimeo(millis(RECEIVE_TIMEOUT))?;
    dealer
        .connect(endpoint)
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    let mut client = Dealer {
        socket: dealer,
        window: round_trips.in_flight,
        bytes: round_trips.bytes,
        next_seq: 0,
    };
    client
        .round_trips(round_trips.warmup, None)
        .context("warming up")?;
    let mut latencies = Latencies::with_capacity(usize::try_from(round_trips.calls).unwrap_or(0));
    let started = Instant::now();
    client.round_trips(round_trips.calls, Some(&mut latencies))?;
    let elapsed = started.elapsed();
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
    socket: zmq::Socket,
    window: usize,
    bytes: usize,
    /// The sequence number of the next message sent.
    next_seq: u64,
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
        let mut delimiter = zmq::Message::new();
        let mut payload = zmq::Message::new();
        while expected < end {
            while self.next_seq < end && self.next_seq - expected < self.window as u64 {
                let seq = self.next_seq;
                sent_at[slot(seq, self.window)] = Instant::now();
                self.socket.send("", zmq::SNDMORE).context("sending")?;
                self.socket
                    .send(stream_item(seq, self.bytes), 0)
                    .context("sending")?;
                self.next_seq += 1;
            }
            receive(&self.socket, &mut delimiter).context("waiting for a reply")?;
            if !delimiter.is_empty() || !delimiter.get_more() {
                bail!("reply {expected}: expected an empty delimiter frame first");
            }
            receive(&self.socket, &mut payload).context("waiting for a reply")?;
            if payload.get_more() || !is_stream_item(&payload, expected, self.bytes) {
                bail!("reply {expected}: not the message sent");
            }
            if let Some(latencies) = latencies.as_deref_mut() {
                latencies.record(sent_at[slot(expected, self.window)].elapsed());
            }
            expected += 1;
        }
        Ok(())
    }
}

/// Where message `seq`'s send time is kept.
fn slot(seq: u64, window: usize) -> usize {
    // The remainder is below `window`, a usize.
    (seq % window as u64) as usize
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
    let elapsed = started.map_or(Duration::ZERO, |started| started.elapsed());
    let report = serde_json::json!({
        "ok": 1,
        "failed": 0,
        "wrong": 0,
        "items": transfer.items,
        "elapsed_s": elapsed.as_secs_f64(),
    });
    println!("{report}");
    Ok(())
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

/// A duration as ZeroMQ's milliseconds option.
fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
