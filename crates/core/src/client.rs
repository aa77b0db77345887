//! The RPC client, async and blocking.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use zerorpc_transport::{Channel, Observer, OpenOptions, Socket, SocketConfig, SocketKind};
use zerorpc_wire::{Event, Header, Value, names};

use crate::context::{CallWatcher, CopyExtras, Propagation, WatchedCall};
use crate::endpoint::{Endpoints, Live, ResolveEndpoint};
use crate::{CallContext, Error, RemoteError, Result};

/// The default call timeout, as in zerorpc-python.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Configures and builds a [`Client`].
pub struct ClientBuilder {
    config: SocketConfig,
    /// See [`ClientBuilder::io_thread`].
    io_thread: bool,
    endpoints: Endpoints,
    timeout: Option<Duration>,
    propagation: Arc<dyn Propagation>,
    watcher: Option<Arc<dyn CallWatcher>>,
}

impl ClientBuilder {
    /// Connects to an endpoint (may be repeated: calls are spread over the
    /// servers, each call staying on one). A name is resolved by the
    /// [resolver](ClientBuilder::resolver), whose later changes the client
    /// follows.
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.connects.push(endpoint.into());
        self
    }

    /// Binds to an endpoint, for servers that connect to the client.
    pub fn bind(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.binds.push(endpoint.into());
        self
    }

    /// Call timeout, covering the first reply (default 30 s); `None` waits
    /// forever, relying on heartbeats.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Heartbeat interval; `None` disables heartbeats. Default 5 s.
    pub fn heartbeat(mut self, interval: Option<Duration>) -> Self {
        self.config.heartbeat = interval;
        self
    }

    /// Heartbeat passively: only after the server's first heartbeat.
    pub fn passive_heartbeat(mut self, passive: bool) -> Self {
        self.config.passive_heartbeat = passive;
        self
    }

    /// Receive window for streams: items granted at once, from every
    /// server, fewer for large items (see
    /// [`SocketConfig::window_bytes`](crate::transport::SocketConfig::window_bytes)).
    /// By default [`DEFAULT_WINDOW`](crate::transport::DEFAULT_WINDOW)
    /// (zerorpc-python's is 100), and
    /// [`DEFAULT_LOSSLESS_WINDOW`](crate::transport::DEFAULT_LOSSLESS_WINDOW)
    /// from servers that say they never drop (ours).
    pub fn window(mut self, window: u32) -> Self {
        self.config.window = window;
        self.config.lossless_window = window;
        self
    }

    /// Adds an observer of every event the client sends and receives and
    /// of every call's channel (opened, timed out, lost...). Observers run
    /// on the socket's I/O thread and must be quick: see
    /// [`Observer`](crate::transport::Observer), and
    /// [`ChannelObserver`](crate::transport::ChannelObserver) for slow ones.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.config.observers.push(observer);
        self
    }

    /// How endpoints are resolved (default: [`Literal`](crate::Literal)
    /// ZeroMQ endpoints). What the resolver has ready is applied by
    /// [`build`](ClientBuilder::build), later changes in the background:
    /// see [`ResolveEndpoint`] for when and how.
    pub fn resolver(mut self, resolver: Arc<dyn ResolveEndpoint>) -> Self {
        self.endpoints.resolver = resolver;
        self
    }

    /// Bytes of requests that may wait for a server that reads slower than
    /// calls are made; beyond it a call fails at once with a transport
    /// error saying so. Default
    /// [`DEFAULT_SEND_QUEUE_LIMIT`](crate::transport::DEFAULT_SEND_QUEUE_LIMIT).
    pub fn send_queue_limit(mut self, bytes: usize) -> Self {
        self.config.send_queue_limit = bytes;
        self
    }

    /// The largest reply frame, in bytes, a server may send; `None` for no
    /// limit. Default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`](crate::transport::DEFAULT_MAX_MESSAGE_SIZE)
    /// (16 MiB). ZeroMQ drops the connection of a server that sends more,
    /// so the call gets no reply and fails with its timeout, or as a lost
    /// remote when the server's heartbeats stop reaching it; the client
    /// then connects again, counting it in
    /// [`Stats::connections_closed`](crate::transport::Stats::connections_closed)
    /// (see docs/operations.md). Raise the limit for servers that send
    /// more. Servers are taken to share the limit: a request larger than it
    /// fails at once with a transport error saying so, and is not sent.
    /// Applies to every endpoint (see
    /// [`SocketConfig::max_message_size`](crate::transport::SocketConfig::max_message_size)).
    pub fn max_message_size(mut self, bytes: Option<u64>) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// How the connections to servers are secured (default
    /// [`Security::None`](crate::transport::Security::None)): a PLAIN user
    /// and password, or CURVE keys and the server's public key. Applies to
    /// every endpoint; see [`Security`](crate::transport::Security).
    pub fn security(mut self, security: crate::transport::Security) -> Self {
        self.config.security = security;
        self
    }

    /// How headers of nested calls derive from the call being served
    /// (default: [`CopyExtras`]).
    pub fn propagation(mut self, propagation: Arc<dyn Propagation>) -> Self {
        self.propagation = propagation;
        self
    }

    /// Watches every call from the call itself (see [`CallWatcher`]): the
    /// socket then keeps where each request went
    /// ([`SocketConfig::channel_peers`](crate::transport::SocketConfig::channel_peers)).
    pub fn call_watcher(mut self, watcher: Arc<dyn CallWatcher>) -> Self {
        self.config.channel_peers = true;
        self.watcher = Some(watcher);
        self
    }

    /// Drives the client's socket from a thread of its own even when it is
    /// built on a multi-thread tokio runtime. There, by default, a task of
    /// that runtime drives it: calls made from the runtime's tasks then
    /// cost no thread hand-off (a sequential call on loopback took 114 µs
    /// instead of 133; calls made by `main`'s own future, which runs on
    /// the main thread rather than on a worker, save half of that). If the
    /// runtime shuts down while the client lives, a thread takes over.
    ///
    /// Calls and heartbeats flow even while that task cannot run: a thread
    /// shared by the process looks at such sockets every 50 ms. A task
    /// woken for its socket and still not run at the next look (queued
    /// behind a worker that blocks) is stuck, and the socket gets a thread
    /// of its own from then on; one that cannot run with nothing waiting
    /// (every worker blocked) has its socket turned every 200 ms, which
    /// keeps the heartbeats. Code that blocks a worker on a call should
    /// still use [`blocking`](Client::blocking) (which lets the worker's
    /// tasks run elsewhere meanwhile) rather than
    /// `futures::executor::block_on`. Current-thread runtimes and code
    /// outside any runtime always get a thread.
    pub fn io_thread(mut self, thread: bool) -> Self {
        self.io_thread = thread;
        self
    }

    /// Creates the socket, binds and connects to what the resolver has
    /// ready, without waiting for it; later changes are followed (see
    /// [`ResolveEndpoint`]).
    pub fn build(self) -> Result<Client> {
        let socket = crate::io_task::socket(SocketKind::Client, self.config, self.io_thread, None)?;
        let (live, _) = self.endpoints.attach(&socket)?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                socket,
                live,
                timeout: self.timeout,
                propagation: self.propagation,
                watcher: self.watcher,
            }),
        })
    }
}

