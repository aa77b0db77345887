//! Trace context through every kind of handler, nothing on the wire when
//! tracing is off, `traceparent` accepted, replies and stream items
//! carrying the call's ids.

use std::sync::{Arc, Mutex};

use zerorpc::transport::{Direction, EventInfo, Observer};
use zerorpc::wire::Header;
use zerorpc::{CallContext, Client, Propagation, Server, Value};
use zerorpc_tracing_collector::{
    Parent, SpanContext, TRACEPARENT_KEY, TraceId, Traced, Tracer, in_trace,
};

use crate::support::{bounded, start, traced_client};

/// What a handler sees of its call's trace: trace, span, parent.
type Seen = Option<(String, String, Option<String>)>;

fn seen() -> Seen {
    SpanContext::current().map(|s| {
        (
            s.trace_id.to_string(),
            s.span_id.to_string(),
            s.parent_span_id.map(|p| p.to_string()),
        )
    })
}

struct Leaf;

#[zerorpc::service]
impl Leaf {
    /// The trace context of this call.
    pub(crate) async fn whoami(&self) -> Seen {
        seen()
    }

    /// Streams 0..n.
    pub(crate) fn count(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        0..n
    }
}

struct Middle {
    leaf: Client,
}

#[zerorpc::service]
impl Middle {
    /// Its own context, and the leaf's, from an async handler.
    pub(crate) async fn via_async(&self) -> Result<(Seen, Seen), zerorpc::Error> {
        Ok((seen(), self.leaf.call("whoami", ()).await?))
    }

    /// The same from a sync handler on the blocking pool.
    pub(crate) fn via_sync(&self) -> Result<(Seen, Seen), zerorpc::Error> {
        Ok((seen(), self.leaf.blocking().call("whoami", ())?))
    }

    /// The same from an inline handler, run in the call's task.
    #[zerorpc(inline)]
    pub(crate) fn via_inline(&self) -> Result<(Seen, Seen), zerorpc::Error> {
        Ok((seen(), self.leaf.blocking().call("whoami", ())?))
    }

    /// The same from an inline stream, made on the server's I/O thread:
    /// its one item waits for the leaf's answer.
    #[zerorpc(inline)]
    pub(crate) fn via_inline_stream(
        &self,
    ) -> impl futures::Stream<Item = Result<(Seen, Seen), zerorpc::Error>> + use<> {
        let leaf = self.leaf.clone();
        futures::stream::once(async move { Ok((seen(), leaf.call("whoami", ()).await?)) })
    }

    /// The same from a task started with the crate's `spawn`.
    pub(crate) async fn via_spawn(&self) -> Result<(Seen, Seen), zerorpc::Error> {
        let leaf = self.leaf.clone();
        let task =
            zerorpc_tracing_collector::spawn(async move { leaf.call::<Seen>("whoami", ()).await });
        let from_task = task.await.expect("the task is not cancelled")?;
        Ok((seen(), from_task))
    }

    /// The same from a plain `tokio::spawn`, which starts with no context.
    pub(crate) async fn via_tokio_spawn(&self) -> Result<(Seen, Seen), zerorpc::Error> {
        let leaf = self.leaf.clone();
        let task = tokio::spawn(async move { leaf.call::<Seen>("whoami", ()).await });
        let from_task = task.await.expect("the task is not cancelled")?;
        Ok((seen(), from_task))
    }
}

/// A leaf and a middle service, traced (propagation only), and a traced
/// client of the middle one.
struct Chain {
    _leaf: crate::support::Running,
    _middle: crate::support::Running,
    leaf_endpoint: String,
    middle_endpoint: String,
    tracer: Tracer,
}

fn chain() -> Chain {
    let tracer = Tracer::builder().name("test").build().unwrap();
    let leaf = start(Server::builder(Leaf).traced(&tracer));
    let to_leaf = traced_client(&leaf.endpoint, &tracer);
    let middle = start(Server::builder(Middle { leaf: to_leaf }).traced(&tracer));
    Chain {
        leaf_endpoint: leaf.endpoint.clone(),
        middle_endpoint: middle.endpoint.clone(),
        _leaf: leaf,
        _middle: middle,
        tracer,
    }
}

