//! The queue hub at the frame level, with raw ZeroMQ peers: channel pinning,
//! the error sent when a worker vanishes, queue limits, expiry, and
//! malformed input.

use std::time::Duration;

use zerorpc_hub::{HubKind, error_names};
use zerorpc_test_support::Rng;
use zerorpc_wire::{Event, Header, IdKind, MessageId, Value};

use crate::support::{
    LONG, RawClient, RawWorker, Received, loopback, on_channel, recv_within, request, start,
    wait_stats,
};

/// Short wait used to check that something does *not* arrive.
const QUIET: Duration = Duration::from_millis(300);

/// Waits for an event on either worker; returns which one and what.
fn recv_either(workers: [&RawWorker; 2]) -> (usize, Received) {
    let ready = {
        let mut items = [
            workers[0].socket.as_poll_item(zmq::POLLIN),
            workers[1].socket.as_poll_item(zmq::POLLIN),
        ];
        zmq::poll(&mut items, LONG.as_millis() as i64).expect("poll");
        [items[0].is_readable(), items[1].is_readable()]
    };
    let i = ready
        .iter()
        .position(|r| *r)
        .expect("a worker received the call");
    (i, workers[i].recv(LONG).expect("event"))
}

#[test]
fn every_event_of_a_channel_goes_to_the_same_worker() {
    let hub = start(loopback(HubKind::Queue));
    let workers = [
        RawWorker::connect(hub.out_endpoint()),
        RawWorker::connect(hub.out_endpoint()),
    ];
    wait_stats(&hub, "two workers", |s| s.workers.len() == 2);
    let client = RawClient::connect(hub.in_endpoint());

    let call = request("numbers", vec![Value::from(3)]);
    let channel = call.header.message_id.clone();
    client.send(&call);
    let (owner, got) = recv_either([&workers[0], &workers[1]]);
    let other = &workers[1 - owner];
    let owner = &workers[owner];
    assert_eq!(got.event, call, "the payload crosses the hub untouched");
    // The hub's routing id alone: the client's envelope stays in the hub.
    assert_eq!(got.envelope.len(), 1);

    owner.reply(
        &got.envelope,
        &on_channel(&channel, "STREAM", Value::from(0)),
    );
    let item = client.recv(LONG).expect("stream item");
    assert_eq!(
        (&*item.name, item.header.response_to.as_ref()),
        ("STREAM", Some(&channel))
    );

    // Credit and heartbeats all reach the owner, none the idle worker,
    // though the idle one has fewer outstanding calls.
    for _ in 0..3 {
        client.send(&on_channel(
            &channel,
            "_zpc_hb",
            Value::Array(vec![0.into()]),
        ));
        client.send(&on_channel(
            &channel,
            "_zpc_more",
            Value::Array(vec![10.into()]),
        ));
    }
    for _ in 0..6 {
        let event = owner.recv(LONG).expect("control event at the owner").event;
        assert_eq!(event.header.response_to.as_ref(), Some(&channel));
    }
    assert!(
        other.recv(QUIET).is_none(),
        "an event of the channel reached another worker"
    );

    owner.reply(
        &got.envelope,
        &on_channel(&channel, "_zpc_hb", Value::Array(vec![0.into()])),
    );
    owner.reply(
        &got.envelope,
        &on_channel(&channel, "STREAM_DONE", Value::Nil),
    );
    assert_eq!(client.recv(LONG).expect("heartbeat").name, "_zpc_hb");
    assert_eq!(client.recv(LONG).expect("done").name, "STREAM_DONE");

    let stats = wait_stats(&hub, "the channel closed", |s| s.open_channels == 0);
    assert!(stats.workers.iter().all(|w| w.outstanding == 0));
    assert_eq!(stats.calls_routed, 1);
    assert_eq!(stats.events_in_to_out, 7);
    assert_eq!(stats.events_out_to_in, 3);

    // A late grant after the end goes nowhere, as with Python; it is
    // normal, so it is not a drop.
    client.send(&on_channel(
        &channel,
        "_zpc_more",
        Value::Array(vec![51.into()]),
    ));
    let stats = wait_stats(&hub, "the late event counted", |s| s.late_control == 1);
    assert_eq!(stats.drops.total(), 0, "{}", stats.to_json());
    assert!(owner.recv(QUIET).is_none());
}

