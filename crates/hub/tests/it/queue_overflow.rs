//! The queue hub when a peer cannot take what it is sent (its ZeroMQ queue
//! and TCP buffers are full): a dropped stream item or a dropped `_zpc_more`
//! would leave the client and the worker waiting for each other forever,
//! kept alive by their heartbeats, so the hub ends the channel instead.

use std::time::{Duration, Instant};

use zerorpc_hub::{HubKind, Stats, error_names};
use zerorpc_wire::{Event, MessageId, Value};

use crate::support::{
    LONG, RawClient, RawWorker, context, loopback, on_channel, request, start, wait_stats,
};

/// Upper bound on the events a test pushes at a peer that does not read:
/// far more than libzmq's default queue (1000 messages) plus loopback TCP
/// buffers hold at this size.
const FLOOD_LIMIT: usize = 20_000;
/// Padding per flooding event, so that buffers fill after a few thousand.
const PADDING: usize = 4096;

/// A socket that reads (almost) nothing: one message of ZeroMQ queue and a
/// small TCP receive buffer.
fn reluctant(kind: zmq::SocketType, endpoint: &str) -> zmq::Socket {
    let socket = context().socket(kind).expect("socket");
    socket.set_linger(0).expect("linger");
    socket.set_rcvhwm(1).expect("rcvhwm");
    socket.set_rcvbuf(PADDING as i32).expect("rcvbuf");
    socket.connect(endpoint).expect("connect");
    socket
}

/// Sends `frames` again and again until the hub reports a refused send, at
/// most [`FLOOD_LIMIT`] times and for at most [`LONG`].
fn flood_until_refused(hub: &zerorpc_hub::Hub, socket: &zmq::Socket, frames: &[&[u8]]) -> Stats {
    let deadline = Instant::now() + LONG;
    for sent in 0..FLOOD_LIMIT {
        // A full pipe towards the hub only means the hub is busy: skip.
        let _ = socket.send_multipart(frames, zmq::DONTWAIT);
        if sent % 100 == 99 {
            let stats = hub.stats();
            if stats.drops.send_failed > 0 || Instant::now() > deadline {
                return stats;
            }
            // Let the hub catch up, so that the refusal is the reader's.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    hub.stats()
}

fn padded(channel: &MessageId, name: &str) -> Vec<u8> {
    let args = Value::Array(vec![Value::from(1), Value::Binary(vec![0; PADDING])]);
    on_channel(channel, name, args).encode()
}

#[test]
fn a_stream_item_a_slow_client_cannot_take_ends_the_channel() {
    let hub = start(loopback(HubKind::Queue));
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient {
        socket: reluctant(zmq::DEALER, hub.in_endpoint()),
    };

    let call = request("numbers", vec![]);
    let channel = call.header.message_id.clone();
    client.send(&call);
    let got = worker.recv(LONG).expect("call");

    let item = padded(&channel, "STREAM");
    let mut frames: Vec<&[u8]> = got.envelope.iter().map(Vec::as_slice).collect();
    frames.extend([&b""[..], &item[..]]);
    let stats = flood_until_refused(&hub, &worker.socket, &frames);
    assert!(
        stats.drops.send_failed > 0,
        "the client never refused: {}",
        stats.to_json()
    );

    // Before: the channel stayed open with an item missing, and the call
    // hung. Now it is over, and the worker is free again.
    let stats = wait_stats(&hub, "the channel ended", |s| {
        s.open_channels == 0 && s.calls_failed_undeliverable == 1
    });
    assert_eq!(stats.workers[0].outstanding, 0);

    let before = stats.drops.unknown_channel;
    worker.reply(
        &got.envelope,
        &on_channel(&channel, "STREAM_DONE", Value::Nil),
    );
    wait_stats(&hub, "a later event has no channel", |s| {
        s.drops.unknown_channel > before
    });
    assert_eq!(hub.stats().calls_failed_undeliverable, 1);
}

#[test]
fn credit_a_stuck_worker_cannot_take_fails_the_call() {
    let hub = start(loopback(HubKind::Queue));
    let worker = RawWorker {
        socket: reluctant(zmq::ROUTER, hub.out_endpoint()),
    };
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);
    let client = RawClient::connect(hub.in_endpoint());

    let call = request("numbers", vec![]);
    let channel = call.header.message_id.clone();
    client.send(&call);
    worker.recv(LONG).expect("call");

    let credit = padded(&channel, "_zpc_more");
    let stats = flood_until_refused(&hub, &client.socket, &[b"", &credit]);
    assert!(
        stats.drops.send_failed > 0,
        "the worker never refused: {}",
        stats.to_json()
    );

    // The client hears why at once, instead of waiting for a stream that
    // cannot come.
    let deadline = Instant::now() + LONG;
    let mut answer: Option<Event> = None;
    for _ in 0..100 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(event) = client.recv(left) else {
            break;
        };
        if event.header.response_to.as_ref() == Some(&channel) && event.name == "ERR" {
            answer = Some(event);
            break;
        }
    }
    let answer = answer.expect("an ERR for the call");
    let name = answer
        .args
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(name, error_names::LOST_REMOTE);

    let stats = wait_stats(&hub, "the channel ended", |s| {
        s.open_channels == 0 && s.calls_failed_undeliverable == 1
    });
    assert_eq!(stats.workers[0].outstanding, 0);
}

/// The next event about `channel` other than a heartbeat, within [`LONG`].
fn answer_to(client: &RawClient, channel: &MessageId) -> Option<Event> {
    let deadline = Instant::now() + LONG;
    for _ in 0..1000 {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = client.recv(left)?;
        if event.header.response_to.as_ref() == Some(channel) && event.name != "_zpc_hb" {
            return Some(event);
        }
    }
    None
}

#[test]
fn a_call_skips_the_least_loaded_worker_when_its_pipe_is_full() {
    let mut config = loopback(HubKind::Queue);
    // Fail fast if the call is left waiting for the full worker.
    config.queue_timeout = Duration::from_secs(2);
    let hub = start(config);
    // Held, never read: its queue fills up.
    let _stuck = RawWorker {
        socket: reluctant(zmq::ROUTER, hub.out_endpoint()),
    };
    let healthy = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "two workers", |s| s.workers.len() == 2);
    let client = RawClient::connect(hub.in_endpoint());

    // One call each: the healthy worker holds its call unanswered (load 1),
    // the stuck one gets a call whose channel then floods its pipe.
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

    let credit = padded(&stuck_channel, "_zpc_more");
    let stats = flood_until_refused(&hub, &client.socket, &[b"", &credit]);
    assert!(
        stats.drops.send_failed > 0,
        "never refused: {}",
        stats.to_json()
    );
    // That call is over, so the stuck worker is now the least loaded one,
    // with a full pipe.
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
