//! Events and headers, and their MessagePack form.

use std::borrow::Cow;

use rmpv::Value;

use crate::decode::{MAX_DEPTH, Reader, Text, utf8};
use crate::{DecodeError, IdKind, MessageId};

/// The protocol version every current implementation speaks (header key `v`).
pub const PROTOCOL_VERSION: u32 = 3;

/// Event names with a meaning in the protocol.
pub mod names {
    /// A successful reply: args are `[result]`.
    pub const OK: &str = "OK";
    /// An error reply: args are `[name, message, traceback]`.
    pub const ERR: &str = "ERR";
    /// One item of a streamed reply: args are the item itself.
    pub const STREAM: &str = "STREAM";
    /// The end of a streamed reply: args are nil.
    pub const STREAM_DONE: &str = "STREAM_DONE";
    /// A heartbeat: args are `[0]`.
    pub const HEARTBEAT: &str = "_zpc_hb";
    /// Flow-control credit: args are `[n]`.
    pub const MORE: &str = "_zpc_more";
    /// Every name above.
    pub const ALL: [&str; 6] = [OK, ERR, STREAM, STREAM_DONE, HEARTBEAT, MORE];
}

/// The header of an event: its id, the protocol version, the channel it
/// answers, and any other keys (task context such as trace ids).
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// This event's own id.
    pub message_id: MessageId,
    /// The protocol version (`v`); `None` when the peer left it out, which
    /// zerorpc-python treats as a version 1 peer.
    pub version: Option<u32>,
    /// The channel this event belongs to, unless it opens one.
    pub response_to: Option<MessageId>,
    /// Every other key, in the order received; preserved on re-encoding.
    /// Keys are borrowed when they are static, as the well-known ones are
    /// once decoded (see [`Header::insert`]): every traced event carries
    /// several, and each owned key is an allocation.
    pub extra: Vec<(Cow<'static, str>, Value)>,
}

impl Header {
    /// A version 3 header for a new event with a fresh id.
    pub fn new() -> Self {
        Header::with_id(MessageId::generate())
    }

    /// The protocol version the sender speaks, as zerorpc-python reads it:
    /// `v`, or 1 when `v` is missing. Version 1 peers get v1-shaped errors
    /// and passive heartbeats; peers below 3 send credit as `_zpc_hb`.
    pub fn protocol_version(&self) -> u32 {
        self.version.unwrap_or(1)
    }

    /// A version 3 header for an event with the given id.
    pub fn with_id(message_id: MessageId) -> Self {
        Header {
            message_id,
            version: Some(PROTOCOL_VERSION),
            response_to: None,
            extra: Vec::new(),
        }
    }

    /// The value of an extra key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets an extra key, replacing any earlier value.
    ///
    /// The keys `message_id`, `v` and `response_to` are not extras; use the
    /// fields for them. A `&'static str` key costs no allocation.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: Value) {
        let key = key.into();
        match self.extra.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.extra.push((key, value)),
        }
    }
}

impl Default for Header {
    fn default() -> Self {
        Header::new()
    }
}

/// One ZeroRPC event: `[header, name, args]`.
///
/// ```
/// use zerorpc_wire::{Event, Header};
/// use rmpv::Value;
///
/// let request = Event::new(Header::new(), "add", Value::Array(vec![1.into(), 2.into()]));
/// let bytes = request.encode();
/// let decoded = Event::decode(&bytes)?;
/// assert_eq!(decoded, request);
/// # Ok::<(), zerorpc_wire::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The header.
    pub header: Header,
    /// The event name: a method name for requests, `OK`, `STREAM`... for
    /// replies (see [`names`]). Borrowed when static, as the names of
    /// [`names`] are once decoded: a name of its own would be an
    /// allocation per reply, stream item and heartbeat.
    pub name: Cow<'static, str>,
    /// The arguments: positional arguments for requests, `[result]` for
    /// `OK`, the item itself for `STREAM`.
    pub args: Value,
}

impl Event {
    /// An event. A `&'static str` name costs no allocation.
    pub fn new(header: Header, name: impl Into<Cow<'static, str>>, args: Value) -> Self {
        Event {
            header,
            name: name.into(),
            args,
        }
    }

