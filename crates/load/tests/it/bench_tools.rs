//! What `cargo xtask bench` relies on: per-call latencies, the kinds of
//! method, binary streams and the watch on the server's memory in
//! `zerorpc-load-client`, the raw ZeroMQ baselines and floors of
//! `zerorpc-bench-raw`, and the gRPC comparison of `zerorpc-bench-grpc`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use zerorpc_test_support::Process;

use crate::support::{CALL_TIMEOUT, LoadServer, RUN, START, heavy, run_client, spawn_client};

/// The raw baseline binary.
const RAW: &str = env!("CARGO_BIN_EXE_zerorpc-bench-raw");
/// The gRPC (tonic) comparison.
const GRPC: &str = env!("CARGO_BIN_EXE_zerorpc-bench-grpc");

/// Asserts that a report has ordered, positive latency percentiles.
fn assert_latencies(report: &Value) {
    let latency = &report["latency_us"];
    let get = |key: &str| {
        latency[key]
            .as_f64()
            .unwrap_or_else(|| panic!("no latency_us.{key} in {report}"))
    };
    let (p50, p90, p99, max, mean) = (get("p50"), get("p90"), get("p99"), get("max"), get("mean"));
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max && mean <= max,
        "{latency}"
    );
}

#[test]
fn every_kind_of_echo_method_is_called_timed_and_checked() {
    let _heavy = heavy();
    let server = LoadServer::start(&[]);
    // One at a time (each call awaited in turn) and several in flight.
    let loads =
        ["inline", "async", "sync", "inline-async"].map(|handler| [(handler, "1"), (handler, "4")]);
    for (handler, in_flight) in loads.into_iter().flatten() {
        let (report, _) = run_client(
            &[
                "--connect",
                &server.endpoint,
                "--calls",
                "200",
                "--in-flight",
                in_flight,
                "--echo",
                "64",
                "--handler",
                handler,
                "--warmup",
                "10",
                "--timeout",
                CALL_TIMEOUT,
            ],
            None,
        );
        // The warm-up calls are not counted.
        report.assert_all_ok(200);
        assert_latencies(&report.json);
    }
}

#[test]
fn binary_streams_arrive_whole_and_in_order() {
    let _heavy = heavy();
    let server = LoadServer::start(&[]);
    for item_bytes in ["65536", "64", "3"] {
        let (report, _) = run_client(
            &[
                "--connect",
                &server.endpoint,
                "--calls",
                "0",
                "--streams",
                "3",
                "--items",
                "40",
                "--item-bytes",
                item_bytes,
                "--timeout",
                CALL_TIMEOUT,
            ],
            None,
        );
        report.assert_all_ok(3);
        assert!(report.json.get("latency_us").is_none(), "{}", report.line);
    }
}

#[test]
fn a_stream_of_items_too_large_is_refused_with_a_reason() {
    let server = LoadServer::start(&[]);
    let client = zerorpc::Client::builder()
        .connect(&server.endpoint)
        .timeout(Some(START))
        .build()
        .expect("client");
    let opened = client
        .blocking()
        .stream::<zerorpc::Value>("blobs", (1u64, 1u64 << 40));
    let error = match opened {
        Err(error) => error,
        Ok(mut stream) => match stream.next() {
            Some(Err(error)) => error,
            other => panic!("expected an error, got {other:?}"),
        },
    };
    assert!(error.to_string().contains("at most"), "{error}");
}

