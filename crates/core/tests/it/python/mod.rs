//! Interoperability with the real zerorpc-python 0.6.3, in both directions:
//! a Python client against our server (run in-process) and our client
//! against a Python server, plus events each way and the Python CLI.
//!
//! Python clients print one `RESULT <json>` line that the tests parse; Python
//! servers print `READY` once bound. Every peer is killed when its guard drops.

mod bytes;
mod cli;
mod concurrency;
mod errors;
mod events;
mod heartbeat;
mod introspection;
mod streams;
mod typed;
mod values;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use zerorpc::transport::{Direction, EventInfo, Observer};
use zerorpc::{Server, ShutdownHandle, Value};
use zerorpc_test_support::PythonPeer;

/// Generous bound for anything that should take well under a second.
pub(crate) const STARTUP: Duration = Duration::from_secs(20);

/// The error our service's methods fail with; its type name is what Python
/// sees as the exception name.
#[derive(Debug)]
pub(crate) struct InteropError(pub(crate) String);

impl std::fmt::Display for InteropError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InteropError {}

/// The service our server exposes to Python clients.
#[derive(Clone, Default)]
pub(crate) struct Interop {
    /// Calls of `sleep` running now, and the most seen at once.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

#[zerorpc::service]
impl Interop {
    /// Adds two numbers.
    ///
    /// The second defaults to 1.
    pub(crate) fn add(&self, a: i64, b: Option<i64>) -> i64 {
        a + b.unwrap_or(1)
    }

    /// A sample value of the named MessagePack type.
    pub(crate) fn sample(&self, kind: String) -> Result<Value, InteropError> {
        sample(&kind).ok_or_else(|| InteropError(format!("no sample named {kind}")))
    }

    pub(crate) fn describe(&self, value: Value) -> String {
        type_tree(&value)
    }

    /// Returns its argument unchanged.
    pub(crate) fn echo(&self, value: Value) -> Value {
        value
    }

    /// Fails with the message.
    pub(crate) fn fail(&self, message: String) -> Result<(), InteropError> {
        Err(InteropError(message))
    }

    /// Streams 0..n.
    pub(crate) fn count(&self, n: u64) -> impl Iterator<Item = u64> + use<> {
        0..n
    }

    /// Streams 0..n, then fails.
    pub(crate) fn count_then_fail(
        &self,
        n: u64,
    ) -> impl Iterator<Item = Result<u64, InteropError>> + use<> {
        (0..n)
            .map(Ok)
            .chain(std::iter::once(Err(InteropError(format!(
                "broke after {n} items"
            )))))
    }

    /// `count`, its items made on the server's I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn count_inline(&self, n: u64) -> impl Iterator<Item = u64> + use<> {
        self.count(n)
    }

    /// `count_then_fail`, its items made on the server's I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn count_then_fail_inline(
        &self,
        n: u64,
    ) -> impl Iterator<Item = Result<u64, InteropError>> + use<> {
        self.count_then_fail(n)
    }

    /// Sleeps, then returns its argument.
    pub(crate) async fn sleep(&self, seconds: f64) -> f64 {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Counted down on drop too: a cancelled call must leave the count.
        let _running = InFlight(self.in_flight.clone());
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        seconds
    }
}

struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Interop {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

/// The sample values both sides serve, by kind.
pub(crate) const SAMPLE_KINDS: &[&str] = &[
    "int", "negative", "big", "float", "str", "bin", "nil", "true", "false", "nested", "tuple",
];

/// The value of a sample kind as our side builds it; the Python server
/// builds the same values (see `PY_SERVER`).
pub(crate) fn sample(kind: &str) -> Option<Value> {
    Some(match kind {
        "int" => Value::from(42),
        "negative" => Value::from(-7),
        "big" => Value::from(u64::MAX),
        "float" => Value::F64(3.25),
        "str" => Value::from("héllo wörld ✓"),
        "bin" => Value::Binary(vec![0, 1, 255]),
        "nil" => Value::Nil,
        "true" => Value::Boolean(true),
        "false" => Value::Boolean(false),
        "nested" => Value::Map(vec![
            (
                "list".into(),
                Value::Array(vec![
                    1.into(),
                    Value::Array(vec![2.into(), Value::Array(vec![3.into(), "deep".into()])]),
                ]),
            ),
            (
                "map".into(),
                Value::Map(vec![(
                    "inner".into(),
                    Value::Map(vec![("x".into(), Value::F64(1.5))]),
                )]),
            ),
            ("bytes".into(), Value::Binary(b"raw".to_vec())),
        ]),
        "tuple" => zerorpc::wire::to_value(&(1, "two", 3.0)).expect("a tuple converts"),
        _ => return None,
    })
}

/// How Python's `repr` shows each sample: `(type name, repr)`.
pub(crate) fn python_repr(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "int" => ("int", "42"),
        "negative" => ("int", "-7"),
        "big" => ("int", "18446744073709551615"),
        "float" => ("float", "3.25"),
        "str" => ("str", "'héllo wörld ✓'"),
        "bin" => ("bytes", r"b'\x00\x01\xff'"),
        "nil" => ("NoneType", "None"),
        "true" => ("bool", "True"),
        "false" => ("bool", "False"),
        "nested" => (
            "dict",
            "{'list': [1, [2, [3, 'deep']]], 'map': {'inner': {'x': 1.5}}, 'bytes': b'raw'}",
        ),
        "tuple" => ("list", "[1, 'two', 3.0]"),
        other => panic!("no sample named {other}"),
    }
}

