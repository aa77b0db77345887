//! Serving calls from the server socket's I/O thread.
//!
//! Methods added with [`Methods::add_inline`] (`#[zerorpc(inline)]`) and
//! the introspection methods compute their answer at once. A server answers
//! them from its socket's I/O thread through the transport's
//! [`Responder`] hook, the moment the request arrives, instead of waking a
//! task with the request and being woken again with the reply: two thread
//! hand-offs fewer per call. Calls to methods added with
//! [`Methods::add_inline_async`] (`#[zerorpc(inline)]` on an async
//! method) are adopted there ([`Responder::adopt`]) and their future
//! polled once: answered at once if that completes it, else handed to a
//! task. Calls to methods added with
//! [`Methods::add_blocking`] (plain sync methods) are adopted there
//! too and handed straight to tokio's blocking pool,
//! whose thread replies: no task in between. The streams of methods added
//! with [`Methods::add_inline_stream`] are polled there, item by item as
//! the client's credit allows ([`Adopted::stream`]). Everything else is
//! declined and served by a task as usual.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures::future::{BoxFuture, Either, select};
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use zerorpc_transport::{Adopted, PeerSlot, Producer, Responder};
use zerorpc_wire::{Event, Header, Value, names};

use crate::context::{Replies, ServerHooks, WatchedCall, watched};
use crate::gauge::Gauge;
use crate::service::{
    Handler, InlineAsyncHandler, Method, call_guarded, guard_stream, panic_error,
};
use crate::{CallContext, InlineHandler, Methods, Propagation, RemoteError, Reply, introspect};

/// The server's [`Responder`]. It declines everything until the server
/// serves, so that handlers always run inside a runtime (an inline method
/// may spawn tasks): the server's, or the one whose task drives the
/// socket (see [`enter_unless_in_one`]); and never before `serve`.
pub(crate) struct InlineResponder {
    methods: Arc<Methods>,
    /// The server's: the headers of replies, the call's span, its watcher.
    hooks: ServerHooks,
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Calls adopted and not yet answered: see [`ADOPTING_BELOW`].
    adopted: Gauge,
    /// The server's calls served in tasks, if its socket is driven by the
    /// runtime: those of inline async methods that wait count.
    serving: Option<Gauge>,
}

/// Blocking calls are adopted on the I/O thread only while fewer than this
/// many adopted ones wait for their answer. Handing a call to the pool
/// costs the handing thread a wake-up of a pool thread; on the I/O thread,
/// which bounds a busy server, a burst of calls pays them one by one,
/// where the accept loop, on a worker, takes a burst from the I/O thread
/// in one wake-up (100 calls in flight: 74,500 calls/s through the accept
/// loop, 69,800 all adopted).
const ADOPTING_BELOW: usize = 2;

impl InlineResponder {
    /// A responder for `methods`, or `None` if none of them is inline
    /// (sync or async) or blocking (the introspection methods alone are
    /// not worth a hook on every request).
    pub(crate) fn new(
        methods: Arc<Methods>,
        hooks: ServerHooks,
        serving: Option<Gauge>,
    ) -> Option<Arc<Self>> {
        let served_here = methods.names().any(|name| {
            methods.get(name).is_some_and(|m| {
                m.inline.is_some()
                    || m.blocking.is_some()
                    || m.inline_async.is_some()
                    || m.inline_stream
            })
        });
        served_here.then(|| {
            Arc::new(InlineResponder {
                methods,
                hooks,
                runtime: OnceLock::new(),
                adopted: Gauge::default(),
                serving,
            })
        })
    }

    /// Starts answering, with handlers run inside `runtime`.
    pub(crate) fn start(&self, runtime: tokio::runtime::Handle) {
        let _ = self.runtime.set(runtime);
    }
}

/// Enters the server's `runtime` for a handler, unless the socket's turn
/// runs in a runtime already: a socket driven by a task of the runtime it
/// was built on, where the server may serve on another (`Server::run`).
/// Entering that other one there would send a blocking call made by the
/// handler (`block_in_place`, which hands the worker's core to a thread of
/// the current runtime's blocking pool) to the serving runtime's pool,
/// whose shutdown then waits for the driving runtime's worker for ever.
fn enter_unless_in_one(runtime: &tokio::runtime::Handle) -> Option<tokio::runtime::EnterGuard<'_>> {
    tokio::runtime::Handle::try_current()
        .is_err()
        .then(|| runtime.enter())
}

