//! Service discovery for zerorpc: endpoints named `dns:NAME`, resolved
//! through DNS SRV and TXT records, and services announced in DNS.
//!
//! This crate is the home of DNS discovery, which plugs into the core
//! crate's endpoint resolution step (`zerorpc::ResolveEndpoint`). It depends
//! on the core crate and on `hickory-resolver`; the core crate knows nothing
//! of DNS.
//!
//! [`DnsResolver`] resolves `dns:NAME` endpoints and follows their records
//! as they change; one line plugs it into a client or a server:
//!
//! ```no_run
//! use std::sync::Arc;
//! use zerorpc::Client;
//! use zerorpc_discovery::DnsResolver;
//!
//! let resolver = DnsResolver::builder()
//!     .name_server("127.0.0.1:5353".parse()?)
//!     .build()?;
//! let client = Client::builder()
//!     .resolver(Arc::new(resolver))
//!     .connect("dns:users.svc.example.test")
//!     .build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`txt`] defines the TXT record schema shared by resolving and announcing;
//! [`announce`] turns a services file into records for a DNS server.
//! [`Updater`] adds such records to a zone, and withdraws them, with
//! RFC 2136 dynamic updates signed with a TSIG key ([`TsigKey`], read from
//! a BIND key file); [`Registration`] keeps a running server's records
//! there while it lives:
//!
//! ```no_run
//! # use zerorpc::Server;
//! # struct Users;
//! # #[zerorpc::service] impl Users { pub fn ping(&self) -> bool { true } }
//! use zerorpc_discovery::{Registration, TsigKey, Updater};
//!
//! let server = Server::builder(Users).bind("tcp://0.0.0.0:*").build()?;
//! let key = TsigKey::from_file("/etc/bind/zerorpc-update.key")?;
//! let updater = Updater::new("10.0.0.53:53".parse()?, "svc.example.test", key)?;
//! let registration = Registration::builder(updater, "users.svc.example.test")
//!     .register(server.bound_endpoints())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `docs/discovery.md` describes the records, the precedence of settings
//! and what a user sees when something fails.

pub mod announce;
mod inspect;
mod register;
mod resolver;
mod select;
mod thread;
pub mod txt;

pub use inspect::{Inspection, SrvEntry, TxtEntry};
pub use register::{
    DEFAULT_REFRESH, DEFAULT_REGISTRATION_TTL, DEFAULT_UPDATE_TIMEOUT, KeyFileError, Registration,
    RegistrationBuilder, TsigKey, UpdateError, Updater,
};
pub use resolver::{
    BuildError, DEFAULT_TTL_CEILING, DEFAULT_TTL_FLOOR, DNS_SERVER_VAR, DnsResolver,
    DnsResolverBuilder, SRV_PREFIX,
};
