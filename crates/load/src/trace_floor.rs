//! The floor of tracing: what a traced call cannot do without, for
//! `zerorpc-bench-raw --traced`.
//!
//! A traced call carries its trace context in the header of its request
//! (`trace_id`, a UUID as text, and `span_id`, kept in `Header::trace` as
//! the tracer keeps them) and its reply (the same two, copied back), and
//! each side reports the call once, when its reply passes: a compact
//! record of fixed positions, as `zerorpc --trace-collector`
//! writes them (the trace id as 16 bytes, span ids and timestamps as
//! integers, the method and the peer), gathered into batches that leave
//! every few milliseconds on a PUSH socket for a [`Sink`] that keeps them.
//! Nothing else: no open-call table, no sweep for calls left unanswered,
//! no reporter thread, no collector reading or indexing the records.

use std::collections::VecDeque;
use std::num::{NonZeroU64, NonZeroU128};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use zerorpc::wire::{Header, TraceKeys};

/// How long a batch gathers records before it leaves, in microseconds: as
/// long as the tracer lets reports gather.
const BATCH_US: u64 = 5_000;
/// Records in one batch at most.
const BATCH_RECORDS: usize = 512;
/// What a sink keeps of the latest batches, in bytes.
const SINK_BYTES: usize = 64 << 20;

/// The ids of one traced call.
#[derive(Clone, Copy, Debug)]
pub struct CallIds {
    /// The trace's id.
    pub trace_id: u128,
    /// The call's span.
    pub span_id: u64,
}

impl CallIds {
    /// A new root call, its keys written on `header` (a request's).
    pub fn start(header: &mut Header) -> CallIds {
        let ids = CallIds {
            trace_id: fastrand::u128(1..),
            span_id: fastrand::u64(1..),
        };
        header.trace = TraceKeys::new(
            NonZeroU128::new(ids.trace_id),
            NonZeroU64::new(ids.span_id),
            None,
        );
        ids
    }

    /// The ids a request's header carries, if it is traced.
    pub fn of(header: &Header) -> Option<CallIds> {
        Some(CallIds {
            trace_id: header.trace.trace_id()?.get(),
            span_id: header.trace.span_id()?.get(),
        })
    }
}

/// Copies a request's trace keys onto its reply's header, as a traced
/// server does.
pub fn copy_keys(request: &Header, reply: &mut Header) {
    reply.trace = TraceKeys::new(request.trace.trace_id(), request.trace.span_id(), None);
}

/// One report of a call, made when its reply passed: it stands for the
/// request too, as the tracer's records of answered calls do.
#[derive(Clone, Copy, Debug)]
pub struct CallRecord<'a> {
    /// The call's ids.
    pub ids: CallIds,
    /// Whether the server reports (else the client).
    pub server: bool,
    /// The method called.
    pub method: &'a str,
    /// The other end: a routing id (server) or an endpoint (client).
    pub peer: Peer<'a>,
    /// When the request was sent (client) or received (server).
    pub called_us: u64,
    /// When the reply was sent (server) or received (client).
    pub replied_us: u64,
}

/// The other end of a reported call.
#[derive(Clone, Copy, Debug)]
pub enum Peer<'a> {
    /// A server's peer, by ZeroMQ routing id.
    RoutingId(&'a [u8]),
    /// The endpoint a client connected to.
    Endpoint(&'a str),
}

/// Batches of records on their way to a [`Sink`].
pub struct Reporter {
    push: zmq::Socket,
    batch: Vec<u8>,
    records: usize,
    batch_started_us: u64,
    /// Batches libzmq could not queue (no sink, or one too slow): dropped,
    /// never waited for.
    pub dropped: u64,
}

impl Reporter {
    /// Reports to the sink at `endpoint`.
    pub fn connect(context: &zmq::Context, endpoint: &str) -> anyhow::Result<Reporter> {
        let push = context.socket(zmq::PUSH)?;
        push.set_linger(0)?;
        push.connect(endpoint)
            .with_context(|| format!("cannot connect to the sink at {endpoint}"))?;
        Ok(Reporter {
            push,
            batch: Vec::with_capacity(BATCH_RECORDS * 96),
            records: 0,
            batch_started_us: 0,
            dropped: 0,
        })
    }

    /// Adds `record` to the open batch, which leaves once it is full or
    /// old enough.
    pub fn report(&mut self, record: &CallRecord<'_>) {
        if self.records == 0 {
            self.batch_started_us = record.replied_us;
        }
        record.encode(&mut self.batch);
        self.records += 1;
        if self.records >= BATCH_RECORDS
            || record.replied_us.saturating_sub(self.batch_started_us) >= BATCH_US
        {
            self.flush();
        }
    }

    /// Sends the open batch, if any.
    pub fn flush(&mut self) {
        if self.records == 0 {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_RECORDS * 96));
        self.records = 0;
        if self.push.send(batch, zmq::DONTWAIT).is_err() {
            self.dropped += 1;
        }
    }
}