struct ClientInner {
    socket: Socket,
    /// Follows the resolver's changes while the client lives.
    live: Live,
    timeout: Option<Duration>,
    propagation: Arc<dyn Propagation>,
    watcher: Option<Arc<dyn CallWatcher>>,
}

/// Options of one call.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Overrides the client's timeout for this call.
    pub timeout: Option<Duration>,
    /// Overrides the receive window for this call's stream
    /// (zerorpc-python's `slots=`).
    pub window: Option<u32>,
}

impl CallOptions {
    /// The client's defaults.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// Sets the timeout of this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the receive window of this call's stream.
    pub fn window(mut self, window: u32) -> Self {
        self.window = Some(window);
        self
    }
}

/// What a call answered: a single value or a stream, as the server chose.
#[derive(Debug)]
pub enum Response {
    /// The value of an `OK` reply.
    Value(Value),
    /// A streamed reply.
    Stream(ReplyStream<Value>),
}

/// A ZeroRPC client.
///
/// Cheap to clone; many calls may run concurrently on one client, each on
/// its own channel, without head-of-line blocking. Its futures run on any
/// executor (tokio, `futures::executor::block_on`...): the socket's I/O
/// thread wakes them. Dropping a call's future abandons the call.
///
/// ```no_run
/// use futures::StreamExt;
/// # futures::executor::block_on(async {
/// let client = zerorpc::Client::connect("tcp://127.0.0.1:4242")?;
/// let sum: i64 = client.call("add", (1, 2)).await?;
/// println!("1 + 2 = {sum}");
/// let mut numbers = client.stream::<i64>("count", (10,)).await?;
/// while let Some(n) = numbers.next().await {
///     println!("{}", n?);
/// }
/// # Ok::<(), zerorpc::Error>(())
/// # })?;
/// # Ok::<(), zerorpc::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: SocketConfig::new(),
            io_thread: false,
            endpoints: Endpoints::new(),
            timeout: Some(DEFAULT_TIMEOUT),
            propagation: Arc::new(CopyExtras),
            watcher: None,
        }
    }

    /// A client with default settings connected to `endpoint`.
    pub fn connect(endpoint: &str) -> Result<Client> {
        Client::builder().connect(endpoint).build()
    }

    /// The socket's counters: events sent and received, events waiting for
    /// a slow server, and drops by reason.
    pub fn stats(&self) -> zerorpc_transport::Stats {
        self.inner.socket.stats()
    }

    /// Calls `method` and converts its result. `args` is a tuple (or any
    /// sequence) of positional arguments; `()` for none. A streamed reply is
    /// collected into a sequence.
    pub async fn call<R: DeserializeOwned>(&self, method: &str, args: impl Serialize) -> Result<R> {
        self.call_values(method, to_args(&args)?).await
    }

    /// [`Client::call`] with arguments already converted.
    pub(crate) async fn call_values<R: DeserializeOwned>(
        &self,
        method: &str,
        args: Vec<Value>,
    ) -> Result<R> {
        let value = match self.invoke(method, args, CallOptions::new()).await? {
            Response::Value(value) => value,
            Response::Stream(stream) => Value::Array(
                stream
                    .collect::<Vec<_>>()
                    .await
                    .into_iter()
                    .collect::<Result<_>>()?,
            ),
        };
        zerorpc_wire::from_value(value).map_err(|e| conversion(format!("result of {method}"), e))
    }

    /// Calls a method that streams its result, converting each item. A
    /// single `OK` reply gives a stream of that one value (none for nil, as
    /// zerorpc-node answers an empty stream).
    pub async fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        args: impl Serialize,
    ) -> Result<ReplyStream<T>> {
        self.stream_with(method, args, CallOptions::new()).await
    }

    /// [`Client::stream`] with options for this call.
    pub async fn stream_with<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        args: impl Serialize,
        options: CallOptions,
    ) -> Result<ReplyStream<T>> {
        self.stream_values(method, to_args(&args)?, options).await
    }

    /// [`Client::stream_with`] with arguments already converted.
    pub(crate) async fn stream_values<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        args: Vec<Value>,
        options: CallOptions,
    ) -> Result<ReplyStream<T>> {
        let stream = match self.invoke(method, args, options).await? {
            Response::Stream(stream) => stream,
            Response::Value(Value::Nil) => ReplyStream::empty(),
            Response::Value(value) => ReplyStream::once(value),
        };
        Ok(stream.typed(method))
    }

    /// Calls `method` with dynamic arguments and returns what the server
    /// answered, single value or stream.
    pub async fn invoke(
        &self,
        method: &str,
        args: Vec<Value>,
        options: CallOptions,
    ) -> Result<Response> {
        let (mut channel, mut watch) = self.open_call(method, args, options)?;
        let first = channel
            .recv()
            .await
            .map_err(|e| Error::transport(e, Some(method)))?;
        if let Some(watch) = &mut watch {
            watch.replied(&first);
        }
        match &*first.name {
            names::OK => Ok(Response::Value(ok_value(first.args))),
            names::ERR => Err(remote_error(&first)),
            names::STREAM | names::STREAM_DONE => Ok(Response::Stream(ReplyStream::from_channel(
                channel,
                first,
                method.to_owned(),
                watch,
            ))),
            other => Err(Error::codec(
                format!("unexpected reply {other:?} to {method}"),
                None,
            )),
        }
    }

    /// Sends a call's request on a channel of its own. Apart from
    /// [`invoke`](Self::invoke)'s await, so that what only the request
    /// needs takes no room in the future of every call (624 bytes with
    /// it, each moved a few times per call).
    fn open_call(
        &self,
        method: &str,
        args: Vec<Value>,
        options: CallOptions,
    ) -> Result<(Channel, Option<Box<dyn WatchedCall>>)> {
        // A client built outside a tokio runtime follows its resolver's
        // changes from its first call made inside one.
        self.inner.live.start();
        let mut header = Header::new();
        self.inner
            .propagation
            .propagate(CallContext::current().as_ref(), &mut header);
        let request = Event::new(header, method.to_owned(), Value::Array(args));
        let mut watch = self
            .inner
            .watcher
            .as_ref()
            .and_then(|watcher| watcher.watch(&request));
        let open = OpenOptions {
            first_reply_timeout: options.timeout.or(self.inner.timeout),
            window: options.window,
        };
        let channel = self.inner.socket.open(request, open)?;
        if let Some(watch) = &mut watch {
            watch.routed(channel.peer_slot());
        }
        Ok((channel, watch))
    }

    /// A blocking view of this client, for scripts and command-line tools.
    pub fn blocking(&self) -> BlockingClient {
        BlockingClient {
            client: self.clone(),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Positional arguments from a serializable value: a sequence gives its
/// elements, `()` none, anything else one argument.
pub(crate) fn to_args(args: &(impl Serialize + ?Sized)) -> Result<Vec<Value>> {
    Ok(match zerorpc_wire::to_value(args)? {
        Value::Array(items) => items,
        Value::Nil => Vec::new(),
        other => vec![other],
    })
}

fn ok_value(args: Value) -> Value {
    match args {
        Value::Array(mut items) if items.len() == 1 => items.pop().unwrap_or(Value::Nil),
        // Not the usual `[result]`: hand over what came.
        other => other,
    }
}

fn remote_error(event: &Event) -> Error {
    // A reply without `v` (or v < 2) carries the v1 shape `[message]`.
    let v1 = event.header.protocol_version() < 2;
    let parsed = if v1 {
        event
            .args
            .as_array()
            .and_then(|a| a.first())
            .map(|m| RemoteError::new("RemoteError", m.as_str().unwrap_or_default(), ""))
    } else {
        RemoteError::from_args(&event.args)
    };
    match parsed {
        Some(e) => e.into(),
        None => Error::codec(format!("malformed ERR reply: {}", event.args), None),
    }
}

/// The items of a streamed reply.
///
/// Items arrive under flow control: the server sends more only as they are
/// consumed. Dropping the stream abandons the call.
pub struct ReplyStream<T> {
    inner: BoxStream<'static, Result<T>>,
}

impl<T> std::fmt::Debug for ReplyStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyStream(..)")
    }
}

