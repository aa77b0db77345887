//! Integration tests of tracing: propagation through every kind of
//! handler, reports reaching collectors, Redis (a server and a cluster,
//! started by the tests) and faults.

mod propagation;
mod redis;
mod reporting;
mod spans;
mod support;
