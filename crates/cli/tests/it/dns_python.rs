//! zerorpc-python and services found through DNS, both ways: its client
//! calling our server at the endpoint DNS gives (zerorpc-python has no
//! resolver of its own), and our `dns:` client, the library's and the
//! `zerorpc` CLI's, calling its server by name.

use std::sync::Arc;
use std::time::Duration;

use zerorpc::Client;
use zerorpc_discovery::DnsResolver;

use super::dns::{Announced, port_of};
use super::{OurServer, STARTUP, assert_status, python, python_server, stdout, zerorpc};

#[test]
fn python_client_calls_our_server_found_through_dns() {
    let Some(python) = python() else { return };
    let server = OurServer::start();
    let name = "calc.svc.example.test";
    let Some(dns) = Announced::start(&[(name, port_of(&server.endpoint))]) else {
        return;
    };

    let out = zerorpc(&["resolve", "--json", "--dns-server", &dns.server(), name]);
    assert_status(&out, 0);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("resolve --json prints JSON");
    let endpoints: Vec<&str> = json["endpoints"]
        .as_array()
        .expect("a list of endpoints")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert_eq!(endpoints, [server.endpoint.as_str()], "{json}");

    let script = r#"
import sys, zerorpc
c = zerorpc.Client(timeout=10)
for endpoint in sys.argv[1:]:
    c.connect(endpoint)
print("ADD", c.add(1, 2))
print("COUNT", list(c.count(3)))
try:
    c.fail("by name")
except zerorpc.RemoteError as e:
    print("ERR", e.name, "|", e.msg)
print("DONE")
"#;
    let peer = python
        .spawn(script, &endpoints)
        .expect("starting the Python client");
    peer.wait_for_line("DONE", STARTUP)
        .expect("the Python client finished");
    let lines = peer.process().stdout_lines();
    for expected in ["ADD 3.0", "COUNT [0, 1, 2]", "ERR DemoError | by name"] {
        assert!(lines.iter().any(|l| l == expected), "{expected}: {lines:?}");
    }
}

#[test]
fn our_dns_client_calls_a_python_server_found_through_dns() {
    let Some((_peer, endpoint)) = python_server(true) else {
        return;
    };
    let name = "py.svc.example.test";
    let Some(dns) = Announced::start(&[(name, port_of(&endpoint))]) else {
        return;
    };
    let named = format!("dns:{name}");

    // The CLI: a call, a stream, the listing.
    let cli = |args: &[&str]| {
        let server = dns.server();
        let out = zerorpc(&[&["--dns-server", &server, "--timeout", "10"], args].concat());
        assert_status(&out, 0);
        stdout(&out)
    };
    assert_eq!(cli(&["-j", &named, "add", "1", "2"]), "3\n");
    assert_eq!(cli(&[&named, "count", "3"]), "0\n1\n2\n");
    assert!(cli(&[&named]).starts_with("[Svc]\nadd "));

    // The library.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    // Inside a runtime, the client also follows the name after build.
    let _entered = runtime.enter();
    let resolver = DnsResolver::builder()
        .name_server(dns.address())
        .build()
        .expect("the resolver builds");
    let client = Client::builder()
        .resolver(Arc::new(resolver))
        .timeout(Some(Duration::from_secs(10)))
        .connect(&named)
        .build()
        .expect("the name resolves at build")
        .blocking();
    assert_eq!(client.call::<i64>("add", (1, 2)).expect("add"), 3);
    let items: Vec<i64> = client
        .stream::<i64>("count", (3,))
        .expect("count")
        .collect::<Result<_, _>>()
        .expect("the stream's items");
    assert_eq!(items, [0, 1, 2]);
    let error = client
        .call::<()>("fail", ("by name",))
        .expect_err("fail fails");
    let remote = error.remote().expect("a remote error");
    assert_eq!((remote.name(), remote.message()), ("ValueError", "by name"));
}
