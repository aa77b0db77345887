//! Free TCP ports on 127.0.0.1, and a relay that records what it carries.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

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

/// A TCP relay on 127.0.0.1 that forwards every connection to a target
/// address and records every byte it carries, both ways: what a network
/// observer between the two ends would see.
///
/// It runs until dropped; each connection costs two threads, which end
/// when either side closes or the relay is dropped.
pub struct Relay {
    port: u16,
    recorded: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl Relay {
    /// A relay listening on a free port and forwarding to `target` (a
    /// `HOST:PORT` or `tcp://HOST:PORT` address).
    ///
    /// # Panics
    ///
    /// If it cannot listen on 127.0.0.1.
    pub fn start(target: &str) -> Relay {
        let target = target.trim_start_matches("tcp://").to_owned();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("relay: listen");
        listener
            .set_nonblocking(true)
            .expect("relay: non-blocking listener");
        let port = listener.local_addr().expect("relay: address").port();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let recorded = Arc::clone(&recorded);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let Ok(server) = TcpStream::connect(&target) else {
                                continue;
                            };
                            pipe(&client, &server, &recorded, &stop);
                            pipe(&server, &client, &recorded, &stop);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Relay {
            port,
            recorded,
            stop,
            accept: Some(accept),
        }
    }

    /// The relay's ZeroMQ endpoint, `tcp://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Every byte carried so far, both directions interleaved.
    pub fn recorded(&self) -> Vec<u8> {
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Copies `from` to `to` on a thread, recording what passes, until either
/// side closes or `stop` is set (checked between reads, which time out).
fn pipe(from: &TcpStream, to: &TcpStream, recorded: &Arc<Mutex<Vec<u8>>>, stop: &Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let recorded = Arc::clone(recorded);
    let stop = Arc::clone(stop);
    thread::spawn(move || {
        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
        let mut buffer = [0u8; 16 * 1024];
        while !stop.load(Ordering::Relaxed) {
            match from.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    recorded
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&buffer[..n]);
                    if to.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
