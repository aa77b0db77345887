//! A hub in the transport's process-wide ZeroMQ context reaches our own
//! peers over `inproc://`; a hub in a context of its own does not, which is
//! why the `zerorpc-hub` binary and embedders share one.
//!
//! A queue's workers connect to `out` over tcp here: the queue learns of
//! workers through libzmq's ROUTER_NOTIFY, which libzmq 4.3.4 raises in its
//! stream engine only, so never for an inproc connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use zerorpc::{Client, Pusher, Receiver, Server, ShutdownHandle};
use zerorpc_hub::{Hub, HubConfig, HubKind};

use crate::support::{LONG, wait_stats};

fn inproc(name: &str, side: &str) -> String {
    format!("inproc://hub-{name}-{side}-{}", std::process::id())
}

struct Echo;

#[zerorpc::service]
impl Echo {
    /// Returns its argument.
    pub(crate) fn echo(&self, text: String) -> String {
        text
    }
}

fn worker(hub: &Hub) -> ShutdownHandle {
    let server = Server::builder(Echo)
        .connect(hub.out_endpoint())
        .build()
        .expect("server");
    let handle = server.shutdown_handle();
    tokio::spawn(server.serve());
    handle
}

fn client(hub: &Hub, timeout: Duration) -> Client {
    Client::builder()
        .connect(hub.in_endpoint())
        .timeout(Some(timeout))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_in_the_transport_context_takes_calls_over_inproc() {
    let config = HubConfig::new(HubKind::Queue, inproc("queue", "in"), "tcp://127.0.0.1:*");
    let hub = Hub::start_in(config, zerorpc::transport::context()).expect("hub");
    let _worker = worker(&hub);
    tokio::task::block_in_place(|| wait_stats(&hub, "the worker", |s| s.workers.len() == 1));
    let client = client(&hub, LONG);

    let reply: String = client.call("echo", ("over inproc",)).await.expect("call");
    assert_eq!(reply, "over inproc");
}

/// Records the events it is sent.
struct Sink {
    seen: mpsc::UnboundedSender<String>,
}

#[zerorpc::service]
impl Sink {
    /// Records `text`.
    pub(crate) fn note(&self, text: String) {
        let _ = self.seen.send(text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamer_in_the_transport_context_relays_over_inproc_on_both_sides() {
    let config = HubConfig::new(
        HubKind::Streamer,
        inproc("streamer", "in"),
        inproc("streamer", "out"),
    );
    let hub = Hub::start_in(config, zerorpc::transport::context()).expect("hub");
    let (seen, mut received) = mpsc::unbounded_channel();
    let puller = Arc::new(Receiver::puller(Sink { seen }).expect("puller"));
    puller.connect(hub.out_endpoint()).expect("connect puller");
    let running = Arc::clone(&puller);
    tokio::spawn(async move { running.run().await });
    let pusher = Pusher::new().expect("pusher");
    pusher.connect(hub.in_endpoint()).expect("connect pusher");

    pusher.emit("note", ("over inproc",)).expect("emit");
    let text = tokio::time::timeout(LONG, received.recv()).await;
    assert_eq!(text, Ok(Some("over inproc".to_owned())));
    puller.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_in_a_context_of_its_own_is_out_of_inproc_reach() {
    let config = HubConfig::new(HubKind::Queue, inproc("own", "in"), "tcp://127.0.0.1:*");
    let hub = Hub::start(config).expect("hub");
    let _worker = worker(&hub);
    tokio::task::block_in_place(|| wait_stats(&hub, "the worker", |s| s.workers.len() == 1));
    let client = client(&hub, Duration::from_millis(300));

    let error = client
        .call::<String>("echo", ("lost",))
        .await
        .expect_err("no route over inproc between contexts");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(hub.stats().calls_routed, 0);
}

#[test]
fn a_queue_refuses_workers_over_inproc_rather_than_routing_nothing() {
    let config = HubConfig::new(
        HubKind::Queue,
        "tcp://127.0.0.1:*",
        "inproc://shared-context-queue-workers",
    );
    let error = Hub::start_in(config, zerorpc::transport::context())
        .expect_err("a queue cannot see inproc workers");
    let text = error.to_string();
    assert!(
        text.contains("bad out endpoint") && text.contains("use tcp:// or ipc://"),
        "{text}"
    );
}
