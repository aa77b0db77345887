//! Oversized messages sent to a server in another process: with the
//! default message size limit, ZeroMQ drops the sender's connection after
//! reading the frame's header, so the server's memory does not grow by
//! what the sender claimed, and the server keeps serving everyone else.
//! Without a limit (the control), the same messages are read whole.

use std::time::{Duration, Instant};

use zerorpc_load::ProcStatus;

use crate::support::{LoadServer, heavy};

/// Larger than the default limit (16 MiB) by far.
const MESSAGE: usize = 48 << 20;

/// Messages sent, each on its own connection.
const MESSAGES: usize = 4;

/// Bound on a connection being dropped, or a call being answered.
const WAIT: Duration = Duration::from_secs(60);

/// A raw DEALER that sent one oversized frame, and the monitor that tells
/// when its connection ends.
struct Sender {
    _context: zmq::Context,
    _dealer: zmq::Socket,
    monitor: zmq::Socket,
}

impl Sender {
    /// Sends `payload` as one frame to `endpoint`.
    fn send(endpoint: &str, payload: &[u8]) -> Sender {
        // A context of its own, so the inproc name is free each time.
        let context = zmq::Context::new();
        let dealer = context.socket(zmq::DEALER).expect("dealer");
        dealer.set_linger(0).expect("linger");
        dealer
            .monitor("inproc://monitor", zmq::SocketEvent::DISCONNECTED as i32)
            .expect("monitor");
        let monitor = context.socket(zmq::PAIR).expect("pair");
        monitor
            .connect("inproc://monitor")
            .expect("monitor connect");
        dealer.connect(endpoint).expect("connect");
        dealer.send(payload, 0).expect("send");
        Sender {
            _context: context,
            _dealer: dealer,
            monitor,
        }
    }

    /// Whether the peer dropped the connection within [`WAIT`].
    fn dropped(&self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.monitor.poll(zmq::POLLIN, 100).expect("poll") > 0 {
                return true;
            }
        }
        false
    }
}

/// Sends `MESSAGES` oversized messages to `server` and waits, bounded,
/// until `done` says the server is through with them; then checks that it
/// still answers calls. Returns its peak RSS before and after.
fn peak_after_oversized(server: &LoadServer, done: impl Fn(&[Sender]) -> bool) -> (u64, u64) {
    let before = ProcStatus::of(server.pid()).expect("server status");
    let payload = vec![0xa5_u8; MESSAGE];
    let senders: Vec<Sender> = (0..MESSAGES)
        .map(|_| Sender::send(&server.endpoint, &payload))
        .collect();
    drop(payload);
    assert!(done(&senders), "{}", server.process.report());
    let client = zerorpc::Client::builder()
        .connect(&server.endpoint)
        .timeout(Some(WAIT))
        .build()
        .expect("client");
    let sum: i64 = client.blocking().call("add", (2, 3)).unwrap_or_else(|e| {
        panic!(
            "the server stopped serving: {e}\n{}",
            server.process.report()
        )
    });
    assert_eq!(sum, 5);
    let after = ProcStatus::of(server.pid()).expect("server status");
    (before.peak_rss_bytes, after.peak_rss_bytes)
}

#[test]
fn oversized_messages_do_not_reach_the_servers_memory() {
    let _heavy = heavy();
    let limited = LoadServer::start(&[]);
    let (before, after) =
        peak_after_oversized(&limited, |senders| senders.iter().all(Sender::dropped));
    eprintln!(
        "limited server: peak RSS {} MiB before, {} MiB after {MESSAGES} messages of {} MiB",
        before >> 20,
        after >> 20,
        MESSAGE >> 20
    );
    assert!(
        after < before + (MESSAGE as u64) / 4,
        "peak RSS grew from {before} to {after} bytes"
    );
    // Each dropped connection is counted in the server's stats.
    let deadline = Instant::now() + WAIT;
    let mut closed = None;
    while Instant::now() < deadline {
        closed = limited.stats().get("connections_closed").copied();
        if closed >= Some(MESSAGES as u64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(closed, Some(MESSAGES as u64));

    // The control: the same messages reach an unlimited server's memory,
    // so the measurement above would have seen them.
    let unlimited = LoadServer::start(&["--max-message-size", "0"]);
    let (before, after) = peak_after_oversized(&unlimited, |_| {
        // Read whole, each is then dropped as a malformed event.
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if unlimited.stats().get("dropped_malformed").copied() >= Some(MESSAGES as u64) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    eprintln!(
        "unlimited server: peak RSS {} MiB before, {} MiB after",
        before >> 20,
        after >> 20
    );
    assert!(
        after >= before + (MESSAGE as u64) / 2,
        "the control did not show the messages in memory: {before} -> {after} bytes"
    );
}
