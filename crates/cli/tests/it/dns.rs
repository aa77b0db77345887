//! Services announced in DNS for the tests of `dns:` names: what `zerorpc
//! announce --format dnsmasq` prints for them, served by dnsmasq on
//! 127.0.0.1 and a free port, which a test can stop and start again.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use zerorpc_test_support::{Process, free_port};

use super::TempDir;
use super::announce::{announce, start_dnsmasq_on};

/// dnsmasq answering for some services, each one instance on 127.0.0.1.
pub(crate) struct Announced {
    dnsmasq: PathBuf,
    dir: TempDir,
    options: String,
    address: SocketAddr,
    process: Option<Process>,
}

impl Announced {
    /// Serves each `(name, port)` as a service at 127.0.0.1:`port`, or
    /// returns `None` (the test should return) when dnsmasq is missing and
    /// `CI` is not set.
    pub(crate) fn start(services: &[(&str, u16)]) -> Option<Announced> {
        let dnsmasq = zerorpc_test_support::dnsmasq()?;
        let dir = TempDir::new();
        let options = options(&dir, services);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let process = start_dnsmasq_on(&dnsmasq, &dir, &options, address.port());
        Some(Announced {
            dnsmasq,
            dir,
            options,
            address,
            process: Some(process),
        })
    }

    /// Serves these services instead of the others: dnsmasq starts again
    /// with their records, on the same address.
    pub(crate) fn replace(&mut self, services: &[(&str, u16)]) {
        self.options = options(&self.dir, services);
        self.stop();
        self.restart();
    }

    /// Where dnsmasq answers, as `--dns-server` wants it.
    pub(crate) fn server(&self) -> String {
        self.address.to_string()
    }

    /// Where dnsmasq answers.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Kills dnsmasq: queries go unanswered until [`restart`](Self::restart).
    pub(crate) fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().expect("killing dnsmasq");
        }
    }

    /// Starts dnsmasq again, on the same address, with the same records.
    pub(crate) fn restart(&mut self) {
        if self.process.is_none() {
            let port = self.address.port();
            let process = start_dnsmasq_on(&self.dnsmasq, &self.dir, &self.options, port);
            self.process = Some(process);
        }
    }
}

/// What `zerorpc announce --format dnsmasq` prints for each `(name, port)`
/// as a service at 127.0.0.1:`port`.
fn options(dir: &TempDir, services: &[(&str, u16)]) -> String {
    let mut file = String::from("services:\n");
    for (name, port) in services {
        // dnsmasq gives SRV records no TTL of their own: clients look the
        // names up again at their floor.
        let _ = write!(
            file,
            "  - name: {name}
    socket_type: ROUTER
    protocol: 3
    instances:
      - {{ host: 127.0.0.1, port: {port} }}
"
        );
    }
    let path = dir.file("services.yml", &file);
    let path = path.to_str().expect("a UTF-8 temporary path");
    announce(&[path, "--format", "dnsmasq"])
}

/// The port of a `tcp://HOST:PORT` endpoint.
pub(crate) fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{endpoint} is a tcp endpoint with a port"))
}