#[test]
fn worker_disconnect_answers_open_calls_with_lost_remote() {
    let hub = start(loopback(HubKind::Queue));
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());

    // A node-style id, sent as msgpack str, must come back as str.
    let channel = MessageId::new(b"6ce9503a-bfb8-486a-ac79-000000000000", IdKind::Str);
    client.send(&Event::new(
        Header::with_id(channel.clone()),
        "slow",
        Value::Array(vec![]),
    ));
    worker.recv(LONG).expect("call at the worker");
    drop(worker);

    let error = client.recv(LONG).expect("an error instead of a hang");
    assert_eq!(error.name, "ERR");
    let response_to = error.header.response_to.clone().expect("response_to");
    assert_eq!(response_to, channel);
    assert_eq!(response_to.kind(), IdKind::Str);
    assert_eq!(error.header.version, Some(3));
    assert_eq!(error.header.message_id.kind(), IdKind::Bin);
    assert_eq!(error.header.message_id.as_bytes().len(), 32);
    let args = Value::Array(vec![
        Value::from(error_names::LOST_REMOTE),
        Value::from("worker disconnected while serving the call"),
        Value::from(""),
    ]);
    assert_eq!(error.args, args);

    let stats = wait_stats(&hub, "the worker gone", |s| s.workers.is_empty());
    assert_eq!(stats.calls_failed_worker_lost, 1);
    assert_eq!(stats.open_channels, 0);
}

/// ROUTER_NOTIFY's notifications are `[peer id, ""]`, which a worker can
/// send itself; found by the `hub` fuzz target, where such a worker made
/// the hub fail its calls and later take its real disconnection for a
/// connection, losing the calls routed to it after.
#[test]
fn a_worker_that_sends_a_notification_itself_keeps_its_calls_until_it_really_leaves() {
    let hub = start(loopback(HubKind::Queue));
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());

    // The first call teaches the worker the hub's routing id.
    let first = request("first", vec![]);
    client.send(&first);
    let got = worker.recv(LONG).expect("first call");
    let forged: [&[u8]; 2] = [&got.envelope[0], b""];
    worker.socket.send_multipart(forged, 0).expect("send");
    worker.reply(
        &got.envelope,
        &on_channel(&first.header.message_id, "OK", Value::from("one")),
    );
    let reply = client.recv(LONG).expect("the reply");
    assert_eq!(reply.name, "OK", "{reply:?}");

    // Still a worker.
    let second = request("second", vec![]);
    client.send(&second);
    let got = worker
        .recv(LONG)
        .expect("the second call reaches the worker");
    let stats = wait_stats(&hub, "the second call routed", |s| s.calls_routed == 2);
    assert_eq!(stats.worker_disconnects, 0, "{}", stats.to_json());
    assert_eq!(stats.drops.malformed_frames, 1, "{}", stats.to_json());

    // Saying it again and then leaving for real still fails its call.
    let forged: [&[u8]; 2] = [&got.envelope[0], b""];
    worker.socket.send_multipart(forged, 0).expect("send");
    drop(worker);
    let error = client.recv(LONG).expect("an error instead of a hang");
    assert_eq!(error.header.response_to, Some(second.header.message_id));
    assert_eq!(
        error.args.as_array().and_then(|a| a.first()?.as_str()),
        Some(error_names::LOST_REMOTE)
    );
    let stats = wait_stats(&hub, "the worker gone", |s| s.workers.is_empty());
    assert_eq!(stats.worker_disconnects, 1);
    assert_eq!(stats.open_channels, 0);
}

#[test]
fn queue_limit_and_queue_timeout_answer_with_errors() {
    let mut config = loopback(HubKind::Queue);
    config.queue_limit = 1;
    config.queue_timeout = Duration::from_millis(500);
    let hub = start(config);
    let client = RawClient::connect(hub.in_endpoint());

    let first = request("whoami", vec![]);
    client.send(&first);
    wait_stats(&hub, "a queued call", |s| s.queued_calls == 1);
    // A heartbeat for the waiting call has no worker to go to.
    client.send(&on_channel(
        &first.header.message_id,
        "_zpc_hb",
        Value::Array(vec![0.into()]),
    ));
    let second = request("whoami", vec![]);
    client.send(&second);

    // The second call finds the queue full and fails at once; the first one
    // fails when its time in the queue is up.
    let refused = client.recv(LONG).expect("refusal");
    assert_eq!(
        refused.header.response_to.as_ref(),
        Some(&second.header.message_id)
    );
    assert_eq!(
        refused
            .args
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str),
        Some(error_names::NO_WORKER)
    );
    let expired = client.recv(LONG).expect("timeout error");
    assert_eq!(
        expired.header.response_to.as_ref(),
        Some(&first.header.message_id)
    );
    assert_eq!(expired.name, "ERR");
    let message = expired
        .args
        .as_array()
        .and_then(|a| a.get(1))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("no worker connected"), "{message}");

    let stats = wait_stats(&hub, "both failures counted", |s| {
        s.calls_failed_no_worker == 2
    });
    assert_eq!(stats.drops.while_queued, 1);
    assert_eq!((stats.queued_calls, stats.open_channels), (0, 0));
}

