//! Peers that read slower than we send: events wait in bounded send queues
//! instead of being dropped, one slow peer holds back no other, and what
//! cannot be delivered fails its channel with an error that says why.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use zerorpc_transport::{Channel, ErrorKind, OpenOptions, Socket, SocketKind};
use zerorpc_wire::{Event, Header, MessageId, Value, names};

use crate::support::{LIMIT, Raw, config, heartbeat, more, request, run, wait_until};

/// ZeroMQ holds up to 1,000 messages per peer (its high-water mark), then
/// the kernel's socket buffers hold a few megabytes: this many messages of
/// [`BIG`] bytes are more than both, so that events really have to wait in
/// our queues.
pub(crate) const FILL: usize = 3_000;
pub(crate) const BIG: usize = 8 * 1024;

pub(crate) fn ok(size: usize) -> Event {
    Event::new(
        Header::new(),
        names::OK,
        Value::Array(vec![Value::Binary(vec![7; size])]),
    )
}

/// Replies [`ok`]`(BIG)` on every call, and waits until each reply is
/// sent, waiting or refused.
pub(crate) fn reply_to_all(server: &Socket, calls: &mut [Channel]) {
    for call in calls.iter_mut() {
        run(call.send(ok(BIG))).expect("a send never waits for the peer");
    }
    assert!(wait_until(LIMIT, || {
        let stats = server.stats();
        stats.sent + stats.queued + stats.dropped_queue_full == calls.len() as u64
    }));
}

fn server(configure: impl FnOnce(&mut zerorpc_transport::SocketConfig)) -> (Socket, String) {
    let mut config = config(None);
    configure(&mut config);
    let server = Socket::new(SocketKind::Server, config).expect("server socket");
    let endpoint = server.bind("tcp://127.0.0.1:*").expect("bind");
    (server, endpoint)
}

/// A raw DEALER that reads as little as ZeroMQ and the kernel allow.
pub(crate) fn sluggish_dealer(endpoint: &str) -> Raw {
    sluggish_dealer_named(endpoint, None)
}

/// [`sluggish_dealer`], with the routing id it chose, if any.
fn sluggish_dealer_named(endpoint: &str, routing_id: Option<&[u8]>) -> Raw {
    let dealer = Raw::new(zmq::DEALER);
    if let Some(id) = routing_id {
        dealer.socket.set_identity(id).expect("routing id");
    }
    dealer.socket.set_rcvhwm(1).expect("rcvhwm");
    dealer.socket.set_rcvbuf(4096).expect("rcvbuf");
    dealer.connect(endpoint);
    dealer
}

/// Sends `n` requests from `dealer` and accepts them all on `server`.
pub(crate) fn open_calls(server: &Socket, dealer: &Raw, n: usize) -> Vec<Channel> {
    let mut served = Vec::with_capacity(n);
    for _ in 0..n {
        dealer.send_event(&[Vec::new()], &request("work"));
    }
    for _ in 0..n {
        let mut channel = run(server.accept()).expect("a call");
        run(channel.recv()).expect("its request");
        served.push(channel);
    }
    served
}

/// Reads replies until every channel in `expected` answered once.
fn read_replies(dealer: &Raw, mut expected: HashSet<MessageId>) {
    let total = expected.len();
    for _ in 0..total * 4 {
        if expected.is_empty() {
            return;
        }
        let (_, event) = dealer.recv_event(LIMIT).expect("the next reply");
        if event.name == names::OK {
            let channel = event.header.response_to.expect("a reply names its call");
            assert!(expected.remove(&channel), "one reply per call");
        }
    }
    assert!(
        expected.is_empty(),
        "{} of {total} replies missing",
        expected.len()
    );
}

#[test]
fn replies_wait_for_a_peer_that_stops_reading_and_all_arrive() {
    let (server, endpoint) = server(|_| {});
    let dealer = sluggish_dealer(&endpoint);
    let calls = open_calls(&server, &dealer, FILL);
    let ids: HashSet<MessageId> = calls.iter().map(|c| c.id().clone()).collect();
    for mut call in calls {
        run(call.send(ok(BIG))).expect("reply");
        // Closing the channel must not discard its reply still waiting.
        drop(call);
    }
    assert!(
        wait_until(LIMIT, || server.stats().queued > 0),
        "ZeroMQ and the kernel cannot hold it all: {:?}",
        server.stats()
    );

    read_replies(&dealer, ids);
    assert!(wait_until(LIMIT, || server.stats().queued == 0));
    let stats = server.stats();
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert!(stats.queued_peak > 0, "{stats:?}");
}

