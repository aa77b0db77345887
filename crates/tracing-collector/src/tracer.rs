//! The tracer: one per process, turning tracing on for the sockets it is
//! given, and the reporter that sends their reports to collectors.
//!
//! Reports leave through a bounded queue to a thread of their own, which
//! batches them into events of a ZeroMQ PUSH socket connected to every
//! collector given (PUSH spreads the batches over them). A call never
//! waits for either: a full queue drops the report and counts it, and so
//! does the PUSH socket's own bounded send queue while no collector is
//! reachable.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use zerorpc::wire::Header;
use zerorpc::{ClientBuilder, EmitterBuilder, Pusher, ReceiverBuilder, ServerBuilder, Value};

use crate::context::SpanContext;
use crate::context::parse_traceparent;
use crate::error::{Error, Result};
use crate::observer::{Sweep, TraceObserver};
use crate::propagation::{Parent, TracePropagation, Untraced};
use crate::record::{PeerRef, Record};
use crate::report::{Direction, Kind, Side, now_us};
use crate::watch::Watcher;

/// The environment variable naming the collector(s) to report to (comma
/// separated), read by [`TracerBuilder::from_env`].
pub const COLLECTOR_VAR: &str = "ZERORPC_TRACE_COLLECTOR";
/// The environment variable holding the W3C trace context a process
/// continues (set by `zerorpc --server` for the programs it runs).
pub const TRACEPARENT_VAR: &str = "TRACEPARENT";
/// The default capacity of the report queue, in reports.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// The method name of report batches sent to a collector.
pub(crate) const REPORT_METHOD: &str = "report";
/// Reports per batch at most.
const BATCH: usize = 4096;
/// How long the reporter lets reports gather once one has come, before
/// sending what came as batches. Only a report into an empty queue wakes
/// it, so the reports made while it gathers wake no thread: waking the
/// reporter for every report (and the push socket's thread for every
/// small batch) cost more than the calls themselves under load.
const GATHER: Duration = Duration::from_millis(20);
/// How often the reporter looks for calls left unanswered for
/// [`UNANSWERED`], to report their requests on their own.
const SWEEP: Duration = Duration::from_millis(50);
/// How long a call may go unanswered before its request is reported on
/// its own rather than with its first reply. Long enough for most calls,
/// so that one report per side covers them; short enough that a trace
/// read while a call hangs shows it pending.
pub(crate) const UNANSWERED: Duration = Duration::from_millis(100);
/// How long `flush` leaves ZeroMQ to write the last batches.
const FLUSH_GRACE: Duration = Duration::from_millis(20);
/// Bytes of batches that may wait in the PUSH socket for a collector.
const PUSH_QUEUE_BYTES: usize = 8 << 20;

/// Configures a [`Tracer`].
#[derive(Clone, Debug)]
pub struct TracerBuilder {
    name: String,
    collectors: Vec<String>,
    queue_capacity: usize,
    inherited: Option<Parent>,
}

impl TracerBuilder {
    /// The process name in reports (`NAME@host`); default: the
    /// executable's file name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Reports to a collector at `endpoint` (may be repeated: batches are
    /// spread over them). Without any, the tracer only propagates trace
    /// context.
    pub fn collector(mut self, endpoint: impl Into<String>) -> Self {
        self.collectors.push(endpoint.into());
        self
    }

    /// Reports that may wait for the reporter thread; beyond it they are
    /// dropped and counted. Default [`DEFAULT_QUEUE_CAPACITY`].
    pub fn queue_capacity(mut self, reports: usize) -> Self {
        self.queue_capacity = reports;
        self
    }

    /// Calls made outside any served call continue this trace instead of
    /// starting their own.
    pub fn parent(mut self, parent: Parent) -> Self {
        self.inherited = Some(parent);
        self
    }

