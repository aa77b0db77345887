//! The I/O thread: owns the ZeroMQ sockets of one [`Socket`](crate::Socket).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use zerorpc_endpoint::Endpoint;
use zerorpc_wire::{Event, Header, MessageId, Value, names};

use crate::channel::ChannelShared;
use crate::socket::{Command, Counters, SocketConfig, SocketKind, WakeQueue, context};
use crate::{Error, EventHook};

/// How many messages one socket may deliver per loop turn, so that one busy
/// socket cannot starve commands, timers or the other sockets.
const RECV_BATCH: usize = 256;

struct Heartbeat {
    interval: Duration,
    /// Passive and no heartbeat received yet: send and check nothing.
    waiting: bool,
    last_received: Option<Instant>,
}

struct Entry {
    shared: Arc<ChannelShared>,
    /// Index of the ZeroMQ socket the channel lives on.
    socket: usize,
    /// ROUTER envelope of the channel's first event (servers only).
    envelope: Vec<Vec<u8>>,
    heartbeat: Option<Heartbeat>,
    /// The peer's first event lacked `v: 3`: zerorpc-python's v2
    /// compatibility (credit travels as `_zpc_hb`).
    compat_v2: bool,
    /// Whether an event from the peer has arrived yet (decides `compat_v2`).
    heard_peer: bool,
    /// The first-reply timeout, while no reply has arrived.
    awaiting_reply: Option<Duration>,
    /// Bumped whenever timers are rescheduled, to discard stale ones.
    generation: u64,
    /// A heartbeat of this channel waits in a send queue: another one
    /// would say nothing more.
    heartbeat_queued: bool,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Heartbeat,
    Timeout,
}

#[derive(PartialEq, Eq)]
struct Timer {
    at: Instant,
    seq: u64,
    kind: TimerKind,
    channel: MessageId,
    generation: u64,
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// An event ZeroMQ could not take yet, kept to be sent in order.
struct Pending {
    frames: Vec<Vec<u8>>,
    /// The channel it belongs to, to fail when it cannot be delivered.
    channel: Option<MessageId>,
    heartbeat: bool,
}

/// Events waiting for one peer.
#[derive(Default)]
struct PeerQueue {
    events: VecDeque<Pending>,
    bytes: usize,
}

/// Why an event was not delivered.
enum Refusal {
    QueueFull,
    PeerGone,
    Failed(zmq::Error),
}

/// What became of an event handed to [`ZmqSocket::send`].
enum Sent {
    Now,
    Queued,
    Refused(Refusal),
}

/// Bookkeeping for each event a flush could not deliver, or delivered late.
#[derive(Default)]
struct Flushed {
    /// Whether anything was sent.
    progress: bool,
    /// Channels whose queued heartbeat has now left.
    heartbeats: Vec<MessageId>,
    /// Queued events that were refused, with their channels.
    refused: Vec<(Option<MessageId>, Refusal)>,
}

/// Bytes counted per queued event on top of its frames: the bookkeeping.
const PENDING_OVERHEAD: usize = 64;

struct ZmqSocket {
    socket: zmq::Socket,
    /// Events ZeroMQ could not take yet (its high-water mark reached), by
    /// peer: a ROUTER's are keyed by routing id, so that one slow peer
    /// never holds back the others; other kinds have one queue under the
    /// empty key. A peer's events always leave in the order they were sent.
    queues: HashMap<Vec<u8>, PeerQueue>,
    queued: usize,
    /// ROUTER: the first frame of every message names the peer.
    routed: bool,
    /// Whether `zmq_poll` says precisely when this socket can take more.
    /// A ROUTER or XPUB reports "writable" when any one peer can take more,
    /// which would spin the loop while one slow peer's events wait: those
    /// are retried on a timer instead.
    precise_pollout: bool,
    open_channels: usize,
    /// Client sockets: one DEALER per connected endpoint; the bound one is shared.
    bound: bool,
}

impl ZmqSocket {
    /// Sends `frames` now, or queues a copy to send, in order, once ZeroMQ
    /// can take more for that peer: only then are the frames copied.
    fn send(
        &mut self,
        frames: &[&[u8]],
        channel: Option<&MessageId>,
        heartbeat: bool,
        limit: usize,
        counters: &Counters,
    ) -> Sent {
        let peer: &[u8] = if self.routed {
            frames.first().copied().unwrap_or_default()
        } else {
            &[]
        };
        if !self.queues.contains_key(peer) {
            match self
                .socket
                .send_multipart(frames.iter().copied(), zmq::DONTWAIT)
            {
                Ok(()) => {
                    Counters::bump(&counters.sent);
                    return Sent::Now;
                }
                Err(zmq::Error::EAGAIN) => {}
                // ROUTER_MANDATORY: the peer is not connected any more.
                Err(zmq::Error::EHOSTUNREACH) => return Sent::Refused(Refusal::PeerGone),
                Err(e) => return Sent::Refused(Refusal::Failed(e)),
            }
        }
        let size = frames.iter().map(|f| f.len()).sum::<usize>() + PENDING_OVERHEAD;
        let queue = self.queues.entry(peer.to_vec()).or_default();
        // An empty queue always takes one event, so a single event larger
        // than the limit is not refused while nothing else waits. At most
        // one heartbeat per channel waits, so they are bounded without it.
        if !heartbeat && !queue.events.is_empty() && queue.bytes + size > limit {
            return Sent::Refused(Refusal::QueueFull);
        }
        queue.bytes += size;
        queue.events.push_back(Pending {
            frames: frames.iter().map(|frame| frame.to_vec()).collect(),
            channel: channel.cloned(),
            heartbeat,
        });
        self.queued += 1;
        Sent::Queued
    }

