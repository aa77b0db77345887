//! Service discovery for zerorpc: endpoints named `dns:NAME`, resolved
//! through DNS SRV and TXT records, and services announced in DNS.
//!
//! This crate is the home of DNS discovery, which plugs into the core
//! crate's endpoint resolution step (`zerorpc::ResolveEndpoint`). It depends
//! on the core crate and on `hickory-resolver`; the core crate knows nothing
//! of DNS.
//!
//! [`txt`] defines the TXT record schema shared by resolving and announcing;
//! [`announce`] turns a services file into records for a DNS server.

pub mod announce;
pub mod txt;
