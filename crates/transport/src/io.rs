//! The I/O thread: owns the ZeroMQ sockets of one [`Socket`](crate::Socket)
//! and drives its channel core ([`Machine`]): it feeds the machine incoming
//! events, commands and the time, and carries out what the machine decides.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smallvec::SmallVec;
use zerorpc_endpoint::Endpoint;
use zerorpc_wire::{Event, MessageId};

use crate::buffers;
use crate::channel::{ChannelShared, Credit, PeerSlot};
use crate::driver::NotifyFd;
use crate::machine::{
    Accepted, Action, Closed, Dropped, Machine, MachineConfig, SocketId, Transmit,
};
use crate::observe::{
    ChangeKind, ChannelChange, Direction, DropReason, Ending, EventInfo, Peer, RoutingId,
};
use crate::options::{EndpointOptions, apply_endpoint, apply_kind};
use crate::produce::{PRODUCE_BATCH, PRODUCE_BATCH_BYTES, PRODUCE_TURN, Producers};
use crate::respond::Adopted;
use crate::security::ServedWatch;
use crate::socket::{
    Command, CommandQueue, Counters, SocketConfig, SocketKind, Unsent, Wake, WakeQueue, context,
};
use crate::watch::Watch;
use crate::{Error, Observer};

/// How many messages one socket may deliver per loop turn, so that one busy
/// socket cannot starve commands, timers or the other sockets.
const RECV_BATCH: usize = 256;

/// What the driver of a socket may do after a [turn](IoThread::turn).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Turn again at once: a socket had more to deliver.
    Busy,
    /// Wait for a socket, a wake-up or this time.
    Until(Option<Instant>),
}

/// An event ZeroMQ could not take yet, kept to be sent in order.
struct Pending {
    /// The frames before the payload: the envelope and the delimiter.
    head: QueuedHead,
    /// The encoded event, moved here rather than copied.
    payload: Vec<u8>,
    /// The channel it belongs to, to fail when it cannot be delivered.
    channel: Option<MessageId>,
    heartbeat: bool,
}

/// A copy of a queued event's head frames (routing ids, the delimiter),
/// each inline up to the length a [`RoutingId`] keeps inline.
///
/// A server's usual head is a routing id of five bytes and the empty
/// delimiter. Once ZeroMQ's pipe to a peer is full, every event of a fast
/// stream waits here, so a head copied into vectors cost it two
/// allocations and two frees per item.
type QueuedHead = SmallVec<[SmallVec<[u8; RoutingId::INLINE]>; 2]>;

/// A queued event's frames, as they are sent.
fn frames_of(pending: &Pending) -> impl Iterator<Item = &[u8]> {
    let head = pending.head.iter().map(SmallVec::as_slice);
    head.chain([pending.payload.as_slice()])
}

/// What an event counts for in its peer's queue: its frames and the
/// bookkeeping.
fn queued_size<'a>(frames: impl Iterator<Item = &'a [u8]>) -> usize {
    frames.map(<[u8]>::len).sum::<usize>() + PENDING_OVERHEAD
}

/// Events waiting for one peer.
#[derive(Default)]
struct PeerQueue {
    events: VecDeque<Pending>,
    bytes: usize,
    /// Channels told to hold their next event until this queue drains to
    /// half its mark (see [`hold_mark`]).
    held: HashSet<MessageId, foldhash::fast::RandomState>,
}

/// Bytes queued for one peer past which a channel whose event was queued
/// is held: its next `send` waits until the queue drains to half of it.
///
/// Credit bounds each stream, not the sum over a peer's streams; without
/// this, a server producing faster than its client reads filled the queue
/// to its limit (failing calls with `QueueFull`), and heartbeats waited
/// behind megabytes of data past the client's loss timeout. Single
/// replies never wait: a channel is held only for its next event. At
/// most the send queue limit's half, so that holding starts before
/// refusing.
fn hold_mark(limit: usize) -> usize {
    (1 << 20).min(limit / 2)
}

/// Why an event was not delivered.
#[derive(Clone, Copy)]
enum Refusal {
    QueueFull,
    PeerGone,
    Failed(zmq::Error),
}

impl Refusal {
    fn drop_reason(self) -> DropReason {
        match self {
            Refusal::QueueFull => DropReason::QueueFull,
            Refusal::PeerGone => DropReason::PeerGone,
            Refusal::Failed(_) => DropReason::SendFailed,
        }
    }
}

/// What became of an event handed to [`ZmqSocket::send`].
enum Sent {
    Now,
    /// Queued; `hold`: the peer's queue is past its mark, so the channel
    /// the event came from is to hold its next one.
    Queued {
        hold: bool,
    },
    Refused(Refusal),
}

/// Who sends an event, which decides how it may wait for its peer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SendKind {
    /// Made by the I/O thread or answered at once: never held.
    Plain,
    /// A heartbeat: queued even past the limit (one per channel waits).
    Heartbeat,
    /// From a channel's `send`, which waits while its peer's queue is
    /// past the mark. The events of a channel already held (handed over
    /// before the hold took effect, with credit) are never refused for a
    /// full queue: they are in memory already, and the hold stops what
    /// would follow.
    Paced,
    /// From the `send` of a channel that streams (it has sent a `STREAM`
    /// event): paced, and never refused for a full queue, held instead.
    /// When held streams are released together, each may hand over
    /// several events before its next hold takes effect, and a stream
    /// whose first such event found the queue past its limit used to
    /// fail, well-behaved as it was (its client saw `LostRemote` ten
    /// seconds later). What a stream hands over past its hold is bounded
    /// by its credit; single replies, one per call, are what the limit
    /// bounds.
    Streamed,
}

/// Bookkeeping for each event a flush could not deliver, or delivered late.
#[derive(Default)]
struct Flushed {
    /// Whether anything was sent.
    progress: bool,
    /// Channels whose queued heartbeat has now left.
    heartbeats: Vec<MessageId>,
    /// Queued events that were refused, with their channels, sockets and
    /// peers.
    refused: Vec<(Option<MessageId>, Refusal, SocketId, Peer)>,
    /// Held channels whose peer's queue has drained: they may send again.
    released: Vec<MessageId>,
}

/// Bytes counted per queued event on top of its frames: the bookkeeping.
const PENDING_OVERHEAD: usize = 64;

struct ZmqSocket {
    socket: zmq::Socket,
    /// Events ZeroMQ could not take yet (its high-water mark reached), by
    /// peer: a ROUTER's are keyed by routing id, so that one slow peer
    /// never holds back the others; other kinds have one queue under the
    /// empty key. A peer's events always leave in the order they were sent.
    queues: HashMap<Vec<u8>, PeerQueue, foldhash::fast::RandomState>,
    queued: usize,
    /// Payload bytes handed to ZeroMQ so far (see `Trim`).
    sent_bytes: usize,
    /// ROUTER: the first frame of every message names the peer.
    routed: bool,
    /// Whether `ZMQ_EVENTS` says precisely when this socket can take more.
    /// A ROUTER or XPUB reports "writable" when any one peer can take more,
    /// which would spin the loop while one slow peer's events wait: those
    /// are retried on a timer instead.
    precise_pollout: bool,
    /// Where binds go: the one socket of every kind but the client, or
    /// the client's one bound DEALER (its others have one endpoint each).
    bound: bool,
    /// Whom this socket's events go to, when it has a single peer.
    peer: Peer,
    /// The endpoints connected, so that disconnecting an unknown one says
    /// so rather than passing ZeroMQ's bare "No such file or directory".
    connected: Vec<String>,
    /// The endpoints bound: as asked for, and as bound (wildcard ports
    /// filled in), which is the one ZeroMQ unbinds.
    bound_to: Vec<(String, String)>,
    /// A client's connection, watched for libzmq closing it for good.
    watch: Option<Watch>,
    /// A socket that serves (binds, or connects as the server of a
    /// mechanism), watched for the connections libzmq refuses or drops.
    served: Option<ServedWatch>,
    /// Whether a message may wait: its `ZMQ_FD` was readable, or an
    /// operation that processes libzmq's commands (a send, a connect...)
    /// ran, since a receive last found nothing. Only a driven socket's
    /// receives look at it (see [`IoThread::hinted`]).
    input_hint: bool,
}

impl Drop for ZmqSocket {
    fn drop(&mut self) {
        if self.watch.is_some() {
            Watch::stop(&mut self.socket);
        }
    }
}

