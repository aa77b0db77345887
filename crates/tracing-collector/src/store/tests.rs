//! Counters, the memory store and the Redis pipelines of a batch.

use super::*;
use crate::context::SpanContext;
use crate::report::{Direction, Kind, Side};

fn ended(
    span: &SpanContext,
    process: &str,
    method: &str,
    at: u64,
    exec: u64,
    error: Option<&str>,
) -> Report {
    Report {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        kind: Kind::Reply,
        side: Side::Server,
        direction: Direction::Sent,
        name: if error.is_some() { "ERR" } else { "OK" }.to_owned(),
        method: method.to_owned(),
        error: error.map(str::to_owned),
        process: process.to_owned(),
        peer: "peer 00".to_owned(),
        timestamp_us: at,
        exec_us: Some(exec),
    }
}

fn entries(reports: &[Report]) -> Entries {
    let mut batch = Entries::default();
    for report in reports {
        batch.push_report(report);
    }
    batch
}

fn count(reports: &[Report]) -> BTreeMap<(u64, String, String), Counters> {
    entries(reports)
        .counts()
        .into_iter()
        .map(|c| ((c.minute, c.service.clone(), c.method.clone()), c))
        .collect()
}

#[test]
fn counters_add_up_per_minute_method_and_service() {
    let span = SpanContext::root();
    let minute = 29_000_000u64;
    let at = minute * 60_000_000;
    let reports = [
        ended(&span, "b@h", "add", at, 100, None),
        ended(&span, "b@h", "add", at + 1, 300, Some("ValueError")),
        ended(&span, "b@h", "sub", at + 2, 50, None),
        ended(&span, "b@h", "add", at + 60_000_000, 7, None),
    ];
    let counts = count(&reports);
    let add = &counts[&(minute, "b".to_owned(), "add".to_owned())];
    assert_eq!(
        (add.calls, add.errors, add.total_us, add.max_us),
        (2, 1, 400, 300)
    );
    let all = &counts[&(minute, "b".to_owned(), ALL_METHODS.to_owned())];
    assert_eq!(
        (all.calls, all.errors, all.total_us, all.max_us),
        (3, 1, 450, 300)
    );
    assert_eq!(
        counts[&(minute + 1, "b".to_owned(), "add".to_owned())].calls,
        1
    );
}

#[test]
fn batches_written_together_add_their_counts() {
    let span = SpanContext::root();
    // Memory keeps the last hour of counters: count calls of now.
    let at = now_us();
    let minute = at / 60_000_000;
    let batches = [
        entries(&[ended(&span, "b@h", "add", at, 10, None)]),
        entries(&[
            ended(&span, "b@h", "add", at, 30, Some("E")),
            ended(&span, "c@h", "add", at, 5, None),
        ]),
    ];
    let mut memory = MemoryStore::new(10);
    memory.write(batches.into());
    assert_eq!(memory.trace(span.trace_id).unwrap().len(), 3);
    let rows = memory.counters(minute..=minute);
    let counts = rows
        .iter()
        .map(|c| {
            (
                (c.service.as_str(), c.method.as_str()),
                (c.calls, c.errors, c.total_us, c.max_us),
            )
        })
        .collect::<BTreeMap<_, _>>();
    assert_eq!(counts[&("b", "add")], (2, 1, 40, 30));
    assert_eq!(counts[&("b", ALL_METHODS)], (2, 1, 40, 30));
    assert_eq!(counts[&("c", "add")], (1, 0, 5, 5));
}

#[test]
fn memory_keeps_entries_that_read_back_as_the_reports() {
    let span = SpanContext::root();
    let reports = [
        ended(&span, "a@h", "m", 1, 1, None),
        ended(&span, "a@h", "m", 2, 7, Some("ValueError")),
    ];
    let mut memory = MemoryStore::new(10);
    memory.write(vec![entries(&reports)]);
    assert_eq!(memory.trace(span.trace_id).unwrap(), reports);
}

#[test]
fn memory_evicts_the_oldest_batch_first() {
    let mut memory = MemoryStore::new(3);
    let first = SpanContext::root();
    let second = SpanContext::root();
    memory.write(vec![entries(&[
        ended(&first, "a@h", "m", 1, 1, None),
        ended(&first, "a@h", "m", 2, 1, None),
    ])]);
    memory.write(vec![entries(&[
        ended(&second, "a@h", "m", 3, 1, None),
        ended(&second, "a@h", "m", 4, 1, None),
    ])]);
    assert!(memory.trace(first.trace_id).unwrap().is_empty());
    assert_eq!(memory.trace(second.trace_id).unwrap().len(), 2);
    assert_eq!(memory.reports, 2);
}

#[test]
fn memory_reads_a_trace_back_from_every_batch_in_arrival_order() {
    let mut memory = MemoryStore::new(100);
    let traced = SpanContext::root();
    let other = SpanContext::root();
    let child = traced.child();
    let ours = [
        ended(&child, "c@h", "inner", 1, 1, None),
        ended(&traced, "b@h", "outer", 2, 5, Some("ValueError")),
        ended(&traced, "b@h", "outer", 3, 6, None),
    ];
    // Two writes, the first of two batches, with another trace between.
    memory.write(vec![
        entries(&[ours[0].clone(), ended(&other, "x@h", "m", 1, 1, None)]),
        entries(&[ended(&other, "x@h", "m", 2, 1, None), ours[1].clone()]),
    ]);
    memory.write(vec![entries(&[ours[2].clone()])]);
    assert_eq!(memory.trace(traced.trace_id).unwrap(), ours);
    assert_eq!(memory.trace(other.trace_id).unwrap().len(), 2);
    assert!(
        memory
            .trace(SpanContext::root().trace_id)
            .unwrap()
            .is_empty()
    );
    assert_eq!(memory.reports, 5);
}

#[test]
fn memory_keeps_the_counters_of_evicted_batches() {
    let mut memory = MemoryStore::new(1);
    let at = now_us();
    let minute = at / 60_000_000;
    for _ in 0..3 {
        let span = SpanContext::root();
        memory.write(vec![entries(&[ended(&span, "b@h", "add", at, 10, None)])]);
    }
    assert_eq!(memory.batches.len(), 1);
    let add = memory
        .counters(minute..=minute)
        .into_iter()
        .find(|c| c.method == "add")
        .unwrap();
    assert_eq!((add.calls, add.total_us), (3, 30));
}

#[test]
fn each_trace_and_each_minute_is_one_pipeline_with_ttls() {
    let one = SpanContext::root();
    let two = SpanContext::root();
    let reports = [
        ended(&one, "a@h", "m", 60_000_000, 1, None),
        ended(&two, "a@h", "m", 120_000_000, 1, None),
    ];
    let pipes = pipelines(&[entries(&reports)], Duration::from_secs(10));
    // Two traces, two minutes.
    assert_eq!(pipes.len(), 4);
    for pipe in &pipes {
        let expires = pipe
            .cmd_iter()
            .filter(|c| c.get_packed_command().windows(6).any(|w| w == b"EXPIRE"))
            .count();
        assert!(expires >= 1, "every pipeline sets TTLs");
    }
}
