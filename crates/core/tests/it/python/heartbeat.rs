//! Heartbeats with a 0.5 s interval on both sides: a call lasting more than
//! three intervals succeeds, and a peer that disappears mid-call is reported
//! as lost within about three intervals.

use std::time::{Duration, Instant};

use zerorpc::Client;
use zerorpc_test_support::wait_until;

use super::{
    Interop, RustServer, STARTUP, python_result, python_server, run_python_client,
    spawn_python_client,
};

const INTERVAL: Duration = Duration::from_millis(500);
/// Loss is due after two to three intervals; this leaves room for a loaded
/// machine without accepting a peer that never notices.
const LOSS_BOUND: Duration = Duration::from_secs(5);

const PY_LONG_CALL: &str = r#"
client = zerorpc.Client(timeout=10, heartbeat=0.5)
client.connect(sys.argv[1])
start = time.time()
try:
    out = {"result": client.sleep(2.0)}
except Exception as e:
    out = error_info(e)
out["elapsed"] = time.time() - start
emit(out)
"#;

#[test]
fn python_client_long_call_outlives_three_heartbeat_intervals() {
    let server = RustServer::start(Interop::default(), Some(INTERVAL));
    let Some((out, _peer)) = run_python_client(PY_LONG_CALL, &[server.endpoint()], STARTUP) else {
        return;
    };
    assert_eq!(out["result"], 2.0, "{out}");
    assert!(out["elapsed"].as_f64().unwrap() >= 2.0, "{out}");
}

#[tokio::test]
async fn our_client_long_call_outlives_three_heartbeat_intervals() {
    let Some((_peer, endpoint)) = python_server(INTERVAL.as_secs_f64()) else {
        return;
    };
    let client = Client::builder()
        .connect(&endpoint)
        .heartbeat(Some(INTERVAL))
        .build()
        .unwrap();
    let started = Instant::now();
    let result: f64 = client.call("slow", (2.0,)).await.unwrap();
    assert_eq!(result, 2.0);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

const PY_CALL_THAT_LOSES_ITS_SERVER: &str = r#"
client = zerorpc.Client(timeout=30, heartbeat=0.5)
client.connect(sys.argv[1])
try:
    out = {"result": client.sleep(30)}
except Exception as e:
    out = error_info(e)
emit(out)
"#;

#[test]
fn python_client_reports_lost_remote_when_our_server_stops() {
    let service = Interop::default();
    let mut server = RustServer::start(service.clone(), Some(INTERVAL));
    let Some(peer) = spawn_python_client(PY_CALL_THAT_LOSES_ITS_SERVER, &[server.endpoint()])
    else {
        return;
    };
    assert!(
        wait_until(STARTUP, || service.in_flight() == 1),
        "the call never started\n{}",
        peer.process().report()
    );
    let stopped = Instant::now();
    server.stop();
    let out = python_result(&peer, STARTUP);
    let elapsed = stopped.elapsed();
    assert_eq!(out["error"], "LostRemote", "{out}");
    assert!(
        elapsed < LOSS_BOUND,
        "lost remote reported after {elapsed:?}"
    );
}

#[test]
fn our_server_cancels_the_call_of_a_killed_python_client() {
    let service = Interop::default();
    let server = RustServer::start(service.clone(), Some(INTERVAL));
    let Some(mut peer) = spawn_python_client(PY_CALL_THAT_LOSES_ITS_SERVER, &[server.endpoint()])
    else {
        return;
    };
    assert!(
        wait_until(STARTUP, || service.in_flight() == 1),
        "the call never started\n{}",
        peer.process().report()
    );
    peer.process_mut().kill().unwrap();
    let killed = Instant::now();
    // The handler's future is dropped once the client's heartbeats stop.
    assert!(
        wait_until(STARTUP, || service.in_flight() == 0),
        "the call was never cancelled"
    );
    let elapsed = killed.elapsed();
    assert!(elapsed < LOSS_BOUND, "call cancelled after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_reports_lost_remote_when_the_python_server_is_killed() {
    let Some((mut peer, endpoint)) = python_server(INTERVAL.as_secs_f64()) else {
        return;
    };
    let client = Client::builder()
        .connect(&endpoint)
        .heartbeat(Some(INTERVAL))
        .build()
        .unwrap();
    let call = tokio::spawn(async move { client.call::<f64>("slow", (30.0,)).await });
    tokio::task::block_in_place(|| peer.wait_for_line("SLOW", STARTUP)).unwrap();
    tokio::task::block_in_place(|| peer.process_mut().kill()).unwrap();
    let killed = Instant::now();
    let result = tokio::time::timeout(STARTUP, call)
        .await
        .expect("the call never ended")
        .unwrap();
    let elapsed = killed.elapsed();
    let error = result.unwrap_err();
    assert!(error.is_lost_remote(), "{error:?}");
    assert!(
        elapsed < LOSS_BOUND,
        "lost remote reported after {elapsed:?}"
    );
}
