//! What a process reports about one traced event, and its encodings: a
//! msgpack map on the wire to the collector and in Redis.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zerorpc::Value;

use crate::Result;
use crate::context::{SpanId, TraceId};
use crate::error::Error;

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
    pub fn to_value(&self) -> Value {
        // Every field is a string, a number or an enum of unit variants:
        // serializing cannot fail.
        zerorpc::wire::to_value(self).unwrap_or(Value::Nil)
    }

    /// A report from its msgpack value.
    pub fn from_value(value: Value) -> Result<Report> {
        zerorpc::wire::from_value(value)
            .map_err(|e| Error::Malformed(format!("not a trace report: {e}")))
    }

    /// The report as msgpack bytes, as stored in Redis.
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = rmpv::encode::write_value(&mut bytes, &self.to_value());
        bytes
    }

    /// A report from msgpack bytes.
    pub fn from_msgpack(mut bytes: &[u8]) -> Result<Report> {
        let value = rmpv::decode::read_value(&mut bytes)
            .map_err(|e| Error::Malformed(format!("a trace entry is not msgpack: {e}")))?;
        Report::from_value(value)
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

/// Microseconds since the Unix epoch, now.
pub(crate) fn now_us() -> u64 {
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
