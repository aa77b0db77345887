//! Every binary given bad input: bad flags, missing and unreadable files,
//! files that do not parse, bad endpoints. Each case must end with the
//! documented exit status (docs/cli.md, "Exit status") and a message naming
//! the problem, without a panic or a backtrace, even with RUST_BACKTRACE
//! set.

use std::process::Command;
use std::time::Duration;

use zerorpc_test_support::{Process, TempDir};

use super::BIN;

const HUB: &str = env!("CARGO_BIN_EXE_zerorpc-hub");

/// Bound on one case: none of them should start serving.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);

struct Case {
    binary: &'static str,
    /// `{dir}` is replaced by the directory holding the files below.
    args: &'static [&'static str],
    status: i32,
    /// What stderr must say.
    says: &'static str,
}

const fn case(
    binary: &'static str,
    args: &'static [&'static str],
    status: i32,
    says: &'static str,
) -> Case {
    Case {
        binary,
        args,
        status,
        says,
    }
}

/// Files the cases read: `{dir}/dir.toml` and `{dir}/dir.yml` are
/// directories, which no one can read as a file, even as root.
const FILES: &[(&str, &str)] = &[
    ("bad.toml", "[methods.x\n"),
    ("bad.yaml", "methods:\n  x: [\n"),
    ("wrong.toml", "[methods.x]\ncommand = \"uptime\"\n"),
    ("bad.yml", "in: [tcp://127.0.0.1:1\n"),
    (
        "typo.yml",
        "in: tcp://127.0.0.1:1\nout: tcp://127.0.0.1:2\nmax_mesage_size: 1\n",
    ),
    ("endpoint.yml", "in: tcp://127.0.0.1:1\nout: nowhere\n"),
];

const CASES: &[Case] = &[
    // zerorpc, as a client.
    case(
        BIN,
        &["--no-such-flag"],
        2,
        "unexpected argument '--no-such-flag'",
    ),
    case(
        BIN,
        &["--timeout", "soon", "tcp://127.0.0.1:1", "m"],
        2,
        "invalid value 'soon'",
    ),
    case(
        BIN,
        &["--max-message-size", "12Q", "tcp://127.0.0.1:1", "m"],
        2,
        "`12Q` is not a size",
    ),
    case(
        BIN,
        &["-j", "tcp://127.0.0.1:1", "m", "{"],
        2,
        "argument 1 (\"{\") is not valid JSON",
    ),
    case(BIN, &["not-an-endpoint", "m"], 2, "not-an-endpoint"),
    case(
        BIN,
        &["--timeout", "1", "tcp://127.0.0.1:notaport", "m"],
        5,
        "cannot connect to tcp://127.0.0.1:notaport",
    ),
    case(
        BIN,
        &["--timeout", "1", "nosuchtransport://x", "m"],
        5,
        "nosuchtransport://x",
    ),
    // zerorpc --server.
    case(
        BIN,
        &[
            "--server",
            "--bind",
            "tcp://127.0.0.1:0",
            "{dir}/missing.toml",
        ],
        2,
        "cannot read service file {dir}/missing.toml: No such file",
    ),
    case(
        BIN,
        &["--server", "--bind", "tcp://127.0.0.1:0", "{dir}/dir.toml"],
        2,
        "cannot read service file {dir}/dir.toml: Is a directory",
    ),
    case(
        BIN,
        &["--server", "--bind", "tcp://127.0.0.1:0", "{dir}/bad.toml"],
        2,
        "{dir}/bad.toml: TOML parse error at line 1",
    ),
    case(
        BIN,
        &[
            "--server",
            "--bind",
            "tcp://127.0.0.1:0",
            "{dir}/wrong.toml",
        ],
        2,
        "{dir}/wrong.toml",
    ),
    case(
        BIN,
        &["--server", "--bind", "tcp://127.0.0.1:0", "{dir}/bad.yaml"],
        2,
        "{dir}/bad.yaml: methods.x",
    ),
    case(
        BIN,
        &[
            "--server",
            "--bind",
            "tcp://127.0.0.1:notaport",
            "{dir}/../none.toml",
        ],
        2,
        "cannot read service file",
    ),
    case(
        BIN,
        &[
            "--server",
            "--max-message-size",
            "-1",
            "--bind",
            "tcp://127.0.0.1:0",
            "x.toml",
        ],
        2,
        "--max-message-size",
    ),
    // zerorpc collector.
    case(BIN, &["collector"], 2, "--bind <ENDPOINT>"),
    case(
        BIN,
        &["collector", "--bind", "tcp://127.0.0.1:0", "--ttl=-1"],
        2,
        "--ttl must be a number of seconds",
    ),
    case(
        BIN,
        &[
            "collector",
            "--bind",
            "tcp://127.0.0.1:0",
            "--max-message-size",
            "big",
        ],
        2,
        "`big` is not a size",
    ),
    case(
        BIN,
        &[
            "collector",
            "--bind",
            "tcp://127.0.0.1:0",
            "--redis",
            "notaurl",
        ],
        2,
        "bad Redis URL \"notaurl\"",
    ),
    case(
        BIN,
        &["collector", "--bind", "nowhere"],
        2,
        "no default query endpoint for nowhere",
    ),
    case(
        BIN,
        &["collector", "--bind", "tcp://127.0.0.1:notaport"],
        5,
        "cannot bind the collector to tcp://127.0.0.1:notaport",
    ),
    // zerorpc-hub: clap's usage errors are 2, everything else 1.
    case(
        HUB,
        &["--no-such-flag"],
        2,
        "unexpected argument '--no-such-flag'",
    ),
    case(HUB, &["--in", "tcp://127.0.0.1:0"], 2, "--out <ENDPOINT>"),
    case(
        HUB,
        &[
            "--in",
            "tcp://127.0.0.1:0",
            "--out",
            "tcp://127.0.0.1:0",
            "--max-message-size",
            "1Q",
        ],
        2,
        "`1Q` is not a size",
    ),
    case(
        HUB,
        &[
            "--in",
            "tcp://127.0.0.1:0",
            "--out",
            "tcp://127.0.0.1:0",
            "--peer-queue-bytes",
            "lots",
        ],
        2,
        "`lots` is not a size",
    ),
    case(
        HUB,
        &[
            "--queue-timeout",
            "0",
            "--in",
            "tcp://127.0.0.1:0",
            "--out",
            "tcp://127.0.0.1:0",
        ],
        2,
        "expected a positive number of seconds",
    ),
    case(
        HUB,
        &["{dir}/missing.yml"],
        1,
        "cannot read `{dir}/missing.yml`",
    ),
    case(
        HUB,
        &["{dir}/dir.yml"],
        1,
        "cannot read `{dir}/dir.yml`: Is a directory",
    ),
    case(HUB, &["{dir}/bad.yml"], 1, "{dir}/bad.yml: line 2"),
    case(
        HUB,
        &["{dir}/typo.yml"],
        1,
        "unknown field `max_mesage_size`",
    ),
    case(
        HUB,
        &["{dir}/endpoint.yml"],
        1,
        "`nowhere`: expected TRANSPORT://ADDRESS",
    ),
    case(
        HUB,
        &["--in", "foo", "--out", "tcp://127.0.0.1:0"],
        1,
        "bad in endpoint: `foo`",
    ),
    case(
        HUB,
        &[
            "--in",
            "tcp://127.0.0.1:notaport",
            "--out",
            "tcp://127.0.0.1:0",
        ],
        1,
        "cannot bind in to `tcp://127.0.0.1:notaport`",
    ),
];

