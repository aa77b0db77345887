//! Events and headers, and their MessagePack form.

use std::borrow::Cow;
use std::num::{NonZeroU64, NonZeroU128};

use rmpv::Value;

use crate::decode::{MAX_DEPTH, Reader, Text, utf8};
use crate::encode;
use crate::id::COMMON as COMMON_ID_LEN;
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

/// The header key of a traced event's trace id ([`TraceKeys::trace_id`]).
pub const TRACE_ID_KEY: &str = "trace_id";
/// The header key of a traced event's span id ([`TraceKeys::span_id`]).
pub const SPAN_ID_KEY: &str = "span_id";
/// The header key of a traced request's parent span
/// ([`TraceKeys::parent_span_id`]).
pub const PARENT_SPAN_ID_KEY: &str = "parent_span_id";

/// Header keys as every peer writes them, fixstr marker and text: the
/// encoder writes these bytes and the decoder matches them.
mod key_bytes {
    pub(super) const MESSAGE_ID: &[u8; 11] = b"\xaamessage_id";
    pub(super) const V: &[u8; 2] = b"\xa1v";
    pub(super) const RESPONSE_TO: &[u8; 12] = b"\xabresponse_to";
    pub(super) const TRACE_ID: &[u8; 9] = b"\xa8trace_id";
    pub(super) const SPAN_ID: &[u8; 8] = b"\xa7span_id";
    pub(super) const PARENT_SPAN_ID: &[u8; 15] = b"\xaeparent_span_id";
}

/// The trace context a traced event carries in its header: `trace_id`,
/// `span_id` and `parent_span_id`, in the forms tracing writes them.
///
/// They are kept apart from [`Header::extra`] because every traced request
/// and reply carries them: as [`Value`]s, the trace id alone cost an
/// allocation to write, one to read and one to copy onto each reply, and
/// the keys a vector of their own on each side. A key in any other form (a
/// trace id in capitals or without dashes, a span id as text or 0) stays
/// an extra, exactly as it came.
///
/// ```
/// use std::num::{NonZeroU64, NonZeroU128};
/// use zerorpc_wire::{Event, Header, TraceKeys, Value};
///
/// let keys = TraceKeys::new(
///     NonZeroU128::new(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
///     NonZeroU64::new(7),
///     None,
/// );
/// let mut header = Header::new();
/// header.trace = keys;
/// let bytes = Event::new(header, "add", Value::Nil).encode();
/// let decoded = Event::decode(&bytes)?;
/// assert_eq!(decoded.header.trace, keys);
/// assert_eq!(decoded.header.trace.span_id(), NonZeroU64::new(7));
/// assert!(decoded.header.extra.is_empty());
/// # Ok::<(), zerorpc_wire::DecodeError>(())
/// ```
// Zero stands for a missing key (no id is 0), and the trace id is two
// halves rather than a `u128`: 32 bytes aligned to eight, where options
// of non-zero integers take 32 aligned to sixteen, which would align (and
// grow) every header and event, moved several times on their way.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TraceKeys {
    trace_id: [u64; 2],
    span_id: u64,
    parent_span_id: u64,
}

impl TraceKeys {
    /// The keys given; `None` leaves a key out.
    pub fn new(
        trace_id: Option<NonZeroU128>,
        span_id: Option<NonZeroU64>,
        parent_span_id: Option<NonZeroU64>,
    ) -> Self {
        let mut keys = TraceKeys::default();
        keys.set_trace_id(trace_id);
        keys.set_span_id(span_id);
        keys.set_parent_span_id(parent_span_id);
        keys
    }

    /// `trace_id`: a UUID, sent as its lowercase hyphenated text.
    pub fn trace_id(&self) -> Option<NonZeroU128> {
        let [high, low] = self.trace_id;
        NonZeroU128::new((u128::from(high) << 64) | u128::from(low))
    }

    /// `span_id`: the span of this call, an unsigned integer.
    pub fn span_id(&self) -> Option<NonZeroU64> {
        NonZeroU64::new(self.span_id)
    }

