//! Sockets: the public handle and what it shares with its I/O thread.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::task::AtomicWaker;
use smallvec::SmallVec;
use zerorpc_wire::{Event, MessageId};

use crate::channel::{Channel, ChannelShared, Window};
use crate::driver::SocketDriver;
use crate::io::{IoLinks, IoThread};
use crate::{EndpointOptions, Error, Observer, Responder, Security};

/// The ZeroMQ socket pattern a [`Socket`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketKind {
    /// RPC client: DEALER sockets (one per connected endpoint) opening channels.
    Client,
    /// RPC server: a ROUTER socket accepting channels.
    Server,
    /// Sends single-frame events (PUSH).
    Push,
    /// Receives single-frame events (PULL).
    Pull,
    /// Publishes single-frame events (PUB).
    Publish,
    /// Receives published events (SUB, subscribed to everything).
    Subscribe,
}

/// Settings of a [`Socket`] and of the channels it opens or accepts.
#[derive(Clone)]
pub struct SocketConfig {
    /// Heartbeat interval of every channel; `None` disables heartbeats (no
    /// sending, no loss detection). Default 5 s, as in zerorpc-python.
    pub heartbeat: Option<Duration>,
    /// Passive heartbeat: send and check nothing on a channel until the peer
    /// sends its first heartbeat (zerorpc-python's `passive_heartbeat`).
    pub passive_heartbeat: bool,
    /// Receive window `S` of each channel: credit is topped up to this many
    /// events. Default [`DEFAULT_WINDOW`]; zerorpc-python's is 100.
    pub window: u32,
    /// Receive window of a channel whose sender says it never drops what
    /// it cannot send yet ([`LOSSLESS_KEY`]: our servers, not
    /// zerorpc-python's), used instead of [`window`](Self::window) from
    /// the first event saying so, unless the channel was opened with a
    /// window of its own. Default [`DEFAULT_LOSSLESS_WINDOW`].
    pub lossless_window: u32,
    /// Bytes of events a channel's credit covers at most: with large
    /// events the window shrinks to what fits (at least 2 events),
    /// estimated from the sizes of the events read so far. Default
    /// [`DEFAULT_WINDOW_BYTES`].
    pub window_bytes: usize,
    /// Observers of every event sent and received and of every channel
    /// change, called on the I/O thread: see [`Observer`].
    pub observers: Vec<Arc<dyn Observer>>,
    /// Keep on each channel the peer its request went to (clients) or
    /// came from (servers), for callers that watch their calls themselves
    /// rather than through observers: see
    /// [`Channel::peer_slot`](crate::Channel::peer_slot) and
    /// [`Adopted::peer_slot`](crate::Adopted::peer_slot); a
    /// [`Responder`] is told the peer of each request it is offered in
    /// [`Responder::respond_from`]. Costs a reference count or a copy of
    /// the routing id per call. Default `false`.
    pub channel_peers: bool,
    /// Bytes of events that may wait for one peer when ZeroMQ cannot take
    /// them yet (the peer reads slower than we send). Beyond it, an event
    /// that cannot be queued fails its channel with
    /// [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull) instead of
    /// being lost; a heartbeat is not queued twice for one channel. Default
    /// [`DEFAULT_SEND_QUEUE_LIMIT`].
    pub send_queue_limit: usize,
    /// How the connections of every endpoint are secured, unless
    /// [`Socket::bind_with`] or [`Socket::connect_with`] says otherwise.
    /// Default [`Security::None`].
    pub security: Security,
    /// The largest message frame a peer may send, for every endpoint unless
    /// [`Socket::bind_with`] or [`Socket::connect_with`] says otherwise;
    /// see [`EndpointOptions::max_message_size`]. Default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`]; `None` for no limit.
    ///
    /// Peers are taken to share it: [`Socket::open`] refuses a request
    /// larger than this with [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge)
    /// before sending it, rather than let a peer with the same limit drop
    /// the connection.
    pub max_message_size: Option<u64>,
    /// Server sockets: answers quick requests on the I/O thread, saving two
    /// thread hand-offs per call; see [`Responder`]. Default `None`.
    pub responder: Option<Arc<dyn Responder>>,
}

/// The default [`SocketConfig::window`]: a stream's items in flight.
///
/// zerorpc-python grants 100, which caps a stream at 100 items per round
/// trip of its credit: about 190,000 small items/s on loopback, where 500
/// reach 410,000 (and 1,000 about 490,000). It stays at half of ZeroMQ's
/// default high-water mark (1,000 messages) because a zerorpc-python
/// server's ROUTER silently drops what does not fit under it: a burst of a
/// whole window must fit. What a window holds in memory is bounded by
/// [`DEFAULT_WINDOW_BYTES`].
pub const DEFAULT_WINDOW: u32 = 500;

/// The default [`SocketConfig::lossless_window`]: with a sender that
/// queues without loss, the window no longer has to fit under a ROUTER's
/// high-water mark. Small items then stream about 30% faster than with
/// [`DEFAULT_WINDOW`] (385,000 to 505,000 64-byte items/s between two
/// processes on loopback; 4,000 gained nothing more). Memory stays bounded
/// by [`DEFAULT_WINDOW_BYTES`].
pub const DEFAULT_LOSSLESS_WINDOW: u32 = 2000;

