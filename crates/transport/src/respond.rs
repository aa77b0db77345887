//! Answering a request on the I/O thread, before any application thread
//! sees it.
//!
//! A call costs two thread hand-offs on a server: the I/O thread wakes the
//! application's task with the request, and the task wakes the I/O thread
//! with the reply. For a request whose answer is quick to compute and never
//! waits, both are pure cost. A [`Responder`] in
//! [`SocketConfig::responder`](crate::SocketConfig::responder) is offered
//! every request a server socket accepts; what it answers is sent at once
//! and the channel ends there, and what it declines goes to
//! [`Socket::accept`](crate::Socket::accept) as usual.
//!
//! A responder runs on the I/O thread, which also sends every channel's
//! heartbeats: while it runs, no heartbeat leaves and no event is read.
//! It must never block or wait, only compute. A responder that panics is
//! caught; the request then goes to the application as if declined.
//!
//! ```
//! use std::sync::Arc;
//! use zerorpc_transport::{Responder, SocketConfig};
//! use zerorpc_transport::wire::{Event, Header, Value, names};
//!
//! /// Answers `ping` itself; everything else goes to the application.
//! struct Ping;
//!
//! impl Responder for Ping {
//!     fn respond(&self, request: &mut Event) -> Option<Event> {
//!         (request.name == "ping").then(|| {
//!             Event::new(Header::new(), names::OK, Value::Array(vec![Value::from("pong")]))
//!         })
//!     }
//! }
//!
//! let mut config = SocketConfig::new();
//! config.responder = Some(Arc::new(Ping));
//! ```
//!
//! A call the responder [adopts](Responder::adopt) may also be answered
//! with a stream made on the I/O thread itself ([`Adopted::stream`]): the
//! thread asks a [`Producer`] for the next event whenever the client's
//! credit allows one, and sends it in the same turn, where a stream
//! produced by a task costs a hand-off between threads per batch of items.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use zerorpc_wire::{Event, MessageId};

use crate::channel::ChannelShared;
use crate::socket::{Command, CommandQueue, Wake};
use crate::{Error, PeerSlot};

/// Answers requests on a server socket's I/O thread; see the
/// [module](crate::respond) documentation.
pub trait Responder: Send + Sync + 'static {
    /// The reply to `request` (`OK`, `ERR`: a single event that ends the
    /// call), or `None` to hand the call to the application. The reply's
    /// `response_to` is set by the socket.
    ///
    /// A responder that answers may take what it needs out of `request`
    /// (its arguments, its name, its header's extra keys) rather than
    /// copy it: the socket reads only the header's `message_id` after an
    /// answer. One that declines must leave `request` as it found it.
    fn respond(&self, request: &mut Event) -> Option<Event>;

    /// [`respond`](Self::respond), told the peer that sent `request`, on
    /// sockets that keep peers
    /// ([`SocketConfig::channel_peers`](crate::SocketConfig::channel_peers));
    /// the others call `respond`. The default ignores the peer.
    fn respond_from(&self, request: &mut Event, peer: PeerSlot) -> Option<Event> {
        let _ = peer;
        self.respond(request)
    }

    /// Offered each call [`respond`](Self::respond) declined, on the I/O
    /// thread, once its channel is open: heartbeats flow for it from then
    /// on. Return `None` to serve it elsewhere (hand `call` to a thread
    /// pool, say, whose thread then [replies](Adopted::reply)), or
    /// `Some(call)` to pass it to [`Socket::accept`](crate::Socket::accept)
    /// as usual. The default passes every call on.
    ///
    /// The same rules hold as for `respond`: quick, never blocking; one
    /// that adopts may take what it needs out of `request`, one that
    /// declines must leave it as it found it. A call adopted by a
    /// responder that then panics is closed, which its client sees as a
    /// lost remote.
    fn adopt(&self, request: &mut Event, call: Adopted) -> Option<Adopted> {
        let _ = request;
        Some(call)
    }
}

