//! Property tests of the serde layer: Rust values of every shape survive
//! `to_value` → event encoding → decoding → `from_value`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zerorpc_wire::{Event, Header, Value, from_value, to_value};

use crate::props::arb_value;

/// Bytes through `serialize_bytes`, as `serde_bytes` sends them: Python
/// `bytes`.
#[derive(Clone, Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Kind {
    Unit,
    Newtype(i64),
    Tuple(u8, String),
    Struct { a: Option<u32>, b: Vec<bool> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Inner(u16);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    delta: i32,
    name: String,
    letter: char,
    score: f64,
    ratio: f32,
    maybe: Option<i16>,
    blob: Bytes,
    kinds: Vec<Kind>,
    attrs: HashMap<String, Vec<Inner>>,
    pair: (u8, bool, Option<String>),
    nested: Vec<BTreeMap<String, Option<Vec<i8>>>>,
}

fn arb_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Unit),
        any::<i64>().prop_map(Kind::Newtype),
        (any::<u8>(), ".{0,10}").prop_map(|(a, b)| Kind::Tuple(a, b)),
        (
            any::<Option<u32>>(),
            proptest::collection::vec(any::<bool>(), 0..4)
        )
            .prop_map(|(a, b)| Kind::Struct { a, b }),
    ]
}

fn arb_record() -> impl Strategy<Value = Record> {
    let finite64 =
        proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL;
    let finite32 =
        proptest::num::f32::NORMAL | proptest::num::f32::ZERO | proptest::num::f32::SUBNORMAL;
    (
        (
            any::<u64>(),
            any::<i32>(),
            ".{0,20}",
            any::<char>(),
            finite64,
            finite32,
            any::<Option<i16>>(),
        ),
        (
            proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes),
            proptest::collection::vec(arb_kind(), 0..5),
            proptest::collection::hash_map(
                ".{0,8}",
                proptest::collection::vec(any::<u16>().prop_map(Inner), 0..3),
                0..4,
            ),
            (any::<u8>(), any::<bool>(), proptest::option::of(".{0,8}")),
            proptest::collection::vec(
                proptest::collection::btree_map(
                    ".{0,6}",
                    proptest::option::of(proptest::collection::vec(any::<i8>(), 0..4)),
                    0..3,
                ),
                0..3,
            ),
        ),
    )
        .prop_map(
            |(
                (id, delta, name, letter, score, ratio, maybe),
                (blob, kinds, attrs, pair, nested),
            )| Record {
                id,
                delta,
                name,
                letter,
                score,
                ratio,
                maybe,
                blob,
                kinds,
                attrs,
                pair,
                nested,
            },
        )
}

/// Sends `rust` as the args of an event and reads it back on the far side.
#[track_caller]
fn through_the_wire<T: Serialize + DeserializeOwned + PartialEq + Debug>(rust: &T) -> T {
    let args = to_value(rust).expect("to_value");
    let bytes = Event::new(Header::new(), "call", args).encode();
    let event = Event::decode(&bytes).expect("decodes");
    from_value(event.args).expect("from_value")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn records_round_trip(record in arb_record()) {
        prop_assert_eq!(through_the_wire(&record), record);
    }

    #[test]
    fn enums_of_every_variant_kind_round_trip(kind in arb_kind()) {
        prop_assert_eq!(through_the_wire(&kind), kind);
    }

    #[test]
    fn tuples_and_options_round_trip(t in (any::<Option<u8>>(), any::<Option<Option<bool>>>(), any::<(i64, u64)>())) {
        // `Some(None)` and `None` both become nil, as in Python.
        let (a, b, c) = t;
        let back = through_the_wire(&(a, b, c));
        prop_assert_eq!(back.0, a);
        prop_assert_eq!(back.1, b.flatten().map(Some));
        prop_assert_eq!(back.2, c);
    }

    #[test]
    fn nested_collections_round_trip(v in proptest::collection::vec(proptest::collection::hash_map(any::<i32>(), ".{0,5}", 0..4), 0..4)) {
        prop_assert_eq!(through_the_wire(&v), v);
    }

    #[test]
    fn bytes_round_trip_as_bin(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(to_value(&Bytes(b.clone())).expect("to_value"), Value::Binary(b.clone()));
        prop_assert_eq!(through_the_wire(&Bytes(b.clone())), Bytes(b.clone()));
        // A plain Vec<u8> goes as an array, but reads Python bytes too.
        prop_assert_eq!(from_value::<Vec<u8>>(Value::Binary(b.clone())).expect("from_value"), b);
    }

    #[test]
    fn values_convert_faithfully(value in arb_value()) {
        // F32 is the one documented change: it becomes F64.
        let expected = widen(&value);
        prop_assert_eq!(to_value(&value).expect("to_value"), expected);
        prop_assert_eq!(from_value::<Value>(value.clone()).expect("from_value"), value);
    }
}

fn widen(value: &Value) -> Value {
    match value {
        Value::F32(f) => Value::F64(f64::from(*f)),
        Value::Array(items) => Value::Array(items.iter().map(widen).collect()),
        Value::Map(entries) => {
            Value::Map(entries.iter().map(|(k, v)| (widen(k), widen(v))).collect())
        }
        other => other.clone(),
    }
}
