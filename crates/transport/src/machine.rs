//! The sans-IO channel core: channels, heartbeats, credit bookkeeping,
//! first-reply timeouts and v2 compatibility, as a plain state machine.
//!
//! [`Machine`] is told what happened (an event arrived on a socket, a
//! command, the time is now `now`) and queues what to do about it as
//! [`Action`]s, which its driver (`io.rs`, the I/O thread) takes with
//! [`Machine::poll_action`] and carries out. It owns no socket, thread or
//! clock and holds no handle of the application's, so it is deterministic
//! and unit-tested with a fake clock; the driver maps channel ids to the
//! application's channel handles and tells the machine what became of what
//! it sent ([`Machine::heartbeat_queued`], [`Machine::heartbeat_flushed`],
//! [`Machine::fail`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use zerorpc_wire::{Event, Header, MessageId, Value, names};

use crate::Error;

/// The channel-level settings of a socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MachineConfig {
    /// Heartbeat interval; `None` disables heartbeats and loss detection.
    pub(crate) heartbeat: Option<Duration>,
    /// Send and check nothing until the peer's first heartbeat.
    pub(crate) passive_heartbeat: bool,
    /// Server sockets accept channels opened by their peers.
    pub(crate) accepts: bool,
}

/// A ZeroMQ socket of the driver, as the machine knows it.
///
/// Ids are never reused, so a channel's socket stays the same whatever
/// sockets are added or removed meanwhile (an index into a list would
/// renumber live channels when one is removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SocketId(u64);

/// Channels by id. Every event costs a lookup or two here, so the hasher
/// is foldhash rather than SipHash: it cut the server's instructions per
/// call by 5% (callgrind, 20,000 calls), and it is still seeded at random
/// per process, as the ids come from peers.
pub(crate) type ChannelMap<V> = HashMap<MessageId, V, foldhash::fast::RandomState>;

impl SocketId {
    /// The number behind the id, for observers.
    pub(crate) fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for SocketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What the machine knows of one socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Load {
    /// Open channels, to open new ones on the least loaded socket.
    open: usize,
    /// Disconnected: takes no new channel and is released when its last
    /// open one ends.
    retired: bool,
}

/// Something the driver must do. `H` is the driver's handle of a channel,
/// kept with the channel's state so that the driver needs no map of its own.
#[derive(Debug)]
pub(crate) enum Action<H> {
    /// Send an event the machine made itself (a heartbeat, a credit grant).
    Transmit(Transmit),
    /// A peer opened a channel with this event (`None` when it was a
    /// heartbeat); later events follow as [`Action::Deliver`]. The event
    /// comes with the channel so that the application, woken by the new
    /// channel, finds its request already there rather than being woken
    /// twice.
    Accepted(Accepted<H>),
    /// Hand an event to the application's channel. (The driver needs only
    /// the handle; the id tells channels apart in the machine's tests.)
    #[cfg_attr(not(test), allow(dead_code))]
    Deliver(MessageId, H, Event),
    /// The peer allows this many more events on the channel.
    #[cfg_attr(not(test), allow(dead_code))]
    Credit(MessageId, H, i64),
    /// The channel is over: fail its handle with this error. The machine
    /// has forgotten it.
    Close(Closed<H>),
    /// An incoming event was dropped, for this reason.
    Dropped(Dropped),
    /// The last channel of a retired socket ended: the driver closes it.
    Released(SocketId),
}

/// A channel a peer opened.
#[derive(Debug)]
pub(crate) struct Accepted<H> {
    pub(crate) id: MessageId,
    pub(crate) handle: H,
    pub(crate) socket: SocketId,
    /// The opening event, unless it was a heartbeat.
    pub(crate) first: Option<Event>,
}

/// A channel that ended, with what the driver needs to report it.
#[derive(Debug)]
pub(crate) struct Closed<H> {
    pub(crate) id: MessageId,
    pub(crate) handle: H,
    pub(crate) socket: SocketId,
    pub(crate) envelope: Vec<Vec<u8>>,
    pub(crate) error: Error,
}

/// Why an incoming event reached no channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Not heartbeat or credit, and its channel is unknown (or a
    /// duplicate opening event, or a reply with no channel).
    Unroutable,
    /// Heartbeat or credit for a channel that already ended: normal, as
    /// the protocol has no close event.
    LateControl,
    /// An opening event with no usable envelope.
    MalformedEnvelope,
}

