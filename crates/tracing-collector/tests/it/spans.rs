//! Each served call runs in a `tracing` span carrying its trace and span
//! ids, so what a handler logs carries them, on the blocking pool too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use zerorpc::Server;
use zerorpc_tracing_collector::{Parent, TraceId, Traced, Tracer, in_trace};

use crate::support::{bounded, start, traced_client};

/// A span's or event's fields, by name.
type FieldMap = HashMap<String, String>;

/// Records each span's name and fields, and each event with the fields of
/// the spans it was logged in.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, (String, FieldMap)>>,
    /// The metadata of each span, for `current_span`.
    metadata: Mutex<HashMap<u64, &'static Metadata<'static>>>,
    /// (message, fields of the enclosing spans)
    events: Mutex<Vec<(String, FieldMap)>>,
}

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Default)]
struct Fields(FieldMap);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = Fields::default();
        span.record(&mut fields);
        self.spans
            .lock()
            .unwrap()
            .insert(id, (span.metadata().name().to_owned(), fields.0));
        self.metadata.lock().unwrap().insert(id, span.metadata());
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some((_, known)) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            known.extend(fields.0);
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        let spans = self.spans.lock().unwrap();
        let mut context = HashMap::new();
        ENTERED.with(|entered| {
            for id in entered.borrow().iter() {
                if let Some((name, fields)) = spans.get(id) {
                    context.insert("span".to_owned(), name.clone());
                    context.extend(fields.clone());
                }
            }
        });
        self.events.lock().unwrap().push((message, context));
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn current_span(&self) -> tracing_core::span::Current {
        let current = ENTERED.with(|entered| entered.borrow().last().copied());
        let metadata = current.and_then(|id| Some((id, *self.metadata.lock().unwrap().get(&id)?)));
        match metadata {
            Some((id, metadata)) => tracing_core::span::Current::new(Id::from_u64(id), metadata),
            None => tracing_core::span::Current::none(),
        }
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|id| *id == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}

struct Logging;

#[zerorpc::service]
impl Logging {
    /// Logs from the call's task.
    pub(crate) async fn logs_async(&self) -> bool {
        tracing::info!("async handler");
        true
    }

    /// Logs from the blocking pool.
    pub(crate) fn logs_sync(&self) -> bool {
        tracing::info!("sync handler");
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_handlers_log_carries_the_calls_trace_id() {
    let recorder = Arc::new(Recorder::default());
    // The only test of this binary that installs a subscriber.
    tracing::subscriber::set_global_default(ArcSubscriber(recorder.clone()))
        .expect("no other subscriber is installed");
    let tracer = Tracer::builder().name("spans").build().unwrap();
    let server = start(Server::builder(Logging).traced(&tracer));
    let client = traced_client(&server.endpoint, &tracer);
    let trace = TraceId::random();
    for method in ["logs_async", "logs_sync"] {
        let ok: bool = bounded(in_trace(Parent::root_of(trace), client.call(method, ())))
            .await
            .unwrap();
        assert!(ok);
    }
    let events = recorder.events.lock().unwrap();
    for (message, method) in [
        ("async handler", "logs_async"),
        ("sync handler", "logs_sync"),
    ] {
        let (_, context) = events
            .iter()
            .find(|(m, _)| m == message)
            .unwrap_or_else(|| panic!("{message} was logged: {events:?}"));
        assert_eq!(
            context.get("span").map(String::as_str),
            Some("zerorpc_call"),
            "{context:?}"
        );
        assert_eq!(
            context.get("trace_id"),
            Some(&trace.to_string()),
            "{context:?}"
        );
        assert_eq!(
            context.get("method").map(String::as_str),
            Some(method),
            "{context:?}"
        );
        assert!(
            context.get("span_id").is_some_and(|s| s.len() == 16),
            "{context:?}"
        );
    }
}

/// A shared recorder as the global subscriber.
struct ArcSubscriber(Arc<Recorder>);

impl Subscriber for ArcSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.0.new_span(span)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        self.0.record(span, values)
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.0.record_follows_from(span, follows)
    }
    fn event(&self, event: &Event<'_>) {
        self.0.event(event)
    }
    fn enter(&self, span: &Id) {
        self.0.enter(span)
    }
    fn exit(&self, span: &Id) {
        self.0.exit(span)
    }
    fn current_span(&self) -> tracing_core::span::Current {
        self.0.current_span()
    }
}
