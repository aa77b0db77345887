//! `zerorpc-hub`: runs ZeroRPC hubs (queue, forwarder, streamer) from a
//! YAML file or from flags, prints their stats as JSON lines on stderr, and
//! stops cleanly on SIGTERM or SIGINT. See `docs/hub.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use zerorpc::transport::{Authenticator, PolicyFiles, read_key_pair};
use zerorpc_hub::{
    Hub, HubConfig, HubKind, RouteObserver, SecurityFiles, SideSecurity, parse_config,
};
use zerorpc_tracing_collector::Tracer;

// The `zerorpc` binary's log lines, so that refused peers are told.
#[path = "../log.rs"]
mod log;
// The command lines of both binaries read sizes the same way.
#[path = "../size.rs"]
mod size;

/// Parses a number of bytes as `--max-message-size` does; `0` is zero.
fn byte_count(text: &str) -> Result<usize, String> {
    let bytes = size::parse_size(text)?.unwrap_or(0);
    usize::try_from(bytes).map_err(|_| format!("`{text}` is too large a size"))
}

/// How often the main thread looks at signals, hub health and stats timers.
const TICK: Duration = Duration::from_millis(50);

/// Run ZeroRPC hubs: channel-aware load balancing of calls over workers
/// (queue), fan-out of events (forwarder), fan-in of events (streamer).
///
/// Either give a YAML file (one hub as a mapping, or a list of hubs), or
/// describe one hub with --in and --out. Stats are printed to stderr as one
/// JSON line per hub on SIGUSR1, every --stats-interval seconds, and on
/// exit. SIGHUP rereads the access lists of the hubs' `in_security` and
/// `out_security` (PLAIN and CURVE). SIGTERM and SIGINT stop the hubs and
/// exit with status 0.
#[derive(Parser, Debug)]
#[command(
    name = "zerorpc-hub",
    version,
    after_help = "Example file:\n  in: \"tcp://*:1111\"\n  out: \"tcp://*:2222\"\n  type: queue"
)]
struct Args {
    /// YAML configuration file.
    #[arg(value_name = "FILE", required_unless_present = "in_endpoint", conflicts_with_all = ["in_endpoint", "out_endpoint"])]
    config: Option<PathBuf>,
    /// Endpoint to bind for clients, publishers or pushers.
    #[arg(long = "in", value_name = "ENDPOINT", requires = "out_endpoint")]
    in_endpoint: Option<String>,
    /// Endpoint to bind for workers, subscribers or pullers.
    #[arg(long = "out", value_name = "ENDPOINT", requires = "in_endpoint")]
    out_endpoint: Option<String>,
    // The per-hub flags conflict with a file, so that a flag meant to
    // override the file is refused rather than silently ignored.
    /// Hub type (without a file).
    #[arg(long = "type", value_name = "TYPE", default_value = "queue", value_parser = parse_kind, conflicts_with = "config")]
    kind: HubKind,
    /// Hub name in logs and stats (without a file).
    #[arg(long, default_value = "hub", conflicts_with = "config")]
    name: String,
    /// Queue: forget a channel idle for this many seconds (without a file).
    #[arg(long, value_name = "SECS", value_parser = parse_secs, conflicts_with = "config")]
    idle_timeout: Option<Duration>,
    /// Queue: calls that may wait while no worker is connected (without a file).
    #[arg(long, value_name = "N", conflicts_with = "config")]
    queue_limit: Option<usize>,
    /// Queue: seconds a call may wait for a worker (without a file).
    #[arg(long, value_name = "SECS", value_parser = parse_secs, conflicts_with = "config")]
    queue_timeout: Option<Duration>,
    /// Queue: messages that may wait in the hub for one peer that is not
    /// reading, before its calls fail (without a file).
    #[arg(long, value_name = "N", conflicts_with = "config")]
    peer_queue_limit: Option<usize>,
    /// Queue: bytes that may wait in the hub for one peer that is not
    /// reading, with k, M or G (default 64M) (without a file).
    #[arg(long, value_name = "SIZE", value_parser = byte_count, conflicts_with = "config")]
    peer_queue_bytes: Option<usize>,
    /// The largest message a peer may send, in bytes or with k, M, G (0: no
    /// limit; default 16MiB) (without a file).
    #[arg(long = "max-message-size", value_name = "SIZE", value_parser = size::message_size, conflicts_with = "config")]
    max_message_size: Option<size::MessageSize>,
    /// `in` side: serve CURVE with this key pair (a czmq secret
    /// certificate, as `zerorpc keygen` writes) (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    in_curve_secret_key_file: Option<PathBuf>,
    /// `in` side: the clients' CURVE public keys let in (one Z85 key per
    /// line, or a directory of `.pub` certificates) (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    in_curve_allow_file: Option<PathBuf>,
    /// `in` side: serve PLAIN to the users of this file (`user:password`
    /// lines) (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    in_plain_passwords_file: Option<PathBuf>,
    /// `in` side: only these IP addresses are let in (one per line)
    /// (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    in_allow_addresses_file: Option<PathBuf>,
    /// `out` side: serve CURVE with this key pair (a czmq secret
    /// certificate, as `zerorpc keygen` writes) (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    out_curve_secret_key_file: Option<PathBuf>,
    /// `out` side: the workers' CURVE public keys let in (one Z85 key per
    /// line, or a directory of `.pub` certificates) (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    out_curve_allow_file: Option<PathBuf>,
    /// `out` side: serve PLAIN to the users of this file (`user:password`
    /// lines) (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    out_plain_passwords_file: Option<PathBuf>,
    /// `out` side: only these IP addresses are let in (one per line)
    /// (without a file).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    out_allow_addresses_file: Option<PathBuf>,
    /// Print stats every SECS seconds (default for every hub; a file's
    /// `stats_interval` wins).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    stats_interval: Option<Duration>,
    /// Check the configuration and exit without starting anything.
    #[arg(long)]
    check: bool,
    /// Report the traced requests a queue passes on to the trace collector
    /// at ENDPOINT (repeatable; the environment variable takes a
    /// comma-separated list). See docs/tracing.md.
    #[arg(
        long = "trace-collector",
        value_name = "ENDPOINT",
        env = "ZERORPC_TRACE_COLLECTOR",
        value_delimiter = ','
    )]
    trace_collectors: Vec<String>,
}

