//! The demo of zerorpc-rs: starts a server with the demo service, calls it,
//! streams from it, shows a remote error and introspection, finds the
//! service by name through a DNS server it starts itself, runs a hub with
//! two workers sharing calls, traces a nested call into an in-memory
//! collector and prints its tracedump, and exits 0.
//!
//! ```text
//! cargo xtask demo
//! ```
//!
//! It lives with the binaries because it shows every layer together: the
//! core crate, the hub, discovery and tracing (which the core crate may not
//! use).

#[path = "../../../core/examples/shared/demo_service.rs"]
mod demo_service;
mod dns;
mod trace;

use std::time::Instant;

use futures::StreamExt;
use zerorpc::{Client, Server, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder(demo_service::DemoService)
        .bind("tcp://127.0.0.1:*")
        .build()?;
    let endpoint = server.endpoints()[0].clone();
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.serve());
    println!("== server: demo service on {endpoint}");

    let client = Client::connect(&endpoint)?;

    println!("\n== introspection");
    let name: String = client.call("_zerorpc_name", ()).await?;
    let methods: Vec<String> = client.call("_zerorpc_list", ()).await?;
    println!("service {name:?} offers {methods:?}");
    for method in &methods {
        let help: Option<String> = client.call("_zerorpc_help", (method,)).await?;
        println!(
            "  {method:<6} {}",
            help.unwrap_or_default().lines().next().unwrap_or("")
        );
    }
    let inspect: Value = client.call("_zerorpc_inspect", ()).await?;
    println!("_zerorpc_inspect: {inspect}");

    println!("\n== calls");
    let sum: f64 = client.call("add", (1, 2)).await?;
    println!("add(1, 2) = {sum}");
    let echoed: Value = client
        .call(
            "echo",
            (Value::Map(vec![(
                "nested".into(),
                Value::Array(vec![1.into(), "two".into(), 3.5.into()]),
            )]),),
        )
        .await?;
    println!("echo({{nested: [1, two, 3.5]}}) = {echoed}");

    println!("\n== a stream");
    let mut numbers = client.stream::<u64>("count", (5,)).await?;
    let mut items = Vec::new();
    while let Some(n) = numbers.next().await {
        items.push(n?);
    }
    println!("count(5) streamed {items:?}");

    println!("\n== a remote error");
    match client.call::<()>("fail", ("the disk is full",)).await {
        Err(e) if e.is_remote() => {
            let remote = e.remote().expect("a remote error");
            println!(
                "name: {}\nmessage: {}\ntraceback:\n{}",
                remote.name(),
                remote.message(),
                remote.traceback().trim_end()
            );
        }
        other => return Err(format!("expected a remote error, got {other:?}").into()),
    }
    match client.call::<Value>("no_such_method", ()).await {
        Err(e) => println!("calling an unknown method: {e}"),
        Ok(v) => return Err(format!("expected NameError, got {v}").into()),
    }

    println!("\n== concurrency: 20 calls of sleep(0.2) at once");
    let started = Instant::now();
    let calls = (0..20).map(|_| client.call::<f64>("sleep", (0.2,)));
    let results = futures::future::try_join_all(calls).await?;
    println!(
        "{} calls finished in {:.2}s",
        results.len(),
        started.elapsed().as_secs_f64()
    );

    println!("\n== quick measurement: 2000 sequential add calls");
    let started = Instant::now();
    for i in 0..2000 {
        let _: f64 = client.call("add", (i, 1)).await?;
    }
    let elapsed = started.elapsed();
    println!(
        "{:.1} µs per call, {:.0} calls/s",
        elapsed.as_secs_f64() * 1e6 / 2000.0,
        2000.0 / elapsed.as_secs_f64()
    );

    let port = endpoint
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .ok_or("the server's endpoint has a port")?;
    dns::find_by_name(port).await?;

    hub_demo(&client).await?;

    trace::nested_call().await?;

    shutdown.shutdown();
    serving.await??;
    println!("\ndemo finished");
    Ok(())
}

/// A worker behind the hub: says who served each call.
struct Worker {
    name: &'static str,
}

#[zerorpc::service]
impl Worker {
    /// Works for `millis` milliseconds, then names the worker.
    pub(crate) async fn work(&self, millis: u64) -> &'static str {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        self.name
    }

    /// Adds two numbers, like the demo service.
    #[zerorpc(inline)]
    pub(crate) fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }
}

/// A queue hub with two workers sharing calls, and the latency it adds.
async fn hub_demo(direct: &Client) -> Result<(), Box<dyn std::error::Error>> {
    use zerorpc_hub::{Hub, HubConfig, HubKind};

    println!("\n== a hub: two workers sharing calls");
    let hub = Hub::start(HubConfig::new(
        HubKind::Queue,
        "tcp://127.0.0.1:*",
        "tcp://127.0.0.1:*",
    ))?;
    println!(
        "hub: clients connect to {}, workers to {}",
        hub.in_endpoint(),
        hub.out_endpoint()
    );
    let mut workers = Vec::new();
    for name in ["worker-1", "worker-2"] {
        let worker = Server::builder(Worker { name })
            .connect(hub.out_endpoint())
            .build()?;
        workers.push(worker.shutdown_handle());
        tokio::spawn(worker.serve());
    }
    let client = Client::connect(hub.in_endpoint())?;
    // The hub learns of workers when they connect; wait (bounded) for both.
    for _ in 0..200 {
        if hub.stats().workers.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let calls = (0..10).map(|_| client.call::<String>("work", (100,)));
    let served_by = futures::future::try_join_all(calls).await?;
    for name in ["worker-1", "worker-2"] {
        println!(
            "{name} served {} of 10 concurrent calls",
            served_by.iter().filter(|w| *w == name).count()
        );
    }
    println!("hub stats: {}", hub.stats().to_json());

    println!("\n== latency: through the hub against a direct call (1000 sequential calls each)");
    let started = Instant::now();
    for i in 0..1000 {
        let _: f64 = direct.call("add", (i, 1)).await?;
    }
    let direct_us = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    for i in 0..1000 {
        let _: f64 = client.call("add", (i, 1)).await?;
    }
    let hub_us = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "direct: {direct_us:.1} µs per call; through the hub: {hub_us:.1} µs per call ({:.2}x)",
        hub_us / direct_us
    );

    for worker in workers {
        worker.shutdown();
    }
    hub.stop();
    hub.join()?;
    Ok(())
}
