//! The deserializer half: [`Value`] into Rust values.

use rmpv::{MSGPACK_EXT_STRUCT_NAME, Value};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

use super::ValueError;

/// Deserializes from an owned [`Value`]; `depth` is how many more levels
/// may nest.
pub(super) struct Deserializer {
    value: Value,
    depth: usize,
}

impl Deserializer {
    pub(super) fn new(value: Value, depth: usize) -> Self {
        Deserializer { value, depth }
    }

    fn child_depth(&self) -> Result<usize, ValueError> {
        self.depth.checked_sub(1).ok_or_else(ValueError::too_deep)
    }

    fn invalid_type(&self, expected: &dyn de::Expected) -> ValueError {
        de::Error::invalid_type(unexpected(&self.value), expected)
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Nil => Unexpected::Unit,
        Value::Boolean(b) => Unexpected::Bool(*b),
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            (None, None) => Unexpected::Other("integer"),
        },
        Value::F32(f) => Unexpected::Float(f64::from(*f)),
        Value::F64(f) => Unexpected::Float(*f),
        Value::String(s) => match s.as_str() {
            Some(s) => Unexpected::Str(s),
            None => Unexpected::Bytes(s.as_bytes()),
        },
        Value::Binary(b) => Unexpected::Bytes(b),
        Value::Array(_) => Unexpected::Seq,
        Value::Map(_) => Unexpected::Map,
        Value::Ext(..) => Unexpected::Other("msgpack ext"),
    }
}

/// Visits text from a str or from a bin holding UTF-8; anything else that
/// is not text is handed over as bytes or rejected by the visitor.
fn visit_text<'de, V: Visitor<'de>>(value: Value, visitor: V) -> Result<V::Value, ValueError> {
    match value {
        Value::String(s) => match s.into_str() {
            Some(s) => visitor.visit_string(s),
            None => Err(de::Error::invalid_value(
                Unexpected::Other("str with invalid utf-8"),
                &visitor,
            )),
        },
        Value::Binary(b) => match String::from_utf8(b) {
            Ok(s) => visitor.visit_string(s),
            Err(e) => visitor.visit_byte_buf(e.into_bytes()),
        },
        other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
    }
}

impl<'de> de::Deserializer<'de> for Deserializer {
    type Error = ValueError;