impl ZmqSocket {
    /// Starts the monitor of a socket that serves, once, and tells it of
    /// the endpoint's options. Best effort: without it, refusals and drops
    /// are neither logged nor counted.
    fn watch_served(&mut self, counters: &Arc<Counters>, options: &EndpointOptions) {
        if self.served.is_none() {
            self.served = ServedWatch::start(&mut self.socket, Arc::clone(counters))
                .inspect_err(|e| tracing::debug!("cannot monitor a serving socket: {e}"))
                .ok();
        }
        if let Some(served) = &self.served {
            served.set_limit(options.max_message_size);
            if let Some(auth) = options.security.authenticator() {
                served.authenticate_with(auth);
            }
        }
    }

    /// Sends `head` (the envelope and delimiter, if any) then `payload`
    /// now, or queues them to send, in order, once ZeroMQ can take more
    /// for that peer: only then is the head copied; the payload is moved.
    fn send(
        &mut self,
        head: Head<'_>,
        payload: Vec<u8>,
        channel: Option<&MessageId>,
        send: SendKind,
        limit: usize,
        counters: &Counters,
    ) -> Sent {
        self.input_hint = true;
        let heartbeat = send == SendKind::Heartbeat;
        let peer: &[u8] = match head.envelope.first() {
            Some(id) if self.routed => id,
            _ => &[],
        };
        let waiting = self.queues.contains_key(peer);
        let payload = if waiting {
            payload
        } else {
            let len = payload.len();
            match buffers::send_event(&mut self.socket, head.frames(), payload, zmq::DONTWAIT) {
                Ok(()) => {
                    Counters::bump(&counters.sent);
                    self.sent_bytes += len;
                    return Sent::Now;
                }
                Err((zmq::Error::EAGAIN, payload)) => payload,
                // ROUTER_MANDATORY: the peer is not connected any more.
                Err((zmq::Error::EHOSTUNREACH, _)) => return Sent::Refused(Refusal::PeerGone),
                Err((e, _)) => return Sent::Refused(Refusal::Failed(e)),
            }
        };
        let size = queued_size(head.frames().chain([&payload[..]]));
        // The key is copied once per peer, not once per event queued.
        if !waiting {
            self.queues.insert(peer.to_vec(), PeerQueue::default());
        }
        let Some(queue) = self.queues.get_mut(peer) else {
            return Sent::Refused(Refusal::QueueFull);
        };
        let mark = hold_mark(limit);
        let paced = matches!(send, SendKind::Paced | SendKind::Streamed);
        // Looked for past the mark only: below it, no channel is held.
        let held = paced
            && queue.bytes + size > mark
            && channel.is_some_and(|channel| queue.held.contains(channel));
        // An empty queue always takes one event, so a single event larger
        // than the limit is not refused while nothing else waits. At most
        // one heartbeat per channel waits, so they are bounded without it.
        let kept = heartbeat || held || send == SendKind::Streamed;
        if !kept && !queue.events.is_empty() && queue.bytes + size > limit {
            return Sent::Refused(Refusal::QueueFull);
        }
        queue.bytes += size;
        queue.events.push_back(Pending {
            head: head.frames().map(SmallVec::from_slice).collect(),
            payload,
            channel: channel.cloned(),
            heartbeat,
        });
        self.queued += 1;
        let hold = paced && !held && queue.bytes > mark;
        if let (true, Some(channel)) = (hold, channel) {
            queue.held.insert(channel.clone());
        }
        Sent::Queued { hold }
    }

    /// Whether the queue toward the peer of `envelope` holds more than its
    /// mark: `channel` is then held as if its event had been queued past
    /// it (see [`hold_mark`]), and released with the others.
    fn holds(&mut self, envelope: &[Vec<u8>], channel: &MessageId, limit: usize) -> bool {
        let peer: &[u8] = match envelope.first() {
            Some(id) if self.routed => id,
            _ => &[],
        };
        let Some(queue) = self.queues.get_mut(peer) else {
            return false;
        };
        if queue.bytes <= hold_mark(limit) {
            return false;
        }
        queue.held.insert(channel.clone());
        true
    }

    /// The peer of an event with these envelope frames on this socket.
    fn peer(&self, envelope: &[Vec<u8>]) -> Peer {
        match envelope.first() {
            Some(id) if self.routed => Peer::RoutingId(id.as_slice().into()),
            _ => self.peer.clone(),
        }
    }

    /// Sends what waits, peer by peer, until ZeroMQ refuses more.
    fn flush(&mut self, index: SocketId, counters: &Counters, limit: usize, out: &mut Flushed) {
        if self.queued == 0 {
            return;
        }
        self.input_hint = true;
        let socket = &mut self.socket;
        let routed = self.routed;
        let single = &self.peer;
        let mut sent = 0;
        let mut sent_bytes = 0;
        self.queues.retain(|_, queue| {
            while let Some(mut pending) = queue.events.pop_front() {
                let size = queued_size(frames_of(&pending));
                let payload = std::mem::take(&mut pending.payload);
                let len = payload.len();
                let head = pending.head.iter().map(SmallVec::as_slice);
                let refusal = match buffers::send_event(socket, head, payload, zmq::DONTWAIT) {
                    Ok(()) => None,
                    Err((zmq::Error::EAGAIN, payload)) => {
                        pending.payload = payload;
                        queue.events.push_front(pending);
                        if queue.bytes <= hold_mark(limit) / 2 {
                            out.released.extend(queue.held.drain());
                        }
                        return true;
                    }
                    Err((zmq::Error::EHOSTUNREACH, _)) => Some(Refusal::PeerGone),
                    Err((e, _)) => Some(Refusal::Failed(e)),
                };
                queue.bytes -= size;
                sent += 1;
                match refusal {
                    None => {
                        Counters::bump(&counters.sent);
                        sent_bytes += len;
                        out.progress = true;
                        if pending.heartbeat {
                            out.heartbeats.extend(pending.channel);
                        }
                    }
                    Some(refusal) => {
                        let peer = match pending.head.first() {
                            Some(id) if routed => Peer::RoutingId(id.as_slice().into()),
                            _ => single.clone(),
                        };
                        out.refused.push((pending.channel, refusal, index, peer));
                    }
                }
            }
            out.released.extend(queue.held.drain());
            false
        });
        self.queued -= sent;
        self.sent_bytes += sent_bytes;
    }
}

/// Gives the memory of a burst back to the system once it is over.
///
/// Large messages leave glibc's heaps holding hundreds of megabytes of
/// free memory after a burst (four clients each taking fifty streams of 64
/// KiB items left an idle server at 340 MiB resident; `malloc_trim` took
/// it to 17 MiB). After [`TRIM_BURST`] bytes have passed, the thread checks
/// every [`TRIM_QUIET`]; once one such interval carried less than
/// [`TRIM_QUIET_BYTES`], it trims. It runs only in processes
/// that called [`tune_malloc`](crate::tune_malloc): trimming is
/// process-wide.
#[derive(Default)]
struct Trim {
    /// Payload bytes received, and sent by sockets since closed (open
    /// sockets count what they sent: `ZmqSocket::sent_bytes`).
    passed: usize,
    /// Traffic when memory was last trimmed.
    trimmed_at: usize,
    /// The next check, once a burst has passed, and the traffic then.
    check_at: Option<Instant>,
    checked_at: usize,
}

/// Traffic after which the thread looks for the quiet to trim in.
const TRIM_BURST: usize = 64 << 20;
/// How long a quiet spell lasts before memory is trimmed.
const TRIM_QUIET: Duration = Duration::from_secs(1);
/// Traffic in one [`TRIM_QUIET`] that still counts as quiet.
const TRIM_QUIET_BYTES: usize = 1 << 20;

impl Trim {
    /// Given the traffic so far, trims if a burst is over; sets the next
    /// check.
    fn check(&mut self, traffic: usize, now: Instant) {
        match self.check_at {
            None if traffic.saturating_sub(self.trimmed_at) >= TRIM_BURST => {
                self.check_at = Some(now + TRIM_QUIET);
                self.checked_at = traffic;
            }
            Some(at) if now >= at => {
                if traffic.saturating_sub(self.checked_at) < TRIM_QUIET_BYTES {
                    crate::malloc::trim();
                    self.trimmed_at = traffic;
                    self.check_at = None;
                } else {
                    self.check_at = Some(now + TRIM_QUIET);
                    self.checked_at = traffic;
                }
            }
            _ => {}
        }
    }
}

/// The frames before an event's payload.
#[derive(Clone, Copy)]
struct Head<'a> {
    /// The envelope: a server's routing frames, else none.
    envelope: &'a [Vec<u8>],
    /// The empty frame that ends the envelope of channel events.
    delimiter: bool,
}

impl<'a> Head<'a> {
    /// A channel event's: the envelope, then the delimiter.
    fn channel(envelope: &'a [Vec<u8>]) -> Self {
        Head {
            envelope,
            delimiter: true,
        }
    }

