//! Load tests with separate processes: `zerorpc-load-server` and one or
//! more `zerorpc-load-client`s (and the `zerorpc-hub` binary), on 127.0.0.1.
//!
//! They show that no call is lost under load: every call of many in flight
//! is answered, correctly, with no false `LostRemote`, and the server stays
//! bounded in memory when a client stops reading. Speed is never asserted;
//! the time limits are safety bounds far above what a busy 2-core machine
//! needs in a debug build. The heavy tests take [`support::heavy`] so that
//! no two of them run at once.

mod bench_tools;
mod calls;
mod faults;
mod heartbeats;
mod hub;
mod oversized;
mod slow_reader;
mod streams;
mod support;
