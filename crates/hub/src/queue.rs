//! The queue hub: channel-aware load balancing of RPC calls over workers.
//!
//! A plain DEALER in front of the workers would spread the events of one
//! call (its heartbeats, its `_zpc_more` credit) over different workers,
//! which do not know the channel. So both sides are ROUTERs and the hub pins
//! every channel to one worker:
//!
//! * a client event without `response_to` opens a channel; it goes to the
//!   connected worker with the fewest outstanding calls (ties in turn), and
//!   the hub remembers channel id → (worker, client envelope);
//! * every later event of the channel goes to that worker, or, coming from
//!   that worker, to that client;
//! * the channel ends on the worker's `OK`, `ERR` or `STREAM_DONE`, when it
//!   has been idle for `idle_timeout`, when its worker disconnects (the
//!   client then gets a `LostRemote` error instead of hanging), or when one
//!   of its events cannot be delivered (see [`loss_breaks_channel`]).
//!
//! Workers are ZeroRPC servers (ROUTERs) that connect to `out` and never
//! speak first: the hub learns them from libzmq's ROUTER_NOTIFY messages.
//! Only headers are decoded; payloads are forwarded untouched.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zerorpc_wire::{Event, Header, MessageId, Value, names};

use crate::hub::{Publisher, Shared, TICK};
use crate::sockets::{is_transient, recv_frames};
use crate::stats::hex;
use crate::{HubConfig, Stats, WorkerStats};

/// A peer's ZeroMQ routing id. Shared, because every channel names its
/// worker and cloning happens on the hot path.
type PeerId = Rc<[u8]>;

/// Messages read from one socket before looking at the other, so a flood on
/// one side cannot starve the other.
const BUDGET: usize = 256;

/// How long to remember a worker dropped on a failed send, so that its late
/// disconnect notification is not mistaken for a new connection.
const GONE_MEMORY: Duration = Duration::from_secs(60);

/// The error name sent to a client whose worker disconnected mid-call;
/// zerorpc-python clients raise it as `RemoteError` with this name.
pub(crate) const LOST_REMOTE: &str = "LostRemote";
/// The error name sent to a client when no worker took its call.
pub(crate) const NO_WORKER: &str = "NoWorkerAvailable";

#[derive(Default)]
struct Worker {
    outstanding: usize,
    calls_routed: u64,
    channels: HashSet<MessageId>,
}

enum Route {
    /// Waiting in the queue for a worker.
    Queued,
    Worker(PeerId),
}

struct Channel {
    route: Route,
    /// The frames that lead to the client on `in` (its routing id, plus any
    /// added by proxies in between).
    envelope: Vec<Box<[u8]>>,
    last_seen: Instant,
}

struct QueuedCall {
    channel: MessageId,
    /// The whole client message: envelope, delimiter, payload.
    frames: Vec<zmq::Message>,
    since: Instant,
}

struct Queue<'a> {
    config: &'a HubConfig,
    inp: &'a zmq::Socket,
    out: &'a zmq::Socket,
    workers: HashMap<PeerId, Worker>,
    /// Connection order, for turn-taking among equally loaded workers.
    order: Vec<PeerId>,
    next: usize,
    gone: HashMap<PeerId, Instant>,
    channels: HashMap<MessageId, Channel>,
    waiting: VecDeque<QueuedCall>,
    stats: Stats,
    publisher: Publisher,
}

