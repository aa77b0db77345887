//! The real `zerorpc-hub` binary: configuration errors, stats on SIGUSR1,
//! and clean shutdown on SIGTERM and SIGINT.

use std::path::PathBuf;
use std::process::Command;

use zerorpc_hub::Stats;
use zerorpc_test_support::{Process, free_tcp_endpoint};

use crate::support::{LONG, RawClient, RawWorker, on_channel, request};

/// The `zerorpc-hub` binary; it lives in another package of the workspace.
pub(crate) fn hub_binary() -> PathBuf {
    zerorpc_test_support::workspace_binary("zerorpc-cli", "zerorpc-hub")
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("zerorpc-hub-test-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("write temp file");
    path
}

#[test]
fn bad_configuration_files_are_reported_with_line_and_key() {
    let cases = [
        (
            "type.yml",
            "in: tcp://127.0.0.1:1\nout: tcp://127.0.0.1:2\ntype: quue\n",
            "line 3, column 7, key type: unknown variant `quue`",
        ),
        (
            "key.yml",
            "- in: tcp://127.0.0.1:1\n  out: tcp://127.0.0.1:2\n- in: tcp://127.0.0.1:3\n  outt: tcp://127.0.0.1:4\n",
            "line 4, column 3, key hub 2",
        ),
        ("syntax.yml", "in: [tcp://127.0.0.1:1\n", "line "),
    ];
    for (name, text, expected) in cases {
        let path = temp_file(name, text);
        let output = Command::new(hub_binary())
            .arg(&path)
            .output()
            .expect("run zerorpc-hub");
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.starts_with("zerorpc-hub: error: "),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{name}: expected `{expected}` in {stderr}"
        );
    }

    let output = Command::new(hub_binary())
        .arg("/nonexistent/hub.yml")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read `/nonexistent/hub.yml`"));

    // Usage errors are clap's: status 2.
    let output = Command::new(hub_binary())
        .args(["--in", "tcp://127.0.0.1:1"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));

    let path = temp_file(
        "ok.yml",
        "- {in: 'tcp://127.0.0.1:1', out: 'tcp://127.0.0.1:2'}\n- {name: ev, type: forwarder, in: 'tcp://127.0.0.1:3', out: 'tcp://127.0.0.1:4'}\n",
    );
    let output = Command::new(hub_binary())
        .arg("--check")
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hub-1: queue in tcp://127.0.0.1:1 out tcp://127.0.0.1:2\nev: forwarder in tcp://127.0.0.1:3 out tcp://127.0.0.1:4\n"
    );
}

