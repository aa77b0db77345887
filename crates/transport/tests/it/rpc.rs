//! Request and reply: our client and server together, and our server on the
//! wire against a raw DEALER.

use zerorpc_transport::{OpenOptions, Peer, Socket, SocketKind};
use zerorpc_wire::rmpv::{self, Value};
use zerorpc_wire::{Event, Header, IdKind, MessageId, names};

use crate::support::{HB, LIMIT, Raw, TempDir, config, run, unique};

fn request_reply_over(endpoint: &str) {
    let server = Socket::new(SocketKind::Server, config(Some(HB))).unwrap();
    let bound = server.bind(endpoint).unwrap();
    let client = Socket::new(SocketKind::Client, config(Some(HB))).unwrap();
    client.connect(&bound).unwrap();

    let mut call = Event::new(Header::new(), "add", Value::Array(vec![1.into(), 2.into()]));
    let id = call.header.message_id.clone();
    call.header.insert("trace_id", Value::from("abc"));
    let mut channel = client.open(call, OpenOptions::default()).unwrap();
    assert_eq!(channel.id(), &id);

    let mut served = run(server.accept()).unwrap();
    assert_eq!(served.id(), &id);
    let got = run(served.recv()).unwrap();
    assert_eq!(got.name, "add");
    assert_eq!(got.args, Value::Array(vec![1.into(), 2.into()]));
    assert_eq!(got.header.response_to, None);
    assert_eq!(got.header.get("trace_id"), Some(&Value::from("abc")));

    run(served.send(Event::new(
        Header::new(),
        names::OK,
        Value::Array(vec![3.into()]),
    )))
    .unwrap();
    let reply = run(channel.recv()).unwrap();
    assert_eq!(reply.name, names::OK);
    assert_eq!(reply.args, Value::Array(vec![3.into()]));
    assert_eq!(reply.header.response_to.as_ref(), Some(&id));
    assert_eq!(reply.header.version, Some(3));
    // The reply was the call's last event: the channel ended with it, so
    // reading on reports it closed instead of waiting for nothing.
    let after = run(channel.recv()).expect_err("nothing after the reply");
    assert_eq!(after.kind(), zerorpc_transport::ErrorKind::Closed);
}

#[test]
fn request_reply_over_tcp() {
    request_reply_over("tcp://127.0.0.1:*");
}

#[test]
fn request_reply_over_ipc() {
    let dir = TempDir::new();
    request_reply_over(&dir.ipc("server.sock"));
}

#[test]
fn request_reply_over_inproc() {
    request_reply_over(&format!("inproc://{}", unique("rpc")));
}

/// The msgpack value of `response_to` in an encoded event, undecoded by our
/// codec, so its wire type is visible.
fn raw_response_to(payload: &[u8]) -> Value {
    let value = rmpv::decode::read_value(&mut &payload[..]).unwrap();
    let header = &value.as_array().unwrap()[0];
    header
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some("response_to"))
        .map(|(_, v)| v.clone())
        .expect("reply has response_to")
}

/// Sends a request from a raw DEALER (`with_delimiter`: `["", P]`, else
/// `[P]`), answers it with our server and returns the raw reply frames.
fn serve_one_raw(id: MessageId, with_delimiter: bool) -> Vec<Vec<u8>> {
    let (server, endpoint) = crate::support::tcp_server(Some(HB));
    let dealer = Raw::new(zmq::DEALER);
    dealer.connect(&endpoint);

    let request = Event::new(
        Header::with_id(id.clone()),
        "echo",
        Value::Array(vec!["hi".into()]),
    );
    let payload = request.encode();
    if with_delimiter {
        dealer.send(&[b"", &payload]);
    } else {
        dealer.send(&[&payload]);
    }

    let mut served = run(server.accept()).unwrap();
    assert_eq!(served.id(), &id);
    assert_eq!(served.id().kind(), id.kind());
    let got = run(served.recv()).unwrap();
    assert_eq!(got, request);
    run(served.send(Event::new(
        Header::new(),
        names::OK,
        Value::Array(vec!["hi".into()]),
    )))
    .unwrap();

    // Skip heartbeats, should the machine be slow enough for one to come first.
    let mut frames = dealer.recv(LIMIT).expect("a reply");
    for _ in 0..20 {
        let event = Event::decode(frames.last().unwrap()).unwrap();
        if event.name != names::HEARTBEAT {
            break;
        }
        frames = dealer.recv(LIMIT).expect("a reply");
    }
    frames
}

fn check_reply_echoes(id: MessageId, with_delimiter: bool) {
    let frames = serve_one_raw(id.clone(), with_delimiter);
    assert_eq!(frames.len(), 2, "a DEALER receives [\"\", P]");
    assert!(frames[0].is_empty(), "empty delimiter frame");
    let reply = Event::decode(&frames[1]).unwrap();
    assert_eq!(reply.name, names::OK);
    assert_eq!(reply.args, Value::Array(vec!["hi".into()]));
    assert_eq!(reply.header.version, Some(3));
    let to = reply.header.response_to.expect("response_to");
    assert_eq!(to.as_bytes(), id.as_bytes());
    assert_eq!(to.kind(), id.kind());
    let expected = match id.kind() {
        IdKind::Bin => Value::Binary(id.as_bytes().to_vec()),
        IdKind::Str => Value::String(std::str::from_utf8(id.as_bytes()).unwrap().into()),
    };
    assert_eq!(raw_response_to(&frames[1]), expected);
}

