//! A strict msgpack reader producing [`Value`]s.
//!
//! `rmpv`'s reader is lenient where Python is strict (it reads the reserved
//! marker `0xc1` as nil and lets invalid UTF-8 through in str values) and
//! spends several KiB of stack per nesting level in unoptimized builds. This
//! one rejects what Python's `raw=False` unpacker rejects, keeps its frames
//! small, and never allocates more than the input could fill.

use std::io;

use rmp::Marker;
use rmpv::Value;
use rmpv::decode::Error;

/// How deeply arrays and maps may nest, counting the event array itself.
///
/// Far deeper than any real arguments, and shallow enough that hostile
/// input cannot exhaust a 2 MiB thread stack, even unoptimized, nor the
/// serde layer's own limit when the arguments are converted.
pub(crate) const MAX_DEPTH: usize = 128;

fn eof() -> Error {
    Error::InvalidDataRead(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "msgpack value is truncated",
    ))
}

fn invalid(message: &'static str) -> Error {
    Error::InvalidDataRead(io::Error::new(io::ErrorKind::InvalidData, message))
}

/// Reads msgpack values from the front of a byte slice.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// The bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(eof());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn marker(&mut self) -> Result<Marker, Error> {
        match self.rest.split_first() {
            Some((&byte, tail)) => {
                self.rest = tail;
                Ok(Marker::from_u8(byte))
            }
            None => Err(Error::InvalidMarkerRead(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "msgpack input is empty or truncated",
            ))),
        }
    }

    /// Reads an array header and returns its length, or `None` (consuming
    /// the marker) if the next value is something else.
    pub(crate) fn array_len(&mut self) -> Result<Option<usize>, Error> {
        Ok(Some(match self.marker()? {
            Marker::FixArray(n) => usize::from(n),
            Marker::Array16 => usize::from(self.u16()?),
            Marker::Array32 => self.u32()? as usize,
            Marker::Reserved => return Err(invalid("reserved msgpack marker 0xc1")),
            _ => return Ok(None),
        }))
    }

    /// Reads a map header and returns its length, or `None` if the next
    /// value is something else.
    pub(crate) fn map_len(&mut self) -> Result<Option<usize>, Error> {
        Ok(Some(match self.marker()? {
            Marker::FixMap(n) => usize::from(n),
            Marker::Map16 => usize::from(self.u16()?),
            Marker::Map32 => self.u32()? as usize,
            Marker::Reserved => return Err(invalid("reserved msgpack marker 0xc1")),
            _ => return Ok(None),
        }))
    }

    /// Reads a fixstr holding UTF-8, the form of every header key and most
    /// event names, without copying it; leaves anything else (a longer
    /// str, a bin, text that is not UTF-8, a value cut short) unread and
    /// returns `None`, for [`Reader::raw_text`] to read or refuse.
    #[inline]
    pub(crate) fn fixstr(&mut self) -> Option<&'a str> {
        let (&marker, rest) = self.rest.split_first()?;
        if marker & 0xe0 != 0xa0 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(usize::from(marker & 0x1f))?;
        let text = utf8(bytes)?;
        self.rest = rest;
        Some(text)
    }

    /// Passes over `prefix` if the unread bytes start with it: a header
    /// key in the form every peer writes it, matched as bytes, with no
    /// marker decoded nor UTF-8 checked.
    #[inline]
    pub(crate) fn eat<const N: usize>(&mut self, prefix: &[u8; N]) -> bool {
        match self.rest.split_first_chunk::<N>() {
            Some((head, rest)) if head == prefix => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// Reads a bin 8 of exactly `N` bytes, if one is next (a message id
    /// as ours and zerorpc-python's peers send it); else reads nothing.
    #[inline]
    pub(crate) fn bin8<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let ([0xc4, len], rest) = self.rest.split_first_chunk::<2>()? else {
            return None;
        };
        if usize::from(*len) != N {
            return None;
        }
        let (bytes, rest) = rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(bytes)
    }

    /// The bytes of a str 8 of exactly `N` bytes, if one is next, without
    /// reading it (see [`Reader::skip`]) nor checking it is UTF-8.
    #[inline]
    pub(crate) fn peek_str8<const N: usize>(&self) -> Option<&'a [u8; N]> {
        let ([0xd9, len], rest) = self.rest.split_first_chunk::<2>()? else {
            return None;
        };
        if usize::from(*len) != N {
            return None;
        }
        rest.first_chunk::<N>()
    }

    /// Passes over `n` bytes already looked at (by [`Reader::peek_str8`]).
    #[inline]
    pub(crate) fn skip(&mut self, n: usize) {
        self.rest = &self.rest[n..];
    }

    /// Reads a str (checked to be UTF-8) or bin without copying it. Leaves
    /// anything else unread and returns `None`.
    pub(crate) fn raw_text(&mut self) -> Result<Option<Text<'a>>, Error> {
        let before = self.rest;
        let (len, is_str) = match self.marker()? {
            Marker::FixStr(n) => (usize::from(n), true),
            Marker::Str8 => (usize::from(self.u8()?), true),
            Marker::Str16 => (usize::from(self.u16()?), true),
            Marker::Str32 => (self.u32()? as usize, true),
            Marker::Bin8 => (usize::from(self.u8()?), false),
            Marker::Bin16 => (usize::from(self.u16()?), false),
            Marker::Bin32 => (self.u32()? as usize, false),
            _ => {
                self.rest = before;
                return Ok(None);
            }
        };
        let bytes = self.take(len)?;
        if !is_str {
            return Ok(Some(Text::Bin(bytes)));
        }
        match utf8(bytes) {
            Some(text) => Ok(Some(Text::Str(text))),
            None => Err(invalid("msgpack str holds invalid utf-8")),
        }
    }

    /// Reads one value and returns it as `u64` if it is a non-negative
    /// integer, as `value(depth)?.as_u64()` does, without building a value
    /// for a positive fixint (the `v` of every event).
    pub(crate) fn uint(&mut self, depth: usize) -> Result<Option<u64>, Error> {
        if let Some((&byte, tail)) = self.rest.split_first() {
            if byte <= 0x7f {
                self.rest = tail;
                return Ok(Some(u64::from(byte)));
            }
        }
        Ok(self.value(depth)?.as_u64())
    }

    /// Reads an unsigned integer (any of msgpack's unsigned forms); `None`
    /// for anything else, having read an unknown part of it.
    pub(crate) fn unsigned(&mut self) -> Option<u64> {
        match self.marker().ok()? {
            Marker::FixPos(n) => Some(u64::from(n)),
            Marker::U8 => self.u8().ok().map(u64::from),
            Marker::U16 => self.u16().ok().map(u64::from),
            Marker::U32 => self.u32().ok().map(u64::from),
            Marker::U64 => self.u64().ok(),
            _ => None,
        }
    }

    /// Reads one value nested at most `depth` more levels.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let len = match self.marker()? {
            Marker::Null => return Ok(Value::Nil),
            Marker::True => return Ok(Value::Boolean(true)),
            Marker::False => return Ok(Value::Boolean(false)),
            Marker::FixPos(n) => return Ok(Value::from(n)),
            Marker::FixNeg(n) => return Ok(Value::from(n)),
            Marker::U8 => return Ok(Value::from(self.u8()?)),
            Marker::U16 => return Ok(Value::from(self.u16()?)),
            Marker::U32 => return Ok(Value::from(self.u32()?)),
            Marker::U64 => return Ok(Value::from(self.u64()?)),
            Marker::I8 => return Ok(Value::from(self.u8()? as i8)),
            Marker::I16 => return Ok(Value::from(self.u16()? as i16)),
            Marker::I32 => return Ok(Value::from(self.u32()? as i32)),
            Marker::I64 => return Ok(Value::from(self.u64()? as i64)),
            Marker::F32 => return Ok(Value::F32(f32::from_bits(self.u32()?))),
            Marker::F64 => return Ok(Value::F64(f64::from_bits(self.u64()?))),
            Marker::FixStr(n) => return self.str(usize::from(n)),
            Marker::Str8 => {
                let n = self.u8()?;
                return self.str(usize::from(n));
            }
            Marker::Str16 => {
                let n = self.u16()?;
                return self.str(usize::from(n));
            }
            Marker::Str32 => {
                let n = self.u32()?;
                return self.str(n as usize);
            }
            Marker::Bin8 => {
                let n = self.u8()?;
                return Ok(Value::Binary(self.take(usize::from(n))?.to_vec()));
            }
            Marker::Bin16 => {
                let n = self.u16()?;
                return Ok(Value::Binary(self.take(usize::from(n))?.to_vec()));
            }
            Marker::Bin32 => {
                let n = self.u32()?;
                return Ok(Value::Binary(self.take(n as usize)?.to_vec()));
            }
            Marker::FixExt1 => return self.ext(1),
            Marker::FixExt2 => return self.ext(2),
            Marker::FixExt4 => return self.ext(4),
            Marker::FixExt8 => return self.ext(8),
            Marker::FixExt16 => return self.ext(16),
            Marker::Ext8 => {
                let n = self.u8()?;
                return self.ext(usize::from(n));
            }
            Marker::Ext16 => {
                let n = self.u16()?;
                return self.ext(usize::from(n));
            }
            Marker::Ext32 => {
                let n = self.u32()?;
                return self.ext(n as usize);
            }
            Marker::Reserved => return Err(invalid("reserved msgpack marker 0xc1")),
            Marker::FixArray(n) => Len::Array(usize::from(n)),
            Marker::Array16 => Len::Array(usize::from(self.u16()?)),
            Marker::Array32 => Len::Array(self.u32()? as usize),
            Marker::FixMap(n) => Len::Map(usize::from(n)),
            Marker::Map16 => Len::Map(usize::from(self.u16()?)),
            Marker::Map32 => Len::Map(self.u32()? as usize),
        };
        let depth = depth.checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
        match len {
            Len::Array(n) => self.array_items(n, depth).map(Value::Array),
            Len::Map(n) => self.map_entries(n, depth).map(Value::Map),
        }
    }

    /// Reads `n` array elements; the caller has read the header and counted
    /// the level.
    pub(crate) fn array_items(&mut self, n: usize, depth: usize) -> Result<Vec<Value>, Error> {
        // Each element takes at least one byte, so a length beyond the input
        // is a lie that must not turn into a huge allocation.
        let mut items = Vec::with_capacity(n.min(self.rest.len()));
        for _ in 0..n {
            items.push(self.value(depth)?);
        }
        Ok(items)
    }

    fn map_entries(&mut self, n: usize, depth: usize) -> Result<Vec<(Value, Value)>, Error> {
        let mut entries = Vec::with_capacity(n.min(self.rest.len() / 2));
        for _ in 0..n {
            let key = self.value(depth)?;
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    fn str(&mut self, n: usize) -> Result<Value, Error> {
        match utf8(self.take(n)?) {
            Some(s) => Ok(Value::from(s)),
            None => Err(invalid("msgpack str holds invalid utf-8")),
        }
    }

    fn ext(&mut self, n: usize) -> Result<Value, Error> {
        let tag = self.u8()? as i8;
        Ok(Value::Ext(tag, self.take(n)?.to_vec()))
    }
}

/// A msgpack str (checked to be UTF-8) or bin, as [`Reader::raw_text`]
/// reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Text<'a> {
    Str(&'a str),
    Bin(&'a [u8]),
}

/// `bytes` as text, if they are UTF-8: `str::from_utf8` with an ASCII
/// fast path. Keys, names and most strings of events are short and ASCII,
/// for which this check is several times cheaper than std's (which runs
/// once per string of every event decoded).
///
/// ```
/// assert_eq!(zerorpc_wire::utf8(b"echo"), Some("echo"));
/// assert_eq!(zerorpc_wire::utf8("héllo".as_bytes()), Some("héllo"));
/// assert_eq!(zerorpc_wire::utf8(&[0xff]), None);
/// ```
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

enum Len {
    Array(usize),
    Map(usize),
}
