//! The hub's message size limit: a client sending a larger request has
//! its connection dropped by ZeroMQ before the hub reads the message, so
//! nothing reaches a worker; smaller requests still go through.

use std::time::Duration;

use zerorpc_hub::{DEFAULT_MAX_MESSAGE_SIZE, HubConfig, HubKind, parse_config};
use zerorpc_wire::Value;

use crate::support::{LONG, RawClient, RawWorker, loopback, request, start, wait_stats};

const LIMIT: u64 = 1024;

/// How long a worker is given to receive what must not reach it.
const QUIET: Duration = Duration::from_millis(500);

#[test]
fn a_request_over_the_limit_never_reaches_a_worker() {
    assert_eq!(
        HubConfig::new(HubKind::Queue, "a", "b").max_message_size,
        Some(DEFAULT_MAX_MESSAGE_SIZE)
    );
    let mut config = loopback(HubKind::Queue);
    config.max_message_size = Some(LIMIT);
    let hub = start(config);
    let worker = RawWorker::connect(hub.out_endpoint());
    wait_stats(&hub, "the worker connected", |s| s.workers.len() == 1);

    let big = RawClient::connect(hub.in_endpoint());
    big.send(&request(
        "echo",
        vec![Value::from("x".repeat(4 * LIMIT as usize))],
    ));
    assert!(
        worker.recv(QUIET).is_none(),
        "an oversized request was routed"
    );
    // The dropped connection is counted; a worker sending too much is too.
    wait_stats(&hub, "the client's connection counted", |s| {
        s.connections_closed == 1
    });
    let noisy = crate::support::context()
        .socket(zmq::DEALER)
        .expect("socket");
    noisy.set_linger(0).expect("linger");
    noisy.connect(hub.out_endpoint()).expect("connect");
    wait_stats(&hub, "a second worker", |s| s.workers.len() == 2);
    noisy
        .send_multipart([&b""[..], &vec![0; 4 * LIMIT as usize]], 0)
        .expect("send");
    wait_stats(&hub, "the worker's connection counted", |s| {
        s.connections_closed == 2
    });
    drop(noisy);
    wait_stats(&hub, "the noisy worker gone", |s| s.workers.len() == 1);

    let small = RawClient::connect(hub.in_endpoint());
    small.send(&request("echo", vec![Value::from("x".repeat(10))]));
    let received = worker.recv(LONG).expect("the small request is routed");
    assert_eq!(received.event.name, "echo");
}

#[test]
fn the_limit_is_read_from_a_file() {
    let hubs = parse_config("in: 'tcp://*:1'\nout: 'tcp://*:2'\nmax_message_size: 65536\n")
        .expect("valid");
    assert_eq!(hubs[0].max_message_size, Some(65536));
    let hubs =
        parse_config("in: 'tcp://*:1'\nout: 'tcp://*:2'\nmax_message_size: 0\n").expect("valid");
    assert_eq!(hubs[0].max_message_size, None, "0 is no limit");
    let err = parse_config("in: 'tcp://*:1'\nout: 'tcp://*:2'\nmax_message_size: -1\n")
        .expect_err("negative");
    assert!(err.to_string().contains("max_message_size"), "{err}");
}
