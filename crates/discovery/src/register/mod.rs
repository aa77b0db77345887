//! Dynamic registration: services added to and withdrawn from a zone with
//! RFC 2136 UPDATE messages signed with a TSIG key (RFC 8945).
//!
//! [`Updater`] applies the records of a services file (the records
//! `zerorpc announce` prints, see [`crate::announce`]); [`Registration`]
//! keeps a running server's records in the zone while it lives.
//!
//! What an update adds, replaces and removes is told on [`Updater`].

mod exchange;
mod key;
mod registration;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::{A, AAAA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

pub use key::{KeyFileError, TsigKey};
pub use registration::{
    DEFAULT_REFRESH, DEFAULT_REGISTRATION_TTL, Registration, RegistrationBuilder,
};

use crate::SRV_PREFIX;
use crate::announce::{self, AnnounceError, Host, InstanceKind, Service, Services};
use exchange::Session;

/// How long one exchange with the name server may take, unless set.
pub const DEFAULT_UPDATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why records could not be added to or withdrawn from a zone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The name server does not accept connections.
    #[error("cannot reach name server {server}")]
    Unreachable {
        /// The name server.
        server: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed in the middle of an exchange.
    #[error("the connection to name server {server} failed")]
    Connection {
        /// The name server.
        server: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No answer in time.
    #[error("name server {server} did not answer within {timeout:?}")]
    Timeout {
        /// The name server.
        server: SocketAddr,
        /// The time waited.
        timeout: Duration,
    },
    /// The server refused the update (REFUSED): the zone is not its to
    /// update, or its policy does not let the key change those names.
    #[error(
        "name server {server} refused the update of zone {zone} signed with key {key} (REFUSED): \
         the zone is not a primary zone there, or its update-policy/allow-update does not grant \
         this key these names"
    )]
    Refused {
        /// The name server.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// The key's name.
        key: String,
    },
    /// The server did not accept the key (NOTAUTH): a wrong secret, an
    /// unknown key, clocks apart, or a server not authoritative for the
    /// zone.
    #[error("name server {server} did not accept key {key} for zone {zone} ({answer})")]
    NotAuthorized {
        /// The name server.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// The key's name.
        key: String,
        /// The response code and the TSIG error, explained.
        answer: String,
    },
    /// Any other refusal (NOTZONE, SERVFAIL...).
    #[error("name server {server} answered {answer} for zone {zone}")]
    Rejected {
        /// The name server.
        server: SocketAddr,
        /// The zone.
        zone: String,
        /// The response code, explained.
        answer: String,
    },
    /// An answer that cannot be read or trusted.
    #[error("bad answer from name server {server}: {why}")]
    BadAnswer {
        /// The name server.
        server: SocketAddr,
        /// What is wrong with it.
        why: String,
    },
    /// What was asked for cannot be expressed as an update of the zone.
    #[error("{0}")]
    Invalid(String),
    /// A services file the update cannot apply.
    #[error(transparent)]
    Announce(#[from] AnnounceError),
    /// The registration's thread could not be started or has stopped.
    #[error("the DNS registration's thread {0}")]
    Thread(String),
}

/// Adds and withdraws the records of services in one zone, through its
/// primary name server, with UPDATE messages signed with a TSIG key.
///
/// ```no_run
/// use zerorpc_discovery::{TsigKey, Updater, announce};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let key = TsigKey::from_file("/etc/bind/zerorpc-update.key")?;
/// let updater = Updater::new("127.0.0.1:53".parse()?, "svc.example.test", key)?;
/// let services = announce::parse_services(&std::fs::read_to_string("services.yml")?)?;
/// updater.register(&services).await?;
/// // ... and when the services go away:
/// updater.withdraw(&services).await?;
/// # Ok(())
/// # }
/// ```
///
/// Each service is one UPDATE, which the server applies whole or not at
/// all. The methods need a tokio runtime.
///
/// # Whose records are whose
///
/// Several servers (and files) announce instances of one service, so an
/// update touches only what it owns:
///
/// - the address records at its instances' names (`LABEL.NAME.`), which
///   it replaces;
/// - the SRV records at `_zerorpc._tcp.NAME.` whose target is at or under
///   one of those names, or is the host name and port of one of its
///   instances: adding replaces them (so an instance restarted on another
///   port replaces its record rather than adding a second one), withdrawing
///   removes them;
/// - the TXT record at `NAME.`, the service's description, which adding
///   replaces (the last writer wins; instances of one service describe it
///   alike) and withdrawing removes only when no SRV record is left (a
///   prerequisite the server checks), so the last instance out takes it
///   along.
#[derive(Clone, Debug)]
pub struct Updater {
    server: SocketAddr,
    zone: Name,
    key: TsigKey,
    timeout: Duration,
}

impl Updater {
    /// Updates `zone` (e.g. `svc.example.test`) at its primary name server
    /// `server`, signing with `key`.
    pub fn new(server: SocketAddr, zone: &str, key: TsigKey) -> Result<Updater, UpdateError> {
        let zone =
            absolute_name(zone).map_err(|why| UpdateError::Invalid(format!("zone: {why}")))?;
        Ok(Updater {
            server,
            zone,
            key,
            timeout: DEFAULT_UPDATE_TIMEOUT,
        })
    }