    fn frames(self) -> impl Iterator<Item = &'a [u8]> {
        let delimiter = self.delimiter.then_some(&[][..]);
        self.envelope.iter().map(Vec::as_slice).chain(delimiter)
    }
}

/// The driver of a socket's [`Machine`]: ZeroMQ, send queues, the command
/// queue and the channel handles of the application.
pub(crate) struct IoThread {
    kind: SocketKind,
    config: Arc<SocketConfig>,
    commands: Arc<CommandQueue>,
    /// The commands being handled, taken from `commands` at once; kept
    /// from turn to turn so that a turn allocates nothing.
    handling: Vec<Command>,
    wake_rx: UnixStream,
    /// Whether the last poll saw a wake-up byte in the pipe.
    pipe_readable: bool,
    wake: Arc<Wake>,
    counters: Arc<Counters>,
    incoming: Arc<WakeQueue<(MessageId, Arc<ChannelShared>)>>,
    events: Arc<WakeQueue<Event>>,
    /// Keyed like the machine's sockets, by ids that never renumber.
    sockets: BTreeMap<SocketId, ZmqSocket>,
    /// Scratch space for the ids of `sockets`, reused every loop turn.
    socket_ids: Vec<SocketId>,
    /// The channels, each with the application's end of it.
    machine: Machine<Arc<ChannelShared>>,
    /// Where the message being handled came from, for the observers of
    /// what the machine decides about it.
    receiving: Option<(SocketId, Peer, Option<MessageId>)>,
    /// The frames before the payload of the message being received, kept
    /// from message to message so that a reply, whose frames nobody keeps,
    /// allocates none (a channel a request opens takes them).
    frames: Vec<Vec<u8>>,
    /// When to give memory back to the system after a burst.
    trim: Trim,
    /// The time the current turn began: what the channels it opens and
    /// the events it receives are stamped with. One clock read per turn
    /// rather than one per call and one per reply: a read costs some 25 ns
    /// on the virtual machines we measure on, and a busy client's turn
    /// handles dozens of calls.
    turn_began: Instant,
    running: bool,
    /// How long to wait before retrying queued events on sockets whose
    /// `ZMQ_EVENTS` cannot say when a slow peer can take more.
    retry: Duration,
    /// Whether the driver is told which sockets' `ZMQ_FD` were readable
    /// ([`IoThread::mark_readable`]), so that a turn reads only those that
    /// may have news: a receive or a monitor read that finds nothing
    /// costs libzmq a `poll` system call, several per turn. Set for the
    /// I/O thread too, which waits on the same descriptors (see
    /// [`IoThread::run`]).
    hinted: bool,
    /// Changed whenever a socket or a monitor comes or goes: see
    /// [`notify_fds`](Self::notify_fds).
    notify_fds_version: u64,
    /// The counters of events refused since the last
    /// [`run_actions`](Self::run_actions), bumped at its end: once the
    /// channels they failed are closed, so that whoever reads a count sees
    /// the calls it counts failed too.
    uncounted: Vec<fn(&Counters) -> &AtomicU64>,
    /// Streams made on this thread (see [`Adopted::stream`]).
    producers: Producers,
    /// The stream items handed to this thread and not taken yet.
    unsent: Arc<Unsent>,
}

/// Bounds of [`IoThread::retry`]: short while queues drain, longer while a
/// peer reads nothing, so that a stuck peer costs little CPU.
const RETRY_MIN: Duration = Duration::from_millis(1);
const RETRY_MAX: Duration = Duration::from_millis(16);

/// What the I/O thread shares with the handles of its socket.
pub(crate) struct IoLinks {
    pub(crate) commands: Arc<CommandQueue>,
    pub(crate) wake_rx: UnixStream,
    pub(crate) wake: Arc<Wake>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) incoming: Arc<WakeQueue<(MessageId, Arc<ChannelShared>)>>,
    pub(crate) events: Arc<WakeQueue<Event>>,
    pub(crate) unsent: Arc<Unsent>,
}

impl IoThread {
    pub(crate) fn new(
        kind: SocketKind,
        config: Arc<SocketConfig>,
        links: IoLinks,
    ) -> Result<Self, Error> {
        let IoLinks {
            commands,
            wake_rx,
            wake,
            counters,
            incoming,
            events,
            unsent,
        } = links;
        let machine = Machine::new(MachineConfig {
            heartbeat: config.heartbeat,
            passive_heartbeat: config.passive_heartbeat,
            accepts: kind == SocketKind::Server,
        });
        let mut io = IoThread {
            kind,
            config,
            commands,
            handling: Vec::new(),
            wake_rx,
            pipe_readable: true,
            wake,
            counters,
            incoming,
            events,
            sockets: BTreeMap::new(),
            socket_ids: Vec::new(),
            machine,
            receiving: None,
            frames: Vec::new(),
            trim: Trim::default(),
            turn_began: Instant::now(),
            running: true,
            retry: RETRY_MIN,
            hinted: false,
            notify_fds_version: 0,
            uncounted: Vec::new(),
            producers: Producers::default(),
            unsent,
        };
        // Every kind but the client uses exactly one ZeroMQ socket.
        if kind != SocketKind::Client {
            io.shared_socket()?;
        }
        Ok(io)
    }

    fn add_socket(&mut self, bound: bool) -> Result<SocketId, Error> {
        let zmq_kind = match self.kind {
            SocketKind::Client => zmq::DEALER,
            SocketKind::Server => zmq::ROUTER,
            SocketKind::Push => zmq::PUSH,
            SocketKind::Pull => zmq::PULL,
            // An XPUB, so that a subscriber that cannot keep up holds events
            // back (XPUB_NODROP) instead of losing them silently.
            SocketKind::Publish => zmq::XPUB,
            SocketKind::Subscribe => zmq::SUB,
        };
        let mut socket = context()
            .socket(zmq_kind)
            .map_err(|e| Error::zmq("cannot create socket", e))?;
        apply_kind(&mut socket, self.kind)?;
        let routed = self.kind == SocketKind::Server;
        let id = self.machine.add_socket();
        self.notify_fds_version += 1;
        self.sockets.insert(
            id,
            ZmqSocket {
                socket,
                queues: HashMap::default(),
                queued: 0,
                sent_bytes: 0,
                routed,
                precise_pollout: !matches!(self.kind, SocketKind::Server | SocketKind::Publish),
                bound,
                connected: Vec::new(),
                bound_to: Vec::new(),
                peer: Peer::Unknown,
                watch: None,
                served: None,
                input_hint: true,
            },
        );
        Ok(id)
    }

    /// The one ZeroMQ socket of every kind but the client, or the client's
    /// bound DEALER (made on demand).
    fn shared_socket(&mut self) -> Result<SocketId, Error> {
        let existing = self
            .sockets
            .iter()
            .find(|(_, s)| self.kind != SocketKind::Client || s.bound)
            .map(|(&id, _)| id);
        match existing {
            Some(id) => Ok(id),
            None => self.add_socket(true),
        }
    }

    /// Closes a socket no channel uses any more. What still waits in its
    /// queues belonged to channels that have ended.
    fn close_socket(&mut self, id: SocketId) {
        if let Some(mut socket) = self.sockets.remove(&id) {
            self.notify_fds_version += 1;
            self.trim.passed += socket.sent_bytes;
            let held: Vec<MessageId> = socket
                .queues
                .values_mut()
                .flat_map(|queue| queue.held.drain())
                .collect();
            self.release(&held);
            self.count_queued();
        }
    }

    /// Lets held channels send again (those still open).
    fn release(&self, channels: &[MessageId]) {
        for id in channels {
            if let Some(channel) = self.machine.handle(id) {
                channel.release();
            }
        }
    }

