//! The queue hub between zerorpc-python clients and zerorpc-python workers.

use std::time::{Duration, Instant};

use zerorpc_hub::HubKind;
use zerorpc_test_support::PythonPeer;

use crate::support::{LONG, loopback, python_output, python_worker, start, wait_stats};

/// A client making `n` calls to `whoami` and printing the names as JSON.
const WHOAMI_CLIENT: &str = r#"
import sys, json, zerorpc
client = zerorpc.Client(heartbeat=0.5, timeout=10)
client.connect(sys.argv[1])
names = [client.whoami() for _ in range(int(sys.argv[2]))]
print("NAMES", json.dumps(names), flush=True)
"#;

fn names(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad names {json}: {e}"))
}

#[test]
fn two_python_workers_share_calls() {
    let hub = start(loopback(HubKind::Queue));
    let Some(_a) = python_worker(hub.out_endpoint(), "A") else {
        return;
    };
    let Some(_b) = python_worker(hub.out_endpoint(), "B") else {
        return;
    };
    wait_stats(&hub, "two workers", |s| s.workers.len() == 2);

    let Some(client) = PythonPeer::spawn(WHOAMI_CLIENT, &[hub.in_endpoint(), "20"]) else {
        return;
    };
    let names = names(&python_output(&client, "NAMES"));
    let a = names.iter().filter(|n| *n == "A").count();
    let b = names.iter().filter(|n| *n == "B").count();
    assert_eq!(a + b, 20, "{names:?}");
    // Sequential calls leave both workers idle between calls, so they take
    // turns.
    assert_eq!((a, b), (10, 10), "{names:?}");

    let stats = wait_stats(&hub, "all calls ended", |s| {
        s.calls_routed == 20 && s.open_channels == 0
    });
    let mut routed: Vec<u64> = stats.workers.iter().map(|w| w.calls_routed).collect();
    routed.sort_unstable();
    assert_eq!(routed, [10, 10]);
    assert!(stats.workers.iter().all(|w| w.outstanding == 0));
    assert_eq!(stats.drops.total(), 0, "{}", stats.to_json());
}

#[test]
fn long_call_keeps_heartbeating_through_the_hub() {
    let hub = start(loopback(HubKind::Queue));
    let Some(_worker) = python_worker(hub.out_endpoint(), "A") else {
        return;
    };
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);

    // 2 s is four heartbeat intervals on both sides: without heartbeats
    // crossing the hub, either side would declare the other lost at 1.5 s.
    let script = r#"
import sys, zerorpc
client = zerorpc.Client(heartbeat=0.5, timeout=10)
client.connect(sys.argv[1])
try:
    print("RESULT", client.slow(2.0), flush=True)
except Exception as e:
    print("RESULT failed", type(e).__name__, e, flush=True)
"#;
    let Some(client) = PythonPeer::spawn(script, &[hub.in_endpoint()]) else {
        return;
    };
    assert_eq!(python_output(&client, "RESULT"), "slept 2.0");

    let stats = wait_stats(&hub, "the call ended", |s| s.open_channels == 0);
    // The request plus heartbeats one way, the reply plus heartbeats the
    // other way.
    assert!(stats.events_in_to_out >= 3, "{}", stats.to_json());
    assert!(stats.events_out_to_in >= 3, "{}", stats.to_json());
    assert_eq!(stats.channels_expired, 0);
}

#[test]
fn stream_of_3000_items_with_credit() {
    let hub = start(loopback(HubKind::Queue));
    let Some(_worker) = python_worker(hub.out_endpoint(), "A") else {
        return;
    };
    wait_stats(&hub, "a worker", |s| s.workers.len() == 1);

    let script = r#"
import sys, zerorpc
client = zerorpc.Client(heartbeat=0.5, timeout=10)
client.connect(sys.argv[1])
items = list(client.numbers(3000))
print("STREAM", len(items), sum(items), items == list(range(3000)), flush=True)
"#;
    let Some(client) = PythonPeer::spawn(script, &[hub.in_endpoint()]) else {
        return;
    };
    assert_eq!(
        python_output(&client, "STREAM"),
        format!("3000 {} True", (0..3000).sum::<u64>())
    );

    let stats = wait_stats(&hub, "the stream ended", |s| s.open_channels == 0);
    // 3000 STREAM events and STREAM_DONE back; the client's `_zpc_more`
    // grants (one per 51 items read) forward.
    assert!(stats.events_out_to_in >= 3001, "{}", stats.to_json());
    assert!(stats.events_in_to_out > 3000 / 51, "{}", stats.to_json());
}

