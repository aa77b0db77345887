//! `zerorpc collector`: receives trace reports and writes them to Redis
//! (a server or a cluster) or keeps them in memory, answering the reading
//! commands on its query endpoint.

use std::time::Duration;

use clap::Args;
use zerorpc_tracing_collector::{Collector, CollectorStats, DEFAULT_MEMORY_ENTRIES, Storage};

use crate::exit::{Failure, chain, code, stderr_line};

/// `zerorpc collector`'s flags.
#[derive(Debug, Args)]
pub(crate) struct CollectorArgs {
    /// Receive reports on ENDPOINT (repeatable); tracers connect here.
    #[arg(long, value_name = "ENDPOINT", required = true)]
    pub(crate) bind: Vec<String>,
    /// Answer tracedump and top on ENDPOINT (repeatable; default: the
    /// first --bind's host on a port the system picks, printed at start).
    #[arg(long, value_name = "ENDPOINT")]
    pub(crate) query: Vec<String>,
    /// Write to the Redis server at URL (default: keep traces in memory).
    #[arg(long, value_name = "URL", conflicts_with = "redis_cluster")]
    pub(crate) redis: Option<String>,
    /// Write to a Redis Cluster, given seed node URLs (repeatable or comma-separated).
    #[arg(long = "redis-cluster", value_name = "URL", value_delimiter = ',')]
    pub(crate) redis_cluster: Vec<String>,
    /// Seconds Redis keeps every key after its last write.
    #[arg(long, value_name = "SECONDS", default_value = "86400")]
    pub(crate) ttl: f64,
    /// In memory: the most reports kept (the oldest batch goes first).
    #[arg(long = "memory-entries", value_name = "N", default_value_t = DEFAULT_MEMORY_ENTRIES)]
    pub(crate) memory_entries: usize,
    /// The largest message a reporter or a query may send, in bytes or
    /// with k, M, G (0: no limit).
    #[arg(long = "max-message-size", value_name = "SIZE", default_value = "16MiB", value_parser = crate::size::message_size)]
    pub(crate) max_message_size: crate::size::MessageSize,
    /// Print the counters every SECONDS when they changed.
    #[arg(long = "stats-interval", value_name = "SECONDS", default_value = "10")]
    pub(crate) stats_interval: f64,
}

/// Runs the collector until SIGINT or SIGTERM.
pub(crate) async fn run(args: CollectorArgs) -> Result<(), Failure> {
    let ttl = positive_seconds("--ttl", args.ttl)?;
    let interval = positive_seconds("--stats-interval", args.stats_interval)?;
    if args.memory_entries == 0 {
        return Err(Failure::usage("--memory-entries must be at least 1"));
    }
    let (storage, described) = match (&args.redis, &args.redis_cluster[..]) {
        (Some(url), _) => (Storage::Redis(url.clone()), format!("Redis at {url}")),
        (None, []) => (
            Storage::Memory {
                max_entries: args.memory_entries,
            },
            format!("memory (up to {} entries)", args.memory_entries),
        ),
        (None, nodes) => (
            Storage::RedisCluster(nodes.to_vec()),
            format!("the Redis Cluster at {}", nodes.join(", ")),
        ),
    };
    let mut builder = Collector::builder()
        .storage(storage)
        .ttl(ttl)
        .max_message_size(args.max_message_size.0);
    for endpoint in &args.bind {
        builder = builder.bind(endpoint);
    }
    if args.query.is_empty() {
        builder = builder.query(default_query(&args.bind[0])?);
    }
    for endpoint in &args.query {
        builder = builder.query(endpoint);
    }
    let collector = builder.start().await.map_err(start_failure)?;
    stderr_line(format_args!(
        "collecting trace reports on {} into {described}",
        collector.endpoints().join(", ")
    ));
    stderr_line(format_args!(
        "answering queries on {}",
        collector.query_endpoints().join(", ")
    ));
    let mut printed = CollectorStats::default();
    let mut ticks = tokio::time::interval(interval);
    let stop = std::pin::pin!(crate::serve::wait_for_signal());
    let mut stop = stop;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {
                let stats = collector.stats();
                if stats != printed {
                    print_stats(&stats);
                    printed = stats;
                }
            }
        }
    }
    print_stats(&collector.stop().await);
    Ok(())
}

/// A collector that did not start, with the status of its cause: a
/// setting that cannot work is a usage error, as in a service file; a
/// socket or Redis that refuses is a connection error, as for a server.
fn start_failure(error: zerorpc_tracing_collector::Error) -> Failure {
    use zerorpc_tracing_collector::Error;
    let code = match &error {
        Error::Config(_) => code::USAGE,
        Error::Rpc { .. } | Error::Redis { .. } => code::TRANSPORT,
        _ => code::LOCAL,
    };
    Failure::Local {
        code,
        message: format!("cannot start the collector: {}", chain(&error)),
    }
}

fn print_stats(stats: &CollectorStats) {
    let error = stats
        .last_error
        .as_deref()
        .map(|e| format!(", last error: {e}"))
        .unwrap_or_default();
    stderr_line(format_args!(
        "stats: received {}, written {}, failed {}, dropped {}, malformed {}, connections closed {}{error}",
        stats.received,
        stats.written,
        stats.failed,
        stats.dropped,
        stats.malformed,
        stats.connections_closed
    ));
}

/// The first bind endpoint's host with a port the system picks.
fn default_query(bind: &str) -> Result<String, Failure> {
    match bind
        .strip_prefix("tcp://")
        .and_then(|rest| rest.rsplit_once(':'))
    {
        Some((host, _)) => Ok(format!("tcp://{host}:*")),
        None => Err(Failure::usage(format!(
            "give --query ENDPOINT: no default query endpoint for {bind} (only for tcp://)"
        ))),
    }
}

fn positive_seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    if !value.is_finite() || !(1e-3..=1e9).contains(&value) {
        return Err(Failure::usage(format!(
            "{flag} must be a number of seconds between 0.001 and 1e9, got {value}"
        )));
    }
    Ok(Duration::from_secs_f64(value))
}
