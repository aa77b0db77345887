//! The RPC server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::future::Either;
use futures::stream::BoxStream;
use zerorpc_transport::{Channel, Observer, Socket, SocketConfig, SocketKind};
use zerorpc_wire::{Event, Value, names};

use crate::context::{CallWatcher, Propagation, Replies, ServerHooks, WatchedCall, watched};
use crate::driver::Driver;
use crate::endpoint::{Endpoints, Live, ResolveEndpoint};
use crate::gauge::{Gauge, Held};
use crate::inline::{
    InlineResponder, answer_now, answer_parts, blocking_handler, stream_parts, take_call,
};
use crate::service::{Reply, Service, call_guarded, guard_stream};
use crate::{CallContext, Error, InlineHandler, Methods, RemoteError, Result, introspect};

/// Configures and builds a [`Server`].
pub struct ServerBuilder {
    methods: Methods,
    config: SocketConfig,
    endpoints: Endpoints,
    max_concurrent_calls: Option<usize>,
    hooks: ServerHooks,
    /// See [`ServerBuilder::io_thread`].
    io_thread: bool,
}

impl ServerBuilder {
    /// Binds to an endpoint when built (may be repeated).
    pub fn bind(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.binds.push(endpoint.into());
        self
    }

    /// Connects to an endpoint when built, e.g. a hub's worker side (may be
    /// repeated).
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.connects.push(endpoint.into());
        self
    }

    /// The name `_zerorpc_name` answers (default: the service type's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.methods.set_name(name);
        self
    }

    /// Heartbeat interval; `None` disables heartbeats. Default 5 s.
    pub fn heartbeat(mut self, interval: Option<Duration>) -> Self {
        self.config.heartbeat = interval;
        self
    }

    /// Heartbeat passively: only after the client's first heartbeat.
    pub fn passive_heartbeat(mut self, passive: bool) -> Self {
        self.config.passive_heartbeat = passive;
        self
    }

    /// Adds an observer of every event the server sends and receives and
    /// of every call's channel (accepted, closed, lost...). Observers run
    /// on the socket's I/O thread and must be quick: see
    /// [`Observer`](crate::transport::Observer), and
    /// [`ChannelObserver`](crate::transport::ChannelObserver) for slow ones.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.config.observers.push(observer);
        self
    }

    /// How endpoints are resolved (default: [`Literal`](crate::Literal)
    /// ZeroMQ endpoints). What the resolver has ready is applied by
    /// [`build`](ServerBuilder::build), later changes in the background:
    /// see [`ResolveEndpoint`] for when and how.
    pub fn resolver(mut self, resolver: Arc<dyn ResolveEndpoint>) -> Self {
        self.endpoints.resolver = resolver;
        self
    }

    /// Bytes of replies that may wait for one client that reads slower than
    /// they are made; beyond it, a call whose reply cannot wait fails (and
    /// is counted in [`Server::stats`]). Default
    /// [`DEFAULT_SEND_QUEUE_LIMIT`](crate::transport::DEFAULT_SEND_QUEUE_LIMIT).
    pub fn send_queue_limit(mut self, bytes: usize) -> Self {
        self.config.send_queue_limit = bytes;
        self
    }

    /// How connections from clients are secured and who is let in
    /// (default [`Security::None`](crate::transport::Security::None)):
    /// PLAIN or CURVE, checked by an
    /// [`Authenticator`](crate::transport::Authenticator). Applies to every
    /// endpoint; see [`Security`](crate::transport::Security).
    pub fn security(mut self, security: crate::transport::Security) -> Self {
        self.config.security = security;
        self
    }

    /// The largest request frame, in bytes, a client may send; `None` for
    /// no limit. Default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`](crate::transport::DEFAULT_MAX_MESSAGE_SIZE)
    /// (16 MiB). ZeroMQ checks the size announced by the frame's header and
    /// drops the connection of a client that sends more before reading the
    /// frame, so the oversized call never reaches memory nor is served; it
    /// fails on the client's side with its timeout, or as a lost remote
    /// when no heartbeat comes. The client reconnects; its other calls in
    /// flight on that connection are lost with it. Applies to every
    /// endpoint (see
    /// [`SocketConfig::max_message_size`](crate::transport::SocketConfig::max_message_size)).
    pub fn max_message_size(mut self, bytes: Option<u64>) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// With `false`, a server built on a multi-thread tokio runtime is
    /// driven by a task of that runtime, as clients are by default (see
    /// [`ClientBuilder::io_thread`](crate::ClientBuilder::io_thread)),
    /// instead of by a thread of its own (the default, `true`). An async
    /// method's call then reaches its task, and its reply the socket,
    /// without a thread hand-off: on loopback a call to an async method
    /// took 108-132 µs instead of 162-172. But the socket's work then
    /// shares the workers with the methods: 100 async calls in flight went
    /// 6-25% slower, small stream items 3-12%, over three full benchmark
    /// runs (docs/benchmarks.md, ARCHITECTURE.md). Calls and heartbeats flow
    /// whatever the methods do: a method that blocks the worker holding the
    /// socket's task stalls the server once, for 50 to 100 ms, after which
    /// the socket has a thread of its own for good (see
    /// [`ClientBuilder::io_thread`](crate::ClientBuilder::io_thread)); while
    /// methods block every worker, a thread turns the socket every 200 ms,
    /// so that no client takes the server for lost. A server built outside
    /// a runtime (to [`run`](Server::run) it) always gets a thread.
    pub fn io_thread(mut self, thread: bool) -> Self {
        self.io_thread = thread;
        self
    }

    /// At most this many calls run at once; further calls wait (their
    /// heartbeats still flow). Default: unlimited. Limits beyond what the
    /// runtime can count (about 2^61) are lowered to that.
    pub fn max_concurrent_calls(mut self, limit: usize) -> Self {
        self.max_concurrent_calls = Some(limit.clamp(1, tokio::sync::Semaphore::MAX_PERMITS));
        self
    }

    /// Amends the headers of replies and gives each call a `tracing` span
    /// (see [`Propagation::reply`] and [`Propagation::call_span`]); trace
    /// context attaches here. Default: none, replies carry only the
    /// protocol's keys.
    pub fn propagation(mut self, propagation: Arc<dyn Propagation>) -> Self {
        self.hooks.propagation = Some(propagation);
        self
    }

    /// Watches every call served, from the call itself (see
    /// [`CallWatcher`]): the socket then keeps where each request came
    /// from
    /// ([`SocketConfig::channel_peers`](crate::transport::SocketConfig::channel_peers)).
    pub fn call_watcher(mut self, watcher: Arc<dyn CallWatcher>) -> Self {
        self.config.channel_peers = true;
        self.hooks.watcher = Some(watcher);
        self
    }

    /// Creates the socket, binds and connects to what the resolver has
    /// ready, without waiting for it; later changes are followed (see
    /// [`ResolveEndpoint`]).
    pub fn build(self) -> Result<Server> {
        if self.endpoints.binds.is_empty() && self.endpoints.connects.is_empty() {
            // A server nobody can reach would serve nothing, silently.
            return Err(Error::no_endpoint(
                "a server needs an endpoint: call bind (or connect, to join a hub) before build",
            ));
        }
        let methods = Arc::new(self.methods);
        let mut config = self.config;
        // Inline methods are answered on the I/O thread, where no limit
        // could hold them back: with a limit, every call waits its turn.
        // Counted only where the runtime drives the socket, the one reader.
        let serving = (!self.io_thread).then(Gauge::default);
        let responder = match self.max_concurrent_calls {
            None => InlineResponder::new(methods.clone(), self.hooks.clone(), serving.clone()),
            Some(_) => None,
        };
        config.responder = responder
            .clone()
            .map(|r| r as Arc<dyn zerorpc_transport::Responder>);
        let socket =
            crate::io_task::socket(SocketKind::Server, config, self.io_thread, serving.clone())?;
        let (live, attached) = self.endpoints.attach(&socket)?;
        let bound = attached.bound.len();
        let mut endpoints = attached.bound;
        endpoints.extend(attached.connected);
        let limit = self
            .max_concurrent_calls
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
        Ok(Server {
            driver: Driver::new(),
            methods,
            socket,
            live,
            endpoints,
            bound,
            limit,
            responder,
            hooks: self.hooks,
            serving,
        })
    }
}

