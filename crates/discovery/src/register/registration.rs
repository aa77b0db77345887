//! [`Registration`]: a running server's records kept in a zone while it
//! lives, withdrawn when it stops.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use zerorpc::Endpoint;

use super::{UpdateError, Updater};
use crate::announce::{Host, Instance, InstanceKind, Service, Services, check_dns_name};
use crate::thread::DnsThread;

/// The TTL of a registration's records unless set, in seconds: short,
/// since servers come and go and a withdrawn record lives on in caches
/// for its TTL.
pub const DEFAULT_REGISTRATION_TTL: u32 = 60;

/// How often a registration checks that its records are still in the zone
/// unless set.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(30);

/// A server's records in a zone: added by
/// [`RegistrationBuilder::register`], checked every
/// [`refresh`](RegistrationBuilder::refresh) interval and added again if
/// they vanished, withdrawn by [`withdraw`](Registration::withdraw) or
/// when dropped.
///
/// ```no_run
/// use zerorpc::Server;
/// use zerorpc_discovery::{Registration, TsigKey, Updater};
///
/// # struct Users;
/// # #[zerorpc::service] impl Users { pub fn ping(&self) -> bool { true } }
/// let server = Server::builder(Users).bind("tcp://0.0.0.0:*").build()?;
/// let key = TsigKey::from_file("/etc/bind/zerorpc-update.key")?;
/// let updater = Updater::new("10.0.0.53:53".parse()?, "svc.example.test", key)?;
/// let registration = Registration::builder(updater, "users.svc.example.test")
///     .register(server.bound_endpoints())?;
/// let shutdown = server.shutdown_handle();
/// // ... serve until it is time to stop, then:
/// registration.withdraw()?;
/// shutdown.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # What is registered
///
/// Each `tcp://` endpoint becomes an SRV record at `_zerorpc._tcp.NAME`
/// whose target, `INSTANCE.NAME` (`pPORT.INSTANCE.NAME` when the
/// endpoints have several ports), holds its address; the TXT record at
/// `NAME` says the socket type (`ROUTER`), the protocol version and the
/// metadata. An endpoint bound to every interface (`0.0.0.0`, `::`) is
/// announced with [`address`](RegistrationBuilder::address), by default
/// the address this machine reaches the name server from. Other
/// transports (`ipc://`, `inproc://`) are local to the machine and are
/// not announced.
///
/// Registering replaces the records of the same instance name (see
/// [`Updater`]): a server restarted under
/// its instance name replaces its records, even on another port. A server
/// that dies without withdrawing leaves its records until then.
///
/// # Blocking and threads
///
/// A registration owns a thread with a small tokio runtime, on which its
/// updates run; `register` and `withdraw` block their caller until the
/// name server has answered (at most the updater's timeout per message),
/// from synchronous code or inside any runtime.
pub struct Registration {
    updater: Updater,
    services: Arc<Services>,
    instance: String,
    endpoints: Vec<String>,
    thread: DnsThread,
    refresher: Option<tokio::task::JoinHandle<()>>,
    withdrawn: bool,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("zone", &self.updater.zone())
            .field("instance", &self.instance)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// Chooses what a [`Registration`] announces.
#[derive(Clone, Debug)]
pub struct RegistrationBuilder {
    updater: Updater,
    name: String,
    instance: Option<String>,
    address: Option<IpAddr>,
    ttl: u32,
    priority: u16,
    weight: u16,
    metadata: serde_json::Map<String, serde_json::Value>,
    refresh: Duration,
}

impl Registration {
    /// A registration of service `name` (e.g. `users.svc.example.test`),
    /// in the updater's zone.
    pub fn builder(updater: Updater, name: &str) -> RegistrationBuilder {
        RegistrationBuilder {
            updater,
            name: name.to_owned(),
            instance: None,
            address: None,
            ttl: DEFAULT_REGISTRATION_TTL,
            priority: 0,
            weight: 0,
            metadata: serde_json::Map::new(),
            refresh: DEFAULT_REFRESH,
        }
    }

    /// The instance name: the first label of the names of its addresses.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The endpoints announced (`tcp://IP:PORT`).
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Removes the records from the zone, and stops checking them.
    pub fn withdraw(mut self) -> Result<(), UpdateError> {
        self.withdraw_now()
    }

