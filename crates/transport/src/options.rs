//! Socket options: what the application chooses per socket and per endpoint
//! ([`Security`], [`EndpointOptions`]), and the one place where options
//! reach a ZeroMQ socket ([`apply_kind`], [`apply_endpoint`]).
//!
//! libzmq copies a socket's options into each listener (bind) and
//! connection (connect) when it is made, and reads security and message
//! limits from that copy. So options set just before a bind or connect
//! belong to that endpoint alone; [`apply_endpoint`] therefore sets every
//! per-endpoint option each time, so that nothing leaks from one endpoint
//! into the next.

use std::ffi::{c_int, c_void};

use crate::{Error, SocketKind};

/// How the connections of an endpoint are secured: ZeroMQ's security
/// mechanisms.
///
/// Only [`Security::None`] exists today, which is what zerorpc-python and
/// zerorpc-node speak. The enum is `#[non_exhaustive]` so that PLAIN and
/// CURVE authentication (with a ZAP handler on the process-wide
/// [`context`](crate::context)) can be added as variants without breaking
/// callers: a variant is set on the ZeroMQ socket just before the bind or
/// connect it belongs to, and a CURVE server key, which differs per server,
/// travels with one endpoint in [`EndpointOptions`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// No authentication and no encryption (ZeroMQ's NULL mechanism).
    #[default]
    None,
}

/// Settings of one endpoint of a socket, given to
/// [`Socket::bind_with`](crate::Socket::bind_with) and
/// [`Socket::connect_with`](crate::Socket::connect_with).
///
/// [`Socket::bind`](crate::Socket::bind) and
/// [`Socket::connect`](crate::Socket::connect) use the socket's defaults,
/// [`SocketConfig::endpoint_options`](crate::SocketConfig::endpoint_options);
/// start from those to change one setting:
///
/// ```
/// use zerorpc_transport::{EndpointOptions, Socket, SocketConfig, SocketKind};
///
/// let server = Socket::new(SocketKind::Server, SocketConfig::new())?;
/// let options = EndpointOptions {
///     max_message_size: Some(64 << 10),
///     ..server.config().endpoint_options()
/// };
/// server.bind_with("tcp://127.0.0.1:*", options)?;
/// # Ok::<(), zerorpc_transport::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointOptions {
    /// How connections of this endpoint are secured.
    pub security: Security,
    /// The largest message frame, in bytes, a peer on this endpoint may send
    /// (libzmq's `ZMQ_MAXMSGSIZE`); `None` for no limit. ZeroMQ drops the
    /// connection of a peer that sends a larger one, so the oversized event
    /// is never received and its call ends as a lost peer's would (first-
    /// reply timeout, missing heartbeats). Not enforced on `inproc://`,
    /// where messages are not decoded.
    pub max_message_size: Option<u64>,
}

/// Options a socket of `kind` always has, set once when it is created.
pub(crate) fn apply_kind(socket: &mut zmq::Socket, kind: SocketKind) -> Result<(), Error> {
    match kind {
        SocketKind::Subscribe => socket
            .set_subscribe(b"")
            .map_err(|e| Error::zmq("cannot subscribe", e))?,
        // Without it a ROUTER silently drops what a full or vanished
        // peer cannot take; with it, ZeroMQ says so and we queue or fail.
        SocketKind::Server => socket
            .set_router_mandatory(true)
            .map_err(|e| Error::zmq("cannot make the socket report full peers", e))?,
        // A PUB would drop what a slow subscriber cannot take; an XPUB with
        // NODROP refuses it (EAGAIN) so that we queue or fail instead.
        // The constant is in zmq-sys, but the `zmq` crate has no setter.
        SocketKind::Publish => set_int_option(socket, zmq_sys::ZMQ_XPUB_NODROP as c_int, 1)
            .map_err(|e| Error::zmq("cannot make the socket report full subscribers", e))?,
        SocketKind::Client | SocketKind::Push | SocketKind::Pull => {}
    }
    // Do not let unsent messages hold the process at exit. Best effort: a
    // socket that keeps its default linger still works.
    let _ = socket.set_linger(0);
    Ok(())
}

/// Options of one endpoint, set on `socket` just before it binds or
/// connects to `endpoint` (see the module documentation for why then).
pub(crate) fn apply_endpoint(
    socket: &zmq::Socket,
    endpoint: &str,
    options: &EndpointOptions,
) -> Result<(), Error> {
    let fail = |e| Error::zmq(format!("cannot apply the options of {endpoint}"), e);
    match options.security {
        // The NULL mechanism is libzmq's default and no other mechanism can
        // be set yet, so there is nothing to reset. A PLAIN or CURVE variant
        // must also undo here what the others set, since options persist on
        // the socket from one endpoint to the next.
        Security::None => {}
    }
    // libzmq takes -1 for "no limit"; a limit beyond i64 is none either.
    let max = options
        .max_message_size
        .map_or(-1, |n| i64::try_from(n).unwrap_or(-1));
    socket.set_maxmsgsize(max).map_err(fail)?;
    Ok(())
}

/// Sets an integer socket option the `zmq` crate has no setter for.
fn set_int_option(socket: &mut zmq::Socket, option: c_int, value: c_int) -> Result<(), zmq::Error> {
    // SAFETY: `as_mut_ptr` is the live libzmq handle owned by `socket`,
    // which the exclusive borrow keeps alive and unshared for the whole call.
    // The value pointer and length describe `value`, a c_int on this stack
    // frame, which libzmq copies before returning.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            option,
            (&raw const value).cast::<c_void>(),
            size_of::<c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        // SAFETY: zmq_errno only reads the calling thread's errno.
        Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
    }
}
