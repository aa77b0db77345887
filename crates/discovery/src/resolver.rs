//! [`DnsResolver`]: `dns:NAME` endpoints resolved through SRV and TXT
//! records, answered at once and followed as the records change.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};
use tokio::sync::mpsc;
use zerorpc::{Change, Changes, Endpoint, Literal, ResolveEndpoint};

use crate::inspect::{Inspection, SrvEntry, TxtEntry};
use crate::select::{Random, Weighted, order};
use crate::thread::DnsThread;
use crate::txt::TxtRecord;

/// The environment variable naming the DNS server (`IP:PORT`) when the
/// builder names none: see [`DnsResolverBuilder::name_server`].
pub const DNS_SERVER_VAR: &str = "ZERORPC_DNS_SERVER";

/// The service and protocol labels of the SRV records: `_zerorpc._tcp.NAME`.
pub const SRV_PREFIX: &str = "_zerorpc._tcp";

/// The default lower bound of the time an answer is kept.
pub const DEFAULT_TTL_FLOOR: Duration = Duration::from_secs(5);

/// The default upper bound of the time an answer is kept.
pub const DEFAULT_TTL_CEILING: Duration = Duration::from_secs(300);

/// Resolves `dns:NAME` endpoints through DNS, and passes every other
/// endpoint to [`zerorpc::Literal`].
///
/// ```no_run
/// use std::sync::Arc;
/// use zerorpc::Client;
/// use zerorpc_discovery::DnsResolver;
///
/// let client = Client::builder()
///     .resolver(Arc::new(DnsResolver::system()?))
///     .connect("dns:users.svc.example.test")
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # What a name resolves to
///
/// SRV records at `_zerorpc._tcp.NAME` give the instances as targets and
/// ports; their targets are looked up (A, else AAAA) and each address
/// becomes `tcp://IP:PORT` (`tcp://[IPv6]:PORT`). Only the targets of
/// **one priority** are connected, the best (lowest) one that is
/// reachable: the client connects to all of its targets, in the order of
/// RFC 2782's weighted choice, and spreads its calls over them by load
/// (fewest calls in flight), so weights order the connections but do not
/// share out calls. Lower priorities are the fail-over: when the records
/// have several priorities, each lookup probes the targets with a TCP
/// connection (closed at once, within 1 s), and a priority none of whose
/// targets accepts one is passed over for the next; if none accepts, the
/// best priority is used all the same. So fail-over and fail-back happen
/// at the next lookup, within a TTL. Without SRV records, the TXT record
/// at `NAME` ([`TxtRecord`]) lists the endpoints. Names are taken as
/// absolute (`NAME.`): no search domain is tried.
///
/// # Blocking and threads
///
/// Each `DnsResolver` owns one thread running a small tokio runtime, on
/// which every lookup runs. [`resolve`](ResolveEndpoint::resolve) blocks
/// its caller until the first answer is in (at most the query timeout
/// times the attempts, per record looked up), because a client or server
/// builder applies only what a resolver has ready at build time. It is
/// safe to call from synchronous code and from inside any tokio runtime
/// (the lookups run on the resolver's own thread, so a current-thread
/// runtime does not deadlock); inside one, it blocks a worker as long as
/// the lookup takes, as a synchronous `build()` would.
///
/// # Later changes
///
/// An answer is kept for the smallest TTL of the records it came from,
/// clamped to [`ttl_floor`](DnsResolverBuilder::ttl_floor) and
/// [`ttl_ceiling`](DnsResolverBuilder::ttl_ceiling), then looked up again:
/// new endpoints are inserted, then vanished ones removed (a client lets
/// the calls in flight there finish). When a later lookup fails (DNS
/// down, a timeout, the name gone, a malformed record), the last good
/// answer stays, one warning is logged until a lookup succeeds again (then
/// one info line; the retries in between are logged at debug level), and
/// the lookup is retried every floor interval.
pub struct DnsResolver {
    shared: Arc<Shared>,
    thread: DnsThread,
}

