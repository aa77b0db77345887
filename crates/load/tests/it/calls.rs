//! Many calls in flight from one client process, or from many (fifty
//! processes of twenty sockets: a thousand connections to one server).

use std::time::Instant;

use crate::support::{
    CALL_TIMEOUT, LoadServer, MAX_RSS, assert_no_drops, heavy, run_client, spawn_client, took,
    wait_clients,
};

#[test]
fn ten_thousand_naps_in_flight_are_all_answered_in_bounded_memory() {
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&[]);
    let (report, max_rss) = run_client(
        &[
            "--connect",
            &server.endpoint,
            "--calls",
            "10000",
            "--in-flight",
            "10000",
            "--nap",
            "1",
            "--timeout",
            CALL_TIMEOUT,
        ],
        Some(server.pid()),
    );
    report.assert_all_ok(10_000);
    eprintln!("server RSS at most {} MiB", max_rss >> 20);
    assert!(max_rss > 0, "no memory sample of the server");
    assert!(max_rss < MAX_RSS, "server RSS reached {max_rss} bytes");
    let stats = server.stats();
    assert_no_drops(&stats);
    assert_eq!(stats["napping"], 0, "{stats:?}");
    took("10k naps", started);
}

#[test]
fn fifty_thousand_naps_in_flight_are_all_answered() {
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&[]);
    let (report, max_rss) = run_client(
        &[
            "--connect",
            &server.endpoint,
            "--calls",
            "50000",
            "--in-flight",
            "50000",
            "--nap",
            "1",
            "--timeout",
            CALL_TIMEOUT,
        ],
        Some(server.pid()),
    );
    report.assert_all_ok(50_000);
    eprintln!("server RSS at most {} MiB", max_rss >> 20);
    assert_no_drops(&server.stats());
    took("50k naps", started);
}

#[test]
fn twenty_client_processes_with_two_thousand_naps_each_are_all_answered() {
    const CLIENTS: usize = 20;
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&[]);
    let args = [
        "--connect",
        &server.endpoint,
        "--calls",
        "2000",
        "--in-flight",
        "2000",
        "--nap",
        "1",
        "--timeout",
        CALL_TIMEOUT,
    ];
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| spawn_client(&args)).collect();
    let (reports, max_rss) = wait_clients(&mut clients, Some(server.pid()));
    for report in &reports {
        report.assert_all_ok(2000);
    }
    eprintln!("server RSS at most {} MiB", max_rss >> 20);
    assert_no_drops(&server.stats());
    took("20 clients x 2k naps", started);
}

#[test]
fn a_thousand_connections_from_fifty_processes_are_all_answered() {
    const PROCESSES: usize = 50;
    const SOCKETS: &str = "20";
    const CALLS: u64 = 200;
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&[]);
    let calls = CALLS.to_string();
    let args = [
        "--connect",
        &server.endpoint,
        "--sockets",
        SOCKETS,
        "--calls",
        &calls,
        "--in-flight",
        &calls,
        "--nap",
        "1",
        "--timeout",
        CALL_TIMEOUT,
    ];
    let mut clients: Vec<_> = (0..PROCESSES).map(|_| spawn_client(&args)).collect();
    let (reports, max_rss) = wait_clients(&mut clients, Some(server.pid()));
    for report in &reports {
        report.assert_all_ok(CALLS);
    }
    eprintln!("server RSS at most {} MiB", max_rss >> 20);
    assert!(max_rss < MAX_RSS, "server RSS {} MiB", max_rss >> 20);
    assert_no_drops(&server.stats());
    took("50 processes x 20 sockets", started);
}
