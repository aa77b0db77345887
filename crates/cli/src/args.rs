//! The command line: raw flags as clap parses them ([`RawArgs`]), then
//! validated into what the program does ([`Invocation`]).
//!
//! Two layers keep clap's view (every flag optional, positionals in
//! zerorpc-python's order) apart from the checked meaning (an endpoint list
//! that is never empty, durations, a parsed action), so the hub, DNS and
//! tracing features can add subcommands and flags to [`RawArgs`] without
//! touching the client or server code.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use zerorpc::{Endpoint, Value};

use crate::exit::Failure;

const EXAMPLES: &str = "\
Examples:
  zerorpc tcp://127.0.0.1:4242                     list the methods
  zerorpc tcp://127.0.0.1:4242 add ?               signature and full help of add
  zerorpc tcp://127.0.0.1:4242 add 1 2             call add(\"1\", \"2\"): arguments are strings
  zerorpc -j tcp://127.0.0.1:4242 add 1 2          call add(1, 2): each argument parsed as JSON
  zerorpc -pj tcp://127.0.0.1:4242 count 3         print the (streamed) result as JSON
  zerorpc '-?' tcp://127.0.0.1:4242                the whole _zerorpc_inspect answer
  zerorpc --connect tcp://a:4242 --connect tcp://b:4242 add 1 2
  zerorpc --server --bind tcp://127.0.0.1:4242 tools.toml
                                                   serve the programs of a service file
  zerorpc completions bash > /etc/bash_completion.d/zerorpc
  zerorpc announce services.yml --format tinydns --zone svc.example.test --nameserver ns.example.test
                                                   DNS records announcing the services of a file
  zerorpc announce services.yml --update --zone svc.example.test --dns-server 10.0.0.53:53 --tsig-key k.key
                                                   the same records added to a zone (RFC 2136, TSIG)
  zerorpc --server --bind tcp://0.0.0.0:4242 --announce tools.svc.example.test --zone svc.example.test \
      --dns-server 10.0.0.53:53 --tsig-key k.key tools.toml
                                                   a server in DNS while it runs

Exit status: 0 success, 1 remote error, 2 usage or service-file error,
3 timeout, 4 lost remote, 5 connection or endpoint error, 6 protocol error,
7 local error. See docs/cli.md.";

/// The flags and positionals as parsed, before any checking.
#[derive(Debug, Parser)]
#[command(
    name = "zerorpc",
    version,
    about = "Call, list and inspect ZeroRPC services, or serve existing programs as one",
    long_about = "Call, list and inspect ZeroRPC services (zerorpc-python, zerorpc-node or \
                  zerorpc-rs servers), or serve existing programs as a ZeroRPC service \
                  described by a TOML or YAML file.\n\n\
                  As a client: `zerorpc ENDPOINT` lists the methods, `zerorpc ENDPOINT METHOD ?` \
                  shows a method's help, `zerorpc ENDPOINT METHOD ARGS...` calls it. With \
                  --connect or --bind, the ENDPOINT positional is left out and METHOD comes first.",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
pub(crate) struct RawArgs {
    #[command(subcommand)]
    pub(crate) subcommand: Option<RawSubcommand>,
    #[command(flatten)]
    pub(crate) rpc: RawRpcArgs,
}

/// Commands other than the zerorpc-python style call.
#[derive(Debug, Subcommand)]
pub(crate) enum RawSubcommand {
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print DNS records (BIND, tinydns or dnsmasq) announcing the services of a services file, or add them to a zone.
    #[command(
        long_about = "Print DNS records announcing the services of a services file (YAML): \
                      SRV records at _zerorpc._tcp.NAME, A/AAAA records for instances given \
                      by address, and a TXT record describing the service. With --zone, a \
                      complete zone (SOA and NS records first). A file with networks gets \
                      BIND views (a named.conf fragment on stdout, zone files in --out-dir) or \
                      tinydns locations. With --update or --withdraw instead of --format, the \
                      records are added to or removed from --zone at its primary name server \
                      (--dns-server) with RFC 2136 updates signed with the TSIG key of a BIND key \
                      file (--tsig-key, as tsig-keygen writes it). See docs/announce.md."
    )]
    Announce(RawAnnounceArgs),
    /// Print what DNS says about a service name: its SRV and TXT records and the endpoints chosen.
    Resolve(ResolveArgs),
    /// Receive trace reports and store them in Redis or in memory (see docs/tracing.md).
    Collector(crate::collector::CollectorArgs),
    /// Print a trace: one line per message in time order, or JSON, dot, svg, OTLP or Zipkin.
    Tracedump(crate::tracedump::TracedumpArgs),
    /// Show request rates, error rates and latencies per service and method.
    Top(crate::tracedump::TopArgs),
    /// Write a new CURVE key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public), in czmq's zcert format.
    Keygen(crate::security::KeygenArgs),
}