/// What the lookups of every name share.
struct Shared {
    resolver: TokioResolver,
    floor: Duration,
    ceiling: Duration,
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsResolver")
            .field("ttl_floor", &self.shared.floor)
            .field("ttl_ceiling", &self.shared.ceiling)
            .finish_non_exhaustive()
    }
}

impl DnsResolver {
    /// A resolver asking the name server of [`DNS_SERVER_VAR`] if it is
    /// set, else the system's (`/etc/resolv.conf`), with the default
    /// bounds: `DnsResolver::builder().build()`.
    pub fn system() -> Result<DnsResolver, BuildError> {
        DnsResolver::builder().build()
    }

    /// A builder, to choose the name server, the TTL bounds or the query
    /// timeout.
    pub fn builder() -> DnsResolverBuilder {
        DnsResolverBuilder {
            name_server: None,
            floor: DEFAULT_TTL_FLOOR,
            ceiling: DEFAULT_TTL_CEILING,
            timeout: None,
        }
    }

    /// What DNS says about service `name` (without `dns:`): its SRV and
    /// TXT records and the endpoints a client would connect to now. For
    /// people and tools (`zerorpc resolve`); clients use
    /// [`resolve`](ResolveEndpoint::resolve).
    pub fn inspect(&self, name: &str) -> zerorpc::Result<Inspection> {
        let endpoint = format!("dns:{name}");
        let bad = |why: String| zerorpc::Error::bad_endpoint(&endpoint, why);
        let absolute_name = absolute(name).map_err(bad)?;
        let shared = self.shared.clone();
        self.thread
            .run(async move { shared.inspect(&absolute_name).await })
            .ok_or_else(|| bad("the DNS resolver's thread has stopped".into()))?
            .map_err(bad)
    }
}

/// Chooses how a [`DnsResolver`] asks DNS.
#[derive(Clone, Debug)]
pub struct DnsResolverBuilder {
    name_server: Option<SocketAddr>,
    floor: Duration,
    ceiling: Duration,
    timeout: Option<Duration>,
}

impl DnsResolverBuilder {
    /// The name server to ask, over UDP and TCP. Precedence: this, then
    /// the [`DNS_SERVER_VAR`] environment variable (`IP:PORT`, e.g.
    /// `127.0.0.1:5353` or `[::1]:53`; empty counts as unset), then the
    /// system's configuration.
    pub fn name_server(mut self, address: SocketAddr) -> Self {
        self.name_server = Some(address);
        self
    }

    /// The least time an answer is kept, and the interval of retries while
    /// DNS fails ([`DEFAULT_TTL_FLOOR`] unless set; must not be zero).
    pub fn ttl_floor(mut self, floor: Duration) -> Self {
        self.floor = floor;
        self
    }

    /// The most time an answer is kept before it is looked up again
    /// ([`DEFAULT_TTL_CEILING`] unless set).
    pub fn ttl_ceiling(mut self, ceiling: Duration) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// How long one DNS query may take (the system's, or 5 s, unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Starts the resolver's thread.
    pub fn build(self) -> Result<DnsResolver, BuildError> {
        if self.floor.is_zero() || self.floor > self.ceiling {
            return Err(BuildError::TtlBounds {
                floor: self.floor,
                ceiling: self.ceiling,
            });
        }
        let variable = std::env::var(DNS_SERVER_VAR).ok();
        let name_server = choose_name_server(self.name_server, variable.as_deref())?;
        let thread = DnsThread::start("zerorpc-dns").map_err(BuildError::Thread)?;
        let resolver = {
            // The resolver spawns its connections on the runtime current
            // when it is built and queried: always the resolver's own.
            let _entered = thread.runtime().enter();
            hickory(name_server, self.timeout)?
        };
        Ok(DnsResolver {
            shared: Arc::new(Shared {
                resolver,
                floor: self.floor,
                ceiling: self.ceiling,
            }),
            thread,
        })
    }
}

