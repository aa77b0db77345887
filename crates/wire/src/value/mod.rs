//! Conversion between `serde` types and [`Value`], shaped for Python peers.
//!
//! `rmpv::ext` encodes structs as arrays and enums as `[index, [fields]]`,
//! which a Python peer cannot make sense of; this module maps Rust types to
//! what Python code would have sent for the same data.

use std::fmt;

use rmpv::Value;
use serde::{Serialize, de::DeserializeOwned};

mod de;
mod ser;
#[cfg(test)]
mod tests;

/// How deep [`to_value`] and [`from_value`] may nest before giving up.
///
/// Conversion recurses once per level, taking up to 2 KiB of stack per level
/// in unoptimized builds; 256 levels stay far below a 2 MiB thread stack
/// (tokio's default) and far above any real argument list. Anything the
/// event decoder accepts (at most 128 levels) converts.
const MAX_DEPTH: usize = 256;

/// Why a value could not be converted to or from a [`Value`].
///
/// The message names what went wrong, for example
/// `invalid value: integer `300`, expected u8` or `missing field `name``;
/// a failure inside a map or an array names where, as in `field
/// 'lines[0].qty': invalid type: string "two", expected u32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    message: String,
    /// Where the conversion failed, outermost first (`lines[0].qty`);
    /// empty at the top level.
    path: String,
    /// False for an error about the whole value's depth, whose path would
    /// only spell out its nesting.
    located: bool,
}

impl ValueError {
    fn new(message: impl fmt::Display) -> Self {
        ValueError {
            message: message.to_string(),
            path: String::new(),
            located: true,
        }
    }

    /// What went wrong, without [`path`](Self::path).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where in the value the conversion failed: map keys and array
    /// indexes from the outermost in, as in `lines[0].qty`; empty when it
    /// failed at the top level.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Puts this error inside the map entry with this key. The path is
    /// built only once a conversion has failed, as the error unwinds.
    fn in_key(mut self, key: &Value) -> Self {
        if !self.located {
            return self;
        }
        let key = match key {
            Value::String(s) => match s.as_str() {
                Some(s) => s.to_owned(),
                None => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            },
            Value::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            other => other.to_string(),
        };
        self.path = match self.path.starts_with('[') || self.path.is_empty() {
            true => key + &self.path,
            false => format!("{key}.{}", self.path),
        };
        self
    }

    /// Puts this error inside the array item at this index.
    fn in_index(mut self, index: usize) -> Self {
        if !self.located {
            return self;
        }
        let sep = if self.path.starts_with('[') || self.path.is_empty() {
            ""
        } else {
            "."
        };
        self.path = format!("[{index}]{sep}{}", self.path);
        self
    }

    fn too_deep() -> Self {
        ValueError {
            located: false,
            ..ValueError::new(format_args!("value nested deeper than {MAX_DEPTH} levels"))
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "field '{}': ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValueError {}

impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::new(msg)
    }
}

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError::new(msg)
    }
}

