//! What DNS says about a service name, for people: the records found and
//! the endpoints a client would connect to (`zerorpc resolve`).

use serde::Serialize;

use crate::txt::TxtRecord;

/// The records of a service name and what a client makes of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// The name looked up, absolute (`users.svc.example.test.`).
    pub name: String,
    /// The SRV records at `_zerorpc._tcp.NAME`, lowest priority first.
    pub srv: Vec<SrvEntry>,
    /// The service's TXT record, when it has one that parses.
    pub txt: Option<TxtEntry>,
    /// Why the TXT record was left out, when one exists but does not parse.
    pub txt_error: Option<String>,
    /// The endpoints a client connects to now, in order.
    pub endpoints: Vec<String>,
}

/// One SRV record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SrvEntry {
    /// Lower is preferred.
    pub priority: u16,
    /// Share among the targets of one priority.
    pub weight: u16,
    /// The port the target serves on.
    pub port: u16,
    /// The host, absolute.
    pub target: String,
    /// Seconds the record may be cached.
    pub ttl: u32,
}

/// The TXT record describing the service.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TxtEntry {
    /// The record's JSON, parsed.
    pub record: TxtRecord,
    /// Seconds the record may be cached.
    pub ttl: u32,
}
