//! Trace context carried from the call being served to the calls it
//! makes: the core's `Propagation` point, a task-local scope for calls
//! made outside any served call, and a spawn helper that keeps both.

use std::cell::Cell;
use std::future::Future;
use std::num::NonZeroU64;

use zerorpc::CallContext;
use zerorpc::wire::{Header, TraceKeys};

use crate::context::{
    PARENT_SPAN_ID_KEY, SPAN_ID_KEY, SpanContext, SpanId, TRACE_ID_KEY, TRACEPARENT_KEY, TraceId,
};

tokio::task_local! {
    static SCOPE: Parent;
}

thread_local! {
    /// The context [`TracePropagation`] last wrote on a request on this
    /// thread. A client's call watcher, called next on the same thread
    /// for the same request, takes it rather than parsing it back.
    static WRITTEN: Cell<Option<SpanContext>> = const { Cell::new(None) };
}

/// The context last written on this thread, if `request` is the header it
/// was written on (it carries its span id).
pub(crate) fn take_written(request: &Header) -> Option<SpanContext> {
    let written = WRITTEN.take()?;
    let span_id = request.trace.span_id().map(NonZeroU64::get);
    (span_id == Some(written.span_id.get())).then_some(written)
}

/// What the calls made in a scope descend from: a trace, and the span they
/// are children of (`None`: they are roots of that trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    /// The trace the calls join.
    pub trace_id: TraceId,
    /// The span they are children of, if any.
    pub span_id: Option<SpanId>,
}

impl Parent {
    /// Calls that are roots of `trace_id`.
    pub fn root_of(trace_id: TraceId) -> Self {
        Parent {
            trace_id,
            span_id: None,
        }
    }

    /// Calls that are children of `span`.
    pub fn child_of(span: &SpanContext) -> Self {
        Parent {
            trace_id: span.trace_id,
            span_id: Some(span.span_id),
        }
    }

    /// The context of a new call made under this parent.
    pub fn new_call(&self) -> SpanContext {
        SpanContext {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent_span_id: self.span_id,
        }
    }
}

/// Runs `future` so that the traced calls it makes outside any served
/// call descend from `parent` (for example, a batch of calls sharing one
/// trace id). Inside a served call, the served call's context wins.
///
/// ```
/// use zerorpc_tracing_collector::{Parent, TraceId, in_trace};
///
/// # futures::executor::block_on(async {
/// let trace = TraceId::random();
/// in_trace(Parent::root_of(trace), async {
///     // client.call(...) here: a root call of `trace`.
/// })
/// .await;
/// # });
/// ```
pub fn in_trace<F: Future>(parent: Parent, future: F) -> impl Future<Output = F::Output> {
    // Not an `async fn`, which would hold `future` twice.
    SCOPE.scope(parent, future)
}

/// The parent set by [`in_trace`] for the current task, if any.
pub fn current_scope() -> Option<Parent> {
    SCOPE.try_with(|parent| *parent).ok()
}

/// Spawns `future` on tokio keeping the trace of the current task: the
/// call being served (so calls it makes are children of that call), the
/// [`in_trace`] scope, and the `tracing` span.
///
/// `tokio::spawn` alone starts the task with no context: its calls would
/// be roots of new traces.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = zerorpc_tracing_collector::spawn(async {
///     // calls made here continue the served call's trace
///     42
/// });
/// assert_eq!(handle.await.unwrap(), 42);
/// # }
/// ```
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let future = tracing::Instrument::in_current_span(future);
    let context = CallContext::current();
    let scope = current_scope();
    tokio::spawn(async move {
        match (context, scope) {
            (Some(context), Some(scope)) => context.scope(in_trace(scope, future)).await,
            (Some(context), None) => context.scope(future).await,
            (None, Some(scope)) => in_trace(scope, future).await,
            (None, None) => future.await,
        }
    })
}

