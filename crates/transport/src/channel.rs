//! Channels: the events of one call, in both directions.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use zerorpc_wire::{Event, MessageId, estimated_size, names};

use crate::socket::{Command, LOSSLESS_KEY, SocketShared};
use crate::{Error, Peer, SocketConfig, SocketKind};

/// State shared by a [`Channel`] handle and the socket's I/O thread.
pub(crate) struct ChannelShared {
    state: Mutex<ChannelState>,
    /// Where the channel's request went, once the I/O thread sent it, on
    /// sockets that keep it ([`SocketConfig::channel_peers`]).
    peer: OnceLock<Peer>,
}

pub(crate) struct ChannelState {
    pub(crate) inbox: Inbox,
    /// How many more events the peer allows us to send (`_zpc_more`).
    pub(crate) send_credit: i64,
    /// The peer's send queue is past its mark: sending waits until it
    /// drains (back-pressure, beside the peer's credit).
    held: bool,
    pub(crate) closed: Option<Error>,
    recv_waker: Option<Waker>,
    send_waker: Option<Waker>,
    closed_waker: Option<Waker>,
}

/// A fresh channel: what the machine makes for each channel a peer opens.
impl Default for ChannelShared {
    fn default() -> Self {
        ChannelShared {
            state: Mutex::new(ChannelState {
                inbox: Inbox::default(),
                // Both ends start with an implicit credit of one event.
                send_credit: 1,
                held: false,
                closed: None,
                recv_waker: None,
                send_waker: None,
                closed_waker: None,
            }),
            peer: OnceLock::new(),
        }
    }
}

/// What [`ChannelShared::take_credit`] found.
pub(crate) enum Credit {
    Taken,
    Wait,
    Closed(Error),
}

/// Where a channel's request went (a client's) or came from (a
/// server's): see [`Channel::peer_slot`].
#[derive(Clone)]
pub struct PeerSlot(Slot);

#[derive(Clone)]
enum Slot {
    Channel(Arc<ChannelShared>),
    Known(Peer),
}

impl PeerSlot {
    /// A slot holding `peer` already.
    pub fn known(peer: Peer) -> Self {
        PeerSlot(Slot::Known(peer))
    }

    pub(crate) fn of(shared: Arc<ChannelShared>) -> Self {
        PeerSlot(Slot::Channel(shared))
    }

    /// The peer, once known: a client's once its request was sent.
    pub fn get(&self) -> Option<&Peer> {
        match &self.0 {
            Slot::Channel(shared) => shared.peer.get(),
            Slot::Known(peer) => Some(peer),
        }
    }
}

impl std::fmt::Debug for PeerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PeerSlot").field(&self.get()).finish()
    }
}

/// Events received and not yet read, in order.
///
/// Most channels are calls that receive one reply: it is kept in place, so
/// such a channel allocates no queue (a `VecDeque` of events allocates
/// room for four on its first push, a malloc and a free per call).
#[derive(Default)]
pub(crate) struct Inbox {
    first: Option<Event>,
    rest: VecDeque<Event>,
}

impl Inbox {
    fn push_back(&mut self, event: Event) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(event);
        } else {
            self.rest.push_back(event);
        }
    }

    fn pop_front(&mut self) -> Option<Event> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    /// The next event, and every one after it moved to `taken` (which
    /// must be empty): a reader takes a burst under one lock rather than
    /// one per event. The two queues swap their buffers, so neither
    /// allocates again.
    fn take_all(&mut self, taken: &mut VecDeque<Event>) -> Option<Event> {
        debug_assert!(taken.is_empty());
        let next = self.pop_front()?;
        std::mem::swap(&mut self.rest, taken);
        Some(next)
    }
}

