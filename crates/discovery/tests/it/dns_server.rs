//! An authoritative DNS server for zone `example.test.`, in process, on
//! 127.0.0.1 and a free port (UDP and TCP), whose records a test replaces
//! while it runs, and which a test can stop.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use zerorpc_test_support::free_port;

pub(crate) const ZONE: &str = "example.test.";

/// The TTL of every record the helpers make, unless said otherwise.
pub(crate) const TTL: u32 = 1;

pub(crate) struct DnsServer {
    address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    zone: Arc<InMemoryZoneHandler>,
    server: Option<Server<Catalog>>,
}

impl DnsServer {
    /// Serves `records` (plus the zone's SOA) until stopped or dropped.
    pub(crate) fn start(records: Vec<Record>) -> DnsServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the DNS server");
        let zone = Arc::new(zone_with(records));
        // UDP and TCP on one port, as a resolver expects; the kernel may
        // have given the port away between checks, hence retries.
        let (address, server) = (0..16)
            .find_map(|_| {
                let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port());
                listen(&runtime, &zone, address).map(|server| (address, server))
            })
            .expect("no free UDP and TCP port for the DNS server");
        DnsServer {
            address,
            runtime: Some(runtime),
            zone,
            server: Some(server),
        }
    }

    /// Where it listens (UDP and TCP).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves `records` (plus the SOA) from now on, instead of the others.
    pub(crate) fn replace(&self, records: Vec<Record>) {
        let mut fresh = zone_with(records);
        let fresh = fresh.records_get_mut().clone();
        let zone = self.zone.clone();
        on(self.runtime(), async move {
            *zone.records_mut().await = fresh;
        });
    }

    /// Stops answering: UDP queries go unanswered, TCP is refused.
    pub(crate) fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // Errors of the serving tasks at shutdown say nothing about the test.
            let _ = on(
                self.runtime(),
                async move { server.shutdown_gracefully().await },
            );
        }
    }

    /// Answers again, on the same address and with the same records, after
    /// [`stop`](Self::stop).
    pub(crate) fn restart(&mut self) {
        if self.server.is_none() {
            let server = listen(self.runtime(), &self.zone, self.address)
                .expect("the DNS server's address is still free");
            self.server = Some(server);
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("taken only on drop")
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A server for `zone` on UDP and TCP `address`, or `None` if either is
/// taken.
fn listen(
    runtime: &tokio::runtime::Runtime,
    zone: &Arc<InMemoryZoneHandler>,
    address: SocketAddr,
) -> Option<Server<Catalog>> {
    let serving = zone.clone();
    on(runtime, async move {
        let udp = tokio::net::UdpSocket::bind(address).await.ok()?;
        let tcp = tokio::net::TcpListener::bind(address).await.ok()?;
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&name(ZONE)), vec![serving]);
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        Some(server)
    })
}

/// Runs `future` to completion on `runtime` from a thread of its own, so
/// that it works from synchronous tests and async ones alike.
fn on<F>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .expect("the DNS server's work does not panic")
    })
}

fn zone_with(records: Vec<Record>) -> InMemoryZoneHandler {
    let mut zone = InMemoryZoneHandler::empty(name(ZONE), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(
        name("ns.example.test."),
        name("admin.example.test."),
        1,
        60,
        60,
        600,
        // The TTL of negative answers: short, as records come and go.
        TTL,
    );
    assert!(zone.upsert_mut(Record::from_rdata(name(ZONE), TTL, RData::SOA(soa)), 1));
    for record in records {
        assert!(zone.upsert_mut(record, 1));
    }
    zone
}

pub(crate) fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("a valid name")
}

/// `_zerorpc._tcp.SERVICE.example.test. SRV priority weight port target.example.test.`
pub(crate) fn srv(service: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(&format!("_zerorpc._tcp.{service}.{ZONE}")),
        TTL,
        RData::SRV(SRV::new(
            priority,
            weight,
            port,
            name(&format!("{target}.{ZONE}")),
        )),
    )
}

/// `HOST.example.test. A ip`
pub(crate) fn a(host: &str, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name(&format!("{host}.{ZONE}")), TTL, RData::A(A(ip)))
}

/// `HOST.example.test. AAAA ::1`
pub(crate) fn aaaa_loopback(host: &str) -> Record {
    Record::from_rdata(
        name(&format!("{host}.{ZONE}")),
        TTL,
        RData::AAAA(AAAA(std::net::Ipv6Addr::LOCALHOST)),
    )
}

/// `SERVICE.example.test. TXT strings...`
pub(crate) fn txt(service: &str, strings: Vec<String>) -> Record {
    Record::from_rdata(
        name(&format!("{service}.{ZONE}")),
        TTL,
        RData::TXT(TXT::new(strings)),
    )
}
