//! Many streams at once, each under flow control.

use std::time::Instant;

use crate::support::{CALL_TIMEOUT, LoadServer, assert_no_drops, heavy, run_client, took};

/// Streams `streams` of `items` from one client process, with these extra
/// client arguments; checks every stream arrived whole and in order, and
/// that the server dropped nothing. Returns the server's peak RSS.
fn streams_arrive_whole(streams: &str, items: &str, extra: &[&str], what: &str) -> u64 {
    let _heavy = heavy();
    let started = Instant::now();
    let server = LoadServer::start(&[]);
    let mut args = vec![
        "--connect",
        &server.endpoint,
        "--calls",
        "0",
        "--streams",
        streams,
        "--items",
        items,
        "--timeout",
        CALL_TIMEOUT,
    ];
    args.extend_from_slice(extra);
    let (report, max_rss) = run_client(&args, Some(server.pid()));
    report.assert_all_ok(streams.parse().expect("a count"));
    eprintln!("server RSS at most {} MiB", max_rss >> 20);
    assert_no_drops(&server.stats());
    took(what, started);
    max_rss
}

#[test]
fn a_thousand_streams_of_a_thousand_items_arrive_whole_and_in_order() {
    streams_arrive_whole("1000", "1000", &[], "1k streams x 1k items");
}

/// The server's memory bound while streaming large items: ZeroMQ's queue
/// toward the client (1,000 messages of 64 KiB), our send queue's limit
/// (64 MiB), what malloc keeps for reuse at the top of each heap (up to
/// `TRIM_THRESHOLD`, 8 MiB, in each of the 16 heaps glibc makes on two
/// cores), and room for the process itself.
const LARGE_STREAMS_RSS: u64 = 320 << 20;

#[test]
fn a_hundred_streams_of_large_items_to_one_client_arrive_whole() {
    // 100 streams x 200 items of 64 KiB (1.3 GB): together far more than
    // the server's send queue toward the client may hold (64 MiB), with
    // credit granted for all of it. Streams past the queue's mark wait;
    // what their `send` had already handed over is queued, not refused, so
    // no stream fails (they used to fail with `QueueFull` on the server
    // and `LostRemote` on the client, ten seconds later).
    let max_rss = streams_arrive_whole(
        "100",
        "200",
        &["--item-bytes", "65536"],
        "100 streams x 200 items of 64 KiB",
    );
    // Bounded by what waits to be sent and what malloc keeps, not by the
    // 1.3 GB the streams carry.
    assert!(
        max_rss < LARGE_STREAMS_RSS,
        "server RSS {} MiB",
        max_rss >> 20
    );
}
