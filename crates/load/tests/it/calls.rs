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
fn a_server_driven_by_its_runtime_answers_ten_thousand_calls_in_flight() {
    // `ServerBuilder::io_thread(false)`: the socket's turns share the
    // runtime's workers with the calls' tasks, and the client's socket is
    // driven by its runtime too.
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&["--io-on-runtime"]);
    let naps = ["--calls", "10000", "--in-flight", "10000", "--nap", "1"];
    let echoes = [
        "--calls",
        "100000",
        "--in-flight",
        "2000",
        "--echo",
        "64",
        "--handler",
        "async",
    ];
    for (load, count) in [(&naps[..], 10_000), (&echoes[..], 100_000)] {
        let mut args = vec!["--connect", &server.endpoint, "--timeout", CALL_TIMEOUT];
        args.extend_from_slice(load);
        let (report, max_rss) = run_client(&args, Some(server.pid()));
        report.assert_all_ok(count);
        assert!(max_rss < MAX_RSS, "server RSS reached {max_rss} bytes");
    }
    let stats = server.stats();
    assert_no_drops(&stats);
    assert_eq!(stats["napping"], 0, "{stats:?}");
    took("calls to a server on its runtime", started);
}

/// Starts `processes` client processes, each making `calls` naps of a
/// second all at once over `sockets` sockets to one server, and checks
/// that every call is answered, with no drop (and, with at most 10,000
/// calls in flight, the server's memory within [`MAX_RSS`]).
fn naps_from_many_processes(processes: usize, sockets: u32, calls: u64, what: &str) {
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&[]);
    let (sockets, calls_text) = (sockets.to_string(), calls.to_string());
    let args = [
        "--connect",
        &server.endpoint,
        "--sockets",
        &sockets,
        "--calls",
        &calls_text,
        "--in-flight",
        &calls_text,
        "--nap",
        "1",
        "--timeout",
        CALL_TIMEOUT,
    ];
    let mut clients: Vec<_> = (0..processes).map(|_| spawn_client(&args)).collect();
    let (reports, max_rss) = wait_clients(&mut clients, Some(server.pid()));
    for report in &reports {
        report.assert_all_ok(calls);
    }
    eprintln!("server RSS at most {} MiB", max_rss >> 20);
    if processes as u64 * calls <= 10_000 {
        assert!(max_rss < MAX_RSS, "server RSS {} MiB", max_rss >> 20);
    }
    assert_no_drops(&server.stats());
    took(what, started);
}

#[test]
fn twenty_client_processes_with_two_thousand_naps_each_are_all_answered() {
    naps_from_many_processes(20, 1, 2000, "20 clients x 2k naps");
}

#[test]
fn a_thousand_connections_from_fifty_processes_are_all_answered() {
    naps_from_many_processes(50, 20, 200, "50 processes x 20 sockets");
}
