//! The context of the call being served, and its propagation to the calls
//! made while serving it.

use std::sync::Arc;

use zerorpc_transport::{Peer, PeerSlot};
use zerorpc_wire::{Event, Header, Value};

tokio::task_local! {
    static CURRENT: CallContext;
}

/// The context of a call being served: the header of its request.
///
/// A handler reads it with [`CallContext::current`]. Calls made by a
/// [`Client`](crate::Client) while serving a call carry headers derived
/// from it (see [`Propagation`]); this is where trace context travels.
#[derive(Clone, Debug)]
pub struct CallContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    method: String,
    header: Header,
}

impl CallContext {
    pub(crate) fn new(method: String, header: Header) -> Self {
        CallContext {
            inner: Arc::new(ContextInner { method, header }),
        }
    }

    /// The context of the call the current task serves, if any.
    pub fn current() -> Option<CallContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The name of the method being served.
    pub fn method(&self) -> &str {
        &self.inner.method
    }

    /// The full header of the request.
    pub fn header(&self) -> &Header {
        &self.inner.header
    }

    /// A header key of the request other than `message_id`, `v` and
    /// `response_to` (for example a trace id).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.inner.header.get(key)
    }

    /// Runs a future with this context as the current one.
    ///
    /// Not an `async fn`: one would hold `future` beside the scope that
    /// holds it too, twice its size (a served call's future went from
    /// 2.6 to 1.6 KB without it).
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }

    /// Runs a closure with this context as the current one (for blocking
    /// code on another thread).
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }
}

/// Derives the header of an outgoing request from the call being served,
/// and, on a server given one, the headers of its replies and the
/// `tracing` span its handler runs in.
///
/// The default, [`CopyExtras`], copies every extra header key, so unknown
/// keys pass through nested calls unchanged. Trace context (the
/// `zerorpc-tracing-collector` crate) is a `Propagation`.
pub trait Propagation: Send + Sync + 'static {
    /// Amends `request` (the header of an outgoing call) given the context
    /// being served, if any.
    fn propagate(&self, served: Option<&CallContext>, request: &mut Header);

    /// Amends the header of each reply event (`OK`, `ERR`, every `STREAM`
    /// item and `STREAM_DONE`) a server sends to the call `served`. Called
    /// only on servers built with
    /// [`ServerBuilder::propagation`](crate::ServerBuilder::propagation);
    /// the default adds nothing.
    fn reply(&self, served: &CallContext, reply: &mut Header) {
        let _ = (served, reply);
    }

    /// The `tracing` span the handler of `served` runs in, so that what
    /// it logs carries the call's identity; blocking handlers and stream
    /// producers enter it too. Called only on servers built with
    /// [`ServerBuilder::propagation`](crate::ServerBuilder::propagation);
    /// the default, `None`, adds no span.
    fn call_span(&self, served: &CallContext) -> Option<tracing::Span> {
        let _ = served;
        None
    }
}

/// Watches each call a client makes or a server serves, from the call
/// itself: its request, every reply and its end, without an observer on
/// the socket's I/O thread (which would see every event, build a view of
/// each and keep a table of open calls to tell them apart). Trace
/// reporting (the `zerorpc-tracing-collector` crate) is a `CallWatcher`;
/// set one with
/// [`ClientBuilder::call_watcher`](crate::ClientBuilder::call_watcher) or
/// [`ServerBuilder::call_watcher`](crate::ServerBuilder::call_watcher).
pub trait CallWatcher: Send + Sync + 'static {
    /// A client's call is about to send `request` (its header already
    /// propagated), on the caller's thread; or a server is about to serve
    /// `request`, before its handler runs (on the socket's I/O thread for
    /// the methods answered there). `None` leaves the call unwatched.
    fn watch(&self, request: &Event) -> Option<Box<dyn WatchedCall>>;

    /// A server is about to serve `request`, which came from `peer`:
    /// [`watch`](Self::watch) and then [`WatchedCall::routed`], which a
    /// watcher may do in one step (a server's request is routed as soon
    /// as it is watched).
    fn watch_served(&self, request: &Event, peer: PeerSlot) -> Option<Box<dyn WatchedCall>> {
        let mut watch = self.watch(request)?;
        watch.routed(peer);
        Some(watch)
    }

    /// A server answers `request`, which came from `peer`, at once on the
    /// thread that received it (an `#[zerorpc(inline)]` method, an
    /// introspection request): `serve` runs the handler, taking the
    /// request's arguments, and makes the one reply, which is returned.
    /// What [`watch_served`](Self::watch_served), then
    /// [`WatchedCall::replied`] and the watch's end do, in one step that a
    /// watcher may take without keeping the call anywhere (nothing else
    /// can see it while `serve` runs on this thread).
    fn serve_at_once(
        &self,
        request: &mut Event,
        peer: PeerSlot,
        serve: &mut dyn FnMut(&mut Event) -> Event,
    ) -> Event {
        let mut watch = self.watch_served(request, peer);
        let reply = serve(request);
        if let Some(watch) = &mut watch {
            watch.replied(&reply);
        }
        reply
    }
}