/// Reports the traced requests a queue routes, named after the hub.
struct RouteTracing(Tracer);

impl RouteObserver for RouteTracing {
    fn request(&self, header: &zerorpc::wire::Header, method: &str) {
        self.0.report_relayed(header, method);
    }
}

/// A hub's route observer when tracing is asked for.
fn route_tracing(name: &str, collectors: &[String]) -> anyhow::Result<Option<Arc<RouteTracing>>> {
    if collectors.is_empty() {
        return Ok(None);
    }
    let tracer = collectors
        .iter()
        .fold(Tracer::builder().name(name), |b, c| b.collector(c))
        .build()
        .with_context(|| format!("hub `{name}`: cannot start tracing"))?;
    Ok(Some(Arc::new(RouteTracing(tracer))))
}

/// The access lists of one side of a hub, reread on SIGHUP.
struct AccessLists {
    what: String,
    authenticator: Authenticator,
    files: PolicyFiles,
}

impl AccessLists {
    /// Rereads the files; on failure the lists in force stay.
    fn reload(&self) {
        match self.files.load() {
            Ok(policy) => {
                self.authenticator.set_policy(policy);
                eprintln!("zerorpc-hub: {}: access lists reloaded", self.what);
            }
            Err(e) => eprintln!(
                "zerorpc-hub: {}: access lists not reloaded, the previous ones stay: {}",
                self.what,
                zerorpc::error_chain(&e)
            ),
        }
    }
}

