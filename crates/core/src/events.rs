//! Fire-and-forget events: push/pull and publish/subscribe.

use std::sync::Arc;

use serde::Serialize;
use zerorpc_transport::{Observer, Socket, SocketConfig, SocketKind};
use zerorpc_wire::{Event, Header, Value};

use crate::client::to_args;
use crate::context::{CopyExtras, Propagation};
use crate::endpoint::{Endpoints, Live, ResolveEndpoint, Role};
use crate::service::{Reply, Service};
use crate::{CallContext, Methods, Result};

/// Sends events that name a method and carry its arguments; no reply, no
/// channel. Made by [`Pusher`] and [`Publisher`].
#[derive(Clone)]
pub struct Emitter {
    socket: Socket,
    propagation: Arc<dyn Propagation>,
    /// Follows the resolver's changes while a clone of the emitter lives.
    live: Arc<Live>,
}

impl Emitter {
    /// Binds to an endpoint, resolved by the emitter's resolver (whose
    /// later changes are followed); returns the endpoint bound, with a
    /// wildcard port filled in (the first one, when a name stands for
    /// several; the endpoint as given, when its resolver has none yet).
    pub fn bind(&self, endpoint: &str) -> Result<String> {
        bind(&self.live, endpoint)
    }

    /// Connects to an endpoint, resolved by the emitter's resolver (whose
    /// later changes are followed).
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.live.attach(Role::Connect, endpoint)?;
        Ok(())
    }

    /// The socket's counters: events sent, events waiting for a slow
    /// peer, and drops by reason (a full send queue, for one).
    pub fn stats(&self) -> zerorpc_transport::Stats {
        self.socket.stats()
    }

    /// Sends one event: `method` with positional `args` (a tuple; `()` for
    /// none). Carries the context of the call being served, if any.
    pub fn emit(&self, method: &str, args: impl Serialize) -> Result<()> {
        self.emit_values(method, to_args(&args)?);
        Ok(())
    }

    /// Sends one event with dynamic arguments, already values (as
    /// [`Client::invoke`](crate::Client::invoke) takes them): nothing is
    /// converted again.
    pub fn emit_values(&self, method: &str, args: Vec<Value>) {
        self.live.start();
        let mut header = Header::new();
        self.propagation
            .propagate(CallContext::current().as_ref(), &mut header);
        self.socket
            .emit(Event::new(header, method.to_owned(), Value::Array(args)));
    }
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("kind", &self.socket.kind())
            .finish_non_exhaustive()
    }
}

/// `bind` and `connect` on a built emitter or receiver: the first
/// endpoint bound, or the endpoint as given when its resolver has none yet.
fn bind(live: &Live, endpoint: &str) -> Result<String> {
    let bound = live.attach(Role::Bind, endpoint)?;
    Ok(bound
        .into_iter()
        .next()
        .unwrap_or_else(|| endpoint.to_owned()))
}

/// Configures and builds an [`EmitterOf`]: a [`Pusher`] or a [`Publisher`].
pub struct EmitterBuilder<K> {
    kind: SocketKind,
    config: SocketConfig,
    endpoints: Endpoints,
    propagation: Arc<dyn Propagation>,
    marker: std::marker::PhantomData<K>,
}

impl<K> EmitterBuilder<K> {
    fn new(kind: SocketKind) -> Self {
        EmitterBuilder {
            kind,
            config: SocketConfig::new(),
            endpoints: Endpoints::new(),
            propagation: Arc::new(CopyExtras),
            marker: std::marker::PhantomData,
        }
    }

    /// Binds to an endpoint when built (may be repeated).
    pub fn bind(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.binds.push(endpoint.into());
        self
    }

    /// Connects to an endpoint when built (may be repeated).
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.connects.push(endpoint.into());
        self
    }

    /// How endpoints are resolved (default: [`Literal`](crate::Literal)
    /// ZeroMQ endpoints), at build time and later: see [`ResolveEndpoint`].
    pub fn resolver(mut self, resolver: Arc<dyn ResolveEndpoint>) -> Self {
        self.endpoints.resolver = resolver;
        self
    }

    /// Adds an observer of every event sent (see [`Observer`]).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.config.observers.push(observer);
        self
    }

    /// Bytes of events that may wait for peers that read slower than
    /// events are emitted (or while none is connected); beyond it events
    /// are dropped and counted in [`Emitter::stats`]. Default
    /// [`DEFAULT_SEND_QUEUE_LIMIT`](crate::transport::DEFAULT_SEND_QUEUE_LIMIT).
    pub fn send_queue_limit(mut self, bytes: usize) -> Self {
        self.config.send_queue_limit = bytes;
        self
    }

    /// How the connections of this socket are secured (default
    /// [`Security::None`](crate::transport::Security::None)); the side that
    /// binds is usually the PLAIN or CURVE server. Applies to every
    /// endpoint; see [`Security`](crate::transport::Security).
    pub fn security(mut self, security: crate::transport::Security) -> Self {
        self.config.security = security;
        self
    }

    /// The largest message, in bytes, a peer may send to this socket (a
    /// subscriber's subscriptions reach a publisher); `None` for no limit.
    /// Default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`](crate::transport::DEFAULT_MAX_MESSAGE_SIZE)
    /// (16 MiB). ZeroMQ drops the connection of a peer that sends more.
    pub fn max_message_size(mut self, bytes: Option<u64>) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// How the headers of events emitted while serving a call derive from
    /// it (default: [`CopyExtras`]).
    pub fn propagation(mut self, propagation: Arc<dyn Propagation>) -> Self {
        self.propagation = propagation;
        self
    }

    /// Creates the socket, binds and connects to what the resolver has
    /// ready, without waiting for it; later changes are followed.
    pub fn build(self) -> Result<EmitterOf<K>> {
        let socket = Socket::new(self.kind, self.config)?;
        let (live, _) = self.endpoints.attach(&socket)?;
        Ok(EmitterOf {
            emitter: Emitter {
                socket,
                propagation: self.propagation,
                live: Arc::new(live),
            },
            kind: std::marker::PhantomData,
        })
    }
}