/// A ZeroRPC server: serves the methods of a [`Service`] on a ROUTER socket.
///
/// Each call runs in its own task; a call whose client stops heartbeating
/// is cancelled (its future dropped). Heartbeats keep flowing however busy
/// or blocked a handler is, as they are sent by the socket's I/O thread;
/// the exception is an inline method, which that thread runs itself (see
/// [`Methods::add_inline`]).
///
/// ```
/// # use zerorpc::{Server, Client};
/// struct Calculator;
///
/// #[zerorpc::service]
/// impl Calculator {
///     /// Adds two numbers.
///     pub fn add(&self, a: i64, b: i64) -> i64 {
///         a + b
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), zerorpc::Error> {
/// let server = Server::builder(Calculator).bind("tcp://127.0.0.1:*").build()?;
/// let endpoint = server.endpoints()[0].clone();
/// tokio::spawn(server.serve());
///
/// let client = Client::connect(&endpoint)?;
/// let sum: i64 = client.call("add", (2, 3)).await?;
/// assert_eq!(sum, 5);
/// # Ok(())
/// # }
/// ```
pub struct Server {
    /// Where the server is served, so that a blocking call there fails.
    driver: Driver,
    methods: Arc<Methods>,
    socket: Socket,
    /// Follows the resolver's changes while the server lives.
    live: Live,
    /// Bound first, then connected.
    endpoints: Vec<String>,
    /// How many of `endpoints` are bound.
    bound: usize,
    limit: Option<Arc<tokio::sync::Semaphore>>,
    /// Answers inline methods on the I/O thread once serving.
    responder: Option<Arc<InlineResponder>>,
    hooks: ServerHooks,
    /// The calls served in tasks now, for a socket the runtime drives.
    serving: Option<Gauge>,
}

impl Server {
    /// Starts configuring a server for `service`.
    pub fn builder(service: impl Service) -> ServerBuilder {
        ServerBuilder {
            methods: Arc::new(service).methods(),
            config: SocketConfig::new(),
            endpoints: Endpoints::new(),
            max_concurrent_calls: None,
            hooks: ServerHooks::default(),
            io_thread: true,
        }
    }

    /// The endpoints bound or connected by [`ServerBuilder::build`], with
    /// wildcard ports filled in (not the resolver's later changes).
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The endpoints bound by [`ServerBuilder::build`], with wildcard ports
    /// filled in (`tcp://127.0.0.1:*` as `tcp://127.0.0.1:40123`): where
    /// clients reach the server, which is what an announcement in a
    /// directory (DNS) publishes.
    pub fn bound_endpoints(&self) -> &[String] {
        &self.endpoints[..self.bound]
    }

    /// The methods served.
    pub fn methods(&self) -> &Methods {
        &self.methods
    }

    /// A handle that stops the server from another task or thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            socket: self.socket.clone(),
        }
    }

    /// The socket's counters: events sent and received, events waiting for
    /// slow clients, and drops by reason.
    pub fn stats(&self) -> zerorpc_transport::Stats {
        self.socket.stats()
    }

    /// Serves calls until the server is shut down. Must run inside a tokio
    /// runtime (calls are spawned as tasks on it).
    ///
    /// On a current-thread runtime, the thread that drives the runtime must
    /// not block: a blocking call made there (a [`BlockingClient`]
    /// call, a typed blocking client's) fails at once with an
    /// [`ErrorKind::Usage`](crate::ErrorKind::Usage) error rather than
    /// waiting for ever for a reply this server cannot send.
    ///
    /// [`BlockingClient`]: crate::BlockingClient
    pub fn serve(self) -> impl Future<Output = Result<()>> + Send + 'static {
        // Taken for the serving thread from the call on, not from the first
        // poll: `tokio::spawn(server.serve())` polls only once the calling
        // thread yields, and a blocking call before that would stall too.
        self.driver.here();
        self.serve_here()
    }

    async fn serve_here(self) -> Result<()> {
        self.driver.here();
        // A server built outside a tokio runtime (to `run` it) follows its
        // resolver's changes from now on.
        self.live.start();
        if let Some(responder) = &self.responder {
            responder.start(tokio::runtime::Handle::current());
        }
        loop {
            let mut channel = match self.socket.accept().await {
                Ok(channel) => channel,
                Err(e) if e.is_closed() => return Ok(()),
                Err(e) => return Err(Error::from(e)),
            };
            let methods = self.methods.clone();
            let hooks = self.hooks.clone();
            let permit = match &self.limit {
                Some(limit) => limit.clone().acquire_owned().await.ok(),
                None => None,
            };
            // An accepted channel holds its request already.
            let request = channel.try_recv();
            let blocking = request
                .as_ref()
                .and_then(|request| blocking_handler(&methods, request));
            let served = self.serving.as_ref().map(Gauge::enter);
            match (blocking, request) {
                (Some(handler), Some(request)) => {
                    let watch = hooks.watch(&request, || Some(channel.peer_slot()));
                    let call = BlockingCall::new(handler, channel, request, watch);
                    tokio::task::spawn_blocking(move || {
                        call.serve(hooks.propagation.as_deref());
                        drop((permit, served));
                    });
                }
                (_, Some(request)) => {
                    // Boxed before it is spawned, which tokio would
                    // otherwise copy into its task and through the task's
                    // stages (see `ServedCall` for its size).
                    let held = (permit, served);
                    tokio::spawn(Box::pin(serve_call(
                        methods, channel, request, &hooks, held,
                    )));
                }
                (_, None) => {
                    tokio::spawn(async move {
                        if let Ok(request) = channel.recv().await {
                            let held = (permit, served);
                            serve_call(methods, channel, request, &hooks, held).await;
                        }
                    });
                }
            }
        }
    }

    /// Serves calls on a runtime of its own, blocking the current thread
    /// until the server is shut down.
    ///
    /// Inside a tokio runtime (including on its blocking threads) this is
    /// an [`ErrorKind::Usage`](crate::ErrorKind::Usage) error: use
    /// [`serve`](Self::serve)`.await` there.
    pub fn run(self) -> Result<()> {
        crate::driver::check_no_runtime()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("zerorpc-server")
            .build()
            .map_err(|e| Error::io("cannot start the server runtime", e))?;
        runtime.block_on(self.serve())
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.methods.name())
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// Stops a [`Server`]: its `serve` returns and open calls are dropped.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    socket: Socket,
}

