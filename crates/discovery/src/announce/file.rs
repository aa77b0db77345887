//! The services file: what to announce, parsed and checked.
//!
//! Scalars are checked inside their `Deserialize` impls, while the YAML
//! parser still knows where they are, so that their errors carry a line
//! and a column; checks that span several keys (a network an instance
//! names, overlapping networks) come after, and name the key instead.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, de};

use super::AnnounceError;

/// The TTL of a service that gives none, in seconds.
const DEFAULT_TTL: u32 = 300;

/// The name of the view of clients in no network; no network may take it.
pub(crate) const DEFAULT_VIEW: &str = "default";

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a services file: a mapping with `services` and optionally `networks`"
)]
struct RawFile {
    #[serde(default)]
    networks: Networks,
    services: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a service: a mapping with `name` and `instances`"
)]
struct RawService {
    name: DnsName,
    ttl: Option<u32>,
    socket_type: Option<SocketType>,
    protocol: Option<u32>,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
    instances: Vec<RawInstance>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an instance: a mapping with `host` and `port`, or with `endpoints`"
)]
struct RawInstance {
    host: Option<Host>,
    port: Option<u16>,
    priority: Option<u16>,
    weight: Option<u16>,
    endpoints: Option<Vec<TxtEndpoint>>,
    networks: Option<Vec<String>>,
}

/// What a services file describes, checked.
#[derive(Clone, Debug)]
pub struct Services {
    pub(crate) networks: Vec<Network>,
    pub(crate) services: Vec<Service>,
}

/// A named set of client addresses that gets answers of its own.
#[derive(Clone, Debug)]
pub(crate) struct Network {
    pub(crate) name: String,
    pub(crate) clients: Vec<Cidr>,
}

#[derive(Clone, Debug)]
pub(crate) struct Service {
    /// Without the final dot.
    pub(crate) name: String,
    pub(crate) ttl: u32,
    pub(crate) socket_type: Option<String>,
    pub(crate) protocol: Option<u32>,
    pub(crate) metadata: serde_json::Map<String, serde_json::Value>,
    pub(crate) instances: Vec<Instance>,
}