/// The header key by which a stream's sender says it never drops an event
/// it cannot send yet (it queues it, or fails the call), so its receiver
/// may grant more than a ROUTER's high-water mark of credit at once. Our
/// servers put it, with the value `true`, on a channel's first `STREAM`
/// event; zerorpc-python ignores it, and never sends it: its ROUTER drops
/// silently past 1,000 queued messages.
pub const LOSSLESS_KEY: &str = "_zpc_lossless";

/// The default [`SocketConfig::window_bytes`]: 8 MiB per stream (128 items
/// of 64 KiB).
pub const DEFAULT_WINDOW_BYTES: usize = 8 << 20;

/// The default [`SocketConfig::send_queue_limit`]: 64 MiB per peer, room
/// for the replies of about 500,000 small calls to one client.
pub const DEFAULT_SEND_QUEUE_LIMIT: usize = 64 << 20;

/// The default [`SocketConfig::max_message_size`]: 16 MiB, far above what
/// calls usually carry, and low enough that a few hostile messages cannot
/// exhaust a server's memory.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 16 << 20;

impl SocketConfig {
    /// zerorpc-python's heartbeat (5 s, active), a window of
    /// [`DEFAULT_WINDOW`] events and [`DEFAULT_WINDOW_BYTES`]; and our
    /// limits: [`DEFAULT_SEND_QUEUE_LIMIT`], [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub fn new() -> Self {
        SocketConfig {
            heartbeat: Some(Duration::from_secs(5)),
            passive_heartbeat: false,
            window: DEFAULT_WINDOW,
            lossless_window: DEFAULT_LOSSLESS_WINDOW,
            window_bytes: DEFAULT_WINDOW_BYTES,
            observers: Vec::new(),
            channel_peers: false,
            send_queue_limit: DEFAULT_SEND_QUEUE_LIMIT,
            security: Security::None,
            max_message_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            responder: None,
        }
    }

    /// The options [`Socket::bind`] and [`Socket::connect`] give every
    /// endpoint: this configuration's defaults.
    pub fn endpoint_options(&self) -> EndpointOptions {
        EndpointOptions {
            security: self.security.clone(),
            max_message_size: self.max_message_size,
        }
    }
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SocketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketConfig")
            .field("heartbeat", &self.heartbeat)
            .field("passive_heartbeat", &self.passive_heartbeat)
            .field("window", &self.window)
            .field("lossless_window", &self.lossless_window)
            .field("window_bytes", &self.window_bytes)
            .field("observers", &self.observers.len())
            .field("channel_peers", &self.channel_peers)
            .field("send_queue_limit", &self.send_queue_limit)
            .field("security", &self.security)
            .field("max_message_size", &self.max_message_size)
            .field("responder", &self.responder.is_some())
            .finish()
    }
}

/// Options for a channel opened by [`Socket::open`].
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// Fail the channel when no event arrives from the peer within this time
    /// (zerorpc-python's call timeout, which covers the first reply only).
    pub first_reply_timeout: Option<Duration>,
    /// Receive window for this channel, overriding the socket's
    /// (zerorpc-python's `slots=`).
    pub window: Option<u32>,
}

/// Counters of a socket, for monitoring.
///
/// The `dropped_*` counters say why an event was not delivered; each one
/// either failed its channel with an error saying why, or concerned an
/// event no channel was waiting for. [`Stats::dropped`] adds them up.
///
/// The socket's I/O thread counts as it goes and a read does not stop it:
/// an event is counted in `sent` (or `heartbeats_sent`) just after ZeroMQ
/// took it, so its peer may hold it a moment before the count shows it;
/// `received` counts an event before it is delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events received and decoded.
    pub received: u64,
    /// Events handed to ZeroMQ.
    pub sent: u64,
    /// Messages dropped because they were not valid events or had no usable
    /// envelope.
    pub dropped_malformed: u64,
    /// Events other than heartbeats and credit dropped because their channel
    /// is unknown: a reply that came after its call gave up (timeout, lost
    /// remote), or a duplicate opening event.
    pub dropped_unroutable: u64,
    /// Events not sent because the peer's send queue was full (see
    /// [`SocketConfig::send_queue_limit`]); their channel failed with
    /// [`ErrorKind::QueueFull`](crate::ErrorKind::QueueFull).
    pub dropped_queue_full: u64,
    /// Events not sent because their peer had disconnected; their channel
    /// failed with [`ErrorKind::LostRemote`](crate::ErrorKind::LostRemote).
    pub dropped_peer_gone: u64,
    /// Events ZeroMQ refused for another reason; their channel failed with
    /// the error.
    pub dropped_send_failed: u64,
    /// Heartbeats and credit for channels that already ended: normal, as
    /// the protocol has no close event, and not a loss.
    pub late_control: u64,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Events waiting right now for ZeroMQ to take them (slow peers).
    pub queued: u64,
    /// The most events that have waited at once.
    pub queued_peak: u64,
    /// Connections ZeroMQ closed after a protocol error; the first is
    /// logged. On a client: a reply over
    /// [`SocketConfig::max_message_size`] or a malformed frame, after
    /// which the socket connects again at once. On a socket that binds (a
    /// server, a collector, an events puller): a peer's message over the
    /// limit, which the workspace's libzmq reports to the socket's
    /// monitor with the peer's address before dropping the connection.
    pub connections_closed: u64,
}

