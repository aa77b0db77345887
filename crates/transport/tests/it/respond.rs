//! A server's responder answers requests on the I/O thread; what it
//! declines, or panics on, reaches the application as usual.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use zerorpc_transport::{
    ChangeKind, ChannelChange, EventInfo, Observer, OpenOptions, Responder, Socket, SocketKind,
};
use zerorpc_wire::rmpv::Value;
use zerorpc_wire::{Event, Header, names};

use crate::support::{HB, LIMIT, block_on_timeout, config, run, wait_until};

/// Answers `double [n]`, declines everything else, panics on `boom`.
struct Doubler;

impl Responder for Doubler {
    fn respond(&self, request: &mut Event) -> Option<Event> {
        match request.name.as_str() {
            "double" => {
                let n = request.args.as_array()?.first()?.as_i64()?;
                let args = Value::Array(vec![Value::from(n * 2)]);
                Some(Event::new(Header::new(), names::OK, args))
            }
            "boom" => panic!("responder gave up"),
            _ => None,
        }
    }
}

/// Counts the channels the server closes and the events it sends.
#[derive(Default)]
struct Counts {
    closed: AtomicUsize,
    sent: AtomicUsize,
}

impl Observer for Counts {
    fn on_event(&self, event: &EventInfo) {
        if event.direction == zerorpc_transport::Direction::Sent && !event.control {
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn on_channel(&self, change: &ChannelChange) {
        if matches!(change.change, ChangeKind::Closed(..)) {
            self.closed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn server_with_responder() -> (Socket, String, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let mut server_config = config(Some(HB));
    server_config.responder = Some(Arc::new(Doubler));
    server_config.observers.push(counts.clone());
    let server = Socket::new(SocketKind::Server, server_config).unwrap();
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    (server, endpoint, counts)
}

fn request(name: &str, n: i64) -> Event {
    Event::new(Header::new(), name, Value::Array(vec![Value::from(n)]))
}

#[test]
fn a_responder_answers_without_the_application_and_ends_the_channel() {
    let (server, endpoint, counts) = server_with_responder();
    let client = Socket::new(SocketKind::Client, config(Some(HB))).unwrap();
    client.connect(&endpoint).unwrap();

    for n in 0..100 {
        let call = request("double", n);
        let id = call.header.message_id.clone();
        let mut channel = client.open(call, OpenOptions::default()).unwrap();
        let reply = run(channel.recv()).unwrap();
        assert_eq!(reply.name, names::OK);
        assert_eq!(reply.args, Value::Array(vec![Value::from(n * 2)]));
        assert_eq!(reply.header.response_to.as_ref(), Some(&id));
    }
    // Every channel ended on the server, and none reached `accept`.
    assert!(wait_until(LIMIT, || counts.closed.load(Ordering::SeqCst) == 100));
    assert_eq!(counts.sent.load(Ordering::SeqCst), 100);
    let accepted = block_on_timeout(Duration::from_millis(200), server.accept());
    assert!(
        accepted.is_none(),
        "a call the responder answered reached accept"
    );
}

#[test]
fn what_a_responder_declines_or_panics_on_reaches_the_application() {
    let (server, endpoint, _) = server_with_responder();
    let client = Socket::new(SocketKind::Client, config(Some(HB))).unwrap();
    client.connect(&endpoint).unwrap();

    for name in ["triple", "boom"] {
        let mut channel = client
            .open(request(name, 7), OpenOptions::default())
            .unwrap();
        let mut served = run(server.accept()).unwrap();
        let got = run(served.recv()).unwrap();
        assert_eq!(got.name, name);
        assert_eq!(got.args, Value::Array(vec![Value::from(7)]));
        run(served.send(Event::new(
            Header::new(),
            names::OK,
            Value::Array(vec![Value::from(name)]),
        )))
        .unwrap();
        let reply = run(channel.recv()).unwrap();
        assert_eq!(reply.args, Value::Array(vec![Value::from(name)]));
    }
    // The server still answers after a panicking responder.
    let mut channel = client
        .open(request("double", 21), OpenOptions::default())
        .unwrap();
    assert_eq!(
        run(channel.recv()).unwrap().args,
        Value::Array(vec![Value::from(42)])
    );
}