/// A call taken by a [`Responder`] (see [`Responder::adopt`]): it is
/// answered by one [`reply`](Self::reply), from any thread. Dropped
/// without a reply, it closes the call unanswered (the client then sees
/// its server lost).
pub struct Adopted {
    id: MessageId,
    shared: Arc<ChannelShared>,
    commands: Arc<CommandQueue>,
    wake: Arc<Wake>,
    /// Whether the socket has observers, who see the reply event itself.
    observed: bool,
    /// Replied, or handed back: nothing left to close.
    done: bool,
}

/// The events of a stream made on the socket's I/O thread, for a call
/// adopted by a [`Responder`]: see [`Adopted::stream`].
pub trait Producer: Send + 'static {
    /// The call's next event. A `STREAM` event is sent and the stream goes
    /// on; any other (`STREAM_DONE`, `ERR`, or `OK` for a call that turned
    /// out to have one answer) is sent as the call's last, which ends it.
    ///
    /// Polled on the I/O thread, and only while the client's credit
    /// allows one more event and the client's send queue is below its
    /// mark: the stream is paced as one sent from a task. A producer with
    /// nothing ready returns `Pending` and has `cx`'s waker woken, from
    /// any thread, once it has. The rules of a [`Responder`] hold: quick,
    /// never blocking, for while it runs no other event of the socket
    /// moves. A producer that panics is dropped and its call closed,
    /// which the client sees as a lost remote. Dropped, on the I/O
    /// thread, once the call ends: its last event sent, its client lost,
    /// or the socket closed.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event>;
}

impl Adopted {
    pub(crate) fn new(
        id: MessageId,
        shared: Arc<ChannelShared>,
        commands: Arc<CommandQueue>,
        wake: Arc<Wake>,
        observed: bool,
    ) -> Self {
        Adopted {
            id,
            shared,
            commands,
            wake,
            observed,
            done: false,
        }
    }

    /// The call's id: its request's `message_id`.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// Where the call came from, on sockets that keep peers
    /// ([`SocketConfig::channel_peers`](crate::SocketConfig::channel_peers));
    /// otherwise an empty slot.
    pub fn peer_slot(&self) -> PeerSlot {
        PeerSlot::of(self.shared.clone())
    }

    /// Whether the call has ended without a reply: its client was lost,
    /// or the socket closed. A reply then goes nowhere.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Resolves when the call ends without a reply: by its client's loss,
    /// or the socket closing (see [`Channel::closed`](crate::Channel::closed)).
    /// Never resolves for a call still open. Only the latest such future is
    /// woken.
    pub fn closed(&self) -> impl Future<Output = Error> + Send + 'static + use<> {
        crate::channel::closed(self.shared.clone())
    }

    /// Sends the call's one reply (`OK` or `ERR`) and ends the call: one
    /// command to the I/O thread, one wake-up at most, and none when made
    /// while the responder runs (the turn that adopted the call sends it
    /// before it ends). Never waits.
    pub fn reply(mut self, mut event: Event) {
        event.header.response_to = Some(self.id.clone());
        let payload = crate::buffers::encode(&event);
        let observed = self.observed.then(|| Box::new(event));
        self.command(Command::Send {
            id: self.id.clone(),
            payloads: smallvec::smallvec![payload],
            observed,
            stream: false,
            last: true,
        });
        self.done = true;
    }

    /// Answers the call with the events `producer` makes, on the I/O
    /// thread (see [`Producer`]), until its last. The I/O thread starts
    /// it in the turn that adopted the call.
    pub fn stream(mut self, producer: Box<dyn Producer>) {
        self.command(Command::Produce {
            id: self.id.clone(),
            shared: self.shared.clone(),
            producer,
        });
        self.done = true;
    }

    /// The channel, for the application after all: nothing is closed.
    pub(crate) fn decline(mut self) -> (MessageId, Arc<ChannelShared>) {
        self.done = true;
        (self.id.clone(), self.shared.clone())
    }

    fn command(&self, command: Command) {
        if self.commands.push(command) {
            self.wake.wake();
        }
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        if !self.done {
            self.command(Command::Close {
                id: self.id.clone(),
            });
        }
    }
}

impl std::fmt::Debug for Adopted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adopted")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
