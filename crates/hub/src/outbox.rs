//! Per-peer send queues of a ROUTER socket with `ROUTER_MANDATORY`.
//!
//! libzmq keeps at most `SNDHWM` messages (1000 by default) in the pipe to
//! each peer. With `ROUTER_MANDATORY`, a send to a peer whose pipe is full
//! fails with `EAGAIN` instead of dropping the message silently; the
//! [`Outbox`] then keeps the whole message, all frames in order, and sends
//! it when the pipe has room again. Once a peer has a message waiting,
//! every newer message for that peer waits behind it, so a peer never sees
//! its events reordered. Each peer's queue is bounded in messages
//! ([`HubConfig::peer_queue_limit`](crate::HubConfig::peer_queue_limit))
//! and in bytes
//! ([`HubConfig::peer_queue_bytes`](crate::HubConfig::peer_queue_bytes));
//! what happens to a message refused at a limit is the caller's policy.
//!
//! # Not spinning on a blocked peer
//!
//! A ROUTER with `ROUTER_MANDATORY` reports `POLLOUT` when *any* peer's pipe
//! has room, so one blocked peer next to a healthy one would make
//! the loop's poll return at once for ever. The outbox therefore asks for
//! `POLLOUT` only until a flush pass sends nothing; after such a pass it
//! waits [`RETRY_BLOCKED`] before trying again, without `POLLOUT`. Each
//! wake-up of the hub loop then either moves messages (work proportional
//! to the traffic) or is one of at most about a thousand retries per
//! second, each costing a poll and one refused `zmq_send` per blocked
//! peer: about 3 % of a core in a debug build, where polling with
//! `POLLOUT` spins a whole one (99 %, measured by the test
//! `queue_backlog::a_blocked_worker_neither_blocks_the_others_nor_spins_the_hub`
//! with the retry delay taken out).

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use zerorpc_wire::MessageId;

use crate::sockets::is_transient;

/// A peer's ZeroMQ routing id. Shared, because every channel names its
/// worker and cloning happens on the hot path.
pub(crate) type PeerId = Rc<[u8]>;

/// How long to wait before trying a blocked peer again after a flush pass
/// that sent nothing: short enough that a peer that resumes reading waits
/// about a millisecond, long enough that the hub does not spin.
pub(crate) const RETRY_BLOCKED: Duration = Duration::from_millis(1);

/// What the queue needs to know about a message to account for it once
/// sent, or to act on its loss.
#[derive(Clone, Copy)]
pub(crate) struct About<'m> {
    /// The channel the event belongs to.
    pub(crate) channel: &'m MessageId,
    /// Whether the event came from a peer (counted in the stats as
    /// forwarded once sent) rather than from the hub itself.
    pub(crate) relayed: bool,
    /// Whether losing it breaks its channel (anything but a heartbeat).
    pub(crate) vital: bool,
}

/// What a waiting message costs besides its frames: its bookkeeping and
/// the allocator's, so that a flood of empty frames is bounded too.
const PENDING_OVERHEAD: usize = 64;

/// A message waiting for room in its peer's pipe.
pub(crate) struct Pending {
    /// Every frame after the routing id, in order.
    frames: Vec<zmq::Message>,
    /// See [`About::channel`].
    pub(crate) channel: MessageId,
    /// See [`About::relayed`].
    pub(crate) relayed: bool,
    /// See [`About::vital`].
    pub(crate) vital: bool,
}

impl Pending {
    /// The bytes it holds, as counted against the byte limit.
    fn size(&self) -> usize {
        self.frames.iter().map(|f| f.len()).sum::<usize>() + PENDING_OVERHEAD
    }
}

/// The messages waiting for one peer.
#[derive(Default)]
struct PeerQueue {
    messages: VecDeque<Pending>,
    bytes: usize,
}

/// What became of a message handed to [`Outbox::send`].
#[derive(Debug)]
pub(crate) enum Sent {
    /// ZeroMQ took it.
    Now,
    /// The peer's pipe is full, or older messages wait for it: the message
    /// waits in the peer's queue.
    Queued,
    /// The peer's queue is at one of its limits; the message was not taken and
    /// `frames` is left as it was.
    QueueFull,
    /// The peer is gone (`EHOSTUNREACH`); `frames` is left as it was.
    PeerGone,
    /// Any other failure; the message is lost.
    Failed(zmq::Error),
}

