//! Error reports: each level's `Display` says what failed at that level and
//! leaves the cause to `source()`, so printing the chain repeats nothing.

use std::error::Error as _;

use zerorpc_transport::{Error, ErrorKind, OpenOptions, Socket, SocketKind};

use crate::support::{config, tcp_server};

/// The error, then each cause, joined as a user-facing report would.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn assert_cause_told_once(error: &Error) {
    let shown = error.to_string();
    if let Some(cause) = error.source() {
        let cause = cause.to_string();
        assert!(
            !shown.contains(&cause),
            "{shown:?} repeats its source {cause:?}"
        );
        assert_eq!(chain(error).matches(&cause).count(), 1, "{}", chain(error));
    }
}

#[test]
fn address_in_use_names_the_endpoint_and_keeps_the_cause_as_source() {
    let (_first, endpoint) = tcp_server(None);
    let second = Socket::new(SocketKind::Server, config(None)).unwrap();
    let error = second.bind(&endpoint).expect_err("the address is taken");
    assert_eq!(error.kind(), ErrorKind::Zmq);
    assert_eq!(error.to_string(), format!("cannot bind to {endpoint}"));
    let cause = error.source().expect("the ZeroMQ error is the source");
    assert!(
        cause.downcast_ref::<zmq::Error>() == Some(&zmq::Error::EADDRINUSE),
        "{cause:?}"
    );
    assert_cause_told_once(&error);
}

#[test]
fn refused_connect_keeps_the_cause_as_source() {
    let client = Socket::new(SocketKind::Client, config(None)).unwrap();
    let error = client
        .connect("tcp://127.0.0.1:notaport")
        .expect_err("ZeroMQ refuses a port that is not a number");
    assert_eq!(error.kind(), ErrorKind::Zmq);
    assert_eq!(
        error.to_string(),
        "cannot connect to tcp://127.0.0.1:notaport"
    );
    assert!(error.source().is_some(), "{error:?}");
    assert_cause_told_once(&error);
}

#[test]
fn unknown_scheme_is_an_endpoint_error_that_says_why() {
    let server = Socket::new(SocketKind::Server, config(None)).unwrap();
    let error = server
        .bind("nosuch://x")
        .expect_err("an unknown scheme is refused");
    assert_eq!(error.kind(), ErrorKind::Endpoint);
    assert_eq!(
        error.to_string(),
        "bad endpoint \"nosuch://x\": unknown transport \"nosuch\" \
         (ZeroMQ knows tcp, ipc, inproc, pgm, epgm, ws, wss, tipc, vmci, udp)"
    );
    // Refused by our own check, before ZeroMQ: there is no lower cause.
    assert!(error.source().is_none(), "{error:?}");
    assert_cause_told_once(&error);
}

#[test]
fn a_call_on_a_socket_with_no_endpoint_says_so() {
    let client = Socket::new(SocketKind::Client, config(None)).unwrap();
    let mut channel = client
        .open(crate::support::request("ping"), OpenOptions::default())
        .unwrap();
    let error = crate::support::run(channel.recv()).expect_err("nowhere to send");
    assert_eq!(error.kind(), ErrorKind::Endpoint);
    assert_eq!(
        error.to_string(),
        "the socket is neither bound nor connected"
    );
}