#[test]
fn every_binary_explains_bad_input_with_its_documented_status() {
    let dir = TempDir::new();
    for (name, text) in FILES {
        dir.file(name, text);
    }
    for name in ["dir.toml", "dir.yml"] {
        std::fs::create_dir(dir.0.join(name)).expect("directory");
    }
    let root = dir.0.to_str().expect("UTF-8 temporary directory");
    let mut failures = Vec::new();
    for case in CASES {
        let args: Vec<String> = case.args.iter().map(|a| a.replace("{dir}", root)).collect();
        let says = case.says.replace("{dir}", root);
        let name = if case.binary == HUB {
            "zerorpc-hub"
        } else {
            "zerorpc"
        };
        let mut command = Command::new(case.binary);
        command
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .env_remove("ZERORPC_TRACE_COLLECTOR")
            .env_remove("CLICOLOR_FORCE");
        let mut process = Process::spawn(name, command).expect("spawn");
        let Some(status) = process
            .wait_for_output(CASE_TIMEOUT)
            .unwrap_or_else(|e| panic!("{name} {args:?}: {e}"))
        else {
            failures.push(format!(
                "{name} {args:?}: still running after {CASE_TIMEOUT:?}"
            ));
            continue;
        };
        let stderr = process.stderr_lines().join("\n");
        let status = status.code();
        let mut wrong = Vec::new();
        if status != Some(case.status) {
            wrong.push(format!("status {status:?}, documented {}", case.status));
        }
        if !stderr.contains(&says) {
            wrong.push(format!("stderr does not say {says:?}"));
        }
        for sign in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
            if stderr.contains(sign) {
                wrong.push(format!("stderr shows {sign:?}"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{name} {args:?}: {}\n{stderr}", wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
