//! The compact encoding of reports: how a process writes them on its I/O
//! threads, sends them to collectors, and how collectors store them.
//!
//! Every traced call makes about four reports (the client's request and
//! reply, the server's), so their cost is paid four times per call by the
//! processes making calls and again by the collector. A report is
//! therefore written straight into its batch's bytes, with no allocation
//! and no intermediate value tree, as a msgpack array of fixed positions:
//!
//! | # | field | msgpack |
//! |---|---|---|
//! | 0 | trace id | bin, 16 bytes |
//! | 1 | span id | uint |
//! | 2 | parent span id | uint, or nil for a root call |
//! | 3 | kind: 0 call, 1 reply, 2 event | uint |
//! | 4 | side: 0 client, 1 server, 2 relay | uint |
//! | 5 | direction: 0 sent, 1 received | uint |
//! | 6 | event name | str |
//! | 7 | method | str |
//! | 8 | exception name of an `ERR` | str, or nil |
//! | 9 | peer | str (an endpoint), bin (a routing id), or nil |
//! | 10 | timestamp, µs since the Unix epoch | uint |
//! | 11 | execution time on a server's last reply, µs | uint, or nil |
//!
//! A call answered at once is reported once per side, when its first
//! reply is sent or received, rather than twice: the reply's record with a
//! 13th field, the timestamp of the request (µs). It stands for two
//! reports: the reply's, and the request's its own record would have
//! made (kind call, the other direction, the method as name, no error,
//! no execution time), which readers make from it. A call still
//! unanswered after a moment is reported on its own, so a trace shows it
//! pending (see `watch.rs`).
//!
//! A batch travels as the event `report` with the arguments
//! `[process, records]`: the reporting process (`name@host`, once per
//! batch) and the records back to back in one bin. A stored entry (Redis,
//! memory) is the same array with the process put first, self contained:
//! 13 fields, or 14 for a reply that reports its request too.

use crate::context::{SpanContext, SpanId, TraceId};
use crate::error::{Error, Result};
use crate::report::{Direction, Kind, Report, Side};

/// The msgpack nil.
const NIL: u8 = 0xc0;
/// Fields of a record on the wire; a stored entry has one more.
const RECORD_FIELDS: u32 = 12;
/// The msgpack marker of a record's array (a fixarray of 12).
const RECORD_MARKER: u8 = 0x90 | RECORD_FIELDS as u8;
/// The msgpack marker of a stored entry's array (a fixarray of 13).
const ENTRY_MARKER: u8 = 0x90 | (RECORD_FIELDS as u8 + 1);
/// The msgpack marker of a reply's record that also reports its request
/// (a fixarray of 13, on the wire).
const ANSWERED_MARKER: u8 = 0x90 | (RECORD_FIELDS as u8 + 1);
/// The msgpack marker of the stored entry of such a record: the process,
/// the record's 12 fields and the request's timestamp (a fixarray of 14).
const ANSWERED_ENTRY_MARKER: u8 = 0x90 | (RECORD_FIELDS as u8 + 2);

/// The other end of an event, as a record keeps it: raw, so that no
/// report formats it; readers do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PeerRef<'a> {
    /// A server's peer, by ZeroMQ routing id.
    RoutingId(&'a [u8]),
    /// The endpoint a client connected to.
    Endpoint(&'a str),
    /// Not known.
    Unknown,
}

/// One report, borrowed from the event it is about.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    pub(crate) span: &'a SpanContext,
    pub(crate) kind: Kind,
    pub(crate) side: Side,
    pub(crate) direction: Direction,
    pub(crate) name: &'a str,
    pub(crate) method: &'a str,
    pub(crate) error: Option<&'a str>,
    pub(crate) peer: PeerRef<'a>,
    pub(crate) timestamp_us: u64,
    pub(crate) exec_us: Option<u64>,
}

