//! The channel core (the transport's sans-IO `Machine`, which every server
//! and client socket runs) driven by arbitrary operations: events from a
//! peer, raw or built to hit channels that exist, ended or never were; the
//! application opening, granting credit on and closing channels; time
//! passing; sockets coming and going. It must never panic, nor speak of a
//! channel it does not have (see `zerorpc_transport::fuzzing`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zerorpc_transport::fuzzing::machine(data);
});
