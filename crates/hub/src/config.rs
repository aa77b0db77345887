//! Hub configuration: the YAML file format and its validation.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use zerorpc_endpoint::Endpoint as ParsedEndpoint;

use crate::{HubError, SecurityFiles, SideSecurity};

/// What a hub does with the events it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HubKind {
    /// RPC load balancing: clients' DEALERs connect to `in` (a ROUTER),
    /// workers (RPC servers) connect to `out` (a ROUTER). Every channel is
    /// pinned to one worker.
    Queue,
    /// Fan-out of events: publishers connect to `in` (a SUB), subscribers to
    /// `out` (an XPUB that holds events for a full subscriber rather than
    /// dropping them).
    Forwarder,
    /// Fan-in of events: pushers connect to `in` (a PULL), pullers to `out`
    /// (a PUSH).
    Streamer,
}

impl HubKind {
    /// The name used in configuration files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            HubKind::Queue => "queue",
            HubKind::Forwarder => "forwarder",
            HubKind::Streamer => "streamer",
        }
    }
}

impl fmt::Display for HubKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for HubKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "queue" => Ok(HubKind::Queue),
            "forwarder" => Ok(HubKind::Forwarder),
            "streamer" => Ok(HubKind::Streamer),
            other => Err(format!(
                "unknown hub type `{other}`, expected one of `queue`, `forwarder`, `streamer`"
            )),
        }
    }
}

/// The settings of one hub.
///
/// Build it with [`HubConfig::new`] and adjust the public fields, or load a
/// file with [`parse_config`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HubConfig {
    /// A name for logs and stats; defaults to `hub-N` (N = position in the
    /// file, from 1) or `hub` on the command line.
    pub name: String,
    /// What the hub does.
    pub kind: HubKind,
    /// The endpoint bound for the front side (clients, publishers, pushers).
    pub in_endpoint: String,
    /// The endpoint bound for the back side (workers, subscribers, pullers).
    pub out_endpoint: String,
    /// Queue only: a channel with no event in either direction for this long
    /// is forgotten (its client gave up). Default 30 s.
    pub idle_timeout: Duration,
    /// Queue only: how many calls may wait while no worker is connected.
    /// Default 1000.
    pub queue_limit: usize,
    /// Queue only: how long a call may wait for a worker before the hub
    /// answers it with an error. Default 10 s, below zerorpc-python's 15 s
    /// heartbeat loss so the client sees the hub's explanation.
    pub queue_timeout: Duration,
    /// Queue only: how many messages may wait in the hub for one peer (a
    /// client or a worker) whose ZeroMQ pipe is full because it reads
    /// slower than its events come. Default 100 000
    /// ([`DEFAULT_PEER_QUEUE_LIMIT`]).
    ///
    /// At the limit, a heartbeat for that peer is dropped (the next one
    /// covers it) and any other event ends its call: a worker's client gets
    /// `ERR LostRemote`, a client that is not reading is not told (it could
    /// not read that either) and sees heartbeats stop. Both are counted in
    /// [`Drops::queue_full`](crate::Drops::queue_full). A worker whose queue
    /// is at the limit takes no new calls. Memory per peer is bounded by the
    /// limit times the size of its events; `0` queues nothing, so a full
    /// pipe applies the limit's policy at once.
    pub peer_queue_limit: usize,
    /// Queue only: how many bytes may wait in the hub for one peer, on top
    /// of [`peer_queue_limit`](Self::peer_queue_limit), with the same
    /// policy at the limit. Default 64 MiB ([`DEFAULT_PEER_QUEUE_BYTES`]).
    /// A peer with nothing waiting always takes one message, so a reply
    /// larger than this limit (up to
    /// [`max_message_size`](Self::max_message_size)) is delayed, not
    /// refused.
    pub peer_queue_bytes: usize,
    /// How often the `zerorpc-hub` binary prints this hub's stats; `None`
    /// prints them only on `SIGUSR1`.
    pub stats_interval: Option<Duration>,
    /// The mechanism the `in` side serves (default none); the ZAP handler
    /// of the hub's context decides who is let in.
    pub in_security: SideSecurity,
    /// The mechanism the `out` side serves (default none).
    pub out_security: SideSecurity,
    /// What a configuration file's `in_security` key names, for the
    /// caller to read into [`in_security`](HubConfig::in_security) (the
    /// hub reads no file).
    pub in_security_files: Option<SecurityFiles>,
    /// What a configuration file's `out_security` key names.
    pub out_security_files: Option<SecurityFiles>,
    /// The largest message frame, in bytes, a peer on either side may send
    /// (libzmq's `ZMQ_MAXMSGSIZE`); `None` for no limit. Default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`]. ZeroMQ reads the size a frame
    /// announces and drops the connection of a peer that sends more before
    /// reading it, so a larger message never reaches the hub's memory; the
    /// peer's calls through that connection are lost with it.
    ///
    /// With it, the memory a stalled peer can hold in the hub is bounded:
    /// libzmq's pipe toward it holds at most 1000 messages (its send
    /// high-water mark) of at most this size, and the hub's own queue for
    /// it at most [`peer_queue_bytes`](Self::peer_queue_bytes) plus one
    /// message.
    pub max_message_size: Option<u64>,
}

