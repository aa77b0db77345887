//! Fire-and-forget events: push/pull and publish/subscribe running the
//! methods of a service.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use zerorpc::{Publisher, Pusher, Receiver};
use zerorpc_test_support::wait_until;

use super::bounded;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[zerorpc::service]
impl Recorder {
    /// Records a message.
    pub(crate) fn record(&self, message: String, n: u32) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("{message} {n}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pushed_events_run_on_the_puller() {
    let recorder = Recorder::default();
    let puller = Arc::new(Receiver::puller(recorder.clone()).unwrap());
    let endpoint = puller.bind("tcp://127.0.0.1:*").unwrap();
    let running = tokio::spawn({
        let puller = puller.clone();
        async move { puller.run().await }
    });
    let pusher = Pusher::new().unwrap();
    pusher.connect(&endpoint).unwrap();
    for n in 0..3 {
        pusher.emit("record", ("pushed", n)).unwrap();
    }
    // Unknown methods and bad arguments are skipped, not fatal.
    pusher.emit("nosuchmethod", ()).unwrap();
    pusher.emit("record", ("pushed",)).unwrap();
    pusher.emit("record", ("pushed", 3)).unwrap();
    let seen = recorder.clone();
    let all = tokio::task::spawn_blocking(move || wait_until(WAIT, || seen.seen().len() >= 4))
        .await
        .unwrap();
    assert!(all, "got {:?}", recorder.seen());
    assert_eq!(
        recorder.seen(),
        ["pushed 0", "pushed 1", "pushed 2", "pushed 3"]
    );
    puller.close();
    bounded(running)
        .await
        .unwrap()
        .expect("run returns Ok once closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn published_events_run_on_the_subscriber() {
    let recorder = Recorder::default();
    let subscriber = Arc::new(Receiver::subscriber(recorder.clone()).unwrap());
    let publisher = Publisher::new().unwrap();
    let endpoint = publisher.bind("tcp://127.0.0.1:*").unwrap();
    subscriber.connect(&endpoint).unwrap();
    let running = tokio::spawn({
        let subscriber = subscriber.clone();
        async move { subscriber.run().await }
    });
    // A subscriber misses what is published before it has joined, so keep
    // publishing until one arrives.
    let seen = recorder.clone();
    let publishing = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        wait_until(WAIT, || {
            publisher.emit("record", ("published", n)).unwrap();
            n += 1;
            !seen.seen().is_empty()
        })
    });
    assert!(publishing.await.unwrap(), "a published event arrived");
    assert!(
        recorder.seen().iter().all(|m| m.starts_with("published ")),
        "{:?}",
        recorder.seen()
    );
    subscriber.close();
    bounded(running)
        .await
        .unwrap()
        .expect("run returns Ok once closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_counts_the_publisher_it_dropped_for_an_oversized_event() {
    let subscriber = Receiver::subscriber_builder(Recorder::default())
        .max_message_size(Some(1024))
        .build()
        .unwrap();
    let publisher = Publisher::new().unwrap();
    let endpoint = publisher.bind("tcp://127.0.0.1:*").unwrap();
    subscriber.connect(&endpoint).unwrap();
    // The subscription reaches the publisher some time after connecting;
    // until then its events go nowhere.
    let big = "x".repeat(4096);
    let mut counted = false;
    for _ in 0..200 {
        publisher.emit("record", (&big, 1)).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        if subscriber.stats().connections_closed > 0 {
            counted = true;
            break;
        }
    }
    assert!(counted, "{:?}", subscriber.stats());
    assert_eq!(subscriber.stats().connections_closed, 1);
}