#[derive(Clone, Debug)]
pub(crate) struct Instance {
    /// The first label of the name made for the instance's address
    /// (`LABEL.NAME.`): `iN` for the instance at position N of a file.
    pub(crate) label: String,
    pub(crate) kind: InstanceKind,
    /// `None`: every network, and clients in none.
    pub(crate) networks: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub(crate) enum InstanceKind {
    Srv {
        host: Host,
        port: u16,
        priority: u16,
        weight: u16,
    },
    Endpoints(Vec<String>),
}

/// Parses and checks a services file (YAML).
///
/// ```
/// let services = zerorpc_discovery::announce::parse_services("
/// services:
///   - name: users.svc.example.test
///     socket_type: ROUTER
///     instances:
///       - { host: 10.0.0.7, port: 4242 }
/// ")?;
/// let zone = zerorpc_discovery::announce::render_bind_records(&services)?;
/// assert!(zone.contains("_zerorpc._tcp.users.svc.example.test. 300 IN SRV 0 0 4242 i0.users.svc.example.test."));
/// # Ok::<(), zerorpc_discovery::announce::AnnounceError>(())
/// ```
pub fn parse_services(text: &str) -> Result<Services, AnnounceError> {
    let raw: RawFile = zerorpc_yaml::from_str(text, None)?;
    check(raw)
}

fn check(raw: RawFile) -> Result<Services, AnnounceError> {
    let networks = raw.networks.0;
    check_networks(&networks)?;
    let known: HashSet<&str> = networks.iter().map(|n| n.name.as_str()).collect();
    let mut names = HashSet::new();
    let mut services = Vec::new();
    for (s, raw_service) in raw.services.into_iter().enumerate() {
        let at = |key: String| format!("services › [{s}] › {key}");
        let name = raw_service.name.0;
        if !names.insert(name.to_ascii_lowercase()) {
            return Err(invalid(
                at("name".into()),
                format!("`{name}` is announced twice"),
            ));
        }
        if raw_service.instances.is_empty() {
            return Err(invalid(
                at("instances".into()),
                "a service needs at least one instance",
            ));
        }
        let mut instances = Vec::new();
        let (mut srv, mut endpoints) = (false, false);
        for (i, raw_instance) in raw_service.instances.into_iter().enumerate() {
            let at = |key: &str| at(format!("instances › [{i}]{key}"));
            let kind = match raw_instance {
                RawInstance {
                    host: Some(host),
                    port: Some(port),
                    endpoints: None,
                    priority,
                    weight,
                    ..
                } => {
                    srv = true;
                    InstanceKind::Srv {
                        host,
                        port,
                        priority: priority.unwrap_or(0),
                        weight: weight.unwrap_or(0),
                    }
                }
                RawInstance {
                    host: None,
                    port: None,
                    priority: None,
                    weight: None,
                    endpoints: Some(list),
                    ..
                } => {
                    if list.is_empty() {
                        return Err(invalid(
                            at(" › endpoints"),
                            "the list of endpoints is empty",
                        ));
                    }
                    endpoints = true;
                    InstanceKind::Endpoints(list.into_iter().map(|e| e.0).collect())
                }
                RawInstance {
                    endpoints: Some(_), ..
                } => {
                    return Err(invalid(
                        at(""),
                        "an instance has either `host` and `port` (an SRV record, with \
                         `priority` and `weight`) or `endpoints` (listed in the TXT record), \
                         not both",
                    ));
                }
                _ => {
                    return Err(invalid(
                        at(""),
                        "an instance needs `host` and `port`, or `endpoints`",
                    ));
                }
            };
            let networks = raw_instance.networks;
            if let Some(list) = &networks {
                if list.is_empty() {
                    return Err(invalid(
                        at(" › networks"),
                        "an empty list of networks hides the instance from every client; \
                         leave `networks` out to announce it to all",
                    ));
                }
                for network in list {
                    if !known.contains(network.as_str()) {
                        return Err(invalid(
                            at(" › networks"),
                            format!(
                                "`{network}` is not a network of the `networks` section{}",
                                if known.is_empty() {
                                    " (the file has none)".to_owned()
                                } else {
                                    let mut names: Vec<&str> = known.iter().copied().collect();
                                    names.sort_unstable();
                                    format!(" ({})", names.join(", "))
                                }
                            ),
                        ));
                    }
                }
            }
            instances.push(Instance {
                label: format!("i{i}"),
                kind,
                networks,
            });
        }
        // Resolvers ignore a TXT record's endpoints when SRV records exist
        // (see the txt module), so a mix would silently lose instances.
        if srv && endpoints {
            return Err(invalid(
                at("instances".into()),
                "a service's instances are all `host`/`port` (SRV records) or all \
                 `endpoints` (the TXT record): resolvers ignore the TXT endpoints when \
                 SRV records exist",
            ));
        }
        services.push(Service {
            name,
            ttl: raw_service.ttl.unwrap_or(DEFAULT_TTL),
            socket_type: raw_service.socket_type.map(|s| s.0),
            protocol: raw_service.protocol,
            metadata: raw_service.metadata,
            instances,
        });
    }
    if services.is_empty() {
        return Err(invalid("services".into(), "the file announces no service"));
    }
    // The names made for instances given by address (`iN.NAME`) hold A or
    // AAAA records only; a service there would get them mixed with its own.
    for (s, service) in services.iter().enumerate() {
        for (i, instance) in service.instances.iter().enumerate() {
            if let InstanceKind::Srv {
                host: Host::Ip(_), ..
            } = instance.kind
            {
                let target = format!("{}.{}", instance.label, service.name).to_ascii_lowercase();
                if names.contains(&target) {
                    return Err(invalid(
                        format!("services › [{s}] › instances › [{i}]"),
                        format!(
                            "the instance's address goes at {target}, which is also a service's \
                             name"
                        ),
                    ));
                }
            }
        }
    }
    Ok(Services { networks, services })
}

fn check_networks(networks: &[Network]) -> Result<(), AnnounceError> {
    // A client in two networks would get the first one's answers from BIND
    // (views match in order) and the longest prefix's from tinydns: rather
    // than let the formats disagree, a client belongs to one network.
    for (i, network) in networks.iter().enumerate() {
        for other in &networks[..i] {
            for a in &network.clients {
                for b in &other.clients {
                    if a.contains(b) || b.contains(a) {
                        return Err(invalid(
                            format!("networks › {}", network.name),
                            format!(
                                "{a} overlaps {b} of network `{}`: a client must be in one \
                                 network at most",
                                other.name
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn invalid(key: String, message: impl Into<String>) -> AnnounceError {
    AnnounceError::Invalid {
        key,
        message: message.into(),
    }
}

/// Deserializes a string and checks it with `parse`, so that the error
/// carries the string's position.
fn checked_str<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct StrVisitor<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for StrVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            (self.parse)(text).map_err(E::custom)
        }
    }
    deserializer.deserialize_str(StrVisitor { expecting, parse })
}

/// A domain name, kept without its final dot.
struct DnsName(String);

impl<'de> Deserialize<'de> for DnsName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(
            deserializer,
            "a domain name such as users.svc.example.test",
            |text| check_dns_name(text).map(DnsName),
        )
    }
}

pub(crate) fn check_dns_name(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() {
        return Err("a domain name cannot be empty".into());
    }
    // 253 characters: 255 bytes on the wire, with the length bytes.
    if name.len() > 253 {
        return Err(format!("`{text}` is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "`{text}` has a label of {} characters; labels have 1 to 63",
                label.len()
            ));
        }
        // Letters, digits, hyphens, and underscores (as in `_zerorpc`): the
        // characters every format here can write without escaping.
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "`{text}` contains {c:?}; names use letters, digits, `-` and `_`"
            ));
        }
    }
    Ok(name.to_owned())
}

/// Where an instance listens: an address (which gets an A or AAAA record
/// under the service's name) or a host name (whose own records are
/// elsewhere).
#[derive(Clone, Debug)]
pub(crate) enum Host {
    Ip(IpAddr),
    Name(String),
}

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(
            deserializer,
            "an IP address or a host name",
            |text| match text.parse::<IpAddr>() {
                Ok(ip) => Ok(Host::Ip(ip)),
                Err(_) => check_dns_name(text).map(Host::Name),
            },
        )
    }
}

