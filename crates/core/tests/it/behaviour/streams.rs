//! Streamed replies: iterators and async streams, errors before and during
//! a stream, empty and large streams, and back-pressure on the producer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{Stream, StreamExt};
use zerorpc::transport::{DEFAULT_LOSSLESS_WINDOW, Direction, EventInfo, Observer};
use zerorpc::{CallOptions, Client, ReplyStream, STREAM_READ_AHEAD, Server};
use zerorpc_test_support::wait_until;

use super::{Held, bounded, heartbeating_client, start};

struct Numbers {
    produced: Arc<AtomicUsize>,
}

#[zerorpc::service]
impl Numbers {
    /// Counts from 0 to n-1 with an iterator.
    pub(crate) fn count(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        0..n
    }

    /// Streams `value` `n` times, with an iterator.
    pub(crate) fn repeat(
        &self,
        value: zerorpc::Value,
        n: u32,
    ) -> impl Iterator<Item = zerorpc::Value> + use<> {
        std::iter::repeat_n(value, n as usize)
    }

    /// Streams 1/2, 1/4... (`n` items) as 32-bit floats.
    pub(crate) fn halves(&self, n: i32) -> impl Iterator<Item = zerorpc::Value> + use<> {
        (1..=n).map(|i| zerorpc::Value::F32(0.5_f32.powi(i)))
    }

    /// Streams `n` chunks of `size` bytes, each byte its chunk's number,
    /// with an async stream.
    pub(crate) fn chunks(&self, n: u8, size: usize) -> impl Stream<Item = Vec<u8>> + use<> {
        futures::stream::iter((0..n).map(move |i| vec![i; size]))
    }

    /// Counts from 0 to n-1 with an async stream that really suspends.
    pub(crate) fn ticks(&self, n: u32) -> impl Stream<Item = u32> + use<> {
        futures::stream::unfold(0, move |i| async move {
            tokio::task::yield_now().await;
            (i < n).then_some((i, i + 1))
        })
    }

    /// Counts up to n, but only for non-negative n.
    pub(crate) fn checked(&self, n: i64) -> Result<impl Iterator<Item = i64> + use<>, String> {
        if n < 0 {
            Err(format!("cannot count to {n}"))
        } else {
            Ok(0..n)
        }
    }

    /// Counts up to n with an async stream, for non-negative n only.
    pub(crate) async fn checked_ticks(
        &self,
        n: i64,
    ) -> Result<impl Stream<Item = i64> + use<>, String> {
        tokio::task::yield_now().await;
        if n < 0 {
            return Err(format!("cannot tick to {n}"));
        }
        Ok(futures::stream::iter(0..n))
    }

    /// Counts down from n with an iterator made by an async method.
    pub(crate) async fn countdown(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        tokio::task::yield_now().await;
        (0..n).rev()
    }

    /// Makes a stream of n items, panicking before making it when n is 0.
    pub(crate) async fn picky(&self, n: u32) -> impl Stream<Item = u32> + use<> {
        assert!(n > 0, "no stream of {n} items");
        futures::stream::iter(0..n)
    }

    /// Counts up to n, failing at `fail_at`.
    pub(crate) async fn flaky(
        &self,
        n: u32,
        fail_at: u32,
    ) -> impl Stream<Item = Result<u32, String>> + use<> {
        futures::stream::iter((0..n).map(move |i| {
            if i == fail_at {
                Err(format!("failed at {i}"))
            } else {
                Ok(i)
            }
        }))
    }

    /// Counts up to n, panicking at `panic_at`.
    pub(crate) fn boom(&self, n: u32, panic_at: u32) -> impl Stream<Item = u32> + use<> {
        futures::stream::iter(0..n).map(move |i| {
            assert!(i != panic_at, "kaboom at {i}");
            i
        })
    }

    /// Counts up to n with an async stream, recording how many items were
    /// produced, each with the method of the call producing it.
    pub(crate) fn produce_async(&self, n: usize) -> impl Stream<Item = String> + use<> {
        let produced = self.produced.clone();
        futures::stream::unfold(0, move |i| {
            let produced = produced.clone();
            async move {
                tokio::task::yield_now().await;
                (i < n).then(|| {
                    produced.fetch_add(1, Ordering::SeqCst);
                    let method = zerorpc::CallContext::current().map(|c| c.method().to_owned());
                    (method.unwrap_or_default(), i + 1)
                })
            }
        })
    }

