//! What names resolve to, and the errors of names that do not.

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use futures::StreamExt;
use hickory_server::proto::rr::Record;
use zerorpc::{Change, ResolveEndpoint};
use zerorpc_discovery::DnsResolver;
use zerorpc_discovery::txt::TxtRecord;
use zerorpc_test_support::free_port;

use super::dns_server::{DnsServer, a, aaaa_loopback, srv, txt};
use super::{TEST_BOUND, first_batch, inserted, resolver};

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn description(endpoints: Vec<String>) -> Vec<String> {
    let mut record = TxtRecord::default();
    record.endpoints = endpoints;
    record.socket_type = Some("ROUTER".into());
    record.protocol = Some(3);
    record.to_strings()
}

/// A port on 127.0.0.1 that accepts TCP connections while the listener lives.
fn listening() -> (TcpListener, u16) {
    let listener = TcpListener::bind((LOCAL, 0)).expect("a listener on 127.0.0.1");
    let port = listener.local_addr().expect("its address").port();
    (listener, port)
}

/// Three priorities: 10 (two targets), 20 and 30, all on 127.0.0.1.
fn priorities(best: [u16; 2], second: u16, third: u16) -> Vec<Record> {
    vec![
        srv("svc", 10, 1, best[0], "one"),
        srv("svc", 10, 3, best[1], "two"),
        srv("svc", 20, 5, second, "three"),
        srv("svc", 30, 5, third, "four"),
        a("one", LOCAL),
        a("two", LOCAL),
        a("three", LOCAL),
        a("four", LOCAL),
    ]
}

#[test]
fn only_the_best_priority_is_connected() {
    let (_one, one) = listening();
    let (_two, two) = listening();
    let (_three, three) = listening();
    let dns = DnsServer::start(priorities([one, two], three, three));
    let changes = first_batch(&resolver(&dns), "dns:svc.example.test").unwrap();
    let mut expected = [
        format!("tcp://127.0.0.1:{one}"),
        format!("tcp://127.0.0.1:{two}"),
    ];
    expected.sort();
    assert_eq!(inserted(&changes), expected);
}

#[test]
fn a_lower_priority_serves_while_no_better_target_accepts_connections() {
    // Nothing listens on `dead`: connections are refused.
    let dead = free_port();
    let (_backup, backup) = listening();
    let dns = DnsServer::start(priorities([dead, dead], backup, dead));
    let changes = first_batch(&resolver(&dns), "dns:svc.example.test").unwrap();
    assert_eq!(inserted(&changes), [format!("tcp://127.0.0.1:{backup}")]);

    // Nothing accepts at all: the best priority, which may come back.
    let nowhere = free_port();
    dns.replace(priorities([dead, dead], nowhere, nowhere));
    let changes = first_batch(&resolver(&dns), "dns:svc.example.test").unwrap();
    assert_eq!(inserted(&changes), [format!("tcp://127.0.0.1:{dead}")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_best_priority_is_taken_back_when_it_accepts_connections_again() {
    let best = free_port();
    let (_backup, backup) = listening();
    let dns = DnsServer::start(priorities([best, best], backup, backup));
    let resolver = resolver(&dns);
    let mut changes = resolver.resolve("dns:svc.example.test");
    let backup_endpoint = format!("tcp://127.0.0.1:{backup}");
    assert_eq!(
        changes.next().await.unwrap().unwrap(),
        Change::Insert(backup_endpoint.clone())
    );

    let _best = TcpListener::bind((LOCAL, best)).expect("the best target's port is still free");
    // The new endpoint first, so that the client is never without one.
    assert_eq!(
        next_change(&mut changes).await,
        Change::Insert(format!("tcp://127.0.0.1:{best}"))
    );
    assert_eq!(
        next_change(&mut changes).await,
        Change::Remove(backup_endpoint)
    );
}

#[test]
fn ipv6_targets_are_bracketed() {
    let dns = DnsServer::start(vec![srv("six", 0, 0, 4004, "v6"), aaaa_loopback("v6")]);
    let changes = first_batch(&resolver(&dns), "dns:six.example.test.").unwrap();
    assert_eq!(inserted(&changes), ["tcp://[::1]:4004"]);
}

#[test]
fn without_srv_records_the_txt_record_lists_the_endpoints() {
    let endpoints = vec![
        "tcp://127.0.0.1:4005".to_owned(),
        "ipc:///tmp/svc".to_owned(),
    ];
    let dns = DnsServer::start(vec![txt("plain", description(endpoints.clone()))]);
    let changes = first_batch(&resolver(&dns), "dns:plain.example.test").unwrap();
    assert_eq!(
        inserted(&changes),
        ["ipc:///tmp/svc", "tcp://127.0.0.1:4005"]
    );
}

#[test]
fn srv_records_win_over_the_txt_endpoints() {
    let dns = DnsServer::start(vec![
        srv("both", 0, 1, 4006, "host"),
        a("host", LOCAL),
        txt("both", description(vec!["tcp://127.0.0.1:9".into()])),
    ]);
    let changes = first_batch(&resolver(&dns), "dns:both.example.test").unwrap();
    assert_eq!(inserted(&changes), ["tcp://127.0.0.1:4006"]);
}

#[test]
fn a_txt_record_too_large_for_udp_is_read_over_tcp() {
    let endpoints: Vec<String> = (0..80)
        .map(|i| format!("tcp://127.0.0.1:{}", 5000 + i))
        .collect();
    let strings = description(endpoints.clone());
    // Larger than a plain DNS answer over UDP (512) and than the EDNS
    // payload resolvers offer (1232): the server truncates, the resolver
    // asks again over TCP.
    assert!(strings.concat().len() > 1232, "{}", strings.concat().len());
    let dns = DnsServer::start(vec![txt("big", strings)]);
    let changes = first_batch(&resolver(&dns), "dns:big.example.test").unwrap();
    let mut expected = endpoints;
    expected.sort();
    assert_eq!(inserted(&changes), expected);
}

#[test]
fn malformed_json_is_an_error_saying_where() {
    let dns = DnsServer::start(vec![txt(
        "broken",
        vec![r#"{"endpoints": ["tcp://127.0.0.1:4007","#.into()],
    )]);
    let error = first_batch(&resolver(&dns), "dns:broken.example.test").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("dns:broken.example.test"), "{message}");
    assert!(message.contains("broken.example.test. TXT"), "{message}");
    assert!(message.contains("line 1, column"), "{message}");
}

#[test]
fn a_name_that_does_not_exist_names_the_records_looked_up() {
    let dns = DnsServer::start(vec![]);
    let error = first_batch(&resolver(&dns), "dns:nope.example.test").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("_zerorpc._tcp.nope.example.test. SRV"),
        "{message}"
    );
    assert!(message.contains("nope.example.test. TXT"), "{message}");
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn an_unreachable_name_server_is_an_error_not_a_hang() {
    let mut dns = DnsServer::start(vec![]);
    let address = dns.address();
    dns.stop();
    let resolver = DnsResolver::builder()
        .name_server(address)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = first_batch(&resolver, "dns:svc.example.test").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("cannot look up _zerorpc._tcp.svc.example.test. SRV"),
        "{message}"
    );
}

/// The next change, within the test's bound.
async fn next_change(changes: &mut zerorpc::Changes) -> Change {
    tokio::time::timeout(TEST_BOUND, changes.next())
        .await
        .expect("a change within the bound")
        .expect("the stream goes on")
        .expect("no error")
}
