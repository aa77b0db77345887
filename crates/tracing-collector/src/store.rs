//! Where collected reports go: Redis (one server or a cluster) or memory,
//! and how they are read back.
//!
//! # Redis layout
//!
//! * `zerorpc:trace:{TRACE_ID}`: a list, one msgpack [`Report`] per entry,
//!   in arrival order. The braces are a hash tag: in a cluster a whole
//!   trace lives on one shard.
//! * `zerorpc:stats:{MINUTE}`: a hash of counters for the minute (Unix
//!   minutes), fields `calls`, `errors` and `us` (total execution time,
//!   microseconds), each followed by a tab, the service, a tab and the
//!   method (`*` for the whole service).
//! * `zerorpc:stats-max:{MINUTE}`: a sorted set of the longest execution
//!   time of the minute, member `SERVICE<tab>METHOD`, score in µs.
//!
//! Every key gets the collector's TTL each time it is written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use crate::context::TraceId;
use crate::error::{Error, Result};
use crate::record;
use crate::report::{Report, now_us};

/// The counters of one service method (or of a whole service, method
/// `*`) for one minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Counters {
    /// The minute: minutes since the Unix epoch.
    pub minute: u64,
    /// The service (the serving process's name).
    pub service: String,
    /// The method, or `*` for the whole service.
    pub method: String,
    /// Calls answered.
    pub calls: u64,
    /// Calls answered with `ERR`.
    pub errors: u64,
    /// Total execution time, microseconds.
    pub total_us: u64,
    /// Longest execution time, microseconds.
    pub max_us: u64,
}

/// The wildcard method of a service's own counters.
pub const ALL_METHODS: &str = "*";

pub(crate) fn trace_key(trace_id: TraceId) -> String {
    format!("zerorpc:trace:{{{trace_id}}}")
}

fn stats_key(minute: u64) -> String {
    format!("zerorpc:stats:{{{minute}}}")
}

fn max_key(minute: u64) -> String {
    format!("zerorpc:stats-max:{{{minute}}}")
}

/// Reports ready to store: each a stored entry of its trace, and the
/// counter updates they make, per minute.
#[derive(Debug, Default)]
pub(crate) struct Entries {
    /// The entries back to back: one buffer, not one allocation each.
    bytes: Vec<u8>,
    /// Each entry's trace and where it is in `bytes`.
    entries: Vec<(TraceId, std::ops::Range<usize>)>,
    /// The reports the entries stand for (an entry may stand for two).
    reports: usize,
    /// Each method's counts. Few per batch (a batch comes from one
    /// process, which serves few methods), so a list searched in order
    /// beats a map keyed by owned strings that every call end would have
    /// to build. The service's counts over all its methods are made from
    /// them once per batch ([`counts`](Self::counts)), not per call.
    counts: Vec<Counters>,
}

impl Entries {
    /// How many reports the entries stand for.
    pub(crate) fn len(&self) -> usize {
        self.reports
    }

    /// Makes room for `bytes` of entries, of `entries` at most.
    pub(crate) fn reserve(&mut self, bytes: usize, entries: usize) {
        self.bytes.reserve(bytes);
        self.entries.reserve(entries);
    }

    /// Adds an entry of `trace_id`, written by `write` (see `record.rs`).
    pub(crate) fn push(&mut self, trace_id: TraceId, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        self.reports += record::reports_in(&self.bytes[start..]);
        self.entries.push((trace_id, start..self.bytes.len()));
    }

    /// The entries, each with its trace.
    fn iter(&self) -> impl Iterator<Item = (TraceId, &[u8])> {
        self.entries
            .iter()
            .map(|(trace_id, range)| (*trace_id, &self.bytes[range.clone()]))
    }

    /// Counts a call that `service` answered for `method`.
    pub(crate) fn count_call(&mut self, end: CallEnd<'_>) {
        let minute = end.timestamp_us / 60_000_000;
        let row =
            match self.counts.iter().position(|c| {
                c.minute == minute && c.method == end.method && c.service == end.service
            }) {
                Some(index) => &mut self.counts[index],
                None => {
                    self.counts.push(Counters {
                        minute,
                        service: end.service.to_owned(),
                        method: end.method.to_owned(),
                        ..Counters::default()
                    });
                    let last = self.counts.len() - 1;
                    &mut self.counts[last]
                }
            };
        row.add(1, u64::from(end.failed), end.exec_us, end.exec_us);
    }

