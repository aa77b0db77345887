//! The msgpack writer of events: straight into a `Vec<u8>`, each value in
//! its shortest form, byte for byte what `rmpv::encode::write_value` writes
//! (the tests hold the two together). Public for other compact encodings
//! written next to events (trace reports).
//!
//! ```
//! use zerorpc_wire::{Value, encode};
//!
//! let mut out = Vec::new();
//! encode::array_len(&mut out, 2);
//! encode::uint(&mut out, 300);
//! encode::str(&mut out, "ok");
//! assert_eq!(out, b"\x92\xcd\x01\x2c\xa2ok");
//! let mut again = Vec::new();
//! encode::value(&mut again, &Value::Array(vec![Value::from(300), Value::from("ok")]));
//! assert_eq!(again, out);
//! ```
//!
//! Every event sent is written here: two per call, one per stream item.
//! `rmp`'s writers go through `io::Write`, with an error to carry for
//! every marker and length, which writing to a vector cannot have: a
//! call's reply with 64 bytes of arguments took 690 instructions to encode
//! through them, and takes 500 here.

use rmpv::Value;

/// The msgpack nil.
const NIL: u8 = 0xc0;

/// Appends `value`.
pub fn value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Nil => out.push(NIL),
        Value::Boolean(false) => out.push(0xc2),
        Value::Boolean(true) => out.push(0xc3),
        Value::Integer(n) => match n.as_u64() {
            Some(n) => uint(out, n),
            // Not a u64: a negative i64, the only other kind there is.
            None => negative(out, n.as_i64().unwrap_or(i64::MIN)),
        },
        Value::F32(x) => {
            out.push(0xca);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Value::F64(x) => {
            out.push(0xcb);
            out.extend_from_slice(&x.to_be_bytes());
        }
        // Text that is not UTF-8 goes out as bin, as rmpv writes it.
        Value::String(text) => match text.as_str() {
            Some(text) => str(out, text),
            None => bin(out, text.as_bytes()),
        },
        Value::Binary(bytes) => bin(out, bytes),
        Value::Array(items) => {
            array_len(out, items.len());
            for item in items {
                self::value(out, item);
            }
        }
        Value::Map(entries) => {
            map_len(out, entries.len());
            for (key, item) in entries {
                self::value(out, key);
                self::value(out, item);
            }
        }
        Value::Ext(kind, data) => {
            ext_meta(out, data.len(), *kind);
            out.extend_from_slice(data);
        }
    }
}

/// Appends a non-negative integer.
#[inline]
pub fn uint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a negative integer.
fn negative(out: &mut Vec<u8>, n: i64) {
    match n {
        // A negative fixint is the number's own low byte.
        -32..=-1 => out.push(n as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, n as u8]),
        -32_768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32_769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends text.
#[inline]
pub fn str(out: &mut Vec<u8>, text: &str) {
    str_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Appends the marker and length of `len` bytes of text.
#[inline]
pub fn str_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=31 => out.push(0xa0 | len as u8),
        _ => length(out, len, [0xd9, 0xda, 0xdb]),
    }
}

/// Appends bytes as bin.
#[inline]
pub fn bin(out: &mut Vec<u8>, bytes: &[u8]) {
    length(out, bytes.len(), [0xc4, 0xc5, 0xc6]);
    out.extend_from_slice(bytes);
}

/// Appends the marker and length of an array of `len` items.
#[inline]
pub fn array_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=15 => out.push(0x90 | len as u8),
        _ => wide_length(out, len, [0xdc, 0xdd]),
    }
}

/// Appends the marker and length of a map of `len` entries.
#[inline]
pub fn map_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=15 => out.push(0x80 | len as u8),
        _ => wide_length(out, len, [0xde, 0xdf]),
    }
}

/// Appends the marker, length and type of an ext of `len` bytes.
fn ext_meta(out: &mut Vec<u8>, len: usize, kind: i8) {
    match len {
        1 => out.push(0xd4),
        2 => out.push(0xd5),
        4 => out.push(0xd6),
        8 => out.push(0xd7),
        16 => out.push(0xd8),
        _ => length(out, len, [0xc7, 0xc8, 0xc9]),
    }
    out.push(kind as u8);
}

