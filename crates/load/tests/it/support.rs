//! Starting the load server and clients, reading their reports, sampling
//! a process's memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use zerorpc_load::ProcStatus;
use zerorpc_test_support::Process;

/// The load server binary, built by cargo for this package's tests.
pub(crate) const SERVER: &str = env!("CARGO_BIN_EXE_zerorpc-load-server");

/// The load client binary.
pub(crate) const CLIENT: &str = env!("CARGO_BIN_EXE_zerorpc-load-client");

/// Bound on a process becoming ready.
pub(crate) const START: Duration = Duration::from_secs(30);

/// Bound on a whole load run: a safety net, far above what any run needs.
pub(crate) const RUN: Duration = Duration::from_secs(300);

/// The call timeout given to clients: a safety net too; heartbeats are
/// what must notice a lost server.
pub(crate) const CALL_TIMEOUT: &str = "120";

/// The memory a server may use under the loads of these tests.
pub(crate) const MAX_RSS: u64 = 100 << 20;

/// How often memory is sampled while a load runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Serializes the heavy tests: each loads the machine on its own, so two at
/// once would only make both slower and their timings meaningless.
pub(crate) fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running `zerorpc-load-server`, killed on drop.
pub(crate) struct LoadServer {
    pub(crate) process: Process,
    /// The endpoint it bound or connected to.
    pub(crate) endpoint: String,
}

impl LoadServer {
    /// Starts a server with `args` and waits for its ready line.
    pub(crate) fn start(args: &[&str]) -> LoadServer {
        let mut command = Command::new(SERVER);
        command.args(args);
        let process = Process::spawn("zerorpc-load-server", command).expect("spawn load server");
        let line = process
            .wait_for_line("", START)
            .expect("load server ready line");
        let endpoint = match line.split_once(' ') {
            Some(("listening" | "connected", endpoint)) => endpoint.to_owned(),
            _ => panic!("unexpected ready line {line:?}\n{}", process.report()),
        };
        LoadServer { process, endpoint }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.id()
    }

    /// The answer of the server's `stats()` method (a bound server only).
    pub(crate) fn stats(&self) -> BTreeMap<String, u64> {
        let client = zerorpc::Client::builder()
            .connect(&self.endpoint)
            .timeout(Some(START))
            .build()
            .expect("stats client");
        client
            .blocking()
            .call("stats", ())
            .unwrap_or_else(|e| panic!("stats(): {e}\n{}", self.process.report()))
    }
}

/// Asserts that no counter of a server's `stats()` says an event was lost.
pub(crate) fn assert_no_drops(stats: &BTreeMap<String, u64>) {
    assert!(
        stats.contains_key("dropped") && stats.contains_key("dropped_queue_full"),
        "the server's stats() has no transport counters: {stats:?}"
    );
    let drops: BTreeMap<_, _> = stats
        .iter()
        .filter(|(name, value)| name.starts_with("dropped") && **value > 0)
        .collect();
    assert!(
        drops.is_empty(),
        "server dropped events: {drops:?} in {stats:?}"
    );
}

/// Starts a `zerorpc-load-client` with `args`.
pub(crate) fn spawn_client(args: &[&str]) -> Process {
    let mut command = Command::new(CLIENT);
    command.args(args);
    Process::spawn("zerorpc-load-client", command).expect("spawn load client")
}

/// What a client printed at the end, and how it exited.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) wrong: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    /// The client's transport counters, and its size.
    pub(crate) client_stats: BTreeMap<String, u64>,
    pub(crate) status: ExitStatus,
    /// The whole JSON line.
    pub(crate) line: String,
    /// The same, parsed.
    pub(crate) json: Value,
}

impl Report {
    /// Parses the report of a client that has exited with `status`.
    fn of(client: &Process, status: ExitStatus) -> Report {
        let stdout = client.stdout_lines();
        let reports: Vec<&String> = stdout.iter().filter(|l| l.starts_with('{')).collect();
        let [line] = reports[..] else {
            panic!(
                "expected exactly one JSON line, got {}\n{}",
                reports.len(),
                client.report()
            );
        };
        let json: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("bad report {line}: {e}\n{}", client.report()));
        let count = |key: &str| {
            json[key]
                .as_u64()
                .unwrap_or_else(|| panic!("no {key} in {line}"))
        };
        assert!(json["elapsed_s"].is_f64(), "{line}");
        Report {
            ok: count("ok"),
            failed: count("failed"),
            wrong: count("wrong"),
            errors: json["errors"]
                .as_object()
                .unwrap_or_else(|| panic!("no errors in {line}"))
                .iter()
                .map(|(text, n)| (text.clone(), n.as_u64().expect("error count")))
                .collect(),
            client_stats: json["client_stats"]
                .as_object()
                .unwrap_or_else(|| panic!("no client_stats in {line}"))
                .iter()
                .map(|(name, n)| (name.clone(), n.as_u64().expect("a counter")))
                .collect(),
            status,
            line: line.clone(),
            json,
        }
    }

    /// Asserts that all `calls` succeeded with the right answer.
    pub(crate) fn assert_all_ok(&self, calls: u64) {
        assert_eq!(
            (self.ok, self.failed, self.wrong),
            (calls, 0, 0),
            "(ok, failed, wrong): {}",
            self.line
        );
        assert!(self.status.success(), "{:?}: {}", self.status, self.line);
        assert_eq!(
            self.client_stats.get("dropped"),
            Some(&0),
            "the client dropped events: {}",
            self.line
        );
    }
}

/// Waits for every client to exit (within [`RUN`] overall) and returns
/// their reports, and the largest resident size of process `watch` seen
/// meanwhile (sampled every 100 ms; 0 when not watching).
pub(crate) fn wait_clients(clients: &mut [Process], watch: Option<u32>) -> (Vec<Report>, u64) {
    let deadline = Instant::now() + RUN;
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; clients.len()];
    let mut max_rss = 0;
    let rounds = RUN.as_millis() / SAMPLE_EVERY.as_millis() + 1;
    for _ in 0..rounds {
        if let Some(pid) = watch {
            if let Ok(status) = ProcStatus::of(pid) {
                max_rss = max_rss.max(status.rss_bytes);
            }
        }
        for (client, status) in clients.iter_mut().zip(&mut statuses) {
            if status.is_none() {
                *status = client.try_wait().expect("try_wait on a client");
            }
        }
        if statuses.iter().all(Option::is_some) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    let reports = clients
        .iter()
        .zip(statuses)
        .map(|(client, status)| {
            let status = status.unwrap_or_else(|| {
                panic!("client still running after {RUN:?}\n{}", client.report())
            });
            Report::of(client, status)
        })
        .collect();
    (reports, max_rss)
}

/// Runs one client to its end; see [`wait_clients`].
pub(crate) fn run_client(args: &[&str], watch: Option<u32>) -> (Report, u64) {
    let mut clients = [spawn_client(args)];
    let (mut reports, max_rss) = wait_clients(&mut clients, watch);
    (reports.remove(0), max_rss)
}

/// Prints how long a test took (shown with `--nocapture`).
pub(crate) fn took(test: &str, started: Instant) {
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

/// The `zerorpc-hub` binary; it lives in another package of the workspace.
pub(crate) fn hub_binary() -> PathBuf {
    zerorpc_test_support::workspace_binary("zerorpc-cli", "zerorpc-hub")
}
