//! Unroutable and malformed input is dropped, counted, and harms nothing.

use zerorpc_transport::OpenOptions;
use zerorpc_wire::rmpv::{self, Value};
use zerorpc_wire::{Event, Header, MessageId, names};

use crate::support::{HB, LIMIT, Raw, client, heartbeat, on, request, run, tcp_server};

fn encode(value: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, value).unwrap();
    buf
}

fn header_map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

#[test]
fn server_drops_and_counts_bad_input_then_keeps_answering() {
    let (server, endpoint) = tcp_server(Some(HB));
    let dealer = Raw::new(zmq::DEALER);
    dealer.connect(&endpoint);
    let stranger = MessageId::generate();

    // Unroutable: events of channels the server never saw. A heartbeat
    // counts as late rather than lost: the protocol has no close event.
    dealer.send_event(
        &[Vec::new()],
        &on(&stranger, names::OK, Value::Array(vec![1.into()])),
    );
    dealer.send_event(&[Vec::new()], &heartbeat(&stranger));

    let id = Value::Binary(MessageId::generate().as_bytes().to_vec());
    let malformed: Vec<Vec<u8>> = vec![
        // Not msgpack at all.
        vec![0xc1, 0xff, 0x00],
        // Empty payload.
        Vec::new(),
        // msgpack, but not a 3-element array.
        encode(&Value::Array(vec![1.into(), 2.into()])),
        encode(&Value::from("hello")),
        // A header without message_id.
        encode(&Value::Array(vec![
            header_map(vec![("v", 3.into())]),
            "ping".into(),
            Value::Array(vec![]),
        ])),
        // A message_id that is neither bin nor str.
        encode(&Value::Array(vec![
            header_map(vec![("message_id", 7.into())]),
            "ping".into(),
            Value::Array(vec![]),
        ])),
        // A header that is not a map.
        encode(&Value::Array(vec![
            Value::Nil,
            "ping".into(),
            Value::Array(vec![]),
        ])),
        // A valid event followed by trailing bytes.
        {
            let mut bytes = encode(&Value::Array(vec![
                header_map(vec![("message_id", id)]),
                "ping".into(),
                Value::Array(vec![]),
            ]));
            bytes.push(0x00);
            bytes
        },
    ];
    for payload in &malformed {
        dealer.send(&[b"", payload]);
    }
    // A one-frame message holding only the delimiter: no payload at all.
    dealer.send(&[b""]);

    let good = request("ping");
    dealer.send_event(&[Vec::new()], &good);
    let mut served = run(server.accept()).unwrap();
    assert_eq!(served.id(), &good.header.message_id);
    run(served.send(Event::new(
        Header::new(),
        names::OK,
        Value::Array(vec!["pong".into()]),
    )))
    .unwrap();
    let (frames, reply) = dealer
        .recv_until(LIMIT, |_, e| e.name != names::HEARTBEAT)
        .expect("the good request is answered");
    assert_eq!(frames, vec![Vec::<u8>::new()]);
    assert_eq!(reply.name, names::OK);
    assert_eq!(
        reply.header.response_to.as_ref(),
        Some(&good.header.message_id)
    );

    // ZeroMQ keeps the order of one connection, so everything sent before
    // the good request was handled before it was accepted.
    let stats = server.stats();
    assert_eq!(stats.dropped_unroutable, 1, "{stats:?}");
    assert_eq!(stats.late_control, 1, "{stats:?}");
    assert_eq!(
        stats.dropped_malformed,
        malformed.len() as u64 + 1,
        "{stats:?}"
    );
    assert_eq!(stats.received, 3, "{stats:?}");
}

#[test]
fn client_drops_and_counts_unroutable_and_malformed_replies() {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let client = client(None, &endpoint);
    let mut channel = client
        .open(request("ping"), OpenOptions::default())
        .unwrap();
    let id = channel.id().clone();
    let (envelope, _) = router.recv_event(LIMIT).expect("the request");

    // A reply to a channel the client never opened, and an event opening
    // a channel, which a client does not accept.
    router.send_event(
        &envelope,
        &on(
            &MessageId::generate(),
            names::OK,
            Value::Array(vec![0.into()]),
        ),
    );
    router.send_event(&envelope, &request("surprise"));
    let mut frames: Vec<&[u8]> = envelope.iter().map(Vec::as_slice).collect();
    frames.push(&[0xc1]);
    router.send(&frames);
    router.send_event(
        &envelope,
        &on(&id, names::OK, Value::Array(vec!["pong".into()])),
    );

    let reply = run(channel.recv()).unwrap();
    assert_eq!(reply.args, Value::Array(vec!["pong".into()]));
    let stats = client.stats();
    assert_eq!(stats.dropped_unroutable, 2, "{stats:?}");
    assert_eq!(stats.dropped_malformed, 1, "{stats:?}");
}
