//! Streams both ways under zerorpc-python's flow control: lengths 0, 1, 5
//! and 250 with the default queue and with 10 slots, an error after some
//! items, and slow consumers that must not be flooded; from our server,
//! streams made by a task and inline ones, made on its I/O thread.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use zerorpc::{CallOptions, Client};
use zerorpc_test_support::wait_until;

use super::{
    GrantRecorder, Interop, RustServer, STARTUP, python_grants, python_server, run_python_client,
};

const LENGTHS: [u64; 4] = [0, 1, 5, 250];
/// What our client reads from a Python server: 2,000 items come as whole
/// windows (500) in bursts, which the Python server's ROUTER must not drop.
const LENGTHS_FROM_PYTHON: [u64; 5] = [0, 1, 5, 250, 2000];

const PY_STREAMS_CLIENT: &str = r#"
client = zerorpc.Client(timeout=10)
client.connect(sys.argv[1])
out = {}
for suffix in ("", "_inline"):
    count = getattr(client, "count" + suffix)
    got = out[suffix] = {"default": {}, "slots10": {}}
    for n in (0, 1, 5, 250):
        got["default"][str(n)] = list(count(n))
        got["slots10"][str(n)] = list(count(n, slots=10))
    items = []
    try:
        for item in getattr(client, "count_then_fail" + suffix)(3):
            items.append(item)
        got["broken"] = {"items": items}
    except Exception as e:
        got["broken"] = dict(error_info(e), items=items)
emit(out)
"#;

#[test]
fn python_client_streams_from_our_server() {
    let server = RustServer::start(Interop::default(), None);
    let Some((out, peer)) = run_python_client(PY_STREAMS_CLIENT, &[server.endpoint()], STARTUP)
    else {
        return;
    };
    for suffix in ["", "_inline"] {
        let out = &out[suffix];
        for n in LENGTHS {
            let expected: Vec<u64> = (0..n).collect();
            let what = format!("count{suffix}({n})");
            assert_eq!(out["default"][n.to_string()], json!(expected), "{what}");
            let slots10 = &out["slots10"][n.to_string()];
            assert_eq!(slots10, &json!(expected), "{what}, slots=10");
        }
        let broken = &out["broken"];
        assert_eq!(broken["items"], json!([0, 1, 2]), "{suffix}: {broken}");
        assert_eq!(broken["error"], "RemoteError", "{suffix}: {broken}");
        assert_eq!(broken["name"], "InteropError");
        assert_eq!(broken["msg"], "broke after 3 items");
    }
    let stderr = peer.process().stderr_lines().join("\n");
    assert!(!stderr.contains("overflow"), "{stderr}");
}

const PY_SLOW_CONSUMER: &str = r#"
client = zerorpc.Client(timeout=10)
client.connect(sys.argv[1])
out = {}
for name in ("count", "count_inline"):
    for n, slots, pause in ((60, 10, 0.02), (150, 100, 0.005)):
        got = []
        for item in getattr(client, name)(n, slots=slots):
            got.append(item)
            gevent.sleep(pause)
        out["%s %d/%d" % (name, n, slots)] = got
emit(out)
"#;

#[test]
fn slow_python_consumer_is_not_flooded_by_our_server() {
    let server = RustServer::start(Interop::default(), None);
    let Some((out, peer)) = run_python_client(PY_SLOW_CONSUMER, &[server.endpoint()], STARTUP)
    else {
        return;
    };
    for name in ["count", "count_inline"] {
        let first = &out[format!("{name} 60/10")];
        assert_eq!(first, &json!((0..60).collect::<Vec<u64>>()), "{name}");
        let second = &out[format!("{name} 150/100")];
        assert_eq!(second, &json!((0..150).collect::<Vec<u64>>()), "{name}");
    }
    // Python's receiver dies with "BufferedChannel, queue overflow" when a
    // sender exceeds its credit.
    let stderr = peer.process().stderr_lines().join("\n");
    assert!(!stderr.contains("overflow"), "{stderr}");
}

/// A client recording the credit it grants.
fn recording_client(endpoint: &str) -> (Client, Arc<GrantRecorder>) {
    let grants = Arc::new(GrantRecorder::default());
    let client = Client::builder()
        .connect(endpoint)
        .observer(grants.clone())
        .build()
        .unwrap();
    (client, grants)
}

/// Waits (bounded) for the grants to match zerorpc-python's for a stream of
/// `items` items plus its terminator. The last grant may be sent by the I/O
/// thread just after the terminator was handed over.
fn assert_python_grants(grants: &GrantRecorder, window: u32, items: u64) {
    let expected = python_grants(i64::from(window), items as usize + 1);
    wait_until(Duration::from_secs(2), || grants.grants() == expected);
    assert_eq!(grants.grants(), expected, "{items} items, window {window}");
}

#[tokio::test]
async fn our_client_streams_from_a_python_server() {
    let Some((_peer, endpoint)) = python_server(5.0) else {
        return;
    };
    for n in LENGTHS_FROM_PYTHON {
        for window in [None, Some(10)] {
            let (client, grants) = recording_client(&endpoint);
            let options = window.map_or_else(CallOptions::new, |w| CallOptions::new().window(w));
            let stream = client
                .stream_with::<u64>("count", (n,), options)
                .await
                .unwrap();
            let items: Vec<u64> = stream.map(Result::unwrap).collect().await;
            assert_eq!(
                items,
                (0..n).collect::<Vec<_>>(),
                "count({n}), window {window:?}"
            );
            assert_python_grants(
                &grants,
                window.unwrap_or(zerorpc::transport::DEFAULT_WINDOW),
                n,
            );
        }
    }

    let client = Client::connect(&endpoint).unwrap();
    let mut stream = client.stream::<u64>("count_then_fail", (3,)).await.unwrap();
    let mut items = Vec::new();
    let error = loop {
        match tokio::time::timeout(STARTUP, stream.next())
            .await
            .expect("stream stalled")
        {
            Some(Ok(item)) => items.push(item),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without its error after {items:?}"),
        }
    };
    assert_eq!(items, [0, 1, 2]);
    let remote = error.remote().expect("a remote error");
    assert_eq!(remote.name(), "ValueError");
    assert_eq!(remote.message(), "broke after 3 items");
    assert!(remote.traceback().contains("Traceback"), "{remote:?}");
    assert!(stream.next().await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn our_slow_client_consumes_a_python_stream_in_order() {
    let Some((peer, endpoint)) = python_server(5.0) else {
        return;
    };
    for (n, window, pause) in [(60, 10, 20), (150, 100, 5)] {
        let (client, grants) = recording_client(&endpoint);
        let mut stream = client
            .stream_with::<u64>("count", (n,), CallOptions::new().window(window))
            .await
            .unwrap();
        let mut items = Vec::new();
        for _ in 0..=n {
            match tokio::time::timeout(STARTUP, stream.next())
                .await
                .expect("stream stalled")
            {
                Some(item) => items.push(item.unwrap()),
                None => break,
            }
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        assert_eq!(items, (0..n).collect::<Vec<_>>());
        // Granting exactly like Python keeps at most `window` items queued.
        assert_python_grants(&grants, window, n);
    }
    let stderr = peer.process().stderr_lines().join("\n");
    assert!(!stderr.contains("Traceback"), "{stderr}");
}
