//! The queue hub: channel-aware load balancing of RPC calls over workers.
//!
//! A plain DEALER in front of the workers would spread the events of one
//! call (its heartbeats, its `_zpc_more` credit) over different workers,
//! which do not know the channel. So both sides are ROUTERs and the hub pins
//! every channel to one worker:
//!
//! * a client event without `response_to` opens a channel; it goes to the
//!   connected worker with the fewest outstanding calls (ties in turn), and
//!   the hub remembers channel id → (worker, client envelope), and the
//!   worker gets the event without the envelope (`["", payload]` behind
//!   its routing id: one frame less each way);
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
//!
//! # Delivery
//!
//! A peer that reads slower than events arrive for it (a client whose
//! replies come back in a burst, a worker busy with earlier calls) fills
//! the ZeroMQ pipe toward it. Nothing is dropped then: each side has an
//! [`Outbox`] that keeps, per peer and in order, the messages its pipe
//! refused, and sends them as soon as it has room. A peer's queue is
//! bounded by [`HubConfig::peer_queue_limit`]; at the limit, a heartbeat
//! is dropped (the next one covers it) and any other event ends its
//! channel, because the call could not go on with an event missing. A
//! worker whose queue holds messages still takes new calls (they wait
//! behind), unless its queue is at the limit. Every loss is counted, by
//! reason, in [`Drops`](crate::Drops).

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zerorpc_wire::{Event, Header, MessageId, Value, names};

use crate::hub::{Publisher, Shared, TICK};
use crate::outbox::{About, Limits, Lost, Outbox, PeerId, Sent};
use crate::sockets::{Peers, is_transient, poll_two, recv_frames};
use crate::stats::hex;
use crate::{HubConfig, Stats, WorkerStats};

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
    channels: FastSet<MessageId>,
    /// When a disconnection notification came for it while libzmq still
    /// had its connection: the worker takes no new calls until the
    /// connection is gone (a real disconnection, which libzmq finishes
    /// within a loop turn or two) or [`LEAVING_GRACE`] passes (the worker
    /// sent the notification's two frames itself).
    leaving: Option<Instant>,
}

/// How long a worker whose disconnection notification came while its
/// connection still existed may keep that connection before the
/// notification counts as sent by the worker itself. libzmq removes a
/// closed connection as soon as the hub has read past its notification.
const LEAVING_GRACE: Duration = Duration::from_secs(1);

/// How often workers said to be leaving are looked at while there are any.
const LEAVING_CHECK: Duration = Duration::from_millis(1);

/// The hub's maps, keyed by ids peers choose: foldhash, randomly seeded
/// per map, is several times cheaper than SipHash for these short keys
/// (the hub's thread spent 7% of its instructions hashing).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

enum Route {
    /// Waiting in the queue for a worker.
    Queued,
    Worker(PeerId),
}

struct Channel {
    route: Route,
    /// The frames that lead to the client on `in` (its routing id, plus any
    /// added by proxies in between). Never empty: a ROUTER always adds the
    /// routing id.
    envelope: Vec<Box<[u8]>>,
    last_seen: Instant,
}

struct QueuedCall {
    channel: MessageId,
    /// The message for the worker: delimiter and payload.
    frames: Vec<zmq::Message>,
    since: Instant,
}

/// Which way an event was going.
#[derive(Clone, Copy)]
enum Toward {
    Client,
    Worker,
}

struct Queue<'a> {
    config: &'a HubConfig,
    /// Messages waiting for clients, on `in`, keyed by routing id.
    to_clients: Outbox<'a>,
    /// Messages waiting for workers, on `out`, keyed by worker id.
    to_workers: Outbox<'a>,
    workers: FastMap<PeerId, Worker>,
    /// Workers with [`Worker::leaving`] set.
    leaving: usize,
    /// Which workers `out` is connected with.
    peers: Peers<'a>,
    /// Connection order, for turn-taking among equally loaded workers.
    order: Vec<PeerId>,
    next: usize,
    gone: FastMap<PeerId, Instant>,
    channels: FastMap<MessageId, Channel>,
    waiting: VecDeque<QueuedCall>,
    stats: Stats,
    publisher: Publisher,
    /// Reused by flush passes.
    lost: Vec<Lost>,
    /// Told of every request.
    observer: Option<&'a dyn crate::hub::RouteObserver>,
}