    /// Carries out what the machine decided, until it has nothing more.
    fn run_actions(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            match action {
                Action::Transmit(transmit) => self.transmit(transmit),
                Action::Accepted(Accepted {
                    id,
                    handle,
                    socket,
                    first,
                }) => {
                    // The handle keeps its peer from its making (see
                    // `receive_event`).
                    if self.observing() {
                        let accepted = || ChangeKind::Accepted;
                        match handle.peer() {
                            Some(peer) => self.observe_change(accepted, Some(&id), socket, peer),
                            None => {
                                let peer = self.peer_of(socket, Some(&id));
                                self.observe_change(accepted, Some(&id), socket, &peer);
                            }
                        }
                    }
                    match first {
                        Some(request) => {
                            if let Some((id, handle, request)) = self.adopt(id, handle, request) {
                                handle.deliver(request);
                                self.incoming.push((id, handle));
                            }
                        }
                        None => self.incoming.push((id, handle)),
                    }
                }
                Action::Deliver(_, handle, event) => handle.deliver(event),
                Action::Credit(_, handle, n) => handle.add_credit(n),
                Action::Close(Closed {
                    id,
                    handle,
                    socket,
                    envelope,
                    error,
                }) => {
                    if self.observing() {
                        let peer = self.peer(socket, &envelope);
                        let ending = || ChangeKind::Closed(Ending::of(&error), error.clone());
                        self.observe_change(ending, Some(&id), socket, &peer);
                    }
                    handle.close(error);
                }
                Action::Dropped(reason) => {
                    let (counter, why) = match reason {
                        Dropped::Unroutable => {
                            (&self.counters.dropped_unroutable, DropReason::Unroutable)
                        }
                        Dropped::LateControl => {
                            (&self.counters.late_control, DropReason::LateControl)
                        }
                        Dropped::MalformedEnvelope => {
                            (&self.counters.dropped_malformed, DropReason::Malformed)
                        }
                    };
                    Counters::bump(counter);
                    // Only an incoming message makes the machine drop one.
                    if let Some((socket, peer, channel)) = self.receiving.clone() {
                        let why = || ChangeKind::Dropped(why);
                        self.observe_change(why, channel.as_ref(), socket, &peer);
                    }
                }
                Action::Released(socket) => self.close_socket(socket),
            }
        }
        for counter in self.uncounted.drain(..) {
            Counters::bump(counter(&self.counters));
        }
    }

    /// What the socket's [`Responder`](crate::Responder) answers to
    /// `request`, if it has one and it answers.
    fn respond(&self, request: &mut Event, peer: Option<PeerSlot>) -> Option<Event> {
        let responder = self.config.responder.as_ref()?;
        let respond = || match peer {
            Some(peer) => responder.respond_from(request, peer),
            None => responder.respond(request),
        };
        match std::panic::catch_unwind(AssertUnwindSafe(respond)) {
            Ok(reply) => reply,
            Err(_) => {
                tracing::warn!("a responder panicked; the call goes to the application");
                None
            }
        }
    }

    /// Sends the reply a responder made to the request `id` that came on
    /// `socket` after `envelope`; the call ends there.
    fn answer(&mut self, socket: SocketId, envelope: &[Vec<u8>], id: MessageId, mut reply: Event) {
        reply.header.response_to = Some(id.clone());
        let payload = crate::buffers::encode(&reply);
        let Some(zmq_socket) = self.sockets.get_mut(&socket) else {
            return;
        };
        let sent = zmq_socket.send(
            Head::channel(envelope),
            payload,
            Some(&id),
            SendKind::Plain,
            self.config.send_queue_limit,
            &self.counters,
        );
        let delivered = !matches!(sent, Sent::Refused(_));
        if delivered && self.observing() {
            self.observe_sent(socket, envelope, Some(&id), Some(reply));
        }
        self.settle(socket, Some(&id), sent);
        if delivered && self.observing() {
            let peer = self.peer(socket, envelope);
            let ending = || ChangeKind::Closed(Ending::Closed, Error::closed());
            self.observe_change(ending, Some(&id), socket, &peer);
        }
    }

    /// Sends encoded events of the application, `payloads` in order, on
    /// the route of channel `id`, looked up once; `observed`
    /// is the event of a single payload, for the observers (gathered
    /// payloads have none).
    fn send_on(
        &mut self,
        id: &MessageId,
        payloads: impl IntoIterator<Item = Vec<u8>>,
        observed: Option<Box<Event>>,
        stream: bool,
    ) {
        let route = self.machine.route(id);
        let Some((route, zmq_socket)) =
            route.and_then(|r| Some((r, self.sockets.get_mut(&r.socket)?)))
        else {
            return;
        };
        let socket = route.socket;
        let kind = if stream {
            SendKind::Streamed
        } else {
            SendKind::Paced
        };
        let mut outcome = Sent::Now;
        let mut queued = false;
        for payload in payloads {
            let head = Head::channel(route.envelope);
            let limit = self.config.send_queue_limit;
            match zmq_socket.send(head, payload, Some(id), kind, limit, &self.counters) {
                Sent::Now => {}
                Sent::Queued { hold } => {
                    queued = true;
                    if let (true, Some(channel)) = (hold, self.machine.handle(id)) {
                        channel.hold();
                    }
                }
                // The channel fails: what follows would be refused too.
                refused @ Sent::Refused(_) => {
                    outcome = refused;
                    break;
                }
            }
        }
        if !matches!(outcome, Sent::Refused(_)) && observed.is_some() {
            let envelope = route.envelope.to_vec();
            self.observe_sent(socket, &envelope, Some(id), observed.map(|e| *e));
        }
        if queued {
            self.count_queued();
        }
        self.settle(socket, Some(id), outcome);
    }

    fn transmit(&mut self, transmit: Transmit) {
        let Transmit {
            socket,
            envelope,
            channel,
            event,
            heartbeat,
        } = transmit;
        let payload = crate::buffers::encode(&event);
        let Some(zmq_socket) = self.sockets.get_mut(&socket) else {
            return;
        };
        let sent = zmq_socket.send(
            Head::channel(&envelope),
            payload,
            Some(&channel),
            if heartbeat {
                SendKind::Heartbeat
            } else {
                SendKind::Plain
            },
            self.config.send_queue_limit,
            &self.counters,
        );
        if heartbeat && !matches!(sent, Sent::Refused(_)) {
            Counters::bump(&self.counters.heartbeats_sent);
        }
        if heartbeat && matches!(sent, Sent::Queued { .. }) {
            self.machine.heartbeat_queued(&channel);
        }
        if !matches!(sent, Sent::Refused(_)) {
            self.observe_sent(socket, &envelope, Some(&channel), Some(event));
        }
        self.settle(socket, Some(&channel), sent);
    }

    /// Tells the observers that `event` left on `socket`, if they want it.
    fn observe_sent(
        &self,
        socket: SocketId,
        envelope: &[Vec<u8>],
        channel: Option<&MessageId>,
        event: Option<Event>,
    ) {
        let Some(event) = event.filter(|_| self.observing()) else {
            return;
        };
        let info = EventInfo {
            control: is_control(&event),
            event,
            direction: Direction::Sent,
            channel: channel.cloned(),
            peer: self.peer(socket, envelope),
            socket: self.kind,
            socket_id: socket.get(),
        };
        self.notify(|observer| observer.on_event(&info));
    }

    /// Tells the observers of a channel change; `change` is only made
    /// when someone is listening.
    fn observe_change(
        &self,
        change: impl FnOnce() -> ChangeKind,
        channel: Option<&MessageId>,
        socket: SocketId,
        peer: &Peer,
    ) {
        if !self.observing() {
            return;
        }
        let change = ChannelChange {
            change: change(),
            channel: channel.cloned(),
            peer: peer.clone(),
            socket: self.kind,
            socket_id: socket.get(),
        };
        self.notify(|observer| observer.on_channel(&change));
    }

    fn observing(&self) -> bool {
        !self.config.observers.is_empty()
    }

    /// Calls every observer. A panicking observer must not take the I/O
    /// thread, and with it every channel's heartbeats, down with it.
    fn notify(&self, call: impl Fn(&dyn Observer)) {
        for observer in &self.config.observers {
            let called = std::panic::catch_unwind(AssertUnwindSafe(|| call(observer.as_ref())));
            if called.is_err() {
                tracing::warn!("an observer panicked; the socket carries on");
            }
        }
    }

    /// Whether anyone wants to know peers: observers, or callers that
    /// keep them on channels ([`SocketConfig::channel_peers`]).
    fn wants_peers(&self) -> bool {
        self.observing() || self.config.channel_peers
    }

    /// The peer of a channel on `socket` with this envelope, for the
    /// observers and the channels that keep it: not worked out when
    /// nobody wants it.
    fn peer(&self, socket: SocketId, envelope: &[Vec<u8>]) -> Peer {
        if !self.wants_peers() {
            return Peer::Unknown;
        }
        socket_peer(&self.sockets, socket, envelope)
    }

    /// The peer of channel `id` (or of `socket` for events of no channel).
    fn peer_of(&self, socket: SocketId, id: Option<&MessageId>) -> Peer {
        match id.and_then(|id| self.machine.route(id)) {
            Some(route) => self.peer(route.socket, route.envelope),
            None => self.peer(socket, &[]),
        }
    }

    /// Accounts for what [`ZmqSocket::send`] did with an event of
    /// `channel`: an event that cannot be delivered fails its channel and
    /// is counted.
    fn settle(&mut self, socket: SocketId, channel: Option<&MessageId>, sent: Sent) {
        match sent {
            Sent::Now => {}
            Sent::Queued { .. } => self.count_queued(),
            Sent::Refused(refusal) => {
                let peer = self.peer_of(socket, channel);
                self.refused(channel, refusal, socket, &peer);
            }
        }
    }

    /// Counts an undeliverable event and fails its channel with the reason.
    fn refused(
        &mut self,
        channel: Option<&MessageId>,
        refusal: Refusal,
        socket: SocketId,
        peer: &Peer,
    ) {
        let why = || ChangeKind::Dropped(refusal.drop_reason());
        self.observe_change(why, channel, socket, peer);
        let (counter, error): (fn(&Counters) -> &AtomicU64, _) = match refusal {
            Refusal::QueueFull => (
                |c| &c.dropped_queue_full,
                Error::queue_full(self.config.send_queue_limit),
            ),
            Refusal::PeerGone => (|c| &c.dropped_peer_gone, Error::peer_gone()),
            Refusal::Failed(e) => (|c| &c.dropped_send_failed, Error::zmq("cannot send", e)),
        };
        tracing::debug!(%error, "event not delivered");
        if let Some(channel) = channel {
            self.machine.fail(channel, error);
        }
        // Counted once the failure is delivered (see `uncounted`): every
        // caller runs the machine's actions after this.
        self.uncounted.push(counter);
    }

    fn count_queued(&self) {
        let queued: usize = self.sockets.values().map(|s| s.queued).sum();
        self.counters.set_queued(queued as u64);
    }

    /// Sends what waits in the send queues, as far as ZeroMQ takes it.
    fn flush(&mut self) {
        let mut flushed = Flushed::default();
        let mut waiting = false;
        let limit = self.config.send_queue_limit;
        for (&index, socket) in self.sockets.iter_mut() {
            if socket.queued > 0 {
                socket.flush(index, &self.counters, limit, &mut flushed);
                waiting |= socket.queued > 0;
            }
        }
        if !flushed.progress && flushed.refused.is_empty() && !waiting {
            return;
        }
        for channel in &flushed.heartbeats {
            self.machine.heartbeat_flushed(channel);
        }
        self.release(&flushed.released);
        for (channel, refusal, socket, peer) in flushed.refused {
            self.refused(channel.as_ref(), refusal, socket, &peer);
        }
        self.retry = if flushed.progress {
            RETRY_MIN
        } else {
            (self.retry * 2).min(RETRY_MAX)
        };
        self.count_queued();
        self.run_actions();
    }

    /// How the socket's handles wake its driver.
    pub(crate) fn wake(&self) -> &Arc<Wake> {
        &self.wake
    }

    /// Drives the socket on the calling thread until it shuts down.
    ///
    /// The thread waits as a driving task does: in `poll` on the wake-up
    /// pipe and the sockets' and monitors' `ZMQ_FD`s, told which were
    /// readable ([`hinted`](Self::hinted)), and asking libzmq before it
    /// waits only what `ZMQ_FD` may no longer say ([`ready_now`]). `zmq_poll`
    /// cost two `poll` system calls more per wait (a first pass that never
    /// waits, and `ZMQ_EVENTS` of each socket before and after it).
    ///
    /// [`ready_now`]: Self::ready_now
    pub(crate) fn run(mut self) {
        self.wake.on_task.store(false, Ordering::SeqCst);
        // Taken over from a task, perhaps, whose hints this thread never
        // saw: anything may wait, read everything once.
        self.set_hinted();
        for s in self.sockets.values_mut() {
            s.input_hint = true;
            if let Some(watch) = &mut s.watch {
                watch.hint();
            }
        }
        let mut waiting = Vec::new();
        let mut waiting_for = None;
        while let Some(wait) = self.turn() {
            let timeout = match wait {
                Wait::Busy => 0,
                _ if self.ready_now() => 0,
                Wait::Until(None) => -1,
                // Round up so a timer is never polled for just before it is due.
                Wait::Until(Some(at)) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
                }
            };
            if waiting_for != Some(self.notify_fds_version) {
                waiting.clear();
                waiting.push(NotifyFd {
                    key: 0,
                    fd: self.wake_rx.as_raw_fd(),
                });
                self.notify_fds(&mut waiting);
                waiting_for = Some(self.notify_fds_version);
            }
            self.poll(timeout, &waiting);
        }
        self.finish();
    }

    /// One turn of the loop: commands, sends, receives, timers. Says how
    /// long the driver may then wait for a socket or a wake-up, or `None`
    /// once the socket is shut down (then [`finish`](Self::finish) it).
    pub(crate) fn turn(&mut self) -> Option<Wait> {
        if !self.wake.on_task.load(Ordering::Relaxed) && self.pipe_readable {
            // Only when the last poll saw a byte: a byte written since is
            // drained at the next turn, which it wakes at once.
            // Drain before clearing the flag: a sender that sees it clear
            // writes a wake-up byte after this drain, which then wakes the
            // poll below even if its command arrives after the loop that
            // follows. Clearing first would let such a byte be drained
            // with the flag set, and a later command wait for no wake-up.
            // A driving task is woken without the pipe.
            let mut drain = [0u8; 64];
            while matches!(self.wake_rx.read(&mut drain), Ok(n) if n > 0) {}
        }
        self.turn_began = Instant::now();
        // A swap, not a store: acquiring the senders' flag makes their
        // commands visible to the loop below.
        self.wake.pending.swap(false, Ordering::AcqRel);
        self.handle_commands();
        if !self.running {
            return None;
        }
        self.produce_ready();
        self.flush();
        let mut busy = false;
        // Ids first: receiving can close a socket (its last channel
        // ended), which the loop must then skip. The list is kept from
        // turn to turn so that a turn allocates nothing.
        let mut ids = std::mem::take(&mut self.socket_ids);
        ids.clear();
        ids.extend(self.sockets.keys().copied());
        let turning = self.wake.turning();
        for &id in &ids {
            busy |= self.receive(id);
        }
        self.socket_ids = ids;
        if turning.end() {
            // Replies made while reading (adopted calls answered at once)
            // leave in this turn, with no wake-up of their own.
            self.handle_commands();
            if !self.running {
                return None;
            }
            self.produce_ready();
            self.flush();
        }
        self.reconnect_closed();
        let now = Instant::now();
        self.machine.handle_timeout(now);
        self.run_actions();
        if crate::malloc::trims_after_bursts() {
            let sent = self.sockets.values().map(|s| s.sent_bytes).sum::<usize>();
            self.trim.check(self.trim.passed + sent, now);
        }
        // A producer with more to make goes on at the next turn.
        if busy || !self.producers.ready.is_empty() {
            return Some(Wait::Busy);
        }
        let retry = self
            .sockets
            .values()
            .any(|s| s.queued > 0 && !s.precise_pollout)
            .then(|| now + self.retry);
        let watch = self
            .sockets
            .values()
            .filter_map(|s| s.watch.as_ref()?.deadline())
            .min();
        let until = self
            .machine
            .next_deadline()
            .into_iter()
            .chain(retry)
            .chain(watch)
            .chain(self.trim.check_at)
            .min();
        Some(Wait::Until(until))
    }

    /// Whether the send queue toward channel `id`'s peer is past its mark,
    /// which then holds the channel.
    fn queue_past_mark(&mut self, id: &MessageId) -> bool {
        let limit = self.config.send_queue_limit;
        let Some(route) = self.machine.route(id) else {
            return false;
        };
        let Some(socket) = self.sockets.get_mut(&route.socket) else {
            return false;
        };
        socket.holds(route.envelope, id, limit)
    }

    /// Polls the producers that are ready (woken, started, or with more to
    /// make after their last batch), in turn, until this turn has made
    /// [`PRODUCE_TURN`] events: the others wait for the next turn, after
    /// the sockets were read and the timers seen to.
    fn produce_ready(&mut self) {
        let mut made = 0;
        while made < PRODUCE_TURN {
            let Some(id) = self.producers.ready.pop_front() else {
                break;
            };
            made += self.produce(&id);
        }
    }

    /// Makes and sends the events of channel `id`'s producer that its
    /// credit allows, a batch at most; then leaves it to be woken (for
    /// credit, or by its own events), or ready to go on. Says how many it
    /// made.
    fn produce(&mut self, id: &MessageId) -> usize {
        let Some(mut running) = self.producers.take(id) else {
            return 0;
        };
        // Checked before each batch, not only as its events are queued: a
        // thousand producers would each queue a batch past the mark.
        if self.queue_past_mark(id) {
            running.shared.hold();
        }
        let observing = self.observing();
        let mut payloads: SmallVec<[Vec<u8>; 8]> = SmallVec::new();
        let mut bytes = 0;
        let mut made = 0;
        let mut last = false;
        let mut failed = false;
        let mut cx = std::task::Context::from_waker(&running.waker);
        while made < PRODUCE_BATCH && bytes < PRODUCE_BATCH_BYTES {
            match running.shared.take_credit(&running.waker) {
                Credit::Taken => {}
                Credit::Wait => break,
                // Its client is lost, or the socket closes: the
                // producer is dropped unheard.
                Credit::Closed(_) => return made,
            }
            let producer = &mut running.producer;
            let polled =
                std::panic::catch_unwind(AssertUnwindSafe(|| producer.poll_event(&mut cx)));
            let mut event = match polled {
                Ok(std::task::Poll::Ready(event)) => event,
                Ok(std::task::Poll::Pending) => {
                    running.shared.return_credit();
                    break;
                }
                Err(_) => {
                    tracing::warn!("a stream's producer panicked; its call is closed");
                    running.shared.return_credit();
                    failed = true;
                    break;
                }
            };
            made += 1;
            last = event.name != zerorpc_wire::names::STREAM;
            crate::channel::address(&mut event, id, &mut running.streaming, true);
            let payload = buffers::encode(&event);
            if observing {
                self.send_on(id, [payload], Some(Box::new(event)), running.streaming);
            } else {
                bytes += payload.len();
                payloads.push(payload);
            }
            if last {
                break;
            }
        }
        if !payloads.is_empty() {
            self.send_on(id, payloads, None, running.streaming);
        }
        if last || failed {
            self.machine.close(id);
            return made;
        }
        if made == PRODUCE_BATCH || bytes >= PRODUCE_BATCH_BYTES {
            self.producers.ready.push_back(id.clone());
        }
        self.producers.put_back(id.clone(), running);
        made
    }

    fn handle_commands(&mut self) {
        let mut handling = std::mem::take(&mut self.handling);
        self.commands.take(&mut handling);
        for command in handling.drain(..) {
            self.handle(command);
        }
        self.handling = handling;
    }

    /// Ends a socket that was shut down: what comes later is refused.
    pub(crate) fn finish(mut self) {
        // Commands that came after the last turn are refused, as every
        // later one will be: dropping them fails the channels they carry.
        drop(self.commands.close());
        self.machine.fail_all(&Error::closed());
        self.run_actions();
        // Senders waiting for this thread to take stream items it never
        // will: they find their channels closed.
        self.unsent.wake_all();
        self.incoming.close();
        self.events.close();
    }

    /// The file descriptors a driving task waits on besides its timer and
    /// wake-up: each ZeroMQ socket's and each monitor's `ZMQ_FD`, which
    /// signal that libzmq has news for the socket (not that a message
    /// waits: see [`ready_now`](Self::ready_now)).
    /// Each comes with a key naming what it belongs to, which outlives a
    /// descriptor's number: `4 * id + 1` for socket `id`, `+ 2` for its
    /// monitor.
    pub(crate) fn notify_fds(&self, fds: &mut Vec<NotifyFd>) {
        // Every change to what this gives bumps `notify_fds_version`.
        for (&id, s) in &self.sockets {
            let key = id.get() << 2;
            if let Ok(fd) = s.socket.get_fd() {
                fds.push(NotifyFd { key: key | 1, fd });
            }
            if let Some(watch) = &s.watch {
                if let Ok(fd) = watch.notify_fd() {
                    fds.push(NotifyFd { key: key | 2, fd });
                }
            }
        }
    }

    /// See [`SocketDriver::notify_fds_version`](crate::SocketDriver::notify_fds_version).
    pub(crate) fn notify_fds_version(&self) -> u64 {
        self.notify_fds_version
    }

    /// Whether a socket can do what a turn would do now, which `ZMQ_FD`
    /// may no longer say: a send processes libzmq's news too, including
    /// that messages arrived. Checked before a driving task waits.
    pub(crate) fn ready_now(&mut self) -> bool {
        let hinted = self.hinted;
        self.sockets.values_mut().any(|s| {
            let sends_wait = s.queued > 0 && s.precise_pollout;
            // A receive found nothing since libzmq last processed its
            // commands: only news can change that, and news makes the
            // descriptor readable. Sends that wait need asking, and the
            // question processes libzmq's commands too: its answer about
            // reading counts, and the next turn must then read.
            let socket = (sends_wait || !hinted || s.input_hint)
                && s.socket.get_events().is_ok_and(|events| {
                    let readable = events.contains(zmq::POLLIN);
                    s.input_hint |= readable;
                    readable || (sends_wait && events.contains(zmq::POLLOUT))
                });
            socket || s.watch.as_ref().is_some_and(|watch| watch.readable(hinted))
        })
    }

    /// Tells a driven socket that the `ZMQ_FD` of `key` (see
    /// [`notify_fds`](Self::notify_fds)) was readable: libzmq has news for
    /// it, which the next turn reads.
    pub(crate) fn mark_readable(&mut self, key: u64) {
        let found = self.sockets.iter_mut().find(|(id, _)| id.get() == key >> 2);
        let Some((_, s)) = found else { return };
        if key & 2 == 0 {
            s.input_hint = true;
        } else if let Some(watch) = &mut s.watch {
            watch.hint();
        }
    }

    /// Makes this a driven socket's state: see [`IoThread::hinted`].
    pub(crate) fn set_hinted(&mut self) {
        self.hinted = true;
    }

    /// Waits up to `timeout` ms (-1: for ever) for any of `waiting`: the
    /// wake-up pipe first, then the sockets' and monitors' `ZMQ_FD` (see
    /// [`notify_fds`](Self::notify_fds)), and marks what was readable.
    fn poll(&mut self, timeout: i32, waiting: &[NotifyFd]) {
        let mut fds: SmallVec<[libc::pollfd; 4]> = waiting
            .iter()
            .map(|notify| libc::pollfd {
                fd: notify.fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `fds` is a valid array of `count` pollfd structures,
        // alive for the call.
        let polled = unsafe { libc::poll(fds.as_mut_ptr(), count, timeout) };
        if polled < 0 {
            let error = std::io::Error::last_os_error();
            self.pipe_readable = true;
            if error.kind() != std::io::ErrorKind::Interrupted {
                tracing::warn!("poll failed: {error}");
                std::thread::sleep(Duration::from_millis(1));
            }
            return;
        }
        self.pipe_readable = fds[0].revents != 0;
        for (notify, fd) in waiting.iter().zip(&fds).skip(1) {
            if fd.revents != 0 {
                self.mark_readable(notify.key);
            }
        }
    }

    /// Connects again the client connections libzmq closed for good (see
    /// [`Watch`]), counting each and logging the first.
    fn reconnect_closed(&mut self) {
        // The turn's clock: a grace period of its own needs no fresher one.
        let now = self.turn_began;
        let hinted = self.hinted;
        for s in self.sockets.values_mut() {
            let Some(watch) = &mut s.watch else { continue };
            if !watch.closed_for_good(now, hinted) {
                continue;
            }
            let first = self
                .counters
                .connections_closed
                .fetch_add(1, Ordering::Relaxed)
                == 0;
            for endpoint in &s.connected {
                if first {
                    let limit = self
                        .config
                        .max_message_size
                        .map_or_else(|| "none".to_owned(), |n| format!("{n} bytes"));
                    tracing::warn!(
                        "ZeroMQ closed the connection to {endpoint} after a protocol error: a message over the size limit ({limit}) or a malformed frame; reconnecting (further such closings are counted in the socket's stats, not logged)"
                    );
                }
                // Errors leave the endpoint as libzmq left it: closed.
                let _ = s.socket.disconnect(endpoint);
                if let Err(e) = s.socket.connect(endpoint) {
                    tracing::warn!("cannot reconnect to {endpoint}: {e}");
                }
            }
        }
    }

    fn handle(&mut self, command: Command) {
        if matches!(
            command,
            Command::Bind(..)
                | Command::Connect(..)
                | Command::Disconnect(..)
                | Command::Unbind(..)
        ) {
            // libzmq processes a socket's commands as it binds or connects.
            for s in self.sockets.values_mut() {
                s.input_hint = true;
                if let Some(watch) = &mut s.watch {
                    watch.hint();
                }
            }
        }
        match command {
            Command::Bind(endpoint, options, reply) => {
                let _ = reply.send(self.bind(&endpoint, &options));
            }
            Command::Connect(endpoint, options, reply) => {
                let _ = reply.send(self.connect(&endpoint, &options));
            }
            Command::Disconnect(endpoint, reply) => {
                let _ = reply.send(self.disconnect(&endpoint));
            }
            Command::Unbind(endpoint, reply) => {
                let _ = reply.send(self.unbind(&endpoint));
            }
            Command::Open {
                id,
                shared,
                payload,
                timeout,
                observed,
            } => {
                if let Some(shared) = shared.take() {
                    self.open(id, shared, payload, timeout, observed);
                }
            }
            Command::Send {
                id,
                payloads,
                observed,
                stream,
                last,
            } => {
                if stream {
                    // Each a stream item but the last (see `Channel::send`).
                    let items = payloads.len() - usize::from(last);
                    if items > 0 {
                        self.unsent.taken(items);
                    }
                }
                self.send_on(&id, payloads, observed, stream);
                if last {
                    self.machine.close(&id);
                }
            }
            Command::Grant { id, credit } => self.machine.grant(&id, credit),
            Command::Produce {
                id,
                shared,
                producer,
            } => {
                let (commands, wake) = (&self.commands, &self.wake);
                self.producers
                    .start(id.clone(), shared, producer, commands, wake);
                self.producers.ready.push_back(id);
            }
            Command::Resume { id } => self.producers.ready.push_back(id),
            Command::Close { id } => self.machine.close(&id),
            Command::Emit { payload, observed } => {
                let limit = self.config.send_queue_limit;
                if let Some((&id, socket)) = self.sockets.iter_mut().next() {
                    let head = Head {
                        envelope: &[],
                        delimiter: false,
                    };
                    let plain = SendKind::Plain;
                    let sent = socket.send(head, payload, None, plain, limit, &self.counters);
                    if !matches!(sent, Sent::Refused(_)) {
                        self.observe_sent(id, &[], None, observed.map(|e| *e));
                    }
                    self.settle(id, None, sent);
                }
            }
            Command::Shutdown => self.running = false,
        }
        self.run_actions();
    }

    fn bind(&mut self, endpoint: &str, options: &EndpointOptions) -> Result<String, Error> {
        check_endpoint(endpoint)?;
        let id = self.shared_socket()?;
        let Some(s) = self.sockets.get_mut(&id) else {
            return Err(Error::closed());
        };
        s.watch_served(&self.counters, options);
        apply_endpoint(&mut s.socket, endpoint, options)?;
        s.socket
            .bind(endpoint)
            .map_err(|e| Error::zmq(format!("cannot bind to {endpoint}"), e))?;
        let bound = last_endpoint(&s.socket).unwrap_or_else(|| endpoint.to_owned());
        s.bound_to.push((endpoint.to_owned(), bound.clone()));
        Ok(bound)
    }

    fn connect(&mut self, endpoint: &str, options: &EndpointOptions) -> Result<String, Error> {
        check_endpoint(endpoint)?;
        let id = match self.kind {
            // A DEALER round-robins every message over its peers, which would
            // scatter a channel's heartbeats and credit over several servers.
            SocketKind::Client => self.add_socket(false)?,
            _ => self.shared_socket()?,
        };
        let Some(s) = self.sockets.get_mut(&id) else {
            return Err(Error::closed());
        };
        if self.kind == SocketKind::Client {
            self.notify_fds_version += 1;
            // Best effort: without it, only the reconnection after a
            // protocol error is lost.
            s.watch = Watch::new(&s.socket)
                .inspect_err(|e| tracing::debug!("cannot watch the connection to {endpoint}: {e}"))
                .ok();
        }
        // A client's connections have their `Watch`; anything else that
        // connects (events) is told of what it drops like a server.
        if self.kind != SocketKind::Client || options.security.authenticator().is_some() {
            s.watch_served(&self.counters, options);
        }
        let connected = apply_endpoint(&mut s.socket, endpoint, options).and_then(|()| {
            s.socket
                .connect(endpoint)
                .map_err(|e| Error::zmq(format!("cannot connect to {endpoint}"), e))
        });
        if let Err(e) = connected {
            if self.kind == SocketKind::Client {
                self.notify_fds_version += 1;
                self.sockets.remove(&id);
                self.machine.remove_socket(id);
            }
            return Err(e);
        }
        if self.kind == SocketKind::Client {
            s.peer = Peer::Endpoint(endpoint.into());
        }
        s.connected.push(endpoint.to_owned());
        Ok(endpoint.to_owned())
    }

    /// A client's DEALER for `endpoint` takes no new channel and closes
    /// when the last one open on it ends, so that calls in flight finish;
    /// other kinds disconnect their one socket at once.
    fn disconnect(&mut self, endpoint: &str) -> Result<String, Error> {
        let not_connected = || Error::endpoint(endpoint, "not connected");
        if self.kind == SocketKind::Client {
            let found = self
                .sockets
                .iter_mut()
                .find(|(_, s)| s.connected.iter().any(|e| e == endpoint));
            let Some((&id, s)) = found else {
                return Err(not_connected());
            };
            s.connected.clear();
            if self.machine.retire_socket(id) {
                self.close_socket(id);
            }
            return Ok(endpoint.to_owned());
        }
        let id = self.shared_socket()?;
        let Some(s) = self.sockets.get_mut(&id) else {
            return Err(not_connected());
        };
        let Some(at) = s.connected.iter().position(|e| e == endpoint) else {
            return Err(not_connected());
        };
        s.socket
            .disconnect(endpoint)
            .map_err(|e| Error::zmq(format!("cannot disconnect from {endpoint}"), e))?;
        s.connected.remove(at);
        Ok(endpoint.to_owned())
    }

    /// Unbinds an endpoint, named as it was bound or as ZeroMQ bound it.
    fn unbind(&mut self, endpoint: &str) -> Result<String, Error> {
        let not_bound = || Error::endpoint(endpoint, "not bound");
        let found = self.sockets.values_mut().find_map(|s| {
            let at = s
                .bound_to
                .iter()
                .position(|(asked, bound)| asked == endpoint || bound == endpoint)?;
            Some((s, at))
        });
        let Some((s, at)) = found else {
            return Err(not_bound());
        };
        let bound = s.bound_to[at].1.clone();
        s.socket
            .unbind(&bound)
            .map_err(|e| Error::zmq(format!("cannot unbind {bound}"), e))?;
        s.bound_to.remove(at);
        Ok(bound)
    }

    fn open(
        &mut self,
        id: MessageId,
        shared: Arc<ChannelShared>,
        payload: Vec<u8>,
        timeout: Option<Duration>,
        observed: Option<Box<Event>>,
    ) {
        let keeps_peer = self.config.channel_peers.then(|| shared.clone());
        let socket = match self
            .machine
            .open(id.clone(), shared, timeout, self.turn_began)
        {
            Ok(socket) => socket,
            Err(shared) => {
                shared.close(Error::no_endpoint());
                return;
            }
        };
        if let Some(shared) = keeps_peer {
            shared.set_peer(self.peer(socket, &[]));
        }
        // Closes a channel the id ended.
        self.run_actions();
        if self.observing() {
            let peer = self.peer(socket, &[]);
            self.observe_change(|| ChangeKind::Opened, Some(&id), socket, &peer);
        }
        let Some(zmq_socket) = self.sockets.get_mut(&socket) else {
            return;
        };
        let sent = zmq_socket.send(
            Head::channel(&[]),
            payload,
            Some(&id),
            SendKind::Plain,
            self.config.send_queue_limit,
            &self.counters,
        );
        if !matches!(sent, Sent::Refused(_)) {
            self.observe_sent(socket, &[], Some(&id), observed.map(|e| *e));
        }
        self.settle(socket, Some(&id), sent);
    }

    /// Receives what one socket has ready; true if it stopped at
    /// `RECV_BATCH`, with more perhaps waiting.
    fn receive(&mut self, id: SocketId) -> bool {
        // The last frame, the event, is decoded where ZeroMQ put it; only
        // the envelope's frames are copied, to route replies with.
        let mut payload = zmq::Message::new();
        for _ in 0..RECV_BATCH {
            // Gone when its last channel ended while delivering.
            let Some(s) = self.sockets.get_mut(&id) else {
                return false;
            };
            if self.hinted && !s.input_hint {
                return false;
            }
            match receive_message(&s.socket, &mut payload, &mut self.frames) {
                Ok(()) => {}
                // Nothing more for now: the next wait wakes when there is.
                // Turning again at once would cost a turn's system calls
                // for nothing (a wake-up pipe read, libzmq's command checks).
                Err(zmq::Error::EAGAIN) => {
                    s.input_hint = false;
                    return false;
                }
                Err(e) => {
                    tracing::debug!("zmq receive failed: {e}");
                    return false;
                }
            };
            let mut frames = std::mem::take(&mut self.frames);
            self.on_message(id, &mut frames, &payload);
            self.frames = frames;
            self.run_actions();
            self.receiving = None;
        }
        true
    }

    fn on_message(&mut self, socket: SocketId, frames: &mut Vec<Vec<u8>>, payload: &[u8]) {
        if self.kind == SocketKind::Publish {
            // An XPUB hears its subscribers' (un)subscriptions: not events.
            return;
        }
        let observing = self.observing();
        // For the observers only: channels that keep their peer get it
        // where they are opened or accepted.
        let peer = if observing {
            self.peer(socket, frames)
        } else {
            Peer::Unknown
        };
        let mut event = match Event::decode(payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::debug!("dropping undecodable message: {e}");
                Counters::bump(&self.counters.dropped_malformed);
                let why = || ChangeKind::Dropped(DropReason::Malformed);
                self.observe_change(why, None, socket, &peer);
                return;
            }
        };
        Counters::bump(&self.counters.received);
        self.trim.passed += payload.len();
        // Moved into the observers' view and back only when observed: a
        // rebinding of the event costs every event a copy of it.
        if observing {
            let channel = match (self.kind, &event.header.response_to) {
                (SocketKind::Client | SocketKind::Server, Some(id)) => Some(id.clone()),
                (SocketKind::Server, None) => Some(event.header.message_id.clone()),
                _ => None,
            };
            let info = EventInfo {
                control: is_control(&event),
                event,
                direction: Direction::Received,
                channel,
                peer,
                socket: self.kind,
                socket_id: socket.get(),
            };
            self.notify(|observer| observer.on_event(&info));
            self.receiving = Some((socket, info.peer, info.channel));
            event = info.event;
        }
        match self.kind {
            SocketKind::Pull | SocketKind::Subscribe => self.events.push(event),
            SocketKind::Push | SocketKind::Publish => {
                Counters::bump(&self.counters.dropped_unroutable);
                let peer = self.peer(socket, &[]);
                let why = || ChangeKind::Dropped(DropReason::Unroutable);
                self.observe_change(why, None, socket, &peer);
            }
            SocketKind::Server => {
                if !self.answer_at_once(socket, frames, &mut event) {
                    self.receive_event(socket, frames, event);
                }
            }
            SocketKind::Client => self.receive_event(socket, frames, event),
        }
    }

    /// Hands an event to the machine; one it routes to a channel while no
    /// action waits goes straight to that channel.
    fn receive_event(&mut self, socket: SocketId, frames: &mut Vec<Vec<u8>>, event: Event) {
        if event.header.response_to.is_some() && !self.machine.has_actions() {
            let Some(handle) = self.machine.route_reply(&event, self.turn_began) else {
                return;
            };
            // A reply that ended its call queued its channel's close
            // first: carried out with the delivery, one lock and one wake
            // rather than two (observers see it through the queue).
            if !self.observing()
                && let Some(closed) = self.machine.poll_close_of(|h| Arc::ptr_eq(h, &handle))
            {
                handle.deliver_last(event, closed.error);
                return;
            }
            handle.deliver(event);
            return;
        }
        // A channel the event opens is made with its peer when anyone
        // wants it: set once, before the handle is shared.
        let wants_peers = self.wants_peers();
        let sockets = &self.sockets;
        self.machine
            .on_event_with(socket, frames, event, self.turn_began, |envelope| {
                if !wants_peers {
                    return ChannelShared::new();
                }
                ChannelShared::with_peer(socket_peer(sockets, socket, envelope))
            });
    }

    /// Offers an accepted call to the responder (see [`Responder::adopt`]);
    /// gives it back for the application if declined.
    fn adopt(
        &self,
        id: MessageId,
        handle: Arc<ChannelShared>,
        mut request: Event,
    ) -> Option<(MessageId, Arc<ChannelShared>, Event)> {
        let Some(responder) = self.config.responder.as_deref() else {
            return Some((id, handle, request));
        };
        let call = Adopted::new(
            id,
            handle,
            self.commands.clone(),
            self.wake.clone(),
            self.observing(),
        );
        let offered =
            std::panic::catch_unwind(AssertUnwindSafe(|| responder.adopt(&mut request, call)));
        match offered {
            Ok(None) => None,
            Ok(Some(call)) => {
                let (id, handle) = call.decline();
                Some((id, handle, request))
            }
            Err(_) => {
                tracing::warn!("a responder panicked adopting a call; the call is closed");
                None
            }
        }
    }

    /// Offers a request that opens a channel to the socket's
    /// [`Responder`](crate::Responder), before the machine sees it: what
    /// it answers is sent at once and the channel never exists (no state,
    /// no timers, no handle). False, the event left for the machine, when
    /// there is no responder, the event opens no call, or the responder
    /// declines. (The event is borrowed: moved in and back out, it cost
    /// every request two copies.)
    fn answer_at_once(
        &mut self,
        socket: SocketId,
        frames: &mut Vec<Vec<u8>>,
        event: &mut Event,
    ) -> bool {
        if self.config.responder.is_none()
            || event.header.response_to.is_some()
            || event.name == zerorpc_wire::names::HEARTBEAT
            // The envelope as the machine reads it: the routing ids before
            // the delimiter; without one, the machine reports it.
            || frames.len() < 2
        {
            return false;
        }
        // The routing ids, without the delimiter.
        let peer = self.peer(socket, &frames[..frames.len() - 1]);
        let offered = self
            .config
            .channel_peers
            .then(|| PeerSlot::known(peer.clone()));
        let Some(reply) = self.respond(event, offered) else {
            return false;
        };
        // Not the delimiter: `Head::channel` adds it.
        frames.pop();
        let id = event.header.message_id.clone();
        self.observe_change(|| ChangeKind::Accepted, Some(&id), socket, &peer);
        self.answer(socket, frames, id, reply);
        true
    }
}

