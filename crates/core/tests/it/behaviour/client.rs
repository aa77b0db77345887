//! The client: timeouts, concurrency, abandoning calls, executors, the
//! blocking API and several servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use zerorpc::{CallOptions, Client, Server};
use zerorpc_test_support::wait_until;

use super::{TEST_BOUND, bounded, heartbeating_client, start};

const HEARTBEAT: Duration = Duration::from_millis(200);

/// Sets its flag when dropped, i.e. when the handler holding it is cancelled.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Waiter {
    /// Closed until the test opens it: calls that wait on it are "slow".
    gate: Arc<tokio::sync::Semaphore>,
    /// How many calls have reached the gate.
    at_gate: Arc<AtomicUsize>,
    /// Every call of `meet` waits here until all parties have called.
    barrier: Option<Arc<tokio::sync::Barrier>>,
    started: Arc<AtomicBool>,
    cancelled: Arc<AtomicBool>,
}

impl Default for Waiter {
    fn default() -> Self {
        Waiter {
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            at_gate: Arc::default(),
            barrier: None,
            started: Arc::default(),
            cancelled: Arc::default(),
        }
    }
}

#[zerorpc::service]
impl Waiter {
    /// Sleeps, then returns the seconds slept.
    pub(crate) async fn slow(&self, seconds: f64) -> f64 {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        seconds
    }

    /// Waits until the test opens the gate.
    pub(crate) async fn gated(&self) -> bool {
        self.at_gate.fetch_add(1, Ordering::SeqCst);
        let permit = self.gate.acquire().await.expect("the gate stays open");
        permit.forget();
        true
    }

    /// Waits until every party of the barrier has called.
    pub(crate) async fn meet(&self, id: u32) -> u32 {
        if let Some(barrier) = &self.barrier {
            barrier.wait().await;
        }
        id
    }

    /// Returns at once.
    pub(crate) fn fast(&self) -> &'static str {
        "fast"
    }

    /// Never returns by itself; reports its cancellation.
    pub(crate) async fn hold(&self) {
        let _guard = SetOnDrop(self.cancelled.clone());
        self.started.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }

    /// Streams 0..n.
    pub(crate) fn count(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        0..n
    }
}

struct Tagged {
    tag: &'static str,
    calls: Arc<AtomicUsize>,
}