#[test]
fn server_reply_echoes_bin_request_id_as_bin() {
    check_reply_echoes(MessageId::generate(), true);
}

#[test]
fn server_reply_echoes_str_request_id_as_str() {
    check_reply_echoes(
        MessageId::new(b"6ce9503a-bfb8-486a-ac79-000000000000", IdKind::Str),
        true,
    );
}

#[test]
fn server_accepts_and_answers_request_without_delimiter() {
    check_reply_echoes(MessageId::generate(), false);
    check_reply_echoes(
        MessageId::new(b"6ce9503a-bfb8-486a-ac79-000000000001", IdKind::Str),
        false,
    );
}

/// Records how the server's channels ended.
#[derive(Default)]
struct Endings(std::sync::Mutex<Vec<(Option<MessageId>, zerorpc_transport::Ending)>>);

impl zerorpc_transport::Observer for Endings {
    fn on_channel(&self, change: &zerorpc_transport::ChannelChange) {
        if let zerorpc_transport::ChangeKind::Closed(ending, _) = &change.change {
            let mut endings = self.0.lock().unwrap_or_else(|e| e.into_inner());
            endings.push((change.channel.clone(), *ending));
        }
    }
}

#[test]
fn send_last_delivers_the_last_event_and_ends_the_channel_with_it() {
    let endings = std::sync::Arc::new(Endings::default());
    let mut server_config = config(Some(HB));
    server_config.observers.push(endings.clone());
    let server = Socket::new(SocketKind::Server, server_config).unwrap();
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    let client = Socket::new(SocketKind::Client, config(Some(HB))).unwrap();
    client.connect(&endpoint).unwrap();

    // A single reply, then a stream whose end is the last event.
    let reply = |name: &str, args: Value| Event::new(Header::new(), name.to_owned(), args);
    let mut call = client
        .open(reply("add", Value::Nil), OpenOptions::default())
        .unwrap();
    let served = run(server.accept()).unwrap();
    let first = served.id().clone();
    run(served.send_last(reply(names::OK, Value::Array(vec![3.into()])))).unwrap();
    let got = run(call.recv()).unwrap();
    assert_eq!(
        (&*got.name, got.header.response_to),
        (names::OK, Some(first.clone()))
    );

    let mut stream = client
        .open(reply("count", Value::Nil), OpenOptions::default())
        .unwrap();
    // The client reads, granting the server credit for the items.
    let reader = std::thread::spawn(move || {
        (0..4)
            .map(|_| run(stream.recv()).unwrap().name.into_owned())
            .collect::<Vec<String>>()
    });
    let mut served = run(server.accept()).unwrap();
    let second = served.id().clone();
    let _request = run(served.recv()).unwrap();
    for n in 0..3 {
        run(served.send(reply(names::STREAM, Value::Array(vec![n.into()])))).unwrap();
    }
    run(served.send_last(reply(names::STREAM_DONE, Value::Nil))).unwrap();
    let names = reader.join().expect("the reader gets every event");
    assert_eq!(names, ["STREAM", "STREAM", "STREAM", "STREAM_DONE"]);

    // Each channel ended once on the server, closed on this side, with
    // no handle left to close it.
    let ended = || endings.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        crate::support::wait_until(LIMIT, || ended().len() == 2),
        "{:?}",
        ended()
    );
    let closed = zerorpc_transport::Ending::Closed;
    assert_eq!(ended(), [(Some(first), closed), (Some(second), closed)]);
}

/// A client that keeps peers tells each channel where its request went;
/// one that does not leaves the slot empty.
#[test]
fn a_channel_knows_where_its_request_went_when_its_socket_keeps_peers() {
    let server = Socket::new(SocketKind::Server, config(Some(HB))).unwrap();
    let bound = server.bind("tcp://127.0.0.1:*").unwrap();
    for keeps in [true, false] {
        let mut options = config(Some(HB));
        options.channel_peers = keeps;
        let client = Socket::new(SocketKind::Client, options).unwrap();
        client.connect(&bound).unwrap();
        let mut channel = client
            .open(
                Event::new(Header::new(), "ping", Value::Nil),
                OpenOptions::default(),
            )
            .unwrap();
        let slot = channel.peer_slot();
        let mut served = run(server.accept()).unwrap();
        run(served.recv()).unwrap();
        run(served.send(Event::new(Header::new(), names::OK, Value::Nil))).unwrap();
        run(channel.recv()).unwrap();
        drop(channel);
        let expected = keeps.then(|| Peer::Endpoint(bound.as_str().into()));
        assert_eq!(slot.get(), expected.as_ref(), "keeps peers: {keeps}");
    }
}
