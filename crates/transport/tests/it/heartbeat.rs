//! Heartbeats: sending them, answering them, and losing the peer.

use std::time::Instant;

use futures::FutureExt;
use zerorpc_transport::{Channel, OpenOptions, Socket, SocketKind};
use zerorpc_wire::{Event, MessageId, Value, names};

use crate::support::{
    HB, LIMIT, Raw, block_on_timeout, client, config, heartbeat, is_heartbeat_of, request, run,
    tcp_server, wait_until,
};

/// Our server with one channel opened by a raw DEALER, accepted and idle.
fn idle_server_channel() -> (Socket, Raw, Channel, MessageId) {
    let (server, endpoint) = tcp_server(Some(HB));
    let dealer = Raw::new(zmq::DEALER);
    dealer.connect(&endpoint);
    let call = request("slow");
    let id = call.header.message_id.clone();
    dealer.send_event(&[Vec::new()], &call);
    let mut served = run(server.accept()).unwrap();
    assert_eq!(run(served.recv()).unwrap().name, "slow");
    (server, dealer, served, id)
}

/// Receives `count` heartbeats of `id` on the raw DEALER, answering each;
/// fails on any other event. Returns when the last one arrived.
fn answer_heartbeats(dealer: &Raw, id: &MessageId, count: usize) -> Instant {
    let mut last = Instant::now();
    for _ in 0..count {
        let (frames, event) = dealer.recv_event(LIMIT).expect("a heartbeat");
        assert_eq!(
            frames,
            vec![Vec::<u8>::new()],
            "a DEALER receives [\"\", P]"
        );
        assert!(is_heartbeat_of(&event, id), "unexpected event {event:?}");
        last = Instant::now();
        dealer.send_event(&[Vec::new()], &heartbeat(id));
    }
    last
}

#[test]
fn server_heartbeats_every_interval_and_stays_open_while_peer_answers() {
    let started = Instant::now();
    let (server, dealer, served, id) = idle_server_channel();
    answer_heartbeats(&dealer, &id, 5);
    // Every tick waits a full interval, so five can never come sooner.
    assert!(started.elapsed() >= HB * 5);
    // Five intervals is well past the loss threshold of two.
    assert!(served.closed().now_or_never().is_none(), "channel closed");
    // The I/O thread counts a heartbeat after handing it to libzmq, so the
    // peer can hold the fifth before the count shows it.
    assert!(wait_until(LIMIT, || server.stats().heartbeats_sent >= 5));
    assert_eq!(server.stats().dropped_unroutable, 0);
}

#[test]
fn server_channel_is_lost_when_peer_stops_heartbeating_and_no_err_is_sent() {
    let (_server, dealer, served, id) = idle_server_channel();
    let last_answer = answer_heartbeats(&dealer, &id, 3);

    let error = block_on_timeout(LIMIT, served.closed()).expect("loss detected");
    assert!(error.is_lost_remote(), "{error:?}");
    assert_eq!(error.to_string(), "lost remote after 0.2s heartbeat");
    assert!(last_answer.elapsed() >= HB * 2, "lost too early");

    // Whatever the server sent is already queued: heartbeats only.
    for _ in 0..100 {
        let Some((_, event)) = dealer.recv_event(HB * 3) else {
            break;
        };
        assert!(
            is_heartbeat_of(&event, &id),
            "unexpected event after loss: {event:?}"
        );
    }
}

#[test]
fn server_channel_is_lost_after_two_heartbeats_when_peer_never_heartbeats() {
    let (server, dealer, served, id) = idle_server_channel();
    let error = block_on_timeout(LIMIT, served.closed()).expect("loss detected");
    assert!(error.is_lost_remote(), "{error:?}");
    // zerorpc-python sends at f and 2f and gives up at 3f; a stalled timer
    // may merge the last two ticks.
    let sent = server.stats().heartbeats_sent;
    assert!((1..=2).contains(&sent), "{sent} heartbeats");
    let mut seen = 0;
    while let Some((_, event)) = dealer.recv_event(HB * 3) {
        assert!(is_heartbeat_of(&event, &id), "unexpected event {event:?}");
        seen += 1;
        assert!(seen <= 2);
    }
    assert_eq!(seen, sent);
}