    /// Sends what waits, peer by peer, until ZeroMQ refuses more.
    fn flush(&mut self, counters: &Counters, out: &mut Flushed) {
        if self.queued == 0 {
            return;
        }
        let socket = &self.socket;
        let mut sent = 0;
        self.queues.retain(|_, queue| {
            while let Some(pending) = queue.events.front() {
                let refusal = match socket.send_multipart(&pending.frames, zmq::DONTWAIT) {
                    Ok(()) => None,
                    Err(zmq::Error::EAGAIN) => return true,
                    Err(zmq::Error::EHOSTUNREACH) => Some(Refusal::PeerGone),
                    Err(e) => Some(Refusal::Failed(e)),
                };
                let Some(pending) = queue.events.pop_front() else {
                    break;
                };
                queue.bytes -=
                    pending.frames.iter().map(Vec::len).sum::<usize>() + PENDING_OVERHEAD;
                sent += 1;
                match refusal {
                    None => {
                        Counters::bump(&counters.sent);
                        out.progress = true;
                        if pending.heartbeat {
                            out.heartbeats.extend(pending.channel);
                        }
                    }
                    Some(refusal) => out.refused.push((pending.channel, refusal)),
                }
            }
            false
        });
        self.queued -= sent;
    }
}

/// The frames of a channel event: the envelope (servers), the empty
/// delimiter, the payload.
fn channel_frames<'a>(envelope: &'a [Vec<u8>], payload: &'a [u8]) -> Vec<&'a [u8]> {
    envelope
        .iter()
        .map(Vec::as_slice)
        .chain([&[][..], payload])
        .collect()
}

pub(crate) struct IoThread {
    kind: SocketKind,
    config: SocketConfig,
    hooks: Vec<Arc<dyn EventHook>>,
    commands: mpsc::Receiver<Command>,
    wake_rx: UnixStream,
    wake_pending: Arc<AtomicBool>,
    counters: Arc<Counters>,
    incoming: Arc<WakeQueue<(MessageId, Arc<ChannelShared>)>>,
    events: Arc<WakeQueue<Event>>,
    sockets: Vec<ZmqSocket>,
    channels: HashMap<MessageId, Entry>,
    timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    next_socket: usize,
    running: bool,
    /// How long to wait before retrying queued events on sockets whose
    /// `zmq_poll` cannot say when a slow peer can take more.
    retry: Duration,
}

/// Bounds of [`IoThread::retry`]: short while queues drain, longer while a
/// peer reads nothing, so that a stuck peer costs little CPU.
const RETRY_MIN: Duration = Duration::from_millis(1);
const RETRY_MAX: Duration = Duration::from_millis(16);

/// What the I/O thread shares with the handles of its socket.
pub(crate) struct IoLinks {
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) wake_rx: UnixStream,
    pub(crate) wake_pending: Arc<AtomicBool>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) incoming: Arc<WakeQueue<(MessageId, Arc<ChannelShared>)>>,
    pub(crate) events: Arc<WakeQueue<Event>>,
}

