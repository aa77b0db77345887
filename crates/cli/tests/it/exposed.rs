//! What a caller can make a program served by `zerorpc --server` do: its
//! arguments never become options of the program unless the service file
//! says so, and the file's schema is checked before anything runs.

use std::path::Path;

use zerorpc_test_support::TempDir;

use super::{ProgramServer, assert_status, path_str, stderr, stdout, zerorpc};

/// A file in `dir` that `find -exec touch` would create.
fn marker(dir: &Path) -> std::path::PathBuf {
    dir.join("touched")
}

#[test]
fn find_exec_from_a_caller_is_refused_and_the_opt_in_allows_it() {
    let files = TempDir::new();
    files.file("notes.txt", "notes\n");
    let root = path_str(&files.0).to_owned();
    let mark = marker(&files.0);
    let spec = format!(
        r#"
[methods.find]
command = ["find", "{root}", "-name"]

[methods.named]
command = ["find", "{root}", "-name", "{{1}}", "-type", "f"]
args = [{{ name = "pattern", pattern = "[A-Za-z0-9*?._-]+" }}]

[methods.find_any]
command = ["find", "{root}", "-name"]
options = "allow"
"#
    );
    let server = ProgramServer::serving(&[], TempDir::new(), &spec);
    let ep = server.endpoint.as_str();
    let attack = ["*.txt", "-exec", "touch", path_str(&mark), ";"];

    let out = zerorpc(&[&["--timeout", "10", "-r", ep, "find", "--"], &attack[..]].concat());
    assert_status(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("TypeError"), "{err}");
    assert!(
        err.contains("find() argument 2 must not start with '-': \"-exec\""),
        "{err}"
    );
    assert!(!mark.exists(), "the refused call ran find -exec");

    // Declared arguments fix the count: the extra words are refused too.
    let out = zerorpc(&[&["--timeout", "10", "-r", ep, "named", "--"], &attack[..]].concat());
    assert_status(&out, 1);
    assert!(
        stderr(&out).contains("named() takes 1 positional argument but 5 were given"),
        "{}",
        stderr(&out)
    );
    assert!(!mark.exists(), "the refused call ran find -exec");

    // What the file allows still works, with fixed arguments after it.
    let out = zerorpc(&["--timeout", "10", "-r", ep, "named", "*.txt"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), format!("{root}/notes.txt\n"));
    let out = zerorpc(&["--timeout", "10", "-r", ep, "find", "*.txt"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), format!("{root}/notes.txt\n"));

    // The opt-in: the service file's author accepted options from callers.
    let out = zerorpc(
        &[
            &["--timeout", "10", "-r", ep, "find_any", "--"],
            &attack[..],
        ]
        .concat(),
    );
    assert_status(&out, 0);
    assert!(mark.exists(), "options = \"allow\" passes -exec to find");
}