/// `zerorpc resolve`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct ResolveArgs {
    /// The service name, e.g. users.svc.example.test (a leading dns: is allowed).
    pub(crate) name: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// The DNS server to ask (default: the system's).
    #[arg(
        long = "dns-server",
        value_name = "IP:PORT",
        env = "ZERORPC_DNS_SERVER"
    )]
    pub(crate) dns_server: Option<std::net::SocketAddr>,
}

/// `zerorpc announce`'s flags, as parsed.
#[derive(Debug, Args)]
pub(crate) struct RawAnnounceArgs {
    /// The services file (YAML).
    pub(crate) file: PathBuf,
    /// Print records for this DNS server.
    #[arg(long, value_enum, value_name = "FORMAT", required_unless_present_any = ["update", "withdraw"])]
    pub(crate) format: Option<DnsFormat>,
    /// Add the records to --zone at its primary name server (RFC 2136 UPDATE signed with --tsig-key), replacing those of the same instances.
    #[arg(long, conflicts_with_all = ["format", "withdraw"])]
    pub(crate) update: bool,
    /// Remove the records of the file from --zone (RFC 2136 UPDATE signed with --tsig-key).
    #[arg(long, conflicts_with = "format")]
    pub(crate) withdraw: bool,
    /// With --format: write a complete zone with this origin (SOA and NS records), for bind and tinydns. With --update/--withdraw: the zone to update.
    #[arg(long, value_name = "ZONE")]
    pub(crate) zone: Option<String>,
    /// --update/--withdraw: the zone's primary name server.
    #[arg(
        long = "dns-server",
        value_name = "IP:PORT",
        env = "ZERORPC_DNS_SERVER"
    )]
    pub(crate) dns_server: Option<std::net::SocketAddr>,
    /// --update/--withdraw: the TSIG key signing the updates, a BIND key file as tsig-keygen writes it.
    #[arg(long = "tsig-key", value_name = "FILE")]
    pub(crate) tsig_key: Option<PathBuf>,
    /// The zone's name server (its NS record and the SOA's primary), with --zone.
    #[arg(long, value_name = "HOST", requires = "zone")]
    pub(crate) nameserver: Option<String>,
    /// The name server's address, when it is inside the zone (which must then hold it).
    #[arg(
        long = "nameserver-address",
        value_name = "IP",
        requires = "nameserver"
    )]
    pub(crate) nameserver_address: Option<std::net::IpAddr>,
    /// The SOA serial, with --zone (default: the current Unix time).
    #[arg(long, value_name = "N", requires = "zone")]
    pub(crate) serial: Option<u32>,
    /// bind with networks: the directory for the zone file of each view.
    #[arg(long = "out-dir", value_name = "DIR")]
    pub(crate) out_dir: Option<PathBuf>,
}

/// The `--format` choices of `zerorpc announce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum DnsFormat {
    /// BIND zone-file records (or zones and views).
    Bind,
    /// tinydns-data lines.
    Tinydns,
    /// dnsmasq configuration lines.
    Dnsmasq,
}

