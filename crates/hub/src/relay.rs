//! The forwarder (SUB → XPUB, fan-out) and streamer (PULL → PUSH, fan-in)
//! hubs: one-way relays of single-frame events.
//!
//! Each event is checked to be one frame holding a decodable ZeroRPC header
//! and is otherwise dropped and counted, so that garbage sent by one
//! producer never reaches the consumers.
//!
//! Neither relay drops an event because a consumer is slow. When `out`
//! cannot take an event (a PUSH with no puller connected or all of them
//! full; an XPUB with `XPUB_NODROP` one of whose subscribers is full), the
//! relay holds it and stops reading `in` until `out` takes it, which moves
//! the back-pressure to the producers' own queues.

use std::sync::atomic::Ordering;
use std::time::Instant;

use zerorpc_wire::Event;

use crate::hub::{Publisher, Shared, TICK};
use crate::outbox::RETRY_BLOCKED;
use crate::sockets::{is_transient, poll_two, recv_frames};
use crate::{HubConfig, HubKind, Stats};

const BUDGET: usize = 256;

/// Runs a forwarder or streamer hub until its stop flag is set.
pub(crate) fn run(
    config: &HubConfig,
    inp: &zmq::Socket,
    out: &zmq::Socket,
    shared: &Shared,
) -> Result<(), zmq::Error> {
    // An XPUB reports POLLOUT whenever it is asked (its readiness ignores
    // the subscribers' pipes), so polling for it while holding an event
    // would spin: the forwarder retries after a short sleep instead. A
    // PUSH reports POLLOUT only when a puller can take a message.
    let pollout_means_room = config.kind == HubKind::Streamer;
    // An XPUB delivers its subscribers' (un)subscriptions as messages;
    // they are read so that they do not pile up, and ignored, since the
    // forwarder subscribes to everything upstream anyway.
    let read_out = config.kind == HubKind::Forwarder;
    let mut stats = shared
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut publisher = Publisher::new();
    let mut frames = Vec::with_capacity(2);
    let mut held: Option<zmq::Message> = None;
    // When to try the held event again, where POLLOUT cannot tell.
    let mut retry_at: Option<Instant> = None;
    let mut next_tick = Instant::now() + TICK;
    while !shared.stop.load(Ordering::Relaxed) {
        let (in_ready, out_readable, out_writable) = {
            let in_events = if held.is_none() {
                zmq::POLLIN
            } else {
                zmq::PollEvents::empty()
            };
            let mut out_events = zmq::PollEvents::empty();
            if held.is_some() && pollout_means_room {
                out_events |= zmq::POLLOUT;
            }
            if read_out {
                out_events |= zmq::POLLIN;
            }
            let items = [(inp, in_events), (out, out_events)];
            let next_timer = retry_at.map_or(next_tick, |at| at.min(next_tick));
            match poll_two(items, publisher.poll_timeout(next_timer)) {
                Ok([inp, out]) => (
                    inp.contains(zmq::POLLIN),
                    out.contains(zmq::POLLIN),
                    out.contains(zmq::POLLOUT),
                ),
                Err(e) if is_transient(e) => (false, false, false),
                Err(e) => return Err(e),
            }
        };
        if out_readable {
            discard_subscriptions(out, &mut frames)?;
        }
        if out_writable || retry_at.is_some_and(|at| Instant::now() >= at) {
            if let Some(event) = held.take() {
                held = forward(out, event, &mut stats)?;
                publisher.dirty = true;
            }
        }
        if in_ready {
            for _ in 0..BUDGET {
                if held.is_some() {
                    break;
                }
                let too_many = match recv_frames(inp, &mut frames) {
                    Ok(Some(too_many)) => too_many,
                    Ok(None) => break,
                    Err(e) if is_transient(e) => break,
                    Err(e) => return Err(e),
                };
                publisher.dirty = true;
                // Pushers and publishers send exactly one frame.
                if too_many || frames.len() != 1 {
                    stats.drops.malformed_frames += 1;
                    continue;
                }
                let Some(event) = frames.pop() else { continue };
                if let Err(error) = Event::decode_envelope(&event) {
                    stats.drops.undecodable += 1;
                    tracing::debug!(%error, "undecodable event dropped");
                    continue;
                }
                held = forward(out, event, &mut stats)?;
            }
        }
        let now = Instant::now();
        retry_at = match (&held, retry_at) {
            (None, _) => None,
            (Some(_), _) if pollout_means_room => None,
            (Some(_), Some(at)) if at > now => Some(at),
            (Some(_), _) => Some(now + RETRY_BLOCKED),
        };
        stats.queued_messages = usize::from(held.is_some());
        stats.queued_messages_peak = stats.queued_messages_peak.max(stats.queued_messages);
        let tick = now >= next_tick;
        if tick {
            next_tick = now + TICK;
        }
        if publisher.due(now, tick) {
            shared.publish(stats.clone());
        }
    }
    shared.publish(stats);
    Ok(())
}

/// Sends one event on `out`; returns it when the socket cannot take it now.
fn forward(
    out: &zmq::Socket,
    event: zmq::Message,
    stats: &mut Stats,
) -> Result<Option<zmq::Message>, zmq::Error> {
    // Sending consumes the message even when it fails, so send a copy of
    // what may have to be sent again.
    match out.send(&event[..], zmq::DONTWAIT) {
        Ok(()) => {
            stats.events_in_to_out += 1;
            Ok(None)
        }
        Err(e) if is_transient(e) => Ok(Some(event)),
        Err(e) => Err(e),
    }
}

/// Reads and ignores what an XPUB's subscribers sent: their subscriptions.
fn discard_subscriptions(
    out: &zmq::Socket,
    frames: &mut Vec<zmq::Message>,
) -> Result<(), zmq::Error> {
    for _ in 0..BUDGET {
        match recv_frames(out, frames) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) if is_transient(e) => break,
            Err(e) => return Err(e),
        }
    }
    frames.clear();
    Ok(())
}