/// hickory's resolver, asking `name_server` or the system's.
fn hickory(
    name_server: Option<SocketAddr>,
    timeout: Option<Duration>,
) -> Result<TokioResolver, BuildError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match name_server {
        Some(address) => {
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut connection| {
                    connection.port = address.port();
                    connection
                })
                .collect();
            let server = NameServerConfig::new(address.ip(), true, connections);
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                provider,
            )
        }
        None => TokioResolver::builder(provider)
            .map_err(|error| BuildError::SystemConfig(error.to_string()))?,
    };
    let options = builder.options_mut();
    // This resolver keeps answers for their TTL itself; a second cache
    // below it would hide changes and hand back stale negative answers.
    options.cache_size = 0;
    if let Some(timeout) = timeout {
        options.timeout = timeout;
    }
    builder
        .build()
        .map_err(|error| BuildError::Setup(error.to_string()))
}

/// The name server to use: the builder's, else the variable's (empty is
/// unset), else none (the system's).
fn choose_name_server(
    chosen: Option<SocketAddr>,
    variable: Option<&str>,
) -> Result<Option<SocketAddr>, BuildError> {
    if chosen.is_some() {
        return Ok(chosen);
    }
    match variable.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|source| BuildError::ServerVariable {
                value: value.to_owned(),
                source,
            }),
    }
}

/// Why a [`DnsResolver`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// [`DNS_SERVER_VAR`] is set to something other than `IP:PORT`.
    #[error("{DNS_SERVER_VAR}={value:?} is not IP:PORT (e.g. 127.0.0.1:5353 or [::1]:53)")]
    ServerVariable {
        /// The variable's value.
        value: String,
        /// Why it does not parse.
        #[source]
        source: std::net::AddrParseError,
    },
    /// The system's DNS configuration could not be read or used.
    #[error("cannot use the system's DNS configuration: {0}")]
    SystemConfig(String),
    /// hickory refused the configuration.
    #[error("cannot set up the DNS resolver: {0}")]
    Setup(String),
    /// The floor is zero or above the ceiling.
    #[error("TTL bounds must be 0 < floor <= ceiling (floor {floor:?}, ceiling {ceiling:?})")]
    TtlBounds {
        /// The floor asked for.
        floor: Duration,
        /// The ceiling asked for.
        ceiling: Duration,
    },
    /// The resolver's thread could not be started.
    #[error("cannot start the DNS resolver's thread")]
    Thread(#[source] std::io::Error),
}

impl ResolveEndpoint for DnsResolver {
    fn resolve(&self, endpoint: &str) -> Changes {
        let name = match Endpoint::parse(endpoint) {
            Ok(parsed) if parsed.scheme() == "dns" => parsed.address().to_owned(),
            _ => return Literal.resolve(endpoint),
        };
        let fail = |why: String| -> Changes {
            futures::stream::iter([Err(zerorpc::Error::bad_endpoint(endpoint, why))]).boxed()
        };
        let name = match absolute(&name) {
            Ok(name) => name,
            Err(why) => return fail(why),
        };
        let (first_sender, first) = std::sync::mpsc::sync_channel(1);
        let (changes, receiver) = mpsc::unbounded_channel();
        let shared = self.shared.clone();
        let label = endpoint.to_owned();
        self.thread.runtime().spawn(async move {
            let answer = shared.lookup(&name).await;
            let endpoints = answer
                .as_ref()
                .map(|a| a.endpoints.clone())
                .map_err(Clone::clone);
            if first_sender.send(endpoints).is_err() {
                return;
            }
            if let Ok(answer) = answer {
                shared.follow(&label, &name, answer, changes).await;
            }
        });
        match first.recv() {
            Ok(Ok(endpoints)) => {
                let mut receiver = receiver;
                let later = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
                futures::stream::iter(endpoints.into_iter().map(|e| Ok(Change::Insert(e))))
                    .chain(later)
                    .boxed()
            }
            Ok(Err(why)) => fail(why),
            Err(_) => fail("the DNS resolver's thread has stopped".into()),
        }
    }
}

