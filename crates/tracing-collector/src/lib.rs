//! Tracing for zerorpc: trace context carried in event headers, bound to
//! the task serving a call and propagated to the calls it makes; a
//! collector; storage in Redis.
//!
//! This crate builds on the core crate's propagation point
//! (`zerorpc::Propagation`) and transport observers
//! (`zerorpc::transport::Observer`). It depends on `redis`; the core crate
//! knows nothing of Redis.
//!
//! It exports nothing yet: tracing is on the roadmap (see ARCHITECTURE.md).
