//! The queue hub with our own client and server (crate `zerorpc`), alone
//! and mixed with zerorpc-python peers.

use std::time::Duration;

use zerorpc::{Client, Server, ShutdownHandle};
use zerorpc_hub::{Hub, HubKind};
use zerorpc_test_support::PythonPeer;

use crate::support::{LONG, loopback, python_output, python_worker, start, wait_stats};

const HEARTBEAT: Duration = Duration::from_millis(500);

struct Worker {
    name: String,
}

#[zerorpc::service]
impl Worker {
    /// The worker's name.
    pub(crate) fn whoami(&self) -> String {
        self.name.clone()
    }

    /// Sleeps, then says so.
    pub(crate) async fn slow(&self, seconds: f64) -> String {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        format!("slept {seconds}")
    }

    /// Streams 0..n.
    pub(crate) fn numbers(&self, n: u32) -> impl Iterator<Item = u32> + use<> {
        0..n
    }
}

/// Starts one of our workers connected to the hub's `out`.
fn rust_worker(hub: &Hub, name: &str) -> ShutdownHandle {
    let server = Server::builder(Worker {
        name: name.to_owned(),
    })
    .connect(hub.out_endpoint())
    .heartbeat(Some(HEARTBEAT))
    .build()
    .expect("server");
    let handle = server.shutdown_handle();
    tokio::spawn(server.serve());
    handle
}

fn rust_client(hub: &Hub) -> Client {
    Client::builder()
        .connect(hub.in_endpoint())
        .heartbeat(Some(HEARTBEAT))
        .timeout(Some(LONG))
        .build()
        .expect("client")
}

/// `wait_stats` without blocking the runtime's worker thread.
async fn wait_for(
    hub: &Hub,
    what: &'static str,
    condition: impl Fn(&zerorpc_hub::Stats) -> bool + Send + 'static,
) {
    let stats = hub.stats();
    if condition(&stats) {
        return;
    }
    tokio::task::block_in_place(|| wait_stats(hub, what, condition));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_and_our_workers_through_the_hub() {
    let hub = start(loopback(HubKind::Queue));
    let _a = rust_worker(&hub, "R1");
    let _b = rust_worker(&hub, "R2");
    wait_for(&hub, "two workers", |s| s.workers.len() == 2).await;
    let client = rust_client(&hub);

    let mut names = Vec::new();
    for _ in 0..20 {
        names.push(client.call::<String>("whoami", ()).await.expect("whoami"));
    }
    assert_eq!(names.iter().filter(|n| *n == "R1").count(), 10, "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "R2").count(), 10, "{names:?}");

    // Four heartbeat intervals.
    let slept: String = client.call("slow", (2.0,)).await.expect("long call");
    assert_eq!(slept, "slept 2");

    let items: Vec<u32> = client.call("numbers", (3000,)).await.expect("stream");
    assert_eq!(items, (0..3000).collect::<Vec<_>>());
    wait_for(&hub, "all channels closed", |s| {
        s.calls_routed == 22 && s.open_channels == 0
    })
    .await;
    assert_eq!(hub.stats().drops.wrong_peer, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_with_python_workers() {
    let hub = start(loopback(HubKind::Queue));
    let Some(_a) = python_worker(hub.out_endpoint(), "A") else {
        return;
    };
    let Some(_b) = python_worker(hub.out_endpoint(), "B") else {
        return;
    };
    wait_for(&hub, "two workers", |s| s.workers.len() == 2).await;
    let client = rust_client(&hub);

    let mut names = Vec::new();
    for _ in 0..10 {
        names.push(client.call::<String>("whoami", ()).await.expect("whoami"));
    }
    assert!(
        names.contains(&"A".to_owned()) && names.contains(&"B".to_owned()),
        "{names:?}"
    );
    let slept: String = client.call("slow", (2.0,)).await.expect("long call");
    assert_eq!(slept, "slept 2.0");
    let items: Vec<u32> = client.call("numbers", (3000,)).await.expect("stream");
    assert_eq!(items, (0..3000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_our_workers() {
    let hub = start(loopback(HubKind::Queue));
    let _a = rust_worker(&hub, "R1");
    let _b = rust_worker(&hub, "R2");
    wait_for(&hub, "two workers", |s| s.workers.len() == 2).await;
    let script = r#"
import sys, json, zerorpc
client = zerorpc.Client(heartbeat=0.5, timeout=10)
client.connect(sys.argv[1])
names = sorted(set(client.whoami() for _ in range(10)))
slept = client.slow(2.0)
items = list(client.numbers(3000))
print("RESULT", json.dumps([names, slept, items == list(range(3000))]), flush=True)
"#;
    let Some(client) = PythonPeer::spawn(script, &[hub.in_endpoint()]) else {
        return;
    };
    let output = tokio::task::block_in_place(|| python_output(&client, "RESULT"));
    assert_eq!(output, r#"[["R1", "R2"], "slept 2", true]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_gets_lost_remote_when_our_worker_goes() {
    let hub = start(loopback(HubKind::Queue));
    let doomed = rust_worker(&hub, "R1");
    wait_for(&hub, "a worker", |s| s.workers.len() == 1).await;
    // The client's own heartbeat is slow, so a quick error comes from the hub.
    let client = Client::builder()
        .connect(hub.in_endpoint())
        .timeout(Some(LONG))
        .build()
        .expect("client");
    let call = tokio::spawn(async move { client.call::<String>("slow", (60.0,)).await });
    wait_for(&hub, "the call at the worker", |s| {
        s.workers.first().is_some_and(|w| w.outstanding == 1)
    })
    .await;
    let started = std::time::Instant::now();
    doomed.shutdown();
    let error = call.await.expect("join").expect_err("the call must fail");
    let remote = error
        .remote()
        .unwrap_or_else(|| panic!("not a remote error: {error}"));
    assert_eq!(remote.name(), "LostRemote");
    assert_eq!(
        remote.message(),
        "worker disconnected while serving the call"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // A new worker takes the next call.
    let _next = rust_worker(&hub, "R2");
    wait_for(&hub, "the new worker", |s| {
        s.workers.len() == 1 && s.worker_disconnects == 1
    })
    .await;
    let client = rust_client(&hub);
    assert_eq!(
        client.call::<String>("whoami", ()).await.expect("whoami"),
        "R2"
    );
}
