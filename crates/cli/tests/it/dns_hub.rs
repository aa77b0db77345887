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
use zerorpc_test_support::{Process, free_port, wait_until};

use super::dns::{Announced, port_of};
use super::{BIN, SPEC, STARTUP, TempDir, assert_status, stdout, zerorpc};

/// The name of the hub's front end, which clients connect to.
const CALLS: &str = "calls.hub.example.test";
/// The name of the hub's back end, which workers connect to.
const WORKERS: &str = "workers.hub.example.test";

/// The longest a worker may take to notice that DNS went down or came
/// back: a lookup every floor (5 s), failing within its timeouts.
const NOTICE: Duration = Duration::from_secs(90);

/// A `zerorpc-hub` queue on two free ports of 127.0.0.1.
struct Hub {
    process: Process,
    /// Where its front end listens, for clients that do not resolve.
    calls: String,
    /// Where its back end listens, which workers find by name.
    workers: String,
}

impl Hub {
    fn start() -> Hub {
        let calls = format!("tcp://127.0.0.1:{}", free_port());
        let workers = format!("tcp://127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_zerorpc-hub"));
        command.args(["--in", &calls, "--out", &workers]);
        let process = Process::spawn("zerorpc-hub", command).expect("starting zerorpc-hub");
        process
            .wait_for_stderr_line("zerorpc-hub: hub (queue)", STARTUP)
            .expect("the hub binds");
        Hub {
            process,
            calls,
            workers,
        }
    }

    /// Its two names, announced at its two ports.
    fn names(&self) -> [(&'static str, u16); 2] {
        [
            (CALLS, port_of(&self.calls)),
            (WORKERS, port_of(&self.workers)),
        ]
    }

    /// How many workers are connected now, from the stats the hub prints
    /// on SIGUSR1.
    fn workers_connected(&mut self) -> usize {
        let stats_lines = |hub: &Hub| {
            let lines = hub.process.stderr_lines();
            lines.into_iter().filter(|l| l.starts_with('{')).count()
        };
        let before = stats_lines(self);
        self.process
            .signal(libc::SIGUSR1)
            .expect("signalling the hub");
        assert!(
            wait_until(STARTUP, || stats_lines(self) > before),
            "no stats line\n{}",
            self.process.report()
        );
        let lines = self.process.stderr_lines();
        let last = lines
            .iter()
            .rfind(|l| l.starts_with('{'))
            .expect("a stats line");
        let stats: serde_json::Value = serde_json::from_str(last).expect("stats are JSON");
        stats["workers"].as_array().map_or(0, Vec::len)
    }
}

/// A hub, its names in DNS, and one worker of programs connected to it by
/// name.
struct NamedHub {
    dns: Announced,
    hub: Hub,
    worker: Process,
    _dir: TempDir,
}

impl NamedHub {
    /// `None` when dnsmasq is missing (and CI is not set).
    fn start() -> Option<NamedHub> {
        let hub = Hub::start();
        let dns = Announced::start(&hub.names())?;
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
            hub,
            worker,
            _dir: dir,
        })
    }

    /// The worker's stderr lines containing `part`.
    fn worker_said(&self, part: &str) -> Vec<String> {
        let lines = self.worker.stderr_lines();
        lines.into_iter().filter(|l| l.contains(part)).collect()
    }

    /// A call of `say` by the hub's name, through the `zerorpc` CLI.
    fn say_by_name(&self, words: &str) -> String {
        let out = zerorpc(&[
            "--dns-server",
            &self.dns.server(),
            "--timeout",
            "10",
            "-r",
            &format!("dns:{CALLS}"),
            "say",
            words,
        ]);
        assert_status(&out, 0);
        stdout(&out)
    }
}

#[test]
fn a_worker_joins_a_hub_by_name() {
    let Some(named) = NamedHub::start() else {
        return;
    };
    // The worker connects to the name, which DNS resolves to the hub's
    // back end.
    let connecting = named.worker_said("connecting to");
    assert_eq!(
        connecting,
        [format!("connecting to \"dns:{WORKERS}\"")],
        "{}",
        named.worker.report()
    );
    let serving = named.worker_said("serving");
    assert!(
        serving[0].ends_with(&format!(" on {}", named.hub.workers)),
        "{serving:?}"
    );
    // A client calling the hub by name reaches the worker behind it.
    assert_eq!(named.say_by_name("through the hub"), "through the hub\n");
    // And its listing is the worker's.
    let out = zerorpc(&[
        "--dns-server",
        &named.dns.server(),
        "--timeout",
        "10",
        &format!("dns:{CALLS}"),
    ]);
    assert_status(&out, 0);
    assert!(stdout(&out).starts_with("[tools]\n"), "{}", stdout(&out));
}

#[test]
fn a_worker_follows_its_hub_to_a_new_address() {
    let Some(mut named) = NamedHub::start() else {
        return;
    };
    assert!(
        wait_until(STARTUP, || named.hub.workers_connected() == 1),
        "the worker never reached the first hub"
    );
    // The hub moves: another one, and DNS now names its addresses.
    let mut moved = Hub::start();
    named.dns.replace(&moved.names());
    // At its next lookup the worker connects to the new hub, then leaves
    // the old one.
    let followed = wait_until(NOTICE, || {
        moved.workers_connected() == 1 && named.hub.workers_connected() == 0
    });
    assert!(followed, "{}", named.worker.report());
    assert_eq!(named.say_by_name("moved"), "moved\n");
}

#[test]
fn a_worker_logs_a_dns_outage_and_its_end_once_while_calls_go_on() {
    let Some(mut named) = NamedHub::start() else {
        return;
    };
    // A client of the hub's name that lives through the outage too.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let _entered = runtime.enter();
    let resolver = DnsResolver::builder()
        .name_server(named.dns.address())
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
            .unwrap_or_else(|e| panic!("a call failed: {e}\n{}", named.worker.report()));
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

    named.dns.stop();
    let failed = "DNS resolution failed";
    let made = calls_until("the worker warns that DNS is down", &|| {
        !named.worker_said(failed).is_empty()
    });
    assert!(made > 0, "calls went on while DNS was down");
    let warning = &named.worker_said(failed)[0];
    assert!(
        warning.starts_with("zerorpc: warning: DNS resolution failed; keeping the last answer")
            && warning.contains(&format!("endpoint=dns:{WORKERS}")),
        "{warning}"
    );

    named.dns.restart();
    calls_until("the worker says DNS works again", &|| {
        !named.worker_said("works again").is_empty()
    });
    // A client that does not resolve reaches the same worker.
    let out = zerorpc(&["--timeout", "10", "-r", &named.hub.calls, "say", "after"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "after\n");

    let (warnings, news) = (named.worker_said(failed), named.worker_said("works again"));
    assert_eq!(warnings.len(), 1, "{}", named.worker.report());
    assert_eq!(
        news,
        [format!(
            "zerorpc: info: DNS resolution works again (endpoint=dns:{WORKERS})"
        )],
        "{}",
        named.worker.report()
    );
}
