//! The transport observer that turns traced events into reports.
//!
//! It runs on a socket's I/O thread, so it does as little as it can: it
//! remembers the open traced calls of its socket (to attribute replies,
//! which a zerorpc-python server sends without trace keys, and to time
//! them) and hands reports to the [`ReportQueue`](crate::tracer) without
//! ever waiting.
//!
//! A call's request is not reported when it passes: its first reply
//! reports it too, in one record (see `record.rs`), which halves what
//! reporting costs the processes and the collector. A call left
//! unanswered for [`UNANSWERED`](crate::tracer::UNANSWERED), or ended
//! without a reply (timed out, its channel closed), or still open when its
//! socket closes or the tracer is flushed, has its request reported on its
//! own, so its trace shows it pending.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use zerorpc::transport::{
    ChangeKind, ChannelChange, Direction as WireDirection, EventInfo, Observer, Peer, PeerSlot,
    SocketKind,
};
use zerorpc::wire::{Event, MessageId, names};

use crate::context::SpanContext;
use crate::record::{PeerRef, Record};
use crate::report::{Direction, Kind, Side, now_us};
use crate::tracer::{Outgoing, ReportQueue};

/// A traced call open on the observed socket, or watched by its client.
pub(crate) struct OpenCall {
    pub(crate) span: SpanContext,
    pub(crate) method: Arc<str>,
    pub(crate) side: Side,
    /// Who the request came from or went to, kept to report the request
    /// on its own (a routing id is kept inline, an endpoint shared: no
    /// allocation).
    pub(crate) peer: CallPeer,
    /// When the request was received (servers) or sent (clients).
    pub(crate) started_us: u64,
    /// Whether the request has been reported.
    pub(crate) reported: bool,
}

/// Where a call's request came from or went to.
pub(crate) enum CallPeer {
    /// As an observer saw it.
    Seen(Peer),
    /// As the socket tells it (a client's once it sent the request).
    Slot(PeerSlot),
}

impl CallPeer {
    pub(crate) fn as_ref(&self) -> PeerRef<'_> {
        match self {
            CallPeer::Seen(peer) => peer_ref(peer),
            CallPeer::Slot(slot) => slot.get().map_or(PeerRef::Unknown, peer_ref),
        }
    }
}

impl OpenCall {
    /// The report of the call's request.
    pub(crate) fn request(&self) -> Record<'_> {
        Record {
            span: &self.span,
            kind: Kind::Call,
            side: self.side,
            direction: match self.side {
                Side::Client => Direction::Sent,
                Side::Server | Side::Relay => Direction::Received,
            },
            name: &self.method,
            method: &self.method,
            error: None,
            peer: self.peer.as_ref(),
            timestamp_us: self.started_us,
            exec_us: None,
        }
    }

    /// Reports `reply`, which passed in `direction` to or from `peer`
    /// (`None`: the call's), with the call's request in one record if
    /// that is still due.
    pub(crate) fn report_reply(
        &mut self,
        reply: &Event,
        direction: Direction,
        peer: Option<PeerRef<'_>>,
        queue: &ReportQueue,
    ) {
        let now = now_us();
        let record = self.reply(reply, direction, peer.unwrap_or(self.peer.as_ref()), now);
        if self.reported {
            queue.push(Outgoing::One(&record));
        } else {
            queue.push(Outgoing::Answered(&record, self.started_us));
        }
        self.reported = true;
    }

    /// Reports the request of a call that ended without its last reply
    /// (timed out, lost, given up), if that is still due: its trace shows
    /// it pending.
    pub(crate) fn end(self, queue: &ReportQueue) {
        if !self.reported {
            queue.push(Outgoing::One(&self.request()));
        }
    }

    /// The report of `reply`, which passed at `now` in `direction`.
    fn reply<'a>(
        &'a self,
        reply: &'a Event,
        direction: Direction,
        peer: PeerRef<'a>,
        now: u64,
    ) -> Record<'a> {
        let exec_us = (ends_call(reply) && self.side == Side::Server)
            .then(|| now.saturating_sub(self.started_us));
        let call = Call {
            span: &self.span,
            kind: Kind::Reply,
            side: self.side,
            method: &self.method,
        };
        record(reply, direction, peer, call, now, exec_us)
    }
}

