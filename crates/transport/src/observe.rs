//! Observers: what a socket sends and receives, and what becomes of its
//! channels, reported from its I/O thread.
//!
//! Observers are called by the I/O thread only, because it is the one
//! place that sees everything: the application's events as they are handed
//! to ZeroMQ, the heartbeats and credit it makes itself, every event that
//! arrives (including those it then drops) and every channel's end. That
//! thread also keeps the heartbeats of every channel flowing, so an
//! observer that blocks would make peers think this side dead: observers
//! must return quickly. Anything slow (printing, storing, exporting) goes
//! behind a [`ChannelObserver`], which hands records to another thread over
//! a bounded queue and counts what it had to drop when that thread lags.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use smallvec::SmallVec;
use zerorpc_wire::{Event, MessageId};

use crate::{Error, ErrorKind, SocketKind};

/// Sees every event a socket sends or receives and every change of its
/// channels.
///
/// Both methods are called on the socket's I/O thread, in the order things
/// happen there, and never concurrently for one socket. They must be quick
/// and must never block: the same thread sends the heartbeats of every
/// channel. Put a [`ChannelObserver`] in front of anything slow. A panic
/// in an observer is caught and logged, and the socket carries on. An
/// observer cannot change events; request headers derive from the call
/// being served through the core crate's `Propagation`.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use zerorpc_transport::{Direction, EventInfo, Observer, Socket, SocketConfig, SocketKind};
///
/// /// Counts the heartbeats a socket sends.
/// #[derive(Default)]
/// struct HeartbeatsSent(AtomicU64);
///
/// impl Observer for HeartbeatsSent {
///     fn on_event(&self, info: &EventInfo) {
///         if info.control && info.direction == Direction::Sent {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
///
/// let counter = Arc::new(HeartbeatsSent::default());
/// let mut config = SocketConfig::new();
/// config.observers.push(counter.clone());
/// let client = Socket::new(SocketKind::Client, config)?;
/// # drop(client);
/// # Ok::<(), zerorpc_transport::Error>(())
/// ```
pub trait Observer: Send + Sync + 'static {
    /// An event was handed to ZeroMQ, or received and decoded.
    fn on_event(&self, info: &EventInfo) {
        let _ = info;
    }

    /// A channel opened or ended, or an event was dropped.
    fn on_channel(&self, change: &ChannelChange) {
        let _ = change;
    }
}

/// Which way an event went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Handed to ZeroMQ (or to a send queue, for a slow peer).
    Sent,
    /// Received and decoded.
    Received,
}

/// Who is at the other end, as far as the socket knows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A server's peer, by its ROUTER routing id.
    RoutingId(RoutingId),
    /// The endpoint a client socket connected to: each endpoint has a
    /// ZeroMQ socket of its own, so its events have one peer (shared, as
    /// every event observed on it names it).
    Endpoint(Arc<str>),
    /// ZeroMQ does not say (bound client sockets, push, pull, publish and
    /// subscribe sockets, which may have many peers).
    Unknown,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::RoutingId(id) => write!(f, "peer {id}"),
            Peer::Endpoint(endpoint) => f.write_str(endpoint),
            Peer::Unknown => f.write_str("unknown peer"),
        }
    }
}

/// A ROUTER routing id: the bytes ZeroMQ names a server's peer by.
///
/// Kept inline up to [`RoutingId::INLINE`] bytes (ZeroMQ makes them five
/// bytes long; a peer may set its own, up to 255), so that naming the peer
/// of every observed event and channel change allocates nothing.
#[derive(PartialEq, Eq, Hash)]
pub struct RoutingId(SmallVec<[u8; RoutingId::INLINE]>);

/// A copy of the bytes: `SmallVec`'s own `Clone` goes element by element
/// (through `Extend`), and a server's observers clone the id of every
/// event and channel change they are told of.
impl Clone for RoutingId {
    fn clone(&self) -> Self {
        RoutingId::from(self.as_bytes())
    }
}

impl RoutingId {
    /// The longest id kept without an allocation.
    pub const INLINE: usize = 16;

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for RoutingId {
    fn from(bytes: &[u8]) -> Self {
        RoutingId(SmallVec::from_slice(bytes))
    }
}

impl std::ops::Deref for RoutingId {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Hex, as ZeroMQ's ids are binary.
impl fmt::Display for RoutingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for RoutingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoutingId({self})")
    }
}

/// An event that passed, with where it went.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EventInfo {
    /// The event, as encoded on the wire.
    pub event: Event,
    /// Sent or received.
    pub direction: Direction,
    /// The channel it belongs to: its `response_to`, or its own
    /// `message_id` when it opens a channel. `None` for push, pull,
    /// publish and subscribe events, which have no channel.
    pub channel: Option<MessageId>,
    /// The other end.
    pub peer: Peer,
    /// The kind of socket that saw it.
    pub socket: SocketKind,
    /// Which of the socket's ZeroMQ sockets carried it (a client has one
    /// per connected endpoint): ids count up from 0 in the order the
    /// sockets were made and are never reused.
    pub socket_id: u64,
    /// A heartbeat or credit grant (`_zpc_hb`, `_zpc_more`), made and
    /// consumed by the transport rather than the application.
    pub control: bool,
}

/// Something that happened to a channel, or an event that reached none.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChannelChange {
    /// What happened.
    pub change: ChangeKind,
    /// The channel concerned; `None` for a dropped event that named none.
    pub channel: Option<MessageId>,
    /// The other end.
    pub peer: Peer,
    /// The kind of socket it happened on.
    pub socket: SocketKind,
    /// Which of the socket's ZeroMQ sockets it concerns (see
    /// [`EventInfo::socket_id`]).
    pub socket_id: u64,
}