/// Messages lost while flushing: the peer vanished (`EHOSTUNREACH`, and
/// then every message queued for it is here), or another error.
pub(crate) struct Lost {
    pub(crate) peer: PeerId,
    pub(crate) messages: Vec<Pending>,
    pub(crate) error: zmq::Error,
}

/// The messages a flush pass moved.
#[derive(Default)]
pub(crate) struct Flushed {
    /// Messages ZeroMQ took.
    pub(crate) sent: usize,
    /// How many of them were events relayed from a peer.
    pub(crate) relayed: u64,
}

/// The send queues of one ROUTER socket, one per peer that has messages
/// waiting.
pub(crate) struct Outbox<'a> {
    socket: &'a zmq::Socket,
    limits: Limits,
    /// Only peers with at least one message waiting: a peer absent here
    /// can be sent to directly.
    peers: HashMap<PeerId, PeerQueue, foldhash::fast::RandomState>,
    queued: usize,
    queued_bytes: usize,
    /// Set when the last flush pass sent nothing: when to try again.
    retry_at: Option<Instant>,
}

/// How much may wait for one peer.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    /// Messages.
    pub(crate) messages: usize,
    /// Bytes of frames (plus a small overhead per message). A queue with
    /// nothing waiting takes one message of any size (up to the largest
    /// message ZeroMQ lets in), so that a large reply is delayed, not
    /// refused.
    pub(crate) bytes: usize,
}

impl<'a> Outbox<'a> {
    pub(crate) fn new(socket: &'a zmq::Socket, limits: Limits) -> Self {
        Outbox {
            socket,
            limits,
            peers: HashMap::default(),
            queued: 0,
            queued_bytes: 0,
            retry_at: None,
        }
    }

    /// Messages waiting, all peers together.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Bytes waiting, all peers together, as counted against the limit.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Messages waiting for `peer`.
    pub(crate) fn queued_for(&self, peer: &[u8]) -> usize {
        self.peers.get(peer).map_or(0, |queue| queue.messages.len())
    }

    /// Sends `[peer, frames...]`, or queues it behind the peer's waiting
    /// messages. `frames` is emptied when the message was taken (sent,
    /// queued or lost), and left intact when it was refused
    /// ([`Sent::QueueFull`], [`Sent::PeerGone`]), so that the caller can
    /// try another peer.
    pub(crate) fn send(
        &mut self,
        peer: &[u8],
        frames: &mut Vec<zmq::Message>,
        about: About<'_>,
    ) -> Sent {
        if self.peers.contains_key(peer) {
            return self.enqueue(peer, frames, about);
        }
        match send_frames(self.socket, peer, frames) {
            Attempt::Sent => Sent::Now,
            Attempt::Refused(error) if is_transient(error) => self.enqueue(peer, frames, about),
            Attempt::Refused(zmq::Error::EHOSTUNREACH) => Sent::PeerGone,
            Attempt::Refused(error) | Attempt::Broken(error) => {
                frames.clear();
                Sent::Failed(error)
            }
        }
    }

    fn enqueue(&mut self, peer: &[u8], frames: &mut Vec<zmq::Message>, about: About<'_>) -> Sent {
        let size = frames.iter().map(|f| f.len()).sum::<usize>() + PENDING_OVERHEAD;
        let (waiting, bytes) = self
            .peers
            .get(peer)
            .map_or((0, 0), |queue| (queue.messages.len(), queue.bytes));
        // An empty queue takes a message of any size (see `Limits::bytes`).
        if waiting >= self.limits.messages || (waiting > 0 && bytes + size > self.limits.bytes) {
            return Sent::QueueFull;
        }
        let pending = Pending {
            frames: std::mem::take(frames),
            channel: about.channel.clone(),
            relayed: about.relayed,
            vital: about.vital,
        };
        let queue = match self.peers.get_mut(peer) {
            Some(queue) => queue,
            None => self.peers.entry(Rc::from(peer)).or_default(),
        };
        queue.messages.push_back(pending);
        queue.bytes += size;
        self.queued += 1;
        self.queued_bytes += size;
        Sent::Queued
    }

    /// Forgets the messages waiting for a peer that is gone; returns them.
    pub(crate) fn discard(&mut self, peer: &[u8]) -> VecDeque<Pending> {
        let dropped = self.peers.remove(peer).unwrap_or_default();
        self.queued -= dropped.messages.len();
        self.queued_bytes -= dropped.bytes;
        dropped.messages
    }

