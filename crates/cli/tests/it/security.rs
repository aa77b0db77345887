//! PLAIN and CURVE from the command line: `zerorpc keygen`, a server and a
//! client given keys and passwords through files and the environment,
//! refusals logged by the server with the peer's address, the access
//! lists reloaded on SIGHUP, and zerorpc-python's client over CURVE.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use zerorpc_test_support::{TempDir, python};

use super::{BIN, ProgramServer, STARTUP, assert_status, path_str, stderr, stdout, zerorpc};

/// Short, so that a refused client (which only sees no reply) exits soon.
const REFUSED_TIMEOUT: &str = "2";

/// `zerorpc keygen DIR/NAME`; returns the public key it printed.
fn keygen(dir: &TempDir, name: &str) -> String {
    let prefix = Path::new(dir.path_str()).join(name);
    let out = zerorpc(&["keygen", path_str(&prefix)]);
    assert_status(&out, 0);
    stdout(&out).trim().to_owned()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn file(dir: &TempDir, name: &str) -> PathBuf {
    Path::new(dir.path_str()).join(name)
}

/// `zerorpc --timeout T OPTIONS ENDPOINT say hi` with `env` set.
fn say(endpoint: &str, timeout: &str, options: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(["--timeout", timeout])
        .args(options)
        .args([endpoint, "say", "hi"])
        .env_remove("ZERORPC_PLAIN_PASSWORD")
        .env_remove("ZERORPC_CURVE_SERVER_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("running zerorpc")
}

#[test]
fn keygen_writes_a_private_key_file_and_a_public_one() {
    let dir = TempDir::new();
    let public = keygen(&dir, "server");
    assert_eq!(public.len(), 40, "{public}");
    let key = std::fs::read_to_string(file(&dir, "server.key")).unwrap();
    let pub_ = std::fs::read_to_string(file(&dir, "server.pub")).unwrap();
    assert!(key.contains(&format!("public-key = \"{public}\"")), "{key}");
    assert!(key.contains("secret-key = \""), "{key}");
    assert!(
        pub_.contains(&format!("public-key = \"{public}\"")),
        "{pub_}"
    );
    assert!(!pub_.contains("secret-key"), "{pub_}");
    let mode = |name| {
        std::fs::metadata(file(&dir, name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("server.key"), 0o600);
    assert_eq!(mode("server.pub"), 0o644);

    // An existing key is not replaced without --force.
    let prefix = file(&dir, "server");
    let again = zerorpc(&["keygen", path_str(&prefix)]);
    assert_status(&again, 2);
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let forced = zerorpc(&["keygen", "--force", path_str(&prefix)]);
    assert_status(&forced, 0);
    assert_ne!(stdout(&forced).trim(), public);
}

#[test]
fn curve_serves_allowed_keys_refuses_others_and_reloads_on_sighup() {
    let dir = TempDir::new();
    keygen(&dir, "server");
    let alice = keygen(&dir, "alice");
    let bob = keygen(&dir, "bob");
    let allow = dir.file("allow.txt", &format!("# who may call\n{alice}\n"));
    let server_key = file(&dir, "server.key");
    let mut server = ProgramServer::start(&[
        "--curve-secret-key-file",
        path_str(&server_key),
        "--curve-allow-file",
        path_str(&allow),
    ]);
    let server_pub = file(&dir, "server.pub");
    let as_client = |name: &str| {
        vec![
            "--curve-server-key".to_owned(),
            path_str(&server_pub).to_owned(),
            "--curve-secret-key-file".to_owned(),
            path_str(&file(&dir, &format!("{name}.key"))).to_owned(),
        ]
    };

    let out = say(&server.endpoint, "10", &strs(&as_client("alice")), &[]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "'hi\\n'\n");

    // Bob's key is not on the list; a fresh key pair neither; no CURVE at
    // all cannot even handshake.
    let out = say(
        &server.endpoint,
        REFUSED_TIMEOUT,
        &strs(&as_client("bob")),
        &[],
    );
    assert_status(&out, 3);
    let server_key_z85 = std::fs::read_to_string(&server_pub).unwrap();
    let server_key_z85 = server_key_z85
        .lines()
        .find_map(|l| l.trim().strip_prefix("public-key = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .to_owned();
    let out = say(
        &server.endpoint,
        REFUSED_TIMEOUT,
        &[],
        &[("ZERORPC_CURVE_SERVER_KEY", &server_key_z85)],
    );
    assert_status(&out, 3);
    let out = say(&server.endpoint, REFUSED_TIMEOUT, &[], &[]);
    assert_status(&out, 3);
    let refusal = server
        .process
        .wait_for_stderr_line(&format!("CURVE key {bob} is not allowed"), STARTUP)
        .expect("the refusal is logged");
    assert!(refusal.contains("peer=127.0.0.1"), "{refusal}");

    // Bob added, the list reloaded: he is served, and so is Alice still.
    std::fs::write(&allow, format!("{alice}\n{bob}\n")).unwrap();
    server.process.signal(libc::SIGHUP).unwrap();
    server
        .process
        .wait_for_stderr_line("access lists reloaded", STARTUP)
        .expect("the reload is reported");
    let out = say(&server.endpoint, "10", &strs(&as_client("bob")), &[]);
    assert_status(&out, 0);
    let out = say(&server.endpoint, "10", &strs(&as_client("alice")), &[]);
    assert_status(&out, 0);

    // A broken list keeps the one in force.
    std::fs::write(&allow, "not a key\n").unwrap();
    server.process.signal(libc::SIGHUP).unwrap();
    server
        .process
        .wait_for_stderr_line("not reloaded", STARTUP)
        .expect("the failed reload is reported");
    let out = say(&server.endpoint, "10", &strs(&as_client("bob")), &[]);
    assert_status(&out, 0);
}

#[test]
fn curve_allow_list_may_be_a_directory_of_certificates() {
    let dir = TempDir::new();
    keygen(&dir, "server");
    let allowed = TempDir::new();
    let prefix = Path::new(allowed.path_str()).join("carol");
    assert_status(&zerorpc(&["keygen", path_str(&prefix)]), 0);
    // The secret half must not be in the directory of public keys.
    std::fs::rename(
        Path::new(allowed.path_str()).join("carol.key"),
        file(&dir, "carol.key"),
    )
    .unwrap();
    let server = ProgramServer::start(&[
        "--curve-secret-key-file",
        path_str(&file(&dir, "server.key")),
        "--curve-allow-file",
        allowed.path_str(),
    ]);
    let server_pub = file(&dir, "server.pub");
    let carol = file(&dir, "carol.key");
    let out = say(
        &server.endpoint,
        "10",
        &[
            "--curve-server-key",
            path_str(&server_pub),
            "--curve-secret-key-file",
            path_str(&carol),
        ],
        &[],
    );
    assert_status(&out, 0);
    let out = say(
        &server.endpoint,
        REFUSED_TIMEOUT,
        &["--curve-server-key", path_str(&server_pub)],
        &[],
    );
    assert_status(&out, 3);
}

#[test]
fn plain_checks_user_and_password() {
    let dir = TempDir::new();
    let passwords = dir.file("passwords", "# user:password\nalice:correct horse\n");
    let server = ProgramServer::start(&["--plain-passwords-file", path_str(&passwords)]);
    let good = dir.file("alice.password", "correct horse\n");
    let bad = dir.file("eve.password", "battery staple\n");

    let out = say(
        &server.endpoint,
        "10",
        &[
            "--plain-user",
            "alice",
            "--plain-password-file",
            path_str(&good),
        ],
        &[],
    );
    assert_status(&out, 0);
    let out = say(
        &server.endpoint,
        "10",
        &["--plain-user", "alice"],
        &[("ZERORPC_PLAIN_PASSWORD", "correct horse")],
    );
    assert_status(&out, 0);
    let out = say(
        &server.endpoint,
        REFUSED_TIMEOUT,
        &[
            "--plain-user",
            "alice",
            "--plain-password-file",
            path_str(&bad),
        ],
        &[],
    );
    assert_status(&out, 3);
    let out = say(&server.endpoint, REFUSED_TIMEOUT, &[], &[]);
    assert_status(&out, 3);
    let refusal = server
        .process
        .wait_for_stderr_line("wrong password for user \"alice\"", STARTUP)
        .expect("the refusal is logged");
    assert!(refusal.contains("peer=127.0.0.1"), "{refusal}");
    assert!(!refusal.contains("battery"), "{refusal}");
}

#[test]
fn a_server_connecting_is_the_plain_client_of_the_side_that_binds() {
    // As a worker joining a hub: the server connects, so it sends the
    // password; here the caller binds, so it checks it.
    let dir = TempDir::new();
    let spec = dir.file("tools.toml", "[methods.say]\ncommand = [\"echo\"]\n");
    let password = dir.file("password", "w0rk\n");
    let passwords = dir.file("passwords", "worker:w0rk\n");
    let endpoint = zerorpc_test_support::free_tcp_endpoint();
    let mut command = Command::new(BIN);
    command.args([
        "--server",
        "--connect",
        &endpoint,
        "--plain-user",
        "worker",
        "--plain-password-file",
        path_str(&password),
        path_str(&spec),
    ]);
    let server = zerorpc_test_support::Process::spawn("zerorpc --server --connect", command)
        .expect("starting zerorpc --server");
    server
        .wait_for_stderr_line("serving", STARTUP)
        .expect("server ready");
    let out = Command::new(BIN)
        .args(["--timeout", "10", "--bind", &endpoint])
        .args(["--plain-passwords-file", path_str(&passwords), "say", "hi"])
        .output()
        .expect("running zerorpc");
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "'hi\\n'\n");
}

#[test]
fn security_flags_are_checked() {
    let dir = TempDir::new();
    let spec = dir.file("tools.toml", "[methods.say]\ncommand = [\"echo\"]\n");
    let endpoint = "tcp://127.0.0.1:1";
    let cases: &[(&[&str], &str)] = &[
        (
            &["--curve-allow-file", "x", endpoint],
            "--curve-allow-file is for the side that binds",
        ),
        (
            &[
                "--server",
                "--bind",
                endpoint,
                "--plain-user",
                "u",
                path_str(&spec),
            ],
            "--plain-user is for the side that connects",
        ),
        (
            &[
                "--server",
                "--bind",
                endpoint,
                "--curve-allow-file",
                "x",
                path_str(&spec),
            ],
            "--curve-allow-file needs --curve-secret-key-file",
        ),
        (
            &[
                "--bind",
                endpoint,
                "--connect",
                endpoint,
                "--plain-passwords-file",
                "x",
                "say",
            ],
            "not to both",
        ),
        (
            &["--curve-server-key", "short", endpoint],
            "neither a file nor a Z85 key",
        ),
        (&["--plain-user", "u", endpoint], "ZERORPC_PLAIN_PASSWORD"),
        (
            &["--curve-secret-key-file", "/no/such.key", endpoint],
            "--curve-secret-key-file needs --curve-server-key",
        ),
        (
            &[
                "--server",
                "--bind",
                endpoint,
                "--curve-secret-key-file",
                "/no/such.key",
                path_str(&spec),
            ],
            "cannot read the CURVE key file /no/such.key",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(BIN)
            .args(*args)
            .env_remove("ZERORPC_PLAIN_PASSWORD")
            .output()
            .unwrap();
        assert_status(&out, 2);
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn python_client_calls_our_curve_server() {
    let Some(python) = python() else { return };
    let dir = TempDir::new();
    keygen(&dir, "server");
    let allowed = TempDir::new();
    let client = Path::new(allowed.path_str()).join("python");
    assert_status(&zerorpc(&["keygen", path_str(&client)]), 0);
    let server = ProgramServer::start(&[
        "--curve-secret-key-file",
        path_str(&file(&dir, "server.key")),
        "--curve-allow-file",
        allowed.path_str(),
    ]);
    // pyzmq reads our certificates with its own zcert reader.
    let script = r#"
import sys, zmq, zmq.auth, zerorpc
assert zmq.has("curve")
server_public, _ = zmq.auth.load_certificate(sys.argv[1])
public, secret = zmq.auth.load_certificate(sys.argv[2])
c = zerorpc.Client(timeout=10)
c._events.setsockopt(zmq.CURVE_SERVERKEY, server_public)
c._events.setsockopt(zmq.CURVE_PUBLICKEY, public)
c._events.setsockopt(zmq.CURVE_SECRETKEY, secret)
c.connect(sys.argv[3])
print("SAY", repr(c.say("from", "python")))
print("DONE")
"#;
    let key = client.with_extension("key");
    let peer = python
        .spawn(
            script,
            &[
                path_str(&file(&dir, "server.pub")),
                path_str(&key),
                &server.endpoint,
            ],
        )
        .expect("starting the Python client");
    peer.wait_for_line("DONE", STARTUP)
        .unwrap_or_else(|e| panic!("{e:?}\n{}", peer.process().report()));
    let lines = peer.process().stdout_lines();
    assert!(
        lines.contains(&"SAY 'from python\\n'".to_owned()),
        "{lines:?}"
    );
}
