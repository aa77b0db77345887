//! Drives a running queue hub with frame sequences read from arbitrary
//! bytes: what the fuzz target `hub` (in `fuzz/`) and a randomized test
//! run. Not part of the API: it may change with any release.
//!
//! One hub is started per process, with small limits and a short queue
//! timeout so that every policy is reached quickly, and with two clients
//! and two workers connected over TCP on 127.0.0.1 that live as long as
//! it. The bytes are read as a sequence of operations, each something a
//! peer can do: send raw frames; send an event built from a few
//! well-chosen parts (calls, replies, stream items, credit and heartbeats
//! on channels that exist, ended or never were, behind envelopes the
//! workers really received or made up); read what is waiting; reconnect;
//! let a little time pass so that timeouts fire.
//!
//! Every input ends with a call from the first client that a worker
//! answers. Its reply proves that the hub is alive and routing, and,
//! since ZeroMQ keeps one connection's messages in order, that the hub has
//! handled everything the client sent before it: a panic in the hub
//! (which a fuzzer turns into an abort) is then charged to the input that
//! caused it.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use zerorpc_wire::fuzzing::{self, Input};
use zerorpc_wire::{Event, Header, IdKind, MessageId, Value, names};

use crate::{Hub, HubConfig, HubKind};

/// How long the closing call may take before the hub counts as stuck.
/// Far beyond a healthy hub's sub-millisecond answer, so that a loaded
/// machine never makes a false alarm.
const STUCK: Duration = Duration::from_secs(20);

/// Method of the call that closes every input.
const PROBE: &str = "fuzz_probe";

/// Clients and workers kept connected to the hub.
const PEERS: usize = 2;

/// Channel ids the built events draw from, so that they meet.
const POOL: usize = 8;

/// Operations per input: few enough that the messages of one input fit
/// in a peer's pipe (1000) with room to spare, so that the closing call's
/// reply is never refused at the first client's queue limit.
const MAX_OPERATIONS: usize = 256;

/// Envelopes remembered from requests the workers received.
const ENVELOPES: usize = 8;

/// Runs the operations `data` encodes against the process's hub; panics
/// if the hub dies or stops answering.
pub fn queue(data: &[u8]) {
    let mut rig = rig();
    let mut bytes = Input::new(data);
    for _ in 0..MAX_OPERATIONS {
        if bytes.is_empty() {
            break;
        }
        rig.step(&mut bytes);
    }
    rig.probe();
}

