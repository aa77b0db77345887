//! Real traffic captured between zerorpc-python 0.6.3 and raw sockets
//! (PROTOCOL.md, Appendix A): every message decodes to what Python meant and
//! re-encodes to the very same bytes.

use zerorpc_wire::{Event, IdKind, Value};

use crate::unhex;

/// The captured payloads (last frame of each message), with descriptions.
fn vectors() -> Vec<(String, Vec<u8>)> {
    let text = include_str!("../data/zerorpc-vectors.json");
    let parsed: Vec<(String, Vec<String>)> =
        serde_json::from_str(text).expect("vector file parses");
    parsed
        .into_iter()
        .map(|(description, frames)| {
            let payload = frames.last().expect("at least one frame");
            (description, unhex(payload))
        })
        .collect()
}

/// What each vector must decode to: name, `v`, whether it answers a channel,
/// and the args.
fn expected() -> Vec<(&'static str, u32, bool, Value)> {
    let int = |n: i64| Value::from(n);
    let arr = |items: Vec<Value>| Value::Array(items);
    vec![
        ("add", 3, false, arr(vec![int(1), int(2)])),
        ("OK", 3, true, arr(vec![int(3)])),
        ("nosuchmethod", 3, false, arr(vec![int(1)])),
        ("boom", 1, false, arr(vec![])),
        (
            "ERR",
            3,
            true,
            arr(vec![Value::from("ValueError('bad value!')")]),
        ),
        ("count", 3, false, arr(vec![int(2)])),
        ("STREAM", 3, true, int(0)),
        ("_zpc_more", 3, true, arr(vec![int(100)])),
        ("STREAM", 3, true, int(1)),
        ("STREAM_DONE", 3, true, Value::Nil),
        ("empty", 3, false, arr(vec![])),
        ("STREAM_DONE", 3, true, Value::Nil),
        ("get_bytes", 3, false, arr(vec![])),
        ("OK", 3, true, arr(vec![Value::Binary(vec![0, 1, 0xff])])),
        ("echo", 3, false, arr(vec![Value::from("héllo")])),
        ("OK", 3, true, arr(vec![Value::from("héllo")])),
        ("slow", 3, false, arr(vec![int(6)])),
        ("_zpc_hb", 3, true, arr(vec![int(0)])),
        ("_zpc_hb", 3, true, arr(vec![int(0)])),
        ("OK", 3, true, arr(vec![Value::from("done")])),
    ]
}

#[test]
fn every_vector_decodes_as_python_meant() {
    let vectors = vectors();
    let expected = expected();
    assert_eq!(vectors.len(), expected.len());
    for ((description, bytes), (name, v, answers, args)) in vectors.iter().zip(expected) {
        let event = Event::decode(bytes).unwrap_or_else(|e| panic!("{description}: {e}"));
        assert_eq!(event.name, name, "{description}");
        assert_eq!(event.header.version, Some(v), "{description}");
        assert_eq!(event.header.message_id.kind(), IdKind::Bin, "{description}");
        assert_eq!(
            event.header.message_id.as_bytes().len(),
            32,
            "{description}"
        );
        assert_eq!(event.header.response_to.is_some(), answers, "{description}");
        if let Some(to) = &event.header.response_to {
            assert_eq!(to.kind(), IdKind::Bin, "{description}");
        }
        assert!(event.header.extra.is_empty(), "{description}");
        assert_eq!(event.args, args, "{description}");
    }
}

#[test]
fn replies_answer_the_request_before_them() {
    let events: Vec<Event> = vectors()
        .iter()
        .map(|(_, b)| Event::decode(b).expect("decodes"))
        .collect();
    // The OK to add(1, 2) and the ERR to boom() name their requests.
    assert_eq!(
        events[1].header.response_to.as_ref(),
        Some(&events[0].header.message_id)
    );
    assert_eq!(
        events[4].header.response_to.as_ref(),
        Some(&events[3].header.message_id)
    );
}

#[test]
fn every_vector_reencodes_byte_for_byte() {
    // Python writes message_id, v, response_to, as our encoder does, and
    // packs every value canonically, so nothing is lost or reordered.
    for (description, bytes) in vectors() {
        let event = Event::decode(&bytes).expect("decodes");
        assert_eq!(hex(&event.encode()), hex(&bytes), "{description}");
    }
}

#[test]
fn decode_envelope_agrees_with_decode() {
    for (description, bytes) in vectors() {
        let event = Event::decode(&bytes).expect("decodes");
        let (header, name) = Event::decode_envelope(&bytes).expect("envelope decodes");
        assert_eq!(header, event.header, "{description}");
        assert_eq!(name, event.name, "{description}");
    }
}

/// The bytes that the re-encoding test compares, as hex so a failure shows
/// where they differ.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