impl ReplyStream<Value> {
    /// The stream of a call whose first reply, `first`, its watch (if
    /// any) has already seen.
    fn from_channel(
        channel: Channel,
        first: Event,
        method: String,
        watch: Option<Box<dyn WatchedCall>>,
    ) -> Self {
        let items = ChannelItems {
            channel: Some(channel),
            pending: Some(first),
            method,
            watch,
        };
        ReplyStream {
            inner: items.boxed(),
        }
    }

    fn empty() -> Self {
        ReplyStream {
            inner: futures::stream::empty().boxed(),
        }
    }

    fn once(value: Value) -> Self {
        ReplyStream {
            inner: futures::stream::once(async move { Ok(value) }).boxed(),
        }
    }

    /// Items converted to `T`; one that does not convert is an error
    /// naming `method`.
    fn typed<T: DeserializeOwned + Send + 'static>(self, method: &str) -> ReplyStream<T> {
        // Items asked for as they came need no conversion: a `Value` went
        // through serde and came out rebuilt, some 170 instructions per
        // item of a stream of 64-byte items.
        let mut slot = Some(self);
        let same = (&mut slot as &mut dyn Any)
            .downcast_mut::<Option<ReplyStream<T>>>()
            .and_then(Option::take);
        match (same, slot) {
            (Some(same), _) => same,
            (None, Some(values)) => values.converted(method),
            // The slot is emptied only when its stream was taken as is.
            (None, None) => ReplyStream {
                inner: futures::stream::empty().boxed(),
            },
        }
    }

    /// Items converted to `T` by serde.
    fn converted<T: DeserializeOwned + Send + 'static>(self, method: &str) -> ReplyStream<T> {
        let context = format!("item of the stream of {method}");
        ReplyStream {
            inner: self
                .inner
                .map(move |item| {
                    zerorpc_wire::from_value(item?).map_err(|e| conversion(context.clone(), e))
                })
                .boxed(),
        }
    }
}

