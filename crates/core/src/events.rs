//! Fire-and-forget events: push/pull and publish/subscribe.

use std::sync::Arc;

use serde::Serialize;
use zerorpc_transport::{Observer, Socket, SocketConfig, SocketKind};
use zerorpc_wire::{Event, Header, Value};

use crate::client::to_args;
use crate::context::{CopyExtras, Propagation};
use crate::service::{Reply, Service};
use crate::{CallContext, Methods, Result};

/// Sends events that name a method and carry its arguments; no reply, no
/// channel. Made by [`Pusher`] and [`Publisher`].
#[derive(Clone)]
pub struct Emitter {
    socket: Socket,
    propagation: Arc<dyn Propagation>,
}

impl Emitter {
    fn new(kind: SocketKind, observers: Vec<Arc<dyn Observer>>) -> Result<Self> {
        let mut config = SocketConfig::new();
        config.observers = observers;
        Ok(Emitter {
            socket: Socket::new(kind, config)?,
            propagation: Arc::new(CopyExtras),
        })
    }

    /// Binds to an endpoint; returns the endpoint bound.
    pub fn bind(&self, endpoint: &str) -> Result<String> {
        Ok(self.socket.bind(endpoint)?)
    }

    /// Connects to an endpoint.
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.socket.connect(endpoint)?;
        Ok(())
    }

    /// Sends one event: `method` with positional `args` (a tuple; `()` for
    /// none). Carries the context of the call being served, if any.
    pub fn emit(&self, method: &str, args: impl Serialize) -> Result<()> {
        let mut header = Header::new();
        self.propagation
            .propagate(CallContext::current().as_ref(), &mut header);
        self.socket
            .emit(Event::new(header, method, Value::Array(to_args(&args)?)));
        Ok(())
    }
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("kind", &self.socket.kind())
            .finish_non_exhaustive()
    }
}

/// Pushes events to pullers (a PUSH socket; each event goes to one puller).
///
/// ```no_run
/// let pusher = zerorpc::Pusher::new()?;
/// pusher.connect("tcp://127.0.0.1:4243")?;
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
        Self::with_observers(Vec::new())
    }

    /// A pusher whose socket reports every event it sends to `observers`
    /// (see [`Observer`]).
    pub fn with_observers(observers: Vec<Arc<dyn Observer>>) -> Result<Self> {
        Ok(EmitterOf {
            emitter: Emitter::new(SocketKind::Push, observers)?,
            kind: std::marker::PhantomData,
        })
    }
}

impl EmitterOf<PublishKind> {
    /// A publisher, not yet bound or connected.
    pub fn new() -> Result<Self> {
        Self::with_observers(Vec::new())
    }

    /// A publisher whose socket reports every event it sends to
    /// `observers` (see [`Observer`]).
    pub fn with_observers(observers: Vec<Arc<dyn Observer>>) -> Result<Self> {
        Ok(EmitterOf {
            emitter: Emitter::new(SocketKind::Publish, observers)?,
            kind: std::marker::PhantomData,
        })
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
}

impl Receiver {
    fn new(
        kind: SocketKind,
        service: impl Service,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Self> {
        let mut config = SocketConfig::new();
        config.observers = observers;
        Ok(Receiver {
            socket: Socket::new(kind, config)?,
            methods: Arc::new(Arc::new(service).methods()),
        })
    }

    /// A puller (PULL socket) running the methods of `service`.
    pub fn puller(service: impl Service) -> Result<Self> {
        Receiver::new(SocketKind::Pull, service, Vec::new())
    }

    /// A subscriber (SUB socket, subscribed to everything) running the
    /// methods of `service`.
    pub fn subscriber(service: impl Service) -> Result<Self> {
        Receiver::new(SocketKind::Subscribe, service, Vec::new())
    }

    /// A puller whose socket reports every event it receives to
    /// `observers` (see [`Observer`]).
    pub fn puller_with_observers(
        service: impl Service,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Self> {
        Receiver::new(SocketKind::Pull, service, observers)
    }

    /// A subscriber whose socket reports every event it receives to
    /// `observers` (see [`Observer`]).
    pub fn subscriber_with_observers(
        service: impl Service,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Self> {
        Receiver::new(SocketKind::Subscribe, service, observers)
    }

    /// Binds to an endpoint; returns the endpoint bound.
    pub fn bind(&self, endpoint: &str) -> Result<String> {
        Ok(self.socket.bind(endpoint)?)
    }

    /// Connects to an endpoint.
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.socket.connect(endpoint)?;
        Ok(())
    }

    /// Receives and runs events until the receiver is closed. Events run
    /// one after another, in arrival order; unknown methods are logged and
    /// skipped.
    pub async fn run(&self) -> Result<()> {
        loop {
            let event = match self.socket.next_event().await {
                Ok(event) => event,
                Err(e) if e.is_closed() => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let context = CallContext::new(event.name.clone(), event.header);
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
