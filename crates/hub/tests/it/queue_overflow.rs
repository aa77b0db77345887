//! The queue hub when a peer does not read and the hub's queue for it
//! reaches `peer_queue_limit`: a heartbeat is dropped and the call goes
//! on; any other event ends its call, since a dropped stream item or
//! `_zpc_more` would leave the client and the worker waiting for each
//! other for ever, kept alive by their heartbeats.

use std::time::{Duration, Instant};

use zerorpc_hub::{Hub, HubConfig, HubKind, Stats, error_names};
use zerorpc_wire::{Event, MessageId, Value};

use crate::support::{
    LONG, RawClient, RawWorker, error_of, loopback, on_channel, padded, reluctant, request, seq_of,
    start, wait_stats,
};

/// Upper bound on the events a test pushes at a peer that does not read:
/// far more than libzmq's default pipe (1000 messages), loopback TCP
/// buffers and [`LIMIT`] hold at [`crate::support::PADDING`] bytes each.
const FLOOD_LIMIT: u64 = 20_000;

/// A queue limit small enough to reach quickly.
const LIMIT: usize = 10;

fn limited() -> HubConfig {
    let mut config = loopback(HubKind::Queue);
    config.peer_queue_limit = LIMIT;
    config
}

/// Sends `event(seq)` for seq = 0, 1, ... until the hub reports a message
/// refused at the limit, at most [`FLOOD_LIMIT`] times and for at most
/// [`LONG`]. The sends wait when the pipe toward the hub is full (the hub
/// always reads), so no event is skipped.
fn flood_until_queue_full(hub: &Hub, send: impl Fn(u64)) -> Stats {
    let deadline = Instant::now() + LONG;
    for seq in 0..FLOOD_LIMIT {
        send(seq);
        if seq % 100 == 99 {
            let stats = hub.stats();
            if stats.drops.queue_full > 0 || Instant::now() > deadline {
                return stats;
            }
        }
    }
    hub.stats()
}

/// Reads what the hub has forwarded to `client` (all of it: the queue in
/// the hub, its pipe and the TCP buffers), knowing from the stats how much
/// that is; within [`LONG`].
fn read_everything_forwarded(hub: &Hub, client: &RawClient) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = Instant::now() + LONG;
    for _ in 0..FLOOD_LIMIT {
        let stats = hub.stats();
        if stats.queued_messages == 0 && events.len() as u64 == stats.events_out_to_in {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} events read; {}",
            events.len(),
            stats.to_json()
        );
        events.extend(client.recv(Duration::from_millis(100)));
    }
    events
}

/// The next event about `channel` other than a heartbeat, within [`LONG`].
fn answer_to(client: &RawClient, channel: &MessageId) -> Option<Event> {
    let deadline = Instant::now() + LONG;
    for _ in 0..FLOOD_LIMIT {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = client.recv(left)?;
        if event.header.response_to.as_ref() == Some(channel) && event.name != "_zpc_hb" {
            return Some(event);
        }
    }
    None
}

/// A stream whose client stops reading, flooded by its worker until the
/// hub refuses an item and ends the call.
struct StalledStream {
    hub: Hub,
    worker: RawWorker,
    client: RawClient,
    channel: MessageId,
    envelope: Vec<Vec<u8>>,
    /// The hub's stats once the call ended.
    stats: Stats,
}

fn stall_a_stream(config: HubConfig) -> StalledStream {
    let hub = start(config);
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient {
        socket: reluctant(zmq::DEALER, hub.in_endpoint()),
    };

    let call = request("numbers", vec![]);
    let channel = call.header.message_id.clone();
    client.send(&call);
    let got = worker.recv(LONG).expect("call");

    let stats = flood_until_queue_full(&hub, |seq| {
        worker.reply(&got.envelope, &padded(&channel, "STREAM", seq));
    });
    assert!(
        stats.drops.queue_full > 0,
        "the client's queue never filled: {}",
        stats.to_json()
    );
    let stats = wait_stats(&hub, "the channel ended", |s| {
        s.open_channels == 0 && s.calls_failed_undeliverable == 1
    });
    StalledStream {
        hub,
        worker,
        client,
        channel,
        envelope: got.envelope,
        stats,
    }
}

