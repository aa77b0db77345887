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
//! [`Observer`]s attached to a socket see every event it sends and
//! receives, with its channel, direction and peer, and every change of its
//! channels (opened, accepted, closed and why, events dropped and why).
//!
//! Or the application drives the socket itself ([`Socket::driven`]): a
//! [`SocketDriver`] runs the same loop in turns and leaves the waiting to
//! its owner, on an executor's reactor for instance, which saves a thread
//! hand-off each way for the code that runs there.
//!
//! This crate knows events, channels and sockets; it knows nothing of method
//! names, replies or services (that is `zerorpc`, the core crate). It does
//! not depend on an async runtime: its futures are woken by the I/O thread,
//! or by whoever drives a driven socket.
//!
//! Settings come per socket ([`SocketConfig`]) and per endpoint
//! ([`EndpointOptions`], given to [`Socket::bind_with`] and
//! [`Socket::connect_with`]), including how connections are secured
//! ([`Security`]: PLAIN or CURVE, a server's side decided by an
//! [`Authenticator`] through our ZAP handler). Every socket lives in one
//! ZeroMQ context per process, [`context`], so `inproc://` works between
//! all of them and one ZAP handler serves them all.
//!
//! See [`Socket`] for an example. This crate has no feature flags.

#![doc(test(attr(deny(warnings))))]

mod buffers;
mod channel;
mod driver;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod io;
mod machine;
mod malloc;
mod observe;
mod options;
mod produce;
pub mod respond;
mod security;
mod socket;
mod watch;

pub use channel::{Channel, PeerSlot};
pub use driver::{NotifyFd, SocketDriver, Turn, WakerSlot};
pub use error::{Error, ErrorKind};
pub use malloc::{MMAP_THRESHOLD, TRIM_THRESHOLD, tune_malloc};
pub use observe::{
    ChangeKind, ChannelChange, ChannelObserver, Direction, DropReason, Ending, EventInfo,
    Observations, Observed, Observer, Peer, RoutingId,
};
pub use options::{EndpointOptions, Security};
pub use respond::{Adopted, Producer, Responder};
pub use security::{
    AccessPolicy, AuthStats, Authenticator, CurveKey, CurveKeyPair, PolicyFiles, read_key_pair,
    read_public_key, zcert_public_key,
};
pub use socket::{
    Blocking, DEFAULT_LOSSLESS_WINDOW, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_SEND_QUEUE_LIMIT,
    DEFAULT_WINDOW, DEFAULT_WINDOW_BYTES, LOSSLESS_KEY, OpenOptions, Socket, SocketConfig,
    SocketKind, Stats, context,
};
pub use zerorpc_wire as wire;