#[test]
fn killed_worker_fails_its_call_cleanly_and_the_other_takes_over() {
    let hub = start(loopback(HubKind::Queue));
    let Some(a) = python_worker(hub.out_endpoint(), "A") else {
        return;
    };
    let Some(b) = python_worker(hub.out_endpoint(), "B") else {
        return;
    };
    wait_stats(&hub, "two workers", |s| s.workers.len() == 2);

    // The client's own heartbeat is the default 5 s, so it would need about
    // 15 s to notice a dead worker by itself: an answer in well under that
    // comes from the hub.
    let script = r#"
import sys, json, time, zerorpc
client = zerorpc.Client(timeout=20)
client.connect(sys.argv[1])
start = time.time()
try:
    client.slow(60)
    print("SLOW unexpected success", flush=True)
except zerorpc.RemoteError as e:
    print("SLOW", json.dumps([e.name, e.msg, time.time() - start]), flush=True)
except Exception as e:
    print("SLOW", json.dumps([type(e).__name__, str(e), time.time() - start]), flush=True)
names = [client.whoami() for _ in range(6)]
print("NAMES", json.dumps(names), flush=True)
"#;
    let Some(client) = PythonPeer::spawn(script, &[hub.in_endpoint()]) else {
        return;
    };

    // Whichever worker got the slow call is killed.
    let mut workers = [("A", a), ("B", b)];
    let deadline = Instant::now() + LONG;
    let busy = loop {
        if let Some(i) = workers.iter().position(|(_, w)| {
            w.process()
                .stdout_lines()
                .iter()
                .any(|l| l.starts_with("SLOW-START"))
        }) {
            break i;
        }
        assert!(Instant::now() < deadline, "no worker started the slow call");
        std::thread::sleep(Duration::from_millis(20));
    };
    let survivor = workers[1 - busy].0;
    workers[busy].1.process_mut().kill().expect("kill worker");

    let slow: (String, String, f64) =
        serde_json::from_str(&python_output(&client, "SLOW")).expect("json");
    assert_eq!(slow.0, "LostRemote", "{slow:?}");
    assert_eq!(slow.1, "worker disconnected while serving the call");
    assert!(
        slow.2 < 10.0,
        "the error came from the client's own heartbeat: {slow:?}"
    );

    let names = names(&python_output(&client, "NAMES"));
    assert_eq!(names, vec![survivor; 6]);

    let stats = hub.stats();
    assert_eq!(stats.workers.len(), 1);
    assert_eq!(stats.worker_disconnects, 1);
    assert_eq!(stats.calls_failed_worker_lost, 1);
}

#[test]
fn calls_wait_for_a_worker_and_late_workers_take_load() {
    let hub = start(loopback(HubKind::Queue));
    let flag = std::env::temp_dir().join(format!(
        "zerorpc-hub-late-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&flag);
    // The client's default 5 s heartbeat gives it 15 s before it would give
    // up on the silent, queued call.
    let script = r#"
import sys, os, json, time, zerorpc
client = zerorpc.Client(timeout=20)
client.connect(sys.argv[1])
print("FIRST", client.whoami(), flush=True)
for _ in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
names = [client.whoami() for _ in range(10)]
print("NAMES", json.dumps(names), flush=True)
"#;
    let Some(client) = PythonPeer::spawn(
        script,
        &[hub.in_endpoint(), flag.to_str().expect("utf-8 path")],
    ) else {
        return;
    };
    // The call waits in the hub...
    wait_stats(&hub, "a queued call", |s| s.queued_calls == 1);
    // ...until a worker connects.
    let Some(_a) = python_worker(hub.out_endpoint(), "A") else {
        return;
    };
    assert_eq!(python_output(&client, "FIRST"), "A");

    // A second worker connecting later takes new calls at once.
    let Some(_b) = python_worker(hub.out_endpoint(), "B") else {
        return;
    };
    wait_stats(&hub, "two workers", |s| s.workers.len() == 2);
    std::fs::write(&flag, b"go").expect("flag file");
    let names = names(&python_output(&client, "NAMES"));
    let _ = std::fs::remove_file(&flag);
    assert_eq!(names.iter().filter(|n| *n == "B").count(), 5, "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "A").count(), 5, "{names:?}");
    let stats = hub.stats();
    assert_eq!(stats.calls_failed_no_worker, 0);
    assert_eq!(stats.drops.send_failed, 0);
}