/// The core's [`Propagation`](zerorpc::Propagation) for traced clients,
/// servers and emitters. Made by [`Tracer`](crate::Tracer).
///
/// On an outgoing request: copies the served request's other header keys
/// (as the core's default does), then writes the new call's ids, a child of
/// the served call if it is traced, else of the [`in_trace`] scope, else of
/// the process's inherited parent (`TRACEPARENT`), else a fresh root. On
/// a server's replies: the served call's ids. Each served call runs in a
/// `tracing` span named `zerorpc_call` with its method, trace and span ids.
#[derive(Clone, Debug)]
pub struct TracePropagation {
    inherited: Option<Parent>,
}

impl TracePropagation {
    pub(crate) fn new(inherited: Option<Parent>) -> Self {
        TracePropagation { inherited }
    }

    /// The context the next call made here gets.
    pub fn next_call(&self, served: Option<&CallContext>) -> SpanContext {
        if let Some(served) = served.and_then(|ctx| SpanContext::from_header(ctx.header())) {
            return served.child();
        }
        match current_scope().or(self.inherited) {
            Some(parent) => parent.new_call(),
            None => SpanContext::root(),
        }
    }
}

fn is_trace_key(key: &str) -> bool {
    matches!(
        key,
        TRACE_ID_KEY | SPAN_ID_KEY | PARENT_SPAN_ID_KEY | TRACEPARENT_KEY
    )
}

impl zerorpc::Propagation for TracePropagation {
    fn propagate(&self, served: Option<&CallContext>, request: &mut Header) {
        if let Some(ctx) = served {
            for (key, value) in &ctx.header().extra {
                if !is_trace_key(key) && request.get(key).is_none() {
                    request.insert(key.clone(), value.clone());
                }
            }
        }
        let call = self.next_call(served);
        call.write(request);
        WRITTEN.set(Some(call));
    }

    fn reply(&self, served: &CallContext, reply: &mut Header) {
        let request = served.header();
        // The usual case, a request with our keys: they go back as they
        // came, a copy rather than a parse. A reply names its call (trace
        // and span); the parent is the request's business.
        let (trace_id, span_id) = (request.trace.trace_id(), request.trace.span_id());
        if trace_id.is_some() && span_id.is_some() {
            reply.trace = TraceKeys::new(trace_id, span_id, None);
        } else if let (Some(trace_id), Some(span_id)) = (
            request.get(TRACE_ID_KEY).filter(|v| v.is_str()),
            request
                .get(SPAN_ID_KEY)
                .filter(|v| v.is_u64() || v.is_str()),
        ) {
            // Keys in other forms (a trace id in capitals, a span id as
            // text) go back in the forms they came in too.
            reply.extra.reserve(2);
            reply.insert(TRACE_ID_KEY, trace_id.clone());
            reply.insert(SPAN_ID_KEY, span_id.clone());
        } else if let Some(span) = SpanContext::from_header(request) {
            SpanContext {
                parent_span_id: None,
                ..span
            }
            .write(reply);
        }
    }

    fn call_span(&self, served: &CallContext) -> Option<tracing::Span> {
        let span = tracing::info_span!(
            "zerorpc_call",
            method = served.method(),
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        // Reading the ids costs a parse per call: only for a subscriber
        // that wants the span.
        if !span.is_disabled()
            && let Some(context) = SpanContext::from_header(served.header())
        {
            span.record("trace_id", tracing::field::display(context.trace_id));
            span.record("span_id", tracing::field::display(context.span_id));
        }
        Some(span)
    }
}

/// Propagates nothing: the reporter's own socket, whose reports must not
/// carry (or start) traces.
pub(crate) struct Untraced;

impl zerorpc::Propagation for Untraced {
    fn propagate(&self, _: Option<&CallContext>, _: &mut Header) {}
}

#[cfg(test)]
mod tests {
    use zerorpc::Propagation;

    use super::*;

    #[test]
    fn the_context_written_last_is_taken_once_and_only_for_its_own_request() {
        let propagation = TracePropagation::new(None);
        let mut first = Header::new();
        propagation.propagate(None, &mut first);
        let mut second = Header::new();
        propagation.propagate(None, &mut second);

        assert_eq!(take_written(&second), SpanContext::from_header(&second));
        assert!(take_written(&second).is_none(), "taken once");

        propagation.propagate(None, &mut Header::new());
        assert!(
            take_written(&first).is_none(),
            "another request's context is not taken for this one"
        );
    }
}
