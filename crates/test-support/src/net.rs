//! Free TCP ports on 127.0.0.1.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

/// Ports already handed out in this process. The kernel may give back a port
/// that was just released, and two tests of the same binary running in
/// parallel must not be told to bind the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

const ATTEMPTS: usize = 64;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Found by binding port 0 and releasing it; never returns the same port
/// twice within one process.
///
/// # Panics
///
/// If no free port is found after a bounded number of attempts.
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..ATTEMPTS {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("binding 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("local address of a bound listener")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no new free TCP port on 127.0.0.1 after {ATTEMPTS} attempts");
}

/// A ZeroMQ endpoint `tcp://127.0.0.1:PORT` on a [`free_port`].
pub fn free_tcp_endpoint() -> String {
    format!("tcp://127.0.0.1:{}", free_port())
}
