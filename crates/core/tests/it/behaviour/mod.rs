//! Behaviour of our client against our server: the service macro, streams,
//! client and server features, call context, events and errors.

mod blocking;
mod call_watchers;
mod client;
mod context;
mod errors;
mod events;
mod inline;
mod inline_streams;
mod live;
mod message_size;
mod observers;
mod robustness;
mod security;
mod server;
mod service_macro;
mod streams;
mod typed_client;

use std::future::Future;
use std::thread::JoinHandle;
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use zerorpc::{Client, ServerBuilder, ShutdownHandle, Value};

/// Every test body runs under this bound, so a hang fails instead of stalling
/// the whole binary.
pub(crate) const TEST_BOUND: Duration = Duration::from_secs(20);

/// A server running on a runtime of its own, in its own thread, so that it
/// serves whatever executor (or none) the test itself uses.
pub(crate) struct Running {
    pub(crate) endpoint: String,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<zerorpc::Result<()>>>,
}

impl Running {
    /// The server's counters.
    pub(crate) fn stats(&self) -> zerorpc::transport::Stats {
        self.shutdown.stats()
    }

    /// Stops the server and waits for `run` to return.
    pub(crate) fn stop(mut self) -> zerorpc::Result<()> {
        self.shutdown.shutdown();
        let thread = self
            .thread
            .take()
            .expect("the server thread is joined once");
        thread.join().expect("the server thread does not panic")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Not joined here: a test that already failed should not also hang.
        self.shutdown.shutdown();
    }
}

/// A client of `endpoint` heartbeating every `interval`, so that the
/// server takes it for lost soon after it goes.
pub(crate) fn heartbeating_client(endpoint: &str, interval: Duration) -> Client {
    Client::builder()
        .connect(endpoint)
        .heartbeat(Some(interval))
        .build()
        .expect("the client builds")
}

/// Counts something alive in its counter, which it decrements when dropped
/// (a handler's future, a stream).
pub(crate) struct Held(pub(crate) Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Binds the server to a run-time port on 127.0.0.1 and serves it.
pub(crate) fn start(builder: ServerBuilder) -> Running {
    let server = builder
        .bind("tcp://127.0.0.1:*")
        .build()
        .expect("the server builds");
    let endpoint = server.endpoints()[0].clone();
    let shutdown = server.shutdown_handle();
    let thread = std::thread::Builder::new()
        .name("test-server".into())
        .spawn(move || server.run())
        .expect("a server thread");
    Running {
        endpoint,
        shutdown,
        thread: Some(thread),
    }
}

/// Awaits `future`, failing the test if it takes longer than [`TEST_BOUND`].
pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, future)
        .await
        .expect("the test finishes within its time bound")
}

/// The value under `key` in a msgpack map.
#[track_caller]
pub(crate) fn field<'a>(map: &'a Value, key: &str) -> &'a Value {
    let entries = map
        .as_map()
        .unwrap_or_else(|| panic!("expected a map with {key:?}, got {map}"));
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key:?} in {map}"))
}

/// Whether a msgpack map has `key`.
pub(crate) fn has_field(map: &Value, key: &str) -> bool {
    map.as_map()
        .is_some_and(|entries| entries.iter().any(|(k, _)| k.as_str() == Some(key)))
}

/// A string array as msgpack.
pub(crate) fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(*s)).collect())
}