/// A length after the marker for its size: one byte, two or four.
fn length(out: &mut Vec<u8>, len: usize, [one, two, four]: [u8; 3]) {
    match len {
        0..=0xff => out.extend_from_slice(&[one, len as u8]),
        _ => wide_length(out, len, [two, four]),
    }
}

/// A length after the marker for its size: two bytes or four.
fn wide_length(out: &mut Vec<u8>, len: usize, [two, four]: [u8; 2]) {
    match u16::try_from(len) {
        Ok(len) => {
            out.push(two);
            out.extend_from_slice(&len.to_be_bytes());
        }
        Err(_) => {
            out.push(four);
            // msgpack cannot say more than 4 GiB, nor can rmp write it; a
            // value that large could not have been received either.
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use rmpv::Integer;

    use super::*;

    fn by_rmpv(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    fn ours(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        value(&mut out, v);
        out
    }

    /// Every boundary of every form: each side of each length and range.
    fn samples() -> Vec<Value> {
        let mut values = vec![
            Value::Nil,
            Value::Boolean(false),
            Value::Boolean(true),
            Value::F32(-1.5),
            Value::F64(std::f64::consts::PI),
            Value::F64(f64::NAN),
        ];
        for n in [0u64, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000]
            .into_iter()
            .chain([0xffff_ffff, 0x1_0000_0000, u64::MAX])
        {
            values.push(Value::Integer(Integer::from(n)));
        }
        for n in [-1i64, -32, -33, -128, -129, -32_768, -32_769]
            .into_iter()
            .chain([-2_147_483_648, -2_147_483_649, i64::MIN])
        {
            values.push(Value::Integer(Integer::from(n)));
        }
        for len in [0usize, 1, 15, 16, 31, 32, 255, 256, 65_535, 65_536] {
            values.push(Value::from("é".repeat(len / 2) + &"x".repeat(len % 2)));
            values.push(Value::Binary(vec![7; len]));
            values.push(Value::Ext(-3, vec![1; len]));
            values.push(Value::Array(vec![Value::Nil; len]));
            values.push(Value::Map(
                (0..len)
                    .map(|i| (Value::from(i), Value::Boolean(true)))
                    .collect(),
            ));
        }
        for len in [2usize, 4, 8, 16] {
            values.push(Value::Ext(5, vec![2; len]));
        }
        // Text that is not UTF-8, as reading a peer's str can make it.
        let not_utf8 = rmpv::decode::read_value(&mut &[0xa3, 0xff, 0xfe, b'a'][..]).unwrap();
        assert!(matches!(&not_utf8, Value::String(text) if text.as_str().is_none()));
        values.push(not_utf8);
        values.push(Value::Array(vec![
            Value::from(1),
            Value::Map(vec![(
                Value::from("k"),
                Value::Array(vec![Value::from(-5)]),
            )]),
            Value::Binary(vec![0; 64]),
        ]));
        values
    }

    #[test]
    fn every_value_is_written_as_rmpv_writes_it() {
        for value in samples() {
            assert_eq!(ours(&value), by_rmpv(&value), "{value:?}");
        }
    }

    #[test]
    fn lengths_are_written_as_rmp_writes_them() {
        for len in [0usize, 15, 16, 31, 32, 255, 256, 65_535, 65_536, 1 << 20] {
            let (mut mine, mut theirs) = (Vec::new(), Vec::new());
            str_len(&mut mine, len);
            rmp::encode::write_str_len(&mut theirs, len as u32).unwrap();
            array_len(&mut mine, len);
            rmp::encode::write_array_len(&mut theirs, len as u32).unwrap();
            map_len(&mut mine, len);
            rmp::encode::write_map_len(&mut theirs, len as u32).unwrap();
            assert_eq!(mine, theirs, "{len}");
        }
    }
}
