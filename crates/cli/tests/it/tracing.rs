//! Tracing across separate processes: `zerorpc --server` programs calling
//! each other through `zerorpc`, a `zerorpc collector` into Redis or
//! memory, and `zerorpc tracedump` and `zerorpc top` reading it back; a
//! zerorpc-python server in the middle of a chain.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use zerorpc::Server;
use zerorpc_test_support::{Process, PythonPeer, RedisServer, find_program, free_tcp_endpoint};

use super::{BIN, STARTUP, TempDir, assert_status, stderr, stdout, zerorpc};

/// A process started from this binary, ready once its stderr says `ready`.
fn spawn(name: &str, args: &[&str], ready: &str) -> Process {
    let mut command = Command::new(BIN);
    command.args(args);
    let process = Process::spawn(name, command).expect("starting zerorpc");
    process
        .wait_for_stderr_line(ready, STARTUP)
        .unwrap_or_else(|e| panic!("{name} is ready: {e}"));
    process
}

/// `zerorpc --server` for a service file, reporting to `collector`.
fn program_server(dir: &TempDir, name: &str, spec: &str, collector: &str) -> (Process, String) {
    let endpoint = free_tcp_endpoint();
    let spec = dir.file(&format!("{name}.toml"), spec);
    let process = spawn(
        name,
        &[
            "--server",
            "--bind",
            &endpoint,
            "--trace-collector",
            collector,
            spec.to_str().unwrap(),
        ],
        "serving",
    );
    (process, endpoint)
}

/// `zerorpc collector` in memory: the process, its report and query endpoints.
fn memory_collector() -> (Process, String, String) {
    let endpoint = free_tcp_endpoint();
    let query = free_tcp_endpoint();
    let process = spawn(
        "collector",
        &["collector", "--bind", &endpoint, "--query", &query],
        "answering queries",
    );
    (process, endpoint, query)
}

/// The trace id `zerorpc --trace` printed.
fn trace_id(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("TraceID: "))
        .unwrap_or_else(|| panic!("no TraceID line in {stderr}"))
        .to_owned()
}