/// The record of `event`, which passed at `now` in `direction` to or from
/// `peer`, as part of the call `call`.
pub(crate) fn record<'a>(
    event: &'a Event,
    direction: Direction,
    peer: PeerRef<'a>,
    call: Call<'a>,
    now: u64,
    exec_us: Option<u64>,
) -> Record<'a> {
    let error = (event.name == names::ERR).then(|| {
        event
            .args
            .as_array()
            .and_then(|args| args.first())
            .and_then(|name| name.as_str())
            .unwrap_or("RemoteError")
    });
    Record {
        span: call.span,
        kind: call.kind,
        side: call.side,
        direction,
        name: &event.name,
        method: call.method,
        error,
        peer,
        timestamp_us: now,
        exec_us,
    }
}

/// Whether `reply` is its call's last.
pub(crate) fn ends_call(reply: &Event) -> bool {
    matches!(&*reply.name, names::OK | names::ERR | names::STREAM_DONE)
}

fn direction(direction: WireDirection) -> Direction {
    match direction {
        WireDirection::Sent => Direction::Sent,
        WireDirection::Received => Direction::Received,
    }
}

/// The report's view of a peer.
fn peer_ref(peer: &Peer) -> PeerRef<'_> {
    match peer {
        Peer::RoutingId(id) => PeerRef::RoutingId(id),
        Peer::Endpoint(endpoint) => PeerRef::Endpoint(endpoint),
        _ => PeerRef::Unknown,
    }
}

/// The open calls an observer sees, by channel id.
pub(crate) struct Open<K> {
    pub(crate) calls: HashMap<K, OpenCall, foldhash::fast::RandomState>,
    /// The call an observer saw open last, kept out of `calls`: a server
    /// answering on its I/O thread opens and answers each call before the
    /// next arrives, and so never hashes a channel id (see
    /// [`Open::open`]).
    recent: Option<(K, OpenCall)>,
    pub(crate) methods: Methods,
}

impl<K> Default for Open<K> {
    fn default() -> Self {
        Open {
            calls: HashMap::default(),
            recent: None,
            methods: Methods::default(),
        }
    }
}

