//! Starting, observing and stopping one hub: sockets are bound on the
//! caller's thread (so bind errors are reported at once), then handed to a
//! thread of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zerorpc_wire::Header;

use crate::sockets::{set_router_notify, set_xpub_nodrop, watch_oversized};
use crate::{HubConfig, HubKind, Stats, queue, relay};

/// How long the hub loop waits in its poll before looking at the stop
/// flag and its timers: the bound on shutdown latency and on timer
/// precision.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// How long closing sockets may still try to deliver queued messages.
const LINGER_MS: i32 = 100;

/// ZMTP heartbeats on the worker side: a worker whose host vanished without
/// closing its TCP connection is noticed after about this long, instead of
/// waiting for the kernel's TCP timeouts.
const ZMTP_HEARTBEAT_IVL_MS: i32 = 1000;
const ZMTP_HEARTBEAT_TIMEOUT_MS: i32 = 5000;

/// Why a hub could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// An endpoint is not of the form `transport://address`, or cannot
    /// serve its side (a queue's workers over `inproc://`).
    #[error("hub `{hub}`: bad {side} endpoint: {message}")]
    Endpoint {
        /// The hub's name.
        hub: String,
        /// `in` or `out`.
        side: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A socket could not be created or configured.
    #[error("hub `{hub}`: cannot set up the {side} socket")]
    Socket {
        /// The hub's name.
        hub: String,
        /// `in` or `out`.
        side: &'static str,
        /// The libzmq error.
        #[source]
        source: zmq::Error,
    },
    /// An endpoint could not be bound (address in use, unknown interface...).
    #[error("hub `{hub}`: cannot bind {side} to `{endpoint}`")]
    Bind {
        /// The hub's name.
        hub: String,
        /// `in` or `out`.
        side: &'static str,
        /// The endpoint.
        endpoint: String,
        /// The libzmq error.
        #[source]
        source: zmq::Error,
    },
    /// The hub loop hit a socket error it cannot recover from.
    #[error("hub `{hub}`: socket failure")]
    Io {
        /// The hub's name.
        hub: String,
        /// The libzmq error.
        #[source]
        source: zmq::Error,
    },
    /// The hub's thread could not be started.
    #[error("hub `{hub}`: cannot start its thread")]
    Thread {
        /// The hub's name.
        hub: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The hub's thread panicked (a bug).
    #[error("hub `{hub}`: its thread panicked")]
    Panicked {
        /// The hub's name.
        hub: String,
    },
}

/// Sees the requests a queue hub routes, for tracing: the hub stays below
/// the RPC layer, so what is done with them (reports to a trace collector)
/// is the caller's.
///
/// Called on the hub's thread for every request a client sends, before it
/// is routed or queued: it must be quick and must never block, or every
/// call through the hub waits.
pub trait RouteObserver: Send + Sync + 'static {
    /// A client's request (its header and method name) arrived.
    fn request(&self, header: &Header, method: &str);
}

/// State shared between a hub's thread and its [`Hub`] handle.
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) stats: Mutex<Stats>,
    /// Counted by the sockets' monitors, outside the hub's thread.
    pub(crate) connections_closed: Arc<AtomicU64>,
    /// Told of every request a queue routes.
    pub(crate) observer: Option<Arc<dyn RouteObserver>>,
}

impl Shared {
    pub(crate) fn publish(&self, stats: Stats) {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = stats;
    }
}

/// A running hub: a thread owning two bound sockets.
///
/// Dropping the handle stops the hub and waits for its thread.
#[derive(Debug)]
pub struct Hub {
    name: String,
    kind: HubKind,
    in_endpoint: String,
    out_endpoint: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), zmq::Error>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

struct Sockets {
    _context: zmq::Context,
    inp: zmq::Socket,
    out: zmq::Socket,
}

impl Hub {
    /// Binds the hub's endpoints and starts its thread, in a ZeroMQ context
    /// of the hub's own.
    ///
    /// `inproc://` endpoints only reach sockets of the same context, so a
    /// hub that shares a process with its clients or workers, or that will
    /// share a ZAP handler with them, should use [`Hub::start_in`] with
    /// their context (the transport's `zerorpc::transport::context()`).
    pub fn start(config: HubConfig) -> Result<Hub, HubError> {
        Hub::start_in(config, &zmq::Context::new())
    }

