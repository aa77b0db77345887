//! Observers: every event with its channel, direction and peer, every
//! channel change with its reason, from the I/O thread; and the queueing
//! adapter that keeps a slow observer off the I/O path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use zerorpc_transport::{
    ChangeKind, ChannelChange, ChannelObserver, Direction, DropReason, Ending, EventInfo, Observed,
    Observer, OpenOptions, Peer, Socket, SocketKind,
};
use zerorpc_wire::{Event, Header, MessageId, Value, names};

use crate::backpressure::{FILL, open_calls, reply_to_all, sluggish_dealer};
use crate::support::{HB, LIMIT, Raw, config, request, run, wait_until};

/// Keeps everything it sees.
#[derive(Default)]
struct Recorder(Mutex<Vec<Observed>>);

impl Observer for Recorder {
    fn on_event(&self, info: &EventInfo) {
        self.lock().push(Observed::Event(info.clone()));
    }

    fn on_channel(&self, change: &ChannelChange) {
        self.lock().push(Observed::Channel(change.clone()));
    }
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Observed>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn events(&self) -> Vec<EventInfo> {
        self.lock()
            .iter()
            .filter_map(|o| match o {
                Observed::Event(info) => Some(info.clone()),
                Observed::Channel(_) => None,
            })
            .collect()
    }

    fn changes(&self) -> Vec<ChannelChange> {
        self.lock()
            .iter()
            .filter_map(|o| match o {
                Observed::Channel(change) => Some(change.clone()),
                Observed::Event(_) => None,
            })
            .collect()
    }

    /// The first event named `name` that went `direction`.
    fn event(&self, direction: Direction, name: &str) -> Option<EventInfo> {
        self.events()
            .into_iter()
            .find(|e| e.direction == direction && e.event.name == name)
    }

    /// The first event named `name` that went `direction`, waiting for it
    /// up to [`LIMIT`]: a sender's observers hear of an event after libzmq
    /// took it, so its peer may have it first.
    fn eventual_event(&self, direction: Direction, name: &str) -> Option<EventInfo> {
        let mut found = None;
        wait_until(LIMIT, || {
            found = self.event(direction, name);
            found.is_some()
        });
        found
    }

    /// How channel `id` ended, once it has.
    fn ending(&self, id: &MessageId) -> Option<Ending> {
        self.changes().into_iter().find_map(|c| match c.change {
            ChangeKind::Closed(ending, _) if c.channel.as_ref() == Some(id) => Some(ending),
            _ => None,
        })
    }
}

fn observed(kind: SocketKind, heartbeat: Option<Duration>) -> (Socket, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let mut config = config(heartbeat);
    config.observers.push(recorder.clone());
    (Socket::new(kind, config).expect("socket"), recorder)
}

fn reply(name: &str) -> Event {
    Event::new(
        Header::new(),
        name.to_owned(),
        Value::Array(vec!["done".into()]),
    )
}