    fn withdraw_now(&mut self) -> Result<(), UpdateError> {
        self.withdrawn = true;
        if let Some(refresher) = self.refresher.take() {
            refresher.abort();
        }
        let updater = self.updater.clone();
        let services = self.services.clone();
        self.thread
            .run(async move { updater.withdraw(&services).await })
            .ok_or_else(stopped)?
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.withdrawn {
            return;
        }
        if let Err(error) = self.withdraw_now() {
            tracing::warn!(
                instance = %self.instance, %error,
                "the records of the dropped registration could not be withdrawn"
            );
        }
    }
}

fn stopped() -> UpdateError {
    UpdateError::Thread("has stopped".into())
}

impl RegistrationBuilder {
    /// The instance name, unique among the service's servers and stable
    /// across restarts (default: this machine's host name and the first
    /// port announced, `web1-4242`). A letter, digit, `-` or `_` label.
    pub fn instance(mut self, instance: &str) -> Self {
        self.instance = Some(instance.to_owned());
        self
    }

    /// The address announced for endpoints, instead of their own (and of
    /// the default for those bound to every interface): the address
    /// clients reach this machine at, behind NAT or in a container.
    pub fn address(mut self, address: IpAddr) -> Self {
        self.address = Some(address);
        self
    }

    /// The records' TTL in seconds ([`DEFAULT_REGISTRATION_TTL`] unless set).
    pub fn ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// The SRV priority (lower is tried first; default 0).
    pub fn priority(mut self, priority: u16) -> Self {
        self.priority = priority;
        self
    }

    /// The SRV weight within its priority (default 0).
    pub fn weight(mut self, weight: u16) -> Self {
        self.weight = weight;
        self
    }

    /// The TXT record's `metadata` (default empty).
    pub fn metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = metadata;
        self
    }

    /// How often the records are checked, and added again if they
    /// vanished ([`DEFAULT_REFRESH`] unless set; must not be zero).
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// Adds the records of `endpoints` (a server's
    /// [`bound_endpoints`](zerorpc::Server::bound_endpoints)) to the zone,
    /// replacing those of the same instance, and keeps them there.
    pub fn register<S: AsRef<str>>(self, endpoints: &[S]) -> Result<Registration, UpdateError> {
        if self.refresh.is_zero() {
            return Err(UpdateError::Invalid(
                "the refresh interval must not be zero".into(),
            ));
        }
        let name = check_dns_name(&self.name)
            .map_err(|why| UpdateError::Invalid(format!("service name: {why}")))?;
        let targets = self.targets(endpoints)?;
        let instance = match &self.instance {
            Some(instance) => instance.clone(),
            None => default_instance(targets[0].1)?,
        };
        check_label(&instance)?;
        let mut ports: Vec<u16> = targets.iter().map(|(_, port)| *port).collect();
        ports.sort_unstable();
        ports.dedup();
        let instances = targets
            .iter()
            .map(|(host, port)| Instance {
                label: if ports.len() == 1 {
                    instance.clone()
                } else {
                    format!("p{port}.{instance}")
                },
                kind: InstanceKind::Srv {
                    host: host.clone(),
                    port: *port,
                    priority: self.priority,
                    weight: self.weight,
                },
                networks: None,
            })
            .collect();
        let services = Arc::new(Services {
            networks: Vec::new(),
            services: vec![Service {
                name,
                ttl: self.ttl,
                socket_type: Some("ROUTER".into()),
                protocol: Some(zerorpc::wire::PROTOCOL_VERSION),
                metadata: self.metadata,
                instances,
            }],
        });
        let endpoints = targets
            .iter()
            .map(|(host, port)| match host {
                Host::Ip(ip) => format!("tcp://{}", SocketAddr::new(*ip, *port)),
                Host::Name(name) => format!("tcp://{name}:{port}"),
            })
            .collect();
        let thread = DnsThread::start("zerorpc-dns-register")
            .map_err(|error| UpdateError::Thread(format!("cannot start: {error}")))?;
        let updater = self.updater;
        let first = {
            let (updater, services) = (updater.clone(), services.clone());
            thread.run(async move { updater.register(&services).await })
        };
        first.ok_or_else(stopped)??;
        let refresher = thread.runtime().spawn(refresh(
            updater.clone(),
            services.clone(),
            instance.clone(),
            self.refresh,
        ));
        Ok(Registration {
            updater,
            services,
            instance,
            endpoints,
            thread,
            refresher: Some(refresher),
            withdrawn: false,
        })
    }

