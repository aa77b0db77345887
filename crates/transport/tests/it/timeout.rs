//! First-reply timeouts.

use std::time::{Duration, Instant};

use zerorpc_transport::{OpenOptions, SocketConfig};
use zerorpc_wire::{Value, names};

use crate::support::{LIMIT, Raw, block_on_timeout, client, credit_of, on, request, run};

fn with_timeout(after: Duration) -> OpenOptions {
    OpenOptions {
        first_reply_timeout: Some(after),
        ..OpenOptions::default()
    }
}

#[test]
fn first_reply_timeout_fails_the_channel_against_a_silent_server() {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let client = client(SocketConfig::new().heartbeat, &endpoint);
    let started = Instant::now();
    let mut channel = client
        .open(request("hang"), with_timeout(Duration::from_millis(300)))
        .unwrap();

    let error = run(channel.recv()).expect_err("no reply comes");
    assert!(error.is_timeout(), "{error:?}");
    assert!(!error.is_lost_remote());
    assert_eq!(error.to_string(), "timeout after 0.3s");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(router.recv(LIMIT).is_some(), "the request was sent");
}

#[test]
fn first_reply_timeout_does_not_apply_after_the_first_reply() {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let client = client(SocketConfig::new().heartbeat, &endpoint);
    let timeout = Duration::from_millis(500);
    let mut channel = client
        .open(request("count"), with_timeout(timeout))
        .unwrap();
    let id = channel.id().clone();

    let (envelope, _) = router.recv_event(LIMIT).expect("the request");
    router.send_event(&envelope, &on(&id, names::STREAM, Value::from(0)));
    assert_eq!(run(channel.recv()).unwrap().args, Value::from(0));

    // Several timeouts' worth of silence after the first reply.
    assert!(
        block_on_timeout(timeout * 4, channel.closed()).is_none(),
        "channel closed"
    );

    // The second read grants credit; the next item then still gets through.
    let peer = std::thread::spawn(move || {
        let (_, grant) = router
            .recv_until(LIMIT, |_, e| credit_of(e).is_some())
            .expect("credit");
        router.send_event(&envelope, &on(&id, names::STREAM, Value::from(1)));
        grant
    });
    let reply = run(channel.recv());
    let grant = peer.join().unwrap();
    assert_eq!(
        credit_of(&grant),
        Some(i64::from(zerorpc_transport::DEFAULT_WINDOW))
    );
    assert_eq!(reply.unwrap().args, Value::from(1));
}
