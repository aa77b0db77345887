//! Integration tests of the hub: real ZeroMQ sockets on 127.0.0.1, the hub
//! running in-process, zerorpc-python peers, the `zerorpc-hub` binary, and
//! HAProxy in front of two hubs.

mod binary;
mod ha;
mod limits;
mod queue_backlog;
mod queue_frames;
mod queue_overflow;
mod queue_python;
mod relay;
mod rust_peers;
mod security;
mod shared_context;
mod support;
