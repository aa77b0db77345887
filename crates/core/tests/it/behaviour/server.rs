//! The server: limits on concurrency, shutdown, connecting to a binding
//! client, heartbeats while a handler blocks, and handlers that hang,
//! block or panic while others are served.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use zerorpc::{Client, Server};
use zerorpc_test_support::free_tcp_endpoint;

use super::{Held, bounded, heartbeating_client, start};

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
    let client = heartbeating_client(&server.endpoint, HEARTBEAT);
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
    let client = heartbeating_client(&server.endpoint, HEARTBEAT);
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

/// Blocks the worker it runs on: misbehaving async code.
struct WorkerBlocker;

#[zerorpc::service]
impl WorkerBlocker {
    /// Blocks the thread running it, a worker of the server's runtime.
    pub(crate) async fn hog(&self, seconds: f64) -> f64 {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        seconds
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_driven_by_its_runtime_heartbeats_while_a_method_blocks_every_worker() {
    // The server on a runtime of one worker, which the method blocks for
    // eight heartbeat intervals: the server's socket is then turned by
    // the rescue thread, or the client would take the server for lost.
    let (ready, endpoint) = std::sync::mpsc::channel();
    let serving = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = Server::builder(WorkerBlocker)
                .bind("tcp://127.0.0.1:*")
                .heartbeat(Some(HEARTBEAT))
                .io_thread(false)
                .build()
                .unwrap();
            let shutdown = server.shutdown_handle();
            ready
                .send((server.endpoints()[0].clone(), shutdown))
                .unwrap();
            server.serve().await
        })
    });
    let (endpoint, shutdown) = endpoint.recv_timeout(super::TEST_BOUND).unwrap();
    let client = Client::builder()
        .connect(&endpoint)
        .heartbeat(Some(HEARTBEAT))
        .io_thread(true)
        .build()
        .unwrap();
    bounded(async {
        let seconds = HEARTBEAT.as_secs_f64() * 8.0;
        let answer = client.call::<f64>("hog", (seconds,)).await;
        assert_eq!(answer.expect("heartbeats flowed while blocked"), seconds);
    })
    .await;
    shutdown.shutdown();
    serving.join().unwrap().unwrap();
}

/// Handlers that misbehave: one never returns, one blocks its thread, one
/// panics. `live` counts the never-returning calls still held.
#[derive(Default)]
struct Misbehaving {
    live: Arc<AtomicUsize>,
}

#[zerorpc::service]
impl Misbehaving {
    /// Never answers.
    pub(crate) async fn hang(&self) -> bool {
        self.live.fetch_add(1, Ordering::SeqCst);
        let _held = Held(self.live.clone());
        std::future::pending::<()>().await;
        true
    }

    /// Blocks its thread.
    pub(crate) fn block(&self, seconds: f64) -> f64 {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        seconds
    }

    /// Panics.
    pub(crate) fn boom(&self) -> bool {
        panic!("boom")
    }

    /// Adds two numbers.
    pub(crate) fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc/self/status")
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_blocking_and_panicking_handlers_leave_the_others_served_and_nothing_held() {
    const HANGING: usize = 200;
    const BLOCKING: usize = 20;
    const PANICKING: usize = 100;
    const ADDING: usize = 100;
    let live = Arc::new(AtomicUsize::new(0));
    let service = Misbehaving { live: live.clone() };
    let server = start(Server::builder(service).heartbeat(Some(HEARTBEAT)));
    let client = Client::builder()
        .connect(&server.endpoint)
        .heartbeat(Some(HEARTBEAT))
        .timeout(Some(HEARTBEAT * 5))
        .build()
        .unwrap();
    let threads_before = threads();
    bounded(async {
        let hanging = (0..HANGING).map(|_| client.call::<bool>("hang", ()));
        let blocking = (0..BLOCKING).map(|_| client.call::<f64>("block", (0.5,)));
        let panicking = (0..PANICKING).map(|_| client.call::<bool>("boom", ()));
        let adding = (0..ADDING as i64).map(|i| client.call::<i64>("add", (i, 1)));
        let (hanging, blocking, panicking, adding) = tokio::join!(
            futures::future::join_all(hanging),
            futures::future::join_all(blocking),
            futures::future::join_all(panicking),
            futures::future::join_all(adding),
        );
        for result in hanging {
            let error = result.expect_err("a hanging handler answered");
            assert!(error.is_timeout(), "{error}");
        }
        for result in blocking {
            assert_eq!(result.expect("a blocked thread still answers"), 0.5);
        }
        for result in panicking {
            let error = result.expect_err("a panic answered");
            assert!(error.is_remote(), "{error}");
        }
        for (i, result) in (0..).zip(adding) {
            assert_eq!(result.expect("others are served meanwhile"), i + 1);
        }
        // The callers gave up on the hanging calls and stopped their
        // heartbeats: the server loses them and drops their handlers.
        let released = async {
            while live.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(HEARTBEAT).await;
            }
        };
        tokio::time::timeout(HEARTBEAT * 20, released)
            .await
            .unwrap_or_else(|_| panic!("{} hanging calls still held", live.load(Ordering::SeqCst)));
    })
    .await;
    // Sync calls (blocking, panicking, adding) may each take a thread of
    // the blocking pool while they run; the hanging calls, however many,
    // take none.
    let grown = threads().saturating_sub(threads_before);
    let sync_calls = BLOCKING + PANICKING + ADDING;
    assert!(
        grown <= sync_calls + 8,
        "{grown} more threads for {sync_calls} sync calls"
    );
}