    /// The counts of the calls counted: each method's, then each
    /// service's over all its methods (method [`ALL_METHODS`]), by minute.
    pub(crate) fn counts(&self) -> Vec<Counters> {
        let mut services: Vec<Counters> = Vec::new();
        for row in &self.counts {
            let service = services
                .iter_mut()
                .find(|s| s.minute == row.minute && s.service == row.service);
            match service {
                Some(service) => service.add(row.calls, row.errors, row.total_us, row.max_us),
                None => services.push(Counters {
                    method: ALL_METHODS.to_owned(),
                    ..row.clone()
                }),
            }
        }
        self.counts.iter().cloned().chain(services).collect()
    }

    /// Adds a report: its entry, and its count if it ends a call.
    pub(crate) fn push_report(&mut self, report: &Report) {
        if report.ends_call() {
            self.count_call(CallEnd {
                service: report.service(),
                method: &report.method,
                failed: report.error.is_some(),
                timestamp_us: report.timestamp_us,
                exec_us: report.exec_us.unwrap_or(0),
            });
        }
        let entry = report.to_msgpack();
        self.push(report.trace_id, |bytes| bytes.extend_from_slice(&entry));
    }
}

impl Counters {
    fn add(&mut self, calls: u64, errors: u64, total_us: u64, max_us: u64) {
        self.calls += calls;
        self.errors += errors;
        self.total_us += total_us;
        self.max_us = self.max_us.max(max_us);
    }
}

/// A call a server answered, as the counters count it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallEnd<'a> {
    pub(crate) service: &'a str,
    pub(crate) method: &'a str,
    pub(crate) failed: bool,
    pub(crate) timestamp_us: u64,
    pub(crate) exec_us: u64,
}

/// Reports kept in memory: the most recent batches, up to a number of
/// reports (the oldest batch goes first), and an hour of counters.
///
/// Batches are kept as they came rather than sorted into traces: a
/// collector shares its machine with the calls it traces, and storing is
/// what it does for every call, while a trace is read only when someone
/// asks. Reading one looks through every batch, comparing ids (a
/// `tracedump` over 100,000 kept reports took under 10 ms, start-up
/// included).
pub(crate) struct MemoryStore {
    batches: VecDeque<Entries>,
    /// Reports in `batches`, as the limit counts them.
    reports: usize,
    limit: usize,
    counters: BTreeMap<(u64, String, String), Counters>,
}

/// Minutes of counters memory keeps.
const MEMORY_MINUTES: u64 = 60;

impl MemoryStore {
    pub(crate) fn new(limit: usize) -> Self {
        MemoryStore {
            batches: VecDeque::new(),
            reports: 0,
            limit,
            counters: BTreeMap::new(),
        }
    }

    fn write(&mut self, batches: Vec<Entries>) {
        for delta in batches.iter().flat_map(Entries::counts) {
            let key = (delta.minute, delta.service.clone(), delta.method.clone());
            let entry = self.counters.entry(key).or_insert_with(|| Counters {
                calls: 0,
                errors: 0,
                total_us: 0,
                max_us: 0,
                ..delta.clone()
            });
            entry.add(delta.calls, delta.errors, delta.total_us, delta.max_us);
        }
        let oldest_minute = (now_us() / 60_000_000).saturating_sub(MEMORY_MINUTES);
        self.counters
            .retain(|(minute, _, _), _| *minute >= oldest_minute);
        for mut batch in batches {
            if batch.entries.is_empty() {
                continue;
            }
            // Counted above; and a batch is read with room to spare.
            batch.counts = Vec::new();
            batch.bytes.shrink_to_fit();
            batch.entries.shrink_to_fit();
            self.reports += batch.reports;
            self.batches.push_back(batch);
        }
        while self.reports > self.limit {
            let Some(oldest) = self.batches.pop_front() else {
                break;
            };
            self.reports -= oldest.reports;
        }
    }