    /// Reads [`COLLECTOR_VAR`] (added to the collectors) and
    /// [`TRACEPARENT_VAR`] (the parent of calls made outside any served
    /// call). A malformed `TRACEPARENT` is an error, not ignored: a broken
    /// chain should be noticed.
    pub fn from_env(mut self) -> Result<Self> {
        if let Ok(value) = std::env::var(COLLECTOR_VAR) {
            self.collectors.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        if let Ok(value) = std::env::var(TRACEPARENT_VAR) {
            let parent = parse_traceparent(&value)
                .map_err(|e| Error::Config(format!("{TRACEPARENT_VAR}: {e}")))?;
            self.inherited = Some(Parent {
                trace_id: parent.trace_id,
                span_id: Some(parent.span_id),
            });
        }
        Ok(self)
    }

    /// Starts the reporter (when there are collectors) and returns the
    /// tracer.
    pub fn build(self) -> Result<Tracer> {
        if self.queue_capacity == 0 {
            return Err(Error::Config(
                "the report queue needs room for at least one report".into(),
            ));
        }
        let reporter = if self.collectors.is_empty() {
            None
        } else {
            Some(Reporter::start(&self)?)
        };
        Ok(Tracer {
            inner: Arc::new(TracerInner {
                propagation: Arc::new(TracePropagation::new(self.inherited)),
                reporter,
            }),
        })
    }
}

/// Turns tracing on for the clients, servers and emitters it is given
/// (see [`Traced`]): their calls carry trace context, and when it has a
/// collector, what they send and receive is reported there.
///
/// One tracer serves a whole process; it is cheap to clone.
///
/// ```no_run
/// use zerorpc::{Client, Server};
/// use zerorpc_tracing_collector::{Traced, Tracer};
///
/// # struct Api;
/// # #[zerorpc::service]
/// # impl Api { pub fn ping(&self) -> bool { true } }
/// let tracer = Tracer::builder()
///     .name("api")
///     .collector("tcp://127.0.0.1:4300")
///     .build()?;
/// let _server = Server::builder(Api)
///     .bind("tcp://127.0.0.1:4242")
///     .traced(&tracer)
///     .build()?;
/// let _client = Client::builder()
///     .connect("tcp://127.0.0.1:4243")
///     .traced(&tracer)
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<TracerInner>,
}

struct TracerInner {
    propagation: Arc<TracePropagation>,
    reporter: Option<Reporter>,
}