/// `zerorpc tracedump --json` once the trace is `complete`.
///
/// A short-lived `zerorpc` call may exit before its last reports (the
/// replies it received) leave: reports are best effort. The servers' own
/// reports, which stand in for them, are waited for instead.
fn dump_json(id: &str, source: &[&str], complete: impl Fn(&Json) -> bool) -> Json {
    let mut last = String::new();
    for _ in 0..300 {
        let out = zerorpc(&[&["tracedump", id, "--json"], source].concat());
        if out.status.success() {
            let json: Json = serde_json::from_slice(&out.stdout).expect("tracedump prints JSON");
            if complete(&json) {
                return json;
            }
        }
        last = format!("{}{}", stdout(&out), stderr(&out));
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("trace {id} never was complete; last answer:\n{last}");
}

/// `calls` calls, each sent, received, and answered (the callee's reply
/// reports, `replies` in all), as both ends of every call report.
fn both_ends(calls: usize, replies: usize) -> impl Fn(&Json) -> bool {
    move |json| {
        let all = json["calls"].as_array().map_or(&[][..], Vec::as_slice);
        all.len() == calls
            && all
                .iter()
                .all(|c| c["lag_us"].is_u64() && c["exec_us"].is_u64())
            && all
                .iter()
                .map(|c| c["replies"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
                == replies
    }
}

/// Each call of a `--json` dump by method: (span, parent, depth).
fn calls_by_method(json: &Json) -> HashMap<String, (String, Option<String>, u64)> {
    json["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| {
            (
                call["method"].as_str().unwrap().to_owned(),
                (
                    call["span_id"].as_str().unwrap().to_owned(),
                    call["parent_span_id"].as_str().map(str::to_owned),
                    call["depth"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn a_chain_of_server_processes_is_one_trace_in_redis() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let dir = TempDir::new();
    let collector_endpoint = free_tcp_endpoint();
    let query = free_tcp_endpoint();
    let _collector = spawn(
        "collector",
        &[
            "collector",
            "--bind",
            &collector_endpoint,
            "--query",
            &query,
            "--redis",
            &redis.url(),
        ],
        "answering queries",
    );
    let c_spec = r#"
name = "c"
[methods.fail]
command = ["sh", "-c", "echo oops >&2; exit 3", "sh"]
[methods.lines]
command = ["seq", "1"]
stream = true
"#;
    let (_c, c) = program_server(&dir, "c", c_spec, &collector_endpoint);
    // B calls C twice: one call fails, one streams.
    let b_spec = format!(
        r#"
name = "b"
[methods.fanout]
command = ["sh", "-c", "\"$0\" --timeout 10 {c} fail; \"$0\" --timeout 10 {c} lines 3", "{BIN}"]
"#
    );
    let (_b, b) = program_server(&dir, "b", &b_spec, &collector_endpoint);
    let a_spec = format!(
        r#"
name = "a"
[methods.start]
command = ["{BIN}", "--timeout", "20", "{b}", "fanout"]
"#
    );
    let (_a, a) = program_server(&dir, "a", &a_spec, &collector_endpoint);

    let out = zerorpc(&[
        "--trace",
        "--trace-collector",
        &collector_endpoint,
        "--timeout",
        "30",
        &a,
        "start",
    ]);
    assert_status(&out, 0);
    let id = trace_id(&stderr(&out));
    let redis_url = redis.url();
    let source = ["--redis", redis_url.as_str()];
    // start, fanout and fail answer once; lines 3 items and the end.
    let json = dump_json(&id, &source, both_ends(4, 7));
    assert_eq!(json["trace_id"], id.as_str());
    let calls = calls_by_method(&json);
    assert_eq!(calls.len(), 4, "{json:#}");
    let span = |m: &str| calls[m].0.clone();
    assert_eq!(calls["start"].1, None);
    assert_eq!(calls["fanout"].1, Some(span("start")));
    assert_eq!(calls["fail"].1, Some(span("fanout")));
    assert_eq!(calls["lines"].1, Some(span("fanout")));
    let depths: Vec<u64> = ["start", "fanout", "fail", "lines"]
        .iter()
        .map(|m| calls[*m].2)
        .collect();
    assert_eq!(depths, [0, 1, 2, 2]);
    for call in json["calls"].as_array().unwrap() {
        assert!(
            call["lag_us"].is_u64() && call["exec_us"].is_u64(),
            "{call:#}"
        );
        let callee = call["callee"].as_str().unwrap();
        let expected = match call["method"].as_str().unwrap() {
            "start" => "a@",
            "fanout" => "b@",
            _ => "c@",
        };
        assert!(callee.starts_with(expected), "{call:#}");
    }
    let exec = |i: usize| json["calls"][i]["exec_us"].as_u64().unwrap();
    assert!(exec(0) > exec(1), "a call lasts longer than its subcall");

    // The text: one line per message, in time order, indented by depth.
    let out = Command::new(BIN)
        .args(["tracedump", &id])
        .env("ZERORPC_REDIS_URL", &redis_url)
        .output()
        .unwrap();
    assert_status(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11, "{text}");
    let message = |line: &str| line.split_once("] ").unwrap().1.to_owned();
    assert!(message(lines[0]).starts_with("zerorpc@"), "{text}");
    assert!(message(lines[0]).contains(" --- start ---> a@"), "{text}");
    assert!(message(lines[0]).contains("(lag: "), "{text}");
    assert!(message(lines[1]).starts_with("    zerorpc@"), "{text}");
    assert!(message(lines[1]).contains(" --- fanout ---> b@"), "{text}");
    assert!(message(lines[2]).starts_with("        zerorpc@"), "{text}");
    assert!(message(lines[2]).contains(" --- fail ---> c@"), "{text}");
    assert!(message(lines[3]).starts_with("        c@"), "{text}");
    assert!(
        message(lines[3]).contains(" --- ERR CommandFailed ---> zerorpc@"),
        "{text}"
    );
    assert_eq!(text.matches("--- STREAM --->").count(), 3, "{text}");
    assert!(
        message(lines[9]).contains("b@") && message(lines[9]).contains(" --- OK ---> zerorpc@"),
        "{text}"
    );
    assert!(
        message(lines[10]).starts_with("a@")
            && message(lines[10]).contains(" --- OK ---> zerorpc@"),
        "{text}"
    );
    let stamps: Vec<&str> = lines.iter().map(|l| &l[1..27]).collect();
    assert!(stamps.is_sorted(), "time order: {text}");

    // The picture agrees with the JSON.
    let out = zerorpc(&[&["tracedump", &id, "--format", "dot"], &source[..]].concat());
    assert_status(&out, 0);
    let dot = stdout(&out);
    let edges: BTreeSet<(String, String)> = dot
        .lines()
        .filter(|l| !l.contains('['))
        .filter_map(|l| l.trim().strip_suffix(';')?.split_once(" -> "))
        .map(|(from, to)| {
            (
                from.trim_matches('"').to_owned(),
                to.trim_matches('"').to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = calls
        .values()
        .filter_map(|(span, parent, _)| Some((parent.clone()?, span.clone())))
        .collect();
    assert_eq!(edges, expected, "{dot}");

    // Other tools' formats.
    let out = zerorpc(&[&["tracedump", &id, "--format", "otlp"], &source[..]].concat());
    let otlp: Json = serde_json::from_slice(&out.stdout).unwrap();
    let spans: usize = otlp["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap().len())
        .sum();
    assert_eq!(spans, 4);
    let out = zerorpc(&[&["tracedump", &id, "--format", "zipkin"], &source[..]].concat());
    let zipkin: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        zipkin.as_array().unwrap().len(),
        8,
        "a client and a server span per call"
    );

    // A drawing through Graphviz, or a clear error without it.
    let out = zerorpc(&[&["tracedump", &id, "--format", "svg"], &source[..]].concat());
    if find_program("dot").is_some() {
        assert_status(&out, 0);
        assert!(stdout(&out).contains("<svg"), "{}", stdout(&out));
    } else {
        assert_status(&out, 7);
        assert!(stderr(&out).contains("Graphviz"), "{}", stderr(&out));
    }

    // The collector answers the same from its query endpoint.
    let via_collector = dump_json(&id, &["--collector", &query], both_ends(4, 7));
    assert_eq!(calls_by_method(&via_collector), calls);

    // The counters: C answered two calls, one with an error.
    let out = zerorpc(&["top", "--redis", &redis_url, "--minutes", "2"]);
    assert_status(&out, 0);
    let top = stdout(&out);
    let row = |service: &str, method: &str| {
        top.lines()
            .find(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(service) && words.next() == Some(method)
            })
            .unwrap_or_else(|| panic!("no {service} {method} row in\n{top}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("c", "*")[2], "2", "{top}");
    assert_eq!(row("c", "fail")[4], "100.0", "{top}");
    assert_eq!(row("a", "start")[2], "1", "{top}");
    assert!(!top.contains('\x1b'), "plain text when not a terminal");
}

#[test]
fn reading_commands_explain_bad_input() {
    let out = zerorpc(&[
        "tracedump",
        "not-a-trace-id",
        "--collector",
        "tcp://127.0.0.1:1",
    ]);
    assert_status(&out, 2);
    assert!(stderr(&out).contains("not a trace id"), "{}", stderr(&out));
    let out = Command::new(BIN)
        .args(["tracedump", "9c36289c-31d7-481f-b8e0-521725672057"])
        .env_remove("ZERORPC_REDIS_URL")
        .output()
        .unwrap();
    assert_status(&out, 2);
    assert!(stderr(&out).contains("--redis"), "{}", stderr(&out));
    let out = zerorpc(&["collector", "--bind", "tcp://127.0.0.1:1", "--ttl", "0"]);
    assert_status(&out, 2);
    let out = Command::new(BIN)
        .args(["tcp://127.0.0.1:1", "x"])
        .env("TRACEPARENT", "garbage")
        .output()
        .unwrap();
    assert_status(&out, 2);
    assert!(stderr(&out).contains("TRACEPARENT"), "{}", stderr(&out));
}

#[test]
fn an_unknown_trace_is_a_clear_error() {
    let (_collector, _, query) = memory_collector();
    let out = zerorpc(&[
        "tracedump",
        "9c36289c-31d7-481f-b8e0-521725672057",
        "--collector",
        &query,
    ]);
    assert_status(&out, 7);
    assert!(stderr(&out).contains("no trace"), "{}", stderr(&out));
}

/// zerorpc-python's context hooks, passing the trace on to the calls a
/// method makes: what a Python service in a traced chain needs.
const PYTHON_TRACING: &str = r#"
import random
import gevent.local

class Tracing(object):
    def __init__(self):
        self.local = gevent.local.local()

    def load_task_context(self, header):
        self.local.context = dict((k, header[k]) for k in ('trace_id', 'span_id') if k in header)

    def get_task_context(self):
        context = getattr(self.local, 'context', None)
        if not context or 'trace_id' not in context:
            return {}
        return {
            'trace_id': context['trace_id'],
            'parent_span_id': context.get('span_id'),
            'span_id': random.getrandbits(64) or 1,
        }

zerorpc.Context.get_instance().register_middleware(Tracing())
"#;

const PYTHON_RELAY: &str = r#"
import sys, zerorpc

class Relay(object):
    def relay(self):
        client = zerorpc.Client(timeout=10)
        client.connect(sys.argv[2])
        try:
            return client('env')
        finally:
            client.close()

server = zerorpc.Server(Relay())
server.bind(sys.argv[1])
print("READY")
server.run()
"#;

#[test]
fn a_python_server_in_the_middle_passes_the_trace_on_only_through_its_hooks() {
    let dir = TempDir::new();
    let (_collector, collector_endpoint, query) = memory_collector();
    // C answers with the TRACEPARENT its program was given.
    let c_spec = r#"
name = "c"
[methods.env]
command = ["sh", "-c", "echo ${TRACEPARENT:-none}"]
"#;
    let (_c, c) = program_server(&dir, "c", c_spec, &collector_endpoint);
    for hooks in [false, true] {
        let b = free_tcp_endpoint();
        let script = if hooks {
            format!("import zerorpc\n{PYTHON_TRACING}\n{PYTHON_RELAY}")
        } else {
            PYTHON_RELAY.to_owned()
        };
        let Some(python) = PythonPeer::spawn(&script, &[&b, &c]) else {
            return;
        };
        python
            .wait_for_line("READY", STARTUP)
            .expect("the Python server starts");
        let out = zerorpc(&[
            "--trace",
            "--trace-collector",
            &collector_endpoint,
            "-r",
            &b,
            "relay",
        ]);
        assert_status(&out, 0);
        let id = trace_id(&stderr(&out));
        let seen = stdout(&out).trim().to_owned();
        if !hooks {
            // Measured: zerorpc-python passes no header key of the request
            // it serves on to the calls it makes.
            assert_eq!(seen, "none");
            // The call to B, sent by the client; nothing else, ever.
            let json = dump_json(&id, &["--collector", &query], |json| {
                json["calls"][0]["sent_us"].is_u64()
            });
            assert_eq!(json["calls"].as_array().unwrap().len(), 1, "{json:#}");
            continue;
        }
        // With the hooks, C's call belongs to the trace, as a child of the
        // call to the Python server.
        let hex: String = id.chars().filter(|c| *c != '-').collect();
        assert!(seen.starts_with(&format!("00-{hex}-")), "{seen}");
        // The call to B: sent (B reports nothing); C's call: received and
        // answered (B's client reports nothing).
        let json = dump_json(&id, &["--collector", &query], |json| {
            let calls = calls_by_method(json);
            json["calls"][0]["sent_us"].is_u64()
                && calls.contains_key("env")
                && json["calls"][1]["exec_us"].is_u64()
        });
        let calls = calls_by_method(&json);
        assert_eq!(calls["env"].1, Some(calls["relay"].0.clone()), "{json:#}");
        assert_eq!(json["calls"][0]["callee"], Json::Null, "{json:#}");
        let out = zerorpc(&["tracedump", &id, "--collector", &query]);
        let text = stdout(&out);
        assert!(
            text.contains("--- relay ---> [Not Received] tcp://"),
            "{text}"
        );
        assert!(text.contains("    [unknown] --- env ---> c@"), "{text}");
    }
}

#[test]
fn a_trace_crosses_a_queue_hub_which_reports_passing_the_request_on() {
    let dir = TempDir::new();
    let (_collector, collector_endpoint, query) = memory_collector();
    let (front, back) = (free_tcp_endpoint(), free_tcp_endpoint());
    let mut hub = Command::new(env!("CARGO_BIN_EXE_zerorpc-hub"));
    hub.args(["--in", &front, "--out", &back, "--name", "queue"])
        .args(["--trace-collector", &collector_endpoint]);
    let _hub = Process::spawn("zerorpc-hub", hub).expect("starting zerorpc-hub");
    let spec = dir.file(
        "worker.toml",
        "name = \"worker\"\n[methods.say]\ncommand = [\"echo\"]\n",
    );
    let _worker = spawn(
        "worker",
        &[
            "--server",
            "--connect",
            &back,
            "--trace-collector",
            &collector_endpoint,
            spec.to_str().unwrap(),
        ],
        "serving",
    );
    let out = zerorpc(&[
        "--trace",
        "--trace-collector",
        &collector_endpoint,
        "--timeout",
        "20",
        &front,
        "say",
        "hi",
    ]);
    assert_status(&out, 0);
    let id = trace_id(&stderr(&out));
    // The hub passes the trace keys through: the worker reports the call
    // the client sent.
    let json = dump_json(&id, &["--collector", &query], both_ends(1, 1));
    assert!(
        json["calls"][0]["callee"]
            .as_str()
            .unwrap()
            .starts_with("worker@")
    );
}

/// The service of [`a_killed_collector_costs_reports_not_calls`].
struct Echo;

#[zerorpc::service]
impl Echo {
    pub(crate) fn echo(&self, n: u64) -> u64 {
        n
    }
}

/// Calls `echo` `count` times on `client`, every call in a trace of its own;
/// returns the last trace id.
async fn traced_calls(client: &zerorpc::Client, count: u64) -> zerorpc_tracing_collector::TraceId {
    use zerorpc_tracing_collector::{Parent, TraceId, in_trace};
    let mut last = TraceId::random();
    for n in 0..count {
        last = TraceId::random();
        let answer: u64 = in_trace(Parent::root_of(last), client.call("echo", (n,)))
            .await
            .unwrap_or_else(|e| panic!("call {n} failed: {e}"));
        assert_eq!(answer, n);
    }
    last
}

#[test]
fn a_killed_collector_costs_reports_not_calls() {
    use zerorpc_tracing_collector::{Traced as _, Tracer, Traces};
    let (mut collector, endpoint, _) = memory_collector();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let tracer = Tracer::builder()
            .name("victim")
            .collector(&endpoint)
            .build()
            .unwrap();
        let server = Server::builder(Echo)
            .bind("tcp://127.0.0.1:*")
            .traced(&tracer)
            .build()
            .unwrap();
        let client = zerorpc::Client::builder()
            .connect(&server.endpoints()[0])
            .traced(&tracer)
            .build()
            .unwrap();
        tokio::spawn(server.serve());

        traced_calls(&client, 200).await;
        // SIGKILL, mid-run: no goodbye, reports in flight are lost.
        collector.kill().unwrap();
        traced_calls(&client, 2_000).await;
        let flushed = tokio::task::block_in_place(|| tracer.flush(Duration::from_secs(5)));
        assert!(
            flushed,
            "the reporter took every report: {:?}",
            tracer.stats()
        );
        let stats = tracer.stats();
        assert_eq!(
            stats.reported,
            stats.sent + stats.dropped_queue_full,
            "every report is sent or counted as dropped: {stats:?}"
        );

        // A collector started again on the same endpoint gets the reports
        // of new calls: the tracer reconnects by itself.
        let query = free_tcp_endpoint();
        let _again = spawn(
            "collector again",
            &["collector", "--bind", &endpoint, "--query", &query],
            "answering queries",
        );
        let reader = Traces::collector(&query).unwrap();
        let mut found = 0;
        for _ in 0..200 {
            let last = traced_calls(&client, 1).await;
            tokio::task::block_in_place(|| tracer.flush(Duration::from_secs(5)));
            found = reader.trace(last).await.unwrap().len();
            if found == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            found, 4,
            "the new collector has the new call's four reports"
        );
    });
}