/// zerorpc-python's flags and positionals.
#[derive(Debug, Args)]
pub(crate) struct RawRpcArgs {
    /// Act as a client (the default).
    #[arg(long, conflicts_with = "server")]
    pub(crate) client: bool,
    /// Serve the programs described by a service file (TOML, or YAML for .yaml/.yml).
    #[arg(long)]
    pub(crate) server: bool,
    /// Connect to ENDPOINT (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    pub(crate) connect: Vec<String>,
    /// Bind to ENDPOINT (repeatable; works for a client too).
    #[arg(long, value_name = "ENDPOINT")]
    pub(crate) bind: Vec<String>,
    /// Seconds to wait for the first reply of a call; 0 waits forever.
    #[arg(long, value_name = "SECONDS", default_value = "30")]
    pub(crate) timeout: f64,
    /// Heartbeat interval in seconds, the server's frequency; 0 disables heartbeats.
    #[arg(long, value_name = "SECONDS", default_value = "5")]
    pub(crate) heartbeat: f64,
    /// Send heartbeats from the start of a call (default: only in answer to the server's).
    #[arg(long = "active-hb")]
    pub(crate) active_hb: bool,
    /// Server only: at most COUNT calls run at once (default unlimited).
    #[arg(long = "pool-size", value_name = "COUNT")]
    pub(crate) pool_size: Option<usize>,
    /// The largest message a peer may send, in bytes or with k, M, G (0: no
    /// limit); a client sends no request larger than it.
    #[arg(long = "max-message-size", value_name = "SIZE", default_value = "16MiB", value_parser = crate::size::message_size)]
    pub(crate) max_message_size: crate::size::MessageSize,
    /// Parse each argument as a JSON document (default: send them as strings).
    #[arg(short = 'j', long)]
    pub(crate) json: bool,
    /// Print results as JSON (also spelled -pj).
    #[arg(long = "print-json")]
    pub(crate) print_json: bool,
    /// Print string results as raw text, without quotes or escapes.
    #[arg(short = 'r', long)]
    pub(crate) raw: bool,
    /// Without METHOD: print the whole _zerorpc_inspect answer; with METHOD: its help (quote '-?' in shells).
    #[arg(short = '?', long)]
    pub(crate) inspect: bool,
    /// Print METHOD's signature and full help instead of calling it (same as `METHOD ?`).
    #[arg(long = "help-method")]
    pub(crate) help_method: bool,
    /// Print every event sent and received to stderr.
    #[arg(short = 'd', long)]
    pub(crate) debug: bool,
    /// The DNS server that resolves dns:NAME endpoints (default: the system's).
    #[arg(
        long = "dns-server",
        value_name = "IP:PORT",
        env = "ZERORPC_DNS_SERVER"
    )]
    pub(crate) dns_server: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub(crate) register: RawRegisterArgs,
    /// When to use colours.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub(crate) color: ColorWhen,
    #[command(flatten)]
    pub(crate) tracing: crate::trace::TraceFlags,
    #[command(flatten)]
    pub(crate) security: crate::security::SecurityFlags,
    // Every positional accepts negative numbers, not only `params`: with
    // --connect/--bind, `add -1 2` is parsed as address `add` and command
    // `-1` before the positional shift (zerorpc-python's argparse takes `-1`
    // as a positional anywhere).
    /// The endpoint, e.g. tcp://127.0.0.1:4242 (left out with --connect/--bind).
    #[arg(allow_negative_numbers = true)]
    pub(crate) address: Option<String>,
    /// The method to call (with --server: the service file).
    #[arg(allow_negative_numbers = true)]
    pub(crate) command: Option<String>,
    /// The method's arguments.
    #[arg(allow_negative_numbers = true)]
    pub(crate) params: Vec<String>,
}

/// `--server --announce`: the server's records kept in DNS while it runs.
#[derive(Debug, Args)]
#[command(next_help_heading = "Announcing a server in DNS (--server --announce)")]
pub(crate) struct RawRegisterArgs {
    /// Add the server's SRV and TXT records under NAME to --zone while it runs, withdrawn when it stops (SIGINT, SIGTERM); the name server is --dns-server.
    #[arg(long, value_name = "NAME")]
    pub(crate) announce: Option<String>,
    /// The zone --announce updates, e.g. svc.example.test.
    #[arg(long, value_name = "ZONE")]
    pub(crate) zone: Option<String>,
    /// The TSIG key signing the updates: a BIND key file as tsig-keygen writes it.
    #[arg(long = "tsig-key", value_name = "FILE")]
    pub(crate) tsig_key: Option<PathBuf>,
    /// The instance name, unique among the service's servers and kept across restarts [default: HOST-PORT].
    #[arg(long = "announce-instance", value_name = "LABEL")]
    pub(crate) announce_instance: Option<String>,
    /// The address announced [default: the bound one; for 0.0.0.0 or *, this machine's address towards the name server].
    #[arg(long = "announce-address", value_name = "IP")]
    pub(crate) announce_address: Option<std::net::IpAddr>,
    /// The records' TTL in seconds.
    #[arg(long = "announce-ttl", value_name = "SECONDS", default_value_t = zerorpc_discovery::DEFAULT_REGISTRATION_TTL)]
    pub(crate) announce_ttl: u32,
    /// The SRV priority (lower is tried first).
    #[arg(long = "announce-priority", value_name = "N", default_value_t = 0)]
    pub(crate) announce_priority: u16,
    /// The SRV weight within its priority.
    #[arg(long = "announce-weight", value_name = "N", default_value_t = 0)]
    pub(crate) announce_weight: u16,
}

