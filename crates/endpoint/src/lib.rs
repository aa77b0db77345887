//! What an endpoint is, in one place: the transport, the core, the hub and
//! the command-line tool all parse endpoints here, so that they agree.
//!
//! An endpoint is either a ZeroMQ endpoint, `TRANSPORT://ADDRESS` with a
//! transport ZeroMQ knows (`tcp://127.0.0.1:4242`, `ipc:///tmp/socket`,
//! `inproc://name`...), or a **name** for a resolver to turn into ZeroMQ
//! endpoints, `SCHEME:NAME` (`dns:users.svc.example.test`). Parsing checks
//! the shape only: whether an address can be bound, or a name resolved, is
//! found out when it is used.
//!
//! ```
//! use zerorpc_endpoint::{Endpoint, Transport};
//!
//! let direct: Endpoint = "tcp://127.0.0.1:4242".parse()?;
//! assert_eq!(direct.transport(), Some(Transport::Tcp));
//!
//! let named: Endpoint = "dns:users.svc.example.test".parse()?;
//! assert_eq!(named.scheme(), "dns");
//! assert_eq!(named.transport(), None);
//!
//! let error = "127.0.0.1:4242".parse::<Endpoint>().unwrap_err();
//! assert!(error.to_string().contains("expected TRANSPORT://ADDRESS"));
//! # Ok::<(), zerorpc_endpoint::ParseError>(())
//! ```
//!
//! This crate has no dependencies beyond `thiserror` and no feature flags.

#![doc(test(attr(deny(warnings))))]

use std::fmt;
use std::str::FromStr;

/// A ZeroMQ transport: the part of an endpoint before `://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// `tcp://HOST:PORT`.
    Tcp,
    /// `ipc://PATH`, a Unix domain socket.
    Ipc,
    /// `inproc://NAME`, between sockets of one process.
    Inproc,
    /// `pgm://`, reliable multicast (publish/subscribe only).
    Pgm,
    /// `epgm://`, reliable multicast over UDP (publish/subscribe only).
    Epgm,
    /// `ws://`, WebSocket.
    Ws,
    /// `wss://`, WebSocket over TLS.
    Wss,
    /// `tipc://`, Linux TIPC.
    Tipc,
    /// `vmci://`, VMware sockets.
    Vmci,
    /// `udp://` (radio/dish sockets only).
    Udp,
}

impl Transport {
    const ALL: [Transport; 10] = [
        Transport::Tcp,
        Transport::Ipc,
        Transport::Inproc,
        Transport::Pgm,
        Transport::Epgm,
        Transport::Ws,
        Transport::Wss,
        Transport::Tipc,
        Transport::Vmci,
        Transport::Udp,
    ];

    /// The scheme as written in endpoints, e.g. `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ipc => "ipc",
            Transport::Inproc => "inproc",
            Transport::Pgm => "pgm",
            Transport::Epgm => "epgm",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
            Transport::Tipc => "tipc",
            Transport::Vmci => "vmci",
            Transport::Udp => "udp",
        }
    }

    /// Whether the transport carries connections between two peers, as the
    /// RPC patterns (DEALER, ROUTER) need; multicast and UDP do not.
    pub fn is_connection_oriented(self) -> bool {
        !matches!(self, Transport::Pgm | Transport::Epgm | Transport::Udp)
    }

    fn from_scheme(scheme: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.as_str() == scheme)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An endpoint as a user writes it: a ZeroMQ endpoint, or a name for a
/// resolver. See the [crate documentation](crate).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    text: String,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Zmq {
        transport: Transport,
        address: usize,
    },
    Name {
        colon: usize,
    },
}

impl Endpoint {
    /// Parses `text`; the same as `text.parse()`.
    pub fn parse(text: &str) -> Result<Endpoint, ParseError> {
        text.parse()
    }

    /// The endpoint as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The ZeroMQ transport, or `None` for a name.
    pub fn transport(&self) -> Option<Transport> {
        match self.kind {
            Kind::Zmq { transport, .. } => Some(transport),
            Kind::Name { .. } => None,
        }
    }

    /// Whether this is a ZeroMQ endpoint, usable as it is.
    pub fn is_zmq(&self) -> bool {
        self.transport().is_some()
    }

    /// The scheme: the transport (`tcp`) or the resolver's scheme (`dns`).
    pub fn scheme(&self) -> &str {
        match self.kind {
            Kind::Zmq { transport, .. } => transport.as_str(),
            Kind::Name { colon } => &self.text[..colon],
        }
    }

    /// What follows the scheme: the ZeroMQ address (`127.0.0.1:4242`) or
    /// the name (`users.svc.example.test`).
    pub fn address(&self) -> &str {
        match self.kind {
            Kind::Zmq { address, .. } => &self.text[address..],
            Kind::Name { colon } => &self.text[colon + 1..],
        }
    }
}

