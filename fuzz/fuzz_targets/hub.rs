//! The queue hub, running in its thread with real sockets, driven by
//! frame sequences from two clients and two workers: raw frames, events
//! built to meet the channels the hub routes, reads, reconnections and
//! short waits. It must never panic and must keep answering calls (see
//! `zerorpc_hub::fuzzing`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zerorpc_hub::fuzzing::queue(data);
});
