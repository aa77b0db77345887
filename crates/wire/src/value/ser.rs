//! The serializer half: Rust values into [`Value`].

use rmpv::{MSGPACK_EXT_STRUCT_NAME, Value};
use serde::ser::{self, Serialize};

use super::ValueError;

/// Serializes into a [`Value`]; `depth` is how many more levels may nest.
pub(super) struct Serializer {
    depth: usize,
}

impl Serializer {
    pub(super) fn new(depth: usize) -> Self {
        Serializer { depth }
    }

    /// The serializer for a value one level down.
    fn child(&self) -> Result<Serializer, ValueError> {
        match self.depth.checked_sub(1) {
            Some(depth) => Ok(Serializer { depth }),
            None => Err(ValueError::too_deep()),
        }
    }
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

fn single_entry(key: &'static str, value: Value) -> Value {
    Value::Map(vec![(text(key), value)])
}

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SerializeVec;
    type SerializeTuple = SerializeVec;
    type SerializeTupleStruct = SerializeVec;
    type SerializeTupleVariant = SerializeVec;
    type SerializeMap = SerializeMap;
    type SerializeStruct = SerializeMap;
    type SerializeStructVariant = SerializeMap;

    fn is_human_readable(&self) -> bool {
        // Python peers want `str(uuid)`, not 16 raw bytes.
        true
    }

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Boolean(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        if let Ok(v) = u64::try_from(v) {
            Ok(Value::from(v))
        } else if let Ok(v) = i64::try_from(v) {
            Ok(Value::from(v))
        } else {
            Err(ValueError::new(format_args!(
                "integer {v} does not fit in msgpack's 64 bits"
            )))
        }
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        match u64::try_from(v) {
            Ok(v) => Ok(Value::from(v)),
            Err(_) => Err(ValueError::new(format_args!(
                "integer {v} does not fit in msgpack's 64 bits"
            ))),
        }
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        // Python only ever sends float64; a float32 would decode the same but
        // re-encode differently on the way back.
        Ok(Value::F64(f64::from(v)))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::F64(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(text(v.encode_utf8(&mut [0; 4])))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(text(v))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Binary(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Nil)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self.child()?)
    }

    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Nil)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Nil)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(text(variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        let inner = value.serialize(self.child()?)?;
        // rmpv's `Value::Ext` serializes as this newtype around
        // `(tag, bytes)`; turning it back into an ext keeps `Value`s
        // faithful.
        if name == MSGPACK_EXT_STRUCT_NAME {
            if let Value::Array(items) = &inner {
                if let [Value::Integer(tag), Value::Binary(data)] = items.as_slice() {
                    if let Some(tag) = tag.as_i64().and_then(|t| i8::try_from(t).ok()) {
                        return Ok(Value::Ext(tag, data.clone()));
                    }
                }
            }
        }
        Ok(inner)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        Ok(single_entry(variant, value.serialize(self.child()?)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeVec, ValueError> {
        Ok(SerializeVec::new(self.child()?, len, None))
    }

    fn serialize_tuple(self, len: usize) -> Result<SerializeVec, ValueError> {
        Ok(SerializeVec::new(self.child()?, Some(len), None))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeVec, ValueError> {
        Ok(SerializeVec::new(self.child()?, Some(len), None))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeVec, ValueError> {
        // One more level for the `{variant: [...]}` wrapper.
        let inner = self.child()?.child()?;
        Ok(SerializeVec::new(inner, Some(len), Some(variant)))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<SerializeMap, ValueError> {
        Ok(SerializeMap::new(self.child()?, len, None))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<SerializeMap, ValueError> {
        Ok(SerializeMap::new(self.child()?, Some(len), None))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeMap, ValueError> {
        let inner = self.child()?.child()?;
        Ok(SerializeMap::new(inner, Some(len), Some(variant)))
    }
}

/// Builds an array, wrapped as `{variant: [...]}` for tuple variants.
pub(super) struct SerializeVec {
    element: Serializer,
    items: Vec<Value>,
    variant: Option<&'static str>,
}

impl SerializeVec {
    fn new(element: Serializer, len: Option<usize>, variant: Option<&'static str>) -> Self {
        // The length is a hint from the value itself; cap it so a lying
        // `size_hint` cannot make us allocate a huge buffer up front.
        let items = Vec::with_capacity(len.unwrap_or(0).min(4096));
        SerializeVec {
            element,
            items,
            variant,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.items.push(value.serialize(Serializer {
            depth: self.element.depth,
        })?);
        Ok(())
    }

    fn finish(self) -> Value {
        let array = Value::Array(self.items);
        match self.variant {
            Some(variant) => single_entry(variant, array),
            None => array,
        }
    }
}

impl ser::SerializeSeq for SerializeVec {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SerializeVec {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SerializeVec {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SerializeVec {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

/// Builds a map, wrapped as `{variant: {...}}` for struct variants.
pub(super) struct SerializeMap {
    element: Serializer,
    entries: Vec<(Value, Value)>,
    pending_key: Option<Value>,
    variant: Option<&'static str>,
}

impl SerializeMap {
    fn new(element: Serializer, len: Option<usize>, variant: Option<&'static str>) -> Self {
        let entries = Vec::with_capacity(len.unwrap_or(0).min(4096));
        SerializeMap {
            element,
            entries,
            pending_key: None,
            variant,
        }
    }

    fn child(&self) -> Serializer {
        Serializer {
            depth: self.element.depth,
        }
    }

    fn finish(self) -> Value {
        let map = Value::Map(self.entries);
        match self.variant {
            Some(variant) => single_entry(variant, map),
            None => map,
        }
    }
}

impl ser::SerializeMap for SerializeMap {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.pending_key = Some(key.serialize(self.child())?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| ValueError::new("map value serialized before its key"))?;
        let value = value.serialize(self.child())?;
        self.entries.push((key, value));
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        if self.pending_key.is_some() {
            return Err(ValueError::new("map key serialized without a value"));
        }
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for SerializeMap {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        let value = value.serialize(self.child())?;
        self.entries.push((text(key), value));
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for SerializeMap {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        let value = value.serialize(self.child())?;
        self.entries.push((text(key), value));
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(self.finish())
    }
}
