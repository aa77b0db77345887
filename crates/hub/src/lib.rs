//! The ZeroRPC hub: a routing engine that sits between ZeroRPC peers.
//!
//! A hub binds two endpoints, `in` and `out`, and runs in a thread of its
//! own. Three types exist ([`HubKind`]):
//!
//! * **queue**: load balancing of RPC calls. Clients connect to `in`,
//!   workers (ZeroRPC servers, ours or zerorpc-python's, started with
//!   `connect` instead of `bind`) connect to `out`. Every call's channel is
//!   pinned to one worker, chosen by fewest outstanding calls, so that
//!   heartbeats and stream credit reach the worker that owns the call. Only
//!   event headers are decoded. A worker that disconnects fails its calls
//!   with a `LostRemote` error; a worker that connects takes new calls at
//!   once; calls that arrive with no worker connected wait (bounded in
//!   number and time). Events for a peer that reads slower than they come
//!   wait in a bounded queue per peer instead of being dropped.
//! * **forwarder**: fan-out of events, SUB on `in` to XPUB on `out`. A
//!   subscriber that cannot keep up slows the forwarder down (and with it
//!   the publishers) rather than missing events.
//! * **streamer**: fan-in of events, PULL on `in` to PUSH on `out`.
//!
//! Malformed messages are dropped and counted, never fatal. [`Hub::stats`]
//! returns the counters ([`Stats`]); the `zerorpc-hub` binary prints them as
//! JSON lines. See `docs/hub.md` for the configuration file and operations.
//!
//! ```no_run
//! use zerorpc_hub::{Hub, HubConfig, HubKind};
//!
//! let hub = Hub::start(HubConfig::new(HubKind::Queue, "tcp://*:1111", "tcp://*:2222"))?;
//! // Clients: connect to tcp://host:1111. Workers: connect to tcp://host:2222.
//! std::thread::sleep(std::time::Duration::from_secs(60));
//! println!("{}", hub.stats().to_json());
//! hub.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Several hubs can be described in one YAML file and loaded with
//! [`parse_config`].
//!
//! # libzmq
//!
//! The queue uses libzmq's ROUTER_NOTIFY option (connect and disconnect
//! notifications), part of libzmq's DRAFT API; the workspace builds its
//! vendored libzmq with the DRAFT API enabled (`.cargo/config.toml`).
//! [`Hub::start`] fails with [`HubError::Socket`] on a libzmq without it.
//!
//! [`Hub::start`] creates a ZeroMQ context for the hub; [`Hub::start_in`]
//! uses the caller's, which `inproc://` endpoints need (they connect sockets
//! of one context only) and which a ZAP handler will need to serve the hub's
//! sockets. In a process using the `zerorpc` crate, pass
//! `zerorpc::transport::context()`.
//!
//! This crate has no feature flags.

#![doc(test(attr(deny(warnings))))]

mod config;
#[doc(hidden)]
pub mod fuzzing;
mod hub;
mod outbox;
mod queue;
mod relay;
mod security;
mod sockets;
mod stats;

pub use config::{
    ConfigError, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_PEER_QUEUE_BYTES,
    DEFAULT_PEER_QUEUE_LIMIT, DEFAULT_QUEUE_LIMIT, DEFAULT_QUEUE_TIMEOUT, HubConfig, HubKind,
    parse_config,
};
pub use hub::{Hub, HubError, RouteObserver};
pub use security::{SecurityFiles, SideSecurity};
pub use stats::{Drops, Stats, WorkerStats};

/// Error names the queue sends to clients in `ERR` replies it makes itself
/// (`[name, message, ""]`).
pub mod error_names {
    /// The worker serving the call disconnected, or is not reading: the
    /// hub's queue toward it reached
    /// [`HubConfig::peer_queue_limit`](crate::HubConfig::peer_queue_limit).
    pub const LOST_REMOTE: &str = crate::queue::LOST_REMOTE;
    /// No worker took the call: the queue was full, or none connected within
    /// the queue timeout.
    pub const NO_WORKER: &str = crate::queue::NO_WORKER;
}
