//! A worker joining a hub by name: `zerorpc-hub` binds two addresses,
//! dnsmasq announces them under two names, `zerorpc --server --connect
//! dns:NAME` serves behind the hub and clients call the other name.
//!
//! The `zerorpc` CLI follows names with the resolver's default TTL floor
//! (5 s) and query timeout, so the waits here are bounded generously and
//! never assume how long a lookup takes.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zerorpc::Client;
use zerorpc_discovery::DnsResolver;
use zerorpc_test_support::{Process, free_port};

use super::dns::Announced;
use super::{BIN, SPEC, STARTUP, TempDir, assert_status, stdout, zerorpc};

/// The name of the hub's front end, which clients connect to.
const CALLS: &str = "calls.hub.example.test";
/// The name of the hub's back end, which workers connect to.
const WORKERS: &str = "workers.hub.example.test";

/// The longest a worker may take to notice that DNS went down or came
/// back: a lookup every floor (5 s), failing within its timeouts.
const NOTICE: Duration = Duration::from_secs(90);

struct NamedHub {
    dns: Announced,
    /// Where the hub's front end listens, for clients that do not resolve.
    calls: String,
    /// Where its back end listens, which workers find by name.
    workers: String,
    _hub: Process,
    worker: Process,
    _dir: TempDir,
}

impl NamedHub {
    /// The hub, its names in DNS, and one worker of programs connected to
    /// it by name; `None` when dnsmasq is missing (and CI is not set).
    fn start() -> Option<NamedHub> {
        let (calls, workers) = (free_port(), free_port());
        let dns = Announced::start(&[(CALLS, calls), (WORKERS, workers)])?;
        let calls = format!("tcp://127.0.0.1:{calls}");
        let workers = format!("tcp://127.0.0.1:{workers}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_zerorpc-hub"));
        command.args(["--in", &calls, "--out", &workers]);
        let hub = Process::spawn("zerorpc-hub", command).expect("starting zerorpc-hub");
        hub.wait_for_stderr_line("zerorpc-hub: hub (queue)", STARTUP)
            .expect("the hub binds");

        let dir = TempDir::new();
        let spec = dir.file("tools.toml", SPEC);
        let mut command = Command::new(BIN);
        command
            .args(["--dns-server", &dns.server(), "--server", "--connect"])
            .arg(format!("dns:{WORKERS}"))
            .arg(&spec);
        let worker = Process::spawn("zerorpc --server", command).expect("starting the worker");
        worker
            .wait_for_stderr_line("serving", STARTUP)
            .expect("the worker resolves the hub's name and serves");
        Some(NamedHub {
            dns,
            calls,
            workers,
            _hub: hub,
            worker,
            _dir: dir,
        })
    }

    /// The worker's stderr lines containing `part`.
    fn worker_said(&self, part: &str) -> Vec<String> {
        let lines = self.worker.stderr_lines();
        lines.into_iter().filter(|l| l.contains(part)).collect()
    }
}

#[test]
fn a_worker_joins_a_hub_by_name() {
    let Some(hub) = NamedHub::start() else {
        return;
    };
    // The worker connects to the name, which DNS resolves to the hub's
    // back end.
    let connecting = hub.worker_said("connecting to");
    assert_eq!(
        connecting,
        [format!("connecting to \"dns:{WORKERS}\"")],
        "{}",
        hub.worker.report()
    );
    let serving = hub.worker_said("serving");
    assert!(
        serving[0].ends_with(&format!(" on {}", hub.workers)),
        "{serving:?}"
    );
    // A client calling the hub by name reaches the worker behind it.
    let out = zerorpc(&[
        "--dns-server",
        &hub.dns.server(),
        "--timeout",
        "10",
        "-r",
        &format!("dns:{CALLS}"),
        "say",
        "through",
        "the hub",
    ]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "through the hub\n");
    // And its listing is the worker's.
    let out = zerorpc(&[
        "--dns-server",
        &hub.dns.server(),
        "--timeout",
        "10",
        &format!("dns:{CALLS}"),
    ]);
    assert_status(&out, 0);
    assert!(stdout(&out).starts_with("[tools]\n"), "{}", stdout(&out));
}

#[test]
fn a_worker_logs_a_dns_outage_and_its_end_once_while_calls_go_on() {
    let Some(mut hub) = NamedHub::start() else {
        return;
    };
    // A client of the hub's name that lives through the outage too.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let _entered = runtime.enter();
    let resolver = DnsResolver::builder()
        .name_server(hub.dns.address())
        .ttl_floor(Duration::from_secs(1))
        .ttl_ceiling(Duration::from_secs(1))
        .build()
        .expect("the resolver builds");
    let client = Client::builder()
        .resolver(Arc::new(resolver))
        .timeout(Some(Duration::from_secs(10)))
        .connect(format!("dns:{CALLS}"))
        .build()
        .expect("the hub's name resolves")
        .blocking();
    let call = || {
        let said: String = client
            .call("say", ("on",))
            .unwrap_or_else(|e| panic!("a call failed: {e}\n{}", hub.worker.report()));
        assert_eq!(said, "on\n");
    };
    call();

    // Calls until `done`, bounded by NOTICE; returns how many were made.
    let calls_until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + NOTICE;
        let mut made = 0;
        while !done() {
            assert!(Instant::now() < deadline, "not within {NOTICE:?}: {what}");
            call();
            made += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        made
    };

    hub.dns.stop();
    let failed = "DNS resolution failed";
    let made = calls_until("the worker warns that DNS is down", &|| {
        !hub.worker_said(failed).is_empty()
    });
    assert!(made > 0, "calls went on while DNS was down");
    let warning = &hub.worker_said(failed)[0];
    assert!(
        warning.starts_with("zerorpc: warning: DNS resolution failed; keeping the last answer")
            && warning.contains(&format!("endpoint=dns:{WORKERS}")),
        "{warning}"
    );

    hub.dns.restart();
    calls_until("the worker says DNS works again", &|| {
        !hub.worker_said("works again").is_empty()
    });
    // A client that does not resolve reaches the same worker.
    let out = zerorpc(&["--timeout", "10", "-r", &hub.calls, "say", "after"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "after\n");

    let (warnings, news) = (hub.worker_said(failed), hub.worker_said("works again"));
    assert_eq!(warnings.len(), 1, "{}", hub.worker.report());
    assert_eq!(
        news,
        [format!(
            "zerorpc: info: DNS resolution works again (endpoint=dns:{WORKERS})"
        )],
        "{}",
        hub.worker.report()
    );
}
