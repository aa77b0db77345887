//! Collectors writing to a real Redis and a real Redis Cluster, started by
//! the tests on loopback ports: traces and counters read back, TTLs on
//! every key, Redis restarted and the collector stopped mid-run.

use std::process::Command;
use std::time::Duration;

use zerorpc::{Client, Server};
use zerorpc_test_support::{RedisServer, find_program, free_tcp_endpoint, require};
use zerorpc_tracing_collector::{
    ALL_METHODS, Collector, Counters, Parent, Storage, TraceId, Traced, Tracer, Traces, in_trace,
};

use crate::support::{Leaf, bounded, start, trace_with, traced_client, wait_for};

/// A collector into `storage`, a leaf service and a client, traced.
struct Setup {
    collector: Collector,
    _leaf: crate::support::Running,
    client: Client,
    tracer: Tracer,
}

async fn setup(storage: Storage, collector_endpoint: &str) -> Setup {
    let collector = Collector::builder()
        .bind(collector_endpoint)
        .storage(storage)
        .ttl(Duration::from_secs(3600))
        .start()
        .await
        .expect("the collector starts");
    let tracer = Tracer::builder()
        .name("leaf")
        .collector(collector.endpoints()[0].clone())
        .build()
        .unwrap();
    let leaf = start(Server::builder(Leaf).traced(&tracer));
    let client = traced_client(&leaf.endpoint, &tracer);
    Setup {
        collector,
        _leaf: leaf,
        client,
        tracer,
    }
}

/// Calls `double` in a trace of its own and returns that trace.
async fn traced_call(client: &Client, n: i64) -> TraceId {
    let trace = TraceId::random();
    let doubled: i64 = bounded(in_trace(
        Parent::root_of(trace),
        client.call("double", (n,)),
    ))
    .await
    .expect("the call succeeds");
    assert_eq!(doubled, 2 * n);
    trace
}

