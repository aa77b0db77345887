//! Integration tests of the zerorpc crate against real peers.

mod behaviour;
mod compile_fail;
mod python;
