//! `zerorpc announce` against real DNS servers: BIND's `named` and dnsmasq
//! serve what it prints, queried with hickory-resolver on 127.0.0.1, and
//! tinydns's data is compiled and queried with `tinydns-data` and
//! `tinydns-get`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use zerorpc_discovery::txt::TxtRecord;
use zerorpc_test_support::{Named, Process, TempDir, free_port};

use super::{OurServer, assert_status, call_by_name, stderr, stdout, zerorpc};

const SERVER_STARTUP: Duration = Duration::from_secs(30);
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A services file whose TXT record is over 512 bytes (so several strings,
/// and more than a plain UDP answer holds), with characters every format
/// escapes: quotes, a backslash, a colon, a comma, non-ASCII.
fn services_file(dir: &TempDir, networks: bool) -> std::path::PathBuf {
    let tags: Vec<String> = (0..60).map(|i| format!("tag-{i:02}")).collect();
    let (networks_section, testing) = if networks {
        (
            "networks:\n  testing: [127.0.0.2/32]\n",
            "      - { host: 127.0.0.9, port: 4249, networks: [testing] }\n",
        )
    } else {
        ("", "")
    };
    dir.file(
        "services.yml",
        &format!(
            "{networks_section}services:
  - name: users.svc.example.test
    ttl: 120
    socket_type: ROUTER
    protocol: 3
    metadata:
      owner: \"payments é \\\"team\\\" a\\\\b: c, d\"
      tags: [{}]
    instances:
      - {{ host: 127.0.0.7, port: 4242, priority: 10, weight: 5 }}
      - {{ host: app.example.test, port: 4243, priority: 20, weight: 1 }}
      - {{ host: '::1', port: 4244 }}
{testing}  - name: logs.svc.example.test
    socket_type: PULL
    instances:
      - endpoints: ['tcp://127.0.0.8:5000', 'ipc:///run/logs.sock']
",
            tags.join(", ")
        ),
    )
}

/// The TXT record the services file describes, as a resolver should read it.
fn expected_users_txt(text: &str) -> TxtRecord {
    let mut record = TxtRecord::from_strings(&["{\"socket_type\":\"ROUTER\",\"protocol\":3}"])
        .expect("a valid record");
    record.metadata.insert(
        "owner".into(),
        "payments é \"team\" a\\b: c, d".to_owned().into(),
    );
    let tags: Vec<serde_json::Value> = (0..60)
        .map(|i| serde_json::Value::from(format!("tag-{i:02}")))
        .collect();
    record.metadata.insert("tags".into(), tags.into());
    assert!(
        record.to_json().len() > 512,
        "the test needs a long record: {text}"
    );
    record
}

/// A resolver asking only the server at 127.0.0.1:`port`, from `source`.
fn resolver(port: u16, source: Option<IpAddr>) -> TokioResolver {
    let mut server = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
    for connection in &mut server.connections {
        connection.port = port;
        connection.bind_addr = source.map(|ip| SocketAddr::new(ip, 0));
    }
    let mut options = ResolverOpts::default();
    options.timeout = Duration::from_secs(3);
    options.attempts = 2;
    options.cache_size = 0;
    options.edns0 = true;
    Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build()
    .expect("building a resolver")
}

/// What a server answers, in a form the tests compare.
#[derive(Debug, Default)]
struct Answers {
    /// (priority, weight, port, target), sorted.
    srv: Vec<(u16, u16, u16, String)>,
    /// Addresses of the SRV targets that are ours, sorted.
    addresses: Vec<IpAddr>,
    users_txt: Option<TxtRecord>,
    logs_txt: Option<TxtRecord>,
}

fn query(port: u16, source: Option<IpAddr>) -> Answers {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let resolver = resolver(port, source);
        let lookup = |name: String, kind: RecordType| {
            let resolver = &resolver;
            async move {
                tokio::time::timeout(QUERY_TIMEOUT, resolver.lookup(name.as_str(), kind))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("no answer for {name} {kind} within {QUERY_TIMEOUT:?}")
                    })
                    .ok()
                    .map(|lookup| lookup.answers().to_vec())
                    .unwrap_or_default()
            }
        };
        let mut answers = Answers::default();
        for record in lookup(
            "_zerorpc._tcp.users.svc.example.test.".into(),
            RecordType::SRV,
        )
        .await
        {
            if let RData::SRV(srv) = &record.data {
                answers
                    .srv
                    .push((srv.priority, srv.weight, srv.port, srv.target.to_string()));
            }
        }
        answers.srv.sort();
        for (_, _, _, target) in &answers.srv {
            if !target.ends_with(".users.svc.example.test.") {
                continue;
            }
            for kind in [RecordType::A, RecordType::AAAA] {
                for record in lookup(target.clone(), kind).await {
                    match &record.data {
                        RData::A(a) => answers.addresses.push(IpAddr::V4(a.0)),
                        RData::AAAA(aaaa) => answers.addresses.push(IpAddr::V6(aaaa.0)),
                        _ => {}
                    }
                }
            }
        }
        answers.addresses.sort();
        for (name, slot) in [
            ("users.svc.example.test.", &mut answers.users_txt),
            ("logs.svc.example.test.", &mut answers.logs_txt),
        ] {
            let records = lookup(name.into(), RecordType::TXT).await;
            assert!(records.len() <= 1, "one TXT record per name: {records:?}");
            if let Some(RData::TXT(txt)) = records.first().map(|r| &r.data) {
                *slot = Some(
                    TxtRecord::from_strings(&txt.txt_data)
                        .unwrap_or_else(|e| panic!("TXT of {name}: {e}")),
                );
            }
        }
        answers
    })
}

