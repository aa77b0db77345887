//! Endpoint resolution: the pluggable step between the endpoint a user
//! names and the ZeroMQ endpoints a socket binds or connects to.

use std::sync::Arc;

use zerorpc_endpoint::Endpoint;
use zerorpc_transport::Socket;

use crate::{Error, Result};

/// Turns an endpoint as a user wrote it into ZeroMQ endpoints.
///
/// The default, [`Literal`], passes ZeroMQ endpoints through unchanged.
/// Other resolvers (DNS names such as `dns:NAME`, aliases) plug in here;
/// one name may stand for several endpoints.
pub trait ResolveEndpoint: Send + Sync + 'static {
    /// The ZeroMQ endpoints for `endpoint`.
    fn resolve(&self, endpoint: &str) -> Result<Vec<String>>;
}

/// Passes ZeroMQ endpoints (`tcp://`, `ipc://`, `inproc://`...) through
/// unchanged, and refuses names (`dns:NAME`), which need a resolver that
/// knows their scheme.
///
/// ```
/// use zerorpc::{Literal, ResolveEndpoint};
///
/// assert_eq!(Literal.resolve("tcp://127.0.0.1:4242")?, ["tcp://127.0.0.1:4242"]);
/// let error = Literal.resolve("dns:users.svc.example.test").unwrap_err();
/// assert!(error.to_string().contains("no resolver for dns: names"));
/// # Ok::<(), zerorpc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Literal;

impl ResolveEndpoint for Literal {
    fn resolve(&self, endpoint: &str) -> Result<Vec<String>> {
        // Malformed ZeroMQ endpoints are left to the transport, which
        // parses them with the same parser when it binds or connects.
        match Endpoint::parse(endpoint) {
            Ok(parsed) if !parsed.is_zmq() => Err(Error::bad_endpoint(
                endpoint,
                format_args!(
                    "no resolver for {scheme}: names is configured (a client or server \
                     builder takes one with .resolver(...))",
                    scheme = parsed.scheme()
                ),
            )),
            _ => Ok(vec![endpoint.to_owned()]),
        }
    }
}

/// The endpoints a client or server binds and connects to, and how they
/// are resolved.
#[derive(Clone)]
pub(crate) struct Endpoints {
    pub(crate) binds: Vec<String>,
    pub(crate) connects: Vec<String>,
    pub(crate) resolver: Arc<dyn ResolveEndpoint>,
}

impl Endpoints {
    pub(crate) fn new() -> Self {
        Endpoints {
            binds: Vec::new(),
            connects: Vec::new(),
            resolver: Arc::new(Literal),
        }
    }

    /// Resolves every endpoint, binds, then connects; returns the endpoints
    /// bound and connected, with wildcard ports filled in.
    pub(crate) fn apply(&self, socket: &Socket) -> Result<Vec<String>> {
        let mut done = Vec::new();
        for endpoint in &self.binds {
            for resolved in self.resolver.resolve(endpoint)? {
                done.push(socket.bind(&resolved)?);
            }
        }
        for endpoint in &self.connects {
            for resolved in self.resolver.resolve(endpoint)? {
                done.push(socket.connect(&resolved)?);
            }
        }
        Ok(done)
    }
}
