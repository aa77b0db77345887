//! Announcing services: a services file turned into the records of a DNS
//! server (BIND zone files, tinydns data, dnsmasq options).
//!
//! Each service `NAME` gets, per group of clients (see below):
//!
//! - an SRV record `_zerorpc._tcp.NAME.` per instance given as `host` and
//!   `port`, with its priority and weight;
//! - an A or AAAA record per instance whose host is an address, under a
//!   name made for it: `iN.NAME.` for the instance at position N (from 0)
//!   in the file, which is the SRV record's target;
//! - a TXT record at `NAME.`: the JSON of [`crate::txt::TxtRecord`]
//!   (socket type, protocol, metadata, and the `endpoints` of instances
//!   given as endpoints), split into strings of at most 255 bytes.
//!
//! With a `networks` section, clients are grouped by address and each
//! group sees the instances announced to it (an instance without
//! `networks` is announced to every group); clients in no network form the
//! group `default`. BIND gets a view per group, tinydns a location per
//! group; dnsmasq cannot tell clients apart and refuses such a file.
//!
//! The file format and each output format are described in docs/announce.md.

mod bind;
mod dnsmasq;
mod file;
mod tinydns;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use bind::{BindViews, render_bind_records, render_bind_views, render_bind_zone};
pub use dnsmasq::render_dnsmasq;
pub use file::{Services, parse_services};
pub use tinydns::render_tinydns;

pub(crate) use file::{Host, Instance, InstanceKind, Service, check_dns_name};

use file::{Cidr, DEFAULT_VIEW};

use crate::SRV_PREFIX;
use crate::txt::TxtRecord;

/// A services file that cannot be announced as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// The YAML is malformed, or a key has a wrong name, type or value
    /// (the key reads like `services › [0] › ttl`).
    #[error(transparent)]
    Syntax(#[from] zerorpc_yaml::YamlError),
    /// Keys that are each well-formed but do not fit together.
    #[error("key {key}: {message}")]
    Invalid {
        /// The key at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The output format cannot express what the file asks for.
    #[error("{0}")]
    Unsupported(String),
}

/// The zone the records go into, for the formats that write a complete
/// zone (with its SOA and NS records) rather than records to include.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: String,
    nameserver: String,
    nameserver_address: Option<IpAddr>,
    serial: u32,
}

impl Zone {
    /// The zone `origin`, served by `nameserver` (a host name), with SOA
    /// serial `serial`.
    pub fn new(origin: &str, nameserver: &str, serial: u32) -> Result<Zone, AnnounceError> {
        let origin = file::check_dns_name(origin)
            .map_err(|m| AnnounceError::Unsupported(format!("zone: {m}")))?;
        let nameserver = file::check_dns_name(nameserver)
            .map_err(|m| AnnounceError::Unsupported(format!("name server: {m}")))?;
        Ok(Zone {
            origin,
            nameserver,
            nameserver_address: None,
            serial,
        })
    }

    /// The address of a name server inside the zone, which the zone must
    /// then hold (BIND refuses to load a zone whose in-zone name server has
    /// no address).
    pub fn with_nameserver_address(mut self, address: IpAddr) -> Result<Zone, AnnounceError> {
        if !in_zone(&self.nameserver, &self.origin) {
            return Err(AnnounceError::Unsupported(format!(
                "name server {} is outside zone {}: its address belongs to its own zone",
                self.nameserver, self.origin
            )));
        }
        self.nameserver_address = Some(address);
        Ok(self)
    }

    /// The records of the zone's own name server: its address, if given.
    fn nameserver_records(&self) -> Vec<Record> {
        self.nameserver_address
            .map(|ip| Record {
                owner: format!("{}.", self.nameserver),
                ttl: 3600,
                data: match ip {
                    IpAddr::V4(v4) => Data::A(v4),
                    IpAddr::V6(v6) => Data::Aaaa(v6),
                },
            })
            .into_iter()
            .collect()
    }

    /// BIND refuses to load a zone whose name server is inside it without
    /// an address (tinydns does not mind).
    fn require_glue(&self) -> Result<(), AnnounceError> {
        if self.nameserver_address.is_none() && in_zone(&self.nameserver, &self.origin) {
            return Err(AnnounceError::Unsupported(format!(
                "name server {} is inside zone {}, so the zone must hold its address \
                 (--nameserver-address): BIND refuses to load it otherwise",
                self.nameserver, self.origin
            )));
        }
        Ok(())
    }

