//! Push/pull and publish/subscribe: bare single-frame events.

use std::time::Duration;

use zerorpc_transport::{Socket, SocketKind};
use zerorpc_wire::{Event, Header, Value};

use crate::support::{LIMIT, Raw, block_on_timeout, config, run, wait_until};

fn tick(n: u64) -> Event {
    Event::new(Header::new(), "tick", Value::Array(vec![Value::from(n)]))
}

fn socket(kind: SocketKind) -> Socket {
    Socket::new(kind, config(None)).unwrap()
}

#[test]
fn push_sends_single_frame_events() {
    let pull = Raw::new(zmq::PULL);
    let endpoint = pull.bind_tcp();
    let push = socket(SocketKind::Push);
    push.connect(&endpoint).unwrap();

    let event = tick(1);
    push.emit(event.clone());
    let frames = pull.recv(LIMIT).expect("the event");
    assert_eq!(frames.len(), 1, "exactly one frame: {frames:?}");
    let got = Event::decode(&frames[0]).unwrap();
    assert_eq!(got, event);
    assert_eq!(got.header.response_to, None);
    assert_eq!(got.header.version, Some(3));
}

#[test]
fn pull_receives_events_from_raw_push() {
    let pull = socket(SocketKind::Pull);
    let endpoint = pull.bind("tcp://127.0.0.1:*").unwrap();
    let push = Raw::new(zmq::PUSH);
    push.connect(&endpoint);

    let (first, second, third) = (tick(1), tick(2), tick(3));
    push.send(&[&first.encode()]);
    // Garbage is dropped, and a delimiter frame tolerated, like zerorpc-python.
    push.send(&[&[0xc1]]);
    push.send(&[b"", &second.encode()]);
    push.send(&[&third.encode()]);
    assert_eq!(run(pull.next_event()).unwrap(), first);
    assert_eq!(run(pull.next_event()).unwrap(), second);
    assert_eq!(run(pull.next_event()).unwrap(), third);
    assert_eq!(pull.stats().dropped_malformed, 1);
}

#[test]
fn publish_sends_single_frame_events() {
    let publish = socket(SocketKind::Publish);
    let endpoint = publish.bind("tcp://127.0.0.1:*").unwrap();
    let sub = Raw::new(zmq::SUB);
    sub.socket.set_subscribe(b"").unwrap();
    sub.connect(&endpoint);

    // Messages published before the subscription reaches the publisher are
    // dropped, so publish until one gets through.
    let mut received = None;
    for n in 0..100 {
        publish.emit(tick(n));
        if let Some(frames) = sub.recv(Duration::from_millis(50)) {
            received = Some(frames);
            break;
        }
    }
    let frames = received.expect("a published event within 100 tries");
    assert_eq!(frames.len(), 1, "exactly one frame: {frames:?}");
    let got = Event::decode(&frames[0]).unwrap();
    assert_eq!(got.name, "tick");
    assert_eq!(got.header.response_to, None);
}

#[test]
fn subscribe_receives_events_from_raw_pub() {
    let publisher = Raw::new(zmq::PUB);
    let endpoint = publisher.bind_tcp();
    let subscribe = socket(SocketKind::Subscribe);
    subscribe.connect(&endpoint).unwrap();

    let value = |event: &Event| event.args.as_array().unwrap()[0].as_u64().unwrap();
    let mut first = None;
    for n in 0..100 {
        publisher.send(&[&tick(n).encode()]);
        if let Some(event) = block_on_timeout(Duration::from_millis(50), subscribe.next_event()) {
            first = Some(event.unwrap());
            break;
        }
    }
    let first = first.expect("a published event within 100 tries");
    assert_eq!(first.name, "tick");

    // Once subscribed, nothing is lost or reordered; tries that timed out
    // may still arrive before the last event.
    publisher.send(&[&tick(1000).encode()]);
    let mut last = value(&first);
    for _ in 0..101 {
        let next = value(&run(subscribe.next_event()).unwrap());
        assert!(next > last, "{next} after {last}");
        last = next;
        if last == 1000 {
            break;
        }
    }
    assert_eq!(last, 1000);
}

#[test]
fn push_delivers_every_burst_emitted_from_several_threads() {
    const THREADS: usize = 3;
    const ROUNDS: u64 = 2000;
    let pull = Raw::new(zmq::PULL);
    let endpoint = pull.bind_tcp();
    let push = socket(SocketKind::Push);
    push.connect(&endpoint).unwrap();
    // With no timers the I/O thread sleeps until woken, so a lost wake-up
    // strands the last events of a burst: each round is a burst of
    // simultaneous emits that must all arrive before the next one.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS + 1));
    let emitters: Vec<_> = (0..THREADS as u64)
        .map(|t| {
            let (push, barrier) = (push.clone(), barrier.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    barrier.wait();
                    push.emit(tick(round * THREADS as u64 + t));
                }
            })
        })
        .collect();
    for round in 0..ROUNDS {
        barrier.wait();
        let mut got: Vec<u64> = (0..THREADS)
            .map(|_| {
                let frames = pull
                    .recv(LIMIT)
                    .unwrap_or_else(|| panic!("round {round} stranded"));
                let event = Event::decode(&frames[0]).unwrap();
                event.args.as_array().unwrap()[0].as_u64().unwrap()
            })
            .collect();
        got.sort_unstable();
        let first = round * THREADS as u64;
        assert_eq!(got, (first..first + THREADS as u64).collect::<Vec<_>>());
    }
    for emitter in emitters {
        emitter.join().unwrap();
    }
}

#[test]
fn events_emitted_before_any_peer_arrive_in_order_once_one_connects() {
    // A bound PUSH with no puller refuses every send: the events wait in the
    // socket's backlog and go out, in order, when a puller connects.
    let push = socket(SocketKind::Push);
    let endpoint = push.bind("tcp://127.0.0.1:*").unwrap();
    let events: Vec<Event> = (0..5).map(tick).collect();
    for event in &events {
        push.emit(event.clone());
    }
    let pull = Raw::new(zmq::PULL);
    pull.connect(&endpoint);
    for event in &events {
        let frames = pull.recv(LIMIT).expect("a waiting event");
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(&Event::decode(&frames[0]).unwrap(), event);
    }
    // Counted after libzmq took each event, which may be after it arrived.
    assert!(
        wait_until(LIMIT, || push.stats().sent == 5),
        "{:?}",
        push.stats()
    );
}
