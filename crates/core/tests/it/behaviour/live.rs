//! Live endpoints: a resolver that reports changes over time drives the
//! endpoints of clients, servers and event sockets.
//!
//! The resolver double hands out a stream per endpoint, fed by the test,
//! and says how many changes it has handed over each time it runs dry. The
//! builders and the background task apply a change before polling for the
//! next, so "ran dry after n" means the first n changes are applied: the
//! tests wait for that, never for the clock.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;
use futures::channel::mpsc;
use tokio::sync::{Semaphore, watch};
use zerorpc::{Change, Changes, Client, Pusher, Receiver, ResolveEndpoint, Server};

use super::{bounded, start};

/// The test's end of one scripted endpoint.
struct Script {
    changes: mpsc::UnboundedSender<Change>,
    applied: watch::Receiver<usize>,
    sent: usize,
}

impl Script {
    /// Sends a change and waits until it has been applied.
    async fn apply(&mut self, change: Change) {
        self.changes
            .unbounded_send(change)
            .expect("the stream is alive");
        self.sent += 1;
        let sent = self.sent;
        bounded(self.applied.wait_for(|&n| n >= sent))
            .await
            .expect("the stream is polled until it runs dry");
    }
}

/// The resolver's end: yields what the test sends, and publishes how
/// many changes it yielded whenever it has no more for now.
struct Scripted {
    changes: mpsc::UnboundedReceiver<Change>,
    yielded: usize,
    applied: watch::Sender<usize>,
}

impl Stream for Scripted {
    type Item = zerorpc::Result<Change>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.changes).poll_next(cx) {
            Poll::Ready(Some(change)) => {
                self.yielded += 1;
                Poll::Ready(Some(Ok(change)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let yielded = self.yielded;
                self.applied.send_replace(yielded);
                Poll::Pending
            }
        }
    }
}

/// Resolves the names it was given scripts for; nothing else.
#[derive(Default)]
struct Resolver {
    scripts: Mutex<HashMap<String, Scripted>>,
}

impl Resolver {
    fn script(&self, name: &str) -> Script {
        let (changes, receiver) = mpsc::unbounded();
        let (applied, watcher) = watch::channel(0);
        let scripted = Scripted {
            changes: receiver,
            yielded: 0,
            applied,
        };
        self.scripts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), scripted);
        Script {
            changes,
            applied: watcher,
            sent: 0,
        }
    }
}

impl ResolveEndpoint for Resolver {
    fn resolve(&self, endpoint: &str) -> Changes {
        let scripted = self
            .scripts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(endpoint);
        match scripted {
            Some(scripted) => Box::pin(scripted),
            None => {
                let error = zerorpc::Error::bad_endpoint(endpoint, "no script");
                Box::pin(futures::stream::iter([Err(error)]))
            }
        }
    }
}

/// Answers with its name; `held` waits for the test to let it go.
#[derive(Clone)]
struct Named {
    name: &'static str,
    entered: Arc<Semaphore>,
    release: Arc<Semaphore>,
}

impl Named {
    fn new(name: &'static str) -> Self {
        Named {
            name,
            entered: Arc::new(Semaphore::new(0)),
            release: Arc::new(Semaphore::new(0)),
        }
    }
}

#[zerorpc::service]
impl Named {
    /// The server's name.
    pub(crate) fn whoami(&self) -> &'static str {
        self.name
    }

    /// The server's name, once the test releases the call.
    pub(crate) async fn held(&self) -> &'static str {
        self.entered.add_permits(1);
        let permit = self.release.acquire().await.expect("never closed");
        permit.forget();
        self.name
    }
}