impl Tracer {
    /// Starts configuring a tracer.
    pub fn builder() -> TracerBuilder {
        TracerBuilder {
            name: default_name(),
            collectors: Vec::new(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            inherited: None,
        }
    }

    /// The propagation to give builders (what [`Traced::traced`] sets).
    pub fn propagation(&self) -> Arc<TracePropagation> {
        self.inner.propagation.clone()
    }

    /// A new observer reporting one socket's traced events, if the tracer
    /// reports anywhere (what [`Traced::traced`] adds to pushers,
    /// publishers, pullers and subscribers; clients and servers get a
    /// [`call_watcher`](Tracer::call_watcher)).
    pub fn observer(&self) -> Option<Arc<dyn zerorpc::transport::Observer>> {
        let reporter = self.inner.reporter.as_ref()?;
        let observer = TraceObserver::new(reporter.queue.clone());
        reporter.queue.shared.watch(observer.calls().clone());
        Some(Arc::new(observer))
    }

    /// A new watcher reporting the traced calls of one client (its
    /// `side` [`Side::Client`]) or server ([`Side::Server`]) from the
    /// calls themselves, if the tracer reports anywhere (what
    /// [`Traced::traced`] sets on clients and servers).
    pub fn call_watcher(&self, side: Side) -> Option<Arc<dyn zerorpc::CallWatcher>> {
        let reporter = self.inner.reporter.as_ref()?;
        let watcher = Watcher::new(reporter.queue.clone(), side);
        reporter.queue.shared.watch(watcher.calls().clone());
        Some(Arc::new(watcher))
    }

    /// Reports that a relay (a queue hub) passed a traced request on, when
    /// the tracer reports anywhere; an untraced request is ignored. For
    /// routers below the RPC layer, which see requests but have no
    /// transport observer; never waits.
    pub fn report_relayed(&self, request: &Header, method: &str) {
        let (Some(reporter), Some(span)) =
            (&self.inner.reporter, SpanContext::from_header(request))
        else {
            return;
        };
        reporter.queue.push(Outgoing::One(&Record {
            span: &span,
            kind: Kind::Call,
            side: Side::Relay,
            direction: Direction::Received,
            name: method,
            method,
            error: None,
            peer: PeerRef::Endpoint(""),
            timestamp_us: now_us(),
            exec_us: None,
        }));
    }

    /// Counters of the reports made, sent and dropped.
    pub fn stats(&self) -> TracerStats {
        match &self.inner.reporter {
            Some(reporter) => reporter.stats(),
            None => TracerStats::default(),
        }
    }

    /// Waits, up to `timeout`, until every report made so far has been
    /// handed to ZeroMQ (or dropped); true if that happened in time. Calls
    /// still unanswered are reported as such first.
    ///
    /// For short-lived programs before they exit. ZeroMQ writes to the
    /// network from a thread of its own, holds batches for a collector not
    /// connected yet, and drops what it holds when the process exits:
    /// reports are best effort.
    pub fn flush(&self, timeout: Duration) -> bool {
        match &self.inner.reporter {
            Some(reporter) => reporter.flush(timeout),
            None => true,
        }
    }
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("propagation", &self.inner.propagation)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A tracer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TracerStats {
    /// Reports made by observers.
    pub reported: u64,
    /// Reports dropped because the queue was full (the reporter lagged).
    pub dropped_queue_full: u64,
    /// Reports handed to the PUSH socket, in batches.
    pub sent: u64,
    /// Batches the PUSH socket dropped (no collector reachable for too
    /// long, its send queue full).
    pub batches_dropped: u64,
}

/// Builders that tracing can be turned on for, in one line.
pub trait Traced: Sized {
    /// Propagates trace context on this socket's calls and reports its
    /// traced events to the tracer's collectors.
    fn traced(self, tracer: &Tracer) -> Self;
}

/// Sockets that emit events take the propagation and the
/// observer alike.
macro_rules! traced_with_propagation {
    ($($generics:ident)? => $builder:ty) => {
        impl$(<$generics>)? Traced for $builder {
            fn traced(self, tracer: &Tracer) -> Self {
                let builder = self.propagation(tracer.propagation());
                match tracer.observer() {
                    Some(observer) => builder.observer(observer),
                    None => builder,
                }
            }
        }
    };
}

/// Clients and servers report their calls from the calls themselves (see
/// [`Tracer::call_watcher`]): cheaper than an observer of their socket.
macro_rules! traced_with_watcher {
    ($builder:ty, $side:expr) => {
        impl Traced for $builder {
            fn traced(self, tracer: &Tracer) -> Self {
                let builder = self.propagation(tracer.propagation());
                match tracer.call_watcher($side) {
                    Some(watcher) => builder.call_watcher(watcher),
                    None => builder,
                }
            }
        }
    };
}

traced_with_watcher!(ClientBuilder, Side::Client);
traced_with_watcher!(ServerBuilder, Side::Server);
traced_with_propagation!(K => EmitterBuilder<K>);

impl Traced for ReceiverBuilder {
    fn traced(self, tracer: &Tracer) -> Self {
        match tracer.observer() {
            Some(observer) => self.observer(observer),
            None => self,
        }
    }
}

/// The observers' end of the report queue: batches of encoded records
/// waiting for the reporter thread.
///
/// Observers write each report straight into the open batch under a
/// short lock (no allocation once the batch has grown, no value tree), and
/// wake the reporter only when the queue was empty: the reporter then
/// lets reports gather for [`GATHER`] before taking them all.
pub(crate) struct ReportQueue {
    shared: Arc<Shared>,
    reporter: std::thread::Thread,
}

/// What an observer reports at once.
#[derive(Clone, Copy)]
pub(crate) enum Outgoing<'a> {
    /// One event.
    One(&'a Record<'a>),
    /// A reply, and the request of its call, made at `called_us` (see
    /// `record.rs`): two reports in one record.
    Answered(&'a Record<'a>, u64),
}

impl Outgoing<'_> {
    /// The reports it stands for.
    fn weight(self) -> usize {
        match self {
            Outgoing::One(_) => 1,
            Outgoing::Answered(..) => 2,
        }
    }