/// A raw ROUTER, our client connected to it with `socket_config`, and one
/// channel whose request the ROUTER received. Returns the ROUTER's envelope.
fn client_channel(
    socket_config: zerorpc_transport::SocketConfig,
) -> (Raw, Socket, Channel, MessageId, Vec<Vec<u8>>) {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let client = Socket::new(SocketKind::Client, socket_config).unwrap();
    client.connect(&endpoint).unwrap();
    let call = request("hbonly");
    let id = call.header.message_id.clone();
    let channel = client.open(call, OpenOptions::default()).unwrap();
    let (envelope, got) = router.recv_event(LIMIT).expect("the request");
    assert_eq!(got.header.message_id, id);
    assert_eq!(envelope.len(), 2, "[identity, \"\"]");
    assert!(envelope[1].is_empty());
    (router, client, channel, id, envelope)
}

fn ok(id: &MessageId) -> Event {
    crate::support::on(id, names::OK, Value::Array(vec!["done".into()]))
}

#[test]
fn client_recv_fails_with_lost_remote_when_server_never_heartbeats() {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let client = client(Some(HB), &endpoint);
    let call = request("hbonly");
    let id = call.header.message_id.clone();
    let mut channel = client.open(call, OpenOptions::default()).unwrap();

    let error = run(channel.recv()).expect_err("no reply can come");
    assert!(error.is_lost_remote(), "{error:?}");
    assert_eq!(error.to_string(), "lost remote after 0.2s heartbeat");

    // The client did its part: the request, then active heartbeats.
    let (_, got) = router.recv_event(LIMIT).expect("the request");
    assert_eq!(got.header.message_id, id);
    let (envelope, hb) = router.recv_event(LIMIT).expect("a heartbeat");
    assert!(is_heartbeat_of(&hb, &id), "{hb:?}");
    assert_eq!(envelope.len(), 2);
}

#[test]
fn client_without_heartbeat_never_sends_nor_checks_heartbeats() {
    let (router, client, mut channel, id, envelope) = client_channel(config(None));
    // Ten intervals of the other tests: an active client would have sent
    // heartbeats and declared the silent server lost by now.
    assert!(router.recv(HB * 10).is_none(), "the client sent something");
    assert!(channel.closed().now_or_never().is_none(), "channel closed");
    assert_eq!(client.stats().heartbeats_sent, 0);

    router.send_event(&envelope, &ok(&id));
    let reply = run(channel.recv()).unwrap();
    assert_eq!(reply.name, names::OK);
}

#[test]
fn passive_client_heartbeats_only_after_the_peer_does() {
    let mut socket_config = config(Some(HB));
    socket_config.passive_heartbeat = true;
    let (router, client, mut channel, id, envelope) = client_channel(socket_config);

    assert!(
        router.recv(HB * 10).is_none(),
        "the passive client sent something"
    );
    assert!(
        channel.closed().now_or_never().is_none(),
        "passive channel checked loss"
    );
    assert_eq!(client.stats().heartbeats_sent, 0);

    router.send_event(&envelope, &heartbeat(&id));
    for _ in 0..3 {
        let (frames, hb) = router
            .recv_event(LIMIT)
            .expect("a heartbeat from the client");
        assert!(is_heartbeat_of(&hb, &id), "{hb:?}");
        assert_eq!(frames, envelope);
        router.send_event(&envelope, &heartbeat(&id));
    }
    assert!(wait_until(LIMIT, || client.stats().heartbeats_sent >= 3));

    router.send_event(&envelope, &ok(&id));
    let reply = run(channel.recv()).unwrap();
    assert_eq!(reply.name, names::OK);
}
