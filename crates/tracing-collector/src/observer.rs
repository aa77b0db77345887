//! The transport observer that turns traced events into reports.
//!
//! It runs on a socket's I/O thread, so it does as little as it can: it
//! remembers the open traced calls of its socket (to attribute replies,
//! which a zerorpc-python server sends without trace keys, and to time
//! them) and hands reports to the [`ReportQueue`](crate::tracer) without
//! ever waiting.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use zerorpc::transport::{
    ChangeKind, ChannelChange, Direction as WireDirection, EventInfo, Observer, Peer, SocketKind,
};
use zerorpc::wire::{MessageId, names};

use crate::context::SpanContext;
use crate::record::{PeerRef, Record};
use crate::report::{Direction, Kind, Side, now_us};
use crate::tracer::ReportQueue;

/// A traced call open on the observed socket.
struct OpenCall {
    span: SpanContext,
    method: Arc<str>,
    /// When the request was received (servers) or sent (clients).
    started_us: u64,
}

/// The open calls, and the names of the methods called: a service has a
/// handful, so each call shares its method's name rather than copying it.
#[derive(Default)]
struct Open {
    calls: HashMap<MessageId, OpenCall, foldhash::fast::RandomState>,
    methods: HashSet<Arc<str>, foldhash::fast::RandomState>,
}

/// Method names kept for sharing; past this (a peer calling made-up
/// names), each call gets its own copy.
const SHARED_METHODS: usize = 1024;

impl Open {
    fn method(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.methods.get(name) {
            return Arc::clone(shared);
        }
        let name: Arc<str> = Arc::from(name);
        if self.methods.len() < SHARED_METHODS {
            self.methods.insert(Arc::clone(&name));
        }
        name
    }
}

/// The call an event belongs to, as a report names it.
#[derive(Clone, Copy)]
struct Call<'a> {
    span: &'a SpanContext,
    kind: Kind,
    side: Side,
    method: &'a str,
}

pub(crate) struct TraceObserver {
    queue: Arc<ReportQueue>,
    open: Mutex<Open>,
}

impl TraceObserver {
    pub(crate) fn new(queue: Arc<ReportQueue>) -> Self {
        TraceObserver {
            queue,
            open: Mutex::new(Open::default()),
        }
    }

    /// Reports `info`'s event as part of the call `span`.
    fn report(&self, info: &EventInfo, call: Call<'_>, now: u64, exec_us: Option<u64>) {
        let event = &info.event;
        let error = (event.name == names::ERR).then(|| {
            event
                .args
                .as_array()
                .and_then(|args| args.first())
                .and_then(|name| name.as_str())
                .unwrap_or("RemoteError")
        });
        self.queue.push(&Record {
            span: call.span,
            kind: call.kind,
            side: call.side,
            direction: match info.direction {
                WireDirection::Sent => Direction::Sent,
                WireDirection::Received => Direction::Received,
            },
            name: &event.name,
            method: call.method,
            error,
            peer: match &info.peer {
                Peer::RoutingId(id) => PeerRef::RoutingId(id),
                Peer::Endpoint(endpoint) => PeerRef::Endpoint(endpoint),
                _ => PeerRef::Unknown,
            },
            timestamp_us: now,
            exec_us,
        });
    }

    fn opened(&self, info: &EventInfo, side: Side) {
        let (Some(channel), Some(span)) =
            (&info.channel, SpanContext::from_header(&info.event.header))
        else {
            return;
        };
        let now = now_us();
        let method = info.event.name.as_str();
        let call = Call {
            span: &span,
            kind: Kind::Call,
            side,
            method,
        };
        self.report(info, call, now, None);
        let mut open = self.lock();
        let method = open.method(method);
        open.calls.insert(
            channel.clone(),
            OpenCall {
                span,
                method,
                started_us: now,
            },
        );
    }

    fn replied(&self, info: &EventInfo, side: Side) {
        let Some(channel) = &info.channel else {
            return;
        };
        let last = matches!(
            info.event.name.as_str(),
            names::OK | names::ERR | names::STREAM_DONE
        );
        let now = now_us();
        let mut open = self.lock();
        let Some(call) = open.calls.get(channel) else {
            return;
        };
        let exec_us = (last && side == Side::Server).then(|| now.saturating_sub(call.started_us));
        let reply = Call {
            span: &call.span,
            kind: Kind::Reply,
            side,
            method: &call.method,
        };
        self.report(info, reply, now, exec_us);
        if last {
            open.calls.remove(channel);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Observer for TraceObserver {
    fn on_event(&self, info: &EventInfo) {
        if info.control {
            return;
        }
        let request = info.event.header.response_to.is_none();
        match (info.socket, info.direction) {
            (SocketKind::Client, WireDirection::Sent) if request => self.opened(info, Side::Client),
            (SocketKind::Server, WireDirection::Received) if request => {
                self.opened(info, Side::Server)
            }
            (SocketKind::Client, WireDirection::Received) => self.replied(info, Side::Client),
            (SocketKind::Server, WireDirection::Sent) => self.replied(info, Side::Server),
            (SocketKind::Push | SocketKind::Publish, WireDirection::Sent) => {
                self.one_way(info, Side::Client)
            }
            (SocketKind::Pull | SocketKind::Subscribe, WireDirection::Received) => {
                self.one_way(info, Side::Server)
            }
            _ => {}
        }
    }

    fn on_channel(&self, change: &ChannelChange) {
        // A call that ended without its last reply (timed out, lost, the
        // caller gone) is forgotten; its trace shows it pending.
        if let (ChangeKind::Closed(..), Some(channel)) = (&change.change, &change.channel) {
            self.lock().calls.remove(channel);
        }
    }
}

impl TraceObserver {
    fn one_way(&self, info: &EventInfo, side: Side) {
        if let Some(span) = SpanContext::from_header(&info.event.header) {
            let event = Call {
                span: &span,
                kind: Kind::Event,
                side,
                method: &info.event.name,
            };
            self.report(info, event, now_us(), None);
        }
    }
}
