//! Many streams at once, each under flow control.

use std::time::{Duration, Instant};

use zerorpc_load::ProcStatus;

use crate::support::{CALL_TIMEOUT, LoadServer, assert_no_drops, heavy, run_client, took};

/// Streams `streams` of `items` from one client process, with these extra
/// client arguments; checks every stream arrived whole and in order, and
/// that the server dropped nothing. Returns the server's peak RSS.
fn streams_arrive_whole(streams: &str, items: &str, extra: &[&str], what: &str) -> u64 {
    streams_arrive_whole_from(&LoadServer::start(&[]), streams, items, extra, what)
}

/// [`streams_arrive_whole`], from a server of the caller's.
fn streams_arrive_whole_from(
    server: &LoadServer,
    streams: &str,
    items: &str,
    extra: &[&str],
    what: &str,
) -> u64 {
    let _heavy = heavy();
    let started = Instant::now();
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

/// The server's memory bound while a thousand streams of small items run
/// at once: what waits to be sent is bounded by the send queue's mark and
/// by the items handed to the I/O thread (`UNSENT_MARK` for streams made
/// by tasks), not by the streams' credit (2,000 items each). Streams made
/// by tasks peaked at 200-460 MiB before that bound, 27-67 MiB after.
const MANY_STREAMS_RSS: u64 = 100 << 20;

#[test]
fn a_thousand_streams_of_a_thousand_items_arrive_whole_and_in_order() {
    let max_rss = streams_arrive_whole("1000", "1000", &[], "1k streams x 1k items");
    let mib = max_rss >> 20;
    assert!(max_rss < MANY_STREAMS_RSS, "server RSS {mib} MiB");
}

#[test]
fn a_thousand_inline_streams_of_a_thousand_items_arrive_whole_and_in_order() {
    // Made on the server's I/O thread (`count_inline`), each paced by its
    // own credit: none may starve the others or the heartbeats.
    let extra = ["--inline-streams"];
    let max_rss = streams_arrive_whole("1000", "1000", &extra, "1k inline streams x 1k items");
    let mib = max_rss >> 20;
    assert!(max_rss < MANY_STREAMS_RSS, "server RSS {mib} MiB");
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

#[test]
fn a_hundred_inline_streams_of_large_items_wait_for_the_send_queue() {
    // As above, made on the I/O thread: a producer pauses at the send
    // queue's mark as a task does, rather than filling the queue.
    let max_rss = streams_arrive_whole(
        "100",
        "200",
        &["--item-bytes", "65536", "--inline-streams"],
        "100 inline streams x 200 items of 64 KiB",
    );
    assert!(
        max_rss < LARGE_STREAMS_RSS,
        "server RSS {} MiB",
        max_rss >> 20
    );
}

/// Resident size, once a burst is over, that says its memory went back
/// to the system: the server's own few MiB, with room.
const IDLE_RSS: u64 = 40 << 20;

#[test]
fn a_burst_of_large_streams_gives_its_memory_back_once_over() {
    // Without it, glibc keeps the burst's free memory: the idle server
    // stayed at 340 MiB resident after four clients' worth of this.
    let server = LoadServer::start(&[]);
    let peak = streams_arrive_whole_from(
        &server,
        "100",
        "100",
        &["--item-bytes", "65536"],
        "100 streams x 100 items of 64 KiB, then quiet",
    );
    assert!(peak > IDLE_RSS, "the burst took memory: {} MiB", peak >> 20);
    // A second of quiet, then the trim: well within ten.
    let mut rss = u64::MAX;
    for _ in 0..100 {
        rss = ProcStatus::of(server.pid())
            .expect("the server runs")
            .rss_bytes;
        if rss < IDLE_RSS {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rss < IDLE_RSS, "still {} MiB resident once idle", rss >> 20);
}
