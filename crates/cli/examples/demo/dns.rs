//! The demo's DNS part: the demo service announced in a DNS server the
//! demo starts in its own process, found by name, and called.
//!
//! The records are the ones `zerorpc announce --format bind` writes (the
//! same `zerorpc_discovery::announce` code), read by hickory's zone-file
//! parser and served by hickory-server on 127.0.0.1 and a free port.

use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use zerorpc::Client;
use zerorpc_discovery::DnsResolver;
use zerorpc_discovery::announce::{Zone, parse_services, render_bind_zone};

/// The service's name in DNS.
const NAME: &str = "demo.svc.example.test";

/// The zone the demo's DNS server answers for.
const ORIGIN: &str = "example.test";

/// Announces the service listening on 127.0.0.1:`port` in a DNS server of
/// its own, then resolves `dns:NAME` and calls `add` through it.
pub(crate) async fn find_by_name(port: u16) -> Result<(), Box<dyn Error>> {
    println!("\n== finding the service by name: DNS");
    let services = parse_services(&format!(
        "services:
  - name: {NAME}
    ttl: 30
    socket_type: ROUTER
    protocol: 3
    metadata: {{ owner: the demo }}
    instances:
      - {{ host: 127.0.0.1, port: {port} }}
"
    ))?;
    let zone = Zone::new(ORIGIN, &format!("ns.{ORIGIN}"), 1)?
        .with_nameserver_address(Ipv4Addr::LOCALHOST.into())?;
    let zone_file = render_bind_zone(&services, &zone)?;
    let dns = DnsServer::start(&zone_file).await?;
    println!(
        "a DNS server on {} (UDP and TCP) answers for {ORIGIN} with the service's records:",
        dns.address
    );
    for line in zone_file.lines().filter(|line| line.contains(NAME)) {
        println!("  {line}");
    }

    // What `zerorpc resolve` prints: the records and the endpoint chosen.
    let resolver = DnsResolver::builder().name_server(dns.address).build()?;
    let found = resolver.inspect(NAME)?;
    println!("resolving dns:{NAME}:");
    for srv in &found.srv {
        println!(
            "  SRV priority {} weight {} port {} target {} (ttl {}s)",
            srv.priority, srv.weight, srv.port, srv.target, srv.ttl
        );
    }
    if let Some(txt) = &found.txt {
        println!("  TXT {} (ttl {}s)", txt.record.to_json(), txt.ttl);
    }
    println!("  chosen: {}", found.endpoints.join(", "));

    // A client of the name, which follows it as DNS changes.
    let client = Client::builder()
        .resolver(Arc::new(resolver))
        .connect(format!("dns:{NAME}"))
        .build()?;
    let sum: f64 = client.call("add", (40, 2)).await?;
    println!("calling dns:{NAME}: add(40, 2) = {sum}");
    Ok(())
}

/// An authoritative DNS server for one zone, on a thread of its own (so
/// that lookups made by blocking calls of the demo's runtime are answered
/// whatever that runtime is doing), stopped when dropped.
struct DnsServer {
    address: SocketAddr,
    // Serves as long as it is kept.
    _server: Server<Catalog>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl DnsServer {
    /// Serves `zone_file` (a BIND zone file for [`ORIGIN`]).
    async fn start(zone_file: &str) -> Result<DnsServer, Box<dyn Error>> {
        let origin = Name::from_ascii(ORIGIN)?;
        let (origin, records) = Parser::new(zone_file, None, Some(origin)).parse()?;
        let zone: InMemoryZoneHandler =
            InMemoryZoneHandler::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny)?;
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![Arc::new(zone)]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("demo-dns")
            .enable_all()
            .build()?;
        let (address, server) = runtime
            .spawn(async {
                // UDP on a free port, then TCP on the same one (for answers
                // too large for UDP).
                let udp = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
                let address = udp.local_addr()?;
                let tcp = tokio::net::TcpListener::bind(address).await?;
                let mut server = Server::new(catalog);
                server.register_socket(udp);
                server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
                Ok::<_, std::io::Error>((address, server))
            })
            .await??;
        Ok(DnsServer {
            address,
            _server: server,
            runtime: Some(runtime),
        })
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Dropped inside the demo's runtime, where a runtime may not wait.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
