//! Services: the table of methods a server exposes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use zerorpc_wire::Value;

use crate::RemoteError;

/// How many items a sync method's iterator may make ahead of what the
/// server has sent: it runs on the blocking pool, and its items are handed
/// over in batches, which costs far fewer thread wake-ups than one at a
/// time. Beyond it, the iterator waits; the client's credit (`_zpc_more`)
/// and the server's send queue toward that client pace what is sent. Items
/// over 4 KiB encoded wait until those before them were taken, so one
/// large item at most is made ahead. An async method's stream (or
/// iterator) is not made ahead: the server polls it for each item it
/// sends.
pub const STREAM_READ_AHEAD: usize = 64;

/// What a method answers: one value, or a stream of values.
pub enum Reply {
    /// A single result (`OK [value]`) or an error (`ERR`).
    Value(Result<Value, RemoteError>),
    /// A stream: each `Ok` item becomes a `STREAM` event, the end a
    /// `STREAM_DONE`, and an `Err` item ends the stream with `ERR`.
    Stream(BoxStream<'static, Result<Value, RemoteError>>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Reply::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A method's implementation: positional arguments in, a [`Reply`] out.
pub type Handler = Arc<dyn Fn(Vec<Value>) -> BoxFuture<'static, Reply> + Send + Sync>;

/// A method that computes its result at once, never waiting or blocking:
/// see [`Methods::add_inline`].
pub type InlineHandler = Arc<dyn Fn(Vec<Value>) -> Result<Value, RemoteError> + Send + Sync>;

/// One parameter of a method, as introspection shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The parameter name.
    pub name: String,
    /// The parameter type as written in the source (Rust syntax), if known.
    pub ty: Option<String>,
    /// A default value, for parameters that may be left out.
    pub default: Option<Value>,
}

impl Arg {
    /// A parameter with a name only.
    pub fn new(name: impl Into<String>) -> Self {
        Arg {
            name: name.into(),
            ty: None,
            default: None,
        }
    }

    /// Adds the type shown by introspection.
    pub fn with_type(mut self, ty: impl Into<String>) -> Self {
        self.ty = Some(ty.into());
        self
    }

    /// Adds a default value.
    pub fn with_default(mut self, default: Value) -> Self {
        self.default = Some(default);
        self
    }
}

/// What introspection tells about a method.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodInfo {
    /// The help text (doc comment), if any.
    pub doc: Option<String>,
    /// The parameters; `None` when they are unknown (free-form arguments).
    pub args: Option<Vec<Arg>>,
    /// True when the method answers with a stream.
    pub streaming: bool,
}

impl MethodInfo {
    /// Empty information: no doc, unknown parameters.
    pub fn new() -> Self {
        MethodInfo::default()
    }

    /// Sets the help text.
    pub fn doc(mut self, doc: impl Into<String>) -> Self {
        let doc = doc.into();
        self.doc = (!doc.is_empty()).then_some(doc);
        self
    }

    /// Adds a parameter.
    pub fn arg(mut self, arg: Arg) -> Self {
        self.args.get_or_insert_with(Vec::new).push(arg);
        self
    }

    /// Declares the parameters as known (possibly none).
    pub fn args(mut self, args: Vec<Arg>) -> Self {
        self.args = Some(args);
        self
    }

    /// Marks the method as streaming.
    pub fn streaming(mut self, streaming: bool) -> Self {
        self.streaming = streaming;
        self
    }
}

#[derive(Clone)]
pub(crate) struct Method {
    pub(crate) info: MethodInfo,
    pub(crate) handler: Handler,
    /// Set for methods added with [`Methods::add_inline`].
    pub(crate) inline: Option<InlineHandler>,
    /// Set for methods added with [`Methods::add_blocking`].
    pub(crate) blocking: Option<InlineHandler>,
    /// Set for methods added with [`Methods::add_inline_async`].
    pub(crate) inline_async: Option<InlineAsyncHandler>,
    /// Set for methods added with [`Methods::add_inline_stream`]: the
    /// handler's stream is polled on the I/O thread.
    pub(crate) inline_stream: bool,
}

/// An async method returning one value, started on the I/O thread: see
/// [`Methods::add_inline_async`].
pub(crate) type InlineAsyncHandler =
    Arc<dyn Fn(Vec<Value>) -> BoxFuture<'static, Result<Value, RemoteError>> + Send + Sync>;

