//! A client that sends many requests and then stops reading: the server
//! must keep every reply for it (no loss) without growing without bound.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use zerorpc::wire::{Event, Header, MessageId, Value};
use zerorpc_load::ProcStatus;

use crate::support::{LoadServer, MAX_RSS, assert_no_drops, heavy, took};

const REQUESTS: usize = 5000;

/// How long the client reads nothing, as in the issue.
const SILENCE: Duration = Duration::from_secs(30);

/// Bound on reading all the replies once the client reads again.
const DRAIN: Duration = Duration::from_secs(120);

/// Bound on the wait for any one message while draining.
const IDLE: Duration = Duration::from_secs(20);

#[test]
fn a_client_that_stops_reading_gets_every_reply_and_the_server_stays_bounded() {
    let _heavy = heavy();
    let started = Instant::now();
    // The raw client sends no heartbeats; a long interval keeps the
    // server's heartbeat check out of this test, which is about
    // back-pressure.
    let server = LoadServer::start(&["--heartbeat", "60"]);
    let pid = server.pid();

    let context = zmq::Context::new();
    let dealer = context.socket(zmq::DEALER).expect("DEALER");
    dealer.set_linger(0).expect("linger");
    // Hold back as little as possible on this side, so the back-pressure
    // reaches the server quickly.
    dealer.set_rcvhwm(1).expect("rcvhwm");
    dealer.set_rcvbuf(4096).expect("rcvbuf");
    dealer.set_sndhwm(0).expect("sndhwm");
    dealer.connect(&server.endpoint).expect("connect");

    let text = "x".repeat(1024);
    let mut pending: HashSet<MessageId> = HashSet::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let header = Header::new();
        pending.insert(header.message_id.clone());
        let request = Event::new(header, "echo", Value::Array(vec![text.as_str().into()]));
        dealer
            .send_multipart([&b""[..], &request.encode()], 0)
            .expect("send a request");
    }

    let mut max_rss = 0;
    let mut sample = || {
        let rss = ProcStatus::of(pid).expect("server status").rss_bytes;
        max_rss = max_rss.max(rss);
    };
    for _ in 0..SILENCE.as_secs() {
        std::thread::sleep(Duration::from_secs(1));
        sample();
    }

    let deadline = Instant::now() + DRAIN;
    let mut last_sample = Instant::now();
    let mut other = 0_usize;
    let expected = Value::Array(vec![text.as_str().into()]);
    // Every message is a reply or a heartbeat; bounded by the deadline and
    // by a count far above what the server can send.
    for _ in 0..REQUESTS * 100 {
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        if last_sample.elapsed() >= Duration::from_secs(1) {
            sample();
            last_sample = Instant::now();
        }
        let ready = dealer
            .poll(zmq::POLLIN, IDLE.as_millis() as i64)
            .expect("poll");
        if ready == 0 {
            break;
        }
        let frames = dealer.recv_multipart(0).expect("recv");
        let event = Event::decode(frames.last().expect("a payload")).expect("a valid event");
        match (&event.header.response_to, &*event.name) {
            (Some(id), "OK") if pending.contains(id) => {
                assert_eq!(event.args, expected, "reply of {id}");
                pending.remove(id);
            }
            _ => other += 1,
        }
    }
    sample();
    eprintln!(
        "server RSS at most {} MiB; {other} other events",
        max_rss >> 20
    );
    assert!(
        pending.is_empty(),
        "{} of {REQUESTS} replies missing\n{}",
        pending.len(),
        server.process.report()
    );
    assert!(max_rss < MAX_RSS, "server RSS reached {max_rss} bytes");
    let stats = server.stats();
    assert_no_drops(&stats);
    // The replies really waited in the server's send queue, not only in
    // ZeroMQ's and the kernel's buffers.
    assert!(stats["queued_peak"] > 0, "{stats:?}");
    took("slow reader", started);
}