/// Reads the files of each side's `*_security` key into the mechanism
/// the hub applies and the access lists our ZAP handler applies.
fn secure(config: &mut HubConfig) -> anyhow::Result<Vec<AccessLists>> {
    let mut lists = Vec::new();
    let sides = [
        ("in", config.in_security_files.clone()),
        ("out", config.out_security_files.clone()),
    ];
    for (side, files) in sides {
        let Some(files) = files else { continue };
        let what = format!("hub `{}` {side}_security", config.name);
        let (security, access) = side_security(what, &files)?;
        match side {
            "in" => config.in_security = security,
            _ => config.out_security = security,
        }
        lists.push(access);
    }
    Ok(lists)
}

fn side_security(
    what: String,
    files: &SecurityFiles,
) -> anyhow::Result<(SideSecurity, AccessLists)> {
    match (&files.curve_secret_key_file, &files.plain_passwords_file) {
        (Some(_), Some(_)) => bail!("{what}: PLAIN and CURVE cannot be used together: choose one"),
        (None, None) => {
            bail!("{what}: give curve_secret_key_file (CURVE) or plain_passwords_file (PLAIN)")
        }
        (None, Some(_)) if files.curve_allow_file.is_some() => {
            bail!("{what}: curve_allow_file needs curve_secret_key_file")
        }
        _ => {}
    }
    let policy_files = PolicyFiles {
        curve_allow: files.curve_allow_file.clone(),
        plain_passwords: files.plain_passwords_file.clone(),
        addresses: files.allow_addresses_file.clone(),
    };
    let policy = policy_files.load().with_context(|| what.clone())?;
    let authenticator = Authenticator::new(policy).with_context(|| what.clone())?;
    let zap_domain = authenticator.zap_domain().to_owned();
    let security = match &files.curve_secret_key_file {
        Some(path) => {
            let keys = read_key_pair(path).with_context(|| what.clone())?;
            SideSecurity::Curve {
                public_key: *keys.public().as_bytes(),
                secret_key: *keys.secret_bytes(),
                zap_domain,
            }
        }
        None => SideSecurity::Plain { zap_domain },
    };
    let access = AccessLists {
        what,
        authenticator,
        files: policy_files,
    };
    Ok((security, access))
}

