//! The report queue never waits, and settings that cannot work are refused.

use super::*;
use crate::context::SpanContext;
use crate::report::{Direction, Kind, Side};

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    // Nobody reads this queue: every report past the first would wait
    // for ever if pushing waited.
    let span = SpanContext::root();
    let queue = ReportQueue {
        shared: Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            closed: AtomicBool::new(false),
            reported: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }),
        reporter: std::thread::current(),
        capacity: 1,
    };
    for _ in 0..10 {
        queue.push(&Record {
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
        });
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