#[test]
fn idle_channels_expire_and_free_their_worker() {
    let mut config = loopback(HubKind::Queue);
    config.idle_timeout = Duration::from_millis(300);
    let hub = start(config);
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());

    let call = request("forgotten", vec![]);
    client.send(&call);
    let got = worker.recv(LONG).expect("call");
    wait_stats(&hub, "one outstanding call", |s| {
        s.workers.first().is_some_and(|w| w.outstanding == 1)
    });
    let stats = wait_stats(&hub, "the channel expired", |s| s.channels_expired == 1);
    assert_eq!(stats.workers[0].outstanding, 0);
    assert_eq!(stats.open_channels, 0);

    // A reply after expiry has nowhere to go.
    worker.reply(
        &got.envelope,
        &on_channel(
            &call.header.message_id,
            "OK",
            Value::Array(vec![Value::Nil]),
        ),
    );
    wait_stats(&hub, "the late reply dropped", |s| {
        s.drops.unknown_channel == 1
    });
    assert!(client.recv(QUIET).is_none());
}

#[test]
fn duplicate_ids_and_foreign_events_are_dropped() {
    let hub = start(loopback(HubKind::Queue));
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());
    let intruder = RawClient::connect(hub.in_endpoint());

    let call = request("whoami", vec![]);
    client.send(&call);
    client.send(&call);
    let got = worker.recv(LONG).expect("call");
    wait_stats(&hub, "the duplicate dropped", |s| {
        s.drops.duplicate_channel == 1
    });

    // Another client cannot inject events into this channel.
    intruder.send(&on_channel(
        &call.header.message_id,
        "_zpc_more",
        Value::Array(vec![1.into()]),
    ));
    wait_stats(&hub, "the foreign event dropped", |s| {
        s.drops.wrong_peer == 1
    });
    assert!(worker.recv(QUIET).is_none());

    worker.reply(
        &got.envelope,
        &on_channel(
            &call.header.message_id,
            "OK",
            Value::Array(vec!["A".into()]),
        ),
    );
    assert_eq!(client.recv(LONG).expect("reply").name, "OK");
    assert!(intruder.recv(QUIET).is_none());
}

#[test]
fn malformed_messages_are_dropped_and_counted_while_serving_goes_on() {
    let hub = start(loopback(HubKind::Queue));
    let client = RawClient::connect(hub.in_endpoint());

    // Client side.
    let not_an_event = rmp_array_of_two();
    let header_not_a_map = {
        let mut buf = Vec::new();
        zerorpc_wire::rmpv::encode::write_value(
            &mut buf,
            &Value::Array(vec!["header".into(), "name".into(), Value::Array(vec![])]),
        )
        .expect("encode");
        buf
    };
    let unknown = on_channel(
        &MessageId::generate(),
        "STREAM",
        Value::Array(vec![0.into()]),
    )
    .encode();
    let late_heartbeat = on_channel(
        &MessageId::generate(),
        "_zpc_hb",
        Value::Array(vec![0.into()]),
    )
    .encode();
    let forty: Vec<&[u8]> = vec![&b"x"[..]; 40];
    client.send_frames(&[b"", b"\xc1"]); // undecodable
    client.send_frames(&[b"no delimiter"]); // malformed
    client.send_frames(&[b"", &not_an_event]); // undecodable
    client.send_frames(&[b"", &header_not_a_map]); // undecodable
    client.send_frames(&[b"", b""]); // undecodable (empty payload)
    client.send_frames(&[b"a", b"b"]); // malformed
    client.send_frames(&[b"", &unknown, b"trailing frame"]); // malformed
    client.send_frames(&forty); // malformed
    client.send_frames(&[b"", &unknown]); // unknown channel
    client.send_frames(&[b"", &late_heartbeat]); // late, not a drop
    let stats = wait_stats(&hub, "client-side drops", |s| {
        s.drops.total() == 9 && s.late_control == 1
    });
    assert_eq!(
        (
            stats.drops.malformed_frames,
            stats.drops.undecodable,
            stats.drops.unknown_channel
        ),
        (4, 4, 1)
    );

    // Worker side: a peer connected to `out` sending garbage.
    let bad = crate::support::context()
        .socket(zmq::DEALER)
        .expect("socket");
    bad.set_linger(0).expect("linger");
    bad.connect(hub.out_endpoint()).expect("connect");
    wait_stats(&hub, "the bad peer connected", |s| s.workers.len() == 1);
    let opening = request("whoami", vec![]).encode();
    bad.send_multipart([&b"x"[..]], 0).expect("send"); // malformed
    bad.send_multipart([&b""[..], b"\xc1"], 0).expect("send"); // undecodable
    bad.send_multipart([&b""[..], &opening], 0).expect("send"); // not a reply
    bad.send_multipart([&b""[..], &unknown], 0).expect("send"); // unknown channel
    let stats = wait_stats(&hub, "worker-side drops", |s| s.drops.total() == 13);
    assert_eq!(
        (
            stats.drops.malformed_frames,
            stats.drops.undecodable,
            stats.drops.unknown_channel
        ),
        (5, 5, 2)
    );
    assert_eq!(stats.drops.not_a_reply, 1);
    drop(bad);
    wait_stats(&hub, "the bad peer gone", |s| s.workers.is_empty());

    // The hub still serves.
    assert!(!hub.is_finished());
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let call = request("whoami", vec![]);
    client.send(&call);
    let got = worker.recv(LONG).expect("call");
    worker.reply(
        &got.envelope,
        &on_channel(
            &call.header.message_id,
            "OK",
            Value::Array(vec!["W".into()]),
        ),
    );
    let reply = client.recv(LONG).expect("reply");
    assert_eq!(reply.args, Value::Array(vec!["W".into()]));
    // Nothing garbled reached the worker or the client.
    assert!(worker.recv(QUIET).is_none());
    assert!(recv_within(&client.socket, QUIET).is_none());
}