    /// How long one exchange with the server may take
    /// ([`DEFAULT_UPDATE_TIMEOUT`] unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The name server updated.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The zone updated, without its final dot.
    pub fn zone(&self) -> String {
        display(&self.zone)
    }

    /// Adds (or replaces) the records of every service of the file.
    pub async fn register(&self, services: &Services) -> Result<(), UpdateError> {
        let plans = self.plans(services)?;
        let mut session = self.session().await?;
        for plan in &plans {
            self.add(&mut session, plan).await?;
        }
        Ok(())
    }

    /// Withdraws the records of every service of the file.
    pub async fn withdraw(&self, services: &Services) -> Result<(), UpdateError> {
        let plans = self.plans(services)?;
        let mut session = self.session().await?;
        for plan in &plans {
            self.remove(&mut session, plan).await?;
        }
        Ok(())
    }

    /// Whether the zone holds every record of the services.
    pub(crate) async fn is_registered(&self, services: &Services) -> Result<bool, UpdateError> {
        let plans = self.plans(services)?;
        let mut session = self.session().await?;
        for plan in &plans {
            if !self.holds(&mut session, plan).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn session(&self) -> Result<Session, UpdateError> {
        Session::open(self.server, &self.zone(), &self.key, self.timeout).await
    }

    fn plans(&self, services: &Services) -> Result<Vec<Plan>, UpdateError> {
        if services.has_networks() {
            return Err(UpdateError::Invalid(
                "the services file has networks, which BIND answers with views: an update \
                 changes one zone, so announce a file without networks"
                    .into(),
            ));
        }
        services
            .services
            .iter()
            .map(|service| Plan::new(service, &self.zone))
            .collect()
    }

    fn message(&self) -> Message {
        let mut message = Message::query();
        let mut zone = Query::new();
        zone.set_name(self.zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        message.add_zone(zone);
        message
    }

    async fn add(&self, session: &mut Session, plan: &Plan) -> Result<(), UpdateError> {
        let existing = session.query(&plan.srv_name, RecordType::SRV).await?;
        let stale: Vec<&Record> = existing
            .iter()
            .filter(|record| {
                plan.owns_srv(record) && !plan.srv.iter().any(|ours| same_data(ours, record))
            })
            .collect();
        let mut message = self.message();
        for record in &stale {
            message.add_update(delete_record(record));
        }
        for name in plan.address_names(&stale) {
            message.add_update(delete_rrset(&name, RecordType::A));
            message.add_update(delete_rrset(&name, RecordType::AAAA));
        }
        if plan.txt.is_some() {
            message.add_update(delete_rrset(&plan.name, RecordType::TXT));
        }
        message.add_updates(plan.records().cloned());
        expect_success(session.update(message).await?)
    }

    async fn remove(&self, session: &mut Session, plan: &Plan) -> Result<(), UpdateError> {
        let existing = session.query(&plan.srv_name, RecordType::SRV).await?;
        let ours: Vec<&Record> = existing.iter().filter(|r| plan.owns_srv(r)).collect();
        let mut message = self.message();
        for record in &ours {
            message.add_update(delete_record(record));
        }
        for name in plan.address_names(&ours) {
            message.add_update(delete_rrset(&name, RecordType::A));
            message.add_update(delete_rrset(&name, RecordType::AAAA));
        }
        expect_success(session.update(message).await?)?;
        // The description goes with the last instance: only if no SRV
        // record is left (RFC 2136 §2.4.3), checked by the server.
        let mut message = self.message();
        let mut none_left = Record::update0(plan.srv_name.clone(), 0, RecordType::SRV);
        none_left.dns_class = DNSClass::NONE;
        message.add_pre_requisite(none_left);
        message.add_update(delete_rrset(&plan.name, RecordType::TXT));
        match session.update(message).await? {
            // YXRRSET: other instances remain, and so does their description.
            ResponseCode::NoError | ResponseCode::YXRRSet => Ok(()),
            code => expect_success(code),
        }
    }

    async fn holds(&self, session: &mut Session, plan: &Plan) -> Result<bool, UpdateError> {
        let mut wanted: Vec<&Record> = plan.records().collect();
        let mut names: Vec<(Name, RecordType)> = Vec::new();
        for record in &wanted {
            let key = (record.name.clone(), record.record_type());
            if !names.contains(&key) {
                names.push(key);
            }
        }
        for (name, kind) in names {
            let present = session.query(&name, kind).await?;
            wanted.retain(|record| {
                record.name != name
                    || record.record_type() != kind
                    || !present.iter().any(|p| same_data(p, record))
            });
        }
        Ok(wanted.is_empty())
    }
}

fn expect_success(code: ResponseCode) -> Result<(), UpdateError> {
    match code {
        ResponseCode::NoError => Ok(()),
        // `Session::update` lets through only the codes of prerequisites,
        // and these updates have none.
        other => Err(UpdateError::Invalid(format!(
            "unexpected answer {} to an update without prerequisites",
            exchange::mnemonic(other)
        ))),
    }
}

/// The records of one service, as hickory records, and what it owns.
#[derive(Debug)]
struct Plan {
    name: Name,
    srv_name: Name,
    srv: Vec<Record>,
    addresses: Vec<Record>,
    txt: Option<Record>,
    /// The names made for its instances given by address (`LABEL.NAME.`):
    /// SRV targets at or under them are its own.
    owned: Vec<Name>,
    /// The host names and ports of its instances given by host name.
    named_targets: Vec<(Name, u16)>,
}

impl Plan {
    fn new(service: &Service, zone: &Name) -> Result<Plan, UpdateError> {
        let name = absolute_name(&service.name).map_err(UpdateError::Invalid)?;
        let srv_name = Name::from_ascii(SRV_PREFIX)
            .and_then(|prefix| prefix.append_domain(&name))
            .map_err(|error| UpdateError::Invalid(format!("{SRV_PREFIX}.{name}: {error}")))?;
        let mut plan = Plan {
            name,
            srv_name,
            srv: Vec::new(),
            addresses: Vec::new(),
            txt: None,
            owned: Vec::new(),
            named_targets: Vec::new(),
        };
        for instance in &service.instances {
            if let InstanceKind::Srv { host, port, .. } = &instance.kind {
                match host {
                    Host::Ip(_) => {
                        let owned = absolute_name(&format!("{}.{}", instance.label, service.name))
                            .map_err(UpdateError::Invalid)?;
                        if !plan.owned.contains(&owned) {
                            plan.owned.push(owned);
                        }
                    }
                    Host::Name(host) => plan
                        .named_targets
                        .push((absolute_name(host).map_err(UpdateError::Invalid)?, *port)),
                }
            }
        }
        for record in service.records(|_| true) {
            let record = to_hickory(&record)?;
            if !zone.zone_of(&record.name) {
                return Err(UpdateError::Invalid(format!(
                    "{} is not in zone {}",
                    display(&record.name),
                    display(zone)
                )));
            }
            match record.record_type() {
                RecordType::SRV => plan.srv.push(record),
                RecordType::TXT => plan.txt = Some(record),
                _ => plan.addresses.push(record),
            }
        }
        Ok(plan)
    }

    /// Every record the service adds.
    fn records(&self) -> impl Iterator<Item = &Record> {
        self.srv
            .iter()
            .chain(&self.addresses)
            .chain(self.txt.as_ref())
    }

    /// Whether an SRV record of the zone is one of this service's.
    fn owns_srv(&self, record: &Record) -> bool {
        let RData::SRV(srv) = &record.data else {
            return false;
        };
        self.owned.iter().any(|owned| owned.zone_of(&srv.target))
            || self
                .named_targets
                .iter()
                .any(|(target, port)| *target == srv.target && *port == srv.port)
    }

    /// The names whose address records go: its own, and the targets of
    /// `srv` records under them (those of an earlier run).
    fn address_names(&self, srv: &[&Record]) -> Vec<Name> {
        let mut names = self.owned.clone();
        for record in srv {
            if let RData::SRV(srv) = &record.data
                && self.owned.iter().any(|owned| owned.zone_of(&srv.target))
                && !names.contains(&srv.target)
            {
                names.push(srv.target.clone());
            }
        }
        names
    }
}

/// Same name, type and data (TTLs aside).
fn same_data(a: &Record, b: &Record) -> bool {
    a.name == b.name && a.data == b.data
}

/// RFC 2136 §2.5.4: delete this record (class NONE, TTL 0).
fn delete_record(record: &Record) -> Record {
    let mut delete = record.clone();
    delete.dns_class = DNSClass::NONE;
    delete.ttl = 0;
    delete
}

/// RFC 2136 §2.5.2: delete every record of `name` and `kind` (class ANY).
fn delete_rrset(name: &Name, kind: RecordType) -> Record {
    let mut delete = Record::update0(name.clone(), 0, kind);
    delete.dns_class = DNSClass::ANY;
    delete
}

fn to_hickory(record: &announce::Record) -> Result<Record, UpdateError> {
    let owner = absolute_name(&record.owner).map_err(UpdateError::Invalid)?;
    let data = match &record.data {
        announce::Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(
            *priority,
            *weight,
            *port,
            absolute_name(target).map_err(UpdateError::Invalid)?,
        )),
        announce::Data::A(ip) => RData::A(A(*ip)),
        announce::Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        announce::Data::Txt(strings) => RData::TXT(TXT::new(strings.clone())),
    };
    Ok(Record::from_rdata(owner, record.ttl, data))
}

fn absolute_name(text: &str) -> Result<Name, String> {
    let mut name =
        Name::from_ascii(text).map_err(|error| format!("{text:?} is not a DNS name: {error}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// A name as users write it, without the final dot.
fn display(name: &Name) -> String {
    name.to_string().trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests;
