//! The server: limits on concurrency, shutdown, connecting to a binding
//! client, and heartbeats while a handler blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use zerorpc::{Client, Server};
use zerorpc_test_support::free_tcp_endpoint;

use super::{bounded, start};

const HEARTBEAT: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Busy {
    active: Arc<AtomicUsize>,
    most_active: Arc<AtomicUsize>,
}

#[zerorpc::service]
impl Busy {
    /// Works for a while, recording how many calls overlap.
    pub(crate) async fn work(&self, seconds: f64) -> usize {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_active.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        self.active.fetch_sub(1, Ordering::SeqCst);
        now
    }

    /// Blocks its thread, as careless synchronous code does.
    pub(crate) fn block(&self, seconds: f64) -> f64 {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        seconds
    }

    /// Adds two numbers.
    pub(crate) fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrent_calls_serialises_calls_kept_alive_by_heartbeats() {
    let busy = Busy::default();
    let most_active = busy.most_active.clone();
    let server = start(
        Server::builder(busy)
            .heartbeat(Some(HEARTBEAT))
            .max_concurrent_calls(1),
    );
    let client = Client::builder()
        .connect(&server.endpoint)
        .heartbeat(Some(HEARTBEAT))
        .build()
        .unwrap();
    bounded(async {
        // The last call waits two calls long, well beyond three heartbeat intervals.
        let calls = (0..3).map(|_| client.call::<usize>("work", (0.5,)));
        let overlaps = futures::future::try_join_all(calls)
            .await
            .expect("waiting calls are not lost");
        assert_eq!(overlaps, [1, 1, 1]);
        assert_eq!(most_active.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_concurrency_limit_is_accepted() {
    let server = start(Server::builder(Busy::default()).max_concurrent_calls(usize::MAX));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        assert_eq!(client.call::<usize>("work", (0.0,)).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_handle_makes_serve_return() {
    let server = Server::builder(Busy::default())
        .bind("tcp://127.0.0.1:*")
        .build()
        .unwrap();
    let client = Client::connect(&server.endpoints()[0]).unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    bounded(async {
        assert_eq!(client.call::<i64>("add", (1, 2)).await.unwrap(), 3);
        shutdown.shutdown();
        serving
            .await
            .expect("serve does not panic")
            .expect("serve returns Ok after shutdown");
    })
    .await;
}

#[test]
fn shutdown_handle_makes_run_return() {
    let server = start(Server::builder(Busy::default()));
    let client = Client::connect(&server.endpoint).unwrap().blocking();
    assert_eq!(client.call::<i64>("add", (2, 2)).unwrap(), 4);
    server.stop().expect("run returns Ok after shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_connects_to_a_binding_client() {
    let endpoint = free_tcp_endpoint();
    let client = Client::builder().bind(&endpoint).build().unwrap();
    let server = Server::builder(Busy::default())
        .connect(&endpoint)
        .build()
        .unwrap();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    bounded(async {
        assert_eq!(client.call::<i64>("add", (20, 22)).await.unwrap(), 42);
        shutdown.shutdown();
        serving.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_sync_handler_outlives_three_heartbeat_intervals() {
    let server = start(Server::builder(Busy::default()).heartbeat(Some(HEARTBEAT)));
    let client = Client::builder()
        .connect(&server.endpoint)
        .heartbeat(Some(HEARTBEAT))
        .build()
        .unwrap();
    bounded(async {
        let seconds = HEARTBEAT.as_secs_f64() * 5.0;
        assert_eq!(
            client
                .call::<f64>("block", (seconds,))
                .await
                .expect("heartbeats flowed while blocked"),
            seconds
        );
    })
    .await;
}