/// Who answers `n` calls made one after another.
async fn answers(client: &Client, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..n {
        names.push(bounded(client.call::<String>("whoami", ())).await.unwrap());
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_follows_endpoints_as_they_appear_and_disappear() {
    let (a, b) = (Named::new("a"), Named::new("b"));
    let (running_a, running_b) = (
        start(Server::builder(a.clone())),
        start(Server::builder(b.clone())),
    );
    let resolver = Arc::new(Resolver::default());
    let mut script = resolver.script("svc");

    // The first batch is applied by build, before it returns.
    script
        .changes
        .unbounded_send(Change::Insert(running_a.endpoint.clone()))
        .unwrap();
    script.sent += 1;
    let client = Client::builder()
        .resolver(resolver.clone())
        .connect("svc")
        .build()
        .unwrap();
    assert_eq!(answers(&client, 2).await, ["a", "a"]);

    // An endpoint appears: calls are spread over both, one after another.
    script
        .apply(Change::Insert(running_b.endpoint.clone()))
        .await;
    assert_eq!(answers(&client, 4).await, ["a", "a", "b", "b"]);

    // A call in flight on each: the second goes to the less loaded server.
    let held: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call::<String>("held", ()).await })
        })
        .collect();
    for server in [&a, &b] {
        bounded(server.entered.acquire()).await.unwrap().forget();
    }

    // `a` disappears: new calls go to `b` only, undisturbed...
    script
        .apply(Change::Remove(running_a.endpoint.clone()))
        .await;
    assert_eq!(answers(&client, 4).await, ["b", "b", "b", "b"]);

    // ...and the call in flight on `a` completes, as does `b`'s.
    a.release.add_permits(1);
    b.release.add_permits(1);
    let mut done = Vec::new();
    for call in held {
        done.push(bounded(call).await.unwrap().unwrap());
    }
    done.sort();
    assert_eq!(done, ["a", "b"]);

    // And it may come back.
    script
        .apply(Change::Insert(running_a.endpoint.clone()))
        .await;
    assert_eq!(answers(&client, 2).await, ["a", "b"]);
    running_a.stop().unwrap();
    running_b.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_binds_what_its_resolver_reports_later() {
    let resolver = Arc::new(Resolver::default());
    let mut script = resolver.script("svc");
    let endpoint = format!("inproc://live-server-{}", std::process::id());
    // Nothing is ready at build: the server starts with no endpoint.
    let server = Server::builder(Named::new("late"))
        .resolver(resolver.clone())
        .bind("svc")
        .build()
        .unwrap();
    assert!(server.endpoints().is_empty());
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());

    script.apply(Change::Insert(endpoint.clone())).await;
    let client = Client::connect(&endpoint).unwrap();
    assert_eq!(answers(&client, 1).await, ["late"]);
    shutdown.shutdown();
    bounded(serving).await.unwrap().unwrap();
}

#[derive(Clone)]
struct Recorder {
    seen: Arc<Semaphore>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            seen: Arc::new(Semaphore::new(0)),
        }
    }
}

#[zerorpc::service]
impl Recorder {
    /// Counts an event.
    pub(crate) fn record(&self) {
        self.seen.add_permits(1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emitter_built_with_a_resolver_follows_it() {
    let (first, second) = (Recorder::new(), Recorder::new());
    let pullers = [first.clone(), second.clone()]
        .map(|recorder| Arc::new(Receiver::puller_builder(recorder).build().unwrap()));
    let mut endpoints = Vec::new();
    for puller in &pullers {
        endpoints.push(puller.bind("tcp://127.0.0.1:*").unwrap());
        let puller = puller.clone();
        tokio::spawn(async move { puller.run().await });
    }

    let resolver = Arc::new(Resolver::default());
    let mut script = resolver.script("events");
    script
        .changes
        .unbounded_send(Change::Insert(endpoints[0].clone()))
        .unwrap();
    script.sent += 1;
    let pusher = Pusher::builder()
        .resolver(resolver.clone())
        .connect("events")
        .build()
        .unwrap();
    pusher.emit("record", ()).unwrap();
    bounded(first.seen.acquire()).await.unwrap().forget();

    // Moved: with the first puller's pipe gone, only the second is left.
    script.apply(Change::Remove(endpoints[0].clone())).await;
    script.apply(Change::Insert(endpoints[1].clone())).await;
    pusher.emit("record", ()).unwrap();
    bounded(second.seen.acquire()).await.unwrap().forget();
    assert_eq!(first.seen.available_permits(), 0, "nothing more went there");
    for puller in &pullers {
        puller.close();
    }
}

#[test]
fn without_a_runtime_the_first_batch_is_applied_and_an_unscripted_name_fails_build() {
    let resolver = Arc::new(Resolver::default());
    let error = Client::builder()
        .resolver(resolver.clone())
        .connect("unknown")
        .build()
        .expect_err("the first batch holds an error");
    assert!(error.to_string().contains("no script"), "{error}");

    // Built outside any runtime: the ready insert is applied all the same.
    let running = start(Server::builder(Named::new("plain")));
    let script = resolver.script("svc");
    script
        .changes
        .unbounded_send(Change::Insert(running.endpoint.clone()))
        .unwrap();
    let client = Client::builder()
        .resolver(resolver)
        .connect("svc")
        .build()
        .unwrap();
    let name: String = client.blocking().call("whoami", ()).unwrap();
    assert_eq!(name, "plain");
    running.stop().unwrap();
}

#[test]
fn a_client_built_outside_a_runtime_follows_changes_from_its_first_call_inside_one() {
    let (a, b) = (
        start(Server::builder(Named::new("a"))),
        start(Server::builder(Named::new("b"))),
    );
    let resolver = Arc::new(Resolver::default());
    let mut script = resolver.script("svc");
    script
        .changes
        .unbounded_send(Change::Insert(a.endpoint.clone()))
        .unwrap();
    script.sent += 1;
    let client = Client::builder()
        .resolver(resolver)
        .connect("svc")
        .build()
        .unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The first call inside a runtime starts following the resolver.
        assert_eq!(answers(&client, 1).await, ["a"]);
        script.apply(Change::Insert(b.endpoint.clone())).await;
        assert_eq!(answers(&client, 2).await, ["a", "b"]);
    });
    a.stop().unwrap();
    b.stop().unwrap();
}
