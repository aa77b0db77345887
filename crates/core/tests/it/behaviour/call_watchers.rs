//! A call watcher is told of each call from the call itself: on a client,
//! the request, where it went, every reply and the end, whatever the end;
//! on a server, the same for every way a call is served.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use zerorpc::transport::{Peer, PeerSlot};
use zerorpc::wire::Event;
use zerorpc::{CallOptions, CallWatcher, Client, Server, WatchedCall};
use zerorpc_test_support::wait_until;

use super::{bounded, start};

/// What happened to the watched calls, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Watched(String),
    Routed,
    Replied(String),
    Ended,
}

#[derive(Default)]
struct Recorder {
    steps: Mutex<Vec<Step>>,
    peers: Mutex<Vec<PeerSlot>>,
}

impl Recorder {
    fn record(&self, step: Step) {
        self.steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(step);
    }

    fn steps(&self) -> Vec<Step> {
        self.steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn peers(&self) -> Vec<PeerSlot> {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Watcher(Arc<Recorder>);

impl CallWatcher for Watcher {
    fn watch(&self, request: &Event) -> Option<Box<dyn WatchedCall>> {
        self.0.record(Step::Watched(request.name.to_string()));
        Some(Box::new(Watched(self.0.clone())))
    }
}

struct Watched(Arc<Recorder>);

impl WatchedCall for Watched {
    fn routed(&mut self, peer: PeerSlot) {
        self.0.record(Step::Routed);
        self.0
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(peer);
    }

    fn replied(&mut self, reply: &Event) {
        self.0.record(Step::Replied(reply.name.to_string()));
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.0.record(Step::Ended);
    }
}

struct Calls;

#[zerorpc::service]
impl Calls {
    /// Answered on the server's I/O thread.
    #[zerorpc(inline)]
    pub(crate) fn quick(&self) -> u32 {
        1
    }

    /// Answered on the I/O thread when it completes at once.
    #[zerorpc(inline)]
    pub(crate) async fn quick_async(&self) -> u32 {
        2
    }

    /// Returns its argument.
    pub(crate) fn echo(&self, text: String) -> String {
        text
    }

    /// Fails.
    pub(crate) fn fail(&self) -> Result<(), String> {
        Err("no".to_owned())
    }

    /// Streams 0..n.
    pub(crate) fn count(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        0..n
    }

    /// Answers after `seconds`.
    pub(crate) async fn slow(&self, seconds: f64) -> f64 {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        seconds
    }
}

fn watched_client(endpoint: &str) -> (Client, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = Client::builder()
        .connect(endpoint)
        .call_watcher(Arc::new(Watcher(recorder.clone())))
        .build()
        .expect("a client");
    (client, recorder)
}

fn step(text: &str) -> Step {
    match text.split_once(' ') {
        Some(("watched", method)) => Step::Watched(method.to_owned()),
        Some(("replied", name)) => Step::Replied(name.to_owned()),
        _ if text == "routed" => Step::Routed,
        _ if text == "ended" => Step::Ended,
        _ => panic!("no step {text:?}"),
    }
}

fn steps(texts: &[&str]) -> Vec<Step> {
    texts.iter().map(|text| step(text)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_is_watched_from_its_request_to_its_reply_and_knows_where_it_went() {
    let server = start(Server::builder(Calls));
    let (client, recorder) = watched_client(&server.endpoint);

    let answer: String = bounded(client.call("echo", ("hi",))).await.unwrap();
    assert_eq!(answer, "hi");
    let failed = bounded(client.call::<()>("fail", ())).await;
    assert!(failed.is_err(), "fail fails");

    assert_eq!(
        recorder.steps(),
        steps(&[
            "watched echo",
            "routed",
            "replied OK",
            "ended",
            "watched fail",
            "routed",
            "replied ERR",
            "ended",
        ])
    );
    for slot in recorder.peers() {
        assert_eq!(
            slot.get(),
            Some(&Peer::Endpoint(server.endpoint.as_str().into())),
            "the request went to the server's endpoint"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_watched_item_by_item_and_ends_with_its_last_reply() {
    let server = start(Server::builder(Calls));
    let (client, recorder) = watched_client(&server.endpoint);

    let items: Vec<u32> = bounded(async {
        let stream = client.stream::<u32>("count", (3,)).await.unwrap();
        stream.map(|item| item.unwrap()).collect().await
    })
    .await;
    assert_eq!(items, [0, 1, 2]);

    assert_eq!(
        recorder.steps(),
        steps(&[
            "watched count",
            "routed",
            "replied STREAM",
            "replied STREAM",
            "replied STREAM",
            "replied STREAM_DONE",
            "ended",
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_that_end_without_a_reply_end_their_watch_too() {
    let server = start(Server::builder(Calls));
    let (client, recorder) = watched_client(&server.endpoint);

    // Timed out.
    let options = CallOptions::new().timeout(Duration::from_millis(50));
    let timed_out = bounded(client.invoke("slow", vec![1.0.into()], options)).await;
    assert!(timed_out.is_err(), "the call times out");
    // Given up by its caller.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        client.call::<f64>("slow", (1.0,)),
    )
    .await;
    assert!(gave_up.is_err(), "the caller stops waiting");
    // A stream dropped before its end.
    let mut stream = bounded(client.stream::<u32>("count", (1000,)))
        .await
        .unwrap();
    let first = bounded(stream.next()).await.expect("an item").unwrap();
    assert_eq!(first, 0);
    drop(stream);

    let steps_seen = recorder.steps();
    assert_eq!(
        steps_seen[..6],
        steps(&[
            "watched slow",
            "routed",
            "ended",
            "watched slow",
            "routed",
            "ended"
        ])
    );
    assert_eq!(
        steps_seen[6..9],
        steps(&["watched count", "routed", "replied STREAM"])
    );
    assert_eq!(steps_seen.last(), Some(&Step::Ended));
    assert!(
        !steps_seen[9..].contains(&Step::Replied("STREAM_DONE".to_owned())),
        "the stream did not end: {steps_seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_socket_refuses_is_never_sent() {
    let server = start(Server::builder(Calls));
    let recorder = Arc::new(Recorder::default());
    let client = Client::builder()
        .connect(&server.endpoint)
        .max_message_size(Some(64))
        .call_watcher(Arc::new(Watcher(recorder.clone())))
        .build()
        .expect("a client");

    let too_large = bounded(client.call::<String>("echo", ("x".repeat(1000),))).await;
    assert!(too_large.is_err(), "the request is too large");
    assert_eq!(recorder.steps(), steps(&["watched echo", "ended"]));
}

fn watched_server(heartbeat: Duration) -> (super::Running, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let server = start(
        Server::builder(Calls)
            .heartbeat(Some(heartbeat))
            .call_watcher(Arc::new(Watcher(recorder.clone()))),
    );
    (server, recorder)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_watches_every_call_it_serves_whichever_way_it_serves_it() {
    let (server, recorder) = watched_server(Duration::from_secs(5));
    let client = Client::connect(&server.endpoint).unwrap();

    // On the I/O thread, adopted there, on the blocking pool, in a task,
    // introspection, a stream.
    // A served call's watch ends just after its reply left, so the client
    // may start the next call first: each waits for the one before to end.
    let quick: u32 = bounded(client.call("quick", ())).await.unwrap();
    assert!(ended(&recorder, 1).await);
    let quick_async: u32 = bounded(client.call("quick_async", ())).await.unwrap();
    assert!(ended(&recorder, 2).await);
    let echo: String = bounded(client.call("echo", ("hi",))).await.unwrap();
    assert!(ended(&recorder, 3).await);
    let slow: f64 = bounded(client.call("slow", (0.01,))).await.unwrap();
    assert!(ended(&recorder, 4).await);
    let name: String = bounded(client.call("_zerorpc_name", ())).await.unwrap();
    assert!(ended(&recorder, 5).await);
    let items: Vec<u32> = bounded(client.call("count", (2,))).await.unwrap();
    assert_eq!(
        (quick, quick_async, echo.as_str(), slow),
        (1, 2, "hi", 0.01)
    );
    assert_eq!((name.as_str(), items), ("Calls", vec![0, 1]));

    assert_eq!(
        recorder.steps(),
        steps(&[
            "watched quick",
            "routed",
            "replied OK",
            "ended",
            "watched quick_async",
            "routed",
            "replied OK",
            "ended",
            "watched echo",
            "routed",
            "replied OK",
            "ended",
            "watched slow",
            "routed",
            "replied OK",
            "ended",
            "watched _zerorpc_name",
            "routed",
            "replied OK",
            "ended",
            "watched count",
            "routed",
            "replied STREAM",
            "replied STREAM",
            "replied STREAM_DONE",
            "ended",
        ])
    );
    for slot in recorder.peers() {
        assert!(
            matches!(slot.get(), Some(Peer::RoutingId(_))),
            "the request came from the client's routing id: {slot:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_served_call_whose_client_is_lost_ends_its_watch_without_a_reply() {
    let (server, recorder) = watched_server(Duration::from_millis(100));
    let client = Client::builder()
        .connect(&server.endpoint)
        .heartbeat(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<f64>("slow", (30.0,)).await }
    });
    assert!(
        wait_until(Duration::from_secs(10), || recorder.steps().len() >= 2),
        "the call reaches the server"
    );
    call.abort();
    drop(client);

    // The server sees its client's heartbeats stop, and cancels the call.
    assert!(
        wait_until(Duration::from_secs(10), || recorder
            .steps()
            .contains(&Step::Ended)),
        "the server gives the call up"
    );
    assert_eq!(
        recorder.steps(),
        steps(&["watched slow", "routed", "ended"])
    );
}

/// Whether `recorder` holds `count` ended watches within a few seconds
/// (polled off the runtime's workers).
async fn ended(recorder: &Arc<Recorder>, count: usize) -> bool {
    let recorder = Arc::clone(recorder);
    tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(5), || {
            recorder
                .steps()
                .iter()
                .filter(|s| **s == Step::Ended)
                .count()
                >= count
        })
    })
    .await
    .unwrap()
}