/// An event of the machine's own, with where it goes.
#[derive(Debug)]
pub(crate) struct Transmit {
    pub(crate) socket: SocketId,
    /// ROUTER envelope of the peer (servers); empty otherwise.
    pub(crate) envelope: Vec<Vec<u8>>,
    pub(crate) channel: MessageId,
    pub(crate) event: Event,
    /// Heartbeats are coalesced: the driver reports whether one waits.
    pub(crate) heartbeat: bool,
}

/// Where a channel's events go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route<'a> {
    pub(crate) socket: SocketId,
    pub(crate) envelope: &'a [Vec<u8>],
}

struct Heartbeat {
    interval: Duration,
    /// Passive and no heartbeat received yet: send and check nothing.
    waiting: bool,
    last_received: Option<Instant>,
}

struct ChannelState<H> {
    /// The driver's handle (the application's end of the channel).
    handle: H,
    socket: SocketId,
    envelope: Vec<Vec<u8>>,
    heartbeat: Option<Heartbeat>,
    /// Whether the peer speaks version 2 (credit travels as `_zpc_hb`):
    /// decided by the first event heard from it, like zerorpc-python.
    peer_v2: Option<bool>,
    /// The first-reply timeout, while no reply has arrived.
    awaiting_reply: Option<Duration>,
    /// When that timeout falls due, if its timer is not in the heap yet:
    /// it is scheduled at the first heartbeat, which comes before it, so
    /// that a call answered sooner (most are) costs one timer, not two.
    timeout_at: Option<Instant>,
    /// Its place in [`Machine::live`], where its timers find whether it
    /// is still open (the generation is kept there, not here: a channel's
    /// state is moved a few times per call, whole).
    slot: u32,
    /// A heartbeat of this channel waits in a send queue: another one
    /// would say nothing more.
    heartbeat_waiting: bool,
    /// We opened it: the peer's `OK` or `ERR` is its last event.
    opened: bool,
}

/// How a channel starts: opened by us or accepted from a peer.
struct Start {
    socket: SocketId,
    envelope: Vec<Vec<u8>>,
    passive: bool,
    peer_v2: Option<bool>,
    awaiting_reply: Option<Duration>,
    opened: bool,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Heartbeat,
    Timeout,
}

#[derive(Debug, PartialEq, Eq)]
struct Timer {
    at: Instant,
    seq: u64,
    kind: TimerKind,
    channel: MessageId,
    live: Live,
}

/// A channel's place in [`Machine::live`] and its generation, unique per
/// channel: a timer of an earlier channel in the same place (or with the
/// same id) never fires on a later one.
///
/// Most timers outlive their channel (a call's heartbeat timer is due an
/// interval after the call began; most calls are answered long before),
/// and are checked once when due or swept out before: an array read,
/// where looking the channel up hashed its 32-byte id for every one (190
/// instructions per call more on a client at 100 calls in flight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Live {
    slot: u32,
    generation: u64,
}

impl Live {
    /// The open channel's at `slot` of `live` ([`Machine::live`]).
    fn of(slot: u32, live: &[u64]) -> Live {
        Live {
            slot,
            generation: live.get(slot as usize).copied().unwrap_or(0),
        }
    }