/// Runs a queue hub until its stop flag is set.
pub(crate) fn run(
    config: &HubConfig,
    inp: &zmq::Socket,
    out: &zmq::Socket,
    shared: &Shared,
) -> Result<(), zmq::Error> {
    let mut queue = Queue {
        config,
        inp,
        out,
        workers: HashMap::new(),
        order: Vec::new(),
        next: 0,
        gone: HashMap::new(),
        channels: HashMap::new(),
        waiting: VecDeque::new(),
        stats: shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        publisher: Publisher::new(),
    };
    let mut frames = Vec::with_capacity(8);
    let mut next_sweep = Instant::now() + TICK;
    while !shared.stop.load(Ordering::Relaxed) {
        let (in_ready, out_ready) = {
            let mut items = [inp.as_poll_item(zmq::POLLIN), out.as_poll_item(zmq::POLLIN)];
            match zmq::poll(&mut items, queue.publisher.poll_timeout(next_sweep)) {
                Ok(_) => (items[0].is_readable(), items[1].is_readable()),
                Err(e) if is_transient(e) => (false, false),
                Err(e) => return Err(e),
            }
        };
        // Worker traffic first: it ends channels and announces workers,
        // which the client traffic that follows may need.
        if out_ready {
            for _ in 0..BUDGET {
                match recv_frames(out, &mut frames) {
                    Ok(Some(too_many)) => queue.on_worker(&mut frames, too_many, Instant::now()),
                    Ok(None) => break,
                    Err(e) if is_transient(e) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if in_ready {
            for _ in 0..BUDGET {
                match recv_frames(inp, &mut frames) {
                    Ok(Some(too_many)) => queue.on_client(&mut frames, too_many, Instant::now()),
                    Ok(None) => break,
                    Err(e) if is_transient(e) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        let now = Instant::now();
        let sweep = now >= next_sweep;
        if sweep {
            queue.sweep(now);
            next_sweep = now + TICK;
        }
        if queue.publisher.due(now, sweep) {
            shared.publish(queue.snapshot());
        }
    }
    shared.publish(queue.snapshot());
    Ok(())
}

impl Queue<'_> {
    fn on_client(&mut self, frames: &mut Vec<zmq::Message>, too_many: bool, now: Instant) {
        self.publisher.dirty = true;
        let n = frames.len();
        // A client message is [envelope..., "", payload] with a non-empty
        // envelope: the ROUTER adds at least the client's routing id.
        if too_many || n < 3 || !frames[n - 2].is_empty() {
            self.stats.drops.malformed_frames += 1;
            tracing::debug!(frames = n, "client message with a bad frame layout dropped");
            return;
        }
        let (header, name) = match Event::decode_envelope(&frames[n - 1]) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.stats.drops.undecodable += 1;
                tracing::debug!(%error, "undecodable client event dropped");
                return;
            }
        };
        match header.response_to {
            None => self.open_call(header.message_id, frames, now),
            Some(channel) => self.client_event(&channel, &name, frames, now),
        }
    }

    fn open_call(&mut self, id: MessageId, frames: &mut Vec<zmq::Message>, now: Instant) {
        if self.channels.contains_key(&id) {
            self.stats.drops.duplicate_channel += 1;
            return;
        }
        let envelope = frames[..frames.len() - 2]
            .iter()
            .map(|f| Box::from(&f[..]))
            .collect();
        self.channels.insert(
            id.clone(),
            Channel {
                route: Route::Queued,
                envelope,
                last_seen: now,
            },
        );
        let call = QueuedCall {
            channel: id,
            frames: std::mem::take(frames),
            since: now,
        };
        if let Err(call) = self.dispatch(call, now) {
            self.enqueue(call);
        }
    }

    /// Hands a call to the least loaded worker, or gives it back when no
    /// worker can take it now.
    fn dispatch(&mut self, mut call: QueuedCall, now: Instant) -> Result<(), QueuedCall> {
        // Workers whose pipe is full right now: the call goes to the next
        // least loaded one rather than waiting for the least loaded of all.
        let mut full: Vec<PeerId> = Vec::new();
        // Each failed attempt removes a worker or excludes one, so this ends.
        loop {
            let Some(worker) = self.pick(&full) else {
                return Err(call);
            };
            match send_to_peer(self.out, &worker, &mut call.frames) {
                Ok(()) => {
                    if let Some(channel) = self.channels.get_mut(&call.channel) {
                        channel.route = Route::Worker(Rc::clone(&worker));
                        channel.last_seen = now;
                    }
                    if let Some(w) = self.workers.get_mut(&worker) {
                        w.outstanding += 1;
                        w.calls_routed += 1;
                        w.channels.insert(call.channel);
                    }
                    self.stats.calls_routed += 1;
                    self.stats.events_in_to_out += 1;
                    return Ok(());
                }
                Err(zmq::Error::EHOSTUNREACH) => {
                    tracing::info!(worker = %hex(&worker), "worker unreachable, dropping it");
                    self.gone.insert(Rc::clone(&worker), now);
                    self.worker_gone(&worker);
                }
                // Its pipe is full: try the others; when every pipe is
                // full, the call waits for the next sweep.
                Err(_) if !call.frames.is_empty() => full.push(worker),
                // Refused midway (libzmq checks limits on the first frame,
                // so this does not happen): nothing is left to send.
                Err(_) => {
                    self.stats.drops.send_failed += 1;
                    self.channels.remove(&call.channel);
                    return Ok(());
                }
            }
        }
    }

    fn enqueue(&mut self, call: QueuedCall) {
        if self.waiting.len() >= self.config.queue_limit {
            // Calls also wait when every worker's pipe is full.
            let message = if self.order.is_empty() {
                "the hub's queue is full and no worker is connected"
            } else {
                "the hub's queue is full and no worker can take a call now"
            };
            self.fail_queued(&call.channel, message);
            return;
        }
        self.waiting.push_back(call);
    }

    /// Least outstanding calls wins; among equals, the one after the last
    /// chosen, so idle workers take turns. Workers in `full` are skipped.
    fn pick(&mut self, full: &[PeerId]) -> Option<PeerId> {
        let n = self.order.len();
        let mut best: Option<(usize, usize)> = None;
        for k in 0..n {
            let idx = (self.next + k) % n;
            if full.contains(&self.order[idx]) {
                continue;
            }
            let load = self
                .workers
                .get(&self.order[idx])
                .map_or(usize::MAX, |w| w.outstanding);
            if best.is_none_or(|(_, best_load)| load < best_load) {
                best = Some((idx, load));
            }
        }
        let (idx, _) = best?;
        self.next = (idx + 1) % n;
        Some(Rc::clone(&self.order[idx]))
    }

    fn client_event(
        &mut self,
        id: &MessageId,
        name: &str,
        frames: &mut Vec<zmq::Message>,
        now: Instant,
    ) {
        let Some(channel) = self.channels.get_mut(id) else {
            self.stats.drops.unknown_channel += 1;
            return;
        };
        let envelope = &frames[..frames.len() - 2];
        if channel.envelope.len() != envelope.len()
            || channel
                .envelope
                .iter()
                .zip(envelope)
                .any(|(a, b)| **a != **b)
        {
            self.stats.drops.wrong_peer += 1;
            return;
        }
        let Route::Worker(worker) = &channel.route else {
            // Heartbeats of a call still waiting for a worker: the worker
            // will start its own heartbeat clock when the call reaches it.
            self.stats.drops.while_queued += 1;
            return;
        };
        channel.last_seen = now;
        let worker = Rc::clone(worker);
        match send_to_peer(self.out, &worker, frames) {
            Ok(()) => self.stats.events_in_to_out += 1,
            Err(error) => {
                self.stats.drops.send_failed += 1;
                if error == zmq::Error::EHOSTUNREACH {
                    self.gone.insert(Rc::clone(&worker), now);
                    self.worker_gone(&worker);
                } else if loss_breaks_channel(name) {
                    self.end_undeliverable(
                        id,
                        Some("the worker cannot take the call's events (its queue is full)"),
                    );
                }
            }
        }
    }

    fn on_worker(&mut self, frames: &mut Vec<zmq::Message>, too_many: bool, now: Instant) {
        self.publisher.dirty = true;
        let n = frames.len();
        if n == 2 && frames[1].is_empty() && !too_many {
            self.notification(&frames[0], now);
            return;
        }
        // [worker id, client envelope..., "", payload]
        if too_many || n < 3 || !frames[n - 2].is_empty() {
            self.stats.drops.malformed_frames += 1;
            tracing::debug!(frames = n, "worker message with a bad frame layout dropped");
            return;
        }
        let (header, name) = match Event::decode_envelope(&frames[n - 1]) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.stats.drops.undecodable += 1;
                tracing::debug!(%error, "undecodable worker event dropped");
                return;
            }
        };
        let Some(id) = header.response_to else {
            self.stats.drops.not_a_reply += 1;
            return;
        };
        let Some(channel) = self.channels.get_mut(&id) else {
            self.stats.drops.unknown_channel += 1;
            return;
        };
        if !matches!(&channel.route, Route::Worker(owner) if **owner == *frames[0]) {
            self.stats.drops.wrong_peer += 1;
            return;
        }
        let Some(payload) = frames.pop() else { return };
        // Replies go to the client that opened the channel, whatever
        // envelope the worker echoed.
        let last = matches!(name.as_str(), names::OK | names::ERR | names::STREAM_DONE);
        let result = if last {
            let Some(channel) = self.channels.remove(&id) else {
                return;
            };
            if let Route::Worker(worker) = &channel.route {
                self.release(worker, &id);
            }
            send_to_client(self.inp, &channel.envelope, payload)
        } else {
            channel.last_seen = now;
            send_to_client(self.inp, &channel.envelope, payload)
        };
        match result {
            Ok(()) => self.stats.events_out_to_in += 1,
            Err(error) => {
                self.stats.drops.send_failed += 1;
                tracing::debug!(%error, event = %name, "event for a vanished or slow client dropped");
                // The client cannot be told (it is gone, or its queue is
                // full): forgetting the channel stops the heartbeats the
                // hub relays, so both ends notice the loss.
                if !last && (error == zmq::Error::EHOSTUNREACH || loss_breaks_channel(&name)) {
                    self.end_undeliverable(&id, None);
                }
            }
        }
    }

    /// Ends a channel one of whose events could not be delivered, and tells
    /// the client why when it can still be reached.
    fn end_undeliverable(&mut self, id: &MessageId, tell_client: Option<&str>) {
        let Some(channel) = self.channels.remove(id) else {
            return;
        };
        if let Route::Worker(worker) = &channel.route {
            self.release(worker, id);
        }
        self.stats.calls_failed_undeliverable += 1;
        if let Some(message) = tell_client {
            if fail_client(self.inp, &channel.envelope, id, LOST_REMOTE, message).is_err() {
                self.stats.drops.send_failed += 1;
            }
        }
    }

    /// ROUTER_NOTIFY says "this peer connected" and "this peer disconnected"
    /// with the same message; which one it is depends on whether the peer is
    /// known.
    fn notification(&mut self, id: &[u8], now: Instant) {
        if self.gone.remove(id).is_some() {
            return;
        }
        if self.workers.contains_key(id) {
            tracing::info!(worker = %hex(id), "worker disconnected");
            self.worker_gone(id);
            return;
        }
        let id: PeerId = Rc::from(id);
        tracing::info!(worker = %hex(&id), "worker connected");
        self.workers.insert(Rc::clone(&id), Worker::default());
        self.order.push(id);
        self.stats.worker_connects += 1;
        self.drain_waiting(now);
    }

    /// Forgets a worker and fails its open calls, so their clients get an
    /// error now rather than a heartbeat timeout later.
    fn worker_gone(&mut self, id: &[u8]) {
        let Some(worker) = self.workers.remove(id) else {
            return;
        };
        self.order.retain(|w| **w != *id);
        self.stats.worker_disconnects += 1;
        for channel_id in worker.channels {
            if let Some(channel) = self.channels.remove(&channel_id) {
                self.stats.calls_failed_worker_lost += 1;
                let sent = fail_client(
                    self.inp,
                    &channel.envelope,
                    &channel_id,
                    LOST_REMOTE,
                    "worker disconnected while serving the call",
                );
                if sent.is_err() {
                    self.stats.drops.send_failed += 1;
                }
            }
        }
    }

    fn release(&mut self, worker: &[u8], channel: &MessageId) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.outstanding = w.outstanding.saturating_sub(1);
            w.channels.remove(channel);
        }
    }

    fn fail_queued(&mut self, id: &MessageId, message: &str) {
        if let Some(channel) = self.channels.remove(id) {
            self.stats.calls_failed_no_worker += 1;
            if fail_client(self.inp, &channel.envelope, id, NO_WORKER, message).is_err() {
                self.stats.drops.send_failed += 1;
            }
        }
    }

    fn drain_waiting(&mut self, now: Instant) {
        while !self.order.is_empty() {
            let Some(call) = self.waiting.pop_front() else {
                break;
            };
            if let Err(call) = self.dispatch(call, now) {
                self.waiting.push_front(call);
                break;
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        let idle = self.config.idle_timeout;
        let expired: Vec<MessageId> = self
            .channels
            .iter()
            .filter(|(_, c)| {
                matches!(c.route, Route::Worker(_)) && now.duration_since(c.last_seen) >= idle
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(Channel {
                route: Route::Worker(worker),
                ..
            }) = self.channels.remove(&id)
            {
                self.release(&worker, &id);
                self.stats.channels_expired += 1;
                self.publisher.dirty = true;
            }
        }
        let limit = self.config.queue_timeout;
        while self
            .waiting
            .front()
            .is_some_and(|c| now.duration_since(c.since) >= limit)
        {
            if let Some(call) = self.waiting.pop_front() {
                let message = if self.order.is_empty() {
                    format!(
                        "no worker connected to the hub within {:.1}s",
                        limit.as_secs_f64()
                    )
                } else {
                    format!(
                        "no worker could take the call within {:.1}s",
                        limit.as_secs_f64()
                    )
                };
                self.fail_queued(&call.channel, &message);
                self.publisher.dirty = true;
            }
        }
        if !self.waiting.is_empty() {
            self.drain_waiting(now);
            self.publisher.dirty = true;
        }
        self.gone
            .retain(|_, since| now.duration_since(*since) < GONE_MEMORY);
    }

    fn snapshot(&self) -> Stats {
        let workers = self
            .order
            .iter()
            .filter_map(|id| {
                let w = self.workers.get(id)?;
                Some(WorkerStats {
                    id: hex(id),
                    outstanding: w.outstanding,
                    calls_routed: w.calls_routed,
                })
            })
            .collect();
        Stats {
            workers,
            open_channels: self.channels.len(),
            queued_calls: self.waiting.len(),
            ..self.stats.clone()
        }
    }
}

/// Whether losing an event that could not be delivered breaks its channel.
///
/// A lost heartbeat is covered by the next one. Anything else is counted by
/// both ends' credit (PROTOCOL.md §6): a lost stream item leaves the client
/// short of the credit it would grant back, a lost `_zpc_more` leaves the
/// worker waiting for credit, and a lost reply leaves the client waiting;
/// heartbeats would keep such a call alive for ever.
fn loss_breaks_channel(name: &str) -> bool {
    name != names::HEARTBEAT
}

/// Sends `[peer, frames...]` on a ROUTER without blocking. When the first
/// frame is refused, `frames` is left intact for another attempt.
fn send_to_peer(
    socket: &zmq::Socket,
    peer: &[u8],
    frames: &mut Vec<zmq::Message>,
) -> Result<(), zmq::Error> {
    // An empty message would leave a half-sent multipart behind the peer
    // frame, to be completed by whatever is sent next.
    if frames.is_empty() {
        return Err(zmq::Error::EINVAL);
    }
    socket.send(peer, zmq::SNDMORE | zmq::DONTWAIT)?;
    let last = frames.len().saturating_sub(1);
    for (i, frame) in frames.drain(..).enumerate() {
        let more = if i < last { zmq::SNDMORE } else { 0 };
        socket.send(frame, more | zmq::DONTWAIT)?;
    }
    Ok(())
}

/// Sends `[envelope..., "", payload]` to a client on `in`.
fn send_to_client(
    socket: &zmq::Socket,
    envelope: &[Box<[u8]>],
    payload: zmq::Message,
) -> Result<(), zmq::Error> {
    for frame in envelope {
        socket.send(&frame[..], zmq::SNDMORE | zmq::DONTWAIT)?;
    }
    socket.send(&[][..], zmq::SNDMORE | zmq::DONTWAIT)?;
    socket.send(payload, zmq::DONTWAIT)
}

/// Answers a channel with `ERR [name, message, ""]`, echoing the channel id
/// with its original msgpack type so that the client can route it.
fn fail_client(
    socket: &zmq::Socket,
    envelope: &[Box<[u8]>],
    channel: &MessageId,
    name: &str,
    message: &str,
) -> Result<(), zmq::Error> {
    let mut header = Header::new();
    header.response_to = Some(channel.clone());
    let args = Value::Array(vec![
        Value::from(name),
        Value::from(message),
        Value::from(""),
    ]);
    let event = Event::new(header, names::ERR, args);
    send_to_client(socket, envelope, zmq::Message::from(event.encode()))
}
