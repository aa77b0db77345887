//! What a process reports about one traced event, and its encodings: a
//! msgpack map on the wire to the collector and in Redis.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zerorpc::Value;

use crate::Result;
use crate::context::{SpanContext, SpanId, TraceId};
use crate::error::Error;
use crate::record::{self, PeerRef, Record};

/// One traced event, as a process saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The trace.
    pub trace_id: TraceId,
    /// The call's span.
    pub span_id: SpanId,
    /// The span the call was made from; `None` for a root call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    /// A request, a reply or a one-way event (push, publish).
    pub kind: Kind,
    /// Which end of the call the reporting process is.
    pub side: Side,
    /// Whether the reporting process sent or received the event.
    pub direction: Direction,
    /// The event's name: the method for a request or event; `OK`, `ERR`,
    /// `STREAM` or `STREAM_DONE` for a reply.
    pub name: String,
    /// The method called (the same as `name` on requests).
    pub method: String,
    /// The exception name of an `ERR` reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The reporting process, `name@host`.
    pub process: String,
    /// The other end, as the reporting socket knows it: the endpoint a
    /// client connected to, or a server's routing id.
    pub peer: String,
    /// When it was sent or received: microseconds since the Unix epoch.
    pub timestamp_us: u64,
    /// On a server's last reply to a call (`OK`, `ERR`, `STREAM_DONE`):
    /// microseconds from receiving the request to sending it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_us: Option<u64>,
}

/// What kind of event a [`Report`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A request: the event that opens a call.
    Call,
    /// A reply to a call (including stream items and the stream's end).
    Reply,
    /// A pushed or published event: no reply.
    Event,
}

/// Which end of a call reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The caller (a client, pusher or publisher).
    Client,
    /// The callee (a server, puller or subscriber).
    Server,
    /// A relay between them (a queue hub) that passed the request on.
    Relay,
}

/// Whether the reporting process sent or received the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent.
    Sent,
    /// Received.
    Received,
}

impl Report {
    /// The report as a msgpack value (a map), as it travels to the
    /// collector.
    ///
    /// Built by hand rather than through serde: every traced event makes
    /// one, and serde's path cost a tenth of a traced client's CPU. The
    /// map is the one `Serialize` makes (a test holds them together), so
    /// [`Report::from_value`] reads it.
    pub fn to_value(&self) -> Value {
        let mut map = Vec::with_capacity(13);
        let mut field = |key: &'static str, value: Value| map.push((Value::from(key), value));
        field("trace_id", Value::from(self.trace_id.to_string()));
        field("span_id", Value::from(self.span_id.to_string()));
        if let Some(parent) = self.parent_span_id {
            field("parent_span_id", Value::from(parent.to_string()));
        }
        field("kind", Value::from(self.kind.as_str()));
        field("side", Value::from(self.side.as_str()));
        field("direction", Value::from(self.direction.as_str()));
        field("name", Value::from(self.name.as_str()));
        field("method", Value::from(self.method.as_str()));
        if let Some(error) = &self.error {
            field("error", Value::from(error.as_str()));
        }
        field("process", Value::from(self.process.as_str()));
        field("peer", Value::from(self.peer.as_str()));
        field("timestamp_us", Value::from(self.timestamp_us));
        if let Some(exec) = self.exec_us {
            field("exec_us", Value::from(exec));
        }
        Value::Map(map)
    }

    /// A report from its msgpack value.
    pub fn from_value(value: Value) -> Result<Report> {
        zerorpc::wire::from_value(value)
            .map_err(|e| Error::Malformed(format!("not a trace report: {e}")))
    }