/// `name` as an absolute DNS name.
fn absolute(name: &str) -> Result<Name, String> {
    let mut parsed =
        Name::from_utf8(name).map_err(|error| format!("{name:?} is not a DNS name: {error}"))?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// What a name resolved to.
#[derive(Debug)]
struct Answer {
    /// ZeroMQ endpoints, in the order to connect, without duplicates.
    endpoints: Vec<String>,
    /// The smallest TTL of the records the answer came from, in seconds.
    ttl: Option<u32>,
}

impl Answer {
    fn new(endpoints: Vec<String>, ttl: Option<u32>) -> Answer {
        let mut seen = HashSet::new();
        let endpoints = endpoints
            .into_iter()
            .filter(|e| seen.insert(e.clone()))
            .collect();
        Answer { endpoints, ttl }
    }
}

impl Shared {
    /// How long to keep an answer.
    fn keep(&self, ttl: Option<u32>) -> Duration {
        ttl.map_or(self.floor, |ttl| {
            Duration::from_secs(u64::from(ttl)).clamp(self.floor, self.ceiling)
        })
    }

    /// The records of `name` and the endpoints chosen from them.
    async fn inspect(&self, name: &Name) -> Result<Inspection, String> {
        let (_, srv, txt) = self.query(name).await?;
        let mut entries: Vec<SrvEntry> = match &srv {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::SRV(srv) => Some(SrvEntry {
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: srv.target.to_string(),
                        ttl: record.ttl,
                    }),
                    _ => None,
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        entries
            .sort_by(|a, b| (a.priority, &a.target, a.port).cmp(&(b.priority, &b.target, b.port)));
        let (txt, txt_error) = match &txt {
            Ok(lookup) if !lookup.answers().is_empty() => {
                let ttl = lookup.answers().iter().map(|r| r.ttl).min().unwrap_or(0);
                match txt_records(lookup.answers()) {
                    Ok(record) => (Some(TxtEntry { record, ttl }), None),
                    Err(error) => (None, Some(error.to_string())),
                }
            }
            _ => (None, None),
        };
        let endpoints = self.lookup(name).await?.endpoints;
        Ok(Inspection {
            name: name.to_string(),
            srv: entries,
            txt,
            txt_error,
            endpoints,
        })
    }

    /// The SRV name of `name`'s service, and both lookups, asked of DNS
    /// rather than hickory's cache: this resolver keeps answers itself.
    async fn query(
        &self,
        name: &Name,
    ) -> Result<(Name, Result<Lookup, NetError>, Result<Lookup, NetError>), String> {
        let srv_name = Name::from_ascii(SRV_PREFIX)
            .and_then(|prefix| prefix.append_domain(name))
            .map_err(|error| format!("{SRV_PREFIX}.{name} is not a DNS name: {error}"))?;
        self.resolver.clear_cache();
        let (srv, txt) = futures::join!(
            self.resolver.srv_lookup(srv_name.clone()),
            self.resolver.txt_lookup(name.clone())
        );
        Ok((srv_name, srv, txt))
    }

    /// Looks `name` up: SRV first, then TXT; the error says why in words.
    async fn lookup(&self, name: &Name) -> Result<Answer, String> {
        let (srv_name, srv, txt) = self.query(name).await?;
        let srv_missing = match srv {
            Ok(lookup) => {
                let records: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::SRV(srv) => Some((record.ttl, srv.clone())),
                        _ => None,
                    })
                    .collect();
                if !records.is_empty() {
                    if txt
                        .as_ref()
                        .is_ok_and(|l| txt_records(l.answers()).is_err())
                    {
                        tracing::debug!(%name, "malformed TXT record ignored: SRV records give the endpoints");
                    }
                    return self.srv_answer(&srv_name, records).await;
                }
                "no record".to_owned()
            }
            Err(error) if error.is_no_records_found() => describe_missing(&error),
            Err(error) => return Err(format!("cannot look up {srv_name} SRV: {error}")),
        };
        match txt {
            Ok(lookup) => {
                let ttl = lookup.answers().iter().map(|r| r.ttl).min();
                let record = txt_records(lookup.answers()).map_err(|why| {
                    format!("no {srv_name} SRV record ({srv_missing}), and {name} TXT: {why}")
                })?;
                if record.endpoints.is_empty() {
                    return Err(format!(
                        "no {srv_name} SRV record ({srv_missing}), and the {name} TXT record lists no endpoints"
                    ));
                }
                for endpoint in &record.endpoints {
                    match Endpoint::parse(endpoint) {
                        Ok(parsed) if parsed.is_zmq() => {}
                        Ok(_) => {
                            return Err(format!(
                                "the {name} TXT record lists {endpoint:?}, which is not a ZeroMQ endpoint"
                            ));
                        }
                        Err(error) => {
                            return Err(format!("the {name} TXT record lists {error}"));
                        }
                    }
                }
                Ok(Answer::new(record.endpoints, ttl))
            }
            Err(error) if error.is_no_records_found() => Err(format!(
                "no {srv_name} SRV record ({srv_missing}) and no {name} TXT record ({})",
                describe_missing(&error)
            )),
            Err(error) => Err(format!(
                "no {srv_name} SRV record ({srv_missing}), and cannot look up {name} TXT: {error}"
            )),
        }
    }

    /// The endpoints of the best priority whose targets are reachable, in
    /// weighted order.
    async fn srv_answer(
        &self,
        srv_name: &Name,
        records: Vec<(u32, hickory_resolver::proto::rr::rdata::SRV)>,
    ) -> Result<Answer, String> {
        let mut ttl = records.iter().map(|(ttl, _)| *ttl).min();
        // A target "." says the service is decidedly not offered (RFC 2782).
        let weighted: Vec<_> = records
            .into_iter()
            .filter(|(_, srv)| !srv.target.is_root())
            .map(|(_, srv)| Weighted {
                priority: srv.priority,
                weight: srv.weight,
                target: (srv.priority, srv.target, srv.port),
            })
            .collect();
        if weighted.is_empty() {
            return Err(format!(
                "the {srv_name} SRV records say the service is not offered (target \".\")"
            ));
        }
        let mut random = Random::new();
        let groups = order(weighted, &mut |n| random.below(n));
        // Probing costs connections: only worth it with somewhere to go.
        let probe = groups.len() > 1;
        let mut failures = Vec::new();
        // The best priority with addresses, used if no priority is reachable.
        let mut unreachable_best = None;
        for group in groups {
            let priority = group[0].0;
            let (addresses, group_ttl) = self.addresses(&group, &mut failures).await;
            ttl = min_ttl(ttl, group_ttl);
            if addresses.is_empty() {
                continue;
            }
            if !probe || reachable(&addresses).await {
                return Ok(Answer::new(tcp_endpoints(&addresses), ttl));
            }
            tracing::debug!(%srv_name, priority, "no target of this priority accepts connections");
            unreachable_best.get_or_insert(addresses);
        }
        match unreachable_best {
            Some(addresses) => Ok(Answer::new(tcp_endpoints(&addresses), ttl)),
            None => Err(format!(
                "no target of the {srv_name} SRV records resolves to an address ({})",
                failures.join("; ")
            )),
        }
    }

    /// The addresses of a priority's targets, in order, and the smallest
    /// TTL of their records; targets without one are added to `failures`.
    async fn addresses(
        &self,
        group: &[(u16, Name, u16)],
        failures: &mut Vec<String>,
    ) -> (Vec<SocketAddr>, Option<u32>) {
        let lookups = group
            .iter()
            .map(|(_, target, _)| self.resolver.lookup_ip(target.clone()));
        let mut addresses = Vec::new();
        let mut ttl = None;
        for ((_, target, port), lookup) in group.iter().zip(join_all(lookups).await) {
            match lookup {
                Ok(ips) => {
                    let records = ips.as_lookup().answers().iter();
                    ttl = min_ttl(ttl, records.map(|r| r.ttl).min());
                    let before = addresses.len();
                    addresses.extend(ips.iter().map(|ip| SocketAddr::new(ip, *port)));
                    if addresses.len() == before {
                        failures.push(format!("{target}: no address"));
                    }
                }
                Err(error) => failures.push(format!("{target}: {error}")),
            }
        }
        (addresses, ttl)
    }

    /// Looks `name` up again whenever its answer expires and reports the
    /// differences, until the stream is dropped.
    async fn follow(
        &self,
        endpoint: &str,
        name: &Name,
        answer: Answer,
        changes: mpsc::UnboundedSender<zerorpc::Result<Change>>,
    ) {
        let mut current = answer.endpoints;
        let mut wait = self.keep(answer.ttl);
        let mut failing = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = changes.closed() => return,
            }
            let lookup = tokio::select! {
                lookup = self.lookup(name) => lookup,
                () = changes.closed() => return,
            };
            match lookup {
                Ok(answer) => {
                    if failing {
                        tracing::info!(%endpoint, "DNS resolution works again");
                        failing = false;
                    }
                    let inserted = answer.endpoints.iter().filter(|e| !current.contains(e));
                    let removed = current.iter().filter(|e| !answer.endpoints.contains(e));
                    let diff: Vec<Change> = inserted
                        .cloned()
                        .map(Change::Insert)
                        .chain(removed.cloned().map(Change::Remove))
                        .collect();
                    for change in diff {
                        tracing::debug!(%endpoint, ?change, "DNS answer changed");
                        if changes.send(Ok(change)).is_err() {
                            return;
                        }
                    }
                    current = answer.endpoints;
                    wait = self.keep(answer.ttl);
                }
                Err(why) => {
                    if !failing {
                        tracing::warn!(
                            %endpoint, %why, retry = ?self.floor,
                            "DNS resolution failed; keeping the last answer and retrying until it works"
                        );
                        failing = true;
                    } else {
                        tracing::debug!(%endpoint, %why, "DNS resolution failed again");
                    }
                    wait = self.floor;
                }
            }
        }
    }
}