    /// `parent_span_id`: the span of the call this one was made for.
    pub fn parent_span_id(&self) -> Option<NonZeroU64> {
        NonZeroU64::new(self.parent_span_id)
    }

    /// Sets or clears `trace_id`.
    pub fn set_trace_id(&mut self, id: Option<NonZeroU128>) {
        let id = id.map_or(0, NonZeroU128::get);
        // The halves of the id: the casts keep 64 bits each, as meant.
        self.trace_id = [(id >> 64) as u64, id as u64];
    }

    /// Sets or clears `span_id`.
    pub fn set_span_id(&mut self, id: Option<NonZeroU64>) {
        self.span_id = id.map_or(0, NonZeroU64::get);
    }

    /// Sets or clears `parent_span_id`.
    pub fn set_parent_span_id(&mut self, id: Option<NonZeroU64>) {
        self.parent_span_id = id.map_or(0, NonZeroU64::get);
    }

    /// Whether no key is set (nothing is written).
    pub fn is_empty(&self) -> bool {
        *self == TraceKeys::default()
    }

    /// Whether the key named `key` is set.
    pub fn has(&self, key: &str) -> bool {
        match key {
            TRACE_ID_KEY => self.trace_id != [0, 0],
            SPAN_ID_KEY => self.span_id != 0,
            PARENT_SPAN_ID_KEY => self.parent_span_id != 0,
            _ => false,
        }
    }

    /// Each key not set here taken from `other`.
    pub fn or(self, other: TraceKeys) -> TraceKeys {
        TraceKeys::new(
            self.trace_id().or(other.trace_id()),
            self.span_id().or(other.span_id()),
            self.parent_span_id().or(other.parent_span_id()),
        )
    }

    /// Whether `key` is one of the three keys these are.
    pub fn is_trace_key(key: &str) -> bool {
        matches!(key, TRACE_ID_KEY | SPAN_ID_KEY | PARENT_SPAN_ID_KEY)
    }

    fn key_count(&self) -> usize {
        usize::from(self.trace_id != [0, 0])
            + usize::from(self.span_id != 0)
            + usize::from(self.parent_span_id != 0)
    }

    fn clear(&mut self, key: &str) {
        match key {
            TRACE_ID_KEY => self.trace_id = [0, 0],
            SPAN_ID_KEY => self.span_id = 0,
            PARENT_SPAN_ID_KEY => self.parent_span_id = 0,
            _ => {}
        }
    }
}

impl std::fmt::Debug for TraceKeys {
    /// The keys as they travel: the trace id as its text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let trace_id = self.trace_id().map(|id| uuid::Uuid::from_u128(id.get()));
        f.debug_struct("TraceKeys")
            .field("trace_id", &trace_id.map(|id| id.hyphenated().to_string()))
            .field("span_id", &self.span_id())
            .field("parent_span_id", &self.parent_span_id())
            .finish()
    }
}