/// Runs a queue hub until its stop flag is set.
pub(crate) fn run(
    config: &HubConfig,
    inp: &zmq::Socket,
    out: &mut zmq::Socket,
    shared: &Shared,
) -> Result<(), zmq::Error> {
    let (peers, out) = Peers::of(out);
    let limits = Limits {
        messages: config.peer_queue_limit,
        bytes: config.peer_queue_bytes,
    };
    let mut queue = Queue {
        config,
        to_clients: Outbox::new(inp, limits),
        to_workers: Outbox::new(out, limits),
        workers: FastMap::default(),
        leaving: 0,
        peers,
        order: Vec::new(),
        next: 0,
        gone: FastMap::default(),
        channels: FastMap::default(),
        waiting: VecDeque::new(),
        stats: shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        publisher: Publisher::new(),
        lost: Vec::new(),
        observer: shared.observer.as_deref(),
    };
    let mut frames = Vec::with_capacity(8);
    let mut next_sweep = Instant::now() + TICK;
    while !shared.stop.load(Ordering::Relaxed) {
        let leaving_check = (queue.leaving > 0).then(|| Instant::now() + LEAVING_CHECK);
        let next_timer = [
            queue.to_clients.retry_at(),
            queue.to_workers.retry_at(),
            leaving_check,
        ]
        .into_iter()
        .flatten()
        .fold(next_sweep, Instant::min);
        let ready = {
            let items = [
                (inp, zmq::POLLIN | queue.to_clients.poll_events()),
                (out, zmq::POLLIN | queue.to_workers.poll_events()),
            ];
            match poll_two(items, queue.publisher.poll_timeout(next_timer)) {
                Ok([clients, workers]) => Ready {
                    clients_readable: clients.contains(zmq::POLLIN),
                    clients_writable: clients.contains(zmq::POLLOUT),
                    workers_readable: workers.contains(zmq::POLLIN),
                    workers_writable: workers.contains(zmq::POLLOUT),
                },
                Err(e) if is_transient(e) => Ready::default(),
                Err(e) => return Err(e),
            }
        };
        let now = Instant::now();
        if queue.to_workers.flush_due(ready.workers_writable, now) {
            queue.flush_to_workers(now);
        }
        if queue.to_clients.flush_due(ready.clients_writable, now) {
            queue.flush_to_clients(now);
        }
        // Worker traffic first: it ends channels and announces workers,
        // which the client traffic that follows may need.
        if ready.workers_readable {
            for _ in 0..BUDGET {
                match recv_frames(out, &mut frames) {
                    Ok(Some(too_many)) => queue.on_worker(&mut frames, too_many, Instant::now()),
                    Ok(None) => break,
                    Err(e) if is_transient(e) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if ready.clients_readable {
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
        if queue.leaving > 0 {
            queue.settle_leaving(now);
        }
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

/// What [`poll_two`] reported.
#[derive(Default)]
struct Ready {
    clients_readable: bool,
    clients_writable: bool,
    workers_readable: bool,
    workers_writable: bool,
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
            None => {
                if let Some(observer) = self.observer {
                    observer.request(&header, &name);
                }
                self.open_call(header.message_id, frames, now)
            }
            Some(channel) => self.client_event(&channel, &name, frames, now),
        }
    }

    fn open_call(&mut self, id: MessageId, frames: &mut Vec<zmq::Message>, now: Instant) {
        if self.channels.contains_key(&id) {
            self.stats.drops.duplicate_channel += 1;
            return;
        }
        let n = frames.len();
        let envelope = frames[..n - 2].iter().map(|f| Box::from(&f[..])).collect();
        // The worker gets `["", payload]` behind its routing id: the client's
        // envelope stays here, since replies go by the channel's record.
        frames.drain(..n - 2);
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
    /// worker can take it now (none connected, or every one's queue at its
    /// limit).
    fn dispatch(&mut self, mut call: QueuedCall, now: Instant) -> Result<(), QueuedCall> {
        // Workers whose queue is at its limit: the call goes to the next
        // least loaded one rather than waiting for the least loaded of all.
        let mut full: Vec<PeerId> = Vec::new();
        // Each failed attempt removes a worker or excludes one, so this ends.
        loop {
            let Some(worker) = self.pick(&full) else {
                return Err(call);
            };
            let about = About {
                channel: &call.channel,
                relayed: true,
                vital: true,
            };
            match self.to_workers.send(&worker, &mut call.frames, about) {
                sent @ (Sent::Now | Sent::Queued) => {
                    self.count_delivery(&sent, Toward::Worker);
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
                    return Ok(());
                }
                Sent::QueueFull => full.push(worker),
                Sent::PeerGone => {
                    tracing::info!(worker = %hex(&worker), "worker unreachable, dropping it");
                    self.gone.insert(Rc::clone(&worker), now);
                    self.worker_gone(&worker);
                }
                Sent::Failed(error) => {
                    self.stats.drops.send_failed += 1;
                    let message = format!("the hub could not send the call to a worker: {error}");
                    self.end_undeliverable(&call.channel, Some(&message));
                    return Ok(());
                }
            }
        }
    }

    fn enqueue(&mut self, call: QueuedCall) {
        if self.waiting.len() >= self.config.queue_limit {
            // Calls also wait when every worker's queue is at its limit.
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
    ///
    /// Messages waiting in a worker's queue do not count against it: a
    /// worker slow to read has more outstanding calls anyway, and counting
    /// both would make a burst of credit for one long call push every new
    /// call away from a worker that is otherwise idle.
    fn pick(&mut self, full: &[PeerId]) -> Option<PeerId> {
        let n = self.order.len();
        let mut best: Option<(usize, usize)> = None;
        for k in 0..n {
            let idx = (self.next + k) % n;
            if full.contains(&self.order[idx])
                || self
                    .workers
                    .get(&self.order[idx])
                    .is_some_and(|w| w.leaving.is_some())
            {
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
            self.unknown_channel(name);
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
        frames.drain(..frames.len() - 2);
        let about = About {
            channel: id,
            relayed: true,
            vital: loss_breaks_channel(name),
        };
        let sent = self.to_workers.send(&worker, frames, about);
        self.count_delivery(&sent, Toward::Worker);
        match sent {
            Sent::Now | Sent::Queued => {}
            Sent::QueueFull => self.queue_full(id, name, Toward::Worker),
            Sent::PeerGone => {
                tracing::info!(worker = %hex(&worker), "worker unreachable, dropping it");
                self.gone.insert(Rc::clone(&worker), now);
                self.worker_gone(&worker);
            }
            Sent::Failed(error) => {
                if about.vital {
                    let message = format!("the hub could not send an event to the worker: {error}");
                    self.end_undeliverable(id, Some(&message));
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
        if let Some(worker) = self.workers.get_mut(&*frames[0])
            && worker.leaving.take().is_some()
        {
            // Nothing follows a real notification on its connection.
            self.leaving -= 1;
            self.stats.drops.malformed_frames += 1;
            tracing::debug!(worker = %hex(&frames[0]), "a worker that said it left is still talking");
        }
        // [worker id, "", payload]; frames a worker puts before the
        // delimiter are ignored, as replies go by the channel's record.
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
            self.unknown_channel(&name);
            return;
        };
        if !matches!(&channel.route, Route::Worker(owner) if **owner == *frames[0]) {
            self.stats.drops.wrong_peer += 1;
            return;
        }
        let Some(payload) = frames.pop() else { return };
        let about = About {
            channel: &id,
            relayed: true,
            vital: loss_breaks_channel(&name),
        };
        // Replies go to the client that opened the channel, whatever
        // envelope the worker echoed.
        let last = matches!(&*name, names::OK | names::ERR | names::STREAM_DONE);
        let sent = if last {
            let Some(channel) = self.channels.remove(&id) else {
                return;
            };
            if let Route::Worker(worker) = &channel.route {
                self.release(worker, &id);
            }
            to_client(frames, &channel.envelope, payload);
            self.to_clients.send(&channel.envelope[0], frames, about)
        } else {
            channel.last_seen = now;
            to_client(frames, &channel.envelope, payload);
            self.to_clients.send(&channel.envelope[0], frames, about)
        };
        self.count_delivery(&sent, Toward::Client);
        // A client that is gone or cannot take more cannot be told: the
        // hub forgets the channel, which stops the heartbeats it relays, so
        // both ends notice the loss.
        match sent {
            Sent::Now | Sent::Queued => {}
            Sent::QueueFull => {
                if !last {
                    self.queue_full(&id, &name, Toward::Client);
                }
            }
            Sent::PeerGone => {
                tracing::debug!(event = %name, "event for a vanished client dropped");
                if !last {
                    self.end_undeliverable(&id, None);
                }
            }
            Sent::Failed(error) => {
                tracing::debug!(%error, event = %name, "event for a client dropped");
                if !last && about.vital {
                    self.end_undeliverable(&id, None);
                }
            }
        }
    }

    /// Counts what [`Outbox::send`] did with an event: forwarded, waiting,
    /// or dropped for a reason.
    fn count_delivery(&mut self, sent: &Sent, toward: Toward) {
        match sent {
            Sent::Now => match toward {
                Toward::Client => self.stats.events_out_to_in += 1,
                Toward::Worker => self.stats.events_in_to_out += 1,
            },
            Sent::Queued => {
                let queued = self.to_clients.queued() + self.to_workers.queued();
                self.stats.queued_messages_peak = self.stats.queued_messages_peak.max(queued);
                let bytes = self.to_clients.queued_bytes() + self.to_workers.queued_bytes();
                self.stats.queued_bytes_peak = self.stats.queued_bytes_peak.max(bytes);
            }
            Sent::QueueFull => self.stats.drops.queue_full += 1,
            Sent::PeerGone => self.stats.drops.peer_gone += 1,
            Sent::Failed(_) => self.stats.drops.send_failed += 1,
        }
    }

    /// Applies the policy for an event dropped because its peer's queue is
    /// at `peer_queue_limit` (already counted): a heartbeat's loss is
    /// covered by the next one; any other loss ends the channel (see
    /// [`loss_breaks_channel`]).
    fn queue_full(&mut self, id: &MessageId, name: &str, toward: Toward) {
        if !loss_breaks_channel(name) {
            return;
        }
        match toward {
            Toward::Worker => {
                let message = format!(
                    "the worker is not reading: the hub's queue toward it is full ({} messages \
                     or {} bytes)",
                    self.config.peer_queue_limit, self.config.peer_queue_bytes
                );
                self.end_undeliverable(id, Some(&message));
            }
            // Its own queue is full: an error would be dropped too.
            Toward::Client => self.end_undeliverable(id, None),
        }
    }

    /// An event whose `response_to` names no open channel. Heartbeats and
    /// credit are expected there: the peers' timers fire once more after a
    /// call ends, or after the hub ended it.
    fn unknown_channel(&mut self, name: &str) {
        if matches!(name, names::HEARTBEAT | names::MORE) {
            self.stats.late_control += 1;
        } else {
            self.stats.drops.unknown_channel += 1;
        }
    }

    /// Sends what the workers' pipes can take now.
    fn flush_to_workers(&mut self, now: Instant) {
        let mut lost = std::mem::take(&mut self.lost);
        let flushed = self.to_workers.flush(now, &mut lost);
        self.publisher.dirty |= flushed.sent > 0 || !lost.is_empty();
        self.stats.events_in_to_out += flushed.relayed;
        for Lost {
            peer,
            messages,
            error,
        } in lost.drain(..)
        {
            if error == zmq::Error::EHOSTUNREACH {
                self.stats.drops.peer_gone += messages.len() as u64;
                tracing::info!(worker = %hex(&peer), "worker unreachable, dropping it");
                self.gone.insert(Rc::clone(&peer), now);
                // Fails its calls, these included.
                self.worker_gone(&peer);
                continue;
            }
            self.stats.drops.send_failed += messages.len() as u64;
            let message = format!("the hub could not send an event to the worker: {error}");
            for pending in messages.iter().filter(|p| p.vital) {
                self.end_undeliverable(&pending.channel, Some(&message));
            }
        }
        self.lost = lost;
        if flushed.sent > 0 {
            // Room at a worker whose queue was at its limit.
            self.drain_waiting(now);
        }
    }

    /// Sends what the clients' pipes can take now.
    fn flush_to_clients(&mut self, now: Instant) {
        let mut lost = std::mem::take(&mut self.lost);
        let flushed = self.to_clients.flush(now, &mut lost);
        self.publisher.dirty |= flushed.sent > 0 || !lost.is_empty();
        self.stats.events_out_to_in += flushed.relayed;
        for Lost {
            messages, error, ..
        } in lost.drain(..)
        {
            let gone = error == zmq::Error::EHOSTUNREACH;
            if gone {
                self.stats.drops.peer_gone += messages.len() as u64;
            } else {
                self.stats.drops.send_failed += messages.len() as u64;
            }
            // The client cannot be told; see `on_worker`. A channel whose
            // last event was among these is over already and stays so.
            for pending in messages.iter().filter(|p| gone || p.vital) {
                self.end_undeliverable(&pending.channel, None);
            }
        }
        self.lost = lost;
    }

    /// Ends a channel one of whose events could not be delivered, and tells
    /// the client why when `tell_client` says so.
    fn end_undeliverable(&mut self, id: &MessageId, tell_client: Option<&str>) {
        let Some(channel) = self.channels.remove(id) else {
            return;
        };
        if let Route::Worker(worker) = &channel.route {
            self.release(worker, id);
        }
        self.stats.calls_failed_undeliverable += 1;
        self.publisher.dirty = true;
        if let Some(message) = tell_client {
            self.fail_client(&channel.envelope, id, LOST_REMOTE, message);
        }
    }

    /// ROUTER_NOTIFY says "this peer connected" and "this peer disconnected"
    /// with the same message; which one it is depends on whether the peer is
    /// known.
    fn notification(&mut self, id: &[u8], now: Instant) {
        if self.gone.remove(id).is_some() {
            return;
        }
        if let Some(worker) = self.workers.get_mut(id) {
            if !self.peers.is_connected(id) {
                tracing::info!(worker = %hex(id), "worker disconnected");
                self.worker_gone(id);
            } else if worker.leaving.is_none() {
                // libzmq is closing the connection, or the worker sent
                // `[""]` itself: `settle_leaving` tells which.
                worker.leaving = Some(now);
                self.leaving += 1;
            }
            return;
        }
        let id: PeerId = Rc::from(id);
        tracing::info!(worker = %hex(&id), "worker connected");
        self.workers.insert(Rc::clone(&id), Worker::default());
        self.order.push(id);
        self.stats.worker_connects += 1;
        self.drain_waiting(now);
    }

    /// Settles the workers said to be leaving: gone once their connection
    /// is, and still serving after [`LEAVING_GRACE`] if it never goes.
    fn settle_leaving(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (id, worker) in &mut self.workers {
            let Some(since) = worker.leaving else {
                continue;
            };
            if !self.peers.is_connected(id) {
                gone.push(Rc::clone(id));
            } else if now.duration_since(since) >= LEAVING_GRACE {
                worker.leaving = None;
                self.leaving -= 1;
                self.stats.drops.malformed_frames += 1;
                self.publisher.dirty = true;
                tracing::debug!(worker = %hex(id), "a worker sent a disconnection notification itself");
            }
        }
        for id in gone {
            tracing::info!(worker = %hex(&id), "worker disconnected");
            self.worker_gone(&id);
            self.publisher.dirty = true;
        }
    }

    /// Forgets a worker, drops what waits for it, and fails its open calls,
    /// so their clients get an error now rather than a heartbeat timeout
    /// later.
    fn worker_gone(&mut self, id: &[u8]) {
        let Some(worker) = self.workers.remove(id) else {
            return;
        };
        if worker.leaving.is_some() {
            self.leaving -= 1;
        }
        self.order.retain(|w| **w != *id);
        self.stats.worker_disconnects += 1;
        self.stats.drops.peer_gone += self.to_workers.discard(id).len() as u64;
        for channel_id in worker.channels {
            if let Some(channel) = self.channels.remove(&channel_id) {
                self.stats.calls_failed_worker_lost += 1;
                self.fail_client(
                    &channel.envelope,
                    &channel_id,
                    LOST_REMOTE,
                    "worker disconnected while serving the call",
                );
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
            self.fail_client(&channel.envelope, id, NO_WORKER, message);
        }
    }

    /// Answers a channel with `ERR [name, message, ""]`, echoing the channel
    /// id with its original msgpack type so that the client can route it.
    /// It waits behind the client's earlier events like any other.
    fn fail_client(
        &mut self,
        envelope: &[Box<[u8]>],
        channel: &MessageId,
        name: &str,
        message: &str,
    ) {
        let mut header = Header::new();
        header.response_to = Some(channel.clone());
        let args = Value::Array(vec![
            Value::from(name),
            Value::from(message),
            Value::from(""),
        ]);
        let event = Event::new(header, names::ERR, args);
        let mut frames = Vec::with_capacity(envelope.len() + 1);
        to_client(&mut frames, envelope, zmq::Message::from(event.encode()));
        let about = About {
            channel,
            relayed: false,
            vital: false,
        };
        let sent = self.to_clients.send(&envelope[0], &mut frames, about);
        match sent {
            // The hub's own events are not forwarded ones.
            Sent::Now => {}
            other => self.count_delivery(&other, Toward::Client),
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
                    queued_messages: self.to_workers.queued_for(id),
                })
            })
            .collect();
        Stats {
            workers,
            open_channels: self.channels.len(),
            queued_calls: self.waiting.len(),
            queued_messages: self.to_clients.queued() + self.to_workers.queued(),
            queued_bytes: self.to_clients.queued_bytes() + self.to_workers.queued_bytes(),
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

/// Fills `frames` with a message for a client, after its routing id:
/// `[rest of the envelope..., "", payload]`. The envelope's first frame is
/// the routing id, which the [`Outbox`] sends itself.
fn to_client(frames: &mut Vec<zmq::Message>, envelope: &[Box<[u8]>], payload: zmq::Message) {
    frames.clear();
    frames.extend(envelope[1..].iter().map(|f| zmq::Message::from(&f[..])));
    frames.push(zmq::Message::new());
    frames.push(payload);
}