/// The service description among a name's TXT records: the first that
/// parses; if none does, the error of the first that looks like JSON
/// (other TXT records, SPF and the like, may share the name), else of the
/// first.
fn txt_records(
    records: &[hickory_resolver::proto::rr::Record],
) -> Result<TxtRecord, crate::txt::TxtError> {
    let (mut first_error, mut json_error) = (None, None);
    for record in records {
        let RData::TXT(txt) = &record.data else {
            continue;
        };
        match TxtRecord::from_strings(&txt.txt_data) {
            Ok(parsed) => return Ok(parsed),
            Err(error) => {
                let first_byte = txt.txt_data.iter().flat_map(|s| s.iter());
                let looks_like_json =
                    first_byte.copied().find(|b| !b.is_ascii_whitespace()) == Some(b'{');
                if looks_like_json && json_error.is_none() {
                    json_error = Some(error);
                } else if first_error.is_none() {
                    first_error = Some(error);
                }
            }
        }
    }
    match json_error.or(first_error) {
        Some(error) => Err(error),
        // Only other record types (a CNAME): an empty text, which says so.
        None => TxtRecord::from_strings::<&[u8]>(&[]),
    }
}

/// How long a fail-over probe waits for a TCP connection to be accepted.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether any of `addresses` accepts a TCP connection within
/// [`PROBE_TIMEOUT`]. The connection is closed at once; a ZeroMQ peer
/// sees a connection that ends before its handshake, which it ignores.
async fn reachable(addresses: &[SocketAddr]) -> bool {
    let probes = addresses.iter().map(|address| {
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(*address))
    });
    join_all(probes)
        .await
        .iter()
        .any(|probe| matches!(probe, Ok(Ok(_))))
}