    /// Whether its channel is still open, by `live` ([`Machine::live`]).
    fn is_open(self, live: &[u64]) -> bool {
        live.get(self.slot as usize) == Some(&self.generation)
    }
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

/// At most this many timers per channel are live: its heartbeat and its
/// first-reply timeout.
const TIMERS_PER_CHANNEL: usize = 2;

/// Timers of ended channels tolerated in the heap beyond twice the live
/// ones, before they are swept out.
const STALE_TIMERS_SLACK: usize = 4096;

/// The channels of one socket and everything the protocol does for them.
///
/// `H` is the driver's handle of a channel: given to [`Machine::open`],
/// made with `H::default()` for a channel a peer opens, and handed back in
/// the actions about that channel. Keeping it here rather than in a map of
/// the driver's saves a second lookup, insert and remove per channel.
pub(crate) struct Machine<H = ()> {
    config: MachineConfig,
    channels: ChannelMap<ChannelState<H>>,
    /// Every socket of the driver, by id, in the order they were added.
    sockets: BTreeMap<SocketId, Load>,
    next_id: u64,
    next_socket: usize,
    timers: BinaryHeap<Reverse<Timer>>,
    /// By slot: the generation of the open channel there, 0 when free.
    live: Vec<u64>,
    free_slots: Vec<u32>,
    seq: u64,
    actions: VecDeque<Action<H>>,
}

impl<H: Clone + Default> Machine<H> {
    pub(crate) fn new(config: MachineConfig) -> Self {
        Machine {
            config,
            channels: ChannelMap::default(),
            sockets: BTreeMap::new(),
            next_id: 0,
            next_socket: 0,
            timers: BinaryHeap::new(),
            live: Vec::new(),
            free_slots: Vec::new(),
            seq: 0,
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do, in the order the machine decided them.
    pub(crate) fn poll_action(&mut self) -> Option<Action<H>> {
        self.actions.pop_front()
    }

    /// The next action, if it closes the channel whose handle `is_ours`
    /// picks: what routing a call's last reply queues, which the driver
    /// may carry out with the reply. Anything else stays queued.
    pub(crate) fn poll_close_of(&mut self, is_ours: impl FnOnce(&H) -> bool) -> Option<Closed<H>> {
        match self.actions.pop_front()? {
            Action::Close(closed) if is_ours(&closed.handle) => Some(closed),
            other => {
                self.actions.push_front(other);
                None
            }
        }
    }

    /// When [`Machine::handle_timeout`] has something to do next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(timer)| timer.at)
    }

    /// The driver added a socket; returns its id.
    pub(crate) fn add_socket(&mut self) -> SocketId {
        let id = SocketId(self.next_id);
        self.next_id += 1;
        self.sockets.insert(id, Load::default());
        id
    }

    /// The driver dropped a socket on which no channel was opened.
    pub(crate) fn remove_socket(&mut self, socket: SocketId) {
        self.sockets.remove(&socket);
    }

    /// No new channel goes to `socket` any more; those open on it carry
    /// on. True when none is open, so the driver closes it now; otherwise
    /// [`Action::Released`] says when its last channel has ended.
    pub(crate) fn retire_socket(&mut self, socket: SocketId) -> bool {
        let Some(load) = self.sockets.get_mut(&socket) else {
            return true;
        };
        if load.open == 0 {
            self.sockets.remove(&socket);
            return true;
        }
        load.retired = true;
        false
    }

    /// Where the application's events on channel `id` go, while it is open.
    /// The driver's handle of channel `id`, while it is open.
    pub(crate) fn handle(&self, id: &MessageId) -> Option<&H> {
        self.channels.get(id).map(|channel| &channel.handle)
    }

    pub(crate) fn route(&self, id: &MessageId) -> Option<Route<'_>> {
        self.channels.get(id).map(|channel| Route {
            socket: channel.socket,
            envelope: &channel.envelope,
        })
    }