impl Method {
    fn new(info: MethodInfo, handler: Handler) -> Self {
        Method {
            info,
            handler,
            inline: None,
            blocking: None,
            inline_async: None,
            inline_stream: false,
        }
    }
}

/// The methods of a service, by name.
///
/// Built by the [`service`](crate::service) attribute, or by hand for
/// methods known only at run time:
///
/// ```
/// use zerorpc::{Methods, MethodInfo, Arg, Reply, Value, RemoteError};
///
/// let mut methods = Methods::new("Calculator");
/// methods.add("double", MethodInfo::new().doc("Doubles a number.").arg(Arg::new("x")), |args: Vec<Value>| async move {
///     match args.first().and_then(Value::as_i64) {
///         Some(x) => Reply::Value(Ok(Value::from(x * 2))),
///         None => Reply::Value(Err(RemoteError::new("TypeError", "double() needs an integer", ""))),
///     }
/// });
/// assert_eq!(methods.names().collect::<Vec<_>>(), ["double"]);
/// ```
#[derive(Clone)]
pub struct Methods {
    name: String,
    /// Looked up by every call, up to three times for one served by a
    /// task (the responder's two offers, then the dispatch): hashed with
    /// foldhash, where a B-tree's string comparisons cost some 300
    /// instructions a lookup. Lookups cannot be steered into collisions
    /// that matter: peers choose names to look up, not the table's keys.
    methods: HashMap<String, Method, foldhash::fast::RandomState>,
}

