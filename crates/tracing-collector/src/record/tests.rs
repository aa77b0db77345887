//! Records read back as what was written, from a batch or as entries.

use super::*;

fn span(parent: bool) -> SpanContext {
    let root = SpanContext::root();
    if parent { root.child() } else { root }
}

fn record<'a>(span: &'a SpanContext, error: Option<&'a str>, peer: PeerRef<'a>) -> Record<'a> {
    Record {
        span,
        kind: Kind::Reply,
        side: Side::Server,
        direction: Direction::Sent,
        name: if error.is_some() { "ERR" } else { "OK" },
        method: "add",
        error,
        peer,
        timestamp_us: 1_764_800_000_000_123,
        exec_us: Some(42),
    }
}

#[test]
fn a_batch_reads_back_record_by_record_into_entries_and_reports() {
    let (root, child) = (span(false), span(true));
    let written = [
        record(&root, None, PeerRef::RoutingId(&[0, 0xf4, 0xb0])),
        record(
            &child,
            Some("ValueError"),
            PeerRef::Endpoint("tcp://127.0.0.1:4242"),
        ),
        Record {
            kind: Kind::Call,
            side: Side::Client,
            direction: Direction::Received,
            exec_us: None,
            ..record(&child, None, PeerRef::Unknown)
        },
    ];
    let mut batch = Vec::new();
    for record in &written {
        record.encode(&mut batch);
    }
    let views = Records::new(&batch).collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(views.len(), 3);
    assert!(views[0].ends_call && views[1].ends_call && !views[2].ends_call);
    assert!(!views[0].failed && views[1].failed);
    let peers = ["peer 00f4b0", "tcp://127.0.0.1:4242", "unknown peer"];
    for ((view, record), peer) in views.iter().zip(&written).zip(peers) {
        assert_eq!(view.trace_id, record.span.trace_id);
        assert_eq!(view.method, "add");
        let mut entry = Vec::new();
        view.write_entry("calc@host", &mut entry);
        assert_eq!(entry, record.to_entry("calc@host"));
        let report = Report::from_msgpack(&entry).unwrap();
        assert_eq!(report.trace_id, record.span.trace_id);
        assert_eq!(report.span_id, record.span.span_id);
        assert_eq!(report.parent_span_id, record.span.parent_span_id);
        assert_eq!(
            (report.kind, report.side, report.direction),
            (record.kind, record.side, record.direction)
        );
        assert_eq!(report.name, record.name);
        assert_eq!(report.error.as_deref(), record.error);
        assert_eq!(report.process, "calc@host");
        assert_eq!(report.peer, peer);
        assert_eq!(report.timestamp_us, record.timestamp_us);
        assert_eq!(report.exec_us, record.exec_us);
    }
}

#[test]
fn a_report_survives_its_stored_form_and_the_older_map_still_reads() {
    let span = span(true);
    let report =
        Report::from_msgpack(&record(&span, Some("E"), PeerRef::Unknown).to_entry("p@h")).unwrap();
    assert_eq!(Report::from_msgpack(&report.to_msgpack()).unwrap(), report);
    let mut map = Vec::new();
    rmpv::encode::write_value(&mut map, &report.to_value()).unwrap();
    assert_eq!(Report::from_msgpack(&map).unwrap(), report);
}

#[test]
fn a_malformed_record_ends_the_batch_with_an_error_not_a_panic() {
    let span = span(false);
    let mut batch = Vec::new();
    record(&span, None, PeerRef::Unknown).encode(&mut batch);
    let whole = batch.len();
    record(&span, None, PeerRef::Unknown).encode(&mut batch);
    for cut in 0..batch.len() {
        let read = Records::new(&batch[..cut]).collect::<Vec<_>>();
        let good = read.iter().filter(|r| r.is_ok()).count();
        assert_eq!(good, usize::from(cut >= whole), "cut at {cut}");
        assert!(read.len() - good <= 1);
    }
    let mut garbage = batch.clone();
    garbage[1] = 0xc1;
    assert!(Records::new(&garbage).next().unwrap().is_err());
    assert!(
        entry_to_reports(&batch).is_err(),
        "a record is not an entry"
    );
}

#[test]
fn entries_back_to_back_read_back_in_order() {
    let (one, two) = (span(false), span(true));
    let mut entries = record(&one, None, PeerRef::Unknown).to_entry("a@h");
    entries.extend(record(&two, Some("E"), PeerRef::Unknown).to_entry("b@h"));
    let reports = entries_to_reports(&entries).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0].span_id, reports[0].process.as_str()),
        (one.span_id, "a@h")
    );
    assert_eq!(
        (reports[1].span_id, reports[1].process.as_str()),
        (two.span_id, "b@h")
    );
    assert!(entries_to_reports(&entries[..entries.len() - 1]).is_err());
}