impl Responder for InlineResponder {
    fn respond(&self, request: &mut Event) -> Option<Event> {
        self.answer(request, None)
    }

    fn respond_from(&self, request: &mut Event, peer: PeerSlot) -> Option<Event> {
        self.answer(request, Some(peer))
    }

    fn adopt(&self, request: &mut Event, call: Adopted) -> Option<Adopted> {
        let Some(runtime) = self.runtime.get() else {
            return Some(call);
        };
        // One lookup for both kinds: every call this declines (to an async
        // method) paid two, some 250 instructions more.
        let Some(method) = method_of(&self.methods, request) else {
            return Some(call);
        };
        if let Some(handler) = method.inline_async.clone() {
            let watch = self.hooks.watch(request, || Some(call.peer_slot()));
            self.start_async(runtime, handler, request, call, watch);
            return None;
        }
        if method.inline_stream {
            let watch = self.hooks.watch(request, || Some(call.peer_slot()));
            let handler = method.handler.clone();
            let stream = InlineStream::new(runtime, handler, request, &self.hooks, watch);
            call.stream(Box::new(stream));
            return None;
        }
        let Some(handler) = method.blocking.clone() else {
            return Some(call);
        };
        // Counted until the job ends, or is dropped unrun.
        let Some(adopted) = self.adopted.enter_below(ADOPTING_BELOW) else {
            return Some(call);
        };
        let mut watch = self.hooks.watch(request, || Some(call.peer_slot()));
        let (context, args, v1) = take_call(request);
        let propagation = self.hooks.propagation.clone();
        runtime.spawn_blocking(move || {
            let reply = answer_now(&handler, args, &context, propagation.as_deref(), v1);
            call.reply(watched(&mut watch, reply));
            drop(adopted);
        });
        None
    }
}

impl InlineResponder {
    /// The reply to `request` if it is answered here: an introspection
    /// request or an inline method's call. `peer` sent it, if known.
    fn answer(&self, request: &mut Event, peer: Option<PeerSlot>) -> Option<Event> {
        let runtime = self.runtime.get()?;
        // zerorpc-python answers requests without `v`, or with v < 2, in the v1 shape.
        let v1 = request.header.protocol_version() < 2;
        let args = match &request.args {
            Value::Array(args) => args.as_slice(),
            Value::Nil => &[],
            // The task's path explains malformed arguments.
            _ => return None,
        };
        if let Some(answer) = introspect::answer(&self.methods, &request.name, args) {
            let reply = self.hooks.serve_at_once(
                request,
                || peer,
                |request| self.reply(request, answer.clone(), v1),
            );
            return Some(reply);
        }
        let handler = self.methods.get(&request.name)?.inline.as_ref()?;
        let reply = self.hooks.serve_at_once(
            request,
            || peer,
            |request| {
                let (context, args, _) = take_call(request);
                let _runtime = enter_unless_in_one(runtime);
                answer_now(
                    handler,
                    args,
                    &context,
                    self.hooks.propagation.as_deref(),
                    v1,
                )
            },
        );
        Some(reply)
    }
}

impl InlineResponder {
    /// Starts an inline async method's call here, on the I/O thread: its
    /// future is polled once, and answered at once if that completes it;
    /// else a task of the runtime takes it on, and drops it if the client
    /// is lost.
    fn start_async(
        &self,
        runtime: &tokio::runtime::Handle,
        handler: InlineAsyncHandler,
        request: &mut Event,
        call: Adopted,
        watch: Option<Box<dyn WatchedCall>>,
    ) {
        let (context, args, v1) = take_call(request);
        let span = self
            .hooks
            .propagation
            .as_ref()
            .and_then(|p| p.call_span(&context));
        let mut replies = self.hooks.replies(&context, watch);
        let future = AssertUnwindSafe(context.clone().scope(handler(args))).catch_unwind();
        let future = match span {
            Some(span) => Either::Left(tracing::Instrument::instrument(future, span)),
            None => Either::Right(future),
        };
        let mut future = Box::pin(future);
        let lost = call.closed();
        let answer = move |answered: std::thread::Result<Result<Value, RemoteError>>| {
            let answer =
                answered.unwrap_or_else(|payload| Err(panic_error(context.method(), &*payload)));
            let (name, args) = answer_parts(answer, v1);
            call.reply(replies.event(name, args));
        };
        let _runtime = enter_unless_in_one(runtime);
        // A wake-up before the task's first poll is not lost: that poll
        // looks again.
        let first = future
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()));
        match first {
            Poll::Ready(answered) => answer(answered),
            Poll::Pending => {
                let served = self.serving.as_ref().map(Gauge::enter);
                runtime.spawn(async move {
                    let _served = served;
                    // The client's loss cancels the call: the future is dropped.
                    if let Either::Left((answered, _)) = select(future, Box::pin(lost)).await {
                        answer(answered);
                    }
                });
            }
        }
    }
}