/// The items of a streamed reply as they come on its channel. Written
/// out rather than unfolded from an async block: an unfolded state moves
/// in and out of its future for every item (five copies of some 300
/// bytes per item on the client of a stream).
struct ChannelItems {
    /// `None` once the stream has ended: the channel and the watch go
    /// with its last event, not with the stream.
    channel: Option<Channel>,
    /// The first reply, already seen by the watch.
    pending: Option<Event>,
    method: String,
    watch: Option<Box<dyn WatchedCall>>,
}

impl ChannelItems {
    /// The item an event of the stream stands for; `None` at its end.
    /// (The event is borrowed, its item taken out of it: every item would
    /// otherwise move the whole event once more.)
    fn item(&mut self, event: &mut Event) -> Option<Result<Value>> {
        let last = match &*event.name {
            names::STREAM => return Some(Ok(std::mem::replace(&mut event.args, Value::Nil))),
            names::STREAM_DONE => None,
            names::ERR => Some(Err(remote_error(event))),
            other => Some(Err(Error::codec(
                format!(
                    "unexpected event {other:?} in the stream of {}",
                    self.method
                ),
                None,
            ))),
        };
        self.end();
        last
    }

    fn end(&mut self) {
        self.channel = None;
        self.watch = None;
    }
}

impl Stream for ChannelItems {
    type Item = Result<Value>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(mut first) = this.pending.take() {
            return Poll::Ready(this.item(&mut first));
        }
        let Some(channel) = &mut this.channel else {
            return Poll::Ready(None);
        };
        match std::task::ready!(channel.poll_recv(cx)) {
            Ok(mut event) => {
                if let Some(watch) = &mut this.watch {
                    watch.replied(&event);
                }
                Poll::Ready(this.item(&mut event))
            }
            Err(e) => {
                // The call ended without its last reply.
                this.end();
                let error = Error::transport(e, Some(&this.method));
                Poll::Ready(Some(Err(error)))
            }
        }
    }
}