#[test]
fn the_server_memory_is_watched_while_calls_wait() {
    let _heavy = heavy();
    let server = LoadServer::start(&[]);
    let pid = server.pid().to_string();
    let (report, _) = run_client(
        &[
            "--connect",
            &server.endpoint,
            "--calls",
            "500",
            "--in-flight",
            "500",
            "--nap",
            "0.3",
            "--watch-rss",
            &pid,
            "--timeout",
            CALL_TIMEOUT,
        ],
        None,
    );
    report.assert_all_ok(500);
    let watched = &report.json["watched_rss"];
    let get = |key: &str| {
        watched[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no watched_rss.{key} in {}", report.line))
    };
    let (start, peak, end) = (get("start_bytes"), get("peak_bytes"), get("end_bytes"));
    assert!(
        0 < start && start <= peak && end <= peak && 0 < end,
        "{watched}"
    );
}

#[test]
fn watching_a_process_that_does_not_exist_is_an_error() {
    let server = LoadServer::start(&[]);
    let mut client = spawn_client(&[
        "--connect",
        &server.endpoint,
        "--calls",
        "1",
        "--watch-rss",
        "4294967295",
    ]);
    let status = client
        .wait_for_output(RUN)
        .expect("waiting for the client")
        .expect("the client exits");
    assert_eq!(status.code(), Some(1), "{}", client.report());
    let stderr = client.stderr_lines().join("\n");
    assert!(
        stderr.contains("cannot read the size of process 4294967295"),
        "{stderr}"
    );
}

/// Starts `zerorpc-bench-raw` with `args`.
fn raw(args: &[&str]) -> Process {
    tool(RAW, args)
}

/// Starts one of the benchmark tools, the binary at `program`, with `args`.
fn tool(program: &str, args: &[&str]) -> Process {
    let name = program.rsplit('/').next().unwrap_or(program);
    let mut command = Command::new(program);
    command.args(args);
    Process::spawn(name, command).unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

/// The endpoint a raw `echo` or `pull` says it listens on.
fn listening(process: &Process) -> String {
    let line = process
        .wait_for_line("listening ", START)
        .expect("ready line");
    line.trim_start_matches("listening ").to_owned()
}

/// Waits for a raw process to succeed and returns its JSON line.
fn raw_report(mut process: Process) -> Value {
    let status = process
        .wait_for_output(RUN)
        .expect("waiting for zerorpc-bench-raw")
        .unwrap_or_else(|| panic!("still running after {RUN:?}\n{}", process.report()));
    assert!(status.success(), "{status}\n{}", process.report());
    let lines = process.stdout_lines();
    let line = lines
        .iter()
        .rev()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line\n{}", process.report()));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad report {line}: {e}"))
}

#[test]
fn raw_round_trips_with_a_thousand_in_flight_all_come_back() {
    let _heavy = heavy();
    let echo = raw(&["echo"]);
    let endpoint = listening(&echo);
    for (calls, in_flight) in [("300", "1"), ("20000", "1000")] {
        let report = raw_calls(&endpoint, calls, in_flight, &[]);
        assert_eq!(report["ok"].to_string(), calls, "{report}");
        assert_latencies(&report);
    }
}

/// `zerorpc-bench-raw call` of `endpoint` with `flags`, to its report.
fn raw_calls(endpoint: &str, calls: &str, in_flight: &str, flags: &[&str]) -> Value {
    let call = [
        "call",
        "--connect",
        endpoint,
        "--calls",
        calls,
        "--in-flight",
        in_flight,
        "--warmup",
        "50",
    ];
    raw_report(raw(&[&call[..], flags].concat()))
}

#[test]
fn raw_round_trips_through_the_relay_all_come_back() {
    let echo = raw(&["echo"]);
    let relay = raw(&["relay", "--connect", &listening(&echo)]);
    let endpoint = listening(&relay);
    let report = raw_report(raw(&[
        "call",
        "--connect",
        &endpoint,
        "--calls",
        "300",
        "--in-flight",
        "10",
    ]));
    assert_eq!(report["ok"].to_string(), "300", "{report}");
    assert_latencies(&report);
}

#[test]
fn raw_push_pull_delivers_every_item() {
    let _heavy = heavy();
    for (items, bytes) in [("5000", "64"), ("50", "65536")] {
        let transfer = ["--items", items, "--bytes", bytes];
        let pull = raw(&[&["pull"], &transfer[..]].concat());
        let endpoint = listening(&pull);
        let mut push = raw(&[&["push", "--connect", &endpoint], &transfer[..]].concat());
        let report = raw_report(pull);
        assert_eq!(
            (report["ok"].as_u64(), report["items"].to_string()),
            (Some(1), items.to_owned()),
            "{report}"
        );
        let status = push
            .wait_timeout(RUN)
            .expect("waiting for push")
            .expect("push exits");
        assert!(status.success(), "{status}\n{}", push.report());
    }
}

