//! The queue hub when a peer reads slower than its events come: the hub
//! keeps what the peer's ZeroMQ pipe refuses, per peer and in order, and
//! delivers it all once the peer reads again, without holding up the
//! other peers and without spinning while it waits.

use zerorpc_hub::{HubKind, Stats};
use zerorpc_wire::{MessageId, Value};

use crate::support::{
    LONG, PADDING, RawClient, RawWorker, loopback, on_channel, padded, reluctant, request, seq_of,
    start, wait_stats,
};

/// Calls a test makes at least, as in the issue this reproduces.
const CALLS: usize = 5000;
/// Upper bound on the messages a test sends while waiting for the hub to
/// report a backlog.
const SEND_LIMIT: usize = 20_000;

/// Whether the hub holds messages for a peer, as the stats say.
fn backlogged(stats: &Stats) -> bool {
    stats.queued_messages > 0
}

#[test]
fn a_client_that_stops_reading_gets_every_reply_later_in_order() {
    let hub = start(loopback(HubKind::Queue));
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient {
        socket: reluctant(zmq::DEALER, hub.in_endpoint()),
    };

    // Each call is answered with two numbered stream items and
    // STREAM_DONE while the client reads nothing, until the hub holds a
    // backlog for it and at least CALLS calls were answered.
    let mut expected: Vec<(MessageId, &str, u64)> = Vec::new();
    let mut calls = 0;
    while calls < SEND_LIMIT {
        let call = request("numbers", vec![Value::from(calls)]);
        let channel = call.header.message_id.clone();
        client.send(&call);
        let got = worker.recv(LONG).expect("the call at the worker");
        assert_eq!(got.event.header.message_id, channel);
        for (name, seq) in [("STREAM", 0), ("STREAM", 1), ("STREAM_DONE", 2)] {
            worker.reply(&got.envelope, &padded(&channel, name, seq));
            expected.push((channel.clone(), name, seq));
        }
        calls += 1;
        if calls >= CALLS && calls % 100 == 0 && backlogged(&hub.stats()) {
            break;
        }
    }
    let stats = wait_stats(&hub, "every reply at the hub", |s| {
        s.open_channels == 0 && s.calls_routed == calls as u64
    });
    assert!(
        stats.queued_messages_peak > 0,
        "the client's pipe never filled: {}",
        stats.to_json()
    );

    // Every event arrives, in the order the worker sent them.
    for (i, (channel, name, seq)) in expected.iter().enumerate() {
        let event = client
            .recv(LONG)
            .unwrap_or_else(|| panic!("event {i} of {} missing", expected.len()));
        assert_eq!(
            event.header.response_to.as_ref(),
            Some(channel),
            "event {i}"
        );
        assert_eq!((&*event.name, seq_of(&event)), (*name, Some(*seq)));
    }
    let stats = wait_stats(&hub, "the queue emptied", |s| s.queued_messages == 0);
    assert_eq!(stats.drops.total(), 0, "{}", stats.to_json());
    assert_eq!(stats.calls_failed_undeliverable, 0);
    assert_eq!(stats.events_out_to_in, expected.len() as u64);
}

#[test]
fn a_worker_that_stops_reading_gets_every_request_later_in_order() {
    let hub = start(loopback(HubKind::Queue));
    let worker = RawWorker::reluctant(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());

    // Calls keep coming while the worker reads nothing, until the hub
    // holds some for it, then a thousand more behind them.
    let mut sent: Vec<MessageId> = Vec::new();
    let mut more_after_backlog = None;
    while sent.len() < SEND_LIMIT && more_after_backlog != Some(0) {
        let call = request(
            "numbers",
            vec![Value::from(sent.len()), Value::Binary(vec![0; PADDING])],
        );
        client.send(&call);
        sent.push(call.header.message_id.clone());
        more_after_backlog = match more_after_backlog {
            Some(n) => Some(n - 1),
            None if sent.len() % 100 == 0 && backlogged(&hub.stats()) => Some(1000),
            None => None,
        };
    }
    let stats = wait_stats(&hub, "every call routed", |s| {
        s.calls_routed == sent.len() as u64
    });
    assert!(
        stats.queued_messages_peak > 0,
        "the worker's pipe never filled: {}",
        stats.to_json()
    );
    assert_eq!(stats.calls_failed_no_worker, 0);

    // The worker reads again: every call, in order.
    let mut envelopes = Vec::with_capacity(sent.len());
    for (i, id) in sent.iter().enumerate() {
        let got = worker
            .recv(LONG)
            .unwrap_or_else(|| panic!("call {i} of {} missing", sent.len()));
        assert_eq!(&got.event.header.message_id, id, "call {i}");
        envelopes.push(got.envelope);
    }
    for (id, envelope) in sent.iter().zip(&envelopes) {
        worker.reply(envelope, &on_channel(id, "OK", Value::Array(vec![])));
    }
    for (i, id) in sent.iter().enumerate() {
        let reply = client
            .recv(LONG)
            .unwrap_or_else(|| panic!("reply {i} missing"));
        assert_eq!(reply.header.response_to.as_ref(), Some(id));
        assert_eq!(reply.name, "OK");
    }
    let stats = wait_stats(&hub, "every call ended", |s| {
        s.open_channels == 0 && s.queued_messages == 0
    });
    assert_eq!(stats.drops.total(), 0, "{}", stats.to_json());
    assert_eq!(stats.calls_failed_undeliverable, 0);
}

#[test]
fn a_blocked_worker_neither_blocks_the_others_nor_spins_the_hub() {
    let mut config = loopback(HubKind::Queue);
    // The hub's thread is `hub-<name>`: unique, so the test can find it.
    config.name = "nospin".to_owned();
    let hub = start(config);
    let _stuck = RawWorker::reluctant(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());

    // A long call at the stuck worker, whose credit piles up in the hub.
    let call = request("numbers", vec![]);
    let stuck_channel = call.header.message_id.clone();
    client.send(&call);
    for seq in 0..SEND_LIMIT as u64 {
        client.send(&padded(&stuck_channel, "_zpc_more", seq));
        if seq % 100 == 99 && hub.stats().workers[0].queued_messages > 0 {
            break;
        }
    }
    wait_stats(&hub, "a backlog for the stuck worker", |s| {
        s.workers[0].queued_messages > 0
    });

    // A healthy worker next to it: every new call goes there (it has no
    // outstanding call, the stuck one has one) and is answered at once.
    let healthy = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "two workers", |s| s.workers.len() == 2);
    for i in 0..200 {
        let call = request("whoami", vec![Value::from(i)]);
        client.send(&call);
        let got = healthy.recv(LONG).expect("the call at the healthy worker");
        assert_eq!(got.event.header.message_id, call.header.message_id);
        healthy.reply(
            &got.envelope,
            &on_channel(&call.header.message_id, "OK", Value::Array(vec![])),
        );
        let reply = client.recv(LONG).expect("the healthy worker's reply");
        assert_eq!(
            (&*reply.name, reply.header.response_to.as_ref()),
            ("OK", Some(&call.header.message_id))
        );
    }
    let stats = hub.stats();
    assert!(stats.workers[0].queued_messages > 0, "{}", stats.to_json());

    // The stuck worker's pipe is full and the healthy one's is not, so
    // libzmq reports the socket writable all the time: polling for that
    // would spin. The hub's thread must stay mostly asleep meanwhile.
    crate::support::assert_not_spinning("hub-nospin");
    assert_eq!(hub.stats().drops.total(), 0);
}
