//! Malformed input: every way an event can be wrong maps to its own
//! [`DecodeError`] variant, and none of them panics.

use rmpv::decode::Error as MsgpackError;
use zerorpc_wire::{DecodeError, Event, Value};

fn encode(value: &Value) -> Vec<u8> {
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, value).expect("writing to a Vec cannot fail");
    buf
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn header() -> Value {
    Value::Map(vec![
        (
            s("message_id"),
            Value::Binary(b"000000010123456789abcdef01234567".to_vec()),
        ),
        (s("v"), Value::from(3)),
    ])
}

fn event_with(header: Value, name: Value, args: Value) -> Vec<u8> {
    encode(&Value::Array(vec![header, name, args]))
}

fn valid() -> Vec<u8> {
    event_with(
        header(),
        s("add"),
        Value::Array(vec![Value::from(1), Value::from(2)]),
    )
}

/// Decodes `bytes` with both decoders and returns their errors.
#[track_caller]
fn errors(bytes: &[u8]) -> (DecodeError, DecodeError) {
    let full = Event::decode(bytes).expect_err("decode should fail");
    let envelope = Event::decode_envelope(bytes).expect_err("decode_envelope should fail");
    (full, envelope)
}

#[test]
fn not_an_array() {
    for value in [header(), Value::Nil, s("add"), Value::from(3)] {
        let (full, envelope) = errors(&encode(&value));
        assert!(matches!(full, DecodeError::NotAnArray), "{full:?}");
        assert!(matches!(envelope, DecodeError::NotAnArray), "{envelope:?}");
    }
}

#[test]
fn wrong_length() {
    for len in [0, 1, 2, 4, 17] {
        let bytes = encode(&Value::Array(vec![Value::Nil; len]));
        let (full, envelope) = errors(&bytes);
        assert!(
            matches!(full, DecodeError::WrongLength(n) if n == len),
            "{full:?}"
        );
        assert!(
            matches!(envelope, DecodeError::WrongLength(n) if n == len),
            "{envelope:?}"
        );
    }
}

#[test]
fn header_not_a_map() {
    let bytes = event_with(Value::Array(vec![]), s("add"), Value::Nil);
    let (full, envelope) = errors(&bytes);
    assert!(matches!(full, DecodeError::HeaderNotAMap), "{full:?}");
    assert!(
        matches!(envelope, DecodeError::HeaderNotAMap),
        "{envelope:?}"
    );
}

#[test]
fn missing_message_id() {
    let bytes = event_with(
        Value::Map(vec![(s("v"), Value::from(3))]),
        s("add"),
        Value::Nil,
    );
    let (full, envelope) = errors(&bytes);
    assert!(matches!(full, DecodeError::MissingMessageId), "{full:?}");
    assert!(
        matches!(envelope, DecodeError::MissingMessageId),
        "{envelope:?}"
    );
}

#[test]
fn header_key_not_text() {
    for key in [Value::from(1), Value::Nil, Value::Binary(vec![0xff, 0xfe])] {
        let mut entries = header().as_map().expect("map").clone();
        entries.push((key, Value::Nil));
        let (full, envelope) = errors(&event_with(Value::Map(entries), s("add"), Value::Nil));
        assert!(matches!(full, DecodeError::HeaderKeyNotText), "{full:?}");
        assert!(
            matches!(envelope, DecodeError::HeaderKeyNotText),
            "{envelope:?}"
        );
    }
}

#[test]
fn ids_that_are_not_str_or_bin() {
    let bytes = event_with(
        Value::Map(vec![(s("message_id"), Value::from(5))]),
        s("add"),
        Value::Nil,
    );
    let (full, envelope) = errors(&bytes);
    assert!(
        matches!(full, DecodeError::InvalidId("message_id")),
        "{full:?}"
    );
    assert!(
        matches!(envelope, DecodeError::InvalidId("message_id")),
        "{envelope:?}"
    );

    let mut entries = header().as_map().expect("map").clone();
    entries.push((s("response_to"), Value::Nil));
    let (full, envelope) = errors(&event_with(Value::Map(entries), s("OK"), Value::Nil));
    assert!(
        matches!(full, DecodeError::InvalidId("response_to")),
        "{full:?}"
    );
    assert!(
        matches!(envelope, DecodeError::InvalidId("response_to")),
        "{envelope:?}"
    );
}