    /// Opens a channel whose first event the driver sends on the returned
    /// socket; the handle back when there is no socket to send it on.
    pub(crate) fn open(
        &mut self,
        id: MessageId,
        handle: H,
        first_reply_timeout: Option<Duration>,
        now: Instant,
    ) -> Result<SocketId, H> {
        let Some(socket) = self.pick_socket() else {
            return Err(handle);
        };
        let start = Start {
            socket,
            envelope: Vec::new(),
            passive: self.config.passive_heartbeat,
            peer_v2: None,
            awaiting_reply: first_reply_timeout,
            opened: true,
        };
        self.insert(id, handle, start, now);
        Ok(socket)
    }

    /// The socket a new channel goes to: least open channels first, ties
    /// round-robin.
    fn pick_socket(&mut self) -> Option<SocketId> {
        let mut active = self.sockets.iter().filter(|(_, load)| !load.retired);
        // The common case, one endpoint: no count, no second pass.
        if self.sockets.len() == 1 {
            return active.next().map(|(&id, _)| id);
        }
        let n = active.count();
        if n == 0 {
            return None;
        }
        let start = self.next_socket % n;
        self.next_socket = self.next_socket.wrapping_add(1);
        let active = || self.sockets.iter().filter(|(_, load)| !load.retired);
        let (&socket, _) = active()
            .skip(start)
            .chain(active().take(start))
            .min_by_key(|(_, load)| load.open)?;
        Some(socket)
    }

    /// The application grants the peer `n` more events.
    pub(crate) fn grant(&mut self, id: &MessageId, n: i64) {
        let Some(channel) = self.channels.get(id) else {
            return;
        };
        // zerorpc-python renames its grants for version 2 peers.
        let name = if channel.peer_v2 == Some(true) {
            names::HEARTBEAT
        } else {
            names::MORE
        };
        let transmit = transmit(id, channel, name, n, false);
        self.actions.push_back(Action::Transmit(transmit));
    }

    /// Ends every channel with `error` (the socket is closing).
    pub(crate) fn fail_all(&mut self, error: &Error) {
        let ids: Vec<MessageId> = self.channels.keys().cloned().collect();
        for id in ids {
            self.fail(&id, error.clone());
        }
    }

    /// The application closed the channel.
    pub(crate) fn close(&mut self, id: &MessageId) {
        self.fail(id, Error::closed());
    }

    /// Ends the channel with `error`; the one way a channel is released.
    pub(crate) fn fail(&mut self, id: &MessageId, error: Error) {
        if let Some(channel) = self.channels.remove(id) {
            self.closed(id.clone(), channel, error);
        }
    }

    /// Reports a channel the machine has just forgotten.
    #[inline(always)]
    fn closed(&mut self, id: MessageId, channel: ChannelState<H>, error: Error) {
        self.release(channel.slot);
        let socket = channel.socket;
        self.actions.push_back(Action::Close(Closed {
            id,
            handle: channel.handle,
            socket,
            envelope: channel.envelope,
            error,
        }));
        if let Some(load) = self.sockets.get_mut(&socket) {
            load.open = load.open.saturating_sub(1);
            if load.retired && load.open == 0 {
                self.sockets.remove(&socket);
                self.actions.push_back(Action::Released(socket));
            }
        }
    }

    /// A heartbeat of the channel could not leave yet and waits in a queue.
    pub(crate) fn heartbeat_queued(&mut self, id: &MessageId) {
        if let Some(channel) = self.channels.get_mut(id) {
            channel.heartbeat_waiting = true;
        }
    }

    /// The heartbeat that waited for the channel has left.
    pub(crate) fn heartbeat_flushed(&mut self, id: &MessageId) {
        if let Some(channel) = self.channels.get_mut(id) {
            channel.heartbeat_waiting = false;
        }
    }

    /// An event arrived on `socket`, after the frames `envelope` (the
    /// routing ids and delimiter before the payload). A channel the event
    /// opens takes the frames; otherwise they are left for the driver to
    /// reuse.
    pub(crate) fn on_event(
        &mut self,
        socket: SocketId,
        envelope: &mut Vec<Vec<u8>>,
        event: Event,
        now: Instant,
    ) {
        self.on_event_with(socket, envelope, event, now, |_| H::default());
    }

