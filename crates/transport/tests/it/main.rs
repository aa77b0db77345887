//! Integration tests of the transport, with raw ZeroMQ sockets playing the
//! peer so that what goes on the wire can be checked frame by frame.

mod backpressure;
mod credit;
mod driver;
mod errors;
mod fanout;
mod heartbeat;
mod lifecycle;
mod live;
mod malformed;
mod observers;
mod options;
mod patterns;
mod respond;
mod rpc;
mod support;
mod timeout;
