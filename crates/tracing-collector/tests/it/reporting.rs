//! Reports reaching an in-memory collector, assembled into the call tree;
//! a missing collector or a tiny queue never holding a call back.

use zerorpc::{Client, Server};
use zerorpc_test_support::free_tcp_endpoint;
use zerorpc_tracing_collector::{
    InMemoryCollector, Parent, Trace, TraceId, Traced, Tracer, Traces, in_trace,
};

use crate::support::{Leaf, bounded, reporting_to, start, trace_with, traced_client, wait_for};

struct Front {
    leaf: Client,
}

#[zerorpc::service]
impl Front {
    /// Doubles twice through the leaf, then makes it fail.
    pub(crate) async fn work(&self, n: i64) -> Result<i64, zerorpc::Error> {
        let once: i64 = self.leaf.call("double", (n,)).await?;
        let twice: i64 = self.leaf.call("double", (once,)).await?;
        let _ = self.leaf.call::<i64>("fail", ()).await;
        Ok(twice)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_call_tree_reaches_the_in_memory_collector() {
    let collector = InMemoryCollector::start("tcp://127.0.0.1:*").unwrap();
    let tracer = |name: &str| reporting_to(&collector, name);
    let (front_tracer, leaf_tracer, client_tracer) =
        (tracer("front"), tracer("leaf"), tracer("cli"));
    let leaf = start(Server::builder(Leaf).traced(&leaf_tracer));
    let to_leaf = traced_client(&leaf.endpoint, &front_tracer);
    let front = start(Server::builder(Front { leaf: to_leaf }).traced(&front_tracer));
    let client = traced_client(&front.endpoint, &client_tracer);
    let trace_id = TraceId::random();
    let result: i64 = bounded(in_trace(
        Parent::root_of(trace_id),
        client.call("work", (5,)),
    ))
    .await
    .unwrap();
    assert_eq!(result, 20);

    // Four calls, each reported four times (sent, received, answered,
    // answer received), in two records: each side's reply reports its
    // request too.
    let traces = Traces::collector(collector.query_endpoint()).unwrap();
    let entries = bounded(trace_with(&traces, trace_id, 16)).await;
    let trace = Trace::assemble(trace_id, entries);
    let calls: Vec<(&str, usize, Option<&str>)> = trace
        .calls
        .iter()
        .map(|c| (c.method.as_str(), c.depth, c.error()))
        .collect();
    assert_eq!(
        calls,
        [
            ("work", 0, None),
            ("double", 1, None),
            ("double", 1, None),
            ("fail", 1, Some("ParseIntError")),
        ]
    );
    let root = &trace.calls[0];
    assert!(root.caller.as_deref().unwrap().starts_with("cli@"));
    assert!(root.callee.as_deref().unwrap().starts_with("front@"));
    for child in &trace.calls[1..] {
        assert_eq!(child.parent_span_id, Some(root.span_id));
        assert!(child.callee.as_deref().unwrap().starts_with("leaf@"));
        assert!(child.exec_us.is_some() && child.lag_us().is_some());
        // The child ran inside the parent's execution.
        assert!(child.start_us() >= root.received_us.unwrap());
        assert!(child.end_us().unwrap() <= root.end_us().unwrap());
    }
    let text = trace.to_text();
    assert_eq!(text.lines().count(), 8, "{text}");
    assert!(text.contains("--- ERR ParseIntError --->"), "{text}");
}

struct Quick;

#[zerorpc::service]
impl Quick {
    /// Answered on the server's I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn inline(&self) -> u32 {
        1
    }

    /// Answered on the I/O thread: it completes without waiting.
    #[zerorpc(inline)]
    pub(crate) async fn inline_async(&self) -> u32 {
        2
    }

    /// Served on the blocking pool.
    pub(crate) fn on_pool(&self) -> u32 {
        3
    }

    /// Served by a task.
    pub(crate) async fn task(&self) -> u32 {
        4
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_server_serves_a_call_is_reported_by_both_sides() {
    let collector = InMemoryCollector::start("tcp://127.0.0.1:*").unwrap();
    let (server_tracer, client_tracer) = (
        reporting_to(&collector, "quick"),
        reporting_to(&collector, "caller"),
    );
    let server = start(Server::builder(Quick).traced(&server_tracer));
    let client = traced_client(&server.endpoint, &client_tracer);
    let traces = Traces::collector(collector.query_endpoint()).unwrap();
    for (method, answer) in [
        ("inline", 1),
        ("inline_async", 2),
        ("on_pool", 3),
        ("task", 4),
        ("_zerorpc_name", 0),
    ] {
        let trace_id = TraceId::random();
        let call = in_trace(Parent::root_of(trace_id), async {
            match answer {
                0 => client.call::<String>(method, ()).await.map(|_| 0),
                _ => client.call::<u32>(method, ()).await,
            }
        });
        assert_eq!(bounded(call).await.unwrap(), answer, "{method}");
        // Request sent and received, reply sent and received.
        let entries = bounded(trace_with(&traces, trace_id, 4)).await;
        assert_eq!(entries.len(), 4, "{method}: {entries:?}");
        let trace = Trace::assemble(trace_id, entries);
        let call = &trace.calls[0];
        assert_eq!(call.method, method);
        assert!(call.caller.as_deref().unwrap().starts_with("caller@"));
        assert!(call.callee.as_deref().unwrap().starts_with("quick@"));
        assert!(
            call.exec_us.is_some() && call.lag_us().is_some(),
            "{method}"
        );
        assert!(
            call.peer
                .as_deref()
                .is_some_and(|p| p.starts_with("tcp://")),
            "{method}: the client names where the call went: {:?}",
            call.peer
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_items_and_the_end_are_events_of_the_calls_span() {
    let collector = InMemoryCollector::start("tcp://127.0.0.1:*").unwrap();
    let tracer = reporting_to(&collector, "streams");
    let leaf = start(Server::builder(Leaf).traced(&tracer));
    let client = traced_client(&leaf.endpoint, &tracer);
    let traces = Traces::collector(collector.query_endpoint()).unwrap();
    // Made by a task, and on the server's I/O thread.
    for method in ["count", "count_inline"] {
        let trace_id = TraceId::random();
        let items: Vec<u32> = bounded(in_trace(
            Parent::root_of(trace_id),
            client.call(method, (3,)),
        ))
        .await
        .unwrap();
        assert_eq!(items, [0, 1, 2]);
        // Request sent and received; 3 items and the end, sent and received.
        let entries = bounded(trace_with(&traces, trace_id, 10)).await;
        assert!(entries.iter().all(|e| e.span_id == entries[0].span_id));
        let trace = Trace::assemble(trace_id, entries);
        let replies: Vec<&str> = trace.calls[0]
            .replies
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        let expected = ["STREAM", "STREAM", "STREAM", "STREAM_DONE"];
        assert_eq!(replies, expected, "{method}");
        assert!(trace.calls[0].exec_us.is_some(), "{method}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_still_running_shows_pending_then_answered() {
    // A call answered at once is reported once per side, with its reply;
    // one left unanswered has its request reported on its own meanwhile.
    let collector = InMemoryCollector::start("tcp://127.0.0.1:*").unwrap();
    let tracer = |name: &str| reporting_to(&collector, name);
    let (server_tracer, client_tracer) = (tracer("slow"), tracer("cli"));
    let leaf = start(Server::builder(Leaf).traced(&server_tracer));
    let client = traced_client(&leaf.endpoint, &client_tracer);
    let traces = Traces::collector(collector.query_endpoint()).unwrap();
    let trace_id = TraceId::random();
    let (napping, sleeper) = tokio::sync::oneshot::channel();
    let call = tokio::spawn(in_trace(Parent::root_of(trace_id), async move {
        let _ = napping.send(());
        client.call::<u64>("nap", (3_000,)).await
    }));
    sleeper.await.unwrap();

    // While it runs: sent by the client, received by the server, no reply.
    let entries = bounded(trace_with(&traces, trace_id, 2)).await;
    let running = Trace::assemble(trace_id, entries);
    assert_eq!(running.calls.len(), 1);
    let pending = &running.calls[0];
    assert!(pending.sent_us.is_some() && pending.received_us.is_some());
    assert!(pending.replies.is_empty() && pending.exec_us.is_none());
    assert!(
        running.to_text().contains("(pending)"),
        "{}",
        running.to_text()
    );
    assert_eq!(bounded(call).await.unwrap().unwrap(), 3_000);

    // Then the reply, sent and received: four entries, each once.
    let entries = bounded(trace_with(&traces, trace_id, 4)).await;
    assert_eq!(entries.len(), 4, "{entries:#?}");
    let answered = Trace::assemble(trace_id, entries);
    let call = &answered.calls[0];
    assert_eq!(call.replies.len(), 1);
    assert!(call.exec_us.unwrap() >= 3_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_timed_out_still_shows_it_was_sent() {
    let collector = InMemoryCollector::start("tcp://127.0.0.1:*").unwrap();
    let tracer = reporting_to(&collector, "impatient");
    let leaf = start(Server::builder(Leaf).traced(&tracer));
    let client = Client::builder()
        .connect(&leaf.endpoint)
        .timeout(Some(std::time::Duration::from_millis(20)))
        .traced(&tracer)
        .build()
        .unwrap();
    let trace_id = TraceId::random();
    let result = bounded(in_trace(
        Parent::root_of(trace_id),
        client.call::<u64>("nap", (500,)),
    ))
    .await;
    assert!(result.is_err(), "the call times out");
    // The client's request (reported when its call ended unanswered), the
    // server's request and its late reply.
    let traces = Traces::collector(collector.query_endpoint()).unwrap();
    let entries = bounded(trace_with(&traces, trace_id, 3)).await;
    let trace = Trace::assemble(trace_id, entries);
    let call = &trace.calls[0];
    assert!(call.sent_us.is_some() && call.received_us.is_some());
    assert!(call.caller.as_deref().unwrap().starts_with("impatient@"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_collector_and_a_tiny_queue_never_hold_a_call_back() {
    // Nobody listens at the collector's endpoint, and the queue holds one
    // report (a reply reporting its request too is two): reports are
    // dropped and counted, calls carry on.
    let tracer = Tracer::builder()
        .name("lonely")
        .collector(free_tcp_endpoint())
        .queue_capacity(1)
        .build()
        .unwrap();
    let leaf = start(Server::builder(Leaf).traced(&tracer));
    let client = traced_client(&leaf.endpoint, &tracer);
    let calls = 300;
    for n in 0..calls {
        let doubled: i64 = bounded(client.call("double", (n,))).await.unwrap();
        assert_eq!(doubled, n * 2);
    }
    let items: Vec<u32> = bounded(client.call("count", (500,))).await.unwrap();
    assert_eq!(items.len(), 500);
    // Every report is handed on to the PUSH socket (which holds or drops
    // what the absent collector cannot take) or dropped, and counted.
    let accounted = || {
        let stats = tracer.stats();
        stats.reported == stats.sent + stats.dropped_queue_full
    };
    assert!(wait_for(accounted).await, "{:?}", tracer.stats());
    // 4 reports per call; the stream: request, 500 items and the end, both sides.
    assert_eq!(tracer.stats().reported, 4 * calls as u64 + 2 * 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reporter_sending_an_oversized_batch_loses_its_connection_and_is_counted() {
    let collector = zerorpc_tracing_collector::Collector::builder()
        .bind("tcp://127.0.0.1:*")
        .max_message_size(Some(1024))
        .start()
        .await
        .unwrap();
    let context = zmq::Context::new();
    let pusher = context.socket(zmq::PUSH).unwrap();
    pusher.set_linger(0).unwrap();
    pusher.connect(&collector.endpoints()[0]).unwrap();
    pusher.send(vec![0_u8; 4096], 0).unwrap();
    assert!(
        wait_for(|| collector.stats().connections_closed == 1).await,
        "{:?}",
        collector.stats()
    );
    let stats = collector.stop().await;
    assert_eq!((stats.connections_closed, stats.received), (1, 0));
}
