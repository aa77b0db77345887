//! Transport errors.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong in the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No reply arrived within the channel's first-reply timeout.
    Timeout,
    /// The peer stopped sending heartbeats.
    LostRemote,
    /// The socket or channel was closed locally.
    Closed,
    /// ZeroMQ refused an operation (bad endpoint, address in use...).
    Zmq,
    /// An endpoint could not be used (unknown scheme, empty, unresolvable).
    Endpoint,
    /// The peer does not read what we send, and the events waiting for it
    /// reached the socket's send queue limit.
    QueueFull,
    /// The operating system refused a local resource the socket needs (its
    /// I/O thread, its wake-up pipe).
    Io,
    /// A key, certificate or other security setting is malformed.
    Security,
    /// A request is larger than the socket's
    /// [`max_message_size`](crate::SocketConfig::max_message_size), which a
    /// peer is taken to share: sent, it would make the peer drop the
    /// connection. Nothing was sent.
    TooLarge,
}

/// An error from the transport layer.
///
/// The representation is private; match on [`Error::kind`] or use the
/// `is_*` helpers. The `Display` text describes this level only; the cause,
/// when there is one, is available through [`std::error::Error::source`].
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    detail: Detail,
}

#[derive(Clone, Debug)]
enum Detail {
    None,
    Timeout(Duration),
    LostRemote(Duration),
    PeerGone,
    QueueFull(usize),
    TooLarge { size: usize, limit: u64 },
    Zmq(String, zmq::Error),
    Endpoint(String, String),
    NoEndpoint,
    Security(String),
    // `io::Error` is not `Clone`; an `Arc` keeps the error `Clone` and the
    // cause intact for `source()`.
    Io(String, Arc<io::Error>),
}

impl Error {
    pub(crate) fn timeout(after: Duration) -> Self {
        Error {
            kind: ErrorKind::Timeout,
            detail: Detail::Timeout(after),
        }
    }

    pub(crate) fn lost_remote(interval: Duration) -> Self {
        Error {
            kind: ErrorKind::LostRemote,
            detail: Detail::LostRemote(interval),
        }
    }

    /// ZeroMQ knows the peer no more: it disconnected, so nothing more of
    /// the channel can reach it.
    pub(crate) fn peer_gone() -> Self {
        Error {
            kind: ErrorKind::LostRemote,
            detail: Detail::PeerGone,
        }
    }

    pub(crate) fn is_peer_gone(&self) -> bool {
        matches!(self.detail, Detail::PeerGone)
    }

    pub(crate) fn queue_full(limit: usize) -> Self {
        Error {
            kind: ErrorKind::QueueFull,
            detail: Detail::QueueFull(limit),
        }
    }

    pub(crate) fn too_large(size: usize, limit: u64) -> Self {
        Error {
            kind: ErrorKind::TooLarge,
            detail: Detail::TooLarge { size, limit },
        }
    }

    pub(crate) fn closed() -> Self {
        Error {
            kind: ErrorKind::Closed,
            detail: Detail::None,
        }
    }

    /// `context` says what was being done, without the cause: the cause is
    /// the `source()`.
    pub(crate) fn zmq(context: impl Into<String>, err: zmq::Error) -> Self {
        Error {
            kind: ErrorKind::Zmq,
            detail: Detail::Zmq(context.into(), err),
        }
    }

    /// `context` says what was being done, without the cause: the cause is
    /// the `source()`.
    pub(crate) fn io(context: impl Into<String>, err: io::Error) -> Self {
        Error {
            kind: ErrorKind::Io,
            detail: Detail::Io(context.into(), Arc::new(err)),
        }
    }

    /// A channel opened on a socket with nothing bound or connected.
    pub(crate) fn no_endpoint() -> Self {
        Error {
            kind: ErrorKind::Endpoint,
            detail: Detail::NoEndpoint,
        }
    }

    pub(crate) fn endpoint(endpoint: impl Into<String>, why: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Endpoint,
            detail: Detail::Endpoint(endpoint.into(), why.into()),
        }
    }

    /// A malformed key or security setting; `why` says what is wrong.
    pub(crate) fn security(why: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Security,
            detail: Detail::Security(why.into()),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True when no reply arrived in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// True when the peer stopped heartbeating.
    pub fn is_lost_remote(&self) -> bool {
        self.kind == ErrorKind::LostRemote
    }

    /// True when the socket or channel was closed locally.
    pub fn is_closed(&self) -> bool {
        self.kind == ErrorKind::Closed
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Detail::Timeout(after) => write!(f, "timeout after {}", seconds(*after)),
            // zerorpc-python says "Lost remote after 10s heartbeat": twice the interval.
            Detail::LostRemote(interval) => {
                write!(f, "lost remote after {} heartbeat", seconds(*interval * 2))
            }
            Detail::PeerGone => f.write_str("lost remote: the peer disconnected"),
            Detail::QueueFull(limit) => write!(
                f,
                "the peer is not reading fast enough: the events waiting for it reached the send queue limit of {limit} bytes"
            ),
            Detail::TooLarge { size, limit } => write!(
                f,
                "the request is {size} bytes, over the message size limit of {limit} bytes (max_message_size): not sent, as a peer with the same limit would drop the connection"
            ),
            Detail::Zmq(context, _) | Detail::Io(context, _) => f.write_str(context),
            Detail::Endpoint(endpoint, why) => write!(f, "bad endpoint {endpoint:?}: {why}"),
            Detail::NoEndpoint => f.write_str("the socket is neither bound nor connected"),
            Detail::Security(why) => f.write_str(why),
            Detail::None => f.write_str("channel closed"),
        }
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.detail {
            Detail::Zmq(_, e) => Some(e),
            Detail::Io(_, e) => Some(e.as_ref()),
            _ => None,
        }
    }
}