impl CallRecord<'_> {
    /// The record's msgpack array: trace id, span, parent, kind, side,
    /// direction, name, method, error, peer, timestamp, run time, and the
    /// request's timestamp.
    fn encode(&self, out: &mut Vec<u8>) {
        const NIL: u8 = 0xc0;
        out.push(0x9d);
        out.extend_from_slice(&[0xc4, 16]);
        out.extend_from_slice(&self.ids.trace_id.to_be_bytes());
        uint(out, self.ids.span_id);
        // No parent: a root call. Kind reply, side, direction.
        out.extend_from_slice(&[NIL, 1, u8::from(self.server), u8::from(!self.server)]);
        text(out, "OK");
        text(out, self.method);
        out.push(NIL);
        match self.peer {
            Peer::RoutingId(id) => {
                out.extend_from_slice(&[0xc4, id.len().min(255) as u8]);
                out.extend_from_slice(&id[..id.len().min(255)]);
            }
            Peer::Endpoint(endpoint) => text(out, endpoint),
        }
        uint(out, self.replied_us);
        if self.server {
            uint(out, self.replied_us.saturating_sub(self.called_us));
        } else {
            out.push(NIL);
        }
        uint(out, self.called_us);
    }
}

fn uint(out: &mut Vec<u8>, value: u64) {
    match u32::try_from(value) {
        Ok(small) if small < 0x80 => out.push(small as u8),
        Ok(small) => {
            out.push(0xce);
            out.extend_from_slice(&small.to_be_bytes());
        }
        Err(_) => {
            out.push(0xcf);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// Short text only (method names, endpoints): cut at 255 bytes.
fn text(out: &mut Vec<u8>, text: &str) {
    let bytes = &text.as_bytes()[..text.len().min(255)];
    out.extend_from_slice(&[0xd9, bytes.len() as u8]);
    out.extend_from_slice(bytes);
}

/// Microseconds since the Unix epoch, as reports are stamped.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// Where the floor's reports go: a PULL that keeps the latest batches as
/// they came, up to 64 MiB of them.
pub struct Sink {
    pull: zmq::Socket,
    kept: VecDeque<zmq::Message>,
    kept_bytes: usize,
}

impl Sink {
    /// A sink receiving on `pull` (bound by the caller).
    pub fn new(pull: zmq::Socket) -> Sink {
        Sink {
            pull,
            kept: VecDeque::new(),
            kept_bytes: 0,
        }
    }

    /// Receives batches until the socket fails.
    pub fn run(mut self) -> anyhow::Result<()> {
        loop {
            let mut batch = zmq::Message::new();
            self.pull.recv(&mut batch, 0).context("receiving reports")?;
            self.kept_bytes += batch.len();
            self.kept.push_back(batch);
            while self.kept_bytes > SINK_BYTES {
                let Some(oldest) = self.kept.pop_front() else {
                    break;
                };
                self.kept_bytes -= oldest.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_id_written_on_a_request_reads_back_with_its_span() {
        let mut header = Header::new();
        let ids = CallIds::start(&mut header);
        let read = CallIds::of(&header).expect("traced");
        assert_eq!((read.trace_id, read.span_id), (ids.trace_id, ids.span_id));
        let bytes = zerorpc::wire::Event::new(header, "m", zerorpc::wire::Value::Nil).encode();
        let decoded = zerorpc::wire::Event::decode(&bytes).expect("an event");
        let read = CallIds::of(&decoded.header).expect("traced on the wire");
        assert_eq!((read.trace_id, read.span_id), (ids.trace_id, ids.span_id));
    }

    #[test]
    fn a_reply_carries_its_requests_keys() {
        let mut request = Header::new();
        CallIds::start(&mut request);
        let mut reply = Header::new();
        copy_keys(&request, &mut reply);
        assert_eq!(reply.trace.trace_id(), request.trace.trace_id());
        assert_eq!(reply.trace.span_id(), request.trace.span_id());
        assert_eq!(reply.trace.parent_span_id(), None);
    }

    #[test]
    fn a_record_is_one_msgpack_array_of_thirteen() {
        let record = CallRecord {
            ids: CallIds {
                trace_id: 7,
                span_id: 9,
            },
            server: true,
            method: "echo_inline",
            peer: Peer::RoutingId(&[0, 1, 2, 3, 4]),
            called_us: 1_700_000_000_000_000,
            replied_us: 1_700_000_000_000_120,
        };
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        let value = zerorpc::wire::rmpv::decode::read_value(&mut &bytes[..]).expect("msgpack");
        let fields = value.as_array().expect("an array");
        assert_eq!(fields.len(), 13);
        assert_eq!(fields[7].as_str(), Some("echo_inline"));
        assert_eq!(fields[11].as_u64(), Some(120));
    }
}