/// Where dynamic updates go, checked: the zone, its primary name server
/// and the key file.
#[derive(Clone, Debug)]
pub(crate) struct UpdateTarget {
    pub(crate) server: std::net::SocketAddr,
    pub(crate) zone: String,
    pub(crate) key_file: PathBuf,
}

impl UpdateTarget {
    /// Checks that `what` has the three it needs.
    fn new(
        what: &str,
        server: Option<std::net::SocketAddr>,
        zone: Option<&String>,
        key_file: Option<&PathBuf>,
    ) -> Result<UpdateTarget, Failure> {
        let mut missing = Vec::new();
        if server.is_none() {
            missing.push(
                "--dns-server IP:PORT (or ZERORPC_DNS_SERVER), the zone's primary name server",
            );
        }
        if zone.is_none() {
            missing.push("--zone ZONE");
        }
        if key_file.is_none() {
            missing.push("--tsig-key FILE");
        }
        match (server, zone, key_file) {
            (Some(server), Some(zone), Some(key_file)) => Ok(UpdateTarget {
                server,
                zone: zone.clone(),
                key_file: key_file.clone(),
            }),
            _ => Err(Failure::usage(format!(
                "{what} updates DNS and needs {}",
                missing.join(", ")
            ))),
        }
    }
}

/// `--server --announce`, checked.
#[derive(Clone, Debug)]
pub(crate) struct RegisterArgs {
    pub(crate) name: String,
    pub(crate) target: UpdateTarget,
    pub(crate) instance: Option<String>,
    pub(crate) address: Option<std::net::IpAddr>,
    pub(crate) ttl: u32,
    pub(crate) priority: u16,
    pub(crate) weight: u16,
}

impl RawRegisterArgs {
    /// `None` without --announce; the other flags need it.
    fn validate(
        &self,
        server: bool,
        dns_server: Option<std::net::SocketAddr>,
    ) -> Result<Option<RegisterArgs>, Failure> {
        let Some(name) = &self.announce else {
            let given = [
                (self.zone.is_some(), "--zone"),
                (self.tsig_key.is_some(), "--tsig-key"),
                (self.announce_instance.is_some(), "--announce-instance"),
                (self.announce_address.is_some(), "--announce-address"),
            ];
            if let Some((_, flag)) = given.iter().find(|(given, _)| *given) {
                return Err(Failure::usage(format!(
                    "{flag} is for --server --announce NAME"
                )));
            }
            return Ok(None);
        };
        if !server {
            return Err(Failure::usage(
                "--announce is for --server: it announces the server's endpoints",
            ));
        }
        Ok(Some(RegisterArgs {
            name: name.clone(),
            target: UpdateTarget::new(
                "--announce",
                dns_server,
                self.zone.as_ref(),
                self.tsig_key.as_ref(),
            )?,
            instance: self.announce_instance.clone(),
            address: self.announce_address,
            ttl: self.announce_ttl,
            priority: self.announce_priority,
            weight: self.announce_weight,
        }))
    }
}

/// The `--color` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorWhen {
    /// Colours on a terminal, unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// What the program was asked to do, checked.
#[derive(Debug)]
pub(crate) enum Invocation {
    /// Print a completion script.
    Completions(clap_complete::Shell),
    /// Talk to a service.
    Call(CallArgs),
    /// Serve a service file.
    Serve(ServeArgs),
    /// Print DNS records for a services file.
    Announce(RawAnnounceArgs),
    /// Print what DNS says about a service name.
    Resolve(ResolveArgs),
    /// Collect trace reports.
    Collector(crate::collector::CollectorArgs),
    /// Print a trace.
    Tracedump(crate::tracedump::TracedumpArgs),
    /// Show live counters.
    Top(crate::tracedump::TopArgs),
    /// Write a CURVE key pair.
    Keygen(crate::security::KeygenArgs),
}

/// Where a socket binds and connects; binds happen first, as in zerorpc-python.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints {
    pub(crate) binds: Vec<String>,
    pub(crate) connects: Vec<String>,
    /// Where `dns:` names are resolved, when not the system's server.
    pub(crate) dns_server: Option<std::net::SocketAddr>,
}

