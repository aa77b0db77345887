//! Fuzzes the event decoder: no input may panic, and whatever decodes must
//! survive re-encoding and agree with the envelope decoder.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zerorpc_wire::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = Event::decode(data) else {
        return;
    };
    // Compared by encoding rather than `==`: the encoding is exact (it
    // keeps id kinds, F32 against F64 and -0.0) and NaN equals itself there.
    let encoded = event.encode();
    let again = Event::decode(&encoded).expect("our own encoding decodes");
    assert_eq!(again.encode(), encoded, "re-encoding is not a fixed point");
    if !has_nan(&event) {
        assert_eq!(again, event);
    }

    let (header, name) = Event::decode_envelope(data).expect("envelope of a decodable event");
    assert_eq!(name, event.name);
    assert_eq!(
        Event::new(header, name, event.args.clone()).encode(),
        encoded,
        "envelope disagrees on the header"
    );
});

fn has_nan(event: &Event) -> bool {
    fn nan(value: &zerorpc_wire::Value) -> bool {
        match value {
            zerorpc_wire::Value::F32(f) => f.is_nan(),
            zerorpc_wire::Value::F64(f) => f.is_nan(),
            zerorpc_wire::Value::Array(items) => items.iter().any(nan),
            zerorpc_wire::Value::Map(entries) => entries.iter().any(|(k, v)| nan(k) || nan(v)),
            _ => false,
        }
    }
    nan(&event.args) || event.header.extra.iter().any(|(_, v)| nan(v))
}
