//! `#[zerorpc(inline)]` methods are answered on the server socket's I/O
//! thread, with the call's context and the server's runtime at hand (async
//! ones when they complete without waiting); with a concurrency limit,
//! they are served by tasks like every other call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zerorpc::{CallContext, Client, Server};

use super::{bounded, heartbeating_client, start};

/// Where and how a call was served.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Served {
    thread: String,
    method: Option<String>,
    runtime: bool,
}

struct Probe;

#[zerorpc::service]
impl Probe {
    /// Reports where it runs.
    #[zerorpc(inline)]
    pub(crate) fn inline_probe(&self) -> Served {
        served()
    }

    /// Reports where it runs.
    pub(crate) async fn async_probe(&self) -> Served {
        served()
    }

    /// Spawns a task on the server's runtime and answers at once.
    #[zerorpc(inline)]
    pub(crate) fn spawns(&self) -> bool {
        tokio::spawn(async {});
        true
    }
}

fn served() -> Served {
    Served {
        thread: std::thread::current().name().unwrap_or_default().to_owned(),
        method: CallContext::current().map(|c| c.method().to_owned()),
        runtime: tokio::runtime::Handle::try_current().is_ok(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_methods_are_answered_on_the_io_thread_with_their_context() {
    let server = start(Server::builder(Probe).io_thread(true));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        // Answered by a task, which shows `serve` has started: until then
        // inline methods go to tasks too.
        let other: Served = client.call("async_probe", ()).await.unwrap();
        assert_ne!(other.thread, "zerorpc-io", "async methods run in tasks");
        assert_eq!(other.method.as_deref(), Some("async_probe"));
        let inline: Served = client.call("inline_probe", ()).await.unwrap();
        assert_eq!(
            inline,
            Served {
                thread: "zerorpc-io".to_owned(),
                method: Some("inline_probe".to_owned()),
                runtime: true,
            }
        );
        assert!(client.call::<bool>("spawns", ()).await.unwrap());
        // Introspection is answered there too, and still lists everything.
        let name: String = client.call("_zerorpc_name", ()).await.unwrap();
        assert_eq!(name, "Probe");
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_concurrency_limit_inline_methods_run_in_tasks() {
    let server = start(Server::builder(Probe).max_concurrent_calls(4));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        let inline: Served = client.call("inline_probe", ()).await.unwrap();
        assert_ne!(inline.thread, "zerorpc-io");
        assert_eq!(inline.method.as_deref(), Some("inline_probe"));
        assert!(inline.runtime);
    })
    .await;
    server.stop().unwrap();
}

/// Inline async methods: answered on the I/O thread when they complete
/// without waiting, by a task when they wait.
#[derive(Default)]
struct Eager {
    started: Arc<AtomicBool>,
    cancelled: Arc<AtomicBool>,
}

/// Sets its flag when dropped: when the future holding it is dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[zerorpc::service]
impl Eager {
    /// Reports where it runs, without waiting.
    #[zerorpc(inline)]
    pub(crate) async fn at_once(&self) -> Served {
        served()
    }

    /// Reports where it runs after waiting `ms` milliseconds.
    #[zerorpc(inline)]
    pub(crate) async fn after(&self, ms: u64) -> Served {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        served()
    }

    /// Panics before or after its first wait.
    #[zerorpc(inline)]
    pub(crate) async fn explode(&self, after_waiting: bool) -> u32 {
        if after_waiting {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("boom")
    }

    /// Waits for ever; reports its cancellation.
    #[zerorpc(inline)]
    pub(crate) async fn hold(&self) -> u32 {
        let _guard = SetOnDrop(self.cancelled.clone());
        self.started.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        0
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_async_methods_answer_on_the_io_thread_unless_they_wait() {
    let server = start(Server::builder(Eager::default()).io_thread(true));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        // Any answer shows `serve` has started: until then inline methods
        // go to tasks too.
        let _: Served = client.call("after", (0,)).await.unwrap();
        let at_once: Served = client.call("at_once", ()).await.unwrap();
        assert_eq!(
            at_once,
            Served {
                thread: "zerorpc-io".to_owned(),
                method: Some("at_once".to_owned()),
                runtime: true,
            }
        );
        // Heartbeats flow while it waits, longer than two intervals.
        let waited: Served = client.call("after", (50,)).await.unwrap();
        assert_ne!(waited.thread, "zerorpc-io", "a task finished it");
        assert_eq!(waited.method.as_deref(), Some("after"));
        for after_waiting in [false, true] {
            let error = client.call::<u32>("explode", (after_waiting,)).await;
            let error = error.expect_err("a panic is an error reply");
            let remote = error.remote().expect("a remote error");
            assert_eq!(remote.name(), "Panic", "after waiting: {after_waiting}");
        }
        // Side by side: calls that wait do not hold up the others.
        let calls = (0..20u64).map(|i| client.call::<Served>("after", (i % 4 * 10,)));
        let served = futures::future::try_join_all(calls).await.unwrap();
        assert!(served.iter().all(|s| s.method.as_deref() == Some("after")));
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_inline_async_call_is_cancelled_when_its_client_is_lost() {
    const HEARTBEAT: Duration = Duration::from_millis(100);
    let eager = Eager::default();
    let (started, cancelled) = (eager.started.clone(), eager.cancelled.clone());
    let server = start(Server::builder(eager).heartbeat(Some(HEARTBEAT)));
    let client = heartbeating_client(&server.endpoint, HEARTBEAT);
    bounded(async {
        let mut call = Box::pin(client.call::<u32>("hold", ()));
        let deadline = Instant::now() + super::TEST_BOUND;
        while !started.load(Ordering::SeqCst) && Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(20), call.as_mut()).await;
        }
        assert!(started.load(Ordering::SeqCst), "the method started");
        drop(call);
        // Loss is declared after two silent intervals; allow many more.
        let gone = tokio::task::spawn_blocking(move || {
            zerorpc_test_support::wait_until(HEARTBEAT * 50, || cancelled.load(Ordering::SeqCst))
        });
        assert!(gone.await.unwrap(), "the server dropped the abandoned call");
    })
    .await;
    server.stop().unwrap();
}

/// Calls another server from an inline method, blocking, as a method that
/// should not be inline may.
struct Nesting {
    leaf: Client,
}

#[zerorpc::service]
impl Nesting {
    /// Answers at once, from a task.
    pub(crate) async fn ready(&self) -> bool {
        true
    }

    /// The leaf's answer, waited for in the socket's turn.
    #[zerorpc(inline)]
    pub(crate) fn nested(&self) -> Result<Served, zerorpc::Error> {
        self.leaf.blocking().call("async_probe", ())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_driven_by_one_runtime_and_run_on_its_own_stops_after_an_inline_method_blocked() {
    // Built here, so driven by this test's runtime, and run on a runtime
    // of its own: its inline methods run on this runtime's workers, and a
    // blocking call there must not leave one of them to the other
    // runtime, whose shutdown would wait for it.
    let leaf = start(Server::builder(Probe));
    let to_leaf = Client::connect(&leaf.endpoint).expect("a client");
    let server = start(Server::builder(Nesting { leaf: to_leaf }).io_thread(false));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        assert!(client.call::<bool>("ready", ()).await.unwrap(), "serving");
        let nested: Served = client.call("nested", ()).await.unwrap();
        assert_eq!(nested.method.as_deref(), Some("async_probe"));
    })
    .await;
    let (stopped, stop) = std::sync::mpsc::channel();
    std::thread::spawn(move || stopped.send(server.stop()));
    let stop = stop.recv_timeout(super::TEST_BOUND);
    stop.expect("the server stops")
        .expect("and returns no error");
}
