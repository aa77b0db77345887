//! Headers as other peers write them: node's str ids and key order, extra
//! keys from task-context middleware, and bin where text is expected.

use zerorpc_wire::{Event, Header, IdKind, MessageId, Value};

use crate::unhex;

const NODE_ID: &str = "6ce9503a-bfb8-486a-ac79-000000000000";

fn encode(value: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, value).expect("writing to a Vec cannot fail");
    buf
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn bin(bytes: &[u8]) -> Value {
    Value::Binary(bytes.to_vec())
}

fn python_id() -> Vec<u8> {
    b"000000010123456789abcdef01234567".to_vec()
}

#[test]
fn node_request_keeps_its_str_id() {
    // PROTOCOL.md A.2: node writes `v` first and the id as a 36-char str.
    let bytes = unhex(concat!(
        "9382a17603aa6d6573736167655f6964d92436636539353033612d626662382d",
        "343836612d616337392d303030303030303030303030a3616464920102"
    ));
    let event = Event::decode(&bytes).expect("node request decodes");
    assert_eq!(event.header.message_id.kind(), IdKind::Str);
    assert_eq!(event.header.message_id.as_bytes(), NODE_ID.as_bytes());
    assert_eq!(event.header.version, Some(3));
    assert_eq!(event.name, "add");

    // We write Python's key order, so the header keys swap places; the id
    // itself keeps its type and bytes (`d9 24` + the 36 characters).
    let reencoded = event.encode();
    let python_order = encode(&Value::Array(vec![
        Value::Map(vec![
            (s("message_id"), s(NODE_ID)),
            (s("v"), Value::from(3)),
        ]),
        s("add"),
        Value::Array(vec![Value::from(1), Value::from(2)]),
    ]));
    assert_eq!(reencoded, python_order);
    assert_eq!(Event::decode(&reencoded).expect("decodes"), event);
}

#[test]
fn reply_echoes_a_str_id_as_str() {
    let request = Event::new(
        Header::with_id(MessageId::new(NODE_ID.as_bytes(), IdKind::Str)),
        "add",
        Value::Array(vec![]),
    );
    let mut header = Header::with_id(MessageId::new(&python_id(), IdKind::Bin));
    header.response_to = Some(request.header.message_id.clone());
    let reply = Event::new(header, "OK", Value::Array(vec![Value::from(3)]));

    let expected = encode(&Value::Array(vec![
        Value::Map(vec![
            (s("message_id"), bin(&python_id())),
            (s("v"), Value::from(3)),
            (s("response_to"), s(NODE_ID)),
        ]),
        s("OK"),
        Value::Array(vec![Value::from(3)]),
    ]));
    assert_eq!(reply.encode(), expected);
    let mut str_id = vec![0xd9, 36];
    str_id.extend_from_slice(NODE_ID.as_bytes());
    assert!(
        reply
            .encode()
            .windows(str_id.len())
            .any(|w| w == str_id.as_slice())
    );
}

#[test]
fn node_heartbeat_decodes() {
    // PROTOCOL.md A.2: node's `_zpc_hb`, str ids for both fields.
    let bytes = unhex(concat!(
        "9383a17603aa6d6573736167655f6964d92436636539353033612d626662382d",
        "343836612d616337392d303030303030303030303031ab726573706f6e73655f",
        "746fd92436636539353033612d626662382d343836612d616337392d30303030",
        "3030303030303030a75f7a70635f68629100"
    ));
    let event = Event::decode(&bytes).expect("decodes");
    let to = event.header.response_to.expect("answers a channel");
    assert_eq!(
        (to.kind(), to.as_bytes()),
        (IdKind::Str, NODE_ID.as_bytes())
    );
    assert_eq!(event.name, "_zpc_hb");
}

#[test]
fn ids_compare_by_bytes_across_kinds() {
    let as_bin = MessageId::new(NODE_ID.as_bytes(), IdKind::Bin);
    let as_str = MessageId::new(NODE_ID.as_bytes(), IdKind::Str);
    assert_eq!(as_bin, as_str);
    let set: std::collections::HashSet<_> = [as_bin].into_iter().collect();
    assert!(set.contains(&as_str));
}

#[test]
fn unknown_header_keys_survive_in_order() {
    let header = Value::Map(vec![
        (s("message_id"), bin(&python_id())),
        (s("v"), Value::from(3)),
        (s("trace_id"), s("abc")),
        (
            s("span"),
            Value::Array(vec![Value::from(1), Value::Map(vec![(s("k"), Value::Nil)])]),
        ),
        (s("zz"), Value::F64(0.25)),
    ]);
    let bytes = encode(&Value::Array(vec![header, s("ping"), Value::Array(vec![])]));
    let event = Event::decode(&bytes).expect("decodes");
    let keys: Vec<&str> = event.header.extra.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, ["trace_id", "span", "zz"]);
    assert_eq!(event.header.get("trace_id"), Some(&s("abc")));
    assert_eq!(event.encode(), bytes);
}