impl Record<'_> {
    /// Appends the record to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(RECORD_MARKER);
        self.encode_fields(out);
    }

    /// Appends the record of a reply that also reports its call's
    /// request, made at `called_us`: two reports in one.
    pub(crate) fn encode_answered(&self, called_us: u64, out: &mut Vec<u8>) {
        debug_assert_eq!(self.kind, Kind::Reply);
        out.push(ANSWERED_MARKER);
        self.encode_fields(out);
        pack::uint(out, called_us);
    }

    fn encode_fields(&self, out: &mut Vec<u8>) {
        // Every traced call writes two records: one reservation, and
        // writers that cannot fail (rmp's go through `io::Write` and its
        // error for every byte).
        let error_len = self.error.map_or(0, str::len);
        let peer_len = match self.peer {
            PeerRef::RoutingId(id) => id.len(),
            PeerRef::Endpoint(endpoint) => endpoint.len(),
            PeerRef::Unknown => 0,
        };
        out.reserve(
            FIXED_RECORD_BYTES + self.name.len() + self.method.len() + error_len + peer_len,
        );
        pack::bin(out, &self.span.trace_id.to_bytes());
        pack::uint(out, self.span.span_id.get());
        pack::optional_uint(out, self.span.parent_span_id.map(SpanId::get));
        out.extend_from_slice(&[self.kind.code(), self.side.code(), self.direction.code()]);
        pack::str(out, self.name);
        pack::str(out, self.method);
        match self.error {
            Some(error) => pack::str(out, error),
            None => out.push(NIL),
        }
        match self.peer {
            PeerRef::RoutingId(id) => pack::bin(out, id),
            PeerRef::Endpoint(endpoint) => pack::str(out, endpoint),
            PeerRef::Unknown => out.push(NIL),
        }
        pack::uint(out, self.timestamp_us);
        pack::optional_uint(out, self.exec_us);
    }

    /// The record as a stored entry of `process`.
    pub(crate) fn to_entry(self, process: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + process.len());
        out.push(ENTRY_MARKER);
        pack::str(&mut out, process);
        self.encode_fields(&mut out);
        out
    }
}

/// Fewer bytes than most records take (a reply with its request, some 95
/// with a short method name): a batch's bytes over it make room for its
/// entries at once, rather than growing their list a few times a batch.
pub(crate) const SMALL_RECORD_BYTES: usize = 64;

/// A record's bytes beyond its text: markers, ids, codes, timestamps
/// (each field at its longest) and the request's timestamp.
const FIXED_RECORD_BYTES: usize = 1 + (2 + 16) + 3 * 9 + 3 + 4 * 5 + 3 * 9;

/// The msgpack forms records are written in: the shortest for each value,
/// as every msgpack writer chooses, so that any reader takes them.
mod pack {
    pub(super) use zerorpc::wire::encode::{bin, str, uint};

    use super::NIL;

    pub(super) fn optional_uint(out: &mut Vec<u8>, value: Option<u64>) {
        match value {
            Some(value) => uint(out, value),
            None => out.push(NIL),
        }
    }
}

/// What a collector needs of a record to store and count it, read from a
/// batch without copying its text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordView<'a> {
    pub(crate) trace_id: TraceId,
    pub(crate) ends_call: bool,
    pub(crate) method: &'a str,
    pub(crate) failed: bool,
    pub(crate) timestamp_us: u64,
    pub(crate) exec_us: u64,
    /// When the call's request was made, if the record reports it too.
    pub(crate) called_us: Option<u64>,
    /// The record's fields, without its array marker: its 12, and the
    /// request's timestamp if it reports the request too.
    fields: &'a [u8],
}

impl RecordView<'_> {
    /// Appends the record to `out` as a stored entry of `process`: the
    /// record's own fields after the process, so that an entry stands for
    /// the reports its record stands for (two for a reply that reports its
    /// request too; readers make both).
    pub(crate) fn write_entry(&self, process: &str, out: &mut Vec<u8>) {
        out.push(match self.called_us {
            Some(_) => ANSWERED_ENTRY_MARKER,
            None => ENTRY_MARKER,
        });
        pack::str(out, process);
        out.extend_from_slice(self.fields);
    }
}

