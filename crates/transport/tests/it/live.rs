//! Live endpoints: connecting and disconnecting while channels run.

use zerorpc_transport::{Channel, ErrorKind, OpenOptions, Socket, SocketKind};
use zerorpc_wire::{Event, Header, Value, names};

use crate::support::{client, config, request, run, tcp_server};

fn reply(n: u64) -> Event {
    Event::new(Header::new(), names::OK, Value::Array(vec![Value::from(n)]))
}

/// Accepts one channel and returns it with the number its request carries.
fn accept(server: &Socket) -> (Channel, u64) {
    let mut channel = run(server.accept()).expect("accept");
    let call = run(channel.recv()).expect("request");
    let n = call
        .args
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_u64);
    (channel, n.expect("a numbered request"))
}

fn open(client: &Socket, n: u64) -> Channel {
    let call = Event::new(Header::new(), "work", Value::Array(vec![Value::from(n)]));
    client.open(call, OpenOptions::default()).expect("open")
}

/// Answers `served` with its number and checks that `call` gets it.
fn answer(served: &mut Channel, n: u64, call: &mut Channel) {
    run(served.send(reply(n))).expect("reply");
    let got = run(call.recv()).expect("reply arrives");
    assert_eq!(got.args, Value::Array(vec![Value::from(n)]));
}

#[test]
fn a_disconnected_server_finishes_its_calls_and_gets_no_new_ones() {
    // No heartbeats, so that every event a server receives is a request
    // or a reply of this test.
    let (a, a_endpoint) = tcp_server(None);
    let (b, b_endpoint) = tcp_server(None);
    let client = client(None, &a_endpoint);
    client.connect(&b_endpoint).unwrap();

    // One channel on each: the two sockets tie, so they take one each.
    let mut calls = vec![open(&client, 0), open(&client, 1)];
    let (mut on_a, n_a) = accept(&a);
    let (mut on_b, n_b) = accept(&b);
    assert_eq!(n_a + n_b, 1);

    client.disconnect(&a_endpoint).unwrap();

    // New channels all go to `b`: accepting four there proves it, as a
    // channel never moves.
    calls.extend((2..6).map(|n| open(&client, n)));
    let mut fresh: Vec<(Channel, u64)> = (2..6).map(|_| accept(&b)).collect();
    fresh.sort_by_key(|(_, n)| *n);
    assert_eq!(
        fresh.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [2, 3, 4, 5]
    );
    assert_eq!(a.stats().received, 1, "only the call opened before");

    // The call in flight on `a` completes, and `b`'s are undisturbed.
    let (first, second) = calls.split_at_mut(1);
    let (call_a, call_b) = if n_a == 0 {
        (&mut first[0], &mut second[0])
    } else {
        (&mut second[0], &mut first[0])
    };
    answer(&mut on_a, n_a, call_a);
    answer(&mut on_b, n_b, call_b);
    for (served, n) in &mut fresh {
        let call = &mut calls[*n as usize];
        answer(served, *n, call);
    }
    assert_eq!(client.stats().dropped(), 0, "{:?}", client.stats());
}

#[test]
fn the_last_endpoint_disconnected_leaves_calls_nowhere_to_go() {
    let (server, endpoint) = tcp_server(None);
    let client = client(None, &endpoint);
    client.disconnect(&endpoint).unwrap();
    let mut call = client
        .open(request("ping"), OpenOptions::default())
        .unwrap();
    let error = run(call.recv()).expect_err("no endpoint");
    assert_eq!(error.kind(), ErrorKind::Endpoint);

    // Connecting again works as the first time.
    client.connect(&endpoint).unwrap();
    let mut call = open(&client, 7);
    let (mut served, n) = accept(&server);
    answer(&mut served, n, &mut call);
}

#[test]
fn disconnecting_or_unbinding_an_unknown_endpoint_is_an_endpoint_error() {
    let (server, endpoint) = tcp_server(None);
    let client = client(None, &endpoint);
    for socket in [&client, &server] {
        let error = socket.disconnect("tcp://127.0.0.1:1").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Endpoint);
        assert_eq!(
            error.to_string(),
            r#"bad endpoint "tcp://127.0.0.1:1": not connected"#
        );
    }
    client.disconnect(&endpoint).unwrap();
    let again = client.disconnect(&endpoint).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Endpoint, "already disconnected");
    let error = client.unbind(&endpoint).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Endpoint, "connected, not bound");
}

#[test]
fn unbind_takes_the_endpoint_as_asked_or_as_bound() {
    for asked in ["tcp://127.0.0.1:*", "bound"] {
        let server = Socket::new(SocketKind::Server, config(None)).unwrap();
        let bound = server.bind("tcp://127.0.0.1:*").unwrap();
        let name = if asked == "bound" { &bound } else { asked };
        server.unbind(name).unwrap();
        let error = server.unbind(name).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Endpoint, "unbound already");
    }
}

#[test]
fn a_push_socket_disconnected_from_one_puller_sends_to_the_next() {
    let push = Socket::new(SocketKind::Push, config(None)).unwrap();
    let first = Socket::new(SocketKind::Pull, config(None)).unwrap();
    let second = Socket::new(SocketKind::Pull, config(None)).unwrap();
    let first_endpoint = first.bind("tcp://127.0.0.1:*").unwrap();
    let second_endpoint = second.bind("tcp://127.0.0.1:*").unwrap();

    push.connect(&first_endpoint).unwrap();
    push.emit(request("one"));
    assert_eq!(run(first.next_event()).unwrap().name, "one");

    push.disconnect(&first_endpoint).unwrap();
    push.connect(&second_endpoint).unwrap();
    // With `first`'s pipe gone, `second` is the only peer left.
    push.emit(request("two"));
    assert_eq!(run(second.next_event()).unwrap().name, "two");
    assert_eq!(first.stats().received, 1);
}

#[test]
fn a_server_connected_to_a_bound_client_disconnects_at_once() {
    // The way a worker connects to a hub: the server dials out.
    let client = Socket::new(SocketKind::Client, config(None)).unwrap();
    let endpoint = client.bind("tcp://127.0.0.1:*").unwrap();
    let server = Socket::new(SocketKind::Server, config(None)).unwrap();
    server.connect(&endpoint).unwrap();
    let mut call = open(&client, 1);
    let (mut served, n) = accept(&server);
    answer(&mut served, n, &mut call);

    server.disconnect(&endpoint).unwrap();
    let again = server.disconnect(&endpoint).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Endpoint);
    // Connecting again is possible, as the first time.
    server.connect(&endpoint).unwrap();
}