    /// The msgpack encoding of the event.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.encoded_size_hint());
        self.encode_into(&mut buf);
        buf
    }

    /// About the encoded size, at least it for events as we make them, so
    /// that [`encode`] (or [`encode_into`] a buffer of that capacity)
    /// allocates once: a buffer regrown halfway is one more allocation and
    /// copy of every event, and several for a large one.
    ///
    /// [`encode`]: Event::encode
    /// [`encode_into`]: Event::encode_into
    pub fn encoded_size_hint(&self) -> usize {
        // The array and map headers, the keys `message_id`, `v` and
        // `response_to`, `v`'s value and the ids' markers: at most 48
        // bytes, then the ids themselves (32 bytes each, as we make them).
        const FIXED: usize = 48;
        let h = &self.header;
        let ids = h.message_id.as_bytes().len()
            + h.response_to.as_ref().map_or(0, |id| id.as_bytes().len());
        let extras: usize = self
            .header
            .extra
            .iter()
            .map(|(key, value)| key.len() + estimated_size(value) + 2)
            .sum();
        FIXED + ids + extras + self.name.len() + estimated_size(&self.args)
    }

    /// Appends the msgpack encoding of the event to `buf`.
    ///
    /// Header keys come in zerorpc-python's order: `message_id`, `v`,
    /// `response_to`, then the extras. Text is msgpack str, ids keep their
    /// [`IdKind`].
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        let h = &self.header;
        let len = 1
            + usize::from(h.version.is_some())
            + usize::from(h.response_to.is_some())
            + h.extra.len();
        // Writing to a Vec cannot fail, so the results below are infallible.
        let _ = rmp::encode::write_array_len(buf, 3);
        let _ = rmp::encode::write_map_len(buf, len as u32);
        let _ = rmp::encode::write_str(buf, "message_id");
        write_id(buf, &h.message_id);
        if let Some(v) = h.version {
            let _ = rmp::encode::write_str(buf, "v");
            let _ = rmp::encode::write_uint(buf, u64::from(v));
        }
        if let Some(to) = &h.response_to {
            let _ = rmp::encode::write_str(buf, "response_to");
            write_id(buf, to);
        }
        for (key, value) in &h.extra {
            let _ = rmp::encode::write_str(buf, key);
            let _ = rmpv::encode::write_value(buf, value);
        }
        let _ = rmp::encode::write_str(buf, &self.name);
        let _ = rmpv::encode::write_value(buf, &self.args);
    }

    /// Decodes one event from `bytes`, which must hold exactly one event.
    ///
    /// Accepts what zerorpc-python and zerorpc-node send: ids as bin or str,
    /// a missing `v`, extra header keys, and bin where text is expected
    /// (header keys and the name).
    ///
    /// Rejects, like Python does, str values holding invalid UTF-8 anywhere
    /// in the event, and events nested more than 128 levels deep (both as
    /// [`DecodeError::Msgpack`]).
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let mut rd = Reader::new(bytes);
        let (header, name) = read_envelope(&mut rd)?;
        let args = rd.value(MAX_DEPTH - 1).map_err(DecodeError::Msgpack)?;
        if rd.remaining() > 0 {
            return Err(DecodeError::TrailingBytes(rd.remaining()));
        }
        Ok(Event { header, name, args })
    }

    /// Decodes only the header and name of an event, leaving the arguments
    /// unparsed: what a router needs, at a fraction of the cost.
    ///
    /// Agrees with [`Event::decode`] on every event that one accepts; it
    /// also accepts events whose arguments are malformed or truncated, or
    /// that are followed by trailing bytes, since it never reads past the
    /// name.
    pub fn decode_envelope(bytes: &[u8]) -> Result<(Header, Cow<'static, str>), DecodeError> {
        read_envelope(&mut Reader::new(bytes))
    }
}

/// About the bytes `value` takes encoded: never fewer, and at most a few
/// more per item (every length and number is counted at its widest).
/// Exact enough to size a buffer or credit, and a walk without writes,
/// much cheaper than the encoding it sizes.
pub fn estimated_size(value: &Value) -> usize {
    match value {
        Value::String(text) => 5 + text.as_bytes().len(),
        Value::Binary(bytes) => 5 + bytes.len(),
        Value::Ext(_, bytes) => 6 + bytes.len(),
        Value::Array(items) => 5 + items.iter().map(estimated_size).sum::<usize>(),
        Value::Map(entries) => {
            5 + entries
                .iter()
                .map(|(key, value)| estimated_size(key) + estimated_size(value))
                .sum::<usize>()
        }
        _ => 9,
    }
}

fn write_id(buf: &mut Vec<u8>, id: &MessageId) {
    let bytes = id.as_bytes();
    match id.kind() {
        IdKind::Bin => {
            let _ = rmp::encode::write_bin(buf, bytes);
        }
        IdKind::Str => {
            let _ = rmp::encode::write_str_len(buf, bytes.len() as u32);
            buf.extend_from_slice(bytes);
        }
    }
}

/// Reads the event array's header and the header and name in it, leaving
/// the reader at the args.
///
/// Header keys and ids are read in place, without building [`Value`]s: this
/// runs for every event a router or a server sees.
fn read_envelope(rd: &mut Reader<'_>) -> Result<(Header, Cow<'static, str>), DecodeError> {
    let len = rd
        .array_len()
        .map_err(DecodeError::Msgpack)?
        .ok_or(DecodeError::NotAnArray)?;
    if len != 3 {
        return Err(DecodeError::WrongLength(len));
    }
    let header = read_header(rd)?;
    let name = read_text(rd)?.ok_or(DecodeError::NameNotText)?;
    Ok((header, protocol_name(name)))
}