#[test]
fn name_not_text() {
    for name in [
        Value::from(1),
        Value::Nil,
        Value::Array(vec![]),
        Value::Binary(vec![0xc3, 0x28]),
    ] {
        let (full, envelope) = errors(&event_with(header(), name, Value::Nil));
        assert!(matches!(full, DecodeError::NameNotText), "{full:?}");
        assert!(matches!(envelope, DecodeError::NameNotText), "{envelope:?}");
    }
}

#[test]
fn trailing_bytes() {
    let mut bytes = valid();
    bytes.extend_from_slice(&[0xc0, 0xc0]);
    let err = Event::decode(&bytes).expect_err("trailing bytes");
    assert!(matches!(err, DecodeError::TrailingBytes(2)), "{err:?}");
}

#[test]
fn truncated_input() {
    let bytes = valid();
    for len in 0..bytes.len() {
        let err = Event::decode(&bytes[..len]).expect_err("truncated");
        assert!(matches!(err, DecodeError::Msgpack(_)), "{len}: {err:?}");
    }
    // The envelope decoder stops after the name, so it only notices a cut
    // inside the header or the name.
    let header_and_name = bytes.len() - 3;
    for len in 0..header_and_name {
        let err = Event::decode_envelope(&bytes[..len]).expect_err("truncated");
        assert!(matches!(err, DecodeError::Msgpack(_)), "{len}: {err:?}");
    }
    assert!(Event::decode_envelope(&bytes[..header_and_name]).is_ok());
}

#[test]
fn reserved_marker() {
    // Python's unpacker refuses 0xc1 wherever it appears.
    let (full, envelope) = errors(&[0xc1]);
    assert!(matches!(full, DecodeError::Msgpack(_)), "{full:?}");
    assert!(matches!(envelope, DecodeError::Msgpack(_)), "{envelope:?}");
    let mut bytes = valid();
    let last = bytes.len() - 1;
    bytes[last] = 0xc1;
    let err = Event::decode(&bytes).expect_err("0xc1 in the args");
    assert!(matches!(err, DecodeError::Msgpack(_)), "{err:?}");
}

#[test]
fn huge_declared_lengths_fail_fast() {
    // Lengths claiming 4 Gi elements or bytes with nothing behind them must
    // not allocate up front.
    let err =
        Event::decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).expect_err("no event has 2^32 - 1 parts");
    assert!(
        matches!(err, DecodeError::WrongLength(0xffff_ffff)),
        "{err:?}"
    );
    let mut prefix = vec![0x93];
    prefix.extend_from_slice(&encode(&header()));
    let claims: [&[u8]; 3] = [
        &[0xdb, 0xff, 0xff, 0xff, 0xff],             // a 4 GiB name
        &[0xa1, b'x', 0xdd, 0xff, 0xff, 0xff, 0xff], // 4 Gi args
        &[0xa1, b'x', 0xdf, 0xff, 0xff, 0xff, 0xff], // 4 Gi map entries
    ];
    for claim in claims {
        let mut bytes = prefix.clone();
        bytes.extend_from_slice(claim);
        let err = Event::decode(&bytes).expect_err("truncated");
        assert!(matches!(err, DecodeError::Msgpack(_)), "{err:?}");
    }
    let err = Event::decode(&[0x93, 0xdf, 0xff, 0xff, 0xff, 0xff]).expect_err("truncated header");
    assert!(matches!(err, DecodeError::Msgpack(_)), "{err:?}");
}

fn is_invalid_utf8(err: &DecodeError) -> bool {
    matches!(err, DecodeError::Msgpack(MsgpackError::InvalidDataRead(e)) if e.kind() == std::io::ErrorKind::InvalidData)
}

/// A str whose bytes are not UTF-8: `a2 c3 28`.
fn bad_str(bytes: &mut Vec<u8>) {
    bytes.extend_from_slice(&[0xa2, 0xc3, 0x28]);
}

