//! Errors: remote errors, timeouts, lost remotes, transport and codec errors.

use std::fmt;

use zerorpc_transport as transport;
use zerorpc_wire::Value;

/// An error raised by the remote side: the `ERR [name, message, traceback]`
/// reply.
///
/// `Display` prints it like zerorpc-python does: the traceback when there is
/// one, otherwise `name: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    name: String,
    message: String,
    traceback: String,
}

impl RemoteError {
    /// A remote error with a name (an exception or type name such as
    /// `ValueError`), a message and a traceback (may be empty).
    pub fn new(
        name: impl Into<String>,
        message: impl Into<String>,
        traceback: impl Into<String>,
    ) -> Self {
        RemoteError {
            name: name.into(),
            message: message.into(),
            traceback: traceback.into(),
        }
    }

    /// The error's name: the exception class or error type, unqualified.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The remote traceback (Python) or chain of causes (Rust); may be empty.
    pub fn traceback(&self) -> &str {
        &self.traceback
    }

    /// A remote error whose traceback is its one-line summary `name:
    /// message`, as zerorpc-python's last traceback line reads: for errors
    /// raised here rather than relayed from elsewhere, so Python peers and
    /// the CLI show the same line as for a Python exception.
    pub fn with_summary(name: impl Into<String>, message: impl Into<String>) -> Self {
        let name = name.into();
        let message = message.into();
        let traceback = format!("{name}: {message}\n");
        RemoteError {
            name,
            message,
            traceback,
        }
    }

    /// Parses the args of an `ERR` event: `[name, message, traceback]`, or
    /// the one-element v1 shape `[message]`.
    pub fn from_args(args: &Value) -> Option<Self> {
        let items = args.as_array()?;
        let text = |i: usize| -> Option<String> {
            match items.get(i)? {
                Value::String(s) => Some(s.as_str().map_or_else(
                    || String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    str::to_owned,
                )),
                Value::Binary(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Value::Nil => Some(String::new()),
                other => Some(other.to_string()),
            }
        };
        match items.len() {
            1 => Some(RemoteError::new("RemoteError", text(0)?, "")),
            3 => Some(RemoteError::new(text(0)?, text(1)?, text(2)?)),
            _ => None,
        }
    }

    /// The args of the `ERR` event carrying this error.
    pub fn to_args(&self) -> Value {
        Value::Array(vec![
            self.name.as_str().into(),
            self.message.as_str().into(),
            self.traceback.as_str().into(),
        ])
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.traceback.is_empty() {
            write!(f, "{}: {}", self.name, self.message)
        } else {
            f.write_str(self.traceback.trim_end())
        }
    }
}

impl std::error::Error for RemoteError {}

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The remote method failed: see [`Error::remote`].
    Remote,
    /// No reply arrived within the call's timeout.
    Timeout,
    /// The remote stopped heartbeating (crashed, killed, unreachable).
    LostRemote,
    /// The socket failed or was closed, or an endpoint was bad.
    Transport,
    /// A value could not be converted to or from MessagePack, or a reply
    /// had an unexpected shape.
    Codec,
    /// The operating system refused a local resource: a thread, a pipe, the
    /// server's runtime. Nothing was sent; retrying may succeed once the
    /// system has resources again. The `io::Error` is the `source()`.
    Io,
    /// The call was made where it cannot work, and the message says what
    /// to do instead: `Server::run` inside a tokio runtime, a blocking
    /// call on the thread that drives a server's current-thread runtime.
    /// Nothing was sent.
    Usage,
}

/// The error type of zerorpc.
///
/// Match on [`Error::kind`] or use the `is_*` helpers; remote errors are
/// kept apart from local failures ([`Error::remote`]). The `Display` text
/// describes this level only; the cause, when there is one, is the
/// [`std::error::Error::source`], so print the chain to see it all.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    repr: Repr,
}

