//! Answering a request on the I/O thread, before any application thread
//! sees it.
//!
//! A call costs two thread hand-offs on a server: the I/O thread wakes the
//! application's task with the request, and the task wakes the I/O thread
//! with the reply. For a request whose answer is quick to compute and never
//! waits, both are pure cost. A [`Responder`] in
//! [`SocketConfig::responder`](crate::SocketConfig::responder) is offered
//! every request a server socket accepts; what it answers is sent at once
//! and the channel ends there, and what it declines goes to
//! [`Socket::accept`](crate::Socket::accept) as usual.
//!
//! A responder runs on the I/O thread, which also sends every channel's
//! heartbeats: while it runs, no heartbeat leaves and no event is read.
//! It must never block or wait, only compute. A responder that panics is
//! caught; the request then goes to the application as if declined.
//!
//! ```
//! use std::sync::Arc;
//! use zerorpc_transport::{Responder, SocketConfig};
//! use zerorpc_transport::wire::{Event, Header, Value, names};
//!
//! /// Answers `ping` itself; everything else goes to the application.
//! struct Ping;
//!
//! impl Responder for Ping {
//!     fn respond(&self, request: &mut Event) -> Option<Event> {
//!         (request.name == "ping").then(|| {
//!             Event::new(Header::new(), names::OK, Value::Array(vec![Value::from("pong")]))
//!         })
//!     }
//! }
//!
//! let mut config = SocketConfig::new();
//! config.responder = Some(Arc::new(Ping));
//! ```

use zerorpc_wire::Event;

/// Answers requests on a server socket's I/O thread; see the
/// [module](crate::respond) documentation.
pub trait Responder: Send + Sync + 'static {
    /// The reply to `request` (`OK`, `ERR`: a single event that ends the
    /// call), or `None` to hand the call to the application. The reply's
    /// `response_to` is set by the socket.
    ///
    /// A responder that answers may take what it needs out of `request`
    /// (its arguments, its name, its header's extra keys) rather than
    /// copy it: the socket reads only the header's `message_id` after an
    /// answer. One that declines must leave `request` as it found it.
    fn respond(&self, request: &mut Event) -> Option<Event>;
}