/// What happened to a channel.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ChangeKind {
    /// We opened the channel (a client's request left).
    Opened,
    /// A peer opened the channel and the socket accepted it.
    Accepted,
    /// The channel ended, for this reason; nothing more passes on it.
    Closed(Ending, Error),
    /// An event was dropped, for this reason.
    Dropped(DropReason),
}

/// Why a channel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Closed on this side: the handle was dropped, the socket closed, or
    /// a new channel took its id.
    Closed,
    /// No reply within the first-reply timeout.
    TimedOut,
    /// The peer's heartbeats stopped.
    LostRemote,
    /// The peer disconnected while we had something to send it.
    PeerGone,
    /// The peer reads nothing and the send queue for it is full.
    QueueFull,
    /// ZeroMQ refused to send for another reason.
    SendFailed,
}

impl Ending {
    pub(crate) fn of(error: &Error) -> Ending {
        match error.kind() {
            ErrorKind::Timeout => Ending::TimedOut,
            ErrorKind::LostRemote if error.is_peer_gone() => Ending::PeerGone,
            ErrorKind::LostRemote => Ending::LostRemote,
            ErrorKind::QueueFull => Ending::QueueFull,
            ErrorKind::Closed => Ending::Closed,
            _ => Ending::SendFailed,
        }
    }
}

/// Why an event was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Received, not heartbeat or credit, and no channel wants it (it came
    /// after its call gave up, or opened a channel twice).
    Unroutable,
    /// Heartbeat or credit received for a channel that already ended:
    /// normal, as the protocol has no close event.
    LateControl,
    /// Received but not a valid event, or without a usable envelope.
    Malformed,
    /// Not sent: the send queue for its peer is full.
    QueueFull,
    /// Not sent: its peer disconnected.
    PeerGone,
    /// Not sent: ZeroMQ refused it for another reason.
    SendFailed,
}

/// What a [`ChannelObserver`] forwards.
#[derive(Clone, Debug)]
pub enum Observed {
    /// See [`Observer::on_event`].
    Event(EventInfo),
    /// See [`Observer::on_channel`].
    Channel(ChannelChange),
}

/// An observer that forwards what it sees to another thread over a bounded
/// queue, for observers too slow for the I/O thread.
///
/// The I/O thread never waits for the queue: when it is full, the record is
/// dropped and counted ([`ChannelObserver::dropped`]), so a slow consumer
/// loses records but never delays a call or a heartbeat.
///
/// ```
/// use std::sync::Arc;
/// use zerorpc_transport::{ChannelObserver, Observed, Socket, SocketConfig, SocketKind};
///
/// let (observer, records) = ChannelObserver::new(1024);
/// let mut config = SocketConfig::new();
/// config.observers.push(Arc::new(observer));
/// let client = Socket::new(SocketKind::Client, config)?;
/// let printer = std::thread::spawn(move || {
///     // Ends once the socket, and with it the observer, is gone.
///     for record in records.iter() {
///         if let Observed::Event(info) = record {
///             eprintln!("{:?} {}", info.direction, info.event.name);
///         }
///     }
/// });
/// drop(client);
/// printer.join().unwrap();
/// # Ok::<(), zerorpc_transport::Error>(())
/// ```
#[derive(Debug)]
pub struct ChannelObserver {
    sender: mpsc::SyncSender<Observed>,
    dropped: Arc<AtomicU64>,
}

impl ChannelObserver {
    /// An observer whose queue holds up to `capacity` records, and the
    /// receiving end of that queue.
    pub fn new(capacity: usize) -> (ChannelObserver, Observations) {
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let observer = ChannelObserver {
            sender,
            dropped: dropped.clone(),
        };
        (observer, Observations { receiver, dropped })
    }

    /// Records dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn forward(&self, record: Observed) {
        if let Err(mpsc::TrySendError::Full(_)) = self.sender.try_send(record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Observer for ChannelObserver {
    fn on_event(&self, info: &EventInfo) {
        self.forward(Observed::Event(info.clone()));
    }

    fn on_channel(&self, change: &ChannelChange) {
        self.forward(Observed::Channel(change.clone()));
    }
}

/// The receiving end of a [`ChannelObserver`]'s queue. Receiving ends
/// (returns `None`) once the observer is dropped, with its socket, and
/// everything it queued has been read.
#[derive(Debug)]
pub struct Observations {
    receiver: mpsc::Receiver<Observed>,
    dropped: Arc<AtomicU64>,
}

impl Observations {
    /// Waits for the next record.
    pub fn recv(&self) -> Option<Observed> {
        self.receiver.recv().ok()
    }

    /// Waits up to `timeout` for the next record.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Observed> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// The next record if one waits.
    pub fn try_recv(&self) -> Option<Observed> {
        self.receiver.try_recv().ok()
    }

    /// Every record, waiting for each, until the observer is gone.
    pub fn iter(&self) -> impl Iterator<Item = Observed> + '_ {
        self.receiver.iter()
    }

    /// Records the observer dropped so far because this end lagged.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_routing_id_keeps_every_byte_inline_or_not_and_prints_as_hex() {
        let zeromq_made: &[u8] = &[0, 0x6b, 0x8b, 0x45, 0x67];
        let id = RoutingId::from(zeromq_made);
        assert_eq!(id.as_bytes(), zeromq_made);
        assert_eq!(id.to_string(), "006b8b4567");
        assert_eq!(Peer::RoutingId(id).to_string(), "peer 006b8b4567");

        let chosen_by_peer = vec![0xab; 255];
        let long = RoutingId::from(chosen_by_peer.as_slice());
        assert_eq!(&*long, chosen_by_peer.as_slice());
        assert_eq!(long.to_string(), "ab".repeat(255));
        assert_ne!(long, RoutingId::from(&chosen_by_peer[..254]));
    }
}