#[derive(Debug)]
enum Repr {
    Remote(RemoteError),
    Transport {
        method: Option<String>,
        source: transport::Error,
    },
    /// A local failure described by this crate (codec, endpoint syntax...).
    Local {
        context: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    pub(crate) fn transport(source: transport::Error, method: Option<&str>) -> Self {
        let kind = match source.kind() {
            transport::ErrorKind::Timeout => ErrorKind::Timeout,
            transport::ErrorKind::LostRemote => ErrorKind::LostRemote,
            transport::ErrorKind::Io => ErrorKind::Io,
            _ => ErrorKind::Transport,
        };
        Error {
            kind,
            repr: Repr::Transport {
                method: method.map(str::to_owned),
                source,
            },
        }
    }

    pub(crate) fn codec(
        context: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error {
            kind: ErrorKind::Codec,
            repr: Repr::Local {
                context: context.into(),
                source,
            },
        }
    }

    /// A socket built with no endpoint to bind or connect: `why` says
    /// what to do. The kind is [`ErrorKind::Transport`].
    pub(crate) fn no_endpoint(why: &str) -> Self {
        Error {
            kind: ErrorKind::Transport,
            repr: Repr::Local {
                context: why.to_owned(),
                source: None,
            },
        }
    }

    /// A call made where it cannot work: `why` says what to do instead.
    pub(crate) fn usage(why: &str) -> Self {
        Error {
            kind: ErrorKind::Usage,
            repr: Repr::Local {
                context: why.to_owned(),
                source: None,
            },
        }
    }

    /// An endpoint that cannot be used: malformed, or a name its resolver
    /// cannot resolve. For [`ResolveEndpoint`](crate::ResolveEndpoint)
    /// implementations; the kind is [`ErrorKind::Transport`]. `why` is the
    /// whole explanation, e.g. "no SRV or TXT record at ...".
    pub fn bad_endpoint(endpoint: &str, why: impl fmt::Display) -> Self {
        Error {
            kind: ErrorKind::Transport,
            repr: Repr::Local {
                context: format!("bad endpoint {endpoint:?}: {why}"),
                source: None,
            },
        }
    }

    /// `context` says what was being done, without the cause: the cause is
    /// the `source()`.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error {
            kind: ErrorKind::Io,
            repr: Repr::Local {
                context: context.into(),
                source: Some(Box::new(source)),
            },
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The remote error, when the remote method failed.
    pub fn remote(&self) -> Option<&RemoteError> {
        match &self.repr {
            Repr::Remote(e) => Some(e),
            _ => None,
        }
    }

    /// True when the remote method failed.
    pub fn is_remote(&self) -> bool {
        self.kind == ErrorKind::Remote
    }

    /// True when no reply arrived in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// True when the remote stopped heartbeating.
    pub fn is_lost_remote(&self) -> bool {
        self.kind == ErrorKind::LostRemote
    }

    /// True for socket and endpoint failures.
    pub fn is_transport(&self) -> bool {
        self.kind == ErrorKind::Transport
    }

    /// True when a value could not be converted.
    pub fn is_codec(&self) -> bool {
        self.kind == ErrorKind::Codec
    }

    /// True when the operating system refused a local resource.
    pub fn is_io(&self) -> bool {
        self.kind == ErrorKind::Io
    }

    /// Whether this is [`ErrorKind::Usage`].
    pub fn is_usage(&self) -> bool {
        self.kind == ErrorKind::Usage
    }
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Self {
        Error {
            kind: ErrorKind::Remote,
            repr: Repr::Remote(e),
        }
    }
}

/// An error and its causes on one line, `error: cause: cause's cause`.
///
/// Each level's `Display` describes that level only (the Rust API
/// guidelines' rule, which this workspace's errors follow), so the levels
/// are joined as they are. Bounded: a cyclic source chain cannot hang a
/// report.
///
/// ```
/// let io = std::io::Error::other("Address already in use");
/// let error = zerorpc::Error::from(zerorpc::RemoteError::with_summary("OSError", "no"));
/// assert_eq!(zerorpc::error_chain(&error), "OSError: no");
/// assert_eq!(zerorpc::error_chain(&io), "Address already in use");
/// ```
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    for _ in 0..16 {
        let Some(cause) = source else { break };
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<transport::Error> for Error {
    fn from(e: transport::Error) -> Self {
        Error::transport(e, None)
    }
}

impl From<zerorpc_wire::ValueError> for Error {
    fn from(e: zerorpc_wire::ValueError) -> Self {
        Error::codec("cannot convert value", Some(Box::new(e)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Remote(e) => e.fmt(f),
            // The transport's own message says what failed ("bad endpoint
            // ...", "timeout after 30s"); its cause, if any, is our source.
            Repr::Transport {
                method: Some(m),
                source,
            } if self.kind != ErrorKind::LostRemote => {
                write!(f, "{source}, when calling remote method {m}")
            }
            Repr::Transport { source, .. } => source.fmt(f),
            Repr::Local { context, .. } => f.write_str(context),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.repr {
            Repr::Remote(_) => None,
            Repr::Transport { source, .. } => std::error::Error::source(source),
            Repr::Local { source, .. } => source
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