/// The header of an event: its id, the protocol version, the channel it
/// answers, its trace context, and any other keys (task context).
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// This event's own id.
    pub message_id: MessageId,
    /// The protocol version (`v`); `None` when the peer left it out, which
    /// zerorpc-python treats as a version 1 peer.
    pub version: Option<u32>,
    /// The channel this event belongs to, unless it opens one.
    pub response_to: Option<MessageId>,
    /// The trace context keys, when they have the forms tracing writes;
    /// written after `response_to`.
    pub trace: TraceKeys,
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
            trace: TraceKeys::default(),
            extra: Vec::new(),
        }
    }

    /// The value of an extra key. The trace context keys are in
    /// [`trace`](Self::trace) when they have tracing's forms.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets the trace context, which replaces every trace key among the
    /// extras (in other forms, they would go out beside these, and a peer
    /// would read whichever came last): [`insert`](Self::insert)'s
    /// counterpart.
    pub fn set_trace(&mut self, trace: TraceKeys) {
        if !self.extra.is_empty() {
            self.extra.retain(|(key, _)| !TraceKeys::is_trace_key(key));
        }
        self.trace = trace;
    }

    /// Sets an extra key, replacing any earlier value.
    ///
    /// The keys `message_id`, `v` and `response_to` are not extras; use the
    /// fields for them, and [`trace`](Self::trace) for the trace context.
    /// A `&'static str` key costs no allocation.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: Value) {
        let key = key.into();
        self.trace.clear(&key);
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
        // Each trace key with its marker, and its value at its longest.
        let trace = if h.trace.is_empty() {
            0
        } else {
            (1 + TRACE_ID_KEY.len() + 2 + uuid::fmt::Hyphenated::LENGTH)
                + 2 * (1 + PARENT_SPAN_ID_KEY.len() + 9)
        };
        FIXED + ids + trace + extras + self.name.len() + estimated_size(&self.args)
    }

    /// Appends the msgpack encoding of the event to `buf`.
    ///
    /// Header keys come in zerorpc-python's order: `message_id`, `v`,
    /// `response_to`, then the extras. Text is msgpack str, ids keep their
    /// [`IdKind`].
    pub fn encode_into(&self, buf: &mut Vec<u8>) {
        let h = &self.header;
        let trace_keys = h.trace.key_count();
        let len = 1
            + usize::from(h.version.is_some())
            + usize::from(h.response_to.is_some())
            + trace_keys
            + h.extra.len();
        // The event's array (a fixarray of three) and the keys with their
        // fixstr markers, as constant bytes.
        const EVENT_ARRAY: &[u8] = b"\x93";
        buf.extend_from_slice(EVENT_ARRAY);
        encode::map_len(buf, len);
        buf.extend_from_slice(key_bytes::MESSAGE_ID);
        write_id(buf, &h.message_id);
        if let Some(v) = h.version {
            buf.extend_from_slice(key_bytes::V);
            encode::uint(buf, u64::from(v));
        }
        if let Some(to) = &h.response_to {
            buf.extend_from_slice(key_bytes::RESPONSE_TO);
            write_id(buf, to);
        }
        if trace_keys > 0 {
            write_trace(buf, &h.trace);
        }
        for (key, value) in &h.extra {
            encode::str(buf, key);
            encode::value(buf, value);
        }
        encode::str(buf, &self.name);
        encode::value(buf, &self.args);
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

// Inlined into `encode_into` by hand: left to itself, the compiler made it
// a call once the writers it uses were inlined, 30 instructions an id more.
#[inline(always)]
fn write_id(buf: &mut Vec<u8>, id: &MessageId) {
    let (bytes, kind) = id.parts();
    match kind {
        IdKind::Bin => encode::bin(buf, bytes),
        IdKind::Str => {
            encode::str_len(buf, bytes.len());
            buf.extend_from_slice(bytes);
        }
    }
}

#[inline(never)]
fn write_trace(buf: &mut Vec<u8>, trace: &TraceKeys) {
    // The trace id's value marker: a str 8 of 36 bytes.
    const TRACE_ID_MARKER: &[u8] = b"\xd9\x24";
    if let Some(trace_id) = trace.trace_id() {
        buf.extend_from_slice(key_bytes::TRACE_ID);
        buf.extend_from_slice(TRACE_ID_MARKER);
        buf.extend_from_slice(&uuid_text(trace_id.get()));
    }
    for (key, id) in [
        (&key_bytes::SPAN_ID[..], trace.span_id()),
        (&key_bytes::PARENT_SPAN_ID[..], trace.parent_span_id()),
    ] {
        if let Some(id) = id {
            buf.extend_from_slice(key);
            encode::uint(buf, id.get());
        }
    }
}

/// `id` as a UUID's lowercase hyphenated text, as `uuid` writes it.
///
/// Written here, a word at a time, because every traced request and reply
/// carries it: with `uuid`'s formatter, a byte at a time, writing the
/// trace keys took 235 instructions per event; this way, 162.
fn uuid_text(id: u128) -> [u8; uuid::fmt::Hyphenated::LENGTH] {
    // The eight hex digits of `half`, most significant first: each nibble
    // spread into a byte of its own, then all eight made ASCII at once
    // (a byte of 10 or more gains 6 + 4 bits of carry: 'a' - '0' - 10 more).
    fn hex8(half: u32) -> [u8; 8] {
        let mut v = u64::from(half);
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
        v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        let letters = ((v + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        let ascii = v + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10);
        ascii.to_be_bytes()
    }
    // The casts take each 32 bits of the id, as meant.
    let digits = [
        hex8((id >> 96) as u32),
        hex8((id >> 64) as u32),
        hex8((id >> 32) as u32),
        hex8(id as u32),
    ];
    let digits = digits.as_flattened();
    let mut text = [b'-'; uuid::fmt::Hyphenated::LENGTH];
    text[..8].copy_from_slice(&digits[..8]);
    text[9..13].copy_from_slice(&digits[8..12]);
    text[14..18].copy_from_slice(&digits[12..16]);
    text[19..23].copy_from_slice(&digits[16..20]);
    text[24..].copy_from_slice(&digits[20..]);
    text
}

/// A trace id in the form [`TraceKeys`] keeps: lowercase hyphenated text
/// of a UUID other than nil.
fn canonical_trace_id(text: &[u8]) -> Option<NonZeroU128> {
    let text: &[u8; uuid::fmt::Hyphenated::LENGTH] = text.try_into().ok()?;
    // At this length the parser takes the hyphenated form only, in either
    // case; lowercase hex digits and dashes all have the 0x20 bit set,
    // capitals do not: one AND over every byte, a word at a time (the
    // last word overlaps the one before).
    let word = |at: usize| u64::from_le_bytes(*text[at..].first_chunk().unwrap_or(&[0; 8]));
    let common_bits = word(0) & word(8) & word(16) & word(24) & word(28);
    if common_bits & 0x2020_2020_2020_2020 != 0x2020_2020_2020_2020 {
        return None;
    }
    NonZeroU128::new(uuid::Uuid::try_parse_ascii(text).ok()?.as_u128())
}

/// Reads the event array's header and the header and name in it, leaving
/// the reader at the args.
///
/// Header keys and ids are read in place, without building [`Value`]s: this
/// runs for every event a router or a server sees.
#[inline(always)]
fn read_envelope(rd: &mut Reader<'_>) -> Result<(Header, Cow<'static, str>), DecodeError> {
    // Errors are built only when they are (no `ok_or`): building and
    // dropping the unused ones cost every event some 80 instructions.
    let Some(len) = rd.array_len().map_err(DecodeError::Msgpack)? else {
        return Err(DecodeError::NotAnArray);
    };
    if len != 3 {
        return Err(DecodeError::WrongLength(len));
    }
    let header = read_header(rd)?;
    let Some(name) = read_text(rd)? else {
        return Err(DecodeError::NameNotText);
    };
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
    if let Some(text) = rd.fixstr() {
        return Ok(Some(text));
    }
    Ok(match rd.raw_text().map_err(DecodeError::Msgpack)? {
        Some(Text::Str(text)) => Some(text),
        Some(Text::Bin(bytes)) => utf8(bytes),
        None => None,
    })
}

fn read_id(rd: &mut Reader<'_>, field: &'static str) -> Result<MessageId, DecodeError> {
    if let Some(bytes) = rd.bin8::<COMMON_ID_LEN>() {
        return Ok(MessageId::common(bytes, IdKind::Bin));
    }
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

/// A header key as [`read_header`] tells them apart.
enum HeaderKey<'a> {
    MessageId,
    Version,
    ResponseTo,
    Other(&'a str),
}

/// Reads a header key. The three every event carries, and the trace keys,
/// are matched as the bytes of the fixstrs every peer writes them as:
/// reading each as text first, then comparing, took about a quarter of
/// decoding a reply's header.
#[inline(always)]
fn read_key<'a>(rd: &mut Reader<'a>) -> Result<HeaderKey<'a>, DecodeError> {
    if rd.eat(key_bytes::MESSAGE_ID) {
        return Ok(HeaderKey::MessageId);
    }
    if rd.eat(key_bytes::V) {
        return Ok(HeaderKey::Version);
    }
    if rd.eat(key_bytes::RESPONSE_TO) {
        return Ok(HeaderKey::ResponseTo);
    }
    // The trace keys every traced event carries.
    if rd.eat(key_bytes::TRACE_ID) {
        return Ok(HeaderKey::Other(TRACE_ID_KEY));
    }
    if rd.eat(key_bytes::SPAN_ID) {
        return Ok(HeaderKey::Other(SPAN_ID_KEY));
    }
    if rd.eat(key_bytes::PARENT_SPAN_ID) {
        return Ok(HeaderKey::Other(PARENT_SPAN_ID_KEY));
    }
    Ok(match read_text(rd)? {
        Some("message_id") => HeaderKey::MessageId,
        Some("v") => HeaderKey::Version,
        Some("response_to") => HeaderKey::ResponseTo,
        Some(other) => HeaderKey::Other(other),
        None => return Err(DecodeError::HeaderKeyNotText),
    })
}

fn read_header(rd: &mut Reader<'_>) -> Result<Header, DecodeError> {
    let Some(len) = rd.map_len().map_err(DecodeError::Msgpack)? else {
        return Err(DecodeError::HeaderNotAMap);
    };
    // Inside the event array and the header map.
    let depth = MAX_DEPTH - 2;
    let mut message_id = None;
    let mut version = None;
    let mut response_to = None;
    let mut trace = TraceKeys::default();
    let mut extra = Vec::new();
    for index in 0..len {
        match read_key(rd)? {
            HeaderKey::MessageId => message_id = Some(read_id(rd, "message_id")?),
            HeaderKey::ResponseTo => response_to = Some(read_id(rd, "response_to")?),
            HeaderKey::Version => {
                let value = rd.uint(depth).map_err(DecodeError::Msgpack)?;
                // A `v` that is not a small non-negative integer is no
                // version we know; treat it like a missing one, as a v1 peer.
                version = value.and_then(|v| u32::try_from(v).ok());
            }
            HeaderKey::Other(key @ (TRACE_ID_KEY | SPAN_ID_KEY | PARENT_SPAN_ID_KEY))
                if !extra.iter().any(|(k, _)| k == key) && read_trace_key(rd, key, &mut trace)? => {
            }
            HeaderKey::Other(other) => {
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
    let Some(message_id) = message_id else {
        return Err(DecodeError::MissingMessageId);
    };
    Ok(Header {
        message_id,
        version,
        response_to,
        trace,
        extra,
    })
}

/// Reads the value of `key` into `trace` if it is in the form [`TraceKeys`]
/// keeps and the first of its name; else reads nothing. (A key already
/// among the extras keeps its later namesakes there too, so that encoding
/// again keeps their order.)
#[inline(never)]
fn read_trace_key(
    rd: &mut Reader<'_>,
    key: &str,
    trace: &mut TraceKeys,
) -> Result<bool, DecodeError> {
    if trace.has(key) {
        return Ok(false);
    }
    let mut ahead = rd.clone();
    if key == TRACE_ID_KEY {
        // As tracers write it, a str 8 of 36 bytes, the id is looked at in
        // place (the check of its form covers UTF-8's); any other form
        // goes through the general reader.
        const LENGTH: usize = uuid::fmt::Hyphenated::LENGTH;
        let id = match ahead.peek_str8::<LENGTH>() {
            Some(text) => {
                ahead.skip(2 + LENGTH);
                canonical_trace_id(text)
            }
            None => match ahead.raw_text().map_err(DecodeError::Msgpack)? {
                Some(Text::Str(text)) => canonical_trace_id(text.as_bytes()),
                _ => None,
            },
        };
        if id.is_some() {
            *rd = ahead;
            trace.set_trace_id(id);
        }
        return Ok(id.is_some());
    }
    let id = ahead.unsigned().and_then(NonZeroU64::new);
    if id.is_some() {
        *rd = ahead;
        if key == SPAN_ID_KEY {
            trace.set_span_id(id);
        } else {
            trace.set_parent_span_id(id);
        }
    }
    Ok(id.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocols_names_are_decoded_borrowed_and_other_names_owned() {
        // Other names, some of the same lengths as the protocol's.
        let others = [
            "add",
            "OKAY",
            "",
            "Ok",
            "ERX",
            "STREAm",
            "_zpc_hx",
            "_zpc_mor_",
            "STREAM_DONX",
        ];
        for name in names::ALL.into_iter().chain(others) {
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
    fn trace_keys_show_the_trace_id_as_its_text() {
        let keys = TraceKeys::new(
            NonZeroU128::new(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            NonZeroU64::new(7),
            None,
        );
        assert_eq!(
            format!("{keys:?}"),
            "TraceKeys { trace_id: Some(\"4bf92f35-77b3-4da6-a3ce-929d0e0e4736\"), span_id: Some(7), parent_span_id: None }"
        );
    }

    #[test]
    fn trace_ids_are_written_as_uuid_writes_them() {
        let mut samples = vec![0, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210];
        samples.extend((0..128).map(|bit| 1u128 << bit));
        samples.extend((0..1000).map(|_| uuid::Uuid::new_v4().as_u128()));
        for id in samples {
            let mut expected = [0; uuid::fmt::Hyphenated::LENGTH];
            uuid::Uuid::from_u128(id)
                .hyphenated()
                .encode_lower(&mut expected);
            assert_eq!(uuid_text(id), expected, "{id:#x}");
        }
    }

    #[test]
    fn trace_ids_are_read_as_uuid_reads_their_lowercase_form() {
        fn uuids(text: &str) -> Option<NonZeroU128> {
            let lowercase = !text.bytes().any(|b| b.is_ascii_uppercase());
            let hyphenated = text.len() == uuid::fmt::Hyphenated::LENGTH;
            let parsed = uuid::Uuid::try_parse(text).ok()?;
            NonZeroU128::new(parsed.as_u128()).filter(|_| lowercase && hyphenated)
        }
        let mut samples: Vec<String> = (0..2000)
            .map(|_| uuid::Uuid::new_v4().hyphenated().to_string())
            .collect();
        samples.push("00000000-0000-0000-0000-000000000000".into());
        samples.push("00000000-0000-0000-0000-000000000001".into());
        samples.push("ffffffff-ffff-ffff-ffff-ffffffffffff".into());
        samples.push(uuid::Uuid::new_v4().simple().to_string());
        samples.push(uuid::Uuid::new_v4().braced().to_string());
        // Each byte of a valid id replaced by every byte that leaves it
        // text (digits' neighbours, capitals, dashes moved), and by a
        // character of two bytes.
        let base = "0123abcd-ef45-6789-a0b1-c2d3e4f5a6b7";
        for at in 0..base.len() {
            for byte in 0..0x80u8 {
                let mut text = base.as_bytes().to_vec();
                text[at] = byte;
                samples.push(String::from_utf8(text).expect("ASCII"));
            }
            if at + 2 <= base.len() {
                let mut text = base.to_owned();
                text.replace_range(at..at + 2, "é");
                samples.push(text);
            }
        }
        for text in &samples {
            assert_eq!(canonical_trace_id(text.as_bytes()), uuids(text), "{text:?}");
        }
    }

    #[test]
    fn the_size_hint_covers_the_encoding_so_encode_allocates_once() {
        let small = Event::new(Header::new(), "OK", Value::from(1));
        let mut reply = Header::new();
        reply.response_to = Some(Header::new().message_id);
        reply.trace = TraceKeys::new(
            NonZeroU128::new(u128::MAX),
            NonZeroU64::new(u64::MAX),
            NonZeroU64::new(u64::MAX),
        );
        reply.insert("user", Value::from("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"));
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
