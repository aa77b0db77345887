//! The ZeroRPC transport: ZeroMQ sockets, channels, heartbeats and flow
//! control.
//!
//! A [`Socket`] is driven by its own I/O thread, which owns the ZeroMQ
//! sockets (libzmq sockets are not thread-safe) and handles everything that
//! must happen whatever the application is doing:
//!
//! * routing events to [`Channel`]s by `response_to`, and dropping (and
//!   counting, see [`Stats`]) malformed and unroutable ones;
//! * heartbeats: `_zpc_hb [0]` on every open channel every interval, and
//!   failing a channel with [`ErrorKind::LostRemote`] when the peer misses
//!   them for more than two intervals;
//! * flow control: `_zpc_more [n]` credit, never sending beyond what the
//!   peer granted, and granting like zerorpc-python does;
//! * first-reply timeouts, so they work on any executor.
//!
//! This crate knows events, channels and sockets; it knows nothing of method
//! names, replies or services (that is `zerorpc`, the core crate). It does
//! not depend on an async runtime: its futures are woken by the I/O thread.
//!
//! Settings come per socket ([`SocketConfig`]) and per endpoint
//! ([`EndpointOptions`], given to [`Socket::bind_with`] and
//! [`Socket::connect_with`]), including how connections are secured
//! ([`Security`]). Every socket lives in one ZeroMQ context per process,
//! [`context`], so `inproc://` works between all of them.
//!
//! See [`Socket`] for an example. This crate has no feature flags.

#![doc(test(attr(deny(warnings))))]

mod channel;
mod error;
mod io;
mod machine;
mod options;
mod socket;

pub use channel::Channel;
pub use error::{Error, ErrorKind};
pub use options::{EndpointOptions, Security};
pub use socket::{
    DEFAULT_SEND_QUEUE_LIMIT, OpenOptions, Socket, SocketConfig, SocketKind, Stats, context,
};
pub use zerorpc_wire as wire;

use zerorpc_wire::Event;

/// Observes (and may amend) every event a socket sends or receives.
///
/// Hooks run on hot paths, including the I/O thread: they must be quick and
/// must never block. This is where tracing attaches.
pub trait EventHook: Send + Sync + 'static {
    /// Called before an event is encoded and sent; may add header keys.
    fn on_send(&self, event: &mut Event) {
        let _ = event;
    }

    /// Called when an event has been received and decoded.
    fn on_receive(&self, event: &Event) {
        let _ = event;
    }
}