/// An event name as read: one of the protocol's own ([`names`]) is
/// borrowed, any other copied.
fn protocol_name(name: &str) -> Cow<'static, str> {
    match names::ALL.iter().find(|known| **known == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

/// Text from a str, or from a bin holding UTF-8 (as old Python 2 peers
/// send); `None` for anything else.
fn read_text<'a>(rd: &mut Reader<'a>) -> Result<Option<&'a str>, DecodeError> {
    Ok(match rd.raw_text().map_err(DecodeError::Msgpack)? {
        Some(Text::Str(text)) => Some(text),
        Some(Text::Bin(bytes)) => utf8(bytes),
        None => None,
    })
}

fn read_id(rd: &mut Reader<'_>, field: &'static str) -> Result<MessageId, DecodeError> {
    match rd.raw_text().map_err(DecodeError::Msgpack)? {
        Some(Text::Str(text)) => Ok(MessageId::new(text.as_bytes(), IdKind::Str)),
        Some(Text::Bin(bytes)) => Ok(MessageId::new(bytes, IdKind::Bin)),
        None => Err(DecodeError::InvalidId(field)),
    }
}

/// Extra header keys decoded without allocating: those of trace context
/// (zerorpc's own and W3C's), which every traced event carries.
const WELL_KNOWN_KEYS: [&str; 5] = [
    "trace_id",
    "span_id",
    "parent_span_id",
    "traceparent",
    "tracestate",
];

/// Extra keys room is made for at once when decoding a header.
const MAX_RESERVED_EXTRAS: usize = 8;

fn read_header(rd: &mut Reader<'_>) -> Result<Header, DecodeError> {
    let len = rd
        .map_len()
        .map_err(DecodeError::Msgpack)?
        .ok_or(DecodeError::HeaderNotAMap)?;
    // Inside the event array and the header map.
    let depth = MAX_DEPTH - 2;
    let mut message_id = None;
    let mut version = None;
    let mut response_to = None;
    let mut extra = Vec::new();
    for index in 0..len {
        match read_text(rd)?.ok_or(DecodeError::HeaderKeyNotText)? {
            "message_id" => message_id = Some(read_id(rd, "message_id")?),
            "response_to" => response_to = Some(read_id(rd, "response_to")?),
            "v" => {
                let value = rd.uint(depth).map_err(DecodeError::Msgpack)?;
                // A `v` that is not a small non-negative integer is no
                // version we know; treat it like a missing one, as a v1 peer.
                version = value.and_then(|v| u32::try_from(v).ok());
            }
            other => {
                let key = match WELL_KNOWN_KEYS.iter().find(|known| **known == other) {
                    Some(known) => Cow::Borrowed(*known),
                    None => Cow::Owned(other.to_owned()),
                };
                if extra.is_empty() {
                    // The keys left bound the extras (a traced event
                    // carries three): one allocation of about the right
                    // size. Capped, as the length is the peer's word.
                    extra.reserve_exact((len - index).min(MAX_RESERVED_EXTRAS));
                }
                extra.push((key, rd.value(depth).map_err(DecodeError::Msgpack)?));
            }
        }
    }
    Ok(Header {
        message_id: message_id.ok_or(DecodeError::MissingMessageId)?,
        version,
        response_to,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocols_names_are_decoded_borrowed_and_other_names_owned() {
        for name in names::ALL.into_iter().chain(["add", "OKAY", ""]) {
            let bytes = Event::new(Header::new(), name.to_owned(), Value::Nil).encode();
            let decoded = Event::decode(&bytes).expect("an event");
            assert_eq!(decoded.name, name);
            let borrowed = matches!(decoded.name, Cow::Borrowed(_));
            assert_eq!(borrowed, names::ALL.contains(&name), "{name:?}");
            let (_, envelope_name) = Event::decode_envelope(&bytes).expect("an envelope");
            assert_eq!(envelope_name, decoded.name);
        }
    }

    #[test]
    fn the_size_hint_covers_the_encoding_so_encode_allocates_once() {
        let small = Event::new(Header::new(), "OK", Value::from(1));
        let mut reply = Header::new();
        reply.response_to = Some(Header::new().message_id);
        reply.insert(
            "trace_id",
            Value::from("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"),
        );
        let item = Event::new(reply, "STREAM", Value::Binary(vec![7; 64]));
        let mut str_ids = Header::new();
        str_ids.message_id = MessageId::new(&[b'x'; 40], IdKind::Str);
        str_ids.response_to = Some(MessageId::new(&[b'y'; 300], IdKind::Bin));
        let long_ids = Event::new(str_ids, "STREAM_DONE", Value::Nil);
        for event in [small, item, long_ids] {
            let bytes = event.encode();
            assert!(event.encoded_size_hint() >= bytes.len(), "{event:?}");
            assert_eq!(bytes.capacity(), event.encoded_size_hint(), "{event:?}");
        }
    }
}