/// Heartbeats and credit: the transport's own events.
fn is_control(event: &Event) -> bool {
    event.name == zerorpc_wire::names::HEARTBEAT || event.name == zerorpc_wire::names::MORE
}

/// Only ZeroMQ endpoints reach ZeroMQ: a name (`dns:NAME`) must have been
/// resolved before, and anything else is refused with the shared parser's
/// explanation rather than ZeroMQ's bare "Invalid argument".
fn check_endpoint(endpoint: &str) -> Result<(), Error> {
    match Endpoint::parse(endpoint) {
        Ok(parsed) if parsed.is_zmq() => Ok(()),
        Ok(parsed) => Err(Error::endpoint(
            endpoint,
            format!(
                "{}: names must be resolved to ZeroMQ endpoints first",
                parsed.scheme()
            ),
        )),
        Err(e) => Err(Error::endpoint(endpoint, e.reason())),
    }
}

fn last_endpoint(socket: &zmq::Socket) -> Option<String> {
    socket.get_last_endpoint().ok()?.ok()
}

/// Receives one whole message without waiting: its last frame into
/// `payload`, copies of the frames before it (the envelope) into
/// `envelope`, whose buffers are reused. EAGAIN when nothing is ready; a
/// message's later frames are always there once its first is, as ZeroMQ
/// delivers messages whole.
fn receive_message(
    socket: &zmq::Socket,
    payload: &mut zmq::Message,
    envelope: &mut Vec<Vec<u8>>,
) -> zmq::Result<()> {
    socket.recv(payload, zmq::DONTWAIT)?;
    let mut frames = 0;
    while payload.get_more() {
        match envelope.get_mut(frames) {
            Some(frame) => {
                frame.clear();
                frame.extend_from_slice(payload);
            }
            None => envelope.push(payload.to_vec()),
        }
        frames += 1;
        socket.recv(payload, 0)?;
    }
    envelope.truncate(frames);
    Ok(())
}

