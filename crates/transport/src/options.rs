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
use std::fmt;

use crate::security::NULL_DOMAIN;
use crate::{Authenticator, CurveKey, CurveKeyPair, Error, SocketKind};

/// How the connections of an endpoint are secured: ZeroMQ's security
/// mechanisms.
///
/// [`Security::None`] is what zerorpc-python and zerorpc-node speak by
/// default. PLAIN sends a user name and password in clear: for trusted
/// networks only. CURVE authenticates both ends by their public keys and
/// encrypts everything. A server's side is checked by an [`Authenticator`]
/// (our ZAP handler, in the process-wide [`context`](crate::context)).
/// The mechanism is set on the ZeroMQ socket just before the bind or
/// connect it belongs to, so each endpoint may have its own.
///
/// `Debug` shows no password or secret key.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// No authentication and no encryption (ZeroMQ's NULL mechanism).
    #[default]
    None,
    /// A PLAIN client: sends this user name and password.
    PlainClient {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A PLAIN server: lets in the users the authenticator knows.
    PlainServer(Authenticator),
    /// A CURVE client: `keys` is the client's own pair, `server_key` the
    /// public key of the server it expects (a different server fails the
    /// handshake).
    CurveClient {
        /// The server's public key.
        server_key: CurveKey,
        /// The client's key pair, whose public key servers may allow.
        keys: CurveKeyPair,
    },
    /// A CURVE server with this key pair, letting in the clients the
    /// authenticator allows.
    CurveServer {
        /// The server's key pair; clients are given its public key.
        keys: CurveKeyPair,
        /// Who is let in.
        authenticator: Authenticator,
    },
}

impl Security {
    /// The authenticator of a server mechanism.
    pub(crate) fn authenticator(&self) -> Option<&Authenticator> {
        match self {
            Security::PlainServer(auth)
            | Security::CurveServer {
                authenticator: auth,
                ..
            } => Some(auth),
            _ => None,
        }
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Security::None => f.write_str("None"),
            Security::PlainClient { username, .. } => f
                .debug_struct("PlainClient")
                .field("username", username)
                .finish_non_exhaustive(),
            Security::PlainServer(auth) => f.debug_tuple("PlainServer").field(auth).finish(),
            Security::CurveClient { server_key, keys } => f
                .debug_struct("CurveClient")
                .field("server_key", server_key)
                .field("keys", keys)
                .finish(),
            Security::CurveServer {
                keys,
                authenticator,
            } => f
                .debug_struct("CurveServer")
                .field("keys", keys)
                .field("authenticator", authenticator)
                .finish(),
        }
    }
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
    socket: &mut zmq::Socket,
    endpoint: &str,
    options: &EndpointOptions,
) -> Result<(), Error> {
    let fail = |e| Error::zmq(format!("cannot apply the options of {endpoint}"), e);
    apply_security(socket, &options.security).map_err(fail)?;
    // libzmq takes -1 for "no limit"; a limit beyond i64 is none either.
    let max = options
        .max_message_size
        .map_or(-1, |n| i64::try_from(n).unwrap_or(-1));
    socket.set_maxmsgsize(max).map_err(fail)?;
    Ok(())
}

/// Sets the mechanism of `security` on `socket`, after undoing whatever
/// an earlier endpoint set: options persist on the socket from one endpoint
/// to the next.
fn apply_security(socket: &mut zmq::Socket, security: &Security) -> Result<(), zmq::Error> {
    // Back to NULL: libzmq makes a socket that is not a PLAIN server a NULL
    // one.
    socket.set_plain_server(false)?;
    // A server refuses rather than lets in when no ZAP handler answers
    // (libzmq's default is to let everyone in). Ours is always running
    // once an Authenticator exists; this guards against it not being so.
    let server = matches!(
        security,
        Security::PlainServer(_) | Security::CurveServer { .. }
    );
    set_int_option(socket, ZMQ_ZAP_ENFORCE_DOMAIN, c_int::from(server))?;
    match security {
        Security::None => {
            // A ZAP domain makes even NULL handshakes ask the handler, and
            // libzmq 4.3 cannot empty it once set: an earlier endpoint's
            // becomes the one our handler lets every NULL peer through.
            let domain = socket.get_zap_domain()?;
            if domain.map_or(true, |d| !d.is_empty()) {
                socket.set_zap_domain(NULL_DOMAIN)?;
            }
        }
        Security::PlainClient { username, password } => {
            socket.set_plain_username(Some(username))?;
            socket.set_plain_password(Some(password))?;
        }
        Security::PlainServer(auth) => {
            socket.set_zap_domain(auth.zap_domain())?;
            socket.set_plain_server(true)?;
        }
        Security::CurveClient { server_key, keys } => {
            socket.set_curve_publickey(keys.public().as_bytes())?;
            socket.set_curve_secretkey(keys.secret_bytes())?;
            // Last: setting the server key is what makes the socket a CURVE
            // client.
            socket.set_curve_serverkey(server_key.as_bytes())?;
        }
        Security::CurveServer {
            keys,
            authenticator,
        } => {
            socket.set_zap_domain(authenticator.zap_domain())?;
            socket.set_curve_publickey(keys.public().as_bytes())?;
            socket.set_curve_secretkey(keys.secret_bytes())?;
            socket.set_curve_server(true)?;
        }
    }
    Ok(())
}

/// libzmq's `ZMQ_ZAP_ENFORCE_DOMAIN`, a DRAFT option (compiled in: see
/// ARCHITECTURE.md, "libzmq build") that zmq-sys does not name.
const ZMQ_ZAP_ENFORCE_DOMAIN: c_int = 93;

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
    check(rc)
}

fn check(rc: c_int) -> Result<(), zmq::Error> {
    if rc == 0 {
        Ok(())
    } else {
        // SAFETY: zmq_errno only reads the calling thread's errno.
        Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() }))
    }
}
