//! Tracing in both modes: `--trace`, `--trace-collector` (or
//! `ZERORPC_TRACE_COLLECTOR`), a call continuing the trace of a
//! `TRACEPARENT` it was given, and the trace context handed to the
//! programs `zerorpc --server` runs.

use std::sync::OnceLock;
use std::time::Duration;

use clap::Args;
use zerorpc_tracing_collector::{
    COLLECTOR_VAR, Parent, SpanContext, TRACEPARENT_VAR, TraceId, Tracer, parse_traceparent,
};

use crate::exit::{Failure, chain, stderr_line};

/// How long a call waits at exit for its reports to leave.
const FLUSH: Duration = Duration::from_secs(1);

/// The tracing flags of both modes.
#[derive(Clone, Debug, Default, Args)]
pub(crate) struct TraceFlags {
    /// Trace the call and print `TraceID: <id>` on stderr before its result
    /// (with --server: propagate trace context even without a collector).
    #[arg(long)]
    pub(crate) trace: bool,
    /// Report traced events to the collector at ENDPOINT (repeatable; the
    /// environment variable takes a comma-separated list).
    #[arg(
        long = "trace-collector",
        value_name = "ENDPOINT",
        env = "ZERORPC_TRACE_COLLECTOR",
        value_delimiter = ','
    )]
    pub(crate) collectors: Vec<String>,
}

/// The trace a client invocation makes its calls in.
pub(crate) struct CallTrace {
    pub(crate) tracer: Tracer,
    pub(crate) parent: Parent,
}

impl CallTrace {
    /// Tracing for a client, when asked for by a flag, a collector or a
    /// `TRACEPARENT` to continue; `None` otherwise (nothing on the wire).
    pub(crate) fn new(flags: &TraceFlags) -> Result<Option<CallTrace>, Failure> {
        let inherited = inherited_parent()?;
        if !flags.trace && flags.collectors.is_empty() && inherited.is_none() {
            return Ok(None);
        }
        let tracer = tracer("zerorpc", flags)?;
        let parent = inherited.unwrap_or_else(|| Parent::root_of(TraceId::random()));
        if flags.trace {
            stderr_line(format_args!("TraceID: {}", parent.trace_id));
        }
        Ok(Some(CallTrace { tracer, parent }))
    }

    /// Gives the reports a moment to leave before the process exits.
    pub(crate) fn finish(&self) {
        if !self.tracer.flush(FLUSH) {
            let stats = self.tracer.stats();
            stderr_line(format_args!(
                "zerorpc: warning: trace reports not all sent ({} made, {} sent, {} dropped): is the collector running?",
                stats.reported,
                stats.sent,
                stats.dropped_queue_full + stats.batches_dropped
            ));
        }
    }
}

/// Tracing for `zerorpc --server`, when a flag or a collector asks for it.
/// The programs it runs are given the collectors too.
pub(crate) fn server_tracer(name: &str, flags: &TraceFlags) -> Result<Option<Tracer>, Failure> {
    if !flags.trace && flags.collectors.is_empty() {
        return Ok(None);
    }
    if !flags.collectors.is_empty() {
        let _ = PROGRAM_COLLECTORS.set(flags.collectors.join(","));
    }
    tracer(name, flags).map(Some)
}

/// The collectors the programs of `zerorpc --server` report to.
static PROGRAM_COLLECTORS: OnceLock<String> = OnceLock::new();

/// The environment of a program run for a call: `TRACEPARENT` naming the
/// call (so that a `zerorpc` call the program makes is its child) and the
/// collectors; no `TRACEPARENT` at all for an untraced call, so that one
/// inherited by the server is not continued by mistake.
pub(crate) fn program_env(command: &mut tokio::process::Command) {
    match SpanContext::current() {
        Some(span) => command.env(TRACEPARENT_VAR, span.traceparent()),
        None => command.env_remove(TRACEPARENT_VAR),
    };
    if let Some(collectors) = PROGRAM_COLLECTORS.get() {
        command.env(COLLECTOR_VAR, collectors);
    }
}

fn tracer(name: &str, flags: &TraceFlags) -> Result<Tracer, Failure> {
    let mut builder = Tracer::builder().name(name);
    for endpoint in &flags.collectors {
        builder = builder.collector(endpoint);
    }
    builder
        .build()
        .map_err(|e| Failure::local(format!("cannot start tracing: {}", chain(&e))))
}

fn inherited_parent() -> Result<Option<Parent>, Failure> {
    let Ok(value) = std::env::var(TRACEPARENT_VAR) else {
        return Ok(None);
    };
    let parent = parse_traceparent(&value)
        .map_err(|e| Failure::usage(format!("{TRACEPARENT_VAR} in the environment: {e}")))?;
    Ok(Some(Parent {
        trace_id: parent.trace_id,
        span_id: Some(parent.span_id),
    }))
}