#[zerorpc::service]
impl Tagged {
    /// Says which server answered.
    pub(crate) fn whoami(&self) -> &'static str {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.tag
    }

    /// Streams the tag n times.
    pub(crate) fn tags(&self, n: u32) -> impl Iterator<Item = &'static str> + use<> {
        std::iter::repeat_n(self.tag, n as usize)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn per_call_timeout_fails_with_a_timeout_error() {
    let server = start(Server::builder(Waiter::default()));
    let client = Client::connect(&server.endpoint).unwrap();
    let impatient = Client::builder()
        .connect(&server.endpoint)
        .timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    bounded(async {
        let options = CallOptions::new().timeout(Duration::from_millis(300));
        let error = client
            .invoke("slow", vec![5.0.into()], options)
            .await
            .expect_err("the call times out");
        assert!(error.is_timeout(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "timeout after 0.3s, when calling remote method slow"
        );

        let error = impatient
            .call::<f64>("slow", (5.0,))
            .await
            .expect_err("the builder's timeout applies");
        assert!(error.is_timeout(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "timeout after 0.3s, when calling remote method slow"
        );
        assert_eq!(impatient.call::<String>("fast", ()).await.unwrap(), "fast");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_calls_run_together() {
    const CALLS: u32 = 50;
    let waiter = Waiter {
        barrier: Some(Arc::new(tokio::sync::Barrier::new(CALLS as usize))),
        ..Waiter::default()
    };
    let server = start(Server::builder(waiter));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        // No call can return before all fifty are being served at once.
        let calls = (0..CALLS).map(|id| client.call::<u32>("meet", (id,)));
        let ids = futures::future::try_join_all(calls).await.unwrap();
        assert_eq!(ids, (0..CALLS).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fast_call_is_not_blocked_behind_slow_ones() {
    let waiter = Waiter::default();
    let (gate, at_gate) = (waiter.gate.clone(), waiter.at_gate.clone());
    let server = start(Server::builder(waiter));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        let slow: Vec<_> = (0..10)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.call::<bool>("gated", ()).await })
            })
            .collect();
        // The fast call goes out only once all ten slow ones are being served.
        let arrived = tokio::task::spawn_blocking(move || {
            wait_until(TEST_BOUND / 2, || at_gate.load(Ordering::SeqCst) == 10)
        });
        assert!(arrived.await.unwrap(), "the slow calls reached the server");
        assert_eq!(client.call::<String>("fast", ()).await.unwrap(), "fast");
        assert!(
            slow.iter().all(|task| !task.is_finished()),
            "the slow calls are still waiting at the gate"
        );
        gate.add_permits(10);
        for task in slow {
            assert!(task.await.unwrap().unwrap());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_call_abandons_it_and_cancels_the_handler() {
    let waiter = Waiter::default();
    let (started, cancelled) = (waiter.started.clone(), waiter.cancelled.clone());
    let server = start(Server::builder(waiter).heartbeat(Some(HEARTBEAT)));
    let client = heartbeating_client(&server.endpoint, HEARTBEAT);
    bounded(async {
        let mut call = Box::pin(client.call::<()>("hold", ()));
        // Poll the call until the handler runs, then drop it.
        let deadline = Instant::now() + TEST_BOUND;
        while !started.load(Ordering::SeqCst) && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(20), call.as_mut()).await;
        }
        assert!(started.load(Ordering::SeqCst), "the handler started");
        drop(call);

        assert_eq!(
            client.call::<String>("fast", ()).await.unwrap(),
            "fast",
            "the client keeps working"
        );
        // Loss is declared after two silent intervals; allow many more.
        let gone = tokio::task::spawn_blocking(move || {
            wait_until(HEARTBEAT * 25, || cancelled.load(Ordering::SeqCst))
        });
        assert!(
            gone.await.unwrap(),
            "the server cancelled the abandoned handler"
        );
    })
    .await;
}

#[test]
fn async_client_runs_under_a_non_tokio_executor() {
    let server = start(Server::builder(Waiter::default()));
    let client = Client::connect(&server.endpoint).unwrap();
    // This thread has no tokio runtime: the client must not need one.
    let outcome = futures::executor::block_on(async {
        let fast: String = client.call("fast", ()).await?;
        let slept: f64 = client.call("slow", (0.01,)).await?;
        let counted: Vec<u32> = client
            .stream::<u32>("count", (3,))
            .await?
            .map(|r| r.unwrap())
            .collect()
            .await;
        let timeout = client
            .invoke(
                "slow",
                vec![5.0.into()],
                CallOptions::new().timeout(Duration::from_millis(100)),
            )
            .await;
        let timed_out: Result<(), bool> = timeout.map(|_| ()).map_err(|e| e.is_timeout());
        Ok::<_, zerorpc::Error>((fast, slept, counted, timed_out))
    })
    .unwrap();
    assert_eq!(outcome, ("fast".to_owned(), 0.01, vec![0, 1, 2], Err(true)));
}

#[tokio::test(flavor = "current_thread")]
async fn async_client_runs_inside_a_current_thread_runtime() {
    let server = start(Server::builder(Waiter::default()));
    let client = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        assert_eq!(client.call::<String>("fast", ()).await.unwrap(), "fast");
        assert_eq!(
            client.call::<Vec<u32>>("count", (2,)).await.unwrap(),
            [0, 1]
        );
    })
    .await;
}

#[test]
fn blocking_client_calls_and_iterates_streams() {
    let server = start(Server::builder(Waiter::default()));
    let client = Client::connect(&server.endpoint).unwrap().blocking();
    assert_eq!(client.call::<String>("fast", ()).unwrap(), "fast");
    let items: Vec<u32> = client
        .stream::<u32>("count", (4,))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(items, [0, 1, 2, 3]);
    // Iterating part of a stream and dropping the rest leaves the client usable.
    let mut partial = client.stream::<u32>("count", (1_000,)).unwrap();
    assert_eq!(partial.next().map(Result::unwrap), Some(0));
    drop(partial);
    assert_eq!(client.call::<String>("fast", ()).unwrap(), "fast");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_of_two_servers_spreads_calls_over_both() {
    let (a_calls, b_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a = start(Server::builder(Tagged {
        tag: "a",
        calls: a_calls.clone(),
    }));
    let b = start(Server::builder(Tagged {
        tag: "b",
        calls: b_calls.clone(),
    }));
    let client = Client::builder()
        .connect(&a.endpoint)
        .connect(&b.endpoint)
        .build()
        .unwrap();
    bounded(async {
        // The second connection may come up a little after the first.
        for _ in 0..500 {
            let _: String = client.call("whoami", ()).await.unwrap();
            if a_calls.load(Ordering::SeqCst) >= 5 && b_calls.load(Ordering::SeqCst) >= 5 {
                break;
            }
        }
        let (a_seen, b_seen) = (
            a_calls.load(Ordering::SeqCst),
            b_calls.load(Ordering::SeqCst),
        );
        assert!(
            a_seen >= 5 && b_seen >= 5,
            "calls spread over both servers: a={a_seen} b={b_seen}"
        );

        let mut tags_seen = Vec::new();
        for _ in 0..4 {
            let tags: Vec<String> = client.call("tags", (3,)).await.unwrap();
            assert_eq!(tags.len(), 3);
            assert!(
                tags.iter().all(|t| t == &tags[0]),
                "a stream stays on one server: {tags:?}"
            );
            tags_seen.push(tags[0].clone());
        }
        tags_seen.sort();
        tags_seen.dedup();
        assert_eq!(tags_seen, ["a", "b"], "streams come from both servers");
    })
    .await;
}

#[test]
fn client_built_on_a_runtime_keeps_working_after_the_runtime_shuts_down() {
    let server = start(Server::builder(Waiter::default()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Built on a multi-thread runtime: a task of that runtime drives it.
    let client = runtime.block_on(async {
        let client = Client::connect(&server.endpoint).unwrap();
        let on_worker = client.clone();
        let fast = tokio::spawn(async move { on_worker.call::<String>("fast", ()).await });
        assert_eq!(bounded(fast).await.unwrap().unwrap(), "fast");
        client
    });
    drop(runtime);
    // A thread took over: calls from outside any runtime still work.
    let counted: Vec<u32> = futures::executor::block_on(async {
        let fast: String = client.call("fast", ()).await?;
        assert_eq!(fast, "fast");
        client.call("count", (3,)).await
    })
    .unwrap();
    assert_eq!(counted, [0, 1, 2]);
}

/// A runtime of `workers` worker threads, for a test to block them.
fn multi_thread_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn blocking_calls_on_a_worker_of_the_driving_runtime_do_not_stall_it() {
    let server = start(Server::builder(Waiter::default()));
    let runtime = multi_thread_runtime(2);
    let client = runtime.block_on(async { Client::connect(&server.endpoint).unwrap() });
    // Every worker blocks in a blocking call at once, each right after
    // waking the task that drives the client's socket: the calls must
    // still be sent and answered. Watched from this thread, since a stall
    // would stop the runtime's own timers too.
    let (done, finished) = std::sync::mpsc::channel();
    for _ in 0..2 {
        let client = client.clone().blocking();
        let done = done.clone();
        runtime.spawn(async move {
            let answers = (0..20)
                .map(|_| client.call::<String>("fast", ()))
                .collect::<Result<Vec<_>, _>>();
            let _ = done.send(answers);
        });
    }
    for _ in 0..2 {
        let Ok(answers) = finished.recv_timeout(TEST_BOUND) else {
            // Dropping a runtime waits for its blocked workers: leak it.
            std::mem::forget(runtime);
            panic!("the blocking calls did not finish within the test's bound");
        };
        assert_eq!(answers.unwrap(), vec!["fast"; 20]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_on_its_own_io_thread_calls_and_streams() {
    let server = start(Server::builder(Waiter::default()));
    let client = Client::builder()
        .connect(&server.endpoint)
        .io_thread(true)
        .build()
        .unwrap();
    bounded(async {
        assert_eq!(client.call::<String>("fast", ()).await.unwrap(), "fast");
        let items: Vec<u32> = client
            .stream::<u32>("count", (3,))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(items, [0, 1, 2]);
    })
    .await;
}

#[test]
fn heartbeats_flow_while_every_worker_of_the_driving_runtime_is_blocked() {
    let server = start(Server::builder(Waiter::default()).heartbeat(Some(HEARTBEAT)));
    let runtime = multi_thread_runtime(1);
    let client = runtime.block_on(async { heartbeating_client(&server.endpoint, HEARTBEAT) });
    let (done, finished) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = done.send(client.call::<f64>("slow", (1.0,)).await);
    });
    // The one worker blocks for eight heartbeat intervals, while the call
    // waits: the server must keep hearing from the client, and the
    // client from the server, or either would take the other for lost.
    runtime.spawn(async {
        std::thread::sleep(HEARTBEAT * 8);
    });
    let Ok(answer) = finished.recv_timeout(TEST_BOUND) else {
        std::mem::forget(runtime);
        panic!("the call did not end within the test's bound");
    };
    assert_eq!(answer.unwrap(), 1.0);
}

#[test]
fn calls_keep_flowing_while_a_task_blocks_the_worker_its_call_woke_the_socket_on() {
    // A task makes a call, which wakes the task driving the client's
    // socket on the caller's worker (tokio's LIFO slot, which no other
    // worker takes from), then blocks that worker. The socket must not
    // wait for it: calls made meanwhile from elsewhere are answered while
    // the worker is still blocked.
    const CALLS: usize = 200;
    let server = start(Server::builder(Waiter::default()));
    let runtime = multi_thread_runtime(2);
    let client = runtime.block_on(async { Client::connect(&server.endpoint).unwrap() });
    let others_done = Arc::new(AtomicBool::new(false));
    let (blocked, released) = std::sync::mpsc::channel();
    let blocker = {
        let (client, others_done) = (client.clone(), others_done.clone());
        runtime.spawn(async move {
            let mut call = std::pin::pin!(client.call::<String>("fast", ()));
            assert!(futures::poll!(call.as_mut()).is_pending());
            let _ = blocked.send(());
            let deadline = Instant::now() + TEST_BOUND / 2;
            while !others_done.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let released_by_the_others = others_done.load(Ordering::SeqCst);
            (released_by_the_others, call.await)
        })
    };
    released.recv_timeout(TEST_BOUND).unwrap();
    // From this thread, not a worker: each call's wake-up finds the
    // driving task already queued where the blocked worker holds it.
    let blocking = client.blocking();
    let answers = (0..CALLS)
        .map(|_| blocking.call::<String>("fast", ()))
        .collect::<Result<Vec<_>, _>>();
    others_done.store(true, Ordering::SeqCst);
    assert_eq!(answers.unwrap(), vec!["fast"; CALLS]);
    let (released_by_the_others, answer) = runtime.block_on(bounded(blocker)).unwrap();
    assert!(
        released_by_the_others,
        "{CALLS} calls took longer than the worker was blocked"
    );
    assert_eq!(answer.unwrap(), "fast");
}

#[test]
fn blocking_call_where_tokio_refuses_block_in_place_still_waits_and_answers() {
    let server = start(Server::builder(Waiter::default()));
    let multi = tokio::runtime::Runtime::new().unwrap();
    let client = multi.block_on(async { Client::connect(&server.endpoint).unwrap() });
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // On a current-thread runtime's thread, with the multi-thread runtime
    // entered: tokio will not arrange a blocking section here.
    let answer = current.block_on(async {
        let _entered = multi.handle().enter();
        client.blocking().call::<String>("fast", ())
    });
    assert_eq!(answer.unwrap(), "fast");
}