    /// Binds the hub's endpoints in `context` and starts its thread.
    ///
    /// The hub keeps a handle of the context until its thread ends.
    ///
    /// ```no_run
    /// use zerorpc_hub::{Hub, HubConfig, HubKind};
    ///
    /// let context = zmq::Context::new();
    /// let config = HubConfig::new(HubKind::Queue, "inproc://calls", "inproc://workers");
    /// let hub = Hub::start_in(config, &context)?;
    /// // Sockets of `context` now reach the hub over inproc://.
    /// hub.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_in(config: HubConfig, context: &zmq::Context) -> Result<Hub, HubError> {
        Hub::start_observed(config, context, None)
    }

    /// [`Hub::start_in`], telling `observer` of every request a queue hub
    /// routes (forwarders and streamers tell it nothing).
    pub fn start_observed(
        config: HubConfig,
        context: &zmq::Context,
        observer: Option<Arc<dyn RouteObserver>>,
    ) -> Result<Hub, HubError> {
        config.check()?;
        let name = config.name.clone();
        let connections_closed = Arc::new(AtomicU64::new(0));
        let sockets = open(&config, context, &connections_closed)?;
        let in_endpoint = bound_endpoint(&sockets.inp, &config.in_endpoint);
        let out_endpoint = bound_endpoint(&sockets.out, &config.out_endpoint);
        let stats = Stats {
            hub: name.clone(),
            kind: Some(config.kind),
            ..Stats::default()
        };
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            stats: Mutex::new(stats),
            connections_closed,
            observer,
        });
        let thread_shared = Arc::clone(&shared);
        let kind = config.kind;
        let thread = std::thread::Builder::new()
            .name(format!("hub-{name}"))
            .spawn(move || {
                let Sockets {
                    _context,
                    inp,
                    mut out,
                } = sockets;
                match config.kind {
                    HubKind::Queue => queue::run(&config, &inp, &mut out, &thread_shared),
                    HubKind::Forwarder | HubKind::Streamer => {
                        relay::run(&config, &inp, &out, &thread_shared)
                    }
                }
            })
            .map_err(|source| HubError::Thread {
                hub: name.clone(),
                source,
            })?;
        tracing::info!(hub = %name, %kind, in_endpoint = %in_endpoint, out_endpoint = %out_endpoint, "hub started");
        Ok(Hub {
            name,
            kind,
            in_endpoint,
            out_endpoint,
            shared,
            thread: Some(thread),
        })
    }

    /// The hub's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hub's type.
    pub fn kind(&self) -> HubKind {
        self.kind
    }

    /// The endpoint `in` is bound to, as libzmq reports it: with the port
    /// filled in when the configuration asked for any port
    /// (`tcp://127.0.0.1:*`), and `0.0.0.0` for `*`.
    pub fn in_endpoint(&self) -> &str {
        &self.in_endpoint
    }

    /// The endpoint `out` is bound to (see [`Hub::in_endpoint`]).
    pub fn out_endpoint(&self) -> &str {
        &self.out_endpoint
    }

    /// The latest snapshot of the hub's counters (at most a few
    /// milliseconds old).
    pub fn stats(&self) -> Stats {
        let mut stats = self
            .shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        stats.connections_closed = self.shared.connections_closed.load(Ordering::Relaxed);
        stats
    }

    /// Asks the hub to stop; it does within about 100 ms. See [`Hub::join`].
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the hub's thread has ended (stopped, or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the hub and waits for its thread to close its sockets.
    pub fn join(mut self) -> Result<(), HubError> {
        self.stop();
        self.wait()
    }

    fn wait(&mut self) -> Result<(), HubError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        match thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(HubError::Io {
                hub: self.name.clone(),
                source,
            }),
            Err(_) => Err(HubError::Panicked {
                hub: self.name.clone(),
            }),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
        let _ = self.wait();
    }
}