fn sum(rows: &[Counters], method: &str) -> (u64, u64) {
    rows.iter()
        .filter(|r| r.service == "leaf" && r.method == method)
        .fold((0, 0), |(calls, errors), r| {
            (calls + r.calls, errors + r.errors)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_every_trace_with_ttls_and_counters_add_up() {
    let Some(redis) = RedisServer::start(&[]) else {
        return;
    };
    let setup = setup(Storage::Redis(redis.url()), "tcp://127.0.0.1:*").await;
    let first_minute = now_minute();
    let mut traces = Vec::new();
    for n in 0..20 {
        traces.push(traced_call(&setup.client, n).await);
    }
    for _ in 0..5 {
        assert!(bounded(setup.client.call::<i64>("fail", ())).await.is_err());
    }
    let reader = Traces::redis(&redis.url()).unwrap();
    for trace in &traces {
        let entries = bounded(trace_with(&reader, *trace, 4)).await;
        assert_eq!(entries.len(), 4);
    }
    // Every report written: 4 per call.
    assert!(
        wait_for(|| setup.collector.stats().written == 100).await,
        "{:?}",
        setup.collector.stats()
    );

    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("zerorpc:*")
        .query_async(&mut connection)
        .await
        .unwrap();
    // The traces of 25 calls and at least one minute's two counter keys.
    assert!(keys.len() >= 27, "{keys:?}");
    for key in &keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!((1..=3600).contains(&ttl), "{key} has TTL {ttl}");
    }

    let rows = reader.counters(first_minute, now_minute()).await.unwrap();
    assert_eq!(sum(&rows, "double"), (20, 0), "{rows:#?}");
    assert_eq!(sum(&rows, "fail"), (5, 5), "{rows:#?}");
    assert_eq!(sum(&rows, ALL_METHODS), (25, 5), "{rows:#?}");
    assert!(
        rows.iter().all(|r| r.max_us > 0 && r.total_us >= r.max_us),
        "{rows:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_resumes_after_a_redis_restart_and_failures_are_counted() {
    let Some(mut redis) = RedisServer::start(&[]) else {
        return;
    };
    let setup = setup(Storage::Redis(redis.url()), "tcp://127.0.0.1:*").await;
    let reader = Traces::redis(&redis.url()).unwrap();
    let before = traced_call(&setup.client, 1).await;
    bounded(trace_with(&reader, before, 4)).await;

    redis.stop();
    for n in 0..20 {
        traced_call(&setup.client, n).await;
    }
    assert!(
        wait_for(|| setup.collector.stats().failed > 0).await,
        "{:?}",
        setup.collector.stats()
    );
    let stats = setup.collector.stats();
    assert!(stats.last_error.is_some());

    redis.restart();
    // The first write after the restart may still meet the old
    // connection; a later call's trace lands.
    let mut landed = false;
    for n in 0..100 {
        let trace = traced_call(&setup.client, n).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if reader
            .trace(trace)
            .await
            .is_ok_and(|entries| entries.len() == 4)
        {
            landed = true;
            break;
        }
    }
    assert!(landed, "writing resumed: {:?}", setup.collector.stats());
    assert_eq!(setup.tracer.stats().dropped_queue_full, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_collector_costs_reports_not_calls() {
    let endpoint = free_tcp_endpoint();
    let setup = setup(
        Storage::Memory {
            max_entries: 10_000,
        },
        &endpoint,
    )
    .await;
    traced_call(&setup.client, 1).await;
    assert!(wait_for(|| setup.collector.stats().received == 4).await);
    setup.collector.stop().await;

    // No collector: every call still succeeds.
    for n in 0..50 {
        traced_call(&setup.client, n).await;
    }

    // A new collector on the same endpoint: reports flow again.
    let collector = Collector::builder()
        .bind(&endpoint)
        .query("tcp://127.0.0.1:*")
        .start()
        .await
        .unwrap();
    let reader = Traces::collector(&collector.query_endpoints()[0]).unwrap();
    let trace = traced_call(&setup.client, 7).await;
    bounded(trace_with(&reader, trace, 4)).await;
    let tracer = setup.tracer.stats();
    assert_eq!(tracer.reported, tracer.sent + tracer.dropped_queue_full);
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_of_three_nodes_holds_each_trace_on_one_shard() {
    let cli = find_program("redis-cli");
    if !require("redis-cli", cli.is_some()) {
        return;
    }
    let cli = cli.unwrap();
    let Some(nodes) = (0..3)
        .map(|_| {
            RedisServer::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
        })
        .collect::<Option<Vec<RedisServer>>>()
    else {
        return;
    };
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    let output = Command::new(&cli)
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    for node in &nodes {
        let ready = wait_for(|| {
            Command::new(&cli)
                .args(["-p", &node.port().to_string(), "cluster", "info"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
        })
        .await;
        assert!(ready, "node {} joined the cluster", node.port());
    }
    let seeds = vec![nodes[0].url()];
    let setup = setup(Storage::RedisCluster(seeds.clone()), "tcp://127.0.0.1:*").await;
    let mut traces = Vec::new();
    for n in 0..12 {
        traces.push(traced_call(&setup.client, n).await);
    }
    let reader = Traces::redis_cluster(&seeds).await.unwrap();
    for trace in &traces {
        assert_eq!(bounded(trace_with(&reader, *trace, 4)).await.len(), 4);
    }
    // The traces are spread over the shards.
    let mut holders = std::collections::HashSet::new();
    for trace in &traces {
        for node in &nodes {
            let output = Command::new(&cli)
                .args(["-p", &node.port().to_string(), "exists"])
                .arg(format!("zerorpc:trace:{{{trace}}}"))
                .output()
                .unwrap();
            if String::from_utf8_lossy(&output.stdout).trim() == "1" {
                holders.insert(node.port());
            }
        }
    }
    assert!(holders.len() > 1, "12 traces on one shard of 3");
    let minute = now_minute();
    let rows = reader
        .counters(minute.saturating_sub(1), minute)
        .await
        .unwrap();
    assert_eq!(sum(&rows, "double").0, 12, "{rows:#?}");
    assert_eq!(setup.collector.stats().failed, 0);
}

fn now_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}
