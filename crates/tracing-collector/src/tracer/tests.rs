//! The report queue never waits, and settings that cannot work are refused.

use super::*;
use crate::context::SpanContext;
use crate::report::{Direction, Kind, Side};

fn report() -> Report {
    let span = SpanContext::root();
    Report {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: None,
        kind: Kind::Call,
        side: Side::Client,
        direction: Direction::Sent,
        name: "m".into(),
        method: "m".into(),
        error: None,
        process: "p@h".into(),
        peer: "tcp://127.0.0.1:1".into(),
        timestamp_us: 1,
        exec_us: None,
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    // Nobody reads this queue: every report past the first would wait
    // for ever if pushing waited.
    let (sender, receiver) = mpsc::sync_channel(1);
    let queue = ReportQueue {
        sender,
        process: "p@h".into(),
        reported: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    };
    for _ in 0..10 {
        queue.push(report());
    }
    assert_eq!(queue.reported.load(Ordering::Relaxed), 10);
    assert_eq!(queue.dropped.load(Ordering::Relaxed), 9);
    assert!(receiver.try_recv().is_ok());
}

#[test]
fn a_queue_of_no_room_is_refused() {
    let error = Tracer::builder().queue_capacity(0).build().unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
}