/// Reads the records of a batch, one at a time; stops at the first that
/// is malformed (the rest of the batch cannot be found again).
pub(crate) struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub(crate) fn new(batch: &'a [u8]) -> Self {
        Records { rest: batch }
    }
}

impl<'a> Iterator for Records<'a> {
    // Not the crate's `Error`: a `Result` of it is several times the size
    // of a view, and was copied out of every record read.
    type Item = Read<RecordView<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let mut reader = Reader::new(self.rest);
        let view = reader.record_view();
        match view {
            Ok(view) => {
                self.rest = reader.rest;
                Some(Ok(view))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Reads a stored entry back into the reports it stands for.
pub(crate) fn entry_to_reports(entry: &[u8]) -> Result<Vec<Report>> {
    let mut reader = Reader::new(entry);
    let mut reports = Vec::with_capacity(2);
    reader.entry(&mut reports)?;
    if !reader.rest.is_empty() {
        return Err(malformed("a trace entry has bytes after its end"));
    }
    Ok(reports)
}

/// Reads stored entries written back to back.
pub(crate) fn entries_to_reports(entries: &[u8]) -> Result<Vec<Report>> {
    let mut reader = Reader::new(entries);
    let mut reports = Vec::new();
    while !reader.rest.is_empty() {
        reader.entry(&mut reports)?;
    }
    Ok(reports)
}

/// Whether stored bytes are an entry of this encoding (rather than the
/// map of an older collector).
pub(crate) fn is_entry(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(&(ENTRY_MARKER | ANSWERED_ENTRY_MARKER)))
}

/// How many reports a stored entry stands for (it starts with its marker).
pub(crate) fn reports_in(entry: &[u8]) -> usize {
    match entry.first() {
        Some(&ANSWERED_ENTRY_MARKER) => 2,
        _ => 1,
    }
}

struct Fields {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    kind: Kind,
    side: Side,
    direction: Direction,
    name: String,
    method: String,
    error: Option<String>,
    peer: String,
    timestamp_us: u64,
    exec_us: Option<u64>,
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Reads one entry into the reports it stands for: one, or a call's
    /// request and then the reply that reported it.
    fn entry(&mut self, reports: &mut Vec<Report>) -> Read<()> {
        let answered = match self.array_len()? {
            n if n == RECORD_FIELDS + 1 => false,
            n if n == RECORD_FIELDS + 2 => true,
            _ => return Err(Bad("a trace entry has the wrong number of fields")),
        };
        let process = self.text()?;
        let fields = self.fields()?;
        let reply = Report {
            trace_id: fields.trace_id,
            span_id: fields.span_id,
            parent_span_id: fields.parent_span_id,
            kind: fields.kind,
            side: fields.side,
            direction: fields.direction,
            name: fields.name,
            method: fields.method,
            error: fields.error,
            process,
            peer: fields.peer,
            timestamp_us: fields.timestamp_us,
            exec_us: fields.exec_us,
        };
        if answered {
            let called_us = self.uint()?;
            if reply.kind != Kind::Reply {
                return Err(Bad("a request stored with a report that is not a reply"));
            }
            // What the request's own record would have said.
            reports.push(Report {
                kind: Kind::Call,
                direction: match reply.direction {
                    Direction::Sent => Direction::Received,
                    Direction::Received => Direction::Sent,
                },
                name: reply.method.clone(),
                error: None,
                timestamp_us: called_us,
                exec_us: None,
                ..reply.clone()
            });
        }
        reports.push(reply);
        Ok(())
    }

    #[inline(always)]
    fn record_view(&mut self) -> Read<RecordView<'a>> {
        let answered = match self.array_len()? {
            RECORD_FIELDS => false,
            n if n == RECORD_FIELDS + 1 => true,
            _ => return Err(Bad("a trace record has the wrong number of fields")),
        };
        let start = self.rest;
        let trace_id = self.trace_id()?;
        self.uint()?;
        self.optional_uint()?;
        let (kind, side, direction) = self.codes()?;
        if answered && kind != Kind::Reply {
            return Err(Bad("a request reported with one that is not a reply"));
        }
        // Only the method is read as text here: the rest is stored as it
        // came, and read (leniently) when a trace is.
        self.str_bytes()?;
        let method = self.str()?;
        let failed = !self.nil();
        if failed {
            self.str_bytes()?;
        }
        self.skip_peer()?;
        let timestamp_us = self.uint()?;
        let exec_us = self.optional_uint()?;
        let called_us = if answered { Some(self.uint()?) } else { None };
        let fields = &start[..start.len() - self.rest.len()];
        Ok(RecordView {
            trace_id,
            ends_call: kind == Kind::Reply
                && side == Side::Server
                && direction == Direction::Sent
                && exec_us.is_some(),
            method,
            failed,
            timestamp_us,
            exec_us: exec_us.unwrap_or(0),
            called_us,
            fields,
        })
    }

    fn fields(&mut self) -> Read<Fields> {
        let trace_id = self.trace_id()?;
        let span_id = SpanId::new(self.uint()?).ok_or(Bad("a span id of 0"))?;
        let parent_span_id = self.optional_uint()?.and_then(SpanId::new);
        let (kind, side, direction) = self.codes()?;
        Ok(Fields {
            trace_id,
            span_id,
            parent_span_id,
            kind,
            side,
            direction,
            name: self.text()?,
            method: self.text()?,
            error: self.optional_text()?,
            peer: self.peer()?,
            timestamp_us: self.uint()?,
            exec_us: self.optional_uint()?,
        })
    }

    // The readers below take only the forms `Record::encode` writes (and
    // every msgpack writer uses for these types); anything else is
    // malformed. They are hand-written because the collector reads four
    // records per traced call: rmp's generic readers cost twice as much.
    // And inlined by force: left to the compiler, each was a call (with
    // its `Result` through memory), and a record took 480 instructions to
    // read rather than 320.

    #[inline(always)]
    fn byte(&mut self) -> Read<u8> {
        let (&first, rest) = self.rest.split_first().ok_or(Bad("cut short"))?;
        self.rest = rest;
        Ok(first)
    }

    #[inline(always)]
    fn take(&mut self, len: usize) -> Read<&'a [u8]> {
        if self.rest.len() < len {
            return Err(Bad("cut short"));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    /// The next `N` bytes, as an array to read a big-endian number from.
    #[inline(always)]
    fn be<const N: usize>(&mut self) -> Read<[u8; N]> {
        let Some((bytes, rest)) = self.rest.split_first_chunk::<N>() else {
            return Err(Bad("cut short"));
        };
        self.rest = rest;
        Ok(*bytes)
    }

    #[inline(always)]
    fn be8(&mut self) -> Read<u64> {
        self.be::<1>().map(|[byte]| u64::from(byte))
    }

    #[inline(always)]
    fn be16(&mut self) -> Read<u64> {
        self.be().map(|bytes| u64::from(u16::from_be_bytes(bytes)))
    }

    #[inline(always)]
    fn be32(&mut self) -> Read<u64> {
        self.be().map(|bytes| u64::from(u32::from_be_bytes(bytes)))
    }

    #[inline(always)]
    fn be64(&mut self) -> Read<u64> {
        self.be().map(u64::from_be_bytes)
    }

    #[inline(always)]
    fn array_len(&mut self) -> Read<u32> {
        match self.byte()? {
            marker @ 0x90..=0x9f => Ok(u32::from(marker & 0x0f)),
            0xdc => Ok(self.be16()? as u32),
            0xdd => Ok(self.be32()? as u32),
            _ => Err(Bad("not an array")),
        }
    }

    #[inline(always)]
    fn trace_id(&mut self) -> Read<TraceId> {
        // As every record writes it: a bin 8 of 16 bytes.
        if let Some(([0xc4, 16], rest)) = self.rest.split_first_chunk::<2>() {
            if let Some((bytes, rest)) = rest.split_first_chunk::<16>() {
                self.rest = rest;
                return Ok(TraceId::from_bytes(*bytes));
            }
        }
        let bytes = self.bin()?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|_| Bad("a trace id is not 16 bytes"))?;
        Ok(TraceId::from_bytes(bytes))
    }

    #[inline(always)]
    fn uint(&mut self) -> Read<u64> {
        match self.byte()? {
            small @ 0x00..=0x7f => Ok(u64::from(small)),
            0xcc => self.be8(),
            0xcd => self.be16(),
            0xce => self.be32(),
            0xcf => self.be64(),
            _ => Err(Bad("not an unsigned integer")),
        }
    }

    #[inline(always)]
    fn nil(&mut self) -> bool {
        if self.rest.first() == Some(&NIL) {
            self.rest = &self.rest[1..];
            true
        } else {
            false
        }
    }

    #[inline(always)]
    fn optional_uint(&mut self) -> Read<Option<u64>> {
        if self.nil() {
            Ok(None)
        } else {
            self.uint().map(Some)
        }
    }

    /// A record's kind, side and direction.
    #[inline(always)]
    fn codes(&mut self) -> Read<(Kind, Side, Direction)> {
        Ok((
            Kind::from_code(self.uint()?).ok_or(Bad("an unknown kind"))?,
            Side::from_code(self.uint()?).ok_or(Bad("an unknown side"))?,
            Direction::from_code(self.uint()?).ok_or(Bad("an unknown direction"))?,
        ))
    }

    /// A str's bytes, not checked to be UTF-8.
    #[inline(always)]
    fn str_bytes(&mut self) -> Read<&'a [u8]> {
        let len = match self.byte()? {
            marker @ 0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => self.be8()? as usize,
            0xda => self.be16()? as usize,
            0xdb => self.be32()? as usize,
            _ => return Err(Bad("not a string")),
        };
        self.take(len)
    }