/// The call of an inline stream method, made on the I/O thread (see
/// [`Methods::add_inline_stream`]): the transport polls it for each event
/// the client's credit allows. It runs its handler as a task serving the
/// call would: with the call's context and span, a panic caught, inside
/// the server's runtime.
struct InlineStream {
    reply: Replying,
    context: CallContext,
    span: Option<tracing::Span>,
    replies: Replies,
    runtime: tokio::runtime::Handle,
    v1: bool,
}

enum Replying {
    /// The handler, until it gives its reply (a stream's at once).
    Starting(BoxFuture<'static, Reply>),
    Streaming(BoxStream<'static, Result<Value, RemoteError>>),
    /// The last event was made: the transport asks no more.
    Ended,
}

impl InlineStream {
    fn new(
        runtime: &tokio::runtime::Handle,
        handler: Handler,
        request: &mut Event,
        hooks: &ServerHooks,
        watch: Option<Box<dyn WatchedCall>>,
    ) -> Self {
        let (context, args, v1) = take_call(request);
        let span = hooks
            .propagation
            .as_ref()
            .and_then(|p| p.call_span(&context));
        let replies = hooks.replies(&context, watch);
        let method = context.method().to_owned();
        let start = async move { call_guarded(&method, &handler, args).await }.boxed();
        InlineStream {
            reply: Replying::Starting(start),
            context,
            span,
            replies,
            runtime: runtime.clone(),
            v1,
        }
    }
}

impl Replying {
    /// The next event's name and arguments, for `method`'s call (answered
    /// in the v1 shape if `v1`).
    fn poll_next(
        &mut self,
        method: &str,
        v1: bool,
        cx: &mut Context<'_>,
    ) -> Poll<(&'static str, Value)> {
        loop {
            match self {
                Replying::Starting(start) => {
                    let Poll::Ready(reply) = start.poll_unpin(cx) else {
                        return Poll::Pending;
                    };
                    match reply {
                        Reply::Stream(items) => {
                            *self = Replying::Streaming(guard_stream(method.to_owned(), items));
                        }
                        Reply::Value(answer) => {
                            *self = Replying::Ended;
                            return Poll::Ready(answer_parts(answer, v1));
                        }
                    }
                }
                Replying::Streaming(items) => {
                    let next = std::task::ready!(items.poll_next_unpin(cx));
                    let (name, args) = stream_parts(next, v1);
                    if name != names::STREAM {
                        *self = Replying::Ended;
                    }
                    return Poll::Ready((name, args));
                }
                Replying::Ended => return Poll::Pending,
            }
        }
    }
}

impl Producer for InlineStream {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        let polled = {
            let _runtime = enter_unless_in_one(&self.runtime);
            let _span = self.span.as_ref().map(tracing::Span::enter);
            let reply = &mut self.reply;
            let v1 = self.v1;
            let method = self.context.method();
            self.context
                .clone()
                .sync_scope(|| reply.poll_next(method, v1, cx))
        };
        polled.map(|(name, args)| self.replies.event(name, args))
    }
}

/// The handler of `request`'s method if it is a blocking one, called as a
/// task would call it (see [`method_of`]).
pub(crate) fn blocking_handler(methods: &Methods, request: &Event) -> Option<InlineHandler> {
    method_of(methods, request)?.blocking.clone()
}

/// The method `request` calls, unless a task must serve it whatever the
/// method: introspection comes first, and arguments of another shape than
/// an array get the task's explanation.
fn method_of<'a>(methods: &'a Methods, request: &Event) -> Option<&'a Method> {
    if introspect::answers(&request.name) || !matches!(request.args, Value::Array(_) | Value::Nil) {
        return None;
    }
    methods.get(&request.name)
}

