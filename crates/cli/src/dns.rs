//! `dns:NAME` endpoints: the discovery crate's resolver, built only when
//! an endpoint needs it (it starts a thread of its own).

use std::sync::Arc;

use zerorpc::{Endpoint, ResolveEndpoint};
use zerorpc_discovery::DnsResolver;

use crate::args::Endpoints;
use crate::exit::{Failure, chain};

/// The resolver for these endpoints: DNS when one of them is a `dns:`
/// name, none (the literal default) otherwise.
pub(crate) fn resolver(endpoints: &Endpoints) -> Result<Option<Arc<dyn ResolveEndpoint>>, Failure> {
    let named = endpoints
        .binds
        .iter()
        .chain(&endpoints.connects)
        .filter_map(|e| Endpoint::parse(e).ok())
        .any(|e| e.scheme() == "dns");
    if !named {
        return Ok(None);
    }
    let mut builder = DnsResolver::builder();
    if let Some(server) = endpoints.dns_server {
        builder = builder.name_server(server);
    }
    let resolver = builder
        .build()
        .map_err(|e| Failure::local(format!("cannot set up DNS resolution: {}", chain(&e))))?;
    Ok(Some(Arc::new(resolver)))
}