    #[inline(always)]
    fn str(&mut self) -> Read<&'a str> {
        zerorpc::wire::utf8(self.str_bytes()?).ok_or(Bad("a string is not UTF-8"))
    }

    /// A stored string, read as text even if a reporter wrote bytes that
    /// are not UTF-8 (collectors store them unchecked).
    fn text(&mut self) -> Read<String> {
        Ok(String::from_utf8_lossy(self.str_bytes()?).into_owned())
    }

    fn optional_text(&mut self) -> Read<Option<String>> {
        if self.nil() {
            Ok(None)
        } else {
            self.text().map(Some)
        }
    }

    #[inline(always)]
    fn bin(&mut self) -> Read<&'a [u8]> {
        let len = match self.byte()? {
            0xc4 => self.be8()?,
            0xc5 => self.be16()?,
            0xc6 => self.be32()?,
            _ => return Err(Bad("not bytes")),
        };
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    #[inline(always)]
    fn is_str(&self) -> bool {
        matches!(self.rest.first(), Some(0xa0..=0xbf | 0xd9..=0xdb))
    }

    #[inline(always)]
    fn skip_peer(&mut self) -> Read<()> {
        if self.nil() {
            Ok(())
        } else if self.is_str() {
            self.str_bytes().map(drop)
        } else {
            self.bin().map(drop)
        }
    }

    /// The peer as the transport prints it.
    fn peer(&mut self) -> Read<String> {
        if self.nil() {
            Ok("unknown peer".to_owned())
        } else if self.is_str() {
            self.text()
        } else {
            let id = self.bin()?;
            let mut text = String::with_capacity(5 + 2 * id.len());
            text.push_str("peer ");
            for byte in id {
                text.push_str(&format!("{byte:02x}"));
            }
            Ok(text)
        }
    }
}

/// What the reader found wrong: kept small (a `Result` of the crate's
/// `Error`, which holds Redis's, is copied out of every field read), and
/// made an `Error` once, where reading stops.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bad(&'static str);

pub(crate) type Read<T> = std::result::Result<T, Bad>;

impl From<Bad> for Error {
    fn from(Bad(what): Bad) -> Error {
        malformed(what)
    }
}

fn malformed(what: &str) -> Error {
    Error::Malformed(format!("bad trace record: {what}"))
}

#[cfg(test)]
mod tests;
