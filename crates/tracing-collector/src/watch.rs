//! Clients' calls reported from the calls themselves.
//!
//! A client's call knows its request, its replies and its end as they
//! happen, on the caller's thread: watching it there (core's
//! [`CallWatcher`]) costs a client no observer on its socket's I/O thread,
//! which would see every event, build a view of each, move every request
//! to that thread for it and keep a map of open calls by channel to tell
//! replies apart. What is reported is what an observer reports (see
//! `observer.rs`): the request with the first reply in one record, or on
//! its own once the call has waited [`UNANSWERED`](crate::tracer::UNANSWERED)
//! or ended without a reply.

use std::sync::Arc;

use slab::Slab;

use zerorpc::transport::PeerSlot;
use zerorpc::wire::Event;
use zerorpc::{CallWatcher, WatchedCall};

use crate::context::SpanContext;
use crate::observer::{Call, CallPeer, CallTable, Methods, OpenCall, OpenCalls, ends_call, record};
use crate::propagation::take_written;
use crate::report::{Direction, Kind, Side, now_us};
use crate::tracer::{Outgoing, ReportQueue};

/// Reports the traced calls of one client or server; its open calls are
/// numbered.
pub(crate) struct Watcher {
    state: Arc<Watching>,
}

struct Watching {
    queue: Arc<ReportQueue>,
    calls: Arc<CallTable<Numbered>>,
    side: Side,
}

/// A watcher's open calls, each under the key of its slot: opened and
/// taken out without hashing anything.
#[derive(Default)]
pub(crate) struct Numbered {
    calls: Slab<OpenCall>,
    methods: Methods,
}

impl Numbered {
    /// Reports `reply`, which passed in `direction`, as part of the call
    /// `key`, and takes the call out if it was the last.
    fn report_reply(
        &mut self,
        key: usize,
        reply: &Event,
        direction: Direction,
        queue: &ReportQueue,
    ) {
        if ends_call(reply) {
            if let Some(mut call) = self.calls.try_remove(key) {
                call.report_reply(reply, direction, None, queue);
            }
        } else if let Some(call) = self.calls.get_mut(key) {
            call.report_reply(reply, direction, None, queue);
        }
    }
}

impl OpenCalls for Numbered {
    fn for_each(&mut self, f: &mut dyn FnMut(&mut OpenCall)) {
        for (_, call) in &mut self.calls {
            f(call);
        }
    }
}

impl Watcher {
    /// A watcher of a client's calls (`Side::Client`) or of those a server
    /// serves (`Side::Server`).
    pub(crate) fn new(queue: Arc<ReportQueue>, side: Side) -> Self {
        Watcher {
            state: Arc::new(Watching {
                queue,
                calls: Arc::default(),
                side,
            }),
        }
    }

    /// The open calls, for the reporter to sweep.
    pub(crate) fn calls(&self) -> &Arc<CallTable<Numbered>> {
        &self.state.calls
    }
}

impl Watching {
    /// The span of the call `request` makes.
    #[inline]
    fn span_of(&self, request: &Event) -> Option<SpanContext> {
        match self.side {
            // The context the client's propagation has just written.
            Side::Client => take_written(&request.header),
            Side::Server | Side::Relay => None,
        }
        .or_else(|| SpanContext::from_header(&request.header))
    }
}

impl CallWatcher for Watcher {
    fn watch(&self, request: &Event) -> Option<Box<dyn WatchedCall>> {
        let span = self.state.span_of(request)?;
        let method = self.state.calls.lock().methods.share(&request.name);
        Some(Box::new(Watched {
            state: self.state.clone(),
            call: Some(Pending {
                span,
                method,
                started_us: now_us(),
            }),
            key: None,
        }))
    }

    /// A served call opens at once, under one lock of the table rather
    /// than one to share its method's name and one to open it.
    fn watch_served(&self, request: &Event, peer: PeerSlot) -> Option<Box<dyn WatchedCall>> {
        let state = &self.state;
        let span = state.span_of(request)?;
        let started_us = now_us();
        let key = {
            let mut open = state.calls.lock();
            let method = open.methods.share(&request.name);
            let pending = Pending {
                span,
                method,
                started_us,
            };
            open.calls
                .insert(pending.into_open(state.side, CallPeer::Slot(peer)))
        };
        Some(Box::new(Watched {
            state: self.state.clone(),
            call: None,
            key: Some(key),
        }))
    }

    /// A call answered at once is reported with its reply, in one record,
    /// as any call answered before the reporter's sweep would be: it
    /// never enters the table of open calls (no lock, no box, no shared
    /// method name), since no sweep could find it unanswered before it
    /// returns.
    fn serve_at_once(
        &self,
        request: &mut Event,
        peer: PeerSlot,
        serve: &mut dyn FnMut(&mut Event) -> Event,
    ) -> Event {
        let state = &self.state;
        // Read before serving, which takes the request's extra keys (a
        // W3C `traceparent` among them).
        let Some(span) = state.span_of(request) else {
            return serve(request);
        };
        let started_us = now_us();
        let reply = serve(request);
        let now = now_us();
        let exec_us = (ends_call(&reply) && state.side == Side::Server)
            .then(|| now.saturating_sub(started_us));
        let call = Call {
            span: &span,
            kind: Kind::Reply,
            side: state.side,
            method: &request.name,
        };
        let peer = CallPeer::Slot(peer);
        let reply_record = record(&reply, Direction::Sent, peer.as_ref(), call, now, exec_us);
        state
            .queue
            .push(Outgoing::Answered(&reply_record, started_us));
        reply
    }
}

/// A watched call until it is routed: what its open call will hold.
struct Pending {
    span: SpanContext,
    method: Arc<str>,
    started_us: u64,
}

impl Pending {
    fn into_open(self, side: Side, peer: CallPeer) -> OpenCall {
        OpenCall {
            span: self.span,
            method: self.method,
            side,
            peer,
            started_us: self.started_us,
            reported: false,
        }
    }
}

/// One watched call: held here until routed, then among the open calls
/// (where the reporter's sweep finds it) until its last reply.
struct Watched {
    state: Arc<Watching>,
    /// Until routed.
    call: Option<Pending>,
    /// Its key among the open calls once routed; taken out with the last
    /// reply.
    key: Option<usize>,
}

impl WatchedCall for Watched {
    fn routed(&mut self, peer: PeerSlot) {
        let Some(pending) = self.call.take() else {
            return;
        };
        let state = &self.state;
        let call = pending.into_open(state.side, CallPeer::Slot(peer));
        self.key = Some(state.calls.lock().calls.insert(call));
    }

    fn replied(&mut self, reply: &Event) {
        // Not routed: a client's request never sent.
        let Some(key) = self.key else {
            return;
        };
        if ends_call(reply) {
            self.key = None;
        }
        let direction = match self.state.side {
            Side::Client => Direction::Received,
            Side::Server | Side::Relay => Direction::Sent,
        };
        let state = &self.state;
        state
            .calls
            .lock()
            .report_reply(key, reply, direction, &state.queue);
    }
}

impl Drop for Watched {
    /// A call ended without its last reply (timed out, lost, given up,
    /// cancelled): its request is reported if that is still due, so its
    /// trace shows it pending. A request never routed was never sent:
    /// nothing to report.
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let state = &self.state;
            let call = state.calls.lock().calls.try_remove(key);
            if let Some(call) = call {
                call.end(&state.queue);
            }
        }
    }
}