impl ShutdownHandle {
    /// Stops the server.
    pub fn shutdown(&self) {
        self.socket.close();
    }

    /// The server's counters, like [`Server::stats`], readable while
    /// [`Server::serve`] owns the server.
    pub fn stats(&self) -> zerorpc_transport::Stats {
        self.socket.stats()
    }
}

/// A call to a blocking method (see [`Methods::add_blocking`]) that came
/// through `accept` (under a concurrency limit, or before the responder
/// starts), served by a thread of the blocking pool from the request to
/// the reply: no task waits for that thread to wake it with the answer.
struct BlockingCall {
    handler: InlineHandler,
    channel: Channel,
    context: CallContext,
    args: Vec<Value>,
    v1: bool,
    watch: Option<Box<dyn WatchedCall>>,
}

impl BlockingCall {
    fn new(
        handler: InlineHandler,
        channel: Channel,
        mut request: Event,
        watch: Option<Box<dyn WatchedCall>>,
    ) -> Self {
        let (context, args, v1) = take_call(&mut request);
        BlockingCall {
            handler,
            channel,
            context,
            args,
            v1,
            watch,
        }
    }

    /// Runs the method and sends its reply, on a thread that may block.
    fn serve(mut self, propagation: Option<&dyn Propagation>) {
        let reply = answer_now(
            &self.handler,
            self.args,
            &self.context,
            propagation,
            self.v1,
        );
        let reply = watched(&mut self.watch, reply);
        // A single reply never waits for credit: this returns at once.
        if let Err(e) = futures::executor::block_on(self.channel.send_last(reply)) {
            tracing::debug!("reply to {} not sent: {e}", self.context.method());
        }
    }
}