impl ChannelShared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A channel's state that knows its peer from the start: cheaper than
    /// [`set_peer`](Self::set_peer) on a new one.
    pub(crate) fn with_peer(peer: Peer) -> Arc<Self> {
        // Made in place and then given its peer: a `ChannelShared` built
        // whole and moved into the `Arc` is copied (some 300 bytes).
        let mut shared = Self::new();
        if let Some(fresh) = Arc::get_mut(&mut shared) {
            fresh.peer = OnceLock::from(peer);
        }
        shared
    }

    /// The peer of the channel, once known.
    pub(crate) fn peer(&self) -> Option<&Peer> {
        self.peer.get()
    }

    /// Keeps where the channel's request went (the first time only).
    pub(crate) fn set_peer(&self, peer: Peer) {
        let _ = self.peer.set(peer);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn deliver(&self, event: Event) {
        let waker = {
            let mut state = self.lock();
            state.inbox.push_back(event);
            state.recv_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Delivers the channel's last event and closes it with `error`, under
    /// one lock and with one wake of each waiter: a call's reply.
    pub(crate) fn deliver_last(&self, event: Event, error: Error) {
        let wakers = {
            let mut state = self.lock();
            state.inbox.push_back(event);
            state.close(error)
        };
        wake_all(wakers);
    }

    pub(crate) fn add_credit(&self, n: i64) {
        let waker = {
            let mut state = self.lock();
            state.send_credit = state.send_credit.saturating_add(n);
            state.send_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Makes the next `send` wait for [`ChannelShared::release`].
    pub(crate) fn hold(&self) {
        self.lock().held = true;
    }

    /// Lets sending go on, waking a `send` that waits.
    pub(crate) fn release(&self) {
        let waker = {
            let mut state = self.lock();
            state.held = false;
            state.send_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Makes `waker` the one woken when the channel closes.
    pub(crate) fn set_closed_waker(&self, waker: &Waker) {
        self.lock().closed_waker = Some(waker.clone());
    }

    /// Takes credit for one event, or leaves `waker` to be woken once
    /// there is some (a grant, the send queue drained below its mark).
    pub(crate) fn take_credit(&self, waker: &Waker) -> Credit {
        let mut state = self.lock();
        if let Some(err) = &state.closed {
            Credit::Closed(err.clone())
        } else if state.send_credit > 0 && !state.held {
            state.send_credit -= 1;
            Credit::Taken
        } else {
            state.send_waker = Some(waker.clone());
            Credit::Wait
        }
    }

    /// Gives back credit taken for an event that was not made, or not
    /// sent yet.
    pub(crate) fn return_credit(&self) {
        self.lock().send_credit += 1;
    }

    pub(crate) fn close(&self, error: Error) {
        let wakers = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.close(error)
        };
        wake_all(wakers);
    }
}

impl ChannelState {
    /// Closes the channel with `error` unless it is closed already; gives
    /// back every waiter, to wake once the lock is released.
    fn close(&mut self, error: Error) -> [Option<Waker>; 3] {
        if self.closed.is_none() {
            self.closed = Some(error);
        }
        [
            self.recv_waker.take(),
            self.send_waker.take(),
            self.closed_waker.take(),
        ]
    }
}

fn wake_all(wakers: [Option<Waker>; 3]) {
    for waker in wakers.into_iter().flatten() {
        waker.wake();
    }
}

/// Flow-control settings of a channel's receiving side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Queue size `S`: credit is topped up to this many events.
    pub(crate) size: u32,
    /// Bytes of events credit may cover at once: with large events, `S`
    /// shrinks to what fits (at least 2), estimated from the events read.
    pub(crate) bytes: usize,
    /// Credit granted to the peer and not yet used, as the peer sees it.
    pub(crate) reserved: i64,
    /// Whether the application has read from the channel yet.
    pub(crate) read_once: bool,
    /// The size to grow to if the sender's first stream item says it is
    /// lossless; `None` once that item is read, or when the channel's
    /// window was chosen for it.
    lossless: Option<u32>,
    /// Whether the sender said it is lossless: credit is then topped up
    /// once a quarter of the window is used, not half (see
    /// [`Window::tops_up_below`]).
    eager: bool,
    /// Stream items read and their estimated size, for `bytes`.
    read: u64,
    read_bytes: u64,
}

impl Window {
    /// A window of `size` events, whatever the sender.
    pub(crate) fn fixed(size: u32, bytes: usize) -> Self {
        Window {
            size: size.max(2),
            bytes,
            reserved: 1,
            read_once: false,
            lossless: None,
            eager: false,
            read: 0,
            read_bytes: 0,
        }
    }

    /// The socket's window, grown to its lossless window if the sender
    /// says it never drops.
    pub(crate) fn growing(config: &SocketConfig) -> Self {
        Window {
            lossless: Some(config.lossless_window.max(2)),
            ..Window::fixed(config.window, config.window_bytes)
        }
    }

    /// The queue size to top credit up to now.
    fn target(&self) -> i64 {
        let size = i64::from(self.size);
        if self.read == 0 {
            return size;
        }
        let average = (self.read_bytes / self.read).max(1);
        let fits = i64::try_from(self.bytes as u64 / average).unwrap_or(i64::MAX);
        fits.clamp(2, size.max(2))
    }

    /// Credit left to the peer below which it is topped up to `target`.
    ///
    /// Half the window, as zerorpc-python grants, so that what a Python
    /// sender may have in flight never exceeds what its ROUTER holds. A
    /// lossless sender gets it in quarters: each grant leaves while three
    /// quarters of the window are still granted. Grants of 500 of 2,000
    /// took one stream of 300,000 64-byte items from 0.496 to 0.394 s
    /// (medians of 8 interleaved runs, two processes); grants of 250 were
    /// slower (0.432 s). See ARCHITECTURE.md, "Stream credit".
    fn tops_up_below(&self, target: i64) -> i64 {
        if self.eager {
            target - target / 4
        } else {
            target / 2
        }
    }

    fn note_read(&mut self, event: &Event) {
        self.read_once = true;
        self.reserved -= 1;
        // Stream items are what credit lets pile up: sizing the window
        // from them alone spares every single reply a walk of its value.
        if event.name == names::STREAM {
            // A lossless sender says so on its first item; no later item
            // is looked at.
            if let Some(size) = self.lossless.take()
                && event.header.get(LOSSLESS_KEY).and_then(|v| v.as_bool()) == Some(true)
            {
                self.size = size;
                self.eager = true;
            }
            self.read += 1;
            self.read_bytes += estimated_size(&event.args) as u64;
        }
    }
}

/// One open channel: the events of one call.
///
/// Every event sent on a channel carries the channel id in `response_to`
/// (except the one that opened it). Heartbeats and `_zpc_more` credit are
/// handled by the socket's I/O thread and never show up here.
///
/// Receiving grants credit the way zerorpc-python does: nothing on the first
/// read, then `_zpc_more [S - reserved]` whenever the credit left to the
/// peer drops below `S / 2` (`3S / 4` for a sender that says it is
/// lossless); `S` is the window, made smaller for large
/// events so that credit covers at most the window's bytes (see
/// [`SocketConfig::window_bytes`](crate::SocketConfig::window_bytes)).
/// Sending waits for credit from the peer.
///
/// Dropping the handle closes the channel locally; the peer learns of it
/// through the missing heartbeats, as the protocol has no close event. A
/// channel this socket opened also ends at the peer's `OK` or `ERR`, the
/// last event of a call: [`recv`](Self::recv) gives it, then reports the
/// channel closed.
pub struct Channel {
    id: MessageId,
    shared: Arc<ChannelShared>,
    socket: Arc<SocketShared>,
    window: Window,
    /// Events taken from the shared inbox with an earlier one and not yet
    /// read: a stream's reader locks the inbox once per burst.
    taken: VecDeque<Event>,
    /// Whether this channel has sent a `STREAM` event: its events are a
    /// stream's from then on, which the I/O thread holds rather than
    /// refuses when its peer's queue is full (and a server's first one
    /// said it is lossless).
    streaming: bool,
    /// Its last event was sent with the order to close it: nothing left
    /// to close when dropped.
    ended: bool,
}

impl Channel {
    pub(crate) fn new(
        id: MessageId,
        shared: Arc<ChannelShared>,
        socket: Arc<SocketShared>,
        window: Window,
    ) -> Self {
        Channel {
            id,
            shared,
            socket,
            window,
            taken: VecDeque::new(),
            streaming: false,
            ended: false,
        }
    }

    /// The channel id: the `message_id` of its first event.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// Where this channel's request went (a client's channel, once the
    /// I/O thread sent it) or came from (a server's), readable for as long
    /// as the slot is held, after the channel too. Filled on sockets that
    /// keep peers ([`SocketConfig::channel_peers`]); otherwise it stays
    /// empty.
    pub fn peer_slot(&self) -> PeerSlot {
        PeerSlot::of(self.shared.clone())
    }

    /// Receives the next event of the channel.
    ///
    /// Fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the
    /// first-reply timeout expires, with
    /// [`ErrorKind::LostRemote`](crate::ErrorKind::LostRemote) when the peer
    /// stops heartbeating, and with
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) when the socket closes.
    /// Events already received are delivered before any such error.
    pub async fn recv(&mut self) -> Result<Event, Error> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next event of the channel: [`recv`](Self::recv) for
    /// a hand-written `Future` or `Stream`, which spares moving a future's
    /// state for every event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Event, Error>> {
        // Granted once per event read: after a grant, `reserved` is the
        // target, so polling again while waiting grants nothing more.
        let target = self.window.target();
        if self.window.read_once && self.window.reserved < self.window.tops_up_below(target) {
            let grant = target - self.window.reserved;
            self.window.reserved = target;
            self.socket.command(Command::Grant {
                id: self.id.clone(),
                credit: grant,
            });
        }
        if let Some(event) = self.taken.pop_front() {
            self.window.note_read(&event);
            return Poll::Ready(Ok(event));
        }
        let mut state = self.shared.lock();
        if let Some(event) = state.inbox.take_all(&mut self.taken) {
            drop(state);
            self.window.note_read(&event);
            return Poll::Ready(Ok(event));
        }
        if let Some(err) = &state.closed {
            return Poll::Ready(Err(err.clone()));
        }
        state.recv_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Takes an event already received, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        let event = match self.taken.pop_front() {
            Some(event) => event,
            None => self.shared.lock().inbox.take_all(&mut self.taken)?,
        };
        self.window.note_read(&event);
        Some(event)
    }

    /// Sends an event on the channel once the peer has granted credit for it.
    ///
    /// The event's header gets `response_to` set to the channel id; its
    /// `message_id`, trace keys and extra keys are kept.
    pub fn send(&mut self, event: Event) -> impl Future<Output = Result<(), Error>> + Send + '_ {
        // The events of a stream before its last are counted until the
        // I/O thread takes them (see `UNSENT_MARK`).
        let unsent = self.streaming || event.name == names::STREAM;
        // A future of its own rather than an async fn's: that held the
        // channel and the event twice each, as arguments and as locals.
        let mut event = Some(event);
        poll_fn(move |cx| {
            std::task::ready!(self.poll_credit(cx))?;
            if unsent && self.socket.unsent.poll_reserve(cx).is_pending() {
                // Taken again once the I/O thread has taken enough.
                self.shared.return_credit();
                return Poll::Pending;
            }
            if let Some(mut event) = event.take() {
                self.address(&mut event);
                self.socket
                    .send_on_channel(&self.id, event, self.streaming, false);
            }
            Poll::Ready(Ok(()))
        })
    }

    /// Sends the channel's last event (a reply, the end of a stream) once
    /// the peer has granted credit for it, and closes the channel: what
    /// [`send`](Self::send) then dropping the channel do, in one command
    /// to the I/O thread, which a task replying from another thread then
    /// wakes once rather than twice.
    pub fn send_last(
        self,
        event: Event,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static + use<> {
        // Half the size of the same as an async fn (352 bytes against 720),
        // which held the channel and the event twice each: a server's
        // call awaits it in a future that should fit in glibc's
        // per-thread cache.
        let mut last = Some((self, event));
        poll_fn(move |cx| {
            let Some((channel, _)) = last.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            if let Err(e) = std::task::ready!(channel.poll_credit(cx)) {
                last = None;
                return Poll::Ready(Err(e));
            }
            if let Some((mut channel, mut event)) = last.take() {
                channel.address(&mut event);
                channel
                    .socket
                    .send_on_channel(&channel.id, event, channel.streaming, true);
                channel.ended = true;
            }
            Poll::Ready(Ok(()))
        })
    }

    /// Takes credit for one event, once the peer has granted it. The event
    /// waits outside: a future holding it would move it at every step
    /// (six copies of an event per stream item).
    fn poll_credit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.shared.take_credit(cx.waker()) {
            Credit::Taken => Poll::Ready(Ok(())),
            Credit::Wait => Poll::Pending,
            Credit::Closed(err) => Poll::Ready(Err(err)),
        }
    }

    /// Addresses `event` to the channel.
    fn address(&mut self, event: &mut Event) {
        let server = self.socket.kind == SocketKind::Server;
        address(event, &self.id, &mut self.streaming, server);
    }

    /// Resolves when the channel is closed: by the peer's loss, a timeout,
    /// or the socket closing. Never resolves for a healthy channel.
    ///
    /// The future does not borrow the channel, so it can be raced against
    /// work that uses the channel; only the latest such future is woken.
    pub fn closed(&self) -> impl Future<Output = Error> + Send + 'static + use<> {
        closed(self.shared.clone())
    }
}

