//! `dns:NAME` endpoints: the discovery crate's resolver, built only when
//! an endpoint needs it (it starts a thread of its own).

use std::sync::Arc;

use zerorpc::{Endpoint, ResolveEndpoint};
use zerorpc_discovery::DnsResolver;

use crate::args::{Endpoints, ResolveArgs};
use crate::exit::{Failure, chain};

fn build(server: Option<std::net::SocketAddr>) -> Result<DnsResolver, Failure> {
    let mut builder = DnsResolver::builder();
    if let Some(server) = server {
        builder = builder.name_server(server);
    }
    builder
        .build()
        .map_err(|e| Failure::local(format!("cannot set up DNS resolution: {}", chain(&e))))
}

/// `zerorpc resolve`: the records of a name and the endpoints chosen, as a
/// table or as JSON.
pub(crate) fn resolve(args: &ResolveArgs) -> Result<(), Failure> {
    let name = args.name.strip_prefix("dns:").unwrap_or(&args.name);
    let inspection = build(args.dns_server)?
        .inspect(name)
        .map_err(Failure::from_setup)?;
    let text = if args.json {
        // Plain structs of strings and numbers always serialize.
        serde_json::to_string_pretty(&inspection).unwrap_or_default() + "\n"
    } else {
        table(&inspection)
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(crate::exit::output_error)
}

/// The inspection as a table for people.
fn table(inspection: &zerorpc_discovery::Inspection) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "name      {}", inspection.name);
    if inspection.srv.is_empty() {
        let _ = writeln!(out, "SRV       none");
    } else {
        let _ = writeln!(
            out,
            "SRV       {:>8}  {:>6}  {:>5}  {:>6}  target",
            "priority", "weight", "port", "ttl"
        );
        for srv in &inspection.srv {
            let _ = writeln!(
                out,
                "          {:>8}  {:>6}  {:>5}  {:>6}  {}",
                srv.priority, srv.weight, srv.port, srv.ttl, srv.target
            );
        }
    }
    match (&inspection.txt, &inspection.txt_error) {
        (Some(txt), _) => {
            let _ = writeln!(out, "TXT       ttl {}  {}", txt.ttl, txt.record.to_json());
        }
        (None, Some(error)) => {
            let _ = writeln!(out, "TXT       unusable: {error}");
        }
        (None, None) => {
            let _ = writeln!(out, "TXT       none");
        }
    }
    let _ = writeln!(out, "endpoints");
    for endpoint in &inspection.endpoints {
        let _ = writeln!(out, "          {endpoint}");
    }
    out
}

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
    Ok(Some(Arc::new(build(endpoints.dns_server)?)))
}
