//! Property tests of the codec: any event survives encode → decode, and
//! decoding arbitrary bytes never panics and reaches a fixed point.

use proptest::prelude::*;
use std::num::{NonZeroU64, NonZeroU128};

use zerorpc_wire::{Event, Header, IdKind, MessageId, TraceKeys, Value};

/// Any msgpack value except NaN floats (so `==` works), nested a few levels.
pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
    use proptest::num::{f32 as f32s, f64 as f64s};
    let floats64 = f64s::POSITIVE
        | f64s::NEGATIVE
        | f64s::ZERO
        | f64s::INFINITE
        | f64s::SUBNORMAL
        | f64s::NORMAL;
    let floats32 = f32s::POSITIVE
        | f32s::NEGATIVE
        | f32s::ZERO
        | f32s::INFINITE
        | f32s::SUBNORMAL
        | f32s::NORMAL;
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        floats64.prop_map(Value::F64),
        floats32.prop_map(Value::F32),
        ".{0,40}".prop_map(|s: String| Value::from(s)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Binary),
        (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
        ]
    })
}

/// Ids as Python (bin, any bytes) or node (str, text) send them, including
/// ones too long to store inline.
fn arb_id() -> impl Strategy<Value = MessageId> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| MessageId::new(&b, IdKind::Bin)),
        ".{0,50}".prop_map(|s: String| MessageId::new(s.as_bytes(), IdKind::Str)),
    ]
}

fn arb_trace() -> impl Strategy<Value = TraceKeys> {
    (
        proptest::option::of(any::<u128>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(trace_id, span_id, parent)| {
            TraceKeys::new(
                trace_id.and_then(NonZeroU128::new),
                span_id.and_then(NonZeroU64::new),
                parent.and_then(NonZeroU64::new),
            )
        })
}

/// Whether decoding would take `value` of the trace key `key` into
/// [`TraceKeys`] rather than keep it an extra.
fn typed_form(key: &str, value: &Value) -> bool {
    match key {
        "trace_id" => value.as_str().is_some_and(|text| {
            text.len() == 36
                && !text.bytes().any(|b| b.is_ascii_uppercase())
                && text.parse::<uuid::Uuid>().is_ok_and(|id| !id.is_nil())
        }),
        _ => value.as_u64().is_some_and(|n| n != 0),
    }
}

/// A header as decoding makes them: a trace key among the extras is in a
/// form `TraceKeys` does not take, or follows one of its name.
fn as_decoded(header: &Header) -> bool {
    let mut seen = Vec::new();
    header.extra.iter().all(|(key, value)| {
        let first = !header.trace.has(key) && !seen.contains(key);
        seen.push(key.clone());
        !(first && TraceKeys::is_trace_key(key) && typed_form(key, value))
    })
}

fn arb_header() -> impl Strategy<Value = Header> {
    // The three known keys live in fields, never among the extras.
    // Decoding borrows the well-known trace keys: they come up too.
    let key = prop_oneof![
        "[a-z_]{1,12}".prop_filter("not a known key", |k| {
            !matches!(k.as_str(), "message_id" | "v" | "response_to")
        }),
        proptest::sample::select(vec!["trace_id", "span_id", "parent_span_id", "traceparent"])
            .prop_map(str::to_owned),
    ];
    (
        arb_id(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(arb_id()),
        arb_trace(),
        proptest::collection::vec((key, arb_value()), 0..4),
    )
        .prop_map(|(message_id, version, response_to, trace, extra)| Header {
            message_id,
            version,
            response_to,
            trace,
            extra: extra.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        })
        .prop_filter("as decoding makes headers", as_decoded)
}

pub(crate) fn arb_event() -> impl Strategy<Value = Event> {
    (arb_header(), ".{0,20}", arb_value())
        .prop_map(|(header, name, args)| Event::new(header, name, args))
}

/// Checks what must hold for any input that decodes: encoding it again and
/// decoding gives the same event, and the envelope decoder agrees. Events
/// are compared by encoding, which is exact and works with NaN.
pub(crate) fn check_fixed_point(bytes: &[u8]) {
    let Ok(event) = Event::decode(bytes) else {
        return;
    };
    let encoded = event.encode();
    let again = Event::decode(&encoded).expect("our own encoding decodes");
    assert_eq!(again.encode(), encoded);
    assert_eq!(
        again.header.message_id.kind(),
        event.header.message_id.kind()
    );
    let (header, name) =
        Event::decode_envelope(bytes).expect("the envelope of a valid event decodes");
    assert_eq!(name, event.name);
    let envelope_only = Event::new(header, name, event.args.clone());
    assert_eq!(envelope_only.encode(), encoded);
}

/// Small edits of a valid encoding: they decode far more often than random
/// bytes do, reaching deeper into the decoder.
fn arb_mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        arb_event(),
        any::<prop::sample::Index>(),
        any::<u8>(),
        0..4u8,
    )
        .prop_map(|(event, at, byte, how)| {
            let mut bytes = event.encode();
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                2 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_event_round_trips(event in arb_event()) {
        let bytes = event.encode();
        let decoded = Event::decode(&bytes).expect("decodes");
        prop_assert_eq!(&decoded, &event);
        prop_assert_eq!(decoded.header.message_id.kind(), event.header.message_id.kind());
        prop_assert_eq!(
            decoded.header.response_to.as_ref().map(MessageId::kind),
            event.header.response_to.as_ref().map(MessageId::kind)
        );
        let (header, name) = Event::decode_envelope(&bytes).expect("envelope decodes");
        prop_assert_eq!(header, event.header);
        prop_assert_eq!(name, event.name);
    }

    #[test]
    fn the_size_estimate_never_falls_short(value in arb_value()) {
        let mut bytes = Vec::new();
        zerorpc_wire::rmpv::encode::write_value(&mut bytes, &value).expect("encodes");
        prop_assert!(zerorpc_wire::estimated_size(&value) >= bytes.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_fixed_point(&bytes);
        let _ = Event::decode_envelope(&bytes);
    }

    #[test]
    fn mutated_events_never_panic(bytes in arb_mutated()) {
        check_fixed_point(&bytes);
        let _ = Event::decode_envelope(&bytes);
    }
}
