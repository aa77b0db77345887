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

use zerorpc::transport::PeerSlot;
use zerorpc::wire::Event;
use zerorpc::{CallWatcher, WatchedCall};

use crate::context::SpanContext;
use crate::observer::{CallPeer, CallTable, OpenCall, ends_call};
use crate::propagation::take_written;
use crate::report::{Direction, Side, now_us};
use crate::tracer::{Outgoing, ReportQueue};

/// Reports the traced calls of one client; its open calls are numbered.
pub(crate) struct ClientWatcher {
    state: Arc<Watching>,
}

struct Watching {
    queue: Arc<ReportQueue>,
    calls: Arc<CallTable<u64>>,
}

impl ClientWatcher {
    pub(crate) fn new(queue: Arc<ReportQueue>) -> Self {
        ClientWatcher {
            state: Arc::new(Watching {
                queue,
                calls: Arc::default(),
            }),
        }
    }

    /// The client's open calls, for the reporter to sweep.
    pub(crate) fn calls(&self) -> &Arc<CallTable<u64>> {
        &self.state.calls
    }
}

impl CallWatcher for ClientWatcher {
    fn watch(&self, request: &Event) -> Option<Box<dyn WatchedCall>> {
        let span =
            take_written(&request.header).or_else(|| SpanContext::from_header(&request.header))?;
        let method = self.state.calls.lock().method(&request.name);
        Some(Box::new(ClientCall {
            state: self.state.clone(),
            call: Some(Pending { span, method }),
            key: None,
        }))
    }
}

/// What a call is until its request is sent.
struct Pending {
    span: SpanContext,
    method: Arc<str>,
}

struct ClientCall {
    state: Arc<Watching>,
    /// Until sent.
    call: Option<Pending>,
    /// Its key in the open calls, once sent; taken out with the last reply.
    key: Option<u64>,
}

impl WatchedCall for ClientCall {
    fn sent(&mut self, peer: PeerSlot) {
        let Some(Pending { span, method }) = self.call.take() else {
            return;
        };
        let call = OpenCall {
            span,
            method,
            side: Side::Client,
            peer: CallPeer::Slot(peer),
            started_us: now_us(),
            reported: false,
        };
        let mut open = self.state.calls.lock();
        let key = open.next_key;
        open.next_key += 1;
        open.calls.insert(key, call);
        self.key = Some(key);
    }

    fn replied(&mut self, reply: &Event) {
        let Some(key) = self.key else {
            return;
        };
        let last = ends_call(reply);
        let now = now_us();
        let mut open = self.state.calls.lock();
        let mut ended: Option<OpenCall>;
        let call = if last {
            self.key = None;
            ended = open.calls.remove(&key);
            ended.as_mut()
        } else {
            open.calls.get_mut(&key)
        };
        let Some(call) = call else {
            return;
        };
        let record = call.reply(reply, Direction::Received, call.peer.as_ref(), now);
        call.queue_reply(&self.state.queue, &record);
        call.reported = true;
    }
}

impl Drop for ClientCall {
    /// A call ended without its last reply (timed out, lost, given up):
    /// its request is reported if that is still due, so its trace shows it
    /// pending.
    fn drop(&mut self) {
        let Some(key) = self.key else {
            return;
        };
        let call = self.state.calls.lock().calls.remove(&key);
        if let Some(call) = call
            && !call.reported
        {
            self.state.queue.push(Outgoing::One(&call.request()));
        }
    }
}