fn srv(entries: &[(u16, u16, u16, &str)]) -> Vec<(u16, u16, u16, String)> {
    let mut entries: Vec<_> = entries
        .iter()
        .map(|(p, w, port, target)| (*p, *w, *port, (*target).to_owned()))
        .collect();
    entries.sort();
    entries
}

/// The answers every client gets (and, without networks, all there is).
fn check_common(answers: &Answers, text: &str, extra: &[(u16, u16, u16, &str)], extra_ip: &[&str]) {
    let mut expected = vec![
        (10, 5, 4242, "i0.users.svc.example.test."),
        (20, 1, 4243, "app.example.test."),
        (0, 0, 4244, "i2.users.svc.example.test."),
    ];
    expected.extend_from_slice(extra);
    assert_eq!(answers.srv, srv(&expected), "{text}");
    let mut addresses: Vec<IpAddr> = ["127.0.0.7", "::1"]
        .iter()
        .chain(extra_ip)
        .map(|ip| ip.parse().unwrap())
        .collect();
    addresses.sort();
    assert_eq!(answers.addresses, addresses, "{text}");
    assert_eq!(
        answers.users_txt.as_ref(),
        Some(&expected_users_txt(text)),
        "{text}"
    );
    let logs = answers.logs_txt.as_ref().expect("the TXT record of logs");
    assert_eq!(
        logs.endpoints,
        ["tcp://127.0.0.8:5000", "ipc:///run/logs.sock"],
        "{text}"
    );
    assert_eq!(logs.socket_type.as_deref(), Some("PULL"));
}