impl<K: Hash + Eq> Open<K> {
    /// Keeps `call` open as the most recent; the one it displaces goes to
    /// the map.
    pub(crate) fn open(&mut self, key: K, call: OpenCall) {
        if let Some((displaced_key, displaced)) = self.recent.take()
            && displaced_key != key
        {
            self.calls.insert(displaced_key, displaced);
        }
        self.recent = Some((key, call));
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut OpenCall> {
        match &mut self.recent {
            Some((recent, call)) if recent == key => Some(call),
            _ => self.calls.get_mut(key),
        }
    }

    /// Reports `reply`, which passed in `direction`, as part of the call
    /// `key` (with the call's request, in one record, if that is still
    /// due), and takes the call out if it was the last. `peer` is the
    /// reply's other end; `None`, the call's.
    pub(crate) fn report_reply(
        &mut self,
        key: &K,
        reply: &Event,
        direction: Direction,
        peer: Option<PeerRef<'_>>,
        queue: &ReportQueue,
    ) {
        // The last reply takes the call out: one lookup, not two.
        let mut ended: Option<OpenCall>;
        let call = if ends_call(reply) {
            ended = self.remove(key);
            ended.as_mut()
        } else {
            self.get_mut(key)
        };
        if let Some(call) = call {
            call.report_reply(reply, direction, peer, queue);
        }
    }

    /// Takes out the call `key`, which ended without its last reply (timed
    /// out, lost, given up), reporting its request if that is still due:
    /// its trace shows it pending.
    pub(crate) fn end(&mut self, key: &K, queue: &ReportQueue) {
        if let Some(call) = self.remove(key) {
            call.end(queue);
        }
    }

    /// Takes the call `key` out. A channel id opened again while its first
    /// call was still open (a peer reusing ids) leaves nothing behind:
    /// the earlier call is forgotten, as a map insert would replace it.
    fn remove(&mut self, key: &K) -> Option<OpenCall> {
        let recent = match &self.recent {
            Some((recent, _)) if recent == key => self.recent.take().map(|(_, call)| call),
            _ => None,
        };
        if self.calls.is_empty() {
            return recent;
        }
        let in_map = self.calls.remove(key);
        recent.or(in_map)
    }
}

/// Method names kept for sharing; past this (a peer calling made-up
/// names), each call gets its own copy.
const SHARED_METHODS: usize = 1024;

/// The names of the methods called: a service has a handful, so each
/// call shares its method's name rather than copying it.
#[derive(Default)]
pub(crate) struct Methods {
    shared: HashSet<Arc<str>, foldhash::fast::RandomState>,
    /// The method shared last, one of `shared`.
    last: Option<Arc<str>>,
}

impl Methods {
    pub(crate) fn share(&mut self, name: &str) -> Arc<str> {
        // Calls in a row mostly call one method: a comparison, where the
        // set's lookup hashes the name.
        if let Some(last) = &self.last
            && **last == *name
        {
            return Arc::clone(last);
        }
        if let Some(shared) = self.shared.get(name) {
            let shared = Arc::clone(shared);
            self.last = Some(Arc::clone(&shared));
            return shared;
        }
        let name: Arc<str> = Arc::from(name);
        if self.shared.len() < SHARED_METHODS {
            self.shared.insert(Arc::clone(&name));
            self.last = Some(Arc::clone(&name));
        }
        name
    }
}

/// One socket's (or client's) open calls, shared with the reporter
/// thread, which sweeps them for calls left unanswered.
pub(crate) struct CallTable<T> {
    open: Mutex<T>,
}

impl<T: Default> Default for CallTable<T> {
    fn default() -> Self {
        CallTable {
            open: Mutex::new(T::default()),
        }
    }
}

impl<T> CallTable<T> {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A table of open calls, as the sweep goes through it.
pub(crate) trait OpenCalls {
    /// Calls `f` with every open call.
    fn for_each(&mut self, f: &mut dyn FnMut(&mut OpenCall));
}

impl<K> OpenCalls for Open<K> {
    fn for_each(&mut self, f: &mut dyn FnMut(&mut OpenCall)) {
        let recent = self.recent.as_mut().map(|(_, call)| call);
        self.calls.values_mut().chain(recent).for_each(f);
    }
}

/// Tables of open calls the reporter sweeps for calls left unanswered.
pub(crate) trait Sweep: Send + Sync {
    /// Reports the requests of the calls opened before `before_us` whose
    /// requests have not been reported yet.
    fn report_unanswered(&self, before_us: u64, report: &mut dyn FnMut(Outgoing<'_>));
}

impl<T: OpenCalls + Send> Sweep for CallTable<T> {
    fn report_unanswered(&self, before_us: u64, report: &mut dyn FnMut(Outgoing<'_>)) {
        self.lock().for_each(&mut |call| {
            if !call.reported && call.started_us < before_us {
                call.reported = true;
                report(Outgoing::One(&call.request()));
            }
        });
    }
}

/// The call an event belongs to, as a report names it.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) span: &'a SpanContext,
    pub(crate) kind: Kind,
    pub(crate) side: Side,
    pub(crate) method: &'a str,
}

pub(crate) struct TraceObserver {
    queue: Arc<ReportQueue>,
    calls: Arc<CallTable<Open<MessageId>>>,
}

impl TraceObserver {
    pub(crate) fn new(queue: Arc<ReportQueue>) -> Self {
        TraceObserver {
            queue,
            calls: Arc::default(),
        }
    }

    /// The observer's open calls, for the reporter to sweep.
    pub(crate) fn calls(&self) -> &Arc<CallTable<Open<MessageId>>> {
        &self.calls
    }

    fn opened(&self, info: &EventInfo, side: Side) {
        let (Some(channel), Some(span)) =
            (&info.channel, SpanContext::from_header(&info.event.header))
        else {
            return;
        };
        let now = now_us();
        let mut open = self.calls.lock();
        let method = open.methods.share(&info.event.name);
        open.open(
            channel.clone(),
            OpenCall {
                span,
                method,
                side,
                peer: CallPeer::Seen(info.peer.clone()),
                started_us: now,
                reported: false,
            },
        );
    }

    fn replied(&self, info: &EventInfo) {
        if let Some(channel) = &info.channel {
            self.calls.lock().report_reply(
                channel,
                &info.event,
                direction(info.direction),
                Some(peer_ref(&info.peer)),
                &self.queue,
            );
        }
    }
}

impl Drop for TraceObserver {
    fn drop(&mut self) {
        // The socket is gone: its unanswered calls will never be.
        let queue = &self.queue;
        self.calls
            .report_unanswered(u64::MAX, &mut |report| queue.push(report));
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
            (SocketKind::Client, WireDirection::Received) => self.replied(info),
            (SocketKind::Server, WireDirection::Sent) => self.replied(info),
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
        if let (ChangeKind::Closed(..), Some(channel)) = (&change.change, &change.channel) {
            self.calls.lock().end(channel, &self.queue);
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
            self.queue.push(Outgoing::One(&record(
                &info.event,
                direction(info.direction),
                peer_ref(&info.peer),
                event,
                now_us(),
                None,
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(started_us: u64) -> OpenCall {
        OpenCall {
            span: SpanContext::root(),
            method: Arc::from("m"),
            side: Side::Server,
            peer: CallPeer::Seen(Peer::Unknown),
            started_us,
            reported: false,
        }
    }

    fn unanswered(table: &CallTable<Open<u64>>) -> Vec<u64> {
        let mut seen = Vec::new();
        table.report_unanswered(u64::MAX, &mut |report| {
            if let Outgoing::One(record) = report {
                seen.push(record.timestamp_us);
            }
        });
        seen.sort_unstable();
        seen
    }

    #[test]
    fn calls_opened_one_after_another_are_found_in_the_slot_or_the_map() {
        let table = CallTable::<Open<u64>>::default();
        {
            let mut open = table.lock();
            open.open(1, call(10));
            open.open(2, call(20));
            assert!(open.calls.contains_key(&1), "the displaced call is mapped");
            assert_eq!(open.get_mut(&2).map(|c| c.started_us), Some(20));
            assert_eq!(open.get_mut(&1).map(|c| c.started_us), Some(10));
            assert!(open.get_mut(&3).is_none());
        }
        assert_eq!(unanswered(&table), [10, 20], "the sweep sees both");
        let mut open = table.lock();
        assert_eq!(open.remove(&2).map(|c| c.started_us), Some(20));
        assert_eq!(open.remove(&1).map(|c| c.started_us), Some(10));
        assert!(open.remove(&1).is_none() && open.calls.is_empty());
    }

    #[test]
    fn an_id_opened_again_while_open_leaves_nothing_behind() {
        let table = CallTable::<Open<u64>>::default();
        let mut open = table.lock();
        open.open(1, call(10));
        open.open(2, call(20));
        // Call 1 is in the map; a peer opens id 1 again.
        open.open(1, call(30));
        assert_eq!(open.remove(&1).map(|c| c.started_us), Some(30));
        assert!(
            !open.calls.contains_key(&1),
            "the earlier call is forgotten"
        );
        // Reopened while it is the most recent: replaced in place.
        open.open(2, call(40));
        assert_eq!(open.remove(&2).map(|c| c.started_us), Some(40));
        assert!(open.calls.is_empty() && open.recent.is_none());
    }
}