impl FromStr for Endpoint {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Endpoint, ParseError> {
        let error = |why: Why| ParseError {
            endpoint: text.to_owned(),
            why,
        };
        if let Some((scheme, address)) = text.split_once("://") {
            let transport = Transport::from_scheme(scheme)
                .ok_or_else(|| error(Why::UnknownTransport(scheme.to_owned())))?;
            if address.is_empty() {
                return Err(error(Why::EmptyAddress(transport)));
            }
            return Ok(Endpoint {
                text: text.to_owned(),
                kind: Kind::Zmq {
                    transport,
                    address: scheme.len() + 3,
                },
            });
        }
        match text.split_once(':') {
            Some((scheme, name)) if is_scheme(scheme) => {
                if name.is_empty() {
                    return Err(error(Why::EmptyName(scheme.to_owned())));
                }
                if Transport::from_scheme(scheme).is_some() {
                    // `tcp:host:port` is a slip for `tcp://host:port`.
                    return Err(error(Why::Shape));
                }
                if name.bytes().all(|b| b.is_ascii_digit()) {
                    // `localhost:4242` is a host and a port, not a name.
                    return Err(error(Why::HostPort(text.to_owned())));
                }
                Ok(Endpoint {
                    text: text.to_owned(),
                    kind: Kind::Name {
                        colon: scheme.len(),
                    },
                })
            }
            _ => Err(error(Why::Shape)),
        }
    }
}

/// RFC 3986's scheme grammar: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An endpoint that is neither a ZeroMQ endpoint nor a name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad endpoint {endpoint:?}: {why}")]
pub struct ParseError {
    endpoint: String,
    why: Why,
}

impl ParseError {
    /// The endpoint as written.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What is wrong with it, without the endpoint.
    pub fn reason(&self) -> String {
        self.why.to_string()
    }

    /// Whether it has the shape `SCHEME://ADDRESS` but a transport ZeroMQ
    /// does not know (a typo, or one this build lacks).
    pub fn is_unknown_transport(&self) -> bool {
        matches!(self.why, Why::UnknownTransport(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum Why {
    #[error(
        "expected TRANSPORT://ADDRESS (e.g. tcp://127.0.0.1:4242, ipc:///tmp/socket) or a name such as dns:NAME"
    )]
    Shape,
    #[error("expected TRANSPORT://ADDRESS: did you mean tcp://{0}?")]
    HostPort(String),
    #[error(
        "unknown transport {0:?} (ZeroMQ knows tcp, ipc, inproc, pgm, epgm, ws, wss, tipc, vmci, udp)"
    )]
    UnknownTransport(String),
    #[error("the address after {0}:// is empty")]
    EmptyAddress(Transport),
    #[error("the name after {0}: is empty")]
    EmptyName(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Endpoint {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
    }

    fn reason(text: &str) -> String {
        text.parse::<Endpoint>().expect_err(text).to_string()
    }

    #[test]
    fn every_zeromq_transport_parses_with_its_address() {
        for transport in Transport::ALL {
            let text = format!("{transport}://somewhere:1");
            let endpoint = ok(&text);
            assert_eq!(endpoint.transport(), Some(transport));
            assert_eq!(endpoint.scheme(), transport.as_str());
            assert_eq!(endpoint.address(), "somewhere:1");
            assert_eq!(endpoint.to_string(), text);
            assert!(endpoint.is_zmq());
        }
        assert_eq!(ok("tcp://*:4242").address(), "*:4242");
        assert_eq!(ok("ipc:///tmp/a:b").address(), "/tmp/a:b");
    }

    #[test]
    fn names_carry_their_scheme_for_a_resolver() {
        let endpoint = ok("dns:users.svc.example.test");
        assert_eq!(endpoint.scheme(), "dns");
        assert_eq!(endpoint.address(), "users.svc.example.test");
        assert_eq!(endpoint.transport(), None);
        assert!(!endpoint.is_zmq());
        assert_eq!(ok("consul+http:users").scheme(), "consul+http");
    }

    #[test]
    fn malformed_endpoints_say_what_was_expected() {
        assert!(reason("127.0.0.1:4242").contains("expected TRANSPORT://ADDRESS"));
        assert!(reason("localhost:4242").contains("did you mean tcp://localhost:4242?"));
        assert!(reason("").contains("expected TRANSPORT://ADDRESS"));
        assert!(reason("tcp:127.0.0.1:4242").contains("expected TRANSPORT://ADDRESS"));
        assert!(reason("foo://x").contains("unknown transport \"foo\""));
        assert!(
            Endpoint::parse("foo://x")
                .unwrap_err()
                .is_unknown_transport()
        );
        assert!(reason("tcp://").contains("the address after tcp:// is empty"));
        assert!(reason("dns:").contains("the name after dns: is empty"));
        assert!(reason("1dns:x").contains("expected TRANSPORT://ADDRESS"));
        assert_eq!(
            reason("foo://x"),
            "bad endpoint \"foo://x\": unknown transport \"foo\" (ZeroMQ knows tcp, ipc, inproc, pgm, epgm, ws, wss, tipc, vmci, udp)"
        );
    }

    #[test]
    fn only_rpc_capable_transports_are_connection_oriented() {
        assert!(Transport::Tcp.is_connection_oriented());
        assert!(Transport::Ipc.is_connection_oriented());
        assert!(!Transport::Pgm.is_connection_oriented());
        assert!(!Transport::Udp.is_connection_oriented());
    }
}