#[test]
fn invalid_utf8_anywhere() {
    // In the args, deep inside: Python's unpacker rejects the whole message.
    let mut bytes = Vec::new();
    bytes.push(0x93);
    bytes.extend_from_slice(&encode(&header()));
    bytes.extend_from_slice(&encode(&s("add")));
    bytes.extend_from_slice(&[0x92, 0x01, 0x81, 0xa1, b'k']);
    bad_str(&mut bytes);
    let err = Event::decode(&bytes).expect_err("invalid utf-8");
    assert!(is_invalid_utf8(&err), "{err:?}");
    // The envelope decoder does not look at the args.
    assert!(Event::decode_envelope(&bytes).is_ok());

    // As the name.
    let mut bytes = vec![0x93];
    bytes.extend_from_slice(&encode(&header()));
    bad_str(&mut bytes);
    bytes.push(0xc0);
    let (full, envelope) = errors(&bytes);
    assert!(is_invalid_utf8(&full), "{full:?}");
    assert!(is_invalid_utf8(&envelope), "{envelope:?}");

    // As a header key (every key the protocol's peers write is a fixstr,
    // which has a reader of its own).
    let mut bytes = vec![0x93, 0x82];
    bytes.extend_from_slice(&encode(&s("message_id")));
    bytes.extend_from_slice(&encode(&s("x")));
    bad_str(&mut bytes);
    bytes.extend_from_slice(&[0x01, 0xa1, b'x', 0xc0]);
    let (full, envelope) = errors(&bytes);
    assert!(is_invalid_utf8(&full), "{full:?}");
    assert!(is_invalid_utf8(&envelope), "{envelope:?}");

    // As a str id.
    let mut bytes = vec![0x93, 0x81];
    bytes.extend_from_slice(&encode(&s("message_id")));
    bad_str(&mut bytes);
    bytes.extend_from_slice(&[0xa1, b'x', 0xc0]);
    let (full, envelope) = errors(&bytes);
    assert!(is_invalid_utf8(&full), "{full:?}");
    assert!(is_invalid_utf8(&envelope), "{envelope:?}");
}

fn nested_args(depth: usize) -> Vec<u8> {
    let mut bytes = vec![0x93];
    bytes.extend_from_slice(&encode(&header()));
    bytes.extend_from_slice(&encode(&s("deep")));
    bytes.extend(std::iter::repeat_n(0x91, depth));
    bytes.push(0xc0);
    bytes
}

#[test]
fn excessive_nesting() {
    let err = Event::decode(&nested_args(100_000)).expect_err("too deep");
    assert!(
        matches!(err, DecodeError::Msgpack(MsgpackError::DepthLimitExceeded)),
        "{err:?}"
    );
    // Inside an extra header value, which the envelope decoder reads too.
    let mut header_bomb = vec![0x93, 0x81, 0xa1, b'x'];
    header_bomb.extend(std::iter::repeat_n(0x91, 100_000));
    let (full, envelope) = errors(&header_bomb);
    assert!(
        matches!(full, DecodeError::Msgpack(MsgpackError::DepthLimitExceeded)),
        "{full:?}"
    );
    assert!(
        matches!(
            envelope,
            DecodeError::Msgpack(MsgpackError::DepthLimitExceeded)
        ),
        "{envelope:?}"
    );
}

#[test]
fn deep_but_allowed_nesting_round_trips() {
    // At the decoder's limit of 128 nested arrays and maps (the event array
    // is the first), on a test thread's stack: decoding, encoding, dropping
    // and converting all recurse.
    let bytes = nested_args(127);
    let event = Event::decode(&bytes).expect("within the depth limit");
    assert_eq!(event.encode(), bytes);
    assert_eq!(
        zerorpc_wire::to_value(&event.args).expect("converts"),
        event.args
    );
    let err = Event::decode(&nested_args(128)).expect_err("one level too deep");
    assert!(
        matches!(err, DecodeError::Msgpack(MsgpackError::DepthLimitExceeded)),
        "{err:?}"
    );
}

#[test]
fn messages_are_lowercase_without_trailing_period() {
    let all = [
        errors(&[0xc1]).0,
        errors(&encode(&Value::Nil)).0,
        errors(&encode(&Value::Array(vec![]))).0,
        errors(&event_with(Value::Nil, s("x"), Value::Nil)).0,
        errors(&event_with(Value::Map(vec![]), s("x"), Value::Nil)).0,
        errors(&event_with(header(), Value::Nil, Value::Nil)).0,
    ];
    for err in all {
        let message = err.to_string();
        assert!(
            message.starts_with(|c: char| c.is_lowercase() || c.is_ascii_digit()),
            "{message}"
        );
        assert!(!message.ends_with('.'), "{message}");
    }
}