pub(super) fn announce(args: &[&str]) -> String {
    let output = zerorpc(&[&["announce"], args].concat());
    assert_status(&output, 0);
    stdout(&output)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

// ------------------------------------------------------------------ BIND

#[test]
fn named_serves_the_zone_announce_prints() {
    let Some(named) = zerorpc_test_support::named() else {
        return;
    };
    let dir = TempDir::new();
    let services = services_file(&dir, false);
    let zone = announce(&[
        path_str(&services),
        "--format",
        "bind",
        "--zone",
        "example.test",
        "--nameserver",
        "ns.example.test",
        "--nameserver-address",
        "127.0.0.1",
    ]);
    dir.file("example.test.zone", &zone);
    let named = Named::start(
        &named,
        &dir.0,
        "zone \"example.test\" { type primary; file \"DIR/example.test.zone\"; };\n",
    );
    check_common(&query(named.port(), None), &zone, &[], &[]);
}

#[test]
fn named_views_answer_each_network() {
    let Some(named) = zerorpc_test_support::named() else {
        return;
    };
    let dir = TempDir::new();
    let services = services_file(&dir, true);
    let out_dir = dir.0.join("views");
    let fragment = announce(&[
        path_str(&services),
        "--format",
        "bind",
        "--zone",
        "example.test",
        "--nameserver",
        "ns.example.test",
        "--nameserver-address",
        "127.0.0.1",
        "--out-dir",
        path_str(&out_dir),
    ]);
    assert!(fragment.contains("view \"testing\""), "{fragment}");
    assert!(out_dir.join("example.test.default.zone").is_file());
    let named = Named::start(&named, &dir.0, &fragment);
    let port = named.port();
    // 127.0.0.1 is in no network: the default view.
    check_common(&query(port, None), &fragment, &[], &[]);
    // The whole of 127.0.0.0/8 is on the loopback interface (Linux), so a
    // query can come from 127.0.0.2, the testing network.
    let testing = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    if std::net::UdpSocket::bind((testing, 0)).is_err() {
        eprintln!("views: cannot send from {testing}; only the default view was checked");
        return;
    }
    check_common(
        &query(port, Some(testing)),
        &fragment,
        &[(0, 0, 4249, "i3.users.svc.example.test.")],
        &["127.0.0.9"],
    );
}

// --------------------------------------------------------------- dnsmasq

#[test]
fn dnsmasq_serves_the_options_announce_prints() {
    let Some(dnsmasq) = zerorpc_test_support::dnsmasq() else {
        return;
    };
    let dir = TempDir::new();
    // dnsmasq reads lines of at most 1024 characters: a TXT record of two
    // strings, not the long one of the other tests.
    let services = dir.file(
        "services.yml",
        "services:
  - name: users.svc.example.test
    socket_type: ROUTER
    protocol: 3
    metadata: { owner: \"payments é \\\"team\\\" a\\\\b: c, d # e\", pad: \"PAD\" }
    instances:
      - { host: 127.0.0.7, port: 4242, priority: 10, weight: 5 }
      - { host: app.example.test, port: 4243, priority: 20, weight: 1 }
      - { host: '::1', port: 4244 }
  - name: logs.svc.example.test
    socket_type: PULL
    instances:
      - endpoints: ['tcp://127.0.0.8:5000', 'ipc:///run/logs.sock']
"
        .replace("PAD", &"x".repeat(300))
        .as_str(),
    );
    let options = announce(&[path_str(&services), "--format", "dnsmasq"]);
    let (_dns, port) = start_dnsmasq(&dnsmasq, &dir, &options);
    let answers = query(port, None);
    assert_eq!(
        answers.srv,
        srv(&[
            (10, 5, 4242, "i0.users.svc.example.test."),
            (20, 1, 4243, "app.example.test."),
            (0, 0, 4244, "i2.users.svc.example.test."),
        ]),
        "{options}"
    );
    let ips: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.7".parse().unwrap()];
    let mut sorted = ips.clone();
    sorted.sort();
    assert_eq!(answers.addresses, sorted, "{options}");
    let users = answers.users_txt.expect("the TXT record of users");
    assert_eq!(
        users.metadata["owner"], "payments é \"team\" a\\b: c, d # e",
        "{options}"
    );
    assert_eq!(users.metadata["pad"], "x".repeat(300).as_str());
    assert_eq!(users.socket_type.as_deref(), Some("ROUTER"));
    let logs = answers.logs_txt.expect("the TXT record of logs");
    assert_eq!(
        logs.endpoints,
        ["tcp://127.0.0.8:5000", "ipc:///run/logs.sock"]
    );
}

#[test]
fn dnsmasq_refuses_networks() {
    let dir = TempDir::new();
    let services = services_file(&dir, true);
    let output = zerorpc(&["announce", path_str(&services), "--format", "dnsmasq"]);
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("dnsmasq gives every client the same answers"),
        "{}",
        stderr(&output)
    );
}

// --------------------------------------------------------------- tinydns

/// `tinydns-get`'s answers of type `kind` for `name`, asked from `client`,
/// as record data bytes.
fn tinydns_get(get: &Path, dir: &Path, kind: u16, name: &str, client: &str) -> Vec<Vec<u8>> {
    let output = Command::new(get)
        .args([&kind.to_string(), name, client])
        .current_dir(dir)
        .output()
        .expect("running tinydns-get");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .filter_map(|line| line.strip_prefix("answer: "))
        // `NAME TTL TYPE DATA`; spaces inside DATA are escaped.
        .filter_map(|line| {
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            if fields.len() != 4 {
                return None;
            }
            // A records are printed as addresses, other types generically.
            match (fields[2], fields[3].parse::<Ipv4Addr>()) {
                ("A", Ok(ip)) if kind == 1 => Some(ip.octets().to_vec()),
                (number, _) if number == kind.to_string() => Some(unescape(fields[3])),
                _ => None,
            }
        })
        .collect()
}

/// tinydns-get's octal escapes (`\NNN`) back to bytes.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).expect("octal digits");
            out.push(u8::from_str_radix(digits, 8).expect("an octal escape"));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn txt_strings(mut rdata: &[u8]) -> Vec<Vec<u8>> {
    let mut strings = Vec::new();
    while let Some((&len, rest)) = rdata.split_first() {
        let (string, rest) = rest.split_at(usize::from(len));
        strings.push(string.to_vec());
        rdata = rest;
    }
    strings
}

fn srv_fields(rdata: &[u8]) -> (u16, u16, u16, String) {
    let field = |i: usize| u16::from_be_bytes([rdata[i], rdata[i + 1]]);
    let mut labels = Vec::new();
    let mut rest = &rdata[6..];
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            break;
        }
        let (label, tail) = tail.split_at(usize::from(len));
        labels.push(String::from_utf8_lossy(label).into_owned());
        rest = tail;
    }
    (
        field(0),
        field(2),
        field(4),
        format!("{}.", labels.join(".")),
    )
}