#[test]
fn extras_follow_response_to_on_the_wire() {
    let mut header = Header::with_id(MessageId::new(&python_id(), IdKind::Bin));
    header.insert("trace_id", s("t1"));
    header.response_to = Some(MessageId::new(b"channel", IdKind::Bin));
    header.insert("trace_id", s("t2"));
    let event = Event::new(header, "OK", Value::Nil);
    let expected = encode(&Value::Array(vec![
        Value::Map(vec![
            (s("message_id"), bin(&python_id())),
            (s("v"), Value::from(3)),
            (s("response_to"), bin(b"channel")),
            (s("trace_id"), s("t2")),
        ]),
        s("OK"),
        Value::Nil,
    ]));
    assert_eq!(event.encode(), expected);
}

#[test]
fn bin_is_text_for_header_keys_and_name() {
    // What an old Python 2 peer sends: every text as bin.
    let bytes = encode(&Value::Array(vec![
        Value::Map(vec![
            (bin(b"message_id"), bin(&python_id())),
            (bin(b"v"), Value::from(3)),
            (bin(b"response_to"), bin(b"chan")),
            (bin(b"trace_id"), bin(b"abc")),
        ]),
        bin(b"OK"),
        Value::Array(vec![bin(b"result")]),
    ]));
    let event = Event::decode(&bytes).expect("decodes");
    assert_eq!(event.name, "OK");
    assert_eq!(event.header.message_id.as_bytes(), python_id().as_slice());
    assert_eq!(event.header.version, Some(3));
    assert_eq!(
        event.header.response_to.as_ref().map(MessageId::as_bytes),
        Some(&b"chan"[..])
    );
    // Extra values are opaque and keep their type; only keys become text.
    assert_eq!(event.header.get("trace_id"), Some(&bin(b"abc")));
    let (header, name) = Event::decode_envelope(&bytes).expect("envelope decodes");
    assert_eq!((header, name), (event.header.clone(), event.name.clone()));

    // Re-encoding writes keys and name as str, as Python 3 peers expect.
    let reencoded = Event::decode(&event.encode()).expect("decodes");
    assert_eq!(reencoded, event);
}

#[test]
fn missing_or_odd_version_means_none() {
    let no_v = encode(&Value::Array(vec![
        Value::Map(vec![(s("message_id"), bin(&python_id()))]),
        s("add"),
        Value::Array(vec![]),
    ]));
    assert_eq!(Event::decode(&no_v).expect("decodes").header.version, None);
    let text_v = encode(&Value::Array(vec![
        Value::Map(vec![(s("message_id"), bin(&python_id())), (s("v"), s("3"))]),
        s("add"),
        Value::Array(vec![]),
    ]));
    let event = Event::decode(&text_v).expect("decodes");
    assert_eq!(event.header.version, None);
    // And a header without `v` is written without it.
    assert_eq!(event.encode(), no_v);
}

#[test]
fn versions_are_read_in_every_integer_form() {
    let with_v = |v: &[u8]| {
        // A fixmap of two: the id, then `v` with the raw msgpack given.
        let mut bytes = vec![0x93, 0x82];
        bytes.extend(encode(&s("message_id")));
        bytes.extend(encode(&bin(&python_id())));
        bytes.extend(encode(&s("v")));
        bytes.extend_from_slice(v);
        bytes.extend(encode(&s("add")));
        bytes.push(0x90);
        Event::decode(&bytes).expect("decodes").header.version
    };
    assert_eq!(with_v(&[0x03]), Some(3));
    assert_eq!(with_v(&[0x7f]), Some(127));
    assert_eq!(with_v(&[0xcc, 0x80]), Some(128));
    assert_eq!(with_v(&[0xcd, 0x01, 0x2c]), Some(300));
    // A signed form holding a non-negative number is that number.
    assert_eq!(with_v(&[0xd0, 0x05]), Some(5));
    // Negative, too large for a version, or not an integer: no version.
    assert_eq!(with_v(&[0xff]), None);
    assert_eq!(with_v(&[0xcf, 0, 0, 1, 0, 0, 0, 0, 0]), None);
    assert_eq!(with_v(&[0xc0]), None);
    assert_eq!(with_v(&[0x91, 0x03]), None);
}

const TRACE_TEXT: &str = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736";
const TRACE_BITS: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;

fn traced_header(keys: Vec<(Value, Value)>) -> Vec<u8> {
    let mut header = vec![
        (s("message_id"), bin(&python_id())),
        (s("v"), Value::from(3)),
    ];
    header.extend(keys);
    encode(&Value::Array(vec![Value::Map(header), s("OK"), Value::Nil]))
}