#[test]
fn replies_wait_for_a_slow_peer_with_a_long_routing_id_and_all_arrive() {
    // Queued events keep short head frames inline: a peer's own id of 200
    // bytes is kept whole all the same.
    let (server, endpoint) = server(|_| {});
    let dealer = sluggish_dealer_named(&endpoint, Some(&[b'p'; 200]));
    let calls = open_calls(&server, &dealer, FILL);
    let ids: HashSet<MessageId> = calls.iter().map(|c| c.id().clone()).collect();
    for mut call in calls {
        run(call.send(ok(BIG))).expect("reply");
    }
    assert!(
        wait_until(LIMIT, || server.stats().queued > 0),
        "{:?}",
        server.stats()
    );
    read_replies(&dealer, ids);
    assert_eq!(server.stats().dropped(), 0, "{:?}", server.stats());
}

#[test]
fn a_slow_peer_does_not_hold_back_the_others() {
    let (server, endpoint) = server(|_| {});
    let slow = sluggish_dealer(&endpoint);
    let slow_calls = open_calls(&server, &slow, FILL);
    let slow_ids: HashSet<MessageId> = slow_calls.iter().map(|c| c.id().clone()).collect();
    for mut call in slow_calls {
        run(call.send(ok(BIG))).expect("reply");
    }
    assert!(wait_until(LIMIT, || server.stats().queued > 0));

    let quick = Raw::new(zmq::DEALER);
    quick.connect(&endpoint);
    let mut quick_calls = open_calls(&server, &quick, 10);
    for call in &mut quick_calls {
        run(call.send(ok(10))).expect("reply");
    }
    read_replies(&quick, quick_calls.iter().map(|c| c.id().clone()).collect());
    assert!(
        server.stats().queued > 0,
        "the slow peer's replies are still waiting"
    );

    read_replies(&slow, slow_ids);
    assert_eq!(server.stats().dropped(), 0, "{:?}", server.stats());
}

#[test]
fn a_stream_to_a_peer_that_stops_reading_waits_at_the_mark_then_arrives_whole() {
    // Credit for the whole stream: only the peer's reading can pace it.
    const ITEMS: usize = FILL;
    // The default queue limit (64 MiB) puts the mark at 1 MiB.
    const MARK: usize = 1 << 20;
    let (server, endpoint) = server(|_| {});
    let dealer = sluggish_dealer(&endpoint);
    let mut call = open_calls(&server, &dealer, 1).pop().expect("a call");
    let id = call.id().clone();
    dealer.send_event(&[Vec::new()], &more(&id, ITEMS as i64));
    let sent = Arc::new(AtomicUsize::new(0));
    let producer = std::thread::spawn({
        let sent = sent.clone();
        move || {
            for i in 0..ITEMS {
                let item = Value::Binary(vec![i as u8; BIG]);
                run(call.send(Event::new(Header::new(), names::STREAM, item))).expect("an item");
                sent.fetch_add(1, Ordering::SeqCst);
            }
            call
        }
    });

    // The queue fills to its mark, and then the stream waits for the
    // peer rather than filling the queue to its limit.
    assert!(wait_until(LIMIT, || server.stats().queued > 0));
    let stalled = |sent: &AtomicUsize| {
        let before = sent.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        before == sent.load(Ordering::SeqCst)
    };
    assert!(
        wait_until(LIMIT, || stalled(&sent)),
        "the stream waits while its peer reads nothing"
    );
    assert!(sent.load(Ordering::SeqCst) < ITEMS);
    // The I/O thread holds the channel when it queues the event that
    // crosses the mark; sends the producer handed over before then are
    // queued too (one in a quiet run, a dozen on a busy machine). Either
    // way a small part of the queue's limit (64 MiB, 8,192 such events).
    let stats = server.stats();
    assert!(
        stats.queued_peak as usize <= 2 * (MARK / BIG),
        "about the mark waits, not the queue's limit: {stats:?}"
    );

    // Reading again lets it go on, to the end, in order.
    for i in 0..ITEMS {
        let (_, event) = dealer.recv_event(LIMIT).expect("the next item");
        assert_eq!(event.name, names::STREAM);
        assert_eq!(
            event.args.as_slice().map(|b| b[0]),
            Some(i as u8),
            "item {i}"
        );
    }
    let call = producer.join().expect("the producer ends");
    assert_eq!(sent.load(Ordering::SeqCst), ITEMS);
    assert_eq!(server.stats().dropped(), 0, "{:?}", server.stats());
    drop(call);
}