/// The MessagePack types of a value as our side decoded them, e.g.
/// `map{str: array[int, bin]}`.
pub(crate) fn type_tree(value: &Value) -> String {
    let list = |items: Vec<String>| items.join(", ");
    match value {
        Value::Nil => "nil".into(),
        Value::Boolean(_) => "bool".into(),
        Value::Integer(_) => "int".into(),
        Value::F32(_) => "f32".into(),
        Value::F64(_) => "f64".into(),
        Value::String(_) => "str".into(),
        Value::Binary(_) => "bin".into(),
        Value::Array(items) => format!("array[{}]", list(items.iter().map(type_tree).collect())),
        Value::Map(entries) => format!(
            "map{{{}}}",
            list(
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", type_tree(k), type_tree(v)))
                    .collect()
            )
        ),
        Value::Ext(..) => "ext".into(),
    }
}

/// Our server running on a thread of its own, shut down on drop.
pub(crate) struct RustServer {
    endpoint: String,
    shutdown: ShutdownHandle,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<zerorpc::Result<()>>>,
}

impl RustServer {
    /// Serves `service` on a wildcard port of 127.0.0.1.
    pub(crate) fn start(service: impl zerorpc::Service, heartbeat: Option<Duration>) -> RustServer {
        let mut builder = Server::builder(service).bind("tcp://127.0.0.1:*");
        if heartbeat.is_some() {
            builder = builder.heartbeat(heartbeat);
        }
        let server = builder.build().expect("binding our server");
        let endpoint = server.endpoints()[0].clone();
        let shutdown = server.shutdown_handle();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let result = server.run();
            let _ = done_tx.send(());
            result
        });
        RustServer {
            endpoint,
            shutdown,
            done,
            thread: Some(thread),
        }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stops the server and waits (bounded) for its thread.
    pub(crate) fn stop(&mut self) {
        self.shutdown.shutdown();
        let Some(thread) = self.thread.take() else {
            return;
        };
        // A server that does not stop is reported, not waited for forever.
        match self.done.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => {
                let result = thread.join().expect("server thread panicked");
                if !std::thread::panicking() {
                    result.expect("server failed");
                }
            }
            Err(_) if std::thread::panicking() => {}
            Err(_) => panic!("our server did not stop within 10 s of shutdown"),
        }
    }
}

impl Drop for RustServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Helpers every Python client script starts with.
const PY_CLIENT_COMMON: &str = r#"
import json, sys, time
import gevent
import zerorpc

def emit(result):
    print("RESULT " + json.dumps(result), flush=True)

def error_info(e):
    info = {"error": type(e).__name__, "str": str(e)}
    if isinstance(e, zerorpc.RemoteError):
        info.update(name=e.name, msg=e.msg, traceback=e.traceback)
    return info

def typed(value):
    return [type(value).__name__, repr(value)]
"#;

/// Starts a Python client script (after [`PY_CLIENT_COMMON`]) with `args`.
///
/// Returns `None` when there is no Python peer: the test should return.
pub(crate) fn spawn_python_client(script: &str, args: &[&str]) -> Option<PythonPeer> {
    PythonPeer::spawn(&format!("{PY_CLIENT_COMMON}\n{script}"), args)
}

/// Waits for the `RESULT` line of a Python client and parses it.
pub(crate) fn python_result(peer: &PythonPeer, timeout: Duration) -> serde_json::Value {
    let line = peer
        .wait_for_line("RESULT ", timeout)
        .unwrap_or_else(|e| panic!("python client gave no result: {e}"));
    let json = line
        .strip_prefix("RESULT ")
        .expect("the line starts with RESULT");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad JSON {json}: {e}"))
}

