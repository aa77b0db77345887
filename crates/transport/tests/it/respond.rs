//! A server's responder answers requests on the I/O thread, or adopts
//! calls to answer them from another thread or with a stream made on the
//! I/O thread; what it declines, or panics on, reaches the application as
//! usual.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use zerorpc_transport::{
    Adopted, ChangeKind, ChannelChange, EventInfo, Observer, OpenOptions, Producer, Responder,
    Socket, SocketKind,
};
use zerorpc_wire::rmpv::Value;
use zerorpc_wire::{Event, Header, names};

use crate::support::{HB, LIMIT, block_on_timeout, config, run, wait_until};

/// Answers `double [n]`, declines everything else, panics on `boom`.
struct Doubler;

impl Responder for Doubler {
    fn respond(&self, request: &mut Event) -> Option<Event> {
        match &*request.name {
            "double" => {
                let n = request.args.as_array()?.first()?.as_i64()?;
                let args = Value::Array(vec![Value::from(n * 2)]);
                Some(Event::new(Header::new(), names::OK, args))
            }
            "boom" => panic!("responder gave up"),
            _ => None,
        }
    }

    /// Adopts `slow [n]`, answered with `n` by a thread of its own after
    /// three heartbeat intervals; drops `forget` unanswered; panics on
    /// `burst`.
    fn adopt(&self, request: &mut Event, call: Adopted) -> Option<Adopted> {
        match &*request.name {
            "slow" => {
                let args = std::mem::replace(&mut request.args, Value::Nil);
                std::thread::spawn(move || {
                    std::thread::sleep(HB * 3);
                    assert!(!call.is_closed(), "the call is open while adopted");
                    call.reply(Event::new(Header::new(), names::OK, args));
                });
                None
            }
            "forget" => None,
            "burst" => panic!("adoption gave up"),
            "count" => {
                let n = request.args.as_array()?.first()?.as_u64()?;
                call.stream(Box::new(Counter { next: 0, n }));
                None
            }
            _ => Some(call),
        }
    }
}

/// Streams `0..n`, then panics if `n` is 2 (before its end).
struct Counter {
    next: u64,
    n: u64,
}

impl Producer for Counter {
    fn poll_event(&mut self, _: &mut Context<'_>) -> Poll<Event> {
        let i = self.next;
        self.next += 1;
        if i == self.n {
            assert_ne!(self.n, 2, "a producer gave up");
            return Poll::Ready(Event::new(Header::new(), names::STREAM_DONE, Value::Nil));
        }
        let args = Value::Array(vec![Value::from(i)]);
        Poll::Ready(Event::new(Header::new(), names::STREAM, args))
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
    Event::new(
        Header::new(),
        name.to_owned(),
        Value::Array(vec![Value::from(n)]),
    )
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

#[test]
fn an_adopted_call_is_heartbeated_until_its_reply_from_another_thread_ends_it() {
    let (server, endpoint, counts) = server_with_responder();
    let client = Socket::new(SocketKind::Client, config(Some(HB))).unwrap();
    client.connect(&endpoint).unwrap();

    let mut channels: Vec<_> = (0..20)
        .map(|n| {
            let call = request("slow", n);
            let id = call.header.message_id.clone();
            (n, id, client.open(call, OpenOptions::default()).unwrap())
        })
        .collect();
    // Each waits three heartbeat intervals, more than the two without a
    // heartbeat after which the client would take its server for lost.
    for (n, id, channel) in &mut channels {
        let reply = run(channel.recv()).expect("an adopted call is answered, not lost");
        assert_eq!(reply.name, names::OK);
        assert_eq!(reply.args, Value::Array(vec![Value::from(*n)]));
        assert_eq!(reply.header.response_to.as_ref(), Some(&*id));
    }
    assert!(wait_until(LIMIT, || counts.closed.load(Ordering::SeqCst) == 20));
    assert_eq!(counts.sent.load(Ordering::SeqCst), 20);
    let accepted = block_on_timeout(HB * 2, server.accept());
    assert!(accepted.is_none(), "an adopted call reached accept");
}

#[test]
fn an_adopted_call_dropped_unanswered_or_panicked_on_is_lost_to_its_client() {
    let (server, endpoint, _) = server_with_responder();
    let client = Socket::new(SocketKind::Client, config(Some(HB))).unwrap();
    client.connect(&endpoint).unwrap();

    for name in ["forget", "burst"] {
        let mut channel = client
            .open(request(name, 1), OpenOptions::default())
            .unwrap();
        let error = run(channel.recv()).expect_err("no reply comes");
        assert!(error.is_lost_remote(), "{name}: {error:?}");
    }
    // The server still adopts, answers and passes on calls afterwards.
    let mut slow = client
        .open(request("slow", 5), OpenOptions::default())
        .unwrap();
    assert_eq!(
        run(slow.recv()).unwrap().args,
        Value::Array(vec![Value::from(5)])
    );
    let mut declined = client
        .open(request("triple", 3), OpenOptions::default())
        .unwrap();
    let mut served = run(server.accept()).unwrap();
    assert_eq!(run(served.recv()).unwrap().name, "triple");
    run(served.send(Event::new(Header::new(), names::OK, Value::Nil))).unwrap();
    assert_eq!(run(declined.recv()).unwrap().name, names::OK);
}

#[test]
fn an_adopted_call_streams_what_its_producer_makes_on_the_io_thread() {
    let (server, endpoint, counts) = server_with_responder();
    let client = Socket::new(SocketKind::Client, config(Some(HB))).unwrap();
    client.connect(&endpoint).unwrap();

    // Past the first grants, each item as the credit allows.
    let call = request("count", 3_000);
    let id = call.header.message_id.clone();
    let mut channel = client.open(call, OpenOptions::default()).unwrap();
    for i in 0..3_000 {
        let item = run(channel.recv()).unwrap();
        assert_eq!(item.name, names::STREAM);
        assert_eq!(item.args, Value::Array(vec![Value::from(i)]));
        assert_eq!(item.header.response_to.as_ref(), Some(&id));
        if i == 0 {
            // As a stream sent from a task says it.
            let lossless = item.header.get(zerorpc_transport::LOSSLESS_KEY);
            assert_eq!(lossless.and_then(Value::as_bool), Some(true));
        }
    }
    assert_eq!(run(channel.recv()).unwrap().name, names::STREAM_DONE);
    // The last event ended the call on the server.
    assert!(wait_until(LIMIT, || counts.closed.load(Ordering::SeqCst) == 1));
    assert_eq!(
        counts.sent.load(Ordering::SeqCst),
        3_001,
        "each event observed"
    );

    // A producer that panics is dropped and its call closed: its client
    // has what was sent, then loses the call.
    let mut broken = client
        .open(request("count", 2), OpenOptions::default())
        .unwrap();
    for i in 0..2 {
        let item = run(broken.recv()).unwrap();
        assert_eq!(item.args, Value::Array(vec![Value::from(i)]));
    }
    let error = run(broken.recv()).expect_err("no end comes");
    assert!(error.is_lost_remote(), "{error:?}");
    // The server goes on streaming.
    let mut again = client
        .open(request("count", 10), OpenOptions::default())
        .unwrap();
    let items: Vec<_> = (0..11).map(|_| run(again.recv()).unwrap().name).collect();
    assert_eq!(items.last().map(|n| &**n), Some(names::STREAM_DONE));
    let accepted = block_on_timeout(HB * 2, server.accept());
    assert!(accepted.is_none(), "a streamed call reached accept");
}
