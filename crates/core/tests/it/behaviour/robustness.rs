//! A server flooded with garbage keeps serving: random bytes, mutated
//! requests, and well-formed requests with random arguments to real methods.

use std::time::{Duration, Instant};

use zerorpc::wire::{Event, Header};
use zerorpc::{Client, Server, Value};

use zerorpc_test_support::Rng;

use super::{bounded, start};

struct Target;

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

#[zerorpc::service]
impl Target {
    pub(crate) fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    pub(crate) fn echo(&self, value: Value) -> Value {
        value
    }

    pub(crate) fn named(&self, name: String, times: Option<u8>) -> String {
        name.repeat(usize::from(times.unwrap_or(1)))
    }

    pub(crate) fn refuse(&self, _why: Vec<String>) -> Result<(), Refused> {
        Err(Refused)
    }

    pub(crate) fn count(&self, n: u8) -> impl Iterator<Item = u8> + use<> {
        0..n
    }
}

/// A random msgpack value, nested at most `depth` deep.
fn value(rng: &mut Rng, depth: u32) -> Value {
    let kinds = if depth == 0 { 7 } else { 9 };
    match rng.below(kinds) {
        0 => Value::Nil,
        1 => Value::Boolean(rng.below(2) == 0),
        2 => Value::from(rng.next_u64() as i64),
        3 => Value::from(rng.below(300)),
        4 => Value::F64(f64::from_bits(rng.next_u64())),
        5 => Value::from(String::from_utf8_lossy(&rng.bytes(12)).into_owned()),
        6 => Value::Binary(rng.bytes(12)),
        7 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
        _ => Value::Map(
            (0..rng.below(3))
                .map(|_| (value(rng, 0), value(rng, depth - 1)))
                .collect(),
        ),
    }
}

fn dealer(endpoint: &str) -> zmq::Socket {
    let socket = zmq::Context::new().socket(zmq::DEALER).expect("a socket");
    socket.set_linger(0).expect("linger");
    socket.connect(endpoint).expect("connect");
    socket
}

/// The first non-heartbeat reply to `id`, within `limit`.
fn reply_to(socket: &zmq::Socket, request: &Event, limit: Duration) -> Option<Event> {
    let deadline = Instant::now() + limit;
    // Bounded: every turn waits on the deadline or consumes a message.
    for _ in 0..10_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
        if wait == 0 || socket.poll(zmq::POLLIN, wait).ok()? == 0 {
            return None;
        }
        let frames = socket.recv_multipart(0).ok()?;
        let event = Event::decode(frames.last()?).expect("the server sends valid events");
        if event.header.response_to.as_ref() == Some(&request.header.message_id)
            && event.name != "_zpc_hb"
        {
            return Some(event);
        }
    }
    None
}

#[test]
fn random_input_never_stops_the_server() {
    const SEED: u64 = 0x5eed_0f2e_20c0_de01;
    let server = start(Server::builder(Target));
    let socket = dealer(&server.endpoint);
    let mut rng = Rng::new(SEED);
    let methods = [
        "add",
        "echo",
        "named",
        "refuse",
        "count",
        "_zerorpc_help",
        "_zerorpc_args",
        "missing",
    ];

    let template =
        Event::new(Header::new(), "add", Value::Array(vec![1.into(), 2.into()])).encode();
    for _ in 0..400 {
        let junk = rng.bytes(80);
        socket.send_multipart([&b""[..], &junk], 0).expect("send");
        let mut mutated = template.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(mutated.len() as u64) as usize;
            mutated[at] = rng.next_u64() as u8;
        }
        mutated.truncate(1 + rng.below(mutated.len() as u64) as usize);
        socket
            .send_multipart([&b""[..], &mutated], 0)
            .expect("send");
    }

    let mut answered = 0;
    for round in 0..300 {
        let method = methods[rng.below(methods.len() as u64) as usize];
        let args = match rng.below(5) {
            // Not even an array of arguments.
            0 => value(&mut rng, 2),
            _ => Value::Array((0..rng.below(4)).map(|_| value(&mut rng, 2)).collect()),
        };
        let request = Event::new(Header::new(), method, args);
        socket
            .send_multipart([&b""[..], &request.encode()], 0)
            .expect("send");
        let reply = reply_to(&socket, &request, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no reply to round {round} (seed {SEED:#x}): {request:?}"));
        assert!(
            matches!(&*reply.name, "OK" | "ERR" | "STREAM" | "STREAM_DONE"),
            "round {round}: {reply:?}"
        );
        answered += 1;
    }
    assert_eq!(answered, 300);

    // Bounded by the client's first-reply timeout, with no runtime needed.
    let client = Client::connect(&server.endpoint).unwrap();
    let sum: i64 = futures::executor::block_on(client.call("add", (2, 3))).expect("still serving");
    assert_eq!(sum, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_still_answers_typed_calls_after_a_flood() {
    // The same flood from several connections at once.
    let server = start(Server::builder(Target));
    let endpoint = server.endpoint.clone();
    let floods: Vec<_> = (0..4u64)
        .map(|n| {
            let endpoint = endpoint.clone();
            std::thread::spawn(move || {
                let socket = dealer(&endpoint);
                let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ n);
                for _ in 0..500 {
                    let junk = rng.bytes(200);
                    socket.send_multipart([&b""[..], &junk], 0).expect("send");
                }
            })
        })
        .collect();
    for flood in floods {
        flood.join().expect("a flood thread");
    }
    let client = Client::connect(&endpoint).unwrap();
    bounded(async {
        assert_eq!(
            client.call::<String>("named", ("ab", 2)).await.unwrap(),
            "abab"
        );
    })
    .await;
}
