//! The demo's tracing part: a traced call that makes nested calls, one of
//! which fails, reported to an in-memory collector in the demo's own
//! process and printed as `zerorpc tracedump` prints it.
//!
//! Three tracers stand for three processes (the demo's client, a frontend
//! service and the calculator it calls), so the dump names each one; the
//! collector is `InMemoryCollector`, so nothing needs to be installed.

use std::error::Error;
use std::time::Duration;

use tokio::task::JoinHandle;
use zerorpc::{Client, Server, ShutdownHandle};
use zerorpc_tracing_collector::{
    InMemoryCollector, Parent, Report, Trace, TraceId, Traced, Tracer, Traces, in_trace,
};

use crate::demo_service::DemoService;

/// Every call is reported four times: the request sent and received, the
/// answer sent and received.
const REPORTS_PER_CALL: usize = 4;

/// How often, and how long apart, the demo asks the collector whether
/// every report has arrived (reports travel asynchronously).
const POLLS: u32 = 250;
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long each tracer may take to hand its reports to ZeroMQ.
const FLUSH: Duration = Duration::from_secs(2);

/// The service in front: sums numbers with the calculator's `add`, then
/// tries to archive the sum with a call that fails.
struct Frontend {
    calculator: Client,
}

#[zerorpc::service(name = "frontend")]
impl Frontend {
    /// Sums `numbers` one nested `add` call at a time, then asks the
    /// calculator to archive the sum (its `fail` method, so the trace shows
    /// a nested error); returns the sum and why archiving failed, if it
    /// did.
    pub(crate) async fn total(
        &self,
        numbers: Vec<f64>,
    ) -> Result<(f64, Option<String>), zerorpc::Error> {
        let mut numbers = numbers.into_iter();
        let mut sum = numbers.next().unwrap_or(0.0);
        for number in numbers {
            sum = self.calculator.call("add", (sum, number)).await?;
        }
        let archived = self
            .calculator
            .call::<()>("fail", ("the archive is read-only",))
            .await;
        let archive_error = match archived {
            Ok(()) => None,
            // The calculator answered: the sum still stands.
            Err(e) if e.is_remote() => Some(e.to_string()),
            Err(e) => return Err(e),
        };
        Ok((sum, archive_error))
    }
}

/// Traces `total` on a frontend that calls the calculator, and prints the
/// trace read back from an in-memory collector.
pub(crate) async fn nested_call() -> Result<(), Box<dyn Error>> {
    println!("\n== tracing a nested call: an in-memory collector and its tracedump");
    let collector = InMemoryCollector::start("tcp://127.0.0.1:*")?;
    println!(
        "collector: reports to {}, queries to {}",
        collector.endpoint(),
        collector.query_endpoint()
    );
    let tracer_named = |name: &str| {
        Tracer::builder()
            .name(name)
            .collector(collector.endpoint())
            .build()
    };
    let tracers = [
        tracer_named("demo")?,
        tracer_named("frontend")?,
        tracer_named("calculator")?,
    ];
    let [client_tracer, frontend_tracer, calculator_tracer] = &tracers;

    let calculator = Server::builder(DemoService)
        .bind("tcp://127.0.0.1:*")
        .traced(calculator_tracer)
        .build()?;
    let to_calculator = Client::builder()
        .connect(&calculator.endpoints()[0])
        .traced(frontend_tracer)
        .build()?;
    let frontend = Server::builder(Frontend {
        calculator: to_calculator,
    })
    .bind("tcp://127.0.0.1:*")
    .traced(frontend_tracer)
    .build()?;
    let client = Client::builder()
        .connect(&frontend.endpoints()[0])
        .traced(client_tracer)
        .build()?;
    let servers: Vec<(ShutdownHandle, JoinHandle<zerorpc::Result<()>>)> = [calculator, frontend]
        .into_iter()
        .map(|server| (server.shutdown_handle(), tokio::spawn(server.serve())))
        .collect();

    // A root call of a trace of our own, so its id can be printed before
    // the call, as `zerorpc --trace` does.
    let trace_id = TraceId::random();
    println!("TraceID: {trace_id}");
    let numbers = vec![1.0, 2.0, 3.5];
    let (sum, archive_error): (f64, Option<String>) = in_trace(
        Parent::root_of(trace_id),
        client.call("total", (numbers.clone(),)),
    )
    .await?;
    match archive_error {
        Some(error) => println!("total({numbers:?}) = {sum}; archiving it failed: {error}"),
        None => println!("total({numbers:?}) = {sum}, archived"),
    }

    // `total`, an `add` per number after the first, and `fail`.
    let calls = 1 + numbers.len().saturating_sub(1) + 1;
    let expected = calls * REPORTS_PER_CALL;
    for tracer in &tracers {
        // `flush` blocks its thread while it waits; the runtime's other
        // tasks (the servers) move to another worker meanwhile.
        let flushed = tokio::task::block_in_place(|| tracer.flush(FLUSH));
        if !flushed {
            let stats = tracer.stats();
            return Err(format!(
                "trace reports not all sent within {FLUSH:?} ({} made, {} sent, {} dropped)",
                stats.reported,
                stats.sent,
                stats.dropped_queue_full + stats.batches_dropped
            )
            .into());
        }
    }
    let traces = Traces::collector(collector.query_endpoint())?;
    let entries = reports_of(&traces, trace_id, expected).await?;

    println!(
        "$ zerorpc tracedump --collector {} {trace_id}",
        collector.query_endpoint()
    );
    print!("{}", Trace::assemble(trace_id, entries).to_text());

    for (shutdown, serving) in servers {
        shutdown.shutdown();
        serving.await??;
    }
    Ok(())
}

/// The trace's reports once the collector has all `expected` of them;
/// an error if they have not all arrived after [`POLLS`] tries.
async fn reports_of(
    traces: &Traces,
    trace_id: TraceId,
    expected: usize,
) -> Result<Vec<Report>, Box<dyn Error>> {
    let mut arrived = 0;
    for _ in 0..POLLS {
        let entries = traces.trace(trace_id).await?;
        if entries.len() >= expected {
            return Ok(entries);
        }
        arrived = entries.len();
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Err(format!(
        "trace {trace_id}: {arrived} of {expected} reports reached the collector within {:?}",
        POLL_INTERVAL * POLLS
    )
    .into())
}
