//! Trace context: the ids a traced call carries in its header, read from
//! a request (ours or W3C `traceparent`) and written on the calls made
//! while serving it.

use std::fmt;
use std::num::{NonZeroU64, NonZeroU128};
use std::str::FromStr;

use zerorpc::CallContext;
use zerorpc::wire::{self, Header, TraceKeys, Value};

/// The header key of the trace id: a UUID string, the same on every call
/// and reply of one trace.
pub const TRACE_ID_KEY: &str = wire::TRACE_ID_KEY;
/// The header key of the call's span id: an unsigned integer (never 0), one
/// per call, shared by the request and its replies. 16 hex digits, as W3C
/// writes span ids, are read too.
pub const SPAN_ID_KEY: &str = wire::SPAN_ID_KEY;
/// The header key of the span id of the call during which this call was
/// made, written as [`SPAN_ID_KEY`] is; absent on a root call and on replies.
pub const PARENT_SPAN_ID_KEY: &str = wire::PARENT_SPAN_ID_KEY;
/// The W3C Trace Context header key, read when [`TRACE_ID_KEY`] is absent
/// (and the name of the environment variable `zerorpc --server` passes to
/// the programs it runs).
pub const TRACEPARENT_KEY: &str = "traceparent";

/// The id of a whole trace: 128 bits, written as a UUID
/// (`8-4-4-4-12` hex digits), the original design's `trace_id`. The same
/// 32 digits without dashes are a W3C trace-id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(u128);

impl TraceId {
    /// A fresh random id.
    pub fn random() -> Self {
        let bytes = fastrand::u128(..).to_le_bytes();
        TraceId(
            uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .as_u128(),
        )
    }

    /// The 32 hex digits without dashes (W3C and OTLP form).
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    fn to_wire(self) -> Option<NonZeroU128> {
        NonZeroU128::new(self.0)
    }

    /// The id's 16 bytes, big-endian (the UUID's byte order).
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// An id from its 16 bytes, big-endian.
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
        TraceId(u128::from_be_bytes(bytes))
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_u128(self.0).hyphenated().fmt(f)
    }
}

impl FromStr for TraceId {
    type Err = ContextError;

    /// Accepts a UUID with or without dashes (so W3C trace-ids too); all
    /// zeros is invalid, as in W3C.
    fn from_str(text: &str) -> Result<Self, ContextError> {
        let id = uuid::Uuid::try_parse(text)
            .map_err(|_| ContextError::new(format!("{text:?} is not a trace id (a UUID)")))?;
        match id.as_u128() {
            0 => Err(ContextError::new("the all-zero trace id is invalid")),
            n => Ok(TraceId(n)),
        }
    }
}

/// The id of one call (a span): 64 bits, written as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(u64);

impl SpanId {
    /// A fresh random, non-zero id.
    pub fn random() -> Self {
        SpanId(fastrand::u64(1..))
    }

    /// The id as a number; never 0.
    pub(crate) fn get(self) -> u64 {
        self.0
    }

    /// An id from a number; 0 is not an id.
    pub(crate) fn new(id: u64) -> Option<Self> {
        (id != 0).then_some(SpanId(id))
    }

    fn to_wire(self) -> Option<NonZeroU64> {
        NonZeroU64::new(self.0)
    }

    /// The id a header value carries: an integer, or 16 hex digits.
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::String(text) => text.as_str()?.parse().ok(),
            number => SpanId::new(number.as_u64()?),
        }
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for SpanId {
    type Err = ContextError;

    fn from_str(text: &str) -> Result<Self, ContextError> {
        let bad = || ContextError::new(format!("{text:?} is not a span id (16 hex digits)"));
        if text.len() != 16 {
            return Err(bad());
        }
        match u64::from_str_radix(text, 16) {
            Ok(0) => Err(ContextError::new("the all-zero span id is invalid")),
            Ok(n) => Ok(SpanId(n)),
            Err(_) => Err(bad()),
        }
    }
}

/// A malformed trace id, span id or `traceparent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextError(String);

impl ContextError {
    fn new(message: impl Into<String>) -> Self {
        ContextError(message.into())
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ContextError {}

/// Where a call stands in its trace: the trace, its own span and the span
/// it was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// The trace.
    pub trace_id: TraceId,
    /// This call's span.
    pub span_id: SpanId,
    /// The span of the call being served when this call was made; `None`
    /// for a root call.
    pub parent_span_id: Option<SpanId>,
}

impl SpanContext {
    /// A root call of a fresh trace.
    pub fn root() -> Self {
        SpanContext {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
        }
    }

