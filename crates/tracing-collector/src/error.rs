//! The crate's error type, wrapping the core's and Redis's.

/// What went wrong while tracing, collecting or reading traces.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A zerorpc socket or call failed (the reporter's, the collector's,
    /// or a call to a collector).
    #[error("{context}")]
    Rpc {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: zerorpc::Error,
    },
    /// Redis refused or could not be reached.
    #[error("{context}")]
    Redis {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: redis::RedisError,
    },
    /// A report, trace entry or id that cannot be read.
    #[error("{0}")]
    Malformed(String),
    /// A setting that cannot work (no endpoint to bind, a zero capacity...).
    #[error("{0}")]
    Config(String),
    /// The operating system refused (a thread, a runtime).
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn rpc(context: impl Into<String>, source: zerorpc::Error) -> Self {
        Error::Rpc {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn redis(context: impl Into<String>, source: redis::RedisError) -> Self {
        Error::Redis {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