    /// Every service must be the zone's apex or under it: a server would
    /// not answer for the others from this zone.
    fn check(&self, services: &Services) -> Result<(), AnnounceError> {
        for service in &services.services {
            if !in_zone(&service.name, &self.origin) {
                return Err(AnnounceError::Unsupported(format!(
                    "service {} is not in zone {}",
                    service.name, self.origin
                )));
            }
        }
        Ok(())
    }
}

fn in_zone(name: &str, origin: &str) -> bool {
    let (name, origin) = (name.to_ascii_lowercase(), origin.to_ascii_lowercase());
    name == origin || name.ends_with(&format!(".{origin}"))
}

/// One DNS record, before any format writes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Record {
    /// Fully qualified, with the final dot.
    pub(crate) owner: String,
    pub(crate) ttl: u32,
    pub(crate) data: Data,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        /// Fully qualified, with the final dot.
        target: String,
    },
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// The strings of the record, each at most 255 bytes.
    Txt(Vec<String>),
}

/// The answers one group of clients gets.
pub(crate) struct View<'a> {
    /// A network's name, or [`DEFAULT_VIEW`].
    pub(crate) name: &'a str,
    /// `None`: clients in no network.
    pub(crate) clients: Option<&'a [Cidr]>,
    pub(crate) records: Vec<Record>,
}

impl Services {
    /// Whether the file has a `networks` section.
    pub fn has_networks(&self) -> bool {
        !self.networks.is_empty()
    }

    /// The records everyone gets, for a file without networks.
    pub(crate) fn records(&self) -> Vec<Record> {
        self.records_for(|_| true)
    }

    /// One view per network, in file order, then the default view.
    pub(crate) fn views(&self) -> Vec<View<'_>> {
        let mut views: Vec<View<'_>> = self
            .networks
            .iter()
            .map(|network| View {
                name: &network.name,
                clients: Some(&network.clients),
                records: self.records_for(|networks| {
                    networks.is_none_or(|list| list.contains(&network.name))
                }),
            })
            .collect();
        views.push(View {
            name: DEFAULT_VIEW,
            clients: None,
            records: self.records_for(|networks| networks.is_none()),
        });
        views
    }

    /// The records of the instances `visible` keeps, given their
    /// `networks` lists.
    fn records_for(&self, visible: impl Fn(Option<&Vec<String>>) -> bool) -> Vec<Record> {
        self.services
            .iter()
            .flat_map(|service| service.records(&visible))
            .collect()
    }
}

impl Service {
    /// The service's records: its SRV records, the addresses of its
    /// instances given by address, then its TXT record; of the instances
    /// `visible` keeps, given their `networks` lists.
    pub(crate) fn records(&self, visible: impl Fn(Option<&Vec<String>>) -> bool) -> Vec<Record> {
        let ttl = self.ttl;
        let mut records: Vec<Record> = Vec::new();
        let mut txt = TxtRecord {
            socket_type: self.socket_type.clone(),
            protocol: self.protocol,
            metadata: self.metadata.clone(),
            ..TxtRecord::default()
        };
        let mut addresses: Vec<Record> = Vec::new();
        for instance in &self.instances {
            if !visible(instance.networks.as_ref()) {
                continue;
            }
            match &instance.kind {
                InstanceKind::Srv {
                    host,
                    port,
                    priority,
                    weight,
                } => {
                    let target = match host {
                        Host::Name(name) => format!("{name}."),
                        Host::Ip(ip) => {
                            let target = format!("{}.{}.", instance.label, self.name);
                            let address = Record {
                                owner: target.clone(),
                                ttl,
                                data: match ip {
                                    IpAddr::V4(v4) => Data::A(*v4),
                                    IpAddr::V6(v6) => Data::Aaaa(*v6),
                                },
                            };
                            if !addresses.contains(&address) {
                                addresses.push(address);
                            }
                            target
                        }
                    };
                    let srv = Record {
                        owner: format!("{SRV_PREFIX}.{}.", self.name),
                        ttl,
                        data: Data::Srv {
                            priority: *priority,
                            weight: *weight,
                            port: *port,
                            target,
                        },
                    };
                    // Instances sharing a name and a port (one server
                    // bound on several addresses) share their SRV record.
                    if !records.contains(&srv) {
                        records.push(srv);
                    }
                }
                InstanceKind::Endpoints(endpoints) => {
                    txt.endpoints.extend(endpoints.iter().cloned());
                }
            }
        }
        records.extend(addresses);
        if txt != TxtRecord::default() {
            records.push(Record {
                owner: format!("{}.", self.name),
                ttl,
                data: Data::Txt(txt.to_strings()),
            });
        }
        records
    }
}
