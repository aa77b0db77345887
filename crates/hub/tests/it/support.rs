//! Helpers for the hub tests: hubs on any free loopback port, Python
//! workers, and raw ZeroMQ peers that speak ZeroRPC frames directly.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zerorpc_hub::{Hub, HubConfig, HubKind, Stats};
use zerorpc_test_support::{PythonPeer, wait_until};
use zerorpc_wire::{Event, Header, MessageId, Value};

/// Upper bound for anything a test waits for; generous because the machine
/// running the tests may be busy, never a measure of speed.
pub(crate) const LONG: Duration = Duration::from_secs(30);

/// A hub configuration whose endpoints take any free port on 127.0.0.1.
pub(crate) fn loopback(kind: HubKind) -> HubConfig {
    HubConfig::new(kind, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
}

pub(crate) fn start(config: HubConfig) -> Hub {
    Hub::start(config).expect("hub starts")
}

/// Waits until the hub's stats satisfy `condition`; panics with the last
/// stats otherwise.
pub(crate) fn wait_stats(hub: &Hub, what: &str, condition: impl Fn(&Stats) -> bool) -> Stats {
    if !wait_until(LONG, || condition(&hub.stats())) {
        panic!(
            "timed out waiting for {what}; stats: {}",
            hub.stats().to_json()
        );
    }
    hub.stats()
}

/// A zerorpc-python worker: `whoami()` returns its name, `slow(s)` sleeps,
/// `numbers(n)` streams `0..n`. Arguments: endpoint to connect, name,
/// heartbeat seconds.
const PYTHON_WORKER: &str = r#"
import sys, zerorpc, gevent
endpoint, name, heartbeat = sys.argv[1], sys.argv[2], float(sys.argv[3])
class Worker:
    def whoami(self):
        return name
    def slow(self, seconds):
        print("SLOW-START", name, flush=True)
        gevent.sleep(seconds)
        return "slept %s" % seconds
    @zerorpc.stream
    def numbers(self, n):
        return iter(range(n))
server = zerorpc.Server(Worker(), heartbeat=heartbeat)
server.connect(endpoint)
print("READY", name, flush=True)
server.run()
"#;

/// Starts a Python worker connected to `endpoint`, or `None` without Python.
pub(crate) fn python_worker(endpoint: &str, name: &str) -> Option<PythonPeer> {
    let peer = PythonPeer::spawn(PYTHON_WORKER, &[endpoint, name, "0.5"])?;
    peer.wait_for_line("READY", LONG).unwrap_or_else(|e| {
        panic!(
            "worker {name} did not start: {e:?}\n{}",
            peer.process().report()
        )
    });
    Some(peer)
}

/// Runs a Python client script and returns the first stdout line starting
/// with `marker`, without the marker.
pub(crate) fn python_output(peer: &PythonPeer, marker: &str) -> String {
    let line = peer
        .wait_for_line(marker, LONG)
        .unwrap_or_else(|e| panic!("no `{marker}` line: {e:?}\n{}", peer.process().report()));
    line.split_once(marker)
        .map(|(_, rest)| rest.trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn context() -> &'static zmq::Context {
    static CONTEXT: OnceLock<zmq::Context> = OnceLock::new();
    CONTEXT.get_or_init(zmq::Context::new)
}

fn socket(kind: zmq::SocketType, endpoint: &str) -> zmq::Socket {
    let socket = context().socket(kind).expect("socket");
    socket.set_linger(0).expect("linger");
    socket.connect(endpoint).expect("connect");
    socket
}

/// Receives one multipart message within `timeout`.
pub(crate) fn recv_within(socket: &zmq::Socket, timeout: Duration) -> Option<Vec<Vec<u8>>> {
    let deadline = Instant::now() + timeout;
    let left = deadline.saturating_duration_since(Instant::now());
    match socket.poll(zmq::POLLIN, left.as_millis() as i64) {
        Ok(n) if n > 0 => socket.recv_multipart(0).ok(),
        _ => None,
    }
}

/// A request event opening a channel.
pub(crate) fn request(name: &str, args: Vec<Value>) -> Event {
    Event::new(Header::new(), name, Value::Array(args))
}

/// An event on an existing channel.
pub(crate) fn on_channel(channel: &MessageId, name: &str, args: Value) -> Event {
    let mut header = Header::new();
    header.response_to = Some(channel.clone());
    Event::new(header, name, args)
}

/// A client speaking raw frames: a DEALER sending `["", payload]`.
pub(crate) struct RawClient {
    pub(crate) socket: zmq::Socket,
}

impl RawClient {
    pub(crate) fn connect(endpoint: &str) -> RawClient {
        RawClient {
            socket: socket(zmq::DEALER, endpoint),
        }
    }

    pub(crate) fn send(&self, event: &Event) {
        self.socket
            .send_multipart([&b""[..], &event.encode()], 0)
            .expect("send");
    }

    pub(crate) fn send_frames(&self, frames: &[&[u8]]) {
        self.socket.send_multipart(frames, 0).expect("send");
    }

    /// The next event, skipping heartbeats unless `keep_heartbeats`.
    pub(crate) fn recv(&self, timeout: Duration) -> Option<Event> {
        let frames = recv_within(&self.socket, timeout)?;
        assert_eq!(frames.len(), 2, "a DEALER gets [\"\", payload]");
        assert!(frames[0].is_empty());
        Some(Event::decode(&frames[1]).expect("decodable reply"))
    }
}

/// A worker speaking raw frames: a ROUTER connected to the hub's `out`.
pub(crate) struct RawWorker {
    pub(crate) socket: zmq::Socket,
}

/// What a raw worker received: the envelope to echo, and the event.
pub(crate) struct Received {
    pub(crate) envelope: Vec<Vec<u8>>,
    pub(crate) event: Event,
}

impl RawWorker {
    pub(crate) fn connect(endpoint: &str) -> RawWorker {
        RawWorker {
            socket: socket(zmq::ROUTER, endpoint),
        }
    }

    pub(crate) fn recv(&self, timeout: Duration) -> Option<Received> {
        let mut frames = recv_within(&self.socket, timeout)?;
        let payload = frames.pop().expect("payload");
        assert_eq!(
            frames.pop().as_deref(),
            Some(&b""[..]),
            "delimiter before the payload"
        );
        Some(Received {
            envelope: frames,
            event: Event::decode(&payload).expect("decodable request"),
        })
    }

    pub(crate) fn reply(&self, envelope: &[Vec<u8>], event: &Event) {
        let payload = event.encode();
        let mut frames: Vec<&[u8]> = envelope.iter().map(Vec::as_slice).collect();
        frames.push(b"");
        frames.push(&payload);
        self.socket.send_multipart(frames, 0).expect("send");
    }
}

/// One call with a fresh DEALER: `Some(reply)` or `None` after `timeout`.
pub(crate) fn raw_call(endpoint: &str, method: &str, timeout: Duration) -> Option<Event> {
    let client = RawClient::connect(endpoint);
    let request = request(method, Vec::new());
    client.send(&request);
    let deadline = Instant::now() + timeout;
    // Bounded: each round either returns or consumes part of the deadline.
    for _ in 0..100 {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = client.recv(left)?;
        if event.header.response_to.as_ref() == Some(&request.header.message_id)
            && event.name != "_zpc_hb"
        {
            return Some(event);
        }
    }
    None
}

/// The first element of an `OK` reply's args, as text.
pub(crate) fn ok_text(event: &Event) -> Option<String> {
    if event.name != "OK" {
        return None;
    }
    event.args.as_array()?.first()?.as_str().map(str::to_owned)
}
