//! Many calls in flight through the `zerorpc-hub` binary (a queue hub) to
//! one or three load servers connected to it as workers.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use zerorpc_test_support::{Process, free_tcp_endpoint};

use crate::support::{CALL_TIMEOUT, LoadServer, START, heavy, hub_binary, run_client, took};

const CALLS: u64 = 10_000;

/// Bound on the number of stats requests while waiting for workers.
const MAX_POLLS: usize = 300;

/// The JSON stats lines the hub printed on stderr from line `after` on.
fn stats_lines(hub: &Process, after: usize) -> Vec<Value> {
    hub.stderr_lines()
        .iter()
        .skip(after)
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad stats {line}: {e}")))
        .collect()
}

/// Fresh stats, asked for with SIGUSR1.
fn stats_now(hub: &mut Process) -> Value {
    let seen = hub.stderr_lines().len();
    hub.signal(libc::SIGUSR1).expect("SIGUSR1 to the hub");
    let deadline = Instant::now() + START;
    for _ in 0..MAX_POLLS * 10 {
        if let Some(stats) = stats_lines(hub, seen).pop() {
            return stats;
        }
        assert!(Instant::now() < deadline, "no stats line\n{}", hub.report());
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no stats line\n{}", hub.report())
}

fn through_the_hub(workers: usize) {
    let _heavy = heavy();
    let started = Instant::now();
    let (front, back) = (free_tcp_endpoint(), free_tcp_endpoint());
    let mut command = Command::new(hub_binary());
    // The queue limits are raised so that the hub's admission control (which
    // answers NoWorkerAvailable by design) cannot be what fails a call: this
    // test is about calls being lost.
    command.args([
        "--in",
        &front,
        "--out",
        &back,
        "--type",
        "queue",
        "--name",
        "load",
        "--queue-limit",
        "100000",
        "--queue-timeout",
        CALL_TIMEOUT,
    ]);
    let mut hub = Process::spawn("zerorpc-hub", command).expect("spawn zerorpc-hub");
    hub.wait_for_stderr_line("zerorpc-hub: load (queue)", START)
        .expect("hub started");
    let servers: Vec<LoadServer> = (0..workers)
        .map(|_| LoadServer::start(&["--connect", &back]))
        .collect();

    // Workers never speak first: wait until the hub has seen them all.
    let connected = (0..MAX_POLLS).any(|_| {
        let stats = stats_now(&mut hub);
        let seen = stats["workers"].as_array().map_or(0, Vec::len);
        seen == workers || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(
        connected,
        "the hub never saw {workers} workers\n{}",
        hub.report()
    );

    let calls = CALLS.to_string();
    let (report, _) = run_client(
        &[
            "--connect",
            &front,
            "--calls",
            &calls,
            "--in-flight",
            &calls,
            "--nap",
            "1",
            "--timeout",
            CALL_TIMEOUT,
        ],
        None,
    );

    // The final stats, printed when the hub stops.
    let seen = hub.stderr_lines().len();
    hub.signal(libc::SIGTERM).expect("SIGTERM to the hub");
    let status = hub.wait_for_output(START).expect("wait for the hub");
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        hub.report()
    );
    let stats = stats_lines(&hub, seen)
        .pop()
        .unwrap_or_else(|| panic!("no final stats\n{}", hub.report()));
    eprintln!("hub stats: {stats}");
    drop(servers);

    report.assert_all_ok(CALLS);
    assert_eq!(stats["calls_routed"], CALLS, "{stats}");
    let drops = stats["drops"].as_object().expect("drops");
    assert!(
        drops.values().all(|n| n == 0),
        "the hub dropped events: {stats}"
    );
    let routed: Vec<u64> = stats["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["calls_routed"].as_u64().expect("calls_routed"))
        .collect();
    assert_eq!(routed.len(), workers, "{stats}");
    assert!(
        routed.iter().all(|&n| n > 0),
        "a worker got no call: {stats}"
    );
    took(&format!("hub with {workers} worker(s)"), started);
}

#[test]
fn ten_thousand_naps_through_the_hub_to_one_worker_are_all_answered() {
    through_the_hub(1);
}

#[test]
fn ten_thousand_naps_through_the_hub_to_three_workers_are_all_answered() {
    through_the_hub(3);
}