/// One watched call, told what happens to it in order. Dropping it ends
/// the watch: after the call's last reply (`OK`, `ERR`, `STREAM_DONE`),
/// or without it when the call failed (timed out, its peer lost, the
/// socket closed) or was given up (its caller stopped waiting, its
/// handler was cancelled).
pub trait WatchedCall: Send {
    /// Where the request went (a client's, handed to its socket; the slot
    /// tells the peer once the socket sent it) or came from (a server's:
    /// always called, before any reply). Not called for a request a
    /// client's socket refused at once (too large, the client closed).
    fn routed(&mut self, peer: PeerSlot);

    /// A reply: on a client, received (the first, each `STREAM` item, the
    /// last, as the caller reads them); on a server, about to be sent.
    fn replied(&mut self, reply: &Event);
}

/// What a server does around each call besides serving it.
#[derive(Clone, Default)]
pub(crate) struct ServerHooks {
    /// Amends reply headers and gives handlers their span.
    pub(crate) propagation: Option<Arc<dyn Propagation>>,
    /// Watches the calls served.
    pub(crate) watcher: Option<Arc<dyn CallWatcher>>,
}

impl ServerHooks {
    /// The reply `serve` makes to `request`, which came from `peer`,
    /// answered at once and watched as such (see
    /// [`CallWatcher::serve_at_once`]).
    pub(crate) fn serve_at_once(
        &self,
        request: &mut Event,
        peer: impl FnOnce() -> Option<PeerSlot>,
        mut serve: impl FnMut(&mut Event) -> Event,
    ) -> Event {
        match &self.watcher {
            None => serve(request),
            Some(watcher) => {
                let peer = peer().unwrap_or_else(|| PeerSlot::known(Peer::Unknown));
                watcher.serve_at_once(request, peer, &mut serve)
            }
        }
    }

    /// A watch of the call `request` opens, which came from `peer` (an
    /// unknown peer if the socket did not say).
    pub(crate) fn watch(
        &self,
        request: &Event,
        peer: impl FnOnce() -> Option<PeerSlot>,
    ) -> Option<Box<dyn WatchedCall>> {
        self.watcher.as_ref()?.watch_served(
            request,
            peer().unwrap_or_else(|| PeerSlot::known(Peer::Unknown)),
        )
    }
}

impl ServerHooks {
    /// The maker of the replies to the call of `context`, seen by `watch`.
    pub(crate) fn replies(
        &self,
        context: &CallContext,
        watch: Option<Box<dyn WatchedCall>>,
    ) -> Replies {
        // Only a server with a propagation keeps a second handle on the
        // context, for the headers of its replies.
        let headers = self.propagation.clone().map(|p| (p, context.clone()));
        Replies { headers, watch }
    }
}

/// Makes the replies to one call, as any path serving it does: the
/// server's propagation amends their header, when there is one, and the
/// call's watch sees each.
pub(crate) struct Replies {
    headers: Option<(Arc<dyn Propagation>, CallContext)>,
    watch: Option<Box<dyn WatchedCall>>,
}

impl Replies {
    /// The reply `name` with `args`, seen by the watch.
    pub(crate) fn event(&mut self, name: &'static str, args: Value) -> Event {
        let mut header = Header::new();
        if let Some((propagation, served)) = &self.headers {
            propagation.reply(served, &mut header);
        }
        watched(&mut self.watch, Event::new(header, name, args))
    }
}

/// Shows `reply`, about to be sent, to the call's watch if it has one.
pub(crate) fn watched(watch: &mut Option<Box<dyn WatchedCall>>, reply: Event) -> Event {
    if let Some(watch) = watch {
        watch.replied(&reply);
    }
    reply
}

/// Copies the served request's extra header keys and trace context onto
/// outgoing requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyExtras;

impl Propagation for CopyExtras {
    fn propagate(&self, served: Option<&CallContext>, request: &mut Header) {
        if let Some(ctx) = served {
            let served = ctx.header();
            for (key, value) in &served.extra {
                if request.get(key).is_none() && !request.trace.has(key) {
                    request.insert(key.clone(), value.clone());
                }
            }
            request.trace = request.trace.or(served.trace);
        }
    }
}
