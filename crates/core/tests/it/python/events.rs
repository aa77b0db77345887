//! Push/pull and publish/subscribe, each way. PUB/SUB drops what is
//! published before the subscription reaches the publisher, so publishers
//! repeat (a bounded number of times) until something arrives.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use zerorpc::{Publisher, Pusher, Receiver, Value};
use zerorpc_test_support::{PythonPeer, wait_until};

use super::{STARTUP, spawn_python_client};

/// What our receivers run: each event is handed to the test.
struct Sink {
    events: mpsc::UnboundedSender<Value>,
}

#[zerorpc::service]
impl Sink {
    pub(crate) fn record(&self, n: i64, text: Value, data: Value) {
        let _ = self.events.send(Value::Array(vec![n.into(), text, data]));
    }
}

/// Our receiver bound to a wildcard port, running on the test's runtime.
fn rust_receiver(
    make: fn(Sink) -> zerorpc::Result<Receiver>,
) -> (Arc<Receiver>, String, mpsc::UnboundedReceiver<Value>) {
    let (events, received) = mpsc::unbounded_channel();
    let receiver = Arc::new(make(Sink { events }).unwrap());
    let endpoint = receiver.bind("tcp://127.0.0.1:*").unwrap();
    let running = receiver.clone();
    tokio::spawn(async move { running.run().await });
    (receiver, endpoint, received)
}

async fn next_event(received: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(STARTUP, received.recv())
        .await
        .expect("no event arrived")
        .expect("the receiver stopped")
}

/// Checks an event our side received from Python: str stays str and bytes
/// stay bin.
fn assert_python_event(event: &Value, n: i64) {
    assert_eq!(
        *event,
        Value::Array(vec![
            n.into(),
            Value::from("héllo"),
            Value::Binary(vec![0, 1])
        ])
    );
}

const PY_PUSHER: &str = r#"
pusher = zerorpc.Pusher()
pusher.connect(sys.argv[1])
for i in range(5):
    pusher.record(i, "h\u00e9llo", b"\x00\x01")
print("SENT", flush=True)
# Stay alive until killed so that nothing queued is lost at exit.
gevent.sleep(60)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_pusher_to_our_puller() {
    let (receiver, endpoint, mut received) = rust_receiver(Receiver::puller);
    let Some(_peer) = spawn_python_client(PY_PUSHER, &[&endpoint]) else {
        receiver.close();
        return;
    };
    for n in 0..5 {
        assert_python_event(&next_event(&mut received).await, n);
    }
    receiver.close();
}

const PY_PUBLISHER: &str = r#"
publisher = zerorpc.Publisher()
publisher.connect(sys.argv[1])
for i in range(400):
    publisher.record(i, "h\u00e9llo", b"\x00\x01")
    gevent.sleep(0.05)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_publisher_to_our_subscriber() {
    let (receiver, endpoint, mut received) = rust_receiver(Receiver::subscriber);
    let Some(_peer) = spawn_python_client(PY_PUBLISHER, &[&endpoint]) else {
        receiver.close();
        return;
    };
    let first = next_event(&mut received).await;
    let n = first.as_array().and_then(|a| a[0].as_i64()).expect("n");
    assert_python_event(&first, n);
    // Once subscribed, nothing is dropped.
    assert_python_event(&next_event(&mut received).await, n + 1);
    receiver.close();
}

/// A Python puller or subscriber printing each event as an `EVENT` line.
const PY_RECEIVER: &str = r#"
class Sink(object):
    def record(self, n, text, data):
        print("EVENT " + json.dumps({"n": n, "text": typed(text), "data": typed(data)}), flush=True)

receiver = getattr(zerorpc, sys.argv[2])(Sink())
receiver.bind(sys.argv[1])
print("READY", flush=True)
receiver.run()
"#;

fn python_receiver(kind: &str) -> Option<(PythonPeer, String)> {
    let endpoint = zerorpc_test_support::free_tcp_endpoint();
    let peer = spawn_python_client(PY_RECEIVER, &[&endpoint, kind])?;
    peer.wait_for_line("READY", STARTUP)
        .unwrap_or_else(|e| panic!("python {kind} not ready: {e}"));
    Some((peer, endpoint))
}

fn python_events(peer: &PythonPeer) -> Vec<serde_json::Value> {
    peer.process()
        .stdout_lines()
        .iter()
        .filter_map(|line| line.strip_prefix("EVENT "))
        .map(|json| serde_json::from_str(json).expect("EVENT lines are JSON"))
        .collect()
}

/// Checks an event Python received from our side.
fn assert_rust_event(event: &serde_json::Value, n: i64) {
    assert_eq!(
        *event,
        json!({"n": n, "text": ["str", "'héllo'"], "data": ["bytes", r"b'\x00\x01'"]})
    );
}

#[test]
fn our_pusher_to_python_puller() {
    let Some((peer, endpoint)) = python_receiver("Puller") else {
        return;
    };
    let pusher = Pusher::new().unwrap();
    pusher.connect(&endpoint).unwrap();
    for n in 0..5 {
        pusher
            .emit("record", (n, "héllo", Value::Binary(vec![0, 1])))
            .unwrap();
    }
    assert!(
        wait_until(STARTUP, || python_events(&peer).len() >= 5),
        "{}",
        peer.process().report()
    );
    let events = python_events(&peer);
    assert_eq!(events.len(), 5);
    for (n, event) in (0..).zip(&events) {
        assert_rust_event(event, n);
    }
}

#[test]
fn our_publisher_to_python_subscriber() {
    let Some((peer, endpoint)) = python_receiver("Subscriber") else {
        return;
    };
    let publisher = Publisher::new().unwrap();
    publisher.connect(&endpoint).unwrap();
    let mut received = false;
    for n in 0..200 {
        publisher
            .emit("record", (n, "héllo", Value::Binary(vec![0, 1])))
            .unwrap();
        if peer
            .wait_for_line("EVENT", Duration::from_millis(50))
            .is_ok()
        {
            received = true;
            break;
        }
    }
    assert!(received, "{}", peer.process().report());
    let first = &python_events(&peer)[0];
    let n = first["n"].as_i64().expect("n");
    assert_rust_event(first, n);
}