    fn encode(self, out: &mut Vec<u8>) {
        match self {
            Outgoing::One(record) => record.encode(out),
            Outgoing::Answered(record, called_us) => record.encode_answered(called_us, out),
        }
    }
}

/// What the observers and the reporter thread share.
struct Shared {
    pending: Mutex<Pending>,
    /// Reports that may wait, at most.
    capacity: usize,
    /// The observers' and watchers' open calls, swept for calls left
    /// unanswered.
    tables: Mutex<Vec<Weak<dyn Sweep>>>,
    /// Set when the last observer and the tracer are gone: the reporter
    /// sends what is left and ends.
    closed: AtomicBool,
    reported: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Pending {
    /// Batches of [`BATCH`] records, then the open one.
    full: Vec<Batch>,
    open: Batch,
    /// Records in `full` and `open`.
    records: usize,
}

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    records: usize,
}

impl Batch {
    fn with_capacity(bytes: usize) -> Self {
        Batch {
            bytes: Vec::with_capacity(bytes),
            records: 0,
        }
    }
}

impl ReportQueue {
    /// Queues a report, or drops and counts it: never waits.
    pub(crate) fn push(&self, report: Outgoing<'_>) {
        if self.shared.push(report) {
            self.reporter.unpark();
        }
    }
}

impl Drop for ReportQueue {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.reporter.unpark();
    }
}

impl Shared {
    /// Queues a report, or drops and counts it: never waits. True when the
    /// queue was empty (the reporter may be parked).
    fn push(&self, report: Outgoing<'_>) -> bool {
        let weight = report.weight();
        self.reported.fetch_add(weight as u64, Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.records + weight > self.capacity {
            drop(pending);
            self.dropped.fetch_add(weight as u64, Ordering::Relaxed);
            return false;
        }
        let was_empty = pending.records == 0;
        pending.records += weight;
        let open = &mut pending.open;
        report.encode(&mut open.bytes);
        open.records += weight;
        if open.records >= BATCH {
            let capacity = open.bytes.capacity();
            let full = std::mem::replace(open, Batch::with_capacity(capacity));
            pending.full.push(full);
        }
        was_empty
    }

    /// Sweeps `calls` from now on, for calls left unanswered (the sweep
    /// forgets the tables of observers gone).
    pub(crate) fn watch(&self, calls: Arc<dyn Sweep>) {
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.push(Arc::downgrade(&calls));
    }

    /// Reports the requests of the calls opened before `before_us` and
    /// still unanswered; true if it reported any.
    fn sweep(&self, before_us: u64) -> bool {
        let tables: Vec<Arc<dyn Sweep>> = {
            let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            tables.retain(|table| table.strong_count() > 0);
            tables.iter().filter_map(Weak::upgrade).collect()
        };
        let mut reported = false;
        for table in tables {
            table.report_unanswered(before_us, &mut |report| {
                self.push(report);
                reported = true;
            });
        }
        reported
    }

    /// Every batch waiting, the open one last.
    fn take(&self) -> Vec<Batch> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut batches = std::mem::take(&mut pending.full);
        if pending.open.records > 0 {
            let capacity = pending.open.bytes.capacity();
            let open = std::mem::replace(&mut pending.open, Batch::with_capacity(capacity));
            batches.push(open);
        }
        pending.records = 0;
        batches
    }
}

/// The reporter thread's progress, for `flush` and the stats.
#[derive(Default)]
struct Progress {
    /// Reports taken off the queue and handed to the PUSH socket.
    sent: AtomicU64,
    /// Batches handed to the PUSH socket.
    batches: AtomicU64,
    /// Batches handed over when `flush` last returned.
    flushed: AtomicU64,
}

struct Reporter {
    queue: Arc<ReportQueue>,
    progress: Arc<Progress>,
    pusher: Pusher,
}

