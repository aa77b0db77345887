//! Endpoint resolution: the pluggable step between the endpoint a user
//! names and the ZeroMQ endpoints a socket binds or connects to.

use std::sync::Arc;

use zerorpc_transport::Socket;

use crate::Result;

/// Turns an endpoint as a user wrote it into ZeroMQ endpoints.
///
/// The default, [`Literal`], passes ZeroMQ endpoints through unchanged.
/// Other resolvers (DNS names such as `dns:NAME`, aliases) plug in here;
/// one name may stand for several endpoints.
pub trait ResolveEndpoint: Send + Sync + 'static {
    /// The ZeroMQ endpoints for `endpoint`.
    fn resolve(&self, endpoint: &str) -> Result<Vec<String>>;
}

/// Passes endpoints through unchanged, as literal ZeroMQ endpoints
/// (`tcp://`, `ipc://`, `inproc://`...); the transport checks them when it
/// binds or connects.
#[derive(Clone, Copy, Debug, Default)]
pub struct Literal;

impl ResolveEndpoint for Literal {
    fn resolve(&self, endpoint: &str) -> Result<Vec<String>> {
        Ok(vec![endpoint.to_owned()])
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