impl IoThread {
    pub(crate) fn new(
        kind: SocketKind,
        config: SocketConfig,
        links: IoLinks,
    ) -> Result<Self, Error> {
        let IoLinks {
            commands,
            wake_rx,
            wake_pending,
            counters,
            incoming,
            events,
        } = links;
        let mut io = IoThread {
            kind,
            hooks: config.hooks.clone(),
            config,
            commands,
            wake_rx,
            wake_pending,
            counters,
            incoming,
            events,
            sockets: Vec::new(),
            channels: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            next_socket: 0,
            running: true,
            retry: RETRY_MIN,
        };
        // Every kind but the client uses exactly one ZeroMQ socket.
        if kind != SocketKind::Client {
            io.add_socket(false)?;
        }
        Ok(io)
    }

    fn add_socket(&mut self, bound: bool) -> Result<usize, Error> {
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
        match self.kind {
            SocketKind::Subscribe => socket
                .set_subscribe(b"")
                .map_err(|e| Error::zmq("cannot subscribe", e))?,
            // Without it a ROUTER silently drops what a full or vanished
            // peer cannot take; with it, ZeroMQ says so and we queue or fail.
            SocketKind::Server => socket
                .set_router_mandatory(true)
                .map_err(|e| Error::zmq("cannot make the socket report full peers", e))?,
            SocketKind::Publish => set_xpub_nodrop(&mut socket)
                .map_err(|e| Error::zmq("cannot make the socket report full subscribers", e))?,
            _ => {}
        }
        // Do not let unsent messages hold the process at exit.
        let _ = socket.set_linger(0);
        let routed = self.kind == SocketKind::Server;
        self.sockets.push(ZmqSocket {
            socket,
            queues: HashMap::new(),
            queued: 0,
            routed,
            precise_pollout: !matches!(self.kind, SocketKind::Server | SocketKind::Publish),
            open_channels: 0,
            bound,
        });
        Ok(self.sockets.len() - 1)
    }

    /// Accounts for what [`ZmqSocket::send`] did with an event of
    /// `channel`: an event that cannot be delivered fails its channel and
    /// is counted.
    fn settle(&mut self, channel: Option<&MessageId>, sent: Sent) {
        match sent {
            Sent::Now => {}
            Sent::Queued => self.count_queued(),
            Sent::Refused(refusal) => self.refused(channel.cloned(), refusal),
        }
    }

    /// Counts an undeliverable event and fails its channel with the reason.
    fn refused(&mut self, channel: Option<MessageId>, refusal: Refusal) {
        let (counter, error) = match refusal {
            Refusal::QueueFull => (
                &self.counters.dropped_queue_full,
                Error::queue_full(self.config.send_queue_limit),
            ),
            Refusal::PeerGone => (&self.counters.dropped_peer_gone, Error::peer_gone()),
            Refusal::Failed(e) => (
                &self.counters.dropped_send_failed,
                Error::zmq("cannot send", e),
            ),
        };
        Counters::bump(counter);
        tracing::debug!(%error, "event not delivered");
        if let Some(channel) = channel {
            self.fail(&channel, error);
        }
    }

    fn count_queued(&self) {
        let queued: usize = self.sockets.iter().map(|s| s.queued).sum();
        self.counters.set_queued(queued as u64);
    }

