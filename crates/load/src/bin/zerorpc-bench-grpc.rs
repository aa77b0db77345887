//! `zerorpc-bench-grpc`: the suite's workloads over gRPC in Rust (tonic,
//! protobuf over HTTP/2), what a user would pick instead of ZeroRPC, so
//! that `cargo xtask bench` can set ours beside it in the same run.
//!
//! The service, `bench.Bench`, has the workloads' two shapes: `Echo`, a
//! unary call sending back its request (a sequence number and a payload),
//! and `Count`, a server-streaming call of N items (a sequence number and
//! `zerorpc_load::stream_item`'s payload). It is written against tonic's
//! generic server and client (`tonic::server::Grpc`,
//! `tonic::client::Grpc`) with messages derived by `prost`, which is what
//! tonic's code generator emits, without needing `protoc` to build.
//! Defaults are tonic's, with `TCP_NODELAY` on both ends (libzmq sets it
//! too).
//!
//! The commands:
//!
//! * `serve [--bind ADDR]`: serves `bench.Bench`; prints `listening
//!   http://ADDR` once bound and serves until killed.
//! * `call --connect URL`: `--calls` `Echo` calls of `--bytes`-byte
//!   payloads, `--in-flight` at once over one connection (HTTP/2 streams),
//!   after `--warmup` unmeasured ones, checking every reply; prints one
//!   JSON line like `zerorpc-load-client`'s: `ok`, `failed`, `wrong`,
//!   `elapsed_s` and `latency_us` (`p50`, `p90`, `p99`, `max`, `mean`).
//! * `stream --connect URL --items N`: one `Count` stream of N items of
//!   `--bytes` bytes, checking each; prints `ok`, `failed`, `wrong`,
//!   `items` and `elapsed_s`, from the request to the last item.
//!
//! Exit status: 0 on success, 1 if a call or item failed, was wrong or
//! missing, or the server could not be bound or reached (the reason on
//! stderr), 2 on a bad command line.

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use serde_json::json;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::{BoxFuture, StdError, http};
use tonic::server::NamedService;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;
use zerorpc_load::{Latencies, is_stream_item, stream_item};

/// The largest `--bytes`: a bound on what one bad flag can allocate.
const MAX_BYTES: u64 = 64 << 20;

/// How long a call or the next item may take before the run fails: a
/// safety net, far above any wait a working server causes.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The service's name, as a `.proto` file would declare it.
const SERVICE: &str = "bench.Bench";
const ECHO_PATH: &str = "/bench.Bench/Echo";
const COUNT_PATH: &str = "/bench.Bench/Count";

/// Unary calls and server-streaming calls over gRPC (tonic).
#[derive(Parser, Debug)]
#[command(name = "zerorpc-bench-grpc", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serves `bench.Bench` until killed.
    Serve {
        /// Address to bind (port 0: any free port).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        bind: SocketAddr,
    },
    /// Makes `Echo` calls and reports their latency.
    Call {
        /// The server's URL (`http://ADDR`).
        #[arg(long, value_name = "URL")]
        connect: String,
        /// Measured calls.
        #[arg(long, default_value_t = 10_000, value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
        calls: u64,
        /// Calls waiting for their reply at once.
        #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
        in_flight: usize,
        /// Unmeasured calls made first.
        #[arg(long, default_value_t = 1_000)]
        warmup: u64,
        /// Payload bytes of each call.
        #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(..=MAX_BYTES))]
        bytes: usize,
    },
    /// Opens one `Count` stream and takes its items.
    Stream {
        /// The server's URL (`http://ADDR`).
        #[arg(long, value_name = "URL")]
        connect: String,
        /// Items of the stream.
        #[arg(long, value_parser = RangedU64ValueParser::<u64>::new().range(1..))]
        items: u64,
        /// Bytes of each item.
        #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(8..=MAX_BYTES))]
        bytes: usize,
    },
}

/// A call of `Echo`, and its reply: the same two fields.
#[derive(Clone, PartialEq, prost::Message)]
struct Echo {
    #[prost(uint64, tag = "1")]
    seq: u64,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
}

/// The request of a `Count` stream.
#[derive(Clone, PartialEq, prost::Message)]
struct CountRequest {
    #[prost(uint64, tag = "1")]
    items: u64,
    #[prost(uint64, tag = "2")]
    bytes: u64,
}