    /// The report as msgpack bytes, as stored in Redis: a compact array
    /// (docs/tracing.md describes its fields).
    pub fn to_msgpack(&self) -> Vec<u8> {
        let span = SpanContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
        };
        Record {
            span: &span,
            kind: self.kind,
            side: self.side,
            direction: self.direction,
            name: &self.name,
            method: &self.method,
            error: self.error.as_deref(),
            peer: PeerRef::Endpoint(&self.peer),
            timestamp_us: self.timestamp_us,
            exec_us: self.exec_us,
        }
        .to_entry(&self.process)
    }

    /// A report from msgpack bytes: the compact array of
    /// [`Report::to_msgpack`], or the map that collectors stored before it.
    /// A stored entry that stands for two reports (see
    /// [`Report::from_stored`]) is an error here.
    pub fn from_msgpack(bytes: &[u8]) -> Result<Report> {
        let mut reports = Report::from_stored(bytes)?;
        match (reports.pop(), reports.is_empty()) {
            (Some(report), true) => Ok(report),
            _ => Err(Error::Malformed(
                "a trace entry that stands for a call's request and reply is two reports".into(),
            )),
        }
    }

    /// The reports a stored entry stands for (docs/tracing.md describes
    /// entries): one; or two, a call's request and then the reply whose
    /// record reported it; or one from the map that collectors stored
    /// before the compact arrays.
    pub fn from_stored(bytes: &[u8]) -> Result<Vec<Report>> {
        if record::is_entry(bytes) {
            return record::entry_to_reports(bytes);
        }
        let value = rmpv::decode::read_value(&mut &bytes[..])
            .map_err(|e| Error::Malformed(format!("a trace entry is not msgpack: {e}")))?;
        Report::from_value(value).map(|report| vec![report])
    }

    /// A server's last reply to a call: what the per-minute counters count.
    pub fn ends_call(&self) -> bool {
        self.kind == Kind::Reply
            && self.side == Side::Server
            && self.direction == Direction::Sent
            && self.exec_us.is_some()
    }

    /// The service part of the process name (before `@`).
    pub fn service(&self) -> &str {
        self.process
            .split_once('@')
            .map_or(self.process.as_str(), |(name, _)| name)
    }
}

impl Kind {
    /// Its number in the compact encoding (see `record.rs`).
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::Call => 0,
            Kind::Reply => 1,
            Kind::Event => 2,
        }
    }

    /// The one with this number, if any.
    pub(crate) fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Kind::Call),
            1 => Some(Kind::Reply),
            2 => Some(Kind::Event),
            _ => None,
        }
    }

    /// Its name in reports (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Reply => "reply",
            Kind::Event => "event",
        }
    }
}

impl Side {
    /// Its number in the compact encoding (see `record.rs`).
    pub(crate) fn code(self) -> u8 {
        match self {
            Side::Client => 0,
            Side::Server => 1,
            Side::Relay => 2,
        }
    }

    /// The one with this number, if any.
    pub(crate) fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Side::Client),
            1 => Some(Side::Server),
            2 => Some(Side::Relay),
            _ => None,
        }
    }

    /// Its name in reports (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
            Side::Relay => "relay",
        }
    }
}

impl Direction {
    /// Its number in the compact encoding (see `record.rs`).
    pub(crate) fn code(self) -> u8 {
        match self {
            Direction::Sent => 0,
            Direction::Received => 1,
        }
    }

    /// The one with this number, if any.
    pub(crate) fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Direction::Sent),
            1 => Some(Direction::Received),
            _ => None,
        }
    }

    /// Its name in reports (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_us() -> u64 {
    // The clock read directly: `SystemTime::now().duration_since(..)`
    // normalizes through checked `Duration` arithmetic that costs several
    // times the (vDSO) clock read itself, twice per traced call.
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_REALTIME always
    // exists, so the call cannot fail on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    if rc != 0 {
        return fallback_now_us();
    }
    // A clock before 1970 reads as 0, as `duration_since` would fail.
    let (Ok(secs), Ok(nanos)) = (u64::try_from(now.tv_sec), u64::try_from(now.tv_nsec)) else {
        return 0;
    };
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

fn fallback_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

macro_rules! serde_as_text {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(TraceId);
serde_as_text!(SpanId);

#[cfg(test)]
mod tests {
    use super::*;

    fn report(optional: bool) -> Report {
        Report {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: optional.then(SpanId::random),
            kind: Kind::Reply,
            side: Side::Server,
            direction: Direction::Sent,
            name: "ERR".to_owned(),
            method: "add".to_owned(),
            error: optional.then(|| "ValueError".to_owned()),
            process: "calc@host".to_owned(),
            peer: "00f4b0dc51".to_owned(),
            timestamp_us: 1_764_800_000_000_000,
            exec_us: optional.then_some(42),
        }
    }

    #[test]
    fn the_hand_built_map_is_the_one_serde_makes_and_reads_back() {
        for kind in [Kind::Call, Kind::Reply, Kind::Event] {
            for side in [Side::Client, Side::Server, Side::Relay] {
                for direction in [Direction::Sent, Direction::Received] {
                    for optional in [false, true] {
                        let report = Report {
                            kind,
                            side,
                            direction,
                            ..report(optional)
                        };
                        let by_serde = zerorpc::wire::to_value(&report).unwrap();
                        assert_eq!(report.to_value(), by_serde);
                        assert_eq!(Report::from_value(report.to_value()).unwrap(), report);
                    }
                }
            }
        }
    }
}