fn rig() -> MutexGuard<'static, Rig> {
    static RIG: OnceLock<Mutex<Rig>> = OnceLock::new();
    RIG.get_or_init(|| Mutex::new(Rig::start()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

struct Rig {
    hub: Hub,
    context: zmq::Context,
    clients: Vec<zmq::Socket>,
    /// DEALERs: the hub sees them as it sees a ROUTER worker (a routing id,
    /// then the delimiter), and they need no routing id of the hub to
    /// send.
    workers: Vec<zmq::Socket>,
    /// Envelopes of requests the workers received: replies behind them
    /// reach real clients.
    envelopes: Vec<Vec<Vec<u8>>>,
    probes: u64,
}

impl Rig {
    fn start() -> Rig {
        let mut config = HubConfig::new(HubKind::Queue, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
        config.name = "fuzz".to_owned();
        config.queue_limit = 4;
        config.queue_timeout = Duration::from_millis(20);
        config.idle_timeout = Duration::from_millis(200);
        config.peer_queue_limit = 4;
        config.max_message_size = Some(4096);
        let context = zmq::Context::new();
        let hub = Hub::start_in(config, &context).expect("the fuzzed hub starts");
        let connect = |endpoint: &str| {
            let socket = context.socket(zmq::DEALER).expect("a DEALER");
            socket.set_linger(0).expect("linger");
            socket.connect(endpoint).expect("connect to the hub");
            socket
        };
        let clients = (0..PEERS).map(|_| connect(hub.in_endpoint())).collect();
        let workers = (0..PEERS).map(|_| connect(hub.out_endpoint())).collect();
        Rig {
            hub,
            context,
            clients,
            workers,
            envelopes: Vec::new(),
            probes: 0,
        }
    }

    fn step(&mut self, bytes: &mut Input<'_>) {
        let op = bytes.byte();
        let peer = usize::from(op >> 4) % PEERS;
        match op % 8 {
            0 => {
                let frames = raw_frames(bytes);
                send(&self.clients[peer], &frames);
            }
            1 | 2 => {
                let event = built_event(bytes);
                let delimiter = if bytes.byte() % 8 == 0 {
                    &[][..]
                } else {
                    &[&b""[..]]
                };
                let payload = event.encode();
                let mut frames: Vec<&[u8]> = delimiter.to_vec();
                frames.push(&payload);
                send(&self.clients[peer], &frames);
            }
            3 => {
                let frames = raw_frames(bytes);
                send(&self.workers[peer], &frames);
            }
            4 | 5 => {
                let envelope = self.envelope(bytes);
                let event = built_event(bytes);
                let payload = event.encode();
                let mut frames: Vec<&[u8]> = envelope.iter().map(Vec::as_slice).collect();
                frames.push(b"");
                frames.push(&payload);
                send(&self.workers[peer], &frames);
            }
            6 => {
                if bytes.byte() % 2 == 0 {
                    drain(&self.clients[peer], |_| {});
                } else {
                    let envelopes = &mut self.envelopes;
                    drain(&self.workers[peer], |frames| remember(envelopes, frames));
                }
            }
            _ => match bytes.byte() % 4 {
                0 => self.reconnect_worker(peer),
                1 => self.reconnect_client(peer),
                // Long enough for the queue timeout and the sweep to act.
                _ => std::thread::sleep(Duration::from_millis(u64::from(bytes.byte() % 32))),
            },
        }
    }

    fn envelope(&self, bytes: &mut Input<'_>) -> Vec<Vec<u8>> {
        let choice = bytes.byte();
        if !self.envelopes.is_empty() && choice % 4 != 0 {
            return self.envelopes[usize::from(choice) % self.envelopes.len()].clone();
        }
        let frames = choice % 3;
        (0..frames)
            .map(|_| {
                let len = usize::from(bytes.byte() % 6);
                bytes.take(len)
            })
            .collect()
    }

    fn reconnect_worker(&mut self, peer: usize) {
        let endpoint = self.hub.out_endpoint().to_owned();
        self.workers[peer] = self.fresh(&endpoint);
    }

    fn reconnect_client(&mut self, peer: usize) {
        // The first client sends the closing call; it keeps its connection.
        if peer != 0 {
            let endpoint = self.hub.in_endpoint().to_owned();
            self.clients[peer] = self.fresh(&endpoint);
        }
    }

    fn fresh(&self, endpoint: &str) -> zmq::Socket {
        let socket = self.context.socket(zmq::DEALER).expect("a DEALER");
        socket.set_linger(0).expect("linger");
        socket.connect(endpoint).expect("connect to the hub");
        socket
    }

    /// Sends a call from the first client and waits for its answer: the
    /// worker's reply, or an error made by the hub. Panics when none comes.
    fn probe(&mut self) {
        self.probes += 1;
        let mut id = *b"zerorpc-fuzz-probe-\0\0\0\0\0\0\0\0";
        id[19..].copy_from_slice(&self.probes.to_be_bytes());
        let id = MessageId::new(&id, IdKind::Bin);
        let call = Event::new(Header::with_id(id.clone()), PROBE, Value::Array(Vec::new()));
        let payload = call.encode();
        self.clients[0]
            .send_multipart([&b""[..], &payload], 0)
            .expect("the closing call leaves");
        let deadline = Instant::now() + STUCK;
        // Bounded by the deadline; each pass waits at most 100 ms.
        while Instant::now() < deadline {
            assert!(!self.hub.is_finished(), "the hub's thread ended");
            let mut items: Vec<zmq::PollItem<'_>> = self
                .clients
                .iter()
                .chain(&self.workers)
                .map(|s| s.as_poll_item(zmq::POLLIN))
                .collect();
            zmq::poll(&mut items, 100).expect("poll");
            drop(items);
            let mut answered = false;
            drain(&self.clients[0], |frames| {
                answered |= last_event(frames)
                    .is_some_and(|event| event.header.response_to.as_ref() == Some(&id));
            });
            for client in &self.clients[1..] {
                drain(client, |_| {});
            }
            for worker in &self.workers {
                let mut requests = Vec::new();
                drain(worker, |frames| {
                    remember(&mut self.envelopes, frames);
                    if last_event(frames)
                        .is_some_and(|e| e.name == PROBE && e.header.message_id == id)
                    {
                        requests.push(frames.to_vec());
                    }
                });
                for mut frames in requests {
                    let mut header = Header::new();
                    header.response_to = Some(id.clone());
                    let reply = Event::new(header, names::OK, Value::Array(vec![Value::Nil]));
                    *frames.last_mut().expect("a payload") = reply.encode();
                    send(worker, &frames);
                }
            }
            if answered {
                return;
            }
        }
        panic!(
            "the hub answered no call within {STUCK:?}; stats: {}",
            self.hub.stats().to_json()
        );
    }
}

/// Sends without waiting: a full pipe only loses the fuzzer's message.
fn send<F: AsRef<[u8]>>(socket: &zmq::Socket, frames: &[F]) {
    if frames.is_empty() {
        return;
    }
    let _ = socket.send_multipart(frames.iter().map(AsRef::as_ref), zmq::DONTWAIT);
}

/// Reads every message waiting, at most a few thousand.
fn drain(socket: &zmq::Socket, mut each: impl FnMut(&[Vec<u8>])) {
    for _ in 0..4096 {
        match socket.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => each(&frames),
            Err(_) => break,
        }
    }
}

fn last_event(frames: &[Vec<u8>]) -> Option<Event> {
    Event::decode(frames.last()?).ok()
}

/// Keeps the envelope of a request a worker received (the frames before
/// the delimiter), for replies that reach a real client.
fn remember(envelopes: &mut Vec<Vec<Vec<u8>>>, frames: &[Vec<u8>]) {
    let Some(delimiter) = frames.iter().rposition(Vec::is_empty) else {
        return;
    };
    let envelope = frames[..delimiter].to_vec();
    if envelopes.len() == ENVELOPES {
        envelopes.remove(0);
    }
    envelopes.push(envelope);
}

fn raw_frames(bytes: &mut Input<'_>) -> Vec<Vec<u8>> {
    let count = bytes.byte() % 5;
    (0..count)
        .map(|_| {
            let len = usize::from(bytes.byte());
            bytes.take(len)
        })
        .collect()
}

/// A channel id from the shared pool.
fn pooled(byte: u8) -> MessageId {
    MessageId::new(&[byte % POOL as u8], IdKind::Bin)
}

/// An event made of parts the hub tells apart, on channels of the pool.
fn built_event(bytes: &mut Input<'_>) -> Event {
    let choice = bytes.byte();
    let id = pooled(bytes.byte());
    let response_to = (choice & 0x80 != 0).then(|| pooled(bytes.byte()));
    fuzzing::event(bytes, choice, id, response_to)
}

#[cfg(test)]
mod tests {
    /// The fuzz target's checks, over random operations: every CI run
    /// exercises them even without a fuzzer.
    #[test]
    fn random_frame_sequences_never_stop_the_hub() {
        let mut rng = fastrand::Rng::with_seed(0x6875_6221);
        for _ in 0..300 {
            let len = rng.usize(0..512);
            let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            super::queue(&data);
        }
    }
}