#[test]
fn per_hub_flags_next_to_a_file_are_refused_not_ignored() {
    let path = temp_file(
        "flags.yml",
        "in: 'tcp://127.0.0.1:1'\nout: 'tcp://127.0.0.1:2'\n",
    );
    for flags in [
        &["--idle-timeout", "5"][..],
        &["--queue-limit", "3"],
        &["--queue-timeout", "1"],
        &["--peer-queue-limit", "10"],
        &["--peer-queue-bytes", "1M"],
        &["--in-curve-secret-key-file", "hub.key"],
        &["--out-plain-passwords-file", "workers"],
        &["--max-message-size", "1M"],
        &["--type", "streamer"],
        &["--name", "other"],
    ] {
        let output = Command::new(hub_binary())
            .arg("--check")
            .args(flags)
            .arg(&path)
            .output()
            .expect("run zerorpc-hub");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(
            stderr.contains("cannot be used with"),
            "{flags:?}: {stderr}"
        );
    }
    // Flags that apply to every hub still go with a file.
    let output = Command::new(hub_binary())
        .args(["--check", "--stats-interval", "2"])
        .arg(&path)
        .output()
        .expect("run zerorpc-hub");
    let _ = std::fs::remove_file(&path);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_dns_name_is_refused_in_a_file_and_in_flags_saying_who_resolves_it() {
    // The hub only binds: a name is for the peers that connect to it.
    let name = "dns:hub.svc.example.test";
    let path = temp_file(
        "named.yml",
        &format!("in: 'tcp://127.0.0.1:1'\nout: '{name}'\n"),
    );
    let flags: [&[&str]; 3] = [
        &["--in", name, "--out", "tcp://127.0.0.1:2"],
        &["--check", "--in", "tcp://127.0.0.1:1", "--out", name],
        &["--check"],
    ];
    for args in flags {
        let mut command = Command::new(hub_binary());
        command.args(args);
        if args == ["--check"] {
            command.arg(&path);
        }
        let output = command.output().expect("run zerorpc-hub");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        for part in [
            "zerorpc-hub: error: ",
            name,
            "a hub binds its endpoints and never connects",
            "the clients and workers that connect to the hub use dns:hub.svc.example.test",
        ] {
            assert!(stderr.contains(part), "{args:?}: {part:?} not in {stderr}");
        }
        assert!(
            output.stdout.is_empty(),
            "{args:?}: nothing is checked as good"
        );
    }
    let _ = std::fs::remove_file(&path);
}

fn stats_line(process: &Process, after: usize) -> Stats {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let lines = process.stderr_lines();
        if let Some(line) = lines.iter().skip(after).find(|l| l.starts_with('{')) {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad stats line {line}: {e}"));
            let mut stats = Stats::default();
            stats.hub = value["hub"].as_str().unwrap_or_default().to_owned();
            stats.calls_routed = value["calls_routed"].as_u64().expect("calls_routed");
            stats.events_out_to_in = value["events_out_to_in"]
                .as_u64()
                .expect("events_out_to_in");
            stats.open_channels = value["open_channels"].as_u64().expect("open_channels") as usize;
            stats.connections_closed = value["connections_closed"]
                .as_u64()
                .expect("connections_closed");
            assert!(value["drops"].is_object(), "{line}");
            assert!(value["workers"].is_array(), "{line}");
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stats line:\n{}",
            process.report()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn connections_dropped_for_their_size_are_counted_and_the_first_logged() {
    let (inp, out) = (free_tcp_endpoint(), free_tcp_endpoint());
    let mut command = Command::new(hub_binary());
    command.args(["--in", &inp, "--out", &out, "--max-message-size", "1k"]);
    let mut hub = Process::spawn("zerorpc-hub", command).expect("spawn zerorpc-hub");
    hub.wait_for_stderr_line("zerorpc-hub: hub (queue)", LONG)
        .expect("started");
    let payload = vec![0_u8; 4096];
    let senders: Vec<RawClient> = (0..2)
        .map(|_| {
            let sender = RawClient::connect(&inp);
            sender.send_frames(&[b"", &payload]);
            sender
        })
        .collect();
    let mut stats = Stats::default();
    for _ in 0..100 {
        let seen = hub.stderr_lines().len();
        hub.signal(libc::SIGUSR1).expect("SIGUSR1");
        stats = stats_line(&hub, seen);
        if stats.connections_closed == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(stats.connections_closed, 2, "{}", hub.report());
    drop(senders);
    hub.signal(libc::SIGTERM).expect("SIGTERM");
    hub.wait_for_output(LONG).expect("wait").expect("exited");
    let logged: Vec<String> = hub
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("over max_message_size"))
        .collect();
    assert_eq!(logged.len(), 1, "{}", hub.report());
    assert!(logged[0].contains("127.0.0.1"), "{}", logged[0]);
}

#[test]
fn the_binary_serves_reports_and_stops_cleanly_on_sigterm() {
    let (inp, out) = (free_tcp_endpoint(), free_tcp_endpoint());
    let mut command = Command::new(hub_binary());
    command.args([
        "--in",
        &inp,
        "--out",
        &out,
        "--type",
        "queue",
        "--name",
        "front",
        "--peer-queue-limit",
        "500",
        "--peer-queue-bytes",
        "8M",
    ]);
    let mut hub = Process::spawn("zerorpc-hub", command).expect("spawn zerorpc-hub");
    hub.wait_for_stderr_line("zerorpc-hub: front (queue)", LONG)
        .expect("started");

    // One call through the real binary.
    let worker = RawWorker::connect(&out);
    let client = RawClient::connect(&inp);
    let call = request("whoami", vec![]);
    client.send(&call);
    let got = worker.recv(LONG).expect("call at the worker");
    worker.reply(
        &got.envelope,
        &on_channel(
            &call.header.message_id,
            "OK",
            zerorpc_wire::Value::Array(vec!["W".into()]),
        ),
    );
    assert_eq!(client.recv(LONG).expect("reply").name, "OK");

    // Stats are a snapshot refreshed within milliseconds, so ask again
    // until the call shows, a bounded number of times.
    let mut stats = Stats::default();
    for _ in 0..50 {
        let seen = hub.stderr_lines().len();
        hub.signal(libc::SIGUSR1).expect("SIGUSR1");
        stats = stats_line(&hub, seen);
        if stats.events_out_to_in == 1 {
            break;
        }
    }
    assert_eq!(
        (
            stats.hub.as_str(),
            stats.calls_routed,
            stats.events_out_to_in
        ),
        ("front", 1, 1)
    );

    hub.signal(libc::SIGTERM).expect("SIGTERM");
    let status = hub
        .wait_for_output(std::time::Duration::from_secs(5))
        .expect("wait")
        .expect("exited within 5 s");
    assert!(status.success(), "{status:?}\n{}", hub.report());
    assert!(hub.stderr_lines().iter().any(|l| l.contains("stopping")));

    // The ports are free again: the sockets were closed.
    let probe = crate::support::context()
        .socket(zmq::ROUTER)
        .expect("socket");
    probe.bind(&inp).expect("`in` released");
    probe.bind(&out).expect("`out` released");
}

#[test]
fn several_hubs_from_one_file_stop_on_sigint() {
    let endpoints: Vec<String> = (0..4).map(|_| free_tcp_endpoint()).collect();
    let text = format!(
        "- name: rpc\n  in: {}\n  out: {}\n  stats_interval: 0.2\n- name: events\n  type: streamer\n  in: {}\n  out: {}\n",
        endpoints[0], endpoints[1], endpoints[2], endpoints[3]
    );
    let path = temp_file("two.yml", &text);
    let mut hub = Process::spawn("zerorpc-hub", {
        let mut command = Command::new(hub_binary());
        command.arg(&path);
        command
    })
    .expect("spawn");
    hub.wait_for_stderr_line("zerorpc-hub: rpc (queue)", LONG)
        .expect("rpc started");
    hub.wait_for_stderr_line("zerorpc-hub: events (streamer)", LONG)
        .expect("events started");
    // `stats_interval` prints without a signal.
    hub.wait_for_stderr_line("{\"hub\":\"rpc\"", LONG)
        .expect("periodic stats");
    hub.signal(libc::SIGINT).expect("SIGINT");
    let status = hub
        .wait_timeout(std::time::Duration::from_secs(5))
        .expect("wait")
        .expect("exited within 5 s");
    let _ = std::fs::remove_file(&path);
    assert!(status.success(), "{status:?}\n{}", hub.report());
}