    /// The host and port of each TCP endpoint, addresses chosen.
    pub(super) fn targets<S: AsRef<str>>(
        &self,
        endpoints: &[S],
    ) -> Result<Vec<(Host, u16)>, UpdateError> {
        let mut targets = Vec::new();
        for endpoint in endpoints {
            let endpoint = endpoint.as_ref();
            let parsed = Endpoint::parse(endpoint)
                .map_err(|error| UpdateError::Invalid(error.to_string()))?;
            if parsed.scheme() != "tcp" {
                tracing::debug!(%endpoint, "not announced: only tcp:// endpoints are reachable from other machines");
                continue;
            }
            let address = parsed.address();
            let target = match address.parse::<SocketAddr>() {
                Ok(socket) => {
                    let ip = match self.address {
                        Some(ip) => ip,
                        None if socket.ip().is_unspecified() => self.route_address(socket.ip())?,
                        None => socket.ip(),
                    };
                    (Host::Ip(ip), socket.port())
                }
                Err(_) => {
                    let (host, port) = address
                        .rsplit_once(':')
                        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
                        .filter(|(_, port)| *port != 0)
                        .ok_or_else(|| {
                            UpdateError::Invalid(format!(
                                "{endpoint}: announce a bound endpoint, with its port (the \
                                 server's bound endpoints have the ports of `*` and 0 filled in)"
                            ))
                        })?;
                    let host = check_dns_name(host)
                        .map_err(|why| UpdateError::Invalid(format!("{endpoint}: {why}")))?;
                    (Host::Name(host), port)
                }
            };
            if target.1 == 0 {
                return Err(UpdateError::Invalid(format!(
                    "{endpoint}: port 0 is not where the server listens: announce the server's \
                     bound endpoints, whose ports are filled in"
                )));
            }
            targets.push(target);
        }
        if targets.is_empty() {
            let listed: Vec<&str> = endpoints.iter().map(AsRef::as_ref).collect();
            return Err(UpdateError::Invalid(format!(
                "nothing to announce: only tcp:// endpoints can be announced, and the server has {}",
                if listed.is_empty() {
                    "no bound endpoint".to_owned()
                } else {
                    listed.join(", ")
                }
            )));
        }
        Ok(targets)
    }

    /// The address of this machine on the way to the name server: the one
    /// the name server (and, most likely, the server's clients) see.
    fn route_address(&self, family: IpAddr) -> Result<IpAddr, UpdateError> {
        let server = self.updater.server();
        let unspecified = if family.is_ipv4() && server.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        };
        // A UDP "connection" sends nothing: it only picks the route.
        UdpSocket::bind(SocketAddr::new(unspecified, 0))
            .and_then(|socket| {
                socket.connect(server)?;
                socket.local_addr()
            })
            .map(|local| local.ip())
            .map_err(|error| {
                UpdateError::Invalid(format!(
                    "the server listens on every interface, and the address to announce cannot \
                     be found from the route to name server {server} ({error}): give one"
                ))
            })
    }
}

/// Checks the records every `interval`, and adds them again when some
/// vanished (a zone reloaded from an old file, an operator's mistake).
async fn refresh(updater: Updater, services: Arc<Services>, instance: String, interval: Duration) {
    let mut failing = false;
    loop {
        tokio::time::sleep(interval).await;
        let result = match updater.is_registered(&services).await {
            Ok(true) => Ok(()),
            Ok(false) => updater.register(&services).await.map(|()| {
                tracing::info!(%instance, zone = %updater.zone(), "records had vanished from the zone; added again");
            }),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) if failing => {
                tracing::info!(%instance, "the name server answers again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) if !failing => {
                tracing::warn!(%instance, %error, "cannot check the registration; retrying");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// `HOST-PORT`: the machine's host name (its first label) and a port.
fn default_instance(port: u16) -> Result<String, UpdateError> {
    let host = host_name().ok_or_else(|| {
        UpdateError::Invalid(
            "this machine's host name cannot be read: give an instance name".into(),
        )
    })?;
    let label: String = host
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if label.is_empty() {
        return Err(UpdateError::Invalid(
            "this machine's host name is empty: give an instance name".into(),
        ));
    }
    Ok(format!("{label}-{port}"))
}

fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which outlives the
    // call; gethostname writes at most that many bytes.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if status != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8(buffer[..end].to_vec()).ok()
}

fn check_label(label: &str) -> Result<(), UpdateError> {
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(UpdateError::Invalid(format!(
            "instance name {label:?}: one label of 1 to 63 letters, digits, `-` and `_`"
        )))
    }
}