fn open(
    config: &HubConfig,
    context: &zmq::Context,
    connections_closed: &Arc<AtomicU64>,
) -> Result<Sockets, HubError> {
    let hub = &config.name;
    let (in_type, out_type) = match config.kind {
        HubKind::Queue => (zmq::ROUTER, zmq::ROUTER),
        HubKind::Forwarder => (zmq::SUB, zmq::XPUB),
        HubKind::Streamer => (zmq::PULL, zmq::PUSH),
    };
    let socket_error = |side: &'static str| {
        move |source| HubError::Socket {
            hub: hub.clone(),
            side,
            source,
        }
    };
    let mut inp = context.socket(in_type).map_err(socket_error("in"))?;
    let mut out = context.socket(out_type).map_err(socket_error("out"))?;
    inp.set_linger(LINGER_MS).map_err(socket_error("in"))?;
    out.set_linger(LINGER_MS).map_err(socket_error("out"))?;
    // libzmq takes -1 for "no limit"; a limit beyond i64 is none either.
    let max = config
        .max_message_size
        .map_or(-1, |n| i64::try_from(n).unwrap_or(-1));
    inp.set_maxmsgsize(max).map_err(socket_error("in"))?;
    out.set_maxmsgsize(max).map_err(socket_error("out"))?;
    match config.kind {
        HubKind::Queue => {
            // Mandatory routing turns a send to a vanished peer into an error
            // the hub can count and act on, instead of a silent drop.
            inp.set_router_mandatory(true).map_err(socket_error("in"))?;
            out.set_router_mandatory(true)
                .map_err(socket_error("out"))?;
            set_router_notify(&mut out).map_err(socket_error("out"))?;
            out.set_heartbeat_ivl(ZMTP_HEARTBEAT_IVL_MS)
                .map_err(socket_error("out"))?;
            out.set_heartbeat_timeout(ZMTP_HEARTBEAT_TIMEOUT_MS)
                .map_err(socket_error("out"))?;
        }
        HubKind::Forwarder => {
            inp.set_subscribe(b"").map_err(socket_error("in"))?;
            // A PUB drops for a subscriber that cannot keep up; with
            // NODROP the send fails instead and the forwarder holds the
            // event, as the streamer does.
            set_xpub_nodrop(&mut out).map_err(socket_error("out"))?;
        }
        HubKind::Streamer => {}
    }
    crate::security::apply(&mut inp, &config.in_security).map_err(socket_error("in"))?;
    crate::security::apply(&mut out, &config.out_security).map_err(socket_error("out"))?;
    let logged = Arc::new(AtomicBool::new(false));
    for (side, socket) in [("in", &mut inp), ("out", &mut out)] {
        let what = format!("hub `{hub}` {side}");
        watch_oversized(
            socket,
            context,
            what,
            Arc::clone(connections_closed),
            Arc::clone(&logged),
        )
        .map_err(socket_error(side))?;
    }
    for (side, socket, endpoint) in [
        ("in", &inp, &config.in_endpoint),
        ("out", &out, &config.out_endpoint),
    ] {
        socket.bind(endpoint).map_err(|source| HubError::Bind {
            hub: hub.clone(),
            side,
            endpoint: endpoint.clone(),
            source,
        })?;
    }
    Ok(Sockets {
        _context: context.clone(),
        inp,
        out,
    })
}

fn bound_endpoint(socket: &zmq::Socket, configured: &str) -> String {
    match socket.get_last_endpoint() {
        Ok(Ok(endpoint)) if !endpoint.is_empty() => endpoint,
        _ => configured.to_owned(),
    }
}

/// The shortest time between two stats snapshots of a busy hub.
const PUBLISH_EVERY: Duration = Duration::from_millis(5);

/// Limits how often a loop publishes its stats snapshot.
pub(crate) struct Publisher {
    last: Instant,
    pub(crate) dirty: bool,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Publisher {
            last: Instant::now(),
            dirty: true,
        }
    }

    /// How long the loop may sleep in its poll: until its next timer,
    /// or only until a pending snapshot may be published, so that stats are
    /// never more than a few milliseconds stale.
    pub(crate) fn poll_timeout(&self, next_timer: Instant) -> i64 {
        let now = Instant::now();
        let until_timer = next_timer.saturating_duration_since(now).min(TICK);
        let wait = if self.dirty {
            until_timer.min(PUBLISH_EVERY.saturating_sub(now.duration_since(self.last)))
        } else {
            until_timer
        };
        // Round up, so that a sub-millisecond wait does not spin.
        wait.as_millis() as i64 + 1
    }

    /// Whether a snapshot is due: something changed and the last one is
    /// older than a few milliseconds (or `force`).
    pub(crate) fn due(&mut self, now: Instant, force: bool) -> bool {
        if self.dirty && (force || now.duration_since(self.last) >= PUBLISH_EVERY) {
            self.dirty = false;
            self.last = now;
            true
        } else {
            false
        }
    }
}