impl Stats {
    /// Every event that was not delivered, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_malformed
            + self.dropped_unroutable
            + self.dropped_queue_full
            + self.dropped_peer_gone
            + self.dropped_send_failed
    }

    /// Every counter by name, for printing or exporting.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("received", self.received),
            ("sent", self.sent),
            ("dropped_malformed", self.dropped_malformed),
            ("dropped_unroutable", self.dropped_unroutable),
            ("dropped_queue_full", self.dropped_queue_full),
            ("dropped_peer_gone", self.dropped_peer_gone),
            ("dropped_send_failed", self.dropped_send_failed),
            ("late_control", self.late_control),
            ("heartbeats_sent", self.heartbeats_sent),
            ("queued", self.queued),
            ("queued_peak", self.queued_peak),
            ("connections_closed", self.connections_closed),
        ]
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) dropped_malformed: AtomicU64,
    pub(crate) dropped_unroutable: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_peer_gone: AtomicU64,
    pub(crate) dropped_send_failed: AtomicU64,
    pub(crate) late_control: AtomicU64,
    pub(crate) heartbeats_sent: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) queued_peak: AtomicU64,
    pub(crate) connections_closed: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how many events wait in send queues now.
    pub(crate) fn set_queued(&self, queued: u64) {
        self.queued.store(queued, Ordering::Relaxed);
        self.queued_peak.fetch_max(queued, Ordering::Relaxed);
    }
}

pub(crate) enum Command {
    // Boxed options: rare commands, kept from making every command large.
    Bind(
        String,
        Box<EndpointOptions>,
        mpsc::SyncSender<Result<String, Error>>,
    ),
    Connect(
        String,
        Box<EndpointOptions>,
        mpsc::SyncSender<Result<String, Error>>,
    ),
    Disconnect(String, mpsc::SyncSender<Result<String, Error>>),
    Unbind(String, mpsc::SyncSender<Result<String, Error>>),
    Open {
        id: MessageId,
        shared: PendingChannel,
        payload: Vec<u8>,
        timeout: Option<Duration>,
        observed: Option<Box<Event>>,
    },
    Send {
        id: MessageId,
        /// One event, or several of a stream (see [`Command::gather`]).
        payloads: Payloads,
        observed: Option<Box<Event>>,
        /// Part of a stream (see `SendKind::Streamed`).
        stream: bool,
        /// The channel's last event: close it once sent (a call's reply),
        /// one command where a send and a close would take two, and as
        /// many wake-ups.
        last: bool,
    },
    /// Grant the peer this much more credit; the I/O thread knows which
    /// name the peer expects it under.
    Grant {
        id: MessageId,
        credit: i64,
    },
    Close {
        id: MessageId,
    },
    /// Answer the adopted call `id` with a stream made on the I/O thread.
    Produce {
        id: MessageId,
        shared: Arc<ChannelShared>,
        producer: Box<dyn crate::respond::Producer>,
    },
    /// A producer of the I/O thread has an event ready, or its channel
    /// has credit again: poll it.
    Resume {
        id: MessageId,
    },
    Emit {
        payload: Vec<u8>,
        observed: Option<Box<Event>>,
    },
    Shutdown,
}

impl Command {
    /// Takes `next` into this command, the last one queued, when both send
    /// events of one stream that nobody observes and this one does not end
    /// it; else gives it back. A producer that runs ahead of the I/O
    /// thread then costs the thread one channel lookup per batch of items
    /// rather than one per item.
    fn gather(&mut self, next: Command) -> Option<Command> {
        match (self, next) {
            (
                Command::Send {
                    id,
                    payloads,
                    observed: None,
                    stream: true,
                    last: last @ false,
                },
                Command::Send {
                    id: next_id,
                    payloads: more,
                    observed: None,
                    stream: true,
                    last: next_last,
                },
            ) if *id == next_id => {
                payloads.extend(more);
                *last = next_last;
                None
            }
            (_, next) => Some(next),
        }
    }
}

/// The encoded events of a [`Command::Send`]: one, inline, but for a
/// stream's gathered items.
pub(crate) type Payloads = SmallVec<[Vec<u8>; 1]>;

/// A channel on its way to the I/O thread in [`Command::Open`].
///
/// A command can be dropped unhandled when the socket closes meanwhile (it
/// is still queued when the I/O thread exits); dropping this then fails the
/// channel, which would otherwise wait forever.
pub(crate) struct PendingChannel(Option<Arc<ChannelShared>>);

impl PendingChannel {
    pub(crate) fn new(shared: Arc<ChannelShared>) -> Self {
        PendingChannel(Some(shared))
    }

    /// Hands the channel over to the I/O thread, which now owns its fate.
    pub(crate) fn take(mut self) -> Option<Arc<ChannelShared>> {
        self.0.take()
    }
}

impl Drop for PendingChannel {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.close(Error::closed());
        }
    }
}

/// The commands of a socket's handles to its I/O thread.
///
/// A vector behind a mutex, taken whole by the I/O thread: a command costs
/// a push under an uncontended lock, where a channel allocated a block of
/// slots every few dozen commands (two per call on a client: open, close).
/// Waking the thread is the caller's part (see [`SocketShared::command`]).
pub(crate) struct CommandQueue {
    state: Mutex<CommandQueueState>,
}

struct CommandQueueState {
    commands: Vec<Command>,
    /// The I/O thread has ended: commands are refused (and dropped, which
    /// fails the channels they carry).
    closed: bool,
}

