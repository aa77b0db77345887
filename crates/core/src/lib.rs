//! ZeroRPC for Rust: expose existing code as a remote service, call it from
//! any language, stream results, and get remote errors as real errors.
//!
//! Wire-compatible with zerorpc-python and zerorpc-node: requests and
//! replies, streams under flow control, heartbeats, the `_zerorpc_*`
//! introspection methods, and push/pull and publish/subscribe events.
//!
//! # A server
//!
//! Put [`service`] on an inherent `impl` block: its public methods, sync or
//! async, become remote methods; doc comments become their help and the
//! parameters their argument list.
//!
//! ```
//! use zerorpc::{Client, Server};
//!
//! struct Demo;
//!
//! #[zerorpc::service]
//! impl Demo {
//!     /// Adds two numbers.
//!     pub fn add(&self, a: i64, b: i64) -> i64 {
//!         a + b
//!     }
//!
//!     /// Parses a number, failing with a remote error on bad input.
//!     pub fn parse(&self, text: String) -> Result<i64, std::num::ParseIntError> {
//!         text.parse()
//!     }
//!
//!     /// Streams 0..n.
//!     pub fn count(&self, n: u32) -> impl Iterator<Item = u32> {
//!         0..n
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder(Demo).bind("tcp://127.0.0.1:*").build()?;
//! let client = Client::connect(&server.endpoints()[0])?;
//! tokio::spawn(server.serve());
//!
//! assert_eq!(client.call::<i64>("add", (1, 2)).await?, 3);
//! let err = client.call::<i64>("parse", ("x",)).await.unwrap_err();
//! assert_eq!(err.remote().unwrap().name(), "ParseIntError");
//! let items: Vec<u32> = client.call("count", (3,)).await?;
//! assert_eq!(items, [0, 1, 2]);
//! # Ok(())
//! # }
//! ```
//!
//! # Typed clients
//!
//! [`service`](macro@service) also generates a typed client of the service (`DemoClient`
//! for `impl Demo`, and `DemoBlockingClient`), whose methods check names and
//! types at compile time; [`client`](macro@client) generates one from a trait describing
//! a service implemented elsewhere, in Python for instance.
//!
//! ```
//! use futures::StreamExt;
//!
//! struct Demo;
//!
//! #[zerorpc::service]
//! impl Demo {
//!     pub fn greet(&self, name: String, punctuation: Option<String>) -> String {
//!         format!("hello {name}{}", punctuation.as_deref().unwrap_or("."))
//!     }
//!
//!     pub fn count(&self, n: u32) -> impl Iterator<Item = u32> {
//!         0..n
//!     }
//! }
//!
//! /// The same service, described for callers that do not have its code.
//! #[zerorpc::client]
//! trait Greeter {
//!     fn greet(&self, name: String, punctuation: Option<String>) -> String;
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = zerorpc::Server::builder(Demo).bind("tcp://127.0.0.1:*").build()?;
//! let endpoint = server.endpoints()[0].clone();
//! tokio::spawn(server.serve());
//!
//! let demo = DemoClient::connect(&endpoint)?;
//! assert_eq!(demo.greet("ada", None).await?, "hello ada.");
//! let numbers: Vec<u32> = demo.count(3).await?.map(Result::unwrap).collect().await;
//! assert_eq!(numbers, [0, 1, 2]);
//!
//! let greeter = GreeterClient::connect(&endpoint)?;
//! assert_eq!(greeter.greet("bo", Some("!")).await?, "hello bo!");
//! # Ok(())
//! # }
//! ```
//!
//! # Layers
//!
//! This crate builds on [`transport`] (ZeroMQ sockets, channels, heartbeats,
//! flow control) and [`wire`] (the MessagePack codec), re-exported so users
//! never need to match versions.
//!
//! This crate has no feature flags.

#![doc(test(attr(deny(warnings))))]

mod client;
mod context;
mod driver;
mod endpoint;
mod error;
mod events;
mod gauge;
mod inline;
mod introspect;
mod io_task;
mod server;
mod service;

#[doc(hidden)]
pub mod __private;

pub use client::{
    BlockingClient, BlockingStream, CallOptions, Client, ClientBuilder, DEFAULT_TIMEOUT,
    ReplyStream, Response,
};
pub use context::{CallContext, CallWatcher, CopyExtras, Propagation, WatchedCall};
pub use endpoint::{Change, Changes, Literal, ResolveEndpoint};
pub use error::{Error, ErrorKind, RemoteError, Result, error_chain};
pub use events::{
    Emitter, EmitterBuilder, EmitterOf, PublishKind, Publisher, Puller, PushKind, Pusher, Receiver,
    ReceiverBuilder, Subscriber,
};
pub use server::{Server, ServerBuilder, ShutdownHandle};
pub use service::{
    Arg, Handler, InlineHandler, MethodInfo, Methods, Reply, STREAM_READ_AHEAD, Service,
};
pub use zerorpc_endpoint::{Endpoint, ParseError as EndpointParseError, Transport};
pub use zerorpc_macros::{client, service};
pub use zerorpc_transport as transport;
pub use zerorpc_wire as wire;
pub use zerorpc_wire::Value;

/// Bytes, sent as msgpack bin: Python receives `bytes`. Accepted from
/// callers as bin, str (its UTF-8) or a list of integers. A plain
/// `Vec<u8>` is a list of integers wherever serde decides, as in a struct
/// field (use `#[serde(with = "zerorpc::serde_bytes")]` there); a remote
/// method's result or stream item written `Vec<u8>`, and a typed
/// client's `Vec<u8>` parameter, are sent as bin.
pub type Bytes = serde_bytes::ByteBuf;

/// `#[serde(with = "zerorpc::serde_bytes")]` sends a `Vec<u8>` field as
/// msgpack bin (Python `bytes`).
pub use serde_bytes;