    /// Counts up to n, recording how many items were produced.
    pub(crate) fn produce(&self, n: usize) -> impl Iterator<Item = usize> + use<> {
        let produced = self.produced.clone();
        (0..n).inspect(move |_| {
            produced.fetch_add(1, Ordering::SeqCst);
        })
    }
}

fn numbers() -> (super::Running, Client, Arc<AtomicUsize>) {
    let produced = Arc::new(AtomicUsize::new(0));
    let server = start(Server::builder(Numbers {
        produced: produced.clone(),
    }));
    let client = Client::connect(&server.endpoint).expect("a client");
    (server, client, produced)
}

async fn collect<T>(stream: ReplyStream<T>) -> Vec<zerorpc::Result<T>> {
    stream.collect().await
}

#[tokio::test(flavor = "multi_thread")]
async fn iterator_method_streams_its_items() {
    let (_server, client, _) = numbers();
    bounded(async {
        let items: Vec<u32> = collect(client.stream("count", (5,)).await.unwrap())
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, [0, 1, 2, 3, 4]);
        // `call` collects a stream into a sequence.
        assert_eq!(
            client.call::<Vec<u32>>("count", (3,)).await.unwrap(),
            [0, 1, 2]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn value_and_byte_items_travel_exactly_as_made() {
    use zerorpc::{CallOptions, Response, Value};
    let (_server, client, _) = numbers();
    // What serde has no word for travels too: ext types, 32-bit floats.
    let value = Value::Array(vec![
        Value::F32(0.5),
        Value::Ext(3, vec![1]),
        Value::Map(vec![(Value::from(2), Value::Binary(vec![4]))]),
    ]);
    bounded(async {
        let args = vec![value.clone(), Value::from(3)];
        let Response::Stream(stream) = client
            .invoke("repeat", args, CallOptions::new())
            .await
            .unwrap()
        else {
            panic!("repeat answers a stream");
        };
        let items: Vec<Value> = collect(stream)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, vec![value.clone(); 3]);
        // Items asked for as `Value`s come as they were made.
        let typed = client.stream::<Value>("halves", (2,)).await;
        let items: Vec<Value> = collect(typed.unwrap())
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, [Value::F32(0.5), Value::F32(0.25)]);

        let chunks: Vec<Value> = collect(client.stream("chunks", (3, 5)).await.unwrap())
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let expected: Vec<Value> = (0..3).map(|i| Value::Binary(vec![i; 5])).collect();
        assert_eq!(chunks, expected, "bytes travel as bin");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn async_stream_method_streams_its_items() {
    let (_server, client, _) = numbers();
    bounded(async {
        let items: Vec<u32> = collect(client.stream("ticks", (4,)).await.unwrap())
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items, [0, 1, 2, 3]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_method_fails_before_streaming_or_streams() {
    let (_server, client, _) = numbers();
    bounded(async {
        // A sync method's iterator, an async method's stream.
        for (method, refusal) in [
            ("checked", "cannot count to -1"),
            ("checked_ticks", "cannot tick to -1"),
        ] {
            assert_eq!(
                client.call::<Vec<i64>>(method, (2,)).await.unwrap(),
                [0, 1],
                "{method}"
            );
            let error = client
                .stream::<i64>(method, (-1,))
                .await
                .expect_err("no stream for a negative count");
            assert_eq!(
                error.remote().map(|e| e.message()),
                Some(refusal),
                "{method}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_async_methods_iterator_is_streamed() {
    let (_server, client, _) = numbers();
    bounded(async {
        let items = collect(client.stream::<u32>("countdown", (3,)).await.unwrap()).await;
        let items: Vec<u32> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(items, [2, 1, 0]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_before_an_async_stream_is_made_is_its_error() {
    let (_server, client, _) = numbers();
    bounded(async {
        let error = client
            .stream::<u32>("picky", (0,))
            .await
            .expect_err("the panic's error, in place of the stream");
        let remote = error.remote().expect("a remote error");
        assert!(
            remote.message().contains("no stream of 0 items"),
            "{remote:?}"
        );
        // The server goes on serving.
        let items = collect(client.stream::<u32>("picky", (2,)).await.unwrap()).await;
        assert_eq!(items.len(), 2, "{items:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn error_mid_stream_comes_after_the_items() {
    let (_server, client, _) = numbers();
    bounded(async {
        let items = collect(client.stream::<u32>("flaky", (5, 3)).await.unwrap()).await;
        assert_eq!(items.len(), 4, "three items then the error: {items:?}");
        let values: Vec<u32> = items[..3].iter().map(|r| *r.as_ref().unwrap()).collect();
        assert_eq!(values, [0, 1, 2]);
        let error = items[3]
            .as_ref()
            .expect_err("the stream ends with the error");
        assert_eq!(error.remote().map(|e| e.message()), Some("failed at 3"));
        // `call` reports the error too, rather than a truncated sequence.
        assert!(
            client
                .call::<Vec<u32>>("flaky", (5, 3))
                .await
                .unwrap_err()
                .is_remote()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_stream_has_no_items() {
    let (_server, client, _) = numbers();
    bounded(async {
        assert!(
            collect(client.stream::<u32>("count", (0,)).await.unwrap())
                .await
                .is_empty()
        );
        assert!(
            collect(client.stream::<u32>("ticks", (0,)).await.unwrap())
                .await
                .is_empty()
        );
        assert_eq!(
            client.call::<Vec<u32>>("count", (0,)).await.unwrap(),
            Vec::<u32>::new()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn large_stream_is_produced_only_as_fast_as_it_is_consumed() {
    const TOTAL: usize = 10_000;
    const WINDOW: u32 = 20;
    // Items made beyond the window: the producer's read-ahead, the one
    // being sent, and the one awaiting credit.
    const SLACK: usize = STREAM_READ_AHEAD + 5;
    let (_server, client, produced) = numbers();
    bounded(async {
        let response = client
            .invoke(
                "produce",
                vec![TOTAL.into()],
                CallOptions::new().window(WINDOW),
            )
            .await
            .unwrap();
        let zerorpc::Response::Stream(mut stream) = response else {
            panic!("produce answers with a stream")
        };
        let mut consumed = 0;
        for k in [1, 100, 2_000] {
            while consumed < k {
                stream.next().await.expect("more items").expect("an item");
                consumed += 1;
            }
            // Give an eager producer every chance to run ahead.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let ahead = produced.load(Ordering::SeqCst);
            assert!(
                ahead < k + WINDOW as usize + SLACK,
                "after {k} consumed items the server produced {ahead}"
            );
        }
        let mut last = None;
        while let Some(item) = stream.next().await {
            last = Some(item.unwrap().as_u64().unwrap());
            consumed += 1;
        }
        assert_eq!(consumed, TOTAL);
        assert_eq!(last, Some(TOTAL as u64 - 1));
        assert_eq!(produced.load(Ordering::SeqCst), TOTAL);
    })
    .await;
}

/// The `_zpc_more` credit a client grants.
#[derive(Default)]
struct Grants(Mutex<Vec<i64>>);

impl Observer for Grants {
    fn on_event(&self, info: &EventInfo) {
        if info.direction == Direction::Sent && info.event.name == "_zpc_more" {
            let credit = info.event.args[0].as_i64().expect("_zpc_more [n]");
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(credit);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn our_server_gets_the_lossless_window_from_our_client() {
    const TOTAL: usize = 6_000;
    const SLACK: usize = STREAM_READ_AHEAD + 5;
    let produced = Arc::new(AtomicUsize::new(0));
    let server = start(Server::builder(Numbers {
        produced: produced.clone(),
    }));
    let grants = Arc::new(Grants::default());
    let client = Client::builder()
        .connect(&server.endpoint)
        .observer(grants.clone())
        .build()
        .unwrap();
    bounded(async {
        let response = client
            .invoke("produce", vec![TOTAL.into()], CallOptions::new())
            .await
            .unwrap();
        let zerorpc::Response::Stream(mut stream) = response else {
            panic!("produce answers with a stream")
        };
        stream.next().await.expect("an item").expect("an item");
        stream.next().await.expect("an item").expect("an item");
        // The server said it is lossless on its first item, so the first
        // grant is the lossless window; the producer runs that far ahead
        // and no further.
        let window = DEFAULT_LOSSLESS_WINDOW as usize;
        for _ in 0..500 {
            if produced.load(Ordering::SeqCst) >= window {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Give an eager producer every chance to run further.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let ahead = produced.load(Ordering::SeqCst);
        assert!(
            (window..2 + window + SLACK).contains(&ahead),
            "produced {ahead} with {window} of credit"
        );
        let mut consumed = 2;
        while let Some(item) = stream.next().await {
            assert_eq!(item.unwrap().as_u64(), Some(consumed));
            consumed += 1;
        }
        assert_eq!(consumed, TOTAL as u64);
    })
    .await;
    let grants = grants
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(grants.first(), Some(&i64::from(DEFAULT_LOSSLESS_WINDOW)));
    assert!(grants.iter().all(|&credit| credit <= 2000), "{grants:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_chosen_for_the_client_applies_to_our_servers_too() {
    let (server, _, _) = numbers();
    let grants = Arc::new(Grants::default());
    let client = Client::builder()
        .connect(&server.endpoint)
        .window(100)
        .observer(grants.clone())
        .build()
        .unwrap();
    bounded(async {
        let stream = client.stream::<u32>("count", (1_000,)).await.unwrap();
        let items: Vec<u32> = stream.map(Result::unwrap).collect().await;
        assert_eq!(items, (0..1_000).collect::<Vec<_>>());
    })
    .await;
    let grants = grants
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(grants.first(), Some(&100), "{grants:?}");
    assert!(grants.iter().all(|&credit| credit <= 100), "{grants:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_in_an_async_stream_ends_it_with_an_error_after_its_items() {
    let (_server, client, _) = numbers();
    bounded(async {
        let items = collect(client.stream::<u32>("boom", (5, 2)).await.unwrap()).await;
        assert_eq!(items.len(), 3, "two items then the error: {items:?}");
        assert_eq!(*items[1].as_ref().unwrap(), 1);
        let error = items[2].as_ref().expect_err("the panic's error");
        let remote = error.remote().expect("a remote error");
        assert!(remote.message().contains("kaboom at 2"), "{remote:?}");
        // The server goes on serving.
        let more = collect(client.stream::<u32>("boom", (3, 9)).await.unwrap()).await;
        assert_eq!(more.len(), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_async_stream_is_paced_by_credit_in_its_calls_context() {
    const TOTAL: usize = 3_000;
    const WINDOW: u32 = 20;
    let (_server, client, produced) = numbers();
    bounded(async {
        let response = client
            .invoke(
                "produce_async",
                vec![TOTAL.into()],
                CallOptions::new().window(WINDOW),
            )
            .await
            .unwrap();
        let zerorpc::Response::Stream(mut stream) = response else {
            panic!("produce_async answers with a stream")
        };
        let mut consumed = 0;
        for k in [1, 100, 1_000] {
            while consumed < k {
                let item = stream.next().await.expect("more items").expect("an item");
                assert_eq!(item.as_str(), Some("produce_async"), "{item:?}");
                consumed += 1;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            // The producer runs no further ahead than what credit lets the
            // server send, its read-ahead and the one item handed over.
            let ahead = produced.load(Ordering::SeqCst);
            assert!(
                ahead <= k + WINDOW as usize + STREAM_READ_AHEAD + 1,
                "after {k} consumed items the server produced {ahead}"
            );
        }
        while let Some(item) = stream.next().await {
            item.unwrap();
            consumed += 1;
        }
        assert_eq!(consumed, TOTAL);
        assert_eq!(produced.load(Ordering::SeqCst), TOTAL);
    })
    .await;
}

/// `live` counts the streams of `stall` not dropped yet.
struct Stalling {
    live: Arc<AtomicUsize>,
}

#[zerorpc::service]
impl Stalling {
    /// One item, then waits for ever for the next one (a feed gone quiet).
    pub(crate) fn stall(&self) -> impl Stream<Item = u32> + use<> {
        self.live.fetch_add(1, Ordering::SeqCst);
        let held = Held(self.live.clone());
        futures::stream::once(async { 0 })
            .chain(futures::stream::pending())
            .map(move |item| {
                let _held = &held;
                item
            })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_waiting_for_its_next_item_is_dropped_once_its_client_is_lost() {
    const HEARTBEAT: Duration = Duration::from_millis(200);
    let live = Arc::new(AtomicUsize::new(0));
    let server = start(Server::builder(Stalling { live: live.clone() }).heartbeat(Some(HEARTBEAT)));
    let client = heartbeating_client(&server.endpoint, HEARTBEAT);
    bounded(async {
        let mut stream = client.stream::<u32>("stall", ()).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), 0);
        assert_eq!(live.load(Ordering::SeqCst), 1, "the stream waits");
        drop(stream);
        // Loss is declared after two silent intervals; allow many more.
        let gone = tokio::task::spawn_blocking(move || {
            wait_until(HEARTBEAT * 25, || live.load(Ordering::SeqCst) == 0)
        });
        assert!(
            gone.await.unwrap(),
            "the server dropped the stream that waited for an item nobody would take"
        );
    })
    .await;
}
