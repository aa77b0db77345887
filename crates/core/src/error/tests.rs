//! The kinds of local failures that cannot be caused on demand in an
//! integration test (the system refusing a thread or a runtime).

use std::error::Error as _;

use super::{Error, ErrorKind};

/// Checks the error `Server::run` gives when tokio cannot start its runtime.
fn check_runtime_failure(cause: std::io::Error, expected_display: &str) {
    let cause_text = cause.to_string();
    let error = Error::io("cannot start the server runtime", cause);
    assert_eq!(error.kind(), ErrorKind::Io);
    assert!(error.is_io());
    assert!(!error.is_codec() && !error.is_transport());
    assert_eq!(error.to_string(), expected_display);
    let source = error.source().expect("the io::Error is the source");
    assert_eq!(source.to_string(), cause_text);
    assert!(source.downcast_ref::<std::io::Error>().is_some());
}

#[test]
fn runtime_start_failure_is_an_io_error_with_its_cause_as_source() {
    check_runtime_failure(
        std::io::Error::from(std::io::ErrorKind::WouldBlock),
        "cannot start the server runtime",
    );
}