/// The peer of an event with these envelope frames on `socket` (as
/// [`IoThread::peer`], for callers that borrow only the sockets).
fn socket_peer(
    sockets: &BTreeMap<SocketId, ZmqSocket>,
    socket: SocketId,
    envelope: &[Vec<u8>],
) -> Peer {
    sockets
        .get(&socket)
        .map_or(Peer::Unknown, |s| s.peer(envelope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_trimmed_at_the_first_quiet_second_after_a_burst() {
        crate::tune_malloc();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let mut trim = Trim::default();
        trim.check(TRIM_BURST - 1, at(0));
        assert_eq!(trim.check_at, None, "no burst yet");
        trim.check(TRIM_BURST, at(0));
        assert_eq!(trim.check_at, Some(at(1)), "a burst: look for quiet");
        trim.check(TRIM_BURST + 2 * TRIM_QUIET_BYTES, at(1));
        assert_eq!(trim.check_at, Some(at(2)), "still busy: look again");
        assert_eq!(trim.trimmed_at, 0);
        let quiet = TRIM_BURST + 3 * TRIM_QUIET_BYTES - 1;
        trim.check(quiet, at(2));
        assert_eq!((trim.trimmed_at, trim.check_at), (quiet, None), "trimmed");
        trim.check(quiet + TRIM_BURST - 1, at(3));
        assert_eq!(trim.check_at, None, "until the next burst");
    }
}
