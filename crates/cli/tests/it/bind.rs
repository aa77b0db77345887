//! `dns:` names resolved through BIND's `named` (started on 127.0.0.1 and
//! a free port): a zone `zerorpc announce --format bind` wrote for a
//! running server, and servers and services files added to and withdrawn
//! from a dynamic zone with `zerorpc --server --announce` and `zerorpc
//! announce --update/--withdraw`, signed with keys made by `tsig-keygen`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zerorpc_test_support::{Named, Process, TempDir, tsig_keygen};

use super::{BIN, OurServer, STARTUP, assert_status, call_by_name, stderr, stdout, zerorpc};

const ZONE: &str = "example.test";

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a tcp endpoint with a port")
}

/// `zerorpc resolve --json NAME` asking `dns`: the JSON, or the failure's
/// stderr.
fn resolve(dns: &str, name: &str) -> Result<serde_json::Value, String> {
    let out = zerorpc(&["resolve", "--json", "--dns-server", dns, name]);
    if out.status.success() {
        Ok(serde_json::from_str(&stdout(&out)).expect("resolve --json prints JSON"))
    } else {
        assert_status(&out, 5);
        Err(stderr(&out))
    }
}

/// `(port, target)` of each SRV record of a `resolve --json` answer.
fn srv(json: &serde_json::Value) -> Vec<(u64, String)> {
    let mut srv: Vec<(u64, String)> = json["srv"]
        .as_array()
        .expect("a list of SRV records")
        .iter()
        .map(|entry| {
            (
                entry["port"].as_u64().expect("a port"),
                entry["target"].as_str().expect("a target").to_owned(),
            )
        })
        .collect();
    srv.sort();
    srv
}

/// `zerorpc -j dns:NAME add 1 2` through `dns`, which must print 3.
fn add_by_name(dns: &str, name: &str) {
    let out = call_by_name(dns, &["-j"], name, &["add", "1", "2"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out).trim().parse::<f64>().ok(), Some(3.0));
}

#[test]
fn a_dns_client_calls_a_server_through_the_zone_announce_wrote() {
    let Some(named) = zerorpc_test_support::named() else {
        return;
    };
    let server = OurServer::start();
    let dir = TempDir::new();
    let services = server.services_file(&dir, "calc.svc.example.test");
    let out = zerorpc(&[
        "announce",
        path_str(&services),
        "--format",
        "bind",
        "--zone",
        ZONE,
        "--nameserver",
        "ns.example.test",
        "--nameserver-address",
        "127.0.0.1",
    ]);
    assert_status(&out, 0);
    dir.file("example.test.zone", &stdout(&out));
    let named = Named::start(
        &named,
        &dir.0,
        "zone \"example.test\" { type primary; file \"DIR/example.test.zone\"; };\n",
    );
    add_by_name(&named.address().to_string(), "calc.svc.example.test");
}

/// A dynamic zone and the key file that may update it.
struct DynamicZone {
    named: Named,
    key_file: PathBuf,
    dir: TempDir,
}

impl DynamicZone {
    fn start() -> Option<DynamicZone> {
        let named = zerorpc_test_support::named()?;
        let key = tsig_keygen("zerorpc-update")?;
        let dir = TempDir::new();
        let key_file = dir.file("update.key", &key);
        let named = Named::start_dynamic(&named, &dir.0, ZONE, &[&key], "zerorpc-update");
        Some(DynamicZone {
            named,
            key_file,
            dir,
        })
    }

    fn dns(&self) -> String {
        self.named.address().to_string()
    }

    /// `zerorpc --server --announce NAME` serving the test tools, with
    /// `extra` flags; waits until it announced.
    fn serve(&self, name: &str, extra: &[&str]) -> Process {
        let spec = self.dir.file("tools.toml", super::SPEC);
        let mut command = Command::new(BIN);
        command
            .args([
                "--server",
                "--bind",
                "tcp://127.0.0.1:*",
                "--announce",
                name,
            ])
            .args(["--zone", ZONE, "--dns-server", &self.dns(), "--tsig-key"])
            .arg(&self.key_file)
            .args(extra)
            .arg(&spec);
        let server = Process::spawn("zerorpc --server", command).expect("starting zerorpc");
        server
            .wait_for_stderr_line("announced", STARTUP)
            .unwrap_or_else(|e| panic!("the server did not announce itself: {e}"));
        server
    }
}

/// Waits for `server` to exit after `signal`; checks it withdrew its records.
fn stop(mut server: Process, signal: i32) {
    server.signal(signal).expect("signalling the server");
    // Its output to the end: its last lines may still be in the pipe when
    // it has exited.
    let status = server
        .wait_for_output(STARTUP)
        .expect("waiting for the server")
        .unwrap_or_else(|| panic!("the server did not stop\n{}", server.report()));
    assert!(status.success(), "{status:?}\n{}", server.report());
    server
        .wait_for_stderr_line(
            "withdrew \"tools.example.test\" from zone example.test",
            Duration::ZERO,
        )
        .expect("the server says it withdrew its records");
}

