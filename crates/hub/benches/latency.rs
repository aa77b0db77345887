//! Latency of one call through the queue hub against the same call made
//! directly, measured in one run over TCP loopback.
//!
//! The peers are minimal ZeroRPC endpoints written against ZeroMQ directly
//! (a DEALER client, a ROUTER worker answering `OK [nil]`), so the
//! difference between the two benchmarks is the hub's own cost: one more
//! hop each way and its header decoding. Run with
//! `cargo bench -p zerorpc-hub --bench latency`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use criterion::{Criterion, criterion_group, criterion_main};
use zerorpc_hub::{Hub, HubConfig, HubKind};
use zerorpc_wire::{Event, Header, Value, names};

/// A worker answering every request with `OK [nil]`, until stopped.
struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// `bind` true: the worker binds `endpoint` (direct calls); false: it
    /// connects to it (a hub's `out`). Returns the endpoint to reach it.
    fn start(context: &zmq::Context, endpoint: &str, bind: bool) -> (Worker, String) {
        let socket = context.socket(zmq::ROUTER).expect("socket");
        socket.set_linger(0).expect("linger");
        let endpoint = if bind {
            socket.bind(endpoint).expect("bind");
            socket
                .get_last_endpoint()
                .expect("endpoint")
                .expect("utf-8")
        } else {
            socket.connect(endpoint).expect("connect");
            endpoint.to_owned()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if socket.poll(zmq::POLLIN, 100).unwrap_or(0) == 0 {
                    continue;
                }
                let Ok(mut frames) = socket.recv_multipart(0) else {
                    continue;
                };
                let Some(payload) = frames.pop() else {
                    continue;
                };
                let Ok((header, _)) = Event::decode_envelope(&payload) else {
                    continue;
                };
                let mut reply = Header::new();
                reply.response_to = Some(header.message_id);
                frames.push(Event::new(reply, names::OK, Value::Array(vec![Value::Nil])).encode());
                let _ = socket.send_multipart(frames, 0);
            }
        });
        (
            Worker {
                stop,
                thread: Some(thread),
            },
            endpoint,
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request/reply round trip on a connected DEALER.
fn call(client: &zmq::Socket) {
    let request = Event::new(Header::new(), "ping", Value::Array(vec![])).encode();
    client
        .send_multipart([&b""[..], &request], 0)
        .expect("send");
    let frames = client.recv_multipart(0).expect("reply");
    assert_eq!(frames.len(), 2);
}

fn client(context: &zmq::Context, endpoint: &str) -> zmq::Socket {
    let socket = context.socket(zmq::DEALER).expect("socket");
    socket.set_linger(0).expect("linger");
    socket.connect(endpoint).expect("connect");
    // The first call also waits for the connection.
    call(&socket);
    socket
}

fn latency(c: &mut Criterion) {
    let context = zmq::Context::new();
    let mut group = c.benchmark_group("call latency");

    let (direct_worker, endpoint) = Worker::start(&context, "tcp://127.0.0.1:*", true);
    let direct = client(&context, &endpoint);
    group.bench_function("direct", |b| b.iter(|| call(&direct)));
    drop(direct_worker);

    let hub = Hub::start(HubConfig::new(
        HubKind::Queue,
        "tcp://127.0.0.1:*",
        "tcp://127.0.0.1:*",
    ))
    .expect("hub");
    let (hub_worker, _) = Worker::start(&context, hub.out_endpoint(), false);
    while hub.stats().workers.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let through_hub = client(&context, hub.in_endpoint());
    group.bench_function("through hub", |b| b.iter(|| call(&through_hub)));
    group.finish();
    drop(hub_worker);
    drop(hub);
}

criterion_group!(benches, latency);
criterion_main!(benches);
