//! `#[zerorpc(inline)]` streams are made on the server socket's I/O
//! thread, item by item as the client's credit allows, with the call's
//! context and the server's runtime at hand; they end with their errors
//! and panics as a task's stream does, wait for credit without holding up
//! heartbeats, are woken from other threads, and are dropped when their
//! client is lost. With a concurrency limit they run in tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::{Stream, StreamExt};
use zerorpc::{CallContext, CallOptions, Client, Server};
use zerorpc_test_support::wait_until;

use super::{Held, bounded, heartbeating_client, start};

/// Where an item was made.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Made {
    index: u64,
    thread: String,
    method: Option<String>,
    runtime: bool,
}

#[derive(Default)]
struct Generator {
    /// Items `counted` made.
    made: Arc<AtomicU64>,
    /// Streams of `endless` alive.
    alive: Arc<AtomicUsize>,
    /// Set once an `endless` stream started.
    started: Arc<AtomicBool>,
}

#[zerorpc::service]
impl Generator {
    /// `n` items, each saying where it was made.
    #[zerorpc(inline)]
    pub(crate) fn numbers(&self, n: u64) -> impl Iterator<Item = Made> + use<> {
        (0..n).map(|index| Made {
            index,
            thread: std::thread::current().name().unwrap_or_default().to_owned(),
            method: CallContext::current().map(|c| c.method().to_owned()),
            runtime: tokio::runtime::Handle::try_current().is_ok(),
        })
    }

    /// `0..n`, counting the items it made.
    #[zerorpc(inline)]
    pub(crate) fn counted(&self, n: u64) -> impl Iterator<Item = u64> + use<> {
        let made = self.made.clone();
        (0..n).inspect(move |_| {
            made.fetch_add(1, Ordering::SeqCst);
        })
    }

    /// `0..n`, one item every millisecond: each wait is woken by the
    /// runtime's timer, on another thread.
    #[zerorpc(inline)]
    pub(crate) fn ticks(&self, n: u64) -> impl Stream<Item = u64> + use<> {
        futures::stream::unfold(0, move |i| async move {
            if i == n {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            Some((i, i + 1))
        })
    }

    /// `0..n` from an async method that waits before its stream starts.
    #[zerorpc(inline)]
    pub(crate) async fn later(&self, n: u64) -> impl Stream<Item = u64> + use<> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        futures::stream::iter(0..n)
    }

    /// `0..n`, then an error.
    #[zerorpc(inline)]
    pub(crate) fn failing(&self, n: u64) -> impl Iterator<Item = Result<u64, String>> + use<> {
        (0..n)
            .map(Ok)
            .chain(std::iter::once(Err(format!("broke after {n}"))))
    }

    /// Two items, then a panic.
    #[zerorpc(inline)]
    pub(crate) fn exploding(&self) -> impl Iterator<Item = u64> + use<> {
        (0..3).map(|i| if i < 2 { i } else { panic!("boom") })
    }

    /// Refuses to stream at all.
    #[zerorpc(inline)]
    pub(crate) fn refusing(&self) -> Result<impl Iterator<Item = u64> + use<>, String> {
        let refusal: Result<(), String> = Err("not today".to_owned());
        refusal.map(|()| std::iter::empty())
    }

    /// Numbers for ever; counted in `alive` while it lives.
    #[zerorpc(inline)]
    pub(crate) fn endless(&self) -> impl Iterator<Item = u64> + use<> {
        self.alive.fetch_add(1, Ordering::SeqCst);
        self.started.store(true, Ordering::SeqCst);
        let held = Held(self.alive.clone());
        (0..).inspect(move |_| {
            let _ = &held;
        })
    }
}