#[test]
fn a_server_announces_itself_while_it_runs_and_withdraws_on_sigterm() {
    let Some(zone) = DynamicZone::start() else {
        return;
    };
    let server = zone.serve("tools.example.test", &["--announce-ttl", "5"]);
    let line = server
        .wait_for_stderr_line("serving", Duration::ZERO)
        .expect("the serving line");
    let endpoint = line.rsplit(' ').next().expect("the endpoint").to_owned();

    let found = resolve(&zone.dns(), "tools.example.test").expect("the records");
    assert_eq!(found["endpoints"], serde_json::json!([endpoint]));
    assert_eq!(found["txt"]["record"]["socket_type"], "ROUTER");
    assert_eq!(found["txt"]["ttl"], 5);
    let out = call_by_name(&zone.dns(), &["-r"], "tools.example.test", &["say", "hi"]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "hi\n");

    stop(server, libc::SIGTERM);
    let gone = resolve(&zone.dns(), "tools.example.test").unwrap_err();
    assert!(gone.contains("no tools.example.test. TXT record"), "{gone}");
}

#[test]
fn a_killed_server_started_again_replaces_its_records_and_withdraws_on_sigint() {
    let Some(zone) = DynamicZone::start() else {
        return;
    };
    let instance = ["--announce-instance", "web"];
    let mut first = zone.serve("tools.example.test", &instance);
    // Killed: it cannot withdraw, its record stays.
    first.kill().expect("killing the server");
    let stale = resolve(&zone.dns(), "tools.example.test").expect("the stale record");
    assert_eq!(srv(&stale).len(), 1, "{stale}");
    let second = zone.serve("tools.example.test", &instance);
    let serving = second
        .wait_for_stderr_line("serving", Duration::ZERO)
        .expect("the serving line");
    let found = resolve(&zone.dns(), "tools.example.test").expect("the records");
    assert_eq!(
        srv(&found),
        [(
            u64::from(port_of(&serving)),
            "web.tools.example.test.".to_owned()
        )],
        "one record for the instance, with the new port"
    );

    stop(second, libc::SIGINT);
    assert!(resolve(&zone.dns(), "tools.example.test").is_err());
}

#[test]
fn a_services_file_is_added_to_and_withdrawn_from_a_zone() {
    let Some(zone) = DynamicZone::start() else {
        return;
    };
    let server = OurServer::start();
    let services = server.services_file(&zone.dir, "calc.svc.example.test");
    let update = |action: &str| {
        let key = path_str(&zone.key_file);
        let dns = zone.dns();
        let args = [
            "announce",
            path_str(&services),
            action,
            "--zone",
            ZONE,
            "--dns-server",
            &dns,
            "--tsig-key",
            key,
        ];
        let out = zerorpc(&args);
        assert_status(&out, 0);
    };
    update("--update");
    add_by_name(&zone.dns(), "calc.svc.example.test");
    update("--withdraw");
    assert!(resolve(&zone.dns(), "calc.svc.example.test").is_err());
}

#[test]
fn refused_keys_and_malformed_key_files_are_explained() {
    let Some(zone) = DynamicZone::start() else {
        return;
    };
    let services = zone.dir.file(
        "services.yml",
        "services:\n  - name: calc.svc.example.test\n    instances:\n      - { host: 127.0.0.1, port: 4242 }\n",
    );
    // The key's name with another secret.
    let forged = zone.dir.file(
        "forged.key",
        &tsig_keygen("zerorpc-update").expect("tsig-keygen"),
    );
    let dns = zone.dns();
    let out = zerorpc(&[
        "announce",
        path_str(&services),
        "--update",
        "--zone",
        ZONE,
        "--dns-server",
        &dns,
        "--tsig-key",
        path_str(&forged),
    ]);
    assert_status(&out, 5);
    let message = stderr(&out);
    for part in [
        dns.as_str(),
        "zone example.test",
        "zerorpc-update",
        "NOTAUTH",
        "BADSIG",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(resolve(&dns, "calc.svc.example.test").is_err());

    // A key file with a mistake: a usage error naming its line, before the
    // server binds anything.
    let malformed = zone.dir.file(
        "malformed.key",
        "key \"zerorpc-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"not base64!\";\n};\n",
    );
    let spec = zone.dir.file("tools.toml", super::SPEC);
    let out = zerorpc(&[
        "--server",
        "--bind",
        "tcp://127.0.0.1:*",
        "--announce",
        "tools.example.test",
        "--zone",
        ZONE,
        "--dns-server",
        &dns,
        "--tsig-key",
        path_str(&malformed),
        path_str(&spec),
    ]);
    assert_status(&out, 2);
    let message = stderr(&out);
    assert!(
        message.contains("malformed.key, line 3: the secret is not base64")
            && !message.contains("binding"),
        "{message}"
    );
}
