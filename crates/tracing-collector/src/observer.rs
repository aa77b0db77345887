//! The transport observer that turns traced events into reports.
//!
//! It runs on a socket's I/O thread, so it does as little as it can: it
//! remembers the open traced calls of its socket (to attribute replies,
//! which a zerorpc-python server sends without trace keys, and to time
//! them) and hands reports to the [`ReportQueue`](crate::tracer) without
//! ever waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use zerorpc::transport::{
    ChangeKind, ChannelChange, Direction as WireDirection, EventInfo, Observer, SocketKind,
};
use zerorpc::wire::{MessageId, names};

use crate::context::SpanContext;
use crate::report::{Direction, Kind, Report, Side, now_us};
use crate::tracer::ReportQueue;

/// A traced call open on the observed socket.
struct OpenCall {
    span: SpanContext,
    method: String,
    /// When the request was received (servers) or sent (clients).
    started_us: u64,
}

pub(crate) struct TraceObserver {
    queue: Arc<ReportQueue>,
    open: Mutex<HashMap<MessageId, OpenCall>>,
}

impl TraceObserver {
    pub(crate) fn new(queue: Arc<ReportQueue>) -> Self {
        TraceObserver {
            queue,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn report(
        &self,
        info: &EventInfo,
        span: &SpanContext,
        kind: Kind,
        side: Side,
        method: &str,
        now: u64,
    ) -> Report {
        let event = &info.event;
        let error = (event.name == names::ERR).then(|| {
            event
                .args
                .as_array()
                .and_then(|args| args.first())
                .and_then(|name| name.as_str())
                .unwrap_or("RemoteError")
                .to_owned()
        });
        Report {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent_span_id: span.parent_span_id,
            kind,
            side,
            direction: match info.direction {
                WireDirection::Sent => Direction::Sent,
                WireDirection::Received => Direction::Received,
            },
            name: event.name.clone(),
            method: method.to_owned(),
            error,
            process: self.queue.process().to_owned(),
            peer: info.peer.to_string(),
            timestamp_us: now,
            exec_us: None,
        }
    }

    fn opened(&self, info: &EventInfo, side: Side) {
        let (Some(channel), Some(span)) =
            (&info.channel, SpanContext::from_header(&info.event.header))
        else {
            return;
        };
        let now = now_us();
        let method = info.event.name.clone();
        self.queue
            .push(self.report(info, &span, Kind::Call, side, &method, now));
        self.lock().insert(
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
        let Some(call) = open.get(channel) else {
            return;
        };
        let mut report = self.report(info, &call.span, Kind::Reply, side, &call.method, now);
        if last && side == Side::Server {
            report.exec_us = Some(now.saturating_sub(call.started_us));
        }
        if last {
            open.remove(channel);
        }
        drop(open);
        self.queue.push(report);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, OpenCall>> {
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
            self.lock().remove(channel);
        }
    }
}

impl TraceObserver {
    fn one_way(&self, info: &EventInfo, side: Side) {
        if let Some(span) = SpanContext::from_header(&info.event.header) {
            let method = info.event.name.clone();
            self.queue
                .push(self.report(info, &span, Kind::Event, side, &method, now_us()));
        }
    }
}
