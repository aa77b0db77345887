//! Endpoint resolution: the pluggable step between the endpoint a user
//! names and the ZeroMQ endpoints a socket binds or connects to, and
//! [`Live`], which applies what a resolver reports to a socket, first at
//! build time and then as it changes.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::stream::{BoxStream, SelectAll};
use futures::{Stream, StreamExt};
use zerorpc_endpoint::Endpoint;
use zerorpc_transport::{self as transport, Socket};

use crate::{Error, Result};

/// A change in the ZeroMQ endpoints that one user endpoint stands for, in
/// the spirit of `tower::discover::Change`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Change {
    /// Bind or connect to this ZeroMQ endpoint.
    Insert(String),
    /// Unbind or disconnect from this ZeroMQ endpoint. A client lets the
    /// calls in flight on it finish and sends it no new one.
    Remove(String),
}

/// What a resolver reports for one endpoint, over time: see
/// [`ResolveEndpoint`].
pub type Changes = BoxStream<'static, Result<Change>>;

/// Turns an endpoint as a user wrote it into ZeroMQ endpoints, and says
/// when they change.
///
/// The default, [`Literal`], passes ZeroMQ endpoints through unchanged.
/// Other resolvers (DNS names such as `dns:NAME`, aliases, service
/// registries) plug in here; one name may stand for several endpoints, and
/// the set may change while a client or server runs.
///
/// # How builders use it
///
/// `build()` stays synchronous and never waits for a resolver: it applies
/// the **first batch**, the changes the stream has ready at once (polled
/// until it is pending or ends); an error among them fails `build()`. So a
/// resolver should have what it already knows ready at once (as
/// [`Literal`] does); one with nothing ready yet leaves a client without
/// endpoints, and its calls fail with a transport error saying so until
/// the first [`Change::Insert`] arrives.
///
/// **Later changes** are applied by a background task on the tokio runtime
/// current at build time or, if there is none then, from the first moment
/// one is: a client's first call, a server's `serve`/`run`, a receiver's
/// `run`. Without a tokio runtime they are never applied, and a warning is
/// logged. The task ends with the client, server or event socket. Errors
/// that come later (the stream's, or a refused connect) are logged and the
/// stream is followed further. An endpoint inserted by several streams is
/// bound or connected once, and dropped when the last of them removes it.
///
/// # Example
///
/// A resolver for names `alias:NAME`, fed from elsewhere in the program:
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// use futures::StreamExt;
/// use futures::channel::mpsc;
/// use zerorpc::{Change, Changes, Client, Literal, ResolveEndpoint, Server};
///
/// /// Hands out the changes sent to it, once.
/// struct Alias(Mutex<Option<mpsc::UnboundedReceiver<Change>>>);
///
/// impl ResolveEndpoint for Alias {
///     fn resolve(&self, endpoint: &str) -> Changes {
///         match self.0.lock().unwrap().take() {
///             Some(changes) if endpoint == "alias:calc" => changes.map(Ok).boxed(),
///             _ => Literal.resolve(endpoint),
///         }
///     }
/// }
///
/// struct Calculator;
///
/// #[zerorpc::service]
/// impl Calculator {
///     pub fn add(&self, a: i64, b: i64) -> i64 {
///         a + b
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::builder(Calculator).bind("tcp://127.0.0.1:*").build()?;
/// let endpoint = server.endpoints()[0].clone();
/// tokio::spawn(server.serve());
///
/// let (changes, receiver) = mpsc::unbounded();
/// // Ready at build time: the first batch.
/// changes.unbounded_send(Change::Insert(endpoint.clone()))?;
/// let client = Client::builder()
///     .resolver(Arc::new(Alias(Mutex::new(Some(receiver)))))
///     .connect("alias:calc")
///     .build()?;
/// assert_eq!(client.call::<i64>("add", (1, 2)).await?, 3);
///
/// // Later: the client stops sending calls there.
/// changes.unbounded_send(Change::Remove(endpoint))?;
/// # Ok(())
/// # }
/// ```
pub trait ResolveEndpoint: Send + Sync + 'static {
    /// The ZeroMQ endpoints for `endpoint`, as a stream of changes: the
    /// ones known now ready at once, later ones as they happen. The stream
    /// may end when nothing more will change.
    fn resolve(&self, endpoint: &str) -> Changes;
}

