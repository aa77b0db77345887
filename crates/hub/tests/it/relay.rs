//! The forwarder (PUB/SUB fan-out) and streamer (PUSH/PULL fan-in) hubs
//! between zerorpc-python peers, and with a subscriber too slow for its
//! events.

use std::time::Instant;

use zerorpc_hub::HubKind;
use zerorpc_test_support::PythonPeer;
use zerorpc_wire::{Event, Header, Value};

use crate::support::{
    LONG, PADDING, context, loopback, python_output, reluctant, seq_of, start, wait_stats,
};

#[test]
fn forwarder_fans_out_python_publisher_to_python_subscribers() {
    let hub = start(loopback(HubKind::Forwarder));
    let subscriber = r#"
import sys, zerorpc, gevent, gevent.event
seen = []
done = gevent.event.Event()
class Listener:
    def news(self, n):
        seen.append(n)
        if n == "last":
            done.set()
sub = zerorpc.Subscriber(Listener())
sub.connect(sys.argv[1])
gevent.spawn(sub.run)
print("READY", flush=True)
done.wait(timeout=60)
print("SEEN", "last" in seen, len([s for s in seen if s != "last"]) > 0, flush=True)
"#;
    let Some(sub_a) = PythonPeer::spawn(subscriber, &[hub.out_endpoint()]) else {
        return;
    };
    let Some(sub_b) = PythonPeer::spawn(subscriber, &[hub.out_endpoint()]) else {
        return;
    };
    for sub in [&sub_a, &sub_b] {
        sub.wait_for_line("READY", LONG).expect("subscriber ready");
    }
    // PUB/SUB drops what is published before a subscription is in place,
    // so the publisher repeats until the subscribers have seen a message,
    // bounded in count.
    let publisher = r#"
import sys, os, zerorpc, gevent
pub = zerorpc.Publisher()
pub.connect(sys.argv[1])
for i in range(600):
    pub.news(i)
    gevent.sleep(0.05)
    if os.path.exists(sys.argv[2]):
        break
for _ in range(20):
    pub.news("last")
    gevent.sleep(0.05)
print("PUBLISHED", flush=True)
"#;
    let flag = std::env::temp_dir().join(format!("zerorpc-hub-fwd-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let Some(publisher) = PythonPeer::spawn(
        publisher,
        &[hub.in_endpoint(), flag.to_str().expect("utf-8")],
    ) else {
        return;
    };
    // Both subscribers receive events: the hub fans out.
    wait_stats(&hub, "events forwarded", |s| s.events_in_to_out >= 5);
    std::fs::write(&flag, b"go").expect("flag");
    assert_eq!(python_output(&sub_a, "SEEN"), "True True");
    assert_eq!(python_output(&sub_b, "SEEN"), "True True");
    python_output(&publisher, "PUBLISHED");
    let _ = std::fs::remove_file(&flag);

    // Garbage from a publisher is dropped, not forwarded.
    let raw = context().socket(zmq::PUB).expect("socket");
    raw.set_linger(0).expect("linger");
    raw.connect(hub.in_endpoint()).expect("connect");
    let before = hub.stats().drops.undecodable;
    // Repeated because of the slow-joiner drop; bounded by wait_stats.
    let dropped = zerorpc_test_support::wait_until(LONG, || {
        raw.send(&b"\xc1garbage"[..], 0).expect("send");
        raw.send_multipart([&b"two"[..], b"frames"], 0)
            .expect("send");
        let s = hub.stats();
        s.drops.undecodable > before && s.drops.malformed_frames > 0
    });
    assert!(dropped, "{}", hub.stats().to_json());
    assert!(!hub.is_finished());
}

#[test]
fn streamer_fans_in_python_pushers_to_a_python_puller() {
    let hub = start(loopback(HubKind::Streamer));
    let pusher = r#"
import sys, zerorpc, gevent, gevent.event
push = zerorpc.Pusher()
push.connect(sys.argv[1])
for i in range(100):
    push.item(sys.argv[2], i)
gevent.sleep(1)
print("PUSHED", flush=True)
"#;
    // The pushers start before any puller exists: the hub holds the events
    // until one connects.
    let Some(push_a) = PythonPeer::spawn(pusher, &[hub.in_endpoint(), "a"]) else {
        return;
    };
    let Some(push_b) = PythonPeer::spawn(pusher, &[hub.in_endpoint(), "b"]) else {
        return;
    };
    python_output(&push_a, "PUSHED");
    python_output(&push_b, "PUSHED");
    let puller = r#"
import sys, zerorpc, gevent, gevent.event
got = {"a": [], "b": []}
done = gevent.event.Event()
class Sink:
    def item(self, who, i):
        got[who].append(i)
        if len(got["a"]) + len(got["b"]) == 200:
            done.set()
pull = zerorpc.Puller(Sink())
pull.connect(sys.argv[1])
gevent.spawn(pull.run)
done.wait(timeout=60)
print("GOT", got["a"] == list(range(100)), got["b"] == list(range(100)), flush=True)
"#;
    let Some(puller) = PythonPeer::spawn(puller, &[hub.out_endpoint()]) else {
        return;
    };
    assert_eq!(python_output(&puller, "GOT"), "True True");
    let stats = wait_stats(&hub, "200 events", |s| s.events_in_to_out == 200);
    assert_eq!(stats.drops.total(), 0);

    // A pusher sending garbage is dropped and counted.
    let raw = context().socket(zmq::PUSH).expect("socket");
    raw.set_linger(0).expect("linger");
    raw.connect(hub.in_endpoint()).expect("connect");
    raw.send(&b"\x93\xc1"[..], 0).expect("send");
    raw.send_multipart([&b""[..], b"x"], 0).expect("send");
    let stats = wait_stats(&hub, "drops", |s| s.drops.total() == 2);
    assert_eq!(
        (stats.drops.undecodable, stats.drops.malformed_frames),
        (1, 1)
    );
}

/// A published event: `item [seq, padding]`, or `probe [seq]`.
fn published(name: &str, seq: u64, padding: usize) -> Vec<u8> {
    let mut args = vec![Value::from(seq)];
    if padding > 0 {
        args.push(Value::Binary(vec![0; padding]));
    }
    Event::new(Header::new(), name.to_owned(), Value::Array(args)).encode()
}

#[test]
fn forwarder_holds_events_for_a_slow_subscriber_and_loses_none() {
    const ITEMS: u64 = 5000;
    let mut config = loopback(HubKind::Forwarder);
    // The hub's thread is `hub-<name>`: unique, so the test can find it.
    config.name = "slowsub".to_owned();
    let hub = start(config);
    let subscriber = reluctant(zmq::SUB, hub.out_endpoint());
    subscriber.set_subscribe(b"").expect("subscribe");
    // No high-water mark: the publisher keeps what the hub cannot take yet
    // instead of dropping it (a PUB drops at its limit), so that a loss
    // could only be the hub's.
    let publisher = context().socket(zmq::PUB).expect("socket");
    publisher.set_linger(0).expect("linger");
    publisher.set_sndhwm(0).expect("sndhwm");
    publisher.connect(hub.in_endpoint()).expect("connect");

    // Subscriptions take a moment to reach the hub and the publisher; until
    // then, PUB/SUB drops. Probe until one gets through, bounded.
    let mut probes_sent = 0;
    let mut through = false;
    while probes_sent < 300 && !through {
        publisher
            .send(published("probe", probes_sent, 0), 0)
            .expect("send");
        probes_sent += 1;
        through = subscriber.poll(zmq::POLLIN, 100).expect("poll") > 0;
    }
    assert!(through, "no probe reached the subscriber");

    // The subscriber now reads nothing while all the items are published.
    for seq in 0..ITEMS {
        publisher
            .send(published("item", seq, PADDING), 0)
            .expect("send");
    }
    let stats = wait_stats(&hub, "the forwarder holding an event", |s| {
        s.queued_messages == 1
    });
    let forwarded_while_held = stats.events_in_to_out;
    // An XPUB reports room whenever asked: waiting must not spin.
    crate::support::assert_not_spinning("hub-slowsub");

    // It reads again: every item, in order, after what is left of the
    // probes.
    let deadline = Instant::now() + LONG;
    let mut next = 0;
    while next < ITEMS {
        let left = deadline.saturating_duration_since(Instant::now());
        let frames = crate::support::recv_within(&subscriber, left)
            .unwrap_or_else(|| panic!("item {next} of {ITEMS} missing; {}", hub.stats().to_json()));
        let event = Event::decode(&frames[0]).expect("decodable");
        if event.name == "probe" {
            assert_eq!(next, 0, "a probe after the items");
            continue;
        }
        assert_eq!(seq_of(&event), Some(next));
        next += 1;
    }
    let stats = wait_stats(&hub, "nothing held", |s| s.queued_messages == 0);
    assert!(stats.events_in_to_out > forwarded_while_held);
    assert_eq!(stats.queued_messages_peak, 1);
    assert_eq!(stats.drops.total(), 0, "{}", stats.to_json());
}