impl Endpoints {
    /// All endpoints, for messages.
    pub(crate) fn describe(&self) -> String {
        self.binds
            .iter()
            .chain(&self.connects)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Socket settings shared by client and server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Heartbeat {
    pub(crate) interval: Option<Duration>,
    pub(crate) active: bool,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputStyle {
    /// Python-like `repr`, as zerorpc-python's pprint.
    Readable,
    /// Strings as raw text, other values readable.
    Raw,
    /// JSON.
    Json,
}

/// A client invocation.
#[derive(Debug)]
pub(crate) struct CallArgs {
    pub(crate) endpoints: Endpoints,
    pub(crate) timeout: Option<Duration>,
    pub(crate) heartbeat: Heartbeat,
    pub(crate) max_message_size: Option<u64>,
    pub(crate) debug: bool,
    pub(crate) output: OutputStyle,
    pub(crate) action: Action,
    pub(crate) tracing: crate::trace::TraceFlags,
    pub(crate) security: crate::security::SecurityFlags,
}

/// What the client does.
#[derive(Debug)]
pub(crate) enum Action {
    /// List the methods with the first line of their help.
    List,
    /// Print the whole introspection answer.
    Inspect,
    /// Print one method's signature and full help.
    HelpMethod(String),
    /// Call a method.
    Call { method: String, args: Vec<Value> },
}

/// A server invocation.
#[derive(Debug)]
pub(crate) struct ServeArgs {
    pub(crate) endpoints: Endpoints,
    /// `--announce`: the records kept in DNS while serving.
    pub(crate) register: Option<RegisterArgs>,
    pub(crate) heartbeat: Heartbeat,
    pub(crate) pool_size: Option<usize>,
    pub(crate) max_message_size: Option<u64>,
    pub(crate) debug: bool,
    pub(crate) spec: PathBuf,
    pub(crate) tracing: crate::trace::TraceFlags,
    pub(crate) security: crate::security::SecurityFlags,
}

/// Rewrites zerorpc-python's two-letter single-dash flags, which clap would
/// read as clusters of one-letter flags (`-pj` as `-p -j`).
pub(crate) fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut seen_separator = false;
    args.into_iter()
        .map(|arg| {
            if seen_separator {
                return arg;
            }
            if arg == "--" {
                seen_separator = true;
                return arg;
            }
            if arg == "-pj" {
                OsString::from("--print-json")
            } else {
                arg
            }
        })
        .collect()
}

impl RawArgs {
    /// Checks the raw arguments and gives them their meaning.
    pub(crate) fn validate(self) -> Result<Invocation, Failure> {
        match self.subcommand {
            Some(RawSubcommand::Completions { shell }) => Ok(Invocation::Completions(shell)),
            Some(RawSubcommand::Announce(announce)) => {
                announce.validate()?;
                Ok(Invocation::Announce(announce))
            }
            Some(RawSubcommand::Resolve(resolve)) => Ok(Invocation::Resolve(resolve)),
            Some(RawSubcommand::Collector(args)) => Ok(Invocation::Collector(args)),
            Some(RawSubcommand::Tracedump(args)) => Ok(Invocation::Tracedump(args)),
            Some(RawSubcommand::Top(args)) => Ok(Invocation::Top(args)),
            Some(RawSubcommand::Keygen(args)) => Ok(Invocation::Keygen(args)),
            None => self.rpc.validate(),
        }
    }
}

/// What `zerorpc announce` does with the file.
#[derive(Debug)]
pub(crate) enum AnnounceAction {
    /// Print records for a server's configuration.
    Print(DnsFormat),
    /// Add the records to a zone.
    Update(UpdateTarget),
    /// Remove the records from a zone.
    Withdraw(UpdateTarget),
}

impl RawAnnounceArgs {
    /// What to do with the file, checked.
    pub(crate) fn action(&self) -> Result<AnnounceAction, Failure> {
        let target = |what: &str| {
            UpdateTarget::new(
                what,
                self.dns_server,
                self.zone.as_ref(),
                self.tsig_key.as_ref(),
            )
        };
        let printing_only = [
            (self.nameserver.is_some(), "--nameserver"),
            (self.nameserver_address.is_some(), "--nameserver-address"),
            (self.serial.is_some(), "--serial"),
            (self.out_dir.is_some(), "--out-dir"),
        ];
        let updating_only = [(self.tsig_key.is_some(), "--tsig-key")];
        match self.format {
            Some(format) => {
                if let Some((_, flag)) = updating_only.iter().find(|(given, _)| *given) {
                    return Err(Failure::usage(format!(
                        "{flag} is for --update and --withdraw"
                    )));
                }
                Ok(AnnounceAction::Print(format))
            }
            None => {
                if let Some((_, flag)) = printing_only.iter().find(|(given, _)| *given) {
                    return Err(Failure::usage(format!(
                        "{flag} is for --format (the records printed)"
                    )));
                }
                if self.withdraw {
                    Ok(AnnounceAction::Withdraw(target("--withdraw")?))
                } else {
                    Ok(AnnounceAction::Update(target("--update")?))
                }
            }
        }
    }

    /// What can be checked before reading the file; whether --out-dir is
    /// needed depends on its networks.
    fn validate(&self) -> Result<(), Failure> {
        let AnnounceAction::Print(format) = self.action()? else {
            return Ok(());
        };
        if self.zone.is_some() != self.nameserver.is_some() {
            return Err(Failure::usage(
                "--format with --zone writes a complete zone: give --zone and --nameserver together",
            ));
        }
        if format == DnsFormat::Dnsmasq && self.zone.is_some() {
            return Err(Failure::usage(
                "--zone is for bind and tinydns: dnsmasq answers for the names it is given \
                 without a zone",
            ));
        }
        if format != DnsFormat::Bind && self.out_dir.is_some() {
            return Err(Failure::usage(
                "--out-dir is for --format bind (the zone files of its views)",
            ));
        }
        Ok(())
    }
}

impl RawRpcArgs {
    fn validate(self) -> Result<Invocation, Failure> {
        let RawRpcArgs {
            mut address,
            mut command,
            mut params,
            ..
        } = self;
        // zerorpc-python's positional shift: with --bind/--connect, what was
        // parsed as the address is the command, and so on down the line.
        if !self.bind.is_empty() || !self.connect.is_empty() {
            if let Some(command) = command.take() {
                params.insert(0, command);
            }
            command = address.take();
        }
        let mut connects = Vec::new();
        connects.extend(address);
        connects.extend(self.connect);
        let endpoints = Endpoints {
            binds: self.bind,
            connects,
            dns_server: self.dns_server,
        };
        if endpoints.binds.is_empty() && endpoints.connects.is_empty() {
            return Err(Failure::usage(
                "no endpoint given: pass ENDPOINT, --connect ENDPOINT or --bind ENDPOINT (see --help)",
            ));
        }
        for endpoint in endpoints.binds.iter().chain(&endpoints.connects) {
            check_endpoint(endpoint)?;
        }
        let heartbeat = Heartbeat {
            interval: seconds("--heartbeat", self.heartbeat)?,
            active: self.active_hb,
        };
        self.security.validate(&endpoints)?;
        if self.server {
            let Some(spec) = command else {
                return Err(Failure::usage(
                    "--server needs a service file: zerorpc --server --bind ENDPOINT SERVICE.toml",
                ));
            };
            if !params.is_empty() {
                return Err(Failure::usage(format!(
                    "unexpected arguments after the service file: {}",
                    params.join(" ")
                )));
            }
            if let Some(size) = self.pool_size.filter(|n| !(1..=MAX_LIMIT).contains(n)) {
                return Err(Failure::usage(format!(
                    "--pool-size must be between 1 and {MAX_LIMIT}, got {size}"
                )));
            }
            let register = self.register.validate(true, endpoints.dns_server)?;
            return Ok(Invocation::Serve(ServeArgs {
                endpoints,
                register,
                heartbeat,
                pool_size: self.pool_size,
                max_message_size: self.max_message_size.0,
                debug: self.debug,
                spec: PathBuf::from(spec),
                tracing: self.tracing,
                security: self.security,
            }));
        }
        if self.pool_size.is_some() {
            return Err(Failure::usage("--pool-size is for --server only"));
        }
        self.register.validate(false, endpoints.dns_server)?;
        let output = if self.print_json {
            OutputStyle::Json
        } else if self.raw {
            OutputStyle::Raw
        } else {
            OutputStyle::Readable
        };
        let action = match command {
            None if self.help_method => return Err(Failure::usage("--help-method needs a METHOD")),
            None if self.inspect => Action::Inspect,
            None => Action::List,
            Some(method)
                if self.inspect || self.help_method || (params.len() == 1 && params[0] == "?") =>
            {
                if !params.is_empty() && params != ["?"] {
                    return Err(Failure::usage(
                        "arguments are not used when asking for a method's help",
                    ));
                }
                Action::HelpMethod(method)
            }
            Some(method) => {
                let args = if self.json {
                    params
                        .iter()
                        .enumerate()
                        .map(|(i, p)| json_argument(i, p))
                        .collect::<Result<_, _>>()?
                } else {
                    params.into_iter().map(Value::from).collect()
                };
                Action::Call { method, args }
            }
        };
        Ok(Invocation::Call(CallArgs {
            endpoints,
            timeout: seconds("--timeout", self.timeout)?,
            heartbeat,
            max_message_size: self.max_message_size.0,
            debug: self.debug,
            output,
            action,
            tracing: self.tracing,
            security: self.security,
        }))
    }
}

/// The largest concurrency limit (`--pool-size`, `max_concurrent`): a
/// limit is a tokio semaphore, which panics when given more permits.
pub(crate) const MAX_LIMIT: usize = tokio::sync::Semaphore::MAX_PERMITS;

/// A non-negative number of seconds; 0 means "none".
fn seconds(flag: &str, value: f64) -> Result<Option<Duration>, Failure> {
    if !value.is_finite() || !(0.0..=1e9).contains(&value) {
        return Err(Failure::usage(format!(
            "{flag} must be a number of seconds between 0 and 1e9, got {value}"
        )));
    }
    Ok((value > 0.0).then(|| Duration::from_secs_f64(value)))
}

/// Catches the mistakes ZeroMQ would only report as "Invalid argument".
/// Names (`dns:NAME`) pass: the resolver step decides what they mean. So
/// does an unknown transport: the command line has the right shape, and
/// the transport refuses it (a connection error) with the same parser's
/// explanation.
fn check_endpoint(endpoint: &str) -> Result<(), Failure> {
    match Endpoint::parse(endpoint) {
        Ok(_) => Ok(()),
        Err(e) if e.is_unknown_transport() => Ok(()),
        Err(e) => Err(Failure::usage(e.to_string())),
    }
}

fn json_argument(index: usize, text: &str) -> Result<Value, Failure> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => Ok(crate::render::json_to_value(json)),
        Err(e) => Err(Failure::usage(format!(
            "argument {} ({text:?}) is not valid JSON (-j): {e}",
            index + 1
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, Failure> {
        let argv = normalize(
            std::iter::once("zerorpc")
                .chain(args.iter().copied())
                .map(OsString::from),
        );
        RawArgs::try_parse_from(argv)
            .map_err(|e| Failure::usage(e.to_string()))?
            .validate()
    }

    fn call(args: &[&str]) -> CallArgs {
        match parse(args) {
            Ok(Invocation::Call(call)) => call,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn positional_shift_with_connect() {
        let c = call(&["--connect", "tcp://127.0.0.1:1", "add", "4", "5"]);
        assert_eq!(c.endpoints.connects, ["tcp://127.0.0.1:1"]);
        match c.action {
            Action::Call { method, args } => {
                assert_eq!(method, "add");
                assert_eq!(args, [Value::from("4"), Value::from("5")]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn with_connect_the_first_positional_is_the_method() {
        let c = call(&["tcp://127.0.0.1:1", "--connect", "tcp://127.0.0.1:2"]);
        assert_eq!(c.endpoints.connects, ["tcp://127.0.0.1:2"]);
        assert!(matches!(c.action, Action::Call { method, .. } if method == "tcp://127.0.0.1:1"));
    }

    #[test]
    fn pj_and_json_and_negative_numbers() {
        let c = call(&["-pj", "-j", "tcp://127.0.0.1:1", "add", "-1", "2.5"]);
        assert_eq!(c.output, OutputStyle::Json);
        match c.action {
            Action::Call { args, .. } => assert_eq!(args, [Value::from(-1), Value::from(2.5)]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn negative_numbers_after_the_positional_shift() {
        let c = call(&["-j", "--connect", "tcp://127.0.0.1:1", "add", "-1", "-2"]);
        match c.action {
            Action::Call { method, args } => {
                assert_eq!(method, "add");
                assert_eq!(args, [Value::from(-1), Value::from(-2)]);
            }
            other => panic!("{other:?}"),
        }
        let c = call(&["--bind", "tcp://127.0.0.1:1", "neg", "-3"]);
        match c.action {
            Action::Call { method, args } => {
                assert_eq!(method, "neg");
                assert_eq!(args, [Value::from("-3")]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pool_size_beyond_what_a_semaphore_holds_is_a_usage_error() {
        let huge = usize::MAX.to_string();
        let result = parse(&[
            "--server",
            "--pool-size",
            &huge,
            "--bind",
            "tcp://h:1",
            "s.toml",
        ]);
        match result {
            Err(failure) => {
                assert_eq!(failure.code(), crate::exit::code::USAGE);
                assert!(failure.to_string().contains("--pool-size"), "{failure}");
            }
            Ok(other) => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn help_forms() {
        assert!(
            matches!(call(&["tcp://h:1", "add", "?"]).action, Action::HelpMethod(m) if m == "add")
        );
        assert!(matches!(
            call(&["--help-method", "tcp://h:1", "add"]).action,
            Action::HelpMethod(_)
        ));
        assert!(matches!(
            call(&["-?", "tcp://h:1", "add"]).action,
            Action::HelpMethod(_)
        ));
        assert!(matches!(call(&["-?", "tcp://h:1"]).action, Action::Inspect));
        assert!(matches!(call(&["tcp://h:1"]).action, Action::List));
    }

    #[test]
    fn usage_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["not-an-endpoint"]).is_err());
        assert!(parse(&["-j", "tcp://h:1", "add", "{"]).is_err());
        assert!(parse(&["--timeout", "-1", "tcp://h:1"]).is_err());
        assert!(parse(&["--server", "--bind", "tcp://h:1"]).is_err());
        assert!(parse(&["--client", "--server", "tcp://h:1", "x"]).is_err());
    }

    #[test]
    fn server_and_completions() {
        assert!(matches!(
            parse(&["--server", "--bind", "tcp://127.0.0.1:1", "s.toml"]),
            Ok(Invocation::Serve(_))
        ));
        assert!(matches!(
            parse(&["completions", "bash"]),
            Ok(Invocation::Completions(_))
        ));
    }

    #[test]
    fn dynamic_update_flags() {
        let update = [
            "--zone",
            "example.test",
            "--dns-server",
            "127.0.0.1:53",
            "--tsig-key",
            "k.key",
        ];
        let serve = [
            "--server",
            "--bind",
            "tcp://127.0.0.1:1",
            "--announce",
            "tools.example.test",
        ];
        match parse(&[&serve[..], &update, &["s.toml"]].concat()) {
            Ok(Invocation::Serve(serve)) => {
                let register = serve.register.expect("--announce");
                assert_eq!(register.target.zone, "example.test");
                assert_eq!(register.ttl, zerorpc_discovery::DEFAULT_REGISTRATION_TTL);
            }
            other => panic!("{other:?}"),
        }
        match parse(&[&["announce", "s.yml", "--withdraw"][..], &update].concat()) {
            Ok(Invocation::Announce(announce)) => {
                assert!(matches!(announce.action(), Ok(AnnounceAction::Withdraw(_))))
            }
            other => panic!("{other:?}"),
        }
        for (bad, says) in [
            (&[&serve[..], &["s.toml"]].concat(), "--tsig-key FILE"),
            (
                &[&["--zone", "z", "tcp://h:1"][..]].concat(),
                "--zone is for --server",
            ),
            (
                &[&["--announce", "n"][..], &update, &["tcp://h:1"]].concat(),
                "--announce is for --server",
            ),
            (
                &[&["announce", "s.yml", "--update"][..], &update[..4]].concat(),
                "needs --tsig-key FILE",
            ),
            (
                &[
                    &["announce", "s.yml", "--update", "--serial", "3"][..],
                    &update,
                ]
                .concat(),
                "--serial is for --format",
            ),
            (
                &["announce", "s.yml", "--format", "bind", "--tsig-key", "k"][..].to_vec(),
                "--tsig-key is for --update",
            ),
            (
                &["announce", "s.yml", "--format", "bind", "--update"][..].to_vec(),
                "cannot be used with",
            ),
        ] {
            match parse(bad) {
                Err(failure) => {
                    assert_eq!(failure.code(), crate::exit::code::USAGE, "{bad:?}");
                    assert!(failure.to_string().contains(says), "{bad:?}: {failure}");
                }
                Ok(other) => panic!("{bad:?} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn announce_flags() {
        assert!(matches!(
            parse(&["announce", "s.yml", "--format", "tinydns"]),
            Ok(Invocation::Announce(_))
        ));
        for bad in [
            &["announce", "s.yml"][..],
            &["announce", "s.yml", "--format", "nsd"],
            &[
                "announce",
                "s.yml",
                "--format",
                "bind",
                "--zone",
                "example.test",
            ],
            &[
                "announce",
                "s.yml",
                "--format",
                "dnsmasq",
                "--zone",
                "a",
                "--nameserver",
                "b",
            ],
            &["announce", "s.yml", "--format", "tinydns", "--out-dir", "d"],
        ] {
            match parse(bad) {
                Err(failure) => assert_eq!(failure.code(), crate::exit::code::USAGE, "{bad:?}"),
                Ok(other) => panic!("{bad:?} accepted: {other:?}"),
            }
        }
    }
}
