//! Unit tests for the serde mapping: each case states the Rust value, the
//! msgpack value a Python peer sees, and that it converts back.

use std::collections::BTreeMap;
use std::fmt::Debug;

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{MAX_DEPTH, from_value, to_value};

/// Checks that `rust` converts to `expected` and back to `rust`.
#[track_caller]
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(rust: T, expected: Value) {
    let value = to_value(&rust).expect("to_value");
    assert_eq!(value, expected, "to_value({rust:?})");
    let back: T = from_value(value).expect("from_value");
    assert_eq!(back, rust);
}

/// Checks that `value` is read as `expected` even though we never write it.
#[track_caller]
fn check_lenient<T: DeserializeOwned + PartialEq + Debug>(value: Value, expected: T) {
    assert_eq!(from_value::<T>(value).expect("from_value"), expected);
}

#[track_caller]
fn check_error<T: DeserializeOwned + Debug>(value: Value, message: &str) {
    let err = from_value::<T>(value).expect_err("conversion should fail");
    assert_eq!(err.to_string(), message);
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn map(entries: Vec<(Value, Value)>) -> Value {
    Value::Map(entries)
}

/// Bytes through `serialize_bytes`, as `serde_bytes` does.
#[derive(Debug, PartialEq)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Unit;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Meters(f64);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Pair(u8, String);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Empty,
    Circle(f64),
    Line(Point, Point),
    Rect { w: u32, h: u32 },
}

#[test]
fn scalars() {
    check(true, Value::Boolean(true));
    check(-5i8, Value::from(-5));
    check(300u16, Value::from(300));
    check(u64::MAX, Value::from(u64::MAX));
    check(i64::MIN, Value::from(i64::MIN));
    check(-7i128, Value::from(-7));
    check(7u128, Value::from(7));
    check(1.5f64, Value::F64(1.5));
    check(1.5f32, Value::F64(1.5));
    check('é', s("é"));
    check("héllo".to_string(), s("héllo"));
    check(Bytes(vec![0, 255]), Value::Binary(vec![0, 255]));
    check((), Value::Nil);
    check(Unit, Value::Nil);
}

#[test]
fn options_and_newtypes() {
    check(None::<u8>, Value::Nil);
    check(Some(3u8), Value::from(3));
    check(Meters(2.5), Value::F64(2.5));
}

#[test]
fn compounds() {
    check(
        (1u8, "a".to_string()),
        Value::Array(vec![Value::from(1), s("a")]),
    );
    check(
        Pair(1, "a".into()),
        Value::Array(vec![Value::from(1), s("a")]),
    );
    check(
        vec![vec![1u8], vec![]],
        Value::Array(vec![
            Value::Array(vec![Value::from(1)]),
            Value::Array(vec![]),
        ]),
    );
    check(
        Point { x: 1, y: -2 },
        map(vec![(s("x"), Value::from(1)), (s("y"), Value::from(-2))]),
    );
    check(
        BTreeMap::from([("k".to_string(), 1u8)]),
        map(vec![(s("k"), Value::from(1))]),
    );
    // Non-str keys are allowed here; Python peers reject them (see docs).
    check(
        BTreeMap::from([(1u8, true)]),
        map(vec![(Value::from(1), Value::Boolean(true))]),
    );
}

#[test]
fn enums_use_the_variant_name() {
    check(Shape::Empty, s("Empty"));
    check(
        Shape::Circle(1.0),
        map(vec![(s("Circle"), Value::F64(1.0))]),
    );
    let point = |x, y| map(vec![(s("x"), Value::from(x)), (s("y"), Value::from(y))]);
    check(
        Shape::Line(Point { x: 0, y: 0 }, Point { x: 1, y: 1 }),
        map(vec![(
            s("Line"),
            Value::Array(vec![point(0, 0), point(1, 1)]),
        )]),
    );
    check(
        Shape::Rect { w: 2, h: 3 },
        map(vec![(
            s("Rect"),
            map(vec![(s("w"), Value::from(2)), (s("h"), Value::from(3))]),
        )]),
    );
}

