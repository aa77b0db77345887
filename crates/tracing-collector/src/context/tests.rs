//! Trace and span ids, header keys and `traceparent`, parsed and written.

use zerorpc::wire::{Event, Header, Value};

use super::*;

/// The header's keys as a peer reads them off the wire.
fn on_the_wire(header: &Header) -> Vec<(String, Value)> {
    let bytes = Event::new(header.clone(), "m", Value::Nil).encode();
    let event = zerorpc::wire::rmpv::decode::read_value(&mut &bytes[..]).expect("msgpack");
    let map = event[0].as_map().expect("a header map").clone();
    map.into_iter()
        .map(|(key, value)| (key.as_str().expect("a text key").to_owned(), value))
        .collect()
}

fn wire_key(header: &Header, key: &str) -> Option<Value> {
    on_the_wire(header)
        .into_iter()
        .find_map(|(k, value)| (k == key).then_some(value))
}

#[test]
fn ids_round_trip_through_text() {
    let trace = TraceId::random();
    assert_eq!(trace.to_string().len(), 36);
    assert_eq!(trace.to_string().parse::<TraceId>(), Ok(trace));
    assert_eq!(trace.to_hex().parse::<TraceId>(), Ok(trace));
    let span = SpanId::random();
    assert_eq!(span.to_string().len(), 16);
    assert_eq!(span.to_string().parse::<SpanId>(), Ok(span));
}

#[test]
fn bad_ids_are_refused() {
    for bad in ["", "x", "00000000-0000-0000-0000-000000000000", "1234"] {
        assert!(bad.parse::<TraceId>().is_err(), "{bad}");
    }
    for bad in [
        "",
        "0000000000000000",
        "123",
        "zzzzzzzzzzzzzzzz",
        "00000000000000001",
    ] {
        assert!(bad.parse::<SpanId>().is_err(), "{bad}");
    }
}

#[test]
fn our_keys_are_written_and_read_back() {
    let parent = SpanContext::root();
    let child = parent.child();
    assert_eq!(child.trace_id, parent.trace_id);
    assert_eq!(child.parent_span_id, Some(parent.span_id));
    assert_ne!(child.span_id, parent.span_id);
    let mut header = Header::new();
    child.write(&mut header);
    assert_eq!(SpanContext::from_header(&header), Some(child));
    assert_eq!(
        wire_key(&header, TRACE_ID_KEY),
        Some(Value::from(child.trace_id.to_string()))
    );
}

#[test]
fn a_root_call_has_no_parent_key() {
    let mut header = Header::new();
    SpanContext::root().write(&mut header);
    assert!(wire_key(&header, SPAN_ID_KEY).is_some());
    assert!(wire_key(&header, PARENT_SPAN_ID_KEY).is_none());
}

#[test]
fn traceparent_is_accepted_when_our_keys_are_absent() {
    let mut header = Header::new();
    header.insert(
        TRACEPARENT_KEY,
        Value::from("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    );
    let span = SpanContext::from_header(&header).expect("a context");
    assert_eq!(span.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span.span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(span.parent_span_id, None);
    assert_eq!(
        span.traceparent(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
}

#[test]
fn malformed_traceparents_are_refused() {
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f35-77b3-4da6-a3ce-929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        assert!(parse_traceparent(bad).is_err(), "{bad}");
    }
    // A later version may add fields.
    assert!(
        parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx").is_ok()
    );
}

#[test]
fn a_trace_id_alone_gets_a_span_stable_for_the_call() {
    let mut header = Header::new();
    header.insert(TRACE_ID_KEY, Value::from(TraceId::random().to_string()));
    let first = SpanContext::from_header(&header).expect("a context");
    assert_eq!(SpanContext::from_header(&header), Some(first));
}

#[test]
fn a_malformed_context_counts_as_none() {
    let mut header = Header::new();
    header.insert(TRACE_ID_KEY, Value::from("not a uuid"));
    assert_eq!(SpanContext::from_header(&header), None);
    header.insert(TRACE_ID_KEY, Value::from(42));
    assert_eq!(SpanContext::from_header(&header), None);
}

#[test]
fn trace_ids_written_for_headers_are_their_display() {
    for _ in 0..100 {
        let span = SpanContext::root();
        let mut header = Header::new();
        span.write(&mut header);
        assert_eq!(
            wire_key(&header, TRACE_ID_KEY),
            Some(Value::from(span.trace_id.to_string()))
        );
    }
}

#[test]
fn writing_a_context_replaces_trace_keys_of_other_forms() {
    let span = SpanContext::root().child();
    let mut header = Header::new();
    header.insert(
        TRACE_ID_KEY,
        Value::from("4BF92F35-77B3-4DA6-A3CE-929D0E0E4736"),
    );
    header.insert(SPAN_ID_KEY, Value::from("00f067aa0ba902b7"));
    header.insert("user", Value::from("kept"));
    span.write(&mut header);
    let keys: Vec<String> = on_the_wire(&header).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "message_id",
            "v",
            TRACE_ID_KEY,
            SPAN_ID_KEY,
            PARENT_SPAN_ID_KEY,
            "user"
        ],
        "each key once, the new context's"
    );
    assert_eq!(SpanContext::from_header(&header), Some(span));
}

#[test]
fn span_ids_go_as_integers_and_are_read_as_integers_or_hex() {
    let span = SpanContext::root().child();
    let mut header = Header::new();
    span.write(&mut header);
    let id = |key| wire_key(&header, key).as_ref().and_then(Value::as_u64);
    assert_eq!(id(SPAN_ID_KEY), Some(span.span_id.get()));
    assert_eq!(id(PARENT_SPAN_ID_KEY), span.parent_span_id.map(SpanId::get));

    // Written as text (a peer writing W3C's form), they read the same.
    let mut text = Header::new();
    text.insert(TRACE_ID_KEY, Value::from(span.trace_id.to_string()));
    text.insert(SPAN_ID_KEY, Value::from(span.span_id.to_string()));
    let parent = span.parent_span_id.unwrap();
    text.insert(PARENT_SPAN_ID_KEY, Value::from(parent.to_string()));
    assert_eq!(SpanContext::from_header(&text), Some(span));

    // Zero, negative, or neither a number nor hex: no span id.
    for bad in [
        Value::from(0),
        Value::from(-5),
        Value::from("xyz"),
        Value::Nil,
    ] {
        assert_eq!(SpanId::from_value(&bad), None, "{bad}");
    }
}
