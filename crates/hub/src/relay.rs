//! The forwarder (SUB → PUB, fan-out) and streamer (PULL → PUSH, fan-in)
//! hubs: one-way relays of single-frame events.
//!
//! Each event is checked to be one frame holding a decodable ZeroRPC header
//! and is otherwise dropped and counted, so that garbage sent by one
//! producer never reaches the consumers.

use std::sync::atomic::Ordering;
use std::time::Instant;

use zerorpc_wire::Event;

use crate::hub::{Publisher, Shared, TICK};
use crate::sockets::{is_transient, recv_frames};
use crate::{HubConfig, HubKind, Stats};

const BUDGET: usize = 256;

/// Runs a forwarder or streamer hub until its stop flag is set.
///
/// A PUB never blocks (it drops for slow subscribers, as PUB/SUB does
/// anyway). A PUSH with no puller connected, or whose pullers are full,
/// cannot take the event: the streamer then holds it and stops reading
/// `in` until `out` can take it, which pushes the back-pressure to the
/// producers' own queues instead of losing events.
pub(crate) fn run(
    config: &HubConfig,
    inp: &zmq::Socket,
    out: &zmq::Socket,
    shared: &Shared,
) -> Result<(), zmq::Error> {
    let hold = config.kind == HubKind::Streamer;
    let mut stats = shared
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut publisher = Publisher::new();
    let mut frames = Vec::with_capacity(2);
    let mut held: Option<zmq::Message> = None;
    let mut next_tick = Instant::now() + TICK;
    while !shared.stop.load(Ordering::Relaxed) {
        let (in_ready, out_ready) = {
            let in_events = if held.is_none() {
                zmq::POLLIN
            } else {
                zmq::PollEvents::empty()
            };
            let out_events = if held.is_some() {
                zmq::POLLOUT
            } else {
                zmq::PollEvents::empty()
            };
            let mut items = [inp.as_poll_item(in_events), out.as_poll_item(out_events)];
            match zmq::poll(&mut items, publisher.poll_timeout(next_tick)) {
                Ok(_) => (items[0].is_readable(), items[1].is_writable()),
                Err(e) if is_transient(e) => (false, false),
                Err(e) => return Err(e),
            }
        };
        if out_ready {
            if let Some(event) = held.take() {
                held = forward(out, event, hold, &mut stats)?;
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
                held = forward(out, event, hold, &mut stats)?;
            }
        }
        let now = Instant::now();
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

/// Sends one event on `out`; returns it when the socket cannot take it now
/// and `hold` asks to keep it.
fn forward(
    out: &zmq::Socket,
    event: zmq::Message,
    hold: bool,
    stats: &mut Stats,
) -> Result<Option<zmq::Message>, zmq::Error> {
    if hold {
        // Sending consumes the message even when it fails, so send a copy
        // of what may have to be sent again.
        return match out.send(&event[..], zmq::DONTWAIT) {
            Ok(()) => {
                stats.events_in_to_out += 1;
                Ok(None)
            }
            Err(e) if is_transient(e) => Ok(Some(event)),
            Err(e) => Err(e),
        };
    }
    match out.send(event, zmq::DONTWAIT) {
        Ok(()) => {
            stats.events_in_to_out += 1;
            Ok(None)
        }
        Err(e) if is_transient(e) => {
            stats.drops.send_failed += 1;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