/// A valid msgpack array that is not a 3-element event.
fn rmp_array_of_two() -> Vec<u8> {
    let mut buf = Vec::new();
    zerorpc_wire::rmpv::encode::write_value(&mut buf, &Value::Array(vec![1.into(), 2.into()]))
        .expect("encode");
    buf
}

/// Random frames: sometimes empty delimiters, sometimes a mutated event.
fn random_frames(rng: &mut Rng, template: &[u8]) -> Vec<Vec<u8>> {
    (0..1 + rng.below(4))
        .map(|_| match rng.below(4) {
            0 => Vec::new(),
            1 => {
                let mut event = template.to_vec();
                let at = rng.below(event.len() as u64) as usize;
                event[at] = rng.next_u64() as u8;
                event.truncate(1 + rng.below(event.len() as u64) as usize);
                event
            }
            _ => rng.bytes(60),
        })
        .collect()
}

#[test]
fn random_frames_on_both_sides_never_stop_the_queue() {
    const SEED: u64 = 0x00c0_ffee_1234_5678;
    let hub = start(loopback(HubKind::Queue));
    let mut rng = Rng::new(SEED);
    let template = request("whoami", vec![1.into()]).encode();
    let client = RawClient::connect(hub.in_endpoint());
    let flooder = crate::support::context()
        .socket(zmq::DEALER)
        .expect("socket");
    flooder.set_linger(0).expect("linger");
    flooder.connect(hub.out_endpoint()).expect("connect");
    wait_stats(&hub, "the flooding peer connected", |s| {
        s.workers.len() == 1
    });
    for _ in 0..500 {
        client.send_frames(
            &random_frames(&mut rng, &template)
                .iter()
                .map(Vec::as_slice)
                .collect::<Vec<_>>(),
        );
        flooder
            .send_multipart(random_frames(&mut rng, &template), 0)
            .expect("send");
    }
    let stats = wait_stats(&hub, "the floods counted", |s| s.drops.total() >= 500);
    assert!(!hub.is_finished(), "{stats:?}");
    drop(flooder);
    wait_stats(&hub, "the flooding peer gone", |s| s.workers.is_empty());

    // A good call still goes through; junk whose header happened to parse
    // as a call's may reach the worker first (the hub decodes no more than
    // the header), so look for ours (bounded).
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let call = request("whoami", vec![]);
    client.send(&call);
    let mut ours = None;
    for _ in 0..1000 {
        let mut frames = recv_within(&worker.socket, LONG).expect("calls reach the worker");
        let Some(event) = frames.pop().and_then(|p| Event::decode(&p).ok()) else {
            continue;
        };
        if event.header.message_id == call.header.message_id {
            frames.pop();
            ours = Some(Received {
                envelope: frames,
                event,
            });
            break;
        }
    }
    let got = ours.unwrap_or_else(|| panic!("our call never arrived (seed {SEED:#x})"));
    worker.reply(
        &got.envelope,
        &on_channel(
            &call.header.message_id,
            "OK",
            Value::Array(vec!["W".into()]),
        ),
    );
    let deadline = std::time::Instant::now() + LONG;
    let mut answered = false;
    for _ in 0..1000 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Replies to junk calls carry back the junk frames their request had
        // before the delimiter, as an envelope: read raw frames.
        let Some(frames) = recv_within(&client.socket, left) else {
            break;
        };
        let Some(event) = frames.last().and_then(|p| Event::decode(p).ok()) else {
            continue;
        };
        if event.header.response_to.as_ref() == Some(&call.header.message_id) {
            assert_eq!(event.args, Value::Array(vec!["W".into()]));
            answered = true;
            break;
        }
    }
    assert!(answered, "the good call was answered (seed {SEED:#x})");
}
