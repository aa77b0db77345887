//! Integration tests of DNS discovery, against an in-process DNS server
//! (`dns_server.rs`) and real zerorpc servers, all on 127.0.0.1.

mod dns_server;
mod live;
mod logs;
mod resolve;
mod update;

use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use zerorpc::{Change, ResolveEndpoint};
use zerorpc_discovery::DnsResolver;

use dns_server::DnsServer;

/// Every wait of a test is bounded by this.
pub(crate) const TEST_BOUND: Duration = Duration::from_secs(20);

/// A resolver asking `dns`, keeping answers 1 to 2 s.
pub(crate) fn resolver(dns: &DnsServer) -> DnsResolver {
    DnsResolver::builder()
        .name_server(dns.address())
        .ttl_floor(Duration::from_secs(1))
        .ttl_ceiling(Duration::from_secs(2))
        .timeout(Duration::from_millis(500))
        .build()
        .expect("the resolver builds")
}

/// What a builder would apply at build time: the changes ready at once,
/// or the first error.
pub(crate) fn first_batch(
    resolver: &DnsResolver,
    endpoint: &str,
) -> Result<Vec<Change>, zerorpc::Error> {
    let mut changes = resolver.resolve(endpoint);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut ready = Vec::new();
    loop {
        match changes.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(change)) => ready.push(change?),
            Poll::Ready(None) | Poll::Pending => return Ok(ready),
        }
    }
}

/// The endpoints inserted by `changes`, sorted.
pub(crate) fn inserted(changes: &[Change]) -> Vec<String> {
    let mut endpoints: Vec<String> = changes
        .iter()
        .map(|change| match change {
            Change::Insert(endpoint) => endpoint.clone(),
            other => panic!("a first batch only inserts: {other:?}"),
        })
        .collect();
    endpoints.sort();
    endpoints
}
