//! The collector: receives report batches on a PULL socket, writes them
//! to Redis (or keeps them in memory) in pipelined batches, and answers
//! the reading commands on a server socket of its own.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use zerorpc::{MethodInfo, Methods, Receiver, RemoteError, Reply, Server, ShutdownHandle, Value};

use crate::context::TraceId;
use crate::error::{Error, Result};
use crate::record::Records;
use crate::report::Report;
use crate::store::{CallEnd, Counters, Entries, Store};
use crate::tracer::REPORT_METHOD;

/// How long Redis keeps each key by default: one day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How many reports the in-memory store keeps by default.
pub const DEFAULT_MEMORY_ENTRIES: usize = 100_000;
/// Report batches that may wait for the writer; beyond it they are dropped
/// and counted.
const WRITE_QUEUE: usize = 1024;
/// Reports written in one go at most.
const WRITE_BATCH: usize = 4096;

/// Where a collector stores reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// In memory, keeping the most recent batches of reports up to this
    /// many reports (the oldest batch is evicted first, so a long trace
    /// may lose its oldest entries before its newest).
    Memory {
        /// The most reports kept.
        max_entries: usize,
    },
    /// One Redis server, by URL (`redis://host:port/db`).
    Redis(String),
    /// A Redis Cluster, by seed node URLs.
    RedisCluster(Vec<String>),
}

/// Configures a collector.
#[derive(Clone, Debug)]
pub struct CollectorBuilder {
    binds: Vec<String>,
    queries: Vec<String>,
    storage: Storage,
    ttl: Duration,
    max_message_size: Option<u64>,
}

impl CollectorBuilder {
    /// Receives reports on `endpoint` (may be repeated; a wildcard port is
    /// filled in, see [`Collector::endpoints`]). Reporters connect here.
    pub fn bind(mut self, endpoint: impl Into<String>) -> Self {
        self.binds.push(endpoint.into());
        self
    }

    /// Answers the reading commands (`zerorpc tracedump --collector`,
    /// `zerorpc top --collector`) on `endpoint` (may be repeated).
    pub fn query(mut self, endpoint: impl Into<String>) -> Self {
        self.queries.push(endpoint.into());
        self
    }