#[test]
fn text_that_is_not_utf8_is_stored_as_it_came_and_read_leniently() {
    let span = span(false);
    // Names that encode to strings of the same length, so that bytes can
    // be swapped in place: 0xff is never UTF-8.
    let written = Record {
        name: "OK~",
        ..record(&span, None, PeerRef::Endpoint("tcp://h~:1"))
    };
    let mut batch = Vec::new();
    written.encode(&mut batch);
    let corrupt = |batch: &mut Vec<u8>, text: &[u8]| {
        let at = batch
            .windows(text.len())
            .position(|w| w == text)
            .expect("the text is in the record");
        batch[at + text.len() - 1] = 0xff;
    };
    corrupt(&mut batch, b"OK~");
    corrupt(&mut batch, b"tcp://h~");

    // Collectors read only the method as text, and store the rest as is.
    let view = Records::new(&batch).next().unwrap().unwrap();
    assert_eq!(view.method, "add");
    let mut entry = Vec::new();
    view.write_entry("calc@host", &mut entry);
    let report = Report::from_msgpack(&entry).unwrap();
    assert_eq!(report.name, "OK\u{fffd}");
    assert_eq!(report.peer, "tcp://h\u{fffd}:1");

    // A method that is not text is a malformed record.
    let mut batch = Vec::new();
    Record {
        method: "ad~",
        ..written
    }
    .encode(&mut batch);
    corrupt(&mut batch, b"ad~");
    assert!(Records::new(&batch).next().unwrap().is_err());
}

#[test]
fn a_reply_reporting_its_request_is_stored_as_one_entry_read_back_as_both_reports() {
    let (root, child) = (span(false), span(true));
    let peers = [
        PeerRef::RoutingId(&[0, 0xf4, 0xb0, 0x1d, 0x2e]),
        PeerRef::Endpoint("tcp://127.0.0.1:4242"),
        PeerRef::Unknown,
    ];
    let sides = [
        (Side::Server, Direction::Sent, Direction::Received, Some(42)),
        (Side::Client, Direction::Received, Direction::Sent, None),
    ];
    for (span, error) in [(&root, None), (&child, Some("ValueError"))] {
        for peer in peers {
            for (side, reply_direction, call_direction, exec_us) in sides {
                let reply = Record {
                    side,
                    direction: reply_direction,
                    exec_us,
                    ..record(span, error, peer)
                };
                let request = Record {
                    kind: Kind::Call,
                    direction: call_direction,
                    name: reply.method,
                    error: None,
                    timestamp_us: 1_764_800_000_000_000,
                    exec_us: None,
                    ..reply
                };
                let mut batch = Vec::new();
                reply.encode_answered(request.timestamp_us, &mut batch);
                let mut read = Records::new(&batch);
                let view = read.next().unwrap().unwrap();
                assert!(read.next().is_none(), "one record");
                assert_eq!(view.called_us, Some(request.timestamp_us));
                assert_eq!(view.ends_call, side == Side::Server);
                assert_eq!(view.failed, error.is_some());

                let mut entry = Vec::new();
                view.write_entry("calc@host", &mut entry);
                assert_eq!(reports_in(&entry), 2);
                let expected = [request, reply]
                    .map(|r| Report::from_msgpack(&r.to_entry("calc@host")).expect("a report"));
                assert_eq!(Report::from_stored(&entry).unwrap(), expected);
                assert!(
                    Report::from_msgpack(&entry).is_err(),
                    "two reports are not one"
                );
                // Back to back with others, as memory keeps a trace.
                let mut entries = reply.to_entry("a@h");
                entries.extend_from_slice(&entry);
                let reports = entries_to_reports(&entries).unwrap();
                assert_eq!(reports.len(), 3);
                assert_eq!(reports[1..], expected);
                assert!(entries_to_reports(&entries[..entries.len() - 1]).is_err());
            }
        }
    }
}

#[test]
fn only_a_reply_may_report_its_request() {
    let span = span(false);
    let request = Record {
        kind: Kind::Call,
        exec_us: None,
        ..record(&span, None, PeerRef::Unknown)
    };
    let mut batch = vec![ANSWERED_MARKER];
    request.encode_fields(&mut batch);
    pack::uint(&mut batch, 1);
    assert!(Records::new(&batch).next().unwrap().is_err());
    // Nor may a stored entry say so of a request.
    let mut entry = vec![ANSWERED_ENTRY_MARKER];
    pack::str(&mut entry, "p@h");
    entry.extend_from_slice(&batch[1..]);
    assert!(entry_to_reports(&entry).is_err());
}

#[test]
fn records_are_written_in_the_shortest_msgpack_forms_as_any_writer_does() {
    let shortest = |value: rmpv::Value| {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        bytes
    };
    for n in [
        0,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        4_294_967_295,
        4_294_967_296,
        u64::MAX,
    ] {
        let mut bytes = Vec::new();
        pack::uint(&mut bytes, n);
        assert_eq!(bytes, shortest(rmpv::Value::from(n)), "{n}");
    }
    for len in [0, 31, 32, 255, 256, 65_535, 65_536] {
        let text = "x".repeat(len);
        let mut bytes = Vec::new();
        pack::str(&mut bytes, &text);
        assert_eq!(
            bytes,
            shortest(rmpv::Value::from(text.as_str())),
            "str of {len}"
        );
        let blob = vec![7u8; len];
        let mut bytes = Vec::new();
        pack::bin(&mut bytes, &blob);
        assert_eq!(bytes, shortest(rmpv::Value::Binary(blob)), "bin of {len}");
    }
}
