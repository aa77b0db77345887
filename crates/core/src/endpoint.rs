//! Endpoint resolution: the pluggable step between the endpoint a user
//! names and the ZeroMQ endpoints a socket binds or connects to.

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

/// Accepts only literal ZeroMQ endpoints (`tcp://`, `ipc://`, `inproc://`...).
#[derive(Clone, Copy, Debug, Default)]
pub struct Literal;

impl ResolveEndpoint for Literal {
    fn resolve(&self, endpoint: &str) -> Result<Vec<String>> {
        if endpoint.contains("://") {
            Ok(vec![endpoint.to_owned()])
        } else {
            Err(Error::endpoint(format!(
                "bad endpoint {endpoint:?}: expected SCHEME://ADDRESS, e.g. tcp://127.0.0.1:4242"
            )))
        }
    }
}
