//! Tests of the helpers themselves, including against the real Python peer
//! when it is installed.

use std::collections::HashSet;
use std::fs;
use std::panic;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{
    Process, PythonPeer, find_program, free_port, free_tcp_endpoint, python, require, wait_until,
    workspace_root,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn sh(script: &str) -> Process {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    Process::spawn("sh", command).expect("spawning sh")
}

/// Whether `pid` is gone or a zombie (which no longer runs and, once its
/// parent is init, is reaped shortly).
fn is_dead(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

#[test]
fn drop_kills_and_reaps_the_child() {
    let mut command = Command::new("sleep");
    command.arg("100");
    let process = Process::spawn("sleep", command).unwrap();
    let pid = process.id();
    assert!(!is_dead(pid));
    let started = Instant::now();
    drop(process);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Reaped by the drop, not merely killed: no /proc entry at all.
    assert!(
        fs::metadata(format!("/proc/{pid}")).is_err(),
        "pid {pid} left behind"
    );
}

#[test]
fn drop_kills_the_whole_process_group() {
    let process = sh("sleep 100 & echo child=$!; wait");
    let line = process.wait_for_line("child=", TIMEOUT).unwrap();
    let grandchild: u32 = line["child=".len()..].parse().unwrap();
    drop(process);
    assert!(
        wait_until(TIMEOUT, || is_dead(grandchild)),
        "grandchild {grandchild} survived"
    );
}

#[test]
fn wait_for_line_returns_the_matching_line_and_collects_output() {
    let process = sh("echo starting; echo oops >&2; echo 'state: READY now'; sleep 100");
    let line = process.wait_for_line("READY", TIMEOUT).unwrap();
    assert_eq!(line, "state: READY now");
    // Lines seen before the call match too.
    assert_eq!(process.wait_for_line("start", TIMEOUT).unwrap(), "starting");
    assert_eq!(
        process.wait_for_stderr_line("oops", TIMEOUT).unwrap(),
        "oops"
    );
    assert_eq!(process.stdout_lines(), ["starting", "state: READY now"]);
    assert_eq!(process.stderr_lines(), ["oops"]);
    assert!(process.report().contains("oops"));
}

#[test]
fn wait_for_line_times_out_with_the_output_in_the_error() {
    let process = sh("echo hello; sleep 100");
    let started = Instant::now();
    let error = process
        .wait_for_line("READY", Duration::from_millis(200))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!error.is_closed());
    let message = error.to_string();
    assert!(message.contains("\"READY\""), "{message}");
    assert!(message.contains("hello"), "{message}");
}

#[test]
fn wait_for_line_fails_early_when_the_process_exits() {
    let mut process = sh("echo bye; exit 3");
    let started = Instant::now();
    let error = process.wait_for_line("READY", TIMEOUT).unwrap_err();
    assert!(error.is_closed());
    assert!(started.elapsed() < TIMEOUT);
    let status = process.wait_timeout(TIMEOUT).unwrap().expect("exited");
    assert_eq!(status.code(), Some(3));
    // Killing an exited process reports its real status.
    assert_eq!(process.kill().unwrap().code(), Some(3));
}

#[test]
fn signal_reaches_the_process() {
    let mut process =
        sh("trap 'echo got-term; exit 0' TERM; echo armed; while :; do sleep 0.05; done");
    process.wait_for_line("armed", TIMEOUT).unwrap();
    process.signal(libc::SIGTERM).unwrap();
    process.wait_for_line("got-term", TIMEOUT).unwrap();
    let status = process.wait_timeout(TIMEOUT).unwrap().expect("exited");
    assert!(status.success());
}

#[test]
fn free_ports_differ_and_can_be_bound() {
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let unique: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(unique.len(), ports.len());
    let listener = std::net::TcpListener::bind(("127.0.0.1", ports[0]));
    assert!(listener.is_ok());
}

#[test]
fn free_tcp_endpoint_is_a_loopback_zeromq_address() {
    let endpoint = free_tcp_endpoint();
    let port = endpoint
        .strip_prefix("tcp://127.0.0.1:")
        .expect("loopback tcp endpoint");
    assert!(port.parse::<u16>().unwrap() > 0);
}

#[test]
fn wait_until_reports_success_and_timeout() {
    let mut calls = 0;
    assert!(wait_until(TIMEOUT, || {
        calls += 1;
        calls == 3
    }));
    assert_eq!(calls, 3);

    let started = Instant::now();
    let mut calls = 0;
    assert!(!wait_until(Duration::from_millis(100), || {
        calls += 1;
        false
    }));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(calls <= 100 / 10 + 2, "{calls} polls");
}

#[test]
fn require_passes_found_components() {
    assert!(require("redis-server", true));
}

#[test]
fn require_skips_or_panics_on_missing_components() {
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let result = panic::catch_unwind(|| require("a component nobody has", false));
    match result {
        Ok(found) => {
            assert!(!in_ci, "must panic when CI is set");
            assert!(!found);
        }
        Err(payload) => {
            assert!(in_ci, "must only panic when CI is set");
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            assert!(message.contains("a component nobody has"), "{message}");
        }
    }
}

#[test]
fn find_program_searches_path() {
    assert!(find_program("sh").is_some());
    assert!(find_program("no-such-program-zerorpc").is_none());
}

#[test]
fn workspace_root_holds_the_workspace_manifest() {
    let manifest = fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"));
}

#[test]
fn prelude_restores_getargspec_and_formatargspec() {
    let Some(python) = python() else { return };
    let script = "import inspect, zerorpc\n\
                  def f(self, a, b=2, *rest, **kw): pass\n\
                  spec = inspect.getargspec(f)\n\
                  print(tuple(spec))\n\
                  print(spec.keywords)\n\
                  print('formatted', inspect.formatargspec(*spec))\n\
                  import collections\n\
                  print('iterator', collections.Iterator is collections.abc.Iterator)\n";
    let mut peer = python.spawn(script, &[]).unwrap();
    let process = peer.process();
    process.wait_for_line("iterator", TIMEOUT).unwrap();
    assert_eq!(
        process.stdout_lines(),
        [
            "(['self', 'a', 'b'], 'rest', 'kw', (2,))",
            "kw",
            "formatted (self, a, b=2, *rest, **kw)",
            "iterator True",
        ]
    );
    let status = peer.process_mut().wait_timeout(TIMEOUT).unwrap();
    assert!(status.expect("exited").success());
}

#[test]
fn script_arguments_and_temp_file_cleanup() {
    let Some(python) = python() else { return };
    let peer = python
        .spawn_without_prelude(
            "import sys\nprint('args', sys.argv[1:], sys.argv[0])\n",
            &["x", "y z"],
        )
        .unwrap();
    let line = peer.wait_for_line("args", TIMEOUT).unwrap();
    let (args, script) = line.rsplit_once(' ').unwrap();
    assert_eq!(args, "args ['x', 'y z']");
    assert!(
        fs::metadata(script).is_ok(),
        "script file {script} exists while running"
    );
    drop(peer);
    assert!(
        fs::metadata(script).is_err(),
        "script file {script} removed on drop"
    );
}

const ADD_SERVER: &str = r#"import sys, zerorpc
class Service:
    def add(self, a, b=2):
        "Add two values."
        return a + b
server = zerorpc.Server(Service())
server.bind(sys.argv[1])
print("READY", flush=True)
server.run()
"#;

#[test]
fn python_server_answers_the_python_cli() {
    let endpoint = free_tcp_endpoint();
    let Some(server) = PythonPeer::spawn(ADD_SERVER, &[&endpoint]) else {
        return;
    };
    server.wait_for_line("READY", TIMEOUT).unwrap();
    let python = python().expect("found by PythonPeer::spawn");

    // Without -j the CLI sends strings: '1' + '2'.
    let output = python
        .cli(&["--timeout", "10", &endpoint, "add", "1", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}\n{}",
        server.process().report()
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "'12'\n");

    let output = python
        .cli(&["--timeout", "10", "-j", &endpoint, "add", "1", "2"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "3\n");

    // Signatures need `_zerorpc_inspect`, which needs the server's prelude.
    let output = python
        .cli(&["--timeout", "10", "-?", &endpoint])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("add(self, a, b=2)"), "{stdout}");
}

#[test]
fn python_cli_without_address_exits_255() {
    let Some(python) = python() else { return };
    let output = python.cli(&[]).output().unwrap();
    assert_eq!(output.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&output.stdout).contains("usage: zerorpc"));
}

#[test]
fn rng_is_deterministic_and_bounded() {
    let (mut a, mut b) = (crate::Rng::new(42), crate::Rng::new(42));
    let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
    assert_eq!(first, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
    assert!(first.windows(2).all(|w| w[0] != w[1]));
    assert!((0..1000).all(|_| a.below(7) < 7));
    assert!((0..100).all(|_| a.bytes(9).len() <= 9));
    // A zero seed would make xorshift stay at zero.
    assert_ne!(crate::Rng::new(0).next_u64(), 0);
}