    /// A call made while this one is served: same trace, fresh span, this
    /// span as parent.
    pub fn child(&self) -> Self {
        SpanContext {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent_span_id: Some(self.span_id),
        }
    }

    /// The trace context of a request header, if it carries one: our keys
    /// ([`TRACE_ID_KEY`], [`SPAN_ID_KEY`], [`PARENT_SPAN_ID_KEY`]), else a
    /// W3C `traceparent`, whose parent-id is taken as this call's span (the
    /// span of an OpenTelemetry client making the call). Malformed values
    /// are ignored, as a missing context would be: a peer's bad header
    /// must not fail its call.
    pub fn from_header(header: &Header) -> Option<SpanContext> {
        // The keys in tracing's forms are read already (`Header::trace`);
        // in other forms they are extras: one pass over those rather than
        // a search per key.
        let typed = header.trace;
        let (mut trace, mut span, mut parent, mut traceparent) = (None, None, None, None);
        for (key, value) in &header.extra {
            let slot = match &**key {
                TRACE_ID_KEY => &mut trace,
                SPAN_ID_KEY => &mut span,
                PARENT_SPAN_ID_KEY => &mut parent,
                TRACEPARENT_KEY => &mut traceparent,
                _ => continue,
            };
            // The first of repeated keys counts, as `Header::get` finds it.
            slot.get_or_insert(value);
        }
        let trace_id = typed.trace_id().map(|id| TraceId(id.get())).or_else(|| {
            trace
                .and_then(Value::as_str)
                .and_then(|text| text.parse().ok())
        });
        if let Some(trace_id) = trace_id {
            // A trace id without a span id (a zerorpc-python middleware
            // that passes `trace_id` only) still names the trace; the span
            // then gets an id of its own, stable for the call, derived
            // from its message id so that every reader agrees on it.
            let span_id = typed
                .span_id()
                .map(|id| SpanId(id.get()))
                .or_else(|| span.and_then(SpanId::from_value))
                .unwrap_or_else(|| span_from_message_id(header));
            let parent_span_id = typed
                .parent_span_id()
                .map(|id| SpanId(id.get()))
                .or_else(|| parent.and_then(SpanId::from_value));
            return Some(SpanContext {
                trace_id,
                span_id,
                parent_span_id,
            });
        }
        let parent = parse_traceparent(traceparent?.as_str()?).ok()?;
        Some(SpanContext {
            trace_id: parent.trace_id,
            span_id: parent.span_id,
            parent_span_id: None,
        })
    }

    /// The context of the call the current task serves, if it is traced.
    pub fn current() -> Option<SpanContext> {
        CallContext::current().and_then(|ctx| SpanContext::from_header(ctx.header()))
    }

    /// Writes this context's keys into a header.
    pub fn write(&self, header: &mut Header) {
        header.set_trace(TraceKeys::new(
            self.trace_id.to_wire(),
            self.span_id.to_wire(),
            self.parent_span_id.and_then(SpanId::to_wire),
        ));
    }

    /// This call as a W3C `traceparent` (version 00, sampled): what a
    /// program continuing the trace as a child of this call is given.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id.to_hex(), self.span_id)
    }
}

fn span_from_message_id(header: &Header) -> SpanId {
    // FNV-1a over the id's bytes: a stable, dependency-free hash.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in header.message_id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    SpanId(hash.max(1))
}

/// The trace and span a W3C `traceparent` names (its parent-id as the span).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace-id.
    pub trace_id: TraceId,
    /// The parent-id: the span of the caller.
    pub span_id: SpanId,
}

/// Parses a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`). Later
/// versions are read by the version 00 layout, as the specification asks.
pub fn parse_traceparent(text: &str) -> Result<TraceParent, ContextError> {
    let bad = |why: &str| ContextError::new(format!("traceparent {text:?}: {why}"));
    let mut parts = text.trim().split('-');
    let (Some(version), Some(trace), Some(span), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected VERSION-TRACEID-PARENTID-FLAGS"));
    };
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(version, 2) || version == "ff" {
        return Err(bad("invalid version"));
    }
    if version == "00" && parts.next().is_some() {
        return Err(bad("version 00 has four fields"));
    }
    if !hex(trace, 32) || !hex(flags, 2) {
        return Err(bad("invalid trace-id or flags"));
    }
    Ok(TraceParent {
        trace_id: trace.parse().map_err(|e: ContextError| bad(&e.0))?,
        span_id: span.parse().map_err(|e: ContextError| bad(&e.0))?,
    })
}

#[cfg(test)]
mod tests;
