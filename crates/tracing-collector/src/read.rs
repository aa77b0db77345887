//! Reading traces and counters back: from Redis directly, or from a
//! collector's query endpoint.

use std::time::Duration;

use zerorpc::{CallOptions, Client, Response, Value};

use crate::context::TraceId;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::store::{Counters, Store};

/// The environment variable the reading commands take the Redis URL from.
pub const REDIS_URL_VAR: &str = "ZERORPC_REDIS_URL";

/// Where traces are read from.
pub struct Traces {
    source: Source,
}

enum Source {
    Store(Store),
    Collector { client: Client, endpoint: String },
}

impl Traces {
    /// Reads from one Redis server.
    pub fn redis(url: &str) -> Result<Traces> {
        Ok(Traces {
            source: Source::Store(Store::redis(url)?),
        })
    }

    /// Reads from a Redis Cluster, found from its seed nodes.
    pub async fn redis_cluster(nodes: &[String]) -> Result<Traces> {
        Ok(Traces {
            source: Source::Store(Store::cluster(nodes).await?),
        })
    }

    /// Asks a collector's query endpoint (an in-memory collector, or one
    /// that reads its Redis for you).
    pub fn collector(endpoint: &str) -> Result<Traces> {
        let client = Client::builder()
            .connect(endpoint)
            .timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::rpc(format!("cannot connect to the collector at {endpoint}"), e))?;
        Ok(Traces {
            source: Source::Collector {
                client,
                endpoint: endpoint.to_owned(),
            },
        })
    }

    /// Every entry of a trace, in the order the collector wrote them
    /// (empty if the trace is unknown or expired).
    pub async fn trace(&self, trace_id: TraceId) -> Result<Vec<Report>> {
        match &self.source {
            Source::Store(store) => store.trace(trace_id).await,
            Source::Collector { client, endpoint } => {
                let value =
                    ask(client, endpoint, "trace", vec![trace_id.to_string().into()]).await?;
                match value {
                    Value::Array(entries) => entries.into_iter().map(Report::from_value).collect(),
                    other => Err(Error::Malformed(format!(
                        "the collector answered {other} for a trace"
                    ))),
                }
            }
        }
    }

    /// The counters of the minutes `first..=last` (minutes since the Unix
    /// epoch).
    pub async fn counters(&self, first: u64, last: u64) -> Result<Vec<Counters>> {
        match &self.source {
            Source::Store(store) => store.counters(first..=last).await,
            Source::Collector { client, endpoint } => {
                let args = vec![Value::from(first), Value::from(last)];
                crate::collector::counters_from_value(
                    ask(client, endpoint, "counters", args).await?,
                )
            }
        }
    }
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Store(_) => f.write_str("Traces(redis)"),
            Source::Collector { endpoint, .. } => write!(f, "Traces({endpoint})"),
        }
    }
}

async fn ask(client: &Client, endpoint: &str, method: &str, args: Vec<Value>) -> Result<Value> {
    match client.invoke(method, args, CallOptions::new()).await {
        Ok(Response::Value(value)) => Ok(value),
        Ok(Response::Stream(_)) => Err(Error::Malformed(format!(
            "the collector at {endpoint} streamed its answer to {method}"
        ))),
        Err(e) => Err(Error::rpc(
            format!("cannot ask the collector at {endpoint}"),
            e,
        )),
    }
}
