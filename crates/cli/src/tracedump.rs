//! The reading commands: `zerorpc tracedump ID` prints a trace, `zerorpc
//! top` the live request rates, error rates and latencies per service and
//! method, from Redis or from a collector.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use zerorpc_tracing_collector::{Counters, Trace, TraceId, Traces};

use crate::exit::{Failure, chain, output_error};

/// Where the reading commands find traces.
#[derive(Debug, Args)]
pub(crate) struct SourceArgs {
    /// Read from the Redis server at URL.
    #[arg(long, value_name = "URL", env = "ZERORPC_REDIS_URL")]
    pub(crate) redis: Option<String>,
    /// Read from a Redis Cluster, given seed node URLs (repeatable or comma-separated).
    #[arg(long = "redis-cluster", value_name = "URL", value_delimiter = ',')]
    pub(crate) redis_cluster: Vec<String>,
    /// Ask the collector's query endpoint (wins over --redis and ZERORPC_REDIS_URL).
    #[arg(long, value_name = "ENDPOINT")]
    pub(crate) collector: Option<String>,
}

impl SourceArgs {
    async fn open(&self) -> Result<Traces, Failure> {
        let opened = match (&self.collector, &self.redis_cluster[..], &self.redis) {
            (Some(endpoint), _, _) => Traces::collector(endpoint),
            (None, [_, ..], _) => Traces::redis_cluster(&self.redis_cluster).await,
            (None, [], Some(url)) => Traces::redis(url),
            (None, [], None) => {
                return Err(Failure::usage(
                    "where are the traces? give --redis URL (or ZERORPC_REDIS_URL), \
                     --redis-cluster URL or --collector ENDPOINT",
                ));
            }
        };
        opened.map_err(|e| Failure::local(chain(&e)))
    }
}

/// `zerorpc tracedump`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct TracedumpArgs {
    /// The trace id (as printed by `zerorpc --trace`).
    pub(crate) id: String,
    /// Print JSON (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
    /// The output format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub(crate) format: Option<DumpFormat>,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// `zerorpc tracedump --format` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum DumpFormat {
    /// One line per message, in time order, indented by depth.
    Text,
    /// The calls with their timings, and the raw entries.
    Json,
    /// A Graphviz digraph of the call tree.
    Dot,
    /// The call tree drawn by Graphviz's `dot` (which must be installed).
    Svg,
    /// OTLP/JSON, for OpenTelemetry collectors, Jaeger or Grafana Tempo.
    Otlp,
    /// Zipkin v2 JSON.
    Zipkin,
}

/// Prints one trace.
pub(crate) async fn tracedump(args: TracedumpArgs) -> Result<(), Failure> {
    let trace_id: TraceId = args
        .id
        .parse()
        .map_err(|e| Failure::usage(format!("{e}")))?;
    let traces = args.source.open().await?;
    let entries = traces
        .trace(trace_id)
        .await
        .map_err(|e| Failure::local(chain(&e)))?;
    if entries.is_empty() {
        return Err(Failure::local(format!(
            "no trace {trace_id}: unknown, expired, or not reported yet"
        )));
    }
    let trace = Trace::assemble(trace_id, entries);
    let format = if args.json {
        DumpFormat::Json
    } else {
        args.format.unwrap_or(DumpFormat::Text)
    };
    let pretty =
        |json: serde_json::Value| serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
    let output = match format {
        DumpFormat::Text => trace.to_text().into_bytes(),
        DumpFormat::Json => pretty(trace.to_json()).into_bytes(),
        DumpFormat::Dot => trace.to_dot().into_bytes(),
        DumpFormat::Svg => svg(&trace.to_dot())?,
        DumpFormat::Otlp => pretty(trace.to_otlp()).into_bytes(),
        DumpFormat::Zipkin => pretty(trace.to_zipkin()).into_bytes(),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&output)
        .and_then(|()| out.flush())
        .map_err(output_error)
}

/// Graphviz's drawing of a dot graph.
fn svg(dot: &str) -> Result<Vec<u8>, Failure> {
    use std::process::{Command, Stdio};
    let child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::local(
                "--format svg needs Graphviz's `dot` (apt-get install graphviz); \
                 --format dot prints the graph for another renderer",
            ));
        }
        Err(e) => return Err(Failure::local(format!("cannot run dot: {e}"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| Failure::local(format!("cannot feed dot: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| Failure::local(format!("dot failed: {e}")))?;
    if !output.status.success() {
        return Err(Failure::local(format!(
            "dot failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

/// `zerorpc top`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    /// Minutes of counters summed (the current one included).
    #[arg(long, value_name = "N", default_value = "5")]
    pub(crate) minutes: u64,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECONDS", default_value = "2")]
    pub(crate) interval: f64,
    /// Refresh this many times, then exit (default: until interrupted on a
    /// terminal, once otherwise).
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
}

/// Shows the counters, refreshed on a terminal, as plain text otherwise.
pub(crate) async fn top(args: TopArgs) -> Result<(), Failure> {
    if !(1..=24 * 60).contains(&args.minutes) {
        return Err(Failure::usage("--minutes must be between 1 and 1440"));
    }
    if !args.interval.is_finite() || !(0.1..=3600.0).contains(&args.interval) {
        return Err(Failure::usage(
            "--interval must be between 0.1 and 3600 seconds",
        ));
    }
    let terminal = std::io::stdout().is_terminal();
    let count = args.count.unwrap_or(if terminal { u64::MAX } else { 1 });
    let traces = args.source.open().await?;
    for frame in 0..count {
        if frame > 0 {
            tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let minute = now.as_secs() / 60;
        let first = minute + 1 - args.minutes;
        let rows = traces
            .counters(first, minute)
            .await
            .map_err(|e| Failure::local(chain(&e)))?;
        // The current minute is partly over: rates are per second of the
        // time the window really covers.
        let seconds = (args.minutes - 1) as f64 * 60.0 + (now.as_secs() % 60) as f64 + 1.0;
        let mut text = String::new();
        if terminal {
            text.push_str("\x1b[H\x1b[2J");
        }
        text.push_str(&table(&rows, args.minutes, seconds));
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(output_error)?;
    }
    Ok(())
}

/// The counters summed per service and method over the window.
fn table(rows: &[Counters], minutes: u64, seconds: f64) -> String {
    let mut sums: BTreeMap<(&str, &str), (u64, u64, u64, u64)> = BTreeMap::new();
    for row in rows {
        let sum = sums.entry((&row.service, &row.method)).or_default();
        sum.0 += row.calls;
        sum.1 += row.errors;
        sum.2 += row.total_us;
        sum.3 = sum.3.max(row.max_us);
    }
    let mut text = format!(
        "last {minutes} minute(s)\n{:<24} {:<24} {:>8} {:>9} {:>6} {:>9} {:>9}\n",
        "SERVICE", "METHOD", "CALLS", "CALLS/S", "ERR%", "AVG ms", "MAX ms"
    );
    if sums.is_empty() {
        text.push_str("(no calls)\n");
    }
    for ((service, method), (calls, errors, total, max)) in sums {
        let calls_f = calls.max(1) as f64;
        text.push_str(&format!(
            "{service:<24} {method:<24} {calls:>8} {:>9.2} {:>6.1} {:>9.2} {:>9.2}\n",
            calls as f64 / seconds,
            errors as f64 * 100.0 / calls_f,
            total as f64 / calls_f / 1000.0,
            max as f64 / 1000.0
        ));
    }
    text
}