fn parse_kind(text: &str) -> Result<HubKind, String> {
    text.parse()
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    // The same bounds as in a file: below 1 ms would round to nothing.
    if !(1e-3..=1e9).contains(&secs) {
        return Err(format!(
            "expected a positive number of seconds (0.001 to 1e9), found {text}"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    // Large messages churn glibc's heaps: see `tune_malloc`.
    zerorpc::transport::tune_malloc();
    let args = Args::parse();
    log::install();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("zerorpc-hub: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn configs(args: &Args) -> anyhow::Result<Vec<HubConfig>> {
    let mut configs = match (&args.config, &args.in_endpoint, &args.out_endpoint) {
        (Some(path), _, _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            parse_config(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        (None, Some(inp), Some(out)) => {
            let mut config = HubConfig::new(args.kind, inp.clone(), out.clone());
            config.name = args.name.clone();
            if let Some(d) = args.idle_timeout {
                config.idle_timeout = d;
            }
            if let Some(n) = args.queue_limit {
                config.queue_limit = n;
            }
            if let Some(d) = args.queue_timeout {
                config.queue_timeout = d;
            }
            if let Some(n) = args.peer_queue_limit {
                config.peer_queue_limit = n;
            }
            if let Some(n) = args.peer_queue_bytes {
                config.peer_queue_bytes = n;
            }
            if let Some(size::MessageSize(limit)) = args.max_message_size {
                config.max_message_size = limit;
            }
            config.in_security_files = security_files(
                &args.in_curve_secret_key_file,
                &args.in_curve_allow_file,
                &args.in_plain_passwords_file,
                &args.in_allow_addresses_file,
            );
            config.out_security_files = security_files(
                &args.out_curve_secret_key_file,
                &args.out_curve_allow_file,
                &args.out_plain_passwords_file,
                &args.out_allow_addresses_file,
            );
            vec![config]
        }
        _ => bail!("give a configuration file, or both --in and --out"),
    };
    for config in &mut configs {
        if config.stats_interval.is_none() {
            config.stats_interval = args.stats_interval;
        }
    }
    Ok(configs)
}

/// One side's security flags, as a file's `*_security` key would give
/// them; `None` when no flag is given.
fn security_files(
    curve_secret_key: &Option<PathBuf>,
    curve_allow: &Option<PathBuf>,
    plain_passwords: &Option<PathBuf>,
    allow_addresses: &Option<PathBuf>,
) -> Option<SecurityFiles> {
    let mut files = SecurityFiles::default();
    files.curve_secret_key_file.clone_from(curve_secret_key);
    files.curve_allow_file.clone_from(curve_allow);
    files.plain_passwords_file.clone_from(plain_passwords);
    files.allow_addresses_file.clone_from(allow_addresses);
    (files != SecurityFiles::default()).then_some(files)
}

fn print_stats(hub: &Hub) {
    eprintln!("{}", hub.stats().to_json());
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut configs = configs(&args)?;
    let mut access_lists = Vec::new();
    for config in &mut configs {
        access_lists.extend(secure(config)?);
    }
    if args.check {
        // What starting would refuse before binding anything, `--check`
        // refuses too: flags are not checked on the way in, as a file is.
        for config in &configs {
            config.check()?;
        }
        for config in &configs {
            println!(
                "{}: {} in {} out {}",
                config.name, config.kind, config.in_endpoint, config.out_endpoint
            );
        }
        return Ok(());
    }
    // Handlers are in place before any socket exists, so a signal that comes
    // early still ends in a clean shutdown rather than the default action.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGUSR1, SIGHUP])
        .context("cannot install signal handlers")?;
    let mut hubs: Vec<Hub> = Vec::with_capacity(configs.len());
    let mut timers = Vec::with_capacity(configs.len());
    let mut tracers = Vec::new();
    for config in configs {
        let interval = config.stats_interval;
        let tracing = route_tracing(&config.name, &args.trace_collectors)?;
        tracers.extend(tracing.clone());
        let observer = tracing.map(|t| t as Arc<dyn RouteObserver>);
        // On error, the hubs already started are stopped by their drop.
        // The transport's context: one ZAP handler serves every socket
        // of the process, and inproc:// works between the hubs.
        let hub = Hub::start_observed(config, zerorpc::transport::context(), observer)?;
        eprintln!(
            "zerorpc-hub: {} ({}) in {} out {}",
            hub.name(),
            hub.kind(),
            hub.in_endpoint(),
            hub.out_endpoint()
        );
        timers.push(interval.map(|i| (i, Instant::now() + i)));
        hubs.push(hub);
    }
    let result = loop {
        let mut stop = None;
        for signal in signals.pending() {
            match signal {
                SIGUSR1 => hubs.iter().for_each(print_stats),
                SIGHUP => access_lists.iter().for_each(AccessLists::reload),
                other => stop = Some(other),
            }
        }
        if let Some(signal) = stop {
            eprintln!("zerorpc-hub: signal {signal}, stopping");
            break Ok(());
        }
        if let Some(dead) = hubs.iter().find(|h| h.is_finished()) {
            break Err(anyhow::anyhow!(
                "hub `{}` stopped unexpectedly",
                dead.name()
            ));
        }
        let now = Instant::now();
        for (hub, timer) in hubs.iter().zip(&mut timers) {
            if let Some((interval, due)) = timer {
                if now >= *due {
                    print_stats(hub);
                    *due = now + *interval;
                }
            }
        }
        std::thread::sleep(TICK);
    };
    for hub in &hubs {
        hub.stop();
    }
    for tracing in &tracers {
        tracing.0.flush(Duration::from_secs(1));
    }
    let mut failure = None;
    for hub in hubs {
        print_stats(&hub);
        if let Err(error) = hub.join() {
            failure.get_or_insert(error);
        }
    }
    match (result, failure) {
        (Err(e), Some(cause)) => Err(e.context(cause)),
        (Err(e), None) => Err(e),
        (Ok(()), Some(cause)) => Err(cause.into()),
        (Ok(()), None) => Ok(()),
    }
}