    /// [`on_event`](Self::on_event), with the handle of a channel the
    /// event opens made by `new_handle` from the channel's envelope (so
    /// that the driver can keep in it what it needs of the envelope, which
    /// the machine keeps, rather than look the channel up again for it).
    pub(crate) fn on_event_with(
        &mut self,
        socket: SocketId,
        envelope: &mut Vec<Vec<u8>>,
        event: Event,
        now: Instant,
        new_handle: impl FnOnce(&[Vec<u8>]) -> H,
    ) {
        let Some(channel) = event.header.response_to.clone() else {
            if !self.config.accepts {
                self.actions.push_back(Action::Dropped(Dropped::Unroutable));
                return;
            }
            // Like zerorpc-python: with three or more frames everything
            // before the last two is the envelope; with two, the first.
            if envelope.len() >= 2 {
                envelope.pop();
            }
            if envelope.is_empty() {
                let malformed = Action::Dropped(Dropped::MalformedEnvelope);
                self.actions.push_back(malformed);
                return;
            }
            self.accept(socket, std::mem::take(envelope), event, now, new_handle);
            return;
        };
        let queued = self.actions.len();
        if let Some(handle) = self.route_event(&channel, &event, now) {
            // Ahead of what routing it queued (a reply before its
            // channel's close).
            self.actions
                .insert(queued, Action::Deliver(channel, handle, event));
        }
    }

    /// An event on a channel (`response_to` set), when no action waits
    /// ([`has_actions`](Self::has_actions)): what [`on_event`](Self::on_event)
    /// does, except that the handle of the channel it is for comes back
    /// rather than a `Deliver` action, and the driver hands the event to
    /// it at once, before the actions this call queued (a reply before
    /// its channel's close). Every reply and stream item is delivered so:
    /// the event never moves through the queue, nor in and out of here.
    pub(crate) fn route_reply(&mut self, event: &Event, now: Instant) -> Option<H> {
        debug_assert!(self.actions.is_empty());
        let channel = event.header.response_to.as_ref()?;
        self.route_event(channel, event, now)
    }

