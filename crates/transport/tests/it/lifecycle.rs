//! Closing sockets and dropping channels and sockets.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;

use zerorpc_transport::{Error, OpenOptions, Socket, SocketKind};

use crate::support::{
    HB, LIMIT, Raw, block_on_timeout, client, config, heartbeat, is_heartbeat_of, request, run,
    tcp_server, wait_until,
};

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// Polls `fut` once, checking that it waits, then finishes it on a thread.
fn finish_elsewhere<T: Send + 'static>(
    mut fut: Pending<T>,
) -> std::thread::JoinHandle<Option<Result<T, Error>>> {
    let waker = futures::task::noop_waker();
    assert!(
        fut.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    std::thread::spawn(move || block_on_timeout(LIMIT, fut))
}

fn expect_closed<T>(handle: std::thread::JoinHandle<Option<Result<T, Error>>>, what: &str) {
    let result = handle
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("{what} still pending"));
    match result {
        Ok(_) => panic!("{what} succeeded after close"),
        Err(e) => assert!(e.is_closed(), "{what}: {e:?}"),
    }
}

#[test]
fn close_fails_pending_accept_and_recv_on_clones() {
    let (server, endpoint) = tcp_server(Some(HB));
    let client = client(Some(HB), &endpoint);
    let mut call = client
        .open(request("slow"), OpenOptions::default())
        .unwrap();
    let mut served = run(server.accept()).unwrap();
    run(served.recv()).unwrap();

    let accepting = {
        let server = server.clone();
        finish_elsewhere(Box::pin(async move { server.accept().await }))
    };
    let serving = finish_elsewhere(Box::pin(async move { served.recv().await }));
    let calling = finish_elsewhere(Box::pin(async move { call.recv().await }));
    let pull = Socket::new(SocketKind::Pull, config(None)).unwrap();
    let pulling = {
        let pull = pull.clone();
        finish_elsewhere(Box::pin(async move { pull.next_event().await }))
    };

    // The server's calls end before the client goes: closed from both
    // ends at once, a server channel may hear of its peer's loss first
    // (PeerGone) and that race is not what this test is about.
    server.close();
    expect_closed(accepting, "accept");
    expect_closed(serving, "server channel recv");
    client.close();
    pull.close();
    expect_closed(calling, "client channel recv");
    expect_closed(pulling, "next_event");

    // Everything after close fails the same way, without hanging.
    assert!(run(server.accept()).unwrap_err().is_closed());
    assert!(server.bind("tcp://127.0.0.1:*").unwrap_err().is_closed());
    let mut late = client
        .open(request("late"), OpenOptions::default())
        .unwrap();
    assert!(run(late.recv()).unwrap_err().is_closed());
}

#[test]
fn dropping_the_last_socket_handle_stops_its_io_thread() {
    let (server, endpoint) = tcp_server(Some(HB));
    let clone = server.clone();
    drop(server);
    // A clone keeps the socket alive: the port is still taken.
    let raw = Raw::new(zmq::ROUTER);
    assert!(raw.socket.bind(&endpoint).is_err());
    drop(clone);
    // Closing the ZeroMQ socket releases the port; libzmq does that in the
    // background, so allow it some time.
    assert!(
        wait_until(LIMIT, || raw.socket.bind(&endpoint).is_ok()),
        "{endpoint} still bound after the socket was dropped"
    );
}

#[test]
fn dropping_a_server_channel_stops_its_heartbeats() {
    let (server, endpoint) = tcp_server(Some(HB));
    let dealer = Raw::new(zmq::DEALER);
    dealer.connect(&endpoint);
    let call = request("slow");
    let id = call.header.message_id.clone();
    dealer.send_event(&[Vec::new()], &call);
    let served = run(server.accept()).unwrap();
    for _ in 0..2 {
        let (_, event) = dealer.recv_event(LIMIT).expect("a heartbeat");
        assert!(is_heartbeat_of(&event, &id));
        dealer.send_event(&[Vec::new()], &heartbeat(&id));
    }

    drop(served);
    // Once the peer's heartbeats arrive late, the channel is gone.
    assert!(wait_until(LIMIT, || {
        dealer.send_event(&[Vec::new()], &heartbeat(&id));
        server.stats().late_control >= 1
    }));
    assert_eq!(server.stats().dropped(), 0, "late heartbeats are no loss");
    let sent = server.stats().heartbeats_sent;
    // Those already sent still arrive; then ten intervals of silence.
    let mut late = 0;
    while let Some((_, event)) = dealer.recv_event(HB * 10) {
        assert!(is_heartbeat_of(&event, &id), "{event:?}");
        late += 1;
        assert!(late <= sent, "heartbeats continue after the drop");
    }
    assert_eq!(late + 2, sent);
    assert_eq!(server.stats().heartbeats_sent, sent);
}

#[test]
fn dropping_a_client_channel_stops_its_heartbeats() {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let client = client(Some(HB), &endpoint);
    let call = client
        .open(request("slow"), OpenOptions::default())
        .unwrap();
    let id = call.id().clone();
    let (envelope, _) = router.recv_event(LIMIT).expect("the request");
    for _ in 0..2 {
        let (_, event) = router.recv_event(LIMIT).expect("a heartbeat");
        assert!(is_heartbeat_of(&event, &id));
        router.send_event(&envelope, &heartbeat(&id));
    }

    drop(call);
    assert!(wait_until(LIMIT, || {
        router.send_event(&envelope, &heartbeat(&id));
        client.stats().late_control >= 1
    }));
    assert_eq!(client.stats().dropped(), 0, "late heartbeats are no loss");
    let sent = client.stats().heartbeats_sent;
    let mut late = 0;
    while let Some((_, event)) = router.recv_event(HB * 10) {
        assert!(is_heartbeat_of(&event, &id), "{event:?}");
        late += 1;
        assert!(late <= sent, "heartbeats continue after the drop");
    }
    assert_eq!(late + 2, sent);
    assert_eq!(client.stats().heartbeats_sent, sent);
}
