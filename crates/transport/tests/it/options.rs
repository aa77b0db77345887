//! Per-socket and per-endpoint options reach the ZeroMQ socket of the
//! endpoint they were given for, and no other. The observable option is
//! the message size limit: ZeroMQ drops the connection of a peer that sends
//! more, so the oversized event never arrives.

use std::time::Duration;

use zerorpc_transport::{
    DEFAULT_MAX_MESSAGE_SIZE, EndpointOptions, OpenOptions, Security, Socket, SocketConfig,
    SocketKind,
};
use zerorpc_wire::{Event, Header, Value, names};

use crate::support::{LIMIT, Raw, block_on_timeout, run};

const LIMITED: u64 = 1024;

/// Well over [`LIMITED`] once encoded.
fn big() -> Value {
    Value::Binary(vec![7; 4 * LIMITED as usize])
}

fn call(name: &str, arg: Value) -> Event {
    Event::new(Header::new(), name.to_owned(), Value::Array(vec![arg]))
}

fn limited(config: &SocketConfig) -> EndpointOptions {
    EndpointOptions {
        max_message_size: Some(LIMITED),
        ..config.endpoint_options()
    }
}

/// How long to wait for something that should not happen.
const QUIET: Duration = Duration::from_millis(500);

#[test]
fn the_defaults_are_no_security_and_a_16_mib_size_limit() {
    let config = SocketConfig::new();
    assert_eq!(config.security, Security::None);
    assert_eq!(config.max_message_size, Some(16 << 20));
    assert_eq!(config.max_message_size, Some(DEFAULT_MAX_MESSAGE_SIZE));
    assert_eq!(
        config.endpoint_options(),
        EndpointOptions {
            max_message_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            ..EndpointOptions::default()
        }
    );
}

#[test]
fn a_bound_endpoint_keeps_its_own_options_and_the_next_gets_the_defaults() {
    let server = Socket::new(SocketKind::Server, SocketConfig::new()).unwrap();
    let small_only = server
        .bind_with("tcp://127.0.0.1:*", limited(server.config()))
        .unwrap();
    // Bound after the limited one, on the same ZeroMQ socket: the limit
    // must not carry over.
    let open = server.bind("tcp://127.0.0.1:*").unwrap();
    let to_limited = Raw::new(zmq::DEALER);
    to_limited.connect(&small_only);
    let to_open = Raw::new(zmq::DEALER);
    to_open.connect(&open);

    to_limited.send_event(&[vec![]], &call("small", Value::from(1)));
    let mut accepted = run(server.accept()).unwrap();
    assert_eq!(run(accepted.recv()).unwrap().name, "small");

    to_limited.send_event(&[vec![]], &call("too-big", big()));
    to_open.send_event(&[vec![]], &call("big", big()));
    let mut accepted = run(server.accept()).unwrap();
    assert_eq!(run(accepted.recv()).unwrap().name, "big");
    assert!(
        block_on_timeout(QUIET, server.accept()).is_none(),
        "an event over the endpoint's limit was received"
    );
}

/// A client whose calls fail quickly when no reply arrives.
fn open_call(client: &Socket) -> zerorpc_transport::Channel {
    let options = OpenOptions {
        first_reply_timeout: Some(QUIET),
        ..OpenOptions::default()
    };
    client.open(call("get", Value::Nil), options).unwrap()
}

/// Answers one call on `router` with a reply over [`LIMITED`].
fn answer_big(router: &Raw) {
    let (envelope, request) = router.recv_event(LIMIT).expect("a request");
    let mut header = Header::new();
    header.response_to = Some(request.header.message_id);
    let reply = Event::new(header, names::OK, Value::Array(vec![big()]));
    router.send_event(&envelope, &reply);
}

#[test]
fn connect_uses_the_socket_default_and_connect_with_overrides_it() {
    let mut config = SocketConfig::new();
    config.max_message_size = Some(LIMITED);

    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let with_default = Socket::new(SocketKind::Client, config.clone()).unwrap();
    with_default.connect(&endpoint).unwrap();
    let mut channel = open_call(&with_default);
    answer_big(&router);
    let error = run(channel.recv()).expect_err("the reply is over the limit");
    assert!(error.is_timeout(), "{error:?}");

    let overridden = Socket::new(SocketKind::Client, config).unwrap();
    let unlimited = EndpointOptions {
        max_message_size: None,
        ..overridden.config().endpoint_options()
    };
    overridden.connect_with(&endpoint, unlimited).unwrap();
    let mut channel = open_call(&overridden);
    answer_big(&router);
    let reply = run(channel.recv()).expect("no limit on this endpoint");
    assert_eq!(reply.args, Value::Array(vec![big()]));
}

#[test]
fn libzmq_is_built_with_curve() {
    // CURVE needs libzmq built with libsodium (see ARCHITECTURE.md, "libzmq
    // build"); without it every CURVE endpoint fails to apply its options.
    assert_eq!(zmq::has("curve"), Some(true));
}