/// Converts a `serde` value into a [`Value`], the way a Python peer expects
/// to see it.
///
/// | Rust (serde data model) | msgpack [`Value`] | Python receives |
/// | --- | --- | --- |
/// | `bool` | `Boolean` | `bool` |
/// | `i8`…`i64`, `u8`…`u64`, `i128`/`u128` within 64 bits | `Integer` | `int` |
/// | `f32`, `f64` | `F64` (float64, as Python always sends) | `float` |
/// | `char`, `&str`, `String` | `String` | `str` |
/// | bytes (`serde_bytes`, `rmpv` binary) | `Binary` | `bytes` |
/// | `None`, `()`, unit struct | `Nil` | `None` |
/// | `Some(x)`, newtype struct `N(x)` | `x` | `x` |
/// | unit variant `E::A` | `String("A")` | `"A"` |
/// | newtype variant `E::B(x)` | `Map {"B": x}` | `{"B": x}` |
/// | tuple variant `E::C(x, y)` | `Map {"C": [x, y]}` | `{"C": [x, y]}` |
/// | struct variant `E::D { f: x }` | `Map {"D": {"f": x}}` | `{"D": {"f": x}}` |
/// | sequence, tuple, tuple struct | `Array` | `list` |
/// | map (`HashMap`, `BTreeMap`...) | `Map`, keys converted like values | `dict` |
/// | struct | `Map` keyed by field name | `dict` |
///
/// Notes:
///
/// * A `Vec<u8>` is a sequence of integers unless it goes through
///   `serde_bytes`; use `serde_bytes::ByteBuf` (or `#[serde(with =
///   "serde_bytes")]`) to send Python `bytes`.
/// * Map keys may be of any type, but a Python peer rejects a whole message
///   holding a map with keys other than str or bin (msgpack-python's
///   `strict_map_key`); use string keys for anything sent to Python.
/// * Types with both a text and a compact form (addresses, uuids, times)
///   use the text form: the serializer reports itself as human readable.
/// * Converting a [`Value`] itself is faithful: `to_value(&v)` and
///   `from_value::<Value>(v)` give back `v`, including `Ext`, with two
///   exceptions: `F32` becomes `F64` (by design, as above), and a `String`
///   holding invalid UTF-8 becomes `Binary` (serde has no such string; the
///   event decoder rejects these anyway).
/// * Nesting deeper than 256 levels is an error rather than a stack
///   overflow (this also bounds the faithful [`Value`] round trip).
///
/// [`from_value`] accepts all of these forms back, and a few more a peer may
/// send: bin holding UTF-8 where text is expected (old Python 2 peers send
/// text as bin), bin where a byte sequence is expected, integers where a
/// float is expected, a struct as an array of its fields in order, and an
/// enum variant name as bin.
///
/// ```
/// use std::collections::BTreeMap;
/// use serde::{Deserialize, Serialize};
/// use zerorpc_wire::{Value, from_value, to_value};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// enum Shape {
///     Point,
///     Circle(f64),
///     Rect { w: u32, h: u32 },
/// }
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Drawing {
///     name: String,
///     shapes: Vec<Shape>,
///     tags: Option<BTreeMap<String, u8>>,
/// }
///
/// let drawing = Drawing {
///     name: "demo".into(),
///     shapes: vec![Shape::Point, Shape::Circle(1.5), Shape::Rect { w: 2, h: 3 }],
///     tags: None,
/// };
/// let value = to_value(&drawing)?;
///
/// // What a Python peer sees:
/// // {"name": "demo", "shapes": ["Point", {"Circle": 1.5}, {"Rect": {"w": 2, "h": 3}}], "tags": None}
/// let map = value.as_map().expect("a struct is a map");
/// assert_eq!(map[0], (Value::from("name"), Value::from("demo")));
/// assert_eq!(map[1].1[0], Value::from("Point"));
/// assert_eq!(map[2], (Value::from("tags"), Value::Nil));
///
/// assert_eq!(from_value::<Drawing>(value)?, drawing);
///
/// // Out-of-range numbers are errors, not truncations.
/// let err = from_value::<u8>(Value::from(300)).unwrap_err();
/// assert_eq!(err.to_string(), "invalid value: integer `300`, expected u8");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ser::Serializer::new(MAX_DEPTH))
}

/// Converts a [`Value`] into a `serde` value.
///
/// Accepts everything [`to_value`] produces, plus the more lenient forms
/// listed there (bin as text, integers as floats, structs as arrays...).
/// Numbers that do not fit the target type are errors.
///
/// ```
/// use zerorpc_wire::{Value, from_value};
///
/// // An old Python 2 peer sends text as bin.
/// let name: String = from_value(Value::Binary(b"bob".to_vec()))?;
/// assert_eq!(name, "bob");
/// let x: f64 = from_value(Value::from(2))?;
/// assert_eq!(x, 2.0);
/// # Ok::<(), zerorpc_wire::ValueError>(())
/// ```
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(de::Deserializer::new(value, MAX_DEPTH))
}
