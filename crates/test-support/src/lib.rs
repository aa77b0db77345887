//! Shared helpers for the integration tests of the zerorpc-rs crates.
//!
//! Integration tests talk to real peers: zerorpc-python 0.6.3, `redis-server`,
//! `named`, `dnsmasq`, tinydns and `haproxy`. This crate finds them, starts
//! them as guarded child processes and hands out free TCP ports on 127.0.0.1.
//!
//! # Missing components
//!
//! When a component is not installed, the finders ([`python`],
//! [`redis_server`], [`named`], [`dnsmasq`], [`tinydns`], [`haproxy`])
//! print a "skipped" line to stderr and return `None`, so a test can return
//! early. When the `CI` environment
//! variable is set (non-empty) they panic instead, naming the component and
//! how to install it: in CI a skipped interoperability test would be a silent
//! hole in the suite. `cargo xtask setup` installs everything.
//!
//! ```no_run
//! use std::time::Duration;
//! use zerorpc_test_support::{free_tcp_endpoint, PythonPeer};
//!
//! let endpoint = free_tcp_endpoint();
//! let Some(peer) = PythonPeer::spawn(
//!     r#"
//! import sys, zerorpc
//! class Service:
//!     def add(self, a, b):
//!         return a + b
//! server = zerorpc.Server(Service())
//! server.bind(sys.argv[1])
//! print("READY")
//! server.run()
//! "#,
//!     &[&endpoint],
//! ) else {
//!     return;
//! };
//! peer.wait_for_line("READY", Duration::from_secs(10)).unwrap();
//! // ... connect to `endpoint` and call `add` ...
//! ```
//!
//! [`Named`] starts BIND's `named` on a free port with the zones a test
//! gives, and [`tsig_keygen`] makes its keys; [`TempDir`] holds the files.
//!
//! All helpers are bounded in time and only ever use 127.0.0.1.

mod binary;
mod component;
mod named;
mod net;
mod process;
mod python;
mod redis;
mod rng;
mod temp;
mod wait;

#[cfg(test)]
mod tests;

pub use binary::workspace_binary;
pub use component::{
    dnsmasq, find_program, haproxy, named, redis_server, require, tinydns, workspace_root,
};
pub use named::{Named, tsig_keygen};
pub use net::{Relay, free_port, free_tcp_endpoint};
pub use process::{Process, WaitLineError};
pub use python::{PYTHON_PRELUDE, Python, PythonPeer, python};
pub use redis::RedisServer;
pub use rng::Rng;
pub use temp::TempDir;
pub use wait::wait_until;
