//! Observers attached through the core's builders and event sockets see
//! what their sockets send and receive.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use zerorpc::transport::{ChangeKind, ChannelChange, Direction, EventInfo, Observer};
use zerorpc::wire::MessageId;
use zerorpc::{Client, Publisher, Pusher, Receiver, Server};
use zerorpc_test_support::wait_until;

use super::{bounded, start};

const WAIT: Duration = Duration::from_secs(10);

/// What one socket saw: (direction, event name, channel) and channel
/// changes in order.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<(Direction, String, Option<MessageId>)>>,
    changes: Mutex<Vec<ChannelChange>>,
}

impl Observer for Seen {
    fn on_event(&self, info: &EventInfo) {
        let record = (
            info.direction,
            info.event.name.to_string(),
            info.channel.clone(),
        );
        lock(&self.events).push(record);
    }

    fn on_channel(&self, change: &ChannelChange) {
        lock(&self.changes).push(change.clone());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Seen {
    fn channel_of(&self, direction: Direction, name: &str) -> Option<Option<MessageId>> {
        lock(&self.events)
            .iter()
            .find(|(d, n, _)| *d == direction && n == name)
            .map(|(_, _, channel)| channel.clone())
    }
}

struct Echo;

#[zerorpc::service]
impl Echo {
    /// Returns its argument.
    pub(crate) fn echo(&self, text: String) -> String {
        text
    }

    /// Records nothing: a target for events.
    pub(crate) fn note(&self, _text: String) {}
}

#[tokio::test(flavor = "multi_thread")]
async fn client_and_server_builders_take_observers() {
    let on_server = Arc::new(Seen::default());
    let server = start(Server::builder(Echo).observer(on_server.clone()));
    let on_client = Arc::new(Seen::default());
    let client = Client::builder()
        .connect(&server.endpoint)
        .observer(on_client.clone())
        .build()
        .unwrap();
    let answer: String = bounded(client.call("echo", ("hi",))).await.unwrap();
    assert_eq!(answer, "hi");

    let request = on_client.channel_of(Direction::Sent, "echo").expect("sent");
    let channel = request.expect("a request opens a channel");
    assert_eq!(
        on_client.channel_of(Direction::Received, "OK"),
        Some(Some(channel.clone()))
    );
    assert!(wait_until(WAIT, || on_server
        .channel_of(Direction::Sent, "OK")
        .is_some()));
    assert_eq!(
        on_server.channel_of(Direction::Received, "echo"),
        Some(Some(channel.clone()))
    );
    assert_eq!(
        on_server.channel_of(Direction::Sent, "OK"),
        Some(Some(channel.clone()))
    );
    let opened = lock(&on_client.changes)
        .iter()
        .any(|c| matches!(c.change, ChangeKind::Opened) && c.channel.as_ref() == Some(&channel));
    assert!(opened);
}

#[tokio::test(flavor = "multi_thread")]
async fn event_sockets_take_observers() {
    let on_puller = Arc::new(Seen::default());
    let puller = Arc::new(Receiver::puller_with_observers(Echo, vec![on_puller.clone()]).unwrap());
    let endpoint = puller.bind("tcp://127.0.0.1:*").unwrap();
    let running = tokio::spawn({
        let puller = puller.clone();
        async move { puller.run().await }
    });
    let on_pusher = Arc::new(Seen::default());
    let pusher = Pusher::with_observers(vec![on_pusher.clone()]).unwrap();
    pusher.connect(&endpoint).unwrap();
    pusher.emit("note", ("pushed",)).unwrap();
    assert!(eventually_seen(&on_puller, Direction::Received, "note").await);
    // Events of event sockets belong to no channel. A sender's observers
    // hear of an event after libzmq took it, so the peer may have it first.
    assert!(eventually_seen(&on_pusher, Direction::Sent, "note").await);
    assert_eq!(on_pusher.channel_of(Direction::Sent, "note"), Some(None));
    assert_eq!(
        on_puller.channel_of(Direction::Received, "note"),
        Some(None)
    );
    puller.close();
    bounded(running).await.unwrap().unwrap();

    let on_subscriber = Arc::new(Seen::default());
    let subscriber =
        Arc::new(Receiver::subscriber_with_observers(Echo, vec![on_subscriber.clone()]).unwrap());
    let on_publisher = Arc::new(Seen::default());
    let publisher = Publisher::with_observers(vec![on_publisher.clone()]).unwrap();
    let endpoint = publisher.bind("tcp://127.0.0.1:*").unwrap();
    subscriber.connect(&endpoint).unwrap();
    let running = tokio::spawn({
        let subscriber = subscriber.clone();
        async move { subscriber.run().await }
    });
    // A subscriber misses what is published before it has joined.
    let seen = on_subscriber.clone();
    let publishing = tokio::task::spawn_blocking(move || {
        wait_until(WAIT, || {
            publisher.emit("note", ("published",)).unwrap();
            seen.channel_of(Direction::Received, "note").is_some()
        })
    });
    assert!(publishing.await.unwrap());
    assert!(eventually_seen(&on_publisher, Direction::Sent, "note").await);
    assert_eq!(on_publisher.channel_of(Direction::Sent, "note"), Some(None));
    subscriber.close();
    bounded(running).await.unwrap().unwrap();
}

/// Whether `seen` hears of an event `name` going `direction` within
/// [`WAIT`] (polled off the runtime's workers).
async fn eventually_seen(seen: &Arc<Seen>, direction: Direction, name: &'static str) -> bool {
    let seen = Arc::clone(seen);
    tokio::task::spawn_blocking(move || {
        wait_until(WAIT, || seen.channel_of(direction, name).is_some())
    })
    .await
    .unwrap()
}