impl Methods {
    /// An empty table for a service called `name` (what `_zerorpc_name`
    /// answers).
    pub fn new(name: impl Into<String>) -> Self {
        Methods {
            name: name.into(),
            methods: HashMap::default(),
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the service.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Registers a method, replacing any method of the same name.
    pub fn add<F, Fut>(
        &mut self,
        name: impl Into<String>,
        info: MethodInfo,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |args| handler(args).boxed());
        self.add_handler(name, info, handler)
    }

    /// Registers a method that computes its result at once, without
    /// waiting or blocking (what `#[zerorpc(inline)]` makes).
    ///
    /// A server answers such a method on its socket's I/O thread, the
    /// moment the request arrives, saving the two thread hand-offs of a
    /// call served by a task. The price is that while it runs, that thread
    /// sends no heartbeat and reads nothing for any call: a handler that
    /// blocks (a lock held elsewhere, I/O, a long computation) delays
    /// every call of the server, and beyond two heartbeat intervals makes
    /// its clients see a lost remote. Use [`Methods::add`] for anything
    /// that may take time.
    ///
    /// ```
    /// use zerorpc::{Methods, MethodInfo, Arg, Value, RemoteError};
    ///
    /// let mut methods = Methods::new("Calculator");
    /// methods.add_inline("double", MethodInfo::new().arg(Arg::new("x")), |args: Vec<Value>| {
    ///     match args.first().and_then(Value::as_i64) {
    ///         Some(x) => Ok(Value::from(x * 2)),
    ///         None => Err(RemoteError::with_summary("TypeError", "double() needs an integer")),
    ///     }
    /// });
    /// ```
    pub fn add_inline<F>(
        &mut self,
        name: impl Into<String>,
        info: MethodInfo,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Vec<Value>) -> Result<Value, RemoteError> + Send + Sync + 'static,
    {
        let inline: InlineHandler = Arc::new(handler);
        let answer = inline.clone();
        // Served by a task too when not answered on the I/O thread (a
        // server with a concurrency limit, or before `serve` starts).
        let handler: Handler =
            Arc::new(move |args| futures::future::ready(Reply::Value(answer(args))).boxed());
        let method = Method {
            inline: Some(inline),
            ..Method::new(info, handler)
        };
        self.methods.insert(name.into(), method);
        self
    }

    /// Registers an async method returning one value that usually has its
    /// answer at once, without waiting (what `#[zerorpc(inline)]` makes of
    /// an async method): a read of state behind an uncontended async lock,
    /// a cache hit.
    ///
    /// A server starts such a method on its socket's I/O thread as the
    /// request arrives: if its future completes without waiting, the reply
    /// leaves at once, as an [inline](Methods::add_inline) method's does,
    /// without the two thread hand-offs of a call served by a task. If it
    /// waits, the call goes on in a task, as any async method's, and is
    /// cancelled if its client is lost. The price is the inline one until
    /// the future first waits: while it runs, that thread sends no
    /// heartbeat and reads nothing for any call, so the method must not
    /// block or compute for long before its first `.await` that waits.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use zerorpc::{Methods, MethodInfo, Arg, Value, RemoteError};
    ///
    /// let stock = Arc::new(tokio::sync::RwLock::new(std::collections::HashMap::from([("A-113", 7)])));
    /// let mut methods = Methods::new("Shop");
    /// methods.add_inline_async("stock", MethodInfo::new().arg(Arg::new("sku")), move |args: Vec<Value>| {
    ///     let stock = stock.clone();
    ///     async move {
    ///         let sku = args.first().and_then(Value::as_str).unwrap_or_default().to_owned();
    ///         let count = stock.read().await.get(sku.as_str()).copied();
    ///         count
    ///             .map(Value::from)
    ///             .ok_or_else(|| RemoteError::with_summary("KeyError", sku))
    ///     }
    /// });
    /// ```
    pub fn add_inline_async<F, Fut>(
        &mut self,
        name: impl Into<String>,
        info: MethodInfo,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
    {
        let started: InlineAsyncHandler = Arc::new(move |args| handler(args).boxed());
        let run = started.clone();
        // Served by a task when not started on the I/O thread (a server
        // with a concurrency limit, an event receiver).
        let handler: Handler = Arc::new(move |args| run(args).map(Reply::Value).boxed());
        let method = Method {
            inline_async: Some(started),
            ..Method::new(info, handler)
        };
        self.methods.insert(name.into(), method);
        self
    }

    /// Registers a streaming method whose items are made quickly, without
    /// blocking (what `#[zerorpc(inline)]` makes of a method returning a
    /// stream or an iterator): items computed from the arguments or from
    /// memory, a generator.
    ///
    /// A server polls such a method's stream on its socket's I/O thread,
    /// whenever the client's credit allows another item, and sends each
    /// item as it comes: no task polls it and no item crosses between
    /// threads. A stream that waits (for a channel, a timer) is woken there
    /// too, and a client's loss drops it, as a task's would be. The price is
    /// the inline one for each item: while the stream makes one, that
    /// thread sends no heartbeat and reads nothing for any call, so each
    /// item must come quickly (a stream that must block goes through
    /// [`Methods::add`] or an iterator of a plain method, which runs on the
    /// blocking pool).
    ///
    /// ```
    /// use zerorpc::{Methods, MethodInfo, Arg, Reply, Value};
    /// use futures::StreamExt;
    ///
    /// let mut methods = Methods::new("Numbers");
    /// methods.add_inline_stream("count", MethodInfo::new().arg(Arg::new("n")).streaming(true), |args: Vec<Value>| async move {
    ///     let n = args.first().and_then(Value::as_u64).unwrap_or(0);
    ///     Reply::Stream(futures::stream::iter((0..n).map(|i| Ok(Value::from(i)))).boxed())
    /// });
    /// ```
    pub fn add_inline_stream<F, Fut>(
        &mut self,
        name: impl Into<String>,
        info: MethodInfo,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        // The same handler serves it from a task when it is not served on
        // the I/O thread (a server with a concurrency limit).
        let name = name.into();
        self.add(name.clone(), info, handler);
        if let Some(method) = self.methods.get_mut(&name) {
            method.inline_stream = true;
        }
        self
    }

    /// Registers a method that returns one value and may block while it
    /// computes it (I/O, locks, long computations): what the
    /// [`service`](crate::service) attribute makes of a plain, non-async
    /// method.
    ///
    /// A server runs it on tokio's blocking thread pool, and that thread
    /// sends the reply itself: no task waits for it, so a call costs one
    /// thread hand-off fewer than the same code run through
    /// `tokio::task::spawn_blocking` from an async handler. Heartbeats
    /// flow while it runs; the call's [`CallContext`](crate::CallContext)
    /// and `tracing` span are set on that thread.
    ///
    /// ```
    /// use zerorpc::{Methods, MethodInfo, Arg, Value, RemoteError};
    ///
    /// let mut methods = Methods::new("Files");
    /// methods.add_blocking("size", MethodInfo::new().arg(Arg::new("path")), |args: Vec<Value>| {
    ///     let path = args.first().and_then(Value::as_str).unwrap_or_default();
    ///     std::fs::metadata(path)
    ///         .map(|m| Value::from(m.len()))
    ///         .map_err(|e| RemoteError::with_summary("IOError", e.to_string()))
    /// });
    /// ```
    pub fn add_blocking<F>(
        &mut self,
        name: impl Into<String>,
        info: MethodInfo,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Vec<Value>) -> Result<Value, RemoteError> + Send + Sync + 'static,
    {
        let name = name.into();
        let blocking: InlineHandler = Arc::new(handler);
        let run = blocking.clone();
        let method_name: Arc<str> = Arc::from(name.as_str());
        // Where a call has no channel of its own to reply on (an event run
        // by a receiver), a task awaits the pool's answer.
        let handler: Handler = Arc::new(move |args| {
            let (run, method_name) = (run.clone(), method_name.clone());
            async move {
                let answer = on_blocking_pool(move || run(args)).await;
                match answer {
                    Ok(answer) => Reply::Value(answer),
                    Err(e) => Reply::Value(Err(join_error(&method_name, e))),
                }
            }
            .boxed()
        });
        let method = Method {
            blocking: Some(blocking),
            ..Method::new(info, handler)
        };
        self.methods.insert(name, method);
        self
    }

    /// Registers a method from a ready-made [`Handler`].
    pub fn add_handler(
        &mut self,
        name: impl Into<String>,
        info: MethodInfo,
        handler: Handler,
    ) -> &mut Self {
        self.methods.insert(name.into(), Method::new(info, handler));
        self
    }

    /// Adds every method of `other` (its name is ignored).
    pub fn merge(&mut self, other: Methods) -> &mut Self {
        self.methods.extend(other.methods);
        self
    }

    /// The method names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.methods.keys().map(String::as_str).collect();
        names.sort_unstable();
        names.into_iter()
    }

    /// What introspection shows about a method.
    pub fn info(&self, name: &str) -> Option<&MethodInfo> {
        self.methods.get(name).map(|m| &m.info)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Method> {
        self.methods.get(name)
    }
}

impl fmt::Debug for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Methods")
            .field("name", &self.name)
            .field("methods", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// Something a server can expose: implemented by the
/// [`service`](crate::service) attribute for an `impl` block.
pub trait Service: Send + Sync + 'static {
    /// The method table, with handlers holding on to the service.
    fn methods(self: Arc<Self>) -> Methods;
}

impl Service for Methods {
    fn methods(self: Arc<Self>) -> Methods {
        Arc::unwrap_or_clone(self)
    }
}

/// Runs `f` on the blocking thread pool with the call's context and
/// `tracing` span (see `Propagation::call_span`), which follow it there.
async fn on_blocking_pool<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, tokio::task::JoinError> {
    let context = crate::CallContext::current();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        match context {
            Some(ctx) => ctx.sync_scope(f),
            None => f(),
        }
    })
    .await
}