    /// The events to poll the socket for, besides `POLLIN`: `POLLOUT` while
    /// messages wait, unless the last flush pass found every waiting peer
    /// still blocked (see the module documentation).
    pub(crate) fn poll_events(&self) -> zmq::PollEvents {
        if !self.peers.is_empty() && self.retry_at.is_none() {
            zmq::POLLOUT
        } else {
            zmq::PollEvents::empty()
        }
    }

    /// When the loop must wake up to retry blocked peers, if it must.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether a flush pass is worth making now: messages wait, and the
    /// socket reported room or the retry delay is over.
    pub(crate) fn flush_due(&self, writable: bool, now: Instant) -> bool {
        !self.peers.is_empty() && (writable || self.retry_at.is_some_and(|at| now >= at))
    }

    /// Sends waiting messages, oldest first for each peer, until each
    /// peer's pipe is full again or its queue is empty. Messages that can
    /// never be sent are appended to `lost`.
    pub(crate) fn flush(&mut self, now: Instant, lost: &mut Vec<Lost>) -> Flushed {
        let socket = self.socket;
        let mut flushed = Flushed::default();
        let mut removed = 0;
        let mut freed = 0;
        // A pass is bounded by the room in the pipes: at most SNDHWM
        // messages per peer before libzmq refuses again.
        self.peers.retain(|peer, queue| {
            let before = queue.bytes;
            let keep = flush_peer(socket, peer, queue, &mut flushed, &mut removed, lost);
            freed += if keep { before - queue.bytes } else { before };
            keep
        });
        self.queued -= flushed.sent + removed;
        self.queued_bytes -= freed;
        self.retry_at = if self.peers.is_empty() || flushed.sent > 0 {
            None
        } else {
            Some(now + RETRY_BLOCKED)
        };
        flushed
    }
}

/// Sends what waits for one peer until its pipe is full; says whether
/// anything still waits for it.
fn flush_peer(
    socket: &zmq::Socket,
    peer: &PeerId,
    queue: &mut PeerQueue,
    flushed: &mut Flushed,
    removed: &mut usize,
    lost: &mut Vec<Lost>,
) -> bool {
    while let Some(front) = queue.messages.front_mut() {
        // Measured first: a send drains the frames.
        let size = front.size();
        match send_frames(socket, peer, &mut front.frames) {
            Attempt::Sent => {
                flushed.sent += 1;
                flushed.relayed += u64::from(front.relayed);
                queue.messages.pop_front();
                queue.bytes -= size;
            }
            Attempt::Refused(error) if is_transient(error) => return true,
            Attempt::Refused(zmq::Error::EHOSTUNREACH) => {
                *removed += queue.messages.len();
                lost.push(Lost {
                    peer: Rc::clone(peer),
                    messages: std::mem::take(&mut queue.messages).into(),
                    error: zmq::Error::EHOSTUNREACH,
                });
                return false;
            }
            Attempt::Refused(error) | Attempt::Broken(error) => {
                *removed += 1;
                queue.bytes -= size;
                lost.push(Lost {
                    peer: Rc::clone(peer),
                    messages: queue.messages.pop_front().into_iter().collect(),
                    error,
                });
            }
        }
    }
    false
}

/// The outcome of one attempt to send a whole message.
enum Attempt {
    Sent,
    /// Refused at the routing id, before any frame left: the frames are
    /// intact. With `ROUTER_MANDATORY`, `EAGAIN` (the peer's pipe is full)
    /// and `EHOSTUNREACH` (no such peer) can only happen here, because
    /// libzmq checks the pipe once per message, on its first frame.
    Refused(zmq::Error),
    /// Failed after the routing id: the message is lost.
    Broken(zmq::Error),
}

/// Sends `[peer, frames...]` on a ROUTER without blocking, draining
/// `frames` unless the routing id is refused.
fn send_frames(socket: &zmq::Socket, peer: &[u8], frames: &mut Vec<zmq::Message>) -> Attempt {
    // A routing id alone would leave a half-sent multipart behind, to be
    // completed by whatever is sent next.
    if frames.is_empty() {
        return Attempt::Broken(zmq::Error::EINVAL);
    }
    if let Err(error) = socket.send(peer, zmq::SNDMORE | zmq::DONTWAIT) {
        return Attempt::Refused(error);
    }
    let last = frames.len() - 1;
    for (i, frame) in frames.drain(..).enumerate() {
        let more = if i < last { zmq::SNDMORE } else { 0 };
        if let Err(error) = socket.send(frame, more | zmq::DONTWAIT) {
            return Attempt::Broken(error);
        }
    }
    Attempt::Sent
}
