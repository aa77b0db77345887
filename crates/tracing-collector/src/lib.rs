//! Tracing for zerorpc: which call started the subcall that failed, and
//! which subcall makes a call slow.
//!
//! * **Propagation.** Traced calls carry a trace id, their span id and
//!   their parent's span id in the request header (see [`TRACE_ID_KEY`],
//!   [`SPAN_ID_KEY`], [`PARENT_SPAN_ID_KEY`]; a W3C `traceparent` is
//!   accepted too). Calls made while serving a traced call are its
//!   children, whatever runs the handler (async, blocking pool, inline, a
//!   task started with [`spawn`]); calls made outside any are roots of a
//!   fresh trace. A server's replies carry the call's ids.
//! * **Reports.** Every traced event a process sends or receives is
//!   reported, through a bounded queue and a ZeroMQ PUSH socket, to a
//!   collector; nothing waits for it and what cannot be sent is counted
//!   ([`TracerStats`]). Each served call runs in a `tracing` span
//!   (`zerorpc_call`) with its trace and span ids, so the handler's own
//!   logs carry them.
//! * **Collection.** A [`Collector`] writes reports to Redis (a server or
//!   a cluster) in pipelined batches, with a TTL on every key and
//!   per-minute counters per service and method, or keeps them in memory
//!   ([`InMemoryCollector`]).
//! * **Reading.** [`Traces`] reads a trace back from Redis or a
//!   collector; [`Trace`] assembles it into calls and prints it as the
//!   original tracedump did, or as JSON, Graphviz, OTLP or Zipkin.
//!
//! Turning tracing on is one line per builder:
//!
//! ```
//! use zerorpc::{Client, Server};
//! use zerorpc_tracing_collector::{InMemoryCollector, Trace, Traced, Tracer, Traces};
//!
//! struct Hello;
//!
//! #[zerorpc::service]
//! impl Hello {
//!     pub fn hello(&self, name: String) -> String {
//!         format!("hello {name}")
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let collector = InMemoryCollector::start("tcp://127.0.0.1:*")?;
//! let tracer = Tracer::builder()
//!     .name("hello")
//!     .collector(collector.endpoint())
//!     .build()?;
//! let server = Server::builder(Hello)
//!     .bind("tcp://127.0.0.1:*")
//!     .traced(&tracer)
//!     .build()?;
//! let client = Client::builder()
//!     .connect(&server.endpoints()[0])
//!     .traced(&tracer)
//!     .build()?;
//! tokio::spawn(server.serve());
//!
//! let trace_id = zerorpc_tracing_collector::TraceId::random();
//! let parent = zerorpc_tracing_collector::Parent::root_of(trace_id);
//! let reply: String = zerorpc_tracing_collector::in_trace(parent, client.call("hello", ("you",))).await?;
//! assert_eq!(reply, "hello you");
//!
//! tracer.flush(std::time::Duration::from_secs(5));
//! let traces = Traces::collector(collector.query_endpoint())?;
//! # let mut entries = Vec::new();
//! # for _ in 0..200 {
//! #     entries = traces.trace(trace_id).await?;
//! #     if entries.len() == 4 { break; }
//! #     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! # }
//! // The call as the client sent it, the server received and answered
//! // it, and the client received the answer.
//! let trace = Trace::assemble(trace_id, entries);
//! print!("{}", trace.to_text());
//! # assert_eq!(trace.calls.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! The header keys, the Redis layout and sizing, and the command-line
//! tools (`zerorpc collector`, `zerorpc tracedump`, `zerorpc top`) are
//! described in docs/tracing.md.
//!
//! This crate depends on the core crate only through its public
//! attachment points (`zerorpc::Propagation`, transport observers); the
//! core knows nothing of Redis. It has no feature flags.

#![doc(test(attr(deny(warnings))))]

mod collector;
mod context;
mod dump;
mod error;
mod observer;
mod propagation;
mod read;
mod record;
mod report;
mod store;
mod tracer;
mod watch;

pub use collector::{
    Collector, CollectorBuilder, CollectorStats, DEFAULT_MEMORY_ENTRIES, DEFAULT_TTL,
    InMemoryCollector, Storage,
};
pub use context::{
    ContextError, PARENT_SPAN_ID_KEY, SPAN_ID_KEY, SpanContext, SpanId, TRACE_ID_KEY,
    TRACEPARENT_KEY, TraceId, TraceParent, parse_traceparent,
};
pub use dump::{Call, ReplyEntry, Trace};
pub use error::{Error, Result};
pub use propagation::{Parent, TracePropagation, current_scope, in_trace, spawn};
pub use read::{REDIS_URL_VAR, Traces};
pub use report::{Direction, Kind, Report, Side};
pub use store::{ALL_METHODS, Counters};
pub use tracer::{
    COLLECTOR_VAR, DEFAULT_QUEUE_CAPACITY, TRACEPARENT_VAR, Traced, Tracer, TracerBuilder,
    TracerStats,
};