    /// Whether actions wait for the driver.
    pub(crate) fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Fires the timers due at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse(timer)) = self.timers.peek() {
            if timer.at > now {
                break;
            }
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            if !timer.live.is_open(&self.live) {
                continue;
            }
            let Some(channel) = self.channels.get(&timer.channel) else {
                continue;
            };
            match timer.kind {
                TimerKind::Timeout => {
                    if let Some(after) = channel.awaiting_reply {
                        self.fail(&timer.channel, Error::timeout(after));
                    }
                }
                TimerKind::Heartbeat => self.heartbeat_tick(&timer.channel, now),
            }
        }
    }

    fn accept(
        &mut self,
        socket: SocketId,
        envelope: Vec<Vec<u8>>,
        event: Event,
        now: Instant,
        new_handle: impl FnOnce(&[Vec<u8>]) -> H,
    ) {
        let id = event.header.message_id.clone();
        if self.channels.contains_key(&id) {
            // A duplicate opening event: the channel exists already.
            self.actions.push_back(Action::Dropped(Dropped::Unroutable));
            return;
        }
        let version = event.header.protocol_version();
        let handle = new_handle(&envelope);
        let start = Start {
            socket,
            envelope,
            // zerorpc-python heartbeats passively towards v1 peers.
            passive: self.config.passive_heartbeat || version < 2,
            peer_v2: Some(version < 3),
            awaiting_reply: None,
            opened: false,
        };
        self.insert(id.clone(), handle.clone(), start, now);
        let accepted = |first| {
            Action::Accepted(Accepted {
                id: id.clone(),
                handle,
                socket,
                first,
            })
        };
        if event.name == names::HEARTBEAT {
            self.actions.push_back(accepted(None));
            self.control(&id, &event, now);
        } else {
            self.actions.push_back(accepted(Some(event)));
        }
    }

    /// The one way a channel is set up, opened or accepted.
    fn insert(&mut self, id: MessageId, handle: H, start: Start, now: Instant) {
        let live = self.occupy();
        let heartbeat = self.config.heartbeat.map(|interval| Heartbeat {
            interval,
            waiting: start.passive,
            last_received: None,
        });
        let active = heartbeat
            .as_ref()
            .filter(|h| !h.waiting)
            .map(|h| h.interval);
        // A timeout no sooner than the first heartbeat waits for it.
        let timeout_at = match (active, start.awaiting_reply) {
            (Some(interval), Some(after)) if interval <= after => Some(now + after),
            _ => None,
        };
        if let Some(load) = self.sockets.get_mut(&start.socket) {
            load.open += 1;
        }
        let replaced = self.channels.insert(
            id.clone(),
            ChannelState {
                handle,
                socket: start.socket,
                envelope: start.envelope,
                heartbeat,
                peer_v2: start.peer_v2,
                awaiting_reply: start.awaiting_reply,
                timeout_at,
                slot: live.slot,
                heartbeat_waiting: false,
                opened: start.opened,
            },
        );
        // Reusing an id ends the channel that had it, so that its handle
        // is not left waiting forever.
        if let Some(old) = replaced {
            self.closed(id.clone(), old, Error::closed());
        }
        if let Some(interval) = active {
            self.schedule(&id, live, TimerKind::Heartbeat, now + interval);
        }
        if let (Some(after), None) = (start.awaiting_reply, timeout_at) {
            self.schedule(&id, live, TimerKind::Timeout, now + after);
        }
    }

    /// A free slot for a new channel, with its new generation.
    fn occupy(&mut self) -> Live {
        self.seq += 1;
        let generation = self.seq;
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                // Slots are as many as channels were ever open at once,
                // far below 2^32.
                let slot = u32::try_from(self.live.len()).unwrap_or(u32::MAX);
                self.live.push(0);
                slot
            }
        };
        if let Some(held) = self.live.get_mut(slot as usize) {
            *held = generation;
        }
        Live { slot, generation }
    }

    /// Frees a closed channel's slot: its timers are stale from now on.
    #[inline]
    fn release(&mut self, slot: u32) {
        if let Some(held) = self.live.get_mut(slot as usize) {
            if *held != 0 {
                *held = 0;
                self.free_slots.push(slot);
            }
        }
    }

    fn schedule(&mut self, id: &MessageId, live: Live, kind: TimerKind, at: Instant) {
        // The timers of ended channels stay in the heap until they are
        // due (a heartbeat interval later): at 100,000 calls a second that
        // is half a million of them, tens of MiB. Past a bound, drop them
        // all in one pass, whose cost is spread over the calls that made
        // them.
        if self.timers.len() >= STALE_TIMERS_SLACK + 2 * TIMERS_PER_CHANNEL * self.channels.len() {
            let live = &self.live;
            self.timers
                .retain(|Reverse(timer)| timer.live.is_open(live));
        }
        self.seq += 1;
        self.timers.push(Reverse(Timer {
            at,
            seq: self.seq,
            kind,
            channel: id.clone(),
            live,
        }));
    }

    /// Routes an event of channel `id`: the handle to deliver it to, if
    /// it is for the application.
    fn route_event(&mut self, id: &MessageId, event: &Event, now: Instant) -> Option<H> {
        let is_control = event.name == names::HEARTBEAT || event.name == names::MORE;
        if !is_control && ends_call(&event.name) {
            // Like zerorpc-python's client, which closes a call's channel
            // at its reply: nothing the peer sends after it is for the
            // call, and the caller need not say it is done (see
            // `Channel`'s drop). A stream's `STREAM_DONE` waits for its
            // reader, whose last grants of credit go out as
            // zerorpc-python's do. The channel is taken out with the one
            // lookup, rather than found and then removed: hashing an id
            // costs a client some 250 instructions a call.
            if let Some(channel) = self.channels.remove(id) {
                if channel.opened {
                    let handle = channel.handle.clone();
                    self.closed(id.clone(), channel, Error::closed());
                    return Some(handle);
                }
                // Not a call this end made: a reply does not end it.
                self.channels.insert(id.clone(), channel);
            }
        }
        let Some(channel) = self.channels.get_mut(id) else {
            // The protocol has no close event: the peer's heartbeats and
            // credit keep coming for a while after a channel ends.
            let dropped = if is_control {
                Dropped::LateControl
            } else {
                Dropped::Unroutable
            };
            self.actions.push_back(Action::Dropped(dropped));
            return None;
        };
        if channel.peer_v2.is_none() {
            channel.peer_v2 = Some(event.header.protocol_version() < 3);
        }
        if is_control {
            self.control(id, event, now);
            return None;
        }
        channel.awaiting_reply = None;
        Some(channel.handle.clone())
    }

    fn control(&mut self, id: &MessageId, event: &Event, now: Instant) {
        let Some(channel) = self.channels.get_mut(id) else {
            return;
        };
        let credit = event
            .args
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_i64);
        let mut start_heartbeat = None;
        let live = Live::of(channel.slot, &self.live);
        let credit = if event.name == names::HEARTBEAT {
            if let Some(hb) = channel.heartbeat.as_mut() {
                hb.last_received = Some(now);
                if hb.waiting {
                    hb.waiting = false;
                    start_heartbeat = Some(hb.interval);
                }
            }
            // v2 peers send their credit as `_zpc_hb [n]`.
            credit.filter(|_| channel.peer_v2 == Some(true))
        } else {
            credit
        };
        if let Some(n) = credit {
            let handle = channel.handle.clone();
            self.actions
                .push_back(Action::Credit(id.clone(), handle, n));
        }
        if let Some(interval) = start_heartbeat {
            self.schedule(id, live, TimerKind::Heartbeat, now + interval);
        }
    }

    /// zerorpc-python's algorithm: the remote is lost at the first tick more
    /// than two intervals after the last heartbeat received (or, when none
    /// ever came, after the first tick).
    fn heartbeat_tick(&mut self, id: &MessageId, now: Instant) {
        let Some(channel) = self.channels.get_mut(id) else {
            return;
        };
        let Some(hb) = channel.heartbeat.as_mut() else {
            return;
        };
        let last = *hb.last_received.get_or_insert(now);
        let interval = hb.interval;
        let live = Live::of(channel.slot, &self.live);
        // Due at or after this tick: its timer goes in now, still in time.
        let timeout_at = channel
            .timeout_at
            .take()
            .filter(|_| channel.awaiting_reply.is_some());
        if now > last + interval * 2 {
            self.fail(id, Error::lost_remote(interval));
            return;
        }
        // One heartbeat waiting for a slow peer says all that more would.
        if !channel.heartbeat_waiting {
            let transmit = transmit(id, channel, names::HEARTBEAT, 0, true);
            self.actions.push_back(Action::Transmit(transmit));
        }
        if let Some(at) = timeout_at {
            self.schedule(id, live, TimerKind::Timeout, at);
        }
        self.schedule(id, live, TimerKind::Heartbeat, now + interval);
    }
}

/// Whether an event the peer sends ends the call of a channel we opened
/// at once.
fn ends_call(name: &str) -> bool {
    matches!(name, names::OK | names::ERR)
}

/// A control event `name [n]` on the channel.
fn transmit<H>(
    id: &MessageId,
    channel: &ChannelState<H>,
    name: &'static str,
    n: i64,
    heartbeat: bool,
) -> Transmit {
    let mut header = Header::new();
    header.response_to = Some(id.clone());
    Transmit {
        socket: channel.socket,
        envelope: channel.envelope.clone(),
        channel: id.clone(),
        event: Event::new(header, name, Value::Array(vec![Value::from(n)])),
        heartbeat,
    }
}

#[cfg(test)]
mod tests;