/// What a call served by a task holds until it ends: its place under the
/// server's concurrency limit, and its count among calls in tasks.
type HeldWhileServed = (Option<tokio::sync::OwnedSemaphorePermit>, Option<Held>);

/// Sets up the call `request` opened on `channel`, and returns the
/// future that serves it (see [`ServedCall`]).
fn serve_call(
    methods: Arc<Methods>,
    channel: Channel,
    request: Event,
    hooks: &ServerHooks,
    held: HeldWhileServed,
) -> ServedCall<
    impl Future<Output = ()> + Send + 'static + use<>,
    impl Future<Output = zerorpc_transport::Error> + Send + 'static + use<>,
> {
    let watch = hooks.watch(&request, || Some(channel.peer_slot()));
    // zerorpc-python answers requests without `v`, or with v < 2, in the v1 shape.
    let v1 = request.header.protocol_version() < 2;
    let Event { header, name, args } = request;
    // The name is moved, not copied: the context's is the one the call uses.
    let context = CallContext::new(name.into_owned(), header);
    let call = context.clone();
    let lost = channel.closed();
    let propagation = hooks.propagation.as_deref();
    let mut replies = hooks.replies(&context, watch);
    let span = propagation.and_then(|p| p.call_span(&context));
    let work = async move {
        let method = call.method();
        match dispatch(&methods, method, args).await {
            // One reply: sent from here, its future sharing room with the
            // method's, which is over by then.
            Reply::Value(answer) => {
                let (name, args) = answer_parts(answer, v1);
                if let Err(e) = channel.send_last(replies.event(name, args)).await {
                    tracing::debug!("reply to {method} not sent: {e}");
                }
            }
            // Boxed: a call waiting in its method (thousands may) should
            // not carry a stream's state all along.
            Reply::Stream(stream) => {
                Box::pin(send_stream(channel, method, stream, v1, &mut replies)).await;
            }
        }
    };
    let work = context.clone().scope(work);
    let work = match span {
        Some(span) => Either::Left(tracing::Instrument::instrument(work, span)),
        None => Either::Right(work),
    };
    ServedCall {
        work,
        lost,
        context,
        _held: held,
    }
}