impl<K> std::fmt::Debug for EmitterBuilder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmitterBuilder")
            .field("kind", &self.kind)
            .field("binds", &self.endpoints.binds)
            .field("connects", &self.endpoints.connects)
            .finish_non_exhaustive()
    }
}

/// Pushes events to pullers (a PUSH socket; each event goes to one puller).
///
/// ```no_run
/// let pusher = zerorpc::Pusher::new()?;
/// pusher.connect("tcp://127.0.0.1:4243")?;
/// pusher.emit("log", ("started",))?;
///
/// // Or configured, with endpoints resolved like a client's.
/// let pusher = zerorpc::Pusher::builder()
///     .connect("tcp://127.0.0.1:4243")
///     .build()?;
/// pusher.emit("log", ("started",))?;
/// # Ok::<(), zerorpc::Error>(())
/// ```
pub type Pusher = EmitterOf<PushKind>;

/// Publishes events to every subscriber (a PUB socket).
pub type Publisher = EmitterOf<PublishKind>;

/// Marker for [`Pusher`].
#[derive(Debug)]
pub enum PushKind {}
/// Marker for [`Publisher`].
#[derive(Debug)]
pub enum PublishKind {}

/// An [`Emitter`] of a given socket kind: see [`Pusher`] and [`Publisher`].
#[derive(Debug)]
pub struct EmitterOf<K> {
    emitter: Emitter,
    kind: std::marker::PhantomData<K>,
}

impl<K> Clone for EmitterOf<K> {
    fn clone(&self) -> Self {
        EmitterOf {
            emitter: self.emitter.clone(),
            kind: std::marker::PhantomData,
        }
    }
}

impl EmitterOf<PushKind> {
    /// A pusher, not yet bound or connected.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// A pusher whose socket reports every event it sends to `observers`
    /// (see [`Observer`]).
    pub fn with_observers(observers: Vec<Arc<dyn Observer>>) -> Result<Self> {
        observers
            .into_iter()
            .fold(Self::builder(), EmitterBuilder::observer)
            .build()
    }

    /// Starts configuring a pusher.
    pub fn builder() -> EmitterBuilder<PushKind> {
        EmitterBuilder::new(SocketKind::Push)
    }
}

impl EmitterOf<PublishKind> {
    /// A publisher, not yet bound or connected.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// A publisher whose socket reports every event it sends to `observers`
    /// (see [`Observer`]).
    pub fn with_observers(observers: Vec<Arc<dyn Observer>>) -> Result<Self> {
        observers
            .into_iter()
            .fold(Self::builder(), EmitterBuilder::observer)
            .build()
    }

    /// Starts configuring a publisher.
    pub fn builder() -> EmitterBuilder<PublishKind> {
        EmitterBuilder::new(SocketKind::Publish)
    }
}

impl<K> std::ops::Deref for EmitterOf<K> {
    type Target = Emitter;

    fn deref(&self) -> &Emitter {
        &self.emitter
    }
}

/// Receives events and runs the named method of a service (made by
/// [`Puller`] and [`Subscriber`]). Results are discarded; errors are logged.
pub struct Receiver {
    socket: Socket,
    methods: Arc<Methods>,
    /// Follows the resolver's changes while the receiver lives.
    live: Live,
}

/// Configures and builds a [`Receiver`]: a [`Puller`] or a [`Subscriber`].
pub struct ReceiverBuilder {
    kind: SocketKind,
    methods: Methods,
    config: SocketConfig,
    endpoints: Endpoints,
}

impl ReceiverBuilder {
    /// Binds to an endpoint when built (may be repeated).
    pub fn bind(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.binds.push(endpoint.into());
        self
    }

    /// Connects to an endpoint when built (may be repeated).
    pub fn connect(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.connects.push(endpoint.into());
        self
    }

    /// How endpoints are resolved (default: [`Literal`](crate::Literal)
    /// ZeroMQ endpoints), at build time and later: see [`ResolveEndpoint`].
    pub fn resolver(mut self, resolver: Arc<dyn ResolveEndpoint>) -> Self {
        self.endpoints.resolver = resolver;
        self
    }