/// One item of a `Count` stream.
#[derive(Clone, PartialEq, prost::Message)]
struct Item {
    #[prost(uint64, tag = "1")]
    seq: u64,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zerorpc-bench-grpc: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match args.command {
            Command::Serve { bind } => serve(bind).await,
            Command::Call {
                connect,
                calls,
                in_flight,
                warmup,
                bytes,
            } => call(&connect, calls, in_flight, warmup, bytes).await,
            Command::Stream {
                connect,
                items,
                bytes,
            } => take_stream(&connect, items, bytes).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zerorpc-bench-grpc: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot bind {bind}"))?;
    let local = listener.local_addr().context("no local address")?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    println!("listening http://{local}");
    Server::builder()
        .add_service(Bench)
        .serve_with_incoming(incoming)
        .await
        .context("the server stopped")
}

async fn connect(url: &str) -> anyhow::Result<tonic::client::Grpc<Channel>> {
    let channel = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url:?} is not a URL"))?
        .tcp_nodelay(true)
        .timeout(TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    Ok(tonic::client::Grpc::new(channel))
}

async fn echo(
    mut grpc: tonic::client::Grpc<Channel>,
    seq: u64,
    bytes: usize,
) -> Result<bool, Status> {
    let request = Echo {
        seq,
        payload: stream_item(seq, bytes),
    };
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::from_static(ECHO_PATH);
    let reply: Response<Echo> = grpc
        .unary(Request::new(request), path, ProstCodec::default())
        .await?;
    let reply = reply.into_inner();
    Ok(reply.seq == seq && is_stream_item(&reply.payload, seq, bytes))
}

async fn call(
    url: &str,
    calls: u64,
    in_flight: usize,
    warmup: u64,
    bytes: usize,
) -> anyhow::Result<()> {
    let grpc = connect(url).await?;
    let run = |first: u64, count: u64| {
        let grpc = grpc.clone();
        stream::iter(first..first + count)
            .map(move |seq| {
                let grpc = grpc.clone();
                async move {
                    let started = Instant::now();
                    let answer = echo(grpc, seq, bytes).await;
                    (answer, started.elapsed())
                }
            })
            .buffer_unordered(in_flight)
    };
    let mut warming = run(0, warmup);
    while let Some((answer, _)) = warming.next().await {
        if !answer.context("a warm-up call failed")? {
            bail!("a warm-up call was answered wrong");
        }
    }
    let mut latencies = Latencies::with_capacity(usize::try_from(calls).unwrap_or(0));
    let (mut ok, mut failed, mut wrong) = (0u64, 0u64, 0u64);
    let mut count = |answer: Result<bool, Status>, took: Duration| {
        latencies.record(took);
        match answer {
            Ok(true) => ok += 1,
            Ok(false) => wrong += 1,
            Err(status) => {
                if failed == 0 {
                    eprintln!("zerorpc-bench-grpc: a call failed: {status}");
                }
                failed += 1;
            }
        }
    };
    let started = Instant::now();
    if in_flight == 1 {
        // Each call awaited before the next, as `zerorpc-load-client` makes
        // them one at a time (a set of futures would add a wake-up per
        // call).
        for seq in warmup..warmup + calls {
            let call_started = Instant::now();
            let answer = echo(grpc.clone(), seq, bytes).await;
            count(answer, call_started.elapsed());
        }
    } else {
        let mut measured = run(warmup, calls);
        while let Some((answer, took)) = measured.next().await {
            count(answer, took);
        }
    }
    let elapsed = started.elapsed();
    let mut report = json!({
        "ok": ok,
        "failed": failed,
        "wrong": wrong,
        "elapsed_s": elapsed.as_secs_f64(),
    });
    if let Some(summary) = latencies.summary() {
        report["latency_us"] = summary.to_json();
    }
    println!("{report}");
    if ok != calls {
        bail!("{failed} calls failed and {wrong} were answered wrong");
    }
    Ok(())
}

async fn take_stream(url: &str, items: u64, bytes: usize) -> anyhow::Result<()> {
    let mut grpc = connect(url).await?;
    grpc.ready().await.context("the connection is not ready")?;
    let started = Instant::now();
    let request = CountRequest {
        items,
        bytes: bytes as u64,
    };
    let path = PathAndQuery::from_static(COUNT_PATH);
    let response: Response<tonic::Streaming<Item>> = grpc
        .server_streaming(Request::new(request), path, ProstCodec::default())
        .await
        .context("the stream was refused")?;
    let mut stream = response.into_inner();
    let mut taken = 0u64;
    let mut wrong = 0u64;
    while let Some(item) = tokio::time::timeout(TIMEOUT, stream.try_next())
        .await
        .context("no item for too long")?
        .context("the stream failed")?
    {
        if item.seq != taken || !is_stream_item(&item.payload, taken, bytes) {
            wrong += 1;
        }
        taken += 1;
    }
    let elapsed = started.elapsed();
    let ok = u64::from(taken == items && wrong == 0);
    println!(
        "{}",
        json!({
            "ok": ok,
            "failed": 1 - ok,
            "wrong": wrong,
            "items": taken,
            "elapsed_s": elapsed.as_secs_f64(),
        })
    );
    if ok == 0 {
        bail!("took {taken} of {items} items, {wrong} wrong");
    }
    Ok(())
}

/// The `bench.Bench` service, routed by path as tonic's generated servers
/// route.
#[derive(Clone, Copy)]
struct Bench;

impl NamedService for Bench {
    const NAME: &'static str = SERVICE;
}

impl<B> tonic::codegen::Service<http::Request<B>> for Bench
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match request.uri().path() {
            ECHO_PATH => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<Echo, Echo>::default());
                Ok(grpc.unary(EchoMethod, request).await)
            }),
            COUNT_PATH => Box::pin(async move {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<Item, CountRequest>::default());
                Ok(grpc.server_streaming(CountMethod, request).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

struct EchoMethod;

impl tonic::server::UnaryService<Echo> for EchoMethod {
    type Response = Echo;
    type Future = BoxFuture<Response<Echo>, Status>;

    fn call(&mut self, request: Request<Echo>) -> Self::Future {
        Box::pin(async move { Ok(Response::new(request.into_inner())) })
    }
}

struct CountMethod;

type Items = Pin<Box<dyn Stream<Item = Result<Item, Status>> + Send>>;

impl tonic::server::ServerStreamingService<CountRequest> for CountMethod {
    type Response = Item;
    type ResponseStream = Items;
    type Future = BoxFuture<Response<Items>, Status>;

    fn call(&mut self, request: Request<CountRequest>) -> Self::Future {
        let CountRequest { items, bytes } = request.into_inner();
        Box::pin(async move {
            let bytes = usize::try_from(bytes)
                .ok()
                .filter(|&b| b as u64 <= MAX_BYTES)
                .ok_or_else(|| Status::invalid_argument("items too large"))?;
            let items: Items = Box::pin(stream::iter(0..items).map(move |seq| {
                Ok(Item {
                    seq,
                    payload: stream_item(seq, bytes),
                })
            }));
            Ok(Response::new(items))
        })
    }
}