#[test]
fn lenient_forms_a_peer_may_send() {
    // Python 2 peers send text as bin.
    check_lenient(Value::Binary(b"abc".to_vec()), "abc".to_string());
    check_lenient(Value::Binary("é".as_bytes().to_vec()), 'é');
    check_lenient(Value::Binary(b"Empty".to_vec()), Shape::Empty);
    check_lenient(
        map(vec![(Value::Binary(b"Circle".to_vec()), Value::from(2))]),
        Shape::Circle(2.0),
    );
    check_lenient(
        map(vec![
            (Value::Binary(b"x".to_vec()), Value::from(1)),
            (s("y"), Value::from(2)),
        ]),
        Point { x: 1, y: 2 },
    );
    // Whole floats often arrive as integers.
    check_lenient(Value::from(-3), -3.0f64);
    check_lenient(Value::from(3), 3.0f32);
    // Structs in positional form.
    check_lenient(
        Value::Array(vec![Value::from(4), Value::from(5)]),
        Point { x: 4, y: 5 },
    );
    check_lenient(
        map(vec![(
            s("Rect"),
            Value::Array(vec![Value::from(1), Value::from(2)]),
        )]),
        Shape::Rect { w: 1, h: 2 },
    );
    // Python `bytes` into a plain Vec<u8>.
    check_lenient(Value::Binary(vec![1, 2]), vec![1u8, 2]);
    check_lenient(s("ab"), Bytes(b"ab".to_vec()));
    check_lenient(map(vec![(s("Empty"), Value::Nil)]), Shape::Empty);
}

#[test]
fn errors_name_the_problem() {
    check_error::<u8>(
        Value::from(300),
        "invalid value: integer `300`, expected u8",
    );
    check_error::<u32>(Value::from(-1), "invalid value: integer `-1`, expected u32");
    check_error::<String>(
        Value::from(1),
        "invalid type: integer `1`, expected a string",
    );
    check_error::<String>(
        Value::Binary(vec![0xff]),
        "invalid value: byte array, expected a string",
    );
    check_error::<Point>(map(vec![(s("x"), Value::from(1))]), "missing field `y`");
    check_error::<Shape>(
        s("Hexagon"),
        "unknown variant `Hexagon`, expected one of `Empty`, `Circle`, `Line`, `Rect`",
    );
    check_error::<Shape>(
        map(vec![]),
        "invalid value: map, expected a map with a single key",
    );
    check_error::<Shape>(s("Circle"), "invalid type: unit value, expected f64");
    check_error::<(u8, u8)>(
        Value::Array(vec![Value::from(1)]),
        "invalid length 1, expected a tuple of size 2",
    );
    check_error::<(u8,)>(
        Value::Array(vec![Value::from(1), Value::from(2)]),
        "invalid length 2, expected fewer elements in array",
    );
    let err = to_value(&u128::MAX).expect_err("too large");
    assert_eq!(
        err.to_string(),
        format!("integer {} does not fit in msgpack's 64 bits", u128::MAX)
    );
}

