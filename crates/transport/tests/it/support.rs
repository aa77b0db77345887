//! Shared helpers: raw ZeroMQ peers, event builders and bounded waits.
//!
//! Raw peers live in their own ZeroMQ context, so everything they see went
//! over a real transport (tcp on 127.0.0.1 or ipc in a temporary directory).

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures::future::{Either, select};
use zerorpc_transport::{Socket, SocketConfig, SocketKind};
use zerorpc_wire::{Event, Header, MessageId, Value, names};

/// The heartbeat interval of most tests: short, so that loss shows quickly.
pub(crate) const HB: Duration = Duration::from_millis(100);

/// The bound on every wait for something that should happen.
pub(crate) const LIMIT: Duration = Duration::from_secs(5);

/// Runs `fut` to completion, or gives up after `limit`.
pub(crate) fn block_on_timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let (cancel_tx, cancel_rx) = mpsc::channel::<()>();
    let (fire_tx, fire_rx) = futures::channel::oneshot::channel::<()>();
    let timer = std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = cancel_rx.recv_timeout(limit) {
            let _ = fire_tx.send(());
        }
    });
    let out = block_on(async {
        match select(pin!(fut), fire_rx).await {
            Either::Left((value, _)) => Some(value),
            Either::Right(_) => None,
        }
    });
    drop(cancel_tx);
    let _ = timer.join();
    out
}

/// Runs `fut`, failing the test if it does not finish within [`LIMIT`].
pub(crate) fn run<F: Future>(fut: F) -> F::Output {
    block_on_timeout(LIMIT, fut).expect("future did not finish in time")
}

/// Polls `cond` until it holds; false if it still does not after `limit`.
pub(crate) fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(crate) fn config(heartbeat: Option<Duration>) -> SocketConfig {
    let mut config = SocketConfig::new();
    config.heartbeat = heartbeat;
    config
}

/// A server socket bound to a fresh tcp port; returns it and its endpoint.
pub(crate) fn tcp_server(heartbeat: Option<Duration>) -> (Socket, String) {
    let server = Socket::new(SocketKind::Server, config(heartbeat)).expect("server socket");
    let endpoint = server.bind("tcp://127.0.0.1:*").expect("bind");
    (server, endpoint)
}

pub(crate) fn client(heartbeat: Option<Duration>, endpoint: &str) -> Socket {
    let client = Socket::new(SocketKind::Client, config(heartbeat)).expect("client socket");
    client.connect(endpoint).expect("connect");
    client
}

/// A unique name, for inproc endpoints and temporary directories.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory for ipc endpoints, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        let path = std::env::temp_dir().join(unique("zerorpc-transport-it"));
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir(path)
    }

    pub(crate) fn ipc(&self, name: &str) -> String {
        format!("ipc://{}", self.0.join(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Events

pub(crate) fn request(name: &str) -> Event {
    Event::new(Header::new(), name.to_owned(), Value::Array(vec![]))
}

/// An event of channel `channel`.
pub(crate) fn on(channel: &MessageId, name: &str, args: Value) -> Event {
    let mut header = Header::new();
    header.response_to = Some(channel.clone());
    Event::new(header, name.to_owned(), args)
}

pub(crate) fn heartbeat(channel: &MessageId) -> Event {
    on(
        channel,
        names::HEARTBEAT,
        Value::Array(vec![Value::from(0)]),
    )
}

pub(crate) fn more(channel: &MessageId, n: i64) -> Event {
    on(channel, names::MORE, Value::Array(vec![Value::from(n)]))
}

pub(crate) fn is_heartbeat_of(event: &Event, channel: &MessageId) -> bool {
    event.name == names::HEARTBEAT
        && event.args == Value::Array(vec![Value::from(0)])
        && event.header.response_to.as_ref() == Some(channel)
}

/// The credit `n` of a `_zpc_more [n]` event.
pub(crate) fn credit_of(event: &Event) -> Option<i64> {
    if event.name != names::MORE {
        return None;
    }
    event.args.as_array()?.first()?.as_i64()
}

// ---------------------------------------------------------------------------
// Raw peers

fn raw_context() -> &'static zmq::Context {
    static CONTEXT: std::sync::OnceLock<zmq::Context> = std::sync::OnceLock::new();
    CONTEXT.get_or_init(zmq::Context::new)
}

/// A plain ZeroMQ socket playing the peer.
pub(crate) struct Raw {
    pub(crate) socket: zmq::Socket,
}

impl Raw {
    pub(crate) fn new(kind: zmq::SocketType) -> Raw {
        let socket = raw_context().socket(kind).expect("raw socket");
        socket.set_linger(0).expect("linger");
        Raw { socket }
    }

    /// Binds to a fresh tcp port on 127.0.0.1 and returns the endpoint.
    pub(crate) fn bind_tcp(&self) -> String {
        self.socket.bind("tcp://127.0.0.1:*").expect("raw bind");
        self.socket
            .get_last_endpoint()
            .expect("endpoint")
            .expect("utf-8 endpoint")
    }

    pub(crate) fn connect(&self, endpoint: &str) {
        self.socket.connect(endpoint).expect("raw connect");
    }

    /// The next message, if one arrives within `limit`.
    pub(crate) fn recv(&self, limit: Duration) -> Option<Vec<Vec<u8>>> {
        let ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        let ready = self.socket.poll(zmq::POLLIN, ms).expect("poll");
        if ready == 0 {
            return None;
        }
        Some(self.socket.recv_multipart(0).expect("raw recv"))
    }

    /// The next message as (frames before the payload, event).
    pub(crate) fn recv_event(&self, limit: Duration) -> Option<(Vec<Vec<u8>>, Event)> {
        let mut frames = self.recv(limit)?;
        let payload = frames.pop().expect("a message has frames");
        Some((
            frames,
            Event::decode(&payload).expect("our side sends valid events"),
        ))
    }

    /// Receives until `pick` accepts an event; gives up at `limit` overall.
    /// Every event seen, picked or not, is passed to `pick`.
    pub(crate) fn recv_until(
        &self,
        limit: Duration,
        mut pick: impl FnMut(&[Vec<u8>], &Event) -> bool,
    ) -> Option<(Vec<Vec<u8>>, Event)> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let (frames, event) = self.recv_event(left)?;
            if pick(&frames, &event) {
                return Some((frames, event));
            }
        }
    }

    pub(crate) fn send(&self, frames: &[&[u8]]) {
        self.socket.send_multipart(frames, 0).expect("raw send");
    }

    /// Sends `event` after the given envelope frames.
    pub(crate) fn send_event(&self, envelope: &[Vec<u8>], event: &Event) {
        let payload = event.encode();
        let mut frames: Vec<&[u8]> = envelope.iter().map(Vec::as_slice).collect();
        frames.push(&payload);
        self.send(&frames);
    }
}
