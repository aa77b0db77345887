//! Many streams at once, each under flow control.

use std::time::Instant;

use crate::support::{CALL_TIMEOUT, LoadServer, assert_no_drops, heavy, run_client, took};

#[test]
fn a_thousand_streams_of_a_thousand_items_arrive_whole_and_in_order() {
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&[]);
    let (report, max_rss) = run_client(
        &[
            "--connect",
            &server.endpoint,
            "--calls",
            "0",
            "--streams",
            "1000",
            "--items",
            "1000",
            "--timeout",
            CALL_TIMEOUT,
        ],
        Some(server.pid()),
    );
    report.assert_all_ok(1000);
    eprintln!("server RSS at most {} MiB", max_rss >> 20);
    assert_no_drops(&server.stats());
    took("1k streams x 1k items", started);
}