#[track_caller]
fn assert_child(parent: &Seen, child: &Seen) {
    let (trace, span, _) = parent.as_ref().expect("the parent is traced");
    let (child_trace, child_span, child_parent) = child.as_ref().expect("the child is traced");
    assert_eq!(child_trace, trace, "same trace");
    assert_eq!(child_parent.as_ref(), Some(span), "the parent's span");
    assert_ne!(child_span, span, "a span of its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_calls_are_children_whatever_runs_the_handler() {
    let chain = chain();
    let client = traced_client(&chain.middle_endpoint, &chain.tracer);
    for method in ["via_async", "via_sync", "via_inline", "via_spawn"] {
        let (middle, leaf): (Seen, Seen) = bounded(client.call(method, ())).await.unwrap();
        let root = middle
            .as_ref()
            .unwrap_or_else(|| panic!("{method}: untraced"));
        assert_eq!(
            root.2, None,
            "{method}: a call from outside any trace is a root"
        );
        assert_child(&middle, &leaf);
    }
    let stream = client.stream::<(Seen, Seen)>("via_inline_stream", ());
    let mut items = bounded(stream).await.unwrap();
    let item = bounded(futures::StreamExt::next(&mut items)).await;
    let (middle, leaf) = item.expect("an item").unwrap();
    assert_eq!(middle.as_ref().unwrap().2, None, "a root");
    assert_child(&middle, &leaf);
    // Two root calls are two traces.
    let (first, _): (Seen, Seen) = bounded(client.call("via_async", ())).await.unwrap();
    let (second, _): (Seen, Seen) = bounded(client.call("via_async", ())).await.unwrap();
    assert_ne!(first.unwrap().0, second.unwrap().0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_spawned_without_the_helper_starts_a_new_trace() {
    let chain = chain();
    let client = traced_client(&chain.middle_endpoint, &chain.tracer);
    let (middle, leaf): (Seen, Seen) = bounded(client.call("via_tokio_spawn", ())).await.unwrap();
    let (middle, leaf) = (middle.unwrap(), leaf.unwrap());
    assert_ne!(middle.0, leaf.0);
    assert_eq!(leaf.2, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_a_scope_join_its_trace() {
    let chain = chain();
    let client = traced_client(&chain.middle_endpoint, &chain.tracer);
    let trace = TraceId::random();
    let (middle, leaf): (Seen, Seen) = bounded(in_trace(
        Parent::root_of(trace),
        client.call("via_async", ()),
    ))
    .await
    .unwrap();
    assert_eq!(middle.as_ref().unwrap().0, trace.to_string());
    assert_eq!(middle.as_ref().unwrap().2, None);
    assert_child(&middle, &leaf);
}

/// Records the headers of the requests a client sends and the replies it
/// receives.
#[derive(Default)]
struct Headers(Mutex<Vec<(Direction, String, Header)>>);

impl Observer for Headers {
    fn on_event(&self, info: &EventInfo) {
        if !info.control {
            self.0.lock().unwrap().push((
                info.direction,
                info.event.name.to_string(),
                info.event.header.clone(),
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untraced_clients_send_no_trace_keys_and_traced_servers_start_fresh_traces() {
    let chain = chain();
    let headers = Arc::new(Headers::default());
    let client = Client::builder()
        .connect(&chain.middle_endpoint)
        .observer(headers.clone())
        .build()
        .unwrap();
    let (middle, leaf): (Seen, Seen) = bounded(client.call("via_async", ())).await.unwrap();
    assert_eq!(middle, None, "nothing was sent");
    assert_eq!(leaf.unwrap().2, None, "the nested call is a root");
    let recorded = headers.0.lock().unwrap();
    let (direction, _, request) = &recorded[0];
    assert_eq!(*direction, Direction::Sent);
    assert!(request.extra.is_empty(), "{:?}", request.extra);
    // The reply of an untraced call carries nothing either.
    assert!(recorded[1..].iter().all(|(_, _, h)| h.extra.is_empty()));
}

/// Sends a W3C `traceparent` and nothing else, as an OpenTelemetry
/// instrumented caller does.
struct W3c(&'static str);

impl Propagation for W3c {
    fn propagate(&self, _: Option<&CallContext>, request: &mut Header) {
        request.insert(TRACEPARENT_KEY, Value::from(self.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_starts_the_trace() {
    let chain = chain();
    let client = Client::builder()
        .connect(&chain.middle_endpoint)
        .propagation(Arc::new(W3c(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )))
        .build()
        .unwrap();
    let (middle, leaf): (Seen, Seen) = bounded(client.call("via_async", ())).await.unwrap();
    let (trace, span, parent) = middle.clone().unwrap();
    assert_eq!(trace, "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
    assert_eq!(span, "00f067aa0ba902b7");
    assert_eq!(parent, None);
    assert_child(&middle, &leaf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_every_stream_item_carry_the_calls_ids() {
    let chain = chain();
    let headers = Arc::new(Headers::default());
    let client = Client::builder()
        .connect(&chain.leaf_endpoint)
        .traced(&chain.tracer)
        .observer(headers.clone())
        .build()
        .unwrap();
    let items: Vec<u32> = bounded(client.call("count", (3,))).await.unwrap();
    assert_eq!(items, [0, 1, 2]);
    let _: Seen = bounded(client.call("whoami", ())).await.unwrap();
    let recorded = headers.0.lock().unwrap();
    let ids = |h: &Header| (h.trace.trace_id(), h.trace.span_id());
    let names: Vec<&str> = recorded.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "count",
            "STREAM",
            "STREAM",
            "STREAM",
            "STREAM_DONE",
            "whoami",
            "OK"
        ]
    );
    for call in [&recorded[..5], &recorded[5..]] {
        let request = ids(&call[0].2);
        assert!(request.0.is_some() && request.1.is_some());
        for (_, name, header) in &call[1..] {
            assert_eq!(ids(header), request, "{name}");
        }
    }
}