/// Default for [`HubConfig::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`HubConfig::queue_limit`].
pub const DEFAULT_QUEUE_LIMIT: usize = 1000;
/// Default for [`HubConfig::queue_timeout`].
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`HubConfig::peer_queue_limit`].
///
/// A client may have many thousands of calls in flight and be busy while
/// their replies come back at once; each call's reply must then wait in
/// the hub, plus a heartbeat per open call and heartbeat interval. 100 000
/// holds 10 000 calls in flight through several heartbeat intervals
/// (5 s each for zerorpc-python) without reading. Memory is bounded by the
/// limit times the size of the events: some tens of megabytes for one
/// stalled peer with events of a few hundred bytes. Lower it when events
/// are large or when many peers may stall at once.
pub const DEFAULT_PEER_QUEUE_LIMIT: usize = 100_000;
/// Default for [`HubConfig::peer_queue_bytes`]: 64 MiB, as the send
/// queues of zerorpc's own clients and servers.
pub const DEFAULT_PEER_QUEUE_BYTES: usize = 64 << 20;
/// Default for [`HubConfig::max_message_size`]: 16 MiB, the limit of
/// zerorpc's own clients and servers.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 16 << 20;

impl HubConfig {
    /// A hub of `kind` binding `in_endpoint` and `out_endpoint`, with the
    /// default timeouts and limits.
    pub fn new(
        kind: HubKind,
        in_endpoint: impl Into<String>,
        out_endpoint: impl Into<String>,
    ) -> Self {
        HubConfig {
            name: "hub".to_owned(),
            kind,
            in_endpoint: in_endpoint.into(),
            out_endpoint: out_endpoint.into(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            peer_queue_limit: DEFAULT_PEER_QUEUE_LIMIT,
            peer_queue_bytes: DEFAULT_PEER_QUEUE_BYTES,
            max_message_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            stats_interval: None,
            in_security: SideSecurity::None,
            out_security: SideSecurity::None,
            in_security_files: None,
            out_security_files: None,
        }
    }

    /// Checks what can be checked without binding: that each endpoint is
    /// one a hub can bind (a connection-oriented ZeroMQ transport, not a
    /// name such as `dns:NAME`: a hub never connects, so it never resolves
    /// one), and that a queue's workers can reach its `out`.
    /// [`Hub::start`](crate::Hub::start) checks this first.
    ///
    /// ```
    /// use zerorpc_hub::{HubConfig, HubKind};
    ///
    /// let named = HubConfig::new(HubKind::Queue, "tcp://*:1111", "dns:hub.example.test");
    /// let error = named.check().unwrap_err();
    /// assert!(error.to_string().contains("never connects"));
    /// ```
    pub fn check(&self) -> Result<(), HubError> {
        let bad = |side, message| HubError::Endpoint {
            hub: self.name.clone(),
            side,
            message,
        };
        for (side, endpoint) in [("in", &self.in_endpoint), ("out", &self.out_endpoint)] {
            check_endpoint(endpoint).map_err(|message| bad(side, message))?;
        }
        // libzmq raises ROUTER_NOTIFY for tcp and ipc connections only, so a
        // queue would never learn of a worker connecting over inproc and
        // would route nothing, silently.
        let inproc_out = ParsedEndpoint::parse(&self.out_endpoint)
            .is_ok_and(|e| e.transport() == Some(zerorpc_endpoint::Transport::Inproc));
        if self.kind == HubKind::Queue && inproc_out {
            return Err(bad(
                "out",
                format!(
                    "`{}`: a queue's workers cannot connect over inproc:// (ZeroMQ reports no \
                     inproc connections, so the queue would never see them); use tcp:// or ipc://",
                    self.out_endpoint
                ),
            ));
        }
        Ok(())
    }
}

/// Why a configuration file was rejected.
///
/// The message names the line and column (when known) and the key at fault,
/// e.g. `line 4, column 9, key hub 2 › type: unknown variant ...`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The YAML is malformed, or a key has a wrong name, type or value
    /// (the key reads like `hub 2 › type`).
    #[error(transparent)]
    Syntax(#[from] zerorpc_yaml::YamlError),
    /// The file holds no hub.
    #[error("the configuration holds no hub (expected a mapping or a list of mappings)")]
    Empty,
    /// Two hubs share a name or an endpoint.
    #[error("key hub {hub} › {key}: {message}")]
    Conflict {
        /// 1-based position of the hub in the file.
        hub: usize,
        /// The key at fault.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Seconds as written in the file: a positive, finite number.
#[derive(Clone, Copy, Debug)]
struct Seconds(Duration);

// Checks happen inside visitors, while the parser still knows where the
// value is, so that the errors carry its line and column.
impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds (at least 0.001)")
            }
            fn visit_f64<E: serde::de::Error>(self, secs: f64) -> Result<Seconds, E> {
                // A value so small that it rounds to zero would expire every
                // channel, or print stats, at every tick.
                if !(1e-3..=1e9).contains(&secs) {
                    return Err(E::custom(format!(
                        "expected a positive number of seconds (0.001 to 1e9), found {secs}"
                    )));
                }
                Ok(Seconds(Duration::from_secs_f64(secs)))
            }
            fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Seconds, E> {
                self.visit_f64(secs as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<Seconds, E> {
                self.visit_f64(secs as f64)
            }
        }
        deserializer.deserialize_f64(Visitor)
    }
}

/// A ZeroMQ endpoint: `transport://address`.
#[derive(Clone, Debug)]
struct Endpoint(String);

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Endpoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ZeroMQ endpoint such as tcp://*:4242")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Endpoint, E> {
                check_endpoint(text).map_err(E::custom)?;
                Ok(Endpoint(text.to_owned()))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Checks the shape of an endpoint before libzmq sees it, so that the error
/// points at the file rather than at a bind failure.
pub(crate) fn check_endpoint(text: &str) -> Result<(), String> {
    let endpoint = ParsedEndpoint::parse(text).map_err(|e| format!("`{text}`: {}", e.reason()))?;
    match endpoint.transport() {
        Some(transport) if transport.is_connection_oriented() => Ok(()),
        Some(transport) => Err(format!(
            "`{text}`: a hub needs a connection-oriented transport, not {transport}://"
        )),
        // A hub never connects, so it never resolves a name: the peers
        // that connect to it do.
        None => Err(format!(
            "`{text}`: a hub binds its endpoints and never connects, so a {scheme}: name \
             cannot be one of them: bind an address (e.g. tcp://*:2222), announce it under \
             the name, and let the clients and workers that connect to the hub use \
             {scheme}:{name}",
            scheme = endpoint.scheme(),
            name = endpoint.address(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a hub: a mapping with at least `in` and `out`"
)]
struct RawHub {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<HubKind>,
    #[serde(rename = "in")]
    in_endpoint: Endpoint,
    out: Endpoint,
    idle_timeout: Option<Seconds>,
    queue_limit: Option<usize>,
    queue_timeout: Option<Seconds>,
    peer_queue_limit: Option<usize>,
    peer_queue_bytes: Option<usize>,
    max_message_size: Option<u64>,
    stats_interval: Option<Seconds>,
    in_security: Option<SecurityFiles>,
    out_security: Option<SecurityFiles>,
}

impl RawHub {
    fn into_config(self, position: usize, in_list: bool) -> HubConfig {
        let default_name = if in_list {
            format!("hub-{position}")
        } else {
            "hub".to_owned()
        };
        let mut config = HubConfig::new(
            self.kind.unwrap_or(HubKind::Queue),
            self.in_endpoint.0,
            self.out.0,
        );
        config.name = self.name.unwrap_or(default_name);
        if let Some(Seconds(d)) = self.idle_timeout {
            config.idle_timeout = d;
        }
        if let Some(n) = self.queue_limit {
            config.queue_limit = n;
        }
        if let Some(Seconds(d)) = self.queue_timeout {
            config.queue_timeout = d;
        }
        if let Some(n) = self.peer_queue_limit {
            config.peer_queue_limit = n;
        }
        if let Some(n) = self.peer_queue_bytes {
            config.peer_queue_bytes = n;
        }
        if let Some(n) = self.max_message_size {
            config.max_message_size = (n > 0).then_some(n);
        }
        config.stats_interval = self.stats_interval.map(|Seconds(d)| d);
        config.in_security_files = self.in_security;
        config.out_security_files = self.out_security;
        config
    }
}

/// Parses a configuration file: one hub as a mapping, or several as a list
/// of mappings.
///
/// Keys: `in`, `out` (required endpoints, bound by the hub), `type`
/// (`queue`, the default, `forwarder` or `streamer`), `name`,
/// `idle_timeout`, `queue_timeout`, `stats_interval` (seconds),
/// `queue_limit` (calls), `peer_queue_limit` (messages), `peer_queue_bytes`,
/// `max_message_size` (bytes, `0` for no limit), `in_security` and
/// `out_security` (mappings of file names: [`SecurityFiles`]). Unknown
/// keys are errors, so a typo is not silently ignored.
///
/// ```
/// let hubs = zerorpc_hub::parse_config("
/// - { name: rpc, in: 'tcp://*:1111', out: 'tcp://*:2222', type: queue }
/// - { name: events, in: 'tcp://*:3333', out: 'tcp://*:4444', type: forwarder }
/// ")?;
/// assert_eq!(hubs.len(), 2);
/// assert_eq!(hubs[1].kind, zerorpc_hub::HubKind::Forwarder);
///
/// let err = zerorpc_hub::parse_config("in: 'tcp://*:1'\nout: 'tcp://*:2'\ntype: quue\n").unwrap_err();
/// assert!(err.to_string().starts_with("line 3"));
/// assert!(err.to_string().contains("key type"));
/// # Ok::<(), zerorpc_hub::ConfigError>(())
/// ```
pub fn parse_config(text: &str) -> Result<Vec<HubConfig>, ConfigError> {
    // Look at the document's shape first, then deserialize the text again
    // into the typed form: going through the value would lose the line
    // numbers that make the errors useful.
    let shape: zerorpc_yaml::Value = zerorpc_yaml::from_str(text, None)?;
    let configs = match shape {
        zerorpc_yaml::Value::Null => return Err(ConfigError::Empty),
        zerorpc_yaml::Value::Sequence(_) => {
            let raws: Vec<RawHub> = typed(text, true)?;
            raws.into_iter()
                .enumerate()
                .map(|(i, raw)| raw.into_config(i + 1, true))
                .collect::<Vec<_>>()
        }
        _ => {
            let raw: RawHub = typed(text, false)?;
            vec![raw.into_config(1, false)]
        }
    };
    if configs.is_empty() {
        return Err(ConfigError::Empty);
    }
    check_conflicts(&configs)?;
    Ok(configs)
}

fn typed<T: for<'de> Deserialize<'de>>(text: &str, in_list: bool) -> Result<T, ConfigError> {
    Ok(zerorpc_yaml::from_str(text, in_list.then_some("hub"))?)
}

fn check_conflicts(configs: &[HubConfig]) -> Result<(), ConfigError> {
    for (i, config) in configs.iter().enumerate() {
        for earlier in &configs[..i] {
            if earlier.name == config.name {
                return Err(ConfigError::Conflict {
                    hub: i + 1,
                    key: "name",
                    message: format!("`{}` is already the name of another hub", config.name),
                });
            }
            for (key, endpoint) in [("in", &config.in_endpoint), ("out", &config.out_endpoint)] {
                if *endpoint == earlier.in_endpoint || *endpoint == earlier.out_endpoint {
                    return Err(ConfigError::Conflict {
                        hub: i + 1,
                        key,
                        message: format!("`{endpoint}` is already bound by hub `{}`", earlier.name),
                    });
                }
            }
        }
        if config.in_endpoint == config.out_endpoint {
            return Err(ConfigError::Conflict {
                hub: i + 1,
                key: "out",
                message: format!("`{}` is also this hub's `in`", config.out_endpoint),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