    /// Sends what waits in the send queues, as far as ZeroMQ takes it.
    fn flush(&mut self) {
        let mut flushed = Flushed::default();
        let mut waiting = false;
        for socket in &mut self.sockets {
            if socket.queued > 0 {
                socket.flush(&self.counters, &mut flushed);
                waiting |= socket.queued > 0;
            }
        }
        if !flushed.progress && flushed.refused.is_empty() && !waiting {
            return;
        }
        for channel in flushed.heartbeats {
            if let Some(entry) = self.channels.get_mut(&channel) {
                entry.heartbeat_queued = false;
            }
        }
        for (channel, refusal) in flushed.refused {
            self.refused(channel, refusal);
        }
        self.retry = if flushed.progress {
            RETRY_MIN
        } else {
            (self.retry * 2).min(RETRY_MAX)
        };
        self.count_queued();
    }

    pub(crate) fn run(mut self) {
        while self.running {
            // Drain before clearing the flag: a sender that sees it clear
            // writes a wake-up byte after this drain, which then wakes the
            // poll below even if its command arrives after the loop that
            // follows. Clearing first would let such a byte be drained
            // with the flag set, and a later command wait for no wake-up.
            let mut drain = [0u8; 64];
            while matches!(self.wake_rx.read(&mut drain), Ok(n) if n > 0) {}
            // A swap, not a store: acquiring the senders' flag makes their
            // commands visible to the loop below.
            self.wake_pending.swap(false, Ordering::AcqRel);
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.running = false;
                        break;
                    }
                }
            }
            if !self.running {
                break;
            }
            self.flush();
            let mut busy = false;
            for index in 0..self.sockets.len() {
                busy |= self.receive(index);
            }
            self.fire_timers(Instant::now());
            let timeout = if busy {
                0
            } else {
                let timer = self
                    .timers
                    .peek()
                    .map(|Reverse(t)| t.at.saturating_duration_since(Instant::now()));
                let retry = self
                    .sockets
                    .iter()
                    .any(|s| s.queued > 0 && !s.precise_pollout)
                    .then_some(self.retry);
                match timer.into_iter().chain(retry).min() {
                    // Round up so a timer is never polled for just before it is due.
                    Some(wait) => {
                        i64::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i64::MAX)
                    }
                    None => -1,
                }
            };
            self.poll(timeout);
        }
        for (_, entry) in self.channels.drain() {
            entry.shared.close(Error::closed());
        }
        self.incoming.close();
        self.events.close();
    }

    fn poll(&mut self, timeout: i64) {
        let mut items: Vec<zmq::PollItem<'_>> = Vec::with_capacity(self.sockets.len() + 1);
        items.push(zmq::PollItem::from_fd(
            self.wake_rx.as_raw_fd(),
            zmq::POLLIN,
        ));
        for s in &self.sockets {
            let events = if s.queued > 0 && s.precise_pollout {
                zmq::POLLIN | zmq::POLLOUT
            } else {
                zmq::POLLIN
            };
            items.push(s.socket.as_poll_item(events));
        }
        if let Err(e) = zmq::poll(&mut items, timeout) {
            if e != zmq::Error::EINTR {
                tracing::warn!("zmq poll failed: {e}");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Bind(endpoint, reply) => {
                let _ = reply.send(self.bind(&endpoint));
            }
            Command::Connect(endpoint, reply) => {
                let _ = reply.send(self.connect(&endpoint));
            }
            Command::Open {
                id,
                shared,
                payload,
                timeout,
            } => {
                if let Some(shared) = shared.take() {
                    self.open(id, shared, payload, timeout);
                }
            }
            Command::Send { id, payload } => {
                if let Some(entry) = self.channels.get(&id) {
                    let frames = channel_frames(&entry.envelope, &payload);
                    let limit = self.config.send_queue_limit;
                    let sent = self.sockets[entry.socket].send(
                        &frames,
                        Some(&id),
                        false,
                        limit,
                        &self.counters,
                    );
                    self.settle(Some(&id), sent);
                }
            }
            Command::Close { id } => self.remove(&id),
            Command::Emit { payload } => {
                let limit = self.config.send_queue_limit;
                if let Some(socket) = self.sockets.first_mut() {
                    let sent = socket.send(&[&payload], None, false, limit, &self.counters);
                    self.settle(None, sent);
                }
            }
            Command::Shutdown => self.running = false,
        }
    }

    fn bind(&mut self, endpoint: &str) -> Result<String, Error> {
        check_endpoint(endpoint)?;
        let index = match self.kind {
            SocketKind::Client => match self.sockets.iter().position(|s| s.bound) {
                Some(i) => i,
                None => self.add_socket(true)?,
            },
            _ => 0,
        };
        let socket = &self.sockets[index].socket;
        socket
            .bind(endpoint)
            .map_err(|e| Error::zmq(format!("cannot bind to {endpoint}"), e))?;
        Ok(last_endpoint(socket).unwrap_or_else(|| endpoint.to_owned()))
    }

    fn connect(&mut self, endpoint: &str) -> Result<String, Error> {
        check_endpoint(endpoint)?;
        let index = match self.kind {
            // A DEALER round-robins every message over its peers, which would
            // scatter a channel's heartbeats and credit over several servers.
            SocketKind::Client => self.add_socket(false)?,
            _ => 0,
        };
        let result = self.sockets[index].socket.connect(endpoint);
        if let Err(e) = result {
            if self.kind == SocketKind::Client {
                self.sockets.pop();
            }
            return Err(Error::zmq(format!("cannot connect to {endpoint}"), e));
        }
        Ok(endpoint.to_owned())
    }

    fn open(
        &mut self,
        id: MessageId,
        shared: Arc<ChannelShared>,
        payload: Vec<u8>,
        timeout: Option<Duration>,
    ) {
        if self.sockets.is_empty() {
            shared.close(Error::endpoint(
                "",
                "the socket is neither bound nor connected",
            ));
            return;
        }
        // Least open channels first; ties go round-robin.
        let n = self.sockets.len();
        let start = self.next_socket % n;
        self.next_socket = self.next_socket.wrapping_add(1);
        let socket = (0..n)
            .map(|i| (start + i) % n)
            .min_by_key(|&i| self.sockets[i].open_channels)
            .unwrap_or(0);
        let heartbeat = self.config.heartbeat.map(|interval| Heartbeat {
            interval,
            waiting: self.config.passive_heartbeat,
            last_received: None,
        });
        let entry = Entry {
            shared,
            socket,
            envelope: Vec::new(),
            heartbeat,
            compat_v2: false,
            heard_peer: false,
            awaiting_reply: timeout,
            generation: 0,
            heartbeat_queued: false,
        };
        self.insert(id.clone(), entry);
        if let Some(after) = timeout {
            self.schedule(&id, TimerKind::Timeout, after);
        }
        let limit = self.config.send_queue_limit;
        let sent = self.sockets[socket].send(
            &channel_frames(&[], &payload),
            Some(&id),
            false,
            limit,
            &self.counters,
        );
        self.settle(Some(&id), sent);
    }

    fn insert(&mut self, id: MessageId, mut entry: Entry) {
        // Unique per channel, so timers of an earlier channel with the same
        // id can never fire on this one.
        self.timer_seq += 1;
        entry.generation = self.timer_seq;
        let active = entry
            .heartbeat
            .as_ref()
            .filter(|h| !h.waiting)
            .map(|h| h.interval);
        self.sockets[entry.socket].open_channels += 1;
        self.channels.insert(id.clone(), entry);
        if let Some(interval) = active {
            self.schedule(&id, TimerKind::Heartbeat, interval);
        }
    }

    fn remove(&mut self, id: &MessageId) {
        if let Some(entry) = self.channels.remove(id) {
            let s = &mut self.sockets[entry.socket];
            s.open_channels = s.open_channels.saturating_sub(1);
            entry.shared.close(Error::closed());
        }
    }

    fn schedule(&mut self, id: &MessageId, kind: TimerKind, after: Duration) {
        let Some(entry) = self.channels.get(id) else {
            return;
        };
        self.timer_seq += 1;
        self.timers.push(Reverse(Timer {
            at: Instant::now() + after,
            seq: self.timer_seq,
            kind,
            channel: id.clone(),
            generation: entry.generation,
        }));
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if timer.at > now {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            let Some(entry) = self.channels.get_mut(&timer.channel) else {
                continue;
            };
            if entry.generation != timer.generation {
                continue;
            }
            match timer.kind {
                TimerKind::Timeout => {
                    if let Some(after) = entry.awaiting_reply {
                        self.fail(&timer.channel, Error::timeout(after));
                    }
                }
                TimerKind::Heartbeat => self.heartbeat_tick(timer.channel, now),
            }
        }
    }

    /// zerorpc-python's algorithm: the remote is lost at the first tick more
    /// than two intervals after the last heartbeat received (or, when none
    /// ever came, after the first tick).
    fn heartbeat_tick(&mut self, id: MessageId, now: Instant) {
        let Some(entry) = self.channels.get_mut(&id) else {
            return;
        };
        let Some(hb) = entry.heartbeat.as_mut() else {
            return;
        };
        let last = *hb.last_received.get_or_insert(now);
        let interval = hb.interval;
        if now > last + interval * 2 {
            self.fail(&id, Error::lost_remote(interval));
            return;
        }
        // One heartbeat waiting for a slow peer says all that more would.
        if !entry.heartbeat_queued {
            let mut header = Header::new();
            header.response_to = Some(id.clone());
            let mut event =
                Event::new(header, names::HEARTBEAT, Value::Array(vec![Value::from(0)]));
            for hook in &self.hooks {
                hook.on_send(&mut event);
            }
            let payload = event.encode();
            let Some(entry) = self.channels.get(&id) else {
                return;
            };
            let frames = channel_frames(&entry.envelope, &payload);
            let limit = self.config.send_queue_limit;
            let sent =
                self.sockets[entry.socket].send(&frames, Some(&id), true, limit, &self.counters);
            if matches!(sent, Sent::Queued) {
                if let Some(entry) = self.channels.get_mut(&id) {
                    entry.heartbeat_queued = true;
                }
            }
            self.settle(Some(&id), sent);
            if !self.channels.contains_key(&id) {
                return;
            }
            Counters::bump(&self.counters.heartbeats_sent);
        }
        self.schedule(&id, TimerKind::Heartbeat, interval);
    }

    fn fail(&mut self, id: &MessageId, error: Error) {
        if let Some(entry) = self.channels.remove(id) {
            let s = &mut self.sockets[entry.socket];
            s.open_channels = s.open_channels.saturating_sub(1);
            entry.shared.close(error);
        }
    }

    /// Receives what one socket has ready; true if it had anything.
    fn receive(&mut self, index: usize) -> bool {
        for n in 0..RECV_BATCH {
            let frames = match self.sockets[index].socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN) => return n > 0,
                Err(e) => {
                    tracing::debug!("zmq receive failed: {e}");
                    return n > 0;
                }
            };
            self.on_message(index, frames);
        }
        true
    }

    fn on_message(&mut self, index: usize, mut frames: Vec<Vec<u8>>) {
        if self.kind == SocketKind::Publish {
            // An XPUB hears its subscribers' (un)subscriptions: not events.
            return;
        }
        let Some(payload) = frames.pop() else { return };
        let event = match Event::decode(&payload) {
            Ok(event) => event,
            Err(e) => {
                tracing::debug!("dropping undecodable message: {e}");
                Counters::bump(&self.counters.dropped_malformed);
                return;
            }
        };
        Counters::bump(&self.counters.received);
        for hook in &self.hooks {
            hook.on_receive(&event);
        }
        match self.kind {
            SocketKind::Pull | SocketKind::Subscribe => self.events.push(event),
            SocketKind::Push | SocketKind::Publish => {
                Counters::bump(&self.counters.dropped_unroutable)
            }
            SocketKind::Client | SocketKind::Server => {
                match event.header.response_to.clone() {
                    Some(channel) => self.route(&channel, event),
                    None if self.kind == SocketKind::Server => {
                        // Like zerorpc-python: with three or more frames everything
                        // before the last two is the envelope; with two, the first.
                        if frames.len() >= 2 {
                            frames.pop();
                        }
                        if frames.is_empty() {
                            Counters::bump(&self.counters.dropped_malformed);
                            return;
                        }
                        self.accept(index, frames, event);
                    }
                    None => Counters::bump(&self.counters.dropped_unroutable),
                }
            }
        }
    }

    fn accept(&mut self, index: usize, envelope: Vec<Vec<u8>>, event: Event) {
        let id = event.header.message_id.clone();
        if self.channels.contains_key(&id) {
            // A duplicate opening event: the channel exists already.
            Counters::bump(&self.counters.dropped_unroutable);
            return;
        }
        let version = event.header.protocol_version();
        // zerorpc-python heartbeats passively towards v1 peers.
        let passive = self.config.passive_heartbeat || version < 2;
        let heartbeat = self.config.heartbeat.map(|interval| Heartbeat {
            interval,
            waiting: passive,
            last_received: None,
        });
        let shared = ChannelShared::new();
        let compat_v2 = version < 3;
        shared.lock().peer_v2 = compat_v2;
        let entry = Entry {
            shared: shared.clone(),
            socket: index,
            envelope,
            heartbeat,
            compat_v2,
            heard_peer: true,
            awaiting_reply: None,
            generation: 0,
            heartbeat_queued: false,
        };
        self.insert(id.clone(), entry);
        if event.name == names::HEARTBEAT {
            self.control(&id, &event);
        } else {
            shared.deliver(event);
        }
        self.incoming.push((id, shared));
    }

    fn route(&mut self, channel: &MessageId, event: Event) {
        let Some(entry) = self.channels.get_mut(channel) else {
            // The protocol has no close event: the peer's heartbeats and
            // credit keep coming for a while after a channel ends.
            let late_control = event.name == names::HEARTBEAT || event.name == names::MORE;
            Counters::bump(if late_control {
                &self.counters.late_control
            } else {
                &self.counters.dropped_unroutable
            });
            return;
        };
        // Like zerorpc-python, the first event heard from the peer decides
        // whether the channel speaks version 2.
        if !entry.heard_peer {
            entry.heard_peer = true;
            entry.compat_v2 = event.header.protocol_version() < 3;
            entry.shared.lock().peer_v2 = entry.compat_v2;
        }
        if event.name == names::HEARTBEAT || event.name == names::MORE {
            self.control(channel, &event);
            return;
        }
        if let Some(entry) = self.channels.get_mut(channel) {
            entry.awaiting_reply = None;
            entry.shared.deliver(event);
        }
    }

    fn control(&mut self, channel: &MessageId, event: &Event) {
        let now = Instant::now();
        let mut start_heartbeat = None;
        let Some(entry) = self.channels.get_mut(channel) else {
            return;
        };
        let credit = || {
            event
                .args
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_i64)
        };
        if event.name == names::HEARTBEAT {
            if let Some(hb) = entry.heartbeat.as_mut() {
                hb.last_received = Some(now);
                if hb.waiting {
                    hb.waiting = false;
                    start_heartbeat = Some(hb.interval);
                }
            }
            // v2 peers send their credit as `_zpc_hb [n]`.
            if entry.compat_v2 {
                if let Some(n) = credit() {
                    entry.shared.add_credit(n);
                }
            }
        } else if let Some(n) = credit() {
            entry.shared.add_credit(n);
        }
        if let Some(interval) = start_heartbeat {
            self.schedule(channel, TimerKind::Heartbeat, interval);
        }
    }
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

/// libzmq's `ZMQ_XPUB_NODROP`, which the `zmq` crate has no setter for.
const ZMQ_XPUB_NODROP: std::ffi::c_int = 69;

/// Makes an XPUB refuse (EAGAIN) what a full subscriber cannot take, rather
/// than dropping it silently.
fn set_xpub_nodrop(socket: &mut zmq::Socket) -> Result<(), zmq::Error> {
    let value: std::ffi::c_int = 1;
    // SAFETY: `as_mut_ptr` is the live libzmq handle owned by `socket`,
    // which the exclusive borrow keeps alive and unshared for the whole call. The value pointer and length
    // describe `value`, a c_int on this stack frame, which libzmq copies
    // before returning.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            ZMQ_XPUB_NODROP,
            (&raw const value).cast::<std::ffi::c_void>(),
            size_of::<std::ffi::c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        // SAFETY: zmq_errno only reads the calling thread's errno.
        Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
    }
}

fn last_endpoint(socket: &zmq::Socket) -> Option<String> {
    socket.get_last_endpoint().ok()?.ok()
}