#[test]
fn tinydns_data_compiles_and_answers_each_network() {
    let Some((data, get)) = zerorpc_test_support::tinydns() else {
        return;
    };
    let dir = TempDir::new();
    let services = services_file(&dir, true);
    let lines = announce(&[
        path_str(&services),
        "--format",
        "tinydns",
        "--zone",
        "example.test",
        "--nameserver",
        "ns.example.test",
    ]);
    dir.file("data", &lines);
    let compiled = Command::new(&data)
        .current_dir(&dir.0)
        .output()
        .expect("running tinydns-data");
    assert!(compiled.status.success(), "{compiled:?}\n{lines}");
    for (client, extra) in [
        ("127.0.0.1", None),
        ("10.9.9.9", None),
        (
            "127.0.0.2",
            Some((0, 0, 4249, "i3.users.svc.example.test.")),
        ),
    ] {
        let mut srv: Vec<_> = tinydns_get(
            &get,
            &dir.0,
            33,
            "_zerorpc._tcp.users.svc.example.test",
            client,
        )
        .iter()
        .map(|rdata| srv_fields(rdata))
        .collect();
        srv.sort();
        let mut expected = vec![
            (10, 5, 4242, "i0.users.svc.example.test."),
            (20, 1, 4243, "app.example.test."),
            (0, 0, 4244, "i2.users.svc.example.test."),
        ];
        expected.extend(extra);
        assert_eq!(srv, self::srv(&expected), "client {client}\n{lines}");
        let a = tinydns_get(&get, &dir.0, 1, "i3.users.svc.example.test", client);
        assert_eq!(
            a.len(),
            usize::from(extra.is_some()),
            "client {client}\n{lines}"
        );
        let a = tinydns_get(&get, &dir.0, 1, "i0.users.svc.example.test", client);
        assert_eq!(a, [vec![127, 0, 0, 7]], "client {client}");
        let aaaa = tinydns_get(&get, &dir.0, 28, "i2.users.svc.example.test", client);
        assert_eq!(
            aaaa,
            [Ipv6Addr::LOCALHOST.octets().to_vec()],
            "client {client}"
        );
        let txt = tinydns_get(&get, &dir.0, 16, "users.svc.example.test", client);
        assert_eq!(txt.len(), 1, "one TXT record for client {client}\n{lines}");
        let strings = txt_strings(&txt[0]);
        assert!(strings.len() >= 3, "{} strings", strings.len());
        assert_eq!(
            TxtRecord::from_strings(&strings).expect("the TXT record parses"),
            expected_users_txt(&lines),
            "client {client}"
        );
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn a_bad_file_is_a_usage_error_naming_line_column_and_key() {
    let dir = TempDir::new();
    let bad = dir.file(
        "bad.yml",
        "services:\n  - name: users.svc.example.test\n    instances:\n      - { host: 127.0.0.7, port: 99999 }\n",
    );
    let output = zerorpc(&["announce", path_str(&bad), "--format", "bind"]);
    assert_status(&output, 2);
    let message = stderr(&output);
    for part in [
        "bad.yml: line 4",
        "column",
        "key services › [0] › instances › [0] › port",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    let missing = zerorpc(&["announce", "/nonexistent/services.yml", "--format", "bind"]);
    assert_status(&missing, 2);
    // Views need somewhere to write their zone files.
    let services = services_file(&dir, true);
    let output = zerorpc(&["announce", path_str(&services), "--format", "bind"]);
    assert_status(&output, 2);
    assert!(stderr(&output).contains("--out-dir"), "{}", stderr(&output));
}

// ------------------------------------------------- dns: names, end to end

/// Starts dnsmasq serving `options` on a free port of 127.0.0.1.
fn start_dnsmasq(dnsmasq: &Path, dir: &TempDir, options: &str) -> (Process, u16) {
    let port = free_port();
    (start_dnsmasq_on(dnsmasq, dir, options, port), port)
}

/// Starts dnsmasq serving `options` on 127.0.0.1:`port`.
pub(super) fn start_dnsmasq_on(dnsmasq: &Path, dir: &TempDir, options: &str, port: u16) -> Process {
    let conf = dir.file("dnsmasq.conf", options);
    let mut command = Command::new(dnsmasq);
    command
        .arg("--no-daemon")
        .arg(format!("--port={port}"))
        .arg("--listen-address=127.0.0.1")
        .arg("--bind-interfaces")
        .arg("--no-resolv")
        .arg("--no-hosts")
        .arg("--pid-file")
        .arg("--log-facility=-")
        .arg(format!("--conf-file={}", path_str(&conf)));
    let process = Process::spawn("dnsmasq", command).expect("starting dnsmasq");
    process
        .wait_for_stderr_line("started", SERVER_STARTUP)
        .unwrap_or_else(|e| panic!("dnsmasq did not start with\n{options}\n{e}"));
    process
}

#[test]
fn a_service_announced_in_dns_is_called_by_name() {
    let Some(dnsmasq) = zerorpc_test_support::dnsmasq() else {
        return;
    };
    let server = OurServer::start();
    let port = server.port();
    let dir = TempDir::new();
    let services = server.services_file(&dir, "calc.svc.example.test");
    let options = announce(&[path_str(&services), "--format", "dnsmasq"]);
    let (_dns, dns_port) = start_dnsmasq(&dnsmasq, &dir, &options);
    let dns_server = format!("127.0.0.1:{dns_port}");

    // The name as the endpoint, and with --connect; the server also from
    // the environment variable.
    let out = zerorpc(&[
        "--dns-server",
        &dns_server,
        "dns:calc.svc.example.test",
        "add",
        "1",
        "2",
    ]);
    assert_status(&out, 0);
    assert_eq!(stdout(&out).trim().parse::<f64>().ok(), Some(3.0));
    let out = std::process::Command::new(super::BIN)
        .args([
            "-j",
            "--connect",
            "dns:calc.svc.example.test",
            "add",
            "4",
            "5",
        ])
        .env("ZERORPC_DNS_SERVER", &dns_server)
        .output()
        .expect("running zerorpc");
    assert_status(&out, 0);
    assert_eq!(stdout(&out).trim().parse::<f64>().ok(), Some(9.0));

    // `zerorpc resolve` shows the records and the endpoint chosen.
    let out = zerorpc(&[
        "resolve",
        "--dns-server",
        &dns_server,
        "calc.svc.example.test",
    ]);
    assert_status(&out, 0);
    let table = stdout(&out);
    let endpoint = format!("tcp://127.0.0.1:{port}");
    assert!(
        table.contains(&endpoint)
            && table.contains("i0.calc.svc.example.test.")
            && table.contains("\"socket_type\":\"ROUTER\""),
        "{table}"
    );
    let out = zerorpc(&[
        "resolve",
        "--json",
        "--dns-server",
        &dns_server,
        "dns:calc.svc.example.test",
    ]);
    assert_status(&out, 0);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("resolve --json prints JSON");
    assert_eq!(json["srv"][0]["port"], port);
    assert_eq!(json["srv"][0]["target"], "i0.calc.svc.example.test.");
    assert_eq!(json["txt"]["record"]["protocol"], 3);
    assert_eq!(json["endpoints"], serde_json::json!([endpoint]));

    // A name this server does not serve (dnsmasq refuses it): the error
    // names the record looked up and the server's answer.
    let out = zerorpc(&[
        "--dns-server",
        &dns_server,
        "--timeout",
        "2",
        "dns:nosuch.svc.example.test",
        "add",
    ]);
    assert_status(&out, 5);
    let text = stderr(&out);
    assert!(
        text.contains("_zerorpc._tcp.nosuch.svc.example.test. SRV") && text.contains("Refused"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    let out = zerorpc(&[
        "resolve",
        "--dns-server",
        &dns_server,
        "nosuch.svc.example.test",
    ]);
    assert_status(&out, 5);
    assert!(stderr(&out).contains("_zerorpc._tcp.nosuch.svc.example.test. SRV"));
}

#[test]
fn a_served_file_binds_the_endpoint_its_name_announces() {
    let Some(dnsmasq) = zerorpc_test_support::dnsmasq() else {
        return;
    };
    let dir = TempDir::new();
    let port = free_port();
    let services = dir.file(
        "services.yml",
        &format!(
            "services:
  - name: tools.svc.example.test
    ttl: 5
    instances:
      - {{ host: 127.0.0.1, port: {port} }}
"
        ),
    );
    let options = announce(&[path_str(&services), "--format", "dnsmasq"]);
    let (_dns, dns_port) = start_dnsmasq(&dnsmasq, &dir, &options);
    let dns_server = format!("127.0.0.1:{dns_port}");
    let spec = dir.file("tools.toml", super::SPEC);

    // `--server` resolves the name too: it binds what DNS lists.
    let mut command = Command::new(super::BIN);
    command
        .args(["--dns-server", &dns_server, "--server", "--bind"])
        .arg("dns:tools.svc.example.test")
        .arg(&spec);
    let server = Process::spawn("zerorpc --server", command).expect("starting zerorpc --server");
    let line = server
        .wait_for_stderr_line("serving", SERVER_STARTUP)
        .expect("the server binds the announced endpoint");
    assert!(line.contains(&format!("tcp://127.0.0.1:{port}")), "{line}");

    let out = call_by_name(
        &dns_server,
        &["-r"],
        "tools.svc.example.test",
        &["say", "hi"],
    );
    assert_status(&out, 0);
    assert_eq!(stdout(&out), "hi\n");
}
