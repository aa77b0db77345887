//! What a hub reports about itself: counters, per-worker load and drops.

use serde::Serialize;

use crate::HubKind;

/// A snapshot of a hub's counters, as returned by
/// [`Hub::stats`](crate::Hub::stats) and printed as one JSON
/// line by the `zerorpc-hub` binary.
///
/// Counters only grow, from the hub's start. "in" is the side clients,
/// publishers and pushers connect to; "out" the side of workers,
/// subscribers and pullers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The hub's name.
    pub hub: String,
    /// The hub's type.
    #[serde(rename = "type")]
    pub kind: Option<HubKind>,
    /// Queue: the connected workers, in connection order.
    pub workers: Vec<WorkerStats>,
    /// Queue: channels currently open (routed to a worker or waiting).
    pub open_channels: usize,
    /// Queue: calls waiting for a worker to connect (or for one whose
    /// queue is below `peer_queue_limit`).
    pub queued_calls: usize,
    /// Queue: messages waiting in the hub for peers that read slower than
    /// their events come (their ZeroMQ pipe is full), clients and workers
    /// together; forwarder and streamer: 1 while holding an event that
    /// `out` cannot take, else 0. A gauge: it goes down as peers read.
    pub queued_messages: usize,
    /// The highest [`queued_messages`](Stats::queued_messages) seen since
    /// the hub started.
    pub queued_messages_peak: usize,
    /// Queue: the bytes of [`queued_messages`](Stats::queued_messages)
    /// (frames plus 64 bytes of bookkeeping each), as counted against
    /// `peer_queue_bytes`. A gauge.
    pub queued_bytes: usize,
    /// The highest [`queued_bytes`](Stats::queued_bytes) seen since the
    /// hub started.
    pub queued_bytes_peak: usize,
    /// Queue: calls (channel-opening events) handed to a worker.
    pub calls_routed: u64,
    /// Events forwarded from `in` to `out` (requests, client heartbeats and
    /// credit; or published/pushed events).
    pub events_in_to_out: u64,
    /// Queue: events forwarded from `out` to `in` (replies, stream items,
    /// worker heartbeats).
    pub events_out_to_in: u64,
    /// Connections of either side that ZeroMQ dropped because the peer
    /// sent a message over `max_message_size`; the first is logged.
    pub connections_closed: u64,
    /// Queue: workers seen connecting.
    pub worker_connects: u64,
    /// Queue: workers seen disconnecting.
    pub worker_disconnects: u64,
    /// Queue: calls failed with `LostRemote` because their worker
    /// disconnected.
    pub calls_failed_worker_lost: u64,
    /// Queue: calls failed with `NoWorkerAvailable` (queue full, or no
    /// worker within `queue_timeout`).
    pub calls_failed_no_worker: u64,
    /// Queue: channels forgotten after `idle_timeout` without traffic.
    pub channels_expired: u64,
    /// Queue: calls ended because one of their events could not be
    /// delivered (the peer's queue at `peer_queue_limit`, the client gone,
    /// or a ZeroMQ error). Dropping a stream item or a `_zpc_more` alone
    /// would leave client and worker waiting for each other for ever.
    pub calls_failed_undeliverable: u64,
    /// Queue: heartbeats and credit (`_zpc_hb`, `_zpc_more`), in either
    /// direction, for a channel that has already ended. They are normal,
    /// not drops: the peers' timers fire once more after a call ends, as
    /// with zerorpc-python, so they are not in [`Drops::total`].
    pub late_control: u64,
    /// Messages dropped, by reason.
    pub drops: Drops,
}

/// Load of one connected worker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WorkerStats {
    /// The worker's ZeroMQ routing id, in hex.
    pub id: String,
    /// Calls routed to it that have not ended yet.
    pub outstanding: usize,
    /// Calls routed to it since it connected.
    pub calls_routed: u64,
    /// Messages waiting in the hub because its pipe is full: a worker that
    /// is not reading shows here.
    pub queued_messages: usize,
}

/// Dropped messages, by reason. None of them stops the hub.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Drops {
    /// Wrong frame layout: too few frames, no empty delimiter before the
    /// payload, or (forwarder, streamer) more than one frame.
    pub malformed_frames: u64,
    /// A payload that is not a ZeroRPC event (bad msgpack, not a 3-element
    /// array, header not a map, no `message_id`...).
    pub undecodable: u64,
    /// An event other than a heartbeat or credit whose `response_to` names
    /// no open channel (late heartbeats and credit are counted in
    /// [`Stats::late_control`] instead).
    pub unknown_channel: u64,
    /// An event for a channel sent by a peer that does not own it.
    pub wrong_peer: u64,
    /// A new call reusing the id of a channel still open.
    pub duplicate_channel: u64,
    /// An event from a worker that opens a channel (workers only answer).
    pub not_a_reply: u64,
    /// A client event for a call still waiting for a worker.
    pub while_queued: u64,
    /// Queue: an event for a peer whose queue in the hub was at
    /// `peer_queue_limit` (the peer is not reading). Ends the event's call
    /// unless it was a heartbeat.
    pub queue_full: u64,
    /// Queue: an event for a peer that is gone (ZeroMQ has no connection
    /// with its routing id), including those that were waiting in its
    /// queue.
    pub peer_gone: u64,
    /// ZeroMQ refused a send for another reason.
    pub send_failed: u64,
}

impl Drops {
    /// All drops together. [`Stats::late_control`] is not a drop and is
    /// not included.
    pub fn total(&self) -> u64 {
        self.malformed_frames
            + self.undecodable
            + self.unknown_channel
            + self.wrong_peer
            + self.duplicate_channel
            + self.not_a_reply
            + self.while_queued
            + self.queue_full
            + self.peer_gone
            + self.send_failed
    }
}

impl Stats {
    /// The snapshot as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of numbers and strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