#[test]
fn a_full_send_queue_fails_the_call_with_a_clear_error() {
    const LIMIT_BYTES: usize = 1 << 20;
    let (server, endpoint) = server(|c| c.send_queue_limit = LIMIT_BYTES);
    let dealer = sluggish_dealer(&endpoint);
    let mut calls = open_calls(&server, &dealer, FILL);
    reply_to_all(&server, &mut calls);

    let stats = server.stats();
    assert!(stats.dropped_queue_full > 0, "{stats:?}");
    assert_eq!(stats.dropped(), stats.dropped_queue_full, "{stats:?}");
    // Bounded: what waits never exceeds the limit by more than one event.
    assert!(
        stats.queued_peak as usize * BIG <= LIMIT_BYTES + BIG,
        "{stats:?}"
    );
    let failed: Vec<_> = calls
        .iter()
        .filter_map(|call| call.closed().now_or_never())
        .collect();
    assert_eq!(failed.len() as u64, stats.dropped_queue_full);
    for error in failed {
        assert_eq!(error.kind(), ErrorKind::QueueFull);
        let text = error.to_string();
        assert!(
            text.contains("not reading") && text.contains(&LIMIT_BYTES.to_string()),
            "{text}"
        );
    }
}

#[test]
fn a_stream_that_finds_the_queue_full_is_held_not_failed() {
    const LIMIT_BYTES: usize = 1 << 20;
    const ITEMS: usize = 20;
    let (server, endpoint) = server(|c| c.send_queue_limit = LIMIT_BYTES);
    let dealer = sluggish_dealer(&endpoint);
    let mut calls = open_calls(&server, &dealer, FILL + 1);
    let mut stream = calls.pop().expect("the streaming call");
    let id = stream.id().clone();
    dealer.send_event(&[Vec::new()], &more(&id, ITEMS as i64 + 1));
    // Single replies fill the queue to its limit; past it they are refused.
    reply_to_all(&server, &mut calls);
    let refused = server.stats().dropped_queue_full;
    assert!(refused > 0, "the queue reached its limit");

    // A stream whose first item finds the queue past its limit waits for
    // the peer instead of failing (streams released together after a hold
    // used to fail this way, and their clients saw `LostRemote`).
    let producer = std::thread::spawn(move || {
        for i in 0..ITEMS {
            let item = Value::Binary(vec![i as u8; BIG]);
            run(stream.send(Event::new(Header::new(), names::STREAM, item))).expect("an item");
        }
        let done = Event::new(Header::new(), names::STREAM_DONE, Value::Array(Vec::new()));
        run(stream.send(done)).expect("the end");
        stream
    });
    let mut items = Vec::new();
    let mut done = false;
    // Everything the server accepted, then the stream: bounded in count.
    for _ in 0..FILL + ITEMS + 1 {
        let Some((_, event)) = dealer.recv_event(LIMIT) else {
            break;
        };
        if event.header.response_to.as_ref() != Some(&id) || event.name == names::HEARTBEAT {
            continue;
        }
        match &*event.name {
            names::STREAM => items.push(event.args.as_slice().map(|b| b[0])),
            names::STREAM_DONE => {
                done = true;
                break;
            }
            other => panic!("unexpected {other} on the stream"),
        }
    }
    let expected: Vec<_> = (0..ITEMS).map(|i| Some(i as u8)).collect();
    assert_eq!(items, expected, "the stream arrives whole, in order");
    assert!(done, "and ends");
    let stream = producer.join().expect("the producer ends");
    assert!(stream.closed().now_or_never().is_none(), "not failed");
    assert_eq!(server.stats().dropped_queue_full, refused);
}

#[test]
fn heartbeats_for_a_slow_peer_do_not_pile_up() {
    let interval = Duration::from_millis(50);
    // Passive: only the channels whose peer heartbeats are checked, so the
    // calls that only fill the way need no heartbeats from the test.
    let (server, endpoint) = server(|c| {
        c.heartbeat = Some(interval);
        c.passive_heartbeat = true;
    });
    let dealer = sluggish_dealer(&endpoint);
    let mut calls = open_calls(&server, &dealer, FILL + 200);
    // Replies fill the way to the peer...
    for mut call in calls.drain(..FILL) {
        run(call.send(ok(BIG))).expect("reply");
    }
    // Every reply handed over is sent or waiting (no heartbeat yet: they
    // are passive until the peer's first).
    assert!(wait_until(LIMIT, || {
        let stats = server.stats();
        stats.sent + stats.queued == FILL as u64
    }));
    let replies_waiting = server.stats().queued;
    assert!(replies_waiting > 0, "{:?}", server.stats());
    // ...and the others' heartbeats wait behind them, ten intervals long,
    // while the peer keeps its side alive.
    for _ in 0..10 {
        for call in &calls {
            dealer.send_event(&[Vec::new()], &heartbeat(call.id()));
        }
        std::thread::sleep(interval);
    }
    let stats = server.stats();
    assert!(
        stats.queued <= replies_waiting + calls.len() as u64,
        "at most one heartbeat per channel waits: {stats:?}"
    );
    assert_eq!(stats.dropped(), 0, "{stats:?}");
}