#[test]
fn trace_keys_in_tracings_forms_are_read_into_trace_keys_and_written_back_alike() {
    let bytes = traced_header(vec![
        (s("trace_id"), s(TRACE_TEXT)),
        (s("span_id"), Value::from(u64::MAX)),
        (s("parent_span_id"), Value::from(7)),
        (s("user"), s("kept")),
    ]);
    let event = Event::decode(&bytes).expect("decodes");
    let trace = event.header.trace;
    assert_eq!(trace.trace_id().map(|id| id.get()), Some(TRACE_BITS));
    assert_eq!(trace.span_id().map(|id| id.get()), Some(u64::MAX));
    assert_eq!(trace.parent_span_id().map(|id| id.get()), Some(7));
    assert!(event.header.get("trace_id").is_none());
    let keys: Vec<&str> = event.header.extra.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, ["user"]);
    assert_eq!(event.encode(), bytes, "the same bytes again");
    let (header, _) = Event::decode_envelope(&bytes).expect("envelope decodes");
    assert_eq!(header, event.header);
}

#[test]
fn a_trace_id_in_a_longer_str_form_is_read_as_the_same_id() {
    // Tracers write the id as a str 8; a writer choosing a str 16 for the
    // same text is read alike.
    let str8 = traced_header(vec![(s("trace_id"), s(TRACE_TEXT))]);
    let at = str8
        .windows(2)
        .position(|w| w == [0xd9, 36])
        .expect("a str 8 of 36 bytes");
    let mut str16 = str8[..at].to_vec();
    str16.extend_from_slice(&[0xda, 0, 36]);
    str16.extend_from_slice(&str8[at + 2..]);
    let event = Event::decode(&str16).expect("decodes");
    assert_eq!(
        event.header.trace.trace_id().map(|id| id.get()),
        Some(TRACE_BITS)
    );
    assert!(event.header.get("trace_id").is_none());
}

#[test]
fn a_trace_id_of_bytes_that_are_not_utf8_is_refused_as_any_such_str() {
    let mut bytes = traced_header(vec![(s("trace_id"), s(TRACE_TEXT))]);
    let at = bytes
        .windows(2)
        .position(|w| w == [0xd9, 36])
        .expect("a str 8 of 36 bytes");
    bytes[at + 2] = 0xff;
    let err = Event::decode(&bytes).expect_err("not UTF-8");
    assert!(
        matches!(&err, zerorpc_wire::DecodeError::Msgpack(_)),
        "{err:?}"
    );
}

#[test]
fn trace_keys_in_other_forms_stay_extras_exactly_as_they_came() {
    for (key, value) in [
        (s("trace_id"), s(&TRACE_TEXT.to_uppercase())),
        (s("trace_id"), s(&TRACE_TEXT.replace('-', ""))),
        (s("trace_id"), s("00000000-0000-0000-0000-000000000000")),
        (s("trace_id"), s("4bf92f35-77b3-4da6-a3ce-929d0e0e473z")),
        (s("trace_id"), bin(TRACE_TEXT.as_bytes())),
        (s("trace_id"), Value::from(42)),
        (s("span_id"), s("00f067aa0ba902b7")),
        (s("span_id"), Value::from(0)),
        (s("span_id"), Value::from(-3)),
        (s("parent_span_id"), Value::F64(1.0)),
        (s("parent_span_id"), Value::Nil),
        (bin(b"span_id"), bin(b"7")),
    ] {
        let bytes = traced_header(vec![(key.clone(), value.clone())]);
        let event = Event::decode(&bytes).expect("decodes");
        assert!(event.header.trace.is_empty(), "{key} = {value}");
        let text_key = key.as_str().map_or_else(
            || String::from_utf8(key.as_slice().unwrap().to_vec()).unwrap(),
            str::to_owned,
        );
        assert_eq!(event.header.get(&text_key), Some(&value), "{key} = {value}");
        if key.is_str() {
            assert_eq!(event.encode(), bytes, "{key} = {value}");
        }
    }
}

#[test]
fn a_repeated_trace_key_keeps_its_order() {
    // The first in tracing's form is read as the key; the one after stays
    // an extra, after it, as it came.
    let first = traced_header(vec![
        (s("span_id"), Value::from(5)),
        (s("span_id"), Value::from(6)),
    ]);
    let event = Event::decode(&first).expect("decodes");
    assert_eq!(event.header.trace.span_id().map(|id| id.get()), Some(5));
    assert_eq!(event.header.get("span_id"), Some(&Value::from(6)));
    assert_eq!(event.encode(), first);
    // After an extra of that name, the later one stays an extra too.
    let later = traced_header(vec![(s("span_id"), s("x")), (s("span_id"), Value::from(6))]);
    let event = Event::decode(&later).expect("decodes");
    assert!(event.header.trace.is_empty());
    assert_eq!(event.header.extra.len(), 2);
    assert_eq!(event.encode(), later);
}