impl<T> Stream for ReplyStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Runs a blocking call to its end on the calling thread, unless that
/// thread drives a server's current-thread runtime (see `driver.rs`).
pub(crate) fn block_on<T>(call: impl Future<Output = Result<T>>) -> Result<T> {
    crate::driver::check_blocking()?;
    crate::io_task::block_in_worker(|| futures::executor::block_on(call))
}

/// A blocking view of a [`Client`]: each call blocks the calling thread.
///
/// Not on the thread that drives a server's current-thread tokio runtime:
/// there, the server could not answer while the thread waits, so calls
/// fail at once with an [`ErrorKind::Usage`](crate::ErrorKind::Usage)
/// error. Use the async [`Client`] there, or `tokio::task::spawn_blocking`.
///
/// ```no_run
/// let client = zerorpc::Client::connect("tcp://127.0.0.1:4242")?.blocking();
/// let sum: i64 = client.call("add", (1, 2))?;
/// println!("1 + 2 = {sum}");
/// for n in client.stream::<i64>("count", (3,))? {
///     println!("{}", n?);
/// }
/// # Ok::<(), zerorpc::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BlockingClient {
    client: Client,
}

impl BlockingClient {
    /// See [`Client::call`].
    pub fn call<R: DeserializeOwned>(&self, method: &str, args: impl Serialize) -> Result<R> {
        block_on(self.client.call(method, args))
    }

    /// See [`Client::stream`]; the items are pulled as the iterator advances.
    pub fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        args: impl Serialize,
    ) -> Result<BlockingStream<T>> {
        let stream = block_on(self.client.stream(method, args))?;
        Ok(BlockingStream { stream })
    }

    /// See [`Client::invoke`].
    pub fn invoke(&self, method: &str, args: Vec<Value>, options: CallOptions) -> Result<Response> {
        block_on(self.client.invoke(method, args, options))
    }

    /// The async client behind this view.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// The items of a streamed reply, pulled one by one by a blocking iterator.
#[derive(Debug)]
pub struct BlockingStream<T> {
    stream: ReplyStream<T>,
}

impl<T> Iterator for BlockingStream<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = crate::driver::check_blocking() {
            return Some(Err(e));
        }
        crate::io_task::block_in_worker(|| futures::executor::block_on(self.stream.next()))
    }
}

impl<T> From<ReplyStream<T>> for BlockingStream<T> {
    fn from(stream: ReplyStream<T>) -> Self {
        BlockingStream { stream }
    }
}

/// A reply that does not convert to the type asked for: `context` names the
/// method, the cause says why (`result of reserve: invalid type: integer
/// 9, expected a string`).
fn conversion(context: String, cause: zerorpc_wire::ValueError) -> Error {
    Error::codec(context, Some(Box::new(cause)))
}