/// The error a method's blocking job that did not finish answers.
fn join_error(method: &str, error: tokio::task::JoinError) -> RemoteError {
    if error.is_panic() {
        panic_error(method, &*error.into_panic())
    } else {
        RemoteError::new("Cancelled", format!("{method}() was cancelled"), "")
    }
}

/// Turns a panic payload into the message of a remote error.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// A remote error for a handler that panicked.
pub(crate) fn panic_error(method: &str, payload: &(dyn std::any::Any + Send)) -> RemoteError {
    let message = panic_message(payload);
    RemoteError::new(
        "Panic",
        message.clone(),
        format!("Panic in method {method}: {message}\n"),
    )
}

/// Runs a handler, turning a panic into an error reply.
pub(crate) async fn call_guarded(method: &str, handler: &Handler, args: Vec<Value>) -> Reply {
    let future = std::panic::AssertUnwindSafe(async { handler(args).await });
    match future.catch_unwind().await {
        Ok(reply) => reply,
        Err(payload) => Reply::Value(Err(panic_error(method, &*payload))),
    }
}

/// A stream of replies that ends with `Err` on a panic in the stream.
pub(crate) fn guard_stream(
    method: String,
    stream: BoxStream<'static, Result<Value, RemoteError>>,
) -> BoxStream<'static, Result<Value, RemoteError>> {
    let mut stream = Some(stream);
    futures::stream::poll_fn(move |cx| {
        let Some(inner) = stream.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll_next_unpin(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                stream = None;
                std::task::Poll::Ready(Some(Err(panic_error(&method, &*payload))))
            }
        }
    })
    .boxed()
}
