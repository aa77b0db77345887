//! Servers on runtimes of their own, bounded waits, and reading traces
//! back from a collector.

use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;

use zerorpc::{Client, ServerBuilder, ShutdownHandle};
use zerorpc_tracing_collector::{InMemoryCollector, Report, TraceId, Traced, Tracer, Traces};

/// Every test body runs under this bound.
pub(crate) const TEST_BOUND: Duration = Duration::from_secs(30);

/// A server running on a runtime of its own, in its own thread.
pub(crate) struct Running {
    pub(crate) endpoint: String,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<zerorpc::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds the server to a run-time port on 127.0.0.1 and serves it.
pub(crate) fn start(builder: ServerBuilder) -> Running {
    let server = builder
        .bind("tcp://127.0.0.1:*")
        .build()
        .expect("the server builds");
    let endpoint = server.endpoints()[0].clone();
    let shutdown = server.shutdown_handle();
    let thread = std::thread::Builder::new()
        .name("test-server".into())
        .spawn(move || server.run())
        .expect("a server thread");
    Running {
        endpoint,
        shutdown,
        thread: Some(thread),
    }
}

/// Awaits `future`, failing the test if it takes longer than [`TEST_BOUND`].
pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, future)
        .await
        .expect("the test finishes within its time bound")
}

/// Reads a trace until it has `count` entries (reports travel
/// asynchronously), failing after a bounded number of tries.
pub(crate) async fn trace_with(traces: &Traces, trace_id: TraceId, count: usize) -> Vec<Report> {
    let mut entries = Vec::new();
    for _ in 0..500 {
        entries = traces.trace(trace_id).await.expect("the trace is readable");
        if entries.len() >= count {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "trace {trace_id} has {} entries, expected {count}: {entries:#?}",
        entries.len()
    );
}

/// A tracer naming its process `name` and reporting to `collector`.
pub(crate) fn reporting_to(collector: &InMemoryCollector, name: &str) -> Tracer {
    Tracer::builder()
        .name(name)
        .collector(collector.endpoint())
        .build()
        .expect("the tracer builds")
}

/// A client of `endpoint` traced by `tracer`.
pub(crate) fn traced_client(endpoint: &str, tracer: &Tracer) -> Client {
    Client::builder()
        .connect(endpoint)
        .traced(tracer)
        .build()
        .expect("the client builds")
}

/// Polls `condition` every 20 ms, up to 20 s; whether it became true.
pub(crate) async fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The service at the end of the test chains.
pub(crate) struct Leaf;

#[zerorpc::service]
impl Leaf {
    /// Doubles a number.
    pub(crate) fn double(&self, n: i64) -> i64 {
        n * 2
    }

    /// Fails with a ValueError.
    pub(crate) fn fail(&self) -> Result<i64, std::num::ParseIntError> {
        "x".parse()
    }

    /// Answers after `ms` milliseconds.
    pub(crate) async fn nap(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    /// Streams 0..n.
    pub(crate) fn count(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        0..n
    }

    /// `count`, its items made on the server's I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn count_inline(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        self.count(n)
    }
}
