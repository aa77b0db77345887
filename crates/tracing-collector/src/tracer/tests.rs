//! The report queue never waits, and settings that cannot work are refused.

use super::*;
use crate::context::SpanContext;
use crate::report::{Direction, Kind, Side};

/// A queue of room for `capacity` reports that nobody reads.
fn queue(capacity: usize) -> ReportQueue {
    ReportQueue {
        shared: Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            capacity,
            tables: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            reported: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }),
        reporter: std::thread::current(),
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    // Nobody reads this queue: every report past the first would wait
    // for ever if pushing waited.
    let span = SpanContext::root();
    let queue = queue(1);
    for _ in 0..10 {
        queue.push(Outgoing::One(&Record {
            span: &span,
            kind: Kind::Call,
            side: Side::Client,
            direction: Direction::Sent,
            name: "m",
            method: "m",
            error: None,
            peer: PeerRef::Endpoint("tcp://127.0.0.1:1"),
            timestamp_us: 1,
            exec_us: None,
        }));
    }
    assert_eq!(queue.shared.reported.load(Ordering::Relaxed), 10);
    assert_eq!(queue.shared.dropped.load(Ordering::Relaxed), 9);
    let batches = queue.shared.take();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].records, 1);
    assert!(queue.shared.take().is_empty(), "taking empties the queue");
}

#[test]
fn a_queue_of_no_room_is_refused() {
    let error = Tracer::builder().queue_capacity(0).build().unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
}

#[test]
fn a_reply_reporting_its_request_counts_and_fits_as_two_reports() {
    let span = SpanContext::root();
    let reply = Record {
        span: &span,
        kind: Kind::Reply,
        side: Side::Client,
        direction: Direction::Received,
        name: "OK",
        method: "m",
        error: None,
        peer: PeerRef::Unknown,
        timestamp_us: 2,
        exec_us: None,
    };
    let queue = queue(3);
    queue.push(Outgoing::Answered(&reply, 1));
    queue.push(Outgoing::One(&reply));
    // No room left for two: dropped whole, counted as two.
    queue.push(Outgoing::Answered(&reply, 1));
    let shared = &queue.shared;
    assert_eq!(shared.reported.load(Ordering::Relaxed), 5);
    assert_eq!(shared.dropped.load(Ordering::Relaxed), 2);
    let batches = shared.take();
    assert_eq!(batches.iter().map(|b| b.records).sum::<usize>(), 3);
}