pin_project_lite::pin_project! {
    /// A call served by a task: its work (the method, then the reply), cut
    /// short by the client's loss, which drops the work and the handler
    /// with it.
    ///
    /// Written by hand because an async block holds what it captures
    /// besides what it has moved on into the futures it awaits: the
    /// same call as an async fn took 2,104 bytes, above the 1,032 that
    /// glibc's per-thread cache serves, so that every call's box came
    /// from the shared heap.
    struct ServedCall<W, L> {
        #[pin]
        work: W,
        #[pin]
        lost: L,
        context: CallContext,
        _held: HeldWhileServed,
    }
}

impl<W, L> Future for ServedCall<W, L>
where
    W: Future<Output = ()>,
    L: Future<Output = zerorpc_transport::Error>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.work.poll(cx).is_ready() {
            return Poll::Ready(());
        }
        match this.lost.poll(cx) {
            Poll::Ready(error) => {
                tracing::debug!("call to {} cancelled: {error}", this.context.method());
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

pub(crate) async fn dispatch(methods: &Methods, name: &str, args: Value) -> Reply {
    let args = match args {
        Value::Array(args) => args,
        Value::Nil => Vec::new(),
        other => {
            let message = format!(
                "{name}() arguments must be an array, not {}",
                type_name(&other)
            );
            return Reply::Value(Err(RemoteError::with_summary("TypeError", message)));
        }
    };
    if let Some(answer) = introspect::answer(methods, name, &args) {
        return Reply::Value(answer);
    }
    match methods.get(name) {
        Some(method) => match call_guarded(name, &method.handler, args).await {
            Reply::Stream(stream) => Reply::Stream(guard_stream(name.to_owned(), stream)),
            reply => reply,
        },
        // zerorpc-python's answer to an unknown method: NameError with the name.
        None => Reply::Value(Err(RemoteError::with_summary("NameError", name))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "bool",
        Value::Integer(_) => "int",
        Value::F32(_) | Value::F64(_) => "float",
        Value::String(_) => "str",
        Value::Binary(_) => "bin",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Ext(..) => "ext",
    }
}

/// Sends a method's stream: its items, then its end (or its error) as
/// the channel's last event.
async fn send_stream(
    mut channel: Channel,
    method: &str,
    mut stream: BoxStream<'static, Result<Value, RemoteError>>,
    v1: bool,
    replies: &mut Replies,
) {
    let result = loop {
        let (name, args) = stream_parts(stream.next().await, v1);
        let event = replies.event(name, args);
        // The last event closes the channel with it (`send_last`).
        if name != names::STREAM {
            break channel.send_last(event).await;
        }
        if let Err(e) = channel.send(event).await {
            break Err(e);
        }
    };
    if let Err(e) = result {
        tracing::debug!("stream of {method} not sent: {e}");
    }
}