#[test]
fn raw_round_trips_with_hand_offs_and_the_codec_all_come_back() {
    let _heavy = heavy();
    for (echo_flags, call_flags) in [
        (&[][..], &["--handoff"][..]),
        (&["--handoff"][..], &["--handoff"][..]),
        (&["--codec"][..], &["--codec"][..]),
        (&["--handoff", "--codec"][..], &["--handoff", "--codec"][..]),
    ] {
        let echo = raw(&[&["echo"], echo_flags].concat());
        let endpoint = listening(&echo);
        for (calls, in_flight) in [("300", "1"), ("3000", "100")] {
            let report = raw_calls(&endpoint, calls, in_flight, call_flags);
            assert_eq!(
                report["ok"].to_string(),
                calls,
                "{echo_flags:?} {call_flags:?}: {report}"
            );
            assert_latencies(&report);
        }
    }
}

#[test]
fn raw_framed_streams_deliver_every_item() {
    let _heavy = heavy();
    for codec in [&[][..], &["--codec"][..]] {
        for (items, bytes) in [("5000", "64"), ("50", "65536")] {
            let transfer = [&["--items", items, "--bytes", bytes][..], codec].concat();
            let serve = raw(&[&["stream-serve"], &transfer[..]].concat());
            let endpoint = listening(&serve);
            let report = raw_report(raw(&[
                &["stream-take", "--connect", &endpoint],
                &transfer[..],
            ]
            .concat()));
            assert_eq!(
                (report["ok"].as_u64(), report["items"].to_string()),
                (Some(1), items.to_owned()),
                "{codec:?}: {report}"
            );
            assert!(report["elapsed_s"].is_f64(), "{report}");
        }
    }
}

#[test]
fn raw_traced_round_trips_carry_their_trace_keys_both_ways() {
    let _heavy = heavy();
    let sink = raw(&["sink"]);
    let sink_endpoint = listening(&sink);
    let traced = ["--codec", "--traced", &sink_endpoint];
    let echo = raw(&[&["echo"], &traced[..]].concat());
    let endpoint = listening(&echo);
    for (calls, in_flight) in [("300", "1"), ("3000", "100")] {
        let report = raw_calls(&endpoint, calls, in_flight, &traced);
        assert_eq!(report["ok"].to_string(), calls, "{report}");
        assert_latencies(&report);
    }

    // Each end checks the other's part: a traced client wants its span
    // back on every reply, a traced server trace keys on every request.
    let plain = raw(&["echo", "--codec"]);
    let mut client = raw(&[
        "call",
        "--connect",
        &listening(&plain),
        "--codec",
        "--traced",
        &sink_endpoint,
    ]);
    assert_fails_saying(&mut client, "a reply without its call's trace keys");
    let mut server = raw(&["echo", "--codec", "--traced", &sink_endpoint]);
    let untraced = raw(&["call", "--connect", &listening(&server), "--codec"]);
    assert_fails_saying(&mut server, "a request without trace keys");
    drop(untraced);
}

/// Waits for `process` to exit with status 1, saying `reason`.
fn assert_fails_saying(process: &mut Process, reason: &str) {
    let status = process
        .wait_for_output(RUN)
        .expect("waiting")
        .unwrap_or_else(|| panic!("still running\n{}", process.report()));
    let stderr = process.stderr_lines().join("\n");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(reason), "{stderr}");
}