#[test]
fn both_sides_see_a_call_with_its_channel_direction_and_peer() {
    let (server, seen_by_server) = observed(SocketKind::Server, Some(HB));
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    let (client, seen_by_client) = observed(SocketKind::Client, Some(HB));
    client.connect(&endpoint).unwrap();

    let mut call = client
        .open(request("work"), OpenOptions::default())
        .unwrap();
    let id = call.id().clone();
    let mut served = run(server.accept()).unwrap();
    assert_eq!(run(served.recv()).unwrap().name, "work");
    // Both sides heartbeat while the call runs.
    let heartbeats_both_ways = |recorder: &Recorder| {
        [Direction::Sent, Direction::Received]
            .iter()
            .all(|&d| recorder.event(d, names::HEARTBEAT).is_some())
    };
    assert!(wait_until(LIMIT, || heartbeats_both_ways(&seen_by_client)
        && heartbeats_both_ways(&seen_by_server)));
    run(served.send(reply(names::OK))).unwrap();
    assert_eq!(run(call.recv()).unwrap().name, names::OK);
    drop(call);
    assert!(wait_until(LIMIT, || seen_by_client.ending(&id).is_some()));

    // The client: its own endpoint is the peer of everything.
    let peer = Peer::Endpoint(endpoint.as_str().into());
    let changes = seen_by_client.changes();
    assert!(
        matches!(changes[0].change, ChangeKind::Opened),
        "{changes:?}"
    );
    assert_eq!(changes[0].channel.as_ref(), Some(&id));
    assert_eq!(changes[0].peer, peer);
    assert_eq!(seen_by_client.ending(&id), Some(Ending::Closed));
    let sent = seen_by_client
        .event(Direction::Sent, "work")
        .expect("request");
    let got = seen_by_client
        .event(Direction::Received, names::OK)
        .expect("reply");
    let beat = seen_by_client
        .event(Direction::Sent, names::HEARTBEAT)
        .expect("hb");
    for info in [&sent, &got, &beat] {
        assert_eq!(info.channel.as_ref(), Some(&id), "{info:?}");
        assert_eq!(info.peer, peer, "{info:?}");
        assert_eq!(info.socket, SocketKind::Client);
        assert_eq!(info.socket_id, 0);
    }
    assert!(!sent.control && !got.control && beat.control);
    assert_eq!(sent.event.header.message_id, id);

    // The server: the client's routing id is the peer of everything.
    let request = seen_by_server
        .event(Direction::Received, "work")
        .expect("request");
    let Peer::RoutingId(routing_id) = &request.peer else {
        panic!("a server's peer is a routing id: {request:?}");
    };
    let peer = Peer::RoutingId(routing_id.clone());
    let answered = seen_by_server
        .eventual_event(Direction::Sent, names::OK)
        .expect("reply");
    let beat_in = seen_by_server
        .event(Direction::Received, names::HEARTBEAT)
        .expect("hb");
    let beat_out = seen_by_server
        .event(Direction::Sent, names::HEARTBEAT)
        .expect("hb");
    for info in [&request, &answered, &beat_in, &beat_out] {
        assert_eq!(info.channel.as_ref(), Some(&id), "{info:?}");
        assert_eq!(info.peer, peer, "{info:?}");
        assert_eq!(info.socket, SocketKind::Server);
    }
    assert!(!request.control && !answered.control && beat_in.control && beat_out.control);
    let accepted = seen_by_server
        .changes()
        .into_iter()
        .find(|c| matches!(c.change, ChangeKind::Accepted))
        .expect("accepted");
    assert_eq!(accepted.channel.as_ref(), Some(&id));
    assert_eq!(accepted.peer, peer);
    // The request came in before the channel was accepted.
    let records = seen_by_server.lock().clone();
    let position = |pick: &dyn Fn(&Observed) -> bool| records.iter().position(pick);
    let received_at = position(&|o| matches!(o, Observed::Event(e) if e.event.name == "work"));
    let accepted_at = position(
        &|o| matches!(o, Observed::Channel(c) if matches!(c.change, ChangeKind::Accepted)),
    );
    assert!(received_at < accepted_at, "{records:?}");
}

#[test]
fn a_first_reply_timeout_is_observed() {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let (client, seen) = observed(SocketKind::Client, None);
    client.connect(&endpoint).unwrap();
    let options = OpenOptions {
        first_reply_timeout: Some(Duration::from_millis(50)),
        ..OpenOptions::default()
    };
    let mut call = client.open(request("hang"), options).unwrap();
    let error = run(call.recv()).expect_err("no reply comes");
    assert!(error.is_timeout());
    assert!(wait_until(LIMIT, || seen.ending(call.id()).is_some()));
    assert_eq!(seen.ending(call.id()), Some(Ending::TimedOut));
}