#[test]
fn inserting_a_trace_key_replaces_the_kept_one() {
    let mut header = Header::with_id(MessageId::new(&python_id(), IdKind::Bin));
    header.trace = zerorpc_wire::TraceKeys::new(
        std::num::NonZeroU128::new(TRACE_BITS),
        std::num::NonZeroU64::new(9),
        None,
    );
    header.insert("span_id", s("text"));
    assert_eq!(header.trace.span_id(), None);
    assert!(header.trace.trace_id().is_some());
    let event = Event::decode(&Event::new(header, "OK", Value::Nil).encode()).expect("decodes");
    assert_eq!(event.header.get("span_id"), Some(&s("text")));
    assert_eq!(
        event.header.trace.trace_id().map(|id| id.get()),
        Some(TRACE_BITS)
    );
}

#[test]
fn setting_the_trace_context_replaces_trace_keys_among_the_extras() {
    let mut header = Header::with_id(MessageId::new(&python_id(), IdKind::Bin));
    header.insert("trace_id", s(&TRACE_TEXT.to_uppercase()));
    header.insert("parent_span_id", s("x"));
    header.insert("user", s("kept"));
    header.set_trace(zerorpc_wire::TraceKeys::new(
        std::num::NonZeroU128::new(TRACE_BITS),
        std::num::NonZeroU64::new(9),
        None,
    ));
    let keys: Vec<&str> = header.extra.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, ["user"], "the context is set as a whole");
    let event = Event::decode(&Event::new(header, "OK", Value::Nil).encode()).expect("decodes");
    assert_eq!(event.header.trace.span_id().map(|id| id.get()), Some(9));
    assert_eq!(event.header.trace.parent_span_id(), None);
    assert!(event.header.get("parent_span_id").is_none());
}

#[test]
fn header_keys_and_ids_decode_alike_in_every_form_msgpack_allows() {
    // The common forms (fixstr keys, bin 8 ids, as every peer writes them)
    // are read as bytes; any wider form of the same key or id must decode
    // to the same header.
    let key = |text: &str, wide: bool| {
        let mut bytes = if wide {
            vec![0xd9, text.len() as u8]
        } else {
            vec![0xa0 | text.len() as u8]
        };
        bytes.extend_from_slice(text.as_bytes());
        bytes
    };
    let id = |bytes: &[u8], wide: bool| {
        let mut out = if wide {
            vec![0xc5, 0, bytes.len() as u8]
        } else {
            vec![0xc4, bytes.len() as u8]
        };
        out.extend_from_slice(bytes);
        out
    };
    let reply_to = b"00000001feedfacefeedfacefeedface";
    let event = |wide_keys: bool, wide_ids: bool| {
        let mut bytes = vec![0x93, 0x83];
        bytes.extend(key("message_id", wide_keys));
        bytes.extend(id(&python_id(), wide_ids));
        bytes.extend(key("v", wide_keys));
        bytes.push(0x03);
        bytes.extend(key("response_to", wide_keys));
        bytes.extend(id(reply_to, wide_ids));
        bytes.extend(encode(&s("OK")));
        bytes.extend(encode(&Value::Array(vec![Value::from(3)])));
        bytes
    };
    let common = Event::decode(&event(false, false)).expect("decodes");
    assert_eq!(common.header.message_id.as_bytes(), python_id().as_slice());
    assert_eq!(common.header.message_id.kind(), IdKind::Bin);
    assert_eq!(common.header.version, Some(3));
    assert_eq!(
        common.header.response_to.as_ref().map(MessageId::as_bytes),
        Some(&reply_to[..])
    );
    for (wide_keys, wide_ids) in [(true, false), (false, true), (true, true)] {
        let bytes = event(wide_keys, wide_ids);
        let decoded = Event::decode(&bytes).expect("decodes");
        assert_eq!(
            decoded, common,
            "wide keys {wide_keys}, wide ids {wide_ids}"
        );
        let (header, name) = Event::decode_envelope(&bytes).expect("envelope decodes");
        assert_eq!((header, name), (common.header.clone(), common.name.clone()));
    }
    // Ids of another length in the short form are read whole.
    let mut short = event(false, false);
    let at = 2 + key("message_id", false).len();
    short.splice(at..at + 2 + 32, id(b"chan", false));
    let decoded = Event::decode(&short).expect("decodes");
    assert_eq!(decoded.header.message_id.as_bytes(), b"chan");
    assert_eq!(decoded.header.message_id.kind(), IdKind::Bin);
}