    /// How the connections of this socket are secured (default
    /// [`Security::None`](crate::transport::Security::None)); the side that
    /// binds is usually the PLAIN or CURVE server. Applies to every
    /// endpoint; see [`Security`](crate::transport::Security).
    pub fn security(mut self, security: crate::transport::Security) -> Self {
        self.config.security = security;
        self
    }

    /// The largest event, in bytes, a pusher or publisher may send to this
    /// socket; `None` for no limit. Default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`](crate::transport::DEFAULT_MAX_MESSAGE_SIZE)
    /// (16 MiB). ZeroMQ drops the connection of a peer that sends more, so
    /// the oversized event is never received.
    pub fn max_message_size(mut self, bytes: Option<u64>) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Adds an observer of every event received (see [`Observer`]).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.config.observers.push(observer);
        self
    }

    /// Creates the socket, binds and connects to what the resolver has
    /// ready, without waiting for it; later changes are followed.
    pub fn build(self) -> Result<Receiver> {
        let socket = Socket::new(self.kind, self.config)?;
        let (live, _) = self.endpoints.attach(&socket)?;
        Ok(Receiver {
            socket,
            methods: Arc::new(self.methods),
            live,
        })
    }
}

impl std::fmt::Debug for ReceiverBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverBuilder")
            .field("kind", &self.kind)
            .field("service", &self.methods.name())
            .field("binds", &self.endpoints.binds)
            .field("connects", &self.endpoints.connects)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    fn builder(kind: SocketKind, service: impl Service) -> ReceiverBuilder {
        ReceiverBuilder {
            kind,
            methods: Arc::new(service).methods(),
            config: SocketConfig::new(),
            endpoints: Endpoints::new(),
        }
    }

    /// A puller (PULL socket) running the methods of `service`.
    pub fn puller(service: impl Service) -> Result<Self> {
        Receiver::puller_builder(service).build()
    }

    /// A puller whose socket reports every event it receives to
    /// `observers` (see [`Observer`]).
    pub fn puller_with_observers(
        service: impl Service,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Self> {
        observers
            .into_iter()
            .fold(Receiver::puller_builder(service), ReceiverBuilder::observer)
            .build()
    }

    /// Starts configuring a puller running the methods of `service`.
    pub fn puller_builder(service: impl Service) -> ReceiverBuilder {
        Receiver::builder(SocketKind::Pull, service)
    }

    /// A subscriber (SUB socket, subscribed to everything) running the
    /// methods of `service`.
    pub fn subscriber(service: impl Service) -> Result<Self> {
        Receiver::subscriber_builder(service).build()
    }

    /// A subscriber whose socket reports every event it receives to
    /// `observers` (see [`Observer`]).
    pub fn subscriber_with_observers(
        service: impl Service,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Self> {
        observers
            .into_iter()
            .fold(
                Receiver::subscriber_builder(service),
                ReceiverBuilder::observer,
            )
            .build()
    }

    /// Starts configuring a subscriber running the methods of `service`.
    pub fn subscriber_builder(service: impl Service) -> ReceiverBuilder {
        Receiver::builder(SocketKind::Subscribe, service)
    }

    /// Binds to an endpoint, resolved by the receiver's resolver (whose
    /// later changes are followed); returns the endpoint bound, with a
    /// wildcard port filled in (the first one, when a name stands for
    /// several; the endpoint as given, when its resolver has none yet).
    pub fn bind(&self, endpoint: &str) -> Result<String> {
        bind(&self.live, endpoint)
    }

    /// Connects to an endpoint, resolved by the receiver's resolver (whose
    /// later changes are followed).
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.live.attach(Role::Connect, endpoint)?;
        Ok(())
    }

    /// Receives and runs events until the receiver is closed. Events run
    /// one after another, in arrival order; unknown methods are logged and
    /// skipped.
    pub async fn run(&self) -> Result<()> {
        // A receiver built outside a tokio runtime follows its resolver's
        // changes from now on.
        self.live.start();
        loop {
            let event = match self.socket.next_event().await {
                Ok(event) => event,
                Err(e) if e.is_closed() => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let context = CallContext::new(event.name.to_string(), event.header);
            let name = event.name;
            let reply = context
                .scope(crate::server::dispatch(&self.methods, &name, event.args))
                .await;
            match reply {
                Reply::Value(Err(e)) => {
                    tracing::warn!("event {name} failed: {}: {}", e.name(), e.message())
                }
                Reply::Stream(_) | Reply::Value(Ok(_)) => {}
            }
        }
    }

    /// The socket's counters: events received, malformed ones dropped,
    /// and connections ZeroMQ dropped for an event over the size limit.
    pub fn stats(&self) -> zerorpc_transport::Stats {
        self.socket.stats()
    }

    /// Stops [`Receiver::run`].
    pub fn close(&self) {
        self.socket.close();
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("kind", &self.socket.kind())
            .field("service", &self.methods.name())
            .finish()
    }
}

/// Pulls pushed events and runs them: see [`Receiver::puller`].
pub type Puller = Receiver;
/// Receives published events and runs them: see [`Receiver::subscriber`].
pub type Subscriber = Receiver;
