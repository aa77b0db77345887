//! High availability: HAProxy in TCP mode in front of two hubs, each with a
//! zerorpc-python worker. When one hub dies, new calls keep succeeding on
//! the other.

use std::time::{Duration, Instant};

use zerorpc_hub::{Hub, HubKind};
use zerorpc_test_support::{Process, free_port, haproxy};

use crate::support::{LONG, loopback, ok_text, python_worker, raw_call, start, wait_stats};

fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint}"))
}

/// The configuration documented in docs/hub.md, with loopback ports.
fn haproxy_config(front: u16, backends: [u16; 2]) -> String {
    format!(
        "global
    log stdout format raw local0 info
    maxconn 256

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 1h
    timeout server 1h
    retries 3
    option redispatch

frontend zerorpc
    bind 127.0.0.1:{front}
    default_backend hubs

backend hubs
    balance roundrobin
    server hub1 127.0.0.1:{} check inter 200ms fall 2 rise 1
    server hub2 127.0.0.1:{} check inter 200ms fall 2 rise 1
",
        backends[0], backends[1]
    )
}

/// One call, retried with a fresh connection and a short timeout, a bounded
/// number of times. Returns the worker's name and the attempts it took.
fn call_with_retries(endpoint: &str) -> Option<(String, usize)> {
    (1..=20).find_map(|attempt| {
        raw_call(endpoint, "whoami", Duration::from_secs(1))
            .as_ref()
            .and_then(ok_text)
            .map(|name| (name, attempt))
    })
}

#[test]
fn haproxy_fails_over_to_the_surviving_hub() {
    let Some(haproxy) = haproxy() else { return };
    let hub1 = start(loopback(HubKind::Queue));
    let hub2 = start(loopback(HubKind::Queue));
    let Some(mut worker1) = python_worker(hub1.out_endpoint(), "A") else {
        return;
    };
    let Some(_worker2) = python_worker(hub2.out_endpoint(), "B") else {
        return;
    };
    for hub in [&hub1, &hub2] {
        wait_stats(hub, "a worker", |s| s.workers.len() == 1);
    }

    let front = free_port();
    let config = haproxy_config(
        front,
        [port_of(hub1.in_endpoint()), port_of(hub2.in_endpoint())],
    );
    let config_path =
        std::env::temp_dir().join(format!("zerorpc-hub-haproxy-{}.cfg", std::process::id()));
    std::fs::write(&config_path, config).expect("write haproxy.cfg");
    let mut command = std::process::Command::new(haproxy);
    command.arg("-db").arg("-f").arg(&config_path);
    let proxy = Process::spawn("haproxy", command).expect("start haproxy");
    let endpoint = format!("tcp://127.0.0.1:{front}");
    let listening = zerorpc_test_support::wait_until(LONG, || {
        std::net::TcpStream::connect(("127.0.0.1", front)).is_ok()
    });
    assert!(listening, "haproxy does not listen\n{}", proxy.report());

    // Connections alternate between the backends: both serve.
    let mut seen = Vec::new();
    for _ in 0..20 {
        let (name, _) = call_with_retries(&endpoint)
            .unwrap_or_else(|| panic!("call through haproxy failed\n{}", proxy.report()));
        seen.push(name);
        if seen.iter().any(|n| n == "A") && seen.iter().any(|n| n == "B") {
            break;
        }
    }
    assert!(
        seen.iter().any(|n| n == "A") && seen.iter().any(|n| n == "B"),
        "{seen:?}"
    );

    // Backend 1 dies: its hub and its worker.
    let killed_at = Instant::now();
    Hub::join(hub1).expect("hub1 stops");
    worker1.process_mut().kill().expect("kill worker A");

    // Every new call succeeds, on the survivor, each within its retries.
    let mut attempts = Vec::new();
    for _ in 0..10 {
        let (name, tries) = call_with_retries(&endpoint)
            .unwrap_or_else(|| panic!("no failover\n{}", proxy.report()));
        assert_eq!(name, "B");
        attempts.push(tries);
    }
    let failover = killed_at.elapsed();
    // The health checks notice the dead backend (2 failures, 200 ms apart).
    proxy
        .wait_for_line("hub1 is DOWN", LONG)
        .expect("haproxy marks hub1 down");
    let _ = std::fs::remove_file(&config_path);
    eprintln!(
        "failover: 10 calls on the survivor {failover:?} after the kill, attempts per call {attempts:?}"
    );
    assert!(hub2.stats().calls_routed >= 10);
}