#[test]
fn a_peer_that_stops_heartbeating_is_observed_as_lost() {
    let router = Raw::new(zmq::ROUTER);
    let endpoint = router.bind_tcp();
    let (client, seen) = observed(SocketKind::Client, Some(HB));
    client.connect(&endpoint).unwrap();
    let mut call = client
        .open(request("work"), OpenOptions::default())
        .unwrap();
    // The peer takes the request and never heartbeats.
    assert!(router.recv(LIMIT).is_some());
    let error = run(call.recv()).expect_err("the peer is lost");
    assert!(error.is_lost_remote(), "{error:?}");
    assert!(wait_until(LIMIT, || seen.ending(call.id()).is_some()));
    assert_eq!(seen.ending(call.id()), Some(Ending::LostRemote));
    let changes = seen.changes();
    let closed = changes.last().expect("the end");
    assert_eq!(closed.peer, Peer::Endpoint(endpoint.into()));
}

#[test]
fn a_killed_server_is_observed_as_lost() {
    let (server, _) = observed(SocketKind::Server, Some(HB));
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    let (client, seen) = observed(SocketKind::Client, Some(HB));
    client.connect(&endpoint).unwrap();
    let mut call = client
        .open(request("work"), OpenOptions::default())
        .unwrap();
    let mut served = run(server.accept()).unwrap();
    run(served.recv()).unwrap();
    drop(served);
    drop(server);
    let error = run(call.recv()).expect_err("the server is gone");
    assert!(error.is_lost_remote(), "{error:?}");
    assert!(wait_until(LIMIT, || seen.ending(call.id()).is_some()));
    assert_eq!(seen.ending(call.id()), Some(Ending::LostRemote));
}

/// Counts queue-full records by kind.
#[derive(Default)]
struct QueueFullCounter {
    closed: AtomicU64,
    dropped: AtomicU64,
}

