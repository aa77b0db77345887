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

/// Bytes of padding [`padded`] puts in an event, so that ZeroMQ pipes and
/// TCP buffers fill after a few thousand events.
pub(crate) const PADDING: usize = 4096;

/// A socket that reads (almost) nothing unless asked: one message of
/// ZeroMQ queue and a small TCP receive buffer, so that what is sent to it
/// piles up in the sender.
pub(crate) fn reluctant(kind: zmq::SocketType, endpoint: &str) -> zmq::Socket {
    let socket = context().socket(kind).expect("socket");
    socket.set_linger(0).expect("linger");
    socket.set_rcvhwm(1).expect("rcvhwm");
    socket.set_rcvbuf(PADDING as i32).expect("rcvbuf");
    socket.connect(endpoint).expect("connect");
    socket
}

/// An event on `channel` carrying `[seq, PADDING bytes]`.
pub(crate) fn padded(channel: &MessageId, name: &str, seq: u64) -> Event {
    let args = Value::Array(vec![Value::from(seq), Value::Binary(vec![0; PADDING])]);
    on_channel(channel, name, args)
}

/// The sequence number of an event made by [`padded`].
pub(crate) fn seq_of(event: &Event) -> Option<u64> {
    event.args.as_array()?.first()?.as_u64()
}

/// The `[name, message]` of an `ERR` event.
pub(crate) fn error_of(event: &Event) -> Option<(String, String)> {
    if event.name != "ERR" {
        return None;
    }
    let args = event.args.as_array()?;
    Some((
        args.first()?.as_str()?.to_owned(),
        args.get(1)?.as_str()?.to_owned(),
    ))
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
    Event::new(Header::new(), name.to_owned(), Value::Array(args))
}

/// An event on an existing channel.
pub(crate) fn on_channel(channel: &MessageId, name: &str, args: Value) -> Event {
    let mut header = Header::new();
    header.response_to = Some(channel.clone());
    Event::new(header, name.to_owned(), args)
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
        let socket = socket(zmq::ROUTER, endpoint);
        // A plain ROUTER drops what its full pipe cannot take; tests count
        // every event they send, so a full pipe must make them wait.
        socket.set_router_mandatory(true).expect("mandatory");
        RawWorker { socket }
    }

    /// A worker that reads (almost) nothing until the test makes it: see
    /// [`reluctant`].
    pub(crate) fn reluctant(endpoint: &str) -> RawWorker {
        let socket = reluctant(zmq::ROUTER, endpoint);
        socket.set_router_mandatory(true).expect("mandatory");
        RawWorker { socket }
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

/// Asserts that the thread named `thread` (a hub's is `hub-<name>`) stays
/// mostly asleep for a second, as it must while it waits for a blocked
/// peer: a thread that polls for a readiness that is always reported spins
/// instead.
///
/// A spinning thread uses all the CPU it gets (a whole core on an idle
/// machine); one that waits about a millisecond between retries uses a few
/// percent. A busy machine can only make a spinning thread look better,
/// never a sleeping one worse, so this cannot fail because the machine is
/// slow. Linux only (it reads `/proc`); elsewhere it checks nothing.
pub(crate) fn assert_not_spinning(thread: &str) {
    #[cfg(target_os = "linux")]
    {
        let thread = cpu::Thread::named(thread)
            .unwrap_or_else(|| panic!("no thread named {thread} in this process"));
        let wall = Instant::now();
        let before = thread.cpu_time();
        std::thread::sleep(Duration::from_secs(1));
        let used = thread.cpu_time() - before;
        let wall = wall.elapsed();
        assert!(
            used < wall / 4,
            "the thread used {used:?} of CPU in {wall:?} while waiting"
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}

/// CPU time of another thread of this process, from `/proc`.
#[cfg(target_os = "linux")]
mod cpu {
    use std::path::PathBuf;
    use std::time::Duration;

    pub(crate) struct Thread {
        stat: PathBuf,
    }

    impl Thread {
        /// The thread whose name (as `/proc` shows it, at most 15 bytes)
        /// is `name`.
        pub(crate) fn named(name: &str) -> Option<Thread> {
            let tasks = std::fs::read_dir("/proc/self/task").ok()?;
            tasks.flatten().find_map(|task| {
                let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
                (comm.trim_end() == name).then(|| Thread {
                    stat: task.path().join("stat"),
                })
            })
        }

        /// User plus system time so far.
        pub(crate) fn cpu_time(&self) -> Duration {
            let stat = std::fs::read_to_string(&self.stat).expect("thread stat");
            // Fields after the name, which is in parentheses and may hold
            // spaces: state is field 3, utime 14 and stime 15.
            let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let ticks: u64 = fields[11].parse::<u64>().expect("utime")
                + fields[12].parse::<u64>().expect("stime");
            // SAFETY: sysconf only reads a system constant.
            let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            Duration::from_secs_f64(ticks as f64 / per_second as f64)
        }
    }
}