/// The ZeroMQ socket types a service may bind.
const SOCKET_TYPES: &[&str] = &[
    "ROUTER", "DEALER", "REP", "REQ", "PUB", "SUB", "XPUB", "XSUB", "PUSH", "PULL", "PAIR",
];

struct SocketType(String);

impl<'de> Deserialize<'de> for SocketType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(
            deserializer,
            "a ZeroMQ socket type such as ROUTER",
            |text| {
                if SOCKET_TYPES.contains(&text) {
                    Ok(SocketType(text.to_owned()))
                } else {
                    Err(format!(
                        "unknown socket type `{text}`, expected one of {}",
                        SOCKET_TYPES.join(", ")
                    ))
                }
            },
        )
    }
}

/// An endpoint for the TXT record: one a client can connect to as it is,
/// not another name to resolve.
struct TxtEndpoint(String);

impl<'de> Deserialize<'de> for TxtEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(
            deserializer,
            "a ZeroMQ endpoint such as tcp://10.0.0.7:4242",
            |text| {
                let endpoint = zerorpc::Endpoint::parse(text)
                    .map_err(|e| format!("`{text}`: {}", e.reason()))?;
                if endpoint.is_zmq() {
                    Ok(TxtEndpoint(text.to_owned()))
                } else {
                    Err(format!(
                        "`{text}` is a name to resolve; a TXT record lists ZeroMQ endpoints"
                    ))
                }
            },
        )
    }
}

/// Client addresses: an address and a prefix length, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub(crate) addr: IpAddr,
    pub(crate) len: u8,
}

impl Cidr {
    fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an address or address/length"))?;
        let width = width(addr);
        let len = match len {
            None => width,
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= width)
                .ok_or_else(|| format!("`{text}`: the prefix length is 0 to {width}"))?,
        };
        let cidr = Cidr { addr, len };
        if cidr.network_bits() != bits(addr) {
            return Err(format!(
                "`{text}` has bits set after its first {len}; the network is {}",
                Cidr {
                    addr: from_bits(addr, cidr.network_bits()),
                    len
                }
            ));
        }
        Ok(cidr)
    }

    fn network_bits(&self) -> u128 {
        mask(bits(self.addr), width(self.addr), self.len)
    }

    /// Whether every address of `other` is in `self`.
    pub(crate) fn contains(&self, other: &Cidr) -> bool {
        self.addr.is_ipv4() == other.addr.is_ipv4()
            && self.len <= other.len
            && mask(bits(other.addr), width(other.addr), self.len) == self.network_bits()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn width(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        // The bits came from an IPv4 address, so they fit.
        IpAddr::V4(_) => IpAddr::V4((bits as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(bits.into()),
    }
}

/// The first `len` of `width` bits of `value`.
fn mask(value: u128, width: u8, len: u8) -> u128 {
    let host = u32::from(width - len);
    if host >= 128 {
        0
    } else {
        value >> host << host
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_str(
            deserializer,
            "client addresses such as 10.1.0.0/16",
            Cidr::parse,
        )
    }
}

/// The `networks` section, in file order: BIND matches views in order, so
/// the output follows the file.
#[derive(Default)]
struct Networks(Vec<Network>);

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NetworksVisitor;
        impl<'de> Visitor<'de> for NetworksVisitor {
            type Value = Networks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of network names to lists of client addresses")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Networks, A::Error> {
                let mut networks: Vec<Network> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if name == DEFAULT_VIEW {
                        return Err(de::Error::custom(format!(
                            "`{DEFAULT_VIEW}` is the name of the answers to clients in no \
                             network; choose another name"
                        )));
                    }
                    if name.is_empty()
                        || name.len() > 63
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        return Err(de::Error::custom(format!(
                            "network name `{name}`: use 1 to 63 letters, digits, `-` and `_` \
                             (it names files and BIND views)"
                        )));
                    }
                    if networks.iter().any(|n| n.name == name) {
                        return Err(de::Error::custom(format!(
                            "network `{name}` is defined twice"
                        )));
                    }
                    let clients: Vec<Cidr> = map.next_value()?;
                    if clients.is_empty() {
                        return Err(de::Error::custom(format!(
                            "network `{name}` lists no client addresses"
                        )));
                    }
                    networks.push(Network { name, clients });
                }
                Ok(Networks(networks))
            }
        }
        deserializer.deserialize_map(NetworksVisitor)
    }
}
