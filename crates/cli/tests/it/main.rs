//! Integration tests of the `zerorpc` binary: as a client of our server and
//! of zerorpc-python's, and as a server of programs from a service file,
//! called by our client, zerorpc-python's client and zerorpc-python's CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use zerorpc::{Server, ShutdownHandle, Value};
use zerorpc_test_support::{Process, PythonPeer, TempDir, free_tcp_endpoint, python, wait_until};

mod announce;
mod bad_input;
mod bind;
mod dns;
mod dns_hub;
mod dns_python;
mod exposed;
mod security;
mod tracing;

const BIN: &str = env!("CARGO_BIN_EXE_zerorpc");
const STARTUP: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- helpers

fn zerorpc(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("running zerorpc")
}

/// `zerorpc --dns-server DNS --timeout 10 OPTIONS dns:NAME ARGS...`: a
/// call to a service found by name.
fn call_by_name(dns_server: &str, options: &[&str], name: &str, args: &[&str]) -> Output {
    let endpoint = format!("dns:{name}");
    let head = ["--dns-server", dns_server, "--timeout", "10"];
    zerorpc(&[&head[..], options, &[endpoint.as_str()], args].concat())
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_status(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    assert!(!stderr(output).contains("panicked"), "{}", stderr(output));
}

// ------------------------------------------------------------- our server

struct Demo;

#[derive(Debug)]
struct DemoError(String);

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoError {}

#[zerorpc::service(name = "demo")]
impl Demo {
    /// Adds two numbers.
    ///
    /// Both are floats.
    pub(crate) fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }

    /// Returns its argument unchanged.
    pub(crate) fn echo(&self, value: Value) -> Value {
        value
    }

    /// Streams 0 to n-1.
    pub(crate) fn count(&self, n: u64) -> impl Iterator<Item = u64> {
        0..n
    }

    /// Fails with the message.
    pub(crate) fn fail(&self, message: String) -> Result<(), DemoError> {
        Err(DemoError(message))
    }

    /// Sleeps, then returns the seconds slept.
    pub(crate) async fn sleep(&self, seconds: f64) -> f64 {
        tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 600.0))).await;
        seconds
    }

    /// Three bytes of binary data.
    pub(crate) fn blob(&self) -> Value {
        Value::Binary(vec![0, 1, 0xff])
    }

    pub(crate) fn nodoc(&self) {}

    /// Panics.
    pub(crate) fn boom(&self) -> u32 {
        panic!("kaboom")
    }

    /// Places an order; answers its quantity.
    pub(crate) fn place(&self, order: Order) -> u32 {
        order.qty
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Order {
    qty: u32,
}

/// Our server, on a runtime of its own in a background thread.
pub(crate) struct OurServer {
    pub(crate) endpoint: String,
    shutdown: ShutdownHandle,
    thread: Option<thread::JoinHandle<()>>,
}

impl OurServer {
    pub(crate) fn start() -> OurServer {
        // The port is chosen where it is bound: one picked free beforehand
        // may be taken by another test's process before the bind.
        let server = Server::builder(Demo)
            .bind("tcp://127.0.0.1:*")
            .build()
            .expect("starting our server");
        let endpoint = server.endpoints()[0].clone();
        let shutdown = server.shutdown_handle();
        let thread = thread::spawn(move || {
            let _ = server.run();
        });
        OurServer {
            endpoint,
            shutdown,
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a tcp endpoint with a port")
    }

    /// A services file announcing it as `name` (a ROUTER speaking protocol
    /// 3, TTL 5 s), written into `dir`.
    pub(crate) fn services_file(&self, dir: &TempDir, name: &str) -> PathBuf {
        dir.file(
            "services.yml",
            &format!(
                "services:
  - name: {name}
    ttl: 5
    socket_type: ROUTER
    protocol: 3
    instances:
      - {{ host: 127.0.0.1, port: {} }}
",
                self.port()
            ),
        )
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn lists_our_methods() {
    let server = OurServer::start();
    let out = zerorpc(&[&server.endpoint]);
    assert_status(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "[demo]");
    assert!(lines.contains(&"add   Adds two numbers."), "{text}");
    assert!(lines.contains(&"nodoc <undocumented>"), "{text}");
    assert!(!text.contains('\x1b'), "no colours when piped: {text:?}");
}

#[test]
fn method_help_forms() {
    let server = OurServer::start();
    for args in [
        vec![server.endpoint.as_str(), "add", "?"],
        vec!["--help-method", &server.endpoint, "add"],
        vec!["-?", &server.endpoint, "add"],
    ] {
        let out = zerorpc(&args);
        assert_status(&out, 0);
        assert_eq!(
            stdout(&out),
            "[demo]\nadd(a: f64, b: f64)\n\nAdds two numbers.\n\nBoth are floats.\n",
            "{args:?}"
        );
    }
    let out = zerorpc(&[&server.endpoint, "nosuch", "?"]);
    assert_status(&out, 1);
    assert!(
        stderr(&out).contains("No documentation for \"nosuch\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_prints_the_whole_answer() {
    let server = OurServer::start();
    let out = zerorpc(&["--inspect", &server.endpoint]);
    assert_status(&out, 0);
    assert!(
        stdout(&out).contains("count(n: u64)\n    Streams 0 to n-1.\n"),
        "{}",
        stdout(&out)
    );
    let out = zerorpc(&["-?", "-pj", &server.endpoint]);
    assert_status(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["name"], "demo");
    assert_eq!(
        json["methods"]["add"]["doc"],
        "Adds two numbers.\n\nBoth are floats."
    );
    assert_eq!(json["methods"]["add"]["args"][0]["name"], "a");
}

#[test]
fn calls_with_strings_and_json() {
    let server = OurServer::start();
    let out = zerorpc(&[&server.endpoint, "echo", "12"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "'12'\n");
    let out = zerorpc(&["-j", &server.endpoint, "add", "1", "-2.5"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "-1.5\n");
    let out = zerorpc(&[
        "-j",
        &server.endpoint,
        "echo",
        r#"{"a": [1, "two", 3.0, null, true]}"#,
    ]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "{'a': [1, 'two', 3.0, None, True]}\n");
    let out = zerorpc(&["-pj", "-j", &server.endpoint, "echo", r#"[1, "two", 3.0]"#]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "[1,\"two\",3.0]\n");
    let out = zerorpc(&["--raw", &server.endpoint, "echo", "plain text"]);
    assert_eq!(stdout(&out), "plain text\n");
    let out = zerorpc(&[&server.endpoint, "blob"]);
    assert_eq!(stdout(&out), "b'\\x00\\x01\\xff'\n");
    // zerorpc-python's positional shift.
    let out = zerorpc(&["-j", "--connect", &server.endpoint, "add", "4", "5"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "9.0\n");
}

#[test]
fn negative_numbers_after_the_positional_shift() {
    let server = OurServer::start();
    let out = zerorpc(&["-j", "--connect", &server.endpoint, "add", "-1", "-2"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "-3.0\n");
}

#[test]
fn streams_print_one_item_per_line() {
    let server = OurServer::start();
    let out = zerorpc(&["-j", &server.endpoint, "count", "3"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "0\n1\n2\n");
    let out = zerorpc(&["-pj", "-j", &server.endpoint, "count", "3"]);
    assert_eq!(stdout(&out), "[0,1,2]\n");
    let out = zerorpc(&["-pj", "-j", &server.endpoint, "count", "0"]);
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn remote_error_exits_1_with_name_and_message() {
    let server = OurServer::start();
    let out = zerorpc(&[&server.endpoint, "fail", "boom"]);
    assert_status(&out, 1);
    assert!(stderr(&out).contains("DemoError: boom"), "{}", stderr(&out));
    let out = zerorpc(&[&server.endpoint, "nosuch"]);
    assert_status(&out, 1);
    assert!(stderr(&out).contains("NameError"), "{}", stderr(&out));
}

#[test]
fn a_remote_panic_is_printed_once() {
    let server = OurServer::start();
    let out = zerorpc(&[&server.endpoint, "boom"]);
    assert_status(&out, 1);
    let err = stderr(&out);
    assert_eq!(err.matches("kaboom").count(), 1, "{err}");
    assert_eq!(err.trim_end(), "Panic in method boom: kaboom");
}

#[test]
fn json_sent_as_a_string_gets_a_hint_to_use_j() {
    let server = OurServer::start();
    let out = zerorpc(&[&server.endpoint, "place", r#"{"qty": 2}"#]);
    assert_status(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("place() argument 'order': invalid type: string"),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: argument 1 looks like JSON but was sent as a string: use -j to send arguments as JSON"
        ),
        "{err}"
    );

    // With -j it is a map, and a field of the wrong type is named.
    let out = zerorpc(&["-j", &server.endpoint, "place", r#"{"qty": 2}"#]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "2\n");
    let out = zerorpc(&["-j", &server.endpoint, "place", r#"{"qty": "two"}"#]);
    assert_status(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            r#"TypeError: place() argument 'order': field 'qty': invalid type: string "two", expected u32"#
        ),
        "{err}"
    );
    assert!(!err.contains("hint"), "{err}");
}

#[test]
fn debug_prints_events_and_channel_changes_from_its_own_thread() {
    let server = OurServer::start();
    let out = zerorpc(&["-d", &server.endpoint, "echo", "hi"]);
    assert_status(&out, 0);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let position = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix));
    let opened = position("=== channel").expect("the channel's opening");
    let request = position("--> echo").expect("the request");
    let reply = position("<-- OK").expect("the reply");
    assert!(opened < request && request < reply, "{err}");
    assert!(err.contains("closed (Closed"), "{err}");
    assert!(err.contains(&server.endpoint), "the peer is named: {err}");
}

#[test]
fn timeout_exits_3() {
    let server = OurServer::start();
    let out = zerorpc(&["--timeout", "1", "-j", &server.endpoint, "sleep", "60"]);
    assert_status(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("no reply from {} within 1s", server.endpoint)),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unreachable_server_is_a_one_line_timeout() {
    let endpoint = free_tcp_endpoint();
    let out = zerorpc(&["--timeout", "1", &endpoint, "add"]);
    assert_status(&out, 3);
    assert!(
        stderr(&out).contains(&format!("no reply from {endpoint} within 1s")),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn usage_and_endpoint_errors() {
    assert_status(&zerorpc(&[]), 2);
    assert_status(&zerorpc(&["--no-such-flag"]), 2);
    assert_status(&zerorpc(&["--server", "--bind", "tcp://127.0.0.1:1"]), 2);
    assert_status(&zerorpc(&["-j", "tcp://127.0.0.1:1", "add", "{"]), 2);
    let out = zerorpc(&["not-an-endpoint", "add"]);
    assert_status(&out, 2);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // Well-formed but refused by ZeroMQ: a connection error, one line.
    let out = zerorpc(&["--timeout", "1", "tcp://127.0.0.1:notaport", "add"]);
    assert_status(&out, 5);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = zerorpc(&["--timeout", "1", "nosuchtransport://x", "add"]);
    assert_status(&out, 5);
}

#[test]
fn a_host_and_port_without_transport_is_a_usage_error_with_a_hint() {
    let out = zerorpc(&["localhost:4242", "add"]);
    assert_status(&out, 2);
    assert!(stderr(&out).contains("did you mean tcp://localhost:4242?"));
}

#[test]
fn socket_failures_tell_each_cause_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", taken.local_addr().unwrap());
    let out = zerorpc(&["--timeout", "1", "--bind", &endpoint, "add"]);
    assert_status(&out, 5);
    assert_eq!(
        stderr(&out),
        format!("zerorpc: error: cannot bind to {endpoint}: Address already in use\n")
    );
    let out = zerorpc(&["--timeout", "1", "tcp://127.0.0.1:notaport", "add"]);
    assert_status(&out, 5);
    assert_eq!(
        stderr(&out),
        "zerorpc: error: cannot connect to tcp://127.0.0.1:notaport: Invalid argument\n"
    );
}

#[test]
fn garbage_never_panics() {
    let cases: &[&[&str]] = &[
        &["-j", "tcp://127.0.0.1:1", "m", "\u{1}"],
        &["--timeout", "nan", "tcp://127.0.0.1:1"],
        &["--timeout", "1e400", "tcp://127.0.0.1:1"],
        &["--heartbeat", "-3", "tcp://127.0.0.1:1"],
        &["tcp://"],
        &["://"],
        &["", ""],
        &["-?", "-?", "--", "-x"],
        &["--bind", "", "m"],
        &["--pool-size", "0", "tcp://127.0.0.1:1"],
        &["completions", "no-such-shell"],
        &["--server", "tcp://127.0.0.1:1", "/no/such/file.toml"],
    ];
    for args in cases {
        let out = zerorpc(args);
        let code = out.status.code().unwrap_or(-1);
        assert!(
            (0..=7).contains(&code),
            "{args:?}: status {code}\n{}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn niceties() {
    let out = zerorpc(&["--help"]);
    assert_status(&out, 0);
    assert!(stdout(&out).contains("Examples:"));
    let out = zerorpc(&["--version"]);
    assert_status(&out, 0);
    assert!(stdout(&out).starts_with("zerorpc "));
    let out = zerorpc(&["completions", "bash"]);
    assert_status(&out, 0);
    assert!(stdout(&out).contains("_zerorpc"));
    let server = OurServer::start();
    let out = zerorpc(&["--color", "always", &server.endpoint, "echo", "x"]);
    assert!(stdout(&out).contains('\x1b'), "{:?}", stdout(&out));
}

// --------------------------------------------------------- Python server

const PYTHON_SERVER: &str = r#"
import sys, zerorpc

class Svc(object):
    def add(self, a, b=1):
        """Add two things.

        Long description line."""
        return a + b

    @zerorpc.stream
    def count(self, n):
        return range(int(n))

    def fail(self, message):
        raise ValueError(message)

    def nodoc(self):
        return None

server = zerorpc.Server(Svc())
server.bind(sys.argv[1])
print("READY")
server.run()
"#;

fn python_server(prelude: bool) -> Option<(PythonPeer, String)> {
    let python = python()?;
    let endpoint = free_tcp_endpoint();
    let peer = if prelude {
        python.spawn(PYTHON_SERVER, &[&endpoint])
    } else {
        python.spawn_without_prelude(PYTHON_SERVER, &[&endpoint])
    }
    .expect("starting the Python server");
    peer.wait_for_line("READY", STARTUP)
        .expect("Python server ready");
    Some((peer, endpoint))
}

#[test]
fn python_server_listing_help_and_inspect() {
    let Some((_peer, endpoint)) = python_server(true) else {
        return;
    };
    let out = zerorpc(&["--timeout", "10", &endpoint]);
    assert_status(&out, 0);
    assert_eq!(
        stdout(&out),
        "[Svc]\nadd   Add two things.\ncount <undocumented>\nfail  <undocumented>\nnodoc <undocumented>\n"
    );
    let out = zerorpc(&["--timeout", "10", &endpoint, "add", "?"]);
    assert_status(&out, 0);
    assert_eq!(
        stdout(&out),
        "[Svc]\nadd(a, b=1)\n\nAdd two things.\n\nLong description line.\n"
    );
    let out = zerorpc(&["--timeout", "10", "-pj", "--inspect", &endpoint]);
    assert_status(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(json["methods"]["add"]["args"][2]["default"], 1);
}

#[test]
fn python_server_without_inspect_falls_back_to_legacy_calls() {
    // Plain zerorpc-python 0.6.3 on Python 3.11+ fails _zerorpc_inspect.
    let Some((_peer, endpoint)) = python_server(false) else {
        return;
    };
    let out = zerorpc(&["--timeout", "10", &endpoint]);
    assert_status(&out, 0);
    assert!(
        stdout(&out).starts_with("[Svc]\nadd   Add two things.\n"),
        "{}",
        stdout(&out)
    );
    let out = zerorpc(&["--timeout", "10", &endpoint, "add", "?"]);
    assert_status(&out, 0);
    assert!(
        stdout(&out).contains("Add two things.\n\nLong description line."),
        "{}",
        stdout(&out)
    );
}

const PYTHON_SLOW_SERVER: &str = r#"
import sys
import gevent
import zerorpc

class Slow(object):
    def slow(self):
        print("CALLED", flush=True)
        gevent.sleep(60)
        return "done"

server = zerorpc.Server(Slow(), heartbeat=0.5)
server.bind(sys.argv[1])
print("READY")
server.run()
"#;

#[test]
fn lost_remote_exits_4() {
    let Some(python) = python() else {
        return;
    };
    let endpoint = free_tcp_endpoint();
    let mut server = python
        .spawn(PYTHON_SLOW_SERVER, &[&endpoint])
        .expect("starting the Python server");
    server
        .wait_for_line("READY", STARTUP)
        .expect("Python server ready");
    let mut command = Command::new(BIN);
    command.args(["--heartbeat", "0.5", "--timeout", "60", &endpoint, "slow"]);
    let mut client = Process::spawn("zerorpc", command).expect("starting the CLI");
    server
        .wait_for_line("CALLED", STARTUP)
        .expect("the call reached the server");
    // The CLI heartbeats passively: it watches for loss only once the
    // server's first heartbeat (0.5 s into the call) has arrived.
    thread::sleep(Duration::from_millis(1000));
    server.process_mut().kill().expect("killing the server");
    let status = client
        .wait_for_output(Duration::from_secs(20))
        .expect("waiting for the CLI")
        .expect("the CLI noticed the loss in time");
    assert_eq!(status.code(), Some(4), "{}", client.report());
    let err = client.stderr_lines().join("\n");
    assert!(err.contains("lost remote"), "{err}");
}

#[test]
fn python_server_calls_streams_and_errors() {
    let Some((_peer, endpoint)) = python_server(true) else {
        return;
    };
    let out = zerorpc(&["--timeout", "10", &endpoint, "add", "1", "2"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "'12'\n");
    let out = zerorpc(&["--timeout", "10", "-j", &endpoint, "add", "1", "2"]);
    assert_eq!(stdout(&out), "3\n");
    let out = zerorpc(&["--timeout", "10", "-pj", &endpoint, "nodoc"]);
    assert_eq!(stdout(&out), "null\n");
    let out = zerorpc(&["--timeout", "10", &endpoint, "count", "3"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "0\n1\n2\n");
    let out = zerorpc(&["--timeout", "10", &endpoint, "fail", "bad value!"]);
    assert_status(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("Traceback"), "{err}");
    assert!(err.contains("ValueError: bad value!"), "{err}");
}

// ------------------------------------------------------ serving programs

const SPEC: &str = r#"
name = "tools"

[methods.say]
command = ["echo"]
description = "Prints its arguments."

[methods.lines]
command = ["seq", "1"]
description = "Counts from 1 to N, one line at a time."
stream = true
args = ["n"]

[methods.fail]
command = ["sh", "-c", "echo first >&2; echo 'it went wrong' >&2; exit 3", "sh"]

[methods.slow]
command = ["sleep"]
timeout = 1

[methods.hang]
command = ["sleep"]

[methods.bytes]
command = ["printf", "\\377\\001"]

[methods.straggler]
command = ["sh", "-c", "sleep 5 >&2 & echo leaving >&2; exit 1"]
timeout = 1

[methods.exclusive]
command = ["sh", "-c", "mkdir \"$1\" || exit 7; sleep 0.3; rmdir \"$1\"", "sh"]
max_concurrent = 1
"#;

struct ProgramServer {
    process: Process,
    endpoint: String,
    _dir: TempDir,
}

impl ProgramServer {
    fn start(extra: &[&str]) -> ProgramServer {
        ProgramServer::serving(extra, TempDir::new(), SPEC)
    }

    /// Serves the service file `spec`, written to `dir` (which the server
    /// keeps until it stops).
    fn serving(extra: &[&str], dir: TempDir, spec: &str) -> ProgramServer {
        let spec = dir.file("tools.toml", spec);
        let endpoint = free_tcp_endpoint();
        let mut command = Command::new(BIN);
        command
            .args(extra)
            .args(["--server", "--bind", &endpoint])
            .arg(&spec);
        let process =
            Process::spawn("zerorpc --server", command).expect("starting zerorpc --server");
        process
            .wait_for_stderr_line("serving", STARTUP)
            .expect("server ready");
        ProgramServer {
            process,
            endpoint,
            _dir: dir,
        }
    }

    /// The server's child processes (a zombie is one too).
    fn children(&self) -> Vec<String> {
        children_of(self.process.id())
    }
}

/// `pid (name) state` of each process whose parent is `parent`.
fn children_of(parent: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.ok()?.path().join("stat")).ok()?;
            // The name may contain spaces and parentheses: split at the last ')'.
            let (head, tail) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = tail.split_whitespace().collect();
            let ppid: u32 = fields.get(1)?.parse().ok()?;
            (ppid == parent).then(|| format!("{head}) {}", fields.first().copied().unwrap_or("?")))
        })
        .collect()
}

#[test]
fn serves_programs_to_our_client() {
    let server = ProgramServer::start(&[]);
    let ep = server.endpoint.as_str();
    let out = zerorpc(&["--timeout", "10", ep]);
    assert_status(&out, 0);
    let listing = stdout(&out);
    assert!(listing.starts_with("[tools]\n"), "{listing}");
    assert!(
        listing.contains("say       Prints its arguments."),
        "{listing}"
    );
    let out = zerorpc(&["--timeout", "10", ep, "lines", "?"]);
    assert_eq!(
        stdout(&out),
        "[tools]\nlines(n)\n\nCounts from 1 to N, one line at a time.\n\nRuns: seq 1 ARGS...\nStreams stdout line by line.\n"
    );
    let out = zerorpc(&["--timeout", "10", ep, "say", "hello", "two words", "$HOME;"]);
    assert_status(&out, 0);
    assert_eq!(
        stdout(&out),
        "'hello two words $HOME;\\n'\n",
        "arguments reach argv untouched by a shell"
    );
    let out = zerorpc(&["--timeout", "10", "-r", ep, "say", "hi"]);
    assert_eq!(stdout(&out), "hi\n");
    let out = zerorpc(&["--timeout", "10", ep, "lines", "5"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "'1'\n'2'\n'3'\n'4'\n'5'\n");
    let out = zerorpc(&["--timeout", "10", ep, "bytes"]);
    assert_eq!(stdout(&out), "b'\\xff\\x01'\n");
    let out = zerorpc(&["--timeout", "10", ep, "fail"]);
    assert_status(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("CommandFailed"), "{err}");
    assert!(err.contains("exited with code 3: it went wrong"), "{err}");
    assert!(err.contains("first\nit went wrong"), "stderr tail: {err}");
}

#[test]
fn timed_out_command_is_killed_and_reaped() {
    let server = ProgramServer::start(&[]);
    let out = zerorpc(&["--timeout", "20", &server.endpoint, "slow", "30"]);
    assert_status(&out, 1);
    assert!(stderr(&out).contains("TimeoutExpired"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did not finish within 1s"),
        "{}",
        stderr(&out)
    );
    assert!(
        wait_until(Duration::from_secs(10), || server.children().is_empty()),
        "children left: {:?}",
        server.children()
    );
}

#[test]
fn failed_command_leaving_stderr_open_still_obeys_its_timeout() {
    let server = ProgramServer::start(&[]);
    // The command exits at once, but its background `sleep` keeps stderr
    // open for 5 s: the wait for the stderr tail is bounded by the method's
    // 1 s timeout.
    let out = zerorpc(&["--timeout", "20", &server.endpoint, "straggler"]);
    assert_status(&out, 1);
    assert!(stderr(&out).contains("TimeoutExpired"), "{}", stderr(&out));
}

#[test]
fn cancelled_call_kills_its_command() {
    let server = ProgramServer::start(&["--heartbeat", "1"]);
    let mut command = Command::new(BIN);
    command.args([
        "--heartbeat",
        "1",
        "--timeout",
        "0",
        &server.endpoint,
        "hang",
        "300",
    ]);
    let mut client = Process::spawn("zerorpc client", command).expect("starting the client");
    assert!(
        wait_until(Duration::from_secs(20), || !server.children().is_empty()),
        "the command never started"
    );
    client.signal(libc::SIGKILL).expect("killing the client");
    // The server notices the lost heartbeats and cancels the call.
    assert!(
        wait_until(Duration::from_secs(30), || server.children().is_empty()),
        "children left: {:?}",
        server.children()
    );
}

#[test]
fn concurrency_limit_is_honoured() {
    let server = ProgramServer::start(&[]);
    let dir = TempDir::new();
    let lock = dir.0.join("lock");
    let lock = lock.to_str().expect("UTF-8 temporary path");
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let mut command = Command::new(BIN);
            command.args(["--timeout", "20", &server.endpoint, "exclusive", lock]);
            command.spawn().expect("starting a client")
        })
        .collect();
    for mut client in clients {
        // Each client ends within its 20 s call timeout.
        let status = client.wait().expect("waiting for a client");
        assert!(
            status.success(),
            "a run overlapped another (mkdir failed): {status}"
        );
    }
}

#[test]
fn python_client_and_cli_call_served_programs() {
    let Some(python) = python() else { return };
    let server = ProgramServer::start(&[]);
    let script = r#"
import sys, zerorpc
c = zerorpc.Client(timeout=10)
c.connect(sys.argv[1])
print("SAY", repr(c.say("hi", "there")))
print("LINES", list(c.lines("3")))
try:
    c.fail()
except zerorpc.RemoteError as e:
    print("ERR", e.name, "|", e.msg)
print("DONE")
"#;
    let peer = python
        .spawn(script, &[&server.endpoint])
        .expect("starting the Python client");
    peer.wait_for_line("DONE", STARTUP)
        .expect("Python client finished");
    let lines = peer.process().stdout_lines();
    assert!(lines.contains(&"SAY 'hi there\\n'".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"LINES ['1', '2', '3']".to_owned()),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERR CommandFailed | ") && l.contains("exited with code 3")),
        "{lines:?}"
    );

    let out = python
        .cli(&["--timeout", "10", &server.endpoint, "say", "hello"])
        .output()
        .expect("running the Python CLI");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "'hello\\n'\n");
    let out = python
        .cli(&["--timeout", "10", &server.endpoint])
        .output()
        .expect("running the Python CLI");
    assert!(stdout(&out).contains("say"), "{}", stdout(&out));
    let out = python
        .cli(&["--timeout", "10", &server.endpoint, "lines", "2"])
        .output()
        .expect("running the Python CLI");
    assert_eq!(stdout(&out), "'1'\n'2'\n");
}

#[test]
fn bad_service_files_are_clear_usage_errors() {
    let dir = TempDir::new();
    let cases = [
        ("missing.toml", None, "cannot read service file"),
        (
            "empty.toml",
            Some("[methods.x]\ncommand = []\n"),
            "methods.x.command",
        ),
        (
            "typo.toml",
            Some("[methods.x]\ncomand = [\"true\"]\n"),
            "comand",
        ),
        (
            "timeout.toml",
            Some("[methods.x]\ncommand = [\"true\"]\ntimeout = -1\n"),
            "methods.x.timeout",
        ),
        (
            "yaml.yaml",
            Some("methods:\n  x:\n    command: 5\n"),
            "yaml.yaml",
        ),
        ("syntax.toml", Some("[methods.x\n"), "syntax.toml"),
    ];
    for (name, contents, expected) in cases {
        let path: PathBuf = match contents {
            Some(text) => dir.file(name, text),
            None => dir.0.join(name),
        };
        let out = zerorpc(&["--server", "--bind", &free_tcp_endpoint(), path_str(&path)]);
        assert_status(&out, 2);
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
    }
}

#[test]
fn yaml_service_files_work() {
    let dir = TempDir::new();
    let spec = dir.file(
        "tools.yaml",
        "name: yamltools\nmethods:\n  say:\n    command: [echo]\n    description: Says.\n",
    );
    let endpoint = free_tcp_endpoint();
    let mut command = Command::new(BIN);
    command.args(["--server", "--bind", &endpoint, path_str(&spec)]);
    let process = Process::spawn("zerorpc --server", command).expect("starting zerorpc --server");
    process
        .wait_for_stderr_line("serving", STARTUP)
        .expect("server ready");
    let out = zerorpc(&["--timeout", "10", "-r", &endpoint, "say", "yes"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "yes\n");
}

#[test]
fn raw_output_is_the_data_byte_for_byte() {
    let server = ProgramServer::start(&[]);
    // Not valid UTF-8: the bytes themselves, not U+FFFD replacements.
    let out = zerorpc(&["--timeout", "10", "-r", &server.endpoint, "bytes"]);
    assert_status(&out, 0);
    assert_eq!(out.stdout, b"\xff\x01\n");
    // Escape sequences in the data survive a pipe (colours are only ours).
    let coloured = "\x1b[31mred\x1b[0m";
    let out = zerorpc(&["--timeout", "10", "-r", &server.endpoint, "say", coloured]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), format!("{coloured}\n"));
}

/// A pipe whose reading end is already closed: every write fails with EPIPE.
fn closed_pipe() -> std::process::Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe(2) writes two new descriptors into the array, which we
    // then own; nothing else refers to them.
    let (reader, writer) = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0, "creating a pipe");
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(reader);
    std::process::Stdio::from(writer)
}

#[test]
fn completions_to_a_closed_pipe_do_not_panic() {
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .stdout(closed_pipe())
        .output()
        .expect("running zerorpc");
    assert_status(&out, 0);
}

/// Kills and reaps a child that `Process` cannot hold (its stderr is ours).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn server_keeps_serving_when_stderr_is_a_closed_pipe() {
    let dir = TempDir::new();
    let spec = dir.file("tools.toml", SPEC);
    let endpoint = free_tcp_endpoint();
    // As in `zerorpc --server ... 2>&1 | grep -m1 serving`: its status lines
    // and `-d` events go nowhere once the reader is gone.
    let mut server = Reaped(
        Command::new(BIN)
            .args(["-d", "--server", "--bind", &endpoint, path_str(&spec)])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(closed_pipe())
            .spawn()
            .expect("starting zerorpc --server"),
    );
    let answered = wait_until(STARTUP, || {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the server exited: {status}");
        }
        let out = zerorpc(&["--timeout", "2", "-r", &endpoint, "say", "hi"]);
        out.status.success() && stdout(&out) == "hi\n"
    });
    assert!(answered, "the server never answered");
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}