/// Runs a method that computes its answer without waiting (an inline or
/// a blocking one) as a task serving the call would, with the call's
/// context and span set, a panic caught, and makes the reply.
pub(crate) fn answer_now(
    handler: &InlineHandler,
    args: Vec<Value>,
    context: &CallContext,
    propagation: Option<&dyn Propagation>,
    v1: bool,
) -> Event {
    let span = propagation.and_then(|p| p.call_span(context));
    let answer = {
        let _span = span.as_ref().map(tracing::Span::enter);
        let call = || context.clone().sync_scope(|| handler(args));
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
            .unwrap_or_else(|payload| Err(panic_error(context.method(), &*payload)))
    };
    let mut header = Header::new();
    if let Some(propagation) = propagation {
        propagation.reply(context, &mut header);
    }
    reply_event(header, answer, v1)
}

impl InlineResponder {
    /// The reply to an introspection request, with the headers a traced
    /// server adds to its replies.
    fn reply(&self, request: &mut Event, answer: Result<Value, RemoteError>, v1: bool) -> Event {
        let mut header = Header::new();
        if let Some(propagation) = self.hooks.propagation.as_deref() {
            propagation.reply(&context(request), &mut header);
        }
        reply_event(header, answer, v1)
    }
}

/// The event answering a call with a single result.
pub(crate) fn reply_event(header: Header, answer: Result<Value, RemoteError>, v1: bool) -> Event {
    let (name, args) = answer_parts(answer, v1);
    Event::new(header, name, args)
}

/// The name and arguments of the event answering a call with a single
/// result (in the v1 shape if `v1`).
pub(crate) fn answer_parts(answer: Result<Value, RemoteError>, v1: bool) -> (&'static str, Value) {
    match answer {
        Ok(value) => (names::OK, Value::Array(vec![value])),
        Err(e) => (names::ERR, error_args(&e, v1)),
    }
}

/// The name and arguments of the event for what a method's stream gave
/// next: an item, an error, or its end. Any but `STREAM` is the last.
pub(crate) fn stream_parts(
    next: Option<Result<Value, RemoteError>>,
    v1: bool,
) -> (&'static str, Value) {
    match next {
        Some(Ok(item)) => (names::STREAM, item),
        Some(Err(e)) => (names::ERR, error_args(&e, v1)),
        None => (names::STREAM_DONE, Value::Nil),
    }
}

/// The arguments of an `ERR` event: v1 peers get one string, as
/// zerorpc-python sends them.
pub(crate) fn error_args(error: &RemoteError, v1: bool) -> Value {
    if v1 {
        Value::Array(vec![Value::from(format!(
            "{}({:?})",
            error.name(),
            error.message()
        ))])
    } else {
        error.to_args()
    }
}

/// What serving `request` needs, taken from it rather than copied (a
/// traced call's header may carry extra keys; the socket keeps
/// only the message id): the call's context, its arguments, and
/// whether it is answered in the v1 shape.
pub(crate) fn take_call(request: &mut Event) -> (CallContext, Vec<Value>, bool) {
    // zerorpc-python answers requests without `v`, or with v < 2, in the v1 shape.
    let v1 = request.header.protocol_version() < 2;
    let args = match std::mem::replace(&mut request.args, Value::Nil) {
        Value::Array(args) => args,
        _ => Vec::new(),
    };
    (context(request), args, v1)
}

/// The context of the call `request` makes, as a task serving it
/// would have: its name and header, taken from `request` (the socket
/// keeps the message id).
fn context(request: &mut Event) -> CallContext {
    let header = Header {
        message_id: request.header.message_id.clone(),
        version: request.header.version,
        response_to: None,
        trace: request.header.trace,
        extra: std::mem::take(&mut request.header.extra),
    };
    CallContext::new(std::mem::take(&mut request.name).into_owned(), header)
}