#[test]
fn a_stream_item_for_a_client_at_its_queue_limit_ends_the_channel() {
    let StalledStream {
        hub,
        worker,
        client,
        channel,
        envelope,
        stats,
    } = stall_a_stream(limited());
    // The call is over, and the worker is free again.
    assert_eq!(stats.workers[0].outstanding, 0);
    assert_eq!(stats.queued_messages_peak, LIMIT, "{}", stats.to_json());

    // What the hub took before the limit still reaches the client, in
    // order and without a gap: items 0..k, nothing after the loss.
    let events = read_everything_forwarded(&hub, &client);
    assert!(events.iter().all(|e| e.name == "STREAM"));
    let seqs: Vec<u64> = events.iter().filter_map(seq_of).collect();
    assert!(seqs.len() > LIMIT, "{} items", seqs.len());
    assert!(
        seqs.iter().copied().eq(0..seqs.len() as u64),
        "items out of order or missing"
    );

    let before = hub.stats().drops.unknown_channel;
    worker.reply(&envelope, &on_channel(&channel, "STREAM_DONE", Value::Nil));
    wait_stats(&hub, "a later event has no channel", |s| {
        s.drops.unknown_channel > before
    });
    assert_eq!(hub.stats().calls_failed_undeliverable, 1);
}

#[test]
fn a_heartbeat_for_a_client_at_its_queue_limit_is_dropped_and_the_call_goes_on() {
    let hub = start(limited());
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient {
        socket: reluctant(zmq::DEALER, hub.in_endpoint()),
    };

    let call = request("slow", vec![]);
    let channel = call.header.message_id.clone();
    client.send(&call);
    let got = worker.recv(LONG).expect("call");

    let stats = flood_until_queue_full(&hub, |seq| {
        worker.reply(&got.envelope, &padded(&channel, "_zpc_hb", seq));
    });
    assert!(
        stats.drops.queue_full > 0,
        "the client's queue never filled: {}",
        stats.to_json()
    );
    let stats = hub.stats();
    assert_eq!(
        (stats.open_channels, stats.calls_failed_undeliverable),
        (1, 0),
        "{}",
        stats.to_json()
    );

    // Once the client reads again, the call ends normally.
    let heartbeats = read_everything_forwarded(&hub, &client);
    assert!(heartbeats.len() > LIMIT, "{} heartbeats", heartbeats.len());
    worker.reply(
        &got.envelope,
        &on_channel(&channel, "OK", Value::Array(vec!["done".into()])),
    );
    let answer = answer_to(&client, &channel).expect("the reply");
    assert_eq!(answer.name, "OK", "{answer:?}");
    let stats = wait_stats(&hub, "the channel ended", |s| s.open_channels == 0);
    assert_eq!(stats.calls_failed_undeliverable, 0);
    assert_eq!(stats.drops.total(), stats.drops.queue_full);
}

#[test]
fn credit_for_a_worker_at_its_queue_limit_fails_the_call_with_lost_remote() {
    let hub = start(limited());
    let worker = RawWorker::reluctant(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());

    let call = request("numbers", vec![]);
    let channel = call.header.message_id.clone();
    client.send(&call);
    worker.recv(LONG).expect("call");

    let stats = flood_until_queue_full(&hub, |seq| {
        client.send(&padded(&channel, "_zpc_more", seq));
    });
    assert!(
        stats.drops.queue_full > 0,
        "the worker's queue never filled: {}",
        stats.to_json()
    );

    // The client hears why at once, instead of waiting for a stream that
    // cannot come.
    let answer = answer_to(&client, &channel).expect("an ERR for the call");
    let (name, message) = error_of(&answer).unwrap_or_else(|| panic!("{answer:?}"));
    assert_eq!(name, error_names::LOST_REMOTE);
    assert!(message.contains("not reading"), "{message}");

    let stats = wait_stats(&hub, "the channel ended", |s| {
        s.open_channels == 0 && s.calls_failed_undeliverable == 1
    });
    assert_eq!(stats.workers[0].outstanding, 0);
    assert_eq!(stats.workers[0].queued_messages, LIMIT);
}

