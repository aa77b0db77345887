//! The call context: handlers read the request's header, and calls made
//! while serving carry its extra keys onwards.

use std::num::{NonZeroU64, NonZeroU128};
use std::sync::Arc;

use zerorpc::wire::{Header, TraceKeys};
use zerorpc::{CallContext, Client, CopyExtras, Propagation, Server, Value};

use super::{bounded, start};

/// Adds a header key to every request this client opens.
struct InjectHeader {
    key: &'static str,
    value: &'static str,
}

impl Propagation for InjectHeader {
    fn propagate(&self, served: Option<&CallContext>, request: &mut Header) {
        CopyExtras.propagate(served, request);
        request.insert(self.key, Value::from(self.value));
    }
}

fn client_with_header(endpoint: &str, key: &'static str, value: &'static str) -> Client {
    Client::builder()
        .connect(endpoint)
        .propagation(Arc::new(InjectHeader { key, value }))
        .build()
        .unwrap()
}

struct Back;

#[zerorpc::service]
impl Back {
    /// The value of a header key of this request.
    pub(crate) async fn header(&self, key: String) -> Option<Value> {
        CallContext::current().and_then(|ctx| ctx.get(&key).cloned())
    }

    /// The same, from a blocking handler.
    pub(crate) fn header_sync(&self, key: String) -> Option<Value> {
        CallContext::current().and_then(|ctx| ctx.get(&key).cloned())
    }

    /// The trace keys of this request: the trace id in hex, the span and
    /// the parent span.
    pub(crate) async fn trace_keys(&self) -> Option<(String, u64, Option<u64>)> {
        let trace = CallContext::current()?.header().trace;
        Some((
            format!("{:032x}", trace.trace_id()?),
            trace.span_id()?.get(),
            trace.parent_span_id().map(NonZeroU64::get),
        ))
    }

    /// The method the context says is being served.
    pub(crate) async fn method(&self) -> Option<String> {
        CallContext::current().map(|ctx| ctx.method().to_owned())
    }
}

struct Front {
    back: Client,
}

#[zerorpc::service]
impl Front {
    /// Asks the back service for the trace id it sees.
    pub(crate) async fn relay(&self) -> Result<Option<Value>, zerorpc::Error> {
        self.back.call("header", ("trace_id",)).await
    }

    /// Asks the back service for the trace keys it sees.
    pub(crate) async fn relay_trace_keys(
        &self,
    ) -> Result<Option<(String, u64, Option<u64>)>, zerorpc::Error> {
        self.back.call("trace_keys", ()).await
    }

    /// The same, from a blocking handler with the blocking client.
    pub(crate) fn relay_sync(&self) -> Result<Option<Value>, zerorpc::Error> {
        self.back.blocking().call("header_sync", ("trace_id",))
    }

    /// The same, through the dynamic `invoke`.
    pub(crate) async fn relay_invoke(&self) -> Result<Value, zerorpc::Error> {
        match self
            .back
            .invoke(
                "header",
                vec!["trace_id".into()],
                zerorpc::CallOptions::new(),
            )
            .await?
        {
            zerorpc::Response::Value(value) => Ok(value),
            zerorpc::Response::Stream(_) => Ok(Value::from("unexpected stream")),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_reads_a_custom_header_key() {
    let server = start(Server::builder(Back));
    let tagged = client_with_header(&server.endpoint, "tenant", "acme");
    let plain = Client::connect(&server.endpoint).unwrap();
    bounded(async {
        assert_eq!(
            tagged
                .call::<Option<Value>>("header", ("tenant",))
                .await
                .unwrap(),
            Some(Value::from("acme"))
        );
        assert_eq!(
            tagged
                .call::<Option<Value>>("header_sync", ("tenant",))
                .await
                .unwrap(),
            Some(Value::from("acme"))
        );
        assert_eq!(
            plain
                .call::<Option<Value>>("header", ("tenant",))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            tagged
                .call::<Option<String>>("method", ())
                .await
                .unwrap()
                .as_deref(),
            Some("method")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_calls_carry_the_served_request_extra_keys() {
    let back = start(Server::builder(Back));
    let front = start(Server::builder(Front {
        back: Client::connect(&back.endpoint).unwrap(),
    }));
    let traced = client_with_header(&front.endpoint, "trace_id", "t-42");
    let untraced = Client::connect(&front.endpoint).unwrap();
    bounded(async {
        let expected = Some(Value::from("t-42"));
        assert_eq!(
            traced.call::<Option<Value>>("relay", ()).await.unwrap(),
            expected
        );
        assert_eq!(
            traced
                .call::<Option<Value>>("relay_sync", ())
                .await
                .unwrap(),
            expected
        );
        assert_eq!(
            traced
                .call::<Option<Value>>("relay_invoke", ())
                .await
                .unwrap(),
            expected
        );
        // Nothing leaks from one served call into the next.
        assert_eq!(
            untraced.call::<Option<Value>>("relay", ()).await.unwrap(),
            None
        );
        assert_eq!(
            untraced
                .call::<Option<Value>>("relay_sync", ())
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

/// Sets the trace keys of every request this client opens.
struct InjectTrace(TraceKeys);

impl Propagation for InjectTrace {
    fn propagate(&self, _: Option<&CallContext>, request: &mut Header) {
        request.trace = self.0;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_calls_carry_the_served_request_trace_keys_unchanged() {
    let back = start(Server::builder(Back));
    let front = start(Server::builder(Front {
        back: Client::connect(&back.endpoint).unwrap(),
    }));
    let keys = TraceKeys::new(
        NonZeroU128::new(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        NonZeroU64::new(0x00f0_67aa_0ba9_02b7),
        NonZeroU64::new(5),
    );
    let traced = Client::builder()
        .connect(&front.endpoint)
        .propagation(Arc::new(InjectTrace(keys)))
        .build()
        .unwrap();
    let untraced = Client::connect(&front.endpoint).unwrap();
    bounded(async {
        let seen: Option<(String, u64, Option<u64>)> =
            traced.call("relay_trace_keys", ()).await.unwrap();
        assert_eq!(
            seen,
            Some((
                "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
                0x00f0_67aa_0ba9_02b7,
                Some(5)
            )),
            "the default propagation passes them on as they came"
        );
        let seen: Option<(String, u64, Option<u64>)> =
            untraced.call("relay_trace_keys", ()).await.unwrap();
        assert_eq!(seen, None);
    })
    .await;
}