/// Passes ZeroMQ endpoints (`tcp://`, `ipc://`, `inproc://`...) through
/// unchanged, and refuses names (`dns:NAME`), which need a resolver that
/// knows their scheme. Its stream is one ready insert (or error), then
/// ends: nothing to follow, so no background task.
///
/// ```
/// use futures::executor::block_on_stream;
/// use zerorpc::{Change, Literal, ResolveEndpoint};
///
/// let changes = block_on_stream(Literal.resolve("tcp://127.0.0.1:4242"));
/// let changes: Vec<Change> = changes.collect::<Result<_, _>>()?;
/// assert_eq!(changes, [Change::Insert("tcp://127.0.0.1:4242".into())]);
///
/// let mut refused = block_on_stream(Literal.resolve("dns:users.svc.example.test"));
/// let error = refused.next().unwrap().unwrap_err();
/// assert!(error.to_string().contains("no resolver for dns: names"));
/// # Ok::<(), zerorpc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Literal;

impl ResolveEndpoint for Literal {
    fn resolve(&self, endpoint: &str) -> Changes {
        // Malformed ZeroMQ endpoints are left to the transport, which
        // parses them with the same parser when it binds or connects.
        let change = match Endpoint::parse(endpoint) {
            Ok(parsed) if !parsed.is_zmq() => Err(Error::bad_endpoint(
                endpoint,
                format_args!(
                    "no resolver for {scheme}: names is configured (a client or server \
                     builder takes one with .resolver(...))",
                    scheme = parsed.scheme()
                ),
            )),
            _ => Ok(Change::Insert(endpoint.to_owned())),
        };
        futures::stream::iter([change]).boxed()
    }
}

/// Whether an endpoint is bound or connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Bind,
    Connect,
}

/// The endpoints a client or server binds and connects to at build time,
/// and how they are resolved.
#[derive(Clone)]
pub(crate) struct Endpoints {
    pub(crate) binds: Vec<String>,
    pub(crate) connects: Vec<String>,
    pub(crate) resolver: Arc<dyn ResolveEndpoint>,
}

impl Endpoints {
    pub(crate) fn new() -> Self {
        Endpoints {
            binds: Vec::new(),
            connects: Vec::new(),
            resolver: Arc::new(Literal),
        }
    }

    /// Resolves every endpoint, binds, then connects, and follows later
    /// changes; returns the endpoints bound and connected now, with
    /// wildcard ports filled in.
    pub(crate) fn attach(&self, socket: &Socket) -> Result<(Live, Attached)> {
        let live = Live::new(socket.clone(), self.resolver.clone());
        let mut attached = Attached::default();
        for endpoint in &self.binds {
            attached.bound.extend(live.attach(Role::Bind, endpoint)?);
        }
        for endpoint in &self.connects {
            attached
                .connected
                .extend(live.attach(Role::Connect, endpoint)?);
        }
        Ok((live, attached))
    }
}

/// What a socket bound and connected at build time, wildcard ports filled
/// in.
#[derive(Debug, Default)]
pub(crate) struct Attached {
    pub(crate) bound: Vec<String>,
    pub(crate) connected: Vec<String>,
}

/// The changes of one endpoint, tagged with what to do with them.
type Watched = BoxStream<'static, (Role, String, Result<Change>)>;

/// How many streams inserted each endpoint, and what a bind bound.
#[derive(Default)]
struct Applied {
    /// By role and endpoint as the resolver named it: how many of the
    /// streams have it inserted, and the endpoint bound or connected.
    endpoints: HashMap<(Role, String), (usize, String)>,
}

impl Applied {
    /// Applies one change; returns the endpoint newly bound or connected.
    fn apply(
        &mut self,
        socket: &Socket,
        role: Role,
        change: Change,
    ) -> std::result::Result<Option<String>, transport::Error> {
        match change {
            Change::Insert(endpoint) => {
                if let Some((count, _)) = self.endpoints.get_mut(&(role, endpoint.clone())) {
                    *count += 1;
                    return Ok(None);
                }
                let done = match role {
                    Role::Bind => socket.bind(&endpoint)?,
                    Role::Connect => socket.connect(&endpoint)?,
                };
                self.endpoints.insert((role, endpoint), (1, done.clone()));
                Ok(Some(done))
            }
            Change::Remove(endpoint) => {
                let key = (role, endpoint);
                let Some((count, done)) = self.endpoints.get_mut(&key) else {
                    tracing::debug!(endpoint = %key.1, "removal of an endpoint not inserted");
                    return Ok(None);
                };
                *count -= 1;
                if *count > 0 {
                    return Ok(None);
                }
                let done = done.clone();
                self.endpoints.remove(&key);
                match role {
                    Role::Bind => socket.unbind(&done)?,
                    Role::Connect => socket.disconnect(&done)?,
                }
                Ok(None)
            }
        }
    }
}