#[test]
fn errors_inside_maps_and_arrays_name_where() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Line {
        qty: u32,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Order {
        lines: Vec<Line>,
        note: Option<String>,
    }
    let line = |qty: Value| map(vec![(s("qty"), qty)]);
    check_error::<Line>(
        line(s("two")),
        r#"field 'qty': invalid type: string "two", expected u32"#,
    );
    let order = map(vec![
        (
            s("lines"),
            Value::Array(vec![line(Value::from(1)), line(s("two"))]),
        ),
        (s("note"), Value::Nil),
    ]);
    let err = from_value::<Order>(order).expect_err("a bad quantity");
    assert_eq!(err.path(), "lines[1].qty");
    assert_eq!(err.message(), r#"invalid type: string "two", expected u32"#);
    assert_eq!(
        err.to_string(),
        r#"field 'lines[1].qty': invalid type: string "two", expected u32"#
    );
    // Positional items, map keys of other types and errors at the top.
    check_error::<Vec<Vec<u8>>>(
        Value::Array(vec![Value::Array(vec![Value::from(1), Value::from(300)])]),
        "field '[0][1]': invalid value: integer `300`, expected u8",
    );
    check_error::<BTreeMap<u8, u8>>(
        map(vec![(Value::from(7), s("x"))]),
        r#"field '7': invalid type: string "x", expected u8"#,
    );
    check_error::<Line>(
        Value::from(1),
        "invalid type: integer `1`, expected struct Line",
    );
}

#[test]
fn text_keys_read_as_any_key_type() {
    #[derive(Serialize, Deserialize, Debug, PartialEq, PartialOrd, Eq, Ord)]
    struct Name(String);
    #[derive(Serialize, Deserialize, Debug, PartialEq, PartialOrd, Eq, Ord)]
    enum Colour {
        Red,
    }
    let entry = |key: &str| map(vec![(s(key), Value::from(1))]);
    check(BTreeMap::from([(Name("a".into()), 1u8)]), entry("a"));
    check(BTreeMap::from([(Colour::Red, 1u8)]), entry("Red"));
    check(BTreeMap::from([('é', 1u8)]), entry("é"));
    check_lenient(entry("b"), BTreeMap::from([(Some("b".to_owned()), 1u8)]));
    check_error::<BTreeMap<u8, u8>>(entry("x"), r#"invalid type: string "x", expected u8"#);
}

#[test]
fn error_is_send_sync_static() {
    fn assert_traits<T: std::error::Error + Send + Sync + 'static>() {}
    assert_traits::<super::ValueError>();
}

fn every_kind() -> Value {
    Value::Array(vec![
        Value::Nil,
        Value::Boolean(false),
        Value::from(0),
        Value::from(-1),
        Value::from(u64::MAX),
        Value::from(i64::MIN),
        Value::F64(-0.5),
        s(""),
        s("text"),
        Value::Binary(vec![]),
        Value::Binary(vec![0, 1, 0xff]),
        Value::Array(vec![]),
        map(vec![]),
        map(vec![
            (Value::from(1), Value::Nil),
            (Value::Binary(vec![1]), s("x")),
            (Value::Nil, Value::F64(2.0)),
        ]),
        Value::Ext(-1, vec![0; 8]),
        Value::Ext(5, vec![]),
    ])
}

#[test]
fn values_round_trip_faithfully() {
    let value = every_kind();
    assert_eq!(to_value(&value).expect("to_value"), value);
    assert_eq!(
        from_value::<Value>(value.clone()).expect("from_value"),
        value
    );
}

#[test]
fn f32_becomes_f64() {
    assert_eq!(
        to_value(&Value::F32(0.5)).expect("to_value"),
        Value::F64(0.5)
    );
    assert_eq!(
        from_value::<Value>(Value::F32(0.5)).expect("from_value"),
        Value::F32(0.5)
    );
}

fn nested(depth: usize) -> Value {
    let mut value = Value::Nil;
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

#[test]
fn deep_values_convert_up_to_the_limit() {
    // Unoptimized code on a test thread's 2 MiB stack: the tightest setting.
    let value = nested(MAX_DEPTH - 2);
    assert_eq!(
        from_value::<Value>(value.clone()).expect("from_value"),
        value
    );
    assert_eq!(to_value(&value).expect("to_value"), value);
}

#[test]
fn deeper_values_are_errors() {
    let value = nested(MAX_DEPTH + 1);
    let message = format!("value nested deeper than {MAX_DEPTH} levels");
    assert_eq!(
        from_value::<Value>(value.clone())
            .expect_err("too deep")
            .to_string(),
        message
    );
    assert_eq!(to_value(&value).expect_err("too deep").to_string(), message);
}