    fn is_human_readable(&self) -> bool {
        true
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let depth = self.child_depth()?;
        match self.value {
            Value::Nil => visitor.visit_unit(),
            Value::Boolean(b) => visitor.visit_bool(b),
            Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                (None, None) => Err(ValueError::new("integer outside the 64-bit range")),
            },
            Value::F32(f) => visitor.visit_f32(f),
            Value::F64(f) => visitor.visit_f64(f),
            Value::String(s) => match s.into_str() {
                Some(s) => visitor.visit_string(s),
                None => Err(ValueError::new("str with invalid utf-8")),
            },
            Value::Binary(b) => visitor.visit_byte_buf(b),
            Value::Array(items) => visit_array(items, depth, visitor),
            Value::Map(entries) => visit_map(entries, depth, visitor),
            // The shape rmpv's own `Value` deserializer looks for, so a
            // `Value` survives the round trip.
            Value::Ext(tag, data) => visitor.visit_newtype_struct(ext_parts(tag, data, depth)),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        // Python sends `1` for a float argument that happens to be whole.
        match &self.value {
            Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_f64(u as f64),
                (None, Some(i)) => visitor.visit_f64(i as f64),
                (None, None) => self.deserialize_any(visitor),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::String(_) | Value::Binary(_) => visit_text(self.value, visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::String(s) => match s.into_str() {
                Some(s) => visitor.visit_string(s),
                None => Err(ValueError::new("str with invalid utf-8")),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.value {
            Value::Nil => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let depth = self.child_depth()?;
        match self.value {
            Value::Ext(tag, data) if name == MSGPACK_EXT_STRUCT_NAME => {
                visitor.visit_newtype_struct(ext_parts(tag, data, depth))
            }
            value => visitor.visit_newtype_struct(Deserializer::new(value, depth)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let depth = self.child_depth()?;
        match self.value {
            Value::Array(items) => visit_array(items, depth, visitor),
            // Python sends `bytes` as bin, and a `Vec<u8>` without
            // `serde_bytes` asks for a sequence.
            Value::Binary(bytes) => {
                let mut seq = de::value::SeqDeserializer::new(bytes.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let depth = self.child_depth()?;
        match self.value {
            Value::Map(entries) => visit_map(entries, depth, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let depth = self.child_depth()?;
        match self.value {
            Value::Map(entries) => visit_map(entries, depth, visitor),
            // Positional form, as rmp-serde and other msgpack peers send.
            Value::Array(items) => visit_array(items, depth, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let depth = self.child_depth()?;
        match self.value {
            Value::String(_) | Value::Binary(_) => visitor.visit_enum(EnumAccess {
                variant: self.value,
                content: None,
                depth,
            }),
            Value::Map(entries) => {
                let mut entries = entries.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, content)), None) => visitor.visit_enum(EnumAccess {
                        variant,
                        content: Some(content),
                        depth,
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"a map with a single key",
                    )),
                }
            }
            _ => Err(self.invalid_type(&"an enum variant name or a single-key map")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        drop(self);
        visitor.visit_unit()
    }
}

fn ext_parts(tag: i8, data: Vec<u8>, depth: usize) -> Deserializer {
    Deserializer::new(
        Value::Array(vec![Value::from(tag), Value::Binary(data)]),
        depth,
    )
}

fn visit_array<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = items.len();
    let mut seq = SeqAccess {
        items: items.into_iter(),
        depth,
        index: 0,
    };
    let value = visitor.visit_seq(&mut seq)?;
    if seq.items.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }
}

fn visit_map<'de, V: Visitor<'de>>(
    entries: Vec<(Value, Value)>,
    depth: usize,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = entries.len();
    let mut map = MapAccess {
        entries: entries.into_iter(),
        pending: None,
        depth,
    };
    let value = visitor.visit_map(&mut map)?;
    if map.entries.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in map"))
    }
}

struct SeqAccess {
    items: std::vec::IntoIter<Value>,
    depth: usize,
    /// The index of the next item, to say where a conversion failed.
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        match self.items.next() {
            Some(value) => {
                let index = self.index;
                self.index += 1;
                seed.deserialize(Deserializer::new(value, self.depth))
                    .map(Some)
                    .map_err(|e| e.in_index(index))
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess {
    entries: std::vec::IntoIter<(Value, Value)>,
    /// The key and value of the entry whose key was just read. The key is
    /// kept to say where a conversion of the value failed.
    pending: Option<(Value, Value)>,
    depth: usize,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.entries.next() {
            Some((key, value)) => {
                let read = match key.as_str() {
                    // Text keys (struct fields) are read in place, so that
                    // keeping the key costs nothing.
                    Some(text) => seed.deserialize(TextKey(text)),
                    None => seed.deserialize(Deserializer::new(key.clone(), self.depth)),
                };
                self.pending = Some((key, value));
                read.map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| ValueError::new("map value requested before its key"))?;
        seed.deserialize(Deserializer::new(value, self.depth))
            .map_err(|e| e.in_key(&key))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A map key that is text, read without taking it: as [`Deserializer`]
/// reads a str, but borrowed.
struct TextKey<'a>(&'a str);

impl<'de> de::Deserializer<'de> for TextKey<'_> {
    type Error = ValueError;

    fn is_human_readable(&self) -> bool {
        true
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_str(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_enum(de::value::StrDeserializer::new(self.0))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }
}

/// An enum as a variant name plus, for the map form, its content.
struct EnumAccess {
    variant: Value,
    content: Option<Value>,
    depth: usize,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ValueError;
    type Variant = VariantAccess;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess), ValueError> {
        let variant = seed.deserialize(Deserializer::new(self.variant, self.depth))?;
        Ok((
            variant,
            VariantAccess {
                content: self.content,
                depth: self.depth,
            },
        ))
    }
}

struct VariantAccess {
    content: Option<Value>,
    depth: usize,
}

impl VariantAccess {
    fn content(self, expected: &'static str) -> Result<Deserializer, ValueError> {
        match self.content {
            Some(value) => Ok(Deserializer::new(value, self.depth)),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &expected)),
        }
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.content {
            None | Some(Value::Nil) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(unexpected(&other), &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.content {
            Some(value) => seed.deserialize(Deserializer::new(value, self.depth)),
            // `E::A(())` and `E::A(None)` serialize like a unit variant
            // would if written by hand; accept the bare name for them.
            None => seed.deserialize(().into_deserializer()),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_tuple(self.content("tuple variant")?, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_struct(self.content("struct variant")?, "", fields, visitor)
    }
}
