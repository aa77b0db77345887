//! Faults of a server or hub process, as one client object lives through
//! them: a server SIGKILLed in the middle of a call and of a stream, then
//! started again on the same endpoint; a server stopped (SIGSTOP) for
//! longer than the heartbeat allows, then continued; a queue hub killed
//! and started again; a worker killed behind the hub in the middle of a
//! stream. The client is never rebuilt.

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use zerorpc::Client;
use zerorpc_test_support::{Process, free_tcp_endpoint};

use crate::support::{LoadServer, START, heavy, hub_binary, took};

/// The heartbeat interval of both sides.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long a loss may take to show: three intervals, and slack for a
/// busy machine running a debug build.
const NOTICED_WITHIN: Duration = Duration::from_secs(3 + 5);
/// The most a restarted server may take to answer the client again.
const BACK_WITHIN: Duration = Duration::from_secs(30);

/// A runtime for a test: the tests are plain functions so that they hold
/// [`heavy`]'s lock outside of any future; multi-threaded, for
/// `block_in_place`.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A call of `nap(30)`, running until its server answers or is lost.
fn nap_in_flight(client: &Client) -> tokio::task::JoinHandle<zerorpc::Result<i64>> {
    let client = client.clone();
    tokio::spawn(async move { client.call::<i64>("nap", (30.0, 7)).await })
}

/// Waits for what `call` ends with, which must be the loss of its server.
async fn lost(call: tokio::task::JoinHandle<zerorpc::Result<i64>>, what: &str) {
    let error = tokio::time::timeout(NOTICED_WITHIN, call)
        .await
        .unwrap_or_else(|_| panic!("the call outlived {what}"))
        .unwrap()
        .expect_err(what);
    assert!(error.is_lost_remote(), "{error}");
}

/// Items read from a stream before its server is hurt.
const HALF: u64 = 10;

/// A stream of `count` that never ends by itself, its first [`HALF`]
/// items read.
async fn half_read_stream(
    client: &Client,
) -> impl futures::Stream<Item = zerorpc::Result<u64>> + Unpin + use<> {
    let mut stream = client
        .stream::<u64>("count", (u64::MAX >> 1,))
        .await
        .unwrap();
    for expected in 0..HALF {
        assert_eq!(stream.next().await.unwrap().unwrap(), expected);
    }
    stream
}

/// Reads `stream` on from item `next` until it ends, checking the order,
/// and returns how it ended: within [`NOTICED_WITHIN`].
async fn stream_end(
    stream: &mut (impl futures::Stream<Item = zerorpc::Result<u64>> + Unpin),
    mut next: u64,
) -> Option<zerorpc::Result<u64>> {
    let end = async {
        loop {
            match stream.next().await {
                Some(Ok(item)) => {
                    assert_eq!(item, next, "items out of order or lost");
                    next += 1;
                }
                other => break other,
            }
        }
    };
    tokio::time::timeout(NOTICED_WITHIN, end)
        .await
        .expect("the stream outlived its server")
}

fn client(endpoint: &str) -> Client {
    Client::builder()
        .connect(endpoint)
        .heartbeat(Some(INTERVAL))
        .timeout(Some(Duration::from_secs(60)))
        .build()
        .expect("client")
}

/// Waits until the server naps one call. Its `stats()` is asked through a
/// blocking client: off the runtime's hands.
fn wait_napping(server: &LoadServer) {
    let napping = tokio::task::block_in_place(|| {
        zerorpc_test_support::wait_until(BACK_WITHIN, || server.stats()["napping"] == 1)
    });
    assert!(napping, "the call never reached the server");
}

fn server_on(endpoint: &str) -> LoadServer {
    LoadServer::start(&["--heartbeat", "1", "--bind", endpoint])
}