fn tcp_endpoints(addresses: &[SocketAddr]) -> Vec<String> {
    // `SocketAddr` brackets IPv6 addresses, as ZeroMQ wants them.
    addresses
        .iter()
        .map(|address| format!("tcp://{address}"))
        .collect()
}

/// The smaller of two TTLs, either of which may be unknown.
fn min_ttl(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a negative answer said, in a few words.
fn describe_missing(error: &NetError) -> String {
    if error.is_nx_domain() {
        "the name does not exist".to_owned()
    } else {
        "no record of that type".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_name_server_wins_over_the_variable_which_wins_over_the_system() {
        let chosen: SocketAddr = "127.0.0.1:5353".parse().unwrap();
        assert_eq!(
            choose_name_server(Some(chosen), Some("10.0.0.1:53")).unwrap(),
            Some(chosen)
        );
        assert_eq!(
            choose_name_server(None, Some("[::1]:53")).unwrap(),
            Some("[::1]:53".parse().unwrap())
        );
        assert_eq!(choose_name_server(None, Some(" ")).unwrap(), None);
        assert_eq!(choose_name_server(None, None).unwrap(), None);
        let error = choose_name_server(None, Some("dns.example.test")).unwrap_err();
        assert!(error.to_string().contains("ZERORPC_DNS_SERVER"), "{error}");
    }

    #[test]
    fn ttl_bounds_are_checked() {
        let error = DnsResolver::builder()
            .name_server("127.0.0.1:53".parse().unwrap())
            .ttl_floor(Duration::from_secs(10))
            .ttl_ceiling(Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("floor"), "{error}");
        let error = DnsResolver::builder()
            .ttl_floor(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(error, BuildError::TtlBounds { .. }));
    }

    #[test]
    fn answers_are_kept_for_their_ttl_within_the_bounds() {
        let resolver = DnsResolver::builder()
            .name_server("127.0.0.1:53".parse().unwrap())
            .ttl_floor(Duration::from_secs(2))
            .ttl_ceiling(Duration::from_secs(60))
            .build()
            .unwrap();
        let shared = &resolver.shared;
        assert_eq!(shared.keep(Some(0)), Duration::from_secs(2));
        assert_eq!(shared.keep(Some(30)), Duration::from_secs(30));
        assert_eq!(shared.keep(Some(86_400)), Duration::from_secs(60));
        assert_eq!(shared.keep(None), Duration::from_secs(2));
    }

    #[test]
    fn builds_and_drops_inside_a_runtime() {
        // Dropping a tokio runtime inside another panics unless it is
        // shut down without waiting, as the resolver's is.
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        outer.block_on(async {
            let resolver = DnsResolver::builder()
                .name_server("127.0.0.1:53".parse().unwrap())
                .build()
                .unwrap();
            drop(resolver);
        });
    }

    #[test]
    fn other_endpoints_pass_through_and_bad_names_are_refused() {
        let resolver = DnsResolver::builder()
            .name_server("127.0.0.1:53".parse().unwrap())
            .build()
            .unwrap();
        let changes = futures::executor::block_on_stream(resolver.resolve("tcp://127.0.0.1:4242"));
        let changes: Vec<_> = changes.map(Result::unwrap).collect();
        assert_eq!(changes, [Change::Insert("tcp://127.0.0.1:4242".into())]);
        let mut refused = futures::executor::block_on_stream(resolver.resolve("dns:a..b"));
        let error = refused.next().unwrap().unwrap_err();
        assert!(error.to_string().contains("not a DNS name"), "{error}");
    }
}
