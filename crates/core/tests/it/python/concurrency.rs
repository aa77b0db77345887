//! Fifty concurrent calls on one connection, each way: they all succeed and
//! run at the same time rather than one after another.

use std::time::{Duration, Instant};

use zerorpc::Client;

use super::{Interop, RustServer, STARTUP, python_server, run_python_client};

const CALLS: usize = 50;
const SLEEP: f64 = 0.5;

/// Well under the sequential time (50 × 0.5 s = 25 s), yet generous for a
/// loaded machine.
fn overlap_bound() -> Duration {
    Duration::from_secs_f64(SLEEP * CALLS as f64 / 4.0)
}

const PY_CONCURRENT_CLIENT: &str = r#"
client = zerorpc.Client(timeout=20)
client.connect(sys.argv[1])
# The first call waits for the connection; keep it out of the timing.
client.add(1, 2)
calls, pause = int(sys.argv[2]), float(sys.argv[3])
start = time.time()
jobs = [gevent.spawn(client.sleep, pause) for _ in range(calls)]
gevent.joinall(jobs, timeout=30)
emit({
    "results": [job.value for job in jobs],
    "errors": [repr(job.exception) for job in jobs if job.exception is not None],
    "elapsed": time.time() - start,
})
"#;

#[test]
fn python_gevent_client_makes_50_concurrent_calls_to_our_server() {
    let service = Interop::default();
    let server = RustServer::start(service.clone(), None);
    let Some((out, _peer)) = run_python_client(
        PY_CONCURRENT_CLIENT,
        &[server.endpoint(), &CALLS.to_string(), &SLEEP.to_string()],
        STARTUP + STARTUP,
    ) else {
        return;
    };
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    assert_eq!(
        out["results"],
        serde_json::json!(vec![SLEEP; CALLS]),
        "{out}"
    );
    let elapsed = Duration::from_secs_f64(out["elapsed"].as_f64().unwrap());
    assert!(elapsed < overlap_bound(), "50 calls took {elapsed:?}");
    // Direct evidence of overlap, independent of timing.
    assert!(
        service.max_in_flight() >= 10,
        "at most {} at once",
        service.max_in_flight()
    );
}

#[tokio::test]
async fn our_client_makes_50_concurrent_calls_to_a_python_server() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    let client = Client::connect(&endpoint).unwrap();
    let _: i64 = client.call("add", (1, 2)).await.unwrap();
    let started = Instant::now();
    let calls = (0..CALLS).map(|_| client.call::<f64>("slow", (SLEEP,)));
    let results = tokio::time::timeout(STARTUP, futures::future::try_join_all(calls))
        .await
        .expect("the calls never finished")
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(results, vec![SLEEP; CALLS]);
    assert!(elapsed < overlap_bound(), "50 calls took {elapsed:?}");
    let most: usize = client.call("max_in_flight", ()).await.unwrap();
    assert!(most >= 10, "at most {most} at once");
}