/// A socket's endpoints as its resolver reports them: applies the first
/// batch of each endpoint at once and later changes in a background task.
/// Dropping it stops the task.
pub(crate) struct Live {
    socket: Socket,
    resolver: Arc<dyn ResolveEndpoint>,
    applied: Arc<Mutex<Applied>>,
    added: mpsc::UnboundedSender<Watched>,
    /// Taken by the background task when it starts.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Watched>>>,
    /// Some stream has later changes and no task follows it yet.
    waiting: AtomicBool,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Live {
    pub(crate) fn new(socket: Socket, resolver: Arc<dyn ResolveEndpoint>) -> Self {
        let (added, receiver) = mpsc::unbounded();
        Live {
            socket,
            resolver,
            applied: Arc::new(Mutex::new(Applied::default())),
            added,
            receiver: Mutex::new(Some(receiver)),
            waiting: AtomicBool::new(false),
            task: Mutex::new(None),
        }
    }

    /// Resolves `endpoint` and applies its first batch; returns the
    /// endpoints bound or connected. What comes later is followed.
    pub(crate) fn attach(&self, role: Role, endpoint: &str) -> Result<Vec<String>> {
        let mut changes = self.resolver.resolve(endpoint);
        let mut done = Vec::new();
        // A no-op waker: nothing waits here for what is not ready; the
        // background task polls the stream again with its own waker.
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        loop {
            match changes.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(change)) => {
                    let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
                    done.extend(applied.apply(&self.socket, role, change?)?);
                }
                Poll::Ready(None) => return Ok(done),
                Poll::Pending => break,
            }
        }
        let endpoint = endpoint.to_owned();
        let tagged = changes.map(move |change| (role, endpoint.clone(), change));
        // The receiver lives in `self` or in the task, which ends only
        // when `self` is dropped or the socket closed: then nothing is lost.
        let _ = self.added.unbounded_send(tagged.boxed());
        self.waiting.store(true, Ordering::Release);
        self.start();
        Ok(done)
    }

    /// Starts following later changes if some wait and a tokio runtime is
    /// current; cheap when there is nothing to do.
    pub(crate) fn start(&self) {
        if !self.waiting.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(receiver) = self
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        self.waiting.store(false, Ordering::Release);
        let task = runtime.spawn(follow(self.socket.clone(), self.applied.clone(), receiver));
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        } else if self.waiting.load(Ordering::Acquire) {
            tracing::warn!(
                "endpoint changes were never followed: no tokio runtime was running \
                 when the client, server or event socket was built or used"
            );
        }
    }
}

/// Applies later changes of every stream until the socket closes or the
/// [`Live`] that started it is dropped.
async fn follow(
    socket: Socket,
    applied: Arc<Mutex<Applied>>,
    mut added: mpsc::UnboundedReceiver<Watched>,
) {
    let mut streams: SelectAll<Watched> = SelectAll::new();
    loop {
        let next = poll_fn(|cx| {
            loop {
                match Pin::new(&mut added).poll_next(cx) {
                    Poll::Ready(Some(stream)) => streams.push(stream),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => break,
                }
            }
            match streams.poll_next_unpin(cx) {
                Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
                // No stream left: wait for one to be added.
                Poll::Ready(None) | Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let Some((role, endpoint, change)) = next else {
            return;
        };
        let change = match change {
            Ok(change) => change,
            Err(error) => {
                tracing::warn!(%endpoint, %error, "endpoint resolution failed; following it further");
                continue;
            }
        };
        let result = {
            let mut applied = applied.lock().unwrap_or_else(|e| e.into_inner());
            applied.apply(&socket, role, change.clone())
        };
        match result {
            Ok(_) => tracing::debug!(%endpoint, ?change, "endpoint change applied"),
            Err(error) if error.is_closed() => return,
            Err(error) => {
                tracing::warn!(%endpoint, ?change, %error, "endpoint change not applied")
            }
        }
    }
}
