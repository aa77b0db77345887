//! zerorpc-python's `zerorpc` command-line tool against our server: calls,
//! streams, errors and the method listing (PROTOCOL.md §12).

use std::process::Output;

use zerorpc_test_support::{Python, python};

use super::{Interop, RustServer};

/// Runs the CLI against `endpoint`; the CLI's own timeout bounds it.
/// Options go before the address: argparse takes nothing after the
/// positional parameters.
fn cli(python: &Python, options: &[&str], endpoint: &str, args: &[&str]) -> Output {
    let mut all = vec!["--timeout", "10"];
    all.extend_from_slice(options);
    all.push(endpoint);
    all.extend_from_slice(args);
    python.cli(&all).output().expect("running the zerorpc CLI")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn python_cli_calls_our_server() {
    let server = RustServer::start(Interop::default(), None);
    let Some(python) = python() else { return };
    let endpoint = server.endpoint();

    // -j parses each parameter as JSON; without it they are sent as str.
    assert_eq!(
        stdout_of(&cli(&python, &["-j"], endpoint, &["add", "1", "2"])),
        "3\n"
    );
    assert_eq!(
        stdout_of(&cli(&python, &[], endpoint, &["echo", "hello"])),
        "'hello'\n"
    );
    assert_eq!(
        stdout_of(&cli(&python, &["-j"], endpoint, &["count", "3"])),
        "0\n1\n2\n"
    );
    assert_eq!(
        stdout_of(&cli(&python, &["-pj", "-j"], endpoint, &["count", "3"])),
        "[0,1,2]"
    );

    let output = cli(&python, &[], endpoint, &["fail", "boom"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("InteropError: boom"), "{stderr}");
}

#[test]
fn python_cli_lists_our_methods() {
    let server = RustServer::start(Interop::default(), None);
    let Some(python) = python() else { return };
    let endpoint = server.endpoint();

    let listing = stdout_of(&cli(&python, &[], endpoint, &[]));
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines[0], "[Interop]", "{listing}");
    let methods: Vec<&str> = lines[1..]
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        methods,
        [
            "add",
            "count",
            "count_inline",
            "count_then_fail",
            "count_then_fail_inline",
            "describe",
            "echo",
            "fail",
            "sample",
            "sleep"
        ],
        "{listing}"
    );
    let add = lines.iter().find(|l| l.starts_with("add ")).unwrap();
    assert!(add.ends_with(" Adds two numbers."), "{listing}");
    let describe = lines.iter().find(|l| l.starts_with("describe ")).unwrap();
    assert!(describe.ends_with(" <undocumented>"), "{listing}");

    // Signatures come from `_zerorpc_inspect`.
    let signatures = stdout_of(&cli(&python, &["-?"], endpoint, &[]));
    assert!(signatures.starts_with("[Interop]\n"), "{signatures}");
    assert!(signatures.contains("\nadd(a, b"), "{signatures}");
    assert!(signatures.contains("\ncount(n)"), "{signatures}");
}