/// Runs a Python client script to its `RESULT`; returns it and the peer
/// (for its stderr), or `None` when there is no Python peer.
pub(crate) fn run_python_client(
    script: &str,
    args: &[&str],
    timeout: Duration,
) -> Option<(serde_json::Value, PythonPeer)> {
    let peer = spawn_python_client(script, args)?;
    Some((python_result(&peer, timeout), peer))
}

/// The Python service our client calls; `argv[1]` is the endpoint,
/// `argv[2]` the heartbeat interval in seconds.
pub(crate) const PY_SERVER: &str = r#"
import sys
import gevent
import zerorpc

SAMPLES = {
    "int": 42,
    "negative": -7,
    "big": 2**64 - 1,
    "float": 3.25,
    "str": "h\u00e9llo w\u00f6rld \u2713",
    "bin": b"\x00\x01\xff",
    "nil": None,
    "true": True,
    "false": False,
    "nested": {"list": [1, [2, [3, "deep"]]], "map": {"inner": {"x": 1.5}}, "bytes": b"raw"},
    "tuple": (1, "two", 3.0),
    # Python sends maps with int keys, though it cannot receive them.
    "intkeys": {1: "one"},
}

class Interop(object):
    def add(self, a, b=1):
        """Add two numbers.

        The second defaults to 1.
        """
        return a + b

    def sample(self, kind):
        return SAMPLES[kind]

    def describe(self, value):
        return [type(value).__name__, repr(value)]

    def fail(self, message):
        raise ValueError(message)

    @zerorpc.stream
    def count(self, n):
        return range(n)

    @zerorpc.stream
    def count_then_fail(self, n):
        for i in range(n):
            yield i
        raise ValueError("broke after %d items" % n)

    def slow(self, seconds):
        global in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        print("SLOW", seconds, flush=True)
        try:
            gevent.sleep(seconds)
        finally:
            in_flight -= 1
        return seconds

    def max_in_flight(self):
        return most_in_flight

in_flight = 0
most_in_flight = 0

server = zerorpc.Server(Interop(), heartbeat=float(sys.argv[2]))
server.bind(sys.argv[1])
print("READY", flush=True)
server.run()
"#;

/// A Python server ([`PY_SERVER`]) ready on a free port, with its endpoint.
pub(crate) fn python_server(heartbeat_secs: f64) -> Option<(PythonPeer, String)> {
    let endpoint = zerorpc_test_support::free_tcp_endpoint();
    let peer = PythonPeer::spawn(PY_SERVER, &[&endpoint, &heartbeat_secs.to_string()])?;
    peer.wait_for_line("READY", STARTUP)
        .unwrap_or_else(|e| panic!("python server not ready: {e}"));
    Some((peer, endpoint))
}

/// Records the credit (`_zpc_more`) our side grants.
#[derive(Default)]
pub(crate) struct GrantRecorder {
    grants: Mutex<Vec<i64>>,
}

impl GrantRecorder {
    pub(crate) fn grants(&self) -> Vec<i64> {
        self.grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Observer for GrantRecorder {
    fn on_event(&self, info: &EventInfo) {
        let event = &info.event;
        if info.direction == Direction::Sent && event.name == "_zpc_more" {
            let n = event
                .args
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_i64)
                .expect("_zpc_more [n]");
            self.grants
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(n);
        }
    }
}

/// The `_zpc_more` grants zerorpc-python's receiver sends while reading
/// `events` events with a queue of `window` (PROTOCOL.md §6.2): none on the
/// first read, then `window - reserved` whenever fewer than half remain.
///
/// Python leaves out a grant due once the terminator has already arrived
/// (its channel is closed by then), which depends on timing; this model, like
/// our client, always sends it.
pub(crate) fn python_grants(window: i64, events: usize) -> Vec<i64> {
    let mut reserved = 1;
    let mut grants = Vec::new();
    for read in 0..events {
        if read > 0 && reserved < window / 2 {
            grants.push(window - reserved);
            reserved = window;
        }
        reserved -= 1;
    }
    grants
}

#[test]
fn python_grant_model_matches_the_observed_traces() {
    // PROTOCOL.md appendix B.2 (250 items, then STREAM_DONE).
    assert_eq!(python_grants(100, 251), [100, 51, 51, 51, 51]);
    assert_eq!(python_grants(10, 31), [10, 6, 6, 6, 6]);
    assert_eq!(python_grants(100, 1), Vec::<i64>::new());
}