/// Addresses `event` to channel `id`, which has sent a `STREAM` event if
/// `streaming` (set by the first). A `server`'s first `STREAM` says the
/// stream is lossless: a server's ROUTER never drops; what the peer cannot
/// take yet waits in its queue, or fails the call at the queue's limit.
pub(crate) fn address(event: &mut Event, id: &MessageId, streaming: &mut bool, server: bool) {
    event.header.response_to = Some(id.clone());
    if !*streaming && event.name == names::STREAM {
        *streaming = true;
        if server {
            event.header.insert(LOSSLESS_KEY, true.into());
        }
    }
}

/// Resolves when the channel of `shared` is closed; see [`Channel::closed`].
pub(crate) fn closed(shared: Arc<ChannelShared>) -> impl Future<Output = Error> + Send + 'static {
    poll_fn(move |cx| {
        let mut state = shared.lock();
        match &state.closed {
            Some(err) => Poll::Ready(err.clone()),
            None => {
                state.closed_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
}

impl Drop for Channel {
    fn drop(&mut self) {
        // A channel the I/O thread closed (its call's reply came, it timed
        // out, its peer was lost) is no longer there to close: telling the
        // thread would cost a command and a turn for nothing.
        if !self.ended && self.shared.lock().closed.is_none() {
            self.socket.command(Command::Close {
                id: self.id.clone(),
            });
        }
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use zerorpc_wire::{Header, Value};

    use super::*;

    fn event(n: i64) -> Event {
        Event::new(Header::new(), "STREAM", Value::from(n))
    }

    #[test]
    fn an_inbox_gives_events_back_in_the_order_they_came_whatever_was_read_between() {
        let mut inbox = Inbox::default();
        assert!(inbox.pop_front().is_none());
        inbox.push_back(event(1));
        inbox.push_back(event(2));
        assert_eq!(inbox.pop_front().map(|e| e.args), Some(Value::from(1)));
        inbox.push_back(event(3));
        assert_eq!(inbox.pop_front().map(|e| e.args), Some(Value::from(2)));
        assert_eq!(inbox.pop_front().map(|e| e.args), Some(Value::from(3)));
        assert!(inbox.pop_front().is_none());
        inbox.push_back(event(4));
        assert_eq!(inbox.pop_front().map(|e| e.args), Some(Value::from(4)));
        assert!(inbox.pop_front().is_none());
    }

    #[test]
    fn a_burst_taken_at_once_keeps_its_order_and_leaves_later_events_in_the_inbox() {
        let mut inbox = Inbox::default();
        let mut taken = VecDeque::new();
        assert!(inbox.take_all(&mut taken).is_none());
        for n in 1..=3 {
            inbox.push_back(event(n));
        }
        assert_eq!(
            inbox.take_all(&mut taken).map(|e| e.args),
            Some(Value::from(1))
        );
        let burst: Vec<_> = taken.drain(..).map(|e| e.args).collect();
        assert_eq!(burst, [Value::from(2), Value::from(3)]);
        assert!(inbox.pop_front().is_none());
        inbox.push_back(event(4));
        inbox.push_back(event(5));
        assert_eq!(
            inbox.take_all(&mut taken).map(|e| e.args),
            Some(Value::from(4))
        );
        assert_eq!(taken.pop_front().map(|e| e.args), Some(Value::from(5)));
        assert!(inbox.pop_front().is_none());
    }
}