    /// Where reports go (default: memory, [`DEFAULT_MEMORY_ENTRIES`]).
    pub fn storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// How long Redis keeps every key after its last write (default
    /// [`DEFAULT_TTL`]); at least a second.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The largest message, in bytes, a reporter or a query may send;
    /// `None` for no limit. Default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`](zerorpc::transport::DEFAULT_MAX_MESSAGE_SIZE)
    /// (16 MiB). ZeroMQ drops the connection of a peer that sends more.
    pub fn max_message_size(mut self, bytes: Option<u64>) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Binds, connects to the storage, and starts receiving on the current
    /// tokio runtime.
    pub async fn start(self) -> Result<Collector> {
        if self.binds.is_empty() {
            return Err(Error::Config(
                "a collector needs an endpoint to receive reports on".into(),
            ));
        }
        let store = match &self.storage {
            Storage::Memory { max_entries: 0 } => {
                return Err(Error::Config(
                    "an in-memory collector needs room for at least one entry".into(),
                ));
            }
            Storage::Memory { max_entries } => Store::memory(*max_entries),
            Storage::Redis(url) => Store::redis(url)?,
            Storage::RedisCluster(nodes) if nodes.is_empty() => {
                return Err(Error::Config(
                    "a Redis Cluster needs at least one seed node".into(),
                ));
            }
            Storage::RedisCluster(nodes) => Store::cluster(nodes).await?,
        };
        let stats = Arc::new(Stats::default());
        let (sender, receiver) = mpsc::channel(WRITE_QUEUE);
        let puller = Receiver::puller_builder(report_methods(sender, stats.clone()))
            .max_message_size(self.max_message_size)
            .build()
            .map_err(|e| Error::rpc("cannot create the collector's socket", e))?;
        let endpoints = self
            .binds
            .iter()
            .map(|endpoint| {
                puller
                    .bind(endpoint)
                    .map_err(|e| Error::rpc(format!("cannot bind the collector to {endpoint}"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        let puller = Arc::new(puller);
        let _ = stats.puller.set(Arc::downgrade(&puller));
        let (query, query_endpoints) = if self.queries.is_empty() {
            (None, Vec::new())
        } else {
            let mut builder = Server::builder(query_methods(store.clone(), stats.clone()))
                .max_message_size(self.max_message_size);
            for endpoint in &self.queries {
                builder = builder.bind(endpoint);
            }
            let server = builder
                .build()
                .map_err(|e| Error::rpc("cannot bind the collector's query endpoint", e))?;
            let endpoints = server.endpoints().to_vec();
            let handle = server.shutdown_handle();
            tokio::spawn(server.serve());
            (Some(handle), endpoints)
        };
        let writer = tokio::spawn(write_batches(receiver, store, self.ttl, stats.clone()));
        let receiving = tokio::spawn({
            let puller = puller.clone();
            async move { puller.run().await }
        });
        Ok(Collector {
            endpoints,
            query_endpoints,
            stats,
            puller,
            query,
            receiving,
            writer,
        })
    }
}

/// A running collector. Dropping it does not stop it; [`Collector::stop`]
/// does.
pub struct Collector {
    endpoints: Vec<String>,
    query_endpoints: Vec<String>,
    stats: Arc<Stats>,
    puller: Arc<Receiver>,
    query: Option<ShutdownHandle>,
    receiving: tokio::task::JoinHandle<zerorpc::Result<()>>,
    writer: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Starts configuring a collector.
    pub fn builder() -> CollectorBuilder {
        CollectorBuilder {
            binds: Vec::new(),
            queries: Vec::new(),
            storage: Storage::Memory {
                max_entries: DEFAULT_MEMORY_ENTRIES,
            },
            ttl: DEFAULT_TTL,
            max_message_size: Some(zerorpc::transport::DEFAULT_MAX_MESSAGE_SIZE),
        }
    }

    /// Where reporters connect.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Where the reading commands connect, with wildcard ports filled in.
    pub fn query_endpoints(&self) -> &[String] {
        &self.query_endpoints
    }

    /// The collector's counters.
    pub fn stats(&self) -> CollectorStats {
        self.stats.snapshot()
    }

    /// Stops receiving, writes what was received, and stops answering.
    pub async fn stop(self) -> CollectorStats {
        self.puller.close();
        let _ = self.receiving.await;
        self.stats
            .connections_closed
            .store(self.puller.stats().connections_closed, Ordering::Relaxed);
        // The puller, and with it the writer's last sender, is gone: the
        // writer finishes its queue and ends.
        drop(self.puller);
        let _ = self.writer.await;
        if let Some(query) = self.query {
            query.shutdown();
        }
        self.stats.snapshot()
    }
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("endpoints", &self.endpoints)
            .field("query_endpoints", &self.query_endpoints)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A collector's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CollectorStats {
    /// Reports received.
    pub received: u64,
    /// Reports written to the storage.
    pub written: u64,
    /// Reports the storage refused or could not be reached for.
    pub failed: u64,
    /// Reports dropped because the writer lagged (its queue was full).
    pub dropped: u64,
    /// Report entries that could not be read.
    pub malformed: u64,
    /// Reporters' connections ZeroMQ dropped because they sent a batch
    /// over the collector's `max_message_size` (the first is logged).
    pub connections_closed: u64,
    /// The last storage error, if any write failed.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Stats {
    received: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    malformed: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The socket, whose counters hold the connections dropped; weak, as
    /// its handlers hold these stats.
    puller: OnceLock<Weak<Receiver>>,
    /// Its count once it is closed.
    connections_closed: AtomicU64,
}

impl Stats {
    fn snapshot(&self) -> CollectorStats {
        CollectorStats {
            received: self.received.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            connections_closed: self.puller.get().and_then(Weak::upgrade).map_or_else(
                || self.connections_closed.load(Ordering::Relaxed),
                |puller| puller.stats().connections_closed,
            ),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

fn report_methods(sender: mpsc::Sender<Entries>, stats: Arc<Stats>) -> Methods {
    let mut methods = Methods::new("zerorpc-collector");
    methods.add(
        REPORT_METHOD,
        MethodInfo::new().doc("A batch of trace reports: report(process, records)."),
        move |args: Vec<Value>| {
            let (batch, malformed) = read_batch(args);
            stats.malformed.fetch_add(malformed, Ordering::Relaxed);
            let count = batch.len() as u64;
            stats.received.fetch_add(count, Ordering::Relaxed);
            if count > 0 && sender.try_send(batch).is_err() {
                stats.dropped.fetch_add(count, Ordering::Relaxed);
            }
            async { Reply::Value(Ok(Value::Nil)) }
        },
    );
    methods
}

/// The entries of a batch of reports, and how many could not be read.
///
/// A batch is `[process, records]` (see `record.rs`); collectors also
/// read the older form, `[[report map, ...]]`.
fn read_batch(args: Vec<Value>) -> (Entries, u64) {
    let mut batch = Entries::default();
    let mut malformed = 0;
    match args.as_slice() {
        [Value::String(process), Value::Binary(records)] => {
            let Some(process) = process.as_str() else {
                return (batch, 1);
            };
            let service = process.split_once('@').map_or(process, |(name, _)| name);
            // Entries are records with the process added: room for all of
            // them at once, rather than growing a record at a time.
            batch.reserve(
                records.len() + records.len() / 2,
                records.len() / crate::record::SMALL_RECORD_BYTES + 1,
            );
            for record in Records::new(records) {
                match record {
                    Ok(record) => {
                        if record.ends_call {
                            batch.count_call(CallEnd {
                                service,
                                method: record.method,
                                failed: record.failed,
                                timestamp_us: record.timestamp_us,
                                exec_us: record.exec_us,
                            });
                        }
                        batch.push(record.trace_id, |out| record.write_entry(process, out));
                    }
                    Err(_) => malformed += 1,
                }
            }
        }
        _ => {
            for entry in args.into_iter().flat_map(|batch| match batch {
                Value::Array(entries) => entries,
                _ => Vec::new(),
            }) {
                match Report::from_value(entry) {
                    Ok(report) => batch.push_report(&report),
                    Err(_) => malformed += 1,
                }
            }
        }
    }
    (batch, malformed)
}

async fn write_batches(
    mut receiver: mpsc::Receiver<Entries>,
    store: Store,
    ttl: Duration,
    stats: Arc<Stats>,
) {
    let mut failing = false;
    while let Some(first) = receiver.recv().await {
        // What arrived while the last write was in flight goes together.
        let mut count = first.len();
        let mut batches = vec![first];
        while count < WRITE_BATCH {
            match receiver.try_recv() {
                Ok(more) => {
                    count += more.len();
                    batches.push(more);
                }
                Err(_) => break,
            }
        }
        let count = count as u64;
        match store.write(batches, ttl).await {
            Ok(()) => {
                stats.written.fetch_add(count, Ordering::Relaxed);
                if failing {
                    tracing::info!("writing trace reports again");
                    failing = false;
                }
            }
            Err(e) => {
                stats.failed.fetch_add(count, Ordering::Relaxed);
                let message = zerorpc::error_chain(&e);
                if !failing {
                    tracing::warn!("trace reports not written: {message}");
                    failing = true;
                }
                *stats
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(message);
            }
        }
    }
}

/// The methods of the query endpoint.
fn query_methods(store: Store, stats: Arc<Stats>) -> Methods {
    let mut methods = Methods::new("zerorpc-collector");
    let traces = store.clone();
    methods.add(
        "trace",
        MethodInfo::new().doc("The entries of a trace, in arrival order: trace(trace_id)."),
        move |args: Vec<Value>| {
            let store = traces.clone();
            async move {
                let reply = async {
                    let id = args
                        .first()
                        .and_then(Value::as_str)
                        .ok_or_else(|| remote("TypeError", "trace(trace_id): a string"))?;
                    let id: TraceId = id
                        .parse()
                        .map_err(|e: crate::ContextError| remote("ValueError", e))?;
                    let entries = store.trace(id).await.map_err(storage_error)?;
                    Ok(Value::Array(entries.iter().map(Report::to_value).collect()))
                };
                Reply::Value(reply.await)
            }
        },
    );
    methods.add(
        "counters",
        MethodInfo::new().doc("Per-minute counters: counters(first_minute, last_minute)."),
        move |args: Vec<Value>| {
            let store = store.clone();
            async move {
                let reply = async {
                    let minute = |i: usize| args.get(i).and_then(Value::as_u64);
                    let (Some(first), Some(last)) = (minute(0), minute(1)) else {
                        return Err(remote(
                            "TypeError",
                            "counters(first_minute, last_minute): two integers",
                        ));
                    };
                    if last < first || last - first > 24 * 60 {
                        return Err(remote(
                            "ValueError",
                            "at most a day of minutes, first before last",
                        ));
                    }
                    let rows = store.counters(first..=last).await.map_err(storage_error)?;
                    zerorpc::wire::to_value(&rows).map_err(|e| remote("ValueError", e))
                };
                Reply::Value(reply.await)
            }
        },
    );
    methods.add(
        "stats",
        MethodInfo::new().doc("The collector's counters."),
        move |_args: Vec<Value>| {
            let snapshot = stats.snapshot();
            async move {
                Reply::Value(
                    zerorpc::wire::to_value(&snapshot).map_err(|e| remote("ValueError", e)),
                )
            }
        },
    );
    methods
}

fn remote(name: &str, message: impl std::fmt::Display) -> RemoteError {
    RemoteError::with_summary(name, message.to_string())
}

fn storage_error(error: Error) -> RemoteError {
    remote("StorageError", zerorpc::error_chain(&error))
}

/// A collector in memory on a thread of its own, for programs and demos
/// that want traces without installing anything. Stops when dropped.
///
/// ```no_run
/// let collector = zerorpc_tracing_collector::InMemoryCollector::start("tcp://127.0.0.1:4300")?;
/// println!("Tracer::builder().collector({:?})", collector.endpoint());
/// println!("zerorpc tracedump --collector {} ID", collector.query_endpoint());
/// # Ok::<(), zerorpc_tracing_collector::Error>(())
/// ```
pub struct InMemoryCollector {
    endpoint: String,
    query_endpoint: String,
    stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InMemoryCollector {
    /// Receives reports on `endpoint` (a fixed port) and answers queries
    /// on the same interface, on a port chosen by the system.
    pub fn start(endpoint: &str) -> Result<InMemoryCollector> {
        let query = match endpoint.rsplit_once(':') {
            Some((host, _)) if endpoint.starts_with("tcp://") => format!("{host}:*"),
            _ => {
                return Err(Error::Config(format!(
                    "an in-memory collector binds tcp:// endpoints, not {endpoint}"
                )));
            }
        };
        // Everything happens on the collector's own thread and runtime, so
        // that this works from inside another runtime as well as outside.
        let (started, start_result) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let endpoint = endpoint.to_owned();
        let thread = std::thread::Builder::new()
            .name("zerorpc-collector".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ =
                            started.send(Err(Error::io("cannot start the collector's runtime", e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let builder = Collector::builder().bind(endpoint).query(query);
                    let collector = match builder.start().await {
                        Ok(collector) => collector,
                        Err(e) => {
                            let _ = started.send(Err(e));
                            return;
                        }
                    };
                    let _ = started.send(Ok((
                        collector.endpoints()[0].clone(),
                        collector.query_endpoints()[0].clone(),
                        collector.stats.clone(),
                    )));
                    let _ = stopped.await;
                    collector.stop().await;
                });
            })
            .map_err(|e| Error::io("cannot start the collector's thread", e))?;
        let (endpoint, query_endpoint, stats) = start_result
            .recv()
            .map_err(|_| Error::Config("the collector's thread ended while starting".into()))??;
        Ok(InMemoryCollector {
            endpoint,
            query_endpoint,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where reporters connect.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Where the reading commands connect.
    pub fn query_endpoint(&self) -> &str {
        &self.query_endpoint
    }

    /// The collector's counters.
    pub fn stats(&self) -> CollectorStats {
        self.stats.snapshot()
    }
}

impl Drop for InMemoryCollector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for InMemoryCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryCollector")
            .field("endpoint", &self.endpoint)
            .field("query_endpoint", &self.query_endpoint)
            .finish_non_exhaustive()
    }
}

/// Counters, as the query endpoint sends them.
pub(crate) fn counters_from_value(value: Value) -> Result<Vec<Counters>> {
    zerorpc::wire::from_value(value)
        .map_err(|e| Error::Malformed(format!("the collector's counters: {e}")))
}