impl CommandQueue {
    pub(crate) fn new() -> Self {
        CommandQueue {
            state: Mutex::new(CommandQueueState {
                commands: Vec::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CommandQueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `command`; once the I/O thread has ended, drops it (failing
    /// the channel it may carry) and returns false.
    pub(crate) fn push(&self, command: Command) -> bool {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            drop(command);
            return false;
        }
        let command = match state.commands.last_mut() {
            Some(tail) => tail.gather(command),
            None => Some(command),
        };
        state.commands.extend(command);
        true
    }

    /// Moves every queued command, in order, to the end of `into`.
    pub(crate) fn take(&self, into: &mut Vec<Command>) {
        let mut state = self.lock();
        if into.is_empty() {
            std::mem::swap(&mut state.commands, into);
        } else {
            into.append(&mut state.commands);
        }
    }

    /// Refuses commands from now on; returns those still queued (to be
    /// dropped outside the lock).
    pub(crate) fn close(&self) -> Vec<Command> {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.commands)
    }
}

/// A queue filled by the I/O thread and drained by one async consumer.
pub(crate) struct WakeQueue<T> {
    state: Mutex<WakeQueueState<T>>,
}

struct WakeQueueState<T> {
    items: VecDeque<T>,
    waker: Option<Waker>,
    closed: bool,
}

impl<T> WakeQueue<T> {
    pub(crate) fn new() -> Self {
        WakeQueue {
            state: Mutex::new(WakeQueueState {
                items: VecDeque::new(),
                waker: None,
                closed: false,
            }),
        }
    }

    pub(crate) fn push(&self, item: T) {
        let waker = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.items.push_back(item);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn close(&self) {
        let waker = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    async fn pop(&self) -> Option<T> {
        poll_fn(|cx| {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(item) = s.items.pop_front() {
                return Poll::Ready(Some(item));
            }
            if s.closed {
                return Poll::Ready(None);
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// What the handles of a socket share; dropping the last one stops the
/// I/O thread.
pub(crate) struct SocketShared {
    pub(crate) kind: SocketKind,
    /// Shared with the I/O thread: the one copy of the observers.
    pub(crate) config: Arc<SocketConfig>,
    commands: Arc<CommandQueue>,
    wake: Arc<Wake>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) incoming: Arc<WakeQueue<(MessageId, Arc<ChannelShared>)>>,
    pub(crate) events: Arc<WakeQueue<Event>>,
    pub(crate) unsent: Arc<Unsent>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// How handles wait for a driver that is not a thread of ours.
    blocking: Option<Blocking>,
}

/// Runs a wait of a [driven](Socket::driven) socket's handle for its
/// driver; see [`Socket::driven`].
pub type Blocking = fn(&mut dyn FnMut());

impl SocketShared {
    pub(crate) fn command(&self, command: Command) {
        if self.commands.push(command) {
            self.wake.wake();
        }
    }

    /// Sends `event` on channel `id`, closing the channel after it if it
    /// is the `last`.
    pub(crate) fn send_on_channel(&self, id: &MessageId, event: Event, stream: bool, last: bool) {
        let payload = crate::buffers::encode(&event);
        self.command(Command::Send {
            id: id.clone(),
            payloads: smallvec::smallvec![payload],
            observed: self.observed(event),
            stream,
            last,
        });
    }

    /// The event itself travels to the I/O thread only for its observers:
    /// they are called there, where every event passes, and the encoded
    /// payload is all the thread needs otherwise.
    /// The event for the observers, if any: boxed, so that every command
    /// stays small whether or not anyone observes.
    pub(crate) fn observed(&self, event: Event) -> Option<Box<Event>> {
        (!self.config.observers.is_empty()).then(|| Box::new(event))
    }
}

/// How many stream items the channels of a socket may have handed its
/// I/O thread, in all, before the thread has taken them. A task's stream
/// makes items as fast as its credit allows (2,000 a stream from our
/// servers), and a burst of many streams otherwise piles up in the command
/// queue, out of reach of the send queue's mark, which the thread applies
/// only as it takes them: a thousand streams of a thousand 64-byte items
/// at once peaked at 200-420 MiB of server memory so, and at 54-67 MiB
/// with this mark (211-334 MiB with a mark of 8,192), in the same time.
/// One stream (credit of 2,000) rarely reaches it, and runs as fast.
pub(crate) const UNSENT_MARK: usize = 1_024;

/// The stream items handed to a socket's I/O thread and not taken yet
/// (see [`UNSENT_MARK`]), and the senders waiting for the thread to take
/// some.
#[derive(Default)]
pub(crate) struct Unsent {
    count: AtomicUsize,
    /// Set, under the lock, before a sender looks at `count` a last time
    /// and waits: the thread that takes items looks at it after lowering
    /// `count`, so one of the two sees the other.
    waiting: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Unsent {
    /// Counts one more item, unless the mark is reached: then waits.
    pub(crate) fn poll_reserve(&self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.count.load(Ordering::SeqCst) < UNSENT_MARK {
            self.count.fetch_add(1, Ordering::SeqCst);
            return Poll::Ready(());
        }
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        self.waiting.store(true, Ordering::SeqCst);
        if self.count.load(Ordering::SeqCst) < UNSENT_MARK {
            self.count.fetch_add(1, Ordering::SeqCst);
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Wakes every waiting sender: half the mark is free, or the I/O
    /// thread ends (they then find their channels closed).
    pub(crate) fn wake_all(&self) {
        let wakers = {
            let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            self.waiting.store(false, Ordering::SeqCst);
            std::mem::take(&mut *wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// The I/O thread took `n` items: wakes the waiting senders once half
    /// the mark is free.
    pub(crate) fn taken(&self, n: usize) {
        let before = self.count.fetch_sub(n, Ordering::SeqCst);
        if before.saturating_sub(n) <= UNSENT_MARK / 2 && self.waiting.load(Ordering::SeqCst) {
            self.wake_all();
        }
    }
}

/// How the handles of a socket wake its driver when they give it a
/// command: a byte on a pipe for an I/O thread, the task's waker for a
/// driving task. One wake-up per batch of commands: `pending` stays set
/// until the driver takes them.
pub(crate) struct Wake {
    pub(crate) pending: AtomicBool,
    pipe: UnixStream,
    pub(crate) task: AtomicWaker,
    /// Whether the socket is [driven](Socket::driven) by the waker's task;
    /// cleared for good when a thread takes over.
    pub(crate) on_task: AtomicBool,
}

impl Wake {
    /// Makes `waker` the driving task's; true if commands already wait.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        self.task.register(waker);
        self.pending.load(Ordering::Acquire)
    }

    pub(crate) fn wake(&self) {
        if TURNING.with(|turning| turning.get() == std::ptr::from_ref(self)) {
            // Its own driver, mid-turn (a responder answering an adopted
            // call at once): it takes the command before this turn ends
            // (see `Wake::turning`), so a wake-up would only cost a pipe
            // write, a poll and a turn that finds nothing.
            DEFERRED.with(|deferred| deferred.set(true));
            return;
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            // SeqCst pairs with the store of a thread taking over from a
            // task: a wake-up that reads `true` here was sent before the
            // thread's first turn, which then takes its command.
            if self.on_task.load(Ordering::SeqCst) {
                self.task.wake();
            } else {
                // A full pipe already holds a wake-up, so WouldBlock is fine.
                let _ = (&self.pipe).write(&[1]);
            }
        }
    }
}

thread_local! {
    /// The wake-up of the driver turning on this thread, while it reads
    /// (and its responders run).
    static TURNING: Cell<*const Wake> = const { Cell::new(std::ptr::null()) };
    /// Whether a command came for that driver while it was turning.
    static DEFERRED: Cell<bool> = const { Cell::new(false) };
}

/// While alive, commands for the driver of `wake` given on this thread
/// wake nobody: the driver takes them before its turn ends ([`Turning::end`]).
pub(crate) struct Turning {
    previous: *const Wake,
    previous_deferred: bool,
}

impl Wake {
    /// Marks this thread as turning the driver of this wake-up.
    pub(crate) fn turning(&self) -> Turning {
        let previous = TURNING.with(|turning| turning.replace(std::ptr::from_ref(self)));
        let previous_deferred = DEFERRED.with(|deferred| deferred.replace(false));
        Turning {
            previous,
            previous_deferred,
        }
    }
}

impl Turning {
    /// Ends the turn's reading; true if commands came meanwhile, which
    /// the driver must now take.
    pub(crate) fn end(self) -> bool {
        DEFERRED.with(Cell::get)
    }
}

impl Drop for Turning {
    fn drop(&mut self) {
        TURNING.with(|turning| turning.set(self.previous));
        DEFERRED.with(|deferred| deferred.set(self.previous_deferred));
    }
}

impl Drop for SocketShared {
    fn drop(&mut self) {
        self.command(Command::Shutdown);
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// The process-wide ZeroMQ context, in which every [`Socket`] lives.
///
/// `inproc://` endpoints only connect sockets of one context, so a hub or
/// raw ZeroMQ sockets created in this context reach our sockets over
/// `inproc://` (the `zerorpc-hub` binary runs its hubs in it). It is also
/// where our ZAP handler, which serves the sockets of its context, runs
/// (see [`Authenticator`](crate::Authenticator)).
pub fn context() -> &'static zmq::Context {
    static CONTEXT: OnceLock<zmq::Context> = OnceLock::new();
    CONTEXT.get_or_init(zmq::Context::new)
}

/// A ZeroRPC socket, driven by its own I/O thread.
///
/// The I/O thread owns the ZeroMQ sockets (libzmq sockets are not
/// thread-safe) and does everything that must not wait for application
/// code: routing events to channels, heartbeats, loss detection, credit and
/// first-reply timeouts. Handles are cheap to clone and can be used from any
/// thread; their futures run on any executor.
///
/// ```
/// use zerorpc_transport::{OpenOptions, Socket, SocketConfig, SocketKind};
/// use zerorpc_wire::{Event, Header, Value, names};
///
/// let server = Socket::new(SocketKind::Server, SocketConfig::new())?;
/// let endpoint = server.bind("inproc://transport-doc")?;
/// let client = Socket::new(SocketKind::Client, SocketConfig::new())?;
/// client.connect(&endpoint)?;
///
/// futures::executor::block_on(async {
///     let request = Event::new(Header::new(), "ping", Value::Array(vec![]));
///     let mut call = client.open(request, OpenOptions::default())?;
///     let mut served = server.accept().await?;
///     let request = served.recv().await?;
///     assert_eq!(request.name, "ping");
///     served.send(Event::new(Header::new(), names::OK, Value::Array(vec!["pong".into()]))).await?;
///     let reply = call.recv().await?;
///     assert_eq!(reply.name, names::OK);
///     Ok::<(), zerorpc_transport::Error>(())
/// })?;
/// # Ok::<(), zerorpc_transport::Error>(())
/// ```
#[derive(Clone)]
pub struct Socket {
    shared: Arc<SocketShared>,
}

impl Socket {
    /// A socket of the given kind; starts its I/O thread.
    pub fn new(kind: SocketKind, config: SocketConfig) -> Result<Socket, Error> {
        let (socket, io) = Socket::with_io(kind, config, None)?;
        let handle = std::thread::Builder::new()
            .name("zerorpc-io".into())
            .spawn(move || io.run())
            .map_err(|e| Error::io("cannot start the I/O thread", e))?;
        *socket
            .shared
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(socket)
    }

    /// A socket of the given kind whose I/O the caller drives, on an
    /// executor for instance: see [`SocketDriver`]. Nothing is sent or
    /// received until the driver turns.
    ///
    /// `blocking` runs the socket's blocking waits for its driver (binding
    /// and connecting wait for the driver to do it): on a thread that also
    /// drives, it must let the driver run elsewhere meanwhile (tokio's
    /// `block_in_place`), or the wait would never end.
    pub fn driven(
        kind: SocketKind,
        config: SocketConfig,
        blocking: Blocking,
    ) -> Result<(Socket, SocketDriver), Error> {
        let (socket, io) = Socket::with_io(kind, config, Some(blocking))?;
        Ok((socket, SocketDriver::new(io)?))
    }

    fn with_io(
        kind: SocketKind,
        config: SocketConfig,
        blocking: Option<Blocking>,
    ) -> Result<(Socket, IoThread), Error> {
        let commands = Arc::new(CommandQueue::new());
        let (wake_tx, wake_rx) =
            UnixStream::pair().map_err(|e| Error::io("cannot create the wake-up pipe", e))?;
        for end in [&wake_tx, &wake_rx] {
            end.set_nonblocking(true)
                .map_err(|e| Error::io("cannot configure the wake-up pipe", e))?;
        }
        let wake = Arc::new(Wake {
            pending: AtomicBool::new(false),
            pipe: wake_tx,
            task: AtomicWaker::new(),
            on_task: AtomicBool::new(blocking.is_some()),
        });
        let counters = Arc::new(Counters::default());
        let incoming = Arc::new(WakeQueue::new());
        let events = Arc::new(WakeQueue::new());
        let unsent = Arc::new(Unsent::default());
        let config = Arc::new(config);
        let shared = Arc::new(SocketShared {
            kind,
            config: config.clone(),
            commands: commands.clone(),
            wake: wake.clone(),
            counters: counters.clone(),
            incoming: incoming.clone(),
            events: events.clone(),
            unsent: unsent.clone(),
            thread: Mutex::new(None),
            blocking,
        });
        let links = IoLinks {
            commands,
            wake_rx,
            wake,
            counters,
            incoming,
            events,
            unsent,
        };
        let io = IoThread::new(kind, config, links)?;
        Ok((Socket { shared }, io))
    }

    /// The kind of this socket.
    pub fn kind(&self) -> SocketKind {
        self.shared.kind
    }

    /// The socket's settings.
    pub fn config(&self) -> &SocketConfig {
        &self.shared.config
    }

    /// Binds to `endpoint` (`tcp://`, `ipc://`, `inproc://`) and returns the
    /// endpoint actually bound (a `tcp://127.0.0.1:*` wildcard gets its port).
    ///
    /// The endpoint gets the socket's default options
    /// ([`SocketConfig::endpoint_options`]).
    pub fn bind(&self, endpoint: &str) -> Result<String, Error> {
        self.bind_with(endpoint, self.config().endpoint_options())
    }

    /// Binds to `endpoint` with options of its own, which apply to the
    /// connections accepted on it; see [`Socket::bind`].
    pub fn bind_with(&self, endpoint: &str, options: EndpointOptions) -> Result<String, Error> {
        self.round_trip(|reply| Command::Bind(endpoint.to_owned(), Box::new(options), reply))
    }

    /// Connects to `endpoint`, at any time. A client socket connected to
    /// several endpoints spreads channels over them, keeping every event of
    /// a channel on the connection it started on.
    ///
    /// The endpoint gets the socket's default options
    /// ([`SocketConfig::endpoint_options`]).
    pub fn connect(&self, endpoint: &str) -> Result<String, Error> {
        self.connect_with(endpoint, self.config().endpoint_options())
    }

    /// Connects to `endpoint` with options of its own (a server's CURVE
    /// key, once there is one, differs per server); see [`Socket::connect`].
    pub fn connect_with(&self, endpoint: &str, options: EndpointOptions) -> Result<String, Error> {
        self.round_trip(|reply| Command::Connect(endpoint.to_owned(), Box::new(options), reply))
    }

    /// Disconnects from `endpoint`, at any time.
    ///
    /// A client (one DEALER per endpoint) opens no new channel to
    /// `endpoint` from now on, and lets the channels in flight on it finish:
    /// its DEALER closes when the last of them ends, or at once if none is
    /// open. Other kinds disconnect their one ZeroMQ socket at once.
    /// An endpoint not connected is an [`ErrorKind::Endpoint`] error.
    ///
    /// ```
    /// use zerorpc_transport::{ErrorKind, OpenOptions, Socket, SocketConfig, SocketKind};
    /// use zerorpc_wire::{Event, Header, Value, names};
    ///
    /// let (a, b) = (
    ///     Socket::new(SocketKind::Server, SocketConfig::new())?,
    ///     Socket::new(SocketKind::Server, SocketConfig::new())?,
    /// );
    /// let a_endpoint = a.bind("inproc://transport-disconnect-doc-a")?;
    /// let b_endpoint = b.bind("inproc://transport-disconnect-doc-b")?;
    /// let client = Socket::new(SocketKind::Client, SocketConfig::new())?;
    /// client.connect(&a_endpoint)?;
    /// client.connect(&b_endpoint)?;
    ///
    /// client.disconnect(&a_endpoint)?;
    /// let error = client.disconnect(&a_endpoint).unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Endpoint);
    ///
    /// futures::executor::block_on(async {
    ///     // Every new channel goes to `b` now.
    ///     let request = Event::new(Header::new(), "ping", Value::Array(vec![]));
    ///     let mut call = client.open(request, OpenOptions::default())?;
    ///     let mut served = b.accept().await?;
    ///     served.recv().await?;
    ///     served.send(Event::new(Header::new(), names::OK, Value::Array(vec![]))).await?;
    ///     assert_eq!(call.recv().await?.name, names::OK);
    ///     Ok::<(), zerorpc_transport::Error>(())
    /// })?;
    /// # Ok::<(), zerorpc_transport::Error>(())
    /// ```
    ///
    /// [`ErrorKind::Endpoint`]: crate::ErrorKind::Endpoint
    pub fn disconnect(&self, endpoint: &str) -> Result<(), Error> {
        self.round_trip(|reply| Command::Disconnect(endpoint.to_owned(), reply))?;
        Ok(())
    }

    /// Unbinds `endpoint`, named as given to [`Socket::bind`] or as it
    /// returned (a wildcard port filled in). An endpoint not bound is an
    /// [`ErrorKind::Endpoint`] error.
    ///
    /// [`ErrorKind::Endpoint`]: crate::ErrorKind::Endpoint
    pub fn unbind(&self, endpoint: &str) -> Result<(), Error> {
        self.round_trip(|reply| Command::Unbind(endpoint.to_owned(), reply))?;
        Ok(())
    }

    fn round_trip(
        &self,
        command: impl FnOnce(mpsc::SyncSender<Result<String, Error>>) -> Command,
    ) -> Result<String, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.shared.command(command(tx));
        let mut answer = None;
        match self.shared.blocking {
            Some(blocking) => blocking(&mut || answer = Some(rx.recv())),
            None => answer = Some(rx.recv()),
        }
        answer.and_then(Result::ok).ok_or_else(Error::closed)?
    }

    /// Opens a channel by sending its first event (a client's request).
    ///
    /// The event's `message_id` becomes the channel id.
    ///
    /// A request larger than the socket's
    /// [`max_message_size`](SocketConfig::max_message_size) is not sent: it
    /// fails with [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge).
    pub fn open(&self, mut request: Event, options: OpenOptions) -> Result<Channel, Error> {
        let id = request.header.message_id.clone();
        request.header.response_to = None;
        let payload = crate::buffers::encode(&request);
        if let Some(limit) = self.shared.config.max_message_size {
            if payload.len() as u64 > limit {
                return Err(Error::too_large(payload.len(), limit));
            }
        }
        let shared = ChannelShared::new();
        // The request uses the implicit initial credit.
        shared.lock().send_credit = 0;
        let config = &self.shared.config;
        let window = match options.window {
            Some(size) => Window::fixed(size, config.window_bytes),
            None => Window::growing(config),
        };
        let channel = Channel::new(id.clone(), shared.clone(), self.shared.clone(), window);
        let shared = PendingChannel::new(shared);
        self.shared.command(Command::Open {
            id,
            shared,
            payload,
            timeout: options.first_reply_timeout,
            observed: self.shared.observed(request),
        });
        Ok(channel)
    }

    /// Waits for the next channel opened by a peer (server sockets). The
    /// first event of the channel is its request.
    pub async fn accept(&self) -> Result<Channel, Error> {
        let (id, shared) = self.shared.incoming.pop().await.ok_or_else(Error::closed)?;
        let config = &self.shared.config;
        Ok(Channel::new(
            id,
            shared,
            self.shared.clone(),
            Window::growing(config),
        ))
    }

    /// Sends a single-frame event (push and publish sockets).
    pub fn emit(&self, event: Event) {
        let payload = crate::buffers::encode(&event);
        self.shared.command(Command::Emit {
            payload,
            observed: self.shared.observed(event),
        });
    }

    /// Receives the next single-frame event (pull and subscribe sockets).
    pub async fn next_event(&self) -> Result<Event, Error> {
        self.shared.events.pop().await.ok_or_else(Error::closed)
    }

    /// The socket's counters.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            received: c.received.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            dropped_malformed: c.dropped_malformed.load(Ordering::Relaxed),
            dropped_unroutable: c.dropped_unroutable.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            dropped_peer_gone: c.dropped_peer_gone.load(Ordering::Relaxed),
            dropped_send_failed: c.dropped_send_failed.load(Ordering::Relaxed),
            late_control: c.late_control.load(Ordering::Relaxed),
            heartbeats_sent: c.heartbeats_sent.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            queued_peak: c.queued_peak.load(Ordering::Relaxed),
            connections_closed: c.connections_closed.load(Ordering::Relaxed),
        }
    }

    /// Closes the socket: pending `accept` and `next_event` calls and every
    /// open channel fail with [`ErrorKind::Closed`](crate::ErrorKind::Closed).
    pub fn close(&self) {
        self.shared.command(Command::Shutdown);
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("kind", &self.shared.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn wake() -> (Wake, UnixStream) {
        let (tx, rx) = UnixStream::pair().unwrap();
        rx.set_nonblocking(true).unwrap();
        let wake = Wake {
            pending: AtomicBool::new(false),
            pipe: tx,
            task: AtomicWaker::new(),
            on_task: AtomicBool::new(false),
        };
        (wake, rx)
    }

    fn woken(wake: &Wake, pipe: &mut UnixStream) -> bool {
        let mut byte = [0u8; 8];
        let wrote = matches!(pipe.read(&mut byte), Ok(n) if n > 0);
        assert_eq!(wrote, wake.pending.swap(false, Ordering::AcqRel));
        wrote
    }

    fn item(id: &MessageId, byte: u8, last: bool) -> Command {
        Command::Send {
            id: id.clone(),
            payloads: smallvec::smallvec![vec![byte]],
            observed: None,
            stream: true,
            last,
        }
    }

    /// What the queue holds: each send's channel and payloads.
    fn queued(queue: &CommandQueue) -> Vec<(MessageId, Vec<Vec<u8>>, bool)> {
        let mut commands = Vec::new();
        queue.take(&mut commands);
        commands
            .into_iter()
            .map(|command| match command {
                Command::Send {
                    id, payloads, last, ..
                } => (id, payloads.into_vec(), last),
                _ => panic!("only sends were queued"),
            })
            .collect()
    }

    #[test]
    fn items_of_one_stream_queued_in_a_row_become_one_send_in_order_up_to_the_last() {
        let (a, b) = (MessageId::generate(), MessageId::generate());
        let queue = CommandQueue::new();
        for command in [
            item(&a, 1, false),
            item(&a, 2, false),
            item(&a, 3, true),
            // After the last: a send of its own (the channel has ended).
            item(&a, 4, false),
            item(&b, 5, false),
            item(&b, 6, false),
            item(&a, 7, false),
        ] {
            assert!(queue.push(command));
        }
        assert_eq!(
            queued(&queue),
            vec![
                (a.clone(), vec![vec![1], vec![2], vec![3]], true),
                (a.clone(), vec![vec![4]], false),
                (b.clone(), vec![vec![5], vec![6]], false),
                (a, vec![vec![7]], false),
            ]
        );
    }

    #[test]
    fn replies_and_observed_events_are_never_gathered() {
        let id = MessageId::generate();
        let queue = CommandQueue::new();
        let reply = |byte: u8| Command::Send {
            id: id.clone(),
            payloads: smallvec::smallvec![vec![byte]],
            observed: None,
            stream: false,
            last: false,
        };
        let observed = Command::Send {
            id: id.clone(),
            payloads: smallvec::smallvec![vec![3]],
            observed: Some(Box::new(Event::new(
                zerorpc_wire::Header::new(),
                "STREAM",
                zerorpc_wire::Value::Nil,
            ))),
            stream: true,
            last: false,
        };
        for command in [reply(1), reply(2), observed, item(&id, 4, false)] {
            assert!(queue.push(command));
        }
        let payloads: Vec<Vec<Vec<u8>>> = queued(&queue).into_iter().map(|q| q.1).collect();
        assert_eq!(
            payloads,
            vec![vec![vec![1]], vec![vec![2]], vec![vec![3]], vec![vec![4]]]
        );
    }

    #[test]
    fn a_command_given_mid_turn_by_its_own_driver_wakes_nobody_and_is_reported_by_the_turn() {
        let (wake, mut pipe) = wake();
        let turning = wake.turning();
        wake.wake();
        assert!(!woken(&wake, &mut pipe));
        assert!(turning.end());
        wake.wake();
        assert!(woken(&wake, &mut pipe));
    }

    #[test]
    fn a_turn_without_commands_reports_none() {
        let (wake, _pipe) = wake();
        assert!(!wake.turning().end());
    }

    #[test]
    fn commands_for_another_driver_mid_turn_wake_it_and_a_nested_turn_restores_the_outer_one() {
        let (outer, mut outer_pipe) = wake();
        let (inner, mut inner_pipe) = wake();
        let outer_turn = outer.turning();
        inner.wake();
        assert!(woken(&inner, &mut inner_pipe));
        let inner_turn = inner.turning();
        inner.wake();
        assert!(!woken(&inner, &mut inner_pipe));
        assert!(inner_turn.end());
        // Back in the outer turn: its own commands are deferred again,
        // and the inner one's did not count for it.
        outer.wake();
        assert!(!woken(&outer, &mut outer_pipe));
        assert!(outer_turn.end());
        inner.wake();
        assert!(woken(&inner, &mut inner_pipe));
    }

    /// Counts its wake-ups.
    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl std::task::Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn stream_items_wait_at_the_unsent_mark_until_half_of_it_is_taken() {
        let unsent = Unsent::default();
        let woken = Arc::new(CountWakes::default());
        let waker = Waker::from(woken.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        for _ in 0..UNSENT_MARK {
            assert!(unsent.poll_reserve(&mut cx).is_ready());
        }
        assert!(unsent.poll_reserve(&mut cx).is_pending(), "at the mark");
        assert!(unsent.poll_reserve(&mut cx).is_pending(), "polled again");
        // Taking less than half leaves the sender waiting.
        unsent.taken(UNSENT_MARK / 2 - 1);
        assert_eq!(woken.0.load(Ordering::SeqCst), 0);
        unsent.taken(1);
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "woken once, registered once"
        );
        assert!(unsent.poll_reserve(&mut cx).is_ready(), "room again");
        // At the mark once more, the end of the I/O thread wakes it too.
        for _ in 0..UNSENT_MARK / 2 - 1 {
            assert!(unsent.poll_reserve(&mut cx).is_ready());
        }
        assert!(unsent.poll_reserve(&mut cx).is_pending());
        unsent.wake_all();
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
    }
}
