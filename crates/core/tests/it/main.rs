//! Integration tests of the zerorpc crate against real peers.

mod python;