impl Observer for QueueFullCounter {
    fn on_channel(&self, change: &ChannelChange) {
        match change.change {
            ChangeKind::Closed(Ending::QueueFull, _) => {
                self.closed.fetch_add(1, Ordering::Relaxed);
            }
            ChangeKind::Dropped(DropReason::QueueFull) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

#[test]
fn a_full_send_queue_is_observed_per_channel_and_per_event() {
    let counter = Arc::new(QueueFullCounter::default());
    let mut config = config(None);
    config.send_queue_limit = 1 << 20;
    config.observers.push(counter.clone());
    let server = Socket::new(SocketKind::Server, config).unwrap();
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    let dealer = sluggish_dealer(&endpoint);
    let mut calls = open_calls(&server, &dealer, FILL);
    reply_to_all(&server, &mut calls);
    let refused = server.stats().dropped_queue_full;
    assert!(refused > 0);
    assert_eq!(counter.dropped.load(Ordering::Relaxed), refused);
    // The drop is counted before the channel it fails is closed, and the
    // close observed: the last close may still be on its way.
    assert!(
        wait_until(LIMIT, || counter.closed.load(Ordering::Relaxed) == refused),
        "{} channels closed for {refused} refused events",
        counter.closed.load(Ordering::Relaxed)
    );
}

/// Counts every call, to check the adapter's books against.
#[derive(Default)]
struct Tally(AtomicU64);

impl Observer for Tally {
    fn on_event(&self, _: &EventInfo) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn on_channel(&self, _: &ChannelChange) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_stuck_observer_behind_the_queue_delays_no_call_and_drops_are_counted() {
    const CALLS: usize = 200;
    let (queueing, records) = ChannelObserver::new(8);
    let queueing = Arc::new(queueing);
    let tally = Arc::new(Tally::default());
    let mut client_config = config(Some(HB));
    client_config.observers.push(queueing.clone());
    client_config.observers.push(tally.clone());
    let (release, released) = std::sync::mpsc::channel::<()>();
    // Reads one record, then nothing until the calls are over: as slow as
    // an observer can be.
    let consumer = std::thread::spawn(move || {
        let mut read = u64::from(records.recv().is_some());
        released.recv().expect("released");
        read += records.iter().count() as u64;
        (read, records.dropped())
    });

    let server = Socket::new(SocketKind::Server, config(Some(HB))).unwrap();
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    let client = Socket::new(SocketKind::Client, client_config).unwrap();
    client.connect(&endpoint).unwrap();
    for n in 0..CALLS {
        let mut call = client
            .open(request("work"), OpenOptions::default())
            .unwrap();
        let mut served = run(server.accept()).unwrap();
        run(served.recv()).unwrap();
        run(served.send(reply(names::OK))).unwrap();
        assert_eq!(run(call.recv()).unwrap().name, names::OK, "call {n}");
    }
    // Each call is at least an opening, a request and a reply (its end may
    // still be on its way), and the queue holds a handful.
    let dropped = queueing.dropped();
    assert!(dropped >= (CALLS * 3) as u64, "{dropped}");

    drop(client);
    drop(queueing);
    release.send(()).unwrap();
    let (read, dropped) = consumer.join().unwrap();
    assert_eq!(read + dropped, tally.0.load(Ordering::Relaxed));
    assert!(read <= 9, "{read}");
}

#[test]
fn event_sockets_are_observed() {
    let (pull, pulled) = observed(SocketKind::Pull, None);
    let endpoint = pull.bind("tcp://127.0.0.1:*").unwrap();
    let (push, pushed) = observed(SocketKind::Push, None);
    push.connect(&endpoint).unwrap();
    let event = Event::new(Header::new(), "tick", Value::Array(vec![1.into()]));
    push.emit(event.clone());
    assert_eq!(run(pull.next_event()).unwrap(), event);

    let sent = pushed
        .eventual_event(Direction::Sent, "tick")
        .expect("sent");
    assert_eq!(sent.event, event);
    assert_eq!(
        (sent.channel, sent.control, sent.socket),
        (None, false, SocketKind::Push)
    );
    let got = pulled.event(Direction::Received, "tick").expect("received");
    assert_eq!(got.event, event);
    assert_eq!(
        (got.channel, got.control, got.socket),
        (None, false, SocketKind::Pull)
    );
    assert_eq!(got.peer, Peer::Unknown);

    // Garbage reaches no one, and says so.
    let raw = Raw::new(zmq::PUSH);
    raw.connect(&endpoint);
    raw.send(&[&[0xc1]]);
    assert!(wait_until(LIMIT, || pulled.changes().iter().any(
        |c| matches!(c.change, ChangeKind::Dropped(DropReason::Malformed))
    )));
}

#[test]
fn unroutable_and_late_events_are_observed_as_dropped() {
    let (server, seen) = observed(SocketKind::Server, None);
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    let dealer = Raw::new(zmq::DEALER);
    dealer.connect(&endpoint);
    let stranger = MessageId::generate();
    dealer.send_event(
        &[Vec::new()],
        &crate::support::on(&stranger, names::OK, Value::Nil),
    );
    dealer.send_event(&[Vec::new()], &crate::support::heartbeat(&stranger));
    let dropped = |why: DropReason| {
        seen.changes()
            .into_iter()
            .find(|c| matches!(c.change, ChangeKind::Dropped(r) if r == why))
    };
    assert!(wait_until(LIMIT, || dropped(DropReason::LateControl).is_some()));
    for why in [DropReason::Unroutable, DropReason::LateControl] {
        let change = dropped(why).expect("dropped");
        assert_eq!(change.channel.as_ref(), Some(&stranger));
        assert!(matches!(change.peer, Peer::RoutingId(_)), "{change:?}");
    }
}

/// Panics at every event it sees.
struct Panicky;

impl Observer for Panicky {
    fn on_event(&self, _: &EventInfo) {
        panic!("an observer with a bug");
    }
}

#[test]
fn a_panicking_observer_does_not_stop_the_socket() {
    let server = Socket::new(SocketKind::Server, config(Some(HB))).unwrap();
    let endpoint = server.bind("tcp://127.0.0.1:*").unwrap();
    let mut client_config = config(Some(HB));
    client_config.observers.push(Arc::new(Panicky));
    let client = Socket::new(SocketKind::Client, client_config).unwrap();
    client.connect(&endpoint).unwrap();
    for _ in 0..3 {
        let mut call = client
            .open(request("work"), OpenOptions::default())
            .unwrap();
        let mut served = run(server.accept()).unwrap();
        run(served.recv()).unwrap();
        run(served.send(reply(names::OK))).unwrap();
        assert_eq!(run(call.recv()).unwrap().name, names::OK);
    }
}