#[test]
fn an_event_for_a_vanished_peer_fails_its_channel_as_lost() {
    let interval = Duration::from_millis(500);
    let (server, endpoint) = server(|c| c.heartbeat = Some(interval));
    let dealer = Raw::new(zmq::DEALER);
    dealer.connect(&endpoint);
    let calls = open_calls(&server, &dealer, 1);
    drop(dealer);

    // The first heartbeat after the disconnect finds no peer to go to.
    let error = run(calls[0].closed());
    assert_eq!(error.kind(), ErrorKind::LostRemote, "{error}");
    assert_eq!(error.to_string(), "lost remote: the peer disconnected");
    // The refusal is counted just after the call it failed is closed (so
    // that a count never runs ahead of its failures): a moment later.
    assert!(
        wait_until(LIMIT, || server.stats().dropped_peer_gone == 1),
        "{:?}",
        server.stats()
    );
    assert_eq!(server.stats().dropped_peer_gone, 1, "counted once");
}

#[test]
fn requests_wait_in_the_client_for_a_server_that_stops_reading() {
    let router = Raw::new(zmq::ROUTER);
    router.socket.set_rcvhwm(1).expect("rcvhwm");
    router.socket.set_rcvbuf(4096).expect("rcvbuf");
    let endpoint = router.bind_tcp();
    let client = Socket::new(SocketKind::Client, config(None)).expect("client socket");
    client.connect(&endpoint).expect("connect");

    let big = Value::Array(vec![Value::Binary(vec![1; BIG])]);
    let calls: Vec<Channel> = (0..FILL)
        .map(|_| {
            let request = Event::new(Header::new(), "work", big.clone());
            client.open(request, OpenOptions::default()).expect("open")
        })
        .collect();
    assert!(wait_until(LIMIT, || client.stats().queued > 0));

    let mut expected: HashSet<MessageId> = calls.iter().map(|c| c.id().clone()).collect();
    for _ in 0..calls.len() {
        let (_, event) = router.recv_event(LIMIT).expect("the next request");
        assert!(expected.remove(&event.header.message_id));
    }
    assert!(expected.is_empty());
    assert_eq!(client.stats().dropped(), 0, "{:?}", client.stats());
}

#[test]
fn a_slow_subscriber_misses_no_event() {
    let publish = Socket::new(SocketKind::Publish, config(None)).expect("publish socket");
    let endpoint = publish.bind("tcp://127.0.0.1:*").expect("bind");
    let sub = Raw::new(zmq::SUB);
    sub.socket.set_rcvhwm(1).expect("rcvhwm");
    sub.socket.set_rcvbuf(4096).expect("rcvbuf");
    sub.socket.set_subscribe(b"").expect("subscribe");
    sub.connect(&endpoint);
    // A subscription takes effect some time after connecting: publish
    // probes until one arrives.
    let probe = Event::new(Header::new(), "probe", Value::Array(vec![]));
    let mut seen = false;
    for _ in 0..500 {
        publish.emit(probe.clone());
        if sub.recv(Duration::from_millis(10)).is_some() {
            seen = true;
            break;
        }
    }
    assert!(seen, "the subscription never took effect");

    let count = 2_000u64;
    for n in 0..count {
        let args = Value::Array(vec![Value::from(n), Value::Binary(vec![0; 4096])]);
        publish.emit(Event::new(Header::new(), "tick", args));
    }
    assert!(wait_until(LIMIT, || publish.stats().queued > 0));
    let mut next = 0;
    for _ in 0..count * 2 {
        let (_, event) = sub.recv_event(LIMIT).expect("the next event");
        if event.name == "tick" {
            let n = event.args.as_array().and_then(|a| a[0].as_u64());
            assert_eq!(n, Some(next), "in order, none missing");
            next += 1;
            if next == count {
                break;
            }
        }
    }
    assert_eq!(next, count);
    assert_eq!(publish.stats().dropped(), 0, "{:?}", publish.stats());
}