/// Calls `add(1, 2)` until it answers (a restarted server's socket may
/// take a moment to be reconnected), at most for `within`.
async fn answers_again(client: &Client, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), client.call::<i64>("add", (1, 2))).await;
        match attempt {
            Ok(Ok(sum)) => {
                assert_eq!(sum, 3);
                return started.elapsed();
            }
            Ok(Err(e)) if !(e.is_lost_remote() || e.is_timeout()) => {
                panic!("the server came back with a wrong answer: {e}")
            }
            _ => {}
        }
        assert!(
            started.elapsed() < within,
            "no answer {within:?} after the server came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_killed_server_fails_its_call_and_stream_and_its_restart_serves_the_same_client() {
    let _heavy = heavy();
    runtime().block_on(async {
        let started = Instant::now();
        let mut server = server_on("tcp://127.0.0.1:*");
        let endpoint = server.endpoint.clone();
        let client = client(&endpoint);
        assert_eq!(client.call::<i64>("add", (2, 2)).await.unwrap(), 4);

        // A call waiting in the server, and a stream half read.
        let call = nap_in_flight(&client);
        let mut stream = half_read_stream(&client).await;
        wait_napping(&server);

        let killed = Instant::now();
        server.process.signal(libc::SIGKILL).expect("SIGKILL");
        lost(call, "a killed server").await;
        // What the stream had already received is read; then the loss.
        match stream_end(&mut stream, HALF).await {
            Some(Err(e)) => assert!(e.is_lost_remote(), "{e}"),
            other => panic!("the stream of a killed server ended with {other:?}"),
        }
        eprintln!("loss noticed {:?} after the kill", killed.elapsed());

        // The same client object, a new server on the same endpoint.
        drop(server);
        let _server = server_on(&endpoint);
        let back = answers_again(&client, BACK_WITHIN).await;
        eprintln!("answered again {back:?} after the restart");
        took("killed and restarted server", started);
    });
}

#[test]
fn a_stopped_server_is_lost_after_the_heartbeat_and_serves_again_once_continued() {
    let _heavy = heavy();
    runtime().block_on(async {
        let started = Instant::now();
        let mut server = server_on("tcp://127.0.0.1:*");
        let client = client(&server.endpoint);
        assert_eq!(client.call::<i64>("add", (2, 2)).await.unwrap(), 4);

        let call = nap_in_flight(&client);
        wait_napping(&server);

        // A partition: the process is there, its heartbeats are not.
        server.process.signal(libc::SIGSTOP).expect("SIGSTOP");
        let outcome = tokio::time::timeout(NOTICED_WITHIN, call).await;
        // Continue it before asserting, so that a failure leaves no stopped
        // process behind.
        server.process.signal(libc::SIGCONT).expect("SIGCONT");
        let error = outcome
            .expect("the call outlived the partition")
            .unwrap()
            .expect_err("a stopped server answered");
        assert!(error.is_lost_remote(), "{error}");

        let back = answers_again(&client, BACK_WITHIN).await;
        eprintln!("answered again {back:?} after SIGCONT");
        took("stopped and continued server", started);
    });
}

/// A queue hub on fixed endpoints, so that it can be started again on
/// them. Heartbeats pass through it, between the client and the worker.
fn hub_on(front: &str, back: &str) -> Process {
    let mut command = Command::new(hub_binary());
    command.args([
        "--in", front, "--out", back, "--type", "queue", "--name", "faults",
    ]);
    let hub = Process::spawn("zerorpc-hub", command).expect("spawn zerorpc-hub");
    hub.wait_for_stderr_line("zerorpc-hub: faults (queue)", START)
        .expect("hub started");
    hub
}

#[test]
fn a_killed_hub_fails_its_calls_and_once_restarted_serves_the_same_client_and_worker() {
    let _heavy = heavy();
    runtime().block_on(async {
        let started = Instant::now();
        let (front, back) = (free_tcp_endpoint(), free_tcp_endpoint());
        let mut hub = hub_on(&front, &back);
        let _worker = LoadServer::start(&["--heartbeat", "1", "--connect", &back]);
        let client = client(&front);
        answers_again(&client, BACK_WITHIN).await;

        let call = nap_in_flight(&client);
        // The call is in the hub or at the worker: either way the hub holds it.
        tokio::time::sleep(INTERVAL).await;
        hub.signal(libc::SIGKILL).expect("SIGKILL");
        lost(call, "a killed hub").await;

        // The same client and the same worker reconnect by themselves.
        drop(hub);
        let _hub = hub_on(&front, &back);
        let back_after = answers_again(&client, BACK_WITHIN).await;
        eprintln!("answered again {back_after:?} after the hub's restart");
        took("killed and restarted hub", started);
    });
}

#[test]
fn a_worker_killed_mid_stream_behind_the_hub_ends_the_stream_with_an_error() {
    let _heavy = heavy();
    runtime().block_on(async {
        let started = Instant::now();
        let (front, back) = (free_tcp_endpoint(), free_tcp_endpoint());
        let _hub = hub_on(&front, &back);
        let mut worker = LoadServer::start(&["--heartbeat", "1", "--connect", &back]);
        let client = client(&front);
        answers_again(&client, BACK_WITHIN).await;

        let mut stream = half_read_stream(&client).await;
        worker.process.signal(libc::SIGKILL).expect("SIGKILL");
        match stream_end(&mut stream, HALF).await {
            Some(Err(e)) => eprintln!("the stream ended with: {e}"),
            other => panic!("the stream of a killed worker ended with {other:?}"),
        }
        took("worker killed mid-stream behind the hub", started);
    });
}