#[test]
fn raw_events_are_checked_not_just_counted() {
    // A plain echo sends the request itself back, and a plain stream opaque
    // bytes: neither is the event expected.
    let echo = raw(&["echo"]);
    let serve = raw(&["stream-serve", "--items", "3"]);
    let (echo_endpoint, serve_endpoint) = (listening(&echo), listening(&serve));
    for (args, reason) in [
        (
            &["call", "--connect", &echo_endpoint, "--codec"][..],
            "reply 0: not the answer to the request sent",
        ),
        (
            &["stream-take", "--connect", &serve_endpoint, "--items", "3"][..],
            "",
        ),
        (
            &[
                "stream-take",
                "--connect",
                &serve_endpoint,
                "--items",
                "3",
                "--codec",
            ][..],
            "item 0: not the message sent",
        ),
    ] {
        let mut process = raw(args);
        let status = process
            .wait_for_output(RUN)
            .expect("waiting")
            .unwrap_or_else(|| panic!("{args:?} still running"));
        let stderr = process.stderr_lines().join("\n");
        if reason.is_empty() {
            assert!(status.success(), "{args:?}: {stderr}");
        } else {
            assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains(reason), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn raw_bad_arguments_are_refused_with_a_reason() {
    for (args, reason) in [
        (
            &["call", "--connect", "tcp://127.0.0.1:1", "--in-flight", "0"][..],
            "--in-flight",
        ),
        (&["push", "--connect", "tcp://127.0.0.1:1"][..], "--items"),
        (
            &["stream-take", "--connect", "tcp://127.0.0.1:1"][..],
            "--items",
        ),
        (
            &["stream-serve", "--items", "1", "--bind", "nowhere"][..],
            "cannot bind nowhere",
        ),
        (&["echo", "--bind", "nowhere"][..], "cannot bind nowhere"),
        (&["sink", "--bind", "nowhere"][..], "cannot bind nowhere"),
        (
            &["call", "--connect", "tcp://127.0.0.1:1", "--traced", "x"][..],
            "--codec",
        ),
        (
            &[
                "echo",
                "--handoff",
                "--codec",
                "--traced",
                "tcp://127.0.0.1:1",
            ][..],
            "--handoff",
        ),
    ] {
        assert_refused(raw(args), args, reason);
    }
}

/// Asserts that `process`, started with `args`, fails saying `reason`,
/// without a panic.
fn assert_refused(mut process: Process, args: &[&str], reason: &str) {
    let status = process
        .wait_for_output(Duration::from_secs(30))
        .expect("waiting")
        .unwrap_or_else(|| panic!("{args:?} still running"));
    assert!(!status.success(), "{args:?}");
    let stderr = process.stderr_lines().join("\n");
    assert!(stderr.contains(reason), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

/// Starts `zerorpc-bench-grpc` with `args`.
fn grpc(args: &[&str]) -> Process {
    tool(GRPC, args)
}

#[test]
fn grpc_calls_in_flight_all_come_back_timed() {
    let _heavy = heavy();
    let server = grpc(&["serve"]);
    let url = listening(&server);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    for (calls, in_flight) in [("300", "1"), ("5000", "100")] {
        let report = raw_report(grpc(&[
            "call",
            "--connect",
            &url,
            "--calls",
            calls,
            "--in-flight",
            in_flight,
            "--warmup",
            "50",
            "--bytes",
            "64",
        ]));
        assert_eq!(report["ok"].to_string(), calls, "{report}");
        assert_eq!(
            (report["failed"].as_u64(), report["wrong"].as_u64()),
            (Some(0), Some(0))
        );
        assert_latencies(&report);
    }
}

#[test]
fn grpc_streams_deliver_every_item_checked() {
    let _heavy = heavy();
    let server = grpc(&["serve"]);
    let url = listening(&server);
    for (items, bytes) in [("20000", "64"), ("50", "65536")] {
        let report = raw_report(grpc(&[
            "stream",
            "--connect",
            &url,
            "--items",
            items,
            "--bytes",
            bytes,
        ]));
        assert_eq!(
            (report["ok"].as_u64(), report["items"].to_string()),
            (Some(1), items.to_owned()),
            "{report}"
        );
        assert_eq!(report["wrong"].as_u64(), Some(0), "{report}");
    }
}

#[test]
fn grpc_bad_arguments_and_absent_servers_are_refused_with_a_reason() {
    for (args, reason) in [
        (
            &[
                "call",
                "--connect",
                "http://127.0.0.1:1",
                "--in-flight",
                "0",
            ][..],
            "--in-flight",
        ),
        (
            &["stream", "--connect", "http://127.0.0.1:1"][..],
            "--items",
        ),
        (&["serve", "--bind", "nowhere"][..], "nowhere"),
        (
            &["call", "--connect", "not a url", "--calls", "1"][..],
            "is not a URL",
        ),
        (
            &["call", "--connect", "http://127.0.0.1:1", "--calls", "1"][..],
            "cannot connect to http://127.0.0.1:1",
        ),
    ] {
        assert_refused(grpc(args), args, reason);
    }
}