    fn trace(&self, trace_id: TraceId) -> Result<Vec<Report>> {
        let mut entries = Vec::new();
        for (_, entry) in self
            .batches
            .iter()
            .flat_map(Entries::iter)
            .filter(|(id, _)| *id == trace_id)
        {
            entries.extend_from_slice(entry);
        }
        record::entries_to_reports(&entries)
    }

    fn counters(&self, minutes: std::ops::RangeInclusive<u64>) -> Vec<Counters> {
        self.counters
            .iter()
            .filter(|((minute, _, _), _)| minutes.contains(minute))
            .map(|(_, c)| c.clone())
            .collect()
    }
}

/// A connection to where reports are stored.
#[derive(Clone)]
pub(crate) enum Store {
    Memory(Arc<Mutex<MemoryStore>>),
    Redis(ConnectionManager),
    Cluster(ClusterConnection),
}

/// How long Redis may take to answer before a write counts as failed.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

impl Store {
    pub(crate) fn memory(limit: usize) -> Self {
        Store::Memory(Arc::new(Mutex::new(MemoryStore::new(limit))))
    }

    /// A store on one Redis server. Connects lazily, and again after
    /// every failure: a Redis restart costs the writes made while it was
    /// down, not the collector.
    pub(crate) fn redis(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)
            // A URL that cannot work is a setting, not Redis failing.
            .map_err(|e| Error::Config(format!("bad Redis URL {url:?}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::redis(format!("cannot use Redis at {url}"), e))?;
        Ok(Store::Redis(manager))
    }

    /// A store on a Redis Cluster, found from its seed nodes.
    pub(crate) async fn cluster(nodes: &[String]) -> Result<Self> {
        let client = ClusterClient::builder(nodes.to_vec())
            .connection_timeout(REDIS_TIMEOUT)
            .response_timeout(REDIS_TIMEOUT)
            .retries(2)
            .build()
            .map_err(|e| Error::redis(format!("bad Redis Cluster nodes {nodes:?}"), e))?;
        let connection = client
            .get_async_connection()
            .await
            .map_err(|e| Error::redis(format!("cannot reach the Redis Cluster at {nodes:?}"), e))?;
        Ok(Store::Cluster(connection))
    }

    /// Writes a batch: in memory, or in Redis as pipelines (one for a
    /// server; one per hash tag for a cluster, whose pipelines must stay
    /// on one shard).
    pub(crate) async fn write(&self, batches: Vec<Entries>, ttl: Duration) -> Result<()> {
        match self {
            Store::Memory(memory) => {
                lock(memory).write(batches);
                Ok(())
            }
            Store::Redis(connection) => {
                let mut whole = redis::pipe();
                for pipe in pipelines(&batches, ttl) {
                    for command in pipe.cmd_iter() {
                        whole.add_command(command.clone());
                    }
                }
                run(&mut connection.clone(), &whole).await
            }
            Store::Cluster(connection) => {
                let writes = pipelines(&batches, ttl).into_iter().map(|pipe| {
                    let mut connection = connection.clone();
                    async move { run(&mut connection, &pipe).await }
                });
                futures::future::join_all(writes)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<()>>>()
                    .map(drop)
            }
        }
    }

    /// Every entry of a trace, in the order the collector wrote them.
    pub(crate) async fn trace(&self, trace_id: TraceId) -> Result<Vec<Report>> {
        let key = trace_key(trace_id);
        let raw: Vec<Vec<u8>> = match self {
            Store::Memory(memory) => return lock(memory).trace(trace_id),
            Store::Redis(connection) => lrange(&mut connection.clone(), &key).await?,
            Store::Cluster(connection) => lrange(&mut connection.clone(), &key).await?,
        };
        let mut reports = Vec::with_capacity(raw.len() * 2);
        for bytes in &raw {
            reports.extend(Report::from_stored(bytes)?);
        }
        Ok(reports)
    }

    /// The counters of the given minutes.
    pub(crate) async fn counters(
        &self,
        minutes: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<Counters>> {
        match self {
            Store::Memory(memory) => Ok(lock(memory).counters(minutes)),
            Store::Redis(connection) => read_counters(&mut connection.clone(), minutes).await,
            Store::Cluster(connection) => read_counters(&mut connection.clone(), minutes).await,
        }
    }
}

fn lock(memory: &Mutex<MemoryStore>) -> std::sync::MutexGuard<'_, MemoryStore> {
    memory.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ttl_seconds(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX)
}

/// The writes of a batch, one pipeline per hash tag.
fn pipelines(batches: &[Entries], ttl: Duration) -> Vec<redis::Pipeline> {
    let ttl = ttl_seconds(ttl);
    let mut by_trace: BTreeMap<TraceId, Vec<&[u8]>> = BTreeMap::new();
    for (trace_id, entry) in batches.iter().flat_map(Entries::iter) {
        by_trace.entry(trace_id).or_default().push(entry);
    }
    let mut pipes = Vec::new();
    for (trace_id, entries) in by_trace {
        let key = trace_key(trace_id);
        let mut pipe = redis::pipe();
        pipe.rpush(&key, entries)
            .ignore()
            .expire(&key, ttl)
            .ignore();
        pipes.push(pipe);
    }
    let mut by_minute: BTreeMap<u64, redis::Pipeline> = BTreeMap::new();
    for delta in batches.iter().flat_map(Entries::counts) {
        let minute = delta.minute;
        let pipe = by_minute.entry(minute).or_insert_with(redis::pipe);
        let stats = stats_key(minute);
        let member = format!("{}\t{}", delta.service, delta.method);
        pipe.hincr(&stats, format!("calls\t{member}"), delta.calls)
            .ignore()
            .hincr(&stats, format!("errors\t{member}"), delta.errors)
            .ignore()
            .hincr(&stats, format!("us\t{member}"), delta.total_us)
            .ignore();
        pipe.add_command(
            redis::cmd("ZADD")
                .arg(max_key(minute))
                .arg("GT")
                .arg(delta.max_us)
                .arg(&member)
                .clone(),
        )
        .ignore();
    }
    for (minute, mut pipe) in by_minute {
        pipe.expire(stats_key(minute), ttl)
            .ignore()
            .expire(max_key(minute), ttl)
            .ignore();
        pipes.push(pipe);
    }
    pipes
}

async fn run<C: ConnectionLike>(connection: &mut C, pipe: &redis::Pipeline) -> Result<()> {
    pipe.query_async::<()>(connection)
        .await
        .map_err(|e| Error::redis("cannot write trace reports to Redis", e))
}

async fn lrange<C: ConnectionLike>(connection: &mut C, key: &str) -> Result<Vec<Vec<u8>>> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query_async(connection)
        .await
        .map_err(|e| Error::redis(format!("cannot read {key} from Redis"), e))
}

async fn read_counters<C: ConnectionLike>(
    connection: &mut C,
    minutes: std::ops::RangeInclusive<u64>,
) -> Result<Vec<Counters>> {
    let mut rows: BTreeMap<(u64, String, String), Counters> = BTreeMap::new();
    for minute in minutes {
        let fields: HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(stats_key(minute))
            .query_async(connection)
            .await
            .map_err(|e| Error::redis("cannot read counters from Redis", e))?;
        let maxima: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(max_key(minute))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(connection)
            .await
            .map_err(|e| Error::redis("cannot read counters from Redis", e))?;
        for (field, value) in fields {
            let mut parts = field.splitn(3, '\t');
            let (Some(what), Some(service), Some(method)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let counters = row(&mut rows, minute, service, method);
            match what {
                "calls" => counters.calls = value,
                "errors" => counters.errors = value,
                "us" => counters.total_us = value,
                _ => {}
            }
        }
        for (member, score) in maxima {
            if let Some((service, method)) = member.split_once('\t') {
                row(&mut rows, minute, service, method).max_us = score as u64;
            }
        }
    }
    Ok(rows.into_values().collect())
}

fn row<'a>(
    rows: &'a mut BTreeMap<(u64, String, String), Counters>,
    minute: u64,
    service: &str,
    method: &str,
) -> &'a mut Counters {
    rows.entry((minute, service.to_owned(), method.to_owned()))
        .or_insert_with(|| Counters {
            minute,
            service: service.to_owned(),
            method: method.to_owned(),
            ..Counters::default()
        })
}

#[cfg(test)]
mod tests;