impl Reporter {
    fn start(config: &TracerBuilder) -> Result<Reporter> {
        let mut builder = Pusher::builder()
            .propagation(Arc::new(Untraced))
            .send_queue_limit(PUSH_QUEUE_BYTES);
        for endpoint in &config.collectors {
            builder = builder.connect(endpoint);
        }
        let pusher = builder
            .build()
            .map_err(|e| Error::rpc("cannot connect to the trace collector", e))?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            capacity: config.queue_capacity,
            tables: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            reported: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let process = format!("{}@{}", config.name, hostname());
        let progress = Arc::new(Progress::default());
        let thread = std::thread::Builder::new()
            .name("zerorpc-trace-reporter".into())
            .spawn({
                let shared = shared.clone();
                let pusher = pusher.clone();
                let progress = progress.clone();
                move || report_batches(&shared, &process, &pusher, &progress)
            })
            .map_err(|e| Error::io("cannot start the trace reporter thread", e))?;
        let queue = Arc::new(ReportQueue {
            shared,
            reporter: thread.thread().clone(),
        });
        Ok(Reporter {
            queue,
            progress,
            pusher,
        })
    }

    fn stats(&self) -> TracerStats {
        let socket = self.pusher.stats();
        let shared = &self.queue.shared;
        TracerStats {
            reported: shared.reported.load(Ordering::Relaxed),
            dropped_queue_full: shared.dropped.load(Ordering::Relaxed),
            sent: self.progress.sent.load(Ordering::Relaxed),
            batches_dropped: socket.dropped_queue_full
                + socket.dropped_peer_gone
                + socket.dropped_send_failed,
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let shared = &self.queue.shared;
        shared.sweep(u64::MAX);
        // Whatever is gathering goes now.
        self.queue.reporter.unpark();
        loop {
            let reported = shared.reported.load(Ordering::Relaxed);
            let dropped = shared.dropped.load(Ordering::Relaxed);
            let taken = self.progress.sent.load(Ordering::Relaxed);
            let batches = self.progress.batches.load(Ordering::Relaxed);
            let socket = self.pusher.stats();
            let settled = socket.sent
                + socket.dropped_queue_full
                + socket.dropped_peer_gone
                + socket.dropped_send_failed;
            if taken + dropped >= reported && settled >= batches {
                // ZeroMQ's own thread writes what it was handed: give it a
                // moment when something new was handed since the last flush.
                if self.progress.flushed.swap(batches, Ordering::Relaxed) < batches {
                    std::thread::sleep(
                        FLUSH_GRACE.min(deadline.saturating_duration_since(Instant::now())),
                    );
                }
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Sends reports in batches: parked while the queue is empty, then
/// gathering for [`GATHER`] and sending everything that came; every
/// [`SWEEP`], reports the requests of calls left unanswered for
/// [`UNANSWERED`]. Ends once the queue is closed and empty.
fn report_batches(shared: &Shared, process: &str, pusher: &Pusher, progress: &Progress) {
    let mut swept = Instant::now();
    loop {
        let closed = shared.closed.load(Ordering::Acquire);
        if swept.elapsed() >= SWEEP {
            let unanswered = u64::try_from(UNANSWERED.as_micros()).unwrap_or(u64::MAX);
            shared.sweep(now_us().saturating_sub(unanswered));
            swept = Instant::now();
        }
        let batches = shared.take();
        if batches.is_empty() {
            if closed {
                return;
            }
            std::thread::park_timeout(SWEEP);
            if !shared.closed.load(Ordering::Acquire) {
                // Parked rather than asleep, so that `flush` (which
                // unparks) need not wait for the gathering to end.
                std::thread::park_timeout(GATHER);
            }
            continue;
        }
        for batch in batches {
            // Counted before the batch is handed over, so that no reader of
            // the counters can see its reports arrive before they count.
            progress.batches.fetch_add(1, Ordering::Relaxed);
            progress
                .sent
                .fetch_add(batch.records as u64, Ordering::Relaxed);
            let args = vec![Value::from(process), Value::Binary(batch.bytes)];
            pusher.emit_values(REPORT_METHOD, args);
        }
    }
}

fn default_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "zerorpc".to_owned())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests;