async fn collect<T: serde::de::DeserializeOwned + Send + 'static>(
    client: &Client,
    method: &str,
    args: impl serde::Serialize,
) -> (Vec<T>, Option<zerorpc::Error>) {
    let mut stream = client.stream::<T>(method, args).await.expect("the call");
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(item) => items.push(item),
            Err(e) => return (items, Some(e)),
        }
    }
    (items, None)
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_streams_are_made_on_the_io_thread_with_their_context() {
    let server = start(Server::builder(Generator::default()).io_thread(true));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        // Any answer shows `serve` has started: until then inline methods
        // go to tasks too.
        let _ = collect::<u64>(&client, "later", (0,)).await;
        let (made, error) = collect::<Made>(&client, "numbers", (2_500,)).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(made.len(), 2_500, "every item, past several grants");
        for (i, item) in made.iter().enumerate() {
            let expected = Made {
                index: i as u64,
                thread: "zerorpc-io".to_owned(),
                method: Some("numbers".to_owned()),
                runtime: true,
            };
            assert_eq!(item, &expected);
        }
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_streams_that_wait_are_woken_and_end_as_a_tasks_would() {
    streams_that_wait_are_woken_and_end(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_streams_of_a_server_driven_by_its_runtime_are_woken_and_end_too() {
    streams_that_wait_are_woken_and_end(false).await;
}

async fn streams_that_wait_are_woken_and_end(io_thread: bool) {
    let server = start(Server::builder(Generator::default()).io_thread(io_thread));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        let (ticks, error) = collect::<u64>(&client, "ticks", (50,)).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(ticks, (0..50).collect::<Vec<_>>());
        let (later, _) = collect::<u64>(&client, "later", (10,)).await;
        assert_eq!(later, (0..10).collect::<Vec<_>>());
        let (items, error) = collect::<u64>(&client, "failing", (3,)).await;
        assert_eq!(items, [0, 1, 2]);
        let error = error.expect("the stream's error");
        assert_eq!(error.remote().map(|r| r.message()), Some("broke after 3"));
        let (items, error) = collect::<u64>(&client, "exploding", ()).await;
        assert_eq!(items, [0, 1]);
        let error = error.expect("a panic ends the stream with an error");
        assert_eq!(error.remote().map(|r| r.name()), Some("Panic"));
        let refused = client.stream::<u64>("refusing", ()).await;
        let error = refused.expect_err("the call's error");
        assert_eq!(error.remote().map(|r| r.message()), Some("not today"));
        // Side by side, each stream keeps its items in order.
        let streams = (0..20u64).map(|i| collect::<u64>(&client, "ticks", (i,)));
        for (i, (items, error)) in futures::future::join_all(streams)
            .await
            .into_iter()
            .enumerate()
        {
            assert!(error.is_none(), "{error:?}");
            assert_eq!(items, (0..i as u64).collect::<Vec<_>>());
        }
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inline_stream_makes_no_more_than_its_credit_and_keeps_heartbeating() {
    const HEARTBEAT: Duration = Duration::from_millis(100);
    const WINDOW: u64 = 4;
    let generator = Generator::default();
    let made = generator.made.clone();
    let server = start(Server::builder(generator).heartbeat(Some(HEARTBEAT)));
    let client = heartbeating_client(&server.endpoint, HEARTBEAT);
    bounded(async {
        let options = CallOptions::new().window(WINDOW as u32);
        let mut stream = client
            .stream_with::<u64>("counted", (1_000,), options)
            .await
            .expect("the stream");
        let first = stream.next().await.expect("an item").expect("no error");
        assert_eq!(first, 0);
        // Not reading for five heartbeat intervals: the producer waits for
        // credit while heartbeats flow both ways.
        tokio::time::sleep(HEARTBEAT * 5).await;
        let ahead = made.load(Ordering::SeqCst);
        assert!(
            ahead <= 1 + WINDOW + 1,
            "made {ahead} items with one read and a window of {WINDOW}"
        );
        let mut items = vec![first];
        while let Some(item) = stream.next().await {
            items.push(item.expect("no loss, no error"));
        }
        assert_eq!(items, (0..1_000).collect::<Vec<_>>());
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inline_stream_is_dropped_when_its_client_is_lost() {
    const HEARTBEAT: Duration = Duration::from_millis(100);
    let generator = Generator::default();
    let (alive, started) = (generator.alive.clone(), generator.started.clone());
    let server = start(Server::builder(generator).heartbeat(Some(HEARTBEAT)));
    let client = heartbeating_client(&server.endpoint, HEARTBEAT);
    bounded(async {
        let mut stream = client
            .stream::<u64>("endless", ())
            .await
            .expect("the stream");
        for i in 0..10 {
            assert_eq!(stream.next().await.unwrap().unwrap(), i);
        }
        assert!(started.load(Ordering::SeqCst));
        assert_eq!(alive.load(Ordering::SeqCst), 1, "one stream alive");
        drop(stream);
        drop(client);
        // Loss is declared after two silent intervals; allow many more.
        let gone = tokio::task::spawn_blocking(move || {
            wait_until(HEARTBEAT * 50, || alive.load(Ordering::SeqCst) == 0)
        });
        assert!(
            gone.await.unwrap(),
            "the server dropped the abandoned stream"
        );
    })
    .await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_concurrency_limit_inline_streams_run_in_tasks() {
    let server = start(Server::builder(Generator::default()).max_concurrent_calls(4));
    let client = Client::connect(&server.endpoint).expect("a client");
    bounded(async {
        let (made, error) = collect::<Made>(&client, "numbers", (100,)).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(made.len(), 100);
        assert!(
            made.iter().all(|m| m.thread != "zerorpc-io"),
            "{:?}",
            made[0]
        );
        assert!(made.iter().all(|m| m.method.as_deref() == Some("numbers")));
    })
    .await;
    server.stop().unwrap();
}
