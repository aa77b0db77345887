//! Following DNS while calls run: real zerorpc servers, a client
//! connected to `dns:NAME`, records changed under it.
//!
//! Records have a TTL of 1 s and the resolver's floor is 1 s, so a change
//! is seen within a few seconds; the tests wait for its effect on the
//! calls (bounded polling), never for a fixed time.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tracing::Level;
use zerorpc::{Client, Server, ShutdownHandle};

use super::dns_server::{DnsServer, a, srv};
use super::{TEST_BOUND, logs, resolver};

/// Counts the calls it answers.
#[derive(Clone, Default)]
struct Counting {
    hits: Arc<AtomicUsize>,
}

#[zerorpc::service]
impl Counting {
    /// One more call answered.
    pub(crate) fn hit(&self) -> usize {
        self.hits.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A server on a thread of its own, with its port.
pub(crate) struct Running {
    service: Counting,
    pub(crate) port: u16,
    /// What it bound: `tcp://127.0.0.1:PORT`.
    pub(crate) bound: Vec<String>,
    shutdown: ShutdownHandle,
}

impl Running {
    pub(crate) fn start() -> Running {
        let service = Counting::default();
        let server = Server::builder(service.clone())
            .bind("tcp://127.0.0.1:*")
            .build()
            .expect("the server builds");
        let bound = server.bound_endpoints().to_vec();
        let port = bound[0]
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a bound port");
        let shutdown = server.shutdown_handle();
        std::thread::spawn(move || server.run());
        Running {
            service,
            port,
            bound,
            shutdown,
        }
    }

    pub(crate) fn hits(&self) -> usize {
        self.service.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// Callers calling `hit` in a loop until stopped, counting failures.
struct Callers {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Callers {
    fn start(client: &Client, count: usize) -> Callers {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let tasks = (0..count)
            .map(|_| {
                let (client, stop, failures) = (client.clone(), stop.clone(), failures.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let call = client.call::<usize>("hit", ());
                        match tokio::time::timeout(TEST_BOUND, call).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(error)) => {
                                eprintln!("call failed: {error}");
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                eprintln!("call timed out");
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
            .collect();
        Callers {
            stop,
            failures,
            tasks,
        }
    }

    /// Stops the callers; returns how many calls failed.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a caller does not panic");
        }
        self.failures.load(Ordering::Relaxed)
    }
}

/// Polls `condition` every 100 ms until it holds; fails the test after
/// [`TEST_BOUND`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + TEST_BOUND;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "not within {TEST_BOUND:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `quiet` answers no call while `busy` answers at least 20,
/// over one polling interval.
async fn eventually_only(busy: &Running, quiet: &Running) {
    let mut last = (busy.hits(), quiet.hits());
    eventually("calls reach one server only", || {
        let now = (busy.hits(), quiet.hits());
        let only = now.1 == last.1 && now.0 >= last.0 + 20;
        last = now;
        only
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_follows_servers_added_to_and_removed_from_dns() {
    let (first, second) = (Running::start(), Running::start());
    let host = a("host", Ipv4Addr::LOCALHOST);
    let dns = DnsServer::start(vec![srv("live", 0, 1, first.port, "host"), host.clone()]);
    let client = Client::builder()
        .resolver(Arc::new(resolver(&dns)))
        .connect("dns:live.example.test")
        .build()
        .expect("the first answer is applied at build");
    let callers = Callers::start(&client, 4);
    eventually("the first server answers", || first.hits() > 20).await;
    assert_eq!(second.hits(), 0);

    // A server added to DNS receives calls.
    dns.replace(vec![
        srv("live", 0, 1, first.port, "host"),
        srv("live", 0, 1, second.port, "host"),
        host.clone(),
    ]);
    eventually("the added server answers", || second.hits() > 20).await;

    // A server removed from DNS receives no new call, and no call fails.
    dns.replace(vec![srv("live", 0, 1, second.port, "host"), host]);
    eventually_only(&second, &first).await;
    assert_eq!(callers.stop().await, 0, "calls failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_answer_keeps_serving_while_dns_is_down_and_the_outage_is_logged_once() {
    logs::capture();
    let endpoint = "dns:steady.example.test";
    let server = Running::start();
    let mut dns = DnsServer::start(vec![
        srv("steady", 0, 1, server.port, "host"),
        a("host", Ipv4Addr::LOCALHOST),
    ]);
    let client = Client::builder()
        .resolver(Arc::new(resolver(&dns)))
        .connect(endpoint)
        .build()
        .expect("the first answer is applied at build");
    let callers = Callers::start(&client, 2);
    eventually("the server answers", || server.hits() > 20).await;
    assert_eq!(failures(endpoint), 0);

    dns.stop();
    // Lookups fail one after the other (each retried a floor, 1 s, after
    // the last) while the calls go on.
    let before = server.hits();
    eventually("calls go on through three failed lookups", || {
        failures(endpoint) >= 3 && server.hits() > before + 100
    })
    .await;

    dns.restart();
    eventually("the end of the outage is logged", || {
        !logged_at(endpoint, Level::INFO).is_empty()
    })
    .await;
    let before = server.hits();
    eventually("calls go on after the outage", || {
        server.hits() > before + 100
    })
    .await;
    assert_eq!(callers.stop().await, 0, "calls failed");

    // Hundreds of calls and several failed lookups: one warning, then one
    // line when DNS answers again.
    let warnings = logged_at(endpoint, Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("keeping the last answer") && warnings[0].contains("retry=1s"),
        "{warnings:#?}"
    );
    let news = logged_at(endpoint, Level::INFO);
    assert_eq!(news.len(), 1, "{news:#?}");
    assert!(news[0].contains("works again"), "{news:#?}");
    assert!(logged_at(endpoint, Level::ERROR).is_empty());
}

/// The texts of the events about `endpoint` logged at `level`.
fn logged_at(endpoint: &str, level: Level) -> Vec<String> {
    logs::logged(endpoint)
        .into_iter()
        .filter(|event| event.level == level)
        .map(|event| event.text)
        .collect()
}

/// How many lookups of `endpoint` have failed: the one warned of, and the
/// retries, logged for debugging only.
fn failures(endpoint: &str) -> usize {
    logs::logged(endpoint)
        .iter()
        .filter(|event| event.text.contains("DNS resolution failed"))
        .count()
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_builds_and_follows_inside_a_current_thread_runtime() {
    // `build()` blocks this runtime's only thread on the first answer; the
    // lookup runs on the resolver's own thread, so it cannot deadlock.
    let (first, second) = (Running::start(), Running::start());
    let host = a("host", Ipv4Addr::LOCALHOST);
    let dns = DnsServer::start(vec![srv("one", 0, 1, first.port, "host"), host.clone()]);
    let client = Client::builder()
        .resolver(Arc::new(resolver(&dns)))
        .connect("dns:one.example.test")
        .build()
        .expect("the first answer is applied at build");
    let call = client.call::<usize>("hit", ());
    tokio::time::timeout(TEST_BOUND, call)
        .await
        .expect("within the bound")
        .expect("the call succeeds");

    dns.replace(vec![srv("one", 0, 1, second.port, "host"), host]);
    let callers = Callers::start(&client, 2);
    eventually_only(&second, &first).await;
    assert_eq!(callers.stop().await, 0, "calls failed");
}
