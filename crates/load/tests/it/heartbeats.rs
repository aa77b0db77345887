//! Heartbeats under load: no false `LostRemote` while 10,000 calls run
//! longer than three intervals, and a real loss (the server SIGKILLed)
//! fails every call within about three intervals.

use std::time::{Duration, Instant};

use crate::support::{
    CALL_TIMEOUT, LoadServer, RUN, assert_no_drops, heavy, run_client, spawn_client, took,
    wait_clients,
};

/// The heartbeat interval of both sides.
const INTERVAL: Duration = Duration::from_secs(1);

#[test]
fn naps_longer_than_three_intervals_survive_heartbeats_under_load() {
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&["--heartbeat", "1"]);
    let (report, _) = run_client(
        &[
            "--connect",
            &server.endpoint,
            "--heartbeat",
            "1",
            "--calls",
            "10000",
            "--in-flight",
            "10000",
            "--nap",
            "4",
            "--timeout",
            CALL_TIMEOUT,
        ],
        Some(server.pid()),
    );
    report.assert_all_ok(10_000);
    assert_no_drops(&server.stats());
    took("10k naps of 4 heartbeat intervals", started);
}

#[test]
fn a_killed_server_fails_every_call_with_lost_remote_within_three_intervals() {
    const CALLS: u64 = 100;
    let _heavy = heavy();
    let started = Instant::now();
    let mut server = LoadServer::start(&["--heartbeat", "1"]);
    let mut clients = [spawn_client(&[
        "--connect",
        &server.endpoint,
        "--heartbeat",
        "1",
        "--calls",
        "100",
        "--in-flight",
        "100",
        "--nap",
        "30",
        "--timeout",
        CALL_TIMEOUT,
    ])];

    // Kill the server once every call is running there.
    let arrived = zerorpc_test_support::wait_until(RUN, || {
        server.stats()["napping"] == CALLS || clients[0].try_wait().ok().flatten().is_some()
    });
    assert!(arrived, "the calls never all arrived");
    let killed = Instant::now();
    server.process.signal(libc::SIGKILL).expect("SIGKILL");
    let (reports, _) = wait_clients(&mut clients, None);
    let noticed = killed.elapsed();
    eprintln!("client finished {noticed:?} after the kill");
    eprintln!("client report: {}", reports[0].line);

    let report = &reports[0];
    assert_eq!(
        (report.ok, report.failed, report.wrong),
        (0, CALLS, 0),
        "{}",
        report.line
    );
    assert!(!report.status.success(), "{:?}", report.status);
    assert!(
        report
            .errors
            .keys()
            .all(|text| text.starts_with("LostRemote")),
        "{}",
        report.line
    );
    let bound = INTERVAL * 3 + Duration::from_secs(3);
    assert!(noticed < bound, "took {noticed:?} (bound {bound:?})");
    took("killed server", started);
}