#[test]
fn a_call_skips_the_least_loaded_worker_when_its_queue_is_at_the_limit() {
    let mut config = limited();
    // Fail fast if the call is left waiting for the full worker.
    config.queue_timeout = Duration::from_secs(2);
    let hub = start(config);
    // Held, never read: its queue fills up.
    let _stuck = RawWorker::reluctant(hub.out_endpoint());
    let healthy = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "two workers", |s| s.workers.len() == 2);
    let client = RawClient::connect(hub.in_endpoint());

    // One call each: the healthy worker holds its call unanswered (load 1),
    // the stuck one gets a call whose channel then floods its queue.
    let first = request("first", vec![]);
    client.send(&first);
    let second = request("second", vec![]);
    let stuck_channel = match healthy.recv(Duration::from_millis(500)) {
        Some(_) => {
            client.send(&second);
            second.header.message_id.clone()
        }
        None => {
            client.send(&second);
            healthy.recv(LONG).expect("the second call");
            first.header.message_id.clone()
        }
    };
    wait_stats(&hub, "both calls routed", |s| s.calls_routed == 2);

    let stats = flood_until_queue_full(&hub, |seq| {
        client.send(&padded(&stuck_channel, "_zpc_more", seq));
    });
    assert!(
        stats.drops.queue_full > 0,
        "never full: {}",
        stats.to_json()
    );
    // That call is over, so the stuck worker is now the least loaded one,
    // with a full queue.
    wait_stats(&hub, "the stuck worker's call ended", |s| {
        s.calls_failed_undeliverable == 1
    });

    let call = request("third", vec![]);
    client.send(&call);
    let deadline = Instant::now() + LONG;
    let got = (0..10)
        .find_map(|_| {
            healthy
                .recv(deadline.saturating_duration_since(Instant::now()))
                .filter(|r| r.event.header.message_id == call.header.message_id)
        })
        .expect("the healthy worker takes the call");
    healthy.reply(
        &got.envelope,
        &on_channel(
            &call.header.message_id,
            "OK",
            Value::Array(vec!["B".into()]),
        ),
    );
    let answer = answer_to(&client, &call.header.message_id).expect("an answer");
    assert_eq!(answer.name, "OK", "{answer:?}");
    assert_eq!(hub.stats().calls_failed_no_worker, 0);
}

#[test]
fn the_byte_limit_bounds_what_waits_for_a_client_that_never_reads() {
    // Room for about sixteen padded events; the message limit stays far off.
    const BYTES: usize = 64 << 10;
    let mut config = loopback(HubKind::Queue);
    config.peer_queue_bytes = BYTES;
    let StalledStream {
        hub, client, stats, ..
    } = stall_a_stream(config);
    // Bounded by bytes: within the limit, and far below the message limit.
    let one_message = crate::support::PADDING + 256;
    assert!(
        stats.queued_bytes_peak <= BYTES && stats.queued_bytes_peak > BYTES - one_message,
        "{}",
        stats.to_json()
    );
    assert!(
        stats.queued_messages_peak <= BYTES / crate::support::PADDING,
        "{}",
        stats.to_json()
    );

    // Once the client reads, what waited reaches it, in order, and the
    // gauge returns to zero.
    let events = read_everything_forwarded(&hub, &client);
    let seqs: Vec<u64> = events.iter().filter_map(seq_of).collect();
    assert!(
        seqs.iter().copied().eq(0..seqs.len() as u64),
        "items out of order or missing"
    );
    assert_eq!(hub.stats().queued_bytes, 0);
}
